/**
 * Distinct-count sketches: the one place where the database's capabilities change SQL text.
 *
 * - `hll`: the postgresql-hll extension (on Azure Cosmos DB for PostgreSQL and Debian's
 *   postgresql-NN-hll). Default parameters (log2m 11): ~1.2 KB per row, relative standard error
 *   1.04/sqrt(2048) ≈ 2.3%, exact for small sets (explicit mode).
 * - `kmv`: the fallback when hll is not installed, in plain SQL so it also runs on Citus workers
 *   without custom functions. A K-minimum-values sketch: the K smallest distinct 64-bit hashes
 *   (`hashtextextended`, a stable built-in). Bounded (at most K int8 per row), mergeable across
 *   buckets and dimensions like hll (union, keep the K smallest), exact while a set has fewer than K
 *   members, and beyond that estimates (K-1)/u_K with relative standard error ≈ 1/sqrt(K-2)
 *   (3.1% for K = 1024).
 *
 * Which encoding a database uses is fixed when migration 003 creates the rollup tables (hll if the
 * extension could be installed then); the runtime reads it back from the catalog, so installing hll
 * later never mixes encodings.
 */
import { ident } from '../db/ident.js';
import { HubsinkError } from '../errors.js';

export type SketchKind = 'hll' | 'kmv';
export const SKETCH_KINDS: readonly SketchKind[] = ['hll', 'kmv'];

export const KMV_K = 1024;

/** The capability facts the rollups depend on (a subset of db/capabilities' result). */
export interface RollupCapabilities {
  citus: boolean;
  hllInstalled: boolean;
}

/** How distinct measures are encoded, with the SQL fragments that differ per encoding. */
export interface SketchProfile {
  kind: SketchKind;
  /** `pg_type.typname` of a sketch column, as the catalog reports it. */
  typname: string;
  /** Relative standard error of an estimate beyond the exact range. */
  relativeError: number;
  /** Aggregate over raw `events` rows: text column → sketch (never NULL). */
  build(sourceColumn: string): string;
  /** ON CONFLICT: the stored sketch merged with the incoming one. */
  merge(stored: string, incoming: string): string;
  /** Aggregate over rollup rows: sketch column → an intermediate union value. */
  union(column: string): string;
  /** Aggregate over rollup rows: sketch column → a sketch of the union (to store in a coarser row). */
  unionSketch(column: string): string;
  /** The intermediate union value → an estimated distinct count (bigint, 0 for nothing). */
  estimate(unioned: string): string;
}

function hllProfile(hllSchema: string): SketchProfile {
  // Qualified, so statements work whatever the session's search_path is.
  const schema = ident(hllSchema);
  const fn = (name: string) => `${schema}.${name}`;
  return {
    kind: 'hll',
    typname: 'hll',
    relativeError: 1.04 / Math.sqrt(2048),
    build: (c) => `coalesce(${fn('hll_add_agg')}(${fn('hll_hash_text')}(${c})), ${fn('hll_empty')}())`,
    merge: (a, b) => `${fn('hll_union')}(${a}, ${b})`,
    union: (c) => `${fn('hll_union_agg')}(${c})`,
    unionSketch: (c) => `coalesce(${fn('hll_union_agg')}(${c}), ${fn('hll_empty')}())`,
    estimate: (u) => `coalesce(round(${fn('hll_cardinality')}(${u}))::bigint, 0)`,
  };
}

function kmvProfile(k: number): SketchProfile {
  if (!Number.isSafeInteger(k) || k < 16) throw new Error(`KMV size must be an integer >= 16, got ${k}`);
  const hash = (c: string) => `pg_catalog.hashtextextended(${c}, 0)`;
  // Maps an int8 hash onto (0, 1) for the estimator.
  const unit = (h: string) => `((${h})::numeric + 9223372036854775808.5) / 18446744073709551616`;
  return {
    kind: 'kmv',
    typname: '_int8',
    relativeError: 1 / Math.sqrt(k - 2),
    build: (c) =>
      `coalesce((array_agg(DISTINCT ${hash(c)} ORDER BY ${hash(c)}) FILTER (WHERE ${c} IS NOT NULL))[1:${k}], '{}'::bigint[])`,
    merge: (a, b) => `ARRAY(SELECT DISTINCT h FROM unnest(${a} || ${b}) AS u(h) ORDER BY h LIMIT ${k})`,
    // There is no built-in "union of arrays" aggregate; a text concatenation is one, and it runs
    // wherever the query runs (a Citus worker included) without custom functions.
    union: (c) => `string_agg(array_to_string(${c}, ','), ',') FILTER (WHERE cardinality(${c}) > 0)`,
    // The aggregate inside the sub-select reads only the outer rows, so it belongs to the outer query.
    unionSketch: (c) =>
      `ARRAY(SELECT DISTINCT h FROM unnest(string_to_array(string_agg(array_to_string(${c}, ','), ',') FILTER (WHERE cardinality(${c}) > 0), ',')::bigint[]) AS u(h) ORDER BY h LIMIT ${k})`,
    estimate: (u) =>
      `(SELECT CASE WHEN count(*) < ${k} THEN count(*) ELSE round(${k - 1} / (${unit('max(h)')}))::bigint END ` +
      `FROM (SELECT DISTINCT h FROM unnest(string_to_array(${u}, ',')::bigint[]) AS u(h) ORDER BY h LIMIT ${k}) AS kmv)`,
  };
}

/** What the catalog says about the rollup tables and the hll extension. */
export interface StoredEncoding {
  /** typname of the sketch columns of the rollup tables (one value when they agree). */
  sketchTypnames: readonly string[];
  /** Schema of the hll extension, when installed. */
  hllSchema?: string;
}

export class RollupSetupError extends HubsinkError {
  readonly kind = 'unavailable';
  override name = 'RollupSetupError';
}

/**
 * Chooses the profile that matches how the rollup tables were created. Pure: the caller reads the
 * catalog. Fails clearly when the tables are missing, disagree, or need an extension that is gone.
 */
export function resolveSketchProfile(stored: StoredEncoding, caps: RollupCapabilities, k: number = KMV_K): SketchProfile {
  const kinds = new Set(stored.sketchTypnames);
  if (kinds.size === 0) throw new RollupSetupError('rollup tables not found: run `hubsink migrate` first');
  if (kinds.size > 1) throw new RollupSetupError(`rollup tables disagree on their sketch encoding (${[...kinds].join(', ')})`);
  const [typname] = [...kinds];
  if (typname === 'hll') {
    if (!caps.hllInstalled || !stored.hllSchema) throw new RollupSetupError('the rollup tables use hll, but the hll extension is not installed');
    return hllProfile(stored.hllSchema);
  }
  if (typname === '_int8') return kmvProfile(k);
  throw new RollupSetupError(`unexpected sketch column type ${String(typname)}`);
}

/** For tests and tools that need a given encoding regardless of the catalog. */
export function sketchProfile(kind: SketchKind, opts: { hllSchema?: string; k?: number } = {}): SketchProfile {
  return kind === 'hll' ? hllProfile(opts.hllSchema ?? 'public') : kmvProfile(opts.k ?? KMV_K);
}
