import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { prepareBatch, rowKey } from '../../src/pipeline/batch.js';
import { deriveEventId } from '../../src/pipeline/eventId.js';
import type { RawEvent } from '../../src/pipeline/types.js';
import type { ValidateOptions } from '../../src/pipeline/validate.js';
import { makeSource } from '../support/rows.js';

const NOW = new Date('2024-05-10T12:00:00Z');
const OPTS: ValidateOptions = { now: NOW, retentionDays: 30, aheadDays: 3, maxBodyBytes: 4096 };
let seq = 0;

function raw(body: object | string, properties: Record<string, unknown> = {}): RawEvent {
  seq++;
  return {
    body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    properties,
    source: makeSource({ partitionId: '1', sequenceNumber: seq, offset: String(seq * 100), enqueuedTime: NOW, partitionKey: '5' }),
  };
}

const ID_A = '0190b6a4-5c3e-7cc1-9d2e-3f4a5b6c7d8e';
const ev = (o: Record<string, unknown> = {}) => ({ eventId: ID_A, tenantId: 5, type: 'click', occurredAt: '2024-05-10T11:00:00Z', ...o });

describe('prepareBatch', () => {
  test('splits valid from invalid and removes in-batch duplicates by (tenant, event id, occurred at)', () => {
    const idless = { tenantId: 5, type: 'view', occurredAt: '2024-05-10T10:00:00Z' };
    const raws = [
      raw(ev()), // 0: kept
      raw(ev()), // 1: duplicate of 0
      raw(ev({ occurredAt: '2024-05-10T12:00:00+01:00' })), // 2: same instant written differently → duplicate of 0
      raw(ev({ occurredAt: '2024-05-10T11:00:00.001Z' })), // 3: other instant → kept
      raw(ev({ tenantId: 6 })), // 4: other tenant → kept
      raw(ev({ eventId: ID_A.toUpperCase(), type: 'other' })), // 5: same key after lower-casing → duplicate
      raw('not json'), // 6: invalid
      raw(idless), // 7: derived id → kept
      raw(idless), // 8: identical bytes → same derived id → duplicate
      raw(ev({ occurredAt: '2023-01-01T00:00:00Z' })), // 9: out of window → invalid
      raw(ev({ tenantId: undefined, type: '' }), { TenantId: 77 }), // 10: invalid, tenant known from the property
    ];
    const out = prepareBatch(raws, OPTS, NOW);
    assert.equal(out.rows.length, 4);
    assert.equal(out.invalid.length, 3);
    assert.equal(out.duplicatesInBatch, 4);
    assert.equal(out.rows.length + out.invalid.length + out.duplicatesInBatch, raws.length);
    assert.deepEqual(out.rows.map((r) => r.raw), [raws[0], raws[3], raws[4], raws[7]]);
    assert.equal(out.rows[3]?.eventId, deriveEventId(raws[7]?.body ?? Buffer.alloc(0)));
    assert.equal(new Set(out.rows.map(rowKey)).size, out.rows.length);
  });

  test('invalid events become dead letters: reason invalid, attempt 1, original bytes and properties', () => {
    const bad = raw('{"tenantId":5,"type":"click","occurredAt":"2024-05-10T11:00:00"}', { TenantId: 5, origin: 'web' });
    const out = prepareBatch([bad], OPTS, NOW);
    assert.equal(out.rows.length, 0);
    const [d] = out.invalid;
    assert.ok(d);
    assert.equal(d.reason, 'invalid');
    assert.match(d.error, /^occurredAt: must include a UTC offset/);
    assert.equal(d.attempts, 1);
    assert.equal(d.firstFailureAt.getTime(), NOW.getTime());
    assert.equal(d.lastFailureAt.getTime(), NOW.getTime());
    assert.ok(d.body.equals(bad.body));
    assert.deepEqual(d.properties, { TenantId: 5, origin: 'web' });
    assert.deepEqual(d.source, bad.source);
    assert.equal(d.tenantId, 5);
    assert.equal(d.eventId, deriveEventId(bad.body));
  });

  test('tenant and event id are left out when they cannot be read', () => {
    const out = prepareBatch([raw('garbage')], OPTS, NOW);
    const [d] = out.invalid;
    assert.equal(d?.tenantId, undefined);
    assert.equal(Object.hasOwn(d ?? {}, 'tenantId'), false);
    assert.match(d?.error ?? '', /^body: is not valid JSON/);
  });

  test('an empty batch', () => {
    assert.deepEqual(prepareBatch([], OPTS, NOW), { rows: [], invalid: [], duplicatesInBatch: 0 });
  });

  test('1,000 events across 50 tenants with every event sent twice', () => {
    const raws: RawEvent[] = [];
    for (let i = 0; i < 1000; i++) raws.push(raw({ tenantId: (i % 50) + 1, type: 'view', occurredAt: '2024-05-10T11:00:00Z', n: i }));
    const out = prepareBatch([...raws, ...raws], OPTS, NOW);
    assert.equal(out.rows.length, 1000);
    assert.equal(out.duplicatesInBatch, 1000);
    assert.equal(new Set(out.rows.map((r) => r.tenantId)).size, 50);
  });
});
