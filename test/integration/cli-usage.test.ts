/**
 * Every `hubsink dlq` and `hubsink checkpoints` command: --help works, and bad arguments get a clear
 * message on stderr and exit status 2 (spawned as an operator runs it).
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { runCli } from '../support/deadLetters.js';

const COMMANDS = [
  ['dlq'],
  ['dlq', 'stats'],
  ['dlq', 'list'],
  ['dlq', 'show'],
  ['dlq', 'replay'],
  ['dlq', 'replay-hub'],
  ['dlq', 'discard'],
  ['checkpoints'],
  ['checkpoints', 'show'],
  ['checkpoints', 'rewind'],
];

/** Settings that parse, pointing at nothing that listens: usage errors must come before any I/O. */
const env = {
  DATABASE_URL: 'postgres://nobody:x@127.0.0.1:1/none',
  EventHubConnection: 'Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true',
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
};

const BAD: { args: string[]; message: RegExp }[] = [
  { args: ['dlq', 'stats', '--days', '0'], message: /--days.*expected a positive whole number/ },
  { args: ['dlq', 'stats', '--container', 'Bad_Name'], message: /not a valid blob container name/ },
  { args: ['dlq', 'list', '--reason', 'transient'], message: /--reason.*expected one of invalid, rejected/ },
  { args: ['dlq', 'list', '--status', 'gone'], message: /--status.*expected one of parked, replayed, discarded/ },
  { args: ['dlq', 'list', '--tenant', '-4'], message: /--tenant/ },
  { args: ['dlq', 'list', '--since', 'yesterday'], message: /--since.*expected an ISO-8601 time/ },
  { args: ['dlq', 'list', '--since', '2026-01-02T00:00:00Z', '--until', '2026-01-01T00:00:00Z'], message: /--since must be before --until/ },
  { args: ['dlq', 'list', '--limit', '0'], message: /--limit.*positive whole number/ },
  { args: ['dlq', 'list', '--frobnicate'], message: /unknown option '--frobnicate'/ },
  { args: ['dlq', 'show'], message: /missing required argument 'id'/ },
  { args: ['dlq', 'show', 'abc'], message: /expected a positive whole number/ },
  { args: ['dlq', 'replay', '--batch-size', '1.5'], message: /--batch-size.*positive whole number/ },
  { args: ['dlq', 'replay', '--status', 'nope'], message: /expected one of parked, replayed, discarded/ },
  { args: ['dlq', 'replay-hub', '--from', 'last tuesday'], message: /--from.*expected an ISO-8601 time/ },
  { args: ['dlq', 'replay-hub', '--from', '2h', '--from-start'], message: /only one of --from TIME or --from-start/ },
  { args: ['dlq', 'replay-hub', '--reset'], message: /--reset needs --from TIME or --from-start/ },
  { args: ['dlq', 'replay-hub', '--consumer-group', 'no spaces'], message: /not a valid consumer group name/ },
  { args: ['dlq', 'discard', '--reason', 'bad'], message: /expected one of invalid, rejected/ },
  { args: ['dlq', 'nonsense'], message: /unknown command 'nonsense'/ },
  { args: ['checkpoints', 'show'], message: /required option '--hub <name>' not specified/ },
  { args: ['checkpoints', 'show', '--hub', 'h'], message: /required option '--consumer-group <name>' not specified/ },
  { args: ['checkpoints', 'show', '--hub', 'bad hub!', '--consumer-group', 'g'], message: /not a valid Event Hub name/ },
  { args: ['checkpoints', 'rewind', '--hub', 'h', '--consumer-group', 'g'], message: /exactly one of --to TIME, --to-start or --recreated/ },
  { args: ['checkpoints', 'rewind', '--hub', 'h', '--consumer-group', 'g', '--to', '1h', '--to-start'], message: /exactly one of --to TIME, --to-start or --recreated/ },
  { args: ['checkpoints', 'rewind', '--hub', 'h', '--consumer-group', 'g', '--to-start', '--recreated'], message: /exactly one of --to TIME, --to-start or --recreated/ },
  { args: ['checkpoints', 'rewind', '--hub', 'h', '--consumer-group', 'g', '--to-start', '--stale-after', '0'], message: /--stale-after.*positive whole number/ },
];

describe('hubsink dlq / checkpoints usage', () => {
  for (const cmd of COMMANDS) {
    test(`${cmd.join(' ')} --help`, async () => {
      const r = await runCli([...cmd, '--help'], {});
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Usage: hubsink ${cmd.join(' ')} `));
      assert.match(r.stdout, /-h, --help/);
    });
  }

  for (const { args, message } of BAD) {
    test(`${args.join(' ')} → exit 2`, async () => {
      const r = await runCli(args, env);
      assert.equal(r.code, 2, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '');
    });
  }

  test('a missing setting is named, exit 2', async () => {
    const r = await runCli(['checkpoints', 'show', '--hub', 'h', '--consumer-group', 'g'], { AzureWebJobsStorage: 'UseDevelopmentStorage=true' });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /EventHubConnection is not set/);
    const d = await runCli(['dlq', 'list'], {});
    assert.equal(d.code, 2, d.stderr);
    assert.match(d.stderr, /DATABASE_URL is not set/);
  });
});
