/**
 * Counters of a running runner, for the live status of `hubsink run` and `hubsink local`. Plain
 * numbers, updated after each handled batch; the status views compute rates from two snapshots.
 */
import type { DeadLetterCounts } from '../deadLetters/process.js';
import type { IngestResult } from '../ingest/ingestBatch.js';
import { FAILURE_REASONS, PARK_REASONS, countsFor, formatPerKey, type FailureReason, type ParkReason } from '../pipeline/types.js';

export interface RunnerStats {
  startedAt: number;
  ingest: {
    batches: number;
    received: number;
    inserted: number;
    duplicates: number;
    deadLettered: Record<FailureReason, number>;
    /** Failed attempts of whole batches (each retried until it succeeds). */
    failedAttempts: number;
    lastBatchAt: number | null;
    partitions: string[];
  };
  // Spelled as in the `hubsink run --json` status lines, which print this record as it is.
  deadletter: {
    enabled: boolean;
    batches: number;
    received: number;
    rewritten: number;
    inserted: number;
    parked: Record<ParkReason, number>;
    alreadyParked: number;
    failedAttempts: number;
    partitions: string[];
  };
  rollups: {
    enabled: boolean;
    runs: number;
    failures: number;
    /** Events folded into rollups by this process. */
    folded: number;
    lastRunAt: number | null;
    lastError: string | null;
  };
}

export function emptyStats(now: number, opts: { deadLetter: boolean; rollups: boolean }): RunnerStats {
  return {
    startedAt: now,
    ingest: { batches: 0, received: 0, inserted: 0, duplicates: 0, deadLettered: countsFor(FAILURE_REASONS), failedAttempts: 0, lastBatchAt: null, partitions: [] },
    deadletter: { enabled: opts.deadLetter, batches: 0, received: 0, rewritten: 0, inserted: 0, parked: countsFor(PARK_REASONS), alreadyParked: 0, failedAttempts: 0, partitions: [] },
    rollups: { enabled: opts.rollups, runs: 0, failures: 0, folded: 0, lastRunAt: null, lastError: null },
  };
}

export function addIngest(s: RunnerStats, r: IngestResult, now: number): void {
  s.ingest.batches++;
  s.ingest.received += r.received;
  s.ingest.inserted += r.inserted;
  s.ingest.duplicates += r.duplicates;
  for (const k of FAILURE_REASONS) s.ingest.deadLettered[k] += r.deadLettered[k];
  s.ingest.lastBatchAt = now;
}

export function addDeadLetters(s: RunnerStats, c: DeadLetterCounts): void {
  s.deadletter.batches++;
  s.deadletter.received += c.received;
  s.deadletter.rewritten += c.rewritten;
  s.deadletter.inserted += c.inserted;
  s.deadletter.parked.invalid += c.parked.invalid;
  s.deadletter.parked.rejected += c.parked.rejected;
  s.deadletter.alreadyParked += c.alreadyParked;
}

/** A deep copy, so a status view can diff two moments. */
export function snapshot(s: RunnerStats): RunnerStats {
  return structuredClone(s);
}

/** Pure: one plain status line (for logs and non-TTY output). */
export function statusLine(cur: RunnerStats, prev: RunnerStats | undefined, elapsedMs: number): string {
  const rate = prev && elapsedMs > 0 ? ((cur.ingest.received - prev.ingest.received) * 1000) / elapsedMs : undefined;
  const dl = cur.ingest.deadLettered;
  const parts = [
    `in=${cur.ingest.received}`,
    ...(rate !== undefined ? [`rate=${rate.toFixed(0)}/s`] : []),
    `inserted=${cur.ingest.inserted}`,
    `duplicates=${cur.ingest.duplicates}`,
    `dead_lettered=${formatPerKey(FAILURE_REASONS, dl)}`,
    `partitions=${cur.ingest.partitions.join(',') || '-'}`,
  ];
  if (cur.ingest.failedAttempts > 0) parts.push(`failed_attempts=${cur.ingest.failedAttempts}`);
  if (cur.deadletter.enabled) {
    const d = cur.deadletter;
    parts.push(`dlq_in=${d.received}`, `dlq_inserted=${d.inserted}`, `parked=${formatPerKey(PARK_REASONS, d.parked)}`);
  }
  if (cur.rollups.enabled) parts.push(`rollup_runs=${cur.rollups.runs}`, `rolled_up=${cur.rollups.folded}`);
  return parts.join(' ');
}
