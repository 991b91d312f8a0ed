/**
 * The byte scanner (src/pipeline/scanCopy.ts) against the zod path: whenever the scanner takes an
 * event, validateEvent must accept it too, with the same key, and the COPY line the scanner wrote
 * must be the reference encoder's line of zod's row (encodeCopyText), column by column; the
 * properties column, which the scanner copies from the body instead of re-serializing, must hold
 * the same JSON value (what the jsonb column stores). When it declines, it writes nothing. The
 * scanner must also really take the common event, or the speed-up would not be there.
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeCopyBytes, encodeCopyText } from '../../src/db/copyEvents.js';
import { prepareBatch } from '../../src/pipeline/batch.js';
import { CopyWriter, ScannedRow, scanEvent } from '../../src/pipeline/scanCopy.js';
import type { EventRow, RawEvent } from '../../src/pipeline/types.js';
import { validateEvent, type ValidateOptions } from '../../src/pipeline/validate.js';
import { appProps, anyEvent, bodies, commonEvent, jsonValue, NOW, oneFault } from '../support/eventArbitraries.js';
import { makeSource } from '../support/rows.js';

const OPTS: ValidateOptions = { now: NOW, retentionDays: 30, aheadDays: 3, maxBodyBytes: 256 * 1024 };
const RUNS = 2000;
const FIELDS = ['eventId', 'tenantId', 'type', 'occurredAt', 'sessionId', 'userId', 'deviceId', 'url', 'referrer', 'campaignId', 'country', 'browser', 'revenue', 'properties'] as const;
const PROPERTIES_COLUMN = 13;

function raw(body: Buffer, properties: Record<string, unknown> = {}, partitionId = '1', offset = '512'): RawEvent {
  return { body, properties, source: makeSource({ partitionId, sequenceNumber: 7, offset, enqueuedTime: NOW }) };
}

/** A properties COPY field back to its JSON value (JSON text holds no other COPY escape). */
function jsonOfColumn(field: string): unknown {
  return field === '\\N' ? null : (JSON.parse(field.replaceAll('\\\\', '\\')) as unknown);
}

/** The scanner's line equals the reference encoder's line of zod's row, the properties as a JSON value. */
function assertSameLine(line: string, reference: EventRow): void {
  const expected = encodeCopyText([reference]);
  assert.ok(line.endsWith('\n'), 'the line ends with a newline');
  const got = line.slice(0, -1).split('\t');
  const want = expected.slice(0, -1).split('\t');
  assert.equal(got.length, want.length, `columns: ${JSON.stringify(line)}`);
  for (let c = 0; c < want.length; c++) {
    if (c === PROPERTIES_COLUMN) assert.deepStrictEqual(jsonOfColumn(got[c] as string), jsonOfColumn(want[c] as string), `properties: ${got[c]} vs ${want[c]}`);
    else assert.equal(got[c], want[c], `column ${c}`);
  }
}

/** Returns whether the scanner took it; asserts the scanner's decision and line against zod. */
function check(r: RawEvent, opts: ValidateOptions = OPTS): boolean {
  const out = new CopyWriter(16);
  const row = scanEvent(r, opts, out);
  if (row === undefined) {
    assert.equal(out.at, 0, 'a declined event writes nothing');
    return false;
  }
  const ref = validateEvent(r, opts);
  assert.ok(ref.ok, `the scanner took an event zod refuses: ${ref.ok ? '' : ref.error} (${r.body.toString('utf8').slice(0, 300)})`);
  assert.equal(row.tenantId, ref.row.tenantId);
  assert.equal(row.eventId, ref.row.eventId);
  assert.equal(row.occurredAt.getTime(), ref.row.occurredAt.getTime());
  assertSameLine(row.copyLine().toString('utf8'), ref.row);
  // The fields the scanner does not keep, built on demand, are zod's.
  for (const f of FIELDS) assert.deepStrictEqual(row[f], ref.row[f], f);
  return true;
}

/** JSON text with strings escaped the ways producers escape them: `\/`, `\u00e9`, `\u0041`. */
function reescaped(json: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(json, fc.constantFrom('/', 'é', 'A', '€', 'x')).map(([s, c]) => {
    const esc = c === '/' ? '\\/' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    return s.replaceAll(c, esc);
  });
}

