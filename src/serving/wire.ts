/**
 * The metrics API and the rollup catalog as they travel in JSON: the one definition the server
 * (src/serving/query.ts, src/serving/catalogHandler.ts) and the dashboard (web/dashboard/*, bundled by
 * esbuild) share. Types, and the built-in dimensions' names and headings from src/dimensions.ts (a
 * module that imports nothing), so the browser bundle takes nothing else of the server with it.
 */
export { BUILTIN_DIMENSION_LABELS, DIMENSION_NAME, type BuiltinDimensionName } from '../dimensions.js';

/** What a response can carry per point: `measures=` of the metrics API. */
export type WireMeasure = 'events' | 'revenue' | 'sessions' | 'users';
export type WireGrain = 'minute' | 'hour' | 'day';

/** A point carries `t`, `events`, and each other measure only when it was asked for. */
export interface MetricsPoint {
  t: string;
  events: number;
  /** Decimal string with 4 places (the scale of events.revenue): exact, unlike a JSON number. */
  revenue?: string;
  /** Estimated distinct sessions (a sketch union). */
  sessions?: number;
  users?: number;
}

export interface MetricsSeries {
  /** Value of the `by` dimension ('' when the events had none); null without `by` and for "other". */
  key: string | null;
  /** Present (true) on the one series that sums every value beyond the `top` largest. */
  other?: true;
  /** On the "other" series: how many values it holds. */
  otherKeys?: number;
  points: MetricsPoint[];
}

/** The body of GET /api/tenants/{tenantId}/metrics. */
export interface MetricsResponseWire {
  /** The storefront, or 'all' for the all-storefronts view. */
  tenantId: number | 'all';
  from: string;
  to: string;
  grain: WireGrain;
  by: string | null;
  /** The event type the response is limited to; absent when it is not. */
  type?: string;
  /** The measures each point carries (events always). */
  measures: WireMeasure[];
  /** The rollup table definition that answered, e.g. `type_hour`. */
  rollup: string;
  /** How distinct counts are estimated: hll, or kmv (exact below its size). */
  distinct: 'hll' | 'kmv';
  /** When the rollup last folded in new events; data is complete up to about then. */
  rollupRunAt: string | null;
  /** Most series by value a response holds (the largest by events); the rest are one "other" series. */
  top: number;
  /** Distinct values of `by` in the range (1 without `by`, 0 without data). */
  seriesTotal: number;
  /** Only buckets that have events appear. Series are ordered by key, "other" last. */
  series: MetricsSeries[];
}

/** One question of the catalog, as GET /api/rollups lists it. */
export interface RollupSpecWire {
  name: string;
  /** Public dimension names: what `by` (and `type`, for the type dimension) accept. */
  dimensions: string[];
  measures: WireMeasure[];
  grains: WireGrain[];
  /** Whether the all-storefronts view (`tenantId` = all) can read it. */
  allTenants: boolean;
  /** Analyst-defined rather than built in. */
  custom: boolean;
}

/** The body of GET /api/rollups. */
export interface RollupCatalogWire {
  rollups: RollupSpecWire[];
  /** Every dimension some rollup keeps, with where its values come from (for the panel editor). */
  dimensions: { name: string; source: string }[];
}
