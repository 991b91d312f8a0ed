/**
 * `hubsink dlq replay-hub` against the emulator, Azurite and real PostgreSQL: stopped by --limit,
 * interrupted with SIGINT, resumed, it handles each dead letter once, writes what is now valid, and
 * marks the rows the deadletter function had parked as replayed.
 */
import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { EventHubConsumerClient, EventHubProducerClient, earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { startEmulator, type Emulator } from '@hubsink/eventhubs-emulator';
import { EventHubDeadLetterSink } from '../../src/hubs/deadLetterSink.js';
import { makeDeadLetterHandler } from '../../src/deadLetters/deadLetterHandler.js';
import { listDeadLetters } from '../../src/db/deadLetterQueries.js';
import type { DeadLetterRecord } from '../../src/pipeline/types.js';
import { testAzuriteConnection, testDatabaseUrl, uniqueName, type TestSchema } from '../support/services.js';
import { countRows, fastSleep, hostShape, invocation, readySchema, runCli, testConfig, type ReceivedLike } from '../support/deadLetters.js';
import { makeSource } from '../support/rows.js';

const DAY = 86_400_000;
const TOTAL = 50;

interface HubSummary {
  received: number;
  inserted: number;
  duplicates: number;
  parkedInvalid: number;
  markedReplayed: number;
  complete: boolean;
  stoppedBy?: string;
}

function record(i: number): DeadLetterRecord {
  const tenantId = 301 + (i % 4);
  // Forty were transient; ten were judged too old under a 2-day retention (since put back to 30).
  const old = i >= 40;
  const body = Buffer.from(JSON.stringify({ eventId: randomUUID(), tenantId, type: 'ad_click', occurredAt: new Date(Date.now() - (old ? 5 * DAY : 60_000)).toISOString() }));
  const at = new Date(Date.now() - 120_000);
  return {
    reason: old ? 'invalid' : 'transient',
    error: old ? 'occurredAt: older than the retention window' : 'ECONNREFUSED',
    body,
    properties: { TenantId: String(tenantId) },
    tenantId,
    source: makeSource({ partitionId: String(i % 3), sequenceNumber: 7000 + i, offset: `s${7000 + i}`, enqueuedTime: new Date(at.getTime() + i) }),
    attempts: 1,
    firstFailureAt: at,
    lastFailureAt: at,
  };
}

async function receiveAll(emu: Emulator, hub: string, expected: number): Promise<Map<string, ReceivedEventData[]>> {
  const consumer = new EventHubConsumerClient('$Default', emu.connectionString(hub), hub);
  const got = new Map<string, ReceivedEventData[]>();
  let n = 0;
  const sub = consumer.subscribe(
    {
      processEvents: (events, ctx) => {
        got.set(ctx.partitionId, [...(got.get(ctx.partitionId) ?? []), ...events]);
        n += events.length;
        return Promise.resolve();
      },
      processError: () => Promise.resolve(),
    },
    { startPosition: earliestEventPosition, maxBatchSize: 100, maxWaitTimeInSeconds: 1, skipParsingBodyAsJson: true },
  );
  const deadline = Date.now() + 20_000;
  while (n < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  await sub.close();
  await consumer.close();
  assert.equal(n, expected);
  return got;
}

describe('hubsink dlq replay-hub', () => {
  let emu: Emulator;
  let s: TestSchema;
  beforeAll(async () => {
    emu = await startEmulator({ opaqueOffsets: true });
    s = await readySchema('clirh_');
  });
  afterAll(async () => {
    await s.drop();
    await emu.stop();
  });

  test('stopped by --limit, interrupted with SIGINT and resumed, it handles each dead letter once', async () => {
    const dl = uniqueName('dl');
    const container = uniqueName('rh');
    emu.createHub({ name: dl, partitions: 2, consumerGroups: ['hubsink-replay'] });
    const sink = new EventHubDeadLetterSink(new EventHubProducerClient(emu.connectionString(dl), dl));
    try {
      await sink.send(Array.from({ length: TOTAL }, (_, i) => record(i)));
    } finally {
      await sink.close();
    }
    // The deadletter function ran first (with the 2-day retention): transient ones written, old ones parked.
    const handler = makeDeadLetterHandler(() =>
      Promise.resolve({ hub: dl, consumerGroup: '$Default', deps: { pool: s.pool, config: testConfig(s.schema, { HUBSINK_RETENTION_DAYS: '2' }), sleep: fastSleep } }),
    );
    for (const [pid, events] of await receiveAll(emu, dl, TOTAL)) {
      const b = hostShape(events as ReceivedLike[], { hub: dl, consumerGroup: '$Default', partitionId: pid });
      await handler(b.messages, invocation('deadletter', b.triggerMetadata));
    }
    assert.equal(await countRows(s.pool, s.schema, 'events', 'WHERE tenant_id BETWEEN 301 AND 304'), 40);
    assert.equal((await listDeadLetters(s.pool, s.schema, { status: 'parked' }, 100)).length, 10);

    const env = {
      DATABASE_URL: testDatabaseUrl(),
      HUBSINK_SCHEMA: s.schema,
      EventHubConnection: emu.connectionString(),
      DEADLETTER_EVENTHUB_NAME: dl,
      AzureWebJobsStorage: testAzuriteConnection(),
    };
    const args = ['dlq', 'replay-hub', '--container', container, '--batch-size', '5', '--json'];

    const nothingYet = await runCli(args, env);
    assert.equal(nothingYet.code, 2, 'without an earlier replay, --from or --from-start is required');
    assert.match(nothingYet.stderr, /no earlier replay to resume .*give --from TIME or --from-start/);

    const first = await runCli([...args, '--from-start', '--limit', '15'], env);
    assert.equal(first.code, 1, first.stderr);
    const s1 = JSON.parse(first.stdout) as HubSummary;
    assert.equal(s1.received, 15);
    assert.equal(s1.complete, false);
    assert.match(first.stderr, /replaying 50 dead letter\(s\)/);
    assert.match(first.stderr, /stopped: stopped after --limit 15 \(run again to resume\)/);
    // Resuming ignores where to start: a --from given then is refused, not silently dropped.
    const ignored = await runCli([...args, '--from', '2030-01-01T00:00:00Z'], env);
    assert.equal(ignored.code, 2, ignored.stderr);
    assert.match(ignored.stderr, /has progress on 2 partition\(s\), and resuming it ignores --from: run without it to resume, or add --reset/);

    // Slow deliveries down so the interrupt lands mid-replay.
    emu.faults.delayDeliveries(300);
    let signalled = false;
    const second = await runCli(args, env, {
      onStderr: (text, child) => {
        if (!signalled && /replay-hub: [1-9]\d*\/35/.test(text)) {
          signalled = true;
          child.kill('SIGINT');
        }
      },
    });
    emu.faults.delayDeliveries(0);
    assert.ok(signalled, second.stderr);
    assert.equal(second.code, 1, second.stderr);
    assert.match(second.stderr, /resuming an earlier replay on 2 partition\(s\)/);
    assert.match(second.stderr, /interrupted: finishing the batch in progress/);
    const s2 = JSON.parse(second.stdout) as HubSummary;
    assert.equal(s2.stoppedBy, 'interrupted');
    assert.ok(s2.received > 0 && s2.received < 35, `second run handled ${s2.received}`);

    const third = await runCli(args, env);
    assert.equal(third.code, 0, third.stderr);
    const s3 = JSON.parse(third.stdout) as HubSummary;
    assert.equal(s3.complete, true);

    // Each dead letter handled once across the three runs.
    assert.equal(s1.received + s2.received + s3.received, TOTAL);
    assert.equal(s1.inserted + s2.inserted + s3.inserted, 10);
    assert.equal(s1.duplicates + s2.duplicates + s3.duplicates, 40);
    assert.equal(s1.markedReplayed + s2.markedReplayed + s3.markedReplayed, 10);
    assert.equal(s1.parkedInvalid + s2.parkedInvalid + s3.parkedInvalid, 0);
    assert.equal(await countRows(s.pool, s.schema, 'events', 'WHERE tenant_id BETWEEN 301 AND 304'), TOTAL);
    const replayed = await listDeadLetters(s.pool, s.schema, { status: 'replayed' }, 100);
    assert.equal(replayed.length, 10);
    assert.ok(replayed.every((r) => r.outcome === 'replayed from the dead-letter hub'));

    const fourth = await runCli(args, env);
    assert.equal(fourth.code, 0, fourth.stderr);
    assert.equal((JSON.parse(fourth.stdout) as HubSummary).received, 0);
    assert.match(fourth.stderr, /replaying 0 dead letter\(s\)/);

    // Its progress is an ordinary consumer group's checkpoints: nothing left to read.
    const shown = await runCli(['checkpoints', 'show', '--hub', dl, '--consumer-group', 'hubsink-replay', '--container', container, '--json'], env);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal((JSON.parse(shown.stdout) as { totalLag: number }).totalLag, 0);

    // --reset with --from-start goes through everything again, inserting nothing.
    const again = await runCli([...args, '--reset', '--from-start'], env);
    assert.equal(again.code, 0, again.stderr);
    const s5 = JSON.parse(again.stdout) as HubSummary;
    assert.equal(s5.received, TOTAL);
    assert.equal(s5.inserted, 0);
    assert.equal(await countRows(s.pool, s.schema, 'events', 'WHERE tenant_id BETWEEN 301 AND 304'), TOTAL);
  });
});
