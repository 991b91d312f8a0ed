/**
 * The COPY write of one chunk of events, with exact counts. COPY is the fastest way PostgreSQL (and
 * a Citus coordinator, which fans it out to the shards) loads rows, because it inserts in multi-row
 * buffers; an `INSERT … SELECT FROM unnest` inserts row by row. COPY has no ON CONFLICT, so:
 *
 * - keys that already exist are found first by one indexed probe, and only the rest are copied,
 *   when this pool has recently met duplicates (see CopyAdvisor); otherwise the chunk is copied
 *   optimistically, because in steady state a chunk holds only new events;
 * - if COPY still meets a unique violation (a concurrent writer of the same events, during
 *   rebalancing, or a skipped probe), COPY is atomic, so nothing of it stays, and the chunk goes
 *   through the `unnest … ON CONFLICT DO NOTHING RETURNING` statement instead, which counts exactly;
 * - any other error is the caller's (writeEvents in events.ts), as the upsert's would be: a row-level
 *   refusal is bisected, a missing partition created, a transient failure retried.
 *
 * `ingest_seq` stays a valid watermark: COPY FROM takes ROW EXCLUSIVE on `events` before it draws
 * sequence values, like INSERT, so the rollup's SHARE lock waits for COPY writers too.
 */
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { classifyError } from '../pipeline/classify.js';
import { isCitusNoPartition, isUniqueViolation, SQLSTATE, sqlState } from '../pipeline/pgErrors.js';
import { EVENT_COLUMN_NAMES } from '../pipeline/eventColumns.js';
import type { EventRow } from '../pipeline/types.js';
import { copyLine, isoUtc } from '../pipeline/copyText.js';
import { ScannedRow } from '../pipeline/scanCopy.js';
import { ident } from './ident.js';
import type { Statement } from './statement.js';

export { isoUtc };

/** The columns COPY fills, in the order of copyLine's fields (test/unit/db-copy-encode checks it writes exactly these). */
export const COPY_COLUMNS: readonly string[] = EVENT_COLUMN_NAMES;

export function copyEventsSql(schema: string): string {
  return `COPY ${ident(schema)}.events (${COPY_COLUMNS.join(', ')}) FROM STDIN`;
}

/**
 * The probe: which of these keys exist already (1-based positions). A LATERAL lookup per key, so
 * the plan is always a nested loop over the primary-key index whatever the statistics say (a hash
 * join over a just-truncated or fast-growing table scans it whole); the occurred_at range lets the
 * planner drop the partitions no key can be in before it runs.
 */
export function probeEventsSql(schema: string, rows: readonly EventRow[]): Statement {
  let min = Infinity;
  let max = -Infinity;
  const tenants: number[] = new Array<number>(rows.length);
  const ids: string[] = new Array<string>(rows.length);
  const times: string[] = new Array<string>(rows.length);
  rows.forEach((r, i) => {
    const t = r.occurredAt.getTime();
    if (t < min) min = t;
    if (t > max) max = t;
    tenants[i] = r.tenantId;
    ids[i] = r.eventId;
    times[i] = r.occurredAt.toISOString();
  });
  return {
    text:
      'SELECT u.i::int AS i FROM unnest($1::bigint[], $2::uuid[], $3::timestamptz[]) WITH ORDINALITY AS u(t, e, o, i) ' +
      `CROSS JOIN LATERAL (SELECT 1 FROM ${ident(schema)}.events v ` +
      'WHERE v.tenant_id = u.t AND v.event_id = u.e AND v.occurred_at = u.o AND v.occurred_at BETWEEN $4::timestamptz AND $5::timestamptz LIMIT 1) x',
    values: [tenants, ids, times, new Date(min).toISOString(), new Date(max).toISOString()],
  };
}

