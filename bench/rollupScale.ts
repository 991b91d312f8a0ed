/**
 * Rollup scale mode (issue 18): the retailer's shape, built in SQL. 10 M events over 7 days for
 * 1,000 storefronts with Zipf skew (the largest ~10.8 %), 10 event types, 40 countries, 6 browsers,
 * 200 campaigns (each storefront using a few), sessions of 8 events. Folded with the catch-up path
 * (runRollups until caught up, as `hubsink rollup --catch-up`), pruned with the default retention,
 * then measured beside the raw GROUP BY in the same run: sizes as a share of raw events (indexes
 * included), p95 of 100 metrics API requests per question after 5 warm-up requests, fold
 * events/s. Then the retailer's density (10 M events in 2.5 h, ~100 M a day): the fold, the
 * rollups' size as a share of raw there, events per minute-row of the largest storefront, and the
 * rows each default dashboard panel would read at each preset range.
 *
 * Runs on the server named by TEST_DATABASE_URL when set (PostgreSQL 15 with hll, as deployed),
 * else on the embedded one. The fold's reference is COPY of the same events into an empty events
 * table; its cost is reported as CPU per event (server processes from /proc, Node from
 * process.cpuUsage) with the load average, since the machine may be shared.
 *
 *   npm run bench -- --only rollup-scale          (HUBSINK_BENCH_SCALE_EVENTS=10000000 by default,
 *                                                  HUBSINK_BENCH_DENSE_MINUTES=150: 10 M events)
 */
import type pg from 'pg';
import functions from '@azure/functions';
import { ident } from '../src/db/ident.js';
import { maintainPartitions } from '../src/db/partitions.js';
import { ROLLUPS, GRAIN_MS, type RollupDefinition, type RollupRetention } from '../src/rollups/definitions.js';
import { eventsFolded, pruneRollups, runRollups } from '../src/rollups/run.js';
import { makeMetricsHandler } from '../src/serving/handler.js';
import { DEFAULT_MAX_ROWS } from '../src/serving/query.js';
import { loadConfig } from '../src/config.js';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { BenchContext, BenchSection, BenchServer, SectionResult, Target } from './section.js';

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
 * number → one of 100,000 slots), each event 20 s after the previous. Sessions start in the order
 * of g over the span, up to 2 minutes late, so events are ingested about in the order they
 * happened, as a live stream or a day's file delivers them (a window of the fold then covers
 * hours, not the whole span). Each storefront uses 4 countries and 5 campaigns of its own;
 * campaigns only on the ad and e-mail events. Rows are as wide as the real clickstream's: a page
 * URL with a query string, a referrer on every other event, a device, the Event Hubs source
 * columns ingest writes, and a properties object on every tenth event (the issue's 10 M events
 * took 3,717 MiB; these take about as much).
 */
