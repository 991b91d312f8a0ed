/**
 * `hubsink import` looks at a file's header (CSV, with the `--map`s) or first lines (NDJSON) before
 * it reads a row: a file that cannot yield one valid event is refused with exit 2, naming the
 * missing field and the `--map` that would supply it, and nothing is written or parked. The same
 * in --dry-run. A file that only some lines fail is imported as before (those lines are parked).
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { testDatabaseUrl, type TestSchema } from '../support/services.js';
import { countRows, readySchema, runCli } from '../support/deadLetters.js';

let s: TestSchema;
const dir = mkdtempSync(path.join(tmpdir(), 'hubsink-import-preflight-'));
const at = new Date(Date.now() - 3_600_000).toISOString();

beforeAll(async () => {
  s = await readySchema('impf_');
});
afterAll(async () => {
  await s?.drop();
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

const env = (): Record<string, string> => ({ DATABASE_URL: testDatabaseUrl(), HUBSINK_SCHEMA: s.schema });

test('a CSV without a type column: exit 2 before any row, naming the column and the --map; --dry-run too; nothing parked', async () => {
  const rows = Array.from({ length: 50 }, (_, i) => `${i + 1},${at},page_view`).join('\n');
  // A short record too: the parser reports it before the header reaches the reader.
  const csv = file('missingcol.csv', `tenant_id,occurred_at,event_type\n${rows}\n51,${at}\n`);
  for (const extra of [[], ['--dry-run']]) {
    const r = await runCli(['import', csv, ...extra], env());
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/missingcol\.csv: no column for the required field\(s\) type; nothing was imported/);
    expect(r.stderr).toMatch(/--map event_type=type/);
    expect(r.stderr).toMatch(/header: tenant_id, occurred_at, event_type/);
  }
  expect(await countRows(s.pool, s.schema, 'dead_letters')).toBe(0);
  expect(await countRows(s.pool, s.schema, 'events')).toBe(0);
  // The --map it names is the fix.
  const fixed = await runCli(['import', csv, '--map', 'event_type=type'], env());
  expect(fixed.code, fixed.stderr).toBe(1);
  expect(await countRows(s.pool, s.schema, 'events')).toBe(50);
  expect(await countRows(s.pool, s.schema, 'dead_letters')).toBe(1);
});

test('a --map that maps a required field away, and a header with none of them: each missing field named', async () => {
  const csv = file('renamed.csv', `tenantId,type,occurredAt\n7,page_view,${at}\n`);
  const away = await runCli(['import', csv, '--dry-run', '--map', 'type='], env());
  expect(away.code, away.stderr).toBe(2);
  expect(away.stderr).toMatch(/no column for the required field\(s\) type/);
  const none = file('none.csv', `a,b\n1,2\n`);
  const r = await runCli(['import', none, '--dry-run'], env());
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toMatch(/tenantId, type, occurredAt/);
  expect(r.stderr).toMatch(/--map <column>=tenantId/);
});

test('NDJSON whose first lines all lack tenantId: exit 2, nothing parked; one bad line among good ones is imported as before', async () => {
  const lines = Array.from({ length: 120 }, (_, i) => JSON.stringify({ storefront: i + 1, type: 'page_view', occurredAt: at })).join('\n');
  const nd = file('notenant.ndjson', `${lines}\n`);
  for (const extra of [[], ['--dry-run']]) {
    const r = await runCli(['import', nd, ...extra], env());
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/notenant\.ndjson: none of the first 100 line\(s\) has tenantId/);
  }
  expect(await countRows(s.pool, s.schema, 'dead_letters')).toBe(1);
  const mixed = file('mixed.ndjson', `${JSON.stringify({ tenantId: 9, type: 'page_view', occurredAt: at })}\n${JSON.stringify({ type: 'page_view', occurredAt: at })}\n`);
  const r = await runCli(['import', mixed], env());
  expect(r.code, r.stderr).toBe(1);
  expect(await countRows(s.pool, s.schema, 'dead_letters')).toBe(2);
});
