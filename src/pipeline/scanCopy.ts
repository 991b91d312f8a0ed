/**
 * The byte scanner: one pass over an event body's bytes that validates it and writes its row as
 * COPY text (the format of src/db/copyEvents.ts, same columns in the same order) into a batch's
 * buffer, without building the parsed document, the row's strings or the JSON text of `properties`.
 *
 * It decides only "valid, here is the line". Anything it is not sure of (any JSON it does not
 * fully check, any field it would have to interpret beyond the common forms) makes it decline, and
 * the existing path (fastValidate, then validateEvent with zod) decides as before. So it can never
 * decide differently, only less often; test/unit/pipeline-scan-copy.test.ts checks that its lines
 * are the reference encoder's lines of the zod path's row, on common and hostile bodies.
 *
 * What it takes: a UTF-8 body (checked first, by node's isUtf8) holding one JSON object whose keys
 * are all known fields, each at most once, without `\u` escapes in keys; strings that need no
 * surrogate or NUL escape; a `tenantId` number and no tenant in the application properties; the
 * common timestamp layouts; and a `properties` object whose numbers print back as they were written
 * (so the stored jsonb equals what JSON.parse + JSON.stringify would have sent).
 *
 * A scanned row keeps its key (tenant, event id, time) as data and builds the other fields only if
 * something reads them (the upsert of a small or refused chunk): by the fast path or the zod path
 * on the same raw event and options, which decide as the scanner did.
 */
import type { EventField, SameNames } from './eventColumns.js';
import { isUtf8 } from 'node:buffer';
import { copyLine, copyTextField, isoUtc } from './copyText.js';
import { deriveEventId } from './eventId.js';
import { fastValidate, timestampMs, uuidLower } from './fastValidate.js';
import type { EventRow, RawEvent } from './types.js';
import { MAX_PROPERTIES_BYTES, MAX_TEXT_CHARS, MAX_TYPE_CHARS, MAX_URL_CHARS, REVENUE_LIMIT, daysInMonth, isTenantKey, round4, validateEvent, type ValidateOptions } from './validate.js';

const DAY_MS = 86_400_000;
/** Deeper nesting is legal (up to MAX_DEPTH) but rare: the other paths check it. */
const SCAN_MAX_DEPTH = 16;

// Field numbers, in the order of the COPY columns after tenant_id and event_id where they apply.
const F_EVENT_ID = 0;
const F_TENANT_ID = 1;
const F_TYPE = 2;
const F_OCCURRED_AT = 3;
const F_REVENUE = 12;
const F_PROPERTIES = 13;
const FIELD_NAMES = ['eventId', 'tenantId', 'type', 'occurredAt', 'sessionId', 'userId', 'deviceId', 'url', 'referrer', 'campaignId', 'country', 'browser', 'revenue', 'properties'] as const;
/** Compile-time: the scanner reads exactly the event columns' fields (pipeline/eventColumns.ts). */
const _fieldsAreColumns: SameNames<(typeof FIELD_NAMES)[number], EventField> = true;
const FIELD_COUNT = FIELD_NAMES.length;
/** The text fields in COPY column order (after occurred_at), with their length limits. */
const TEXT_FIELDS = [2, 4, 5, 6, 7, 8, 9, 10, 11] as const;
const TEXT_LIMIT: readonly number[] = [0, 0, MAX_TYPE_CHARS, 0, MAX_TEXT_CHARS, MAX_TEXT_CHARS, MAX_TEXT_CHARS, MAX_URL_CHARS, MAX_URL_CHARS, MAX_TEXT_CHARS, MAX_TEXT_CHARS, MAX_TEXT_CHARS];
const FIELD_BYTES: readonly Buffer[] = FIELD_NAMES.map((n) => Buffer.from(n, 'latin1'));

// What a field held: absent, a string without escapes, a string with escapes, null, a number, an object.
const K_ABSENT = 0;
const K_STRING = 1;
const K_ESCAPED = 2;
const K_NULL = 3;
const K_NUMBER = 4;
const K_OBJECT = 5;

