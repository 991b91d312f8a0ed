import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { deriveEventId } from '../../src/pipeline/eventId.js';
import type { RawEvent } from '../../src/pipeline/types.js';
import { MAX_DEPTH, parseTimestamp, round4, validateEvent, type ValidateOptions, type ValidateResult } from '../../src/pipeline/validate.js';
import { makeSource } from '../support/rows.js';

const NOW = new Date('2024-05-10T12:00:00Z');
const DAY = 86_400_000;
const OPTS: ValidateOptions = { now: NOW, retentionDays: 30, aheadDays: 3, maxBodyBytes: 256 * 1024 };

function raw(body: string | Buffer, properties: Record<string, unknown> = {}): RawEvent {
  return {
    body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
    properties,
    source: makeSource({ partitionId: '0', sequenceNumber: 1, offset: '0', enqueuedTime: NOW }),
  };
}

const BASE = {
  eventId: '0190b6a4-5c3e-7cc1-9d2e-3f4a5b6c7d8e',
  tenantId: 42,
  type: 'page_view',
  occurredAt: '2024-05-10T11:59:00Z',
};

/** The base event with fields replaced (undefined removes a field). */
function event(overrides: Record<string, unknown> = {}): string {
  const o: Record<string, unknown> = { ...BASE };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete o[k];
    else o[k] = v;
  }
  return JSON.stringify(o);
}

function check(body: string | Buffer, properties: Record<string, unknown> = {}, opts: ValidateOptions = OPTS): ValidateResult {
  return validateEvent(raw(body, properties), opts);
}

function errorOf(r: ValidateResult): string {
  assert.equal(r.ok, false, 'expected the event to be invalid');
  return r.ok ? '' : r.error;
}

function rowOf(r: ValidateResult) {
  if (!r.ok) assert.fail(`expected a valid event, got: ${r.error}`);
  return r.row;
}

describe('a valid event', () => {
  test('becomes a typed row', () => {
    const text = event({ sessionId: 's-1', userId: 'u-1', deviceId: 'd-1', url: 'https://shop.example/p/1?x=1', referrer: 'https://search.example', campaignId: 'spring', country: 'DE', browser: 'Firefox', revenue: 19.99, properties: { sku: 'A-1', qty: 2 } });
    const r = validateEvent(raw(text), OPTS);
    const row = rowOf(r);
    assert.deepEqual({ ...row, raw: undefined }, {
      tenantId: 42,
      eventId: '0190b6a4-5c3e-7cc1-9d2e-3f4a5b6c7d8e',
      type: 'page_view',
      occurredAt: new Date('2024-05-10T11:59:00Z'),
      sessionId: 's-1',
      userId: 'u-1',
      deviceId: 'd-1',
      url: 'https://shop.example/p/1?x=1',
      referrer: 'https://search.example',
      campaignId: 'spring',
      country: 'DE',
      browser: 'Firefox',
      revenue: 19.99,
      properties: { sku: 'A-1', qty: 2 },
      raw: undefined,
    });
    assert.ok(row.raw.body.equals(Buffer.from(text)), 'the row keeps its raw event');
  });

  test('minimal: optional fields become null', () => {
    const row = rowOf(check(event()));
    for (const f of ['sessionId', 'userId', 'deviceId', 'url', 'referrer', 'campaignId', 'country', 'browser', 'revenue', 'properties'] as const) {
      assert.equal(row[f], null, f);
    }
  });

  test('a UTF-8 byte-order mark before the JSON is tolerated', () => {
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(event())]);
    assert.equal(rowOf(check(withBom)).tenantId, 42);
  });
});

