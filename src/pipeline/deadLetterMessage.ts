/**
 * Dead-letter records and their wire format on the dead-letter hub (pure).
 *
 * A dead-letter event carries the original body bytes unchanged and the original application
 * properties, plus hubsink's own properties under the `hubsink.` prefix. AMQP application properties
 * carry only primitives, so other values are encoded (Date → ISO string, bigint → decimal, bytes →
 * base64, objects → JSON) and their original kinds listed in `hubsink.propertyTypes`, which lets
 * fromDeadLetterMessage restore them exactly: nothing is dropped, nothing changes type on a round trip.
 *
 * The Functions host hands application properties over lossily: it lower-cases the first letter of
 * keys and JSON-parses string values ("42" arrives as 42). Hubsink's keys are therefore matched
 * case-insensitively and its string values accepted in parsed form, and original strings the host
 * would parse are marked `string` in propertyTypes so they come back as strings.
 */
import { coerceBigInt, coerceDate, coerceInteger, coerceOffset, copyProperties, setOwn } from './normalize.js';
import { FAILURE_REASONS, type DeadLetterRecord, type EventRow, type FailureReason, type RawEvent, type SourceCoordinates } from './types.js';

export const PREFIX = 'hubsink.';
/** Original properties whose names collide with the prefix travel under this one instead. */
export const ORIGINAL_PREFIX = 'hubsink.original.';
export const MAX_ERROR_BYTES = 4096;

/** hubsink's property names on the wire (after the prefix). */
export const DL = {
  reason: 'reason',
  error: 'error',
  sourceHub: 'sourceHub',
  sourceConsumerGroup: 'sourceConsumerGroup',
  sourcePartition: 'sourcePartition',
  sourceSequenceNumber: 'sourceSequenceNumber',
  sourceOffset: 'sourceOffset',
  sourceEnqueuedTime: 'sourceEnqueuedTime',
  sourcePartitionKey: 'sourcePartitionKey',
  tenantId: 'tenantId',
  eventId: 'eventId',
  attempts: 'attempts',
  firstFailureAt: 'firstFailureAt',
  lastFailureAt: 'lastFailureAt',
  propertyTypes: 'propertyTypes',
} as const;

type PropertyKind = 'string' | 'date' | 'bigint' | 'bytes' | 'json' | 'null' | 'undefined';
const KINDS: ReadonlySet<string> = new Set<PropertyKind>(['string', 'date', 'bigint', 'bytes', 'json', 'null', 'undefined']);

export type WireProperties = Record<string, string | number | boolean>;
export interface DeadLetterMessage {
  body: Buffer;
  properties: WireProperties;
  partitionKey?: string;
}

function copySource(s: SourceCoordinates): SourceCoordinates {
  const out: SourceCoordinates = { ...s, enqueuedTime: new Date(s.enqueuedTime.getTime()) };
  if (out.partitionKey === undefined) delete out.partitionKey;
  return out;
}

export function deadLetterFromRaw(
  raw: RawEvent,
  reason: FailureReason,
  error: string,
  now: Date,
  extra?: { tenantId?: number; eventId?: string },
): DeadLetterRecord {
  const rec: DeadLetterRecord = {
    reason,
    error,
    body: raw.body,
    properties: copyProperties(raw.properties),
    source: copySource(raw.source),
    attempts: 1,
    firstFailureAt: new Date(now.getTime()),
    lastFailureAt: new Date(now.getTime()),
  };
  if (extra?.tenantId !== undefined) rec.tenantId = extra.tenantId;
  if (extra?.eventId !== undefined) rec.eventId = extra.eventId;
  return rec;
}

export function deadLetterFromRow(row: EventRow, reason: FailureReason, error: string, now: Date): DeadLetterRecord {
  return deadLetterFromRaw(row.raw, reason, error, now, { tenantId: row.tenantId, eventId: row.eventId });
}

/** The record after one more failed attempt. */
export function nextAttempt(rec: DeadLetterRecord, error: string, now: Date): DeadLetterRecord {
  return { ...rec, error, attempts: rec.attempts + 1, lastFailureAt: new Date(now.getTime()) };
}

/** At most `max` UTF-8 bytes, cut on a character boundary, marked with … when cut. */
export function truncateUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s, 'utf8') <= max) return s;
  const budget = max - 3; // room for the ellipsis
  let bytes = 0;
  let end = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    const n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (bytes + n > budget) break;
    bytes += n;
    end += ch.length;
  }
  return `${s.slice(0, end)}…`;
}

const YEAR_1 = Date.parse('0001-01-01T00:00:00.000Z');
const YEAR_9999_END = Date.parse('9999-12-31T23:59:59.999Z');

