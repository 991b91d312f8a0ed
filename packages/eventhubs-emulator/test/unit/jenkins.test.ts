import { test } from 'vitest';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { hashlittle2, partitionForKey } from '../../src/jenkins.js';

const hex = (pair: [number, number]): [string, string] => [pair[0].toString(16), pair[1].toString(16)];

test('hashlittle2 matches the reference vectors published with lookup3.c', () => {
  const four = Buffer.from('Four score and seven years ago');
  assert.deepEqual(hex(hashlittle2(Buffer.alloc(0))), ['deadbeef', 'deadbeef']);
  assert.deepEqual(hex(hashlittle2(Buffer.alloc(0), 0, 0xdeadbeef)), ['bd5b7dde', 'deadbeef']);
  assert.deepEqual(hex(hashlittle2(Buffer.alloc(0), 0xdeadbeef, 0xdeadbeef)), ['9c093ccd', 'bd5b7dde']);
  assert.deepEqual(hex(hashlittle2(four)), ['17770551', 'ce7226e6']);
  assert.deepEqual(hex(hashlittle2(four, 0, 1)), ['e3607cae', 'bd371de4']);
  assert.deepEqual(hex(hashlittle2(four, 1, 0)), ['cd628161', '6cbea4b3']);
});

test('placement is stable, in range, and depends on the partition count', () => {
  for (const n of [1, 2, 3, 4, 7, 32]) {
    for (const key of ['a', 'tenant-17', '', 'ü', 'x'.repeat(100)]) {
      const p = partitionForKey(key, n);
      assert.ok(Number.isInteger(p) && p >= 0 && p < n, `${key} on ${n}`);
      assert.equal(partitionForKey(key, n), p);
    }
  }
  assert.throws(() => partitionForKey('a', 0), RangeError);
});

test('placement agrees with the mapping the Event Hubs SDK uses client-side (buffered producer)', async () => {
  // The SDK does not export its mapper; load it from its package directory as a test oracle.
  const require = createRequire(import.meta.url);
  const sdkIndex = require.resolve('@azure/event-hubs');
  const mapperPath = path.join(path.dirname(sdkIndex), 'impl', 'partitionKeyToIdMapper.js');
  const mapper = (await import(pathToFileURL(mapperPath).href)) as { mapPartitionKeyToId(key: string, count: number): number };
  const keys = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? `tenant-${i}` : i % 3 === 1 ? `ключ-${i}-🙂` : 'k'.repeat(i % 40)));
  for (const count of [1, 2, 4, 5, 16, 32]) {
    for (const key of keys) assert.equal(partitionForKey(key, count), mapper.mapPartitionKeyToId(key, count), `${key} / ${count}`);
  }
});