describe('body', () => {
  const cases: [string, Buffer | string, RegExp, Partial<ValidateOptions>?][] = [
    ['oversized', event({ properties: { pad: 'x'.repeat(500) } }), /^body: \d+ bytes exceeds the limit of 300$/, { maxBodyBytes: 300 }],
    ['empty', '', /^body: is empty/],
    ['invalid UTF-8 (0xff)', Buffer.from([0x7b, 0xff, 0x7d]), /^body: is not valid UTF-8$/],
    ['overlong UTF-8 encoding of NUL', Buffer.concat([Buffer.from('{"type":"'), Buffer.from([0xc0, 0x80]), Buffer.from('"}')]), /^body: is not valid UTF-8$/],
    ['UTF-8-encoded surrogate (CESU)', Buffer.concat([Buffer.from('{"type":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]), /^body: is not valid UTF-8$/],
    ['truncated multi-byte sequence', Buffer.from([0x7b, 0x22, 0xe2, 0x82]), /^body: is not valid UTF-8$/],
    ['not JSON', 'tenantId=1&type=click', /^body: is not valid JSON/],
    ['truncated JSON', event().slice(0, 20), /^body: is not valid JSON/],
    ['raw control character inside a string', '{"type":"a\u0001b"}', /^body: is not valid JSON/],
    ['JSON array', '[1,2]', /^body: must be a JSON object, not an array$/],
    ['JSON string', '"hello"', /^body: must be a JSON object, not a string$/],
    ['JSON number', '42', /^body: must be a JSON object, not a number$/],
    ['JSON null', 'null', /^body: must be a JSON object, not null$/],
  ];
  for (const [name, body, re, opts] of cases) {
    test(name, () => assert.match(errorOf(check(body, {}, { ...OPTS, ...opts })), re));
  }
});

describe('eventId', () => {
  test('absent or null → UUIDv5 of the body bytes', () => {
    for (const text of [event({ eventId: undefined }), event({ eventId: null })]) {
      assert.equal(rowOf(check(text)).eventId, deriveEventId(Buffer.from(text)));
    }
  });
  test('upper-case UUIDs are lower-cased; any version is accepted', () => {
    assert.equal(rowOf(check(event({ eventId: '0190B6A4-5C3E-7CC1-9D2E-3F4A5B6C7D8E' }))).eventId, '0190b6a4-5c3e-7cc1-9d2e-3f4a5b6c7d8e');
    assert.equal(rowOf(check(event({ eventId: 'f47ac10b-58cc-4372-a567-0e02b2c3d479' }))).eventId, 'f47ac10b-58cc-4372-a567-0e02b2c3d479');
  });
  const bad: [string, unknown, RegExp][] = [
    ['not a UUID', 'abc', /^eventId: must be a UUID such as/],
    ['UUID without hyphens', '0190b6a45c3e7cc19d2e3f4a5b6c7d8e', /^eventId: must be a UUID such as/],
    ['UUID in braces', '{0190b6a4-5c3e-7cc1-9d2e-3f4a5b6c7d8e}', /^eventId: must be a UUID such as/],
    ['number', 12345, /^eventId: must be a UUID string$/],
    ['object', { id: 1 }, /^eventId: must be a UUID string$/],
  ];
  for (const [name, value, re] of bad) {
    test(`invalid: ${name}`, () => assert.match(errorOf(check(event({ eventId: value }))), re));
  }
});

describe('tenantId', () => {
  const good: [string, Record<string, unknown>, Record<string, unknown>, number][] = [
    ['body number', { tenantId: 7 }, {}, 7],
    ['body digit string', { tenantId: '0042' }, {}, 42],
    ['property tenantId', { tenantId: undefined }, { tenantId: 8 }, 8],
    ['property TenantId (string)', { tenantId: undefined }, { TenantId: '9' }, 9],
    ['property tenant_id', { tenantId: undefined }, { tenant_id: 10 }, 10],
    ['property tenantid', { tenantId: undefined }, { tenantid: '11' }, 11],
    ['property bigint', { tenantId: undefined }, { tenantId: 12n }, 12],
    ['body null, property set', { tenantId: null }, { tenantId: 13 }, 13],
    ['body and property agree', { tenantId: 14 }, { TenantId: '14' }, 14],
    ['largest safe integer', { tenantId: Number.MAX_SAFE_INTEGER }, {}, Number.MAX_SAFE_INTEGER],
  ];
  for (const [name, fields, props, expected] of good) {
    test(`valid: ${name}`, () => assert.equal(rowOf(check(event(fields), props)).tenantId, expected));
  }
  const bad: [string, Record<string, unknown>, Record<string, unknown>, RegExp][] = [
    ['missing everywhere', { tenantId: undefined }, {}, /^tenantId: required \(in the body or as an application property\)$/],
    ['zero', { tenantId: 0 }, {}, /^tenantId: must be a positive integer$/],
    ['negative', { tenantId: -3 }, {}, /^tenantId: must be a positive integer$/],
    ['fraction', { tenantId: 1.5 }, {}, /^tenantId: must be a positive integer$/],
    ['beyond 2^53', { tenantId: 2 ** 53 }, {}, /^tenantId: must be a positive integer$/],
    ['huge', { tenantId: 1e308 }, {}, /^tenantId: must be a positive integer$/],
    ['digits with a letter', { tenantId: '12a' }, {}, /^tenantId: must be a positive integer$/],
    ['signed string', { tenantId: '+5' }, {}, /^tenantId: must be a positive integer$/],
    ['empty string', { tenantId: '' }, {}, /^tenantId: must be a positive integer$/],
    ['boolean', { tenantId: true }, {}, /^tenantId: must be a positive integer$/],
    ['object', { tenantId: { id: 1 } }, {}, /^tenantId: must be a positive integer$/],
    ['bad property', { tenantId: undefined }, { tenant_id: 'acme' }, /^tenantId: application property tenant_id must be a positive integer, got "acme"$/],
    ['body and property differ', { tenantId: 5 }, { TenantId: 6 }, /^tenantId: the body says 5 but application property TenantId says 6$/],
    ['two properties differ', { tenantId: undefined }, { tenantId: 1, tenant_id: 2 }, /^tenantId: application properties tenantId \(1\) and tenant_id \(2\) disagree$/],
  ];
  for (const [name, fields, props, re] of bad) {
    test(`invalid: ${name}`, () => assert.match(errorOf(check(event(fields), props)), re));
  }
  test('the tenant is reported with the error when it is known', () => {
    const r = check(event({ type: '' }));
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.tenantId, 42);
  });
});

describe('type', () => {
  const emoji = '\u{1F600}';
  test('64 characters pass even when they are 128 UTF-16 units', () => {
    assert.equal(rowOf(check(event({ type: emoji.repeat(64) }))).type, emoji.repeat(64));
    assert.equal(rowOf(check(event({ type: 'x'.repeat(64) }))).type, 'x'.repeat(64));
  });
  const bad: [string, unknown, RegExp][] = [
    ['missing', undefined, /^type: required$/],
    ['null', null, /^type: must be a string$/],
    ['number', 5, /^type: must be a string$/],
    ['empty', '', /^type: must not be empty$/],
    ['blank', '   ', /^type: must not be empty$/],
    ['65 characters', 'x'.repeat(65), /^type: must be at most 64 characters$/],
    ['65 astral characters', emoji.repeat(65), /^type: must be at most 64 characters$/],
  ];
  for (const [name, value, re] of bad) {
    test(`invalid: ${name}`, () => assert.match(errorOf(check(event({ type: value }))), re));
  }
});

describe('occurredAt', () => {
  const good: [string, string, string][] = [
    ['Z', '2024-05-10T11:00:00Z', '2024-05-10T11:00:00.000Z'],
    ['positive offset', '2024-05-10T13:00:00+02:00', '2024-05-10T11:00:00.000Z'],
    ['negative offset', '2024-05-10T06:30:00-04:30', '2024-05-10T11:00:00.000Z'],
    ['milliseconds', '2024-05-10T11:00:00.123Z', '2024-05-10T11:00:00.123Z'],
    ['microseconds are cut to milliseconds', '2024-05-10T11:00:00.1239999Z', '2024-05-10T11:00:00.123Z'],
    ['no seconds', '2024-05-10T11:00Z', '2024-05-10T11:00:00.000Z'],
    ['lower-case t and z (RFC 3339)', '2024-05-10t11:00:00z', '2024-05-10T11:00:00.000Z'],
    ['leap day', '2024-02-29T12:00:00Z', '2024-02-29T12:00:00.000Z'],
    ['exactly at the retention edge', new Date(NOW.getTime() - 30 * DAY).toISOString(), new Date(NOW.getTime() - 30 * DAY).toISOString()],
    ['exactly at the ahead edge', new Date(NOW.getTime() + 3 * DAY).toISOString(), new Date(NOW.getTime() + 3 * DAY).toISOString()],
  ];
  for (const [name, value, expected] of good) {
    test(`valid: ${name}`, () => {
      const opts = name === 'leap day' ? { ...OPTS, retentionDays: 365 } : OPTS;
      assert.equal(rowOf(check(event({ occurredAt: value }), {}, opts)).occurredAt.toISOString(), expected);
    });
  }
  const bad: [string, unknown, RegExp][] = [
    ['missing', undefined, /^occurredAt: required$/],
    ['number (epoch ms)', NOW.getTime(), /^occurredAt: must be a string$/],
    ['no offset', '2024-05-10T11:00:00', /^occurredAt: must include a UTC offset \(Z or ±hh:mm\)/],
    ['no offset, space separator', '2024-05-10 11:00:00.5', /^occurredAt: must include a UTC offset/],
    ['date only', '2024-05-10', /^occurredAt: must be an ISO-8601 timestamp with a UTC offset/],
    ['basic-format offset', '2024-05-10T11:00:00+0200', /^occurredAt: must be an ISO-8601 timestamp/],
    ['RFC 2822', 'Fri, 10 May 2024 11:00:00 GMT', /^occurredAt: must be an ISO-8601 timestamp/],
    ['words', 'yesterday', /^occurredAt: must be an ISO-8601 timestamp/],
    ['February 30', '2024-02-30T00:00:00Z', /^occurredAt: "2024-02-30T00:00:00Z" is not a valid date and time$/],
    ['hour 24', '2024-05-10T24:00:00Z', /is not a valid date and time$/],
    ['second 60', '2024-05-10T11:00:60Z', /is not a valid date and time$/],
    ['offset minutes 60', '2024-05-10T11:00:00+01:60', /has an invalid UTC offset$/],
    ['older than retention', new Date(NOW.getTime() - 30 * DAY - 1).toISOString(), /^occurredAt: .* is older than the retention window of 30 days$/],
    ['year 0050', '0050-05-10T11:00:00Z', /is older than the retention window/],
    ['beyond ahead window', new Date(NOW.getTime() + 3 * DAY + 1).toISOString(), /^occurredAt: .* is more than 3 days in the future$/],
    ['far future', '9999-12-31T23:59:59Z', /is more than 3 days in the future$/],
  ];
  for (const [name, value, re] of bad) {
    test(`invalid: ${name}`, () => assert.match(errorOf(check(event({ occurredAt: value }))), re));
  }
  test('parseTimestamp handles years below 100 literally', () => {
    const t = parseTimestamp('0050-01-01T00:00:00Z');
    assert.ok('ms' in t);
    assert.equal(new Date(t.ms).getUTCFullYear(), 50);
  });
});

describe('optional strings', () => {
  const fields: [string, number][] = [
    ['sessionId', 256],
    ['userId', 256],
    ['deviceId', 256],
    ['url', 2048],
    ['referrer', 2048],
    ['campaignId', 256],
    ['country', 256],
    ['browser', 256],
  ];
  for (const [field, max] of fields) {
    test(`${field}: null, absent and ${max} characters pass; other types and ${max + 1} characters do not`, () => {
      assert.equal(rowOf(check(event({ [field]: null })))[field as 'url'], null);
      assert.equal(rowOf(check(event({ [field]: 'x'.repeat(max) })))[field as 'url'], 'x'.repeat(max));
      assert.equal(errorOf(check(event({ [field]: 'x'.repeat(max + 1) }))), `${field}: must be at most ${max} characters`);
      for (const wrong of [5, true, ['a'], { a: 1 }]) {
        assert.equal(errorOf(check(event({ [field]: wrong }))), `${field}: must be a string or null`);
      }
    });
  }
});

describe('revenue', () => {
  const good: [string, unknown, number | null][] = [
    ['null', null, null],
    ['integer', 100, 100],
    ['rounded to 4 places', 1.23456, 1.2346],
    ['half away from zero, as numeric(18,4) does', 1.00005, 1.0001],
    ['negative half', -1.00005, -1.0001],
    ['tiny rounds to zero', 1e-7, 0],
    ['tiny negative is zero, not -0', -1e-7, 0],
    ['upper bound', 1e12, 1e12],
    ['lower bound', -1e12, -1e12],
  ];
  for (const [name, value, expected] of good) {
    test(`valid: ${name}`, () => assert.equal(Object.is(rowOf(check(event({ revenue: value }))).revenue, expected), true));
  }
  const bad: [string, string, RegExp][] = [
    ['string', event({ revenue: '12.50' }), /^revenue: must be a number or null$/],
    ['too large', event({ revenue: 1e12 + 1 }), /^revenue: must be between -1e12 and 1e12$/],
    ['too small', event({ revenue: -2e12 }), /^revenue: must be between -1e12 and 1e12$/],
    ['overflowing literal', event().replace(/}$/, ',"revenue":1e400}'), /^revenue: number is out of range$/],
  ];
  for (const [name, text, re] of bad) {
    test(`invalid: ${name}`, () => assert.match(errorOf(check(text)), re));
  }
  /** Reference: half-away-from-zero on the decimal digits String(x) prints, in integer arithmetic. */
  function decimalRound4(x: number): number {
    const [int = '0', frac = ''] = String(Math.abs(x)).split('.');
    const padded = frac.padEnd(5, '0');
    let scaled = BigInt(int + padded.slice(0, 4));
    if (Number(padded[4]) >= 5) scaled += 1n;
    const text = scaled.toString().padStart(5, '0');
    const r = Number(`${text.slice(0, -4)}.${text.slice(-4)}`);
    return x < 0 && r !== 0 ? -r : r;
  }
  test('round4 agrees with decimal rounding on a sweep of half steps', () => {
    for (let i = -20000; i <= 20000; i += 7) {
      const x = Number((i / 10000 + 0.00005).toFixed(5)); // e.g. 1.00005: on a half step in decimal
      assert.ok(!String(x).includes('e'));
      assert.equal(round4(x), decimalRound4(x), String(x));
    }
  });
});

describe('properties and unknown fields', () => {
  test('unknown top-level fields are kept in properties under their own names', () => {
    const row = rowOf(check(event({ properties: { a: 1 }, plan: 'pro', cart: { items: 2 } })));
    assert.deepEqual(row.properties, { a: 1, plan: 'pro', cart: { items: 2 } });
  });
  test('unknown fields without properties still produce properties', () => {
    assert.deepEqual(rowOf(check(event({ extra: null }))).properties, { extra: null });
  });
  test('an empty properties object stays an object', () => {
    assert.deepEqual(rowOf(check(event({ properties: {} }))).properties, {});
  });
  const bad: [string, string, RegExp][] = [
    ['array', event({ properties: [1, 2] }), /^properties: must be a JSON object or null$/],
    ['string', event({ properties: 'a=1' }), /^properties: must be a JSON object or null$/],
    ['number', event({ properties: 3 }), /^properties: must be a JSON object or null$/],
    ['unknown field collides with properties', event({ properties: { plan: 'a' }, plan: 'b' }), /^plan: unknown top-level field also present in properties/],
    ['over 64 KiB serialized', event({ properties: { big: 'x'.repeat(70_000) } }), /^properties: \d+ bytes serialized .* exceeds the limit of 65536$/],
    ['over 64 KiB through unknown fields', event({ filler: 'y'.repeat(70_000) }), /^properties: \d+ bytes serialized/],
    ['non-finite number deep inside', event().replace(/}$/, ',"properties":{"m":[1,{"x":-1e999}]}}'), /^properties\.m\[1\]\.x: number is out of range$/],
  ];
  for (const [name, text, re] of bad) {
    test(`invalid: ${name}`, () => assert.match(errorOf(check(text)), re));
  }
  test(`nesting deeper than ${MAX_DEPTH} levels is refused, ${MAX_DEPTH - 2} inside properties pass`, () => {
    const nest = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
    assert.match(errorOf(check(event().replace(/}$/, `,"properties":${nest(MAX_DEPTH)}}`))), /^properties: nested deeper than 64 levels$/);
    assert.equal(rowOf(check(event().replace(/}$/, `,"properties":${nest(MAX_DEPTH - 2)}}`))).tenantId, 42);
  });
  test('__proto__, constructor and prototype keys are data, not prototype changes', () => {
    const text = event().replace(/}$/, ',"properties":{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}}}}');
    const row = rowOf(check(text));
    const props = row.properties ?? {};
    assert.equal(Object.getPrototypeOf(props), Object.prototype);
    assert.deepEqual(Object.keys(props), ['__proto__', 'constructor']);
    assert.deepEqual(Object.getOwnPropertyDescriptor(props, '__proto__')?.value, { isAdmin: true });
    assert.equal((props as { isAdmin?: unknown }).isAdmin, undefined);
    assert.equal(({} as Record<string, unknown>).isAdmin, undefined);
    assert.equal(JSON.stringify(props), '{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}}}');
  });
  test('a top-level __proto__ is an unknown field like any other', () => {
    const row = rowOf(check(event().replace(/}$/, ',"__proto__":{"polluted":1}}')));
    assert.deepEqual(Object.getOwnPropertyDescriptor(row.properties, '__proto__')?.value, { polluted: 1 });
    assert.equal(Object.getPrototypeOf(row.properties), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
  test('a top-level __proto__ collides with properties.__proto__ like any other key', () => {
    const text = event().replace(/}$/, ',"__proto__":1,"properties":{"__proto__":2}}');
    assert.match(errorOf(check(text)), /^__proto__: unknown top-level field also present in properties/);
  });
});

