/**
 * The ingest path shared by the `ingest` function, the standalone runner and dead-letter replays:
 * validate → write exactly once → hand everything that could not be written to the dead-letter sink.
 * The guarantee "no event is lost" rests on the order here: rows are written first, then every
 * failure is handed to the sink, and any error from the sink propagates so the caller does not
 * checkpoint past the batch.
 */
import type pg from 'pg';
import { DEFAULT_COPY_MIN_ROWS, type HubsinkConfig } from '../config.js';
import { prepareBatch, type PreparedBatch } from '../pipeline/batch.js';
import { deadLetterFromRow } from '../pipeline/deadLetterMessage.js';
import { FAILURE_REASONS, countsFor, type BatchCounts, type DeadLetterRecord, type DeadLetterSink, type FailureReason, type RawEvent } from '../pipeline/types.js';
import { writeEvents, writeOptions } from '../db/events.js';
import { partitionWindow } from '../db/partitions.js';
import type { TenantRegistry } from '../db/tenants.js';

export interface IngestDeps {
  pool: pg.Pool;
  config: Pick<HubsinkConfig, 'schema' | 'retentionDays' | 'partitionsAheadDays' | 'maxBodyBytes' | 'transientRetryMs' | 'upsertChunkSize' | 'copyMinRows'>;
  sink: DeadLetterSink;
  tenants?: TenantRegistry;
  clock?: () => Date;
  sleep?: (ms: number) => Promise<void>;
  onRetry?: (attempt: number, err: unknown) => void;
}

export interface IngestResult extends BatchCounts {
  /** Records handed to the sink, for callers that report or test them. */
  deadLetters: DeadLetterRecord[];
}

export function emptyReasonCounts(): Record<FailureReason, number> {
  return countsFor(FAILURE_REASONS);
}

/**
 * A batch decoded and validated, not yet written: the runner prepares the next batch of a partition
 * while the previous one is being written (checkpointingConsumer.ts), so this is pure CPU, no I/O.
 */
export interface PreparedIngest {
  raws: readonly RawEvent[];
  prepared: PreparedBatch;
  /** The clock when it was prepared: validation's window and the rows' partition window agree on it. */
  now: Date;
  /** Real time when preparing began, for the batch's latency. */
  startedMs: number;
}

export function prepareIngest(deps: Pick<IngestDeps, 'config' | 'clock'>, raws: readonly RawEvent[]): PreparedIngest {
  const startedMs = Date.now();
  const now = (deps.clock ?? (() => new Date()))();
  const { config } = deps;
  const prepared = prepareBatch(
    [...raws],
    { now, retentionDays: config.retentionDays, aheadDays: config.partitionsAheadDays, maxBodyBytes: config.maxBodyBytes },
    now,
    // A batch big enough for COPY gets its COPY text written while it is validated (scanCopy.ts).
    { copy: raws.length >= (config.copyMinRows ?? DEFAULT_COPY_MIN_ROWS) },
  );
  return { raws, prepared, now, startedMs };
}

export async function ingestBatch(deps: IngestDeps, raws: readonly RawEvent[]): Promise<IngestResult> {
  return writePrepared(deps, prepareIngest(deps, raws));
}

/** Writes a prepared batch exactly once, then hands every failure to the sink (see the file's comment). */
export async function writePrepared(deps: IngestDeps, batch: PreparedIngest): Promise<IngestResult> {
  const clock = deps.clock ?? (() => new Date());
  const { config } = deps;
  const { prepared, now, raws } = batch;
  const outcome = await writeEvents(deps.pool, config.schema, prepared.rows, writeOptions(config, {
    // Exactly the window validation accepted: such a row must find (or get) its partition.
    partitionWindow: partitionWindow(now, config.partitionsAheadDays, config.retentionDays),
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
    ...(deps.onRetry ? { onRetry: deps.onRetry } : {}),
    ...(deps.tenants ? { tenants: deps.tenants } : {}),
  }));
  const failedAt = clock();
  const deadLetters: DeadLetterRecord[] = [...prepared.invalid];
  for (const r of outcome.rejected) deadLetters.push(deadLetterFromRow(r.row, 'rejected', r.error, failedAt));
  if (outcome.transient) {
    for (const row of outcome.transient.rows) {
      deadLetters.push({ ...deadLetterFromRow(row, 'transient', outcome.transient.error, failedAt), attempts: outcome.transient.attempts, firstFailureAt: now });
    }
  }
  if (deadLetters.length > 0) await deps.sink.send(deadLetters);
  const deadLettered = emptyReasonCounts();
  for (const d of deadLetters) deadLettered[d.reason] += 1;
  return {
    received: raws.length,
    inserted: outcome.inserted,
    duplicates: outcome.duplicates + prepared.duplicatesInBatch,
    deadLettered,
    latencyMs: Date.now() - batch.startedMs,
    deadLetters,
  };
}

/** One log line per batch, stable keys so it can be queried in Application Insights. */
export function formatCounts(c: BatchCounts, extra: Record<string, string | number> = {}): string {
  const parts: Record<string, string | number> = {
    received: c.received,
    inserted: c.inserted,
    duplicates: c.duplicates,
    ...Object.fromEntries(FAILURE_REASONS.map((r) => [`dl_${r}`, c.deadLettered[r]])),
    latency_ms: c.latencyMs,
    ...extra,
  };
  return Object.entries(parts)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}
