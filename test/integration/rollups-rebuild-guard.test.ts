/**
 * `rollup rebuild` never replaces history with nothing: its guard is the oldest partition of
 * `events` that exists, whatever HUBSINK_RETENTION_DAYS the operator's shell has. Ranges before it
 * are refused with that boundary in the message; ranges after it are rebuilt.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testDatabaseUrl } from '../support/services.js';
import { insertEventRows } from '../../src/db/events.js';
import { listPartitions, startOfUtcDay } from '../../src/db/partitions.js';
import { GRAIN_MS, ROLLUPS } from '../../src/rollups/definitions.js';
import { rebuildRollups, RebuildRangeError } from '../../src/rollups/run.js';
import { rollupSchema, runUntilCaughtUp, sampleRows } from '../support/rollups-fixture.js';

const BIN = fileURLToPath(new URL('../../bin/hubsink.js', import.meta.url));
const DAY = GRAIN_MS.day;

function hubsink(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

test('rollup rebuild: the guard is the oldest partition that exists, not the shell\'s retention setting', async () => {
  const f = await rollupSchema('rg_');
  const { pool, schema } = f.s;
  try {
    // The fixture made partitions back to the day holding now − 14 d.
    const oldest = startOfUtcDay(new Date(Date.now() - 14 * DAY));
    assert.equal((await listPartitions(pool, schema))[0]?.from?.toISOString(), oldest.toISOString());
    // Events 12 days ago, folded in.
    const base = new Date(startOfUtcDay(new Date(Date.now() - 12 * DAY)).getTime() + 12 * 3600_000);
    await insertEventRows(pool, schema, sampleRows(60, { seed: 'guard', tenants: [5], base, spreadMinutes: 120 }));
    await runUntilCaughtUp(f);
    const dayTotal = async () => Number((await pool.query<{ n: string }>(`SELECT coalesce(sum(events), 0)::text AS n FROM "${schema}".rollup_total_day WHERE tenant_id = 5`)).rows[0]?.n);
    assert.equal(await dayTotal(), 60);
    const env = { DATABASE_URL: testDatabaseUrl(), HUBSINK_SCHEMA: schema };

    // The shell says 30 days (the default); only 14 exist. 20 days back reaches before the oldest
    // partition: refused with the real boundary, nothing changed.
    for (const from of ['20d', '2000-01-01T00:00:00Z']) {
      const r = await hubsink(['rollup', 'rebuild', '--tenant', '5', '--from', from, '--to', '1d'], env);
      assert.equal(r.code, 2, r.stderr);
      assert.ok(r.stderr.includes(oldest.toISOString()), r.stderr);
      assert.match(r.stderr, /oldest partition of events that exists/);
      assert.equal(r.stdout, '');
    }
    assert.equal(await dayTotal(), 60);

    // The shell says 5 days, the partitions go back 14: a range 13 days back is rebuilt, exactly.
    const ok = await hubsink(['rollup', 'rebuild', '--tenant', '5', '--from', '13d', '--to', '11d', '--json'], { ...env, HUBSINK_RETENTION_DAYS: '5' });
    assert.equal(ok.code, 0, ok.stderr);
    const out = JSON.parse(ok.stdout) as { rollups: { name: string; rows: number }[] };
    assert.deepEqual(out.rollups.map((r) => [r.name, r.rows]), ROLLUPS.map((d) => [d.name, 60]));
    assert.equal(await dayTotal(), 60);

    // Missing state: with no partitions at all there is nothing to rebuild from.
    const parts = await listPartitions(pool, schema);
    for (const p of parts) await pool.query(`DROP TABLE "${schema}"."${p.name}"`);
    await assert.rejects(
      rebuildRollups(pool, schema, { tenantId: 5, from: new Date(Date.now() - DAY), to: new Date(), caps: f.caps }),
      (err: unknown) => err instanceof RebuildRangeError && /has no partitions/.test(err.message),
    );
    assert.equal(await dayTotal(), 60);
  } finally {
    await f.s.drop();
  }
});
