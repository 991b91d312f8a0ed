import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { backoffDelay, MAX_DELAY_MS, type BackoffPolicy } from '../../src/pipeline/backoff.js';
import { WRITE_BACKOFF } from '../../src/db/events.js';
import { BATCH_RETRY_BACKOFF } from '../../src/runner/retry.js';

describe('backoffDelay with the database writes’ policy (db/events.ts)', () => {
  test('doubles from 100 ms, is capped at 5 s, and jitters within the upper half', () => {
    assert.deepEqual(WRITE_BACKOFF, { baseMs: 100, capMs: 5_000 });
    const table: [attempt: number, random: number, ms: number][] = [
      [1, 0, 50],
      [1, 0.999, 100],
      [2, 0, 100],
      [3, 0.5, 300],
      [6, 0, 1600],
      [7, 0, 2500],
      [7, 1, 5000],
      [60, 0.5, 3750],
    ];
    for (const [attempt, random, ms] of table) assert.equal(backoffDelay(attempt, random, WRITE_BACKOFF), ms, `attempt ${attempt}, random ${random}`);
    assert.ok(backoffDelay(1000, 0.999, WRITE_BACKOFF) <= WRITE_BACKOFF.capMs);
  });
});

describe('backoffDelay with the runner’s batch retry policy (runner/retry.ts)', () => {
  test('delays grow exponentially, stay within the cap, jitter only the upper half', () => {
    assert.deepEqual(BATCH_RETRY_BACKOFF, { baseMs: 500, capMs: 30_000 });
    assert.equal(backoffDelay(1, 0, BATCH_RETRY_BACKOFF), 250);
    assert.equal(backoffDelay(1, 1, BATCH_RETRY_BACKOFF), 500);
    assert.equal(backoffDelay(2, 0, BATCH_RETRY_BACKOFF), 500);
    assert.equal(backoffDelay(3, 1, BATCH_RETRY_BACKOFF), 2000);
    for (let a = 1; a < 100; a++) {
      const d = backoffDelay(a, 0.5, BATCH_RETRY_BACKOFF);
      assert.ok(d >= 250 && d <= BATCH_RETRY_BACKOFF.capMs, `attempt ${a}: ${d}`);
    }
    assert.equal(backoffDelay(1000, 1, BATCH_RETRY_BACKOFF), BATCH_RETRY_BACKOFF.capMs);
  });
});

describe('backoffDelay at its edges', () => {
  const policy: BackoffPolicy = { baseMs: 100, capMs: 5_000 };

  test('jitter stays within [exp / 2, exp] for any random, clamped outside [0, 1]', () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      const exp = Math.min(policy.capMs, policy.baseMs * 2 ** (attempt - 1));
      for (const random of [0, 0.001, 0.25, 0.5, 0.75, 0.999, 1]) {
        const d = backoffDelay(attempt, random, policy);
        assert.ok(d >= Math.round(exp / 2) && d <= exp, `attempt ${attempt}, random ${random}: ${d} not in [${exp / 2}, ${exp}]`);
      }
      assert.equal(backoffDelay(attempt, -3, policy), Math.round(exp / 2), 'a negative random counts as 0');
      assert.equal(backoffDelay(attempt, 7, policy), exp, 'a random above 1 counts as 1');
      assert.equal(backoffDelay(attempt, Number.NaN, policy), Math.round(exp / 2), 'NaN counts as 0');
    }
  });

  test('attempt 0, negative, fractional or NaN attempts count as the first', () => {
    for (const attempt of [0, -1, -1e308, 0.5, Number.NaN, Number.NEGATIVE_INFINITY]) {
      assert.equal(backoffDelay(attempt, 0, policy), 50, `attempt ${attempt}`);
      assert.equal(backoffDelay(attempt, 1, policy), 100, `attempt ${attempt}`);
    }
    assert.equal(backoffDelay(2.9, 1, policy), 200, 'a fractional attempt is rounded down');
  });

  test('huge attempts give the cap, never Infinity or NaN', () => {
    for (const attempt of [31, 64, 1024, 1025, 1e6, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE, Number.POSITIVE_INFINITY]) {
      for (const random of [0, 1]) {
        const d = backoffDelay(attempt, random, policy);
        assert.ok(Number.isSafeInteger(d), `attempt ${attempt}: ${d}`);
        assert.equal(d, random === 0 ? policy.capMs / 2 : policy.capMs, `attempt ${attempt}`);
      }
    }
    // A large base times 2 ** 1023 is Infinity before the cap applies; the cap still wins.
    assert.equal(backoffDelay(Number.POSITIVE_INFINITY, 1, { baseMs: 1e9, capMs: 60_000 }), 60_000);
  });

  test('base and cap are read as setTimeout delays: non-positive or NaN give 0, huge ones MAX_DELAY_MS', () => {
    assert.equal(backoffDelay(5, 1, { baseMs: 0, capMs: 5_000 }), 0);
    assert.equal(backoffDelay(5, 1, { baseMs: Number.NaN, capMs: 5_000 }), 0);
    assert.equal(backoffDelay(5, 1, { baseMs: 100, capMs: -1 }), 0);
    assert.equal(backoffDelay(1e6, 1, { baseMs: 100, capMs: Number.POSITIVE_INFINITY }), MAX_DELAY_MS);
    assert.equal(backoffDelay(1, 1, { baseMs: Number.POSITIVE_INFINITY, capMs: Number.POSITIVE_INFINITY }), MAX_DELAY_MS);
    assert.equal(backoffDelay(1, 1, { baseMs: 9_000, capMs: 5_000 }), 5_000, 'a base above the cap is capped');
  });
});
