/**
 * Event validation (pure): raw bytes → a typed EventRow, or one clear error naming the field and the
 * problem (docs/design.md, guarantee 4). Never throws, whatever the bytes.
 *
 * Why zod 4: its output type is the row type (no casts between "checked" and "typed"), its per-field
 * messages are exact enough to put in a dead-letter record as they are, it is well kept, already a
 * dependency, and v4 is fast enough not to matter next to a database round trip: the whole of
 * validateEvent, zod included, handled 80,000–115,000 typical clickstream events/s on one core of a
 * busy 2-core development machine, about 50,000/s when every eventId has to be derived (SHA-1): a
 * 100-event batch costs 1–2 ms, well under its upsert round trip.
 * Zod checks the flat, typed fields. Three things are done by hand because a schema library either
 * cannot express them or does them lossily: the byte/UTF-8/JSON decoding, the scan of every string in
 * the document for what PostgreSQL cannot store, and `properties`, because zod's record and loose-object
 * parsers silently drop a `__proto__` key while we must store what the producer sent.
 */
import { MAX_TEXT_CHARS, MAX_TYPE_CHARS, MAX_URL_CHARS, type EventField as ColumnField, type SameNames } from './eventColumns.js';
import { z } from 'zod';
import { deriveEventId } from './eventId.js';
import { setOwn } from './normalize.js';
import type { EventRow, RawEvent } from './types.js';

export interface ValidateOptions {
  now: Date;
  /** Events older than now − retentionDays are invalid (their partition is dropped or about to be). */
  retentionDays: number;
  /** Events later than now + aheadDays are invalid (no partition exists for them yet). */
  aheadDays: number;
  maxBodyBytes: number;
}

/**
 * On failure, the tenant and event id are returned when they could be read, so a dead-letter record can
 * still be routed and searched by tenant.
 */
export type ValidateResult = { ok: true; row: EventRow } | { ok: false; error: string; tenantId?: number; eventId?: string };

export { MAX_TEXT_CHARS, MAX_TYPE_CHARS, MAX_URL_CHARS };
export const MAX_PROPERTIES_BYTES = 64 * 1024;
/**
 * Deepest nesting accepted anywhere in a body. PostgreSQL's jsonb parser recurses, and running out of
 * stack there is a 54001 error, which is not a row-level failure and would fail the whole batch.
 */
export const MAX_DEPTH = 64;
export const REVENUE_LIMIT = 1e12;
const DAY_MS = 86_400_000;

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const NUL = '\u0000';
export const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Length in characters as PostgreSQL's char_length counts them (code points, not UTF-16 units). */
function charCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}
const atMost = (max: number) => (s: string) => s.length <= max || charCount(s) <= max;

const optionalText = (max: number) =>
  z
    .string({ error: 'must be a string or null' })
    .refine(atMost(max), { error: `must be at most ${max} characters` })
    .nullish()
    .transform((v) => v ?? null);

const requiredString = z.string({ error: (iss) => (iss.input === undefined ? 'required' : 'must be a string') });

const EventFields = z.object({
  // null counts as absent here, as for the optional strings: the id is then derived from the body.
  eventId: z
    .string({ error: 'must be a UUID string' })
    .regex(UUID_RE, { error: 'must be a UUID such as 0190b6a4-5c3e-7cc1-9d2e-3f4a5b6c7d8e' })
    .nullish(),
  type: requiredString
    .refine((s) => s.trim() !== '', { error: 'must not be empty' })
    .refine(atMost(MAX_TYPE_CHARS), { error: `must be at most ${MAX_TYPE_CHARS} characters` }),
  occurredAt: requiredString,
  sessionId: optionalText(MAX_TEXT_CHARS),
  userId: optionalText(MAX_TEXT_CHARS),
  deviceId: optionalText(MAX_TEXT_CHARS),
  url: optionalText(MAX_URL_CHARS),
  referrer: optionalText(MAX_URL_CHARS),
  campaignId: optionalText(MAX_TEXT_CHARS),
  country: optionalText(MAX_TEXT_CHARS),
  browser: optionalText(MAX_TEXT_CHARS),
  revenue: z
    .number({ error: 'must be a number or null' })
    .refine((n) => n >= -REVENUE_LIMIT && n <= REVENUE_LIMIT, { error: 'must be between -1e12 and 1e12' })
    .nullish()
    .transform((v) => (v === undefined || v === null ? null : round4(v))),
});
// tenantId and properties are top-level fields too, checked by hand below.
/** Compile-time: the schema and the hand-checked fields are exactly the event columns' fields (pipeline/eventColumns.ts). */
const _schemaCoversColumns: SameNames<keyof typeof EventFields.shape | 'tenantId' | 'properties', ColumnField> = true;
export const KNOWN_FIELDS = new Set([...Object.keys(EventFields.shape), 'tenantId', 'properties']);

