/**
 * Turns what a trigger hands us into RawEvents: the exact body bytes, the application properties and
 * the source coordinates. Pure; never throws on odd metadata, because a batch whose metadata we cannot
 * read must still be validated, written or dead-lettered (docs/design.md, guarantee 1): unknown coordinates
 * fall back to partition 'unknown', sequence -1, offset '' and an enqueued time of the epoch.
 *
 * The Functions host's metadata has quirks (docs/design.md, "Functions host facts"): keys are camel-cased (first letter
 * lower-cased), numeric-looking strings are JSON-parsed (an offset may be a number), int64 values may be
 * `{low, high, unsigned}` objects, times may lack a `Z`, and empty strings are dropped from string
 * arrays, so per-event arrays may be shorter than the batch and misaligned. `systemPropertiesArray[i]`
 * is the aligned source; the other arrays are trusted only when their length equals the batch length.
 */
import type { RawEvent, SourceCoordinates } from './types.js';

export const UNKNOWN_PARTITION = 'unknown';
export const UNKNOWN_SEQUENCE = -1;
export const UNKNOWN_OFFSET = '';
export const UNKNOWN_TIME_MS = 0;

type Dict = Record<string, unknown>;

function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Date);
}

/** `defineProperty` rather than assignment, so a key named `__proto__` stays an ordinary own key. */
export function setOwn(target: Dict, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Keys compared the way the host may have mangled them: case and punctuation ignored. */
function looseKey(key: string): string {
  return key.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** The first present value among `names` (compared loosely), or undefined. */
function pick(obj: unknown, names: readonly string[]): unknown {
  if (!isDict(obj)) return undefined;
  const byLoose = new Map<string, unknown>();
  for (const key of Object.keys(obj)) {
    const lk = looseKey(key);
    if (!byLoose.has(lk)) byLoose.set(lk, obj[key]);
  }
  for (const name of names) {
    const v = byLoose.get(looseKey(name));
    if (v !== undefined && v !== null) return v;
  }
  return undefined;
}

/** The host JSON-encodes some values; a string that parses to an object or array is read as such. */
function maybeJson(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const t = v.trim();
  if (!(t.startsWith('{') || t.startsWith('['))) return v;
  try {
    return JSON.parse(t) as unknown;
  } catch {
    return v;
  }
}

function isLong(v: unknown): v is { low: number; high: number; unsigned?: boolean } {
  return isDict(v) && typeof v.low === 'number' && typeof v.high === 'number';
}

/** int64 in any of the forms the host or SDK produce, as an exact bigint; undefined if unreadable. */
export function coerceBigInt(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : undefined;
  if (typeof v === 'string') return /^-?[0-9]{1,20}$/.test(v.trim()) ? BigInt(v.trim()) : undefined;
  if (isLong(v)) {
    const bits = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
    return v.unsigned === true ? BigInt.asUintN(64, bits) : BigInt.asIntN(64, bits);
  }
  return undefined;
}

/** A sequence number or count as a safe integer, or undefined. */
export function coerceInteger(v: unknown): number | undefined {
  const b = coerceBigInt(v);
  if (b === undefined) return undefined;
  const n = Number(b);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Offsets are opaque: keep strings as they are, and write numbers back out without interpreting them. */
export function coerceOffset(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'bigint') return v.toString();
  if (isLong(v)) return coerceBigInt(v)?.toString();
  return undefined;
}

// ISO date-time without a zone designator: the host writes UTC times this way (DateTimeKind.Unspecified).
const ISO_NO_ZONE = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$/;
const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

/** A time as a Date; zone-less ISO strings are UTC; numbers are epoch milliseconds. */
export function coerceDate(v: unknown): Date | undefined {
  let ms: number;
  if (v instanceof Date) ms = v.getTime();
  else if (typeof v === 'number') ms = v;
  else if (typeof v === 'string') {
    const s = v.trim();
    const bare = ISO_NO_ZONE.exec(s);
    if (bare) ms = Date.parse(`${bare[1]}T${bare[2]}Z`);
    else if (ISO_WITH_ZONE.test(s)) ms = Date.parse(s.replace(' ', 'T'));
    else return undefined; // other forms would be read in the machine's local zone: refuse to guess
  } else return undefined;
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms) : undefined;
}

function coerceString(v: unknown): string | undefined {
  if (typeof v === 'string') return v === '' ? undefined : v;
  // The host JSON-parses numeric-looking strings: a partition id "0" or partition key "42" may be a number.
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'bigint') return v.toString();
  return undefined;
}

/**
 * Any body shape to bytes. Binary bodies are kept as they are; a string (a mis-set dataType) becomes its
 * UTF-8 bytes and a parsed value its JSON, so such a configuration degrades without losing events.
 */
export function bodyToBuffer(body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body === undefined) return Buffer.alloc(0);
  // A Buffer that went through JSON somewhere on the way ({ type: 'Buffer', data: [...] }).
  if (isDict(body) && body.type === 'Buffer' && Array.isArray(body.data) && Object.keys(body).length === 2) {
    const data = body.data as unknown[];
    if (data.every((b) => typeof b === 'number' && Number.isInteger(b) && b >= 0 && b <= 255)) {
      return Buffer.from(data as number[]);
    }
  }
  try {
    const json = JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    return Buffer.from(json ?? '', 'utf8');
  } catch {
    // Only cycles or throwing toJSON get here; such a value cannot have come from a real message.
    return Buffer.from(Object.prototype.toString.call(body), 'utf8');
  }
}

/** A shallow copy of application properties that cannot be tricked by a `__proto__` key. */
export function copyProperties(v: unknown): Dict {
  const out: Dict = {};
  const src = maybeJson(v);
  if (!isDict(src)) return out;
  for (const key of Object.keys(src)) setOwn(out, key, src[key]);
  return out;
}

