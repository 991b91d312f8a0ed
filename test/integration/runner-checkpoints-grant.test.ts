/**
 * Checkpoints while the runner's role may not write the events table, read from the blobs
 * themselves: the runner signs in as a role that writes the schema without owning it
 * (test/support/writerRole.ts); INSERT on events is revoked from it while a second load arrives, and
 * test/support/checkpointFailure.ts polls the checkpoint blobs while every write is refused (no
 * checkpoint past an event not yet written, dead-lettered or parked; nothing written meanwhile),
 * SIGKILLs the runner during it, grants INSERT again and starts a new runner as the same role:
 * events hold exactly every distinct valid event once, each malformed one is parked once.
 * On a Citus coordinator the revoke and the grant are also read back from every shard of events on
 * the workers, which is where the rows are written.
 */
import { afterAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { serverCapabilities } from '../support/services.js';
import { checkpointsHoldThroughFailure } from '../support/checkpointFailure.js';
import { stackForFile, type RunnerProcess, type Stack } from '../support/runner-fixture.js';
import { createWriterRole, type WriterRole } from '../support/writerRole.js';

let role: WriterRole | undefined;
// Registered before the stack's hooks, so it runs after them (the runners killed, the schema dropped).
afterAll(async () => role?.drop());

let stack: Stack;
const children: RunnerProcess[] = [];
stackForFile((s) => (stack = s), children, { partitions: 2 });

test('INSERT on events revoked: no checkpoint passes an unwritten event while it lasts; SIGKILL during it, a new runner after the grant: exact', async () => {
  const r = (role = await createWriterRole(stack.db.schema));
  const events = `"${stack.db.schema}".events`;
  // What the shards on the workers say about the role's INSERT (Citus only: undefined elsewhere).
  const onShards = async (): Promise<string[] | undefined> => {
    if (!serverCapabilities().citus) return undefined;
    const { rows } = await stack.db.pool.query<{ result: string }>(
      `SELECT DISTINCT result FROM run_command_on_shards($1::regclass, format('SELECT has_table_privilege(%L, %L, ''INSERT'')', $2::text, '%s'))`,
      [events, r.name],
    );
    return rows.map((x) => x.result);
  };
  await checkpointsHoldThroughFailure(
    stack,
    children,
    {
      env: stack.env({ DATABASE_URL: r.url }),
      start: async () => {
        await r.admin(`REVOKE INSERT ON ${events} FROM "${r.name}"`);
        assert.deepEqual(await onShards(), serverCapabilities().citus ? ['f'] : undefined, 'the revoke reached every shard');
      },
      end: async () => {
        await r.admin(`GRANT INSERT ON ${events} TO "${r.name}"`);
        assert.deepEqual(await onShards(), serverCapabilities().citus ? ['t'] : undefined, 'the grant reached every shard');
      },
      cause: /: 42501 permission denied for table events/,
      writesWhileFailing: 'nothing',
    },
    'ckpt-grant',
  );
});
