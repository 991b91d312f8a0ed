/**
 * What the Functions host would be told at start-up: trigger types, cardinality, data type,
 * connection names, hubs, consumer groups, retry policies and schedules. `func start` cannot run
 * here, so this metadata is the contract with the host.
 */
import { captured, triggerOf, type CapturedFunction } from '../support/functions-capture.js';
import { beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const functionsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/functions');

function fn(name: string): CapturedFunction {
  const f = captured.find((c) => c.name === name);
  assert.ok(f, `function ${name} was not registered (registered: ${captured.map((c) => c.name).join(', ')})`);
  return f;
}

beforeAll(async () => {
  process.env.INGEST_EVENTHUB_NAME = 'clicks-under-test';
  process.env.DEADLETTER_EVENTHUB_NAME = 'clicks-dl-under-test';
  process.env.INGEST_CONSUMER_GROUP = 'hubsink-ingest';
  process.env.DEADLETTER_CONSUMER_GROUP = 'hubsink-deadletter';
  // Load every registration module the way the host does: each file in the functions folder.
  for (const file of (await readdir(functionsDir)).filter((f) => f.endsWith('.ts')).sort()) {
    await import(path.join(functionsDir, file));
  }
});

test('ingest: Event Hub trigger, many, binary bodies, configured hub and consumer group', () => {
  const t = triggerOf(fn('ingest'));
  assert.equal(t.type, 'eventHubTrigger');
  assert.equal(t.direction, 'in');
  assert.equal(t.cardinality, 'many');
  assert.equal(t.dataType, 'binary');
  assert.equal(t.connection, 'EventHubConnection');
  assert.equal(t.eventHubName, 'clicks-under-test');
  assert.equal(t.consumerGroup, 'hubsink-ingest');
});

test('ingest: retries forever with capped exponential backoff, so a failed batch is never checkpointed past', () => {
  const r = fn('ingest').retryOptions;
  assert.ok(r, 'ingest has no retry policy');
  assert.equal(r.retryStrategy, 'exponentialBackoff');
  assert.equal(r.maxRetryCount, -1);
  assert.deepEqual(r.minimumInterval, { seconds: 2 });
  assert.deepEqual(r.maximumInterval, { seconds: 300 });
});

test('deadletter: Event Hub trigger on the dead-letter hub, many, binary bodies, its own consumer group', () => {
  const t = triggerOf(fn('deadletter'));
  assert.equal(t.type, 'eventHubTrigger');
  assert.equal(t.direction, 'in');
  assert.equal(t.cardinality, 'many');
  assert.equal(t.dataType, 'binary');
  assert.equal(t.connection, 'EventHubConnection');
  assert.equal(t.eventHubName, 'clicks-dl-under-test');
  assert.equal(t.consumerGroup, 'hubsink-deadletter');
});

test('deadletter: retries forever with capped exponential backoff, so transient dead letters wait for the database', () => {
  const r = fn('deadletter').retryOptions;
  assert.ok(r, 'deadletter has no retry policy');
  assert.equal(r.retryStrategy, 'exponentialBackoff');
  assert.equal(r.maxRetryCount, -1);
  // The library sends durations to the host as whole seconds.
  assert.deepEqual(r.minimumInterval, { seconds: 5 });
  assert.deepEqual(r.maximumInterval, { seconds: 300 });
});

test('partitions: daily timer that also runs at start-up', () => {
  const t = triggerOf(fn('partitions'));
  assert.equal(t.type, 'timerTrigger');
  assert.equal(t.schedule, '0 5 0 * * *');
  assert.equal(t.runOnStartup, true);
  assert.equal(t.useMonitor, true);
});

test('every registered handler is a function and names are unique', () => {
  assert.ok(captured.length >= 2);
  const names = captured.map((c) => c.name);
  assert.equal(new Set(names).size, names.length);
  for (const c of captured) assert.equal(typeof c.handler, 'function');
});

test('dashboard assets: HTTP GET without a key, on a route of their own (no overlap with dashboard/{*path})', () => {
  const t = triggerOf(fn('dashboardAssets'));
  assert.equal(t.type, 'httpTrigger');
  assert.equal(t.authLevel, 'anonymous');
  assert.equal(t.route, 'dashboard-assets/{name}');
  assert.deepEqual(t.methods, ['GET']);
});

test('dashboard, tenants, freshness, rollups: HTTP GET with a function key, like metrics, on their own routes', () => {
  const routes: Record<string, string> = { metrics: 'tenants/{tenantId}/metrics', dashboard: 'dashboard/{*path}', tenants: 'tenants', freshness: 'freshness', rollups: 'rollups' };
  for (const [name, route] of Object.entries(routes)) {
    const t = triggerOf(fn(name));
    assert.equal(t.type, 'httpTrigger', name);
    assert.equal(t.authLevel, 'function', `${name}: the same auth as the metrics API`);
    assert.equal(t.route, route, name);
    assert.deepEqual(t.methods, ['GET'], name);
  }
});
