/**
 * What the local stack started, stopped in reverse order. Each stop is bounded: shutdown must not
 * hang on one piece.
 */
import { describeError } from '../pipeline/classify.js';
import type { Logger } from '../operator/log.js';

/** Runs `fn`, giving up (with a log line) after `ms`. */
async function bounded(what: string, ms: number, log: Logger, fn: () => Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  try {
    const r = await Promise.race([fn().then(() => 'done' as const), timeout]);
    if (r === 'timeout') log('warn', `stopping ${what} took longer than ${ms} ms; going on`);
  } catch (err) {
    log('warn', `stopping ${what}: ${describeError(err)}`);
  } finally {
    clearTimeout(timer);
  }
}

export class StopList {
  private readonly stops: { what: string; ms: number; fn: () => Promise<unknown> }[] = [];

  constructor(private readonly log: Logger) {}

  /** `fn` runs at the stop, before everything added earlier; given up after `ms`. */
  add(what: string, ms: number, fn: () => Promise<unknown>): void {
    this.stops.push({ what, ms, fn });
  }

  async stopAll(): Promise<void> {
    while (this.stops.length > 0) {
      const s = this.stops.pop();
      if (s) await bounded(s.what, s.ms, this.log, s.fn);
    }
  }
}
