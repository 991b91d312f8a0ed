/**
 * A hostile producer cannot inflate the rollups (day rollups are kept 10 years): dimension values are
 * cut to a maximum length, and a dimension with an allow-list stores everything else as `other`.
 * The incremental path and a rebuild store the same bounded values.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { insertEventRows } from '../../src/db/events.js';
import { rebuildRollups, runRollups } from '../../src/rollups/run.js';
import { GRAIN_MS, ROLLUPS, bucketStart } from '../../src/rollups/definitions.js';
import { loadConfig } from '../../src/config.js';
import { makeRow } from '../support/rows.js';
import { recentBase, rollupSchema, uuidFor, type RollupFixture } from '../support/rollups-fixture.js';

let f: RollupFixture;
const base = recentBase();
// From the settings a deployer would write.
const dimensions = loadConfig({
  HUBSINK_ROLLUP_VALUE_MAX_LENGTH: '16',
  HUBSINK_ROLLUP_COUNTRY_VALUES: 'DE,FR',
  HUBSINK_ROLLUP_CAMPAIGN_VALUES: 'spring',
}).rollupDimensions;

beforeAll(async () => {
  f = await rollupSchema('rb_');
  // 300 events, each with its own 200-character campaign and (past the first 100) its own country.
  const rows = [];
  for (let i = 0; i < 300; i++) {
    rows.push(
      makeRow({
        eventId: uuidFor(`bounds/${i}`),
        tenantId: 71,
        occurredAt: new Date(base.getTime() - (i % 50) * 1000),
        type: 'page_view',
        country: i < 100 ? 'DE' : `X${'y'.repeat(30)}${i}`,
        browser: i % 2 === 0 ? `b${'r'.repeat(100)}${i}` : null,
        campaignId: i === 7 ? 'spring' : `${'c'.repeat(200)}${i}`,
      }),
    );
  }
  await insertEventRows(f.s.pool, f.s.schema, rows);
});

afterAll(async () => {
  await f.s.drop();
});

type DayRows = Record<string, [string, string][]>;

/** Per dimension of the day rollups: (value, events) of tenant 71. */
async function dayRows(): Promise<DayRows> {
  const out: DayRows = {};
  for (const def of ROLLUPS.filter((r) => r.grain === 'day')) {
    for (const d of def.dimensions) {
      const { rows } = await f.s.pool.query<{ k: string; events: string }>(
        `SELECT ${d.column} AS k, sum(events)::text AS events FROM "${f.s.schema}".${def.table} WHERE tenant_id = 71 GROUP BY 1 ORDER BY 1`,
      );
      out[`${def.name}.${d.name}`] = rows.map((r) => [r.k, r.events]);
    }
  }
  return out;
}

test('values outside an allow-list become `other`, every value is cut to the maximum length, no event is lost', async () => {
  await runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 1_000_000, dimensions });
  const b16 = `b${'r'.repeat(15)}`;
  // country: DE or other; browser: none ('') or the one 16-character prefix; campaign: spring or other.
  assert.deepEqual(await dayRows(), {
    'type_day.type': [['page_view', '300']],
    'country_day.country': [
      ['DE', '100'],
      ['other', '200'],
    ],
    'browser_day.browser': [
      ['', '150'],
      [b16, '150'],
    ],
    'campaign_type_day.campaign': [
      ['other', '299'],
      ['spring', '1'],
    ],
    'campaign_type_day.type': [['page_view', '300']],
  });
  for (const def of ROLLUPS.filter((r) => r.dimensions.length > 0)) {
    const { rows: widest } = await f.s.pool.query<{ n: number }>(
      `SELECT max(greatest(${def.dimensions.map((d) => `length(${d.column})`).join(', ')}))::int AS n FROM "${f.s.schema}".${def.table}`,
    );
    assert.ok((widest[0]?.n ?? 0) <= 16, `${def.name}: widest stored value: ${widest[0]?.n}`);
  }
});

test('a rebuild with the same bounds stores the same rows', async () => {
  const before = await dayRows();
  const day = bucketStart(base, 'day');
  await rebuildRollups(f.s.pool, f.s.schema, { tenantId: 71, from: day, to: new Date(day.getTime() + GRAIN_MS.day), caps: f.caps, dimensions });
  assert.deepEqual(await dayRows(), before);
});
