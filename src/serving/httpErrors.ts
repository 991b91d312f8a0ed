/**
 * The HTTP functions' one mapping from a kind of error (src/errors.ts) to a response. Handlers
 * throw or return errors of a kind; `errorResponse` picks the status from `HTTP_STATUS` and says
 * only what is safe to say: the message of one of our errors (which names a parameter or the fix),
 * never the text of an unexpected one, which may quote SQL or a server and goes to the log instead.
 */
import type { HttpResponseInit } from '@azure/functions';
import { HubsinkError, UnavailableError, errorKind, type ErrorKind } from '../errors.js';

/** The one place where a kind of error becomes an HTTP status (docs/design.md, "Errors"). */
export const HTTP_STATUS: Readonly<Record<ErrorKind, number>> = {
  usage: 400,
  // Not configured is the service's fault, not the client's, and a deployment fixes it.
  config: 503,
  // Never raised by the serving functions today; a refusal because of the state found is a conflict.
  refused: 409,
  unavailable: 503,
  busy: 503,
  failed: 500,
  unauthenticated: 401,
  forbidden: 403,
};

/**
 * The query as the client sent it, parsed from the request's URL. Both adapters hand the validator
 * this one shape: the Functions host passes `query` over as a map (a repeated parameter arrives
 * joined with a comma), and the local adapter used to flatten it (the last value won), so a repeat
 * could only be refused as sent, every `from=` seen.
 */
export function requestQuery(request: { url: string; query: URLSearchParams }): URLSearchParams {
  try {
    return new URL(request.url).searchParams;
  } catch {
    return request.query;
  }
}

export const NO_STORE = { 'cache-control': 'no-store' } as const;

/** A query parameter at fault: 400 with the parameter named. */
export class ParameterError extends HubsinkError {
  readonly kind = 'usage';
  override name = 'ParameterError';
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(`${parameter}: ${message}`);
  }
}

/** The serving pool's statement_timeout ended the query (SQLSTATE 57014 query_canceled). */
export class QueryTimeoutError extends HubsinkError {
  readonly kind = 'unavailable';
  override name = 'QueryTimeoutError';
}


/**
 * The dependencies of a handler (configuration, pool) could not be built. What failed is logged;
 * the client learns only that the service cannot answer yet, since the cause may quote settings.
 */
export function notReady(cause: unknown): UnavailableError {
  return new UnavailableError('the service is not configured or cannot reach its database', { cause });
}

export const INTERNAL_ERROR_MESSAGE = 'internal error (logged)';

/** Pure: the status of what a handler threw or returned. */
export function httpStatusOf(err: unknown): number {
  return HTTP_STATUS[errorKind(err)];
}

/** Pure: the JSON error response for `err`: `{ error: { parameter?, message } }`, never cached. */
export function errorResponse(err: unknown): HttpResponseInit {
  const status = httpStatusOf(err);
  const message = err instanceof HubsinkError && status !== 500 ? err.message : INTERNAL_ERROR_MESSAGE;
  const parameter = err instanceof ParameterError ? { parameter: err.parameter } : {};
  return { status, headers: NO_STORE, jsonBody: { error: { ...parameter, message } } };
}
