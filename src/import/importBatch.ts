/**
 * One batch of an import, from its items to the database: validate (prepareBatch, COPY text written
 * while validating), refuse history beyond --max-age, write (writeEvents), park what is invalid or
 * refused. It records no progress: the importer does, in file order, once every earlier batch is
 * done too. So it can run on the main thread or in a worker thread (importWorker.ts) alike, and a
 * batch done twice (a resume after a kill) is harmless: events and dead letters are keyed.
 */
import type pg from 'pg';
import { DEFAULT_COPY_MIN_ROWS, type HubsinkConfig } from '../config.js';
import type { Capabilities } from '../db/capabilities.js';
import { parkDeadLetters } from '../db/deadLetterParking.js';
import { writeEvents, writeOptions } from '../db/events.js';
import type { TenantRegistry } from '../db/tenants.js';
import { prepareBatch } from '../pipeline/batch.js';
import { deadLetterFromRow } from '../pipeline/deadLetterMessage.js';
import type { DeadLetterRecord, RawEvent } from '../pipeline/types.js';
import type { ImportItem } from './records.js';

/** The source hub of imported events and their dead letters (dlq list shows import/<file>/<line>). */
export const IMPORT_HUB = 'import';
/** The oldest history import accepts at all (ten years: the day rollups' default retention). */
export const MAX_AGE_LIMIT_DAYS = 3650;
export const DAY_MS = 86_400_000;
const IMPORTED_AT = new Date(0);

export type BatchConfig = Pick<
  HubsinkConfig,
  'schema' | 'partitionsAheadDays' | 'maxBodyBytes' | 'transientRetryMs' | 'upsertChunkSize' | 'upsertChunkSet' | 'copyMinRows'
>;

export interface BatchContext {
  config: BatchConfig;
  maxAgeDays: number;
  batchSize: number;
  /** Absent for a dry run. */
  pool?: pg.Pool;
  caps?: Capabilities;
  tenants: TenantRegistry;
}

export interface Counts {
  lines: number;
  inserted: number;
  duplicates: number;
  invalid: number;
  rejected: number;
  /** Dry run only: valid events older than --max-age (a real run stops at the first). */
  tooOld: number;
}

export interface BatchResult {
  counts: Counts;
  /** Epoch ms of the oldest and newest valid event, NaN when there is none. */
  oldest: number;
  newest: number;
  /** Days --max-age needs to take every valid event of the batch. */
  maxAgeNeeded: number;
  partitionsCreated: string[];
  /** Set when the batch must stop the import (too old, the database failing too long): nothing of it was recorded. */
  stopped?: string;
}

export const zeroCounts = (): Counts => ({ lines: 0, inserted: 0, duplicates: 0, invalid: 0, rejected: 0, tooOld: 0 });

/** Pure: the smallest whole --max-age (days) that accepts an event this old (ms). */
export function maxAgeFor(ageMs: number): number {
  return Math.max(0, Math.floor(ageMs / DAY_MS) + 1);
}

/**
 * Rows per write statement of the import. On Citus a COPY pays per shard it touches (a connection
 * and a commit on each, 32 shards by default), so 1,000 rows spread over every shard pay that cost
 * five times per batch of 5,000: there each batch is one COPY, unless HUBSINK_UPSERT_CHUNK says
 * otherwise (docs/bench.md, "Batch for the cluster": 2.4 times the lines per second on a
 * coordinator with two workers). Plain PostgreSQL keeps the setting: its COPY costs per row.
 */
export function importChunkSize(config: Pick<HubsinkConfig, 'upsertChunkSize' | 'upsertChunkSet'>, caps: Pick<Capabilities, 'citus'>, batchSize: number): number {
  if (!caps.citus || config.upsertChunkSet === true) return config.upsertChunkSize;
  return Math.max(config.upsertChunkSize, batchSize);
}

export function rawOf(srcName: string, item: ImportItem): RawEvent {
  return {
    body: item.body,
    properties: {},
    // File and line are the coordinates; the time is fixed (the epoch), neither the import's nor the
    // file's, so a line parked again by a later run, even of a touched file, is the same dead letter.
    source: { hub: IMPORT_HUB, consumerGroup: IMPORT_HUB, partitionId: srcName, sequenceNumber: item.line, offset: String(item.endByte), enqueuedTime: IMPORTED_AT },
  };
}

