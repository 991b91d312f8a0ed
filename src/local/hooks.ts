/** Keeps a module's import from installing process signal and exit hooks (see embedded.ts for why). */
const HOOKED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message', 'exit'] as const;

type Listener = (...args: unknown[]) => void;

/** Runs `load` and removes every process listener of HOOKED that it added. */
export async function withoutNewProcessHooks<T>(load: () => Promise<T>): Promise<T> {
  const before = new Map<string, Listener[]>(HOOKED.map((e) => [e, process.listeners(e as NodeJS.Signals) as Listener[]]));
  try {
    return await load();
  } finally {
    for (const e of HOOKED) {
      const old = before.get(e) ?? [];
      for (const l of process.listeners(e as NodeJS.Signals) as Listener[]) {
        if (!old.includes(l)) process.removeListener(e, l);
      }
    }
  }
}
