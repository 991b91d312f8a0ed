/**
 * `hubsink local`'s embedded PostgreSQL has no fixed password: each data folder gets a random one,
 * kept beside it readable by its owner only; a folder made with the old fixed password keeps
 * working and is moved to a generated one at its next start.
 */
import { afterAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { LEGACY_PASSWORD, passwordFileFor, readPasswordFile, startEmbeddedPostgres } from '../../src/local/postgres.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function loginCode(port: number, password: string): Promise<string> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
  try {
    await c.connect();
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  } finally {
    await c.end().catch(() => undefined);
  }
}

test('a new data folder gets a random password in a 0600 file; the fixed one does not work; a restart keeps it', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-localpg-'));
  dirs.push(dir);
  const dataDir = path.join(dir, 'pg');
  const first = await startEmbeddedPostgres({ dataDir, persistent: true });
  let password: string | undefined;
  try {
    assert.equal(first.passwordFile, passwordFileFor(dataDir));
    assert.equal((await stat(first.passwordFile)).mode & 0o777, 0o600);
    password = await readPasswordFile(first.passwordFile);
    assert.ok(password && password.length >= 40 && password !== LEGACY_PASSWORD);
    assert.equal(new URL(first.url).password, password);
    assert.equal(await loginCode(first.port, password), 'ok');
    assert.equal(await loginCode(first.port, LEGACY_PASSWORD), '28P01');
  } finally {
    await first.stop();
  }
  const again = await startEmbeddedPostgres({ dataDir, persistent: true });
  try {
    assert.equal(new URL(again.url).password, password);
    assert.equal(await loginCode(again.port, password ?? ''), 'ok');
  } finally {
    await again.stop();
  }
  // Two folders never share a password.
  const other = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg2'), persistent: true });
  try {
    assert.notEqual(new URL(other.url).password, password);
  } finally {
    await other.stop();
  }
});

test('a folder made with the old fixed password starts, and leaves with a generated one', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-localpg-'));
  dirs.push(dir);
  const dataDir = path.join(dir, 'pg');
  // Make the folder as hubsink did before: the superuser's password is "postgres", no password file.
  const made = await startEmbeddedPostgres({ dataDir, persistent: true });
  const c = new pg.Client({ connectionString: made.url });
  await c.connect();
  await c.query(`ALTER ROLE postgres PASSWORD 'postgres'`);
  await c.query('CREATE TABLE kept (x int)');
  await c.query('INSERT INTO kept VALUES (42)');
  await c.end();
  await made.stop();
  await unlink(passwordFileFor(dataDir));

  const migrated = await startEmbeddedPostgres({ dataDir, persistent: true });
  try {
    const password = await readPasswordFile(migrated.passwordFile);
    assert.ok(password && password !== LEGACY_PASSWORD);
    assert.equal((await stat(migrated.passwordFile)).mode & 0o777, 0o600);
    assert.equal(await loginCode(migrated.port, LEGACY_PASSWORD), '28P01');
    const k = new pg.Client({ connectionString: migrated.url });
    await k.connect();
    try {
      assert.deepEqual((await k.query<{ x: number }>('SELECT x FROM kept')).rows, [{ x: 42 }]);
    } finally {
      await k.end();
    }
  } finally {
    await migrated.stop();
  }
});
