import { test } from 'vitest';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, rm, appendFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestSchema, noCitus, uniqueName } from '../support/services.js';
import { defaultMigrationsDir, loadMigrations, migrate, MigrationError } from '../../src/db/migrate.js';
import { checkMigrations } from '../../src/doctor/database.js';
import { detectCapabilities } from '../../src/db/capabilities.js';

async function tables(pool: import('pg').Pool, schema: string): Promise<string[]> {
  const { rows } = await pool.query<{ relname: string }>(
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY 1`,
    [schema],
  );
  return rows.map((r) => r.relname);
}

async function sqlFiles(): Promise<string[]> {
  return (await readdir(await defaultMigrationsDir())).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
}

test('migrate from empty applies every file in order and records it', async () => {
  const s = await createTestSchema('dbm_');
  try {
    const files = await sqlFiles();
    const logged: string[] = [];
    const { applied } = await migrate(s.pool, s.schema, { log: (m) => logged.push(m) });
    assert.deepEqual(applied, files.map((f) => f.replace(/\.sql$/, '')));
    assert.equal(logged.length, files.length);
    const { rows } = await s.pool.query<{ version: number; name: string; checksum: string }>(
      `SELECT version, name, checksum FROM "${s.schema}".hubsink_migrations ORDER BY version`,
    );
    assert.deepEqual(rows.map((r) => `${String(r.version).padStart(3, '0')}_${r.name}`), applied);
    for (const r of rows) assert.match(r.checksum, /^[0-9a-f]{64}$/);
    const t = await tables(s.pool, s.schema);
    for (const name of ['events', 'hubsink_migrations', 'tenants']) assert.ok(t.includes(name), `${name} in ${t.join(',')}`);
    // events is range-partitioned on occurred_at with the agreed key.
    const { rows: part } = await s.pool.query<{ def: string; pkey: string }>(
      `SELECT pg_get_partkeydef(c.oid) AS def, pg_get_constraintdef(k.oid) AS pkey
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'p'
       WHERE n.nspname = $1 AND c.relname = 'events'`,
      [s.schema],
    );
    assert.equal(part[0]?.def, 'RANGE (occurred_at)');
    assert.equal(part[0]?.pkey, 'PRIMARY KEY (tenant_id, event_id, occurred_at)');
  } finally {
    await s.drop();
  }
});

test.skipIf(noCitus())('on Citus, events is hash-distributed by tenant_id and tenants is a reference table [needs Citus]', async () => {
  const s = await createTestSchema('dbm_');
  try {
    await migrate(s.pool, s.schema);
    assert.equal((await detectCapabilities(s.pool)).citus, true);
    const { rows: dist } = await s.pool.query<{ name: string; kind: string; col: string | null }>(
      `SELECT logicalrelid::regclass::text AS name, partmethod AS kind, column_to_column_name(logicalrelid, partkey) AS col
       FROM pg_dist_partition WHERE logicalrelid IN ($1::regclass, $2::regclass) ORDER BY 1`,
      [`"${s.schema}".events`, `"${s.schema}".tenants`],
    );
    assert.deepEqual(
      dist.map((d) => [d.name.replace(/^.*\./, ''), d.kind, d.col]),
      [
        ['events', 'h', 'tenant_id'],
        ['tenants', 'n', null],
      ],
    );
  } finally {
    await s.drop();
  }
});

test('a database migrated past a migration it lacks gets it on the next migrate (006 landed after 007 was applied)', async () => {
  // Migration 006 (access grants) was written before 007 but landed after it: a deployment
  // migrated to 007 in between has 001-005 and 007. Versions are applied by set, not by "above the
  // highest", so the next migrate applies 006 alone, and the doctor calls the schema migrated.
  const s = await createTestSchema('dbm_gap_');
  const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-mig-'));
  try {
    const all = await defaultMigrationsDir();
    const files = await sqlFiles();
    assert.ok(files.includes('006_access.sql') && files.includes('007_rollup_custom_specs.sql'), files.join(','));
    for (const f of files) if (f !== '006_access.sql') await cp(path.join(all, f), path.join(dir, f));
    const before = await migrate(s.pool, s.schema, { dir });
    assert.ok(before.applied.includes('007_rollup_custom_specs') && !before.applied.includes('006_access'), before.applied.join(','));
    assert.ok(!(await tables(s.pool, s.schema)).includes('access_grants'));
    const readApplied = async () =>
      (await s.pool.query<{ version: number; name: string; checksum: string }>(`SELECT version, name, checksum FROM "${s.schema}".hubsink_migrations ORDER BY version`)).rows;
    const shipped = await loadMigrations(all);
    const gap = checkMigrations(await readApplied(), shipped, s.schema);
    assert.equal(gap.status, 'fail');
    assert.match(gap.detail, /1 migration\(s\) not applied: 006_access/);

    const after = await migrate(s.pool, s.schema);
    assert.deepEqual(after.applied, ['006_access']);
    assert.ok((await tables(s.pool, s.schema)).includes('access_grants'));
    await s.pool.query(`INSERT INTO "${s.schema}".access_grants (principal_kind, principal_id, tenant_id) VALUES ('group', $1, 7)`, ['0f5c2d1e-0000-4000-8000-000000000001']);
    const ok = checkMigrations(await readApplied(), shipped, s.schema);
    assert.equal(ok.status, 'ok', ok.detail);
    assert.deepEqual((await migrate(s.pool, s.schema)).applied, []);
    if ((await detectCapabilities(s.pool)).citus) {
      const { rows } = await s.pool.query<{ kind: string }>(`SELECT partmethod AS kind FROM pg_dist_partition WHERE logicalrelid = $1::regclass`, [`"${s.schema}".access_grants`]);
      assert.equal(rows[0]?.kind, 'n', 'access_grants is a reference table on Citus');
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    await s.drop();
  }
});

test('migrate twice: the second run applies nothing', async () => {
  const s = await createTestSchema('dbm_');
  try {
    const first = await migrate(s.pool, s.schema);
    assert.ok(first.applied.length >= 1);
    const second = await migrate(s.pool, s.schema);
    assert.deepEqual(second.applied, []);
    const { rows } = await s.pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${s.schema}".hubsink_migrations`);
    assert.equal(Number(rows[0]?.n), first.applied.length);
  } finally {
    await s.drop();
  }
});

