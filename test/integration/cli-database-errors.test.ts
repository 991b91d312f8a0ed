/**
 * A database that cannot be reached, met by commands that talk only to it: the message names the
 * database and the setting that fixes it (never Event Hubs or storage), exit 1.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/local/ports.js';

const BIN = fileURLToPath(new URL('../../bin/hubsink.js', import.meta.url));

function hubsink(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

test('rollup --status, dlq list and migrate against a closed port: the database is named with DATABASE_URL, exit 1', async () => {
  const port = await freePort();
  const env = { DATABASE_URL: `postgres://u:secret@127.0.0.1:${port}/db` };
  for (const args of [['rollup', '--status'], ['dlq', 'list'], ['migrate']]) {
    const r = await hubsink(args, env);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`cannot use the database: connection refused at 127\\.0\\.0\\.1:${port}; check DATABASE_URL`), args.join(' '));
    assert.doesNotMatch(r.stderr, /Event Hubs|blob storage|secret/, args.join(' '));
  }
});
