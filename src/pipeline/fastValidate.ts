/**
 * The fast path of validation (pure): the common, well-formed event straight to its EventRow, in one
 * walk over the parsed body, with no schema library and few intermediate objects. It decides only
 * "valid, and here is the row". Anything it is not sure about (an error, or odd input: a BOM, `\u`
 * escapes, unusual types, long strings, a tenant in the application properties) returns undefined
 * and goes to the zod path in validate.ts, which gives the error message. The two agree on every
 * accept/reject decision and on every row (test/unit/pipeline-validate-fast.test.ts checks it on
 * generated good and bad bodies).
 *
 * Why the one-pass checks are sound:
 * - UTF-8: decoded by the same fatal TextDecoder as the slow path (it validates while it decodes).
 * - NUL and lone surrogates: raw JSON text cannot carry a NUL (control characters must be escaped),
 *   and valid UTF-8 cannot encode a surrogate, so either can only come from a `\u` escape. A body
 *   without the two bytes `\u` has neither, in any string or key.
 * - Depth and numbers out of range: checked while walking `properties` and unknown fields (the only
 *   places nesting can be), with a far lower depth bound than the slow path's.
 */
import { deriveEventId } from './eventId.js';
import type { EventRow, RawEvent } from './types.js';
import {
  validateEvent,
  type ValidateResult,
  KNOWN_FIELDS,
  MAX_PROPERTIES_BYTES,
  MAX_TEXT_CHARS,
  MAX_TYPE_CHARS,
  MAX_URL_CHARS,
  REVENUE_LIMIT,
  daysInMonth,
  isTenantKey,
  parseTimestamp,
  round4,
  utf8,
  type ValidateOptions,
} from './validate.js';

const DAY_MS = 86_400_000;
/** Deeper nesting is legal up to MAX_DEPTH, but rare: the slow path checks it. */
const FAST_MAX_DEPTH = 16;

/** Whether JSON text holds a `\u` escape (a `\u` after an even number of other backslashes). */
function hasUnicodeEscape(text: string): boolean {
  for (let i = text.indexOf('\\u'); i !== -1; i = text.indexOf('\\u', i + 2)) {
    let j = i - 1;
    while (j >= 0 && text.charCodeAt(j) === 92) j--;
    if ((i - 1 - j) % 2 === 0) return true;
  }
  return false;
}

/** Per ASCII code: 0 for a lowercase hex digit, 1 for an uppercase one, -1 for anything else. */
const HEX_CASE: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let c = 48; c <= 57; c++) t[c] = 0;
  for (let c = 97; c <= 102; c++) t[c] = 0;
  for (let c = 65; c <= 70; c++) t[c] = 1;
  return t;
})();

/**
 * UUID_RE's decision by one char-code scan: the id in lowercase, or undefined when it is not a UUID.
 * Lowercase ids (the common case) are returned as they are, with no toLowerCase copy.
 */
export function uuidLower(s: string): string | undefined {
  if (s.length !== 36) return undefined;
  let upper = 0;
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return undefined;
      continue;
    }
    const h = c < 128 ? (HEX_CASE[c] ?? -1) : -1;
    if (h < 0) return undefined;
    upper |= h;
  }
  return upper === 0 ? s : s.toLowerCase();
}

