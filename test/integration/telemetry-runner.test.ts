/**
 * `hubsink run --metrics-port`: after a known load, /metrics (scraped as Prometheus would) holds the
 * exact counts, zero lag on every owned partition, the dead-letter hub's backlog, the parked rows and
 * the rollup freshness; /readyz turns unready when the database becomes unreachable (a TCP proxy in
 * front of it is closed) and ready again when it comes back; /healthz stays up throughout.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { detectCapabilities } from '../../src/db/capabilities.js';
import { parkDeadLetters } from '../../src/db/deadLetterParking.js';
import { runRollups } from '../../src/rollups/run.js';
import type { DeadLetterRecord } from '../../src/pipeline/types.js';
import { runnerArgs, sendLoad, spawnHubsink, stackForFile, waitFor, type RunnerProcess, type Stack } from '../support/runner-fixture.js';
import { sample } from '../support/metrics.js';
import { testDatabaseUrl } from '../support/services.js';
import type { TcpProxy } from '../support/tcpProxy.js';
import { makeSource } from '../support/rows.js';
import { hostname } from 'node:os';
import { packageVersion } from '../../src/telemetry/resource.js';

let stack: Stack;
let proxy: TcpProxy;
const children: RunnerProcess[] = [];
stackForFile((s) => (stack = s), children, { partitions: 2, databaseProxy: (p) => (proxy = p) });

function parkedRecord(reason: 'invalid' | 'rejected', seq: number): DeadLetterRecord {
  const at = new Date('2026-01-01T00:00:00Z');
  return {
    reason,
    error: 'test',
    body: Buffer.from(`{"n":${seq}}`),
    properties: {},
    source: makeSource({ hub: stack.hub, partitionId: '0', sequenceNumber: seq, offset: String(seq), enqueuedTime: at }),
    attempts: 1,
    firstFailureAt: at,
    lastFailureAt: at,
  };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    return { status: r.status, body: await r.text() };
  } catch (err) {
    return { status: 0, body: String(err) };
  }
}

test('exact counts, lag, backlog, parked and freshness on /metrics; /readyz follows the database', async () => {
  const { pool, schema } = stack.db;
  await parkDeadLetters(pool, schema, [parkedRecord('invalid', 1), parkedRecord('invalid', 2), parkedRecord('rejected', 3)]);

  const runner = spawnHubsink(runnerArgs(stack, ['--metrics-port', '0']), stack.env({ DATABASE_URL: proxy.url(testDatabaseUrl()) }));
  children.push(runner);
  const logged = await waitFor('the metrics address', () => Promise.resolve(runner.stderr()), (s) => /metrics on http:\/\/127\.0\.0\.1:\d+\/metrics/.test(s) || runner.child.exitCode !== null, 30_000);
  const base = /metrics on (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(logged)?.[1];
  assert.ok(base, logged);
  await waitFor('ready', () => get(`${base}/readyz`), (r) => r.status === 200, 30_000);

  const load = await sendLoad(stack, { count: 600, duplicates: 0.02, malformed: 0.02, seed: 'telemetry-runner' });
  assert.ok(load.malformed > 0 && load.expected.size < 600 - load.malformed, 'the load has invalid events and duplicates');
  const received = (t: string) => sample(t, 'hubsink_events_received_total', { hub: stack.hub }) ?? 0;
  await waitFor('600 received', async () => (await get(`${base}/metrics`)).body, (t) => received(t) >= 600 || runner.child.exitCode !== null, 60_000);

  const { rows } = await pool.query<{ ingested_at: Date }>(`SELECT ingested_at FROM "${schema}".events ORDER BY ingest_seq LIMIT 1`);
  const oldest = rows[0]?.ingested_at.getTime() ?? NaN;
  const t0 = Date.now();
  const text = (await get(`${base}/metrics`)).body;
  const t1 = Date.now();

  assert.equal(received(text), 600);
  assert.equal(sample(text, 'hubsink_events_inserted_total', { hub: stack.hub }), load.expected.size);
  assert.equal(sample(text, 'hubsink_events_duplicate_total', { hub: stack.hub }), 600 - load.malformed - load.expected.size);
  assert.equal(sample(text, 'hubsink_events_dead_lettered_total', { hub: stack.hub, reason: 'invalid' }), load.malformed);
  assert.equal(sample(text, 'hubsink_batch_size_sum', { hub: stack.hub }), 600);
  assert.ok((sample(text, 'hubsink_batch_duration_count', { hub: stack.hub }) ?? 0) >= 2);
  for (const partition of ['0', '1']) assert.equal(sample(text, 'hubsink_ingest_lag', { hub: stack.hub, partition }), 0, `lag of partition ${partition}`);
  // Nobody consumes the dead-letter hub here: every invalid event is still waiting on it.
  assert.equal(sample(text, 'hubsink_deadletter_backlog', { hub: stack.dlHub }), load.malformed);
  assert.equal(sample(text, 'hubsink_deadletters_parked', { reason: 'invalid' }), 2);
  assert.equal(sample(text, 'hubsink_deadletters_parked', { reason: 'rejected' }), 1);
  // No rollup has run: freshness is the age of the first event written, at the moment of the scrape.
  for (const rollup of ['total_minute', 'total_hour', 'campaign_type_day']) {
    const f = (sample(text, 'hubsink_rollup_freshness', { rollup }) ?? NaN) * 1000;
    assert.ok(f >= t0 - oldest - 1 && f <= t1 - oldest + 1, `${rollup} freshness ${f} ms outside [${t0 - oldest}, ${t1 - oldest}]`);
  }
  assert.equal(typeof sample(text, 'hubsink_db_pool_in_use'), 'number');
  // Who reports: the resource, as Prometheus shows it (target_info), not unknown_service:node.
  const pid = runner.child.pid;
  assert.equal(sample(text, 'target_info', { service_name: 'hubsink', service_version: packageVersion(), service_instance_id: `${hostname()}:${pid}` }), 1, text.split('\n').find((l) => l.startsWith('target_info')));
  assert.equal(sample(text, 'hubsink_db_pool_waiting'), 0);

  await runRollups(pool, schema, { caps: await detectCapabilities(pool), maxWindowRows: 1_000_000 });
  const after = (await get(`${base}/metrics`)).body;
  for (const rollup of ['total_minute', 'total_hour', 'campaign_type_day']) assert.equal(sample(after, 'hubsink_rollup_freshness', { rollup }), 0, `${rollup} caught up`);

  await proxy.cut();
  const down = await waitFor('unready', () => get(`${base}/readyz`), (r) => r.status === 503, 30_000);
  assert.match(down.body, /"database":"unreachable/);
  assert.equal((await get(`${base}/healthz`)).status, 200);
  await proxy.restore();
  const up = await waitFor('ready again', () => get(`${base}/readyz`), (r) => r.status === 200, 30_000);
  assert.match(up.body, /"partitions":"ok: owns/);

  runner.child.kill('SIGTERM');
  assert.equal((await runner.exited).code, 0, runner.stderr().slice(-2000));
});