/** Text full of what needs escaping somewhere: JSON escapes, COPY delimiters, non-ASCII, surrogates, NUL. */
const hostileText = fc.string({
  unit: fc.constantFrom('a', 'Z', ' ', '\n', '\r', '\t', '"', '\\', '/', '\b', '\f', '\u001f', '\u007f', 'é', 'ß', '東', '\u2028', '\u{1F600}', '\uD800', '\uDC00', '\u0000', '\u00a0'),
  maxLength: 20,
});

/** Number texts JSON.stringify would not print as they are, and some it would. */
const numberText = fc.oneof(
  fc.constantFrom('1.0', '1e2', '1E+2', '-0', '0', '-0.0', '0.0000001', '0.000001', '0.0000015', '1.50', '12345678901234567890', '123456789012345', '1234567890123456', '0.1', '-12.25', '1e999', '-1e999', '5e-324', '9007199254740993', '100', '0.30000000000000004'),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String).filter((s) => !s.includes('e')),
  fc.integer().map(String),
);

/** A hostile event: the common event's fields replaced by hostile text and properties by hostile documents. */
const hostileEvent = fc
  .tuple(commonEvent, fc.dictionary(fc.constantFrom('type', 'sessionId', 'url', 'referrer', 'country', 'browser', 'campaignId'), hostileText, { maxKeys: 3 }), fc.oneof(jsonValue, fc.dictionary(hostileText, jsonValue, { maxKeys: 3 })))
  .map(([o, texts, props]) => ({ ...o, ...texts, properties: props }));

/** The body's JSON text, with numbers, duplicate keys, depth and layouts no serializer of ours makes. */
const hostileJson = fc.oneof(
  hostileEvent.map((o) => JSON.stringify(o)),
  reescaped(hostileEvent.map((o) => JSON.stringify(o))),
  fc.tuple(commonEvent, fc.array(numberText, { minLength: 1, maxLength: 4 })).map(([o, nums]) => JSON.stringify({ ...o, properties: { n: '@@' } }).replace('"@@"', `[${nums.join(',')}]`)),
  fc.tuple(commonEvent, numberText).map(([o, n]) => JSON.stringify({ ...o, revenue: '@@' }).replace('"@@"', n)),
  fc.tuple(commonEvent, numberText).map(([o, n]) => JSON.stringify({ ...o, tenantId: '@@' }).replace('"@@"', n)),
  fc.tuple(commonEvent, fc.constantFrom('type', 'tenantId', 'occurredAt', 'eventId', 'properties', 'url')).map(([o, k]) => {
    const s = JSON.stringify(o);
    return `{"${k}":${JSON.stringify((o as Record<string, unknown>)[k] ?? null)},${s.slice(1)}`;
  }),
  commonEvent.map((o) => JSON.stringify({ ...o, properties: { k: 1 } }).replace('{"k":1}', '{"k":1,"k":{"x":2},"k":"last"}')),
  fc.tuple(commonEvent, fc.integer({ min: 10, max: 70 })).map(([o, depth]) => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < depth; i++) deep = i % 2 === 0 ? [deep] : { d: deep };
    return JSON.stringify({ ...o, properties: { deep } });
  }),
  commonEvent.map((o) => JSON.stringify(o, null, 2)),
  commonEvent.map((o) => JSON.stringify(o, null, '\t')),
  commonEvent.map((o) => JSON.stringify(o).replaceAll(',', ' , ').replaceAll(':', ' : ')),
  commonEvent.map((o) => JSON.stringify({ ...o, properties: { a: [1, 2, { b: null }] } }).replace('[1,2,', '[ 1 ,\t2 ,\n')),
  commonEvent.map((o) => JSON.stringify(o).replace(/\}$/, ',"extra":1}')),
  commonEvent.map((o) => JSON.stringify(o).replace('"type":"', '"type":"\\u0000')),
  commonEvent.map((o) => JSON.stringify(o).replace('"type":"', '"type":"\\ud83d\\ude00')),
  commonEvent.map((o) => JSON.stringify(o).replace('"type":"', '"type":"\u0001')),
  commonEvent.map((o) => JSON.stringify(o).replace('"occurredAt"', '"occurred\\u0041t"')),
);

