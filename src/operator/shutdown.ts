/**
 * Shutdown of the long-running commands (`run`, `local`, `generate`): graceful on SIGINT/SIGTERM,
 * with a hard bound.
 */
import type { Logger } from './log.js';

/**
 * Resolves when SIGINT or SIGTERM arrives (or `signal` aborts). A second signal while shutting down
 * exits at once with 130; if the shutdown itself takes longer than `hardLimitMs`, the process exits
 * with 1 so nothing hangs forever.
 */
export function waitForShutdown(opts: { log: Logger; hardLimitMs: number; signal?: AbortSignal }): Promise<string> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = (name: string): void => {
      if (received) {
        opts.log('warn', `${name} again: exiting now`);
        process.exit(130);
      }
      received = true;
      opts.log('info', `${name}: shutting down (again to force)`);
      setTimeout(() => {
        opts.log('error', `shutdown took longer than ${opts.hardLimitMs} ms; exiting`);
        process.exit(1);
      }, opts.hardLimitMs).unref();
      resolve(name);
    };
    process.on('SIGINT', () => onSignal('SIGINT'));
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    const sig = opts.signal;
    if (sig) {
      const onAbort = (): void => onSignal(typeof sig.reason === 'string' ? sig.reason : 'stop requested');
      if (sig.aborted) onAbort();
      else sig.addEventListener('abort', onAbort, { once: true });
    }
  });
}

/**
 * Called once everything was closed in order. The Event Hubs SDK can leave a token-renewal timer
 * behind when a partition receiver is closed while it is still connecting (seen after ownership
 * moved to another instance), which would keep the process alive for an hour. The timer here is
 * unref'd: when nothing else is left, the process ends on its own before it fires.
 */
export function exitSoonAfterShutdown(graceMs = 2000): void {
  setTimeout(() => process.exit(), graceMs).unref();
}
