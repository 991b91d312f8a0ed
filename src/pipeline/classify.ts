/**
 * Error classification (pure). Decides what a failure means for the batch that met it:
 *
 * - unavailable: the database cannot be reached at all (refused, reset, shut down, authentication
 *   that comes and goes). Every batch fails the same way, so nothing is dead-lettered: the caller
 *   keeps its checkpoint and retries in place until the database is back;
 * - transient: this statement failed, but the database serves others (deadlock, serialization,
 *   statement or lock timeout): retry it, and if it keeps failing dead-letter the rows as `transient`;
 * - rejected: the fault of particular rows: isolate them by bisection and dead-letter them;
 * - fatal: a problem with the deployment itself (schema missing, permissions, bugs), which no amount
 *   of retrying the same rows in-process or isolating them fixes.
 *
 * Errors arrive wrapped: Node's happy-eyeballs connect and @azure/core-amqp throw AggregateErrors
 * (often with no message of their own), and wrappers keep the original in `cause`. Both
 * classification and description look through them.
 */
import { HubsinkError } from '../errors.js';
import { CITUS_WORKER_UNREACHABLE, isCitusRowRefusal, isRowRefusalState, isTransientState, isUnreachableState, SQLSTATE, sqlState } from './pgErrors.js';

export type ErrorClass = 'unavailable' | 'transient' | 'rejected' | 'fatal';

/** Node socket errors that mean the server is unreachable or went away. */
const UNAVAILABLE_NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

const UNAVAILABLE_MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /connection timeout/i,
  /Client has encountered a connection error/i,
  /server closed the connection unexpectedly/i,
  /Connection terminated unexpectedly/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
  ...CITUS_WORKER_UNREACHABLE,
];

/** @azure/identity's errors: a token that could not be had now (Entra ID authentication). */
const IDENTITY_ERROR_NAMES = new Set(['CredentialUnavailableError', 'AuthenticationError', 'AggregateAuthenticationError']);

/**
 * Thrown by the write paths when the database stayed unreachable for the whole retry budget: the
 * batch must be retried later as a whole, never dead-lettered.
 */
export class DatabaseUnavailableError extends HubsinkError {
  readonly kind = 'unavailable';
  override name = 'DatabaseUnavailableError';
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
  if (typeof err === 'string') return err;
  if (typeof err === 'object' && err !== null && 'message' in err) {
    const m = (err as { message: unknown }).message;
    if (typeof m === 'string') return m;
  }
  return '';
}

function errorName(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'name' in err) {
    const n = (err as { name: unknown }).name;
    if (typeof n === 'string') return n;
  }
  return '';
}

/** The errors an error wraps: AggregateError members (and look-alikes), then its cause. */
export function innerErrors(err: unknown): unknown[] {
  if (typeof err !== 'object' || err === null) return [];
  const out: unknown[] = [];
  const errors = (err as { errors?: unknown }).errors;
  if (Array.isArray(errors)) out.push(...(errors as unknown[]));
  const cause = (err as { cause?: unknown }).cause;
  if (cause !== undefined && cause !== null) out.push(cause);
  return out;
}

/** The class an error has by itself, or undefined when nothing about it is recognised. */
function ownClass(err: unknown): ErrorClass | undefined {
  if (err instanceof DatabaseUnavailableError) return 'unavailable';
  const state = sqlState(err);
  if (state) {
    if (isUnreachableState(state)) return 'unavailable';
    if (isTransientState(state)) return 'transient';
    if (isRowRefusalState(state)) return 'rejected';
    if (state === SQLSTATE.internalError) {
      if (isCitusRowRefusal(err)) return 'rejected';
      if (UNAVAILABLE_MESSAGES.some((re) => re.test(message(err)))) return 'unavailable';
    }
    return 'fatal';
  }
  const code = nodeCode(err);
  if (code && UNAVAILABLE_NET_CODES.has(code)) return 'unavailable';
  if (IDENTITY_ERROR_NAMES.has(errorName(err))) return 'unavailable';
  if (UNAVAILABLE_MESSAGES.some((re) => re.test(message(err)))) return 'unavailable';
  return undefined;
}

const PRECEDENCE: readonly ErrorClass[] = ['unavailable', 'transient', 'rejected', 'fatal'];

export function classifyError(err: unknown): ErrorClass {
  const seen = new Set<unknown>();
  const visit = (e: unknown, depth: number): ErrorClass => {
    const own = ownClass(e);
    if (own) return own;
    if (depth >= 8 || seen.has(e)) return 'fatal';
    seen.add(e);
    // An unrecognised wrapper takes the most retryable class among what it wraps.
    const inner = innerErrors(e).map((x) => visit(x, depth + 1));
    return PRECEDENCE.find((c) => inner.includes(c)) ?? 'fatal';
  };
  return visit(err, 0);
}

function describeOne(err: unknown): string {
  const state = sqlState(err) ?? nodeCode(err);
  const msg = message(err);
  return state ? (msg ? `${state} ${msg}` : state) : msg;
}

/**
 * A short, single-line description for logs, dead-letter records and rethrown errors. Wrapped
 * errors are unwrapped: an AggregateError without a message is described by its members, and a
 * cause that says more than its wrapper is appended, so a failed batch always names its cause.
 */
export function describeError(err: unknown): string {
  const seen = new Set<unknown>();
  // '' when an error adds nothing (an empty wrapper, one already described).
  const visit = (e: unknown, depth: number): string => {
    if (depth >= 8 || seen.has(e)) return '';
    seen.add(e);
    const own = describeOne(e);
    const parts = [...new Set(innerErrors(e).map((x) => visit(x, depth + 1)))].filter((t) => t !== '' && !own.includes(t));
    if (parts.length === 0) return own;
    return own ? `${own}: ${parts.join('; ')}` : parts.join('; ');
  };
  let text = visit(err, 0);
  if (!text) text = err instanceof Error ? err.name : String(err);
  return text.replace(/\s+/g, ' ').slice(0, 2000);
}

/**
 * The error to rethrow to a host that records only `message`: the error itself when its message
 * already says what happened, else (an AggregateError with no message, say) an Error whose message
 * is describeError's and whose cause is the original.
 */
export function withDescribedMessage(err: unknown): unknown {
  if (err instanceof Error && err.message !== '' && !(err instanceof AggregateError)) return err;
  const described = new Error(describeError(err), { cause: err });
  if (err instanceof Error) described.name = err.name;
  return described;
}
