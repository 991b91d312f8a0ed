/**
 * Rollup scale mode (issue 18): the retailer's shape, built in SQL. 10 M events over 7 days for
 * 1,000 storefronts with Zipf skew (the largest ~10.8 %), 10 event types, 40 countries, 6 browsers,
 * 200 campaigns (each storefront using a few), sessions of 8 events. Folded with the catch-up path
 * (runRollups until caught up, as `hubsink rollup --catch-up`), pruned with the default retention,
 * then measured beside the raw GROUP BY in the same run: sizes as a share of raw events (indexes
 * included), p95 of 30 metrics API requests per question, fold events/s. Then the retailer's
 * density (10 M events in 2.5 h, ~100 M a day): events per minute-row of the largest storefront,
 * and the rows each default dashboard panel would read at each preset range.
 *
 *   npm run bench -- --only rollup-scale          (HUBSINK_BENCH_SCALE_EVENTS=10000000 by default)
 */
import type pg from 'pg';
import functions from '@azure/functions';
import { ident } from '../src/db/ident.js';
import { maintainPartitions } from '../src/db/partitions.js';
import { ROLLUPS, GRAIN_MS, type RollupDefinition } from '../src/rollups/definitions.js';
import { pruneRollups, runRollups } from '../src/rollups/run.js';
import { makeMetricsHandler } from '../src/serving/handler.js';
import { DEFAULT_MAX_ROWS } from '../src/serving/query.js';
import { loadConfig } from '../src/config.js';
import type { BenchContext, BenchSection, SectionResult, Target } from './section.js';

const { HttpRequest, InvocationContext } = functions;

const TENANTS = 1000;
const TOP_SHARE = 0.108;

