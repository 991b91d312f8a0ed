/**
 * Every writer of `events` (ingest, the dead-letter consumer, `dlq replay`, `import`) obeys every
 * write setting. The settings are set far from their defaults (HUBSINK_UPSERT_CHUNK=2,
 * HUBSINK_COPY_MIN_ROWS=1: each chunk of two rows goes by COPY) and the statements each writer
 * sends are counted on a real server. A writer that ignored one of them would send one upsert for
 * all five rows instead of three COPYs. The dead-letter paths once ignored HUBSINK_COPY_MIN_ROWS.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { detectCapabilities } from '../../src/db/capabilities.js';
import { parkDeadLetters } from '../../src/db/deadLetterParking.js';
import { writeOptions, type WriteSettings } from '../../src/db/events.js';
import { processDeadLetters } from '../../src/deadLetters/process.js';
import { replayParked } from '../../src/deadLetters/replay.js';
import { runImport } from '../../src/import/importer.js';
import { ingestBatch } from '../../src/ingest/ingestBatch.js';
import { deadLetterFromRow, toDeadLetterMessage } from '../../src/pipeline/deadLetterMessage.js';
import type { RawEvent } from '../../src/pipeline/types.js';
import { countingPool, type CountingPool } from '../support/countingPool.js';
import { RecordingDeadLetterSink } from '../support/sinks.js';
import { makeRow, makeSource } from '../support/rows.js';
import { testDatabaseUrl, type TestSchema } from '../support/services.js';
import { readySchema, testConfig } from '../support/deadLetters.js';

const ROWS = 5;
/** Far from the defaults, so a writer that falls back to a default is seen. */
const SETTINGS = { HUBSINK_UPSERT_CHUNK: '2', HUBSINK_COPY_MIN_ROWS: '1' };
/** 5 rows in chunks of 2, each at least HUBSINK_COPY_MIN_ROWS: three COPY statements. */
const EXPECTED_COPIES = 3;

let s: TestSchema;
let counting: CountingPool;
beforeAll(async () => {
  s = await readySchema('wset_', 3);
  counting = countingPool({ connectionString: testDatabaseUrl(), max: 4, options: `-c search_path=${s.schema},public` });
});
afterAll(async () => {
  await counting.pool.end();
  await s.drop();
});

const config = () => testConfig(s.schema, SETTINGS);
const copies = (): number => counting.statements.filter((t) => /^\s*COPY\b/i.test(t)).length;
const upserts = (): number => counting.statements.filter((t) => /^\s*INSERT INTO\s+\S*events\b/i.test(t)).length;

function freshRows(tenant: number) {
  return Array.from({ length: ROWS }, () => makeRow({ tenantId: tenant }));
}

async function writtenBy(what: string, write: () => Promise<unknown>): Promise<void> {
  counting.reset();
  await write();
  assert.equal(copies(), EXPECTED_COPIES, `${what}: COPY statements (upserts: ${upserts()}): ${counting.statements.map((t) => t.slice(0, 40)).join(' | ')}`);
}

test('writeOptions carries every write setting', () => {
  const settings: WriteSettings = { upsertChunkSize: 7, transientRetryMs: 1234, copyMinRows: 42 };
  const o = writeOptions(settings, { sleep: () => Promise.resolve() });
  assert.deepEqual({ chunkSize: o.chunkSize, transientRetryMs: o.transientRetryMs, copyMinRows: o.copyMinRows }, { chunkSize: 7, transientRetryMs: 1234, copyMinRows: 42 });
  // The settings below reach the configuration as this file means them to.
  const cfg = config();
  assert.deepEqual([cfg.upsertChunkSize, cfg.copyMinRows], [2, 1]);
});

test('ingest obeys the write settings', async () => {
  const raws = freshRows(11).map((r) => r.raw);
  await writtenBy('ingestBatch', () => ingestBatch({ pool: counting.pool, config: config(), sink: new RecordingDeadLetterSink() }, raws));
});

test('the dead-letter consumer (retry) obeys the write settings', async () => {
  const now = new Date();
  const raws: RawEvent[] = freshRows(12).map((r, i) => {
    const m = toDeadLetterMessage(deadLetterFromRow(r, 'transient', 'database unavailable', now));
    return { body: m.body, properties: m.properties, source: makeSource({ partitionId: '0', sequenceNumber: 500 + i, offset: String(500 + i), enqueuedTime: now }) };
  });
  await writtenBy('processDeadLetters', () => processDeadLetters({ pool: counting.pool, config: config() }, raws, 'retry'));
});

test('dlq replay obeys the write settings', async () => {
  const now = new Date();
  await parkDeadLetters(s.pool, s.schema, freshRows(13).map((r) => ({ ...deadLetterFromRow(r, 'rejected', 'refused then', now), reason: 'rejected' as const })));
  await writtenBy('replayParked', () => replayParked({ pool: counting.pool, config: config() }, { filter: { tenantId: 13 }, dryRun: false, pageSize: 100 }));
});

test('import obeys the write settings', async () => {
  const body = Buffer.from(`${freshRows(14).map((r) => r.raw.body.toString('utf8')).join('\n')}\n`, 'utf8');
  const source = { name: '/imports/settings.ndjson', size: body.length, modifiedAt: new Date(), format: 'ndjson' as const, gzip: false, open: () => Promise.resolve(Readable.from([body])) };
  const caps = await detectCapabilities(s.pool);
  await writtenBy('runImport', () =>
    runImport([source], { pool: counting.pool, caps, config: config(), maxAgeDays: 3, batchSize: 1000, dryRun: false, rollup: false, csvMaps: new Map() }),
  );
});

test('import without HUBSINK_UPSERT_CHUNK: each batch one COPY on Citus (a COPY pays per shard), COPYs of 1,000 rows elsewhere; counts exact', async () => {
  const n = 2500;
  const rows = Array.from({ length: n }, (_, i) => makeRow({ tenantId: 100 + (i % 40) }));
  const body = Buffer.from(`${rows.map((r) => r.raw.body.toString('utf8')).join('\n')}\n`, 'utf8');
  const source = { name: '/imports/chunks.ndjson', size: body.length, modifiedAt: new Date(), format: 'ndjson' as const, gzip: false, open: () => Promise.resolve(Readable.from([body])) };
  const caps = await detectCapabilities(s.pool);
  counting.reset();
  const summary = await runImport([source], { pool: counting.pool, caps, config: testConfig(s.schema), maxAgeDays: 3, batchSize: n, dryRun: false, rollup: false, csvMaps: new Map() });
  assert.equal(copies(), caps.citus ? 1 : 3, counting.statements.map((t) => t.slice(0, 40)).join(' | '));
  assert.equal(summary.inserted, n);
  const { rows: found } = await s.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${s.schema}".events WHERE tenant_id BETWEEN 100 AND 139`);
  assert.equal(Number(found[0]?.n), n);
});
