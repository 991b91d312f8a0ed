/**
 * The pure parts of the parallel import: a batch's items packed into one buffer for a worker thread
 * come back the same, and the number of threads (HUBSINK_IMPORT_WORKERS).
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config.js';
import { packItems, unpackItems } from '../../src/import/importBatch.js';
import type { ImportItem } from '../../src/import/records.js';

test('items packed for a worker thread unpack to the same bodies, lines, positions and errors', () => {
  const items: ImportItem[] = [
    { line: 1, unit: 1, endByte: 12, body: Buffer.from('{"a":"é"}') },
    { line: 2, unit: 2, endByte: 13, body: Buffer.alloc(0), error: 'line too long' },
    { line: 4, unit: 5, endByte: 2 ** 40, body: Buffer.from('x'.repeat(3000)) },
    { line: 6, unit: 6, endByte: 2 ** 40 + 9, body: Buffer.from([0xff, 0x00, 0x0a]), error: 'CSV: "quote" ' },
  ];
  // Bodies that are views into one larger buffer, as the line splitter hands them out.
  const slab = Buffer.concat([Buffer.from('noise'), items[0]?.body ?? Buffer.alloc(0), Buffer.from('more')]);
  const first = items[0];
  if (first) first.body = slab.subarray(5, 5 + first.body.length);
  const packed = packItems(items);
  assert.equal(packed.bodies.byteLength, items.reduce((n, i) => n + i.body.length, 0), 'only the bodies travel, not their backing buffers');
  const back = unpackItems(packed);
  assert.equal(back.length, items.length);
  back.forEach((b, k) => {
    const want = items[k];
    assert.ok(want);
    assert.deepEqual({ ...b, body: b.body.toString('latin1') }, { ...want, body: want.body.toString('latin1') });
  });
  assert.deepEqual(unpackItems(packItems([])), []);
});

test('HUBSINK_IMPORT_WORKERS: one thread by default, 1 to 64 when set, anything else refused', () => {
  assert.equal(loadConfig({}).importWorkers, 1);
  assert.equal(loadConfig({ HUBSINK_IMPORT_WORKERS: '4' }).importWorkers, 4);
  assert.equal(loadConfig({ HUBSINK_IMPORT_WORKERS: '1' }).importWorkers, 1);
  assert.equal(loadConfig({ HUBSINK_IMPORT_WORKERS: '64' }).importWorkers, 64);
  for (const bad of ['0', '-2', '65', '1.5', 'many']) {
    assert.throws(() => loadConfig({ HUBSINK_IMPORT_WORKERS: bad }), (err: unknown) => err instanceof ConfigError && /HUBSINK_IMPORT_WORKERS/.test(err.message), bad);
  }
});
