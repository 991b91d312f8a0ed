import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { retryForever } from '../../src/runner/retry.js';
import { anySignal } from '../../src/runner/checkpointingConsumer.js';
import { emptyStats, statusLine } from '../../src/runner/stats.js';

describe('batch retry', () => {
  test('retries the same batch until it succeeds, reporting each failure', async () => {
    let calls = 0;
    const failures: number[] = [];
    const slept: number[] = [];
    const out = await retryForever(
      () => {
        calls++;
        return calls < 6 ? Promise.reject(new Error(`down ${calls}`)) : Promise.resolve('written');
      },
      { signal: new AbortController().signal, onFailure: (n) => failures.push(n), sleep: (ms) => (slept.push(ms), Promise.resolve()), random: () => 0 },
    );
    assert.deepEqual(out, { ok: true, value: 'written', attempts: 6 });
    assert.deepEqual(failures, [1, 2, 3, 4, 5]);
    assert.deepEqual(slept, [250, 500, 1000, 2000, 4000]);
  });

  test('an abort lets the attempt in progress finish but starts no new one', async () => {
    const ctl = new AbortController();
    let calls = 0;
    const out = await retryForever(
      () => {
        calls++;
        ctl.abort();
        return Promise.reject(new Error('still down'));
      },
      { signal: ctl.signal, onFailure: () => undefined, sleep: () => Promise.resolve() },
    );
    assert.equal(calls, 1);
    assert.equal(out.ok, false);
    assert.equal(out.attempts, 1);
    assert.match(String(out.ok ? '' : (out.error as Error).message), /still down/);
  });

  test('the real sleep returns early on abort', async () => {
    const ctl = new AbortController();
    let calls = 0;
    // Without the early return this would sleep ten minutes and the test would time out.
    const p = retryForever(
      () => {
        calls++;
        return Promise.reject(new Error('x'));
      },
      { signal: ctl.signal, onFailure: () => setImmediate(() => ctl.abort()), baseMs: 600_000, capMs: 600_000, random: () => 1 },
    );
    const out = await p;
    assert.equal(out.ok, false);
    assert.equal(calls, 1);
  });

  test('anySignal aborts with any input and releases its listeners', () => {
    const a = new AbortController();
    const b = new AbortController();
    const c = anySignal([a.signal, b.signal]);
    assert.equal(c.signal.aborted, false);
    b.abort();
    assert.equal(c.signal.aborted, true);
    c.dispose();
    const pre = new AbortController();
    pre.abort();
    assert.equal(anySignal([pre.signal]).signal.aborted, true);
  });
});

describe('status line', () => {
  test('reports counts, the rate between snapshots, and the optional parts', () => {
    const prev = emptyStats(0, { deadLetter: true, rollups: true });
    const cur = emptyStats(0, { deadLetter: true, rollups: true });
    cur.ingest.received = 1000;
    cur.ingest.inserted = 950;
    cur.ingest.duplicates = 40;
    cur.ingest.deadLettered.invalid = 10;
    cur.ingest.partitions = ['0', '2'];
    cur.deadletter.parked.invalid = 10;
    cur.rollups.runs = 3;
    cur.rollups.folded = 900;
    const line = statusLine(cur, prev, 2000);
    assert.match(line, /^in=1000 rate=500\/s inserted=950 duplicates=40 dead_lettered=invalid:10,rejected:0,transient:0 partitions=0,2 /);
    assert.match(line, /parked=invalid:10,rejected:0/);
    assert.match(line, /rollup_runs=3 rolled_up=900$/);
    assert.doesNotMatch(statusLine(emptyStats(0, { deadLetter: false, rollups: false }), undefined, 0), /rate|dlq|rollup/);
  });
});
