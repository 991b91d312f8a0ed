/**
 * A checkpoint ahead of its partition (a hub deleted and created again under the same name) is told
 * apart from lag, from an empty partition and from a checkpoint at the start.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { checkpointAhead, describeCheckpointAhead, lagOf, recreatedHubFix, type PartitionState } from '../../src/hubs/checkpoints.js';

function partition(last: number, overrides: Partial<PartitionState> = {}): PartitionState {
  return { partitionId: '2', beginningSequenceNumber: 0, lastEnqueuedSequenceNumber: last, lastEnqueuedOffset: String(last), lastEnqueuedOnUtc: new Date(0), isEmpty: last < 0, ...overrides };
}
const cp = (sequenceNumber?: number) => ({ partitionId: '2', ...(sequenceNumber !== undefined ? { sequenceNumber } : {}), offset: 'x' });
const scope = { hub: 'clickstream', consumerGroup: '$Default', container: 'azure-webjobs-eventhub' };

test('ahead: a checkpoint past the last event, also of a partition that never held one', () => {
  assert.deepEqual(checkpointAhead(partition(9), cp(500)), { partitionId: '2', checkpointSequenceNumber: 500, lastEnqueuedSequenceNumber: 9 });
  assert.deepEqual(checkpointAhead(partition(-1), cp(0)), { partitionId: '2', checkpointSequenceNumber: 0, lastEnqueuedSequenceNumber: -1 });
});

test('not ahead: at or behind the last event, at the start, no checkpoint, no sequence number, a partition whose events expired', () => {
  assert.equal(checkpointAhead(partition(500), cp(500)), undefined);
  assert.equal(checkpointAhead(partition(500), cp(10)), undefined);
  assert.equal(checkpointAhead(partition(-1), cp(-1)), undefined);
  assert.equal(checkpointAhead(partition(9), undefined), undefined);
  assert.equal(checkpointAhead(partition(9), cp(undefined)), undefined);
  // Everything expired: empty, but the hub keeps its numbering.
  assert.equal(checkpointAhead(partition(999, { isEmpty: true, beginningSequenceNumber: 1000 }), cp(999)), undefined);
});

test('lagOf: an ahead checkpoint has no lag (the consumer would skip, not read) and a note naming the fix; an empty partition too', () => {
  const row = lagOf(partition(9), cp(500));
  assert.equal(row.lag, null);
  assert.match(row.note ?? '', /ahead of the last event.*--recreated/);
  const empty = lagOf(partition(-1), cp(500));
  assert.equal(empty.lag, null);
  assert.match(empty.note ?? '', /ahead/);
  assert.equal(lagOf(partition(-1), cp(-1)).lag, 0);
  assert.equal(lagOf(partition(9), cp(4)).lag, 5);
});

test('the message names the partition, both numbers and the exact command, quoted for a shell', () => {
  const ahead = checkpointAhead(partition(9), cp(500));
  assert.ok(ahead);
  const text = describeCheckpointAhead(ahead, scope);
  assert.match(text, /clickstream partition 2: .* at sequence 500, but its last event is 9/);
  assert.ok(text.endsWith(recreatedHubFix(scope)));
  assert.equal(recreatedHubFix(scope), "hubsink checkpoints rewind --hub clickstream --consumer-group '$Default' --container azure-webjobs-eventhub --recreated");
  assert.match(describeCheckpointAhead({ partitionId: '0', checkpointSequenceNumber: 3, lastEnqueuedSequenceNumber: -1 }, scope), /has held no event yet/);
});
