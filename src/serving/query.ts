/**
 * The metrics query and the response shape. Pure: a validated query + sketch profile → statement
 * text and bind values; result rows → JSON. Identifiers come only from the rollup definitions.
 */
import { ident, qualified } from '../db/ident.js';
import type { Statement } from '../db/statement.js';
import type { MeasureName } from '../rollups/definitions.js';
import type { SketchKind, SketchProfile } from '../rollups/sketches.js';
import { STATE_TABLE } from '../rollups/sql.js';
import { ALL_TENANTS, type MetricsQuery } from './params.js';
import type { MetricsPoint, MetricsResponseWire, MetricsSeries } from './wire.js';

/** Rows of a rollup one response may read, unless configured otherwise (HUBSINK_METRICS_MAX_ROWS). */
export const DEFAULT_MAX_ROWS = 200_000;

/**
 * Per bucket and per series from the rollup chosen for the query (q.rollup): counts and revenue
 * summed, sketches unioned then estimated, and the rollup's other dimensions summed away. A series
 * is one value of the `by` dimension among the `top` largest by events over the range; the other
 * values fold into one series whose key is NULL. At most `maxRows` + 1 rollup rows are read (the
 * caller refuses a response that would need more), so a tenant whose producers sent millions of
 * distinct values costs a bounded scan. Every part filters on the one tenant_id (0 for all
 * storefronts), so on Citus the whole statement runs on one shard (a router query).
 * $1 tenant, $2 from, $3 to, $4 top, $5 row limit, $6 the event type (only with `type`: a ratio's
 * numerator or denominator; the top values are then ranked among that type's events).
 * Without `by` there is one series and nothing to rank: the rows are summed per bucket straight
 * away, with $4 the row limit and $5 the type (the live panels ask this every few seconds, and the
 * ranking and its join were half of the statement's time).
 */
export function metricsSql(q: MetricsQuery, sketch: SketchProfile, schema: string, opts: { maxRows?: number } = {}): Statement {
  const def = q.rollup;
  const maxRows = opts.maxRows ?? DEFAULT_MAX_ROWS;
  if (!Number.isSafeInteger(maxRows) || maxRows < 1) throw new RangeError(`maxRows must be a positive integer, got ${String(maxRows)}`);
  for (const m of q.measures) if (!def.measures.includes(m)) throw new Error(`rollup ${def.name} does not keep ${m}`);
  const typeDim = def.dimensions.find((d) => d.name === 'type');
  if (q.type && !typeDim) throw new Error(`rollup ${def.name} has no type dimension`);
  const byDim = q.by ? def.dimensions.find((d) => d.name === q.by?.name) : undefined;
  if (q.by && !byDim) throw new Error(`rollup ${def.name} has no ${q.by.name} dimension`);
  const has = (m: MeasureName) => q.measures.includes(m);
  const read = ['events', ...(has('revenue') ? ['revenue'] : []), ...(has('sessions') ? ['sessions'] : []), ...(has('users') ? ['users'] : [])];
  const grouped = [
    'sum(r.events) AS events',
    ...(has('revenue') ? ['sum(r.revenue) AS revenue'] : []),
    ...(has('sessions') ? [`${sketch.union('r.sessions')} AS s`] : []),
    ...(has('users') ? [`${sketch.union('r.users')} AS u`] : []),
  ];
  const outer = [
    'g.events::text AS events',
    ...(has('revenue') ? ['round(g.revenue, 4)::text AS revenue'] : []),
    ...(has('sessions') ? [`${sketch.estimate('g.s')}::text AS sessions`] : []),
    ...(has('users') ? [`${sketch.estimate('g.u')}::text AS users`] : []),
  ];
  const where = (typeParam: string) => `  WHERE tenant_id = $1 AND bucket >= $2 AND bucket < $3${q.type && typeDim ? ` AND ${ident(typeDim.column)} = ${typeParam}` : ''}`;
  if (!byDim) {
    const text = [
      `WITH r AS MATERIALIZED (`,
      `  SELECT ${['bucket', ...read].join(', ')}`,
      `  FROM ${qualified(schema, def.table)}`,
      where('$5'),
      `  LIMIT $4`,
      `), g AS (`,
      `  SELECT r.bucket, ${grouped.join(', ')}`,
      `  FROM r`,
      `  GROUP BY 1`,
      `)`,
      `SELECT g.bucket, ''::text AS key, ${outer.join(', ')},`,
      `       (SELECT count(*) FROM r)::text AS rows_read, '1' AS keys`,
      `FROM g`,
      `ORDER BY g.bucket`,
    ].join('\n');
    const values: unknown[] = [q.tenantId, q.from, q.to, maxRows + 1];
    if (q.type) values.push(q.type);
    return { text, values };
  }
  const text = [
    `WITH r AS MATERIALIZED (`,
    `  SELECT ${['bucket', `${ident(byDim.column)} AS key`, ...read].join(', ')}`,
    `  FROM ${qualified(schema, def.table)}`,
    where('$6'),
    `  LIMIT $5`,
    `), k AS (`,
    `  SELECT key, row_number() OVER (ORDER BY sum(events) DESC, key) AS rank FROM r GROUP BY key`,
    `), g AS (`,
    `  SELECT r.bucket, CASE WHEN k.rank <= $4 THEN r.key END AS key, ${grouped.join(', ')}`,
    `  FROM r JOIN k ON k.key = r.key`,
    `  GROUP BY 1, 2`,
    `)`,
    `SELECT g.bucket, g.key, ${outer.join(', ')},`,
    `       (SELECT count(*) FROM r)::text AS rows_read, (SELECT count(*) FROM k)::text AS keys`,
    `FROM g`,
    `ORDER BY g.key IS NULL, g.key, g.bucket`,
  ].join('\n');
  const values: unknown[] = [q.tenantId, q.from, q.to, q.top, maxRows + 1];
  if (q.type) values.push(q.type);
  return { text, values };
}