/** Two decimal digits at i, or -1. */
function d2(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * The two layouts producers almost always send, `2026-03-14T10:15:03.120Z` and
 * `2026-03-14T10:15:03.120+01:00`, read by hand; any other layout, or any doubt, goes to
 * parseTimestamp, whose result this must equal.
 */
export function timestampMs(s: string): number | undefined {
  const len = s.length;
  if ((len !== 24 && len !== 29) || s[4] !== '-' || s[7] !== '-' || s[10] !== 'T' || s[13] !== ':' || s[16] !== ':' || s[19] !== '.') {
    return slowTimestampMs(s);
  }
  const yh = d2(s, 0);
  const yl = d2(s, 2);
  const mo = d2(s, 5);
  const d = d2(s, 8);
  const h = d2(s, 11);
  const mi = d2(s, 14);
  const sec = d2(s, 17);
  const ms1 = d2(s, 20);
  const ms2 = s.charCodeAt(22) - 48;
  // Years below 1000 are left to the slow path (Date.UTC maps 0–99 to 1900–1999).
  if (yh < 10 || yl < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 || ms1 < 0 || !(ms2 >= 0 && ms2 <= 9)) {
    return slowTimestampMs(s);
  }
  const y = yh * 100 + yl;
  if (d > daysInMonth(y, mo)) return undefined;
  let offsetMin = 0;
  if (len === 24) {
    if (s[23] !== 'Z') return slowTimestampMs(s);
  } else {
    const sign = s[23];
    const oh = d2(s, 24);
    const om = d2(s, 27);
    if ((sign !== '+' && sign !== '-') || s[26] !== ':' || oh < 0 || oh > 23 || om < 0 || om > 59) return slowTimestampMs(s);
    offsetMin = (sign === '-' ? -1 : 1) * (oh * 60 + om);
  }
  return Date.UTC(y, mo - 1, d, h, mi, sec, ms1 * 10 + ms2) - offsetMin * 60_000;
}

function slowTimestampMs(s: string): number | undefined {
  const t = parseTimestamp(s);
  return 'ms' in t ? t.ms : undefined;
}

/** An optional text field: null when absent or null, the string when short enough, else undefined (not sure). */
function optText(v: unknown, max: number): string | null | undefined {
  if (v === undefined || v === null) return null;
  // UTF-16 length bounds the code point count from above, so a string within it is within the limit.
  return typeof v === 'string' && v.length <= max ? v : undefined;
}

/** Plain JSON values only, finite numbers, bounded depth. */
function plainJson(v: unknown, depth: number): boolean {
  if (typeof v === 'string' || typeof v === 'boolean' || v === null) return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (typeof v !== 'object' || depth >= FAST_MAX_DEPTH) return false;
  if (Array.isArray(v)) {
    for (const x of v) if (!plainJson(x, depth + 1)) return false;
    return true;
  }
  const o = v as Record<string, unknown>;
  for (const k in o) if (!plainJson(o[k], depth + 1)) return false;
  return true;
}

/** The tenant from the body, when the application properties name none (else: not sure). */
function tenantOf(body: Record<string, unknown>, properties: Record<string, unknown>): number | undefined {
  for (const k in properties) if (isTenantKey(k)) return undefined;
  const t = body.tenantId;
  return typeof t === 'number' && Number.isSafeInteger(t) && t > 0 ? t : undefined;
}

/** The row for a well-formed event, or undefined when the slow path must decide. Never throws. */
export function fastValidate(raw: RawEvent, opts: ValidateOptions): EventRow | undefined {
  const bytes = raw.body;
  const n = bytes.byteLength;
  if (n === 0 || n > opts.maxBodyBytes) return undefined;
  let doc: unknown;
  try {
    const text = utf8.decode(bytes);
    if (hasUnicodeEscape(text)) return undefined;
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return undefined;
  const body = doc as Record<string, unknown>;

  let eventId: string;
  const givenId = body.eventId;
  if (givenId === undefined || givenId === null) eventId = deriveEventId(bytes);
  else {
    const id = typeof givenId === 'string' ? uuidLower(givenId) : undefined;
    if (id === undefined) return undefined;
    eventId = id;
  }

  const type = body.type;
  if (typeof type !== 'string' || type.length > MAX_TYPE_CHARS || type.trim() === '') return undefined;

  const at = body.occurredAt;
  if (typeof at !== 'string') return undefined;
  const ms = timestampMs(at);
  if (ms === undefined) return undefined;
  const now = opts.now.getTime();
  if (ms < now - opts.retentionDays * DAY_MS || ms > now + opts.aheadDays * DAY_MS) return undefined;

  const tenantId = tenantOf(body, raw.properties);
  if (tenantId === undefined) return undefined;

  const sessionId = optText(body.sessionId, MAX_TEXT_CHARS);
  const userId = optText(body.userId, MAX_TEXT_CHARS);
  const deviceId = optText(body.deviceId, MAX_TEXT_CHARS);
  const url = optText(body.url, MAX_URL_CHARS);
  const referrer = optText(body.referrer, MAX_URL_CHARS);
  const campaignId = optText(body.campaignId, MAX_TEXT_CHARS);
  const country = optText(body.country, MAX_TEXT_CHARS);
  const browser = optText(body.browser, MAX_TEXT_CHARS);
  if (
    sessionId === undefined ||
    userId === undefined ||
    deviceId === undefined ||
    url === undefined ||
    referrer === undefined ||
    campaignId === undefined ||
    country === undefined ||
    browser === undefined
  ) {
    return undefined;
  }

  let revenue: number | null = null;
  const rv = body.revenue;
  if (rv !== undefined && rv !== null) {
    if (typeof rv !== 'number' || !(rv >= -REVENUE_LIMIT && rv <= REVENUE_LIMIT)) return undefined;
    revenue = round4(rv);
  }

  // properties plus unknown top-level fields, as validate.ts's buildProperties merges them.
  const given = body.properties;
  let properties: Record<string, unknown> | null = null;
  if (given !== undefined && given !== null) {
    if (typeof given !== 'object' || Array.isArray(given) || !plainJson(given, 1)) return undefined;
    properties = given as Record<string, unknown>;
  }
  let copied = false;
  for (const k in body) {
    if (KNOWN_FIELDS.has(k)) continue;
    const v = body[k];
    // A `__proto__` field, or one that is also in properties, is for the slow path to handle or refuse.
    if (k === '__proto__' || !plainJson(v, 1) || (properties !== null && Object.hasOwn(properties, k))) return undefined;
    if (!copied) {
      // A copy, so the merged object keeps properties' keys first; spread defines own keys, so a
      // `__proto__` key of properties stays an ordinary key.
      properties = properties === null ? {} : { ...properties };
      copied = true;
    }
    (properties as Record<string, unknown>)[k] = v;
  }
  // Serialized again, strings come out as the same bytes (no \u escapes in the body) or shorter;
  // only numbers grow, at most about 5 times ("1e20" prints in 21 digits). So a body below a sixth
  // of the limit cannot exceed it, and the common event skips serializing its properties here.
  if (properties !== null && n > MAX_PROPERTIES_BYTES / 6 && Buffer.byteLength(JSON.stringify(properties), 'utf8') > MAX_PROPERTIES_BYTES) {
    return undefined;
  }

  return {
    tenantId,
    eventId,
    type,
    occurredAt: new Date(ms),
    sessionId,
    userId,
    deviceId,
    url,
    referrer,
    campaignId,
    country,
    browser,
    revenue,
    properties,
    raw,
  };
}

/** validateEvent's decision, by the fast path when it is sure and by the zod path otherwise. */
export function validateFast(raw: RawEvent, opts: ValidateOptions): ValidateResult {
  let row: EventRow | undefined;
  try {
    row = fastValidate(raw, opts);
  } catch {
    row = undefined;
  }
  return row ? { ok: true, row } : validateEvent(raw, opts);
}
