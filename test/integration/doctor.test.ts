/**
 * `hubsink doctor` against the real local pieces (PostgreSQL, Azurite, the project's Event Hubs
 * emulator through the real @azure/event-hubs client), healthy and then with each piece broken in
 * turn: a missing hub, a wrong key, a missing consumer group, an unmigrated schema, a missing
 * partition window, storage down, a role without INSERT, a checkpoint ahead of its partition, and in
 * HUBSINK_ACCESS=entra no grant or no grants table. Every ✗ must name the setting or command that
 * fixes it. The CLI's exit codes, --json and --settings last.
 */
import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EventHubConsumerClient } from '@azure/event-hubs';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { startEmulator, type Emulator } from '@hubsink/eventhubs-emulator';
import { loadConfig } from '../../src/config.js';
import { defaultMigrationsDir, loadMigrations, migrate } from '../../src/db/migrate.js';
import { createPool } from '../../src/db/pool.js';
import type { CheckResult } from '../../src/doctor/report.js';
import { runDoctor } from '../../src/doctor/runDoctor.js';
import { writeCheckpoint } from '../../src/hubs/checkpoints.js';
import { createConsumer, createProducer, existingContainer } from '../../src/hubs/clients.js';
import { freePort } from '../../src/local/ports.js';
import { createTestSchema, serverCapabilities, testAzuriteConnection, testDatabaseUrl, uniqueName, type TestSchema } from '../support/services.js';
import { readySchema, runCli } from '../support/deadLetters.js';

const INGEST = uniqueName('dri');
const DLQ = uniqueName('drd');
const GROUPS = { ingest: 'hubsink-ingest', dead: 'hubsink-deadletter', replay: 'hubsink-replay' };

let emu: Emulator;
let ready: TestSchema;
let container: ContainerClient;
let baseEnv: Record<string, string>;

beforeAll(async () => {
  emu = await startEmulator({
    hubs: [
      { name: INGEST, partitions: 2, consumerGroups: [GROUPS.ingest] },
      { name: DLQ, partitions: 2, consumerGroups: [GROUPS.dead, GROUPS.replay] },
    ],
  });
  ready = await readySchema('doc_');
  container = BlobServiceClient.fromConnectionString(testAzuriteConnection()).getContainerClient(uniqueName('doc'));
  await container.create();
  baseEnv = {
    DATABASE_URL: testDatabaseUrl(),
    HUBSINK_SCHEMA: ready.schema,
    EventHubConnection: emu.connectionString(),
    INGEST_EVENTHUB_NAME: INGEST,
    DEADLETTER_EVENTHUB_NAME: DLQ,
    INGEST_CONSUMER_GROUP: GROUPS.ingest,
    DEADLETTER_CONSUMER_GROUP: GROUPS.dead,
    REPLAY_CONSUMER_GROUP: GROUPS.replay,
    AzureWebJobsStorage: testAzuriteConnection(),
  };
});

afterAll(async () => {
  await container?.deleteIfExists();
  await ready?.drop();
  await emu?.stop();
});

/** The doctor as the CLI wires it, with quick give-ups so a broken piece is reported soon. */
async function doctor(env: Record<string, string>, role?: string): Promise<CheckResult[]> {
  const cfg = loadConfig(env);
  const retryOptions = { maxRetries: 1, retryDelayInMs: 200, timeoutInMs: 5_000 };
  return runDoctor({
    cfg,
    now: () => new Date(),
    waitMs: 60_000,
    ...(role !== undefined ? { role } : {}),
    checkpointContainer: container.containerName,
    openPool: () => createPool({ ...cfg, poolMax: 1 }),
    consumer: (hub, group) => createConsumer(cfg.eventHubs ?? assert.fail('no Event Hubs'), group, hub, undefined, { retryOptions }),
    producer: (hub) => createProducer(cfg.eventHubs ?? assert.fail('no Event Hubs'), hub, { retryOptions }),
    container: (name) => existingContainer(cfg.storage ?? assert.fail('no storage'), name, { retryOptions: { maxTries: 1, tryTimeoutInMs: 3_000 } }),
    migrations: async () => loadMigrations(await defaultMigrationsDir()),
  });
}

