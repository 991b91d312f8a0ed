/**
 * `hubsink dlq replay`: parked events are re-validated with today's code and settings; what is
 * valid is upserted through the ingest write path (idempotent, so a replay twice, or of an event that
 * arrived again meanwhile, inserts nothing) and marked `replayed` with its outcome; what is still
 * invalid or refused stays parked with the new error. A dry run does the reading and validating and
 * reports, but changes nothing.
 *
 * Rows are taken in id order, a page at a time (keyset paging, so rows left parked do not come back
 * within one run). A transient database failure stops the replay; what was done stays done.
 */
import { countDeadLetters, fetchDeadLetters, markReplayed, markReplayFailed, type DeadLetterFilter, type DeadLetterStatus, type ParkedDeadLetter } from '../db/deadLetterQueries.js';
import { eventKey, existingEventKeys } from '../db/events.js';
import { PARK_REASONS, countsFor, type EventRow, type ParkReason, type RawEvent } from '../pipeline/types.js';
import { validateEvent } from '../pipeline/validate.js';
import { writeDeadLetterRows, type DeadLetterDeps } from './process.js';

export type ReplayOutcome = 'inserted' | 'already present' | `still ${ParkReason}`;

/** The summary's count per reason a replay can still fail with (its JSON names stay as they were). */
export const STILL_FIELD = { invalid: 'stillInvalid', rejected: 'stillRejected' } as const satisfies Record<ParkReason, string>;

export interface ReplayItem {
  id: number;
  outcome: ReplayOutcome;
  /** Dry run: what would happen. */
  wouldBe?: boolean;
  error?: string;
}

export interface ReplaySummary extends Record<(typeof STILL_FIELD)[ParkReason], number> {
  dryRun: boolean;
  selected: number;
  processed: number;
  inserted: number;
  alreadyPresent: number;
  /** Set when the replay stopped early (database unavailable). */
  stoppedBy?: string;
}

export interface ReplayOptions {
  filter: Omit<DeadLetterFilter, 'afterId'>;
  dryRun: boolean;
  pageSize: number;
  /** At most this many rows. */
  limit?: number;
  onTotal?: (total: number) => void;
  onProgress?: (n: number) => void;
  onItem?: (item: ReplayItem) => void;
}

function rawOfParked(p: ParkedDeadLetter): RawEvent {
  const source: RawEvent['source'] = {
    hub: p.source.hub,
    consumerGroup: p.source.consumerGroup,
    partitionId: p.source.partitionId,
    sequenceNumber: p.source.sequenceNumber,
    offset: p.source.offset,
    enqueuedTime: p.source.enqueuedTime,
  };
  if (p.source.partitionKey !== null) source.partitionKey = p.source.partitionKey;
  return { body: p.body, properties: p.properties, source };
}

export function failed(summary: ReplaySummary): boolean {
  return PARK_REASONS.some((r) => summary[STILL_FIELD[r]] > 0) || summary.stoppedBy !== undefined;
}

export async function replayParked(deps: DeadLetterDeps, opts: ReplayOptions): Promise<ReplaySummary> {
  const { config } = deps;
  const clock = deps.clock ?? (() => new Date());
  const status: DeadLetterStatus = opts.filter.status ?? 'parked';
  const filter: DeadLetterFilter = { ...opts.filter, status };
  const total = Math.min(await countDeadLetters(deps.pool, config.schema, filter), opts.limit ?? Number.MAX_SAFE_INTEGER);
  opts.onTotal?.(total);
  const summary: ReplaySummary = { dryRun: opts.dryRun, selected: total, processed: 0, inserted: 0, alreadyPresent: 0, ...countsFor(PARK_REASONS.map((r) => STILL_FIELD[r])) };
  let afterId = 0;
  // Bounded: every page moves afterId forward and the total is known.
  while (summary.processed < total) {
    const want = Math.min(opts.pageSize, total - summary.processed);
    const page = await fetchDeadLetters(deps.pool, config.schema, { ...filter, afterId }, want);
    if (page.length === 0) break;
    afterId = page[page.length - 1]?.id ?? afterId;
    const now = clock();

    const rows: EventRow[] = [];
    const parkedOf = new Map<EventRow, ParkedDeadLetter>();
    const failures: { id: number; reason: ParkReason; error: string }[] = [];
    for (const p of page) {
      const v = validateEvent(rawOfParked(p), { now, retentionDays: config.retentionDays, aheadDays: config.partitionsAheadDays, maxBodyBytes: config.maxBodyBytes });
      if (!v.ok) failures.push({ id: p.id, reason: 'invalid', error: v.error });
      else if (p.tenantId !== null && v.row.tenantId !== p.tenantId) {
        // Anyone who can send to the dead-letter hub can forge the tenant a dead letter is parked
        // under: `--tenant X` must never write another tenant's rows, so the event stays parked.
        failures.push({ id: p.id, reason: 'invalid', error: `tenant mismatch: parked as tenant ${p.tenantId}, but the event is for tenant ${v.row.tenantId}; not replayed` });
      } else {
        rows.push(v.row);
        parkedOf.set(v.row, p);
      }
    }

    // Two parked rows may carry the same event (a producer sent it twice): the first inserts it.
    const present = await existingEventKeys(deps.pool, config.schema, rows);
    const outcomeOf = (r: EventRow): ReplayOutcome => {
      const key = eventKey(r);
      if (present.has(key)) return 'already present';
      present.add(key);
      return 'inserted';
    };
    const done: { id: number; outcome: ReplayOutcome }[] = [];
    if (opts.dryRun) {
      for (const r of rows) done.push({ id: parkedOf.get(r)?.id ?? -1, outcome: outcomeOf(r) });
    } else if (rows.length > 0) {
      const out = await writeDeadLetterRows(deps, rows, now);
      const refused = new Set(out.rejected.map((r) => r.row));
      const notWritten = new Set(out.transient?.rows ?? []);
      for (const r of out.rejected) failures.push({ id: parkedOf.get(r.row)?.id ?? -1, reason: 'rejected', error: r.error });
      for (const r of rows) {
        if (refused.has(r) || notWritten.has(r)) continue;
        done.push({ id: parkedOf.get(r)?.id ?? -1, outcome: outcomeOf(r) });
      }
      if (out.transient) summary.stoppedBy = `database unavailable: ${out.transient.error}`;
    }

    if (!opts.dryRun) {
      await markReplayed(deps.pool, config.schema, done, status);
      await markReplayFailed(deps.pool, config.schema, failures, status);
    }
    for (const d of done) {
      if (d.outcome === 'inserted') summary.inserted++;
      else summary.alreadyPresent++;
      opts.onItem?.({ id: d.id, outcome: d.outcome, ...(opts.dryRun ? { wouldBe: true } : {}) });
    }
    for (const f of failures) {
      summary[STILL_FIELD[f.reason]]++;
      opts.onItem?.({ id: f.id, outcome: `still ${f.reason}`, error: f.error, ...(opts.dryRun ? { wouldBe: true } : {}) });
    }
    const n = done.length + failures.length;
    summary.processed += n;
    opts.onProgress?.(n);
    if (summary.stoppedBy) break;
    if (page.length < want) break;
  }
  return summary;
}
