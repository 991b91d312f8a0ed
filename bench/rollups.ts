/**
 * Rollup benchmark: the time to fold 100,000 new events into the minute/hour/day rollups with an
 * empty history, and with 1,000,000+ events of history already rolled up. Incremental rollups read
 * only the new window (by ingest_seq), so the two should cost about the same.
 * Then dashboard latency: the metrics handler (validation, query of the coarsest fitting rollup,
 * JSON shaping) over a mix of typical dashboard requests, median and p99.
 */
import pg from 'pg';
import functions from '@azure/functions';
import type { Capabilities } from '../src/db/capabilities.js';
import { ident } from '../src/db/ident.js';
import { runRollups } from '../src/rollups/run.js';
import { ROLLUPS } from '../src/rollups/definitions.js';
import { makeMetricsHandler } from '../src/serving/handler.js';
import { median, n0, type BenchContext, type BenchSection, type SectionResult } from './section.js';

const { HttpRequest, InvocationContext } = functions;

/**
 * Synthetic events straight in SQL (fast to load a million): 200 storefronts, the retail event
 * types, countries, browsers, campaigns, sessions and users, times spread over `spreadSeconds`
 * before `end`.
 */
export function syntheticEventsSql(schema: string): string {
  return `INSERT INTO ${ident(schema)}.events (tenant_id, event_id, occurred_at, type, session_id, user_id, country, browser, campaign_id, revenue)
SELECT 1 + (g * 7919) % 200,
       gen_random_uuid(),
       $1::timestamptz - (random() * $2::float8) * interval '1 second',
       (ARRAY['page_view','page_view','page_view','click','add_to_cart','purchase','ad_impression','ad_impression','ad_click','email_open','email_click'])[1 + (g % 11)],
       'sess-' || (g / 9),
       CASE WHEN g % 3 = 0 THEN 'user-' || (g % 20000) END,
       (ARRAY['DE','US','GB','FR','SE','JP','NL','BR'])[1 + ((g / 11) % 8)],
       (ARRAY['chrome','safari','firefox','edge'])[1 + ((g / 5) % 4)],
       CASE WHEN g % 4 = 0 THEN 'ad-' || (g % 30) END,
       CASE WHEN g % 11 = 5 THEN ((g % 20000) / 100.0)::numeric END
FROM generate_series($3::bigint, $4::bigint) AS g`;
}

async function insertSynthetic(pool: pg.Pool, schema: string, from: number, count: number, end: Date, spreadSeconds: number): Promise<void> {
  const step = 250_000;
  for (let i = 0; i < count; i += step) {
    const n = Math.min(step, count - i);
    await pool.query(syntheticEventsSql(schema), [end, spreadSeconds, from + i, from + i + n - 1]);
  }
}

async function timeRollups(pool: pg.Pool, schema: string, caps: Capabilities): Promise<{ seconds: number; rows: number }> {
  const t = process.hrtime.bigint();
  let rows = 0;
  // maxWindowRows above the batch: one run folds it all, as one timer tick would after a minute.
  for (let i = 0; i < 10; i++) {
    const r = await runRollups(pool, schema, { caps, maxWindowRows: 2_000_000 });
    rows += r.reduce((n, x) => n + x.rows, 0);
    if (r.every((x) => x.caughtUp)) break;
  }
  return { seconds: Number(process.hrtime.bigint() - t) / 1e9, rows };
}

export interface RollupFigure {
  newEvents: number;
  history: number;
  emptySeconds: number[];
  historySeconds: number[];
  emptyMedian: number;
  historyMedian: number;
  /** with history / empty; the target is <= 1.1. */
  ratio: number;
}


/**
 * `fresh()` gives an empty migrated schema. Empty-history runs each use a fresh schema; the
 * history runs use one schema whose history grows by each round's new events.
 */
