/**
 * The dashboard's pure parts, under Node: time ranges and grains, the layout's URL form (and what
 * a hostile or broken URL turns into), panel moves, and the panels' tables from API responses.
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { DEFAULT_PANELS, STALE_MS, decodeState, describeFreshness, defaultState, encodeState, movePanel, resolveRange, tenantProblem, type Panel } from '../../web/dashboard/model.js';
import { buildView, fromUnits, needKey, needsOf, toCsv, toUnits, formatMoney, type MetricsResponse } from '../../web/dashboard/data.js';

const now = new Date('2026-03-14T10:37:25.500Z');

describe('ranges', () => {
  const cases: [Parameters<typeof resolveRange>[0], string, string, string][] = [
    ['15m', '2026-03-14T10:23:00.000Z', '2026-03-14T10:38:00.000Z', 'minute'],
    ['1h', '2026-03-14T09:38:00.000Z', '2026-03-14T10:38:00.000Z', 'minute'],
    ['24h', '2026-03-13T11:00:00.000Z', '2026-03-14T11:00:00.000Z', 'hour'],
    ['7d', '2026-03-07T11:00:00.000Z', '2026-03-14T11:00:00.000Z', 'hour'],
    ['30d', '2026-02-13T00:00:00.000Z', '2026-03-15T00:00:00.000Z', 'day'],
  ];
  for (const [key, from, to, grain] of cases) {
    test(`${key}: ends with the bucket that holds now, in ${grain}s`, () => {
      const r = resolveRange(key, now);
      assert.deepEqual([r.from.toISOString(), r.to.toISOString(), r.grain], [from, to, grain]);
    });
  }
  test('custom: the grain follows the span, bounds widen to whole buckets, old minutes become hours', () => {
    const short = resolveRange('custom', now, { from: new Date('2026-03-14T08:10:30Z'), to: new Date('2026-03-14T09:00:10Z') });
    assert.deepEqual([short.from.toISOString(), short.to.toISOString(), short.grain], ['2026-03-14T08:10:00.000Z', '2026-03-14T09:01:00.000Z', 'minute']);
    const old = resolveRange('custom', now, { from: new Date('2026-02-01T08:10:00Z'), to: new Date('2026-02-01T09:00:00Z') });
    assert.equal(old.grain, 'hour', 'minute rollups are gone after 7 days');
    assert.equal(resolveRange('custom', now, { from: new Date('2026-01-01T00:00:00Z'), to: new Date('2026-03-01T00:00:00Z') }).grain, 'day');
    assert.throws(() => resolveRange('custom', now, { from: now, to: now }), /start before its end/);
    assert.throws(() => resolveRange('custom', now), /start before its end/);
  });
});

describe('layout in the URL', () => {
  test('round trip: every setting of every panel, the tenant and a custom range', () => {
    const s = defaultState();
    s.tenant = 42;
    s.range = 'custom';
    s.customFrom = '2026-03-01T00:00:00.000Z';
    s.customTo = '2026-03-02T00:00:00.000Z';
    s.panels = movePanel(s.panels, 3, -1).slice(0, 7);
    s.panels.push({ title: 'Mine & yours', kind: 'series', measure: 'ratio', by: 'country', chart: 'table', num: 'ad_click', den: 'ad_impression', steps: [] });
    const back = decodeState(`#${encodeState(s)}`);
    assert.deepEqual(back, { ...s, tenantRaw: '42' });
  });
  test('a URL without a fragment gives the default panels; defaults are the issue’s list', () => {
    const s = decodeState('');
    assert.deepEqual(s.panels, DEFAULT_PANELS);
    assert.equal(s.tenant, null);
    assert.equal(s.range, '1h');
    assert.deepEqual(
      DEFAULT_PANELS.map((p) => [p.kind, p.measure, p.by, p.num, p.den]),
      [
        ['series', 'events', 'type', '', ''],
        ['series', 'revenue', 'none', '', ''],
        ['series', 'sessions', 'none', '', ''],
        ['series', 'users', 'none', '', ''],
        ['funnel', 'events', 'none', '', ''],
        ['totals', 'ratio', 'campaign', 'ad_click', 'ad_impression'],
        ['totals', 'ratio', 'campaign', 'email_open', 'email_send'],
        ['totals', 'ratio', 'campaign', 'email_click', 'email_open'],
        ['totals', 'events', 'country', '', ''],
        ['totals', 'events', 'browser', '', ''],
      ],
    );
  });
  test('hostile or broken fragments fall back piece by piece, never throw', () => {
    const bad = [
      'panels=%7Bnot-json',
      'panels=%22a%20string%22',
      `panels=${encodeURIComponent(JSON.stringify([null, 5, { k: 'evil', m: 'drop table', b: '__proto__', c: 'pie' }]))}`,
      'range=forever&tenant=1e3',
      'range=custom&from=yesterday&to=2026-01-01',
      `panels=${encodeURIComponent(JSON.stringify(Array.from({ length: 100 }, () => ({ k: 'series' }))))}`,
    ];
    for (const f of bad) {
      const s = decodeState(f);
      for (const p of s.panels) {
        assert.ok(['series', 'totals', 'funnel'].includes(p.kind));
        assert.ok(['events', 'revenue', 'sessions', 'users', 'ratio'].includes(p.measure));
        assert.ok(['none', 'type', 'country', 'browser', 'campaign'].includes(p.by));
        assert.ok(['line', 'bar', 'table'].includes(p.chart));
      }
      assert.ok(s.panels.length <= 24, f);
      assert.notEqual(s.range, 'custom', f);
    }
    const s = decodeState(bad[2] ?? '');
    assert.deepEqual(s.panels, [{ title: '', kind: 'series', measure: 'events', by: 'none', chart: 'bar', num: '', den: '', steps: [] }]);
  });
  test('impossible combinations are repaired: distinct totals, ratio without types, short funnels', () => {
    const [a, b, c] = decodeState(
      `panels=${encodeURIComponent(JSON.stringify([{ k: 'totals', m: 'users', c: 'line' }, { k: 'series', m: 'ratio', n: 'has space', d: 'x' }, { k: 'funnel', s: ['only'] }]))}`,
    ).panels;
    assert.deepEqual([a?.measure, a?.chart], ['events', 'bar'], 'distinct counts cannot be summed over buckets');
    assert.equal(b?.measure, 'events');
    assert.deepEqual(c?.steps, ['page_view', 'add_to_cart', 'purchase']);
  });
  test('a tenant that is not an id is reported, quoted and shortened', () => {
    for (const t of ['abc', '0', '-4', '1.5', '99999999999999999999', '<script>']) {
      const s = decodeState(`tenant=${encodeURIComponent(t)}`);
      assert.equal(s.tenant, null, t);
      assert.match(tenantProblem(s) ?? '', /is not a storefront id/, t);
    }
    assert.equal(tenantProblem(decodeState('tenant=17')), null);
    assert.equal(tenantProblem(decodeState('')), null);
  });
  test('moves stay inside the list', () => {
    const ps = DEFAULT_PANELS.slice(0, 3);
    assert.deepEqual(movePanel(ps, 0, -1), ps);
    assert.deepEqual(movePanel(ps, 2, 1), ps);
    assert.deepEqual(movePanel(ps, 1, -1).map((p) => p.title), [ps[1]?.title, ps[0]?.title, ps[2]?.title]);
  });
});

const T = (m: number): string => new Date(Date.UTC(2026, 2, 14, 10, m)).toISOString();
const pt = (m: number, events: number, revenue = '0.0000', sessions = 0, users = 0) => ({ t: T(m), events, revenue, sessions, users });
const resp = (series: MetricsResponse['series']): MetricsResponse => ({ grain: 'minute', from: T(0), to: T(5), rollupRunAt: null, series });
const range = { from: new Date(T(0)), to: new Date(T(5)), grain: 'minute' as const };
const p = (o: Partial<Panel>): Panel => ({ title: 't', kind: 'series', measure: 'events', by: 'none', chart: 'table', num: '', den: '', steps: [], ...o });
const texts = (rows: { text: string }[][]): string[][] => rows.map((r) => r.map((c) => c.text));

describe('panel tables', () => {
  test('revenue is summed exactly: decimal strings, not floats', () => {
    assert.equal(fromUnits(toUnits('0.1') + toUnits('0.2')), '0.3000');
    assert.equal(fromUnits(toUnits('-5.0100') + toUnits('2')), '-3.0100');
    assert.equal(formatMoney('1234567.8900'), '1,234,567.89');
    assert.equal(formatMoney('3.3333'), '3.3333');
    const big = Array.from({ length: 1000 }, () => '0.1000');
    assert.equal(fromUnits(big.reduce((a, v) => a + toUnits(v), 0n)), '100.0000');
    const panel = p({ kind: 'totals', measure: 'revenue', by: 'campaign' });
    const v = buildView(panel, range, new Map([[needKey(needsOf(panel)[0] ?? { by: 'none', type: null, measures: [] }), resp([{ key: 'a', points: [pt(0, 1, '0.1000'), pt(1, 1, '0.2000')] }])]]));
    assert.deepEqual(texts(v.table.rows), [['a', '0.30']]);
    assert.equal(v.table.rows[0]?.[1]?.raw, '0.3000');
  });
  test('series by a dimension: one row per key and bucket; "" is (none); the API’s other series comes last', () => {
    const panel = p({ by: 'country' });
    const v = buildView(panel, range, new Map([['country||events', resp([{ key: '', points: [pt(1, 2)] }, { key: 'DE', points: [pt(0, 5), pt(2, 1)] }, { key: null, other: true, otherKeys: 7, points: [pt(0, 9)] }])]]));
    assert.deepEqual(v.table.columns.map((c) => c.label), ['Bucket (UTC)', 'Country', 'Events']);
    assert.deepEqual(texts(v.table.rows), [
      ['2026-03-14T10:01Z', '(none)', '2'],
      ['2026-03-14T10:00Z', 'DE', '5'],
      ['2026-03-14T10:02Z', 'DE', '1'],
      ['2026-03-14T10:00Z', 'other', '9'],
    ]);
    assert.equal(v.chart.kind, 'time');
    if (v.chart.kind === 'time') {
      assert.equal(v.chart.x.length, 5, 'every bucket of the range, empty ones as 0');
      assert.deepEqual(v.chart.series.find((s) => s.label === 'DE')?.values, [5, 0, 1, 0, 0]);
    }
  });
  test('ratios: numerator and denominator per key, rate to two places, no rate over 0 or across "other"', () => {
    const panel = p({ kind: 'totals', measure: 'ratio', by: 'campaign', num: 'ad_click', den: 'ad_impression' });
    assert.deepEqual(needsOf(panel), [
      { by: 'campaign', type: 'ad_click', measures: ['events'] },
      { by: 'campaign', type: 'ad_impression', measures: ['events'] },
    ]);
    const v = buildView(
      panel,
      range,
      new Map([
        ['campaign|ad_click|events', resp([{ key: 'spring', points: [pt(0, 2), pt(1, 1)] }, { key: 'x', points: [pt(0, 1)] }, { key: null, other: true, points: [pt(0, 1)] }])],
        ['campaign|ad_impression|events', resp([{ key: 'spring', points: [pt(0, 60), pt(3, 30)] }, { key: 'summer', points: [pt(0, 7)] }, { key: null, other: true, points: [pt(0, 4)] }])],
      ]),
    );
    assert.deepEqual(texts(v.table.rows), [
      ['spring', '3', '90', '3.33%'],
      ['summer', '0', '7', '0.00%'],
      ['other', '1', '4', '—'],
      ['x', '1', '0', '—'],
    ]);
    assert.equal(v.chart.kind, 'bars');
  });
  test('funnel: counts per step, rates of the previous and the first step; nothing yet says so', () => {
    const panel = p({ kind: 'funnel', steps: ['page_view', 'add_to_cart', 'purchase'] });
    const v = buildView(panel, range, new Map([['type||events', resp([{ key: 'page_view', points: [pt(0, 150), pt(1, 50)] }, { key: 'add_to_cart', points: [pt(0, 20)] }, { key: 'purchase', points: [pt(2, 5)] }])]]));
    assert.deepEqual(texts(v.table.rows), [
      ['page_view', '200', '—', '—'],
      ['add_to_cart', '20', '10.00%', '10.00%'],
      ['purchase', '5', '25.00%', '2.50%'],
    ]);
    assert.equal(v.note, null);
    const empty = buildView(panel, range, new Map([['type||events', resp([])]]));
    assert.match(empty.note ?? '', /No page_view events/);
    assert.deepEqual(texts(empty.table.rows).map((r) => r[1]), ['0', '0', '0']);
  });
  test('totals are ordered largest first, ties by key; thousands are grouped on the page, not in the CSV', () => {
    const panel = p({ kind: 'totals', by: 'browser' });
    const v = buildView(panel, range, new Map([['browser||events', resp([{ key: 'b', points: [pt(0, 1200)] }, { key: 'a', points: [pt(0, 1200)] }, { key: 'c', points: [pt(0, 5000)] }])]]));
    assert.deepEqual(texts(v.table.rows), [['c', '5,000'], ['a', '1,200'], ['b', '1,200']]);
    assert.equal(toCsv(v.table), 'Browser,Events\r\nc,5000\r\na,1200\r\nb,1200\r\n');
  });
  test('CSV: quotes what needs quoting, and a value that looks like a formula stays text', () => {
    const csv = toCsv({
      columns: [{ label: 'Campaign', numeric: false }, { label: 'Events', numeric: true }],
      rows: [
        [{ text: '', raw: 'say "hi", ok' }, { text: '', raw: '-3' }],
        [{ text: '', raw: '=HYPERLINK("x")' }, { text: '', raw: '1' }],
        [{ text: '', raw: 'line\nbreak' }, { text: '', raw: '2' }],
      ],
    });
    assert.equal(csv, 'Campaign,Events\r\n"say ""hi"", ok",-3\r\n"\'=HYPERLINK(""x"")",1\r\n"line\nbreak",2\r\n');
  });
  test('distinct counts are per bucket (sketches do not add up)', () => {
    const panel = p({ measure: 'users' });
    const v = buildView(panel, range, new Map([['none||events,users', resp([{ key: null, points: [pt(0, 9, '0', 4, 3), pt(1, 9, '0', 4, 2)] }])]]));
    assert.deepEqual(texts(v.table.rows), [['2026-03-14T10:00Z', '3'], ['2026-03-14T10:01Z', '2']]);
  });
});

describe('freshness', () => {
  const f = (lastRunAt: string | null, lagSeconds: number, pendingEvents: number | null, pendingCapped = false) => ({
    now: '2026-03-14T10:00:00.000Z',
    rollups: [
      { name: 'minute', grain: 'minute', lastRunAt, lagSeconds, pendingEvents, pendingCapped },
      { name: 'hour', grain: 'hour', lastRunAt: '2026-03-14T09:00:00.000Z', lagSeconds: 3600, pendingEvents: 1, pendingCapped: false },
    ],
  });
  test('fresh: when the shown grain’s rollup ran and how far behind it is, on the server’s clock', () => {
    assert.deepEqual(describeFreshness(f('2026-03-14T09:59:52.000Z', 0, 0), 'minute'), { text: 'Rollups (minute) last ran 8 s ago · caught up with ingest', stale: false });
    assert.deepEqual(describeFreshness(f('2026-03-14T09:59:52.000Z', 12.4, 10_000, true), 'minute'), {
      text: 'Rollups (minute) last ran 8 s ago · 12 s behind ingest (10,000+ events waiting)',
      stale: false,
    });
  });
  test('stale is shown as stale: a run too long ago, events waiting too long, never run, no status', () => {
    const old = new Date(Date.parse('2026-03-14T10:00:00.000Z') - STALE_MS - 1000).toISOString();
    assert.deepEqual(describeFreshness(f(old, 0, 0), 'minute'), { text: 'STALE — Rollups (minute) last ran 3 min ago · caught up with ingest', stale: true });
    assert.equal(describeFreshness(f('2026-03-14T09:59:59.000Z', 600, 5), 'minute').text, 'STALE — Rollups (minute) last ran 1 s ago · 10 min behind ingest (5 events waiting)');
    assert.equal(describeFreshness(f('2026-03-14T09:59:59.000Z', 0, 0), 'hour').stale, true, 'the hour rollup of the hour view is behind');
    assert.equal(describeFreshness(f(null, 0, 0), 'minute').text, 'STALE — Rollups (minute) last ran never · caught up with ingest');
    assert.deepEqual(describeFreshness({ now: '2026-03-14T10:00:00.000Z', rollups: [] }, 'minute'), { text: 'STALE — rollups have never run: figures are missing.', stale: true });
  });
  test('a caller granted only some storefronts (entra mode) gets no count of waiting events: the lag alone', () => {
    assert.equal(describeFreshness(f('2026-03-14T09:59:52.000Z', 12.4, null), 'minute').text, 'Rollups (minute) last ran 8 s ago · 12 s behind ingest');
    assert.equal(describeFreshness(f('2026-03-14T09:59:52.000Z', 0, null), 'minute').text, 'Rollups (minute) last ran 8 s ago · caught up with ingest');
  });
});
