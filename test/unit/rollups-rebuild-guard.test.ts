/** The rebuild guard's comparison: only buckets that would shrink count, summed with both numbers. */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { compareBuckets, describeShortfall, refusalMessage } from '../../src/rollups/rebuildGuard.js';

const at = (iso: string) => new Date(iso);

test('compareBuckets: equal or more raw events pass; fewer (or none) are summed with the first and last bucket', () => {
  assert.equal(compareBuckets([], []), undefined);
  assert.equal(compareBuckets([{ bucket: at('2026-01-01T00:00:00Z'), events: 5 }], [{ bucket: at('2026-01-01T00:00:00Z'), events: 5 }]), undefined);
  // More raw than rolled: a rollup pruned before its raw events; the rebuild restores it.
  assert.equal(compareBuckets([{ bucket: at('2026-01-01T00:00:00Z'), events: 5 }], [{ bucket: at('2026-01-01T00:00:00Z'), events: 9 }]), undefined);
  assert.equal(compareBuckets([], [{ bucket: at('2026-01-01T00:00:00Z'), events: 9 }]), undefined);
  // A bucket with more raw events never hides one with fewer.
  const r = compareBuckets(
    [
      { bucket: at('2026-01-03T00:00:00Z'), events: 7 },
      { bucket: at('2026-01-01T00:00:00Z'), events: 100 },
      { bucket: at('2026-01-02T00:00:00Z'), events: 4 },
    ],
    [
      { bucket: at('2026-01-02T00:00:00Z'), events: 1000 },
      { bucket: at('2026-01-03T00:00:00Z'), events: 6 },
    ],
  );
  assert.deepEqual(r, { buckets: 2, rolled: 107, raw: 6, first: at('2026-01-01T00:00:00Z'), last: at('2026-01-03T00:00:00Z') });
});

test('the refusal names each rollup with both numbers and the way out', () => {
  const one = { name: 'day', table: 'rollup_day', grain: 'day' as const, buckets: 1, rolled: 100, raw: 0, first: at('2026-01-01T00:00:00Z'), last: at('2026-01-01T00:00:00Z') };
  const two = { ...one, name: 'minute', table: 'rollup_minute', grain: 'minute' as const, buckets: 3, rolled: 9, raw: 2, last: at('2026-01-01T00:02:00Z') };
  assert.equal(describeShortfall(one), 'rollup_day: the day bucket 2026-01-01T00:00:00.000Z hold 100 events, but only 0 raw events exist for them (would lose 100)');
  assert.equal(describeShortfall(two), 'rollup_minute: 3 minute buckets from 2026-01-01T00:00:00.000Z to 2026-01-01T00:02:00.000Z hold 9 events, but only 2 raw events exist for them (would lose 7)');
  const msg = refusalMessage(42, [one, two]);
  assert.match(msg, /^refusing to rebuild tenant 42/);
  assert.ok(msg.includes(describeShortfall(one)) && msg.includes(describeShortfall(two)));
  assert.match(msg, /Nothing was changed\..*--force/s);
});
