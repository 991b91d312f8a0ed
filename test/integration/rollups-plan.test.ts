/**
 * Query plans the rollups depend on: the ingest_seq window is read through each partition's index
 * (never by reading a partition sequentially), and on Citus the rollup INSERT..SELECT runs on the
 * shards (one task per shard, or one for a tenant's rebuild) instead of pulling rows to the
 * coordinator.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { insertEventRows } from '../../src/db/events.js';
import { ROLLUPS, GRAIN_MS, bucketStart, type RollupDefinition } from '../../src/rollups/definitions.js';
import { aggregateSql, countEventsSql } from '../../src/rollups/sql.js';
import type { Statement } from '../../src/db/statement.js';
import { noCitus } from '../support/services.js';
import { rollupSchema, sampleRows, type RollupFixture } from '../support/rollups-fixture.js';

let f: RollupFixture;
let total = 0;

beforeAll(async () => {
  f = await rollupSchema('rp_');
  // Three earlier days (02:00-12:00 UTC, each inside one partition), oldest first, the newest
  // largest: the window below is the newest 200 rows, a small part of its partition as it is in
  // production (and large enough per shard on Citus for the planner to prefer an index).
  for (const [d, n] of [[3, 3000], [2, 3000], [1, 12000]] as const) {
    const base = new Date(bucketStart(new Date(), 'day').getTime() - d * GRAIN_MS.day + 12 * GRAIN_MS.hour);
    const rows = sampleRows(n, { seed: `plan-${d}`, tenants: [1, 2, 3, 4, 5, 6, 7, 8], base, spreadMinutes: 600 });
    for (let i = 0; i < rows.length; i += 3000) total += (await insertEventRows(f.s.pool, f.s.schema, rows.slice(i, i + 3000))).inserted;
  }
  await f.s.pool.query(`ANALYZE "${f.s.schema}".events`);
});

afterAll(async () => {
  await f.s.drop();
});

async function explain(client: pg.PoolClient, st: Statement, analyze: boolean): Promise<string> {
  const { rows } = await client.query<{ 'QUERY PLAN': string }>({ text: `EXPLAIN ${analyze ? '(ANALYZE, COSTS OFF) ' : ''}${st.text}`, values: st.values });
  return rows.map((r) => r['QUERY PLAN']).join('\n');
}

/** The plans of a rollup's incremental and rebuild aggregates over the fixture's events. */
async function aggregatePlans(client: pg.PoolClient, def: RollupDefinition): Promise<[window: string, rebuild: string]> {
  const window = await explain(client, aggregateSql(def, f.sketch, f.s.schema, { source: 'window', fromSeq: 0, toSeq: total }), false);
  const rebuild = await explain(
    client,
    aggregateSql(def, f.sketch, f.s.schema, { source: 'rebuild', tenantId: 3, from: new Date(Date.now() - 4 * GRAIN_MS.day), to: new Date(), watermark: total }),
    false,
  );
  return [window, rebuild];
}

interface ScanNode {
  kind: string;
  relation: string;
  actualRows: number;
  removedByFilter: number;
}

/** Scan nodes on events partitions (shard names on Citus) from a text EXPLAIN ANALYZE. */
function partitionScans(plan: string): ScanNode[] {
  const lines = plan.split('\n');
  const out: ScanNode[] = [];
  lines.forEach((line, i) => {
    const m = /(Seq Scan|Index Only Scan|Index Scan|Bitmap Heap Scan)(?: using \S+)? on (events_p\d{4}_\d{2}_\d{2}(?:_\d+)?)\b.*rows=(\d+)/.exec(line);
    if (!m?.[1] || !m[2] || !m[3]) return;
    let removed = 0;
    for (let j = i + 1; j < lines.length && !lines[j]?.includes('->'); j++) {
      const r = /Rows Removed by Filter: (\d+)/.exec(lines[j] ?? '');
      if (r?.[1]) removed += Number(r[1]);
    }
    out.push({ kind: m[1], relation: m[2], actualRows: Number(m[3]), removedByFilter: removed });
  });
  return out;
}

test('the ingest_seq window is read through an index on every partition that holds rows', async () => {
  const client = await f.s.pool.connect();
  try {
    // Show every shard's plan on Citus, not just one.
    if (f.caps.citus) await client.query('SET citus.explain_all_tasks = on');
    const plan = await explain(client, countEventsSql(f.s.schema, { source: 'window', fromSeq: total - 200, toSeq: total }), true);
    const scans = partitionScans(plan);
    const reading = scans.filter((s) => s.actualRows > 0);
    assert.ok(reading.length >= 1, plan);
    for (const s of reading) assert.match(s.kind, /Index/, `${s.relation} returned rows without an index:\n${plan}`);
    // A sequential scan is acceptable only where it reads nothing at all (an empty partition).
    for (const s of scans.filter((x) => x.kind === 'Seq Scan')) {
      assert.equal(s.removedByFilter + s.actualRows, 0, `${s.relation} was read sequentially:\n${plan}`);
    }
    const days = new Set(scans.filter((s) => /Index/.test(s.kind)).map((s) => s.relation.slice(0, 'events_pYYYY_MM_DD'.length)));
    assert.ok(days.size >= 3, `index scans on the partitions of all three days:\n${plan}`);
  } finally {
    if (f.caps.citus) await client.query('RESET citus.explain_all_tasks');
    client.release();
  }
});

test.skipIf(noCitus())('on Citus, the rollup INSERT..SELECT is pushed down to the shards [needs Citus]', async () => {
  const client = await f.s.pool.connect();
  try {
    for (const def of ROLLUPS) {
      const [windowPlan, rebuildPlan] = await aggregatePlans(client, def);
      for (const plan of [windowPlan, rebuildPlan]) {
        assert.match(plan, /Custom Scan \(Citus Adaptive\)/);
        assert.match(plan, new RegExp(`Insert on ${def.table}_\\d+ r`), `the INSERT runs on a shard of ${def.table}:\n${plan}`);
        assert.doesNotMatch(plan, /pull to coordinator|repartition|INSERT\/SELECT method/i, plan);
      }
      const tasks = Number(/Task Count: (\d+)/.exec(windowPlan)?.[1]);
      assert.ok(tasks > 1, `one task per shard:\n${windowPlan}`);
      assert.match(rebuildPlan, /Task Count: 1\b/, `a tenant's rebuild is routed to one shard:\n${rebuildPlan}`);
    }
  } finally {
    client.release();
  }
});

test.skipIf(!noCitus())('on plain PostgreSQL, the rollup INSERT..SELECT is one local INSERT with an upsert [needs a server without Citus]', async () => {
  const client = await f.s.pool.connect();
  try {
    for (const def of ROLLUPS) {
      const [windowPlan, rebuildPlan] = await aggregatePlans(client, def);
      for (const plan of [windowPlan, rebuildPlan]) {
        assert.match(plan, new RegExp(`^Insert on ${def.table} r`), plan);
        assert.match(plan, /Conflict Resolution: UPDATE/);
      }
    }
  } finally {
    client.release();
  }
});