/** Pure: the Zipf exponent that gives the largest of n storefronts `share` of the events. */
export function zipfExponent(n: number, share: number): number {
  const top = (s: number) => {
    let h = 0;
    for (let k = 1; k <= n; k++) h += k ** -s;
    return 1 / h;
  };
  let lo = 0.1;
  let hi = 2;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (top(mid) < share) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * One session of 8 events per 8 values of g: its storefront from the Zipf map (hashed session
 * number → one of 100,000 slots), its start spread over the span, each event 20 s after the
 * previous. Each storefront uses 4 countries and 5 campaigns of its own; campaigns only on the
 * ad and e-mail events.
 */
function eventsSql(schema: string): string {
  return `INSERT INTO ${ident(schema)}.events (tenant_id, event_id, occurred_at, type, session_id, user_id, country, browser, campaign_id, revenue)
SELECT z.tenant_id, gen_random_uuid(),
       $1::timestamptz - (((s.h2 % 1000000)::float8 / 1000000) * $2::float8) * interval '1 second' + (g % 8) * interval '20 seconds',
       t.type,
       's' || (g / 8), 'u' || z.tenant_id || '-' || (s.h2 % 5000),
       'C' || ((z.tenant_id * 7 + s.h2 % 4) % 40),
       (ARRAY['chrome','safari','firefox','edge','samsung','opera'])[1 + s.h2 % 6],
       CASE WHEN t.type LIKE 'ad_%' OR t.type LIKE 'email_%' THEN 'cmp' || ((z.tenant_id * 13 + (g + s.h2) % 5) % 200) END,
       CASE WHEN t.type = 'purchase' THEN ((s.h2 % 10000) / 100.0)::numeric END
FROM generate_series($3::bigint, $4::bigint) AS g
CROSS JOIN LATERAL (SELECT abs(hashint8(g / 8)) AS h, abs(hashint8(g / 8 + 7919)) AS h2) AS s
JOIN ${ident(schema)}.bench_zipf z ON z.slot = s.h % 100000
JOIN ${ident(schema)}.bench_types t ON t.slot = (g * 7 + s.h) % 20`;
}

async function buildData(pool: pg.Pool, schema: string, events: number, end: Date, spanSeconds: number, log: (s: string) => void): Promise<void> {
  const s = zipfExponent(TENANTS, TOP_SHARE);
  const weights = Array.from({ length: TENANTS }, (_, k) => (k + 1) ** -s);
  const total = weights.reduce((a, b) => a + b, 0);
  const slots: number[] = [];
  let acc = 0;
  for (let k = 0; k < TENANTS; k++) {
    acc += (weights[k] ?? 0) / total;
    while (slots.length < Math.round(acc * 100_000)) slots.push(k + 1);
  }
  while (slots.length < 100_000) slots.push(TENANTS);
  await pool.query(`DROP TABLE IF EXISTS ${ident(schema)}.bench_zipf, ${ident(schema)}.bench_types`);
  await pool.query(`CREATE TABLE ${ident(schema)}.bench_zipf AS SELECT (i - 1)::bigint AS slot, t::bigint AS tenant_id FROM unnest($1::int[]) WITH ORDINALITY AS u(t, i)`, [slots]);
  // 10 types, page views the most common.
  const types = ['page_view', 'page_view', 'page_view', 'page_view', 'page_view', 'page_view', 'click', 'click', 'add_to_cart', 'add_to_cart', 'purchase', 'ad_impression', 'ad_impression', 'ad_impression', 'ad_click', 'email_send', 'email_send', 'email_open', 'email_click', 'search'];
  await pool.query(`CREATE TABLE ${ident(schema)}.bench_types AS SELECT (i - 1)::bigint AS slot, t AS type FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i)`, [types]);
  await pool.query(`ANALYZE ${ident(schema)}.bench_zipf, ${ident(schema)}.bench_types`);
  const step = 500_000;
  const t0 = Date.now();
  for (let i = 0; i < events; i += step) {
    const n = Math.min(step, events - i);
    await pool.query(eventsSql(schema), [end, spanSeconds, i, i + n - 1]);
    log(`  loaded ${(i + n).toLocaleString('en-US')} events (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
  await pool.query(`DROP TABLE ${ident(schema)}.bench_zipf, ${ident(schema)}.bench_types`);
  await pool.query(`VACUUM ANALYZE ${ident(schema)}.events`);
}

async function fold(pool: pg.Pool, schema: string, ctx: BenchContext): Promise<{ seconds: number; events: number; cpuSeconds: number }> {
  const cpu0 = await serverCpuSeconds(pool);
  const t = process.hrtime.bigint();
  let events = 0;
  for (let i = 0; i < 1000; i++) {
    const r = await runRollups(pool, schema, { caps: ctx.server.caps, maxWindowRows: 1_000_000 });
    events += r[0]?.rows ?? 0;
    ctx.log(`  folded ${events.toLocaleString('en-US')} events`);
    if (r.every((x) => x.caughtUp)) break;
  }
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  const cpu1 = await serverCpuSeconds(pool);
  return { seconds, events, cpuSeconds: cpu1 - cpu0 };
}

/** CPU seconds (user + system) of every process of the server, from /proc (the embedded server runs here). */
async function serverCpuSeconds(pool: pg.Pool): Promise<number> {
  const { readFile, readdir } = await import('node:fs/promises');
  const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const backend = rows[0]?.pid;
  let ppid: string | undefined;
  try {
    ppid = (await readFile(`/proc/${String(backend)}/stat`, 'utf8')).split(') ')[1]?.split(' ')[1];
  } catch {
    return NaN;
  }
  let ticks = 0;
  for (const p of await readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const f = (await readFile(`/proc/${p}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
      if (p === ppid || f[1] === ppid) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      /* gone */
    }
  }
  return ticks / 100;
}

async function tableBytes(pool: pg.Pool, schema: string, table: string): Promise<{ bytes: number; rows: number }> {
  const { rows } = await pool.query<{ bytes: string; n: string }>(
    `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::text AS bytes, coalesce(sum(c.reltuples), 0)::bigint::text AS n
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relkind = 'r' AND (c.relname = $2 OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(format('%I.%I', $1::text, $2::text))))`,
    [schema, table],
  );
  return { bytes: Number(rows[0]?.bytes), rows: Number(rows[0]?.n) };
}

function p95(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)] ?? NaN;
}

async function timeIt(n: number, f: () => Promise<void>): Promise<number> {
  await f();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await f();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return p95(times);
}

