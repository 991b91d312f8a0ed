/**
 * SQL builders for the rollups: definition + sketch profile + schema + the values → a Statement
 * (text and bind values together, so each `$n` is numbered where its value is placed). Pure; every
 * value is a bind parameter, identifiers come from definitions/config and go through ident().
 */
import { OTHER_VALUE, type RollupDimensionLimits } from '../config.js';
import { ident, qualified } from '../db/ident.js';
import type { Statement } from '../db/statement.js';
import { GRAINS, MEASURES, type Grain, type Measure, type RollupDefinition } from './definitions.js';
import type { SketchProfile } from './sketches.js';

export const EVENTS_TABLE = 'events';
export const STATE_TABLE = 'rollup_state';
export const SAVEPOINT = 'hubsink_wait_for_writers';

/**
 * UTC bucket of `occurred_at`. The two-argument date_trunc on timestamptz follows the session's
 * TimeZone (and is only STABLE); converting to UTC and back is IMMUTABLE and independent of it.
 */
export function bucketExpr(grain: Grain, column = 'occurred_at'): string {
  if (!GRAINS.includes(grain)) throw new Error(`unknown grain ${String(grain)}`);
  return `timezone('UTC', date_trunc('${grain}', timezone('UTC', ${ident(column)})))`;
}

/** Key columns of a rollup table: the tenant (0 for all storefronts), the bucket, the dimensions. */
export function keyColumns(def: RollupDefinition): string[] {
  return ['tenant_id', 'bucket', ...def.dimensions.map((d) => d.column)];
}

export function measureColumns(def: RollupDefinition): string[] {
  return def.measures.map((m) => MEASURES[m].column);
}

/** The catalog type (pg_type.typname) each rollup column must have. */
export function expectedColumnTypes(def: RollupDefinition, sketch: SketchProfile): Record<string, string> {
  const out: Record<string, string> = { tenant_id: 'int8', bucket: 'timestamptz' };
  for (const d of def.dimensions) out[d.column] = 'text';
  for (const name of def.measures) {
    const m = MEASURES[name];
    out[m.column] = m.kind === 'count' ? 'int8' : m.kind === 'sum' ? 'numeric' : sketch.typname;
  }
  return out;
}

/** Aggregate of a measure over rollup (or delta) rows: counts and sums add, sketches union. */
function measureReaggregate(m: Measure, sketch: SketchProfile): string {
  return m.kind === 'distinct' ? sketch.unionSketch(ident(m.column)) : `sum(${ident(m.column)})`;
}

function measureMerge(m: Measure, sketch: SketchProfile): string {
  const stored = `r.${ident(m.column)}`;
  const incoming = `EXCLUDED.${ident(m.column)}`;
  return m.kind === 'distinct' ? sketch.merge(stored, incoming) : `${stored} + ${incoming}`;
}

function measuresOf(def: RollupDefinition): Measure[] {
  return def.measures.map((m) => MEASURES[m]);
}

/** Without configuration: values cut to 64 characters, no allow-lists. */
export const DEFAULT_DIMENSION_LIMITS: RollupDimensionLimits = { maxLength: 64, allow: {} };

/**
 * The path of a URL: what follows scheme and host, up to the query or fragment. A constant of the
 * code, never of the request.
 */
const URL_PATH_PATTERN = '^(?:[A-Za-z][A-Za-z0-9+.-]*:)?(?://[^/?#]*)?([^?#]*)';

/**
 * The stored value of each dimension: '' for none, else the producer's value cut to maxLength
 * characters, and `other` for a value outside the dimension's allow-list when it has one. The
 * length, the properties paths and the lists are bind parameters after the source's own ($n::int,
 * then per dimension in definition order its path if it reads properties and its list if it has
 * one), so a hostile producer's long tail of distinct values cannot multiply the rows of rollups
 * kept for years.
 */
function dimensionExprs(def: RollupDefinition, limits: RollupDimensionLimits, firstParam: number): string[] {
  const len = `$${firstParam}::int`;
  let next = firstParam + 1;
  return def.dimensions.map((d) => {
    const s = d.source;
    const value =
      s.kind === 'column'
        ? ident(s.column)
        : s.kind === 'property'
          ? `(properties #>> $${next++}::text[])`
          : `substring(${ident(s.column)} from '${URL_PATH_PATTERN}')`;
    const raw = `coalesce(${value}, '')`;
    const cut = `left(${raw}, ${len})`;
    if (!limits.allow[d.name]) return cut;
    const list = `$${next++}::text[]`;
    return `CASE WHEN ${raw} = '' OR ${raw} = ANY(${list}) THEN ${cut} ELSE '${OTHER_VALUE}' END`;
  });
}