export async function benchRollups(
  pool: pg.Pool,
  caps: Capabilities,
  fresh: () => Promise<string>,
  opts: { newEvents: number; history: number; reps: number; log: (s: string) => void },
): Promise<{ figure: RollupFigure; historySchema: string }> {
  const now = new Date();
  const empty: number[] = [];
  for (let rep = 0; rep < opts.reps; rep++) {
    const schema = await fresh();
    await insertSynthetic(pool, schema, 1, opts.newEvents, now, 1800);
    await pool.query(`ANALYZE ${ident(schema)}.events`);
    const r = await timeRollups(pool, schema, caps);
    if (r.rows !== opts.newEvents * ROLLUPS.length) throw new Error(`rolled up ${r.rows} rows, expected ${opts.newEvents * ROLLUPS.length}`);
    empty.push(r.seconds);
    opts.log(`  empty history: ${opts.newEvents} new events in ${r.seconds.toFixed(2)} s`);
  }
  const schema = await fresh();
  opts.log(`  loading ${opts.history} events of history (7 days)…`);
  await insertSynthetic(pool, schema, 1, opts.history, now, 7 * 86400);
  await pool.query(`ANALYZE ${ident(schema)}.events`);
  await timeRollups(pool, schema, caps);
  const withHistory: number[] = [];
  let next = opts.history + 1;
  for (let rep = 0; rep < opts.reps; rep++) {
    await insertSynthetic(pool, schema, next, opts.newEvents, now, 1800);
    next += opts.newEvents;
    const r = await timeRollups(pool, schema, caps);
    if (r.rows !== opts.newEvents * ROLLUPS.length) throw new Error(`rolled up ${r.rows} rows, expected ${opts.newEvents * ROLLUPS.length}`);
    withHistory.push(r.seconds);
    opts.log(`  ${next - 1 - opts.newEvents} events of history: ${opts.newEvents} new events in ${r.seconds.toFixed(2)} s`);
  }
  const emptyMedian = median(empty);
  const historyMedian = median(withHistory);
  return {
    figure: { newEvents: opts.newEvents, history: opts.history, emptySeconds: empty, historySeconds: withHistory, emptyMedian, historyMedian, ratio: historyMedian / emptyMedian },
    historySchema: schema,
  };
}

export interface DashboardFigure {
  queries: number;
  medianMs: number;
  p99Ms: number;
  mix: string[];
}

/** Typical dashboard requests against the rollups of `schema` (times relative to now). */
export async function benchDashboard(pool: pg.Pool, schema: string, caps: Capabilities, opts: { queries: number; log: (s: string) => void }): Promise<DashboardFigure> {
  const handler = makeMetricsHandler(() => Promise.resolve({ pool, schema, caps, retentionDays: { minute: 7, hour: 90, day: 3650 } }));
  const hour = 3600_000;
  const now = Math.floor(Date.now() / hour) * hour + hour;
  const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
  const mix = [
    { name: 'last hour by minute', from: now - hour, to: now, grain: 'minute', by: undefined },
    { name: 'last hour by minute per type', from: now - hour, to: now, grain: 'minute', by: 'type' },
    { name: 'last 24 h by hour per country', from: now - 24 * hour, to: now, grain: 'hour', by: 'country' },
    { name: 'last 7 days by day per campaign', from: Math.floor((now - 7 * 24 * hour) / (24 * hour)) * 24 * hour, to: Math.ceil(now / (24 * hour)) * 24 * hour, grain: 'day', by: 'campaign' },
  ];
  const times: number[] = [];
  const ctx = new InvocationContext({ functionName: 'metrics', logHandler: () => undefined });
  // Warm-up (sketch profile, plans).
  for (const m of mix) {
    const r = await handler(new HttpRequest({ method: 'GET', url: 'http://bench/', params: { tenantId: '1' }, query: { from: iso(m.from), to: iso(m.to), grain: m.grain, ...(m.by ? { by: m.by } : {}) } }), ctx);
    if (r.status !== 200) throw new Error(`dashboard query ${m.name} gave ${String(r.status)}: ${JSON.stringify(r.jsonBody)}`);
  }
  for (let i = 0; i < opts.queries; i++) {
    const m = mix[i % mix.length] ?? mix[0];
    if (!m) break;
    const tenant = 1 + ((i * 37) % 200);
    const req = new HttpRequest({ method: 'GET', url: 'http://bench/', params: { tenantId: String(tenant) }, query: { from: iso(m.from), to: iso(m.to), grain: m.grain, ...(m.by ? { by: m.by } : {}) } });
    const t = process.hrtime.bigint();
    const r = await handler(req, ctx);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (r.status !== 200) throw new Error(`dashboard query gave ${String(r.status)}`);
  }
  times.sort((a, b) => a - b);
  const pct = (p: number) => times[Math.min(times.length - 1, Math.ceil((p / 100) * times.length) - 1)] ?? 0;
  opts.log(`  ${times.length} queries: median ${pct(50).toFixed(1)} ms, p99 ${pct(99).toFixed(1)} ms`);
  return { queries: times.length, medianMs: pct(50), p99Ms: pct(99), mix: mix.map((m) => m.name) };
}

