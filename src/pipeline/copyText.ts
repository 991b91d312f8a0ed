/**
 * Pieces of PostgreSQL's COPY text format that both encoders use: the row encoder of the write path
 * (src/db/copyEvents.ts) and the byte scanner (scanCopy.ts). Pure.
 */
import type { EventRow } from './types.js';

const SPECIAL_ALL = /[\\\n\r\t]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const escapeOne = (c: string): string => ESCAPES[c] ?? c;

/**
 * Whether a field may need COPY escapes. Conservative (any code unit up to 13, or a backslash), so
 * the common field skips the replace with one char-code scan instead of a regex call; the replace
 * itself changes only backslash, newline, CR and tab, so the text is the same either way.
 */
function mayNeedEscape(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 13 || c === 92) return true;
  }
  return false;
}

/** One text-format COPY field: backslash escapes, and \N for NULL. Validated text has no NUL. */
export function copyTextField(s: string | null): string {
  if (s === null) return '\\N';
  return mayNeedEscape(s) ? s.replace(SPECIAL_ALL, escapeOne) : s;
}

const PAD2: readonly string[] = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const PAD3: readonly string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

/** `YYYY-MM-DDT` of a day (days since the epoch, 1970–9999), by H. Hinnant's civil-from-days. */
function isoDay(days: number): string {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return `${PAD2[Math.floor(year / 100)]}${PAD2[year % 100]}-${PAD2[month]}-${PAD2[day]}T`;
}

// The events of a batch fall on one or two days: the date part is computed once per day met.
let lastDay = NaN;
let lastDayText = '';

/**
 * Pure: the same text as Date#toISOString for years 1970–9999, several times faster; any other
 * time goes to toISOString.
 */
export function isoUtc(d: Date): string {
  const t = d.getTime();
  if (!(t >= 0 && t < 253402300800000)) return d.toISOString();
  const days = Math.floor(t / 86_400_000);
  if (days !== lastDay) {
    lastDayText = isoDay(days);
    lastDay = days;
  }
  let rem = t - days * 86_400_000;
  const h = Math.floor(rem / 3_600_000);
  rem -= h * 3_600_000;
  const mi = Math.floor(rem / 60_000);
  rem -= mi * 60_000;
  const sec = Math.floor(rem / 1000);
  return `${lastDayText}${PAD2[h]}:${PAD2[mi]}:${PAD2[sec]}.${PAD3[rem - sec * 1000]}Z`;
}


/** JSON text never holds raw control characters, only backslash escapes: double the backslashes. */
function json(v: Record<string, unknown> | null): string {
  if (v === null) return '\\N';
  const s = JSON.stringify(v);
  return s.includes('\\') ? s.replaceAll('\\', '\\\\') : s;
}

/** One row's COPY text line, `enqueued` being its source's enqueued time already formatted. */
export function copyLine(r: EventRow, enqueued: string): string {
  const s = r.raw.source;
  return (
    `${r.tenantId}\t${r.eventId}\t${isoUtc(r.occurredAt)}\t${copyTextField(r.type)}\t${copyTextField(r.sessionId)}\t${copyTextField(r.userId)}\t` +
    `${copyTextField(r.deviceId)}\t${copyTextField(r.url)}\t${copyTextField(r.referrer)}\t${copyTextField(r.campaignId)}\t${copyTextField(r.country)}\t${copyTextField(r.browser)}\t` +
    `${r.revenue === null ? '\\N' : String(r.revenue)}\t${json(r.properties)}\t${copyTextField(s.partitionId)}\t${s.sequenceNumber}\t` +
    `${copyTextField(s.offset)}\t${enqueued}\n`
  );
}

