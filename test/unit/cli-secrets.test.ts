import { afterAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resolveSecret, UsageError } from '../../src/cli/program.js';

let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a secret comes from --flag, --flag-file or the environment, so it can stay out of ps and shell history', async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hubsink-secret-'));
  const file = path.join(dir, 'url');
  await writeFile(file, 'postgres://u:from-file@h/d\n', { mode: 0o600 });
  const env = { HUBSINK_LOCAL_DATABASE_URL: 'postgres://u:from-env@h/d' };
  assert.equal(resolveSecret('database-url', undefined, file, 'HUBSINK_LOCAL_DATABASE_URL', env), 'postgres://u:from-file@h/d');
  assert.equal(resolveSecret('database-url', 'postgres://u:flag@h/d', undefined, 'HUBSINK_LOCAL_DATABASE_URL', env), 'postgres://u:flag@h/d');
  assert.equal(resolveSecret('database-url', undefined, undefined, 'HUBSINK_LOCAL_DATABASE_URL', env), 'postgres://u:from-env@h/d');
  assert.equal(resolveSecret('database-url', undefined, undefined, 'HUBSINK_LOCAL_DATABASE_URL', {}), undefined);
  assert.throws(() => resolveSecret('database-url', 'x', file, 'E', {}), (e: unknown) => e instanceof UsageError && /only one of --database-url and --database-url-file/.test(e.message));
  assert.throws(() => resolveSecret('key', undefined, path.join(dir ?? '', 'missing'), 'E', {}), (e: unknown) => e instanceof UsageError && /ENOENT/.test(e.message));
  const empty = path.join(dir, 'empty');
  await writeFile(empty, '\n');
  assert.throws(() => resolveSecret('key', undefined, empty, 'E', {}), /the file is empty/);
});