// Per-body scratch (the scanner is synchronous and not re-entered).
const kinds = new Int8Array(FIELD_COUNT);
const starts = new Int32Array(FIELD_COUNT);
const ends = new Int32Array(FIELD_COUNT);
/** Set by scanString: whether the string had a backslash escape. */
let sawEscape = false;
/** Backslash escapes met in the body so far (each may become two bytes in the properties column). */
let escapes = 0;
/** Set by scanString: the string's length once unescaped, in UTF-8 bytes (an upper bound of its UTF-16 length). */
let unescapedBytes = 0;

const Q = 0x22;
const BS = 0x5c;

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipWs(b: Buffer, i: number, n: number): number {
  while (i < n && isWs(b[i] as number)) i++;
  return i;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/** A `\uXXXX` escape's code unit at b[i] (the `u`), or -1. */
function unicodeEscape(b: Buffer, i: number, n: number): number {
  if (i + 4 >= n) return -1;
  const a = hexVal(b[i + 1] as number);
  const c = hexVal(b[i + 2] as number);
  const d = hexVal(b[i + 3] as number);
  const e = hexVal(b[i + 4] as number);
  return a < 0 || c < 0 || d < 0 || e < 0 ? -1 : (a << 12) | (c << 8) | (d << 4) | e;
}

/**
 * A JSON string whose opening quote is at b[i - 1]: the index of its closing quote, or -1 to
 * decline (invalid JSON, a raw control character, or a `\u` escape of NUL or a surrogate).
 */
function scanString(b: Buffer, i: number, n: number): number {
  sawEscape = false;
  let extra = 0; // bytes the escapes save once decoded
  const from = i;
  for (; i < n; i++) {
    const c = b[i] as number;
    if (c === Q) {
      unescapedBytes = i - from - extra;
      return i;
    }
    if (c < 0x20) return -1;
    if (c === BS) {
      sawEscape = true;
      escapes++;
      const e = b[++i];
      if (e === 0x75) {
        const u = unicodeEscape(b, i, n);
        if (u <= 0 || (u >= 0xd800 && u <= 0xdfff)) return -1;
        extra += 6 - (u < 0x80 ? 1 : u < 0x800 ? 2 : 3);
        i += 4;
      } else if (e === Q || e === BS || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        extra += 1;
      } else return -1;
    }
  }
  return -1;
}

/**
 * A JSON number at b[i]: the index after it, or -1. With `canonical`, only numbers that
 * JSON.stringify prints back byte for byte (no exponent, no trailing fraction zero, at most 15
 * significant digits, not below 1e-6, not -0), so the raw text can be stored as it is.
 */
function scanNumber(b: Buffer, i: number, n: number, canonical: boolean): number {
  const start = i;
  if (b[i] === 0x2d) i++;
  const intStart = i;
  const c0 = b[i];
  if (c0 === 0x30) i++;
  else if (c0 !== undefined && c0 >= 0x31 && c0 <= 0x39) {
    i++;
    while (i < n && (b[i] as number) >= 0x30 && (b[i] as number) <= 0x39) i++;
  } else return -1;
  const intDigits = i - intStart;
  let fracDigits = 0;
  let fracLeadingZeros = 0;
  let lastFrac = 0;
  if (b[i] === 0x2e) {
    i++;
    const fs = i;
    while (i < n && (b[i] as number) >= 0x30 && (b[i] as number) <= 0x39) {
      if (b[i] === 0x30 && i - fs === fracLeadingZeros) fracLeadingZeros++;
      lastFrac = b[i] as number;
      i++;
    }
    fracDigits = i - fs;
    if (fracDigits === 0) return -1;
  }
  const e = b[i];
  if (e === 0x65 || e === 0x45) {
    if (canonical) return -1;
    i++;
    if (b[i] === 0x2b || b[i] === 0x2d) i++;
    const es = i;
    while (i < n && (b[i] as number) >= 0x30 && (b[i] as number) <= 0x39) i++;
    if (i === es) return -1;
  }
  if (canonical) {
    const zeroInt = intDigits === 1 && c0 === 0x30;
    if (fracDigits > 0 && lastFrac === 0x30) return -1;
    if (zeroInt && fracDigits === 0 && b[start] === 0x2d) return -1;
    if (zeroInt ? fracDigits - fracLeadingZeros > 15 || (fracDigits > 0 && fracLeadingZeros >= 6) : intDigits + fracDigits > 15) return -1;
  }
  return i;
}

/**
 * Any JSON value inside `properties` at b[i]: the index after it, or -1. Its text is stored as it
 * is, so it must hold nothing the stored jsonb would read differently from JSON.stringify's output:
 * canonical numbers only, and no tab, newline or CR between tokens (COPY's delimiters).
 */
function scanValue(b: Buffer, i: number, n: number, depth: number): number {
  const c = b[i];
  if (c === Q) {
    const end = scanString(b, i + 1, n);
    return end < 0 ? -1 : end + 1;
  }
  if (c === 0x7b || c === 0x5b) {
    if (depth >= SCAN_MAX_DEPTH) return -1;
    const close = c === 0x7b ? 0x7d : 0x5d;
    i = skipSpaces(b, i + 1, n);
    if (b[i] === close) return i + 1;
    for (;;) {
      if (c === 0x7b) {
        if (b[i] !== Q) return -1;
        const k = scanString(b, i + 1, n);
        if (k < 0) return -1;
        i = skipSpaces(b, k + 1, n);
        if (b[i] !== 0x3a) return -1;
        i = skipSpaces(b, i + 1, n);
      }
      i = scanValue(b, i, n, depth + 1);
      if (i < 0) return -1;
      i = skipSpaces(b, i, n);
      const d = b[i];
      if (d === close) return i + 1;
      if (d !== 0x2c) return -1;
      i = skipSpaces(b, i + 1, n);
    }
  }
  if (c === 0x74) return literal(b, i, n, TRUE_BYTES);
  if (c === 0x66) return literal(b, i, n, FALSE_BYTES);
  if (c === 0x6e) return literal(b, i, n, NULL_BYTES);
  return scanNumber(b, i, n, true);
}

/** Inside `properties` only spaces are taken between tokens (see scanValue). */
function skipSpaces(b: Buffer, i: number, n: number): number {
  while (i < n && b[i] === 0x20) i++;
  return i;
}

const TRUE_BYTES = Buffer.from('true');
const FALSE_BYTES = Buffer.from('false');
const NULL_BYTES = Buffer.from('null');

function literal(b: Buffer, i: number, n: number, word: Buffer): number {
  if (i + word.length > n) return -1;
  for (let j = 0; j < word.length; j++) if (b[i + j] !== word[j]) return -1;
  return i + word.length;
}

/** The known field named by the key b[s..e), or -1. */
function fieldOf(b: Buffer, s: number, e: number): number {
  const len = e - s;
  for (let f = 0; f < FIELD_COUNT; f++) {
    const name = FIELD_BYTES[f] as Buffer;
    if (name.length !== len) continue;
    let j = 0;
    while (j < len && b[s + j] === name[j]) j++;
    if (j === len) return f;
  }
  return -1;
}

/** The top-level object: fills kinds/starts/ends; false to decline. */
function scanTop(b: Buffer, n: number): boolean {
  kinds.fill(K_ABSENT);
  escapes = 0;
  let i = skipWs(b, 0, n);
  if (b[i] !== 0x7b) return false;
  i = skipWs(b, i + 1, n);
  if (b[i] === 0x7d) return skipWs(b, i + 1, n) === n;
  for (;;) {
    if (b[i] !== Q) return false;
    const ke = scanString(b, i + 1, n);
    if (ke < 0 || sawEscape) return false;
    const f = fieldOf(b, i + 1, ke);
    if (f < 0 || kinds[f] !== K_ABSENT) return false;
    i = skipWs(b, ke + 1, n);
    if (b[i] !== 0x3a) return false;
    i = skipWs(b, i + 1, n);
    const c = b[i];
    if (c === Q) {
      const end = scanString(b, i + 1, n);
      if (end < 0) return false;
      // The limits count UTF-16 units; the unescaped UTF-8 length bounds them from above.
      if (f >= F_TYPE && f < F_REVENUE && f !== F_OCCURRED_AT && unescapedBytes > (TEXT_LIMIT[f] as number)) return false;
      kinds[f] = sawEscape ? K_ESCAPED : K_STRING;
      starts[f] = i + 1;
      ends[f] = end;
      i = end + 1;
    } else if (c === 0x6e) {
      const end = literal(b, i, n, NULL_BYTES);
      if (end < 0) return false;
      kinds[f] = K_NULL;
      i = end;
    } else if (c === 0x7b && f === F_PROPERTIES) {
      const end = scanValue(b, i, n, 1);
      if (end < 0) return false;
      kinds[f] = K_OBJECT;
      starts[f] = i;
      ends[f] = end;
      i = end;
    } else if ((c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) && (f === F_TENANT_ID || f === F_REVENUE)) {
      const end = scanNumber(b, i, n, false);
      if (end < 0) return false;
      kinds[f] = K_NUMBER;
      starts[f] = i;
      ends[f] = end;
      i = end;
    } else return false;
    i = skipWs(b, i, n);
    const d = b[i];
    if (d === 0x7d) return skipWs(b, i + 1, n) === n;
    if (d !== 0x2c) return false;
    i = skipWs(b, i + 1, n);
  }
}

/** The growing buffer a batch's COPY text is written into. */
export class CopyWriter {
  buf: Buffer;
  at = 0;
  constructor(capacity = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  /** Room for n more bytes; earlier lines stay valid in the buffer they were written to. */
  reserve(n: number): void {
    if (this.buf.length - this.at >= n) return;
    // A new buffer rather than a copy: rows already scanned keep pointing into the old one.
    this.buf = Buffer.allocUnsafe(Math.max(this.buf.length * 2, n + 1024));
    this.at = 0;
  }
}

/**
 * A row the scanner accepted. Its key is data; its COPY line is bytes [copyStart, copyEnd) of
 * copyBuf; the other fields are built on first use by the fast or zod path, which accept the same
 * event (the scanner declines whatever they might not), so they never fail here.
 */
export class ScannedRow implements EventRow {
  constructor(
    readonly tenantId: number,
    readonly eventId: string,
    readonly occurredAt: Date,
    readonly raw: RawEvent,
    private readonly opts: ValidateOptions,
    readonly copyBuf: Buffer,
    readonly copyStart: number,
    readonly copyEnd: number,
    private full?: EventRow,
  ) {
    this.byScanner = full === undefined;
  }
  /** Whether the byte scanner took it (else the other paths built it and the row encoder wrote its line). */
  readonly byScanner: boolean;

  private get f(): EventRow {
    if (this.full === undefined) {
      const row = fastValidate(this.raw, this.opts);
      if (row !== undefined) this.full = row;
      else {
        const v = validateEvent(this.raw, this.opts);
        if (!v.ok) throw new Error(`the byte scanner accepted an event the validator refuses (${v.error}); this is a bug`);
        this.full = v.row;
      }
    }
    return this.full;
  }
  get type(): string {
    return this.f.type;
  }
  get sessionId(): string | null {
    return this.f.sessionId;
  }
  get userId(): string | null {
    return this.f.userId;
  }
  get deviceId(): string | null {
    return this.f.deviceId;
  }
  get url(): string | null {
    return this.f.url;
  }
  get referrer(): string | null {
    return this.f.referrer;
  }
  get campaignId(): string | null {
    return this.f.campaignId;
  }
  get country(): string | null {
    return this.f.country;
  }
  get browser(): string | null {
    return this.f.browser;
  }
  get revenue(): number | null {
    return this.f.revenue;
  }
  get properties(): Record<string, unknown> | null {
    return this.f.properties;
  }
  /** Its COPY text line, newline included. */
  copyLine(): Buffer {
    return this.copyBuf.subarray(this.copyStart, this.copyEnd);
  }
}

/** A field's raw bytes as a one-byte-per-character string (callers decide only on ASCII content). */
function ascii(b: Buffer, f: number): string {
  return b.toString('latin1', starts[f], ends[f]);
}

function span(f: number): number {
  return (ends[f] as number) - (starts[f] as number);
}

function putAscii(buf: Buffer, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) buf[at++] = s.charCodeAt(i);
  return at;
}

function putBytes(buf: Buffer, at: number, b: Buffer, s: number, e: number): number {
  if (e - s > 48) return at + b.copy(buf, at, s, e);
  for (let i = s; i < e; i++) buf[at++] = b[i] as number;
  return at;
}

/** A string's content b[s..e), escapes decoded, as a COPY text field. */
function putUnescaped(buf: Buffer, at: number, b: Buffer, s: number, e: number): number {
  for (let i = s; i < e; i++) {
    const c = b[i] as number;
    if (c !== BS) {
      buf[at++] = c;
      continue;
    }
    const x = b[++i] as number;
    let u: number;
    if (x === 0x75) {
      u = unicodeEscape(b, i, e + 1);
      i += 4;
    } else u = x === 0x62 ? 8 : x === 0x66 ? 12 : x === 0x6e ? 10 : x === 0x72 ? 13 : x === 0x74 ? 9 : x; // \" \\ \/ stand for themselves
    if (u === 10) at = putAscii(buf, at, '\\n');
    else if (u === 13) at = putAscii(buf, at, '\\r');
    else if (u === 9) at = putAscii(buf, at, '\\t');
    else if (u === BS) at = putAscii(buf, at, '\\\\');
    else if (u < 0x80) buf[at++] = u;
    else if (u < 0x800) {
      buf[at++] = 0xc0 | (u >> 6);
      buf[at++] = 0x80 | (u & 0x3f);
    } else {
      buf[at++] = 0xe0 | (u >> 12);
      buf[at++] = 0x80 | ((u >> 6) & 0x3f);
      buf[at++] = 0x80 | (u & 0x3f);
    }
  }
  return at;
}

/** JSON text as a COPY field: its backslashes doubled (it holds no raw control characters). */
function putJson(buf: Buffer, at: number, b: Buffer, s: number, e: number): number {
  let from = s;
  for (let i = b.indexOf(BS, s); i !== -1 && i < e; i = b.indexOf(BS, i + 1)) {
    at = putBytes(buf, at, b, from, i + 1);
    buf[at++] = BS;
    from = i + 1;
  }
  return putBytes(buf, at, b, from, e);
}

/** A decimal integer of up to 15 digits without a leading zero at b[s..e), or undefined. */
function digitsValue(b: Buffer, s: number, e: number): number | undefined {
  if (e - s > 15 || e === s || b[s] === 0x30) return undefined;
  let v = 0;
  for (let i = s; i < e; i++) {
    const d = (b[i] as number) - 0x30;
    if (d < 0 || d > 9) return undefined;
    v = v * 10 + d;
  }
  return v;
}

function isDigits(s: string): boolean {
  if (s.length === 0 || s.length > 20) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** Two decimal digits at b[i], or -1. */
function d2(b: Buffer, i: number): number {
  const x = (b[i] as number) - 0x30;
  const y = (b[i + 1] as number) - 0x30;
  return x >= 0 && x <= 9 && y >= 0 && y <= 9 ? x * 10 + y : -1;
}

/**
 * The time of `YYYY-MM-DDTHH:MM:SS.mmmZ` (toISOString's layout, years 1970–9999) at b[s..e), read
 * from the bytes, or undefined for any other layout or value (timestampMs then decides). Such a
 * text is also exactly what isoUtc prints for the time, so it is copied as it is.
 */
function zuluMs(b: Buffer, s: number, e: number): number | undefined {
  if (e - s !== 24 || b[s + 4] !== 0x2d || b[s + 7] !== 0x2d || b[s + 10] !== 0x54 || b[s + 13] !== 0x3a || b[s + 16] !== 0x3a || b[s + 19] !== 0x2e || b[s + 23] !== 0x5a) {
    return undefined;
  }
  const yh = d2(b, s);
  const yl = d2(b, s + 2);
  const mo = d2(b, s + 5);
  const d = d2(b, s + 8);
  const h = d2(b, s + 11);
  const mi = d2(b, s + 14);
  const sec = d2(b, s + 17);
  const ms1 = d2(b, s + 20);
  const ms2 = (b[s + 22] as number) - 0x30;
  if (yh < 19 || yl < 0 || (yh === 19 && yl < 70) || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 || ms1 < 0 || !(ms2 >= 0 && ms2 <= 9)) return undefined;
  const y = yh * 100 + yl;
  if (d > daysInMonth(y, mo)) return undefined;
  return Date.UTC(y, mo - 1, d, h, mi, sec, ms1 * 10 + ms2);
}

// Lines of a batch share their partition and often their enqueued time: formatted once.
let lastEnqueuedMs = NaN;
let lastEnqueued = '';
let lastSourceKey: string | undefined;
let lastSourceText = '';

/**
 * A row the other paths built, with its COPY line written into `out` by the row encoder, so a
 * batch's lines stay one run of bytes when the scanner declined some of its events.
 */
export function withCopyLine(row: EventRow, opts: ValidateOptions, out: CopyWriter): ScannedRow {
  const line = copyLine(row, isoUtc(row.raw.source.enqueuedTime));
  out.reserve(Buffer.byteLength(line, 'utf8'));
  const start = out.at;
  out.at += out.buf.write(line, start, 'utf8');
  return new ScannedRow(row.tenantId, row.eventId, row.occurredAt, row.raw, opts, out.buf, start, out.at, row);
}

/**
 * Scans one event into `out`: its row, with its COPY line written, or undefined when the other
 * paths must decide (nothing is written then). Never throws.
 */
export function scanEvent(raw: RawEvent, opts: ValidateOptions, out: CopyWriter): ScannedRow | undefined {
  try {
    return scanUnsafe(raw, opts, out);
  } catch {
    return undefined;
  }
}

function scanUnsafe(raw: RawEvent, opts: ValidateOptions, out: CopyWriter): ScannedRow | undefined {
  const b = raw.body;
  const n = b.byteLength;
  if (n === 0 || n > opts.maxBodyBytes || !isUtf8(b) || !scanTop(b, n)) return undefined;

  // tenantId: a positive safe integer in the body, and no tenant among the application properties.
  if (kinds[F_TENANT_ID] !== K_NUMBER) return undefined;
  for (const k in raw.properties) if (isTenantKey(k)) return undefined;
  const tenantId = digitsValue(b, starts[F_TENANT_ID] as number, ends[F_TENANT_ID] as number) ?? Number(ascii(b, F_TENANT_ID));
  if (!(Number.isSafeInteger(tenantId) && tenantId > 0)) return undefined;

  let eventId: string;
  const idKind = kinds[F_EVENT_ID];
  if (idKind === K_ABSENT || idKind === K_NULL) eventId = deriveEventId(b);
  else {
    if (idKind !== K_STRING || span(F_EVENT_ID) !== 36) return undefined;
    const id = uuidLower(ascii(b, F_EVENT_ID));
    if (id === undefined) return undefined;
    eventId = id;
  }

  // type: a string with something other than whitespace in it (a printable ASCII byte says so).
  if (kinds[F_TYPE] !== K_STRING) return undefined;
  let printable = false;
  for (let i = starts[F_TYPE] as number; i < (ends[F_TYPE] as number); i++) {
    const c = b[i] as number;
    if (c > 0x20 && c < 0x7f) {
      printable = true;
      break;
    }
  }
  if (!printable) return undefined;

  if (kinds[F_OCCURRED_AT] !== K_STRING) return undefined;
  const zulu = zuluMs(b, starts[F_OCCURRED_AT] as number, ends[F_OCCURRED_AT] as number);
  const ms = zulu ?? timestampMs(ascii(b, F_OCCURRED_AT));
  if (ms === undefined) return undefined;
  const now = opts.now.getTime();
  if (ms < now - opts.retentionDays * DAY_MS || ms > now + opts.aheadDays * DAY_MS) return undefined;

  for (const f of TEXT_FIELDS) {
    const k = kinds[f];
    if (k !== K_STRING && k !== K_ESCAPED && k !== K_ABSENT && k !== K_NULL) return undefined;
  }

  let revenue = '\\N';
  const rk = kinds[F_REVENUE];
  if (rk === K_NUMBER) {
    const v = Number(ascii(b, F_REVENUE));
    if (!(v >= -REVENUE_LIMIT && v <= REVENUE_LIMIT)) return undefined;
    revenue = String(round4(v));
  } else if (rk !== K_ABSENT && rk !== K_NULL) return undefined;

  const pk = kinds[F_PROPERTIES];
  // Serialized again, properties are no longer than their canonical-number, space-only text here.
  if (pk === K_OBJECT ? span(F_PROPERTIES) > MAX_PROPERTIES_BYTES : pk !== K_ABSENT && pk !== K_NULL) return undefined;

  const occurredAt = new Date(ms);
  const src = raw.source;
  const e = src.enqueuedTime.getTime();
  if (e !== lastEnqueuedMs) {
    lastEnqueuedMs = e;
    lastEnqueued = isoUtc(src.enqueuedTime);
  }
  const sourceKey = src.partitionId;
  if (sourceKey !== lastSourceKey) {
    lastSourceKey = sourceKey;
    lastSourceText = copyTextField(sourceKey);
  }
  const offset = src.offset;
  const offsetText = isDigits(offset) ? offset : copyTextField(offset);

  // Unescaping never grows a string; doubling backslashes at most doubles properties.
  // The line: the body's strings (unescaping never grows one), properties with each escape's
  // backslashes doubled, the derived id and the fixed columns (under 256 bytes), the source columns.
  out.reserve(n + 2 * escapes + 256 + 3 * (lastSourceText.length + offsetText.length) + lastEnqueued.length);
  const buf = out.buf;
  const lineStart = out.at;
  let at = lineStart;
  at = putAscii(buf, at, String(tenantId));
  buf[at++] = 9;
  at = putAscii(buf, at, eventId);
  buf[at++] = 9;
  // A `…:SS.mmmZ` time is already what isoUtc would print.
  if (zulu !== undefined) at = putBytes(buf, at, b, starts[F_OCCURRED_AT] as number, ends[F_OCCURRED_AT] as number);
  else at = putAscii(buf, at, isoUtc(occurredAt));
  for (const f of TEXT_FIELDS) {
    buf[at++] = 9;
    const k = kinds[f];
    if (k === K_STRING) at = putBytes(buf, at, b, starts[f] as number, ends[f] as number);
    else if (k === K_ESCAPED) at = putUnescaped(buf, at, b, starts[f] as number, ends[f] as number);
    else {
      buf[at++] = BS;
      buf[at++] = 0x4e;
    }
  }
  buf[at++] = 9;
  at = putAscii(buf, at, revenue);
  buf[at++] = 9;
  if (pk === K_OBJECT) at = putJson(buf, at, b, starts[F_PROPERTIES] as number, ends[F_PROPERTIES] as number);
  else {
    buf[at++] = BS;
    buf[at++] = 0x4e;
  }
  buf[at++] = 9;
  at += buf.write(lastSourceText, at, 'utf8');
  buf[at++] = 9;
  at = putAscii(buf, at, String(src.sequenceNumber));
  buf[at++] = 9;
  at = offsetText === offset ? putAscii(buf, at, offset) : at + buf.write(offsetText, at, 'utf8');
  buf[at++] = 9;
  at = putAscii(buf, at, lastEnqueued);
  buf[at++] = 0x0a;
  out.at = at;
  return new ScannedRow(tenantId, eventId, occurredAt, raw, opts, buf, lineStart, at);
}
