/**
 * The idempotent upsert of events. One statement per chunk: the rows travel as one array per
 * column through `unnest`, and `ON CONFLICT ... DO NOTHING` makes redelivery a no-op. Inserted rows
 * are counted with RETURNING because Citus reports rows attempted, not inserted (docs/design.md, "Citus facts").
 */
import type pg from 'pg';
import { DEFAULT_COPY_MIN_ROWS, type HubsinkConfig } from '../config.js';
import { backoffDelay, type BackoffPolicy } from '../pipeline/backoff.js';
import { classifyError, DatabaseUnavailableError, describeError } from '../pipeline/classify.js';
import { isMissingPartition } from '../pipeline/pgErrors.js';
import { EVENT_COLUMNS } from '../pipeline/eventColumns.js';
import type { EventRow } from '../pipeline/types.js';
import { copyChunk } from './copyEvents.js';
import { ident } from './ident.js';
import type { Queryable } from './queryable.js';
import type { Statement } from './statement.js';
import { createDayPartitions, daysInWindow } from './partitionsOnDemand.js';
import type { TenantRegistry } from './tenants.js';

/** Column, array type of its parameter, and how a row supplies the value. Order is the parameter order. */
const COLUMNS: readonly (readonly [column: string, arrayType: string, value: (r: EventRow) => unknown])[] = EVENT_COLUMNS.map((c) => [c.column, `${c.sqlType}[]`, c.value] as const);

/**
 * Pure: the insert of these rows: one array per column, in parameter order. The text is the same
 * for every batch of a schema, so the server can reuse its plan.
 */
export function insertEventsSql(schema: string, rows: readonly EventRow[]): Statement {
  const cols = COLUMNS.map(([c]) => c).join(', ');
  const params = COLUMNS.map(([, t], i) => `$${i + 1}::${t}`).join(', ');
  return {
    text:
      `INSERT INTO ${ident(schema)}.events (${cols}) ` +
      `SELECT * FROM unnest(${params}) ` +
      'ON CONFLICT (tenant_id, event_id, occurred_at) DO NOTHING RETURNING 1',
    values: COLUMNS.map(([, , value]) => rows.map(value)),
  };
}

export async function insertEventRows(
  client: Queryable,
  schema: string,
  rows: readonly EventRow[],
): Promise<{ inserted: number; duplicates: number }> {
  if (rows.length === 0) return { inserted: 0, duplicates: 0 };
  const res = await client.query(insertEventsSql(schema, rows));
  // res.rows, not res.rowCount: on Citus the command tag counts rows attempted.
  const inserted = res.rows.length;
  return { inserted, duplicates: rows.length - inserted };
}

export interface WriteOptions {
  chunkSize: number;
  /**
   * How long transient failures of one statement are retried, counted from its first failure. Per
   * statement, not per call: a second brief blip late in a long (or bisected) batch gets its own.
   */
  transientRetryMs: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  /** In [0, 1); jitter for the backoff. */
  random?: () => number;
  onRetry?: (attempt: number, err: unknown) => void;
  tenants?: TenantRegistry;
  /** Chunks of at least this many rows are written by COPY (copyEvents.ts), smaller ones by the upsert; default HUBSINK_COPY_MIN_ROWS's. */
  copyMinRows?: number;
  /** How each chunk was written, for stats and tests. */
  onChunk?: (path: WritePath, rows: number) => void;
  /**
   * The occurredAt window ingest accepts ([now − retention, now + ahead]). A row in it that finds no
   * partition (23514) gets its day's partition created and is written; without a window such rows
   * are isolated and rejected like any other refused row.
   */
  partitionWindow?: { from: Date; to: Date };
  /** Creates missing daily partitions; createDayPartitions by default. */
  createPartitions?: (days: Date[]) => Promise<string[]>;
}

/** The settings that shape a write. Every writer (ingest, dead letters, replay, import) takes them all. */
export type WriteSettings = Pick<HubsinkConfig, 'upsertChunkSize' | 'transientRetryMs' | 'copyMinRows'>;