test('three concurrent migrations of one schema create one set of tables without error', async () => {
  const s = await createTestSchema('dbm_');
  try {
    const results = await Promise.all([migrate(s.pool, s.schema), migrate(s.pool, s.schema), migrate(s.pool, s.schema)]);
    const files = await sqlFiles();
    // Each file was applied by exactly one of them.
    const all = results.flatMap((r) => r.applied).sort();
    assert.deepEqual(all, files.map((f) => f.replace(/\.sql$/, '')).sort());
    const t = await tables(s.pool, s.schema);
    assert.equal(t.filter((n) => n === 'events').length, 1);
    const { rows } = await s.pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${s.schema}".hubsink_migrations`);
    assert.equal(Number(rows[0]?.n), files.length);
  } finally {
    await s.drop();
  }
});

test('migrate creates a missing schema', async () => {
  const s = await createTestSchema('dbm_');
  const fresh = uniqueName('dbm_new_');
  try {
    const { applied } = await migrate(s.pool, fresh);
    assert.ok(applied.length >= 1);
    assert.ok((await tables(s.pool, fresh)).includes('events'));
  } finally {
    await s.pool.query(`DROP SCHEMA IF EXISTS "${fresh}" CASCADE`);
    await s.drop();
  }
});

test('a changed applied migration is refused; a new numbered file is applied', async () => {
  const s = await createTestSchema('dbm_');
  const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-mig-'));
  try {
    await cp(await defaultMigrationsDir(), dir, { recursive: true });
    await migrate(s.pool, s.schema, { dir });
    // Adding a migration is how the schema evolves.
    await writeFile(path.join(dir, '900_extra.sql'), 'CREATE TABLE extra_table (id int PRIMARY KEY);\n');
    const next = await migrate(s.pool, s.schema, { dir });
    assert.deepEqual(next.applied, ['900_extra']);
    assert.ok((await tables(s.pool, s.schema)).includes('extra_table'));
    // Editing one that was applied is not (a comment may change: migrate-checksums.test.ts).
    await appendFile(path.join(dir, '001_core.sql'), '\nCREATE TABLE edited_after_the_fact (id int);\n');
    await assert.rejects(migrate(s.pool, s.schema, { dir }), (err: unknown) => {
      assert.ok(err instanceof MigrationError);
      assert.match(err.message, /001_core was already applied .* has changed/);
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
    await s.drop();
  }
});

test('a failing migration rolls back entirely and is not recorded', async () => {
  const s = await createTestSchema('dbm_');
  const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-mig-'));
  try {
    await cp(await defaultMigrationsDir(), dir, { recursive: true });
    await writeFile(path.join(dir, '901_broken.sql'), 'CREATE TABLE half_done (id int);\nSELECT * FROM no_such_table;\n');
    await assert.rejects(migrate(s.pool, s.schema, { dir }), (err: unknown) => {
      assert.ok(err instanceof MigrationError);
      assert.match(err.message, /901_broken failed/);
      return true;
    });
    assert.ok(!(await tables(s.pool, s.schema)).includes('half_done'));
    const { rows } = await s.pool.query<{ v: number }>(`SELECT max(version) AS v FROM "${s.schema}".hubsink_migrations`);
    assert.ok((rows[0]?.v ?? 0) < 901);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await s.drop();
  }
});
