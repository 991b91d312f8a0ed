import { test } from 'vitest';
import assert from 'node:assert/strict';
import { FrameSizeGuard } from '../../src/frameGuard.js';

function frame(size: number): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32BE(size, 0);
  return b;
}

test('frames within the limit pass, split anywhere; a protocol header is skipped; one too large is caught', () => {
  const stream = Buffer.concat([Buffer.from('AMQP\x03\x01\x00\x00', 'latin1'), frame(40), Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'), frame(1000), frame(8)]);
  for (const step of [1, 3, 7, 64, stream.length]) {
    const g = new FrameSizeGuard(1000);
    for (let off = 0; off < stream.length; off += step) assert.equal(g.push(stream.subarray(off, off + step)), true, `step ${step} at ${off}`);
  }
  const g = new FrameSizeGuard(1000);
  assert.equal(g.push(Buffer.concat([Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'), frame(100)])), true);
  const big = Buffer.alloc(4);
  big.writeUInt32BE(1001, 0);
  assert.equal(g.push(big.subarray(0, 2)), true);
  assert.equal(g.push(big.subarray(2)), false);
  assert.equal(new FrameSizeGuard(1000).push(Buffer.from([0, 0, 0, 3])), false, 'a size below the 8-byte header is malformed');
});
