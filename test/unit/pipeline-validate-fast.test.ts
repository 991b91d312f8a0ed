/**
 * The fast validator (src/pipeline/fastValidate.ts) against the zod path (validateEvent): on
 * generated good and bad bodies, validateFast must return exactly what validateEvent returns (the
 * same accept/reject decision, the same row, the same error), and the fast path must really take
 * the common well-formed event (else the speed-up is not there and this test would prove nothing).
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fastValidate, validateFast } from '../../src/pipeline/fastValidate.js';
import type { RawEvent } from '../../src/pipeline/types.js';
import { validateEvent, type ValidateOptions } from '../../src/pipeline/validate.js';
import { makeSource } from '../support/rows.js';
import { appProps, anyEvent, bodies, commonEvent, NOW, oneFault } from '../support/eventArbitraries.js';

const OPTS: ValidateOptions = { now: NOW, retentionDays: 30, aheadDays: 3, maxBodyBytes: 256 * 1024 };
const RUNS = 2000;

function raw(body: Buffer, properties: Record<string, unknown>): RawEvent {
  return { body, properties, source: makeSource({ partitionId: '1', sequenceNumber: 7, offset: '512', enqueuedTime: NOW }) };
}

/** Both paths on the same input must give the same result, to the last field. */
function agree(r: RawEvent, opts: ValidateOptions = OPTS): void {
  assert.deepStrictEqual(validateFast(r, opts), validateEvent(r, opts));
}

describe('fast validator agrees with the zod path', () => {
  test('on generated common events: the fast path takes every one, with the row zod builds', () => {
    fc.assert(
      fc.property(commonEvent, (o) => {
        const r = raw(Buffer.from(JSON.stringify(o), 'utf8'), {});
        const slow = validateEvent(r, OPTS);
        assert.equal(slow.ok, true, JSON.stringify(slow));
        const fast = fastValidate(r, OPTS);
        assert.ok(fast, `the fast path declined a common event: ${JSON.stringify(o)}`);
        assert.deepStrictEqual({ ok: true, row: fast }, slow);
      }),
      { numRuns: RUNS },
    );
  });

  test('on generated good and bad bodies and application properties: the same decision, row and error', () => {
    let fastTaken = 0;
    let rejected = 0;
    fc.assert(
      fc.property(bodies(fc.oneof(commonEvent, oneFault, oneFault, anyEvent)), appProps, (body, props) => {
        const r = raw(body, props);
        agree(r);
        if (fastValidate(r, OPTS)) fastTaken++;
        if (!validateEvent(r, OPTS).ok) rejected++;
      }),
      { numRuns: RUNS * 3 },
    );
    // Both kinds were really generated.
    assert.ok(fastTaken > RUNS / 10, `fast path taken ${fastTaken} times`);
    assert.ok(rejected > RUNS / 2, `rejected ${rejected} times`);
  });

  test('with a small body limit and a narrow window', () => {
    const tight: ValidateOptions = { now: NOW, retentionDays: 1, aheadDays: 1, maxBodyBytes: 300 };
    fc.assert(
      fc.property(bodies(commonEvent), (body) => agree(raw(body, {}), tight)),
      { numRuns: RUNS },
    );
  });

  test('fixed cases at the edges', () => {
    const base = { eventId: '0190b6a4-5c3e-7cc1-9d2e-3f4a5b6c7d8e', tenantId: 42, type: 'page_view', occurredAt: '2026-03-14T11:59:00.000Z' };
    const cases: unknown[] = [
      base,
      { ...base, eventId: undefined },
      { ...base, eventId: base.eventId.toUpperCase() },
      { ...base, type: 'x'.repeat(64) },
      { ...base, type: 'x'.repeat(65) },
      { ...base, type: '\u{1F600}'.repeat(40) },
      { ...base, sessionId: 's'.repeat(256) },
      { ...base, sessionId: 's'.repeat(257) },
      { ...base, revenue: 1.00005 },
      { ...base, revenue: 1e12 },
      { ...base, revenue: -1e12 - 1 },
      { ...base, properties: { sku: 'A-1' }, sku: 'B-2' },
      { ...base, properties: { a: 1 }, b: [1, { c: 2 }] },
      { ...base, properties: JSON.parse('{"__proto__":{"x":1}}') as unknown },
      { ...base, occurredAt: '2026-03-14T11:59:00.000+01:00' },
      { ...base, occurredAt: '2026-02-29T11:59:00.000Z' },
      { ...base, occurredAt: '2026-03-14T24:00:00.000Z' },
      { ...base, occurredAt: '2026-03-18T12:00:00.001Z' },
      { ...base, occurredAt: '2026-02-12T11:59:59.999Z' },
      { ...base, properties: { big: 'x'.repeat(70_000) } },
      { ...base, tenantId: '42' },
    ];
    for (const c of cases) {
      const r = raw(Buffer.from(JSON.stringify(c), 'utf8'), {});
      agree(r);
      agree(raw(r.body, { tenantId: 42 }));
      agree(raw(r.body, { tenantId: 43 }));
    }
    // A deep document: legal up to the slow path's limit, declined by the fast path, same result.
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    agree(raw(Buffer.from(JSON.stringify({ ...base, properties: { deep } }), 'utf8'), {}));
    assert.equal(fastValidate(raw(Buffer.from(JSON.stringify(base), 'utf8'), {}), OPTS)?.tenantId, 42);
  });
});
