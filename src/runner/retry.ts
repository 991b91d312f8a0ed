/**
 * Retrying a batch in the standalone runner. The Functions host holds a checkpoint back only while a
 * retry policy re-invokes the batch; the runner does the same in-process: a batch that could not be
 * written or dead-lettered is tried again, with backoff, for as long as it takes. Skipping it would
 * let the next batch's checkpoint move past events nobody has (docs/design.md, guarantee 1).
 */

import { backoffDelay, type BackoffPolicy } from '../pipeline/backoff.js';

/** Backoff between attempts at one batch: longer than a statement's, as the whole batch failed. */
export const BATCH_RETRY_BACKOFF: BackoffPolicy = { baseMs: 500, capMs: 30_000 };

export interface RetryForeverOptions {
  /** Stops retrying (not the attempt in progress): the batch is then abandoned unacknowledged. */
  signal: AbortSignal;
  onFailure: (attempt: number, err: unknown, delayMs: number) => void;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
  baseMs?: number;
  capMs?: number;
}

export type RetryOutcome<T> = { ok: true; value: T; attempts: number } | { ok: false; attempts: number; error: unknown };

/** Sleeps `ms`, or less when the signal aborts first. Never rejects. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs `attempt` until it resolves, or until the signal aborts (shutdown, or the partition went to
 * another owner). Each attempt is bounded by the callee (ingestBatch bounds its own transient
 * retries); the total is not, on purpose.
 */
export async function retryForever<T>(attempt: () => Promise<T>, opts: RetryForeverOptions): Promise<RetryOutcome<T>> {
  const sleep = opts.sleep ?? abortableSleep;
  const random = opts.random ?? Math.random;
  let lastError: unknown;
  for (let n = 1; ; n++) {
    if (opts.signal.aborted) return { ok: false, attempts: n - 1, error: lastError };
    try {
      return { ok: true, value: await attempt(), attempts: n };
    } catch (err) {
      lastError = err;
      const delay = backoffDelay(n, random(), { baseMs: opts.baseMs ?? BATCH_RETRY_BACKOFF.baseMs, capMs: opts.capMs ?? BATCH_RETRY_BACKOFF.capMs });
      opts.onFailure(n, err, delay);
      if (opts.signal.aborted) return { ok: false, attempts: n, error: err };
      await sleep(delay, opts.signal);
    }
  }
}
