/**
 * The Function App's ingest lag and dead-letter backlog (src/telemetry/appGauges.ts through the
 * context's wiring in src/functions/context.ts): with Azure Monitor on, the gauges read the host's
 * checkpoints (container azure-webjobs-eventhub on Azurite, written in the SDK's layout as the host
 * writes them) against the emulator's partition properties, through the real Event Hubs client.
 * Collected through an in-memory reader on the MeterProvider the context's telemetry reports to.
 */
import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import net from 'node:net';
import { EventHubConsumerClient, EventHubProducerClient } from '@azure/event-hubs';
import { BlobServiceClient } from '@azure/storage-blob';
import { startEmulator, type Emulator } from '@hubsink/eventhubs-emulator';
import { loadConfig, type HubsinkConfig } from '../../src/config.js';
import { createPool, createServingPool } from '../../src/db/pool.js';
import { detectCapabilities } from '../../src/db/capabilities.js';
import { appContextLoader, type AppContext } from '../../src/functions/context.js';
import { writeCheckpoint, type CheckpointScope } from '../../src/hubs/checkpoints.js';
import { createConsumer, createProducer, FUNCTIONS_CHECKPOINT_CONTAINER } from '../../src/hubs/clients.js';
import { appHubGauges, type AppHubGaugeOptions, type PropertiesClient } from '../../src/telemetry/appGauges.js';
import { INSTRUMENTS } from '../../src/telemetry/telemetry.js';
import { findMetric, pointValue, testTelemetry, type TestReader } from '../support/metrics.js';
import { createEventsSchema } from '../support/database.js';
import { testAzuriteConnection, testDatabaseUrl, uniqueName, type TestSchema } from '../support/services.js';

const LAG = INSTRUMENTS.ingestLag.name;
const BACKLOG = INSTRUMENTS.deadLetterBacklog.name;
const POOL = INSTRUMENTS.poolInUse.name;

let emu: Emulator;
let db: TestSchema;
let ingestHub: string;
let dlHub: string;
let namespace: string;
const contexts: AppContext[] = [];

/** Events sent per partition so far (index = partition id). */
const sent: Record<string, number[]> = {};

async function send(hub: string, partitionId: string, n: number): Promise<void> {
  const counts = (sent[hub] ??= []);
  counts[Number(partitionId)] = (counts[Number(partitionId)] ?? 0) + n;
  if (n === 0) return;
  const p = new EventHubProducerClient(emu.connectionString(hub));
  try {
    const batch = await p.createBatch({ partitionId });
    for (let i = 0; i < n; i++) assert.ok(batch.tryAdd({ body: { n: i } }));
    await p.sendBatch(batch);
  } finally {
    await p.close();
  }
}

function env(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    DATABASE_URL: testDatabaseUrl(),
    HUBSINK_SCHEMA: db.schema,
    PGPOOL_MAX: '2',
    EventHubConnection: emu.connectionString(),
    AzureWebJobsStorage: testAzuriteConnection(),
    INGEST_EVENTHUB_NAME: ingestHub,
    DEADLETTER_EVENTHUB_NAME: dlHub,
    ...extra,
  };
}

interface Harness {
  load: () => Promise<AppContext>;
  reader: TestReader;
  clients: PropertiesClient[];
  logs: string[];
  terminate: (() => Promise<void>)[];
  gaugeBuilds: () => number;
}

/** The context as getAppContext builds it, with an in-memory reader standing in for Azure Monitor. */
function harness(config: HubsinkConfig, opts: { enabled?: boolean; gauges?: AppHubGaugeOptions } = {}): Harness {
  const { telemetry, reader, provider } = testTelemetry();
  const clients: PropertiesClient[] = [];
  const logs: string[] = [];
  const terminate: (() => Promise<void>)[] = [];
  let builds = 0;
  const load = appContextLoader({
    config: () => config,
    createPool: (c) => createPool(c),
    createServingPool: (c) => createServingPool(c),
    detectCapabilities,
    createProducer: (c) => createProducer(c.eventHubs ?? assert.fail('no Event Hubs'), c.deadLetterHub),
    telemetry: () => Promise.resolve({ telemetry, enabled: opts.enabled ?? true, shutdown: () => provider.shutdown() }),
    hubGauges: (c) => {
      builds++;
      return appHubGauges(c, {
        ...opts.gauges,
        // The real client; kept to check that shutdown closes it.
        createClient: async (conn, group, hub) => {
          const client = await createConsumer(conn, group, hub, undefined, { retryOptions: { maxRetries: 1, retryDelayInMs: 200, timeoutInMs: 10_000 } });
          clients.push(client);
          return client;
        },
      });
    },
    onTerminate: (close) => terminate.push(close),
    log: (l) => logs.push(l),
  });
  return {
    load: async () => {
      const ctx = await load();
      if (!contexts.includes(ctx)) contexts.push(ctx);
      return ctx;
    },
    reader,
    clients,
    logs,
    terminate,
    gaugeBuilds: () => builds,
  };
}

