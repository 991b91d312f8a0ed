/**
 * What bounds `hubsink import`'s reading of hostile files: a line longer than the cap becomes a
 * short "line too long" item (file, line, first bytes) and reading goes on at the next line; the
 * splitter gives the same items however the bytes are chunked; a CSV record past the cap stops the
 * file with an error naming the setting; a .gz that expands past the ratio is refused.
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { readItems, TOO_LONG_KEEP_BYTES, type ImportItem, type ReadOptions } from '../../src/import/records.js';
import { hasDotSegment, withoutQuery, type ImportFormat, type ImportSource } from '../../src/import/sources.js';

/** A source whose bytes arrive in chunks of `chunk` bytes (the carry-over across chunks is what is tested). */
function source(bytes: Buffer, opts: { chunk?: number; format?: ImportFormat; gzip?: boolean } = {}): ImportSource {
  const size = opts.chunk ?? 64 * 1024;
  return {
    name: '/data/x',
    size: bytes.length,
    modifiedAt: new Date(0),
    format: opts.format ?? 'ndjson',
    gzip: opts.gzip ?? false,
    open: (start = 0) => {
      const parts: Buffer[] = [];
      for (let i = start; i < bytes.length; i += size) parts.push(bytes.subarray(i, Math.min(bytes.length, i + size)));
      return Promise.resolve(Readable.from(parts, { objectMode: false }));
    },
  };
}

async function read(src: ImportSource, o: Partial<ReadOptions> = {}): Promise<ImportItem[]> {
  const out: ImportItem[] = [];
  for await (const it of readItems(src, { skipUnits: 0, startByte: 0, csvMaps: new Map(), maxLineBytes: 100, maxGzipRatio: 200, ...o })) out.push(it);
  return out;
}

const shape = (items: ImportItem[]) => items.map((i) => ({ line: i.line, unit: i.unit, endByte: i.endByte, body: i.body.toString('latin1'), error: i.error }));

describe('NDJSON lines past HUBSINK_MAX_BODY_BYTES', () => {
  const long = `{"tenantId":1,"pad":"${'x'.repeat(5000)}"}`;
  const text = `{"a":1}\n${long}\n{"b":2}\r\n${'y'.repeat(150)}\n{"c":3}`;

  test('a long line is a short "line too long" item with its line number and first bytes; the next lines are read as usual', async () => {
    for (const chunk of [1, 7, 100, 101, 4096, 1 << 20]) {
      const got = await read(source(Buffer.from(text), { chunk }));
      assert.deepEqual(
        got.map((i) => [i.line, i.error === undefined ? i.body.toString() : i.body.length]),
        [
          [1, '{"a":1}'],
          [2, TOO_LONG_KEEP_BYTES],
          [3, '{"b":2}'],
          [4, 150],
          [5, '{"c":3}'],
        ],
        `chunks of ${chunk}`,
      );
      assert.equal(got[1]?.body.toString(), long.slice(0, TOO_LONG_KEEP_BYTES));
      assert.match(got[1]?.error ?? '', new RegExp(`^line too long: ${long.length} bytes, more than HUBSINK_MAX_BODY_BYTES \\(100\\); only its first 256 bytes are kept$`));
      assert.match(got[3]?.error ?? '', /line too long: 150 bytes.*first 150 bytes/);
      // Positions count every byte, kept or not, so a resume seeks to the right place.
      assert.deepEqual(got.map((i) => i.endByte), [8, 8 + long.length + 1, 8 + long.length + 1 + 9, 8 + long.length + 1 + 9 + 151, text.length]);
    }
  });

  test('a line exactly at the cap is kept; one byte more is not; a BOM and CR do not count', async () => {
    const at = 'z'.repeat(100);
    for (const chunk of [3, 50, 1 << 20]) {
      const got = await read(source(Buffer.from(`\uFEFF${at}\r\n${at}z\n${at}\r\n`), { chunk }));
      assert.deepEqual(got.map((i) => [i.line, i.error === undefined ? i.body.length : 'too long']), [[1, 100], [2, 'too long'], [3, 100]], `chunks of ${chunk}`);
    }
  });

  test('the same items however the bytes are chunked, a last line without newline and a resume included', async () => {
    const lines = Array.from({ length: 300 }, (_, i) => (i % 17 === 0 ? 'q'.repeat(90 + (i % 40)) : i % 23 === 0 ? '' : `{"i":${i}}`));
    const bytes = Buffer.from(lines.join('\n'));
    const whole = shape(await read(source(bytes, { chunk: bytes.length })));
    assert.equal(whole.filter((i) => i.error).length, lines.filter((l) => l.length > 100).length);
    for (const chunk of [1, 2, 5, 64, 99, 100, 101, 1000]) assert.deepEqual(shape(await read(source(bytes, { chunk }))), whole, `chunks of ${chunk}`);
    const k = 150;
    const resumed = shape(await read(source(bytes, { chunk: 13 }), { skipUnits: k, startByte: Buffer.from(lines.slice(0, k).join('\n')).length + 1 }));
    assert.deepEqual(resumed, whole.filter((i) => i.line > k));
    const gz = shape(await read(source(gzipSync(bytes), { chunk: 31, gzip: true }), { skipUnits: k }));
    assert.deepEqual(gz, whole.filter((i) => i.line > k));
  });

  test('a file that is one 4 MiB line is one short item', async () => {
    const got = await read(source(Buffer.alloc(4 << 20, 0x61), { chunk: 64 * 1024 }), { maxLineBytes: 1024 });
    assert.equal(got.length, 1);
    assert.equal(got[0]?.body.length, TOO_LONG_KEEP_BYTES);
    assert.equal(got[0]?.endByte, 4 << 20);
    assert.match(got[0]?.error ?? '', /line too long: 4194304 bytes/);
  });
});

