/**
 * What happens to events read from the dead-letter hub, shared by the `deadletter` function and
 * `hubsink dlq replay-hub`:
 *
 * - each event is decoded back into its dead-letter record; one that cannot be decoded is parked as
 *   `invalid` with the decode error, under the dead-letter hub's own coordinates, so it is never lost;
 * - `retry` mode (the function): `transient` records are re-validated and upserted again through the
 *   same write path as ingest; `invalid` and `rejected` records are parked as they are;
 * - `replay` mode (replay-hub, after the operator fixed the cause): every record is re-validated and
 *   upserted; parked rows of what is now written are marked `replayed`;
 * - whatever is still invalid, or refused by the database, is parked (idempotently);
 * - if the database still fails transiently, a TransientDatabaseError is thrown *after* nothing was
 *   lost: the caller must not checkpoint past the batch (the function's retry policy re-invokes it).
 *
 * Writes happen before parks, and both are idempotent, so re-running a batch after any failure is safe.
 */
import type pg from 'pg';
import type { HubsinkConfig } from '../config.js';
import { writeEvents, writeOptions } from '../db/events.js';
import { partitionWindow } from '../db/partitions.js';
import { markReplayedBySourceSql, parkDeadLetters } from '../db/deadLetterParking.js';
import type { TenantRegistry } from '../db/tenants.js';
import { deadLetterFromRaw, fromDeadLetterMessage, nextAttempt } from '../pipeline/deadLetterMessage.js';
import { PARK_REASONS, countsFor, isParkReason, type DeadLetterRecord, type EventRow, type ParkReason, type RawEvent } from '../pipeline/types.js';
import { validateEvent } from '../pipeline/validate.js';
import { classifyError, DatabaseUnavailableError, describeError } from '../pipeline/classify.js';
import { HubsinkError } from '../errors.js';

export type DeadLetterMode = 'retry' | 'replay';

