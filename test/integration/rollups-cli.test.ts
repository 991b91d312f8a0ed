import { test } from 'vitest';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testDatabaseUrl } from '../support/services.js';
import { insertEventRows } from '../../src/db/events.js';
import { GRAIN_MS, ROLLUPS, bucketStart } from '../../src/rollups/definitions.js';
import { assertRollupsMatchEvents, recentBase, rollupSchema, sampleRows } from '../support/rollups-fixture.js';

const BIN = fileURLToPath(new URL('../../bin/hubsink.js', import.meta.url));

function hubsink(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

interface StatusJson {
  name: string;
  lastSeq: number;
  highWater: number;
  pendingRows: number;
  lagSeconds: number;
  lastRunAt: string | null;
}

test('hubsink rollup: --status, one bounded run, --catch-up, rebuild; data on stdout, JSON with --json', async () => {
  const f = await rollupSchema('rc_');
  const env = { DATABASE_URL: testDatabaseUrl(), HUBSINK_SCHEMA: f.s.schema };
  try {
    await insertEventRows(f.s.pool, f.s.schema, sampleRows(120, { seed: 'cli', tenants: [11, 12], base: recentBase(), spreadMinutes: 90 }));

    const st = await hubsink(['rollup', '--status', '--json'], env);
    assert.equal(st.code, 0, st.stderr);
    const status = JSON.parse(st.stdout) as StatusJson[];
    assert.deepEqual(
      status.map((s) => [s.name, s.lastSeq, s.highWater, s.pendingRows, s.lastRunAt]),
      ROLLUPS.map((d) => [d.name, 0, 120, 120, null]),
    );
    assert.ok(status.every((s) => s.lagSeconds >= 0));
    const table = await hubsink(['rollup', '--status'], env);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^rollup\s+watermark\s+high-water\s+pending\s+lag\s+last run/);
    assert.match(table.stdout, /^total_minute\s+0\s+120\s+120\s+\S+s\s+never/m);

    const one = await hubsink(['rollup', '--max-rows', '50'], env);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /^total_minute\t\(0, 50\]\trows=50\t\d+ms\tbehind$/m);
    assert.match(one.stdout, /^campaign_type_day\tpruned=0\tbefore /m);

    const rest = await hubsink(['rollup', '--catch-up', '--max-rows', '50', '--json'], env);
    assert.equal(rest.code, 0, rest.stderr);
    const caught = JSON.parse(rest.stdout) as { runs: number; caughtUp: boolean; rollups: { name: string; fromSeq: number; toSeq: number; rows: number }[] };
    assert.equal(caught.caughtUp, true);
    assert.equal(caught.runs, 2);
    assert.deepEqual(
      caught.rollups.map((r) => [r.name, r.fromSeq, r.toSeq, r.rows]),
      ROLLUPS.map((d) => [d.name, 50, 120, 70]),
    );
    assert.match(rest.stderr, /^run 1: total_minute \(50,100\] rows=50/m);
    await assertRollupsMatchEvents(f);

    const after = JSON.parse((await hubsink(['rollup', '--status', '--json'], env)).stdout) as StatusJson[];
    assert.ok(after.every((s) => s.lastSeq === 120 && s.pendingRows === 0 && s.lagSeconds === 0 && s.lastRunAt !== null));

    const from = new Date(recentBase().getTime() - 3 * GRAIN_MS.hour);
    const rb = await hubsink(['rollup', 'rebuild', '--tenant', '11', '--from', from.toISOString(), '--to', new Date().toISOString(), '--json'], env);
    assert.equal(rb.code, 0, rb.stderr);
    const rebuilt = JSON.parse(rb.stdout) as { tenantId: number; rollups: { name: string; from: string; rows: number; watermark: number }[] };
    assert.equal(rebuilt.tenantId, 11);
    assert.deepEqual(
      rebuilt.rollups.map((r) => [r.name, r.from, r.rows, r.watermark]),
      ROLLUPS.map((d) => [d.name, bucketStart(from, d.grain).toISOString(), 60, 120]),
    );
    await assertRollupsMatchEvents(f);
    const rbText = await hubsink(['rollup', 'rebuild', '--tenant', '12', '--from', '3h', '--to', '0m'], env);
    assert.equal(rbText.code, 0, rbText.stderr);
    assert.match(rbText.stdout, /^rollup\s+from\s+to\s+deleted rows\s+events\s+watermark\ntotal_minute\s/);
  } finally {
    await f.s.drop();
  }
});

test('hubsink rollup: bad arguments exit 2 with a message on stderr', async () => {
  const env = { DATABASE_URL: testDatabaseUrl(), HUBSINK_SCHEMA: 'rollup_cli_unused' };
  const cases: [string[], RegExp][] = [
    [['rollup', 'bogus'], /too many arguments|unknown command/],
    [['rollup', '--max-rows', '0'], /positive whole number/],
    [['rollup', '--max-rows', 'many'], /positive whole number/],
    [['rollup', '--status', '--catch-up'], /do not go together/],
    [['rollup', '--schema', 'Bad-Name'], /--schema/],
    [['rollup', 'rebuild', '--from', '1h', '--to', '0m'], /--tenant/],
    [['rollup', 'rebuild', '--tenant', '1', '--to', '0m'], /--from/],
    [['rollup', 'rebuild', '--tenant', '0', '--from', '1h', '--to', '0m'], /positive whole number/],
    [['rollup', 'rebuild', '--tenant', '1', '--from', 'yesterday', '--to', '0m'], /ISO-8601/],
    [['rollup', 'rebuild', '--tenant', '1', '--from', '1h', '--to', '2h'], /--from must be before --to/],
  ];
  for (const [args, message] of cases) {
    const r = await hubsink(args, env);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
  const noDb = await hubsink(['rollup', '--status'], {});
  assert.equal(noDb.code, 2);
  assert.match(noDb.stderr, /DATABASE_URL/);
  const help = await hubsink(['rollup', 'rebuild', '--help'], {});
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--tenant <id>[\s\S]*--from <time>[\s\S]*--to <time>/);
});
