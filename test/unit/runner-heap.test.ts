/**
 * The runner's bound on V8's heap growth (src/runner/heap.ts): bad values are refused before any
 * flag is set, 0 leaves V8's own factor, and a value is set once. Its effect on the peak RSS is a
 * bench figure (bench/e2e.ts), not a test.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { boundHeapGrowth, RUNNER_HEAP_GROWING_PERCENT } from '../../src/runner/heap.js';

test('boundHeapGrowth refuses negative, fractional, huge and non-numbers; 0 sets nothing; a value is set once', () => {
  for (const bad of [-1, 0.5, 1001, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => boundHeapGrowth(bad), RangeError, String(bad));
  assert.equal(boundHeapGrowth(0), false);
  assert.equal(boundHeapGrowth(), true);
  assert.equal(boundHeapGrowth(RUNNER_HEAP_GROWING_PERCENT), false, 'already set');
  assert.equal(boundHeapGrowth(60), true);
});
