/**
 * Issue 19 item 4: `rollup rebuild` must not replace history with nothing when a partition exists
 * but its raw events are gone (dropped by retention, then created again empty by `hubsink migrate`).
 * The scenario, end to end through the CLI: a fresh schema, `hubsink migrate` (30 past days),
 * 100 events of tenant 42 twenty days ago folded into every rollup, their partition dropped and
 * re-created, then a rebuild of that day: refused with both numbers and nothing changed; `--force`
 * rebuilds and says what it lost. Every rollup definition is checked.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createTestSchema, testDatabaseUrl } from '../support/services.js';
import { detectCapabilities } from '../../src/db/capabilities.js';
import { insertEventRows } from '../../src/db/events.js';
import { listPartitions, startOfUtcDay } from '../../src/db/partitions.js';
import { configureSession } from '../../src/db/session.js';
import { GRAIN_MS, ROLLUPS } from '../../src/rollups/definitions.js';
import { eventsColumn } from '../../src/rollups/rebuildGuard.js';
import { loadSketchProfile } from '../../src/rollups/run.js';
import { runUntilCaughtUp, sampleRows } from '../support/rollups-fixture.js';

const BIN = fileURLToPath(new URL('../../bin/hubsink.js', import.meta.url));
const DAY = GRAIN_MS.day;

function hubsink(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

test('rollup rebuild: a re-created empty partition does not replace folded history unless --force, for every rollup', async () => {
  const s = await createTestSchema('rl_');
  const env = { DATABASE_URL: testDatabaseUrl(), HUBSINK_SCHEMA: s.schema };
  try {
    const migrated = await hubsink(['migrate'], env);
    assert.equal(migrated.code, 0, migrated.stderr);
    const caps0 = await detectCapabilities(s.pool);
    configureSession(s.pool, caps0, { citusCachedConnsPerWorker: 8 });
    const caps = await detectCapabilities(s.pool);
    const f = { s, caps, sketch: await loadSketchProfile(s.pool, s.schema, caps) };

    const day = startOfUtcDay(new Date(Date.now() - 20 * DAY));
    const next = new Date(day.getTime() + DAY);
    const after = new Date(next.getTime() + DAY);
    const noon = (d: Date) => new Date(d.getTime() + 12 * 3_600_000);
    assert.ok((await listPartitions(s.pool, s.schema)).some((p) => p.from?.getTime() === day.getTime()), 'migrate created the partition 20 days back');
    await insertEventRows(s.pool, s.schema, sampleRows(100, { seed: 'lost-42', tenants: [42], base: noon(day), spreadMinutes: 600 }));
    await insertEventRows(s.pool, s.schema, sampleRows(10, { seed: 'lost-7', tenants: [7], base: noon(day), spreadMinutes: 600 }));
    await insertEventRows(s.pool, s.schema, sampleRows(30, { seed: 'kept-42', tenants: [42], base: noon(next), spreadMinutes: 600 }));
    await runUntilCaughtUp(f);

    /** Per rollup definition: the tenant's events in [from, to). */
    const totals = async (tenant: number, from: Date, to: Date) => {
      const out: Record<string, number> = {};
      for (const def of ROLLUPS) {
        const { rows } = await s.pool.query<{ n: string }>(
          `SELECT coalesce(sum("${eventsColumn(def)}"), 0)::text AS n FROM "${s.schema}"."${def.table}" WHERE tenant_id = $1 AND bucket >= $2 AND bucket < $3`,
          [tenant, from, to],
        );
        out[def.name] = Number(rows[0]?.n);
      }
      return out;
    };
    const each = (n: number) => Object.fromEntries(ROLLUPS.map((d) => [d.name, n]));
    assert.deepEqual(await totals(42, day, next), each(100));
    assert.deepEqual(await totals(42, next, after), each(30));
    assert.deepEqual(await totals(7, day, next), each(10));

    // Retention dropped the day's partition; `hubsink migrate` creates it again, empty.
    const part = (await listPartitions(s.pool, s.schema)).find((p) => p.from?.getTime() === day.getTime());
    assert.ok(part);
    await s.pool.query(`DROP TABLE "${s.schema}"."${part.name}"`);
    const again = await hubsink(['migrate'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`created ${part.name}`));
    assert.equal(Number((await s.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${s.schema}"."${part.name}"`)).rows[0]?.n), 0);

    // The command: refused (exit 1) with both numbers for every rollup, nothing changed.
    const iso = (d: Date) => d.toISOString();
    const refused = await hubsink(['rollup', 'rebuild', '--tenant', '42', '--from', iso(day), '--to', iso(next)], env);
    assert.equal(refused.code, 1, refused.stderr);
    assert.equal(refused.stdout, '');
    for (const def of ROLLUPS) {
      assert.match(refused.stderr, new RegExp(`${def.table}: .* hold 100 events, but only 0 raw events exist for them \\(would lose 100\\)`), refused.stderr);
    }
    assert.match(refused.stderr, /--force/);
    assert.deepEqual(await totals(42, day, next), each(100));

    // A range that also covers an intact day is refused as a whole: the intact day is untouched too.
    const wide = await hubsink(['rollup', 'rebuild', '--tenant', '42', '--from', iso(day), '--to', iso(after), '--json'], env);
    assert.equal(wide.code, 1, wide.stderr);
    assert.match(wide.stderr, /hold 100 events, but only 0 raw events/);
    assert.deepEqual(await totals(42, day, next), each(100));
    assert.deepEqual(await totals(42, next, after), each(30));

    // The intact day alone rebuilds as before; another tenant's lost day is refused as well.
    const intact = await hubsink(['rollup', 'rebuild', '--tenant', '42', '--from', iso(next), '--to', iso(after), '--json'], env);
    assert.equal(intact.code, 0, intact.stderr);
    assert.deepEqual((JSON.parse(intact.stdout) as { rollups: { rows: number }[] }).rollups.map((r) => r.rows), ROLLUPS.map(() => 30));
    assert.deepEqual(await totals(42, next, after), each(30));
    const other = await hubsink(['rollup', 'rebuild', '--tenant', '7', '--from', iso(day), '--to', iso(next)], env);
    assert.equal(other.code, 1, other.stderr);
    assert.match(other.stderr, /hold 10 events, but only 0 raw events/);

    // --force: rebuilt, and what was lost is printed for every rollup; the other tenant keeps its day.
    const forced = await hubsink(['rollup', 'rebuild', '--tenant', '42', '--from', iso(day), '--to', iso(next), '--force', '--json'], env);
    assert.equal(forced.code, 0, forced.stderr);
    for (const def of ROLLUPS) assert.match(forced.stderr, new RegExp(`--force: ${def.table}: .*would lose 100`), forced.stderr);
    const out = JSON.parse(forced.stdout) as { rollups: { name: string; rows: number; lost?: { rolled: number; raw: number } }[] };
    assert.deepEqual(
      out.rollups.map((r) => [r.name, r.rows, r.lost?.rolled, r.lost?.raw]),
      ROLLUPS.map((d) => [d.name, 0, 100, 0]),
    );
    assert.deepEqual(await totals(42, day, next), each(0));
    assert.deepEqual(await totals(7, day, next), each(10));
  } finally {
    await s.drop();
  }
});
