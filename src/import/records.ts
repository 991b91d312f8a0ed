/**
 * A source's bytes → numbered items, each the JSON body of one event (NDJSON: the line's exact
 * bytes; CSV: the body built from the record by csvMap.ts), or a record that could not even be
 * read as CSV. Positions say where to resume: `unit` counts lines (NDJSON) or source lines up to the
 * end of the record (CSV); `endByte` is the offset after the item in the uncompressed stream.
 */
import { Transform, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { parse as parseCsv, type Info } from 'csv-parse';
import { buildCsvMapping, recordToBody, type ColumnTarget, type CsvMapping } from './csvMap.js';
import type { ImportSource } from './sources.js';
import { HubsinkError } from '../errors.js';

export interface ImportItem {
  /** Line number where the item starts (1-based), for dead letters and messages. */
  line: number;
  /** Position after this item, in units (see above). */
  unit: number;
  endByte: number;
  body: Buffer;
  /** Set when the record could not be read at all (CSV syntax): it is invalid with this error. */
  error?: string;
}

export interface ReadOptions {
  /** Units already done: items up to here are skipped. */
  skipUnits: number;
  /** Where uncompressed NDJSON may start reading (the byte after skipUnits lines). */
  startByte: number;
  csvMaps: ReadonlyMap<string, ColumnTarget>;
  /**
   * The longest line (NDJSON) or record (CSV) kept whole: HUBSINK_MAX_BODY_BYTES, since a longer
   * one is an invalid event anyway. Past it, an NDJSON line is read to its end without being kept
   * and becomes a short "line too long" item; a CSV file stops (see csvItems).
   */
  maxLineBytes: number;
  /** How many times its stored size a .gz may expand to before the file is refused. */
  maxGzipRatio: number;
  /** Raw (stored, possibly compressed) bytes read so far, for the progress bar. */
  onRawBytes?: (n: number) => void;
  onCsvMapping?: (m: CsvMapping) => void;
}

const NL = 0x0a;
const CR = 0x0d;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

function counting(onBytes: ((n: number) => void) | undefined): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      onBytes?.(chunk.length);
      cb(null, chunk);
    },
  });
}

/** The gzip setting a bomb is reported against (config.ts parses it). */
export const GZIP_RATIO_SETTING = 'HUBSINK_IMPORT_MAX_GZIP_RATIO';
/** Small files may expand by more than the ratio: highly repetitive text compresses ~1000:1. */
const GZIP_SLACK_BYTES = 1 << 20;
/** How much of a line too long to keep, for the person who looks at the dead letter. */
export const TOO_LONG_KEEP_BYTES = 256;

export class ImportFileError extends HubsinkError {
  readonly kind = 'failed';
  override name = 'ImportFileError';
}

async function openDecoded(src: ImportSource, start: number, opts: Pick<ReadOptions, 'onRawBytes' | 'maxGzipRatio'>): Promise<Readable> {
  const raw = await src.open(start);
  let stored = 0;
  const counted = raw.pipe(
    counting((n) => {
      stored += n;
      opts.onRawBytes?.(n);
    }),
  );
  raw.on('error', (err) => counted.destroy(err));
  if (!src.gzip) return counted;
  const gunzip = createGunzip();
  counted.on('error', (err) => gunzip.destroy(err));
  // A few KiB of gzip can expand to gigabytes of one repeated byte: stop once the output outgrows
  // the input read so far by the ratio, instead of reading it to the end.
  let expanded = 0;
  const bounded = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      expanded += chunk.length;
      if (expanded > opts.maxGzipRatio * stored + GZIP_SLACK_BYTES) {
        cb(
          new ImportFileError(
            `${src.name}: refused after ${(expanded / 2 ** 20).toFixed(1)} MiB expanded from ${(stored / 1024).toFixed(0)} KiB of gzip, ` +
              `more than ${opts.maxGzipRatio} times its size (a decompression bomb?); raise ${GZIP_RATIO_SETTING} to import it`,
          ),
        );
        return;
      }
      cb(null, chunk);
    },
  });
  gunzip.on('error', (err) => bounded.destroy(err));
  return counted.pipe(gunzip).pipe(bounded);
}

