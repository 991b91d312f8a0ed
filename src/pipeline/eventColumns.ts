/**
 * The columns of `events` the write path fills, and the event field each comes from: the one table
 * the upsert (db/events.ts), COPY (db/copyEvents.ts), validation (validate.ts, fastValidate.ts,
 * scanCopy.ts) and the CSV import (import/csvMap.ts) read. Adding a field to EventRow is a compile
 * error here until its column is given; the places that name fields one by one for speed (copyLine,
 * the scanner, the validators) carry compile-time or unit-test checks against this table.
 * Pure data.
 */
import type { EventRow } from './types.js';

export const MAX_TYPE_CHARS = 64;
export const MAX_TEXT_CHARS = 256;
export const MAX_URL_CHARS = 2048;

/** An EventRow field taken from the event itself (everything but the raw event). */
export type EventField = Exclude<keyof EventRow, 'raw'>;

export interface EventColumn {
  column: string;
  /** PostgreSQL type of the column; the upsert binds an array of it. */
  sqlType: string;
  /** The value the upsert binds for a row. */
  value: (r: EventRow) => unknown;
  /** Text fields: the most characters validation accepts. */
  maxChars?: number;
}

/** Keyed by field, in COPY column order. */
export const EVENT_FIELD_COLUMNS = {
  tenantId: { column: 'tenant_id', sqlType: 'bigint', value: (r) => r.tenantId },
  eventId: { column: 'event_id', sqlType: 'uuid', value: (r) => r.eventId },
  occurredAt: { column: 'occurred_at', sqlType: 'timestamptz', value: (r) => r.occurredAt.toISOString() },
  type: { column: 'type', sqlType: 'text', value: (r) => r.type, maxChars: MAX_TYPE_CHARS },
  sessionId: { column: 'session_id', sqlType: 'text', value: (r) => r.sessionId, maxChars: MAX_TEXT_CHARS },
  userId: { column: 'user_id', sqlType: 'text', value: (r) => r.userId, maxChars: MAX_TEXT_CHARS },
  deviceId: { column: 'device_id', sqlType: 'text', value: (r) => r.deviceId, maxChars: MAX_TEXT_CHARS },
  url: { column: 'url', sqlType: 'text', value: (r) => r.url, maxChars: MAX_URL_CHARS },
  referrer: { column: 'referrer', sqlType: 'text', value: (r) => r.referrer, maxChars: MAX_URL_CHARS },
  campaignId: { column: 'campaign_id', sqlType: 'text', value: (r) => r.campaignId, maxChars: MAX_TEXT_CHARS },
  country: { column: 'country', sqlType: 'text', value: (r) => r.country, maxChars: MAX_TEXT_CHARS },
  browser: { column: 'browser', sqlType: 'text', value: (r) => r.browser, maxChars: MAX_TEXT_CHARS },
  // As text so no digit is lost between JavaScript and numeric.
  revenue: { column: 'revenue', sqlType: 'numeric', value: (r) => (r.revenue === null ? null : String(r.revenue)) },
  // JSON text per element: pg would otherwise serialize a nested object as a PostgreSQL array/record.
  properties: { column: 'properties', sqlType: 'jsonb', value: (r) => (r.properties === null ? null : JSON.stringify(r.properties)) },
} as const satisfies Record<EventField, EventColumn>;

/** The columns that record where the event came from, after the event's own. */
const SOURCE_COLUMNS: readonly EventColumn[] = [
  { column: 'source_partition', sqlType: 'text', value: (r) => r.raw.source.partitionId },
  { column: 'source_sequence', sqlType: 'bigint', value: (r) => r.raw.source.sequenceNumber },
  { column: 'source_offset', sqlType: 'text', value: (r) => r.raw.source.offset },
  { column: 'source_enqueued_at', sqlType: 'timestamptz', value: (r) => r.raw.source.enqueuedTime.toISOString() },
];

/** Every column the write path fills, in COPY order: copyLine writes exactly these (db-copy-encode test). */
export const EVENT_COLUMNS: readonly EventColumn[] = [...Object.values<EventColumn>(EVENT_FIELD_COLUMNS), ...SOURCE_COLUMNS];
export const EVENT_COLUMN_NAMES: readonly string[] = EVENT_COLUMNS.map((c) => c.column);
export const EVENT_FIELDS = Object.keys(EVENT_FIELD_COLUMNS) as EventField[];

/** The most characters a text field may hold (0 for a field that is not text). */
export function maxCharsOf(field: EventField): number {
  const c: EventColumn = EVENT_FIELD_COLUMNS[field];
  return c.maxChars ?? 0;
}

/** `true` only when A and B are the same set of names: `const _check: SameNames<A, B> = true`. */
export type SameNames<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
