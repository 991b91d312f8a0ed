/**
 * Dead letters from outside the app are not trusted: anyone who can send to the dead-letter hub can
 * forge the tenant a dead letter is parked under. `dlq replay --tenant X` never inserts another
 * tenant's rows; it says so and leaves the event parked.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { parkDeadLetters } from '../../src/db/deadLetterParking.js';
import { getDeadLetter } from '../../src/db/deadLetterQueries.js';
import { replayParked, type ReplayItem } from '../../src/deadLetters/replay.js';
import type { DeadLetterRecord } from '../../src/pipeline/types.js';
import type { TestSchema } from '../support/services.js';
import { countRows, readySchema, testConfig } from '../support/deadLetters.js';
import { makeSource } from '../support/rows.js';

let s: TestSchema;
const at = new Date(Date.now() - 3_600_000);
let seq = 0;
function parked(parkedTenant: number, bodyTenant: number): DeadLetterRecord {
  seq++;
  const body = Buffer.from(JSON.stringify({ eventId: randomUUID(), tenantId: bodyTenant, type: 'purchase', occurredAt: at.toISOString(), revenue: 10 }));
  return {
    reason: 'rejected',
    error: 'forged',
    body,
    properties: {},
    tenantId: parkedTenant,
    source: makeSource({ partitionId: '0', sequenceNumber: seq, offset: `o${seq}`, enqueuedTime: new Date(at.getTime() + seq) }),
    attempts: 1,
    firstFailureAt: at,
    lastFailureAt: at,
  };
}

beforeAll(async () => {
  s = await readySchema('forged_');
});
afterAll(() => s.drop());

test('replay --tenant 5 of a dead letter forged as tenant 5 whose event is for tenant 6: nothing inserted, the mismatch reported, still parked', async () => {
  const { ids } = await parkDeadLetters(s.pool, s.schema, [parked(5, 6), parked(5, 5)]);
  const items: ReplayItem[] = [];
  const summary = await replayParked({ pool: s.pool, config: testConfig(s.schema) }, { filter: { tenantId: 5 }, dryRun: false, pageSize: 10, onItem: (i) => items.push(i) });
  assert.equal(summary.inserted, 1);
  assert.equal(summary.stillInvalid, 1);
  assert.equal(await countRows(s.pool, s.schema, 'events', 'WHERE tenant_id = 6'), 0);
  assert.equal(await countRows(s.pool, s.schema, 'events', 'WHERE tenant_id = 5'), 1);
  const refused = items.find((i) => i.id === ids[0]);
  assert.equal(refused?.outcome, 'still invalid');
  assert.match(refused?.error ?? '', /tenant mismatch: parked as tenant 5, but the event is for tenant 6/);
  const row = await getDeadLetter(s.pool, s.schema, ids[0] ?? 0);
  assert.equal(row?.status, 'parked');
  assert.equal(row?.outcome, 'still invalid');
  assert.match(row?.error ?? '', /tenant mismatch/);
  // A dry run says the same.
  const dry: ReplayItem[] = [];
  await replayParked({ pool: s.pool, config: testConfig(s.schema) }, { filter: { tenantId: 5 }, dryRun: true, pageSize: 10, onItem: (i) => dry.push(i) });
  assert.match(dry.find((i) => i.id === ids[0])?.error ?? '', /tenant mismatch/);
});
