/**
 * Error classification (pure). Decides whether a database error is worth retrying (transient),
 * is the fault of particular rows (rejected: isolate them by bisection and dead-letter them), or is
 * a problem with the deployment itself (fatal: schema missing, permissions, bugs), which no amount
 * of retrying the same rows in-process or isolating them fixes.
 */
export type ErrorClass = 'transient' | 'rejected' | 'fatal';

/** Node socket errors that mean the server is unreachable or went away. */
const TRANSIENT_NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

const TRANSIENT_MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /connection timeout/i,
  /Client has encountered a connection error/i,
  /server closed the connection unexpectedly/i,
  /Connection terminated unexpectedly/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
  // Citus surfaces worker connectivity problems with these texts under XX000.
  /connection to the remote node .* failed/i,
  /could not establish any connections to the node/i,
];

/** `duplicate key` under XX000 is how Citus reports unique violations on its COPY path (notes/citus.md). */
const CITUS_DUPLICATE = /duplicate key value violates unique constraint/i;

export function sqlState(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

function nodeCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) return code;
  }
  return undefined;
}

function message(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : '';
}

export function classifyError(err: unknown): ErrorClass {
  const state = sqlState(err);
  if (state) {
    const cls = state.slice(0, 2);
    // Connection exceptions, insufficient resources, operator intervention (shutdown, cannot connect now).
    if (cls === '08' || cls === '53' || state.startsWith('57P0') || state === '57014') return 'transient';
    // Serialization failure, deadlock.
    if (state === '40001' || state === '40P01') return 'transient';
    // Data exceptions and integrity violations belong to the rows that caused them.
    if (cls === '22' || cls === '23') return 'rejected';
    if (state === 'XX000') {
      if (CITUS_DUPLICATE.test(message(err))) return 'rejected';
      if (TRANSIENT_MESSAGES.some((re) => re.test(message(err)))) return 'transient';
    }
    return 'fatal';
  }
  const code = nodeCode(err);
  if (code && TRANSIENT_NET_CODES.has(code)) return 'transient';
  if (TRANSIENT_MESSAGES.some((re) => re.test(message(err)))) return 'transient';
  return 'fatal';
}

/** A short, single-line description for logs and dead-letter records. */
export function describeError(err: unknown): string {
  const state = sqlState(err) ?? nodeCode(err);
  const msg = message(err) || String(err);
  const text = state ? `${state} ${msg}` : msg;
  return text.replace(/\s+/g, ' ').slice(0, 2000);
}
