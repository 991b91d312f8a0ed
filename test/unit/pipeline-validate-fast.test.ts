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

const NOW = new Date('2026-03-14T12:00:00Z');
const DAY = 86_400_000;
const OPTS: ValidateOptions = { now: NOW, retentionDays: 30, aheadDays: 3, maxBodyBytes: 256 * 1024 };
const RUNS = 2000;

function raw(body: Buffer, properties: Record<string, unknown>): RawEvent {
  return { body, properties, source: makeSource({ partitionId: '1', sequenceNumber: 7, offset: '512', enqueuedTime: NOW }) };
}

/** Both paths on the same input must give the same result, to the last field. */
function agree(r: RawEvent, opts: ValidateOptions = OPTS): void {
  assert.deepStrictEqual(validateFast(r, opts), validateEvent(r, opts));
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Times in the layouts producers send, in and out of the window. */
const goodTime = fc
  .tuple(fc.integer({ min: -29 * DAY, max: 2 * DAY }), fc.constantFrom('Z', '+01:00', '-05:00', '+05:30', '+00:00'))
  .map(([delta, zone]) => {
    const ms = NOW.getTime() + delta;
    const off = zone === 'Z' ? 0 : (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
    const local = new Date(ms + off * 60_000).toISOString().slice(0, 23);
    return `${local}${zone}`;
  });

const oddTime = fc.oneof(
  goodTime.map((s) => s.replace('T', 't')),
  goodTime.map((s) => s.replace('Z', 'z')),
  goodTime.map((s) => s.replace('.', ',')),
  goodTime.map((s) => s.replace(/\.\d{3}/, '')),
  goodTime.map((s) => s.replace(/\.(\d{3})/, '.$1987654')),
  goodTime.map((s) => s.replace(/Z$|[+-]\d\d:\d\d$/, '')),
  fc.tuple(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 14 }), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 25 }), fc.integer({ min: 0, max: 61 })).map(
    ([y, mo, d, h, mi]) => `${pad(y, 4)}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(mi)}.123Z`,
  ),
  fc.constantFrom('2026-02-29T00:00:00.000Z', '2024-02-29T10:00:00.000Z', '2026-03-14T10:00:00.000+24:00', '2026-03-14T10:00:00.000+01:60', '0099-03-14T10:00:00.000Z', 'yesterday', ''),
  fc.integer({ min: -40 * DAY, max: 5 * DAY }).map((d) => new Date(NOW.getTime() + d).toISOString()),
);

const uuid = fc.uuid().map((u) => u);
const text = (max: number) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.string({ maxLength: 24 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: max - 3, maxLength: max + 3 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  );
const jsonLeaf = fc.oneof(fc.string({ unit: 'binary', maxLength: 8 }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null));
/** What common events carry in properties: printable text, numbers, booleans, null. */
const commonLeaf = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'grapheme', maxLength: 6 }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null));
const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, jsonLeaf, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 3 }),
  object: fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', 'sku', 'tenantId', 'constructor')), tie('value'), { maxKeys: 3 }),
})).value;

const KNOWN = ['eventId', 'tenantId', 'type', 'occurredAt', 'sessionId', 'userId', 'deviceId', 'url', 'referrer', 'campaignId', 'country', 'browser', 'revenue', 'properties'];

/** The common event: every field of the right type, mostly in range. */
const commonEvent = fc.record(
  {
    eventId: uuid,
    tenantId: fc.integer({ min: 1, max: 100_000 }),
    type: fc.constantFrom('page_view', 'click', 'add_to_cart', 'purchase', 'ad_impression', 'email_open'),
    occurredAt: goodTime,
    sessionId: fc.string({ minLength: 1, maxLength: 40 }),
    userId: fc.string({ maxLength: 40 }),
    deviceId: fc.string({ maxLength: 40 }),
    url: fc.webUrl(),
    referrer: fc.option(fc.webUrl(), { nil: null }),
    campaignId: fc.string({ maxLength: 20 }),
    country: fc.constantFrom('DE', 'US', 'FR', 'SE'),
    browser: fc.constantFrom('chrome', 'firefox', 'safari'),
    revenue: fc.double({ min: -1e6, max: 1e6, noNaN: true }),
    properties: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }).filter((k) => k !== '__proto__'), commonLeaf, { maxKeys: 4 }),
  },
  { requiredKeys: ['tenantId', 'type', 'occurredAt'] },
);