const HISTORY_KEY = 'rollups.history';

export const rollupsSection: BenchSection = {
  name: 'rollups',
  async run(ctx: BenchContext): Promise<SectionResult> {
    const srv = ctx.server;
    const newEvents = ctx.quick ? 20_000 : 100_000;
    const history = newEvents * 10;
    const { figure, historySchema } = await benchRollups(srv.pool, srv.caps, () => srv.fresh(), { newEvents, history, reps: ctx.quick ? 1 : 3, log: ctx.log });
    ctx.shared.set(HISTORY_KEY, { schema: historySchema, events: figure.history + figure.newEvents * figure.historySeconds.length });
    return {
      tables: [
        {
          title: `Rollups on ${srv.label}: time to fold ${n0(figure.newEvents)} new events into minute, hour and day rollups (median of ${figure.emptySeconds.length})`,
          rows: [
            ['history', 'seconds', 'events/s'],
            ['empty', figure.emptyMedian.toFixed(2), n0(figure.newEvents / figure.emptyMedian)],
            [`${n0(figure.history)}+ events`, figure.historyMedian.toFixed(2), n0(figure.newEvents / figure.historyMedian)],
            ['ratio (target <= 1.1)', figure.ratio.toFixed(2), ''],
          ],
        },
      ],
      targets: [
        {
          name: `rollups with 10× history / with none, ${srv.label}`,
          value: figure.ratio,
          unit: '×',
          target: '<= 1.1',
          met: figure.ratio <= 1.1,
          note: `${figure.emptyMedian.toFixed(2)} s empty, ${figure.historyMedian.toFixed(2)} s with ${n0(figure.history)} events of history`,
        },
      ],
      data: { ...figure, server: srv.label },
    };
  },
};

export const dashboardSection: BenchSection = {
  name: 'dashboard',
  async run(ctx: BenchContext): Promise<SectionResult> {
    const srv = ctx.server;
    let h = ctx.shared.get(HISTORY_KEY) as { schema: string; events: number } | undefined;
    if (!h) {
      // Run on its own: build the history it reads.
      await rollupsSection.run(ctx);
      h = ctx.shared.get(HISTORY_KEY) as { schema: string; events: number } | undefined;
    }
    if (!h) throw new Error('no rollup history to query');
    const d = await benchDashboard(srv.pool, h.schema, srv.caps, { queries: 400, log: ctx.log });
    return {
      tables: [
        {
          title: `Dashboard queries on ${srv.label} (metrics handler over rollups of ${n0(h.events)} events, 200 storefronts, 7 days; ${d.queries} queries: ${d.mix.join('; ')})`,
          rows: [
            ['median ms', 'p99 ms'],
            [d.medianMs.toFixed(1), d.p99Ms.toFixed(1)],
          ],
        },
      ],
      targets: [],
      data: { ...d, server: srv.label },
    };
  },
};
