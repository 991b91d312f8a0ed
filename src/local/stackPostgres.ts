/**
 * The local stack's PostgreSQL: embedded (data kept between runs) unless a database URL is given.
 */
import { createHash } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from '../operator/log.js';
import { loadEmbeddedPostgres } from './embedded.js';
import { preferredOrFreePort } from './ports.js';
import { blockedForPostgresUser } from './reach.js';
import type { StopList } from './stackStops.js';

/**
 * As root, embedded PostgreSQL runs as the `postgres` user, which must be able to walk down to its
 * data folder. initdb's own error ("Permission denied") does not say what to do; this does.
 */
export async function checkReachableByPostgresUser(dataDir: string): Promise<void> {
  const blocked = await blockedForPostgresUser(path.dirname(dataDir));
  if (blocked) {
    throw new Error(
      `as root, PostgreSQL runs as the "postgres" user, which cannot enter ${blocked.dir} (mode ${blocked.mode}); ` +
        'pick a --data-dir below a folder others may enter (e.g. /tmp/hubsink), run as a normal user, or use --database-url',
    );
  }
}

/**
 * Where the embedded server keeps its data. Normally `<data-dir>/pg`. As root with a data folder the
 * `postgres` user cannot reach (a checkout in root's mode-700 home, or in a mktemp folder), a
 * folder of the system temp dir named after the data folder instead, so `npm start` works from
 * any checkout and keeps its data between runs. That folder is made by root; one that exists and
 * belongs to another user is refused rather than trusted.
 */
export async function embeddedDataFolder(dataDir: string, isRoot = process.getuid?.() === 0, tempRoot = tmpdir()): Promise<{ dir: string; movedBecause?: string }> {
  const wanted = path.join(dataDir, 'pg');
  // The data folder itself is opened up (mode 755) when the server starts; what lies above it is not ours to change.
  const blocked = await blockedForPostgresUser(path.dirname(dataDir), isRoot);
  if (!blocked) return { dir: wanted };
  const parent = path.join(tempRoot, `hubsink-local-${createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 12)}`);
  await mkdir(parent, { recursive: true, mode: 0o755 });
  const st = await stat(parent);
  if (st.uid !== (process.getuid?.() ?? st.uid)) throw new Error(`${parent} exists and belongs to another user; pick a --data-dir below a folder others may enter, or use --database-url`);
  return { dir: path.join(parent, 'pg'), movedBecause: `the postgres user cannot enter ${blocked.dir} (mode ${blocked.mode})` };
}

export interface StackPostgres {
  /** With its password: print it only through redactSecrets. */
  databaseUrl: string;
  /** The embedded server's data folder (null with an external database). */
  pgDataDir: string | null;
  /** The embedded server's password file (mode 0600), when the stack runs one. */
  pgPasswordFile: string | null;
}

export async function startStackPostgres(opts: { dataDir: string; databaseUrl?: string; port: number; log: Logger }, stops: StopList): Promise<StackPostgres> {
  if (opts.databaseUrl) return { databaseUrl: opts.databaseUrl, pgDataDir: null, pgPasswordFile: null };
  const log = opts.log;
  const folder = await embeddedDataFolder(opts.dataDir);
  const pgDataDir = folder.dir;
  if (folder.movedBecause) log('warn', `PostgreSQL data kept in ${pgDataDir}, not below ${opts.dataDir}: as root it runs as "postgres", and ${folder.movedBecause}`);
  await checkReachableByPostgresUser(path.dirname(pgDataDir));
  log('info', `starting embedded PostgreSQL (data in ${pgDataDir})`);
  const startEmbeddedPostgres = await loadEmbeddedPostgres();
  const port = await preferredOrFreePort(opts.port);
  const pgServer = await startEmbeddedPostgres({ dataDir: pgDataDir, port, persistent: true });
  stops.add('PostgreSQL', 30_000, () => pgServer.stop());
  return { databaseUrl: pgServer.url, pgDataDir, pgPasswordFile: pgServer.passwordFile };
}
