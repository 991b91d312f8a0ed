/**
 * The CLI's one mapping from a kind of error to an exit status (src/cli/program.ts, EXIT_CODES),
 * and the kind every error class of the app declares. Integration tests (cli-usage, db-cli,
 * rollups-cli, ...) check the statuses of whole commands; this checks the table and its inputs.
 */
import { afterEach, beforeEach, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { ConfigError } from '../../src/config.js';
import { ERROR_KINDS, errorKind, FailedError, HubsinkError, RefusedError, UnavailableError, type ErrorKind } from '../../src/errors.js';
import { EXIT_CODES, exitCodeOf, finishWith, runCli, UsageError } from '../../src/cli/program.js';
import { MigrationError } from '../../src/db/migrate.js';
import { RebuildRangeError, RollupBusyError } from '../../src/rollups/run.js';
import { RollupSetupError } from '../../src/rollups/sketches.js';
import { ReplayUsageError } from '../../src/deadLetters/replayHub.js';
import { CsvMappingError } from '../../src/import/csvMap.js';
import { SourceError } from '../../src/import/sources.js';
import { ImportStopped } from '../../src/import/importer.js';
import { EmbeddedPgError } from '../../src/local/reach.js';
import { DatabaseUnavailableError } from '../../src/pipeline/classify.js';
import { TransientDatabaseError } from '../../src/deadLetters/process.js';
import { DeadLetterSendError, OversizeDeadLetterError } from '../../src/hubs/deadLetterSink.js';
import { ParameterError, QueryTimeoutError } from '../../src/serving/httpErrors.js';

/** Every error class of the app, with the kind it must have and the exit status that follows. */
const CLASSES: [string, HubsinkError, ErrorKind, number][] = [
  ['UsageError', new UsageError('x'), 'usage', 2],
  ['ConfigError', new ConfigError(['DATABASE_URL is not set']), 'config', 2],
  ['RebuildRangeError', new RebuildRangeError('x'), 'usage', 2],
  ['ReplayUsageError', new ReplayUsageError('x'), 'usage', 2],
  ['CsvMappingError', new CsvMappingError('x'), 'usage', 2],
  ['SourceError', new SourceError('x'), 'usage', 2],
  ['ParameterError', new ParameterError('from', 'x'), 'usage', 2],
  ['RefusedError', new RefusedError('x'), 'refused', 1],
  ['RollupSetupError', new RollupSetupError('x'), 'unavailable', 1],
  ['EmbeddedPgError', new EmbeddedPgError('x'), 'unavailable', 1],
  ['DatabaseUnavailableError', new DatabaseUnavailableError('x'), 'unavailable', 1],
  ['TransientDatabaseError', new TransientDatabaseError('x', 3), 'unavailable', 1],
  ['DeadLetterSendError', new DeadLetterSendError('x'), 'unavailable', 1],
  ['UnavailableError', new UnavailableError('x'), 'unavailable', 1],
  ['QueryTimeoutError', new QueryTimeoutError('x'), 'unavailable', 1],
  ['RollupBusyError', new RollupBusyError('x'), 'busy', 1],
  ['MigrationError', new MigrationError('x'), 'failed', 1],
  ['ImportStopped', new ImportStopped('x'), 'failed', 1],
  ['OversizeDeadLetterError', new OversizeDeadLetterError('x'), 'failed', 1],
  ['FailedError', new FailedError('x'), 'failed', 1],
];

describe('error kinds → exit status', () => {
  test('the table: 2 for bad arguments or settings, 1 for every other failure', () => {
    assert.deepEqual(EXIT_CODES, { usage: 2, config: 2, refused: 1, unavailable: 1, busy: 1, failed: 1, unauthenticated: 1, forbidden: 1 });
    assert.deepEqual(Object.keys(EXIT_CODES).sort(), [...ERROR_KINDS].sort());
  });

  for (const [name, err, kind, code] of CLASSES) {
    test(`${name}: kind ${kind}, exit ${code}, and still an Error with its own name`, () => {
      assert.ok(err instanceof Error && err instanceof HubsinkError);
      assert.equal(err.name, name);
      assert.equal(err.kind, kind);
      assert.equal(errorKind(err), kind);
      assert.equal(exitCodeOf(err), code);
    });
  }

  test('what is not ours counts as failed (1): a plain Error, a pg error, a thrown string', () => {
    assert.equal(errorKind(new Error('boom')), 'failed');
    assert.equal(exitCodeOf(Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' })), 1);
    assert.equal(exitCodeOf('a string'), 1);
    assert.equal(exitCodeOf(undefined), 1);
  });
});

describe('runCli applies the table to what a command throws', () => {
  let written: string[];
  let restore: () => void;
  beforeEach(() => {
    written = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string | Uint8Array) => {
      written.push(String(s));
      return true;
    }) as typeof process.stderr.write;
    restore = () => {
      process.stderr.write = orig;
    };
    process.exitCode = undefined;
  });
  afterEach(() => {
    restore();
    process.exitCode = undefined;
  });

  const programThrowing = (err: unknown): Command =>
    new Command('hubsink').addCommand(
      new Command('boom').action(() => {
        throw err;
      }),
    );

  for (const [name, err, , code] of CLASSES) {
    test(`${name} thrown by a command: exit ${code}, its message on stderr`, async () => {
      const r = await runCli(programThrowing(err), ['node', 'hubsink', 'boom']);
      assert.equal(r, code);
      assert.equal(written.join(''), `hubsink: ${err.message}\n`);
    });
  }

  test('a bad argument commander finds: 2; --help: 0', async () => {
    const p = (): Command => new Command('hubsink').addCommand(new Command('boom').option('--n <n>').action(() => undefined));
    assert.equal(await runCli(p(), ['node', 'hubsink', 'boom', '--frob']), 2);
    assert.match(written.join(''), /unknown option '--frob'/);
    const out = process.stdout.write.bind(process.stdout);
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      assert.equal(await runCli(p(), ['node', 'hubsink', 'boom', '--help']), 0);
    } finally {
      process.stdout.write = out;
    }
  });

  test('a command that finishes its report with finishWith("failed") exits 1; a milder kind later does not lower it', async () => {
    const p = new Command('hubsink').addCommand(
      new Command('report').action(() => {
        finishWith('failed');
        finishWith('busy');
      }),
    );
    assert.equal(await runCli(p, ['node', 'hubsink', 'report']), 1);
    assert.equal(written.join(''), '');
    process.exitCode = undefined;
    const q = new Command('hubsink').addCommand(
      new Command('report').action(() => {
        finishWith('usage');
        finishWith('failed');
      }),
    );
    assert.equal(await runCli(q, ['node', 'hubsink', 'report']), 2);
  });

  test('secrets in a message are redacted, whatever the kind', async () => {
    const r = await runCli(programThrowing(new UnavailableError('cannot reach postgres://u:hunter2@db:5432/x')), ['node', 'hubsink', 'boom']);
    assert.equal(r, 1);
    assert.doesNotMatch(written.join(''), /hunter2/);
  });
});
