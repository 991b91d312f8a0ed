/**
 * Fourteen simulated days, with an injected clock that advances six hours at a time: real
 * PostgreSQL, the emulator, Azurite. Traffic each step crosses day boundaries, carries late events
 * from the previous day, events on the oldest accepted day (whose partition is dropped soon after),
 * exact re-sends and deliberately invalid events. Retention is 3 days, so partitions are created and
 * dropped all along. At the end:
 * - `events` holds exactly the distinct valid events whose partition still exists (every event of
 *   the retention window), once each;
 * - each rollup's total equals every event ever inserted: nothing was dropped before being folded in;
 * - nothing is parked but the invalid events.
 * Once for the standalone runner (partition maintenance and rollups inside it), once for the
 * Functions handlers, with the timers called as the host calls them.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Timer } from '@azure/functions';
import type pg from 'pg';
import { loadConfig, type HubsinkConfig } from '../../src/config.js';
import { migrate } from '../../src/db/migrate.js';
import { listPartitions, partitionPlan, startOfUtcDay } from '../../src/db/partitions.js';
import { TenantRegistry } from '../../src/db/tenants.js';
import { makeDeadLetterHandler } from '../../src/deadLetters/deadLetterHandler.js';
import { createProducer } from '../../src/hubs/clients.js';
import { makeIngestHandler } from '../../src/ingest/ingestHandler.js';
import { makePartitionsTimerHandler } from '../../src/partitions/partitionsHandler.js';
import { makeRollupTimerHandler } from '../../src/rollups/timer.js';
import { rollupStatus } from '../../src/rollups/run.js';
import { startRunner, type Runner } from '../../src/runner/runner.js';
import { detectCapabilities } from '../../src/db/capabilities.js';
import { hostBatch, invocationContext } from '../support/functions-batch.js';
import { RecordingDeadLetterSink } from '../support/sinks.js';
import { createTestSchema, type TestSchema } from '../support/services.js';
import { asDeadLetterEvents, hostShape } from '../support/deadLetters.js';
import { countRows, diff, eventKeys, startStack, waitFor, type Stack } from '../support/runner-fixture.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const STEP = 6 * HOUR;
const DAYS = 14;
const RETENTION = 3;
const AHEAD = 1;
/** 00:05 UTC: the `partitions` timer's daily schedule, so every fourth step is one of its runs. */
const T0 = new Date('2031-03-01T00:05:00Z');
const SETTINGS = {
  HUBSINK_RETENTION_DAYS: String(RETENTION),
  HUBSINK_PARTITIONS_AHEAD_DAYS: String(AHEAD),
  // Minute rollups keep the whole fortnight, so every grain can be compared with all inserted events.
  HUBSINK_ROLLUP_MINUTE_RETENTION_DAYS: '30',
};

interface Sent {
  body: Buffer;
  tenantId: number;
  /** rowKey of a valid event; undefined for the deliberately invalid ones. */
  key?: string;
  occurredAt?: Date;
}

