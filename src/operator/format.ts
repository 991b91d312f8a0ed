/**
 * Text for operators (pure): aligned tables, bodies shown as pretty JSON, text or a hex dump, and
 * values that JSON cannot spell, made readable. Everything meant for a terminal has its control
 * characters escaped (escapeControls): producers control most of it.
 */
import { escapeControls } from './terminal.js';

/** Pure: left-aligned columns separated by two spaces; no trailing spaces; control characters escaped. */
export function formatTable(headers: readonly string[], rawRows: readonly (readonly string[])[]): string {
  const rows = rawRows.map((r) => r.map((c) => escapeControls(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** Pure: one line, at most `max` characters: line breaks become spaces, other controls are escaped. */
export function oneLine(s: string, max: number): string {
  const flat = escapeControls(s.replace(/[\t\n\r]+/g, ' ').trim());
  return flat.length <= max ? flat : `${flat.slice(0, Math.max(0, max - 1))}…`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Pure: the body decoded as UTF-8, or undefined when it is not valid UTF-8. */
export function bodyText(body: Buffer): string | undefined {
  try {
    return utf8.decode(body);
  } catch {
    return undefined;
  }
}

/** Pure: 16 bytes a line: offset, hex, printable ASCII. */
export function hexDump(body: Buffer, maxBytes = 4096): string {
  const lines: string[] = [];
  const n = Math.min(body.length, maxBytes);
  for (let off = 0; off < n; off += 16) {
    const chunk = body.subarray(off, Math.min(off + 16, n));
    const hex = [...chunk].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = [...chunk].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  |${ascii}|`);
  }
  if (body.length > n) lines.push(`… ${body.length - n} more bytes`);
  return lines.join('\n');
}

/**
 * Pure: how a body is shown on a terminal: pretty-printed JSON, else text, else hex. JSON.stringify
 * escapes C0 but not DEL or C1, and text is whatever the producer sent, so both are escaped.
 */
export function formatBody(body: Buffer): { kind: 'json' | 'text' | 'hex'; text: string } {
  const text = bodyText(body);
  if (text === undefined) return { kind: 'hex', text: hexDump(body) };
  try {
    return { kind: 'json', text: escapeControls(JSON.stringify(JSON.parse(text) as unknown, null, 2), { multiline: true }) };
  } catch {
    return { kind: 'text', text: escapeControls(text, { multiline: true }) };
  }
}

/** Pure: a value for JSON output: bytes as base64, bigints as strings, dates as ISO. */
export function jsonSafe(v: unknown): unknown {
  if (v === null || v === undefined) return v ?? null;
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return { base64: Buffer.from(v).toString('base64') };
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) Object.defineProperty(out, k, { value: jsonSafe((v as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return v;
}

/** Pure: "12 s ago", "3 min ago", "2 h ago", "4 d ago". */
export function ago(then: Date, now: Date): string {
  const s = Math.max(0, Math.round((now.getTime() - then.getTime()) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} d ago`;
}

/** Pure: ISO time to the second, for tables. */
export function isoSeconds(d: Date | null | undefined): string {
  if (!d || Number.isNaN(d.getTime())) return '-';
  return `${d.toISOString().slice(0, 19)}Z`;
}
