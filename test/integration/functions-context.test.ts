/**
 * The Function App's process-wide context (src/functions/context.ts): a build that fails once is
 * built again by the next invocation, and a failed build leaves no pool open. Real PostgreSQL
 * behind a TCP proxy (cut = unreachable at start-up), the emulator with the real Event Hubs client.
 */
import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import pg from 'pg';
import { appContextLoader } from '../../src/functions/context.js';
import { loadConfig, requireEventHubs, type HubsinkConfig } from '../../src/config.js';
import { createPool, createServingPool } from '../../src/db/pool.js';
import { detectCapabilities } from '../../src/db/capabilities.js';
import { createDeadLetterProducer } from '../../src/hubs/deadLetterSink.js';
import { startEmulator, type Emulator } from '@hubsink/eventhubs-emulator';
import type { DeadLetterRecord } from '../../src/pipeline/types.js';
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy.js';
import { testDatabaseUrl, uniqueName } from '../support/services.js';
import { makeSource } from '../support/rows.js';

function record(): DeadLetterRecord {
  const now = new Date();
  return {
    reason: 'invalid',
    error: 'type: required',
    body: Buffer.from('{"tenantId": 7}'),
    properties: {},
    tenantId: 7,
    source: makeSource({ partitionId: '0', sequenceNumber: 1, offset: '1', enqueuedTime: now }),
    attempts: 1,
    firstFailureAt: now,
    lastFailureAt: now,
  };
}

describe('the Functions context', () => {
  let emu: Emulator;
  let proxy: TcpProxy;
  let hub: string;
  let config: HubsinkConfig;
  beforeAll(async () => {
    emu = await startEmulator();
    hub = uniqueName('dl');
    emu.createHub({ name: hub, partitions: 1 });
    const target = new URL(testDatabaseUrl());
    proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    config = loadConfig({
      DATABASE_URL: proxy.url(testDatabaseUrl()),
      PGPOOL_MAX: '2',
      EventHubConnection: emu.connectionString(hub).replace(/;EntityPath=[^;]+/, ''),
      DEADLETTER_EVENTHUB_NAME: hub,
    });
  });
  afterAll(async () => {
    await proxy.stop();
    await emu.stop();
  });

  test('the database unreachable at start-up: the build fails, its pool is ended, and the next invocation builds again', async () => {
    const pools: pg.Pool[] = [];
    const load = appContextLoader({
      config: () => config,
      createPool: async (c) => {
        const p = await createPool(c);
        pools.push(p);
        return p;
      },
      createServingPool: (c) => createServingPool(c),
      detectCapabilities,
      createProducer: (c) => createDeadLetterProducer(requireEventHubs(c), c.deadLetterHub),
    });
    await proxy.cut();
    await assert.rejects(load(), /ECONNREFUSED/);
    assert.equal(pools.length, 1);
    assert.equal(pools[0]?.ended, true, 'the failed build ended its pool');
    await proxy.restore();
    const ctx = await load();
    assert.equal(pools.length, 2);
    assert.equal(ctx.pool, pools[1]);
    assert.equal((await ctx.pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one, 1);
    // Built once, then shared.
    assert.equal(await load(), ctx);
    await ctx.pool.end();
  });

  test('the dead-letter producer cannot be built once (an identity error): the next call builds it again and it sends', async () => {
    let builds = 0;
    const load = appContextLoader({
      config: () => config,
      createPool: (c) => createPool(c),
      createServingPool: (c) => createServingPool(c),
      detectCapabilities,
      createProducer: async (c) => {
        builds++;
        // What DefaultAzureCredential throws before the managed identity endpoint answers.
        if (builds === 1) throw Object.assign(new Error('ManagedIdentityCredential: no managed identity endpoint found'), { name: 'CredentialUnavailableError' });
        return createDeadLetterProducer(requireEventHubs(c), c.deadLetterHub);
      },
    });
    const ctx = await load();
    try {
      await assert.rejects(ctx.deadLetterSink(), /no managed identity endpoint/);
      const sink = await ctx.deadLetterSink();
      assert.equal(builds, 2);
      await sink.send([record()]);
      assert.equal(emu.partitionEvents(hub, '0').length, 1);
      assert.equal(await ctx.deadLetterSink(), sink, 'a built sink is kept');
      await (sink as unknown as { close(): Promise<void> }).close();
    } finally {
      await ctx.pool.end();
    }
  });
});
