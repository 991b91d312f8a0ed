/**
 * The rollup timer and the metrics HTTP function as the Functions host would see them.
 */
import { captured, triggerOf, type CapturedFunction } from '../support/functions-capture.js';
import { beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';

function fn(name: string): CapturedFunction {
  const f = captured.find((c) => c.name === name);
  assert.ok(f, `function ${name} was not registered (registered: ${captured.map((c) => c.name).join(', ')})`);
  return f;
}

beforeAll(async () => {
  await import('../../src/functions/rollup.js');
  await import('../../src/functions/metrics.js');
});

test('rollup: timer every minute, schedule monitor on, not on start-up', () => {
  const t = triggerOf(fn('rollup'));
  assert.equal(t.type, 'timerTrigger');
  assert.equal(t.direction, 'in');
  assert.equal(t.schedule, '0 */1 * * * *');
  assert.equal(t.useMonitor, true);
  assert.equal(t.runOnStartup, false);
  assert.equal(fn('rollup').retryOptions, undefined, 'a failed minute is simply redone by the next one');
});

test('metrics: GET only, function key, route tenants/{tenantId}/metrics, HTTP output', () => {
  const f = fn('metrics');
  const t = triggerOf(f);
  assert.equal(t.type, 'httpTrigger');
  assert.deepEqual(t.methods, ['GET']);
  assert.equal(t.authLevel, 'function');
  assert.equal(t.route, 'tenants/{tenantId}/metrics');
  assert.ok(Object.values(f.bindings).some((b) => b.type === 'http' && b.direction === 'out'));
});
