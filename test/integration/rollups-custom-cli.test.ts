/**
 * `hubsink rollup define | backfill | list | drop` as an operator runs them: dangerous inputs are
 * refused with a clear message and nothing created; a hostile properties path is only ever a bind
 * value; a backfill killed mid-way (SIGKILL) resumes exactly with `rollup backfill`.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { insertEventRows } from '../../src/db/events.js';
import { makeRow } from '../support/rows.js';
import { testDatabaseUrl } from '../support/services.js';
import { recentBase, rollupSchema, uuidFor } from '../support/rollups-fixture.js';

const BIN = fileURLToPath(new URL('../../bin/hubsink.js', import.meta.url));

function hubsink(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const HOSTILE_KEY = `a'b"{},\\ $1; DROP TABLE events; --`;

test('rollup define/list/drop: dangerous inputs are refused with the cause, nothing is created; a hostile properties key is a plain key', async () => {
  const f = await rollupSchema('rd_');
  const env = { DATABASE_URL: testDatabaseUrl(), HUBSINK_SCHEMA: f.s.schema };
  const tables = async () =>
    (await f.s.pool.query<{ t: string }>(`SELECT tablename AS t FROM pg_tables WHERE schemaname = $1 ORDER BY 1`, [f.s.schema])).rows.map((r) => r.t);
  try {
    const before = await tables();
    const cases: [string[], number, RegExp][] = [
      [['Bad', '--dimension', 'x=country'], 2, /rollup name "Bad": must be 1 to 31 characters/],
      [['ok', '--dimension', 'x=session_id'], 2, /unknown source "session_id": use an events column \(type, country/],
      [['ok', '--dimension', 'x=properties.a\u001b[31m'], 2, /control characters/],
      [['ok', '--dimension', 'events=country'], 2, /--dimension events: the name is reserved/],
      [['ok', '--dimension', 'country=properties.country'], 2, /that name already reads country; give this source another name/],
      [['ok', '--dimension', 'x=country', '--grains', 'week'], 2, /unknown grain "week"/],
    ];
    // The whole list of refusals is in test/unit/rollups-custom.test.ts; these go through the CLI.
    for (const [args, code, message] of cases) {
      const r = await hubsink(['rollup', 'define', ...args], env);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stdout, '');
      assert.ok(!r.stderr.includes('\u001b'), 'control characters are escaped');
    }
    assert.deepEqual(await tables(), before, 'nothing was created');

    // The hostile key reaches the database only as a bind value, and reads that key exactly.
    const base = recentBase();
    const events = Array.from({ length: 30 }, (_, i) =>
      makeRow({ eventId: uuidFor(`hostile/${i}`), tenantId: 5, occurredAt: new Date(base.getTime() - i * 60_000), properties: i % 3 === 0 ? { [HOSTILE_KEY]: 'v1' } : { other: 'v2' } }),
    );
    await insertEventRows(f.s.pool, f.s.schema, events);
    const ok = await hubsink(['rollup', 'define', 'odd', '--dimension', `k=properties.${HOSTILE_KEY}`, '--grains', 'day', '--json'], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /backfill odd: 30 events folded, up to ingest_seq \d+ of \d+ \(done\)/);
    const { rows } = await f.s.pool.query<{ k: string; n: string }>(`SELECT k, sum(events)::text AS n FROM "${f.s.schema}".rollup_odd_day WHERE tenant_id = 5 GROUP BY 1 ORDER BY 1`);
    assert.deepEqual(rows, [{ k: '', n: '20' }, { k: 'v1', n: '10' }]);
    assert.equal((await f.s.pool.query(`SELECT 1 FROM "${f.s.schema}".events`)).rowCount, 30, 'events are all there');

    // An allow-list for an analyst-defined dimension, set as for a built-in one: values outside it
    // are stored as `other`, missing ones stay empty.
    const allowed = await hubsink(['rollup', 'define', 'allowed', '--dimension', 'val=properties.other', '--grains', 'day'], { ...env, HUBSINK_ROLLUP_VAL_VALUES: 'v9' });
    assert.equal(allowed.code, 0, allowed.stderr);
    const kept = await f.s.pool.query<{ val: string; n: string }>(`SELECT val, sum(events)::text AS n FROM "${f.s.schema}".rollup_allowed_day WHERE tenant_id = 5 GROUP BY 1 ORDER BY 1`);
    assert.deepEqual(kept.rows, [{ val: '', n: '10' }, { val: 'other', n: '20' }]);
    const gone = await hubsink(['rollup', 'drop', 'allowed', '--yes'], env);
    assert.equal(gone.code, 0, gone.stderr);

    // Duplicates: the same name again, and a dimension name reading another source.
    const dup = await hubsink(['rollup', 'define', 'odd', '--dimension', 'k=country'], env);
    assert.equal(dup.code, 2, dup.stderr);
    assert.match(dup.stderr, /rollup odd is already defined/);
    const clash = await hubsink(['rollup', 'define', 'odd2', '--dimension', 'k=country'], env);
    assert.equal(clash.code, 2, clash.stderr);
    assert.match(clash.stderr, /--dimension k: that name already reads properties\./);

    // list: the human form escapes what the key holds; --json is exact.
    const human = await hubsink(['rollup', 'list'], env);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^rollup\s+dimensions\s+measures\s+grains\s+all storefronts\s+backfill\n/);
    assert.match(human.stdout, /odd\s+k=properties\.a'b"\{\},\\ \$1; DROP TABLE events; --\s+events,revenue\s+day\s+yes\s+done /);
    const json = await hubsink(['rollup', 'list', '--json'], env);
    const listed = JSON.parse(json.stdout) as { name: string; dimensions: { name: string; source: string }[]; backfillRows: number }[];
    assert.deepEqual(listed.map((l) => [l.name, l.dimensions, l.backfillRows]), [['odd', [{ name: 'k', source: `properties.${HOSTILE_KEY}` }], 30]]);

    // drop: needs --yes; a missing or built-in name is refused; then it is gone, tables and all.
    for (const [args, code, message] of [
      [['odd'], 2, /add --yes to confirm/],
      [['missing', '--yes'], 1, /no analyst-defined rollup named "missing" \(hubsink rollup list shows them\)/],
      [['total', '--yes'], 1, /rollup total is built in, not analyst-defined/],
    ] as const) {
      const r = await hubsink(['rollup', 'drop', ...args], env);
      assert.equal(r.code, code, r.stderr);
      assert.match(r.stderr, message);
    }
    assert.ok((await tables()).includes('rollup_odd_day'));
    const dropped = await hubsink(['rollup', 'drop', 'odd', '--yes'], env);
    assert.equal(dropped.code, 0, dropped.stderr);
    assert.equal(dropped.stdout, 'dropped odd: rollup_odd_day\n');
    assert.deepEqual(await tables(), before);
    assert.equal((await hubsink(['rollup', 'list'], env)).stdout, 'no analyst-defined rollups (define one with hubsink rollup define NAME --dimension name=source)\n');
    const state = await f.s.pool.query(`SELECT 1 FROM "${f.s.schema}".rollup_state WHERE name LIKE 'odd%'`);
    assert.equal(state.rowCount, 0);
  } finally {
    await f.s.drop();
  }
});

test('a backfill killed mid-way (SIGKILL) resumes with rollup backfill, exactly', async () => {
  const f = await rollupSchema('rk_');
  const env = { DATABASE_URL: testDatabaseUrl(), HUBSINK_SCHEMA: f.s.schema };
  try {
    const base = recentBase();
    const events = Array.from({ length: 3000 }, (_, i) =>
      makeRow({ eventId: uuidFor(`kill/${i}`), tenantId: 1 + (i % 4), occurredAt: new Date(base.getTime() - (i % 600) * 30_000), properties: { sku: `s${i % 7}` } }),
    );
    await insertEventRows(f.s.pool, f.s.schema, events);
    const child = spawn(process.execPath, [BIN, 'rollup', 'define', 'sku', '--dimension', 'sku=properties.sku', '--grains', 'hour', '--chunk', '5'], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error(`hang guard: no progress line: ${err}`)), 60_000);
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (/backfill sku: \d+ events folded/.test(err)) {
          clearTimeout(guard);
          resolve();
        }
      });
    });
    child.kill('SIGKILL');
    await exited;
    const listed = JSON.parse((await hubsink(['rollup', 'list', '--json'], env)).stdout) as { backfillRows: number; backfilledAt: string | null }[];
    assert.equal(listed[0]?.backfilledAt, null, 'the backfill was interrupted');
    assert.ok((listed[0]?.backfillRows ?? 0) > 0 && (listed[0]?.backfillRows ?? 0) < 3000, JSON.stringify(listed));

    const resumed = await hubsink(['rollup', 'backfill', 'sku', '--chunk', '1000', '--json'], env);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal((JSON.parse(resumed.stdout) as { rows: number; finished: boolean }).rows, 3000);
    const { rows } = await f.s.pool.query<{ t: string; k: string; n: string }>(
      `SELECT tenant_id::text AS t, sku AS k, sum(events)::text AS n FROM "${f.s.schema}".rollup_sku_hour GROUP BY 1, 2 ORDER BY 1, 2`,
    );
    const want = new Map<string, number>();
    for (const [i, e] of events.entries()) {
      for (const t of [e.tenantId, 0]) want.set(`${t}/s${i % 7}`, (want.get(`${t}/s${i % 7}`) ?? 0) + 1);
    }
    assert.deepEqual(
      rows.map((r) => `${r.t}/${r.k}=${r.n}`).sort(),
      [...want.entries()].map(([k, n]) => `${k}=${n}`).sort(),
    );
  } finally {
    await f.s.drop();
  }
});
