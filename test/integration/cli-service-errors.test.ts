/**
 * Every command that talks to Event Hubs or blob storage, through the real CLI against the emulator
 * and Azurite, meets the common setup mistakes: a wrong SAS key, an unknown hub, an unknown consumer
 * group, a closed port, storage down. Each prints its innermost cause and the setting or command
 * that fixes it (never an empty `hubsink: ` line nor the internal `$management` address), and
 * exits 1; a wrong key fails at once instead of after the SDK's retry budget; `dlq stats` still
 * shows its database half; `dlq replay-hub` on a missing consumer group leaves no resume state.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EventHubProducerClient } from '@azure/event-hubs';
import { BlobServiceClient } from '@azure/storage-blob';
import { startEmulator, type Emulator } from '@hubsink/eventhubs-emulator';
import { freePort } from '../../src/local/ports.js';
import { testAzuriteConnection, testDatabaseUrl, uniqueName, type TestSchema } from '../support/services.js';
import { readySchema, runCli, type CliResult } from '../support/deadLetters.js';

const HUB = uniqueName('ing');
const DL = uniqueName('dl');
const GROUP = 'hubsink-replay';
/** Guards against a hang only: before the fix a wrong key took about 90 s and a missing group never ended. */
const HANG_GUARD_MS = 75_000;

let emu: Emulator;
let s: TestSchema;
let closedPort: number;

beforeAll(async () => {
  emu = await startEmulator({ port: 0, hubs: [{ name: HUB, partitions: 2, consumerGroups: [GROUP] }, { name: DL, partitions: 2, consumerGroups: [GROUP] }] });
  s = await readySchema('clise_');
  closedPort = await freePort();
  // Dead letters waiting on the hub: a replay that reads nothing cannot pass for one that stopped.
  const producer = new EventHubProducerClient(emu.connectionString(DL), DL);
  try {
    const batch = await producer.createBatch();
    for (let i = 0; i < 3; i++) batch.tryAdd({ body: Buffer.from(`{"n":${i}}`) });
    await producer.sendBatch(batch);
  } finally {
    await producer.close();
  }
});
afterAll(async () => {
  await s?.drop();
  await emu?.stop();
});

function env(over: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: testDatabaseUrl(),
    HUBSINK_SCHEMA: s.schema,
    EventHubConnection: emu.connectionString(),
    AzureWebJobsStorage: testAzuriteConnection(),
    INGEST_EVENTHUB_NAME: HUB,
    DEADLETTER_EVENTHUB_NAME: DL,
    ...over,
  };
}

type Failure = 'wrong key' | 'unknown hub' | 'unknown consumer group' | 'closed port' | 'storage down';

interface Command {
  name: string;
  uses: { group: boolean; storage: boolean };
  /** Arguments and settings for a hub and a consumer group (the failure picks them). */
  run(hub: string, group: string, container: string): { args: string[]; env: Record<string, string> };
}

const commands: Command[] = [
  {
    name: 'checkpoints show',
    uses: { group: true, storage: true },
    run: (hub, group) => ({ args: ['checkpoints', 'show', '--hub', hub, '--consumer-group', group], env: {} }),
  },
  {
    name: 'checkpoints rewind',
    uses: { group: true, storage: true },
    run: (hub, group) => ({ args: ['checkpoints', 'rewind', '--hub', hub, '--consumer-group', group, '--to-start', '--dry-run'], env: {} }),
  },
  { name: 'generate', uses: { group: false, storage: false }, run: (hub) => ({ args: ['generate', '--count', '5', '--hub', hub, '--no-progress'], env: {} }) },
  {
    name: 'dlq stats',
    uses: { group: true, storage: true },
    run: (hub, group) => ({ args: ['dlq', 'stats'], env: { DEADLETTER_EVENTHUB_NAME: hub, DEADLETTER_CONSUMER_GROUP: group } }),
  },
  {
    name: 'dlq replay-hub',
    uses: { group: true, storage: true },
    run: (hub, group, container) => ({ args: ['dlq', 'replay-hub', '--from-start', '--limit', '2', '--consumer-group', group, '--container', container], env: { DEADLETTER_EVENTHUB_NAME: hub } }),
  },
  {
    name: 'run',
    uses: { group: true, storage: true },
    run: (hub, group) => ({ args: ['run', '--status-interval', '0'], env: { INGEST_EVENTHUB_NAME: hub, INGEST_CONSUMER_GROUP: group } }),
  },
];

