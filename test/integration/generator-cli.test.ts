/**
 * `hubsink generate` against the emulator with the real producer: the count arrives, each tenant's
 * events sit on one partition (partition key = tenant), the summary's figures match what the hub
 * holds, and bad arguments are usage errors.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { startEmulator, type Emulator } from '@hubsink/eventhubs-emulator';
import type { GenerateSummary } from '../../src/cli/generate.js';
import { validateEvent } from '../../src/pipeline/validate.js';
import { kill, spawnHubsink, type RunnerProcess } from '../support/runner-fixture.js';
import { uniqueName } from '../support/services.js';
import { makeSource } from '../support/rows.js';

let emu: Emulator;
const hub = uniqueName('gen');
const children: RunnerProcess[] = [];

beforeAll(async () => {
  emu = await startEmulator({ port: 0, hubs: [{ name: hub, partitions: 4 }] });
});
afterAll(async () => {
  for (const c of children) await kill(c);
  await emu.stop();
});

const env = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, EventHubConnection: emu.connectionString(), INGEST_EVENTHUB_NAME: hub });

test('sends --count events with the tenant as partition key; the summary matches what the hub holds', async () => {
  const p = spawnHubsink(['generate', '--count', '3000', '--tenants', '12', '--duplicates', '0.02', '--malformed', '0.01', '--seed', 'cli', '--json'], env());
  children.push(p);
  const exit = await p.exited;
  assert.equal(exit.code, 0, p.stderr());
  const summary = JSON.parse(p.stdoutLines().at(-1) ?? '{}') as GenerateSummary;
  assert.equal(summary.sent, 3000);
  assert.equal(summary.seed, 'cli');
  assert.equal(summary.generated.total, 3000);
  assert.equal(summary.generated.events + summary.generated.duplicates + summary.generated.malformed, 3000);

  const stored = ['0', '1', '2', '3'].flatMap((pid) => emu.partitionEvents(hub, pid).map((e) => ({ pid, e })));
  assert.equal(stored.length, 3000);
  const partitionOfTenant = new Map<string, string>();
  let invalid = 0;
  const now = new Date();
  for (const { pid, e } of stored) {
    assert.ok(e.partitionKey, 'every event has a partition key');
    const seen = partitionOfTenant.get(e.partitionKey);
    if (seen === undefined) partitionOfTenant.set(e.partitionKey, pid);
    else assert.equal(seen, pid, `tenant ${e.partitionKey} on two partitions`);
    const r = validateEvent(
      { body: e.body, properties: {}, source: makeSource({ hub, partitionId: pid, sequenceNumber: e.sequenceNumber, offset: e.offset, enqueuedTime: e.enqueuedTime }) },
      { now, retentionDays: 30, aheadDays: 3, maxBodyBytes: 256 * 1024 },
    );
    if (!r.ok) invalid++;
    else assert.equal(String(r.row.tenantId), e.partitionKey);
  }
  assert.equal(invalid, summary.generated.malformed);
  assert.ok(partitionOfTenant.size <= 12 && partitionOfTenant.size > 1);
  // Distinct bodies: the re-sends are exact copies.
  const bodies = new Set(stored.map(({ e }) => e.body.toString('hex')));
  assert.ok(bodies.size <= 3000 - summary.generated.duplicates);
});

test('--rate with --duration stops by itself and prints a human summary', async () => {
  const before = ['0', '1', '2', '3'].reduce((n, pid) => n + emu.partitionEvents(hub, pid).length, 0);
  const p = spawnHubsink(['generate', '--rate', '200', '--duration', '1.5', '--tenants', '5', '--no-progress'], env());
  children.push(p);
  const exit = await p.exited;
  assert.equal(exit.code, 0, p.stderr());
  const out = p.stdoutLines().join('\n');
  const m = /^sent (\d+) events to (\S+) in [\d.]+ s/m.exec(out);
  assert.ok(m, out);
  assert.equal(m[2], hub);
  const after = ['0', '1', '2', '3'].reduce((n, pid) => n + emu.partitionEvents(hub, pid).length, 0);
  assert.equal(after - before, Number(m[1]));
  assert.ok(Number(m[1]) > 0);
  assert.match(out, /new events +\d+ \(/);
});

test('bad arguments and missing settings are usage errors', async () => {
  for (const args of [
    ['generate', '--duplicates', '1.5'],
    ['generate', '--malformed', 'lots'],
    ['generate', '--count', '0'],
    ['generate', '--duplicates', '0.6', '--malformed', '0.5', '--count', '1'],
    ['generate', '--connection', 'https://example.invalid', '--count', '1'],
  ]) {
    const p = spawnHubsink(args, env());
    children.push(p);
    assert.equal((await p.exited).code, 2, `${args.join(' ')}: ${p.stderr()}`);
    assert.match(p.stderr(), /duplicates|malformed|count|connection/);
  }
  const p = spawnHubsink(['generate', '--count', '1'], { PATH: process.env.PATH });
  children.push(p);
  assert.equal((await p.exited).code, 2);
  assert.match(p.stderr(), /EventHubConnection is not set/);
});