/** Pure: is a line only spaces and tabs (blank lines are skipped, not invalid)? */
function blank(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c !== 0x20 && c !== 0x09 && c !== CR) return false;
  }
  return true;
}

/** Pure: the short item that stands for a line longer than the cap (its first bytes only). */
export function tooLongItem(line: number, endByte: number, head: Buffer, length: number, cap: number): ImportItem {
  return {
    line,
    unit: line,
    endByte,
    body: Buffer.from(head.subarray(0, TOO_LONG_KEEP_BYTES)),
    error: `line too long: ${length} bytes, more than HUBSINK_MAX_BODY_BYTES (${cap}); only its first ${Math.min(TOO_LONG_KEEP_BYTES, head.length)} bytes are kept`,
  };
}

export async function* ndjsonItems(src: ImportSource, opts: ReadOptions): AsyncGenerator<ImportItem> {
  // Uncompressed files resume by seeking; compressed ones are read again from the start.
  const seek = !src.gzip && opts.skipUnits > 0;
  const stream = await openDecoded(src, seek ? opts.startByte : 0, opts);
  const cap = opts.maxLineBytes;
  let line = seek ? opts.skipUnits : 0;
  let offset = seek ? opts.startByte : 0;
  let first = !seek;
  // The start of a line that runs past the chunk: its pieces, joined once its newline arrives (so
  // every byte is scanned once, however long the line).
  let parts: Buffer[] = [];
  let partBytes = 0;
  // A line past the cap: its first bytes and its length so far; the rest is counted, not kept.
  let tooLong: { head: Buffer; length: number } | undefined;

  const emit = (buf: Buffer, start: number, end: number): ImportItem | undefined => {
    line++;
    let s = start;
    if (first) {
      first = false;
      if (end - s >= 3 && buf[s] === BOM[0] && buf[s + 1] === BOM[1] && buf[s + 2] === BOM[2]) s += 3;
    }
    let e = end;
    if (e > s && buf[e - 1] === CR) e--;
    const endByte = offset + (end - start) + 1;
    offset = endByte;
    if (line <= opts.skipUnits || blank(buf, s, e)) return undefined;
    if (e - s > cap) return tooLongItem(line, endByte, buf.subarray(s, Math.min(e, s + TOO_LONG_KEEP_BYTES)), e - s, cap);
    // A copy: a subarray would keep the whole chunk alive.
    return { line, unit: line, endByte, body: Buffer.from(buf.subarray(s, e)) };
  };
  const endTooLong = (t: { head: Buffer; length: number }): ImportItem | undefined => {
    line++;
    first = false;
    const endByte = offset + t.length + 1;
    offset = endByte;
    return line <= opts.skipUnits ? undefined : tooLongItem(line, endByte, t.head, t.length, cap);
  };

  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let pos = 0;
    for (let nl = chunk.indexOf(NL, pos); nl >= 0; nl = chunk.indexOf(NL, pos)) {
      let item: ImportItem | undefined;
      if (tooLong) {
        tooLong.length += nl - pos;
        item = endTooLong(tooLong);
        tooLong = undefined;
      } else if (parts.length > 0) {
        const whole = Buffer.concat([...parts, chunk.subarray(pos, nl)]);
        parts = [];
        partBytes = 0;
        item = emit(whole, 0, whole.length);
      } else item = emit(chunk, pos, nl);
      if (item) yield item;
      pos = nl + 1;
    }
    if (pos >= chunk.length) continue;
    const rest = chunk.subarray(pos);
    if (tooLong) {
      tooLong.length += rest.length;
      continue;
    }
    parts.push(rest);
    partBytes += rest.length;
    // A BOM and a CR do not count against the cap: only a line surely too long is cut (and only
    // once its first bytes are all there, to keep them).
    if (partBytes > Math.max(cap + 4, TOO_LONG_KEEP_BYTES + 3)) {
      const joined = Buffer.concat(parts);
      const bom = first && joined[0] === BOM[0] && joined[1] === BOM[1] && joined[2] === BOM[2] ? 3 : 0;
      tooLong = { head: Buffer.from(joined.subarray(bom, bom + TOO_LONG_KEEP_BYTES)), length: joined.length - bom };
      offset += bom;
      parts = [];
      partBytes = 0;
    }
  }
  if (tooLong) {
    const item = endTooLong(tooLong);
    if (item) yield { ...item, endByte: item.endByte - 1 };
  } else if (partBytes > 0) {
    const carry = Buffer.concat(parts);
    const item = emit(carry, 0, carry.length);
    // The last line had no newline: it ends at the end of the file.
    if (item) yield { ...item, endByte: item.endByte - 1 };
  }
}

