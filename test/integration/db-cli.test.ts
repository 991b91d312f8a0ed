import { test } from 'vitest';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createTestSchema, testDatabaseUrl } from '../support/services.js';
import { maintainPartitions, partitionName, partitionPlan } from '../../src/db/partitions.js';
import { migrate } from '../../src/db/migrate.js';
import { detectCapabilities } from '../../src/db/capabilities.js';
import { insertEventRows } from '../../src/db/events.js';
import { makeRow } from '../support/rows.js';

const BIN = fileURLToPath(new URL('../../bin/hubsink.js', import.meta.url));

function hubsink(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

test('hubsink migrate and hubsink partitions against a schema from HUBSINK_SCHEMA and --schema', async () => {
  const s = await createTestSchema('dbc_');
  const env = { DATABASE_URL: testDatabaseUrl(), HUBSINK_SCHEMA: s.schema };
  try {
    const first = await hubsink(['migrate'], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^001_core$/m);
    // migrate also created the accepted window's partitions (default 30 days back, 3 ahead).
    assert.match(first.stdout, /^created events_p\d{4}_\d{2}_\d{2}$/m);
    const again = await hubsink(['migrate', '--json'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout), { schema: s.schema, applied: [], createdPartitions: [] });

    const parts = await hubsink(['partitions', '--ahead', '4', '--retention', '30', '--json', '--schema', s.schema], { DATABASE_URL: testDatabaseUrl() });
    assert.equal(parts.code, 0, parts.stderr);
    const out = JSON.parse(parts.stdout) as { schema: string; created: string[]; dropped: string[]; kept: unknown[] };
    assert.equal(out.schema, s.schema);
    assert.deepEqual(out.dropped, []);
    assert.deepEqual(out.kept, []);
    // One more day ahead than migrate made (two if a UTC midnight passed in between).
    assert.ok(out.created.length >= 1 && out.created.length <= 2, JSON.stringify(out));
    assert.ok(out.created.every((n) => /^events_p\d{4}_\d{2}_\d{2}$/.test(n)));
    const plan = partitionPlan(new Date(), 4, 30).days.map((d) => d.name);
    assert.ok(out.created.every((n) => plan.includes(n)));

    // Below the app's retention (HUBSINK_RETENTION_DAYS, default 30) only with --force; never below 1.
    const below = await hubsink(['partitions', '--retention', '3'], env);
    assert.equal(below.code, 2);
    assert.match(below.stderr, /--retention 3 is below the app's HUBSINK_RETENTION_DAYS \(30\).*--force/s);
    for (const bad of ['0', '-1', '1.5']) {
      const r = await hubsink(['partitions', '--retention', bad, '--force'], env);
      assert.equal(r.code, 2, `--retention ${bad}: ${r.stderr}`);
      assert.match(r.stderr, /positive whole number|unknown option/);
    }
    const sameAsApp = await hubsink(['partitions', '--retention', '3'], { ...env, HUBSINK_RETENTION_DAYS: '3' });
    assert.equal(sameAsApp.code, 0, sameAsApp.stderr);
    const forced = await hubsink(['partitions', '--ahead', '2', '--retention', '3', '--force'], env);
    assert.equal(forced.code, 0, forced.stderr);

    const text = await hubsink(['partitions', '--ahead', '2', '--retention', '3', '--force'], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stderr, /up to date/);
  } finally {
    await s.drop();
  }
});

test('usage errors exit 2 with a message; a missing DATABASE_URL is named', async () => {
  const bad = await hubsink(['partitions', '--ahead', 'soon'], { DATABASE_URL: testDatabaseUrl() });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--ahead.*positive whole number/);
  const schema = await hubsink(['migrate', '--schema', 'Bad-Name'], { DATABASE_URL: testDatabaseUrl() });
  assert.equal(schema.code, 2);
  assert.match(schema.stderr, /--schema "Bad-Name"/);
  const nodb = await hubsink(['migrate'], {});
  assert.equal(nodb.code, 2);
  assert.match(nodb.stderr, /DATABASE_URL is not set/);
  const help = await hubsink(['migrate', '--help'], {});
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--schema <name>/);
});

test('hubsink partitions keeps a partition past retention the rollups cannot fold in yet, says why (exit 1), and drops it once they have', async () => {
  const s = await createTestSchema('dbk_');
  const env = { DATABASE_URL: testDatabaseUrl(), HUBSINK_SCHEMA: s.schema, HUBSINK_RETENTION_DAYS: '30', HUBSINK_ROLLUP_MAX_ROWS: '1' };
  try {
    await migrate(s.pool, s.schema);
    const caps = await detectCapabilities(s.pool);
    // Partitions back to 40 days ago, as an app with a longer retention left them; 30 rows 35 days back.
    const now = new Date();
    await maintainPartitions(s.pool, s.schema, { now, aheadDays: 3, retentionDays: 40, caps });
    const old = new Date(now.getTime() - 35 * 86_400_000);
    const oldName = partitionName(old);
    assert.equal((await insertEventRows(s.pool, s.schema, Array.from({ length: 30 }, (_, i) => makeRow({ occurredAt: new Date(old.getTime() + i * 1000) })))).inserted, 30);

    // One sequence value per rollup step: the 20 steps a run may take fold 20 of the 30 rows.
    const first = await hubsink(['partitions', '--json'], env);
    assert.equal(first.code, 1, first.stderr);
    const r1 = JSON.parse(first.stdout) as { dropped: string[]; kept: { name: string; reason: string }[] };
    assert.deepEqual(r1.kept.map((k) => k.name), [oldName]);
    assert.match(r1.kept[0]?.reason ?? '', /holds rows up to ingest_seq 30 but the rollups have folded in only up to 20/);
    assert.ok(!r1.dropped.includes(oldName));
    assert.ok(r1.dropped.length >= 4, 'the empty partitions past retention went');
    const text = await hubsink(['partitions'], env);
    // The second run folds the last 10 and drops it.
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^dropped ${oldName}$`, 'm'));
    const { rows } = await s.pool.query<{ n: string }>(`SELECT sum(events)::text AS n FROM "${s.schema}".rollup_total_day WHERE tenant_id <> 0`);
    assert.equal(rows[0]?.n, '30');
  } finally {
    await s.drop();
  }
});