/** The settings of one failure, and what the message must say. */
function failure(f: Failure, cmd: Command): { hub: string; group: string; env: Record<string, string>; says: RegExp[] } {
  const hub = cmd.name.startsWith('dlq') ? DL : HUB;
  const group = cmd.name === 'dlq replay-hub' ? GROUP : cmd.uses.group ? GROUP : '$Default';
  switch (f) {
    case 'wrong key':
      return {
        hub,
        group,
        env: { EventHubConnection: emu.connectionString().replace(/SharedAccessKey=[^;]+/, 'SharedAccessKey=bm90IHRoZSBrZXk=') },
        says: [/refused the credentials \(InvalidSignature/, /SharedAccessKey in EventHubConnection/],
      };
    case 'unknown hub':
      return { hub: 'nosuchhub', group, env: {}, says: [/event hub 'nosuchhub' does not exist/, /hubsink emulator --hub nosuchhub/] };
    case 'unknown consumer group':
      return { hub, group: 'nosuchgroup', env: {}, says: [new RegExp(`consumer group 'nosuchgroup' does not exist on event hub '${hub}'`), /hubsink emulator --consumer-group nosuchgroup/] };
    case 'closed port':
      return {
        hub,
        group,
        env: { EventHubConnection: emu.connectionString().replace(`:${emu.port}`, `:${closedPort}`) },
        says: [new RegExp(`cannot reach Event Hubs at 127\\.0\\.0\\.1:${closedPort} \\((ECONNREFUSED|ECONNRESET|Failed to connect)`), /Endpoint in EventHubConnection/],
      };
    case 'storage down':
      return {
        hub,
        group,
        env: { AzureWebJobsStorage: testAzuriteConnection().replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${closedPort}`) },
        says: [new RegExp(`cannot reach blob storage at 127\\.0\\.0\\.1:${closedPort} \\((ECONNREFUSED|ECONNRESET)\\)`), /AzureWebJobsStorage/],
      };
  }
}

const FAILURES: Failure[] = ['wrong key', 'unknown hub', 'unknown consumer group', 'closed port', 'storage down'];
const matrix = commands.flatMap((c) =>
  FAILURES.filter((f) => (f !== 'unknown consumer group' || c.uses.group) && (f !== 'storage down' || c.uses.storage)).map((f) => ({ cmd: c, f, title: `${c.name}: ${f}` })),
);

async function blobNames(container: string): Promise<string[]> {
  const c = BlobServiceClient.fromConnectionString(testAzuriteConnection()).getContainerClient(container);
  if (!(await c.exists())) return [];
  const names: string[] = [];
  for await (const b of c.listBlobsFlat()) names.push(b.name);
  return names;
}

function assertExplained(r: CliResult, says: RegExp[]): void {
  // Never an empty message, never the link address nobody typed.
  expect(r.stderr).not.toMatch(/hubsink:\s*$/m);
  expect(r.stderr).not.toMatch(/\$management/);
  for (const re of says) expect(r.stderr).toMatch(re);
}

describe.concurrent('a setup mistake names its cause and its fix', () => {
  test.each(matrix)('$title', async ({ cmd, f }) => {
    const bad = failure(f, cmd);
    const container = uniqueName('se');
    const c = cmd.run(bad.hub, bad.group, container);
    const e = env({ ...c.env, ...bad.env });
    if (cmd.name === 'run' && f === 'closed port') {
      // The runner keeps retrying an unreachable namespace (an outage ends); it says where it is looking.
      let signalled = false;
      const r = await runCli(c.args, e, {
        timeoutMs: HANG_GUARD_MS,
        onStderr: (text, child) => {
          if (!signalled && bad.says.every((re) => re.test(text))) {
            signalled = true;
            child.kill('SIGINT');
          }
        },
      });
      assertExplained(r, bad.says);
      return;
    }
    const r = await runCli(c.args, e, { timeoutMs: HANG_GUARD_MS });
    assertExplained(r, bad.says);
    expect(r.code, r.stderr).toBe(1);
    const line = r.stderr.split('\n').find((l) => l.startsWith('hubsink: ') || l.startsWith('dead-letter hub backlog not shown: '));
    expect(line, r.stderr).toBeDefined();
    if (cmd.name === 'dlq stats') {
      // The database half is shown, and the note says what is missing.
      expect(r.stdout).toMatch(/^parked: 0/m);
      expect(r.stderr).toMatch(/dead-letter hub backlog not shown: /);
    }
    if (cmd.name === 'dlq replay-hub') expect(await blobNames(container)).toEqual([]);
  });
});

test('dlq replay-hub with a consumer group that does not exist stops at once, exit 1, and the next run has nothing to resume', async () => {
  const container = uniqueName('rh');
  const args = ['dlq', 'replay-hub', '--consumer-group', 'nosuchgroup', '--container', container];
  const first = await runCli([...args, '--from-start', '--limit', '2'], env(), { timeoutMs: HANG_GUARD_MS });
  expect(first.code, first.stderr).toBe(1);
  expect(first.stderr).toMatch(new RegExp(`consumer group 'nosuchgroup' does not exist on event hub '${DL}'`));
  expect(await blobNames(container)).toEqual([]);
  const again = await runCli(args, env(), { timeoutMs: HANG_GUARD_MS });
  expect(again.stderr).not.toMatch(/resuming an earlier replay/);
  expect(again.code).not.toBe(0);
});
