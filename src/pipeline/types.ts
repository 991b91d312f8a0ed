/**
 * Shapes shared by the pipeline, the database layer and the Event Hubs layer. Pure data, no I/O.
 */

/** Why an event did not reach `events`. See docs/design.md, "Failure classes". */
export type FailureReason = 'invalid' | 'rejected' | 'transient';
export const FAILURE_REASONS: readonly FailureReason[] = ['invalid', 'rejected', 'transient'];

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
