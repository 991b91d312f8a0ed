/**
 * The committed schema dump (sql/schema.sql) is what the migrations produce: a fresh schema is
 * migrated and read back from the catalog (test/integration/schema-dump.ts). A migration that
 * changes the schema without refreshing the file fails here with the diff; `npm run schema:dump`
 * writes the file (the same test, with HUBSINK_WRITE_SCHEMA_DUMP=1), and the diff is reviewed.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { defaultMigrationsDir, migrate } from '../../src/db/migrate.js';
import { createTestSchema } from '../support/services.js';
import { dumpSchema, DUMP_HEADER } from './schema-dump.js';

/** Pure: the lines that differ, marked - (committed) and + (migrated), with a little context. */
function lineDiff(expected: string, actual: string): string {
  const a = expected.split('\n');
  const b = actual.split('\n');
  const out: string[] = [];
  // Longest common subsequence: the files are a few hundred lines.
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) for (let j = b.length - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push(`  ${a[i]}`);
      i++;
      j++;
    } else if (j < b.length && (i >= a.length || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) out.push(`+ ${b[j++]}`);
    else out.push(`- ${a[i++]}`);
  }
  // Only changed lines and two lines around each.
  const keep = new Set<number>();
  out.forEach((l, k) => {
    if (!l.startsWith('  ')) for (let d = -2; d <= 2; d++) keep.add(k + d);
  });
  return out.filter((_, k) => keep.has(k)).join('\n');
}

test('sql/schema.sql is the schema the migrations produce (refresh: npm run schema:dump)', async () => {
  const s = await createTestSchema('sd_');
  try {
    await migrate(s.pool, s.schema);
    const actual = DUMP_HEADER + (await dumpSchema(s.pool, s.schema));
    const file = path.join(await defaultMigrationsDir(), 'schema.sql');
    if (process.env.HUBSINK_WRITE_SCHEMA_DUMP === '1') await writeFile(file, actual);
    const committed = await readFile(file, 'utf8').catch(() => '');
    assert.ok(
      committed === actual,
      `sql/schema.sql differs from the schema the migrations produce (- committed, + migrated):\n${lineDiff(committed, actual)}\n\n` +
        'If the migration change is meant, run `npm run schema:dump` and commit sql/schema.sql with it.',
    );
  } finally {
    await s.drop();
  }
});