/**
 * CSV records. One longer than the cap stops the file with an error instead of being skipped like
 * other bad records: where it ends is unknowable (an unclosed quote runs to the end of the file),
 * and csv-parse drops the rest of the chunk it was reading when it raises the error, good records
 * with it.
 */
export async function* csvItems(src: ImportSource, opts: ReadOptions): AsyncGenerator<ImportItem> {
  const stream = await openDecoded(src, 0, opts);
  let mapping: CsvMapping | undefined;
  const skipped: ImportItem[] = [];
  // The header is the first record: the parser then holds every record to its number of columns.
  const parser = parseCsv({ bom: true, info: true, raw: true, skip_empty_lines: true, skip_records_with_error: true, max_record_size: opts.maxLineBytes });
  parser.on('skip', (err: Error & { code?: string; lines?: number; raw?: string }) => {
    if (err.code === 'CSV_MAX_RECORD_SIZE') {
      parser.destroy(
        new ImportFileError(
          `${src.name}: the CSV record at line ${err.lines ?? '?'} is longer than HUBSINK_MAX_BODY_BYTES (${opts.maxLineBytes}) characters ` +
            '(an unclosed quote runs to the end of the file?): fix the file or raise HUBSINK_MAX_BODY_BYTES, and import it again (what was written is not written twice)',
        ),
      );
      return;
    }
    const lines = typeof err.lines === 'number' ? err.lines : 0;
    skipped.push({ line: lines, unit: lines, endByte: 0, body: Buffer.from(typeof err.raw === 'string' ? err.raw : '', 'utf8'), error: `CSV: ${err.message}` });
  });
  stream.on('error', (err) => parser.destroy(err));
  const through = stream.pipe(parser);
  for await (const entry of through as AsyncIterable<{ record: string[]; info: Info; raw: string }>) {
    while (skipped.length > 0) {
      const s = skipped.shift();
      if (s && s.unit > opts.skipUnits) yield s;
    }
    const { record, info } = entry;
    if (!mapping) {
      mapping = buildCsvMapping(record, opts.csvMaps);
      opts.onCsvMapping?.(mapping);
      continue;
    }
    const end = info.lines;
    if (end <= opts.skipUnits) continue;
    // info.lines is the line the record ends on; a record spanning lines starts earlier.
    const startLine = end - (entry.raw.match(/\n/g)?.length ?? 0) + (entry.raw.endsWith('\n') ? 1 : 0);
    yield { line: startLine, unit: end, endByte: info.bytes, body: recordToBody(mapping, record) };
  }
  for (const s of skipped) if (s.unit > opts.skipUnits) yield s;
}

export function readItems(src: ImportSource, opts: ReadOptions): AsyncGenerator<ImportItem> {
  return src.format === 'csv' ? csvItems(src, opts) : ndjsonItems(src, opts);
}