describe('strings PostgreSQL cannot store', () => {
  const bad: [string, string, RegExp][] = [
    ['NUL in type', event({ type: 'a\u0000b' }), /^type: contains U\+0000 \(NUL\), which PostgreSQL cannot store$/],
    ['NUL in url', event({ url: 'https://x/\u0000' }), /^url: contains U\+0000/],
    ['NUL in a nested property value', event({ properties: { a: { b: ['ok', 'x\u0000'] } } }), /^properties\.a\.b\[1\]: contains U\+0000/],
    ['NUL in a property key', event({ properties: { 'k\u0000': 1 } }), /^properties: a key contains U\+0000/],
    ['NUL in an unknown field name', event({ 'odd\u0000': 1 }), /^body: a key contains U\+0000/],
    ['lone high surrogate', event({ sessionId: 'a\ud800b' }), /^sessionId: contains a lone UTF-16 surrogate/],
    ['lone low surrogate at the end', event({ userId: 'a\udc00' }), /^userId: contains a lone UTF-16 surrogate/],
    ['lone surrogate in a property key', event({ properties: { '\udfff': 1 } }), /^properties: a key contains a lone UTF-16 surrogate/],
    ['reversed pair', event({ browser: '\ude00\ud83d' }), /^browser: contains a lone UTF-16 surrogate/],
  ];
  for (const [name, text, re] of bad) {
    test(name, () => assert.match(errorOf(check(text)), re));
  }
  test('a proper surrogate pair (emoji) is fine', () => {
    assert.equal(rowOf(check(event({ sessionId: 'a\u{1F680}b' }))).sessionId, 'a\u{1F680}b');
  });
  test('error messages themselves never carry NUL or lone surrogates', () => {
    const r = check(event({ tenantId: undefined }), { tenant_id: 'x\u0000\ud800' });
    const error = errorOf(r);
    assert.match(error, /^tenantId: application property tenant_id must be a positive integer/);
    assert.equal(error.includes('\u0000'), false);
    assert.equal(/[\ud800-\udfff]/.test(error), false);
  });
});