/**
 * writeEvents' options from the write settings plus what the caller adds (clock, window, tenants):
 * the one place they are built, so a new setting cannot be left out by one writer (the dead-letter
 * paths once ignored HUBSINK_COPY_MIN_ROWS because their copies of this object lacked it).
 */
export function writeOptions(settings: WriteSettings, rest: Omit<WriteOptions, 'chunkSize' | 'transientRetryMs' | 'copyMinRows'> = {}): WriteOptions {
  return { ...rest, chunkSize: settings.upsertChunkSize, transientRetryMs: settings.transientRetryMs, copyMinRows: settings.copyMinRows };
}

export type WritePath = 'upsert' | 'copy' | 'fallback';

/**
 * One chunk, by the statement the data calls for: the one place that chooses between COPY and the
 * upsert. Both count inserted and duplicate rows exactly; a refusal by the upsert is thrown for
 * writeEvents to bisect.
 */
export async function writeChunk(
  pool: pg.Pool,
  schema: string,
  rows: readonly EventRow[],
  copyMinRows: number,
): Promise<{ inserted: number; duplicates: number; path: WritePath }> {
  if (rows.length === 0 || rows.length < copyMinRows) return { ...(await insertEventRows(pool, schema, rows)), path: 'upsert' };
  return copyChunk(pool, schema, rows, (slice) => insertEventRows(pool, schema, slice));
}

export interface WriteOutcome {
  inserted: number;
  duplicates: number;
  /** Rows the database refused, each isolated by bisection, with the reason. */
  rejected: { row: EventRow; error: string }[];
  /** Set when transient failures outlasted the retry budget: these rows were not written. */
  transient?: { error: string; attempts: number; rows: EventRow[] };
  retries: number;
  /** Partitions created because rows of the accepted window found none. */
  createdPartitions: string[];
}

/** Backoff between transient failures of one statement: short, since the batch waits on it. */
export const WRITE_BACKOFF: BackoffPolicy = { baseMs: 100, capMs: 5_000 };
/** A bound on attempts per statement even if the clock does not move (an injected clock, say). */
export const MAX_ATTEMPTS = 200;

/** Pure: consecutive slices of at most `size`. */
export function chunk<T>(rows: readonly T[], size: number): T[][] {
  if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`chunk size must be a positive integer, got ${String(size)}`);
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Writes rows chunk by chunk. Transient failures are retried with backoff until the statement's
 * budget runs out; then the failing slice and everything after it is handed back in `transient`.
 * When the database cannot be reached at all for that long, DatabaseUnavailableError is thrown
 * instead: every batch would fail alike, so the caller keeps its checkpoint rather than copying the
 * stream onto the dead-letter hub. A chunk the database refuses is halved until the refused rows
 * stand alone; those go to `rejected` and the rest is written, except rows of the accepted window
 * that found no partition: their days are created and the chunk is written whole. Anything else
 * (missing table, permissions) is thrown: retrying rows cannot fix it.
 */