export interface DeadLetterDeps {
  pool: pg.Pool;
  config: Pick<HubsinkConfig, 'schema' | 'retentionDays' | 'partitionsAheadDays' | 'maxBodyBytes' | 'transientRetryMs' | 'upsertChunkSize' | 'copyMinRows'>;
  tenants?: TenantRegistry;
  clock?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

/** The events write of both dead-letter paths (retry and replay), with the app's write settings. */
export function writeDeadLetterRows(deps: DeadLetterDeps, rows: EventRow[], now: Date): ReturnType<typeof writeEvents> {
  const { config } = deps;
  return writeEvents(
    deps.pool,
    config.schema,
    rows,
    writeOptions(config, {
      partitionWindow: partitionWindow(now, config.partitionsAheadDays, config.retentionDays),
      ...(deps.sleep ? { sleep: deps.sleep } : {}),
      ...(deps.tenants ? { tenants: deps.tenants } : {}),
    }),
  );
}

export interface DeadLetterCounts {
  received: number;
  /** Dead letters that could not be decoded (parked as invalid). */
  undecodable: number;
  /** Records re-validated and sent to the write path. */
  rewritten: number;
  inserted: number;
  /** Written rows that were already in `events`. */
  duplicates: number;
  /** Newly parked, by reason. */
  parked: Record<ParkReason, number>;
  /** Parked before (a redelivered dead letter): left as they are. */
  alreadyParked: number;
  /** replay mode: parked rows marked replayed because their event is now written. */
  markedReplayed: number;
}

/** Thrown when the database still fails transiently: nothing of the batch may be checkpointed past. */
export class TransientDatabaseError extends HubsinkError {
  readonly kind = 'unavailable';
  override name = 'TransientDatabaseError';
  constructor(
    message: string,
    readonly pending: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Pure: a dead-letter-hub event that is not a hubsink dead letter, as a record to park. */
export function undecodableRecord(raw: RawEvent, error: string, now: Date): DeadLetterRecord {
  return deadLetterFromRaw(raw, 'invalid', `undecodable dead letter: ${error}`, now);
}

/** Pure: decodes a batch of dead-letter-hub events. */
export function decodeDeadLetters(raws: readonly RawEvent[], now: Date): { records: DeadLetterRecord[]; undecodable: DeadLetterRecord[] } {
  const records: DeadLetterRecord[] = [];
  const undecodable: DeadLetterRecord[] = [];
  for (const raw of raws) {
    // Whatever a property holds, decoding one event never throws out of the batch.
    let d: ReturnType<typeof fromDeadLetterMessage>;
    try {
      d = fromDeadLetterMessage(raw.body, raw.properties);
    } catch (err) {
      d = { ok: false, error: describeError(err) };
    }
    if (d.ok) records.push(d.record);
    else undecodable.push(undecodableRecord(raw, d.error, now));
  }
  return { records, undecodable };
}

/** Pure: which records are written again and which are parked as they are. */
export function planDeadLetters(records: readonly DeadLetterRecord[], mode: DeadLetterMode): { rewrite: DeadLetterRecord[]; park: DeadLetterRecord[] } {
  if (mode === 'replay') return { rewrite: [...records], park: [] };
  return { rewrite: records.filter((r) => !isParkReason(r.reason)), park: records.filter((r) => isParkReason(r.reason)) };
}

/** The event a record carries, as the validator takes it. */
export function rawOf(rec: DeadLetterRecord): RawEvent {
  return { body: rec.body, properties: rec.properties, source: rec.source };
}

export async function processDeadLetters(deps: DeadLetterDeps, raws: readonly RawEvent[], mode: DeadLetterMode): Promise<DeadLetterCounts> {
  const clock = deps.clock ?? (() => new Date());
  const now = clock();
  const { config } = deps;
  const counts: DeadLetterCounts = {
    received: raws.length,
    undecodable: 0,
    rewritten: 0,
    inserted: 0,
    duplicates: 0,
    parked: countsFor(PARK_REASONS),
    alreadyParked: 0,
    markedReplayed: 0,
  };
  const { records, undecodable } = decodeDeadLetters(raws, now);
  counts.undecodable = undecodable.length;
  const plan = planDeadLetters(records, mode);
  const toPark: DeadLetterRecord[] = [...undecodable, ...plan.park];

  // Re-validate with today's code and settings: the retention window has moved since the first try.
  const rows: EventRow[] = [];
  const recordOf = new Map<EventRow, DeadLetterRecord>();
  for (const rec of plan.rewrite) {
    const v = validateEvent(rawOf(rec), { now, retentionDays: config.retentionDays, aheadDays: config.partitionsAheadDays, maxBodyBytes: config.maxBodyBytes });
    if (v.ok) {
      rows.push(v.row);
      recordOf.set(v.row, rec);
    } else {
      const parked: DeadLetterRecord = { ...nextAttempt(rec, v.error, now), reason: 'invalid' };
      if (v.tenantId !== undefined) parked.tenantId = v.tenantId;
      if (v.eventId !== undefined) parked.eventId = v.eventId;
      toPark.push(parked);
    }
  }
  counts.rewritten = rows.length;

  if (rows.length > 0) {
    const out = await writeDeadLetterRows(deps, rows, now).catch((err: unknown) => {
      if (!(err instanceof DatabaseUnavailableError)) throw err;
      throw new TransientDatabaseError(`database still unavailable: ${err.message}`, rows.length, { cause: err });
    });
    counts.inserted = out.inserted;
    counts.duplicates = out.duplicates;
    if (out.transient) {
      throw new TransientDatabaseError(
        `database still unavailable after ${out.transient.attempts} attempt(s): ${out.transient.error}; ${out.transient.rows.length} event(s) not yet written`,
        out.transient.rows.length,
      );
    }
    const failedAt = clock();
    for (const r of out.rejected) {
      const rec = recordOf.get(r.row);
      const base = rec ?? deadLetterFromRaw(r.row.raw, 'rejected', r.error, failedAt);
      toPark.push({ ...nextAttempt(base, r.error, failedAt), reason: 'rejected', tenantId: r.row.tenantId, eventId: r.row.eventId });
    }
    if (mode === 'replay') {
      const rejected = new Set(out.rejected.map((r) => r.row));
      const written = rows.filter((r) => !rejected.has(r)).map((r) => recordOf.get(r)).filter((r): r is DeadLetterRecord => r !== undefined);
      if (written.length > 0) {
        const st = markReplayedBySourceSql(config.schema, written, 'replayed from the dead-letter hub');
        const res = await deps.pool.query(st);
        counts.markedReplayed = res.rows.length;
      }
    }
  }

  if (toPark.length > 0) {
    let p: Awaited<ReturnType<typeof parkDeadLetters>>;
    try {
      p = await parkDeadLetters(deps.pool, config.schema, toPark);
    } catch (err) {
      const cls = classifyError(err);
      if (cls !== 'transient' && cls !== 'unavailable') throw err;
      throw new TransientDatabaseError(`database unavailable, ${toPark.length} dead letter(s) not yet parked: ${describeError(err)}`, toPark.length, { cause: err });
    }
    counts.parked = p.byReason;
    counts.alreadyParked = p.alreadyParked;
  }
  return counts;
}

/** One log line per batch, stable keys so it can be queried in Application Insights. */
export function formatDeadLetterCounts(c: DeadLetterCounts): string {
  return [
    `received=${c.received}`,
    `undecodable=${c.undecodable}`,
    `rewritten=${c.rewritten}`,
    `inserted=${c.inserted}`,
    `duplicates=${c.duplicates}`,
    `parked_invalid=${c.parked.invalid}`,
    `parked_rejected=${c.parked.rejected}`,
    `already_parked=${c.alreadyParked}`,
    ...(c.markedReplayed > 0 ? [`marked_replayed=${c.markedReplayed}`] : []),
  ].join(' ');
}
