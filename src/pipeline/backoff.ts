/**
 * The one backoff of hubsink: the database writes (db/events.ts) and the standalone runner's batch
 * retries (runner/retry.ts) each pass their own base and cap. Pure, so jitter comes in as a number.
 */

export interface BackoffPolicy {
  /** The first delay's upper bound. */
  baseMs: number;
  /** No delay is longer. */
  capMs: number;
}

/** Largest exponent worth computing: 2 ** 1023 is finite, and any base times it reaches any cap. */
const MAX_EXPONENT = 1023;
/** setTimeout's largest delay: a longer one fires at once. */
export const MAX_DELAY_MS = 2 ** 31 - 1;

/** A setting as a delay setTimeout honours: NaN and non-positive give 0, anything above MAX_DELAY_MS gives it. */
function asDelay(ms: number): number {
  return ms > 0 ? Math.min(ms, MAX_DELAY_MS) : 0;
}

/**
 * Pure: the delay before retry number `attempt` (1-based): `baseMs * 2 ** (attempt − 1)` capped at
 * `capMs`, of which the upper half is jittered by `random` in [0, 1]. Total, since it runs inside
 * retry loops that must not throw: an attempt below 1 (or NaN) counts as the first, a huge one gets
 * the cap, a random outside [0, 1] is clamped (NaN counts as 0), and base and cap are read as
 * setTimeout delays (asDelay). The result is a whole number of milliseconds in [0, MAX_DELAY_MS].
 */
export function backoffDelay(attempt: number, random: number, policy: BackoffPolicy): number {
  const base = asDelay(policy.baseMs);
  const cap = asDelay(policy.capMs);
  const exponent = attempt > 1 ? Math.min(Math.floor(attempt) - 1, MAX_EXPONENT) : 0;
  const exp = Math.min(cap, base * 2 ** exponent);
  const jitter = random > 0 ? Math.min(random, 1) : 0;
  return Math.round(exp / 2 + (exp / 2) * jitter);
}
