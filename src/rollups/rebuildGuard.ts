/**
 * The guard that keeps `rollup rebuild` from replacing history with nothing. A rebuild deletes a
 * tenant's buckets and re-aggregates them from the raw events at or below each rollup's watermark:
 * exactly what the incremental path folded in, as long as those raw events still exist. The oldest
 * partition is not proof of that: partitions are also created after their days (`hubsink migrate`
 * on a database that already has rollups, a raised HUBSINK_RETENTION_DAYS), and then they are empty.
 * So the guard compares, bucket by bucket and for every rollup definition, the events the rollup
 * holds with the raw events that would replace them, and refuses when a bucket would shrink.
 * More raw than rolled is fine (a rollup pruned before its raw events, e.g. minute grain).
 */
import { qualified } from '../db/ident.js';
import type { Queryable } from '../db/queryable.js';
import type { Statement } from '../db/statement.js';
import { RefusedError } from '../errors.js';
import { bucketCeil, bucketStart, type Grain, type RollupDefinition } from './definitions.js';
import { EVENTS_TABLE, bucketExpr } from './sql.js';

/** A rebuild would lower buckets' totals and the operator did not say --force: nothing changed. */
export class RebuildLossError extends RefusedError {
  override name = 'RebuildLossError';
}

export interface BucketTotal {
  bucket: Date;
  events: number;
}

/** What a rebuild of one rollup would lose: the buckets whose raw events are fewer than folded. */
export interface RebuildShortfall {
  /** The rollup definition's name. */
  name: string;
  table: string;
  grain: Grain;
  /** How many buckets would shrink. */
  buckets: number;
  /** Events those buckets hold now. */
  rolled: number;
  /** Raw events those buckets would be rebuilt from. */
  raw: number;
  /** The earliest and the latest of those buckets. */
  first: Date;
  last: Date;
}

/**
 * The column of every rollup table that counts events. Every rollup keeps it (it is each row's
 * weight), so the guard needs nothing else of a definition's measures.
 */
export function eventsColumn(_def: RollupDefinition): string {
  return 'events';
}

/**
 * Pure: the buckets where the raw events are fewer than the rollup's, summed; undefined when none.
 * A bucket missing on one side counts 0 there.
 */
export function compareBuckets(rolled: readonly BucketTotal[], raw: readonly BucketTotal[]): Omit<RebuildShortfall, 'name' | 'table' | 'grain'> | undefined {
  const rawBy = new Map(raw.map((r) => [r.bucket.getTime(), r.events]));
  let buckets = 0;
  let rolledSum = 0;
  let rawSum = 0;
  let first: number | undefined;
  let last: number | undefined;
  for (const r of rolled) {
    const t = r.bucket.getTime();
    const w = rawBy.get(t) ?? 0;
    if (w >= r.events) continue;
    buckets++;
    rolledSum += r.events;
    rawSum += w;
    first = first === undefined ? t : Math.min(first, t);
    last = last === undefined ? t : Math.max(last, t);
  }
  if (first === undefined || last === undefined) return undefined;
  return { buckets, rolled: rolledSum, raw: rawSum, first: new Date(first), last: new Date(last) };
}

/** A tenant's events per bucket of a rollup, buckets in [from, to). */
export function rolledPerBucketSql(def: RollupDefinition, schema: string, tenantId: number, from: Date, to: Date): Statement {
  return {
    text: `SELECT bucket, sum(${eventsColumn(def)})::text AS n FROM ${qualified(schema, def.table)} WHERE tenant_id = $1 AND bucket >= $2 AND bucket < $3 GROUP BY bucket`,
    values: [tenantId, from, to],
  };
}

/** A tenant's raw events per bucket of a grain, [from, to), at or below a watermark: what a rebuild folds. */
export function rawPerBucketSql(grain: Grain, schema: string, tenantId: number, from: Date, to: Date, watermark: number): Statement {
  const bucket = bucketExpr(grain);
  return {
    text: [
      `SELECT ${bucket} AS bucket, count(*)::text AS n FROM ${qualified(schema, EVENTS_TABLE)}`,
      `WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND ingest_seq <= $4 GROUP BY 1`,
    ].join('\n'),
    values: [tenantId, from, to, watermark],
  };
}

async function bucketTotals(db: Queryable, s: Statement): Promise<BucketTotal[]> {
  const { rows } = await db.query<{ bucket: Date; n: string }>(s);
  return rows.map((r) => ({ bucket: r.bucket, events: Number(r.n) }));
}

/**
 * Every definition whose rebuild of [from, to) for the tenant would lower a bucket's events. Run it
 * in the rebuild's transaction, after the state rows are locked, with their watermarks.
 */
export async function rebuildShortfalls(
  db: Queryable,
  schema: string,
  rollups: readonly RollupDefinition[],
  request: { tenantId: number; from: Date; to: Date },
  watermarks: ReadonlyMap<string, number>,
): Promise<RebuildShortfall[]> {
  const out: RebuildShortfall[] = [];
  for (const def of rollups) {
    const watermark = watermarks.get(def.name);
    if (watermark === undefined) continue;
    const from = bucketStart(request.from, def.grain);
    const to = bucketCeil(request.to, def.grain);
    const rolled = await bucketTotals(db, rolledPerBucketSql(def, schema, request.tenantId, from, to));
    if (rolled.length === 0) continue;
    const raw = await bucketTotals(db, rawPerBucketSql(def.grain, schema, request.tenantId, from, to, watermark));
    const loss = compareBuckets(rolled, raw);
    if (loss) out.push({ name: def.name, table: def.table, grain: def.grain, ...loss });
  }
  return out;
}

/** Pure: one line per shortfall, with both numbers. */
export function describeShortfall(s: RebuildShortfall): string {
  const when = s.buckets === 1 ? `the ${s.grain} bucket ${s.first.toISOString()}` : `${s.buckets} ${s.grain} buckets from ${s.first.toISOString()} to ${s.last.toISOString()}`;
  return `${s.table}: ${when} hold ${s.rolled} events, but only ${s.raw} raw events exist for them (would lose ${s.rolled - s.raw})`;
}

/** Pure: the refusal's message. */
export function refusalMessage(tenantId: number, shortfalls: readonly RebuildShortfall[]): string {
  return [
    `refusing to rebuild tenant ${tenantId}: the raw events of the range are fewer than the rollups folded in (their partitions were dropped and created again empty?), so a rebuild would replace history with less:`,
    ...shortfalls.map((s) => `  ${describeShortfall(s)}`),
    'Nothing was changed. Narrow --from/--to to the days whose raw events are complete, or pass --force to rebuild anyway and lose those events.',
  ].join('\n');
}