describe('byte scanner agrees with the zod path', () => {
  test('on generated common events: it takes nearly every one, with zod row’s line', () => {
    let taken = 0;
    fc.assert(
      fc.property(commonEvent, (o) => {
        if (check(raw(Buffer.from(JSON.stringify(o), 'utf8')))) taken++;
      }),
      { numRuns: RUNS },
    );
    // Declined: properties numbers that do not print back as written (fc.double's 17-digit values).
    assert.ok(taken > RUNS * 0.6, `scanner took ${taken} of ${RUNS}`);
  });

  test('on generated good and bad bodies and application properties: never a different decision or line', () => {
    let taken = 0;
    let rejected = 0;
    fc.assert(
      fc.property(bodies(fc.oneof(commonEvent, oneFault, oneFault, anyEvent, hostileEvent)), appProps, (body, props) => {
        const r = raw(body, props);
        if (check(r)) taken++;
        else if (!validateEvent(r, OPTS).ok) rejected++;
      }),
      { numRuns: RUNS * 3 },
    );
    assert.ok(taken > RUNS / 10, `scanner took ${taken}`);
    assert.ok(rejected > RUNS / 2, `rejected ${rejected}`);
  });

  test('on hostile JSON text: escapes, surrogates, control characters, huge numbers, duplicate keys, depth, layouts', () => {
    let taken = 0;
    let declinedValid = 0;
    fc.assert(
      fc.property(hostileJson, fc.constantFrom('1', '0', 'p\t1', 'p\\2', 'ü'), fc.constantFrom('512', '1\n2', '\\x'), (json, partitionId, offset) => {
        const r = raw(Buffer.from(json, 'utf8'), {}, partitionId, offset);
        if (check(r)) taken++;
        else if (validateEvent(r, OPTS).ok) declinedValid++;
      }),
      { numRuns: RUNS * 3 },
    );
    // Both sides of the line were really exercised.
    assert.ok(taken > RUNS / 5, `scanner took ${taken}`);
    assert.ok(declinedValid > RUNS / 5, `scanner declined ${declinedValid} valid events`);
  });

  test('with a small body limit and a narrow window', () => {
    const tight: ValidateOptions = { now: NOW, retentionDays: 1, aheadDays: 1, maxBodyBytes: 300 };
    fc.assert(
      fc.property(bodies(commonEvent), (body) => {
        check(raw(body), tight);
      }),
      { numRuns: RUNS },
    );
  });

  test('fixed cases at the edges', () => {
    const base = { eventId: '0190b6a4-5c3e-7cc1-9d2e-3f4a5b6c7d8e', tenantId: 42, type: 'page_view', occurredAt: '2026-03-14T11:59:00.000Z' };
    const taken = (o: unknown, props: Record<string, unknown> = {}) => check(raw(Buffer.from(typeof o === 'string' ? o : JSON.stringify(o), 'utf8'), props));
    assert.equal(taken(base), true);
    assert.equal(taken({ ...base, eventId: undefined }), true, 'an id-less event gets its derived id');
    assert.equal(taken({ ...base, eventId: base.eventId.toUpperCase() }), true);
    assert.equal(taken({ ...base, type: 'x'.repeat(64) }), true);
    assert.equal(taken({ ...base, type: 'x'.repeat(65) }), false);
    assert.equal(taken({ ...base, sessionId: 'é'.repeat(128) }), true, '256 bytes');
    assert.equal(taken({ ...base, sessionId: 'é'.repeat(129) }), false, 'over 256 bytes: declined, though zod takes it');
    assert.equal(taken({ ...base, url: 'https://x.example/?q=a\tb\nc\\d"e' }), true);
    assert.equal(taken({ ...base, revenue: 1.00005 }), true);
    assert.equal(taken({ ...base, revenue: 1e12 + 1 }), false);
    assert.equal(taken({ ...base, properties: { name: 'Größe "42" \\ 東京', n: [1, -2.5, 0.000001, true, null] } }), true);
    assert.equal(taken({ ...base, properties: { p: 0.1 + 0.2 } }), false, '17 significant digits');
    assert.equal(taken({ ...base, properties: JSON.parse('{"__proto__":{"x":1}}') as unknown }), true);
    assert.equal(taken({ ...base, sku: 'B-2' }), false, 'unknown top-level fields are for the other paths');
    assert.equal(taken(base, { tenantId: 42 }), false, 'a tenant in the application properties');
    assert.equal(taken({ ...base, occurredAt: '2026-03-14T11:59:00.000+01:00' }), true);
    assert.equal(taken({ ...base, occurredAt: '2026-03-14T11:59:00Z' }), true);
    assert.equal(taken({ ...base, occurredAt: '2026-02-29T11:59:00.000Z' }), false);
    assert.equal(taken({ ...base, occurredAt: '2026-02-12T11:59:59.999Z' }), false);
    assert.equal(taken(`{"tenantId":42,"type":"a","sessionId":"a\\u00e9\\u20ac\\u000a\\u005c\\/\\b","occurredAt":"2026-03-14T11:59:00.000Z"}`), true);
    assert.equal(taken(`{"tenantId":42,"type":"a\\u00e9","occurredAt":"2026-03-14T11:59:00.000Z"}`), false, 'type with escapes: for the other paths');
    assert.equal(taken(`{"tenantId":42,"type":"a","type":"b","occurredAt":"2026-03-14T11:59:00.000Z"}`), false);
    assert.equal(taken(`{"tenantId":42,"type":"a","occurredAt":"2026-03-14T11:59:00.000Z"} x`), false);
    assert.equal(taken(`\uFEFF{"tenantId":42,"type":"a","occurredAt":"2026-03-14T11:59:00.000Z"}`), false);
  });
});