/**
 * Rounds to 4 decimal places the way numeric(18,4) does: half away from zero, on the decimal digits
 * the number prints as (Math.round(x * 1e4) would see 1.00005 as 1.0000499…).
 */
export function round4(x: number): number {
  const a = Math.abs(x);
  const s = String(a);
  // Exponent forms are below 1e-6 (rounds to 0) or at least 1e21 (out of range before we get here).
  const r = s.includes('e') ? (a < 1 ? 0 : a) : Number(`${Math.round(Number(`${s}e4`))}e-4`);
  return x < 0 && r !== 0 ? -r : r;
}

function textProblem(s: string): string | undefined {
  if (s.includes(NUL)) return 'contains U+0000 (NUL), which PostgreSQL cannot store';
  if (LONE_SURROGATE.test(s)) return 'contains a lone UTF-16 surrogate (not valid Unicode)';
  return undefined;
}

function childPath(parent: string, key: string): string {
  const shown = key.length > 40 ? `${key.slice(0, 40)}…` : key;
  if (parent === '') return shown;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${parent}.${shown}` : `${parent}[${JSON.stringify(shown)}]`;
}

/**
 * Walks the whole parsed document once (iteratively: hostile nesting must not overflow our stack) and
 * reports the first string or key PostgreSQL cannot store, a number JSON.parse turned into Infinity,
 * or nesting deeper than MAX_DEPTH.
 */
function scan(root: unknown): string | undefined {
  const stack: { v: unknown; path: string; depth: number }[] = [{ v: root, path: '', depth: 0 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { v, path, depth } = item;
    if (typeof v === 'string') {
      const p = textProblem(v);
      if (p) return `${path || 'body'}: ${p}`;
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) return `${path || 'body'}: number is out of range`;
    } else if (typeof v === 'object' && v !== null) {
      if (depth >= MAX_DEPTH) return `${path.split(/[.[]/)[0] || 'body'}: nested deeper than ${MAX_DEPTH} levels`;
      if (Array.isArray(v)) {
        for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i] as unknown, path: `${path || 'body'}[${i}]`, depth: depth + 1 });
      } else {
        const obj = v as Record<string, unknown>;
        const keys = Object.keys(obj);
        for (let i = keys.length - 1; i >= 0; i--) {
          const key = keys[i] as string;
          const p = textProblem(key);
          if (p) return `${path || 'body'}: a key ${p}`;
          stack.push({ v: obj[key], path: childPath(path, key), depth: depth + 1 });
        }
      }
    }
  }
  return undefined;
}

function positiveInt(v: unknown): number | undefined {
  let n: number | undefined;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'bigint') n = Number(v);
  else if (typeof v === 'string' && /^[0-9]{1,16}$/.test(v)) n = Number(v);
  return n !== undefined && Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

export function isTenantKey(key: string): boolean {
  return key.toLowerCase().replace(/[_-]/g, '') === 'tenantid';
}

function short(v: unknown): string {
  let s: string;
  try {
    s = typeof v === 'string' ? JSON.stringify(v) : typeof v === 'bigint' ? v.toString() : (JSON.stringify(v) ?? String(v));
  } catch {
    s = Object.prototype.toString.call(v);
  }
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/** The tenant from the body and/or the application properties; both present must agree. */
function resolveTenant(body: Record<string, unknown>, properties: Record<string, unknown>): { tenantId?: number; errors: string[] } {
  const errors: string[] = [];
  let fromBody: number | undefined;
  const bodyValue = Object.hasOwn(body, 'tenantId') ? body.tenantId : undefined;
  if (bodyValue !== undefined && bodyValue !== null) {
    fromBody = positiveInt(bodyValue);
    if (fromBody === undefined) errors.push('tenantId: must be a positive integer');
  }
  let fromProps: number | undefined;
  let propKey = '';
  for (const key of Object.keys(properties)) {
    if (!isTenantKey(key)) continue;
    const value = properties[key];
    if (value === undefined || value === null) continue;
    const n = positiveInt(value);
    if (n === undefined) {
      errors.push(`tenantId: application property ${key} must be a positive integer, got ${short(value)}`);
    } else if (fromProps !== undefined && fromProps !== n) {
      errors.push(`tenantId: application properties ${propKey} (${fromProps}) and ${key} (${n}) disagree`);
    } else {
      fromProps = n;
      propKey = key;
    }
  }
  if (fromBody !== undefined && fromProps !== undefined && fromBody !== fromProps) {
    errors.push(`tenantId: the body says ${fromBody} but application property ${propKey} says ${fromProps}`);
  }
  if (errors.length > 0) return { errors };
  const tenantId = fromBody ?? fromProps;
  if (tenantId === undefined) return { errors: ['tenantId: required (in the body or as an application property)'] };
  return { tenantId, errors };
}

const ISO_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):(\d{2}))?$/;
const EXAMPLE_TIME = '2024-05-01T12:00:00Z';

const MONTH_DAYS: readonly number[] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export function daysInMonth(y: number, m: number): number {
  if (m === 2) return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28;
  return MONTH_DAYS[m - 1] ?? 0;
}

/** ISO-8601 / RFC 3339 date-time with an explicit offset, to epoch ms (sub-millisecond digits dropped). */
export function parseTimestamp(s: string): { ms: number } | { error: string } {
  const m = ISO_TIMESTAMP.exec(s);
  if (!m) {
    if (/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s)) return { error: `must include a UTC offset (Z or ±hh:mm), e.g. ${EXAMPLE_TIME}` };
    return { error: `must be an ISO-8601 timestamp with a UTC offset, e.g. ${EXAMPLE_TIME}` };
  }
  const [, ys, mos, ds, hs, mis, ss, frac, z, sign, ohs, oms] = m;
  if (z === undefined && sign === undefined) return { error: `must include a UTC offset (Z or ±hh:mm), e.g. ${EXAMPLE_TIME}` };
  const y = Number(ys);
  const mo = Number(mos);
  const d = Number(ds);
  const h = Number(hs);
  const mi = Number(mis);
  const sec = Number(ss ?? '0');
  const ms = Number((frac ?? '').padEnd(3, '0').slice(0, 3));
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || sec > 59) {
    return { error: `${JSON.stringify(s)} is not a valid date and time` };
  }
  const oh = Number(ohs ?? '0');
  const om = Number(oms ?? '0');
  if (oh > 23 || om > 59) return { error: `${JSON.stringify(s)} has an invalid UTC offset` };
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d); // not Date.UTC: it maps years 0–99 to 1900–1999
  date.setUTCHours(h, mi, sec, ms);
  const offsetMs = (sign === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  return { ms: date.getTime() - offsetMs };
}

/** Error text goes to AMQP properties and PostgreSQL: make sure it can be stored there. */
function storable(s: string): string {
  return s.replaceAll(NUL, '\\u0000').replace(new RegExp(LONE_SURROGATE.source, 'g'), '\uFFFD');
}

function decodeBody(raw: RawEvent, maxBodyBytes: number): { value: unknown } | { error: string } {
  const bytes = raw.body;
  if (bytes.byteLength > maxBodyBytes) return { error: `body: ${bytes.byteLength} bytes exceeds the limit of ${maxBodyBytes}` };
  if (bytes.byteLength === 0) return { error: 'body: is empty, expected a JSON object' };
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { error: 'body: is not valid UTF-8' };
  }
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    return { error: `body: is not valid JSON (${detail.slice(0, 200)})` };
  }
}

function fail(errors: readonly string[], tenantId: number | undefined, eventId: string | undefined): ValidateResult {
  const out: { ok: false; error: string; tenantId?: number; eventId?: string } = { ok: false, error: storable(errors.join('; ')) };
  if (tenantId !== undefined) out.tenantId = tenantId;
  if (eventId !== undefined) out.eventId = eventId;
  return out;
}

export function validateEvent(raw: RawEvent, opts: ValidateOptions): ValidateResult {
  try {
    return validateUnsafe(raw, opts);
  } catch (e) {
    // Belt and braces for guarantee 4: nothing above is expected to throw.
    return { ok: false, error: storable(`body: could not be validated (${e instanceof Error ? e.message : String(e)})`) };
  }
}

function validateUnsafe(raw: RawEvent, opts: ValidateOptions): ValidateResult {
  const decoded = decodeBody(raw, opts.maxBodyBytes);
  if ('error' in decoded) return fail([decoded.error], undefined, undefined);
  const doc = decoded.value;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return fail([`body: must be a JSON object, not ${doc === null ? 'null' : Array.isArray(doc) ? 'an array' : `a ${typeof doc}`}`], undefined, undefined);
  }
  const body = doc as Record<string, unknown>;
  const problem = scan(body);
  if (problem) return fail([problem], undefined, undefined);

  const errors: string[] = [];
  const parsed = EventFields.safeParse(body);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) errors.push(`${issue.path.map(String).join('.') || 'body'}: ${issue.message}`);
  }
  const tenant = resolveTenant(body, raw.properties);
  errors.push(...tenant.errors);

  const givenId = Object.hasOwn(body, 'eventId') ? body.eventId : undefined;
  const eventId =
    givenId === undefined || givenId === null ? deriveEventId(raw.body) : typeof givenId === 'string' && UUID_RE.test(givenId) ? givenId.toLowerCase() : undefined;

  let occurredAt: Date | undefined;
  const at = Object.hasOwn(body, 'occurredAt') ? body.occurredAt : undefined;
  if (typeof at === 'string') {
    const t = parseTimestamp(at);
    if ('error' in t) errors.push(`occurredAt: ${t.error}`);
    else {
      const now = opts.now.getTime();
      if (t.ms < now - opts.retentionDays * DAY_MS) {
        errors.push(`occurredAt: ${at} is older than the retention window of ${opts.retentionDays} days`);
      } else if (t.ms > now + opts.aheadDays * DAY_MS) {
        errors.push(`occurredAt: ${at} is more than ${opts.aheadDays} days in the future`);
      } else occurredAt = new Date(t.ms);
    }
  }

  const properties = buildProperties(body, errors);

  if (errors.length > 0 || !parsed.success || tenant.tenantId === undefined || eventId === undefined || occurredAt === undefined) {
    return fail(errors.length > 0 ? errors : ['body: invalid'], tenant.tenantId, eventId);
  }
  const f = parsed.data;
  return {
    ok: true,
    row: {
      tenantId: tenant.tenantId,
      eventId,
      type: f.type,
      occurredAt,
      sessionId: f.sessionId,
      userId: f.userId,
      deviceId: f.deviceId,
      url: f.url,
      referrer: f.referrer,
      campaignId: f.campaignId,
      country: f.country,
      browser: f.browser,
      revenue: f.revenue,
      properties,
      raw,
    },
  };
}

/**
 * `properties` plus any unknown top-level fields. Decision: unknown top-level fields are kept, not
 * rejected (producers add fields before hubsink learns about them, and rejecting would dead-letter
 * whole streams) and not dropped (silent loss). They go into `properties` under their own names. When
 * `properties` already has that key the event is ambiguous and is rejected as invalid rather than one
 * value silently discarded; the dead letter keeps the original bytes for a fix and replay.
 */
function buildProperties(body: Record<string, unknown>, errors: string[]): Record<string, unknown> | null {
  const given = Object.hasOwn(body, 'properties') ? body.properties : undefined;
  if (given !== undefined && given !== null && (typeof given !== 'object' || Array.isArray(given))) {
    errors.push('properties: must be a JSON object or null');
    return null;
  }
  const base = (given ?? null) as Record<string, unknown> | null;
  const extra = Object.keys(body).filter((k) => !KNOWN_FIELDS.has(k));
  if (base === null && extra.length === 0) return null;
  const out: Record<string, unknown> = {};
  if (base) for (const k of Object.keys(base)) setOwn(out, k, base[k]);
  for (const k of extra) {
    if (Object.hasOwn(out, k)) errors.push(`${childPath('', k)}: unknown top-level field also present in properties; move it into properties`);
    else setOwn(out, k, body[k]);
  }
  const size = Buffer.byteLength(JSON.stringify(out), 'utf8');
  if (size > MAX_PROPERTIES_BYTES) {
    errors.push(`properties: ${size} bytes serialized (with unknown top-level fields) exceeds the limit of ${MAX_PROPERTIES_BYTES}`);
  }
  return out;
}
