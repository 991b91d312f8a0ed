/**
 * A database migrated before checksums ignored comments holds whole-text checksums of the files as
 * they were shipped (RAW_TEXT_CHECKSUMS). After the files' comments were corrected it still
 * migrates, its stored checksums become content checksums, and a real change is still refused.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { appendFile, cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultMigrationsDir, loadMigrations, migrate, MigrationError, RAW_TEXT_CHECKSUMS } from '../../src/db/migrate.js';
import { createTestSchema } from '../support/services.js';

/** What the previous migrator left: the same schema, with the whole-text checksums it stored. */
async function migratedByPreviousRelease(pool: import('pg').Pool, schema: string, dir?: string): Promise<void> {
  await migrate(pool, schema, dir ? { dir } : {});
  for (const [version, legacy] of Object.entries(RAW_TEXT_CHECKSUMS)) {
    await pool.query(`UPDATE "${schema}".hubsink_migrations SET checksum = $2 WHERE version = $1`, [Number(version), legacy.raw]);
  }
}

async function stored(pool: import('pg').Pool, schema: string): Promise<Map<number, string>> {
  const { rows } = await pool.query<{ version: number; checksum: string }>(`SELECT version, checksum FROM "${schema}".hubsink_migrations ORDER BY version`);
  return new Map(rows.map((r) => [r.version, r.checksum]));
}

test('a database with the old whole-text checksums migrates after comment edits, and its checksums are upgraded', async () => {
  const s = await createTestSchema('mck_');
  try {
    await migratedByPreviousRelease(s.pool, s.schema);
    const logged: string[] = [];
    const again = await migrate(s.pool, s.schema, { log: (m) => logged.push(m) });
    assert.deepEqual(again.applied, []);
    const files = await loadMigrations(await defaultMigrationsDir());
    const now = await stored(s.pool, s.schema);
    for (const f of files) assert.equal(now.get(f.version), f.checksum, f.file);
    assert.equal(logged.filter((l) => /upgraded to the content checksum/.test(l)).length, Object.keys(RAW_TEXT_CHECKSUMS).length);
    // Once upgraded, nothing more to do.
    const logged2: string[] = [];
    await migrate(s.pool, s.schema, { log: (m) => logged2.push(m) });
    assert.deepEqual(logged2, []);
  } finally {
    await s.drop();
  }
});

test('a comment edit is accepted, a statement edit is refused, with old or upgraded checksums', async () => {
  const s = await createTestSchema('mck_');
  const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-mck-'));
  try {
    await cp(await defaultMigrationsDir(), dir, { recursive: true });
    await migratedByPreviousRelease(s.pool, s.schema, dir);
    const file = path.join(dir, '004_import_files.sql');
    const original = await readFile(file, 'utf8');
    await writeFile(file, `-- A corrected comment.\n${original.replace(/\n\s*\n/g, '\n')}\n-- and a trailing one\n`);
    const refusal = (err: unknown): boolean => {
      assert.ok(err instanceof MigrationError);
      assert.match(err.message, /004_import_files was already applied .* has changed/);
      return true;
    };
    // A real change against the old stored checksum: refused, and nothing is stored for it.
    await appendFile(file, 'ALTER TABLE import_files ADD COLUMN note text;\n');
    await assert.rejects(migrate(s.pool, s.schema, { dir }), refusal);
    assert.equal((await stored(s.pool, s.schema)).get(4), RAW_TEXT_CHECKSUMS[4]?.raw);
    // Only comments and layout changed: accepted and upgraded.
    await writeFile(file, `-- A corrected comment.\n${original.replace(/\n\s*\n/g, '\n')}`);
    assert.deepEqual((await migrate(s.pool, s.schema, { dir })).applied, []);
    // The same real change against the upgraded checksum: still refused.
    await appendFile(file, 'ALTER TABLE import_files ADD COLUMN note text;\n');
    await assert.rejects(migrate(s.pool, s.schema, { dir }), refusal);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await s.drop();
  }
});
