/**
 * The composition root (src/app/services.ts): what it builds it closes, a pool brought by the
 * caller stays the caller's, and the dead-letter producer and serving pool are made once, on first
 * use. Real PostgreSQL and the emulator with the real Event Hubs client.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { startEmulator, type Emulator } from '@hubsink/eventhubs-emulator';
import { buildAppServices, DEFAULT_FACTORIES } from '../../src/app/services.js';
import { loadConfig, type HubsinkConfig } from '../../src/config.js';
import { createPool } from '../../src/db/pool.js';
import { testDatabaseUrl, uniqueName } from '../support/services.js';

let emu: Emulator;
let config: HubsinkConfig;
beforeAll(async () => {
  emu = await startEmulator();
  const hub = uniqueName('dl');
  emu.createHub({ name: hub, partitions: 1 });
  config = loadConfig({
    DATABASE_URL: testDatabaseUrl(),
    PGPOOL_MAX: '2',
    EventHubConnection: emu.connectionString(hub).replace(/;EntityPath=[^;]+/, ''),
    DEADLETTER_EVENTHUB_NAME: hub,
  });
});
afterAll(async () => {
  await emu.stop();
});

test('built services: the pool, serving pool and producer are made once and closed by close(); a brought pool stays open', async () => {
  const pools: pg.Pool[] = [];
  let producers = 0;
  const services = await buildAppServices(config, {
    factories: {
      createPool: async (c) => {
        const p = await DEFAULT_FACTORIES.createPool(c);
        pools.push(p);
        return p;
      },
      createProducer: (c) => {
        producers++;
        return DEFAULT_FACTORIES.createProducer(c);
      },
    },
  });
  assert.equal(pools.length, 1);
  assert.equal(services.pool, pools[0]);
  assert.equal(producers, 0, 'no producer before the first dead letter');
  const [a, b] = await Promise.all([services.deadLetters(), services.deadLetterSink()]);
  assert.equal(a.sink, b, 'one sink');
  assert.equal(producers, 1);
  await a.producer.getEventHubProperties();
  const serving = await services.servingPool();
  assert.notEqual(serving, services.pool, 'the serving pool is a pool of its own');
  assert.equal(await services.servingPool(), serving);
  assert.equal((await serving.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one, 1);
  await services.close();
  assert.equal(services.pool.ended, true);
  assert.equal(serving.ended, true);
  await assert.rejects(a.producer.getEventHubProperties(), /closed/i, 'the producer is closed');

  const mine = await createPool(config);
  try {
    const borrowed = await buildAppServices(config, { pool: mine });
    assert.equal(borrowed.pool, mine);
    await borrowed.close();
    assert.equal(mine.ended, false, 'a brought pool is the caller\'s to end');
    assert.equal((await mine.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one, 1);
  } finally {
    await mine.end();
  }
});
