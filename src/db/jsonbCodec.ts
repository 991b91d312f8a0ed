/**
 * Values as PostgreSQL text and jsonb can hold them. text refuses NUL and a lone UTF-16 surrogate has
 * no UTF-8 form; jsonb refuses both, and cannot spell bytes, dates, int64 or non-finite numbers.
 * Dead letters keep what they were given exactly (encodeJsonValue, decodeJsonValue) or, for
 * informational text, lossily (safeText).
 */
import { clampDate } from '../pipeline/deadLetterMessage.js';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/**
 * text columns refuse NUL, and a lone UTF-16 surrogate has no UTF-8 form; informational text
 * (errors, partition keys) gets U+FFFD instead of either.
 */
export function safeText(s: string): string {
  const noNul = s.includes('\u0000') ? s.replaceAll('\u0000', '\uFFFD') : s;
  return LONE_SURROGATE.test(noNul) ? noNul.replace(LONE_SURROGATES, '\uFFFD') : noNul;
}

/** A time PostgreSQL stores, as ISO text: see clampDate. */
export function clampTime(d: Date): string {
  return clampDate(d).toISOString();
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/**
 * Application properties as jsonb, losslessly. jsonb refuses strings with NUL, and AMQP values may be
 * bytes, dates, int64 or non-finite numbers, which JSON cannot spell: such values are written as a
 * one-key object tagged `$bytes` (base64), `$date` (ISO), `$bigint`, `$number` or `$string`
 * (base64 of the UTF-8 of a string with NUL) or `$utf16` (base64 of the UTF-16 of a string with a lone
 * surrogate, which has no UTF-8). Keys with NUL or lone surrogates get U+FFFD. A plain object that happens to have one `$`-key is
 * tagged `$object` so decoding never mistakes it for one of ours.
 */
export function encodeJsonValue(v: unknown, depth = 0): Json {
  if (depth > 64) return { $string: Buffer.from('[nested too deep]', 'utf8').toString('base64') };
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : { $number: String(v) };
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (typeof v === 'string') {
    // jsonb refuses \u0000 and lone surrogates; UTF-16 keeps a lone surrogate exactly.
    if (LONE_SURROGATE.test(v)) return { $utf16: Buffer.from(v, 'utf16le').toString('base64') };
    return v.includes('\u0000') ? { $string: Buffer.from(v, 'utf8').toString('base64') } : v;
  }
  if (v instanceof Date) return { $date: Number.isNaN(v.getTime()) ? 'invalid' : v.toISOString() };
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('base64') };
  if (Array.isArray(v)) return v.map((x) => encodeJsonValue(x, depth + 1));
  if (typeof v === 'object') {
    const out: { [k: string]: Json } = {};
    const entries = Object.keys(v).map((k) => [k, (v as Record<string, unknown>)[k]] as const);
    for (const [k, x] of entries) {
      Object.defineProperty(out, safeText(k), { value: encodeJsonValue(x, depth + 1), enumerable: true, writable: true, configurable: true });
    }
    const keys = Object.keys(out);
    if (keys.length === 1 && keys[0]?.startsWith('$')) return { $object: out };
    return out;
  }
  return String(v as string);
}

/** The inverse of encodeJsonValue. */
export function decodeJsonValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(decodeJsonValue);
  if (v === null || typeof v !== 'object') return v;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1) {
    const [k] = keys;
    const x = o[k as string];
    if (k === '$bytes' && typeof x === 'string') return Buffer.from(x, 'base64');
    if (k === '$date' && typeof x === 'string') return new Date(x);
    if (k === '$bigint' && typeof x === 'string' && /^-?\d+$/.test(x)) return BigInt(x);
    if (k === '$number' && typeof x === 'string') return Number(x);
    if (k === '$string' && typeof x === 'string') return Buffer.from(x, 'base64').toString('utf8');
    if (k === '$utf16' && typeof x === 'string') return Buffer.from(x, 'base64').toString('utf16le');
    if (k === '$object' && x !== null && typeof x === 'object' && !Array.isArray(x)) return decodeObject(x as Record<string, unknown>);
  }
  return decodeObject(o);
}

function decodeObject(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) Object.defineProperty(out, k, { value: decodeJsonValue(o[k]), enumerable: true, writable: true, configurable: true });
  return out;
}