/** A small deterministic PRNG (mulberry32) so both runs send the same traffic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** One step's traffic at clock time `now`. */
function traffic(step: number, now: Date): Sent[] {
  const rnd = prng(step + 1);
  const out: Sent[] = [];
  const valid = (i: number, occurredAt: Date): Sent => {
    const tenantId = 1 + Math.floor(rnd() * 5);
    const eventId = uuid(`${step}/${i}`);
    const body = Buffer.from(
      JSON.stringify({ eventId, tenantId, type: ['page_view', 'click', 'purchase'][i % 3], occurredAt: occurredAt.toISOString(), sessionId: `s${i % 7}`, userId: `u${i % 11}`, ...(i % 3 === 2 ? { revenue: 10 + i } : {}) }),
    );
    return { body, tenantId, key: `${tenantId}|${eventId}|${occurredAt.getTime()}`, occurredAt };
  };
  const dayStart = startOfUtcDay(now).getTime();
  let i = 0;
  // The last six hours: at 00:05 this reaches back into the previous day.
  for (let n = 0; n < 24; n++) out.push(valid(i++, new Date(now.getTime() - Math.floor(rnd() * STEP))));
  // Late events from the previous UTC day.
  for (let n = 0; n < 4; n++) out.push(valid(i++, new Date(dayStart - 60_000 - Math.floor(rnd() * 20 * HOUR))));
  // On the oldest day still accepted: its partition goes within a day.
  out.push(valid(i++, new Date(now.getTime() - RETENTION * DAY + 60_000 + Math.floor(rnd() * HOUR))));
  // Exact re-sends of two of them.
  const a = out[3];
  const b = out[26];
  if (a && b) out.push({ ...a }, { ...b });
  // Deliberately invalid: not JSON, and a time outside the window.
  out.push({ body: Buffer.from(`{"step": ${step}, broken`), tenantId: 1 });
  out.push({ body: Buffer.from(JSON.stringify({ eventId: uuid(`old/${step}`), tenantId: 2, type: 'click', occurredAt: new Date(now.getTime() - 10 * DAY).toISOString() })), tenantId: 2 });
  return out;
}

interface Truth {
  sent: number;
  invalid: number;
  /** Distinct valid events ever sent, by key, with their time. */
  valid: Map<string, Date>;
}

function record(truth: Truth, batch: readonly Sent[]): void {
  truth.sent += batch.length;
  for (const s of batch) {
    if (s.key && s.occurredAt) truth.valid.set(s.key, s.occurredAt);
    else truth.invalid++;
  }
}

async function rollupTotals(pool: pg.Pool, schema: string): Promise<number[]> {
  const out: number[] = [];
  for (const grain of ['minute', 'hour', 'day']) {
    const { rows } = await pool.query<{ n: string }>(`SELECT coalesce(sum(events), 0)::text AS n FROM "${schema}".rollup_total_${grain} WHERE tenant_id <> 0`);
    out.push(Number(rows[0]?.n ?? 0));
  }
  return out;
}

/** The end state both runs must reach. */
async function assertEndState(pool: pg.Pool, schema: string, truth: Truth, end: Date): Promise<void> {
  // Partitions are exactly the window's at the end: created and dropped all along.
  const parts = await listPartitions(pool, schema);
  assert.deepEqual(parts.map((p) => p.name), partitionPlan(end, AHEAD, RETENTION).days.map((d) => d.name));
  const oldest = parts[0]?.from;
  assert.ok(oldest);
  assert.equal(oldest.toISOString(), startOfUtcDay(new Date(end.getTime() - RETENTION * DAY)).toISOString());
  // Every event still in a partition (the whole retention window and its first day) is there once.
  const kept = new Set([...truth.valid].filter(([, at]) => at.getTime() >= oldest.getTime()).map(([k]) => k));
  const keys = await eventKeys(pool, schema);
  assert.equal(keys.length, kept.size, diff(keys, kept));
  assert.deepEqual(new Set(keys), kept, diff(keys, kept));
  const windowStart = end.getTime() - RETENTION * DAY;
  assert.ok([...truth.valid].filter(([, at]) => at.getTime() >= windowStart).every(([k]) => kept.has(k)));
  assert.ok(truth.valid.size > kept.size * 2, 'most of the fortnight was dropped by retention');
  // The rollups hold every event ever inserted, those of dropped partitions included.
  assert.deepEqual(await rollupTotals(pool, schema), [truth.valid.size, truth.valid.size, truth.valid.size]);
  // Parked: the invalid events, nothing else.
  const parked = await pool.query<{ reason: string; n: string }>(`SELECT reason, count(*)::text AS n FROM "${schema}".dead_letters GROUP BY reason`);
  assert.deepEqual(parked.rows, [{ reason: 'invalid', n: String(truth.invalid) }]);
}

async function caughtUp(pool: pg.Pool, schema: string): Promise<boolean> {
  return (await rollupStatus(pool, schema)).every((s) => s.pendingRows === 0 && s.lastSeq === s.highWater);
}

