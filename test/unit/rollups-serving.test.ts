import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { MAX_BUCKETS, parseIsoTime, parseMetricsParams, type MetricsQuery } from '../../src/serving/params.js';
import { DEFAULT_MAX_ROWS, exceedsRowLimit, metricsSql, shapeMetrics } from '../../src/serving/query.js';
import { LEGACY_ROLLUPS, ROLLUPS, dimensionByName, rollupForGrain } from '../../src/rollups/definitions.js';
import { sketchProfile } from '../../src/rollups/sketches.js';

const now = new Date('2026-03-15T12:34:56Z');
const retentionDays = { minute: 7, hour: 90, day: 3650 };

function parse(tenantId: string | undefined, qs: string) {
  return parseMetricsParams(tenantId, new URLSearchParams(qs), { now, retentionDays });
}

describe('parseIsoTime', () => {
  const cases: [string, string | undefined][] = [
    ['2026-03-14T10:00:00Z', '2026-03-14T10:00:00.000Z'],
    ['2026-03-14T10:00Z', '2026-03-14T10:00:00.000Z'],
    ['2026-03-14T11:30:00+01:30', '2026-03-14T10:00:00.000Z'],
    ['2026-03-14T05:00:00-05:00', '2026-03-14T10:00:00.000Z'],
    ['2026-03-14T10:00:00.250Z', '2026-03-14T10:00:00.250Z'],
    ['2026-03-14', '2026-03-14T00:00:00.000Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z'],
    ['2026-02-29', undefined],
    ['2026-02-30T00:00:00Z', undefined],
    ['2026-13-01T00:00:00Z', undefined],
    ['2026-03-14T24:00:00Z', undefined],
    ['2026-03-14T10:60:00Z', undefined],
    ['2026-03-14T10:00:00', undefined],
    ['2026-03-14 10:00:00Z', undefined],
    ['1710410400', undefined],
    ['yesterday', undefined],
    ['', undefined],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} → ${expected ?? 'refused'}`, () => {
      assert.equal(parseIsoTime(input)?.toISOString(), expected);
    });
  }
});

describe('parseMetricsParams: valid queries', () => {
  const ok: [string, string, Partial<Record<keyof MetricsQuery, unknown>>][] = [
    ['day-aligned range, auto → day', 'from=2026-03-01T00:00:00Z&to=2026-03-15T00:00:00Z', { grain: 'day' }],
    ['date-only times, auto → day', 'from=2026-03-01&to=2026-03-02', { grain: 'day' }],
    ['hour-aligned range, auto → hour', 'from=2026-03-14T10:00:00Z&to=2026-03-14T13:00:00Z&grain=auto', { grain: 'hour' }],
    ['minute-aligned range, auto → minute', 'from=2026-03-15T10:05:00Z&to=2026-03-15T10:35:00Z', { grain: 'minute' }],
    ['offsets count: 01:00+01:00 is midnight UTC', 'from=2026-03-14T01:00:00%2B01:00&to=2026-03-15T00:00:00Z', { grain: 'day' }],
    ['an unencoded + (a space) before the offset', 'from=2026-03-14T01:00:00+01:00&to=2026-03-15T00:00:00Z', { grain: 'day' }],
    ['explicit finer grain on a day-aligned range', 'from=2026-03-14&to=2026-03-15&grain=minute', { grain: 'minute' }],
    ['by=campaign maps to the campaign_id column', 'from=2026-03-14&to=2026-03-15&grain=hour&by=campaign', { grain: 'hour', by: dimensionByName('campaign') }],
    ['by=type', 'from=2026-03-14&to=2026-03-15&by=type', { by: dimensionByName('type') }],
    ['top defaults to 10', 'from=2026-03-14&to=2026-03-15&by=type', { top: 10 }],
    ['top=50, the maximum', 'from=2026-03-14&to=2026-03-15&by=country&top=50', { top: 50 }],
    ['top=1', 'from=2026-03-14&to=2026-03-15&by=country&top=1', { top: 1 }],
    ['measures default to events and revenue; the totals answer', 'from=2026-03-14&to=2026-03-15', { measures: ['events', 'revenue'], rollup: rollupForGrain('day') }],
    ['measures in any order come back in catalog order', 'from=2026-03-14&to=2026-03-15&measures=users,sessions', { measures: ['events', 'sessions', 'users'] }],
    ['by=campaign with a type is answered by campaign_type', 'from=2026-03-14T10:00Z&to=2026-03-14T12:00Z&by=campaign&type=click', { rollup: ROLLUPS.find((r) => r.name === 'campaign_type_hour') }],
    ['a type alone at minute grain: type_minute', 'from=2026-03-15T10:05:00Z&to=2026-03-15T10:35:00Z&type=click', { rollup: ROLLUPS.find((r) => r.name === 'type_minute') }],
  ];
  for (const [name, qs, expected] of ok) {
    test(name, () => {
      const r = parse('42', qs);
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.query.tenantId, 42);
      for (const [k, v] of Object.entries(expected)) assert.deepEqual(r.query[k as keyof MetricsQuery], v, k);
    });
  }
  test('the all-storefronts view is tenant 0 and needs the tenant-0 rows', () => {
    const r = parse('all', 'from=2026-03-15T10:05:00Z&to=2026-03-15T10:35:00Z&measures=sessions');
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.query.tenantId, 0);
    assert.equal(r.query.rollup.name, 'total_minute');
    const none = parseMetricsParams('all', new URLSearchParams('from=2026-03-14&to=2026-03-15&by=type'), {
      now,
      retentionDays,
      rollups: ROLLUPS.map((d) => ({ ...d, allTenants: d.spec === 'total' })),
    });
    assert.ok(!none.ok);
    assert.equal(none.error.parameter, 'by');
    assert.match(none.error.message, /for all storefronts/);
  });
  test('times are parsed exactly', () => {
    const r = parse('7', 'from=2026-03-14T10:00:00Z&to=2026-03-14T13:00:00Z');
    assert.ok(r.ok);
    assert.equal(r.query.from.toISOString(), '2026-03-14T10:00:00.000Z');
    assert.equal(r.query.to.toISOString(), '2026-03-14T13:00:00.000Z');
    assert.equal(r.query.by, null);
  });
});

describe('parseMetricsParams: every kind of bad parameter is a 400 naming it', () => {
  const valid = 'from=2026-03-14T10:00:00Z&to=2026-03-14T13:00:00Z';
  const bad: [string, string | undefined, string, string, RegExp][] = [
    ['tenant not a number', 'abc', valid, 'tenantId', /positive whole number/],
    ['tenant zero', '0', valid, 'tenantId', /positive/],
    ['tenant negative', '-1', valid, 'tenantId', /positive/],
    ['tenant with a leading zero', '042', valid, 'tenantId', /positive/],
    ['tenant in exponent form', '1e3', valid, 'tenantId', /positive/],
    ['tenant beyond 2^53', '9007199254740993', valid, 'tenantId', /2\^53/],
    ['tenant with SQL in it', '1;DROP TABLE events', valid, 'tenantId', /positive/],
    ['tenant missing', undefined, valid, 'tenantId', /positive/],
    ['unknown parameter (typo)', '1', `${valid}&grian=hour`, 'grian', /unknown parameter/],
    ['parameter given twice', '1', `${valid}&from=2026-03-14T11:00:00Z`, 'from', /more than once/],
    ['from missing', '1', 'to=2026-03-14T13:00:00Z', 'from', /required/],
    ['to missing', '1', 'from=2026-03-14T10:00:00Z', 'to', /required/],
    ['from empty', '1', 'from=&to=2026-03-14T13:00:00Z', 'from', /required/],
    ['from not a time', '1', 'from=yesterday&to=2026-03-14T13:00:00Z', 'from', /ISO-8601/],
    ['from without offset', '1', 'from=2026-03-14T10:00:00&to=2026-03-14T13:00:00Z', 'from', /ISO-8601/],
    ['to an impossible date', '1', 'from=2026-03-14T10:00:00Z&to=2026-02-30T00:00:00Z', 'to', /ISO-8601/],
    ['to before from', '1', 'from=2026-03-14T13:00:00Z&to=2026-03-14T10:00:00Z', 'to', /after from/],
    ['to equal to from', '1', 'from=2026-03-14T13:00:00Z&to=2026-03-14T13:00:00Z', 'to', /after from/],
    ['grain unknown', '1', `${valid}&grain=week`, 'grain', /minute, hour, day, auto/],
    ['grain empty', '1', `${valid}&grain=`, 'grain', /one of/],
    ['grain in upper case', '1', `${valid}&grain=HOUR`, 'grain', /one of/],
    ['by unknown', '1', `${valid}&by=city`, 'by', /type, country, browser, campaign/],
    ['by with SQL in it', '1', `${valid}&by=type%3B%20DROP%20TABLE%20events`, 'by', /one of/],
    ['by a column name rather than the public name', '1', `${valid}&by=campaign_id`, 'by', /one of/],
    ['by empty', '1', `${valid}&by=`, 'by', /one of/],
    ['top zero', '1', `${valid}&by=type&top=0`, 'top', /1 to 50/],
    ['top negative', '1', `${valid}&by=type&top=-3`, 'top', /1 to 50/],
    ['top above the maximum', '1', `${valid}&by=type&top=51`, 'top', /1 to 50/],
    ['top huge', '1', `${valid}&by=type&top=99999999999999999999`, 'top', /1 to 50/],
    ['top not a number', '1', `${valid}&by=type&top=ten`, 'top', /1 to 50/],
    ['top given twice', '1', `${valid}&by=type&top=5&top=6`, 'top', /more than once/],
    ['explicit grain, from not on its boundary', '1', 'from=2026-03-14T10:30:00Z&to=2026-03-14T13:00:00Z&grain=hour', 'from', /hour boundary/],
    ['explicit grain, to not on its boundary', '1', 'from=2026-03-14T10:00:00Z&to=2026-03-14T13:00:30Z&grain=minute', 'to', /minute boundary/],
    ['auto, seconds in from', '1', 'from=2026-03-14T10:00:30Z&to=2026-03-14T13:00:00Z', 'from', /whole minute/],
    ['auto, seconds in to', '1', 'from=2026-03-14T10:00:00Z&to=2026-03-14T13:00:00.5Z', 'to', /whole minute/],
    ['minute grain past minute retention', '1', 'from=2026-03-01T00:00:00Z&to=2026-03-01T01:00:00Z&grain=minute', 'from', /kept for 7 days/],
    ['auto picks minute, past its retention', '1', 'from=2026-03-01T00:05:00Z&to=2026-03-01T01:00:00Z', 'from', /minute rollups are kept/],
    ['hour grain past hour retention', '1', 'from=2025-01-01T00:00:00Z&to=2025-01-01T05:00:00Z', 'from', /hour rollups are kept for 90 days/],
    ['range too large for minutes', '1', 'from=2026-03-12T00:00:00Z&to=2026-03-15T00:00:00Z&grain=minute', 'to', /range too large for grain=minute/],
    ['range too large for hours', '1', 'from=2025-12-16T00:00:00Z&to=2026-03-20T00:00:00Z&grain=hour', 'to', /range too large for grain=hour/],
    ['range too large for auto → day', '1', 'from=2016-04-01&to=2026-06-01', 'to', /range too large for grain=day/],
    ['tenant all in upper case', 'ALL', valid, 'tenantId', /or all for every storefront/],
    ['measures unknown', '1', `${valid}&measures=events,clicks`, 'measures', /events, revenue, sessions, users; unknown: "clicks"/],
    ['measures empty', '1', `${valid}&measures=`, 'measures', /comma-separated/],
    ['distinct counts by a dimension no sketch is kept for', '1', `${valid}&by=country&measures=sessions`, 'measures', /no rollup keeps events, sessions for by=country; rollups for by=country: country \(hour, day\) with events, revenue; events, sessions are kept by total \(minute, hour, day\)/],
    ['a dimension at a grain it is not kept at (explicit grain)', '1', `from=2026-03-15T10:00:00Z&to=2026-03-15T11:00:00Z&grain=minute&by=country`, 'grain', /kept at hour, day .*use grain=hour/],
    ['a dimension at a grain it is not kept at (auto)', '1', `from=2026-03-15T10:05:00Z&to=2026-03-15T10:35:00Z&by=browser`, 'from', /align from and to to whole hours/],
    ['a type filter on a dimension not kept with type', '1', `${valid}&by=country&type=click`, 'by', /no rollup keeps by=country with type; dimensions kept together with type: type \(minute, hour, day\), campaign_type \(hour, day\)/],
  ];
  for (const [name, tenant, qs, parameter, message] of bad) {
    test(name, () => {
      const r = parse(tenant, qs);
      assert.equal(r.ok, false, `accepted: ${JSON.stringify(r)}`);
      if (r.ok) return;
      assert.equal(r.error.parameter, parameter);
      assert.match(r.error.message, message);
    });
  }
  test('the largest allowed ranges are accepted', () => {
    assert.ok(parse('1', `from=2026-03-13T00:00:00Z&to=2026-03-15T00:00:00Z&grain=minute`).ok, `${MAX_BUCKETS.minute} minutes`);
    assert.ok(parse('1', `from=2025-12-16T00:00:00Z&to=2026-03-18T00:00:00Z&grain=hour`).ok, `${MAX_BUCKETS.hour} hours`);
  });
});

describe('metricsSql and shapeMetrics', () => {
  const q: MetricsQuery = {
    tenantId: 987654,
    from: new Date('2026-03-14T10:00:00Z'),
    to: new Date('2026-03-14T13:00:00Z'),
    grain: 'hour',
    by: dimensionByName('campaign') ?? null,
    top: 10,
    measures: ['events', 'revenue', 'sessions', 'users'],
    rollup: LEGACY_ROLLUPS[1] ?? rollupForGrain('hour'),
  };
  const total = (grain: 'minute' | 'hour') => ({ ...q, grain, by: null, rollup: rollupForGrain(grain) });
  test('request values travel as bind parameters; identifiers come from the definitions', () => {
    for (const kind of ['hll', 'kmv'] as const) {
      const sql = metricsSql(q, sketchProfile(kind), 'hubsink');
      assert.deepEqual(sql.values, [987654, q.from, q.to, 10, DEFAULT_MAX_ROWS + 1]);
      assert.match(sql.text, /FROM "hubsink"\."rollup_hour"/);
      assert.match(sql.text, /"campaign_id" AS key/);
      assert.match(sql.text, /WHERE tenant_id = \$1 AND bucket >= \$2 AND bucket < \$3/);
      assert.doesNotMatch(sql.text, /987654|2026/);
    }
    // Without `by`: one series, summed per bucket, nothing ranked; the row limit is $4.
    const lone = metricsSql(total('minute'), sketchProfile('hll'), 's');
    assert.match(lone.text, /"rollup_total_minute"[\s\S]*LIMIT \$4[\s\S]*hll_union_agg\(r\.sessions\)[\s\S]*''::text AS key/);
    assert.doesNotMatch(lone.text, /row_number|\$5/);
    assert.deepEqual(lone.values, [987654, q.from, q.to, DEFAULT_MAX_ROWS + 1]);
    // Only the measures asked for are read.
    const lean = metricsSql({ ...total('hour'), measures: ['events'] }, sketchProfile('hll'), 's').text;
    assert.doesNotMatch(lean, /sessions|users|revenue/);
    // The rollup must keep what is asked: never a silent wrong answer.
    const typeHour = ROLLUPS.find((r) => r.name === 'type_hour');
    assert.ok(typeHour);
    assert.throws(() => metricsSql({ ...q, by: null, rollup: typeHour }, sketchProfile('hll'), 's'), /does not keep sessions/);
    assert.throws(() => metricsSql({ ...q, measures: ['events'], rollup: typeHour }, sketchProfile('hll'), 's'), /no campaign dimension/);
    const typed = metricsSql({ ...q, by: null, measures: ['events'], rollup: typeHour, type: 'click' }, sketchProfile('hll'), 's');
    assert.match(typed.text, /AND "type" = \$5/);
    assert.deepEqual(typed.values, [987654, q.from, q.to, DEFAULT_MAX_ROWS + 1, 'click']);
  });
  test('the row limit is a bind parameter one above the limit, so "more than the limit" is detectable', () => {
    const sql = metricsSql(q, sketchProfile('kmv'), 'hubsink', { maxRows: 500 });
    assert.deepEqual(sql.values.slice(3), [10, 501]);
    assert.match(sql.text, /LIMIT \$5/);
    assert.throws(() => metricsSql(q, sketchProfile('kmv'), 'hubsink', { maxRows: 0 }), RangeError);
    const row = (rowsRead: number) => ({ bucket: new Date(), key: 'a', events: '1', revenue: '0', sessions: '1', users: '1', rows_read: String(rowsRead), keys: '1' });
    assert.equal(exceedsRowLimit([row(500)], 500), false);
    assert.equal(exceedsRowLimit([row(501)], 500), true);
    assert.equal(exceedsRowLimit([], 500), false);
  });
  test('rows ordered by key then bucket become one series per key; no rows, no series', () => {
    const t1 = new Date('2026-03-14T10:00:00Z');
    const t2 = new Date('2026-03-14T11:00:00Z');
    const meta = { rows_read: '3', keys: '2' };
    const rows = [
      { bucket: t1, key: '', events: '3', revenue: '0', sessions: '2', users: '1', ...meta },
      { bucket: t1, key: 'spring', events: '5', revenue: '19.9900', sessions: '4', users: '4', ...meta },
      { bucket: t2, key: 'spring', events: '1', revenue: '0.0100', sessions: '1', users: '1', ...meta },
    ];
    const out = shapeMetrics(q, 'kmv', t2, rows);
    assert.deepEqual(out, {
      tenantId: 987654,
      from: '2026-03-14T10:00:00.000Z',
      to: '2026-03-14T13:00:00.000Z',
      grain: 'hour',
      by: 'campaign',
      measures: ['events', 'revenue', 'sessions', 'users'],
      rollup: 'hour',
      distinct: 'kmv',
      rollupRunAt: '2026-03-14T11:00:00.000Z',
      top: 10,
      seriesTotal: 2,
      series: [
        { key: '', points: [{ t: '2026-03-14T10:00:00.000Z', events: 3, revenue: '0', sessions: 2, users: 1 }] },
        {
          key: 'spring',
          points: [
            { t: '2026-03-14T10:00:00.000Z', events: 5, revenue: '19.9900', sessions: 4, users: 4 },
            { t: '2026-03-14T11:00:00.000Z', events: 1, revenue: '0.0100', sessions: 1, users: 1 },
          ],
        },
      ],
    });
    assert.deepEqual(shapeMetrics({ ...q, by: null }, 'hll', null, []).series, []);
    assert.deepEqual(shapeMetrics({ ...q, by: null }, 'hll', null, rows.slice(0, 1)).series, [
      { key: null, points: [{ t: '2026-03-14T10:00:00.000Z', events: 3, revenue: '0', sessions: 2, users: 1 }] },
    ]);
  });
  test('the NULL key (values beyond top) becomes one "other" series that says how many values it holds', () => {
    const t1 = new Date('2026-03-14T10:00:00Z');
    const meta = { rows_read: '40', keys: '12' };
    const out = shapeMetrics({ ...q, top: 2 }, 'hll', null, [
      { bucket: t1, key: 'a', events: '9', revenue: '0', sessions: '1', users: '1', ...meta },
      { bucket: t1, key: 'b', events: '8', revenue: '0', sessions: '1', users: '1', ...meta },
      { bucket: t1, key: null, events: '20', revenue: '1.5000', sessions: '7', users: '6', ...meta },
    ]);
    assert.equal(out.top, 2);
    assert.equal(out.seriesTotal, 12);
    assert.deepEqual(out.series.map((s) => [s.key, s.other, s.otherKeys]), [['a', undefined, undefined], ['b', undefined, undefined], [null, true, 10]]);
    assert.deepEqual(out.series[2]?.points, [{ t: t1.toISOString(), events: 20, revenue: '1.5000', sessions: 7, users: 6 }]);
  });
  test('points carry only the measures read; the all-storefronts view says so in tenantId', () => {
    const t1 = new Date('2026-03-14T10:00:00Z');
    const out = shapeMetrics({ ...total('hour'), tenantId: 0, measures: ['events'] }, 'hll', null, [{ bucket: t1, key: '', events: '4', rows_read: '1', keys: '1' }]);
    assert.equal(out.tenantId, 'all');
    assert.equal(out.rollup, 'total_hour');
    assert.deepEqual(out.measures, ['events']);
    assert.deepEqual(out.series, [{ key: null, points: [{ t: t1.toISOString(), events: 4 }] }]);
  });
});
