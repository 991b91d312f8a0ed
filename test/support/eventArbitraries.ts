/**
 * fast-check arbitraries of event bodies, shared by the tests that compare the validators (the
 * fast path, the byte scanner) with the zod path: common events, single-field faults, arbitrary
 * documents, damaged bytes and application properties.
 */
import fc from 'fast-check';

export const NOW = new Date('2026-03-14T12:00:00Z');
export const DAY = 86_400_000;

export const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Times in the layouts producers send, in and out of the window. */
export const goodTime = fc
  .tuple(fc.integer({ min: -29 * DAY, max: 2 * DAY }), fc.constantFrom('Z', '+01:00', '-05:00', '+05:30', '+00:00'))
  .map(([delta, zone]) => {
    const ms = NOW.getTime() + delta;
    const off = zone === 'Z' ? 0 : (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
    const local = new Date(ms + off * 60_000).toISOString().slice(0, 23);
    return `${local}${zone}`;
  });

export const oddTime = fc.oneof(
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

export const uuid = fc.uuid().map((u) => u);
export const text = (max: number) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.string({ maxLength: 24 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: max - 3, maxLength: max + 3 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  );
export const jsonLeaf = fc.oneof(fc.string({ unit: 'binary', maxLength: 8 }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null));
/** What common events carry in properties: printable text, numbers, booleans, null. */
export const commonLeaf = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'grapheme', maxLength: 6 }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null));
export const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, jsonLeaf, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 3 }),
  object: fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', 'sku', 'tenantId', 'constructor')), tie('value'), { maxKeys: 3 }),
})).value;

export const KNOWN = ['eventId', 'tenantId', 'type', 'occurredAt', 'sessionId', 'userId', 'deviceId', 'url', 'referrer', 'campaignId', 'country', 'browser', 'revenue', 'properties'];

/** The common event: every field of the right type, mostly in range. */
export const commonEvent = fc.record(
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

export const anyEvent = fc
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
export const oneFault = fc
  .tuple(commonEvent, fc.constantFrom(...KNOWN), fc.boolean())
  .chain(([o, key, remove]) => (anyField[key] ?? fc.constant(undefined)).map((v) => {
    const out: Record<string, unknown> = { ...o };
    if (remove) delete out[key];
    else out[key] = v;
    return out;
  }));

/** Application properties: mostly none, sometimes a tenant in one spelling or another. */
export const appProps = fc.oneof(
  { weight: 4, arbitrary: fc.constant({}) },
  { weight: 1, arbitrary: fc.record({ tenantId: fc.oneof(fc.integer({ min: 1, max: 100_000 }), fc.constantFrom('42', 'x')) }) },
  { weight: 1, arbitrary: fc.record({ TenantId: fc.constant(42), source: fc.constant('web') }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: fc.record({ 'tenant-id': fc.integer({ min: 1, max: 3 }) }) },
);

/** Body bytes: the JSON, or the JSON damaged in the ways real bodies get damaged. */
export function bodies(doc: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<Buffer> {
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