/** Anything a producer might get wrong, field by field. */
const anyField: Record<string, fc.Arbitrary<unknown>> = {
  eventId: fc.oneof(uuid, uuid.map((u) => u.toUpperCase()), fc.constant(null), fc.string({ maxLength: 40 }), fc.integer()),
  tenantId: fc.oneof(fc.integer({ min: -5, max: 1e6 }), fc.constantFrom(0, -1, 1, 2 ** 53), fc.double(), fc.constantFrom('42', '0', '-1', 'x', '12345678901234567'), fc.constant(null), fc.boolean()),
  type: fc.oneof(fc.constantFrom('page_view', '', '   ', ' click '), text(64), fc.integer(), fc.constant(null)),
  occurredAt: fc.oneof(goodTime, oddTime, fc.integer(), fc.constant(null)),
  sessionId: fc.oneof(text(256), fc.constant(null), fc.integer()),
  userId: fc.oneof(text(256), fc.constant(null), fc.boolean()),
  deviceId: text(256),
  url: fc.oneof(fc.webUrl(), text(2048)),
  referrer: fc.oneof(fc.webUrl(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 })),
  campaignId: text(256),
  country: text(256),
  browser: text(256),
  revenue: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(1e12, -1e12, 1e12 + 1, 0.00005, 1.00005, -0), fc.constant(null), fc.constant('9.99')),
  properties: fc.oneof(jsonValue, fc.constant(null), fc.constant('x')),
};

const anyEvent = fc
  .tuple(
    fc.subarray(KNOWN),
    fc.record(anyField),
    fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', 'sku', 'extra')), jsonValue, { maxKeys: 2 }),
  )
  .map(([keys, values, extra]) => {
    const o: Record<string, unknown> = {};
    for (const k of keys) Object.defineProperty(o, k, { value: values[k], enumerable: true, writable: true, configurable: true });
    for (const [k, v] of Object.entries(extra)) if (!KNOWN.includes(k)) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
    return o;
  });

/** A common event with one field replaced (or removed) by anything: each check of each field, alone. */
const oneFault = fc
  .tuple(commonEvent, fc.constantFrom(...KNOWN), fc.boolean())
  .chain(([o, key, remove]) => (anyField[key] ?? fc.constant(undefined)).map((v) => {
    const out: Record<string, unknown> = { ...o };
    if (remove) delete out[key];
    else out[key] = v;
    return out;
  }));

/** Application properties: mostly none, sometimes a tenant in one spelling or another. */
const appProps = fc.oneof(
  { weight: 4, arbitrary: fc.constant({}) },
  { weight: 1, arbitrary: fc.record({ tenantId: fc.oneof(fc.integer({ min: 1, max: 100_000 }), fc.constantFrom('42', 'x')) }) },
  { weight: 1, arbitrary: fc.record({ TenantId: fc.constant(42), source: fc.constant('web') }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: fc.record({ 'tenant-id': fc.integer({ min: 1, max: 3 }) }) },
);

/** Body bytes: the JSON, or the JSON damaged in the ways real bodies get damaged. */
function bodies(doc: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<Buffer> {
  const json = doc.map((o) => JSON.stringify(o));
  return fc.oneof(
    { weight: 8, arbitrary: json.map((s) => Buffer.from(s, 'utf8')) },
    { weight: 1, arbitrary: json.map((s) => Buffer.from(`\uFEFF${s}`, 'utf8')) },
    { weight: 1, arbitrary: json.map((s) => Buffer.from(` \n${s}\t`, 'utf8')) },
    { weight: 1, arbitrary: fc.tuple(json, fc.nat()).map(([s, n]) => Buffer.from(s.slice(0, n % (s.length + 1)), 'utf8')) },
    { weight: 1, arbitrary: fc.tuple(json, fc.nat(), fc.constantFrom(0xff, 0xc0, 0xed, 0x80, 0x00)).map(([s, n, b]) => {
      const buf = Buffer.from(s, 'utf8');
      if (buf.length > 0) buf[n % buf.length] = b;
      return buf;
    }) },
    // Numbers JSON.parse turns into Infinity, and a string escape in a known field.
    { weight: 1, arbitrary: json.map((s) => Buffer.from(s.replace(/"revenue":[^,}]*/, '"revenue":1e999').replace(/\}$/, ',"deep":[1e400]}'), 'utf8')) },
    { weight: 1, arbitrary: json.map((s) => Buffer.from(s.replace(/"type":"/, '"type":"\\u0000'), 'utf8')) },
    { weight: 1, arbitrary: json.map((s) => Buffer.from(s.replace(/"type":"/, '"type":"\\ud800'), 'utf8')) },
    { weight: 1, arbitrary: fc.constantFrom('[]', 'null', '42', '"x"', '', '{', '{"a":1,"a":2}').map((s) => Buffer.from(s, 'utf8')) },
  );
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
