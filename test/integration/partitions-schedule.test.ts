/**
 * The runner's partition maintenance cadence, by the injected clock: a run at start, then one
 * every `everyMs` of clock time however often it is polled; a failed run is logged and tried again
 * after `retryMs`, never thrown out of the poll.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.js';
import { detectCapabilities } from '../../src/db/capabilities.js';
import { migrate } from '../../src/db/migrate.js';
import { listPartitions, partitionPlan } from '../../src/db/partitions.js';
import { PartitionSchedule } from '../../src/partitions/maintain.js';
import { createTestSchema } from '../support/services.js';

const HOUR = 3600_000;

test('maintenance runs every 3 h of clock time, not on every poll; a failure is retried after the retry interval', async () => {
  const s = await createTestSchema('psch_');
  try {
    await migrate(s.pool, s.schema);
    const caps = await detectCapabilities(s.pool);
    let now = new Date('2031-09-10T22:00:00Z');
    const logs: string[] = [];
    const config = loadConfig({ HUBSINK_SCHEMA: s.schema, HUBSINK_RETENTION_DAYS: '2', HUBSINK_PARTITIONS_AHEAD_DAYS: '1' });
    const schedule = new PartitionSchedule({ pool: s.pool, config, caps, clock: () => now }, { everyMs: 3 * HOUR, retryMs: 10 * 60_000, log: (l, m) => void logs.push(`${l} ${m}`) });
    const names = async () => (await listPartitions(s.pool, s.schema)).map((p) => p.name);

    await schedule.tick();
    assert.equal(schedule.runs, 1);
    assert.deepEqual(await names(), partitionPlan(now, 1, 2).days.map((d) => d.name));
    // Polled often within the 3 h: nothing more runs.
    for (let m = 10; m < 180; m += 10) {
      now = new Date(Date.parse('2031-09-10T22:00:00Z') + m * 60_000);
      await schedule.tick();
    }
    assert.equal(schedule.runs, 1);
    now = new Date(Date.parse('2031-09-10T22:00:00Z') + 3 * HOUR);
    await schedule.tick();
    assert.equal(schedule.runs, 2);
    assert.deepEqual(await names(), partitionPlan(now, 1, 2).days.map((d) => d.name));

    // Missing state: the table is gone. The poll does not throw; it logs and waits retryMs.
    await s.pool.query(`ALTER TABLE "${s.schema}".events RENAME TO events_gone`);
    now = new Date(now.getTime() + 3 * HOUR);
    await schedule.tick();
    assert.equal(schedule.failures, 1);
    assert.match(logs.at(-1) ?? '', /^warn partitions: maintenance failed, trying again in 600 s: /);
    now = new Date(now.getTime() + 5 * 60_000);
    await schedule.tick();
    assert.equal(schedule.failures, 1, 'not before the retry interval');
    await s.pool.query(`ALTER TABLE "${s.schema}".events_gone RENAME TO events`);
    now = new Date(now.getTime() + 5 * 60_000);
    await schedule.tick();
    assert.equal(schedule.runs, 3);
    assert.equal(schedule.lastError, null);
    assert.deepEqual(await names(), partitionPlan(now, 1, 2).days.map((d) => d.name));
  } finally {
    await s.drop();
  }
});
