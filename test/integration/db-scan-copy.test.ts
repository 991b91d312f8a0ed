/**
 * The byte scanner's rows on a real server: what COPY stores from the lines the scanner wrote
 * equals what the upsert stores from the zod path's rows of the same bodies (every column, the
 * properties as jsonb), with escapes, non-ASCII text, nested and duplicate-keyed properties; and
 * scanned rows that end up in the upsert (a small chunk) build their fields and store the same.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import type { TestSchema } from '../support/services.js';
import { createEventsSchema } from '../support/database.js';
import { makeSource } from '../support/rows.js';
import { writeEvents } from '../../src/db/events.js';
import { prepareBatch } from '../../src/pipeline/batch.js';
import { ScannedRow } from '../../src/pipeline/scanCopy.js';
import type { RawEvent } from '../../src/pipeline/types.js';

let viaScan: TestSchema;
let viaZod: TestSchema;
let viaScanUpsert: TestSchema;

beforeAll(async () => {
  viaScan = (await createEventsSchema('dbsc_')).s;
  viaZod = (await createEventsSchema('dbsz_')).s;
  viaScanUpsert = (await createEventsSchema('dbsu_')).s;
});

afterAll(async () => {
  await Promise.all([viaScan?.drop(), viaZod?.drop(), viaScanUpsert?.drop()]);
});

const TEXTS = ['plain', 'tab\there', 'new\nline', 'cr\r', 'back\\slash \\N \\t', 'quote " \'', 'Größe 42 – 東京 😀', '\u2028\b\f', 'a/b'];

/** Bodies as producers write them, some JSON text edited by hand (escapes JSON.stringify does not make). */
function bodies(n: number, now: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const t = (k: number) => TEXTS[(i + k) % TEXTS.length] as string;
    const o = {
      eventId: `0190b6a4-5c3e-7cc1-9d2e-${String(i).padStart(12, '0')}`,
      tenantId: 1 + (i % 5),
      type: i % 2 ? 'page_view' : 'click',
      occurredAt: new Date(now - i * 1000).toISOString().replace(/Z$/, i % 3 === 0 ? '+00:00' : 'Z'),
      sessionId: t(0),
      userId: i % 4 === 0 ? null : t(1),
      url: `https://shop.example/${encodeURIComponent(t(2))}?q=${t(3)}&utm_source=x`,
      referrer: t(4),
      country: 'DE',
      browser: t(5),
      revenue: i % 5 === 0 ? (i * 1.25) : null,
      properties: { name: t(6), nested: { list: [1, -2.5, 0.001, true, null, t(7)], deep: { a: { b: [t(8)] } } }, n: i },
    };
    let json = JSON.stringify(o);
    if (i % 3 === 1) json = json.replaceAll('/', '\\/').replace('"country":"DE"', '"country":"\\u0044\\u00c9"');
    if (i % 3 === 2) json = json.replace('"n":', '"n":"first","n":');
    if (i % 4 === 3) json = json.replace('"nested":{', '"nested": { ');
    out.push(Buffer.from(json, 'utf8'));
  }
  return out;
}

const COLUMNS =
  'tenant_id, event_id, occurred_at, type, session_id, user_id, device_id, url, referrer, campaign_id, country, browser, revenue::text AS revenue, ' +
  'properties::text AS properties, source_partition, source_sequence, source_offset, source_enqueued_at';

async function read(s: TestSchema): Promise<Record<string, unknown>[]> {
  return (await s.pool.query<Record<string, unknown>>(`SELECT ${COLUMNS} FROM "${s.schema}".events ORDER BY event_id`)).rows;
}

test('COPY of the scanner’s lines stores what the upsert stores from zod’s rows; scanned rows in the upsert too', async () => {
  const now = new Date();
  const raws: RawEvent[] = bodies(240, now.getTime()).map((body, i) => ({
    body,
    properties: {},
    source: makeSource({ partitionId: i % 2 ? '3' : 'p\t1', sequenceNumber: i, offset: `${i * 512}`, enqueuedTime: new Date(now.getTime() - 10) }),
  }));
  const opts = { now, retentionDays: 30, aheadDays: 3, maxBodyBytes: 256 * 1024 };
  const scanned = prepareBatch(raws, opts, now, { copy: true });
  const plain = prepareBatch(raws, opts, now);
  assert.equal(scanned.rows.length, 240);
  assert.equal(plain.rows.length, 240);
  const share = scanned.rows.filter((r) => r instanceof ScannedRow && r.byScanner).length;
  assert.ok(share >= 200, `the scanner took ${share} of 240`);
  const paths: string[] = [];
  const write = { chunkSize: 1000, transientRetryMs: 5000 };
  assert.equal((await writeEvents(viaScan.pool, viaScan.schema, scanned.rows, { ...write, copyMinRows: 1, onChunk: (p) => void paths.push(p) })).inserted, 240);
  assert.deepEqual(paths, ['copy']);
  assert.equal((await writeEvents(viaZod.pool, viaZod.schema, plain.rows, { ...write, copyMinRows: 1_000_000 })).inserted, 240);
  assert.equal((await writeEvents(viaScanUpsert.pool, viaScanUpsert.schema, scanned.rows, { ...write, copyMinRows: 1_000_000 })).inserted, 240);
  const want = await read(viaZod);
  assert.equal(want.length, 240);
  assert.deepEqual(await read(viaScan), want);
  assert.deepEqual(await read(viaScanUpsert), want);
  // The hand-edited escapes really arrived decoded, and the last of duplicate keys won.
  const r1 = want.find((r) => String(r.event_id).endsWith('000000000001'));
  assert.equal(r1?.country, 'DÉ');
  assert.match(String(r1?.url), /^https:\/\/shop\.example\//);
  const r2 = want.find((r) => String(r.event_id).endsWith('000000000002'));
  assert.equal((JSON.parse(String(r2?.properties)) as { n: unknown }).n, 2);
});