/** Each row's COPY text line, in order (a scanned row's line as its bytes). */
function forEachCopyLine(rows: readonly EventRow[], emit: (line: string) => void, scanned?: (row: ScannedRow) => void): void {
  // Events of one batch often share their enqueued time to the millisecond.
  let lastEnqueuedMs = NaN;
  let lastEnqueued = '';
  for (const r of rows) {
    if (r instanceof ScannedRow) {
      if (scanned) scanned(r);
      else emit(r.copyLine().toString('utf8'));
      continue;
    }
    const e = r.raw.source.enqueuedTime;
    if (e.getTime() !== lastEnqueuedMs) {
      lastEnqueuedMs = e.getTime();
      lastEnqueued = isoUtc(e);
    }
    emit(copyLine(r, lastEnqueued));
  }
}

/** Pure: the rows in COPY's text format, the values exactly as the unnest statement sends them. */
export function encodeCopyText(rows: readonly EventRow[]): string {
  let out = '';
  forEachCopyLine(rows, (line) => (out += line));
  return out;
}

/**
 * The lines of rows the byte scanner wrote one after the other into one buffer, as a view of that
 * buffer (no copy), or undefined when they are not (other rows, a gap left by a dropped row).
 */
function contiguousLines(rows: readonly EventRow[]): Buffer | undefined {
  const first = rows[0];
  if (!(first instanceof ScannedRow)) return undefined;
  let end = first.copyEnd;
  for (let i = 1; i < rows.length; i++) {
    const r = rows[i];
    if (!(r instanceof ScannedRow) || r.copyBuf !== first.copyBuf || r.copyStart !== end) return undefined;
    end = r.copyEnd;
  }
  return first.copyBuf.subarray(first.copyStart, end);
}

/**
 * Pure: encodeCopyText's text as UTF-8 bytes (what COPY is sent), written line by line into one
 * buffer. Cheaper than Buffer.from of the whole text: a 1,000-row text is a rope of some 40,000
 * pieces that would be flattened first; a line is flattened and written while it is in cache.
 * Rows from the byte scanner (src/pipeline/scanCopy.ts) bring their lines as bytes already.
 */
export function encodeCopyBytes(rows: readonly EventRow[]): Buffer {
  const view = rows.length > 0 ? contiguousLines(rows) : undefined;
  if (view) return view;
  let size = 0;
  for (const r of rows) size += r instanceof ScannedRow ? r.copyEnd - r.copyStart : 512;
  let buf = Buffer.allocUnsafe(Math.max(1024, size));
  let at = 0;
  const room = (n: number): void => {
    if (buf.length - at < n) {
      const grown = Buffer.allocUnsafe(Math.max(buf.length * 2, at + n));
      buf.copy(grown, 0, 0, at);
      buf = grown;
    }
  };
  forEachCopyLine(
    rows,
    (line) => {
      // A UTF-16 code unit takes at most 3 bytes of UTF-8 (a surrogate pair, 2 units, takes 4).
      room(line.length * 3);
      at += buf.write(line, at, 'utf8');
    },
    (r) => {
      room(r.copyEnd - r.copyStart);
      at += r.copyBuf.copy(buf, at, r.copyStart, r.copyEnd);
    },
  );
  return buf.subarray(0, at);
}

/** COPY of prepared text on one connection; resolves with the rows the server reports. */
export function copyText(client: pg.PoolClient, schema: string, data: string | Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = client.query(copyFrom(copyEventsSql(schema)));
    stream.on('error', reject);
    stream.on('finish', () => resolve(stream.rowCount));
    stream.end(data);
  });
}

/**
 * When to probe before COPY, learnt from what this pool's writes met: after a chunk had keys that
 * existed already (redelivery, producer re-sends), the next `probeChunks` chunks are probed; after
 * that, chunks are copied optimistically again. A server that refuses the probe statement is not
 * probed again (COPY and the fallback stay exact without it).
 */
export class CopyAdvisor {
  private probesLeft = 0;
  private probeUnsupported = false;
  constructor(readonly probeChunks = 16) {}

  shouldProbe(): boolean {
    return !this.probeUnsupported && this.probesLeft > 0;
  }

  /** A chunk's outcome: whether it met keys that existed already. */
  record(sawDuplicates: boolean): void {
    if (sawDuplicates) this.probesLeft = this.probeChunks;
    else if (this.probesLeft > 0) this.probesLeft--;
  }

  disableProbe(): void {
    this.probeUnsupported = true;
  }
}

