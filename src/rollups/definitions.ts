/**
 * The rollup catalog as data. A rollup spec answers one question: a few dimensions, the measures
 * asked of them, the grains a panel reads, and whether the all-storefronts rows (tenant_id = 0) are
 * kept. expandCatalog turns each spec into one table per grain; the SQL builders turn a definition
 * into statements, so adding a rollup is a spec here plus its table (migration 005 for the built-in
 * catalog; the test "migration: rollup tables match the definitions" keeps the two in step).
 * Pure data, no I/O.
 *
 * Why many small rollups instead of one cube: a cube keyed by every dimension has about as many
 * cells per minute as there are events, so it is as large and as slow to read as the raw events.
 * A rollup with one dimension, and sketches only where distinct counts are asked, has a handful of
 * rows per bucket whatever the volume.
 */
import { BUILTIN_DIMENSION_NAMES, DIMENSION_NAME, type BuiltinDimensionName } from '../dimensions.js';

export type Grain = 'minute' | 'hour' | 'day';
export const GRAINS: readonly Grain[] = ['minute', 'hour', 'day'];

export const GRAIN_MS: Readonly<Record<Grain, number>> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** The events columns a dimension may read directly: producer-set text of bounded cardinality or cut to a bounded length. */
export const DIMENSION_COLUMNS = ['type', 'country', 'browser', 'campaign_id', 'url', 'referrer', 'device_id'] as const;
export type DimensionColumn = (typeof DIMENSION_COLUMNS)[number];

/** Where a dimension's value comes from. */
export type DimensionSource =
  /** an events column from DIMENSION_COLUMNS */
  | { kind: 'column'; column: string }
  /** `properties #>> $n::text[]`, the path a bind value */
  | { kind: 'property'; path: readonly string[] }
  /** the URL's path without scheme, host, query and fragment */
  | { kind: 'urlPath'; column: 'url' | 'referrer' };

/** A grouping column of a rollup. Missing values are stored as '' so the unique key can hold them. */
export interface Dimension {
  /** Public name (the `by` parameter of the metrics API, the HUBSINK_ROLLUP_<NAME>_VALUES setting). */
  name: string;
  /** Column in the rollup tables. */
  column: string;
  source: DimensionSource;
}

export type MeasureName = 'events' | 'revenue' | 'sessions' | 'users';
export const MEASURE_NAMES: readonly MeasureName[] = ['events', 'revenue', 'sessions', 'users'];

/** How a measure is aggregated, and the column of `events` it reads. */
export type Measure =
  /** count(*) of events */
  | { kind: 'count'; column: string }
  /** sum of a numeric events column; NULL counts as 0 */
  | { kind: 'sum'; column: string; source: string }
  /** approximate distinct count of a text events column, kept as a mergeable sketch */
  | { kind: 'distinct'; column: string; source: string };

export const MEASURES: Readonly<Record<MeasureName, Measure>> = {
  events: { kind: 'count', column: 'events' },
  revenue: { kind: 'sum', column: 'revenue', source: 'revenue' },
  sessions: { kind: 'distinct', column: 'sessions', source: 'session_id' },
  users: { kind: 'distinct', column: 'users', source: 'user_id' },
};

export function isDistinctMeasure(m: MeasureName): boolean {
  return MEASURES[m].kind === 'distinct';
}

/** One question: a rollup table per grain. */
export interface RollupSpec {
  /** 'total', 'type', ...: [a-z][a-z0-9_]{0,30} */
  name: string;
  dimensions: readonly Dimension[];
  /** Always includes 'events' (it is the row's weight, and what `top` ranks by). */
  measures: readonly MeasureName[];
  grains: readonly Grain[];
  /** Also keeps the all-storefronts rows (tenant_id = 0). */
  allTenants: boolean;
  /** Analyst-defined (stored in the database, not in this file). */
  custom?: true;
}

/** One table: a spec at one grain. */
export interface RollupDefinition {
  /** `${spec}_${grain}`: the key of its rollup_state row. */
  name: string;
  spec: string;
  /** `rollup_${spec}_${grain}` */
  table: string;
  grain: Grain;
  dimensions: readonly Dimension[];
  measures: readonly MeasureName[];
  allTenants: boolean;
  custom?: true;
}