function eventsSql(schema: string): string {
  // The event id spells g in hex: unique, and ~3x cheaper to make than gen_random_uuid().
  return `INSERT INTO ${ident(schema)}.events (tenant_id, event_id, occurred_at, type, session_id, user_id, device_id, url, referrer, country, browser, campaign_id, revenue, properties,
                       source_partition, source_sequence, source_offset, source_enqueued_at)
SELECT z.tenant_id, ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
       o.at, t.type,
       's' || (g / 8), 'u' || z.tenant_id || '-' || (s.h2 % 5000), 'd' || md5((g / 8)::text),
       'https://shop' || z.tenant_id || '.example.com/' || (ARRAY['p','c','search','cart','account'])[1 + (g + s.h2) % 5] || '/' || ((g * 31 + s.h2) % 2000)
         || '?utm_source=' || (ARRAY['google','newsletter','facebook','direct'])[1 + s.h2 % 4] || '&utm_medium=cpc&ref=' || to_hex(s.h % 1000000),
       CASE WHEN g % 2 = 0 THEN 'https://www.google.com/search?q=shop+' || z.tenant_id || '+item+' || (s.h2 % 997) END,
       'C' || ((z.tenant_id * 7 + s.h2 % 4) % 40),
       (ARRAY['chrome','safari','firefox','edge','samsung','opera'])[1 + s.h2 % 6],
       CASE WHEN t.type LIKE 'ad_%' OR t.type LIKE 'email_%' THEN 'cmp' || ((z.tenant_id * 13 + (g + s.h2) % 5) % 200) END,
       CASE WHEN t.type = 'purchase' THEN ((s.h2 % 10000) / 100.0)::numeric END,
       CASE WHEN g % 10 = 0 THEN jsonb_build_object('sku', 'SKU-' || ((g * 7 + s.h2) % 5000), 'qty', 1 + g % 3, 'list', 'recommended') END,
       (s.h % 32)::text, g, (g * 512)::text, o.at
FROM generate_series($3::bigint, $4::bigint) AS g
CROSS JOIN LATERAL (SELECT abs(hashint8(g / 8)) AS h, abs(hashint8(g / 8 + 7919)) AS h2) AS s
CROSS JOIN LATERAL (SELECT $1::timestamptz - ($2::float8 + 260) * interval '1 second'
       + ((g / 8)::float8 / greatest($5::bigint / 8, 1)) * $2::float8 * interval '1 second'
       + (s.h2 % 120) * interval '1 second' + (g % 8) * interval '20 seconds' AS at) AS o
JOIN ${ident(schema)}.bench_zipf z ON z.slot = s.h % 100000
JOIN ${ident(schema)}.bench_types t ON t.slot = (g * 7 + s.h) % 20`;
}

/**
 * The data set, in SQL, by two sessions at once. On PostgreSQL the two indexes of events are
 * dropped for the load and built again after it: an index insert per row per index costs several
 * times what one sorted build does (10 M events took 1,003 s through `hubsink import`).
 */