/** The namespace as the consumer names it in checkpoint blobs (the emulator's host, without the port). */
function namespace(): string {
  const client = new EventHubConsumerClient('$Default', emu.connectionString(INGEST), INGEST);
  void client.close();
  return client.fullyQualifiedNamespace;
}

function byId(results: readonly CheckResult[], id: string): CheckResult {
  const r = results.find((x) => x.id === id);
  assert.ok(r, `no check ${id} in ${results.map((x) => x.id).join(', ')}`);
  return r;
}

/** Exactly these checks failed, each with a fix naming `fixes` (one pattern per failed id). */
function assertFailed(results: readonly CheckResult[], fixes: Record<string, RegExp>): void {
  const failedIds = results.filter((r) => r.status === 'fail').map((r) => r.id).sort();
  assert.deepEqual(failedIds, Object.keys(fixes).sort(), JSON.stringify(results, null, 1));
  for (const [id, re] of Object.entries(fixes)) {
    const r = byId(results, id);
    assert.ok(r.fix, `${id} has a fix`);
    assert.match(r.fix, re, `${id}: ${r.detail} / fix: ${r.fix}`);
  }
}

describe('hubsink doctor', () => {
  test('healthy local stack: every check passes, with what it found', async () => {
    await writeCheckpoint(container, { fullyQualifiedNamespace: namespace(), eventHubName: INGEST, consumerGroup: GROUPS.ingest }, '0', { sequenceNumber: -1, offset: '-1' });
    const results = await doctor(baseEnv);
    assertFailed(results, {});
    assert.deepEqual(results.filter((r) => r.status !== 'ok').map((r) => `${r.id}: ${r.detail}`), []);
    assert.match(byId(results, 'database.reachable').detail, /^PostgreSQL \d+/);
    assert.match(byId(results, 'database.migrations').detail, /checksums equal/);
    // On a Citus coordinator (TEST_DATABASE_URL) the workers are listed; hll as the server has it.
    const caps = serverCapabilities();
    assert.match(byId(results, 'database.citus').detail, caps.citus ? /with \d+ active worker\(s\)/ : /^not installed/);
    assert.match(byId(results, 'database.hll').detail, caps.hllAvailable ? /^installed/ : /^not available/);
    assert.match(byId(results, 'eventhubs.ingest-hub').detail, /^2 partition\(s\)$/);
    assert.match(byId(results, 'eventhubs.deadletter-send').detail, /sender link opened/);
    assert.match(byId(results, `storage.checkpoints.${INGEST}`).detail, /^1 of 2 partition\(s\) checkpointed, lag 0/);
    // Nothing was sent to the dead-letter hub to prove Send.
    assert.equal(emu.partitionEvents(DLQ, '0').length + emu.partitionEvents(DLQ, '1').length, 0);
  });

  test('a missing hub: ✗ naming INGEST_EVENTHUB_NAME, its consumer group not tried', async () => {
    const results = await doctor({ ...baseEnv, INGEST_EVENTHUB_NAME: 'no-such-hub' });
    assertFailed(results, { 'eventhubs.ingest-hub': /INGEST_EVENTHUB_NAME/ });
    assert.equal(byId(results, 'eventhubs.listen.ingest_consumer_group').status, 'skip');
    assert.equal(byId(results, 'eventhubs.deadletter-send').status, 'ok');
  });

  test('a wrong key: ✗ naming EventHubConnection, for both hubs', async () => {
    const wrong = emu.connectionString().replace(/SharedAccessKey=[^;]+/, 'SharedAccessKey=d3JvbmcK');
    const results = await doctor({ ...baseEnv, EventHubConnection: wrong });
    assertFailed(results, { 'eventhubs.ingest-hub': /key in EventHubConnection/, 'eventhubs.deadletter-hub': /key in EventHubConnection/ });
    assert.match(byId(results, 'eventhubs.ingest-hub').detail, /refused/);
    // Lag needs the partitions, so the checkpoints are not judged.
    assert.equal(byId(results, `storage.checkpoints.${INGEST}`).status, 'skip');
  });

  test('a missing consumer group: ✗ naming REPLAY_CONSUMER_GROUP', async () => {
    const results = await doctor({ ...baseEnv, REPLAY_CONSUMER_GROUP: 'not-declared' });
    assertFailed(results, { 'eventhubs.listen.replay_consumer_group': /create the consumer group not-declared.*REPLAY_CONSUMER_GROUP/ });
  });

  test('an unmigrated schema: ✗ naming `hubsink migrate`', async () => {
    const empty = await createTestSchema('doc_empty_');
    try {
      const results = await doctor({ ...baseEnv, HUBSINK_SCHEMA: empty.schema });
      assertFailed(results, { 'database.migrations': /hubsink migrate/, 'database.partitions': /hubsink migrate/ });
      assert.equal(byId(results, 'database.freshness').status, 'skip');
    } finally {
      await empty.drop();
    }
  });

  test('a missing partition window: ✗ naming `hubsink partitions`', async () => {
    const bare = await createTestSchema('doc_bare_');
    try {
      await migrate(bare.pool, bare.schema);
      const results = await doctor({ ...baseEnv, HUBSINK_SCHEMA: bare.schema });
      assertFailed(results, { 'database.partitions': /hubsink partitions/ });
      assert.match(byId(results, 'database.partitions').detail, /^3[45] day\(s\) of .* have no partition/);
    } finally {
      await bare.drop();
    }
  });

  test('storage down: ✗ naming AzureWebJobsStorage, the checkpoints not judged', async () => {
    const port = await freePort();
    const down = testAzuriteConnection().replace(/BlobEndpoint=http:\/\/[^;/]+/, `BlobEndpoint=http://127.0.0.1:${port}`);
    assert.notEqual(down, testAzuriteConnection());
    const results = await doctor({ ...baseEnv, AzureWebJobsStorage: down });
    assertFailed(results, { 'storage.container': /AzureWebJobsStorage/ });
    assert.match(byId(results, 'storage.container').detail, /unreachable/);
    assert.equal(byId(results, `storage.checkpoints.${INGEST}`).status, 'skip');
  });

  test('a role without INSERT: ✗ with the GRANT that fixes it', async () => {
    const role = uniqueName('doc_ro_');
    const password = uniqueName('pw');
    const admin = new pg.Client({ connectionString: testDatabaseUrl() });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE "${role}" LOGIN PASSWORD '${password}'`);
      await admin.query(`GRANT USAGE, CREATE ON SCHEMA "${ready.schema}" TO "${role}"`);
      await admin.query(`GRANT SELECT ON ALL TABLES IN SCHEMA "${ready.schema}" TO "${role}"`);
      await admin.query(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA "${ready.schema}" TO "${role}"`);
      const u = new URL(testDatabaseUrl());
      u.username = role;
      u.password = password;
      const results = await doctor({ ...baseEnv, DATABASE_URL: u.toString() });
      assertFailed(results, { 'database.rights': new RegExp(`GRANT INSERT ON "${ready.schema}"\\."events" TO "${role}"`) });
      const rights = byId(results, 'database.rights');
      assert.match(rights.detail, /; INSERT on events; .*ownership of events/);
      assert.match(rights.fix ?? '', /GRANT INSERT, UPDATE, DELETE ON "[^"]+"\."dead_letters"/);
      // An operator signed in as the owner checks the app's role by name: the same verdict.
      const byName = byId(await doctor(baseEnv, role), 'database.rights');
      assert.deepEqual([byName.status, byName.detail, byName.fix], ['fail', rights.detail, rights.fix]);
      const absent = byId(await doctor(baseEnv, 'no-such-role'), 'database.rights');
      assert.deepEqual([absent.status, absent.detail], ['fail', 'no such role on the server']);
      assert.match(absent.fix ?? '', /--role/);
    } finally {
      await admin.query(`DROP OWNED BY "${role}"`).catch(() => undefined);
      await admin.query(`DROP ROLE IF EXISTS "${role}"`);
      await admin.end();
    }
  });

  test('a checkpoint ahead of its partition (a re-created hub): ✗ naming the rewind that fixes exactly it, which does', async () => {
    const ns = namespace();
    const blob = container.getBlobClient(`${ns.toLowerCase()}/${DLQ}/${GROUPS.dead}/checkpoint/1`);
    await writeCheckpoint(container, { fullyQualifiedNamespace: ns, eventHubName: DLQ, consumerGroup: GROUPS.dead }, '1', { sequenceNumber: 4000, offset: '812345' });
    try {
      const results = await doctor(baseEnv);
      const fix = `hubsink checkpoints rewind --hub ${DLQ} --consumer-group '${GROUPS.dead}' --container ${container.containerName} --recreated`;
      assertFailed(results, { [`storage.checkpoints.${DLQ}`]: new RegExp(fix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) });
      assert.match(byId(results, `storage.checkpoints.${DLQ}`).detail, /partition\(s\) 1 \(checkpoint 4000, no event yet\) checkpointed past their last event/);
      // The command as printed (split as a shell would: the quotes only guard a $ in the name) repairs it.
      const args = fix.replace(/^hubsink /, '').replace(/'/g, '').split(' ');
      const rewound = await runCli(args, baseEnv, { timeoutMs: 120_000 });
      assert.equal(rewound.code, 0, rewound.stderr + rewound.stdout);
      assert.equal(byId(await doctor(baseEnv), `storage.checkpoints.${DLQ}`).status, 'ok');
    } finally {
      await blob.deleteIfExists();
    }
  });

  test('HUBSINK_ACCESS=entra: WEBSITE_AUTH_ENABLED said to be needed in Azure; no grant warns naming `hubsink access grant`, a grant passes; no grants table fails naming migrate', async () => {
    const entra = { ...baseEnv, HUBSINK_ACCESS: 'entra' };
    const before = await doctor(entra);
    assertFailed(before, {});
    const mode = byId(before, 'configuration.access');
    assert.equal(mode.status, 'warn');
    assert.match(mode.detail, /WEBSITE_AUTH_ENABLED .* In Azure it must be true/);
    const none = byId(before, 'database.access');
    assert.deepEqual([none.status, none.detail], ['warn', 'no grant yet: every signed-in caller is refused (403)']);
    assert.match(none.fix ?? '', /hubsink access grant --group <object id>/);
    // Key mode has neither check.
    assert.ok(!(await doctor(baseEnv)).some((r) => r.id === 'configuration.access' || r.id === 'database.access'));

    const group = '5d0c8a1e-7b1f-4c55-9a77-3c2b7e0f1a01';
    const granted = await runCli(['access', 'grant', '--group', group, '--tenant', '42'], baseEnv, { timeoutMs: 60_000 });
    assert.equal(granted.code, 0, granted.stderr);
    try {
      const after = await doctor({ ...entra, WEBSITE_AUTH_ENABLED: 'true' });
      assert.deepEqual(after.filter((r) => r.status !== 'ok').map((r) => `${r.id}: ${r.detail}`), []);
      assert.equal(byId(after, 'database.access').detail, '1 grant(s) to 1 principal(s), 1 storefront(s) granted (`hubsink access list`)');
      const cli = await runCli(['doctor', '--container', container.containerName], entra, { timeoutMs: 120_000 });
      assert.equal(cli.code, 0, cli.stdout + cli.stderr);
      assert.match(cli.stdout, /^ {2}! access per storefront \(HUBSINK_ACCESS=entra\): WEBSITE_AUTH_ENABLED is not true/m);
      assert.match(cli.stdout, /^ {2}✓ access grants \(HUBSINK_ACCESS=entra\): 1 grant\(s\)/m);
    } finally {
      assert.equal((await runCli(['access', 'revoke', '--group', group, '--tenant', '42'], baseEnv, { timeoutMs: 60_000 })).code, 0);
    }

    const empty = await createTestSchema('doc_noacc_');
    try {
      const results = await doctor({ ...entra, HUBSINK_SCHEMA: empty.schema });
      assertFailed(results, { 'database.migrations': /hubsink migrate/, 'database.partitions': /hubsink migrate/, 'database.access': /hubsink migrate.*then grant/ });
      assert.match(byId(results, 'database.access').detail, /no table .*access_grants/);
    } finally {
      await empty.drop();
    }
  });

  test('the CLI: exit 0 with --json when healthy, 1 with ✗ and fixes when not, 2 for unparsable settings; --settings reads local.settings.json', async () => {
    const good = await runCli(['doctor', '--json', '--container', container.containerName], baseEnv, { timeoutMs: 120_000 });
    assert.equal(good.code, 0, good.stderr + good.stdout);
    const report = JSON.parse(good.stdout) as { ok: boolean; checks: CheckResult[] };
    assert.equal(report.ok, true);
    assert.ok(report.checks.length >= 14);

    const bad = await runCli(['doctor', '--container', container.containerName], { ...baseEnv, DEADLETTER_EVENTHUB_NAME: 'gone' }, { timeoutMs: 120_000 });
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stdout, /^Event Hubs$/m);
    assert.match(bad.stdout, /✗ dead-letter hub gone: no such hub/);
    assert.match(bad.stdout, /fix: create the hub gone .*DEADLETTER_EVENTHUB_NAME/);
    assert.match(bad.stdout, /checks failed/);

    const skipped = await runCli(['doctor', '--container', container.containerName, '--skip', 'eventhubs.deadletter-send'], baseEnv, { timeoutMs: 120_000 });
    assert.equal(skipped.code, 0, skipped.stdout);
    assert.match(skipped.stdout, /- may send to the dead-letter hub .*: skipped/);

    const unparsable = await runCli(['doctor', '--json'], { ...baseEnv, INGEST_EVENTHUB_NAME: 'bad name!' }, { timeoutMs: 60_000 });
    assert.equal(unparsable.code, 2);
    assert.match((JSON.parse(unparsable.stdout) as { checks: CheckResult[] }).checks[0]?.detail ?? '', /INGEST_EVENTHUB_NAME/);

    const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-doctor-'));
    try {
      const file = path.join(dir, 'local.settings.json');
      await writeFile(file, JSON.stringify({ IsEncrypted: false, Values: { ...baseEnv, INGEST_EVENTHUB_NAME: 'from-file-missing' } }));
      const fromFile = await runCli(['doctor', '--settings', file, '--container', container.containerName], {}, { timeoutMs: 120_000 });
      assert.equal(fromFile.code, 1);
      assert.match(fromFile.stdout, /✗ ingest hub from-file-missing/);
      // The environment wins over the file, as under `func start`.
      const envWins = await runCli(['doctor', '--settings', file, '--container', container.containerName], { INGEST_EVENTHUB_NAME: INGEST }, { timeoutMs: 120_000 });
      assert.equal(envWins.code, 0, envWins.stdout);
      await writeFile(file, '{"Values": [1]}');
      const badFile = await runCli(['doctor', '--settings', file], {}, { timeoutMs: 60_000 });
      assert.equal(badFile.code, 2);
      assert.match(badFile.stderr, /--settings .*local\.settings\.json: expected \{"Values"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
