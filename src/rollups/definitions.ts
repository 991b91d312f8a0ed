/**
 * Declarative rollup definitions. A rollup is a grain, a list of dimensions and a list of measures;
 * the SQL builders turn a definition into statements, so adding a rollup is a definition here plus
 * its table in a migration (the test "migration: rollup tables match the definitions and the sketch
 * profile the server supports" in test/integration/rollups-core.test.ts keeps the two in step).
 * Pure data, no I/O.
 */

export type Grain = 'minute' | 'hour' | 'day';
export const GRAINS: readonly Grain[] = ['minute', 'hour', 'day'];

export const GRAIN_MS: Readonly<Record<Grain, number>> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** A grouping column of a rollup. Missing values are stored as '' so the unique key can hold them. */
export interface Dimension {
  /** Public name (the `by` parameter of the metrics API). */
  name: string;
  /** Column in the rollup table. */
  column: string;
  /** Column of `events` it comes from. */
  source: string;
}

export type Measure =
  /** count(*) of events */
  | { kind: 'count'; column: string }
  /** sum of a numeric events column; NULL counts as 0 */
  | { kind: 'sum'; column: string; source: string }
  /** approximate distinct count of a text events column, kept as a mergeable sketch */
  | { kind: 'distinct'; column: string; source: string };

export interface RollupDefinition {
  /** Key of the rollup's `rollup_state` row. */
  name: string;
  table: string;
  grain: Grain;
  dimensions: readonly Dimension[];
  measures: readonly Measure[];
}

export const DIMENSIONS: readonly Dimension[] = [
  { name: 'type', column: 'type', source: 'type' },
  { name: 'country', column: 'country', source: 'country' },
  { name: 'browser', column: 'browser', source: 'browser' },
  { name: 'campaign', column: 'campaign_id', source: 'campaign_id' },
];

export const MEASURES: readonly Measure[] = [
  { kind: 'count', column: 'events' },
  { kind: 'sum', column: 'revenue', source: 'revenue' },
  { kind: 'distinct', column: 'sessions', source: 'session_id' },
  { kind: 'distinct', column: 'users', source: 'user_id' },
];

/** Ordered finest to coarsest; the order matters for "coarsest rollup that answers a range". */
export const ROLLUPS: readonly RollupDefinition[] = [
  { name: 'minute', table: 'rollup_minute', grain: 'minute', dimensions: DIMENSIONS, measures: MEASURES },
  { name: 'hour', table: 'rollup_hour', grain: 'hour', dimensions: DIMENSIONS, measures: MEASURES },
  { name: 'day', table: 'rollup_day', grain: 'day', dimensions: DIMENSIONS, measures: MEASURES },
];

export function rollupForGrain(grain: Grain, rollups: readonly RollupDefinition[] = ROLLUPS): RollupDefinition {
  const def = rollups.find((r) => r.grain === grain);
  if (!def) throw new Error(`no rollup is defined for grain ${grain}`);
  return def;
}

export function dimensionByName(name: string, dims: readonly Dimension[] = DIMENSIONS): Dimension | undefined {
  return dims.find((d) => d.name === name);
}

/** Start of the UTC bucket that holds `t`. */
export function bucketStart(t: Date, grain: Grain): Date {
  const ms = GRAIN_MS[grain];
  return new Date(Math.floor(t.getTime() / ms) * ms);
}

/** Smallest bucket boundary at or after `t`. */
export function bucketCeil(t: Date, grain: Grain): Date {
  const ms = GRAIN_MS[grain];
  return new Date(Math.ceil(t.getTime() / ms) * ms);
}

export function isAligned(t: Date, grain: Grain): boolean {
  return t.getTime() % GRAIN_MS[grain] === 0;
}

export type RollupRetention = Readonly<Record<Grain, number>>;

/** Buckets that start before this instant are past retention for the grain. */
export function retentionCutoff(now: Date, grain: Grain, retentionDays: RollupRetention): Date {
  return bucketStart(new Date(now.getTime() - retentionDays[grain] * GRAIN_MS.day), grain);
}