const timer: Timer = { isPastDue: false, schedule: { adjustForDST: true }, scheduleStatus: { last: '', next: '', lastUpdated: '' } };

let stack: Stack;
let runner: Runner | undefined;
let fnSchema: TestSchema | undefined;

beforeAll(async () => {
  stack = await startStack({ partitions: 2, prepare: false });
});
afterAll(async () => {
  await runner?.stop();
  await fnSchema?.drop();
  await stack.close();
});

test('a fortnight of the standalone runner: partitions, retention and rollups by its clock, exactly once', async () => {
  const { pool, schema } = stack.db;
  let now = T0;
  const config = loadConfig(stack.env(SETTINGS));
  // What `hubsink migrate` does, at the simulated start.
  await migrate(pool, schema, { partitions: { now, aheadDays: AHEAD, retentionDays: RETENTION } });
  const logs: string[] = [];
  runner = await startRunner({
    config,
    log: (level, m) => void logs.push(`${now.toISOString()} ${level} ${m}`),
    deadLetter: true,
    rollups: true,
    // Slower than the steps: partitions past retention are often found not yet folded in, and the
    // maintenance run has to roll up first.
    rollupIntervalMs: 2000,
    checkpointContainer: stack.container,
    loadBalancingIntervalMs: 500,
    maxWaitTimeInSeconds: 0.1,
    clock: () => now,
    partitionCheckMs: 20,
    // The clock stands still while the test waits: a failed run is retried at the next check.
    partitionRetryMs: 0,
  });
  const r = runner;
  const producer = await createProducer({ kind: 'connectionString', connectionString: stack.emu.connectionString() }, stack.hub);
  const truth: Truth = { sent: 0, invalid: 0, valid: new Map() };
  try {
    for (let step = 0; step < DAYS * 4; step++) {
      now = new Date(T0.getTime() + step * STEP);
      // Maintenance is due every 3 h of clock time: the window's partitions exist before sending.
      const plan = partitionPlan(now, AHEAD, RETENTION).days.map((d) => d.name);
      await waitFor(`partitions at ${now.toISOString()}`, async () => (await listPartitions(pool, schema)).map((p) => p.name), (n) => plan.every((p) => n.includes(p)), 30_000);
      const batch = traffic(step, now);
      for (const tenant of [1, 2, 3, 4, 5]) {
        const mine = batch.filter((s) => s.tenantId === tenant);
        if (mine.length === 0) continue;
        const eb = await producer.createBatch({ partitionKey: String(tenant) });
        for (const s of mine) assert.ok(eb.tryAdd({ body: s.body }));
        await producer.sendBatch(eb);
      }
      record(truth, batch);
      await waitFor(
        `step ${step} handled`,
        () => Promise.resolve(r.stats()),
        (st) => st.ingest.received === truth.sent && st.deadletter.parked.invalid === truth.invalid,
        15_000,
      );
    }
    now = new Date(T0.getTime() + DAYS * DAY);
    const end = now;
    const plan = partitionPlan(end, AHEAD, RETENTION).days.map((d) => d.name);
    await waitFor('the last maintenance', async () => (await listPartitions(pool, schema)).map((p) => p.name), (n) => JSON.stringify(n) === JSON.stringify(plan), 30_000);
    await waitFor('rollups to catch up', () => caughtUp(pool, schema), (ok) => ok, 15_000);
    const st = r.stats();
    assert.deepEqual(st.ingest.deadLettered, { invalid: truth.invalid, rejected: 0, transient: 0 });
    assert.equal(st.rollups.failures, 0, st.rollups.lastError ?? '');
    await assertEndState(pool, schema, truth, end);
    assert.equal(await countRows(pool, schema, 'dead_letters'), truth.invalid);
  } catch (err) {
    // What the runner said is the explanation of a failure here.
    throw new Error(`${err instanceof Error ? err.message : String(err)}\nrunner log (last lines):\n${logs.slice(-30).join('\n')}`, { cause: err });
  } finally {
    await producer.close();
    await runner.stop();
    runner = undefined;
  }
});