describe('CSV records past HUBSINK_MAX_BODY_BYTES', () => {
  test('an unclosed quote stops the file with an error naming the line and the setting', async () => {
    const csv = `tenantId,type,note\n1,click,a\n2,click,"never closed\n${'3,click,b\n'.repeat(5000)}`;
    const seen: ImportItem[] = [];
    const src = source(Buffer.from(csv), { chunk: 1000, format: 'csv' });
    await assert.rejects(
      (async () => {
        for await (const it of readItems(src, { skipUnits: 0, startByte: 0, csvMaps: new Map(), maxLineBytes: 1000, maxGzipRatio: 200 })) seen.push(it);
      })(),
      (err: Error) => {
        assert.equal(err.name, 'ImportFileError');
        assert.match(err.message, /^\/data\/x: the CSV record at line \d+ is longer than HUBSINK_MAX_BODY_BYTES \(1000\) characters/);
        return true;
      },
    );
    // Nothing past the record is read: the parser is stopped at it.
    assert.ok(seen.every((i) => i.line === 2));
  });

  test('records within the cap are read as before', async () => {
    const csv = `tenantId,type,note\n1,click,"${'n'.repeat(900)}"\n2,click,b\n`;
    const got = await read(source(Buffer.from(csv), { chunk: 100, format: 'csv' }), { maxLineBytes: 1000 });
    assert.deepEqual(got.map((i) => [i.line, i.error]), [[2, undefined], [3, undefined]]);
  });
});

describe('.gz expansion ratio', () => {
  test('a gzip bomb is refused with an error naming HUBSINK_IMPORT_MAX_GZIP_RATIO, before it is read to the end', async () => {
    const bomb = gzipSync(Buffer.alloc(64 << 20, 0x0a));
    assert.ok(bomb.length < 100_000);
    let raw = 0;
    const src = source(bomb, { chunk: 1024, gzip: true });
    await assert.rejects(
      (async () => {
        for await (const it of readItems(src, { skipUnits: 0, startByte: 0, csvMaps: new Map(), maxLineBytes: 1000, maxGzipRatio: 100, onRawBytes: (n) => (raw += n) })) void it;
      })(),
      /\/data\/x: refused after [\d.]+ MiB expanded from \d+ KiB of gzip, more than 100 times its size \(a decompression bomb\?\); raise HUBSINK_IMPORT_MAX_GZIP_RATIO to import it/,
    );
    assert.ok(raw < bomb.length, `stopped after ${raw} of ${bomb.length} stored bytes`);
  });

  test('ordinary gzip of events passes the default ratio', async () => {
    const text = Array.from({ length: 20_000 }, (_, i) => `{"tenantId":${i % 7},"type":"page_view","occurredAt":"2026-01-01T00:00:00Z","n":${i}}`).join('\n');
    const got = await read(source(gzipSync(text), { gzip: true }), { maxGzipRatio: 200 });
    assert.equal(got.length, 20_000);
  });
});

describe('blob names and display names', () => {
  test('names with . or .. segments, plain, percent-encoded or between backslashes', () => {
    for (const bad of ['data/../x.ndjson', 'data/%2E%2E/%2E%2E/other/x.ndjson', 'data/%2e./x.ndjson', '../x.ndjson', 'data/./x.ndjson', 'data/%2E/x.ndjson', 'data\\..\\x.ndjson', 'data/%252E%252E/x.ndjson', 'a/%2E%2E', 'a/%zz/../b']) {
      assert.equal(hasDotSegment(bad), true, bad);
    }
    for (const ok of ['data/x.ndjson', 'data/..x.ndjson', 'data/x..ndjson', 'data/.hidden.ndjson', 'data/%2E%2Ex/y.ndjson', 'a/%zz/b']) assert.equal(hasDotSegment(ok), false, ok);
  });
  test('a service URL with a SAS loses its query', () => {
    assert.equal(withoutQuery('http://127.0.0.1:10000/devstoreaccount1?sv=2025&sig=abc%3D'), 'http://127.0.0.1:10000/devstoreaccount1');
    assert.equal(withoutQuery('https://acct.blob.core.windows.net/?sv=1&sig=x'), 'https://acct.blob.core.windows.net');
  });
});
