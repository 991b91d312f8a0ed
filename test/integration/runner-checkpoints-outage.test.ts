/**
 * Checkpoints under a database outage, read from the blobs themselves: the runner's database
 * connection is cut (a TCP proxy in front of it) while a second load arrives; test/support/
 * checkpointFailure.ts polls the checkpoint blobs while the runner fails and retries (no checkpoint
 * past an event not yet written, dead-lettered or parked; nothing written meanwhile; the second load
 * stays behind the checkpoints), SIGKILLs the runner during the outage, brings the database back and
 * starts a new runner: events hold exactly every distinct valid event once, each malformed one is
 * parked once.
 */
import { test } from 'vitest';
import type { TcpProxy } from '../support/tcpProxy.js';
import { testDatabaseUrl } from '../support/services.js';
import { checkpointsHoldThroughFailure } from '../support/checkpointFailure.js';
import { stackForFile, type RunnerProcess, type Stack } from '../support/runner-fixture.js';

let stack: Stack;
let proxy: TcpProxy;
const children: RunnerProcess[] = [];
stackForFile((s) => (stack = s), children, { partitions: 2, databaseProxy: (p) => (proxy = p) });

test('database outage: no checkpoint passes an unwritten event while it lasts; SIGKILL during it, a new runner after it: exact', async () => {
  await checkpointsHoldThroughFailure(
    stack,
    children,
    {
      env: stack.env({ DATABASE_URL: proxy.url(testDatabaseUrl()), HUBSINK_TRANSIENT_RETRY_MS: '500' }),
      start: () => proxy.cut(),
      end: () => proxy.restore(),
      cause: /: database unreachable/,
      writesWhileFailing: 'nothing',
    },
    'ckpt-outage',
  );
});
