/**
 * Partition-key placement. The service hashes the UTF-8 bytes of the key with Bob Jenkins'
 * lookup3 `hashlittle2` (both seeds 0), folds the two 32-bit results into a signed 16-bit value
 * (c XOR b) and takes |h mod partitionCount|. Written from the published description of lookup3
 * (public domain, 2006); all arithmetic is on uint32 via `>>> 0` and Math.imul-free adds.
 */

function rot(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** hashlittle2: returns [c, b] (the primary and secondary 32-bit hashes). */
export function hashlittle2(key: Uint8Array, seedC = 0, seedB = 0): [number, number] {
  let length = key.length;
  let a = (0xdeadbeef + length + seedC) >>> 0;
  let b = a;
  let c = (a + seedB) >>> 0;
  let i = 0;
  const byte = (j: number): number => key[i + j] ?? 0;
  const word = (j: number): number => (byte(j) | (byte(j + 1) << 8) | (byte(j + 2) << 16) | (byte(j + 3) << 24)) >>> 0;

  while (length > 12) {
    a = (a + word(0)) >>> 0;
    b = (b + word(4)) >>> 0;
    c = (c + word(8)) >>> 0;
    // mix(a, b, c)
    a = (a - c) >>> 0; a = (a ^ rot(c, 4)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rot(a, 6)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rot(b, 8)) >>> 0; b = (b + a) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rot(c, 16)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rot(a, 19)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rot(b, 4)) >>> 0; b = (b + a) >>> 0;
    length -= 12;
    i += 12;
  }
  if (length === 0) return [c, b];

  // The last 1..12 bytes, little-endian into a, b, c (missing bytes are zero).
  const tail = (from: number, count: number): number => {
    let v = 0;
    for (let j = 0; j < count; j++) v |= byte(from + j) << (8 * j);
    return v >>> 0;
  };
  a = (a + tail(0, Math.min(length, 4))) >>> 0;
  if (length > 4) b = (b + tail(4, Math.min(length - 4, 4))) >>> 0;
  if (length > 8) c = (c + tail(8, length - 8)) >>> 0;

  // final(a, b, c)
  c = (c ^ b) >>> 0; c = (c - rot(b, 14)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 11)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 25)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 16)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 4)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 14)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 24)) >>> 0;
  return [c, b];
}

/** Index of the partition a key lands on, for `partitionCount` partitions. */
export function partitionForKey(partitionKey: string, partitionCount: number): number {
  if (!Number.isInteger(partitionCount) || partitionCount < 1) throw new RangeError('partitionCount must be a positive integer');
  const [c, b] = hashlittle2(Buffer.from(partitionKey, 'utf8'));
  const folded = ((c ^ b) << 16) >> 16; // signed 16-bit, as the service does
  return Math.abs(folded % partitionCount);
}
