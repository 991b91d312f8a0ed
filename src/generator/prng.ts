/**
 * A small seeded pseudo-random generator (sfc32, seeded through a string hash). Load generation must
 * be reproducible: a test or a benchmark names a seed and gets the same event stream every time,
 * so Math.random is never used in src/generator.
 */

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** A uniformly chosen element; the array must not be empty. */
  pick<T>(items: readonly T[]): T;
  /** n pseudo-random bytes. */
  bytes(n: number): Buffer;
  /** An independent generator derived from this one's state and a label. */
  fork(label: string): Rng;
}

/** cyrb128: spreads a string over four 32-bit words, the seed state sfc32 wants. */
function hashSeed(seed: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < seed.length; i++) {
    const k = seed.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

export function createRng(seed: string | number): Rng {
  let [a, b, c, d] = hashSeed(String(seed));
  const u32 = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return t >>> 0;
  };
  // Discard the first outputs: sfc32's early values correlate with similar seeds.
  for (let i = 0; i < 15; i++) u32();
  const rng: Rng = {
    next: () => u32() / 4294967296,
    int: (n) => {
      if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`int(n) needs a positive integer, got ${String(n)}`);
      return Math.floor(rng.next() * n);
    },
    chance: (p) => rng.next() < p,
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new RangeError('pick() from an empty list');
      return items[rng.int(items.length)] as T;
    },
    bytes: (n) => {
      const out = Buffer.alloc(n);
      for (let i = 0; i < n; i += 4) {
        const v = u32();
        for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (v >>> (8 * j)) & 0xff;
      }
      return out;
    },
    fork: (label) => createRng(`${u32()}:${u32()}:${label}`),
  };
  return rng;
}

/**
 * Zipf-like sampler over ranks 1..n: P(rank k) ∝ 1 / k^s. A few storefronts get most of the traffic,
 * as on a real multi-tenant retail platform. Inverse CDF with a binary search: O(log n) per draw.
 */
export class ZipfSampler {
  private readonly cdf: Float64Array;

  constructor(
    readonly n: number,
    readonly exponent: number,
  ) {
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`Zipf needs n >= 1, got ${String(n)}`);
    if (!(exponent >= 0) || !Number.isFinite(exponent)) throw new RangeError(`Zipf exponent must be >= 0, got ${String(exponent)}`);
    this.cdf = new Float64Array(n);
    let sum = 0;
    for (let k = 1; k <= n; k++) {
      sum += 1 / k ** exponent;
      this.cdf[k - 1] = sum;
    }
    for (let i = 0; i < n; i++) this.cdf[i] = (this.cdf[i] ?? 0) / sum;
  }

  /** Probability of rank k (1-based). */
  probability(k: number): number {
    if (k < 1 || k > this.n) return 0;
    return (this.cdf[k - 1] ?? 0) - (k > 1 ? (this.cdf[k - 2] ?? 0) : 0);
  }

  /** A rank in 1..n. */
  sample(u: number): number {
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.cdf[mid] ?? 1) > u) hi = mid;
      else lo = mid + 1;
    }
    return lo + 1;
  }
}