export async function buildData(pool: pg.Pool, schema: string, events: number, end: Date, spanSeconds: number, log: (s: string) => void, citus = false): Promise<number> {
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
  const ev = `${ident(schema)}.events`;
  const t0 = Date.now();
  if (!citus) {
    await pool.query(`ALTER TABLE ${ev} DROP CONSTRAINT events_pkey`);
    await pool.query(`DROP INDEX ${ident(schema)}.events_ingest_seq_idx`);
  }
  const step = 500_000;
  let next = 0;
  let loaded = 0;
  const worker = async () => {
    while (next < events) {
      const i = next;
      const n = Math.min(step, events - i);
      next += n;
      await pool.query(eventsSql(schema), [end, spanSeconds, i, i + n - 1, events]);
      loaded += n;
      log(`  loaded ${loaded.toLocaleString('en-US')} events (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
  };
  await Promise.all([worker(), worker()]);
  if (!citus) {
    log('  building the indexes of events…');
    await pool.query(`ALTER TABLE ${ev} ADD CONSTRAINT events_pkey PRIMARY KEY (tenant_id, event_id, occurred_at)`);
    await pool.query(`CREATE INDEX events_ingest_seq_idx ON ${ev} (ingest_seq)`);
  }
  await pool.query(`DROP TABLE ${ident(schema)}.bench_zipf, ${ident(schema)}.bench_types`);
  await pool.query(`VACUUM ANALYZE ${ev}`);
  return (Date.now() - t0) / 1000;
}

/**
 * The reference for the fold's rate: the same events written by COPY (the write path's bulk form)
 * into an empty events table with its indexes, streamed out of the built one. The first `sample`
 * events by ingest_seq.
 */
async function copyReference(srv: BenchServer, from: string, end: Date, sample: number): Promise<{ events: number; seconds: number; cpuSeconds: number; nodeCpuSeconds: number }> {
  const to = await srv.fresh();
  await maintainPartitions(srv.pool, to, { now: end, aheadDays: 2, retentionDays: 9, caps: srv.caps });
  const cols = 'tenant_id, event_id, occurred_at, type, session_id, user_id, country, browser, campaign_id, revenue';
  const reader = await srv.pool.connect();
  const writer = await srv.pool.connect();
  try {
    const cpu0 = await serverCpuSeconds(srv.pool);
    const node0 = process.cpuUsage();
    const t = process.hrtime.bigint();
    await pipeline(
      reader.query(copyTo(`COPY (SELECT ${cols} FROM ${ident(from)}.events WHERE ingest_seq <= ${String(sample)}) TO STDOUT`)),
      writer.query(copyFrom(`COPY ${ident(to)}.events (${cols}) FROM STDIN`)),
    );
    const seconds = Number(process.hrtime.bigint() - t) / 1e9;
    const node = process.cpuUsage(node0);
    const cpu1 = await serverCpuSeconds(srv.pool);
    const n = await srv.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${ident(to)}.events`);
    return { events: Number(n.rows[0]?.n), seconds, cpuSeconds: cpu1 - cpu0, nodeCpuSeconds: (node.user + node.system) / 1e6 };
  } finally {
    reader.release();
    writer.release();
  }
}

/** `hubsink rollup --catch-up`: runRollups with the configured window until caught up. */
export async function fold(
  pool: pg.Pool,
  schema: string,
  caps: BenchServer['caps'],
  maxWindowRows: number,
  retentionDays: RollupRetention,
  log: (s: string) => void,
): Promise<{ seconds: number; events: number; cpuSeconds: number; nodeCpuSeconds: number; loadAtStart: number; loadAtEnd: number }> {
  const loadAtStart = await loadAvg();
  const cpu0 = await serverCpuSeconds(pool);
  const node0 = process.cpuUsage();
  const t = process.hrtime.bigint();
  let events = 0;
  for (let i = 0; i < 1000; i++) {
    const r = await runRollups(pool, schema, { caps, maxWindowRows, retentionDays });
    events += eventsFolded(r);
    log(`  folded ${events.toLocaleString('en-US')} events (${(Number(process.hrtime.bigint() - t) / 1e9).toFixed(0)} s)`);
    if (r.every((x) => x.caughtUp)) break;
  }
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  const node = process.cpuUsage(node0);
  const cpu1 = await serverCpuSeconds(pool);
  return { seconds, events, cpuSeconds: cpu1 - cpu0, nodeCpuSeconds: (node.user + node.system) / 1e6, loadAtStart, loadAtEnd: await loadAvg() };
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

/** Requests before the timed ones: a server answering panels has run its code paths before. */
const WARM_UP = 5;

async function timeIt(n: number, f: () => Promise<void>, warmUp = WARM_UP): Promise<number> {
  for (let i = 0; i < warmUp; i++) await f();
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
    // The server named by TEST_DATABASE_URL when set (PostgreSQL with hll, as deployed), else the
    // embedded one.
    const srv = ctx.other ?? ctx.server;
    const { pool, caps } = srv;
    const cfg = loadConfig({});
    const events = Number(process.env.HUBSINK_BENCH_SCALE_EVENTS ?? (ctx.quick ? 1_000_000 : 10_000_000));
    // p95 of 30 is the second slowest request: one stray pause decides it. Of 100 it is the fifth.
    const reps = ctx.quick ? 10 : 100;
    const retention = cfg.rollupRetentionDays;
    const schema = await srv.fresh();
    const end = new Date(Math.floor(Date.now() / 60_000) * 60_000);
    await maintainPartitions(pool, schema, { now: end, aheadDays: 2, retentionDays: 9, caps });
    ctx.log(`rollup-scale: ${events.toLocaleString('en-US')} events over 7 days, ${TENANTS} storefronts (Zipf, largest ${TOP_SHARE * 100} %)…`);
    const buildSeconds = await buildData(pool, schema, events, end, 7 * 86_400 - 600, ctx.log, caps.citus);
    ctx.log(`  built in ${buildSeconds.toFixed(0)} s`);
    const folded = await fold(pool, schema, caps, cfg.rollupMaxWindowRows, retention, ctx.log);
    const foldLoad = folded.loadAtEnd;
    const copySample = Math.min(events, 1_000_000);
    ctx.log(`rollup-scale: COPY of ${copySample.toLocaleString('en-US')} of these events into an empty events table (reference)…`);
    const copied = await copyReference(srv, schema, end, copySample);
    // What the fold wrote, before retention removes the minute rows older than its days.
    const written = await pool.query<{ n: string }>(`SELECT (${ROLLUPS.map((r) => `(SELECT count(*) FROM ${ident(schema)}.${ident(r.table)})`).join(' + ')})::text AS n`);
    const rowsWritten = Number(written.rows[0]?.n);
    await pruneRollups(pool, schema, new Date(), retention);
    await pool.query(`VACUUM ANALYZE ${ROLLUPS.map((r) => `${ident(schema)}.${ident(r.table)}`).join(', ')}`);

    // Sizes, indexes included.
    const raw = await tableBytes(pool, schema, 'events');
    const sizes: { def: RollupDefinition; bytes: number; rows: number }[] = [];
    for (const def of ROLLUPS) sizes.push({ def, ...(await tableBytes(pool, schema, def.table)) });
    const rollupBytes = sizes.reduce((a, s) => a + s.bytes, 0);

    // The largest storefront.
    const topRow = await pool.query<{ tenant_id: string; n: string }>(`SELECT tenant_id::text, count(*)::text AS n FROM ${ident(schema)}.events GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`);
    const top = topRow.rows[0]?.tenant_id ?? '1';
    const topShare = Number(topRow.rows[0]?.n) / events;
    const handler = makeMetricsHandler(() => Promise.resolve({ pool, schema, caps, retentionDays: retention }));
    const ictx = new InvocationContext({ functionName: 'metrics', logHandler: () => undefined });
    const iso = (ms: number) => new Date(ms).toISOString();
    const api = (tenant: string, query: Record<string, string> | (() => Record<string, string>)) => async () => {
      const q = typeof query === 'function' ? query() : query;
      const r = await handler(new HttpRequest({ method: 'GET', url: `http://bench/api/tenants/${tenant}/metrics?${new URLSearchParams(q).toString()}`, params: { tenantId: tenant } }), ictx);
      if (r.status !== 200) throw new Error(`metrics ${tenant} ${JSON.stringify(q)}: ${String(r.status)} ${JSON.stringify(r.jsonBody)}`);
    };
    const rawQ = (sql: string, params: unknown[]) => async () => {
      await pool.query(sql, params);
    };
    // "The last 24 h" is counted from now, as a dashboard asks it (the data ends at `end`, minutes before).
    const endMin = Math.floor(Date.now() / 60_000) * 60_000;
    const dayAgo = endMin - GRAIN_MS.day;
    // Counted from each request's own minute: the minute retention's cut-off moves while they run.
    const lastDay = () => {
      const to = Math.floor(Date.now() / 60_000) * 60_000;
      return { from: iso(to - GRAIN_MS.day), to: iso(to), grain: 'minute' };
    };
    const hourEnd = Math.floor(endMin / GRAIN_MS.hour) * GRAIN_MS.hour;
    const weekAgo = hourEnd - 7 * GRAIN_MS.day;
    const ev = `${ident(schema)}.events`;
    const queries: { name: string; api: number; raw: number; target: number; factor?: number }[] = [];
    const measure = async (name: string, a: () => Promise<void>, r: () => Promise<void>, target: number, factor?: number) => {
      const apiMs = await timeIt(reps, a);
      // Each raw scan takes seconds: one warm-up, and p95 of 5 is the slowest of them.
      const rawMs = await timeIt(Math.min(reps, 5), r, 1);
      queries.push({ name, api: apiMs, raw: rawMs, target, ...(factor ? { factor } : {}) });
      ctx.log(`  ${name}: API p95 ${apiMs.toFixed(1)} ms, raw p95 ${rawMs.toFixed(1)} ms`);
    };
    await measure(
      'largest storefront, last 24 h by minute',
      api(top, lastDay),
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
      api('all', lastDay),
      rawQ(`SELECT date_trunc('minute', occurred_at), count(*), sum(revenue) FROM ${ev} WHERE occurred_at >= $1 AND occurred_at < $2 GROUP BY 1`, [new Date(dayAgo), new Date(endMin)]),
      50,
    );
    const queryLoad = await loadAvg();

    // The retailer's density: the same rate per minute as 10 M events in 2.5 h, over a shorter span
    // (events per minute-row depend on the rate, not on the span).
    const denseMinutes = Number(process.env.HUBSINK_BENCH_DENSE_MINUTES ?? (ctx.quick ? 15 : 150));
    const denseEvents = Math.round((10_000_000 / 150) * denseMinutes);
    const dense = await srv.fresh();
    await maintainPartitions(pool, dense, { now: end, aheadDays: 2, retentionDays: 2, caps });
    ctx.log(`rollup-scale: the retailer's density: ${denseEvents.toLocaleString('en-US')} events in ${denseMinutes} min…`);
    await buildData(pool, dense, denseEvents, end, denseMinutes * 60 - 160, ctx.log, caps.citus);
    const denseFolded = await fold(pool, dense, caps, cfg.rollupMaxWindowRows, retention, ctx.log);
    await pool.query(`VACUUM ANALYZE ${ROLLUPS.map((r) => `${ident(dense)}.${ident(r.table)}`).join(', ')}`);
    const denseRaw = await tableBytes(pool, dense, 'events');
    let denseRollupBytes = 0;
    for (const def of ROLLUPS) denseRollupBytes += (await tableBytes(pool, dense, def.table)).bytes;
    const denseShare = denseRollupBytes / denseRaw.bytes;
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
      {
        name: 'fold, all rollups (catch-up path)',
        value: folded.events / folded.seconds,
        unit: 'events/s',
        target: '>= 150000',
        met: folded.events / folded.seconds >= 150_000,
        note:
          `${folded.seconds.toFixed(0)} s wall; server CPU ${((folded.cpuSeconds * 1e6) / folded.events).toFixed(1)} µs/event, Node ${((folded.nodeCpuSeconds * 1e6) / folded.events).toFixed(2)} µs/event; ` +
          `${rowsWritten.toLocaleString('en-US')} rollup rows (${(rowsWritten / folded.events).toFixed(2)} per event); load ${folded.loadAtStart.toFixed(1)} -> ${folded.loadAtEnd.toFixed(1)}; ` +
          `COPY of ${copied.events.toLocaleString('en-US')} of the events: ${(copied.events / copied.seconds).toFixed(0)} events/s, server CPU ${((copied.cpuSeconds * 1e6) / copied.events).toFixed(1)} µs/event; ` +
          `data built in ${buildSeconds.toFixed(0)} s`,
        loadAverage: foldLoad,
      },
      {
        name: "fold at the retailer's density",
        value: denseFolded.events / denseFolded.seconds,
        unit: 'events/s',
        target: '>= 150000',
        met: denseFolded.events / denseFolded.seconds >= 150_000,
        note: `${denseFolded.events.toLocaleString('en-US')} events in ${denseMinutes} min; ${denseFolded.seconds.toFixed(0)} s wall; server CPU ${((denseFolded.cpuSeconds * 1e6) / denseFolded.events).toFixed(1)} µs/event; load ${denseFolded.loadAtStart.toFixed(1)} -> ${denseFolded.loadAtEnd.toFixed(1)}`,
        loadAverage: denseFolded.loadAtEnd,
      },
      {
        name: "all rollups, share of raw events at the retailer's density",
        value: denseShare * 100,
        unit: '%',
        target: '<= 20',
        met: denseShare <= 0.2,
        note: `${(denseRollupBytes / 2 ** 20).toFixed(0)} MiB of ${(denseRaw.bytes / 2 ** 20).toFixed(0)} MiB; ${denseMinutes} min of events, every minute within the minute retention`,
        loadAverage: denseFolded.loadAtEnd,
      },
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
      data: { events, topShare, raw, sizes: sizes.map((s) => ({ table: s.def.table, bytes: s.bytes, rows: s.rows })), queries, folded, copied, buildSeconds, rowsWritten, denseFolded, denseMinutes, denseEvents, denseRaw, denseRollupBytes, perRow, panelRows, loads: { foldLoad, queryLoad, loadEnd } },
    };
  },
};
