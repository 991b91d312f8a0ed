/**
 * Start-up failures of the embedded server are reported with what failed, not as a bare rejection
 * (the package rejects with no reason when the server exits during start-up).
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadEmbeddedPostgres } from '../../src/local/embedded.js';
import { EmbeddedPgError } from '../../src/local/reach.js';

test('embedded PostgreSQL on a port already taken: EmbeddedPgError naming the port and the server\'s reason', async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const addr = blocker.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-pg-taken-'));
  try {
    const start = await loadEmbeddedPostgres();
    await assert.rejects(start({ dataDir: path.join(dir, 'data'), port }), (err: unknown) => {
      assert.ok(err instanceof EmbeddedPgError, String(err));
      assert.match(err.message, new RegExp(`^embedded PostgreSQL start failed on port ${port}: .*could not (bind|create listen socket)`, 's'));
      return true;
    });
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
    await rm(dir, { recursive: true, force: true });
  }
});
