/**
 * What the code reads from PostgreSQL's and Citus's errors, in one place (pure): the SQLSTATE codes
 * and classes it acts on, and the texts Citus puts under XX000 where PostgreSQL gives a code of its
 * own. classify.ts decides from these what a failure means for a batch; the write paths, the
 * serving layer and the CLI ask the predicates below instead of comparing codes themselves.
 *
 * It sits in pipeline/ beside classify.ts, not in db/: db imports pipeline, so a module here is one
 * every layer above may import without a cycle between folders.
 */

/** The SQLSTATEs the code names (PostgreSQL's Appendix A). */
export const SQLSTATE = {
  uniqueViolation: '23505',
  checkViolation: '23514',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  lockNotAvailable: '55P03',
  queryCanceled: '57014',
  tooManyConnections: '53300',
  undefinedTable: '42P01',
  invalidPassword: '28P01',
  invalidAuthorization: '28000',
  invalidCatalogName: '3D000',
  /** internal_error: also where Citus reports what PostgreSQL would give a code of its own. */
  internalError: 'XX000',
} as const;

/**
 * Citus's COPY path reports row-level refusals under XX000 instead of their own SQLSTATE: a unique
 * violation, and a row that finds no partition (23514 on the INSERT path).
 */
const CITUS_DUPLICATE_KEY = /duplicate key value violates unique constraint/i;
const CITUS_NO_PARTITION = /no partition of relation .* found for row/i;
export const CITUS_ROW_REFUSALS: readonly RegExp[] = [CITUS_DUPLICATE_KEY, CITUS_NO_PARTITION];

/**
 * Citus surfaces worker connectivity problems with these texts under XX000; with tenants spread
 * over every worker, all batches meet them alike.
 */
export const CITUS_WORKER_UNREACHABLE: readonly RegExp[] = [/connection to the remote node .* failed/i, /could not establish any connections to the node/i];

/** 23514 is also a CHECK violation (type length, say); only this text means a missing partition. */
const NO_PARTITION = /no partition of relation/i;

/** A code shaped like a SQLSTATE (five digits or capitals), as opposed to a Node error code. */
export function isSqlStateCode(code: string): boolean {
  return /^[0-9A-Z]{5}$/.test(code);
}

export function sqlState(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string' && isSqlStateCode(code)) return code;
  }
  return undefined;
}

function messageOf(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'message' in err) {
    const m = (err as { message: unknown }).message;
    if (typeof m === 'string') return m;
  }
  return '';
}

/**
 * Nothing gets through: connection exceptions (08), operator intervention (57P0x: shutdown, cannot
 * connect now), too many connections, authentication (28: a rotated password or token).
 */
export function isUnreachableState(state: string): boolean {
  const cls = state.slice(0, 2);
  return cls === '08' || state.startsWith('57P0') || state === SQLSTATE.tooManyConnections || cls === '28';
}

/** This statement only: out of resources (53), statement or lock timeout, serialization failure, deadlock. */
export function isTransientState(state: string): boolean {
  return (
    state.slice(0, 2) === '53' ||
    state === SQLSTATE.queryCanceled ||
    state === SQLSTATE.lockNotAvailable ||
    state === SQLSTATE.serializationFailure ||
    state === SQLSTATE.deadlockDetected
  );
}

/** Data exceptions (22) and integrity violations (23): the fault of the rows that caused them. */
export function isRowRefusalState(state: string): boolean {
  const cls = state.slice(0, 2);
  return cls === '22' || cls === '23';
}

/** XX000 with a text of a row-level refusal (Citus's COPY path). */
export function isCitusRowRefusal(err: unknown): boolean {
  const m = messageOf(err);
  return sqlState(err) === SQLSTATE.internalError && CITUS_ROW_REFUSALS.some((re) => re.test(m));
}

/**
 * The statement does not fit the schema or the server, whatever its rows: syntax error or access
 * rule violation (42: missing table, privileges), invalid schema name (3F), feature not supported (0A).
 */
export function isStatementUnfit(err: unknown): boolean {
  return /^(42|3F|0A)/.test(sqlState(err) ?? '');
}

/** A code (SQLSTATE or not) of a server that cannot be reached or signed in to: classes 08, 28 and 3D. */
export function isConnectOrSignInState(code: string): boolean {
  return /^(08|28|3D)/.test(code);
}

/** A key that exists already. Citus reports it from its COPY path as XX000 with the same text. */
export function isUniqueViolation(err: unknown): boolean {
  const state = sqlState(err);
  return state === SQLSTATE.uniqueViolation || (state === SQLSTATE.internalError && err instanceof Error && CITUS_DUPLICATE_KEY.test(err.message));
}

/** XX000 for a row that found no partition: how Citus's COPY path reports PostgreSQL's 23514. */
export function isCitusNoPartition(err: unknown): boolean {
  return sqlState(err) === SQLSTATE.internalError && CITUS_NO_PARTITION.test(messageOf(err));
}

/** A row that found no partition, from the upsert (23514) or Citus's COPY path (XX000). */
export function isMissingPartition(err: unknown): boolean {
  const state = sqlState(err);
  return (state === SQLSTATE.checkViolation || state === SQLSTATE.internalError) && err instanceof Error && NO_PARTITION.test(err.message);
}

/** 57014 query_canceled, what statement_timeout raises. */
export function isStatementTimeout(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === SQLSTATE.queryCanceled;
}

/** 42P01 undefined_table: the schema was not migrated that far. */
export function isUndefinedTable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === SQLSTATE.undefinedTable;
}

/** 28P01 invalid_password or 28000 invalid_authorization_specification: a sign-in refused. */
export function isSignInRefused(code: unknown): boolean {
  return code === SQLSTATE.invalidPassword || code === SQLSTATE.invalidAuthorization;
}
