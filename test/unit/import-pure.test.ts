import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildCsvMapping, CsvMappingError, parseMaps, recordToBody } from '../../src/import/csvMap.js';
import { readItems, type ImportItem } from '../../src/import/records.js';
import { formatOf, globToRegExp, parseBlobUrl, resolveSources, splitGlob } from '../../src/import/sources.js';

describe('CSV mapping', () => {
  test('columns named like fields map by name, case and underscores ignored; --map for the rest; others go to properties', () => {
    const maps = parseMaps(['ts=occurredAt', 'sku=properties.sku', 'junk=']);
    const m = buildCsvMapping(['event_id', 'TenantId', 'type', 'ts', 'sku', 'junk', 'colour'], maps);
    assert.deepEqual(m.unmapped, ['colour']);
    const body = JSON.parse(recordToBody(m, ['0190f5c2-8a4e-7cc1-9a53-2b1c8f0e4d11', '42', 'purchase', '2026-11-22T10:15:03Z', 'A-1', 'x', 'red']).toString()) as unknown;
    assert.deepEqual(body, { eventId: '0190f5c2-8a4e-7cc1-9a53-2b1c8f0e4d11', tenantId: 42, type: 'purchase', occurredAt: '2026-11-22T10:15:03Z', properties: { colour: 'red', sku: 'A-1' } });
  });

  test('the body does not depend on column order (so derived ids do not either); empty cells are absent', () => {
    const a = buildCsvMapping(['tenantId', 'type', 'occurredAt', 'revenue', 'b', 'a'], new Map());
    const b = buildCsvMapping(['a', 'occurredAt', 'b', 'revenue', 'type', 'tenantId'], new Map());
    const x = recordToBody(a, ['7', 'click', '2026-01-01T00:00:00Z', '', '2', '1']);
    const y = recordToBody(b, ['1', '2026-01-01T00:00:00Z', '2', '', 'click', '7']);
    assert.equal(x.toString(), y.toString());
    assert.equal(x.toString(), '{"tenantId":7,"type":"click","occurredAt":"2026-01-01T00:00:00Z","properties":{"a":"1","b":"2"}}');
  });

  test('numbers where they look like numbers, else left for validation to reject; a properties column is JSON merged with property columns', () => {
    const m = buildCsvMapping(['tenantId', 'revenue', 'properties', 'x'], new Map());
    assert.equal(recordToBody(m, ['12a', '1e3', '{"k":1}', 'v']).toString(), '{"tenantId":"12a","revenue":1000,"properties":{"k":1,"x":"v"}}');
    assert.equal(recordToBody(m, ['1', 'lots', 'not json', '']).toString(), '{"tenantId":1,"revenue":"lots","properties":"not json"}');
  });

  test('a __proto__ column stays an ordinary property', () => {
    const m = buildCsvMapping(['tenantId', '__proto__'], new Map());
    const body = JSON.parse(recordToBody(m, ['1', 'polluted']).toString()) as { properties: Record<string, unknown> };
    assert.equal(Object.getOwnPropertyDescriptor(body.properties, '__proto__')?.value, 'polluted');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('mistakes are named: unknown field, a column mapped twice, a --map for a missing column, two columns for one field', () => {
    assert.throws(() => parseMaps(['a=nope']), CsvMappingError);
    assert.throws(() => parseMaps(['=type']), /expected column=field/);
    assert.throws(() => parseMaps(['a=type', 'a=url']), /mapped twice/);
    assert.throws(() => buildCsvMapping(['a'], parseMaps(['b=type'])), /not in the header: "b"/);
    assert.throws(() => buildCsvMapping(['type', 'kind'], parseMaps(['kind=type'])), /both map to type/);
  });
});

describe('sources', () => {
  test('formats by extension, gzip by .gz', () => {
    assert.deepEqual(formatOf('a/b.ndjson'), { format: 'ndjson', gzip: false });
    assert.deepEqual(formatOf('x.JSONL.gz'), { format: 'ndjson', gzip: true });
    assert.deepEqual(formatOf('x.csv.gz'), { format: 'csv', gzip: true });
    assert.equal(formatOf('x.txt'), undefined);
    assert.deepEqual(formatOf('x.txt', 'csv'), { format: 'csv', gzip: false });
  });

  test('globs: * and ? within a segment, ** across', () => {
    assert.ok(globToRegExp('*.ndjson').test('a.ndjson'));
    assert.ok(!globToRegExp('*.ndjson').test('d/a.ndjson'));
    assert.ok(globToRegExp('**/*.ndjson').test('a.ndjson'));
    assert.ok(globToRegExp('**/*.ndjson').test('x/y/a.ndjson'));
    assert.ok(globToRegExp('day-??.csv').test('day-01.csv'));
    assert.ok(!globToRegExp('a.b').test('axb'));
    assert.deepEqual(splitGlob('data/2026/*.gz'), { base: 'data/2026', pattern: '*.gz' });
    assert.deepEqual(splitGlob('*.csv'), { base: '.', pattern: '*.csv' });
    assert.deepEqual(splitGlob('/abs/**/x.csv'), { base: '/abs', pattern: '**/x.csv' });
  });

  test('blob URLs: account host or path style (Azurite), container, prefix, SAS', () => {
    assert.deepEqual(parseBlobUrl('https://acct.blob.core.windows.net/hist/2026/01?sv=1&sig=abc'), {
      serviceUrl: 'https://acct.blob.core.windows.net',
      account: 'acct',
      container: 'hist',
      prefix: '2026/01',
      sas: 'sv=1&sig=abc',
    });
    assert.deepEqual(parseBlobUrl('http://127.0.0.1:10000/devstoreaccount1/c'), { serviceUrl: 'http://127.0.0.1:10000/devstoreaccount1', account: 'devstoreaccount1', container: 'c', prefix: '', sas: '' });
    assert.throws(() => parseBlobUrl('https://acct.blob.core.windows.net/'), /names a container/);
  });

  test('local: a directory, a glob, a missing path, a file of unknown format', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-src-'));
    try {
      await writeFile(path.join(dir, 'b.ndjson'), '{}\n');
      await writeFile(path.join(dir, 'a.csv.gz'), gzipSync('tenantId\n1\n'));
      await writeFile(path.join(dir, 'notes.txt'), 'x');
      const all = await resolveSources([dir]);
      assert.deepEqual(all.map((s) => path.basename(s.name)), ['a.csv.gz', 'b.ndjson']);
      const globbed = await resolveSources([path.join(dir, '*.ndjson'), path.join(dir, 'b.ndjson')]);
      assert.deepEqual(globbed.map((s) => path.basename(s.name)), ['b.ndjson'], 'each file once');
      await assert.rejects(resolveSources([path.join(dir, 'missing.ndjson')]), /no such file/);
      await assert.rejects(resolveSources([path.join(dir, 'notes.txt')]), /unknown format/);
      await assert.rejects(resolveSources([path.join(dir, '*.parquet')]), /no .* files .* match/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

async function items(content: string | Buffer, name: string, skipUnits = 0, startByte = 0): Promise<ImportItem[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-rec-'));
  try {
    const file = path.join(dir, name);
    await writeFile(file, content);
    const [src] = await resolveSources([file]);
    if (!src) throw new Error('no source');
    const out: ImportItem[] = [];
    for await (const it of readItems(src, { skipUnits, startByte, csvMaps: new Map(), maxLineBytes: 256 * 1024, maxGzipRatio: 200 })) out.push(it);
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('reading lines and records', () => {
  test('NDJSON: exact line bytes, BOM and CR stripped, blank lines skipped but counted, a last line without newline', async () => {
    const got = await items('\uFEFF{"a":1}\r\n\n  \n{"b":2}\n{"c":3}', 'x.ndjson');
    assert.deepEqual(got.map((i) => [i.line, i.body.toString()]), [[1, '{"a":1}'], [4, '{"b":2}'], [5, '{"c":3}']]);
    assert.deepEqual(got.map((i) => i.endByte), [12, 24, 31]);
  });

  test('NDJSON resumes by seeking to the byte after the lines done; gzip by skipping them', async () => {
    const text = '{"a":1}\n{"b":2}\n{"c":3}\n';
    const seeked = await items(text, 'x.ndjson', 1, 8);
    assert.deepEqual(seeked.map((i) => [i.line, i.body.toString(), i.endByte]), [[2, '{"b":2}', 16], [3, '{"c":3}', 24]]);
    const skipped = await items(gzipSync(text), 'x.ndjson.gz', 2, 16);
    assert.deepEqual(skipped.map((i) => [i.line, i.body.toString()]), [[3, '{"c":3}']]);
  });

  test('CSV: header, quoted commas and newlines, line numbers; a record with the wrong number of columns is an item with its error', async () => {
    const csv = 'tenantId,type,occurredAt,note\n1,click,2026-01-01T00:00:00Z,"a, b"\n2,view,2026-01-01T00:00:00Z,"two\nlines"\n3,bad\n4,click,2026-01-01T00:00:00Z,x\n';
    const got = await items(csv, 'x.csv');
    const ok = got.filter((i) => !i.error);
    assert.deepEqual(ok.map((i) => [i.line, i.unit, (JSON.parse(i.body.toString()) as { tenantId: number }).tenantId]), [[2, 2, 1], [3, 4, 2], [6, 6, 4]]);
    const bad = got.filter((i) => i.error);
    assert.equal(bad.length, 1);
    assert.equal(bad[0]?.line, 5);
    assert.match(bad[0]?.error ?? '', /CSV: Invalid Record Length: expect 4, got 2 on line 5/);
    const resumed = await items(csv, 'x.csv', 4);
    assert.deepEqual(resumed.map((i) => i.line), [5, 6]);
  });
});
