/**
 * The COPY encoder (src/db/copyEvents.ts) against a straightforward reference encoder written from
 * PostgreSQL's text-format rules: for the same rows, encodeCopyBytes must give the same bytes and
 * encodeCopyText the same text, whatever the fields hold (tabs, newlines, CRs, backslashes, NUL,
 * lone surrogates, 256-character strings, times outside 1970–9999, rows out of time order).
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { COPY_COLUMNS, encodeCopyBytes, encodeCopyText, isoUtc } from '../../src/db/copyEvents.js';
import { copyTextField } from '../../src/pipeline/copyText.js';
import { EVENT_COLUMNS } from '../../src/pipeline/eventColumns.js';
import type { EventRow } from '../../src/pipeline/types.js';
import { makeSource } from '../support/rows.js';

/** COPY text format: backslash, newline, CR and tab escaped with a backslash; NULL is \N. */
function refField(v: string | null): string {
  if (v === null) return '\\N';
  let out = '';
  for (const c of v) {
    if (c === '\\') out += '\\\\';
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else if (c === '\t') out += '\\t';
    else out += c;
  }
  return out;
}

function refLine(r: EventRow): string {
  const s = r.raw.source;
  return [
    String(r.tenantId),
    r.eventId,
    r.occurredAt.toISOString(),
    refField(r.type),
    refField(r.sessionId),
    refField(r.userId),
    refField(r.deviceId),
    refField(r.url),
    refField(r.referrer),
    refField(r.campaignId),
    refField(r.country),
    refField(r.browser),
    r.revenue === null ? '\\N' : String(r.revenue),
    r.properties === null ? '\\N' : refField(JSON.stringify(r.properties)),
    refField(s.partitionId),
    String(s.sequenceNumber),
    refField(s.offset),
    s.enqueuedTime.toISOString(),
  ].join('\t');
}

const refText = (rows: readonly EventRow[]): string => rows.map((r) => `${refLine(r)}\n`).join('');

/** Strings built from the characters COPY treats specially, and others, up to 300 code units. */
const hostileChar = fc.oneof(
  fc.constantFrom('\t', '\n', '\r', '\\', '\u0000', '\u0001', '\u000b', '\u000c', '\u000e', '\u001f', '"', '\uD800', '\uDBFF', '\uDC00', '\uDFFF', 'é', '€', '😀', '\u2028', 'N', ' '),
  fc.string({ minLength: 1, maxLength: 1 }),
);
const hostile = fc.oneof(
  fc.string({ unit: hostileChar, maxLength: 40 }),
  fc.string({ unit: hostileChar, minLength: 256, maxLength: 300 }),
  fc.string({ maxLength: 256 }),
  fc.constant(''),
  fc.constant('\\N'),
);
const optHostile = fc.option(hostile, { nil: null });
/** Times across the whole Date range, and often near a day boundary. */
const anyTime = fc.oneof(
  fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true }),
  fc.date({ min: new Date('1969-12-31T00:00:00Z'), max: new Date('1970-01-02T00:00:00Z'), noInvalidDate: true }),
  fc.date({ min: new Date('9999-12-30T00:00:00Z'), max: new Date('+010000-01-02T00:00:00Z'), noInvalidDate: true }),
  fc.integer({ min: 0, max: 3 }).map((d) => new Date(Date.UTC(2026, 2, 14 + d) - 1 + (d % 2))),
);
const props = fc.option(fc.dictionary(hostile, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }), { nil: null });

const row: fc.Arbitrary<EventRow> = fc
  .record({
    tenantId: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    eventId: fc.uuid(),
    type: hostile,
    occurredAt: anyTime,
    sessionId: optHostile,
    userId: optHostile,
    deviceId: optHostile,
    url: optHostile,
    referrer: optHostile,
    campaignId: optHostile,
    country: optHostile,
    browser: optHostile,
    revenue: fc.option(fc.oneof(fc.double({ min: -1e12, max: 1e12, noNaN: true }), fc.integer()), { nil: null }),
    properties: props,
    partitionId: hostile,
    sequenceNumber: fc.integer({ min: -1, max: Number.MAX_SAFE_INTEGER }),
    offset: hostile,
    enqueuedTime: anyTime,
  })
  .map(({ partitionId, sequenceNumber, offset, enqueuedTime, ...fields }) => ({
    ...fields,
    raw: { body: Buffer.from('{}'), properties: {}, source: makeSource({ partitionId, sequenceNumber, offset, enqueuedTime }) },
  }));