export async function processBatch(ctx: BatchContext, srcName: string, items: readonly ImportItem[], now: Date): Promise<BatchResult> {
  const cutoff = now.getTime() - ctx.maxAgeDays * DAY_MS;
  const write = ctx.pool !== undefined;
  const readable = items.filter((i) => i.error === undefined);
  // Batches that will be written by COPY get their COPY text written while they are validated (scanCopy.ts).
  const copy = write && readable.length >= (ctx.config.copyMinRows ?? DEFAULT_COPY_MIN_ROWS);
  const prepared = prepareBatch(
    readable.map((i) => rawOf(srcName, i)),
    { now, retentionDays: MAX_AGE_LIMIT_DAYS, aheadDays: ctx.config.partitionsAheadDays, maxBodyBytes: ctx.config.maxBodyBytes },
    now,
    { copy },
  );
  const unreadable: DeadLetterRecord[] = items
    .filter((i) => i.error !== undefined)
    .map((i) => ({ reason: 'invalid', error: i.error ?? '', body: i.body, properties: {}, source: rawOf(srcName, i).source, attempts: 1, firstFailureAt: now, lastFailureAt: now }));
  const result: BatchResult = {
    counts: { lines: items.length, inserted: 0, duplicates: prepared.duplicatesInBatch, invalid: prepared.invalid.length + unreadable.length, rejected: 0, tooOld: 0 },
    oldest: NaN,
    newest: NaN,
    maxAgeNeeded: 0,
    partitionsCreated: [],
  };
  let rows = prepared.rows;
  let firstTooOld: (typeof rows)[number] | undefined;
  for (const r of rows) {
    const t = r.occurredAt.getTime();
    result.maxAgeNeeded = Math.max(result.maxAgeNeeded, maxAgeFor(now.getTime() - t));
    if (!(t >= result.oldest)) result.oldest = t;
    if (!(t <= result.newest)) result.newest = t;
    if (t < cutoff) {
      firstTooOld ??= r;
      result.counts.tooOld++;
    }
  }
  if (firstTooOld) {
    if (write) {
      const age = now.getTime() - firstTooOld.occurredAt.getTime();
      result.counts.tooOld = 0;
      result.stopped =
        `${srcName} line ${firstTooOld.raw.source.sequenceNumber}: occurredAt ${firstTooOld.occurredAt.toISOString()} is ${(age / DAY_MS).toFixed(1)} days old, beyond --max-age ${ctx.maxAgeDays} ` +
        `(events before ${new Date(cutoff).toISOString()} are refused). Nothing of this batch was written; run again with --max-age ${Math.min(MAX_AGE_LIMIT_DAYS, maxAgeFor(age))} or more ` +
        `(at most ${MAX_AGE_LIMIT_DAYS}) to import it: the import resumes here.`;
      return result;
    }
    rows = rows.filter((r) => r.occurredAt.getTime() >= cutoff);
  }
  if (!ctx.pool) return result;
  const pool = ctx.pool;
  const caps = ctx.caps;
  if (!caps) throw new Error('processBatch: caps are required with a pool');
  // Days of history outside the maintained window get their partitions when a row first needs one.
  const partitionWindow = { from: new Date(cutoff), to: new Date(now.getTime() + ctx.config.partitionsAheadDays * DAY_MS) };
  const outcome = await writeEvents(pool, ctx.config.schema, rows, { ...writeOptions(ctx.config, { tenants: ctx.tenants, partitionWindow }), chunkSize: importChunkSize(ctx.config, caps, ctx.batchSize) });
  result.partitionsCreated.push(...outcome.createdPartitions);
  if (outcome.transient) {
    result.stopped = `the database failed for ${ctx.config.transientRetryMs} ms (${outcome.transient.error}); stopped before ${srcName} line ${items[0]?.line ?? '?'}: run again to resume there`;
    return result;
  }
  const rejected = outcome.rejected.map((r) => deadLetterFromRow(r.row, 'rejected', r.error, now));
  const park = [...prepared.invalid, ...unreadable, ...rejected];
  if (park.length > 0) await parkDeadLetters(pool, ctx.config.schema, park);
  result.counts.inserted = outcome.inserted;
  result.counts.duplicates += outcome.duplicates;
  result.counts.rejected = rejected.length;
  return result;
}

/**
 * A batch's items as one buffer of bodies plus their positions, for a worker thread: posting the
 * items themselves would copy each body's whole backing store (a read chunk, a pool slab).
 */
export interface PackedItems {
  bodies: Uint8Array;
  /** Per item: body end in `bodies`, line, unit, endByte. */
  numbers: Float64Array;
  errors: [index: number, error: string][];
}

export function packItems(items: readonly ImportItem[]): PackedItems {
  let size = 0;
  for (const i of items) size += i.body.length;
  const bodies = new Uint8Array(size);
  const numbers = new Float64Array(items.length * 4);
  const errors: [number, string][] = [];
  let at = 0;
  items.forEach((item, k) => {
    bodies.set(item.body, at);
    at += item.body.length;
    numbers[k * 4] = at;
    numbers[k * 4 + 1] = item.line;
    numbers[k * 4 + 2] = item.unit;
    numbers[k * 4 + 3] = item.endByte;
    if (item.error !== undefined) errors.push([k, item.error]);
  });
  return { bodies, numbers, errors };
}

export function unpackItems(p: PackedItems): ImportItem[] {
  const buf = Buffer.from(p.bodies.buffer, p.bodies.byteOffset, p.bodies.byteLength);
  const n = p.numbers.length / 4;
  const items: ImportItem[] = new Array<ImportItem>(n);
  let start = 0;
  for (let k = 0; k < n; k++) {
    const end = p.numbers[k * 4] ?? start;
    items[k] = { body: buf.subarray(start, end), line: p.numbers[k * 4 + 1] ?? 0, unit: p.numbers[k * 4 + 2] ?? 0, endByte: p.numbers[k * 4 + 3] ?? 0 };
    start = end;
  }
  for (const [k, error] of p.errors) {
    const item = items[k];
    if (item) item.error = error;
  }
  return items;
}
