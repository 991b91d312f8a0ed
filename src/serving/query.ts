/**
 * The metrics query and the response shape. Pure: a validated query + sketch profile → statement
 * text and bind values; result rows → JSON. Identifiers come only from the rollup definitions.
 */
import { ident, qualified } from '../db/ident.js';
import { rollupForGrain, type Grain, type RollupDefinition } from '../rollups/definitions.js';
import type { SketchKind, SketchProfile } from '../rollups/sketches.js';
import { STATE_TABLE } from '../rollups/sql.js';
import type { MetricsQuery } from './params.js';

export interface MetricsSql {
  text: string;
  values: unknown[];
}

/**
 * Per bucket (and per value of the `by` dimension): counts and revenue summed, sketches unioned
 * then estimated. Filtering on tenant_id makes it a single-shard (router) query on Citus.
 */
export function metricsSql(q: MetricsQuery, sketch: SketchProfile, schema: string, rollups?: readonly RollupDefinition[]): MetricsSql {
  const def = rollupForGrain(q.grain, rollups);
  const key = q.by ? ident(q.by.column) : `''::text`;
  const text = [
    `SELECT g.bucket, g.key, g.events::text AS events, round(g.revenue, 4)::text AS revenue,`,
    `       ${sketch.estimate('g.s')}::text AS sessions, ${sketch.estimate('g.u')}::text AS users`,
    `FROM (`,
    `  SELECT bucket, ${key} AS key, sum(events) AS events, sum(revenue) AS revenue,`,
    `         ${sketch.union('sessions')} AS s, ${sketch.union('users')} AS u`,
    `  FROM ${qualified(schema, def.table)}`,
    `  WHERE tenant_id = $1 AND bucket >= $2 AND bucket < $3${q.type ? ' AND type = $4' : ''}`,
    `  GROUP BY 1, 2`,
    `) AS g`,
    `ORDER BY g.key, g.bucket`,
  ].join('\n');
  return { text, values: q.type ? [q.tenantId, q.from, q.to, q.type] : [q.tenantId, q.from, q.to] };
}

/** $1 rollup name: when it last ran, for the response's freshness field. */
export function lastRunSql(schema: string): string {
  return `SELECT last_run_at FROM ${qualified(schema, STATE_TABLE)} WHERE name = $1`;
}

export interface MetricsRow {
  bucket: Date;
  key: string;
  events: string;
  revenue: string;
  sessions: string;
  users: string;
}

export interface MetricsPoint {
  t: string;
  events: number;
  /** Decimal string with 4 places (the scale of events.revenue): exact, unlike a JSON number. */
  revenue: string;
  sessions: number;
  users: number;
}

export interface MetricsSeries {
  /** Value of the `by` dimension ('' when the events had none); null without `by`. */
  key: string | null;
  points: MetricsPoint[];
}

export interface MetricsResponse {
  tenantId: number;
  from: string;
  to: string;
  grain: Grain;
  by: string | null;
  /** The event type the response is limited to; absent when it is not. */
  type?: string;
  /** How distinct counts are estimated: hll, or kmv (exact below its size). */
  distinct: SketchKind;
  /** When the rollup last folded in new events; data is complete up to about then. */
  rollupRunAt: string | null;
  /** Only buckets that have events appear. */
  series: MetricsSeries[];
}

/** Pure: rows ordered by key then bucket → one series per key. */
export function shapeMetrics(q: MetricsQuery, distinct: SketchKind, rollupRunAt: Date | null, rows: readonly MetricsRow[]): MetricsResponse {
  const series: MetricsSeries[] = [];
  let current: MetricsSeries | undefined;
  for (const r of rows) {
    const key = q.by ? r.key : null;
    if (!current || current.key !== key) {
      current = { key, points: [] };
      series.push(current);
    }
    current.points.push({ t: r.bucket.toISOString(), events: Number(r.events), revenue: r.revenue, sessions: Number(r.sessions), users: Number(r.users) });
  }
  return {
    tenantId: q.tenantId,
    from: q.from.toISOString(),
    to: q.to.toISOString(),
    grain: q.grain,
    by: q.by?.name ?? null,
    ...(q.type ? { type: q.type } : {}),
    distinct,
    rollupRunAt: rollupRunAt?.toISOString() ?? null,
    series,
  };
}