export async function writeEvents(pool: pg.Pool, schema: string, rows: readonly EventRow[], opts: WriteOptions): Promise<WriteOutcome> {
  const sleep = opts.sleep ?? realSleep;
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const createPartitions = opts.createPartitions ?? ((days: Date[]) => createDayPartitions(pool, schema, days));
  const out: WriteOutcome = { inserted: 0, duplicates: 0, rejected: [], retries: 0, createdPartitions: [] };
  // A work list rather than recursion: when the budget runs out, what is left is exactly the
  // current slice plus the list, in order.
  const pending: EventRow[][] = chunk(rows, opts.chunkSize);
  // Days whose partition this call already made sure of: a row still refused there lies outside
  // every partition for another reason and is isolated as usual.
  const ensuredDays = new Set<number>();

  const attemptOnce = async (slice: readonly EventRow[]): Promise<{ inserted: number; duplicates: number }> => {
    if (opts.tenants) await opts.tenants.ensure(pool, schema, slice.map((r) => r.tenantId));
    const r = await writeChunk(pool, schema, slice, opts.copyMinRows ?? DEFAULT_COPY_MIN_ROWS);
    opts.onChunk?.(r.path, slice.length);
    return r;
  };

  for (let slice = pending.shift(); slice !== undefined; slice = pending.shift()) {
    let attempts = 0;
    let firstFailureAt: number | undefined;
    for (;;) {
      attempts++;
      try {
        const r = await attemptOnce(slice);
        out.inserted += r.inserted;
        out.duplicates += r.duplicates;
        break;
      } catch (err) {
        let failure: unknown = err;
        if (opts.partitionWindow && isMissingPartition(err)) {
          const days = daysInWindow(slice.map((r) => r.occurredAt), opts.partitionWindow).filter((d) => !ensuredDays.has(d.getTime()));
          if (days.length > 0) {
            try {
              const created = await createPartitions(days);
              for (const d of days) ensuredDays.add(d.getTime());
              out.createdPartitions.push(...created);
              attempts--; // creating the partition was the fix, not a failed attempt
              continue;
            } catch (ddlErr) {
              // A DDL failure that retrying cannot fix (no privilege, say) must not turn good events
              // into rejected ones: it is thrown, and the batch waits for an operator.
              if (classifyError(ddlErr) === 'fatal' || classifyError(ddlErr) === 'rejected') throw ddlErr;
              failure = ddlErr;
            }
          }
        }
        const cls = classifyError(failure);
        if (cls === 'fatal') throw failure;
        if (cls === 'rejected') {
          const [only] = slice;
          if (slice.length === 1 && only) out.rejected.push({ row: only, error: describeError(failure) });
          else {
            const mid = Math.ceil(slice.length / 2);
            pending.unshift(slice.slice(0, mid), slice.slice(mid));
          }
          break;
        }
        const t = now();
        firstFailureAt ??= t;
        const left = opts.transientRetryMs - (t - firstFailureAt);
        if (left <= 0 || attempts >= MAX_ATTEMPTS) {
          if (cls === 'unavailable') {
            throw new DatabaseUnavailableError(
              `database unreachable for ${t - firstFailureAt} ms (${attempts} attempt(s)), ${[slice, ...pending].flat().length} row(s) not written: ${describeError(failure)}`,
              { cause: failure },
            );
          }
          out.transient = { error: describeError(failure), attempts, rows: [slice, ...pending].flat() };
          return out;
        }
        out.retries++;
        opts.onRetry?.(attempts, failure);
        await sleep(Math.min(left, backoffDelay(attempts, random(), WRITE_BACKOFF)));
      }
    }
  }
  return out;
}

/**
 * Pure: the rows of `events` that may match these keys. The filter is a superset (tenant in the
 * list and event id in the list), which prunes to the tenants' shards on Citus without a join
 * against a function; existingEventKeys keeps the exact matches.
 */
export function existingEventKeysSql(schema: string, keys: readonly { tenantId: number; eventId: string; occurredAt: Date }[]): Statement {
  return {
    text:
      `SELECT tenant_id::text AS tenant_id, event_id::text AS event_id, occurred_at FROM ${ident(schema)}.events ` +
      'WHERE tenant_id = ANY($1::bigint[]) AND event_id = ANY($2::uuid[])',
    values: [[...new Set(keys.map((k) => k.tenantId))], [...new Set(keys.map((k) => k.eventId.toLowerCase()))]],
  };
}

/** Pure: the events key as one comparable string. */
export function eventKey(k: { tenantId: number; eventId: string; occurredAt: Date }): string {
  return `${k.tenantId}|${k.eventId.toLowerCase()}|${k.occurredAt.getTime()}`;
}

export async function existingEventKeys(db: Queryable, schema: string, keys: readonly { tenantId: number; eventId: string; occurredAt: Date }[]): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const wanted = new Set(keys.map(eventKey));
  const st = existingEventKeysSql(schema, keys);
  const { rows } = await db.query<{ tenant_id: string; event_id: string; occurred_at: Date }>(st);
  const found = new Set<string>();
  for (const r of rows) {
    const k = eventKey({ tenantId: Number(r.tenant_id), eventId: r.event_id, occurredAt: r.occurred_at });
    if (wanted.has(k)) found.add(k);
  }
  return found;
}
