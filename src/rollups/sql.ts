/**
 * SQL builders for the rollups: definition + sketch profile + schema → statement text. Pure; every
 * value is a bind parameter, identifiers come from definitions/config and go through ident().
 */
import { OTHER_VALUE, type RollupDimensionLimits } from '../config.js';
import { ident, qualified } from '../db/ident.js';
import { GRAINS, type Grain, type Measure, type RollupDefinition } from './definitions.js';
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

/** Column list of a rollup table in order: key columns first, then measures. */
export function keyColumns(def: RollupDefinition): string[] {
  return ['tenant_id', 'bucket', ...def.dimensions.map((d) => d.column)];
}

export function measureColumns(def: RollupDefinition): string[] {
  return def.measures.map((m) => m.column);
}

/** The catalog type (pg_type.typname) each rollup column must have. */
export function expectedColumnTypes(def: RollupDefinition, sketch: SketchProfile): Record<string, string> {
  const out: Record<string, string> = { tenant_id: 'int8', bucket: 'timestamptz' };
  for (const d of def.dimensions) out[d.column] = 'text';
  for (const m of def.measures) out[m.column] = m.kind === 'count' ? 'int8' : m.kind === 'sum' ? 'numeric' : sketch.typname;
  return out;
}

function measureAggregate(m: Measure, sketch: SketchProfile): string {
  switch (m.kind) {
    case 'count':
      return 'count(*)';
    case 'sum':
      return `coalesce(sum(${ident(m.source)}), 0)`;
    case 'distinct':
      return sketch.build(ident(m.source));
  }
}

function measureMerge(m: Measure, sketch: SketchProfile): string {
  const stored = `r.${ident(m.column)}`;
  const incoming = `EXCLUDED.${ident(m.column)}`;
  return m.kind === 'distinct' ? sketch.merge(stored, incoming) : `${stored} + ${incoming}`;
}

/** Without configuration: values cut to 64 characters, no allow-lists. */
export const DEFAULT_DIMENSION_LIMITS: RollupDimensionLimits = { maxLength: 64, allow: {} };

/** How many bind parameters each source's filter uses; the dimension bounds follow them. */
const SOURCE_PARAMS: Readonly<Record<AggregateSource, number>> = { window: 2, rebuild: 4 };

/**
 * The stored value of each dimension: '' for none, else the producer's value cut to maxLength
 * characters, and `other` for a value outside the dimension's allow-list when it has one. The
 * length and the lists are bind parameters after the source's own ($n::int, then one text[] per
 * listed dimension, in definition order), so a hostile producer's long tail of distinct values
 * cannot multiply the rows of rollups kept for years.
 */
function dimensionExprs(def: RollupDefinition, limits: RollupDimensionLimits, firstParam: number): string[] {
  const len = `$${firstParam}::int`;
  let next = firstParam + 1;
  return def.dimensions.map((d) => {
    const raw = `coalesce(${ident(d.source)}, '')`;
    const cut = `left(${raw}, ${len})`;
    if (!limits.allow[d.name]) return cut;
    const list = `$${next++}::text[]`;
    return `CASE WHEN ${raw} = '' OR ${raw} = ANY(${list}) THEN ${cut} ELSE '${OTHER_VALUE}' END`;
  });
}

/** The bind values dimensionExprs refers to, to append after the source's own. */
export function dimensionParams(def: RollupDefinition, limits: RollupDimensionLimits = DEFAULT_DIMENSION_LIMITS): unknown[] {
  if (!Number.isSafeInteger(limits.maxLength) || limits.maxLength < 1) throw new RangeError(`maxLength must be a positive integer, got ${String(limits.maxLength)}`);
  return [limits.maxLength, ...def.dimensions.flatMap((d) => (limits.allow[d.name] ? [[...(limits.allow[d.name] ?? [])]] : []))];
}

/** Which events an aggregation reads. */
export type AggregateSource =
  /** the incremental path: $1 < ingest_seq <= $2 */
  | 'window'
  /** rebuild: tenant $1, $2 <= occurred_at < $3, ingest_seq <= $4 (the rollup's watermark) */
  | 'rebuild';

/**
 * `INSERT INTO rollup SELECT ... FROM events ... GROUP BY tenant_id, bucket, dims ON CONFLICT DO
 * UPDATE` adding counts and sums and merging sketches. Grouping by tenant_id with the tables
 * colocated lets Citus run it on each shard (see notes/citus.md). Bind values: the source's, then
 * dimensionParams(def, limits).
 */
export function aggregateSql(
  def: RollupDefinition,
  sketch: SketchProfile,
  schema: string,
  source: AggregateSource,
  limits: RollupDimensionLimits = DEFAULT_DIMENSION_LIMITS,
): string {
  const bucket = bucketExpr(def.grain);
  const dims = dimensionExprs(def, limits, SOURCE_PARAMS[source] + 1);
  const cols = [...keyColumns(def), ...measureColumns(def)].map(ident).join(', ');
  const where =
    source === 'window'
      ? 'ingest_seq > $1 AND ingest_seq <= $2'
      : 'tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND ingest_seq <= $4';
  return [
    `INSERT INTO ${qualified(schema, def.table)} AS r (${cols})`,
    `SELECT tenant_id, ${bucket}, ${dims.join(', ')}, ${def.measures.map((m) => measureAggregate(m, sketch)).join(', ')}`,
    `FROM ${qualified(schema, EVENTS_TABLE)}`,
    `WHERE ${where}`,
    `GROUP BY tenant_id, ${bucket}, ${dims.join(', ')}`,
    `ON CONFLICT (${keyColumns(def).map(ident).join(', ')}) DO UPDATE SET`,
    def.measures.map((m) => `${ident(m.column)} = ${measureMerge(m, sketch)}`).join(', '),
  ].join('\n');
}

