/**
 * `hubsink import` from CSV with column mapping, and from Azure Blob Storage (Azurite): a prefix in
 * the AzureWebJobsStorage account, gzip included, and a SAS URL with no storage setting at all.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { BlobServiceClient, ContainerSASPermissions } from '@azure/storage-blob';
import { migrate } from '../../src/db/migrate.js';
import { eventKeys, spawnHubsink, type RunnerProcess } from '../support/runner-fixture.js';
import { deadLetterLines, importEnv, makeLines, type ImportJson } from '../support/import-fixture.js';
import { createTestSchema, testAzuriteConnection, uniqueName, type TestSchema } from '../support/services.js';

let db: TestSchema;
let dir: string;
const children: RunnerProcess[] = [];

beforeAll(async () => {
  db = await createTestSchema('imps_');
  await migrate(db.pool, db.schema);
  dir = await mkdtemp(path.join(tmpdir(), 'hubsink-import-src-'));
});
afterAll(async () => {
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

async function run(args: string[], env: NodeJS.ProcessEnv = importEnv(db.schema)): Promise<{ code: number | null; json: ImportJson; stderr: string }> {
  const p = spawnHubsink(['import', '--json', ...args], env);
  children.push(p);
  const { code } = await p.exited;
  return { code, json: JSON.parse(p.stdoutLines().at(-1) ?? '{}') as ImportJson, stderr: p.stderr() };
}

test('CSV: columns mapped by name and --map, the rest into properties; bad records parked with their line; column order does not change ids', async () => {
  const day = new Date().toISOString().slice(0, 10);
  const csv = [
    'id,tenant,kind,ts,Country,revenue,sku,properties,internal',
    `,42,purchase,${day}T10:00:00Z,DE,59.90,A-1,"{""coupon"":""X""}",secret`,
    `,42,page_view,${day}T10:00:01Z,FR,,"B,2",,secret`,
    `0190f5c2-8a4e-7cc1-9a53-2b1c8f0e4d11,43,click,${day}T10:00:02Z,,,"multi`,
    `line",,`,
    `,oops,click,${day}T10:00:03Z,,,,,`,
    `,44,click`,
    `,42,purchase,${day}T10:00:00Z,DE,59.90,A-1,"{""coupon"":""X""}",secret`,
    '',
  ].join('\n');
  const file = path.join(dir, 'orders.csv');
  await writeFile(file, csv);
  const maps = ['--map', 'id=eventId', '--map', 'tenant=tenantId', '--map', 'kind=type', '--map', 'ts=occurredAt', '--map', 'internal='];
  const r = await run([...maps, file]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /column\(s\) sku go to properties/);
  assert.equal(r.json.inserted, 3);
  assert.equal(r.json.duplicates, 1, 'the repeated order line');
  assert.equal(r.json.invalid, 2);
  // Line 6: tenant "oops"; line 7: too few columns.
  assert.deepEqual(await deadLetterLines(db.pool, db.schema, file), [6, 7]);
  const { rows } = await db.pool.query<{ tenant_id: string; type: string; country: string | null; revenue: number | null; properties: Record<string, unknown> | null; event_id: string }>(
    `SELECT tenant_id::text, type, country, revenue::float8 AS revenue, properties, event_id::text FROM "${db.schema}".events ORDER BY occurred_at`,
  );
  assert.deepEqual(
    rows.map((x) => [x.tenant_id, x.type, x.country, x.revenue, x.properties]),
    [
      ['42', 'purchase', 'DE', 59.9, { coupon: 'X', sku: 'A-1' }],
      ['42', 'page_view', 'FR', null, { sku: 'B,2' }],
      ['43', 'click', null, null, { sku: 'multi\nline' }],
    ],
  );
  assert.equal(rows[2]?.event_id, '0190f5c2-8a4e-7cc1-9a53-2b1c8f0e4d11');
  const { rows: dl } = await db.pool.query<{ error: string }>(`SELECT error FROM "${db.schema}".dead_letters WHERE source_partition = $1 ORDER BY source_sequence`, [file]);
  assert.match(dl[0]?.error ?? '', /tenantId/);
  assert.match(dl[1]?.error ?? '', /CSV: Invalid Record Length/);

  // The same records with the columns in another order: the derived ids are the same, nothing new.
  const reordered = path.join(dir, 'orders-reordered.csv');
  await writeFile(reordered, ['kind,tenant,ts,revenue,Country,id,sku,properties', `purchase,42,${day}T10:00:00Z,59.90,DE,,A-1,"{""coupon"":""X""}"`, ''].join('\n'));
  const again = await run(['--map', 'id=eventId', '--map', 'tenant=tenantId', '--map', 'kind=type', '--map', 'ts=occurredAt', reordered]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.json.inserted, 0);
  assert.equal(again.json.duplicates, 1);

  // A --map naming a column the file does not have is refused before any row is read (exit 2).
  const fresh = path.join(dir, 'orders-fresh.csv');
  await writeFile(fresh, csv);
  const bad = await run(['--map', 'nosuch=type', fresh]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /not in the header: "nosuch"/);
});

test('blob sources on Azurite: a prefix with AzureWebJobsStorage (gzip too), and a SAS URL without it', async () => {
  const svc = BlobServiceClient.fromConnectionString(testAzuriteConnection());
  const containerName = uniqueName('imp');
  const container = svc.getContainerClient(containerName);
  await container.create();
  try {
    const a = makeLines({ count: 3000, seed: 'blob-a', duplicates: 0.01, malformed: 0, tenants: 5 });
    const b = makeLines({ count: 2000, seed: 'blob-b', duplicates: 0, malformed: 0, tenants: 5 });
    const c = makeLines({ count: 1000, seed: 'blob-c', duplicates: 0, malformed: 0.02, tenants: 5 });
    const nd = (lines: Buffer[]) => Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
    await container.getBlockBlobClient('hist/2026/a.ndjson').uploadData(nd(a.lines));
    await container.getBlockBlobClient('hist/2026/b.ndjson.gz').uploadData(gzipSync(nd(b.lines)));
    await container.getBlockBlobClient('hist/readme.txt').uploadData(Buffer.from('not events'));
    await container.getBlockBlobClient('other/c.ndjson').uploadData(nd(c.lines));

    const url = container.url; // path style on Azurite: http://127.0.0.1:PORT/devstoreaccount1/<container>
    const r = await run([`${url}/hist/`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.json.files.map((f) => f.source), [`${url}/hist/2026/a.ndjson`, `${url}/hist/2026/b.ndjson.gz`]);
    assert.equal(r.json.inserted, a.expected.size + b.expected.size);

    const sas = await container.generateSasUrl({ permissions: ContainerSASPermissions.parse('rl'), expiresOn: new Date(Date.now() + 3600_000) });
    const [base, query] = sas.split('?');
    const env = importEnv(db.schema);
    delete env.AzureWebJobsStorage;
    const s = await run([`${base ?? ''}/other?${query ?? ''}`], env);
    assert.equal(s.code, 1, s.stderr);
    assert.equal(s.json.inserted, c.expected.size);
    assert.equal(s.json.files[0]?.source, `${url}/other/c.ndjson`, 'the SAS is not part of the name');
    assert.deepEqual(await deadLetterLines(db.pool, db.schema, `${url}/other/c.ndjson`), c.invalidLines);

    const keys = new Set(await eventKeys(db.pool, db.schema));
    for (const k of [...a.expected, ...b.expected, ...c.expected]) assert.ok(keys.has(k), `missing ${k}`);

    // Without a SAS and without the setting: a clear error, exit 2.
    const none = spawnHubsink(['import', `${url}/hist/`], env);
    assert.equal((await none.exited).code, 2);
    assert.match(none.stderr(), /no SAS in the URL and AzureWebJobsStorage is not set/);
  } finally {
    await container.deleteIfExists();
  }
});
