/**
 * Shapes shared by the pipeline, the database layer and the Event Hubs layer. Pure data, no I/O.
 */

/**
 * Why an event did not reach `events`. See docs/design.md, "Failure classes". The one list: the
 * type, the telemetry attributes and every per-reason record and log field derive from it, and
 * FAILURE_HANDLING makes adding a reason a compile error until its fate is decided.
 */
export const FAILURE_REASONS = ['invalid', 'rejected', 'transient'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/**
 * What the `deadletter` function does with each reason: `park` in `dead_letters` (retrying cannot
 * fix it; the table's reason constraint lists exactly these) or `retry` with backoff.
 */
export const FAILURE_HANDLING = { invalid: 'park', rejected: 'park', transient: 'retry' } as const satisfies Record<FailureReason, 'park' | 'retry'>;
export type ParkReason = { [R in FailureReason]: (typeof FAILURE_HANDLING)[R] extends 'park' ? R : never }[FailureReason];
export const isParkReason = (r: FailureReason): r is ParkReason => FAILURE_HANDLING[r] === 'park';
export const PARK_REASONS: readonly ParkReason[] = FAILURE_REASONS.filter(isParkReason);

/** A record with one entry per key, in the keys' order (so log lines keep their field order). */
export function perKey<K extends string, V>(keys: readonly K[], value: (key: K) => V): Record<K, V> {
  return Object.fromEntries(keys.map((k) => [k, value(k)])) as Record<K, V>;
}

/** Zero per reason: `countsFor(FAILURE_REASONS)` or `countsFor(PARK_REASONS)`. */
export function countsFor<K extends string>(keys: readonly K[]): Record<K, number> {
  return perKey(keys, () => 0);
}

/** `invalid:1,rejected:0,...` in the keys' order, for the key=value log lines. */
export function formatPerKey<K extends string>(keys: readonly K[], counts: Readonly<Record<K, number>>): string {
  return keys.map((k) => `${k}:${counts[k]}`).join(',');
}

export function sumOf<K extends string>(counts: Readonly<Record<K, number>>): number {
  let n = 0;
  for (const v of Object.values<number>(counts)) n += v;
  return n;
}

/** Where an event came from. Offsets are opaque strings: never parse them as numbers. */
export interface SourceCoordinates {
  hub: string;
  consumerGroup: string;
  partitionId: string;
  /** Event Hubs sequence numbers are int64; values stay far below 2^53 in practice. */
  sequenceNumber: number;
  offset: string;
  enqueuedTime: Date;
  partitionKey?: string;
}

/** One event as received: the exact body bytes and application properties, plus coordinates. */
export interface RawEvent {
  body: Buffer;
  properties: Record<string, unknown>;
  source: SourceCoordinates;
}

/** A validated event, ready to be written. Column names in comments. */
export interface EventRow {
  tenantId: number; // tenant_id (distribution column)
  eventId: string; // event_id (uuid)
  type: string; // type
  occurredAt: Date; // occurred_at (partition key)
  sessionId: string | null;
  userId: string | null;
  deviceId: string | null;
  url: string | null;
  referrer: string | null;
  campaignId: string | null;
  country: string | null;
  browser: string | null;
  revenue: number | null;
  properties: Record<string, unknown> | null;
  /** The raw event this row came from, kept so a refused row can be dead-lettered byte-exact. */
  raw: RawEvent;
}

/** What goes to the dead-letter hub and, for poison, into `dead_letters`. */
export interface DeadLetterRecord {
  reason: FailureReason;
  error: string;
  body: Buffer;
  /** The original application properties, unchanged. */
  properties: Record<string, unknown>;
  tenantId?: number;
  eventId?: string;
  source: SourceCoordinates;
  attempts: number;
  firstFailureAt: Date;
  lastFailureAt: Date;
}

/** Port through which the ingest path hands over what it cannot write. Must throw if it cannot. */
export interface DeadLetterSink {
  send(records: readonly DeadLetterRecord[]): Promise<void>;
}

/** Per-batch figures, logged and returned by the ingest handler. */
export interface BatchCounts {
  received: number;
  inserted: number;
  duplicates: number;
  deadLettered: Record<FailureReason, number>;
  latencyMs: number;
}
