/**
 * The one error base of hubsink. An error of ours says, by its `kind`, what kind of failure it is;
 * each boundary maps the kind once: the CLI to an exit status (`EXIT_CODES` in src/cli/program.ts),
 * the HTTP functions to a status (`HTTP_STATUS` in src/serving/httpErrors.ts). Code in between never
 * decides an exit status or an HTTP status; it throws an error of the right kind.
 *
 * This module sits at the config level, so every layer may import it. The kinds (docs/design.md,
 * "Errors"):
 *
 * | kind          | meaning                                                                  | CLI | HTTP |
 * |---------------|--------------------------------------------------------------------------|-----|------|
 * | `usage`       | the caller asked for something malformed or contradictory (arguments,   | 2   | 400  |
 * |               | query parameters, an input file's column mapping)                       |     |      |
 * | `config`      | settings (environment, app settings) missing or invalid                  | 2   | 503  |
 * | `refused`     | understood, but declined because of the state found (a consumer still   | 1   | 409  |
 * |               | running, a migration edited after it was applied); nothing was changed   |     |      |
 * | `unavailable` | something the work needs (database, hub, storage, the migrated schema)  | 1   | 503  |
 * |               | could not serve within its retry budget; try again later or set it up   |     |      |
 * | `busy`        | another run holds the lock; the next run tries again                     | 1   | 503  |
 * | `failed`      | the work failed; also what any error that is not ours counts as         | 1   | 500  |
 * | `unauthenticated` | no signed-in caller the app can believe (HUBSINK_ACCESS=entra)      | 1   | 401  |
 * | `forbidden`   | the caller is known, but not granted what it asked for                   | 1   | 403  |
 *
 * Unlike `classifyError` (src/pipeline/classify.ts), which decides what becomes of an event, a
 * kind decides only what a person or a client is told.
 */
export const ERROR_KINDS = ['usage', 'config', 'refused', 'unavailable', 'busy', 'failed', 'unauthenticated', 'forbidden'] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export abstract class HubsinkError extends Error {
  abstract readonly kind: ErrorKind;
}

/** The kind of any thrown value: ours say theirs; anything else is `failed`. */
export function errorKind(err: unknown): ErrorKind {
  return err instanceof HubsinkError ? err.kind : 'failed';
}

/** A refusal because of the state found; nothing was changed (see `refused` above). */
export class RefusedError extends HubsinkError {
  readonly kind = 'refused';
  override name = 'RefusedError';
}

/** Something the work needs cannot serve now (see `unavailable` above). */
export class UnavailableError extends HubsinkError {
  readonly kind = 'unavailable';
  override name = 'UnavailableError';
}

/** The work failed, and the message says how (see `failed` above). */
export class FailedError extends HubsinkError {
  readonly kind = 'failed';
  override name = 'FailedError';
}

/** No caller the app can believe signed in (see `unauthenticated` above). */
export class UnauthenticatedError extends HubsinkError {
  readonly kind = 'unauthenticated';
  override name = 'UnauthenticatedError';
}

/** The caller is known but not granted what it asked for (see `forbidden` above). */
export class ForbiddenError extends HubsinkError {
  readonly kind = 'forbidden';
  override name = 'ForbiddenError';
}
