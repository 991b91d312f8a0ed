/**
 * The dead_letters store against real PostgreSQL: idempotent parking on the source key, values that
 * text/jsonb cannot hold as they are, filters, stats and status changes.
 */
import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { createTestSchema, type TestSchema } from '../support/services.js';
import { migrate } from '../../src/db/migrate.js';
import { markReplayedBySourceSql, parkDeadLetters } from '../../src/db/deadLetterParking.js';
import { countDeadLetters, deadLetterStats, discardDeadLetters, getDeadLetter, listDeadLetters, markReplayed, markReplayFailed } from '../../src/db/deadLetterQueries.js';
import type { DeadLetterRecord } from '../../src/pipeline/types.js';
import { makeSource } from '../support/rows.js';

let seq = 0;
function record(overrides: Partial<DeadLetterRecord> = {}): DeadLetterRecord {
  seq++;
  const at = new Date('2026-03-01T10:00:00.000Z');
  return {
    reason: 'invalid',
    error: 'occurredAt: required',
    body: Buffer.from(JSON.stringify({ tenantId: 7, type: 'page_view', n: seq })),
    properties: { tenantId: '7' },
    tenantId: 7,
    source: makeSource({ partitionId: '1', sequenceNumber: 1000 + seq, offset: `o-${seq}`, enqueuedTime: new Date(at.getTime() + seq) }),
    attempts: 1,
    firstFailureAt: at,
    lastFailureAt: at,
    ...overrides,
  };
}