/** Where each built-in dimension (named in src/dimensions.ts) takes its values from. */
const BUILTIN_SOURCES: Readonly<Record<BuiltinDimensionName, Omit<Dimension, 'name'>>> = {
  type: { column: 'type', source: { kind: 'column', column: 'type' } },
  country: { column: 'country', source: { kind: 'column', column: 'country' } },
  browser: { column: 'browser', source: { kind: 'column', column: 'browser' } },
  campaign: { column: 'campaign_id', source: { kind: 'column', column: 'campaign_id' } },
};

const BUILTIN = Object.fromEntries(BUILTIN_DIMENSION_NAMES.map((name) => [name, { name, ...BUILTIN_SOURCES[name] }])) as Readonly<Record<BuiltinDimensionName, Dimension>>;

/** The dimensions the built-in catalog uses. */
export const DIMENSIONS: readonly Dimension[] = BUILTIN_DIMENSION_NAMES.map((name) => BUILTIN[name]);

function dim(name: BuiltinDimensionName): Dimension {
  return BUILTIN[name];
}

/**
 * The built-in catalog. Minute grain only where a live panel reads it (totals, and the type split
 * behind the live rate panels); distinct-count sketches only on the totals, the one place a panel
 * asks for sessions and users. `campaign` is answered by campaign_type (summed over type), so the
 * click-through and open rates of a campaign need no rollup of their own.
 */
export const DEFAULT_SPECS: readonly RollupSpec[] = [
  { name: 'total', dimensions: [], measures: ['events', 'revenue', 'sessions', 'users'], grains: ['minute', 'hour', 'day'], allTenants: true },
  { name: 'type', dimensions: [dim('type')], measures: ['events', 'revenue'], grains: ['minute', 'hour', 'day'], allTenants: true },
  { name: 'country', dimensions: [dim('country')], measures: ['events', 'revenue'], grains: ['hour', 'day'], allTenants: true },
  { name: 'browser', dimensions: [dim('browser')], measures: ['events', 'revenue'], grains: ['hour', 'day'], allTenants: true },
  { name: 'campaign_type', dimensions: [dim('campaign'), dim('type')], measures: ['events', 'revenue'], grains: ['hour', 'day'], allTenants: true },
];

export const SPEC_NAME = /^[a-z][a-z0-9_]{0,30}$/;
/** Columns every rollup table has besides its dimensions. */
const RESERVED_COLUMNS: readonly string[] = ['tenant_id', 'bucket', ...MEASURE_NAMES];

/** Pure: what is wrong with a spec (empty when it is fine). */
export function specProblems(spec: RollupSpec): string[] {
  const problems: string[] = [];
  if (!SPEC_NAME.test(spec.name)) problems.push(`rollup name ${JSON.stringify(spec.name)}: must match ${SPEC_NAME.source}`);
  if (!spec.measures.includes('events')) problems.push(`rollup ${spec.name}: measures must include events`);
  for (const m of spec.measures) if (!MEASURE_NAMES.includes(m)) problems.push(`rollup ${spec.name}: unknown measure ${JSON.stringify(m)} (one of ${MEASURE_NAMES.join(', ')})`);
  if (new Set(spec.measures).size !== spec.measures.length) problems.push(`rollup ${spec.name}: a measure is listed twice`);
  if (spec.grains.length === 0) problems.push(`rollup ${spec.name}: needs at least one grain`);
  for (const g of spec.grains) if (!GRAINS.includes(g)) problems.push(`rollup ${spec.name}: unknown grain ${JSON.stringify(g)} (one of ${GRAINS.join(', ')})`);
  const columns = new Set<string>();
  for (const d of spec.dimensions) {
    if (!DIMENSION_NAME.test(d.name)) problems.push(`dimension name ${JSON.stringify(d.name)}: must match ${DIMENSION_NAME.source}`);
    if (!DIMENSION_NAME.test(d.column) || RESERVED_COLUMNS.includes(d.column)) problems.push(`dimension ${d.name}: column ${JSON.stringify(d.column)} is not allowed`);
    if (columns.has(d.column)) problems.push(`rollup ${spec.name}: column ${d.column} is used twice`);
    columns.add(d.column);
    const s = d.source;
    if (s.kind === 'column' && !(DIMENSION_COLUMNS as readonly string[]).includes(s.column)) {
      problems.push(`dimension ${d.name}: events column ${JSON.stringify(s.column)} is not one of ${DIMENSION_COLUMNS.join(', ')}`);
    }
    if (s.kind === 'property' && (s.path.length === 0 || s.path.length > 8 || s.path.some((k) => k.length === 0 || k.length > 128))) {
      problems.push(`dimension ${d.name}: a properties path has 1 to 8 keys of 1 to 128 characters`);
    }
    if (s.kind === 'urlPath' && s.column !== 'url' && s.column !== 'referrer') problems.push(`dimension ${d.name}: urlpath() reads url or referrer`);
  }
  return problems;
}