test('a fortnight of the Functions handlers, timers called as the host calls them', async () => {
  fnSchema = await createTestSchema('fn14_');
  const { pool, schema } = fnSchema;
  let now = T0;
  const clock = (): Date => now;
  const config: HubsinkConfig = loadConfig({ HUBSINK_SCHEMA: schema, ...SETTINGS });
  await migrate(pool, schema, { partitions: { now, aheadDays: AHEAD, retentionDays: RETENTION } });
  const caps = await detectCapabilities(pool);
  const sink = new RecordingDeadLetterSink();
  const tenants = new TenantRegistry();
  const ingest = makeIngestHandler(() => Promise.resolve({ hub: 'clickstream', consumerGroup: '$Default', ingest: { pool, config, sink, tenants, clock } }));
  const deadLetter = makeDeadLetterHandler(() => Promise.resolve({ hub: 'clickstream-deadletter', consumerGroup: '$Default', deps: { pool, config, tenants, clock } }));
  const partitions = makePartitionsTimerHandler(() => Promise.resolve({ pool, config, caps, clock }));
  const rollup = makeRollupTimerHandler(() => Promise.resolve({ pool, config, caps, clock }));
  const seq = new Map<string, number>();
  let dlSeq = 0;
  const truth: Truth = { sent: 0, invalid: 0, valid: new Map() };
  const logs: string[] = [];

  // runOnStartup: the partitions timer runs when the host starts.
  await partitions(timer, invocationContext('partitions', {}, logs));
  for (let step = 0; step < DAYS * 4; step++) {
    now = new Date(T0.getTime() + step * STEP);
    const batch = traffic(step, now);
    for (const pid of ['0', '1']) {
      const mine = batch.filter((s) => String(s.tenantId % 2) === pid);
      const first = seq.get(pid) ?? 0;
      seq.set(pid, first + mine.length);
      const host = hostBatch(mine.map((s) => ({ body: s.body, partitionKey: String(s.tenantId) })), { hub: 'clickstream', partitionId: pid, firstSequence: first, enqueued: now });
      await ingest(host.messages, invocationContext('ingest', host.triggerMetadata, logs));
    }
    record(truth, batch);
    // What the sink put on the dead-letter hub arrives at the `deadletter` function.
    const records = sink.records.splice(0);
    if (records.length > 0) {
      const dl = hostShape(asDeadLetterEvents(records, dlSeq, now), { hub: 'clickstream-deadletter', consumerGroup: '$Default', partitionId: '0' });
      dlSeq += records.length;
      await deadLetter(dl.messages, invocationContext('deadletter', dl.triggerMetadata, logs));
    }
    // Daily at 00:05 UTC, racing the ingest of that minute.
    if (step % 4 === 0) await partitions(timer, invocationContext('partitions', {}, logs));
    // The rollup timer runs every minute; one run per step folds in all the step brought. At 18:05
    // it is skipped (a busy minute), so the next 00:05 finds the partition it drops not yet folded
    // in (the oldest-day events of 18:05 are in it) and has to roll up first.
    if (step % 4 !== 3) await rollup(timer, invocationContext('rollup', {}, logs));
  }
  now = new Date(T0.getTime() + DAYS * DAY);
  await partitions(timer, invocationContext('partitions', {}, logs));
  await rollup(timer, invocationContext('rollup', {}, logs));
  assert.ok(await caughtUp(pool, schema));
  assert.equal(sink.records.length, 0);
  assert.ok(logs.some((l) => /^partitions created=\d+ dropped=[1-9]/.test(l)), 'retention dropped partitions');
  assert.ok(!logs.some((l) => /partitions kept/.test(l)), logs.filter((l) => /kept/.test(l)).join('\n'));
  await assertEndState(pool, schema, truth, now);
});
