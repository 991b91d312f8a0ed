/**
 * `hubsink import` against hostile storage, on Azurite: a SAS never ends up in a file's name (not in
 * what it prints, nor in import_files or dead_letters, nor in `dlq list`), and a blob whose listed
 * name holds `..` segments is skipped with a warning instead of being read from another container.
 * And hostile files: a line past HUBSINK_MAX_BODY_BYTES is parked as a short "line too long" dead
 * letter, a gzip bomb is refused naming HUBSINK_IMPORT_MAX_GZIP_RATIO.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { AccountSASPermissions, BlobServiceClient, ContainerSASPermissions } from '@azure/storage-blob';
import { migrate } from '../../src/db/migrate.js';
import { eventKeys, kill, spawnHubsink, type RunnerProcess } from '../support/runner-fixture.js';
import { importEnv, makeLines } from '../support/import-fixture.js';
import { createTestSchema, testAzuriteConnection, uniqueName, type TestSchema } from '../support/services.js';

let db: TestSchema;
const children: RunnerProcess[] = [];

beforeAll(async () => {
  db = await createTestSchema('imph_');
  await migrate(db.pool, db.schema);
});
afterAll(async () => {
  for (const c of children) await kill(c);
  await db.drop();
});

async function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnHubsink(args, env);
  children.push(p);
  const { code } = await p.exited;
  return { code, stdout: p.stdoutLines().join('\n'), stderr: p.stderr() };
}

const nd = (lines: Buffer[]) => Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));

test('a SAS in the storage connection string, or in the URL, is in no output line and no stored row, for every import form', async () => {
  const svc = BlobServiceClient.fromConnectionString(testAzuriteConnection());
  const name = uniqueName('sas');
  const container = svc.getContainerClient(name);
  await container.create();
  try {
    // One invalid line, so a dead letter is parked under the file's name.
    const a = makeLines({ count: 200, seed: 'sas-a', duplicates: 0, malformed: 0.05, tenants: 3 });
    assert.ok(a.invalidLines.length > 0);
    await container.getBlockBlobClient('in/a.ndjson').uploadData(nd(a.lines));
    await container.getBlockBlobClient('url/b.ndjson').uploadData(nd(makeLines({ count: 50, seed: 'sas-b', duplicates: 0, malformed: 0.1, tenants: 3 }).lines));
    await container.getBlockBlobClient('sasurl/c.ndjson').uploadData(nd(makeLines({ count: 50, seed: 'sas-c', duplicates: 0, malformed: 0.1, tenants: 3 }).lines));

    const accountSas = new URL(svc.generateAccountSasUrl(new Date(Date.now() + 3600_000), AccountSASPermissions.parse('rl'), 'sco')).search.slice(1);
    assert.match(accountSas, /(^|&)sig=/);
    const sasConnection = `BlobEndpoint=${svc.url.replace(/\/$/, '')};SharedAccessSignature=${accountSas}`;
    const env = importEnv(db.schema, { AzureWebJobsStorage: sasConnection });
    const containerSas = await container.generateSasUrl({ permissions: ContainerSASPermissions.parse('rl'), expiresOn: new Date(Date.now() + 3600_000) });
    const [base, query] = containerSas.split('?');
    const forms: string[][] = [
      ['import', '--dry-run', `blob:${name}/in/`],
      ['import', '--dry-run', '--json', `blob:${name}/in/`],
      ['import', `blob:${name}/in/`],
      ['import', `blob:${name}/in/`], // again: "already imported"
      ['import', '--json', `${container.url}/url/`],
      ['import', `${base ?? ''}/sasurl?${query ?? ''}`],
      ['dlq', 'list'],
      ['dlq', 'list', '--json'],
    ];
    for (const args of forms) {
      const r = await run(args, env);
      assert.ok(r.code === 0 || r.code === 1, `${args.join(' ')}: exit ${String(r.code)} ${r.stderr}`);
      for (const [stream, text] of [['stdout', r.stdout], ['stderr', r.stderr]] as const) {
        assert.doesNotMatch(text, /sig=/i, `${args.slice(0, -1).join(' ')} ${stream}: ${text}`);
      }
      if (args[0] === 'import') assert.match(r.stdout, /\/(in|url|sasurl)\/[abc]\.ndjson/, `${args.join(' ')} names its file`);
    }
    const files = await db.pool.query<{ row: string }>(`SELECT t::text AS row FROM "${db.schema}".import_files t`);
    assert.equal(files.rows.length, 3);
    const dead = await db.pool.query<{ row: string }>(`SELECT t::text AS row FROM "${db.schema}".dead_letters t`);
    assert.ok(dead.rows.length >= a.invalidLines.length, 'dead letters were parked');
    for (const { row } of [...files.rows, ...dead.rows]) assert.doesNotMatch(row, /sig=/i, row);
    const sources = await db.pool.query<{ source: string }>(`SELECT source FROM "${db.schema}".import_files ORDER BY 1`);
    assert.deepEqual(
      sources.rows.map((r) => r.source),
      [`${container.url}/in/a.ndjson`, `${container.url}/sasurl/c.ndjson`, `${container.url}/url/b.ndjson`],
    );
  } finally {
    await container.deleteIfExists();
  }
});

test('a listed blob name with %2E%2E segments is skipped with a warning, not read from another container', async () => {
  const svc = BlobServiceClient.fromConnectionString(testAzuriteConnection());
  const here = svc.getContainerClient(uniqueName('dots'));
  const otherName = uniqueName('other');
  const other = svc.getContainerClient(otherName);
  await here.create();
  await other.create();
  try {
    const mine = makeLines({ count: 40, seed: 'dots-mine', duplicates: 0, malformed: 0, tenants: 3 });
    const theirs = makeLines({ count: 30, seed: 'dots-theirs', duplicates: 0, malformed: 0, tenants: 3 });
    await here.getBlockBlobClient('data/ok.ndjson').uploadData(nd(mine.lines));
    await other.getBlockBlobClient('x.ndjson').uploadData(nd(theirs.lines));
    // The SDK would resolve the dots before sending; a raw PUT with `%252E` stores the name with `%2E%2E` in it.
    const sas = new URL(await here.generateSasUrl({ permissions: ContainerSASPermissions.parse('rcw'), expiresOn: new Date(Date.now() + 3600_000) })).search;
    const put = await fetch(`${here.url}/data/%252E%252E/%252E%252E/${otherName}/x.ndjson${sas}`, { method: 'PUT', headers: { 'x-ms-blob-type': 'BlockBlob' }, body: 'decoy' });
    assert.equal(put.status, 201, await put.text());
    const listed: string[] = [];
    for await (const b of here.listBlobsFlat({ prefix: 'data/' })) listed.push(b.name);
    assert.deepEqual(listed.sort(), [`data/%2E%2E/%2E%2E/${otherName}/x.ndjson`, 'data/ok.ndjson'], 'the hostile name is listed as such');

    const r = await run(['import', '--json', `${here.url}/data/`], importEnv(db.schema));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`warning: .*/data/%2E%2E/%2E%2E/${otherName}/x\\.ndjson: skipped, the name has a "\\." or "\\.\\." segment`));
    const summary = JSON.parse(r.stdout.split('\n').at(-1) ?? '{}') as { inserted: number; files: { source: string }[] };
    assert.deepEqual(summary.files.map((f) => f.source), [`${here.url}/data/ok.ndjson`]);
    assert.equal(summary.inserted, mine.expected.size);
    const keys = new Set(await eventKeys(db.pool, db.schema));
    for (const k of theirs.expected) assert.ok(!keys.has(k), 'nothing of the other container was imported');
  } finally {
    await here.deleteIfExists();
    await other.deleteIfExists();
  }
});

test('a line past HUBSINK_MAX_BODY_BYTES is parked short, with its line; a gzip bomb is refused naming the setting', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-import-hostile-'));
  try {
    const ok = makeLines({ count: 20, seed: 'long-ok', duplicates: 0, malformed: 0, tenants: 3 });
    const huge = Buffer.from(`{"tenantId":1,"type":"click","pad":"${'p'.repeat(200_000)}"}`);
    const file = path.join(dir, 'long.ndjson');
    await writeFile(file, Buffer.concat([...ok.lines.slice(0, 10), huge, ...ok.lines.slice(10)].flatMap((l) => [l, Buffer.from('\n')])));
    const env = importEnv(db.schema, { HUBSINK_MAX_BODY_BYTES: '1024' });
    const r = await run(['import', '--json', file], env);
    assert.equal(r.code, 1, r.stderr);
    const summary = JSON.parse(r.stdout.split('\n').at(-1) ?? '{}') as { inserted: number; invalid: number };
    assert.deepEqual([summary.inserted, summary.invalid], [ok.expected.size, 1]);
    const { rows } = await db.pool.query<{ seq: string; error: string; len: number }>(
      `SELECT source_sequence::text AS seq, error, length(body) AS len FROM "${db.schema}".dead_letters WHERE source_partition = $1`,
      [file],
    );
    assert.deepEqual(
      rows.map((x) => [x.seq, x.len]),
      [['11', 256]],
    );
    assert.match(rows[0]?.error ?? '', new RegExp(`^line too long: ${huge.length} bytes, more than HUBSINK_MAX_BODY_BYTES \\(1024\\)`));

    const bomb = path.join(dir, 'bomb.ndjson.gz');
    await writeFile(bomb, gzipSync(Buffer.alloc(256 << 20, 0x0a)));
    for (const json of [true, false]) {
      const b = await run(['import', ...(json ? ['--json'] : []), bomb], importEnv(db.schema, { HUBSINK_IMPORT_MAX_GZIP_RATIO: '50' }));
      assert.equal(b.code, 1, b.stderr);
      assert.match(b.stdout, /bomb\.ndjson\.gz: refused after [\d.]+ MiB expanded from \d+ KiB of gzip, more than 50 times its size \(a decompression bomb\?\); raise HUBSINK_IMPORT_MAX_GZIP_RATIO to import it/);
      if (json) assert.equal((JSON.parse(b.stdout) as { files: { status: string }[] }).files[0]?.status, 'failed');
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