export function tableName(spec: string, grain: Grain): string {
  return `rollup_${spec}_${grain}`;
}

/** One definition per spec and grain, spec order then finest grain first. */
export function expandCatalog(specs: readonly RollupSpec[]): RollupDefinition[] {
  const seen = new Set<string>();
  const out: RollupDefinition[] = [];
  for (const spec of specs) {
    const problems = specProblems(spec);
    if (problems.length > 0) throw new Error(problems.join('; '));
    if (seen.has(spec.name)) throw new Error(`rollup ${spec.name} is defined twice`);
    seen.add(spec.name);
    for (const grain of GRAINS.filter((g) => spec.grains.includes(g))) {
      out.push({
        name: `${spec.name}_${grain}`,
        spec: spec.name,
        table: tableName(spec.name, grain),
        grain,
        dimensions: spec.dimensions,
        measures: MEASURE_NAMES.filter((m) => spec.measures.includes(m)),
        allTenants: spec.allTenants,
        ...(spec.custom ? { custom: true as const } : {}),
      });
    }
  }
  return out;
}

/** The built-in catalog's tables. */
export const ROLLUPS: readonly RollupDefinition[] = expandCatalog(DEFAULT_SPECS);

/**
 * The single cube per grain of migration 003, kept until `hubsink rollup migrate-history --drop-old`
 * has copied and verified its history. Never folded any more.
 */
export const LEGACY_ROLLUPS: readonly RollupDefinition[] = GRAINS.map((grain) => ({
  name: grain,
  spec: 'legacy',
  table: `rollup_${grain}`,
  grain,
  // The columns migration 003 gave the cubes, whatever dimensions are built in today.
  dimensions: [dim('type'), dim('country'), dim('browser'), dim('campaign')],
  measures: MEASURE_NAMES,
  allTenants: false,
}));

/** Every dimension of a catalog, once by name (the first definition wins). */
export function catalogDimensions(rollups: readonly RollupDefinition[] = ROLLUPS): Dimension[] {
  const out = new Map<string, Dimension>();
  for (const r of rollups) for (const d of r.dimensions) if (!out.has(d.name)) out.set(d.name, d);
  return [...out.values()];
}

export function dimensionByName(name: string, dims: readonly Dimension[] = catalogDimensions()): Dimension | undefined {
  return dims.find((d) => d.name === name);
}

/** A question for the catalog: which definitions can answer it exactly. */
export interface RollupQuestion {
  grain: Grain;
  /** The dimension a response is split by, if any. */
  by: string | null;
  /** Dimensions filtered on (e.g. `type` for a ratio's side). */
  filters: readonly string[];
  measures: readonly MeasureName[];
  /** The all-storefronts view needs the tenant_id = 0 rows. */
  allTenants: boolean;
}

/**
 * Pure: the definitions that answer a question exactly (every asked dimension kept, every measure
 * kept, the grain, the tenant-0 rows when asked), smallest first: fewest dimensions, then catalog
 * order. Extra dimensions are summed away (sketches unioned), so the answer is the same from any.
 */
export function answeringRollups(q: RollupQuestion, rollups: readonly RollupDefinition[] = ROLLUPS): RollupDefinition[] {
  const needed = [...new Set([...(q.by ? [q.by] : []), ...q.filters])];
  return rollups
    .map((r, i) => ({ r, i }))
    .filter(
      ({ r }) =>
        r.grain === q.grain &&
        (!q.allTenants || r.allTenants) &&
        needed.every((n) => r.dimensions.some((d) => d.name === n)) &&
        q.measures.every((m) => r.measures.includes(m)),
    )
    .sort((a, b) => a.r.dimensions.length - b.r.dimensions.length || a.i - b.i)
    .map(({ r }) => r);
}

/** The smallest definition of a grain with no dimensions (the totals). */
export function rollupForGrain(grain: Grain, rollups: readonly RollupDefinition[] = ROLLUPS): RollupDefinition {
  const def = answeringRollups({ grain, by: null, filters: [], measures: ['events'], allTenants: false }, rollups)[0];
  if (!def) throw new Error(`no rollup is defined for grain ${grain}`);
  return def;
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