/** The bind values dimensionExprs refers to, placed after the source's own. */
export function dimensionParams(def: RollupDefinition, limits: RollupDimensionLimits = DEFAULT_DIMENSION_LIMITS): unknown[] {
  if (!Number.isSafeInteger(limits.maxLength) || limits.maxLength < 1) throw new RangeError(`maxLength must be a positive integer, got ${String(limits.maxLength)}`);
  // A parameter the text does not use would be refused.
  if (def.dimensions.length === 0) return [];
  return [
    limits.maxLength,
    ...def.dimensions.flatMap((d) => [
      ...(d.source.kind === 'property' ? [[...d.source.path]] : []),
      ...(limits.allow[d.name] ? [[...(limits.allow[d.name] ?? [])]] : []),
    ]),
  ];
}

/** Which events an aggregation (or its count) reads. */
export type EventSelection =
  /**
   * the incremental path: fromSeq < ingest_seq <= toSeq, and with `notBefore` only events that
   * happened at or after it (a bucket boundary of the definition's grain, so whole buckets are kept)
   */
  | { source: 'window'; fromSeq: number; toSeq: number; notBefore?: Date }
  /** rebuild: one tenant, from <= occurred_at < to, ingest_seq <= watermark (the rollup's) */
  | { source: 'rebuild'; tenantId: number; from: Date; to: Date; watermark: number };

/** The WHERE condition of a selection and its values, numbered from $1. */
function selectionFilter(sel: EventSelection): { where: string; values: unknown[] } {
  if (sel.source === 'window') {
    return sel.notBefore
      ? { where: 'ingest_seq > $1 AND ingest_seq <= $2 AND occurred_at >= $3', values: [sel.fromSeq, sel.toSeq, sel.notBefore] }
      : { where: 'ingest_seq > $1 AND ingest_seq <= $2', values: [sel.fromSeq, sel.toSeq] };
  }
  return { where: 'tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND ingest_seq <= $4', values: [sel.tenantId, sel.from, sel.to, sel.watermark] };
}

function onConflict(def: RollupDefinition, sketch: SketchProfile): string {
  return [
    `ON CONFLICT (${keyColumns(def).map(ident).join(', ')}) DO UPDATE SET`,
    measuresOf(def).map((m) => `${ident(m.column)} = ${measureMerge(m, sketch)}`).join(', '),
  ].join('\n');
}

function allColumns(def: RollupDefinition): string {
  return [...keyColumns(def), ...measureColumns(def)].map(ident).join(', ');
}

/**
 * `SELECT <tenant>, bucket, dims, measures FROM events WHERE ... GROUP BY ...`, and its bind values.
 *
 * `fenced` (the deltas of plain PostgreSQL): the values are computed in a subquery the planner
 * keeps whole (OFFSET 0). Grouping on its output, it estimates a tenth of the rows as groups and
 * hashes them; grouping on the expressions themselves, it takes every row for a group and sorts the
 * window first, on disk past work_mem. At the bench's shape the dearest deltas took 35 to 40 % less
 * time fenced. Not on Citus: a subquery with OFFSET is not pushed down to the shards, and the
 * coordinator would pull every event. Inner columns are positional (d1, m1, ...) so no dimension
 * column can shadow a measure's source.
 */