/** Rows of one batch share enqueued times and days, as the encoder's memos expect; and sometimes not. */
const batch = fc.array(row, { maxLength: 30 }).chain((rows) =>
  fc.array(fc.integer({ min: 0, max: Math.max(0, rows.length - 1) }), { maxLength: rows.length }).map((picks) => {
    // Copy some rows' enqueued times to others, so equal consecutive times occur.
    const out = rows.map((r) => ({ ...r, raw: { ...r.raw, source: { ...r.raw.source } } }));
    picks.forEach((from, to) => {
      const src = out[from];
      const dst = out[to];
      if (src && dst) dst.raw.source.enqueuedTime = new Date(src.raw.source.enqueuedTime.getTime());
    });
    return out;
  }),
);

test('encodeCopyBytes and encodeCopyText equal the reference encoder on generated hostile rows', () => {
  fc.assert(
    fc.property(batch, (rows) => {
      const expected = refText(rows);
      assert.equal(encodeCopyText(rows), expected);
      assert.ok(encodeCopyBytes(rows).equals(Buffer.from(expected, 'utf8')));
    }),
    { numRuns: 1500 },
  );
});

test('one line per row, whatever the fields hold, and large batches grow the buffer without loss', () => {
  const long = '\t\n\r\\\u0000😀\uD800'.repeat(40);
  const rows: EventRow[] = Array.from({ length: 700 }, (_, i) => ({
    tenantId: i + 1,
    eventId: '0190b6a4-5c3e-7cc1-9d2e-3f4a5b6c7d8e',
    type: long,
    occurredAt: new Date(Date.UTC(2026, 2, 14) + i * 3_600_000),
    sessionId: long,
    userId: long,
    deviceId: long,
    url: long,
    referrer: long,
    campaignId: long,
    country: long,
    browser: long,
    revenue: i,
    properties: { [long]: long },
    raw: { body: Buffer.from('{}'), properties: {}, source: makeSource({ partitionId: long, offset: long, enqueuedTime: new Date(i) }) },
  }));
  const bytes = encodeCopyBytes(rows);
  assert.ok(bytes.equals(Buffer.from(refText(rows), 'utf8')));
  assert.ok(bytes.length > 700 * 512, 'the rows are larger than the first buffer');
  assert.equal(bytes.toString('utf8').split('\n').length, 701);
  assert.equal(encodeCopyBytes([]).length, 0);
});

test('isoUtc equals toISOString across day and year boundaries, whatever order the days come in', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.date({ noInvalidDate: true }), fc.integer({ min: -2, max: 2 }).map((d) => new Date(Date.UTC(1970 + d * 4000 + 4000, 0, 1) - 1))), { maxLength: 20 }), (dates) => {
      for (const d of dates) assert.equal(isoUtc(d), d.toISOString());
    }),
    { numRuns: 1000 },
  );
});

test('the hand-written COPY encoder writes exactly the column table (pipeline/eventColumns.ts), in its order', () => {
  assert.deepEqual(COPY_COLUMNS, EVENT_COLUMNS.map((c) => c.column));
  // The upsert's value of each column, as COPY text: what the encoder must write for that column.
  const fromTable = (r: EventRow): string =>
    `${EVENT_COLUMNS.map((c) => {
      const v = c.value(r);
      return v === null ? '\\N' : copyTextField(typeof v === 'string' ? v : String(v as number));
    }).join('\t')}\n`;
  fc.assert(
    fc.property(batch, (rows) => {
      assert.equal(encodeCopyText(rows), rows.map(fromTable).join(''));
    }),
    { numRuns: 500 },
  );
});