/**
 * A time every reader takes: invalid becomes the epoch, and anything outside years 1–9999 (a forged
 * -1e15, the year 0 that JavaScript reads but PostgreSQL refuses) is clamped into that range.
 */
export function clampDate(d: Date): Date {
  const ms = d.getTime();
  if (Number.isNaN(ms)) return new Date(0);
  return new Date(Math.min(YEAR_9999_END, Math.max(YEAR_1, ms)));
}

function iso(d: Date): string {
  return clampDate(d).toISOString();
}

/** Would the Functions host's lenient JSON parse turn this string into something else? */
function hostWouldParse(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

function jsonOf(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) ?? String(v);
  } catch {
    return String(v);
  }
}

function encodeValue(v: unknown): { value: string | number | boolean; kind?: PropertyKind } {
  if (typeof v === 'string') return hostWouldParse(v) ? { value: v, kind: 'string' } : { value: v };
  if (typeof v === 'number' || typeof v === 'boolean') return { value: v };
  if (v instanceof Date) return { value: Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString(), kind: 'date' };
  if (typeof v === 'bigint') return { value: v.toString(), kind: 'bigint' };
  if (v instanceof Uint8Array) return { value: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'), kind: 'bytes' };
  if (v === null) return { value: 'null', kind: 'null' };
  if (v === undefined) return { value: '', kind: 'undefined' };
  return { value: jsonOf(v), kind: 'json' };
}

export function toDeadLetterMessage(rec: DeadLetterRecord): DeadLetterMessage {
  const properties: WireProperties = {};
  const kinds: Record<string, string> = {};
  for (const key of Object.keys(rec.properties)) {
    const { value, kind } = encodeValue(rec.properties[key]);
    const wireKey = key.toLowerCase().startsWith(PREFIX) ? `${ORIGINAL_PREFIX}${key}` : key;
    setOwn(properties, wireKey, value);
    if (kind) setOwn(kinds, key, kind);
  }
  const own = (name: string, value: string | number | boolean) => setOwn(properties, PREFIX + name, value);
  own(DL.reason, rec.reason);
  own(DL.error, truncateUtf8(rec.error, MAX_ERROR_BYTES));
  own(DL.sourceHub, rec.source.hub);
  own(DL.sourceConsumerGroup, rec.source.consumerGroup);
  own(DL.sourcePartition, rec.source.partitionId);
  own(DL.sourceSequenceNumber, rec.source.sequenceNumber);
  own(DL.sourceOffset, rec.source.offset);
  own(DL.sourceEnqueuedTime, iso(rec.source.enqueuedTime));
  if (rec.source.partitionKey !== undefined) own(DL.sourcePartitionKey, rec.source.partitionKey);
  if (rec.tenantId !== undefined) own(DL.tenantId, rec.tenantId);
  if (rec.eventId !== undefined) own(DL.eventId, rec.eventId);
  own(DL.attempts, rec.attempts);
  own(DL.firstFailureAt, iso(rec.firstFailureAt));
  own(DL.lastFailureAt, iso(rec.lastFailureAt));
  if (Object.keys(kinds).length > 0) own(DL.propertyTypes, JSON.stringify(kinds));
  const msg: DeadLetterMessage = { body: rec.body, properties };
  // Keep a tenant's dead letters together, as its events were on the source hub.
  const partitionKey = rec.tenantId !== undefined ? String(rec.tenantId) : rec.source.partitionKey;
  if (partitionKey !== undefined && partitionKey !== '') msg.partitionKey = partitionKey;
  return msg;
}

/** A string value the host may have JSON-parsed, back as the string it was. */
function asText(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return jsonOf(v);
}

function parseJsonLenient(v: string): unknown {
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
}

function decodeValue(v: unknown, kind: string | undefined): unknown {
  switch (kind) {
    case 'string':
      return asText(v);
    case 'date':
      return coerceDate(v) ?? v;
    case 'bigint':
      return coerceBigInt(typeof v === 'number' ? String(v) : v) ?? v;
    case 'bytes':
      return typeof v === 'string' ? Buffer.from(v, 'base64') : v;
    case 'json':
      return typeof v === 'string' ? parseJsonLenient(v) : v;
    case 'null':
      return null;
    case 'undefined':
      return undefined;
    default:
      return v;
  }
}

function readKinds(v: unknown): Map<string, string> {
  const kinds = new Map<string, string>();
  const obj = typeof v === 'string' ? parseJsonLenient(v) : v;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return kinds;
  for (const [k, kind] of Object.entries(obj as Record<string, unknown>)) {
    if (typeof kind === 'string' && KINDS.has(kind)) kinds.set(k, kind);
  }
  return kinds;
}

/** The inverse of toDeadLetterMessage: the record, with the original properties as they were. */
export function fromDeadLetterMessage(
  body: Buffer,
  properties: Record<string, unknown>,
): { ok: true; record: DeadLetterRecord } | { ok: false; error: string } {
  const ours = new Map<string, unknown>(); // lower-cased name after the prefix → value
  const originals: [string, unknown][] = [];
  for (const key of Object.keys(properties ?? {})) {
    const lower = key.toLowerCase();
    if (lower.startsWith(ORIGINAL_PREFIX)) originals.push([key.slice(ORIGINAL_PREFIX.length), properties[key]]);
    else if (lower.startsWith(PREFIX)) ours.set(lower.slice(PREFIX.length), properties[key]);
    else originals.push([key, properties[key]]);
  }
  const get = (name: string): unknown => ours.get(name.toLowerCase());
  const errors: string[] = [];
  const need = <T>(name: string, value: T | undefined, what: string): T | undefined => {
    if (value === undefined) errors.push(get(name) === undefined ? `${PREFIX}${name}: missing` : `${PREFIX}${name}: must be ${what}`);
    return value;
  };

  const reasonText = asText(get(DL.reason));
  const reason = need(
    DL.reason,
    FAILURE_REASONS.find((r) => r === reasonText),
    `one of ${FAILURE_REASONS.join(', ')}`,
  );
  const error = need(DL.error, asText(get(DL.error)), 'a string');
  const hub = need(DL.sourceHub, asText(get(DL.sourceHub)), 'a string');
  const consumerGroup = need(DL.sourceConsumerGroup, asText(get(DL.sourceConsumerGroup)), 'a string');
  const partitionId = need(DL.sourcePartition, asText(get(DL.sourcePartition)), 'a string');
  const sequenceNumber = need(DL.sourceSequenceNumber, coerceInteger(get(DL.sourceSequenceNumber)), 'an integer');
  const offset = need(DL.sourceOffset, coerceOffset(get(DL.sourceOffset)), 'a string');
  // Times are clamped, not refused: a forged or corrupted time must not make a record unparkable.
  const time = (v: unknown): Date | undefined => {
    const d = coerceDate(v);
    return d === undefined ? undefined : clampDate(d);
  };
  const enqueuedTime = need(DL.sourceEnqueuedTime, time(get(DL.sourceEnqueuedTime)), 'an ISO-8601 time');
  const attemptsRaw = coerceInteger(get(DL.attempts));
  const attempts = need(DL.attempts, attemptsRaw !== undefined && attemptsRaw >= 1 ? attemptsRaw : undefined, 'a positive integer');
  const firstFailureAt = need(DL.firstFailureAt, time(get(DL.firstFailureAt)), 'an ISO-8601 time');
  const lastFailureAt = need(DL.lastFailureAt, time(get(DL.lastFailureAt)), 'an ISO-8601 time');
  let tenantId: number | undefined;
  if (get(DL.tenantId) !== undefined) {
    const t = coerceInteger(get(DL.tenantId));
    tenantId = need(DL.tenantId, t !== undefined && t > 0 ? t : undefined, 'a positive integer');
  }
  const eventId = asText(get(DL.eventId));
  const partitionKey = asText(get(DL.sourcePartitionKey));

  if (
    errors.length > 0 ||
    reason === undefined ||
    error === undefined ||
    hub === undefined ||
    consumerGroup === undefined ||
    partitionId === undefined ||
    sequenceNumber === undefined ||
    offset === undefined ||
    enqueuedTime === undefined ||
    attempts === undefined ||
    firstFailureAt === undefined ||
    lastFailureAt === undefined
  ) {
    return { ok: false, error: `not a hubsink dead letter: ${errors.join('; ')}` };
  }

  const kinds = readKinds(get(DL.propertyTypes));
  const restored: Record<string, unknown> = {};
  for (const [key, value] of originals) {
    // The host lower-cases the first letter of keys, inside propertyTypes as well as outside.
    const kind = kinds.get(key) ?? kinds.get(key.charAt(0).toLowerCase() + key.slice(1));
    setOwn(restored, key, decodeValue(value, kind));
  }

  const source: SourceCoordinates = { hub, consumerGroup, partitionId, sequenceNumber, offset, enqueuedTime };
  if (partitionKey !== undefined) source.partitionKey = partitionKey;
  const record: DeadLetterRecord = {
    reason,
    error,
    body,
    properties: restored,
    source,
    attempts,
    firstFailureAt,
    lastFailureAt,
  };
  if (tenantId !== undefined) record.tenantId = tenantId;
  if (eventId !== undefined) record.eventId = eventId;
  return { ok: true, record };
}