/** When a rollup last ran, for the response's freshness field. */
export function lastRunSql(schema: string, rollup: string): Statement {
  return { text: `SELECT last_run_at FROM ${qualified(schema, STATE_TABLE)} WHERE name = $1`, values: [rollup] };
}

export interface MetricsRow {
  bucket: Date;
  /** NULL for the series that folds the values beyond the top ones. */
  key: string | null;
  events: string;
  /** Only the measures the query asked for are selected. */
  revenue?: string;
  sessions?: string;
  users?: string;
  /** Rollup rows the statement read (at most the limit + 1). */
  rows_read: string;
  /** Distinct values of the `by` dimension in the range. */
  keys: string;
}

export type { MetricsPoint, MetricsSeries };

export type MetricsResponse = MetricsResponseWire;

/** Pure: whether the statement met the row limit, i.e. the answer would be incomplete. */
export function exceedsRowLimit(rows: readonly MetricsRow[], maxRows: number): boolean {
  return rows.length > 0 && Number(rows[0]?.rows_read) > maxRows;
}

/** Pure: rows ordered by key then bucket ("other" last) → one series per key. */
export function shapeMetrics(q: MetricsQuery, distinct: SketchKind, rollupRunAt: Date | null, rows: readonly MetricsRow[]): MetricsResponse {
  const series: MetricsSeries[] = [];
  const seriesTotal = Number(rows[0]?.keys ?? 0);
  let current: MetricsSeries | undefined;
  let currentRaw: string | null | undefined;
  for (const r of rows) {
    if (!current || currentRaw !== r.key) {
      currentRaw = r.key;
      current = r.key === null ? { key: null, other: true, otherKeys: seriesTotal - q.top, points: [] } : { key: q.by ? r.key : null, points: [] };
      series.push(current);
    }
    current.points.push({
      t: r.bucket.toISOString(),
      events: Number(r.events),
      ...(r.revenue !== undefined ? { revenue: r.revenue } : {}),
      ...(r.sessions !== undefined ? { sessions: Number(r.sessions) } : {}),
      ...(r.users !== undefined ? { users: Number(r.users) } : {}),
    });
  }
  return {
    tenantId: q.tenantId === 0 ? ALL_TENANTS : q.tenantId,
    from: q.from.toISOString(),
    to: q.to.toISOString(),
    grain: q.grain,
    by: q.by?.name ?? null,
    ...(q.type ? { type: q.type } : {}),
    measures: [...q.measures],
    rollup: q.rollup.name,
    distinct,
    rollupRunAt: rollupRunAt?.toISOString() ?? null,
    top: q.top,
    seriesTotal,
    series,
  };
}