function aggregateEvents(
  def: RollupDefinition,
  sketch: SketchProfile,
  schema: string,
  selection: EventSelection,
  limits: RollupDimensionLimits,
  perTenant: boolean,
  fenced = false,
): Statement {
  const { where, values } = selectionFilter(selection);
  const dims = dimensionExprs(def, limits, values.length + 1);
  const measures = measuresOf(def);
  const bucket = fenced ? 'b' : bucketExpr(def.grain);
  const dim = (i: number) => (fenced ? `d${i + 1}` : (dims[i] ?? ''));
  const source = (m: Measure, i: number) => (m.kind === 'count' ? '' : fenced ? `m${i + 1}` : ident(m.source));
  const aggregate = (m: Measure, i: number): string => {
    switch (m.kind) {
      case 'count':
        return 'count(*)';
      case 'sum':
        return `coalesce(sum(${source(m, i)}), 0)`;
      case 'distinct':
        return sketch.build(source(m, i));
    }
  };
  const from = fenced
    ? [
        `FROM (SELECT ${[
          ...(perTenant ? ['tenant_id'] : []),
          `${bucketExpr(def.grain)} AS b`,
          ...dims.map((d, i) => `${d} AS d${i + 1}`),
          ...measures.flatMap((m, i) => (m.kind === 'count' ? [] : [`${ident(m.source)} AS m${i + 1}`])),
        ].join(', ')}`,
        `FROM ${qualified(schema, EVENTS_TABLE)}`,
        `WHERE ${where}`,
        `OFFSET 0) AS e`,
      ]
    : [`FROM ${qualified(schema, EVENTS_TABLE)}`, `WHERE ${where}`];
  const group = [...(perTenant ? ['tenant_id'] : []), bucket, ...dims.map((_, i) => dim(i))];
  const text = [
    `SELECT ${perTenant ? 'tenant_id' : '0::bigint'} AS tenant_id, ${bucket} AS bucket, ${[
      ...dims.map((_, i) => `${dim(i)} AS ${ident(def.dimensions[i]?.column ?? '')}`),
      ...measures.map((m, i) => `${aggregate(m, i)} AS ${ident(m.column)}`),
    ].join(', ')}`,
    ...from,
    `GROUP BY ${group.join(', ')}`,
  ].join('\n');
  return { text, values: [...values, ...dimensionParams(def, limits)] };
}

/**
 * `INSERT INTO rollup SELECT ... FROM events ... GROUP BY tenant_id, bucket, dims ON CONFLICT DO
 * UPDATE` adding counts and sums and merging sketches. Grouping by tenant_id with the tables
 * colocated lets Citus run it on each shard (see docs/design.md, "Citus facts"). Bind values: the
 * selection's, then dimensionParams(def, limits).
 */
export function aggregateSql(
  def: RollupDefinition,
  sketch: SketchProfile,
  schema: string,
  selection: EventSelection,
  limits: RollupDimensionLimits = DEFAULT_DIMENSION_LIMITS,
): Statement {
  return upsert(def, sketch, schema, aggregateEvents(def, sketch, schema, selection, limits, true));
}

/** INSERT of a SELECT's rows into the rollup, merging into rows that exist. */
function upsert(def: RollupDefinition, sketch: SketchProfile, schema: string, select: Statement): Statement {
  return { text: [`INSERT INTO ${qualified(schema, def.table)} AS r (${allColumns(def)})`, select.text, onConflict(def, sketch)].join('\n'), values: select.values };
}

/**
 * The all-storefronts rows (tenant_id = 0) of a window straight from events, grouped by bucket and
 * dimensions. On Citus the shards return partial aggregates and the coordinator inserts one row
 * per bucket and value into tenant 0's shard.
 */
export function aggregateAllTenantsSql(
  def: RollupDefinition,
  sketch: SketchProfile,
  schema: string,
  selection: Extract<EventSelection, { source: 'window' }>,
  limits: RollupDimensionLimits = DEFAULT_DIMENSION_LIMITS,
): Statement {
  return upsert(def, sketch, schema, aggregateEvents(def, sketch, schema, selection, limits, false));
}

/** Name of a definition's delta table of one cycle (a temporary table, dropped at commit). */
export function deltaTable(def: RollupDefinition): string {
  return `hubsink_delta_${def.name}`;
}

function temp(name: string): string {
  return `pg_temp.${ident(name)}`;
}

/** A window's delta of one definition, aggregated from events into a temporary table. */
export function deltaFromEventsSql(
  def: RollupDefinition,
  sketch: SketchProfile,
  schema: string,
  selection: Extract<EventSelection, { source: 'window' }>,
  limits: RollupDimensionLimits = DEFAULT_DIMENSION_LIMITS,
): Statement {
  const select = aggregateEvents(def, sketch, schema, selection, limits, true, true);
  return { text: `CREATE TEMPORARY TABLE ${ident(deltaTable(def))} ON COMMIT DROP AS\n${select.text}`, values: select.values };
}

/**
 * A window's delta of one definition from the delta of a finer one (same or finer grain, a superset
 * of its dimensions and measures): re-bucketed, extra dimensions summed away, sketches unioned.
 */
