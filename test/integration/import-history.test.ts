/**
 * History beyond the partition window: `hubsink import` refuses events older than --max-age with a
 * message naming the --max-age that takes them (and writes nothing of that batch), creates the
 * partitions for the days it needs within the limit, and with --rollup folds them into the rollups,
 * which then equal the events. Also: --dry-run needs no database and writes nothing; parked lines
 * work with `dlq list`, `dlq show` and `dlq replay`; bad arguments exit 2.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrate } from '../../src/db/migrate.js';
import { listPartitions, partitionName } from '../../src/db/partitions.js';
import { eventKeys, spawnHubsink } from '../support/runner-fixture.js';
import { importEnv, makeLines, writeNdjson, type ImportJson } from '../support/import-fixture.js';
import { createTestSchema, type TestSchema } from '../support/services.js';

const DAY = 86_400_000;
let db: TestSchema;
let dir: string;

beforeAll(async () => {
  db = await createTestSchema('imph_');
  await migrate(db.pool, db.schema);
  dir = await mkdtemp(path.join(tmpdir(), 'hubsink-import-hist-'));
});
afterAll(async () => {
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

async function hubsink(args: string[], env: NodeJS.ProcessEnv = importEnv(db.schema)): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnHubsink(args, env);
  const { code } = await p.exited;
  return { code, stdout: p.stdoutLines().join('\n'), stderr: p.stderr() };
}

const json = (s: string): ImportJson => JSON.parse(s.split('\n').at(-1) ?? '{}') as ImportJson;

test('40-day-old history: refused beyond --max-age, then imported with partitions and rolled up exactly', async () => {
  const base = Date.now() - 40 * DAY;
  // About two days of events, 40 and 39 days ago.
  let t = base;
  const data = makeLines({ count: 4000, seed: 'history', duplicates: 0.01, malformed: 0, tenants: 6, clock: () => (t += 40_000) });
  const file = path.join(dir, 'old.ndjson');
  await writeNdjson(file, data.lines);

  const refused = await hubsink(['import', '--json', file]);
  assert.equal(refused.code, 1, refused.stderr);
  const r = json(refused.stdout);
  assert.equal(r.inserted, 0);
  assert.match(r.stoppedBy ?? '', /line 1: occurredAt .* is 40.0 days old, beyond --max-age 30 .* run again with --max-age 40 or more \(at most 3650\)/);
  assert.equal((await eventKeys(db.pool, db.schema)).length, 0, 'nothing of the batch was written');

  const dry = await hubsink(['import', '--dry-run', '--json', file], { PATH: process.env.PATH, HOME: process.env.HOME });
  assert.equal(dry.code, 1, 'events too old make a dry run fail too');
  assert.equal(json(dry.stdout).tooOld, data.expected.size, 'every distinct event (repeats within a batch are counted apart)');
  assert.equal(json(dry.stdout).maxAgeNeeded, 40);

  const ok = await hubsink(['import', '--json', '--max-age', '41', '--rollup', '--batch-size', '1000', file]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /note: events older than HUBSINK_RETENTION_DAYS \(30\)/);
  const s = json(ok.stdout);
  assert.equal(s.inserted, data.expected.size);
  assert.ok(s.rollupRuns >= 4, 'rolled up after every batch');
  const keys = await eventKeys(db.pool, db.schema);
  assert.deepEqual(new Set(keys), data.expected);
  // Partitions exist for exactly the days the events have, created by the import (no maintenance ran).
  const days = [...new Set(keys.map((k) => partitionName(new Date(Number(k.split('|')[2])))))].sort();
  assert.ok(days.length >= 2);
  assert.deepEqual(s.files[0]?.partitionsCreated.slice().sort(), days);
  const existing = new Set((await listPartitions(db.pool, db.schema)).map((p) => p.name));
  for (const d of days) assert.ok(existing.has(d), d);

  // Rollups equal the events, per tenant, bucket and type, in every grain.
  for (const [table, unit] of [['rollup_type_minute', 'minute'], ['rollup_type_hour', 'hour'], ['rollup_type_day', 'day']] as const) {
    const fromEvents = await db.pool.query<{ k: string; n: string }>(
      `SELECT tenant_id || '|' || date_trunc('${unit}', occurred_at AT TIME ZONE 'UTC') || '|' || type AS k, count(*)::text AS n FROM "${db.schema}".events GROUP BY 1 ORDER BY 1`,
    );
    const fromRollup = await db.pool.query<{ k: string; n: string }>(
      `SELECT tenant_id || '|' || (bucket AT TIME ZONE 'UTC') || '|' || type AS k, sum(events)::text AS n FROM "${db.schema}".${table} WHERE tenant_id <> 0 GROUP BY 1 ORDER BY 1`,
    );
    assert.deepEqual(fromRollup.rows, fromEvents.rows, table);
  }

  const again = await hubsink(['import', '--json', '--max-age', '41', file]);
  assert.equal(json(again.stdout).files[0]?.status, 'already imported');
});

test('parked lines work with dlq list, show and replay', async () => {
  // Five days ahead is beyond HUBSINK_PARTITIONS_AHEAD_DAYS (3): invalid today, valid once it is 10.
  const ahead = new Date(Date.now() + 5 * DAY).toISOString();
  const file = path.join(dir, 'future.ndjson');
  const lines = [
    `{"tenantId":9,"type":"click","occurredAt":"${new Date().toISOString()}"}`,
    `{"tenantId":9,"type":"click","occurredAt":"${ahead}"}`,
    'not json',
  ].map((l) => Buffer.from(l));
  await writeNdjson(file, lines);
  const r = await hubsink(['import', '--json', file]);
  assert.equal(r.code, 1);
  assert.equal(json(r.stdout).invalid, 2);

  const list = await hubsink(['dlq', 'list', '--json']);
  const parked = (JSON.parse(list.stdout) as { id: number; source: { hub: string; partitionId: string; sequenceNumber: number } }[]).filter((d) => d.source.partitionId === file);
  assert.deepEqual(parked.map((d) => [d.source.hub, d.source.sequenceNumber]), [['import', 2], ['import', 3]]);
  const show = await hubsink(['dlq', 'show', String(parked[0]?.id)]);
  assert.match(show.stdout, new RegExp(`hub import, partition ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, sequence 2`));

  const env = importEnv(db.schema, { HUBSINK_PARTITIONS_AHEAD_DAYS: '10' });
  assert.equal((await hubsink(['partitions'], env)).code, 0);
  const replay = await hubsink(['dlq', 'replay', '--json'], env);
  const summary = JSON.parse(replay.stdout) as { inserted: number; stillInvalid: number };
  assert.equal(summary.inserted, 1);
  assert.equal(summary.stillInvalid, 1, 'the line that is not JSON stays parked');
  const { rows } = await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${db.schema}".events WHERE tenant_id = 9`);
  assert.equal(rows[0]?.n, '2');
});

test('arguments: --help, no source, a missing file, --max-age out of range, a bad --map exit 2; --max-age 0 refuses anything older than now', async () => {
  const help = await hubsink(['import', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--max-age <days>/);
  assert.match(help.stdout, /--dry-run/);
  assert.equal((await hubsink(['import'])).code, 2);
  const missing = await hubsink(['import', path.join(dir, 'nope.ndjson')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.ndjson: no such file or directory/);
  for (const bad of ['-1', '3651', 'x', '1.5']) assert.equal((await hubsink(['import', '--max-age', bad, path.join(dir, 'old.ndjson')])).code, 2, bad);
  assert.match((await hubsink(['import', '--map', 'a=nope', path.join(dir, 'old.ndjson')])).stderr, /"nope" is not an event field/);

  const file = path.join(dir, 'today.ndjson');
  await writeNdjson(file, [Buffer.from(`{"tenantId":3,"type":"click","occurredAt":"${new Date(Date.now() - 3600_000).toISOString()}"}`)]);
  const zero = await hubsink(['import', '--json', '--max-age', '0', file]);
  assert.equal(zero.code, 1);
  assert.match(json(zero.stdout).stoppedBy ?? '', /beyond --max-age 0/);
  assert.equal(json((await hubsink(['import', '--json', '--max-age', '1', file])).stdout).inserted, 1);
});