function lagByPartition(rm: Awaited<ReturnType<TestReader['read']>>, hub: string): Record<string, number> {
  const m = findMetric(rm, LAG);
  const out: Record<string, number> = {};
  for (const p of m?.dataPoints ?? []) if (p.attributes.hub === hub) out[String(p.attributes.partition)] = Number(p.value);
  return out;
}

beforeAll(async () => {
  emu = await startEmulator();
  ingestHub = uniqueName('fing');
  dlHub = uniqueName('fdl');
  emu.createHub({ name: ingestHub, partitions: 4 });
  emu.createHub({ name: dlHub, partitions: 2 });
  db = (await createEventsSchema('tfn_')).s;
  for (const [i, n] of [10, 7, 0, 5].entries()) await send(ingestHub, String(i), n);
  for (const [i, n] of [3, 4].entries()) await send(dlHub, String(i), n);
  // The namespace as the host writes it in blob names: the connection's, as the SDKs report it.
  const probe = new EventHubConsumerClient('$Default', emu.connectionString(ingestHub));
  namespace = probe.fullyQualifiedNamespace;
  await probe.close();
});

afterAll(async () => {
  for (const c of contexts) await c.pool.end().catch(() => undefined);
  await db?.drop();
  await emu?.stop();
});

describe('Function App: ingest lag and dead-letter backlog from the host\'s checkpoints', () => {
  test('exact lag per partition and exact backlog; read again at each collection; clients made lazily and closed at termination', async () => {
    // What the host writes: container azure-webjobs-eventhub, <ns>/<hub>/<group>/checkpoint/<partition>.
    const container = BlobServiceClient.fromConnectionString(testAzuriteConnection()).getContainerClient(FUNCTIONS_CHECKPOINT_CONTAINER);
    await container.createIfNotExists();
    const scope = (hub: string): CheckpointScope => ({ fullyQualifiedNamespace: namespace, eventHubName: hub, consumerGroup: '$Default' });
    const at = (hub: string, partitionId: string, seq: number) => {
      const e = emu.partitionEvents(hub, partitionId)[seq];
      assert.ok(e, `event ${seq} of ${hub}/${partitionId}`);
      return writeCheckpoint(container, scope(hub), partitionId, { sequenceNumber: e.sequenceNumber, offset: e.offset });
    };
    await at(ingestHub, '0', 3); // 10 events, 0..9: 6 after it
    await at(ingestHub, '1', 6); // 7 events: caught up
    // Partition 2 is empty, partition 3 (5 events) has no checkpoint: the host starts it fromStart.
    await at(dlHub, '0', 0); // 3 events: 2 after it
    // Dead-letter partition 1 (4 events) has no checkpoint: all 4 wait.

    const h = harness(loadConfig(env()));
    await h.load();
    assert.equal(h.clients.length, 0, 'no client before the first collection');
    const rm = await h.reader.read();
    assert.deepEqual(lagByPartition(rm, ingestHub), { '0': 6, '1': 0, '2': 0, '3': 5 });
    assert.equal(pointValue(rm, BACKLOG, { hub: dlHub }), 6);
    assert.equal(typeof pointValue(rm, POOL), 'number', 'the other gauges are still there');
    assert.equal(h.clients.length, 2, 'one consumer client per hub');
    assert.deepEqual(h.logs, []);

    // The host moves on and more arrives: the next collection reads both again.
    await at(ingestHub, '0', 9);
    await send(ingestHub, '1', 2);
    await send(dlHub, '1', 1);
    const again = await h.reader.read();
    assert.deepEqual(lagByPartition(again, ingestHub), { '0': 0, '1': 2, '2': 0, '3': 5 });
    assert.equal(pointValue(again, BACKLOG, { hub: dlHub }), 7);
    assert.equal(h.clients.length, 2, 'the clients are kept between collections');

    // The worker terminates: the gauges' clients are closed (a closed client refuses requests).
    assert.equal(h.terminate.length, 1);
    await h.terminate[0]?.();
    for (const c of h.clients) await assert.rejects(c.getPartitionIds(), /closed/i);
  });

  test('a Function App that never ran (no checkpoint container yet): lag is everything retained, as the host starts fromStart', async () => {
    const h = harness(loadConfig(env()), { gauges: { container: uniqueName('never-') } });
    await h.load();
    const rm = await h.reader.read();
    assert.deepEqual(sent[ingestHub], [10, 9, 0, 5]);
    assert.deepEqual(lagByPartition(rm, ingestHub), { '0': 10, '1': 9, '2': 0, '3': 5 });
    assert.equal(pointValue(rm, BACKLOG, { hub: dlHub }), 3 + 5);
    await h.terminate[0]?.();
  });

  /** A port nobody listens on: connections are refused. */
  const closedPort = () =>
    new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });

  const unreachable = [
    {
      what: 'Event Hubs',
      setting: 'EventHubConnection',
      live: () => emu.connectionString(),
      dead: (live: string, port: number) => live.replace(/Endpoint=sb:\/\/[^/;]+/, `Endpoint=sb://127.0.0.1:${port}`),
    },
    {
      what: 'storage',
      setting: 'AzureWebJobsStorage',
      live: () => testAzuriteConnection(),
      dead: (live: string, port: number) => live.replace(/BlobEndpoint=http:\/\/[^/;]+/, `BlobEndpoint=http://127.0.0.1:${port}`),
    },
  ] as const;
  for (const u of unreachable) {
    test(`${u.what} unreachable: lag and backlog are skipped, the other gauges stay`, async () => {
      const live = u.live();
      const dead = u.dead(live, await closedPort());
      assert.notEqual(dead, live, `the connection string names an endpoint for ${u.what}`);
      const h = harness(loadConfig(env({ [u.setting]: dead })));
      await h.load();
      const rm = await h.reader.read();
      assert.equal(findMetric(rm, LAG)?.dataPoints.length ?? 0, 0);
      assert.equal(findMetric(rm, BACKLOG)?.dataPoints.length ?? 0, 0);
      assert.equal(typeof pointValue(rm, POOL), 'number');
      await h.terminate[0]?.();
    });
  }

  for (const missing of [
    { setting: 'AzureWebJobsStorage', env: { AzureWebJobsStorage: undefined } },
    { setting: 'EventHubConnection', env: { EventHubConnection: undefined } },
  ]) {
    test(`${missing.setting} missing: no lag or backlog gauge, one log line saying why, the others present`, async () => {
      const h = harness(loadConfig(env(missing.env)));
      await h.load();
      await h.load();
      const rm = await h.reader.read();
      assert.equal(findMetric(rm, LAG), undefined);
      assert.equal(findMetric(rm, BACKLOG), undefined);
      assert.equal(typeof pointValue(rm, POOL), 'number');
      assert.equal(h.logs.length, 1, h.logs.join('\n'));
      assert.match(h.logs[0] ?? '', new RegExp(`no ingest lag or dead-letter backlog gauges: ${missing.setting} is not set`));
    });
  }

  test('Azure Monitor off: the hub gauges are never made (no Event Hubs or Storage calls)', async () => {
    const h = harness(loadConfig(env()), { enabled: false });
    await h.load();
    const rm = await h.reader.read();
    assert.equal(h.gaugeBuilds(), 0);
    assert.equal(h.clients.length, 0);
    assert.equal(findMetric(rm, LAG), undefined);
    assert.equal(typeof pointValue(rm, POOL), 'number');
    assert.equal(h.terminate.length, 0);
  });
});