describe('hostile strings are valid data and come through verbatim', () => {
  const hostile = [
    "'); drop table events; --",
    "Robert'); DROP TABLE Students;--",
    '1 OR 1=1',
    '"; SELECT pg_sleep(10); --',
    '$1 $2 ::text E\'\\x00\'',
    '<script>alert(1)</script>',
    '${jndi:ldap://127.0.0.1/a}',
    '%s%s%s%n',
    '\\',
    '"\'`',
    '\u202eevil\u202c',
    'ünïcødé 中文 🚀',
    '\t\r\n',
    'null',
    '__proto__',
  ];
  for (const s of hostile) {
    test(JSON.stringify(s), () => {
      // A blank type is refused on its own account; wrap it so the rest of the string is tested.
      const type = s.trim() === '' ? `[${s}]` : s;
      const row = rowOf(check(event({ type, sessionId: s, url: s, properties: { [s]: s } })));
      assert.equal(row.type, type);
      assert.equal(row.sessionId, s);
      assert.equal(row.url, s);
      assert.equal(Object.getOwnPropertyDescriptor(row.properties, s)?.value, s);
    });
  }
});

describe('never throws', () => {
  /** xorshift32: deterministic, so a failure reproduces. */
  function prng(seed: number) {
    let x = seed >>> 0 || 1;
    return () => {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      return x / 2 ** 32;
    };
  }
  function assertResult(r: ValidateResult) {
    assert.equal(typeof r.ok, 'boolean');
    if (!r.ok) {
      assert.equal(typeof r.error, 'string');
      assert.ok(r.error.length > 0);
      assert.equal(r.error.includes('\u0000'), false);
    }
  }

  test('random bytes', () => {
    const rnd = prng(12345);
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.alloc(Math.floor(rnd() * 200));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(rnd() * 256);
      const r = check(bytes);
      assertResult(r);
      assert.equal(r.ok, false);
    }
  });

  test('random mutations of a valid event', () => {
    const rnd = prng(777);
    const alphabet = '{}[]":,0123456789-.eE+tfnul\\u0000ZT ab\u00e9\u{1F600}';
    const chars = [...alphabet];
    const base = event({ sessionId: 's', properties: { a: [1, { b: 'c' }] } });
    let valid = 0;
    for (let i = 0; i < 3000; i++) {
      const s = [...base];
      const edits = 1 + Math.floor(rnd() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rnd() * s.length);
        const ch = chars[Math.floor(rnd() * chars.length)] ?? 'x';
        if (rnd() < 0.5) s[at] = ch;
        else s.splice(at, 1);
      }
      const r = check(s.join(''));
      assertResult(r);
      if (r.ok) valid++;
    }
    assert.ok(valid < 3000, 'mutations must produce some invalid events');
  });

  test('hostile shapes: deep nesting, huge numbers, huge key counts, prototype keys', () => {
    const bodies = [
      '['.repeat(100_000) + ']'.repeat(100_000),
      '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000),
      event().replace(/}$/, `,"properties":${'['.repeat(5000)}${']'.repeat(5000)}}`),
      event({ tenantId: undefined }).replace(/}$/, ',"tenantId":123456789012345678901234567890}'),
      event().replace(/}$/, ',"revenue":-1e400}'),
      `{${Array.from({ length: 20_000 }, (_, i) => `"k${i}":${i}`).join(',')}}`,
      '{"__proto__":null,"constructor":null,"toString":1,"hasOwnProperty":1,"valueOf":"x"}',
      event({ hasOwnProperty: 'x', toString: 'y' }),
    ];
    for (const b of bodies) assertResult(check(b));
    assert.equal(({} as Record<string, unknown>).a, undefined);
  });

  test('odd application properties', () => {
    const props = JSON.parse('{"__proto__":{"tenantId":5}}') as Record<string, unknown>;
    assertResult(check(event({ tenantId: undefined }), props));
    assertResult(check(event(), { tenantId: { low: 1, high: 0 }, TenantId: [1], tenant_id: Symbol('x') }));
    assert.match(errorOf(check(event({ tenantId: undefined }), props)), /^tenantId: required/);
  });
});