const loadAvg = async (): Promise<number> => Number((await (await import('node:fs/promises')).readFile('/proc/loadavg', 'utf8')).split(' ')[0]);

export const rollupScaleSection: BenchSection = {
  name: 'rollup-scale',
  async run(ctx: BenchContext): Promise<SectionResult> {
    const { pool, caps } = ctx.server;
    const events = Number(process.env.HUBSINK_BENCH_SCALE_EVENTS ?? (ctx.quick ? 1_000_000 : 10_000_000));
    const reps = ctx.quick ? 10 : 30;
    const cfg = loadConfig({});
    const retention = cfg.rollupRetentionDays;
    const schema = await ctx.server.fresh();
    const end = new Date(Math.floor(Date.now() / 60_000) * 60_000);
    await maintainPartitions(pool, schema, { now: end, aheadDays: 2, retentionDays: 9, caps });
    ctx.log(`rollup-scale: ${events.toLocaleString('en-US')} events over 7 days, ${TENANTS} storefronts (Zipf, largest ${TOP_SHARE * 100} %)…`);
    await buildData(pool, schema, events, end, 7 * 86_400 - 600, ctx.log);
    const folded = await fold(pool, schema, ctx);
    const foldLoad = await loadAvg();
    await pruneRollups(pool, schema, new Date(), retention);
    await pool.query(`VACUUM ANALYZE ${ROLLUPS.map((r) => `${ident(schema)}.${ident(r.table)}`).join(', ')}`);

    // Sizes, indexes included.
    const raw = await tableBytes(pool, schema, 'events');
    const sizes: { def: RollupDefinition; bytes: number; rows: number }[] = [];
    for (const def of ROLLUPS) sizes.push({ def, ...(await tableBytes(pool, schema, def.table)) });
    const rollupBytes = sizes.reduce((a, s) => a + s.bytes, 0);

    // The largest storefront.
    const topRow = await pool.query<{ tenant_id: string; n: string }>(`SELECT tenant_id::text, count(*)::text AS n FROM ${ident(schema)}.events GROUP BY 1 ORDER BY 2 DESC LIMIT 1`);
    const top = topRow.rows[0]?.tenant_id ?? '1';
    const topShare = Number(topRow.rows[0]?.n) / events;
    const handler = makeMetricsHandler(() => Promise.resolve({ pool, schema, caps, retentionDays: retention }));
    const ictx = new InvocationContext({ functionName: 'metrics', logHandler: () => undefined });
    const iso = (ms: number) => new Date(ms).toISOString();
    const api = (tenant: string, q: Record<string, string>) => async () => {
      const r = await handler(new HttpRequest({ method: 'GET', url: `http://bench/api/tenants/${tenant}/metrics?${new URLSearchParams(q).toString()}`, params: { tenantId: tenant } }), ictx);
      if (r.status !== 200) throw new Error(`metrics ${tenant} ${JSON.stringify(q)}: ${String(r.status)} ${JSON.stringify(r.jsonBody)}`);
    };
    const rawQ = (sql: string, params: unknown[]) => async () => {
      await pool.query(sql, params);
    };
    const endMin = end.getTime();
    const dayAgo = endMin - GRAIN_MS.day;
    const hourEnd = Math.floor(endMin / GRAIN_MS.hour) * GRAIN_MS.hour;
    const weekAgo = hourEnd - 7 * GRAIN_MS.day;
    const ev = `${ident(schema)}.events`;
    const queries: { name: string; api: number; raw: number; target: number; factor?: number }[] = [];
    const measure = async (name: string, a: () => Promise<void>, r: () => Promise<void>, target: number, factor?: number) => {
      const apiMs = await timeIt(reps, a);
      const rawMs = await timeIt(Math.min(reps, 5), r);
      queries.push({ name, api: apiMs, raw: rawMs, target, ...(factor ? { factor } : {}) });
      ctx.log(`  ${name}: API p95 ${apiMs.toFixed(1)} ms, raw p95 ${rawMs.toFixed(1)} ms`);
    };
    await measure(
      'largest storefront, last 24 h by minute',
      api(top, { from: iso(dayAgo), to: iso(endMin), grain: 'minute' }),
      rawQ(`SELECT date_trunc('minute', occurred_at), count(*), sum(revenue) FROM ${ev} WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 GROUP BY 1`, [top, new Date(dayAgo), new Date(endMin)]),
      30,
      10,
    );
    for (const dim of ['type', 'country', 'browser', 'campaign']) {
      const col = dim === 'campaign' ? 'campaign_id' : dim;
      await measure(
        `largest storefront, 7 days by hour by ${dim}`,
        api(top, { from: iso(weekAgo), to: iso(hourEnd), grain: 'hour', by: dim }),
        rawQ(`SELECT date_trunc('hour', occurred_at), ${col}, count(*), sum(revenue) FROM ${ev} WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 GROUP BY 1, 2`, [top, new Date(weekAgo), new Date(hourEnd)]),
        30,
      );
    }
    await measure(
      'all storefronts, last 24 h by minute',
      api('all', { from: iso(dayAgo), to: iso(endMin), grain: 'minute' }),
      rawQ(`SELECT date_trunc('minute', occurred_at), count(*), sum(revenue) FROM ${ev} WHERE occurred_at >= $1 AND occurred_at < $2 GROUP BY 1`, [new Date(dayAgo), new Date(endMin)]),
      50,
    );
    const queryLoad = await loadAvg();

    // The retailer's density: the same rate per minute as 10 M events in 2.5 h, over a shorter span
    // (events per minute-row depend on the rate, not on the span).
    const denseMinutes = ctx.quick ? 15 : 30;
    const denseEvents = Math.round((10_000_000 / 150) * denseMinutes);
    const dense = await ctx.server.fresh();
    await maintainPartitions(pool, dense, { now: end, aheadDays: 2, retentionDays: 2, caps });
    ctx.log(`rollup-scale: the retailer's density: ${denseEvents.toLocaleString('en-US')} events in ${denseMinutes} min…`);
    await buildData(pool, dense, denseEvents, end, denseMinutes * 60 - 160, ctx.log);
    await fold(pool, dense, ctx);
    const denseTop = (await pool.query<{ tenant_id: string }>(`SELECT tenant_id::text FROM ${ident(dense)}.events GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`)).rows[0]?.tenant_id ?? '1';
    const perRow: { name: string; eventsPerRow: number; rowsPerBucket: number }[] = [];
    for (const def of ROLLUPS.filter((r) => r.grain !== 'day')) {
      const { rows } = await pool.query<{ e: string; r: string; b: string }>(
        `SELECT sum(events)::text AS e, count(*)::text AS r, count(DISTINCT bucket)::text AS b FROM ${ident(dense)}.${ident(def.table)} WHERE tenant_id = $1`,
        [denseTop],
      );
      const e = Number(rows[0]?.e);
      const r = Number(rows[0]?.r);
      const b = Number(rows[0]?.b);
      // Full buckets only count for the rows per bucket at the hour grain when the span is shorter than an hour.
      perRow.push({ name: def.name, eventsPerRow: e / r, rowsPerBucket: r / b });
    }
    // Rows a default panel reads at the most rows per bucket seen, over each preset's buckets.
    const presets = [
      { range: '1h', grain: 'minute', buckets: 60 },
      { range: '24h', grain: 'hour', buckets: 24 },
      { range: '7d', grain: 'hour', buckets: 168 },
      { range: '30d', grain: 'day', buckets: 30 },
    ] as const;
    const panels = [
      { name: 'events by type', spec: 'type' },
      { name: 'totals (revenue, sessions, users)', spec: 'total' },
      { name: 'ratios by campaign (one type each)', spec: 'campaign_type', perType: true },
      { name: 'top countries', spec: 'country' },
      { name: 'top browsers', spec: 'browser' },
    ];
    const panelRows: { panel: string; range: string; rows: number }[] = [];
    for (const p of panels) {
      for (const pr of presets) {
        // The dashboard reads a split the rollups keep only by the hour at the hour.
        const grain = ROLLUPS.some((r) => r.spec === p.spec && r.grain === pr.grain) ? pr.grain : 'hour';
        const buckets = grain === pr.grain ? pr.buckets : pr.grain === 'minute' ? 1 : pr.buckets;
        const seen = perRow.find((x) => x.name === `${p.spec}_${grain}`);
        let perBucket = seen?.rowsPerBucket ?? 0;
        if (grain === 'day') perBucket = perRow.find((x) => x.name === `${p.spec}_hour`)?.rowsPerBucket ?? 0;
        if (p.perType) perBucket /= 10;
        panelRows.push({ panel: p.name, range: pr.range, rows: Math.ceil(perBucket * buckets) });
      }
    }
    const maxPanelRows = Math.max(...panelRows.map((x) => x.rows));
    const loadEnd = await loadAvg();

    const share = rollupBytes / raw.bytes;
    const targets: Target[] = [
      { name: 'all rollups, share of raw events (indexes included)', value: share * 100, unit: '%', target: '<= 20', met: share <= 0.2, note: `${(rollupBytes / 2 ** 20).toFixed(0)} MiB of ${(raw.bytes / 2 ** 20).toFixed(0)} MiB`, loadAverage: loadEnd },
      ...queries.map((q) => ({
        name: `${q.name}, p95 (${reps} requests)`,
        value: q.api,
        unit: 'ms',
        target: q.factor ? `<= ${q.target} and >= ${q.factor}x faster than raw` : `<= ${q.target}`,
        met: q.api <= q.target && (!q.factor || q.raw / q.api >= q.factor),
        note: `raw GROUP BY p95 ${q.raw.toFixed(0)} ms (${(q.raw / q.api).toFixed(0)}x)`,
        loadAverage: queryLoad,
      })),
      { name: 'fold, all rollups (catch-up path)', value: folded.events / folded.seconds, unit: 'events/s', target: '>= 150000', met: folded.events / folded.seconds >= 150_000, note: `${folded.seconds.toFixed(0)} s wall, ${folded.cpuSeconds.toFixed(0)} s server CPU (${((folded.cpuSeconds * 1e6) / folded.events).toFixed(1)} µs per event)`, loadAverage: foldLoad },
      { name: 'retailer density: most rows a default panel reads (largest storefront)', value: maxPanelRows, unit: 'rows', target: `<= ${DEFAULT_MAX_ROWS}`, met: maxPanelRows <= DEFAULT_MAX_ROWS, loadAverage: loadEnd },
    ];
    return {
      tables: [
        {
          title: `Rollup sizes (${events.toLocaleString('en-US')} events, 7 days, ${TENANTS} storefronts; largest ${(topShare * 100).toFixed(1)} %; after default retention)`,
          rows: [
            ['table', 'rows', 'MiB', '% of raw', 'events per row'],
            ['events', raw.rows.toLocaleString('en-US'), (raw.bytes / 2 ** 20).toFixed(0), '100', '1'],
            ...sizes.map((s) => [s.def.table, s.rows.toLocaleString('en-US'), (s.bytes / 2 ** 20).toFixed(1), ((s.bytes / raw.bytes) * 100).toFixed(2), '']),
            ['all rollups', '', (rollupBytes / 2 ** 20).toFixed(0), (share * 100).toFixed(1), ''],
          ],
        },
        { title: 'Metrics API vs the raw GROUP BY (p95, ms)', rows: [['question', 'API', 'raw', 'raw / API'], ...queries.map((q) => [q.name, q.api.toFixed(1), q.raw.toFixed(0), (q.raw / q.api).toFixed(0)])] },
        { title: "Retailer density: the largest storefront's rows", rows: [['rollup', 'events per row', 'rows per bucket'], ...perRow.map((x) => [x.name, x.eventsPerRow.toFixed(1), x.rowsPerBucket.toFixed(1)])] },
        { title: 'Rows each default panel reads at the retailer density (largest storefront)', rows: [['panel', 'range', 'rows'], ...panelRows.map((x) => [x.panel, x.range, String(x.rows)])] },
      ],
      targets,
      data: { events, topShare, raw, sizes: sizes.map((s) => ({ table: s.def.table, bytes: s.bytes, rows: s.rows })), queries, folded, perRow, panelRows, loads: { foldLoad, queryLoad, loadEnd } },
    };
  },
};