export function deltaFromDeltaSql(def: RollupDefinition, parent: RollupDefinition, sketch: SketchProfile): Statement {
  const bucket = parent.grain === def.grain ? 'bucket' : bucketExpr(def.grain, 'bucket');
  const dims = def.dimensions.map((d) => ident(d.column));
  const text = [
    `CREATE TEMPORARY TABLE ${ident(deltaTable(def))} ON COMMIT DROP AS`,
    `SELECT tenant_id, ${bucket} AS bucket, ${[...dims, ...measuresOf(def).map((m) => `${measureReaggregate(m, sketch)} AS ${ident(m.column)}`)].join(', ')}`,
    `FROM ${temp(deltaTable(parent))}`,
    `GROUP BY ${['tenant_id', bucket, ...dims].join(', ')}`,
  ].join('\n');
  return { text, values: [] };
}

/**
 * The per-tenant rows of a delta into the rollup, in key order: sorted inserts walk the index pages
 * in turn, where the delta's hash-aggregate order touches them at random (the upserts are most of
 * the fold's cost).
 */
export function mergeDeltaSql(def: RollupDefinition, sketch: SketchProfile, schema: string): Statement {
  return {
    text: [
      `INSERT INTO ${qualified(schema, def.table)} AS r (${allColumns(def)})`,
      `SELECT ${allColumns(def)} FROM ${temp(deltaTable(def))} ORDER BY ${keyColumns(def).map(ident).join(', ')}`,
      onConflict(def, sketch),
    ].join('\n'),
    values: [],
  };
}

/**
 * The all-storefronts rows (tenant_id = 0) summed from per-tenant rows: the delta of a window, or
 * (after a rebuild) the rollup's own rows of a bucket range, which hold exactly the same events.
 */
export function allTenantsFromRowsSql(
  def: RollupDefinition,
  sketch: SketchProfile,
  schema: string,
  from: { delta: true } | { range: { from: Date; to: Date } },
): Statement {
  const dims = def.dimensions.map((d) => ident(d.column));
  const source = 'delta' in from ? temp(deltaTable(def)) : `${qualified(schema, def.table)} WHERE tenant_id <> 0 AND bucket >= $1 AND bucket < $2`;
  const text = [
    `INSERT INTO ${qualified(schema, def.table)} AS r (${allColumns(def)})`,
    `SELECT 0, bucket, ${[...dims, ...measuresOf(def).map((m) => measureReaggregate(m, sketch))].join(', ')}`,
    `FROM ${source}`,
    `GROUP BY ${['bucket', ...dims].join(', ')}`,
    `ORDER BY ${['bucket', ...dims].join(', ')}`,
    onConflict(def, sketch),
  ].join('\n');
  return { text, values: 'delta' in from ? [] : [from.range.from, from.range.to] };
}

/** The events a delta holds: a window's count when its delta was not cut at a bucket. */
export function deltaEventsSql(def: RollupDefinition): Statement {
  return { text: `SELECT coalesce(sum(events), 0)::text AS n FROM ${temp(deltaTable(def))}`, values: [] };
}

export function dropDeltaSql(def: RollupDefinition): Statement {
  return { text: `DROP TABLE IF EXISTS ${temp(deltaTable(def))}`, values: [] };
}

/** Creates missing state rows so a new definition starts from sequence 0. */
export function ensureStateSql(schema: string, names: readonly string[]): Statement {
  return { text: `INSERT INTO ${qualified(schema, STATE_TABLE)} (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING`, values: [[...names]] };
}

/** Locked in name order so rebuilds (all rows) and runs (one row) never deadlock. */
export function lockStateSql(schema: string, names: readonly string[]): Statement {
  return {
    text: `SELECT name, last_seq::text AS last_seq FROM ${qualified(schema, STATE_TABLE)} WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE`,
    values: [[...names]],
  };
}

/**
 * High-water mark of `events.ingest_seq` and the sequence's cache size. pg_sequence_last_value is
 * NULL before the first nextval.
 */
export function highWaterSql(schema: string): Statement {
  return {
    text: [
      `SELECT coalesce(pg_sequence_last_value(q.seq), 0)::text AS high_water, s.seqcache::text AS cache`,
      `FROM (SELECT pg_get_serial_sequence($1, 'ingest_seq')::regclass AS seq) AS q`,
      `JOIN pg_sequence s ON s.seqrelid = q.seq`,
    ].join('\n'),
    values: [qualified(schema, EVENTS_TABLE)],
  };
}