const advisors = new WeakMap<pg.Pool, CopyAdvisor>();

/** One advisor per pool: what a pool's writers met is what the next write on it is likely to meet. */
export function advisorFor(pool: pg.Pool): CopyAdvisor {
  let a = advisors.get(pool);
  if (!a) advisors.set(pool, (a = new CopyAdvisor()));
  return a;
}

/**
 * Citus reports errors of its COPY path under XX000, where PostgreSQL and the upsert give the row's
 * own SQLSTATE. A missing partition gets the code PostgreSQL uses (23514), so writeEvents creates
 * it as it would for the upsert.
 */
function asPostgresError(err: unknown): unknown {
  if (!(err instanceof Error) || !isCitusNoPartition(err)) return err;
  return Object.assign(new Error(err.message, { cause: err }), { code: SQLSTATE.checkViolation });
}

export interface CopyChunkResult {
  inserted: number;
  duplicates: number;
  /** How the chunk was written: 'copy', or 'fallback' when COPY was refused and the upsert wrote it. */
  path: 'copy' | 'fallback';
}

/** Positions (0-based) of rows whose key exists already. */
async function probe(client: pg.PoolClient, schema: string, rows: readonly EventRow[]): Promise<Set<number>> {
  const res = await client.query<{ i: number }>(probeEventsSql(schema, rows));
  return new Set(res.rows.map((r) => r.i - 1));
}

/**
 * Writes one chunk by COPY (probing first when the advisor says so). A unique violation hands the
 * chunk to `upsert` (the ON CONFLICT statement) and reports 'fallback'; any other error is thrown
 * for the caller to bisect, retry or fix, as an error of the upsert would be.
 */
export async function copyChunk(
  pool: pg.Pool,
  schema: string,
  rows: readonly EventRow[],
  upsert: (rows: readonly EventRow[]) => Promise<{ inserted: number; duplicates: number }>,
  advisor: CopyAdvisor = advisorFor(pool),
  /** The rows already in COPY text (the bench times the database side on payloads encoded beforehand). */
  encoded?: string | Buffer,
): Promise<CopyChunkResult> {
  const client = await pool.connect();
  let broken: Error | undefined;
  let refused = false;
  try {
    let fresh: readonly EventRow[] = rows;
    if (advisor.shouldProbe()) {
      try {
        const existing = await probe(client, schema, rows);
        if (existing.size > 0) fresh = rows.filter((_, i) => !existing.has(i));
      } catch (err) {
        const cls = classifyError(err);
        if (cls === 'transient' || cls === 'unavailable') throw err;
        // A server that cannot run the probe (a planner limitation) still gets exact counts from
        // COPY plus the fallback; never ask it again.
        advisor.disableProbe();
      }
    }
    const duplicates = rows.length - fresh.length;
    if (fresh.length > 0) {
      try {
        const n = await copyText(client, schema, fresh === rows && encoded !== undefined ? encoded : encodeCopyBytes(fresh));
        if (n !== fresh.length) throw new Error(`COPY reported ${n} rows for ${fresh.length}`);
      } catch (err) {
        const cls = classifyError(err);
        // Citus's other XX000 refusals carry no row-level SQLSTATE: the upsert reports the real one.
        const citusRefusal = sqlState(err) === SQLSTATE.internalError && cls !== 'transient' && cls !== 'unavailable' && !isCitusNoPartition(err);
        if (!isUniqueViolation(err) && !citusRefusal) throw asPostgresError(err);
        refused = true;
      }
    }
    if (!refused) {
      advisor.record(duplicates > 0);
      return { inserted: fresh.length, duplicates, path: 'copy' };
    }
  } catch (err) {
    const cls = classifyError(err);
    if (cls === 'transient' || cls === 'unavailable') broken = err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    // A connection that failed mid-protocol is not reused.
    client.release(broken);
  }
  // Keys that exist now (another writer, or a skipped probe), or a Citus refusal without its row's
  // SQLSTATE: the upsert counts exactly, and reports a refused row with its own code.
  advisor.record(true);
  const r = await upsert(rows);
  return { ...r, path: 'fallback' };
}
