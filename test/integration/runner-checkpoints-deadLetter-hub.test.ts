/**
 * Checkpoints while the dead-letter hub refuses sends, read from the blobs themselves: the emulator
 * rejects every send to the dead-letter hub (as it would for a hub that was deleted) while a second
 * load with malformed events arrives. A batch's valid rows are written before its failures are
 * dead-lettered, so the runner writes them and then fails on the dead letters; test/support/
 * checkpointFailure.ts polls the checkpoint blobs while it retries (no checkpoint passes a malformed
 * event that neither reached the dead-letter hub nor was parked, although the valid rows around it
 * are written), SIGKILLs the runner during it, lets the hub take sends again and starts a new
 * runner: events hold exactly every distinct valid event once, each malformed one is parked once.
 */
import { test } from 'vitest';
import { checkpointsHoldThroughFailure } from '../support/checkpointFailure.js';
import { stackForFile, type RunnerProcess, type Stack } from '../support/runner-fixture.js';

let stack: Stack;
const children: RunnerProcess[] = [];
stackForFile((s) => (stack = s), children, { partitions: 2 });

test('dead-letter hub refusing sends: no checkpoint passes an event it did not take; SIGKILL during it, a new runner after it: exact', async () => {
  await checkpointsHoldThroughFailure(
    stack,
    children,
    {
      env: stack.env(),
      // Every send, for as long as the test runs; 0 ends the rejections.
      start: () => Promise.resolve(stack.emu.faults.rejectNextSends(stack.dlHub, Number.MAX_SAFE_INTEGER, 'amqp:not-found')),
      end: () => Promise.resolve(stack.emu.faults.rejectNextSends(stack.dlHub, 0)),
      cause: /: sending \d+ dead letter\(s\) to the dead-letter hub failed: .*amqp:not-found/,
      writesWhileFailing: 'valid rows',
    },
    'ckpt-dlhub',
  );
});