describe('dead_letters store', () => {
  let s: TestSchema;
  beforeAll(async () => {
    s = await createTestSchema('dls_');
    await migrate(s.pool, s.schema);
  });
  afterAll(() => s.drop());

  test('parking is idempotent on the source key, also within one statement', async () => {
    const a = record();
    const b = record({ reason: 'rejected', error: '23514 no partition of relation "events" found for row' });
    const first = await parkDeadLetters(s.pool, s.schema, [a, b, a]);
    assert.equal(first.parked, 2);
    assert.equal(first.alreadyParked, 1);
    assert.deepEqual(first.byReason, { invalid: 1, rejected: 1 });
    // The same dead letter delivered again, even read by another consumer group and with another hub
    // spelling, is the same event.
    const again = await parkDeadLetters(s.pool, s.schema, [{ ...a, source: { ...a.source, consumerGroup: 'other', hub: 'ClickStream' } }, b]);
    assert.equal(again.parked, 0);
    assert.equal(again.alreadyParked, 2);
    assert.equal(await countDeadLetters(s.pool, s.schema, { ids: first.ids }), 2);
  });

  test('a re-created hub (same sequence number, other enqueued time) and unreadable coordinates with other bodies are different events', async () => {
    const a = record();
    const recreated = record({ source: { ...a.source, enqueuedTime: new Date(a.source.enqueuedTime.getTime() + 86_400_000) } });
    recreated.body = a.body;
    const unknown1 = record({ source: makeSource({ partitionId: 'unknown', sequenceNumber: -1, offset: '', enqueuedTime: new Date(0) }) });
    const unknown2 = record({ source: { ...unknown1.source } });
    const r = await parkDeadLetters(s.pool, s.schema, [a, recreated, unknown1, unknown2]);
    assert.equal(r.parked, 4);
    const dup = await parkDeadLetters(s.pool, s.schema, [{ ...unknown2 }]);
    assert.equal(dup.parked, 0);
  });

  test('bytes, properties and text that PostgreSQL cannot hold as they are survive the round trip', async () => {
    const body = Buffer.from([0xff, 0x00, 0xfe, 0x7b, 0x22]);
    const properties: Record<string, unknown> = {
      plain: 'x',
      nul: 'a\u0000b',
      bytes: Buffer.from([1, 2, 3]),
      when: new Date('2026-01-02T03:04:05.678Z'),
      big: 2n ** 62n,
      nan: Number.NaN,
      tagged: { $bytes: 'not ours' },
      nested: { list: [1, 'two', null] },
    };
    Object.defineProperty(properties, '__proto__', { value: 'own key', enumerable: true, writable: true, configurable: true });
    const rec = record({ body, properties, error: 'bad\u0000byte', eventId: 'not-a-uuid', tenantId: undefined });
    rec.source.partitionKey = 'k\u0000ey';
    const { ids } = await parkDeadLetters(s.pool, s.schema, [rec]);
    const [id] = ids;
    assert.ok(id !== undefined);
    const got = await getDeadLetter(s.pool, s.schema, id);
    assert.ok(got);
    assert.deepEqual(got.body, body);
    assert.equal(got.error, 'bad\uFFFDbyte');
    assert.equal(got.eventId, null);
    assert.equal(got.tenantId, null);
    assert.equal(got.source.partitionKey, 'k\uFFFDey');
    assert.equal(got.properties.plain, 'x');
    assert.equal(got.properties.nul, 'a\u0000b');
    assert.deepEqual(got.properties.bytes, Buffer.from([1, 2, 3]));
    assert.deepEqual(got.properties.when, new Date('2026-01-02T03:04:05.678Z'));
    assert.equal(got.properties.big, 2n ** 62n);
    assert.ok(Number.isNaN(got.properties.nan));
    assert.deepEqual(got.properties.tagged, { $bytes: 'not ours' });
    assert.deepEqual(got.properties.nested, { list: [1, 'two', null] });
    assert.ok(Object.prototype.hasOwnProperty.call(got.properties, '__proto__'));
    assert.equal(Object.getOwnPropertyDescriptor(got.properties, '__proto__')?.value, 'own key');
    assert.equal(got.status, 'parked');
    assert.equal(got.source.hub, 'clickstream');
    assert.equal(got.bodyBytes, 5);
  });

  test('transient records are never parked', async () => {
    await assert.rejects(parkDeadLetters(s.pool, s.schema, [record({ reason: 'transient' })]), /only invalid or rejected/);
  });

  test('list filters by reason, tenant, status, time and pages by id; stats count parked rows', async () => {
    const own = await createTestSchema('dls_');
    try {
      await migrate(own.pool, own.schema);
      const recs = [
        record({ tenantId: 1 }),
        record({ tenantId: 1, reason: 'rejected' }),
        record({ tenantId: 2 }),
        record({ tenantId: undefined }),
        record({ tenantId: 2, reason: 'rejected' }),
      ];
      const { ids } = await parkDeadLetters(own.pool, own.schema, recs);
      assert.equal(ids.length, 5);
      const all = await listDeadLetters(own.pool, own.schema, {}, 100);
      assert.deepEqual(all.map((r) => r.id), [...ids].sort((x, y) => x - y));
      assert.equal((await listDeadLetters(own.pool, own.schema, { reason: 'rejected' }, 100)).length, 2);
      assert.deepEqual((await listDeadLetters(own.pool, own.schema, { tenantId: 2 }, 100)).map((r) => r.tenantId), [2, 2]);
      assert.equal((await listDeadLetters(own.pool, own.schema, {}, 2)).length, 2);
      const page2 = await listDeadLetters(own.pool, own.schema, { afterId: all[1]?.id ?? 0 }, 100);
      assert.equal(page2.length, 3);
      const parkedAt = all[0]?.parkedAt ?? new Date();
      assert.equal((await listDeadLetters(own.pool, own.schema, { since: new Date(parkedAt.getTime() + 60_000) }, 100)).length, 0);
      assert.equal((await listDeadLetters(own.pool, own.schema, { until: new Date(parkedAt.getTime() + 60_000) }, 100)).length, 5);

      const [first, second, third] = all;
      assert.ok(first && second && third);
      assert.deepEqual(await markReplayed(own.pool, own.schema, [{ id: first.id, outcome: 'inserted' }]), [first.id]);
      assert.deepEqual(await markReplayFailed(own.pool, own.schema, [{ id: second.id, reason: 'invalid', error: 'type: required' }]), [second.id]);
      // Only parked rows are discarded; a replayed one stays replayed.
      const discarded = await discardDeadLetters(own.pool, own.schema, { ids: [first.id, third.id] });
      assert.deepEqual(discarded, [third.id]);
      assert.deepEqual(await markReplayed(own.pool, own.schema, [{ id: third.id, outcome: 'inserted' }]), [], 'a discarded row is not flipped to replayed');

      const f = await getDeadLetter(own.pool, own.schema, first.id);
      assert.equal(f?.status, 'replayed');
      assert.equal(f?.outcome, 'inserted');
      assert.equal(f?.replayAttempts, 1);
      assert.ok(f?.lastReplayAt instanceof Date);
      const sec = await getDeadLetter(own.pool, own.schema, second.id);
      assert.equal(sec?.status, 'parked');
      assert.equal(sec?.reason, 'invalid');
      assert.equal(sec?.error, 'type: required');
      assert.equal(sec?.outcome, 'still invalid');
      assert.equal((await getDeadLetter(own.pool, own.schema, third.id))?.status, 'discarded');
      assert.equal(await getDeadLetter(own.pool, own.schema, 987654321), undefined);

      const stats = await deadLetterStats(own.pool, own.schema, { tenants: 10, days: 7 });
      const byKey = Object.fromEntries(stats.byStatusReason.map((r) => [`${r.status}/${r.reason}`, r.count]));
      assert.deepEqual(byKey, { 'discarded/invalid': 1, 'parked/invalid': 2, 'parked/rejected': 1, 'replayed/invalid': 1 });
      // Parked now: record 2 (tenant 1, now invalid), record 4 (no tenant), record 5 (tenant 2).
      assert.deepEqual(
        stats.byTenant.map((t) => [t.tenantId, t.count]).sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
        [
          [1, 1],
          [2, 1],
          [null, 1],
        ],
      );
      const today = new Date().toISOString().slice(0, 10);
      assert.deepEqual(
        stats.byDay.map((d) => [d.day, d.reason, d.count]),
        [
          [today, 'invalid', 2],
          [today, 'rejected', 1],
        ],
      );
      assert.ok(stats.oldestParkedAt instanceof Date);

      // replay-hub marks parked rows replayed by their source key.
      const fifth = recs[4];
      assert.ok(fifth);
      const st = markReplayedBySourceSql(own.schema, [{ ...fifth, source: { ...fifth.source, hub: 'CLICKSTREAM' } }], 'replayed from the dead-letter hub');
      const res = await own.pool.query(st.text, st.values);
      assert.equal(res.rowCount, 1);
      assert.equal(await countDeadLetters(own.pool, own.schema, { status: 'parked' }), 2);
    } finally {
      await own.drop();
    }
  });
});
