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
 * sequence values, like INSERT, so the rollup's EXCLUSIVE lock waits for COPY writers too.
 */
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { classifyError, sqlState } from '../pipeline/classify.js';
import type { EventRow } from '../pipeline/types.js';
import { ident } from './ident.js';
import type { Statement } from './statement.js';

/** The columns COPY fills, in the order of copyLine's fields. */
export const COPY_COLUMNS = [
  'tenant_id',
  'event_id',
  'occurred_at',
  'type',
  'session_id',
  'user_id',
  'device_id',
  'url',
  'referrer',
  'campaign_id',
  'country',
  'browser',
  'revenue',
  'properties',
  'source_partition',
  'source_sequence',
  'source_offset',
  'source_enqueued_at',
] as const;

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

const SPECIAL_ALL = /[\\\n\r\t]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const escapeOne = (c: string): string => ESCAPES[c] ?? c;

/**
 * Whether a field may need COPY escapes. Conservative (any code unit up to 13, or a backslash), so
 * the common field skips the replace with one char-code scan instead of a regex call; the replace
 * itself changes only backslash, newline, CR and tab, so the text is the same either way.
 */
function mayNeedEscape(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 13 || c === 92) return true;
  }
  return false;
}

/** One text-format COPY field: backslash escapes, and \N for NULL. Validated text has no NUL. */
function text(s: string | null): string {
  if (s === null) return '\\N';
  return mayNeedEscape(s) ? s.replace(SPECIAL_ALL, escapeOne) : s;
}

/** JSON text never holds raw control characters, only backslash escapes: double the backslashes. */
function json(v: Record<string, unknown> | null): string {
  if (v === null) return '\\N';
  const s = JSON.stringify(v);
  return s.includes('\\') ? s.replaceAll('\\', '\\\\') : s;
}

const PAD2: readonly string[] = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const PAD3: readonly string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

/** `YYYY-MM-DDT` of a day (days since the epoch, 1970–9999), by H. Hinnant's civil-from-days. */
function isoDay(days: number): string {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return `${PAD2[Math.floor(year / 100)]}${PAD2[year % 100]}-${PAD2[month]}-${PAD2[day]}T`;
}

// The events of a batch fall on one or two days: the date part is computed once per day met.
let lastDay = NaN;
let lastDayText = '';

/**
 * Pure: the same text as Date#toISOString for years 1970–9999, several times faster; any other
 * time goes to toISOString.
 */
export function isoUtc(d: Date): string {
  const t = d.getTime();
  if (!(t >= 0 && t < 253402300800000)) return d.toISOString();
  const days = Math.floor(t / 86_400_000);
  if (days !== lastDay) {
    lastDayText = isoDay(days);
    lastDay = days;
  }
  let rem = t - days * 86_400_000;
  const h = Math.floor(rem / 3_600_000);
  rem -= h * 3_600_000;
  const mi = Math.floor(rem / 60_000);
  rem -= mi * 60_000;
  const sec = Math.floor(rem / 1000);
  return `${lastDayText}${PAD2[h]}:${PAD2[mi]}:${PAD2[sec]}.${PAD3[rem - sec * 1000]}Z`;
}

/** One row's COPY text line, `enqueued` being its source's enqueued time already formatted. */
function copyLine(r: EventRow, enqueued: string): string {
  const s = r.raw.source;
  return (
    `${r.tenantId}\t${r.eventId}\t${isoUtc(r.occurredAt)}\t${text(r.type)}\t${text(r.sessionId)}\t${text(r.userId)}\t` +
    `${text(r.deviceId)}\t${text(r.url)}\t${text(r.referrer)}\t${text(r.campaignId)}\t${text(r.country)}\t${text(r.browser)}\t` +
    `${r.revenue === null ? '\\N' : String(r.revenue)}\t${json(r.properties)}\t${text(s.partitionId)}\t${s.sequenceNumber}\t` +
    `${text(s.offset)}\t${enqueued}\n`
  );
}

/** Each row's COPY text line, in order. */
function forEachCopyLine(rows: readonly EventRow[], emit: (line: string) => void): void {
  // Events of one batch often share their enqueued time to the millisecond.
  let lastEnqueuedMs = NaN;
  let lastEnqueued = '';
  for (const r of rows) {
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
 * Pure: encodeCopyText's text as UTF-8 bytes (what COPY is sent), written line by line into one
 * buffer. Cheaper than Buffer.from of the whole text: a 1,000-row text is a rope of some 40,000
 * pieces that would be flattened first; a line is flattened and written while it is in cache.
 */
export function encodeCopyBytes(rows: readonly EventRow[]): Buffer {
  let buf = Buffer.allocUnsafe(Math.max(1024, rows.length * 512));
  let at = 0;
  forEachCopyLine(rows, (line) => {
    // A UTF-16 code unit takes at most 3 bytes of UTF-8 (a surrogate pair, 2 units, takes 4).
    if (buf.length - at < line.length * 3) {
      const grown = Buffer.allocUnsafe(Math.max(buf.length * 2, at + line.length * 3));
      buf.copy(grown, 0, 0, at);
      buf = grown;
    }
    at += buf.write(line, at, 'utf8');
  });
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
 * A key that exists already. Citus reports it from its COPY path as XX000 with the same text
 * (classifyError in pipeline/classify.ts reads it the same way).
 */
export function isUniqueViolation(err: unknown): boolean {
  const state = sqlState(err);
  return state === '23505' || (state === 'XX000' && err instanceof Error && /duplicate key value violates unique constraint/i.test(err.message));
}

const CITUS_NO_PARTITION = /no partition of relation .* found for row/i;

/**
 * Citus reports errors of its COPY path under XX000, where PostgreSQL and the upsert give the row's
 * own SQLSTATE. A missing partition gets the code PostgreSQL uses (23514), so writeEvents creates
 * it as it would for the upsert.
 */
function asPostgresError(err: unknown): unknown {
  if (sqlState(err) !== 'XX000' || !(err instanceof Error) || !CITUS_NO_PARTITION.test(err.message)) return err;
  return Object.assign(new Error(err.message, { cause: err }), { code: '23514' });
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
        const citusRefusal = sqlState(err) === 'XX000' && cls !== 'transient' && cls !== 'unavailable' && !CITUS_NO_PARTITION.test(String((err as Error).message));
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
