import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { createRng, ZipfSampler } from '../../src/generator/prng.js';
import { allowance } from '../../src/generator/send.js';
import { isoWithOffset, uuidV7 } from '../../src/generator/retail.js';

describe('seeded random numbers', () => {
  test('same seed, same sequence; values in [0, 1); ints in range', () => {
    const a = createRng('s');
    const b = createRng('s');
    const xs = Array.from({ length: 1000 }, () => a.next());
    assert.deepEqual(xs, Array.from({ length: 1000 }, () => b.next()));
    for (const x of xs) assert.ok(x >= 0 && x < 1);
    const r = createRng(7);
    for (let i = 0; i < 1000; i++) {
      const n = r.int(6);
      assert.ok(Number.isInteger(n) && n >= 0 && n < 6);
    }
    assert.throws(() => r.int(0), RangeError);
    assert.throws(() => r.pick([]), RangeError);
  });

  test('uniform enough: each decile within binomial bounds', () => {
    const r = createRng('deciles');
    const n = 100_000;
    const bins = new Array<number>(10).fill(0);
    for (let i = 0; i < n; i++) bins[Math.floor(r.next() * 10)]! += 1;
    const sd = Math.sqrt(n * 0.1 * 0.9);
    for (const c of bins) assert.ok(Math.abs(c - n / 10) < 4.5 * sd, `decile count ${c}`);
  });

  test('forks are independent of each other and reproducible', () => {
    const f1 = createRng('root').fork('a');
    const f2 = createRng('root').fork('a');
    const g = createRng('root').fork('b');
    const s1 = Array.from({ length: 50 }, () => f1.next());
    assert.deepEqual(s1, Array.from({ length: 50 }, () => f2.next()));
    assert.notDeepEqual(s1, Array.from({ length: 50 }, () => g.next()));
  });
});

describe('Zipf sampler', () => {
  test('probabilities sum to 1 and fall with rank', () => {
    const z = new ZipfSampler(50, 1.1);
    let sum = 0;
    for (let k = 1; k <= 50; k++) {
      sum += z.probability(k);
      if (k > 1) assert.ok(z.probability(k) < z.probability(k - 1));
    }
    assert.ok(Math.abs(sum - 1) < 1e-9);
    assert.equal(z.probability(0), 0);
    assert.equal(z.probability(51), 0);
  });

  test('sampled frequencies match the probabilities within binomial bounds', () => {
    const z = new ZipfSampler(20, 1.2);
    const r = createRng('zipf');
    const n = 100_000;
    const counts = new Array<number>(21).fill(0);
    for (let i = 0; i < n; i++) counts[z.sample(r.next())]! += 1;
    assert.equal(counts[0], 0);
    for (let k = 1; k <= 20; k++) {
      const p = z.probability(k);
      const sd = Math.sqrt(n * p * (1 - p));
      assert.ok(Math.abs((counts[k] ?? 0) - n * p) < 4.5 * sd, `rank ${k}: ${counts[k]} vs ${(n * p).toFixed(0)}`);
    }
  });

  test('exponent 0 is uniform; edges map into range', () => {
    const z = new ZipfSampler(4, 0);
    for (let k = 1; k <= 4; k++) assert.ok(Math.abs(z.probability(k) - 0.25) < 1e-12);
    assert.equal(z.sample(0), 1);
    assert.equal(z.sample(0.999999999), 4);
    assert.throws(() => new ZipfSampler(0, 1), RangeError);
  });
});

describe('event fields', () => {
  test('UUIDv7 carries the timestamp and version bits', () => {
    const ms = Date.parse('2026-03-10T12:34:56.789Z');
    const id = uuidV7(ms, createRng('u'));
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(parseInt(id.replace(/-/g, '').slice(0, 12), 16), ms);
  });

  test('a time written with an offset is the same instant', () => {
    const ms = Date.parse('2026-03-10T00:30:00.125Z');
    assert.equal(isoWithOffset(ms, 0), '2026-03-10T00:30:00.125Z');
    assert.equal(isoWithOffset(ms, -300), '2026-03-09T19:30:00.125-05:00');
    assert.equal(isoWithOffset(ms, 330), '2026-03-10T06:00:00.125+05:30');
    for (const off of [-300, 60, 330, 540]) assert.equal(Date.parse(isoWithOffset(ms, off)), ms);
  });
});

describe('rate allowance', () => {
  test('paces to the rate, caps per tick and at the remaining count', () => {
    assert.equal(allowance(200, 0, 0, 1000, 1e9), 0);
    assert.equal(allowance(200, 1000, 0, 1000, 1e9), 200);
    assert.equal(allowance(200, 1000, 150, 1000, 1e9), 50);
    assert.equal(allowance(200, 1000, 250, 1000, 1e9), 0);
    assert.equal(allowance(10_000, 1000, 0, 500, 1e9), 500);
    assert.equal(allowance(undefined, 0, 0, 2000, 30), 30);
    assert.equal(allowance(undefined, 0, 0, 2000, 0), 0);
  });
});