/**
 * Waiting for in-flight writers: SHARE conflicts with the ROW EXCLUSIVE lock every INSERT (and
 * COPY) holds until it commits, so once granted, every sequence value handed out before it belongs
 * to a committed or aborted transaction. SHARE, not EXCLUSIVE: SHARE does not conflict with
 * itself, so runs that start together (the timer on several instances, the runner, an operator's
 * catch-up) wait for the writers at once instead of one after the other. On Citus each grant is
 * propagated to the workers, and five runs queued for EXCLUSIVE outlasted the 1.5 s lock timeout. Rolling back to the savepoint releases it at once, so ingest
 * pauses only for that instant. The lock_timeout set inside the savepoint reverts with it.
 */
export function waitForWritersSql(
  schema: string,
  lockTimeoutMs: number,
): { savepoint: Statement; timeout: Statement; lock: Statement; release: Statement; drop: Statement } {
  return {
    savepoint: { text: `SAVEPOINT ${SAVEPOINT}`, values: [] },
    timeout: { text: `SELECT set_config('lock_timeout', $1, true)`, values: [String(lockTimeoutMs)] },
    lock: { text: `LOCK TABLE ${qualified(schema, EVENTS_TABLE)} IN SHARE MODE`, values: [] },
    release: { text: `ROLLBACK TO SAVEPOINT ${SAVEPOINT}`, values: [] },
    drop: { text: `RELEASE SAVEPOINT ${SAVEPOINT}`, values: [] },
  };
}

/** How many events a selection folds in: the same filter as aggregateSql's. */
export function countEventsSql(schema: string, selection: EventSelection): Statement {
  const { where, values } = selectionFilter(selection);
  return { text: `SELECT count(*)::text AS n FROM ${qualified(schema, EVENTS_TABLE)} WHERE ${where}`, values };
}

export interface StateAdvance {
  name: string;
  lastSeq: number;
  runAt: Date;
  rows: number;
  durationMs: number;
}

export function advanceStateSql(schema: string, a: StateAdvance): Statement {
  return {
    text: `UPDATE ${qualified(schema, STATE_TABLE)} SET last_seq = $2, last_run_at = $3, last_rows = $4, last_duration_ms = $5 WHERE name = $1`,
    values: [a.name, a.lastSeq, a.runAt, a.rows, a.durationMs],
  };
}

/** A tenant's buckets in [from, to) (tenant 0: the all-storefronts rows). */
export function deleteBucketsSql(def: RollupDefinition, schema: string, tenantId: number, from: Date, to: Date): Statement {
  return { text: `DELETE FROM ${qualified(schema, def.table)} WHERE tenant_id = $1 AND bucket >= $2 AND bucket < $3`, values: [tenantId, from, to] };
}

/** Buckets that start before the cutoff go. */
export function pruneSql(def: RollupDefinition, schema: string, cutoff: Date): Statement {
  return { text: `DELETE FROM ${qualified(schema, def.table)} WHERE bucket < $1`, values: [cutoff] };
}

export function stateSql(schema: string, names: readonly string[]): Statement {
  return {
    text: [
      `SELECT name, last_seq::text AS last_seq, last_run_at, last_rows::text AS last_rows, last_duration_ms`,
      `FROM ${qualified(schema, STATE_TABLE)} WHERE name = ANY($1::text[]) ORDER BY name`,
    ].join('\n'),
    values: [[...names]],
  };
}

/** Rows after the watermark, counted up to the bound so a huge backlog stays cheap. */
export function pendingCountSql(schema: string, lastSeq: number | string, bound: number): Statement {
  return { text: `SELECT count(*)::text AS n FROM (SELECT 1 FROM ${qualified(schema, EVENTS_TABLE)} WHERE ingest_seq > $1 LIMIT $2) AS p`, values: [lastSeq, bound] };
}

/** When the oldest event after the watermark was ingested. */
export function oldestPendingSql(schema: string, lastSeq: number | string): Statement {
  return { text: `SELECT ingested_at FROM ${qualified(schema, EVENTS_TABLE)} WHERE ingest_seq > $1 ORDER BY ingest_seq LIMIT 1`, values: [lastSeq] };
}

/** typname per (table, column) of these sketch columns of these tables in a schema. */
export function sketchColumnsSql(schema: string, tables: readonly string[], columns: readonly string[]): Statement {
  return {
    text: [
      `SELECT c.relname AS table_name, a.attname AS column_name, t.typname`,
      `FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace`,
      `JOIN pg_type t ON t.oid = a.atttypid`,
      `WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND a.attname = ANY($3::text[]) AND a.attnum > 0 AND NOT a.attisdropped`,
    ].join('\n'),
    values: [schema, [...tables], [...columns]],
  };
}

export function hllSchemaSql(): Statement {
  return { text: `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hll'`, values: [] };
}