/** $1 = names: creates missing state rows so a new definition starts from sequence 0. */
export function ensureStateSql(schema: string): string {
  return `INSERT INTO ${qualified(schema, STATE_TABLE)} (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING`;
}

/** $1 = names. Locked in name order so rebuilds (all rows) and runs (one row) never deadlock. */
export function lockStateSql(schema: string): string {
  return `SELECT name, last_seq::text AS last_seq FROM ${qualified(schema, STATE_TABLE)} WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE`;
}

/**
 * High-water mark of `events.ingest_seq` and the sequence's cache size. $1 = qualified events name.
 * pg_sequence_last_value is NULL before the first nextval.
 */
export function highWaterSql(): string {
  return [
    `SELECT coalesce(pg_sequence_last_value(q.seq), 0)::text AS high_water, s.seqcache::text AS cache`,
    `FROM (SELECT pg_get_serial_sequence($1, 'ingest_seq')::regclass AS seq) AS q`,
    `JOIN pg_sequence s ON s.seqrelid = q.seq`,
  ].join('\n');
}

/**
 * Waiting for in-flight writers: EXCLUSIVE conflicts with the ROW EXCLUSIVE lock every INSERT
 * holds until it commits, so once granted, every sequence value handed out before it belongs to a
 * committed or aborted transaction. Rolling back to the savepoint releases it at once, so ingest
 * pauses only for that instant. The lock_timeout set inside the savepoint reverts with it.
 */
export function waitForWritersSql(schema: string): { savepoint: string; timeout: string; lock: string; release: string; drop: string } {
  return {
    savepoint: `SAVEPOINT ${SAVEPOINT}`,
    timeout: `SELECT set_config('lock_timeout', $1, true)`,
    lock: `LOCK TABLE ${qualified(schema, EVENTS_TABLE)} IN EXCLUSIVE MODE`,
    release: `ROLLBACK TO SAVEPOINT ${SAVEPOINT}`,
    drop: `RELEASE SAVEPOINT ${SAVEPOINT}`,
  };
}

/** $1 < ingest_seq <= $2: how many events a window folds in. */
export function countWindowSql(schema: string): string {
  return `SELECT count(*)::text AS n FROM ${qualified(schema, EVENTS_TABLE)} WHERE ingest_seq > $1 AND ingest_seq <= $2`;
}

/** Same filter as aggregateSql(..., 'rebuild'). */
export function countRebuildSql(schema: string): string {
  return `SELECT count(*)::text AS n FROM ${qualified(schema, EVENTS_TABLE)} WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND ingest_seq <= $4`;
}

/** $1 name, $2 last_seq, $3 last_run_at, $4 last_rows, $5 last_duration_ms */
export function advanceStateSql(schema: string): string {
  return `UPDATE ${qualified(schema, STATE_TABLE)} SET last_seq = $2, last_run_at = $3, last_rows = $4, last_duration_ms = $5 WHERE name = $1`;
}

/** $1 tenant, $2 first bucket, $3 end (exclusive) */
export function deleteBucketsSql(def: RollupDefinition, schema: string): string {
  return `DELETE FROM ${qualified(schema, def.table)} WHERE tenant_id = $1 AND bucket >= $2 AND bucket < $3`;
}

/** $1 cutoff: buckets that start before it go. */
export function pruneSql(def: RollupDefinition, schema: string): string {
  return `DELETE FROM ${qualified(schema, def.table)} WHERE bucket < $1`;
}

/** $1 names */
export function stateSql(schema: string): string {
  return [
    `SELECT name, last_seq::text AS last_seq, last_run_at, last_rows::text AS last_rows, last_duration_ms`,
    `FROM ${qualified(schema, STATE_TABLE)} WHERE name = ANY($1::text[]) ORDER BY name`,
  ].join('\n');
}

/** $1 last_seq, $2 bound: pending rows, counted up to the bound so a huge backlog stays cheap. */
export function pendingCountSql(schema: string): string {
  return `SELECT count(*)::text AS n FROM (SELECT 1 FROM ${qualified(schema, EVENTS_TABLE)} WHERE ingest_seq > $1 LIMIT $2) AS p`;
}

/** $1 last_seq: when the oldest pending event was ingested. */
export function oldestPendingSql(schema: string): string {
  return `SELECT ingested_at FROM ${qualified(schema, EVENTS_TABLE)} WHERE ingest_seq > $1 ORDER BY ingest_seq LIMIT 1`;
}

/** $1 schema name, $2 table names, $3 sketch column names → typname per (table, column). */
export function sketchColumnsSql(): string {
  return [
    `SELECT c.relname AS table_name, a.attname AS column_name, t.typname`,
    `FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace`,
    `JOIN pg_type t ON t.oid = a.atttypid`,
    `WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND a.attname = ANY($3::text[]) AND a.attnum > 0 AND NOT a.attisdropped`,
  ].join('\n');
}

export function hllSchemaSql(): string {
  return `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hll'`;
}