describe('prepareBatch with the scanner', () => {
  test('the same rows, dead letters and in-batch duplicates as without it, and the same COPY text', () => {
    fc.assert(
      fc.property(fc.array(bodies(fc.oneof(commonEvent, commonEvent, oneFault, hostileEvent)), { minLength: 1, maxLength: 40 }), (bodyList) => {
        // Repeats, so in-batch duplicates are met too.
        const raws = [...bodyList, ...bodyList.slice(0, 5)].map((b) => raw(b));
        const plain = prepareBatch(raws, OPTS, NOW);
        const scanned = prepareBatch(raws, OPTS, NOW, { copy: true });
        assert.equal(scanned.duplicatesInBatch, plain.duplicatesInBatch);
        assert.deepStrictEqual(scanned.invalid, plain.invalid);
        assert.deepStrictEqual(
          scanned.rows.map((r) => [r.tenantId, r.eventId, r.occurredAt.getTime(), r.raw]),
          plain.rows.map((r) => [r.tenantId, r.eventId, r.occurredAt.getTime(), r.raw]),
        );
        const got = encodeCopyBytes(scanned.rows).toString('utf8').split('\n');
        const want = encodeCopyText(plain.rows).split('\n');
        assert.equal(got.length, want.length);
        plain.rows.forEach((row, i) => assertSameLine(`${got[i]}\n`, row));
      }),
      { numRuns: 300 },
    );
  });

  test('a batch the scanner took whole is sent as one view of its buffer, and a gap is copied', () => {
    const mk = (i: number) => raw(Buffer.from(JSON.stringify({ eventId: `0190b6a4-5c3e-7cc1-9d2e-3f4a5b6c7d${String(i).padStart(2, '0')}`, tenantId: 7, type: 'click', occurredAt: '2026-03-14T11:00:00.000Z' }), 'utf8'));
    const raws = [mk(1), mk(2), mk(3), mk(2), mk(4)];
    const out = prepareBatch(raws, OPTS, NOW, { copy: true });
    assert.equal(out.duplicatesInBatch, 1);
    assert.ok(out.rows.every((r) => r instanceof ScannedRow && r.byScanner));
    const first = out.rows.slice(0, 3);
    const view = encodeCopyBytes(first);
    assert.equal(view.buffer, (first[0] as ScannedRow).copyBuf.buffer, 'no copy for contiguous lines');
    const all = encodeCopyBytes(out.rows).toString('utf8');
    assert.equal(all, encodeCopyText(out.rows));
    assert.equal(all.split('\n').length, 5);
    assert.deepStrictEqual(all.split('\n').slice(0, 4).map((l) => l.split('\t')[1]?.slice(-2)), ['01', '02', '03', '04'], 'the repeat left out, the rest in order');
  });
});
