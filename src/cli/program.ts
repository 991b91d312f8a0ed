/**
 * Shared CLI plumbing. Commands live in their own modules and register themselves here; they get
 * configuration through `loadConfig` (parsed once per process) and throw errors of a kind
 * (src/errors.ts); `runCli` turns the kind into the exit status, in the one table `EXIT_CODES`:
 * 2 for bad arguments or settings, 1 when the work failed, as Unix tools do.
 */
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { escapeControls, redactSecrets } from '../operator/terminal.js';
import { errorKind, HubsinkError, type ErrorKind } from '../errors.js';
import { explainServiceError } from '../hubs/explain.js';
import { loadConfig } from '../config.js';
import { explainDatabaseFailure } from '../doctor/database.js';

export class UsageError extends HubsinkError {
  readonly kind = 'usage';
  override name = 'UsageError';
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** The one place where a kind of error becomes an exit status (docs/design.md, "Errors"). */
export const EXIT_CODES: Readonly<Record<ErrorKind, number>> = {
  usage: EXIT_USAGE,
  config: EXIT_USAGE,
  refused: EXIT_FAILURE,
  unavailable: EXIT_FAILURE,
  busy: EXIT_FAILURE,
  failed: EXIT_FAILURE,
  // The CLI talks to the database with its own credentials; these arise only from the HTTP side.
  unauthenticated: EXIT_FAILURE,
  forbidden: EXIT_FAILURE,
};

/** Pure: the exit status for what a command threw (commander's own errors included). */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  return EXIT_CODES[errorKind(err)];
}

/**
 * For a command that has printed its whole report (a summary, a table) but whose work did not all
 * succeed: the exit status of `kind`, with nothing more said. A later, milder call does not lower it.
 */
export function finishWith(kind: ErrorKind): void {
  const prior = typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  process.exitCode = Math.max(prior, EXIT_CODES[kind]);
}

/** Parses a positive integer option, or fails with a usage error naming the option. */
export function parsePositiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError('expected a positive whole number');
  }
  return Number(value);
}

export function parseNonNegativeInt(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError('expected a whole number');
  return Number(value);
}

/** A TCP port; 0 asks for any free port. */
export function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError('expected a TCP port from 0 (any free port) to 65535');
  return n;
}

export function parseSeconds(value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value) || !Number.isFinite(Number(value))) throw new InvalidArgumentError('expected a number of seconds');
  return Number(value);
}

export function parseProbability(value: string): number {
  const n = Number(value);
  if (!/^(\d+\.?\d*|\.\d+)(e-?\d+)?$/i.test(value.trim()) || !(n >= 0 && n < 1)) throw new InvalidArgumentError('expected a probability such as 0.01 (at least 0, below 1)');
  return n;
}

/** ISO-8601 timestamp, or a relative age such as 15m, 2h, 3d ("that long ago"). */
export function parseTime(value: string, now: () => Date = () => new Date()): Date {
  const rel = /^(\d+)(s|m|h|d)$/.exec(value);
  if (rel) {
    const n = Number(rel[1]);
    const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    const d = new Date(now().getTime() - n * unit);
    if (Number.isNaN(d.getTime())) throw new InvalidArgumentError(`${value} is further back than a date can be`);
    return d;
  }
  const d = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(d.getTime())) {
    throw new InvalidArgumentError('expected an ISO-8601 time (2026-01-31T12:00:00Z) or an age such as 30m, 6h, 2d');
  }
  return d;
}

/** Refuses a value of `--flag` that is not an Event Hubs connection string (before anything connects). */
export function checkEventHubsConnection(flag: string, value: string): void {
  if (!/(^|;)\s*Endpoint\s*=\s*sb:\/\//i.test(value)) throw new UsageError(`--${flag}: not an Event Hubs connection string (Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...)`);
}

/** The generator's shares of re-sent and malformed events leave room for good ones. */
export function checkGeneratorShares(opts: { duplicates: number; malformed: number }): void {
  if (opts.duplicates + opts.malformed >= 1) throw new UsageError('--duplicates plus --malformed must stay below 1');
}

/**
 * A secret given as `--flag VALUE`, `--flag-file PATH`, or in the environment variable `envName`.
 * A command line is visible to every local user (ps) and kept in shell history; the file and the
 * environment are not. The file holds the secret alone (a trailing newline is ignored). Giving both
 * the flag and the file is an error; the flag or file wins over the environment.
 */
export function resolveSecret(flag: string, value: string | undefined, file: string | undefined, envName: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (value !== undefined && file !== undefined) throw new UsageError(`give only one of --${flag} and --${flag}-file`);
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`--${flag}-file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const secret = text.replace(/\r?\n$/, '');
    if (secret.trim() === '') throw new UsageError(`--${flag}-file ${file}: the file is empty`);
    return secret;
  }
  if (value !== undefined) return value;
  const fromEnv = env[envName];
  return fromEnv !== undefined && fromEnv.trim() !== '' ? fromEnv : undefined;
}

/** Applies exit codes and stream conventions to a command tree. */
export function configureCommand(cmd: Command): Command {
  return cmd
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
}

/**
 * Pure: the whole error for HUBSINK_DEBUG. SDK and URL errors carry requests, options and inputs
 * (a connection string among them), so it is redacted and escaped like everything else a person reads.
 */
export function debugDump(err: unknown): string {
  return escapeControls(redactSecrets(inspect(err, { depth: 6, breakLength: 120 })), { multiline: true });
}

/** The database's connection or sign-in failure named as such, when the settings name a database. */
function databaseFailure(err: unknown): string | undefined {
  let db;
  try {
    db = loadConfig().database;
  } catch {
    return undefined;
  }
  return db ? explainDatabaseFailure(err, db) : undefined;
}

/** Our message, and when its cause is the database failing to connect, what fixes that (once). */
function withDatabaseFix(err: HubsinkError): string {
  if (/DATABASE_URL|PGHOST/.test(err.message)) return err.message;
  const db = databaseFailure(err.cause);
  return db ? `${err.message} (${db})` : err.message;
}

export async function runCli(program: Command, argv: string[]): Promise<number> {
  const applyAll = (c: Command): void => {
    configureCommand(c);
    c.commands.forEach(applyAll);
  };
  applyAll(program);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (err) {
    // Commander has printed its own message (and --help and --version arrive here, with 0).
    if (err instanceof CommanderError) return exitCodeOf(err);
    // Messages may quote settings or what a server said: escaped and with secrets redacted.
    // Anything not ours (an SDK's AggregateError has no message of its own) is described by its
    // innermost cause, explained when it came from Event Hubs or storage: never an empty line.
    const text = err instanceof HubsinkError && err.message.trim() !== '' ? withDatabaseFix(err) : (databaseFailure(err) ?? explainServiceError(err).message);
    process.stderr.write(`hubsink: ${escapeControls(redactSecrets(text), { multiline: true })}\n`);
    const code = exitCodeOf(err);
    // A usage or settings message is the whole story; for a failure HUBSINK_DEBUG shows the rest.
    if (process.env.HUBSINK_DEBUG && code !== EXIT_USAGE) process.stderr.write(`${debugDump(err)}\n`);
    return code;
  }
}
