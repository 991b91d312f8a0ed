/**
 * Migration checksums cover what the server runs, not comments or layout (src/db/migrate.ts), and
 * databases that stored the older whole-text checksums are still recognized.
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { compareChecksum, defaultMigrationsDir, loadMigrations, migrationChecksum, migrationContent, RAW_TEXT_CHECKSUMS } from '../../src/db/migrate.js';

describe('migrationContent', () => {
  test('drops -- and nested /* */ comments and collapses whitespace between tokens', () => {
    assert.equal(migrationContent('-- head\nCREATE  TABLE t (\n  a int, -- why\n  /* one /* nested */ more */ b text\n);\n'), 'CREATE TABLE t ( a int, b text );');
  });
  test('keeps string literals, E-strings and quoted identifiers as they are', () => {
    assert.equal(migrationContent("SELECT 'a  -- not a comment' , \"two  words\""), "SELECT 'a  -- not a comment' , \"two  words\"");
    assert.equal(migrationContent("SELECT 'it''s  here'"), "SELECT 'it''s  here'");
    assert.equal(migrationContent("SELECT E'x\\'  -- y'  -- z"), "SELECT E'x\\'  -- y'");
    assert.notEqual(migrationChecksum("SELECT 'a b'"), migrationChecksum("SELECT 'a  b'"));
  });
  test('dollar-quoted bodies are code: normalized too, and a body may hold quotes of its own', () => {
    assert.equal(migrationContent("DO $$\nBEGIN\n  -- note: don't\n  PERFORM 1;\nEND\n$$;"), 'DO $$BEGIN PERFORM 1; END$$;');
    assert.equal(migrationContent("SELECT $t$it's$t$, $1"), "SELECT $t$it's$t$, $1");
    assert.equal(migrationContent('EXECUTE format($ddl$CREATE TABLE %I (a int) -- c\n$ddl$, x)'), 'EXECUTE format($ddl$CREATE TABLE %I (a int)$ddl$, x)');
  });
  test('a change of a statement still changes the checksum', () => {
    assert.notEqual(migrationChecksum('CREATE TABLE t (a int);'), migrationChecksum('CREATE TABLE t (a bigint);'));
    assert.notEqual(migrationChecksum('CREATE TABLE t (a int);'), migrationChecksum('CREATE TABLE t (a int); CREATE INDEX ON t (a);'));
  });
});

describe('checksums stored before content checksums', () => {
  test('each shipped migration still has the content it had when only whole-text checksums were stored', async () => {
    const files = await loadMigrations(await defaultMigrationsDir());
    for (const [version, legacy] of Object.entries(RAW_TEXT_CHECKSUMS)) {
      const f = files.find((m) => m.version === Number(version));
      assert.ok(f, `migration ${version} exists`);
      assert.equal(f.checksum, legacy.content, `${f.file}: its statements changed since it was shipped; add a new migration instead`);
    }
  });
  test('a stored raw-text checksum is upgraded only while the content is unchanged', () => {
    const legacy = RAW_TEXT_CHECKSUMS[1];
    assert.ok(legacy);
    assert.equal(compareChecksum(1, legacy.content, { checksum: legacy.content }), 'same');
    assert.equal(compareChecksum(1, legacy.raw, { checksum: legacy.content }), 'upgrade');
    assert.equal(compareChecksum(1, legacy.raw, { checksum: migrationChecksum('CREATE TABLE other (a int);') }), 'changed');
    assert.equal(compareChecksum(2, legacy.raw, { checksum: RAW_TEXT_CHECKSUMS[2]?.content ?? '' }), 'changed');
    assert.equal(compareChecksum(99, 'f'.repeat(64), { checksum: 'e'.repeat(64) }), 'changed');
  });
});