/** The element at `i` of a per-event array, only when the array is aligned with the batch. */
function aligned(arr: unknown, i: number, batchLength: number): unknown {
  const a = maybeJson(arr);
  if (!Array.isArray(a) || a.length !== batchLength) return undefined;
  return a[i] as unknown;
}

const SEQ_KEYS = ['sequenceNumber', 'x-opt-sequence-number'];
const OFFSET_KEYS = ['offsetString', 'offset', 'x-opt-offset'];
const TIME_KEYS = ['enqueuedTimeUtc', 'enqueuedTime', 'x-opt-enqueued-time'];
const PKEY_KEYS = ['partitionKey', 'x-opt-partition-key'];

function coordinates(
  sys: unknown,
  fallback: { seq: unknown; offset: unknown; time: unknown; pkey: unknown },
  hub: string,
  consumerGroup: string,
  partitionId: string,
): SourceCoordinates {
  const seq = coerceInteger(pick(sys, SEQ_KEYS)) ?? coerceInteger(fallback.seq);
  const offset = coerceOffset(pick(sys, OFFSET_KEYS)) ?? coerceOffset(fallback.offset);
  const time = coerceDate(pick(sys, TIME_KEYS)) ?? coerceDate(fallback.time);
  const pkey = coerceString(pick(sys, PKEY_KEYS)) ?? coerceString(fallback.pkey);
  const source: SourceCoordinates = {
    hub,
    consumerGroup,
    partitionId,
    sequenceNumber: seq ?? UNKNOWN_SEQUENCE,
    offset: offset ?? UNKNOWN_OFFSET,
    enqueuedTime: time ?? new Date(UNKNOWN_TIME_MS),
  };
  if (pkey !== undefined) source.partitionKey = pkey;
  return source;
}

/**
 * A Functions Event Hubs batch (cardinality many, dataType binary) with its trigger metadata. A single
 * non-array message (cardinality one) is accepted too, with the singular metadata keys.
 */
export function normalizeFunctionsBatch(
  messages: unknown,
  triggerMetadata: Record<string, unknown>,
  ctx: { hub: string; consumerGroup: string },
): RawEvent[] {
  const single = !Array.isArray(messages);
  const bodies: unknown[] = Array.isArray(messages) ? (messages as unknown[]) : messages === undefined ? [] : [messages];
  const meta: unknown = triggerMetadata;
  const n = bodies.length;
  const partitionId = coerceString(pick(maybeJson(pick(meta, ['partitionContext'])), ['partitionId'])) ?? UNKNOWN_PARTITION;

  const sysArray = pick(meta, ['systemPropertiesArray']);
  const propsArray = pick(meta, ['propertiesArray']);
  const seqArray = pick(meta, ['sequenceNumberArray']);
  const offsetArray = pick(meta, ['offsetArray']);
  const timeArray = pick(meta, ['enqueuedTimeUtcArray']);
  const pkeyArray = pick(meta, ['partitionKeyArray']);
  const useSingular = single || (n === 1 && sysArray === undefined && propsArray === undefined);

  return bodies.map((body, i): RawEvent => {
    let sys = maybeJson(aligned(sysArray, i, n));
    let props = aligned(propsArray, i, n);
    let fallback = {
      seq: aligned(seqArray, i, n),
      offset: aligned(offsetArray, i, n),
      time: aligned(timeArray, i, n),
      pkey: aligned(pkeyArray, i, n),
    };
    if (useSingular) {
      sys ??= maybeJson(pick(meta, ['systemProperties']));
      props ??= pick(meta, ['properties']);
      fallback = {
        seq: fallback.seq ?? pick(meta, ['sequenceNumber']),
        offset: fallback.offset ?? pick(meta, ['offset']),
        time: fallback.time ?? pick(meta, ['enqueuedTimeUtc']),
        pkey: fallback.pkey ?? pick(meta, ['partitionKey']),
      };
    }
    return {
      body: bodyToBuffer(body),
      properties: copyProperties(props),
      source: coordinates(sys, fallback, ctx.hub, ctx.consumerGroup, partitionId),
    };
  });
}

/** The subset of the SDK's ReceivedEventData that hubsink reads. */
export interface ReceivedEventLike {
  body: unknown;
  properties?: Record<string, unknown>;
  sequenceNumber: number;
  offset: string | number;
  enqueuedTimeUtc: Date;
  partitionKey?: string | null;
}

/**
 * Events from the SDK's EventHubConsumerClient (the standalone runner). Bodies decoded by the SDK
 * (producers that sent objects) are turned back into their JSON bytes.
 */
export function normalizeReceivedEvents(
  events: ReadonlyArray<ReceivedEventLike>,
  ctx: { hub: string; consumerGroup: string; partitionId: string },
): RawEvent[] {
  return events.map((e): RawEvent => {
    const source: SourceCoordinates = {
      hub: ctx.hub,
      consumerGroup: ctx.consumerGroup,
      partitionId: ctx.partitionId === '' ? UNKNOWN_PARTITION : ctx.partitionId,
      sequenceNumber: coerceInteger(e.sequenceNumber) ?? UNKNOWN_SEQUENCE,
      offset: coerceOffset(e.offset) ?? UNKNOWN_OFFSET,
      enqueuedTime: coerceDate(e.enqueuedTimeUtc) ?? new Date(UNKNOWN_TIME_MS),
    };
    const pkey = coerceString(e.partitionKey);
    if (pkey !== undefined) source.partitionKey = pkey;
    return { body: bodyToBuffer(e.body), properties: copyProperties(e.properties), source };
  });
}
