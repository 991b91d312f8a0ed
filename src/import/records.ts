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

async function openDecoded(src: ImportSource, start: number, onRawBytes?: (n: number) => void): Promise<Readable> {
  const raw = await src.open(start);
  const counted = raw.pipe(counting(onRawBytes));
  raw.on('error', (err) => counted.destroy(err));
  if (!src.gzip) return counted;
  const gunzip = createGunzip();
  counted.on('error', (err) => gunzip.destroy(err));
  return counted.pipe(gunzip);
}

/** Pure: is a line only spaces and tabs (blank lines are skipped, not invalid)? */
function blank(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c !== 0x20 && c !== 0x09 && c !== CR) return false;
  }
  return true;
}

export async function* ndjsonItems(src: ImportSource, opts: ReadOptions): AsyncGenerator<ImportItem> {
  // Uncompressed files resume by seeking; compressed ones are read again from the start.
  const seek = !src.gzip && opts.skipUnits > 0;
  const stream = await openDecoded(src, seek ? opts.startByte : 0, opts.onRawBytes);
  let line = seek ? opts.skipUnits : 0;
  let offset = seek ? opts.startByte : 0;
  let carry: Buffer | undefined;
  let first = !seek;
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
    // A copy: the chunk buffer is reused by nothing, but a subarray would keep the whole chunk alive.
    return { line, unit: line, endByte, body: Buffer.from(buf.subarray(s, e)) };
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let buf = chunk;
    if (carry) {
      buf = Buffer.concat([carry, chunk]);
      carry = undefined;
    }
    let pos = 0;
    for (let nl = buf.indexOf(NL, pos); nl >= 0; nl = buf.indexOf(NL, pos)) {
      const item = emit(buf, pos, nl);
      if (item) yield item;
      pos = nl + 1;
    }
    if (pos < buf.length) carry = buf.subarray(pos);
  }
  if (carry && carry.length > 0) {
    const item = emit(carry, 0, carry.length);
    // The last line had no newline: it ends at the end of the file.
    if (item) yield { ...item, endByte: item.endByte - 1 };
  }
}

export async function* csvItems(src: ImportSource, opts: ReadOptions): AsyncGenerator<ImportItem> {
  const stream = await openDecoded(src, 0, opts.onRawBytes);
  let mapping: CsvMapping | undefined;
  const skipped: ImportItem[] = [];
  // The header is the first record: the parser then holds every record to its number of columns.
  const parser = parseCsv({ bom: true, info: true, raw: true, skip_empty_lines: true, skip_records_with_error: true });
  parser.on('skip', (err: Error & { lines?: number; raw?: string }) => {
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
