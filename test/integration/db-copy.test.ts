/**
 * The COPY write path (src/db/copyEvents.ts) on a real server: exact inserted/duplicate counts with
 * keys already in the table, concurrent writers of the same events (forcing the fallback to the
 * upsert), rows refused by the database isolated by bisection, byte-exact values, and the rollup
 * watermark under concurrent COPY writers.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import type { TestSchema } from '../support/services.js';
import { countEventsOf, createEventsSchema } from '../support/database.js';
import { makeRow, makeRows } from '../support/rows.js';
import type { Capabilities } from '../../src/db/capabilities.js';
import { CopyAdvisor, copyChunk, encodeCopyText } from '../../src/db/copyEvents.js';
import { insertEventRows, writeEvents, type WritePath } from '../../src/db/events.js';
import { runRollups, type RollupRunResult } from '../../src/rollups/run.js';
import { ROLLUPS } from '../../src/rollups/definitions.js';
import type { EventRow } from '../../src/pipeline/types.js';
import { assertRollupsMatchEvents, eventCount, recentBase, rollupCount, rollupSchema, runUntilCaughtUp, sampleRows } from '../support/rollups-fixture.js';

let s: TestSchema;
let caps: Capabilities;

beforeAll(async () => {
  ({ s, caps } = await createEventsSchema('dbc_'));
});

afterAll(async () => {
  await s.drop();
});

const countEvents = (rows: readonly EventRow[]): Promise<number> => countEventsOf(s, rows);

const upsert = (rows: readonly EventRow[]) => insertEventRows(s.pool, s.schema, rows);

function recorder() {
  const paths: WritePath[] = [];
  return { paths, onChunk: (p: WritePath) => void paths.push(p) };
}

test('COPY writes a new chunk; the same chunk again falls back once, then is probed: counts exact every time', async () => {
  const rows = makeRows(600, 40);
  const advisor = new CopyAdvisor(4);
  assert.deepEqual(await copyChunk(s.pool, s.schema, rows, upsert, advisor), { inserted: 600, duplicates: 0, path: 'copy' });
  assert.equal(await countEvents(rows), 600);
  // Optimistic COPY meets the existing keys, nothing of it stays, and the upsert counts exactly.
  assert.deepEqual(await copyChunk(s.pool, s.schema, rows, upsert, advisor), { inserted: 0, duplicates: 600, path: 'fallback' });
  assert.equal(advisor.shouldProbe(), true, 'a chunk with duplicates makes the next ones probe');
  // Probed: the existing keys are left out before COPY; the new ones are copied. Citus cannot plan
  // the probe (a LATERAL subquery over a distributed table): it is refused once, never asked again,
  // and COPY's conflict goes through the upsert, with the same counts.
  const more = makeRows(300, 40);
  const mixed = [...rows.slice(0, 200), ...more, ...rows.slice(500)];
  assert.deepEqual(await copyChunk(s.pool, s.schema, mixed, upsert, advisor), { inserted: 300, duplicates: 300, path: caps.citus ? 'fallback' : 'copy' });
  assert.equal(await countEvents([...rows, ...more]), 900);
  // After probeChunks clean chunks the advisor copies optimistically again.
  for (let i = 0; i < 4; i++) await copyChunk(s.pool, s.schema, makeRows(200, 5), upsert, advisor);
  assert.equal(advisor.shouldProbe(), false);
  assert.equal(await countEvents([...rows, ...more]), 900);
});

test('writeEvents takes COPY for chunks at or above copyMinRows and the upsert below; totals exact', async () => {
  const rows = makeRows(1000, 50);
  const rec = recorder();
  const out = await writeEvents(s.pool, s.schema, rows, { chunkSize: 300, transientRetryMs: 1000, copyMinRows: 200, onChunk: rec.onChunk });
  // 300, 300, 300 by COPY, the last 100 by the upsert.
  assert.deepEqual(rec.paths, ['copy', 'copy', 'copy', 'upsert']);
  assert.deepEqual([out.inserted, out.duplicates, out.rejected.length], [1000, 0, 0]);
  const again = await writeEvents(s.pool, s.schema, [...rows, ...makeRows(10, 3)], { chunkSize: 300, transientRetryMs: 1000, copyMinRows: 200 });
  assert.deepEqual([again.inserted, again.duplicates], [10, 1000]);
  assert.equal(await countEvents(rows), 1000);
});

test('concurrent writers of the same events: one COPY wins, the others fall back; every event once, counts add up', async () => {
  const rows = makeRows(800, 60);
  const writers = 3;
  // Fresh advisors: every writer copies optimistically, so all but one must meet the others' keys.
  const results = await Promise.all(Array.from({ length: writers }, () => copyChunk(s.pool, s.schema, rows, upsert, new CopyAdvisor())));
  assert.equal(results.reduce((n, r) => n + r.inserted, 0), 800);
  assert.equal(results.reduce((n, r) => n + r.duplicates, 0), 800 * (writers - 1));
  assert.equal(results.filter((r) => r.path === 'copy').length, 1, JSON.stringify(results));
  assert.equal(results.filter((r) => r.path === 'fallback').length, writers - 1);
  assert.equal(await countEvents(rows), 800);
  // Overlapping halves written at once by COPY through writeEvents: the same exactness.
  const more = makeRows(600, 17);
  const [a, b] = await Promise.all([
    writeEvents(s.pool, s.schema, more.slice(0, 400), { chunkSize: 400, transientRetryMs: 1000, copyMinRows: 1 }),
    writeEvents(s.pool, s.schema, more.slice(200), { chunkSize: 400, transientRetryMs: 1000, copyMinRows: 1 }),
  ]);
  assert.equal(a.inserted + b.inserted, 600);
  assert.equal(a.duplicates + b.duplicates, 200);
  assert.equal(await countEvents(more), 600);
});

test('rows the database refuses on the COPY path are isolated by bisection; the rest are written once', async () => {
  const rows = makeRows(400, 20);
  // numeric(18,4) holds less than 1e14: 22003 for this row only.
  const overflow = makeRow({ revenue: 1e15 });
  const tooLongType = makeRow({ type: 'y'.repeat(65) });
  const nulByte = makeRow({ url: 'bad\u0000byte' });
  const all = [...rows.slice(0, 90), overflow, ...rows.slice(90, 250), tooLongType, ...rows.slice(250), nulByte];
  const rec = recorder();
  const out = await writeEvents(s.pool, s.schema, all, { chunkSize: 250, transientRetryMs: 1000, copyMinRows: 50, onChunk: rec.onChunk });
  assert.deepEqual(
    out.rejected.map((r) => r.row.eventId),
    [overflow.eventId, tooLongType.eventId, nulByte.eventId],
  );
  assert.match(out.rejected[0]?.error ?? '', /^22003 /);
  assert.match(out.rejected[1]?.error ?? '', /^23514 .*events_type_length/);
  assert.match(out.rejected[2]?.error ?? '', /^22021 /);
  assert.deepEqual([out.inserted, out.duplicates, out.transient], [400, 0, undefined]);
  assert.ok(rec.paths.includes('copy'), 'clean halves went through COPY');
  assert.equal(await countEvents(all), 400);
  const replay = await writeEvents(s.pool, s.schema, all, { chunkSize: 250, transientRetryMs: 1000, copyMinRows: 50 });
  assert.deepEqual([replay.inserted, replay.duplicates, replay.rejected.length], [0, 400, 3]);
});

test('COPY stores exactly what the upsert stores, hostile strings included', async () => {
  const hostile = "tab\there, newline\nthere, cr\r, backslash \\ and \\N and \\t, quote ' \" , end\\";
  const fields = {
    tenantId: 77,
    type: 'weird\ttype\\',
    sessionId: hostile,
    userId: '\\N',
    deviceId: '',
    url: 'https://shop.example/ä?q=1,2&x=\u{1F600}',
    referrer: null,
    campaignId: 'c\\d',
    country: 'DE',
    browser: 'fire\nfox',
    revenue: -0.0001,
    properties: { hostile, nested: { list: [1, 'two', null, 1.5e-7], '\\key\t': '\u2028' }, big: 1.2345678901234567e19 },
  };
  const viaCopy = makeRows(60, 3, fields);
  const viaUpsert = viaCopy.map((r) => makeRow({ ...fields, tenantId: r.tenantId, occurredAt: r.occurredAt, sessionId: r.sessionId }));
  assert.deepEqual(await copyChunk(s.pool, s.schema, viaCopy, upsert, new CopyAdvisor()), { inserted: 60, duplicates: 0, path: 'copy' });
  assert.deepEqual(await insertEventRows(s.pool, s.schema, viaUpsert), { inserted: 60, duplicates: 0 });
  const cols = `type, session_id, user_id, device_id, url, referrer, campaign_id, country, browser, revenue::text AS revenue, properties::text AS properties`;
  const read = async (rs: readonly EventRow[]) =>
    (await s.pool.query<Record<string, unknown>>(`SELECT ${cols} FROM "${s.schema}".events WHERE event_id = ANY($1::uuid[]) ORDER BY occurred_at, tenant_id`, [rs.map((r) => r.eventId)])).rows;
  const a = await read(viaCopy);
  assert.equal(a.length, 60);
  assert.deepEqual(a, await read(viaUpsert));
  assert.equal(a[0]?.session_id, hostile);
  assert.equal(a[0]?.user_id, '\\N');
  assert.equal(a[0]?.referrer, null);
  // And the encoding is one line per row, whatever the values hold.
  assert.equal(encodeCopyText(viaCopy).split('\n').length, 61);
});

test('COPY writers in parallel with rollup runs: every inserted event is folded exactly once', async () => {
  const f = await rollupSchema('dbcr_');
  try {
    const base = recentBase();
    let stop = false;
    const folded: RollupRunResult[] = [];
    const writer = async (w: number): Promise<number> => {
      let inserted = 0;
      for (let b = 0; b < 8; b++) {
        const rows = sampleRows(250, { seed: `copy-par-${w}-${b}`, tenants: [201, 202, 203], base, spreadMinutes: 90 });
        const r = await writeEvents(f.s.pool, f.s.schema, rows, { chunkSize: 250, transientRetryMs: 5000, copyMinRows: 1 });
        inserted += r.inserted;
        // A redelivery now and then: exact counts, no new rows for the rollups.
        if (b % 3 === 0) assert.equal((await writeEvents(f.s.pool, f.s.schema, rows, { chunkSize: 250, transientRetryMs: 5000, copyMinRows: 1 })).inserted, 0);
      }
      return inserted;
    };
    const roller = async (): Promise<void> => {
      for (let i = 0; i < 30 && !stop; i++) folded.push(...(await runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: i % 2 ? 150 : 100_000, lockTimeoutMs: 60_000 })));
    };
    const rollers = [roller(), roller()];
    const inserted = await Promise.all([0, 1, 2].map((w) => writer(w)));
    stop = true;
    await Promise.all(rollers);
    for (const run of await runUntilCaughtUp(f)) folded.push(...run);
    const total = inserted.reduce((a, b) => a + b, 0);
    assert.equal(total, 3 * 8 * 250);
    assert.equal(await eventCount(f), total);
    for (const def of ROLLUPS) {
      assert.equal(await rollupCount(f, def), total, def.name);
      assert.equal(folded.filter((r) => r.name === def.name).reduce((a, r) => a + r.rows, 0), total, def.name);
    }
    await assertRollupsMatchEvents(f);
  } finally {
    await f.s.drop();
  }
});
