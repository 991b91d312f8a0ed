/**
 * Analyst-defined rollups: specs stored in the database (table rollup_custom_specs, migration 007)
 * instead of in definitions.ts, so a new dimension needs no code change and no restart. This module
 * is pure: parsing `hubsink rollup define`'s arguments, checking a spec against the catalog, the
 * stored form, and the statements (every value a bind parameter, every identifier validated and
 * quoted). The I/O is in customStore.ts.
 */
import { DIMENSION_NAME } from '../dimensions.js';
import { ident, qualified } from '../db/ident.js';
import type { Statement } from '../db/statement.js';
import {
  DEFAULT_SPECS,
  DIMENSION_COLUMNS,
  GRAINS,
  MEASURE_NAMES,
  MEASURES,
  SPEC_NAME,
  expandCatalog,
  specProblems,
  type Dimension,
  type DimensionSource,
  type Grain,
  type MeasureName,
  type RollupDefinition,
  type RollupSpec,
} from './definitions.js';

export const CUSTOM_SPECS_TABLE = 'rollup_custom_specs';

/** A stored spec with its backfill's progress. */
export interface CustomSpecRecord {
  spec: RollupSpec;
  /** ingest_seq at definition: the incremental fold starts after it, the backfill covers up to it. */
  horizon: number;
  /** Last ingest_seq the backfill has folded in; the backfill is done when it reaches the horizon. */
  backfillSeq: number;
  /** Events the backfill has folded in so far. */
  backfillRows: number;
  /** When the backfill finished; until then the metrics API does not offer the rollup. */
  backfilledAt: Date | null;
  createdAt: Date;
}

const MAX_PATH_KEYS = 8;
const MAX_KEY_LENGTH = 128;
// A key is a bind value, so no character can break the statement; control characters and the
// separator are refused only because the key could not be written back or shown faithfully.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Pure: the source of `--dimension name=<source>`: an events column from the allow-list,
 * `properties.<key>[.<key>...]`, or `urlpath(url)` / `urlpath(referrer)`.
 */
export function parseDimensionSource(text: string): { ok: true; source: DimensionSource } | { ok: false; problem: string } {
  const urlPath = /^urlpath\(\s*([a-z_]+)\s*\)$/.exec(text);
  if (urlPath) {
    const column = urlPath[1];
    if (column === 'url' || column === 'referrer') return { ok: true, source: { kind: 'urlPath', column } };
    return { ok: false, problem: `urlpath() reads url or referrer, not ${JSON.stringify(column)}` };
  }
  if (text.startsWith('properties.') || text === 'properties') {
    const path = text.split('.').slice(1);
    if (path.length === 0 || path.length > MAX_PATH_KEYS) return { ok: false, problem: `a properties path has 1 to ${MAX_PATH_KEYS} keys (properties.sku, properties.cart.coupon)` };
    for (const key of path) {
      if (key.length === 0 || key.length > MAX_KEY_LENGTH) return { ok: false, problem: `each key of a properties path has 1 to ${MAX_KEY_LENGTH} characters` };
      if (CONTROL.test(key)) return { ok: false, problem: 'a properties path may not contain control characters' };
    }
    return { ok: true, source: { kind: 'property', path } };
  }
  if ((DIMENSION_COLUMNS as readonly string[]).includes(text)) return { ok: true, source: { kind: 'column', column: text } };
  return {
    ok: false,
    problem: `unknown source ${JSON.stringify(text)}: use an events column (${DIMENSION_COLUMNS.join(', ')}), properties.<key>[.<key>], or urlpath(url) / urlpath(referrer)`,
  };
}

/** Pure: how a source is written on the command line (and shown by `rollup list`). */
export function formatDimensionSource(s: DimensionSource): string {
  switch (s.kind) {
    case 'column':
      return s.column;
    case 'property':
      return `properties.${s.path.join('.')}`;
    case 'urlPath':
      return `urlpath(${s.column})`;
  }
}

function sameSource(a: DimensionSource, b: DimensionSource): boolean {
  return formatDimensionSource(a) === formatDimensionSource(b);
}

/** Every dimension of the built-in catalog, by name. */
function builtInDimensions(): Map<string, Dimension> {
  const out = new Map<string, Dimension>();
  for (const spec of DEFAULT_SPECS) for (const d of spec.dimensions) out.set(d.name, d);
  return out;
}

/** Columns every rollup table has besides its dimensions. */
const RESERVED = new Set<string>(['tenant_id', 'bucket', ...MEASURE_NAMES]);

export interface DefineInput {
  name: string;
  /** `name=source`, as given to --dimension. */
  dimensions: readonly string[];
  grains: readonly string[];
  measures: readonly string[];
  allTenants: boolean;
}

/**
 * Pure: a spec from `hubsink rollup define`'s arguments, checked against the built-in catalog and
 * the analyst-defined specs that exist; every problem at once. A dimension name that some rollup
 * already uses must read the same source (it is the same `by` of the metrics API), and then keeps
 * that rollup's column.
 */
export function buildCustomSpec(input: DefineInput, existing: readonly RollupSpec[]): { ok: true; spec: RollupSpec } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  if (!SPEC_NAME.test(input.name)) problems.push(`rollup name ${JSON.stringify(input.name)}: must be 1 to 31 characters of a-z, 0-9 and _, starting with a letter`);
  else if (DEFAULT_SPECS.some((s) => s.name === input.name)) problems.push(`rollup ${input.name} is built in; choose another name`);
  else if (existing.some((s) => s.name === input.name)) problems.push(`rollup ${input.name} is already defined (hubsink rollup list shows it; drop it first to redefine it)`);
  const known = builtInDimensions();
  for (const s of existing) for (const d of s.dimensions) if (!known.has(d.name)) known.set(d.name, d);

  const dimensions: Dimension[] = [];
  if (input.dimensions.length === 0) problems.push('give at least one --dimension name=source');
  for (const arg of input.dimensions) {
    const eq = arg.indexOf('=');
    if (eq <= 0) {
      problems.push(`--dimension ${JSON.stringify(arg)}: expected name=source, e.g. sku=properties.sku`);
      continue;
    }
    const name = arg.slice(0, eq);
    const parsed = parseDimensionSource(arg.slice(eq + 1));
    if (!DIMENSION_NAME.test(name)) {
      problems.push(`--dimension ${JSON.stringify(name)}: a dimension name is 1 to 31 characters of a-z, 0-9 and _, starting with a letter`);
      continue;
    }
    if (RESERVED.has(name)) {
      problems.push(`--dimension ${name}: the name is reserved (${[...RESERVED].join(', ')})`);
      continue;
    }
    if (!parsed.ok) {
      problems.push(`--dimension ${name}: ${parsed.problem}`);
      continue;
    }
    if (dimensions.some((d) => d.name === name)) {
      problems.push(`--dimension ${name} is given twice`);
      continue;
    }
    const same = known.get(name);
    if (same && !sameSource(same.source, parsed.source)) {
      problems.push(`--dimension ${name}: that name already reads ${formatDimensionSource(same.source)}; give this source another name`);
      continue;
    }
    dimensions.push(same ?? { name, column: name, source: parsed.source });
  }
  const grains: Grain[] = [];
  for (const g of input.grains) {
    if (!(GRAINS as readonly string[]).includes(g)) problems.push(`--grains: unknown grain ${JSON.stringify(g)} (one of ${GRAINS.join(', ')})`);
    else if (!grains.includes(g as Grain)) grains.push(g as Grain);
  }
  if (input.grains.length === 0) problems.push(`--grains: at least one of ${GRAINS.join(', ')}`);
  const measures: MeasureName[] = ['events'];
  for (const m of input.measures) {
    if (!(MEASURE_NAMES as readonly string[]).includes(m)) problems.push(`--measures: unknown measure ${JSON.stringify(m)} (one of ${MEASURE_NAMES.join(', ')})`);
    else if (!measures.includes(m as MeasureName)) measures.push(m as MeasureName);
  }
  if (problems.length > 0) return { ok: false, problems };
  const spec: RollupSpec = {
    name: input.name,
    dimensions,
    measures: MEASURE_NAMES.filter((m) => measures.includes(m)),
    grains: GRAINS.filter((g) => grains.includes(g)),
    allTenants: input.allTenants,
    custom: true,
  };
  const more = specProblems(spec);
  return more.length > 0 ? { ok: false, problems: more } : { ok: true, spec };
}

/** The stored form of a spec (column `spec`, jsonb). */
export interface StoredSpec {
  dimensions: { name: string; column: string; source: DimensionSource }[];
  measures: MeasureName[];
  grains: Grain[];
  allTenants: boolean;
}

export function toStored(spec: RollupSpec): StoredSpec {
  return {
    dimensions: spec.dimensions.map((d) => ({ name: d.name, column: d.column, source: d.source })),
    measures: [...spec.measures],
    grains: [...spec.grains],
    allTenants: spec.allTenants,
  };
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function storedSource(v: unknown): DimensionSource | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const s = v as Record<string, unknown>;
  if (s.kind === 'column' && typeof s.column === 'string') return { kind: 'column', column: s.column };
  if (s.kind === 'property' && isStringArray(s.path)) return { kind: 'property', path: s.path };
  if (s.kind === 'urlPath' && (s.column === 'url' || s.column === 'referrer')) return { kind: 'urlPath', column: s.column };
  return undefined;
}

/**
 * Pure: a spec from its stored row, checked as a new one would be: a row edited by hand can name
 * nothing that could not be defined (its identifiers reach DDL and queries).
 */
export function fromStored(name: string, stored: unknown): { ok: true; spec: RollupSpec } | { ok: false; problem: string } {
  const bad = (why: string) => ({ ok: false as const, problem: `${CUSTOM_SPECS_TABLE} row ${JSON.stringify(name)}: ${why}` });
  if (typeof stored !== 'object' || stored === null) return bad('spec is not an object');
  const s = stored as Record<string, unknown>;
  if (!Array.isArray(s.dimensions) || !isStringArray(s.measures) || !isStringArray(s.grains) || typeof s.allTenants !== 'boolean') return bad('spec lacks dimensions, measures, grains or allTenants');
  const dimensions: Dimension[] = [];
  for (const d of s.dimensions as unknown[]) {
    const r = (typeof d === 'object' && d !== null ? d : {}) as Record<string, unknown>;
    const source = storedSource(r.source);
    if (typeof r.name !== 'string' || typeof r.column !== 'string' || !source) return bad('a dimension lacks name, column or a known source');
    dimensions.push({ name: r.name, column: r.column, source });
  }
  const spec: RollupSpec = {
    name,
    dimensions,
    measures: s.measures as MeasureName[],
    grains: s.grains as Grain[],
    allTenants: s.allTenants,
    custom: true,
  };
  const problems = specProblems(spec);
  if (problems.length > 0) return bad(problems.join('; '));
  if (DEFAULT_SPECS.some((x) => x.name === name)) return bad('has the name of a built-in rollup');
  if (dimensions.some((d) => RESERVED.has(d.column))) return bad('a dimension uses a reserved column');
  return { ok: true, spec };
}

/**
 * Pure: the catalog with these analyst-defined specs after the built-in ones. A spec that conflicts
 * with one before it (a name, or a dimension name reading another source) is left out and named
 * in `skipped`, so one bad row never stops the fold or the API.
 */
export function mergeCatalog(custom: readonly RollupSpec[]): { rollups: RollupDefinition[]; specs: RollupSpec[]; skipped: string[] } {
  const specs: RollupSpec[] = [...DEFAULT_SPECS];
  const skipped: string[] = [];
  for (const spec of custom) {
    const dims = new Map<string, Dimension>();
    for (const s of specs) for (const d of s.dimensions) dims.set(d.name, d);
    const clash =
      specs.some((s) => s.name === spec.name) ||
      spec.dimensions.some((d) => {
        const other = dims.get(d.name);
        return other !== undefined && (other.column !== d.column || !sameSource(other.source, d.source));
      });
    if (clash) skipped.push(spec.name);
    else specs.push(spec);
  }
  return { rollups: expandCatalog(specs), specs, skipped };
}

// ---------------------------------------------------------------------------------------------
// Statements

export function listCustomSpecsSql(schema: string): Statement {
  return {
    text: `SELECT name, spec, horizon::text AS horizon, backfill_seq::text AS backfill_seq, backfill_rows::text AS backfill_rows, backfilled_at, created_at FROM ${qualified(schema, CUSTOM_SPECS_TABLE)} ORDER BY created_at, name`,
    values: [],
  };
}

export function insertCustomSpecSql(schema: string, spec: RollupSpec, horizon: number): Statement {
  return {
    text: `INSERT INTO ${qualified(schema, CUSTOM_SPECS_TABLE)} (name, spec, horizon) VALUES ($1, $2::jsonb, $3) ON CONFLICT (name) DO NOTHING`,
    values: [spec.name, JSON.stringify(toStored(spec)), horizon],
  };
}

/** The spec row, locked: concurrent backfills of one spec and a drop take turns. */
export function lockCustomSpecSql(schema: string, name: string): Statement {
  return {
    text: `SELECT name, spec, horizon::text AS horizon, backfill_seq::text AS backfill_seq, backfill_rows::text AS backfill_rows, backfilled_at, created_at FROM ${qualified(schema, CUSTOM_SPECS_TABLE)} WHERE name = $1 FOR UPDATE`,
    values: [name],
  };
}

export function advanceBackfillSql(schema: string, name: string, backfillSeq: number, addRows: number, done: boolean, at: Date): Statement {
  return {
    text: `UPDATE ${qualified(schema, CUSTOM_SPECS_TABLE)} SET backfill_seq = $2, backfill_rows = backfill_rows + $3, backfilled_at = CASE WHEN $4::boolean THEN $5::timestamptz ELSE NULL END WHERE name = $1`,
    values: [name, backfillSeq, addRows, done, at],
  };
}

export function deleteCustomSpecSql(schema: string, name: string): Statement {
  return { text: `DELETE FROM ${qualified(schema, CUSTOM_SPECS_TABLE)} WHERE name = $1`, values: [name] };
}

/** State rows of new definitions start at the horizon (a leftover row of a dropped namesake too). */
export function setStateSql(schema: string, names: readonly string[], lastSeq: number): Statement {
  return {
    text: `INSERT INTO ${qualified(schema, 'rollup_state')} (name, last_seq) SELECT unnest($1::text[]), $2 ON CONFLICT (name) DO UPDATE SET last_seq = EXCLUDED.last_seq, last_run_at = NULL, last_rows = 0, last_duration_ms = NULL`,
    values: [[...names], lastSeq],
  };
}

export function deleteStateSql(schema: string, names: readonly string[]): Statement {
  return { text: `DELETE FROM ${qualified(schema, 'rollup_state')} WHERE name = ANY($1::text[])`, values: [[...names]] };
}

/** The SQL type of the sketch columns the built-in tables use, as format_type writes it. */
export function sketchTypeSql(schema: string): Statement {
  return {
    text: `SELECT format_type(a.atttypid, NULL) AS t FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = 'sessions' AND NOT a.attisdropped`,
    values: [qualified(schema, expandCatalog(DEFAULT_SPECS.filter((s) => s.measures.includes('sessions')))[0]?.table ?? 'rollup_total_minute')],
  };
}

/** Only what format_type can say of hll (schema-qualified) or the fallback; it is spliced into DDL. */
export const SKETCH_TYPE = /^(?:(?:"[a-z_][a-z0-9_]*"|[a-z_][a-z0-9_]*)\.)?hll$|^bigint\[\]$/;

/**
 * DDL of one analyst-defined rollup table, the way migration 005 makes the built-in ones: fixed-width
 * columns first, sketches only for distinct measures, the key (tenant, bucket, dimensions), a BRIN
 * index on bucket for retention, and on Citus distributed by tenant and colocated with events.
 */
export function createTableStatements(schema: string, def: RollupDefinition, sketchType: string, citus: boolean): Statement[] {
  if (!SKETCH_TYPE.test(sketchType)) throw new Error(`unexpected sketch type ${JSON.stringify(sketchType)}`);
  const cols = [
    'tenant_id bigint NOT NULL',
    'bucket timestamptz NOT NULL',
    ...def.measures.map((m) => {
      const measure = MEASURES[m];
      const type = measure.kind === 'count' ? 'bigint' : measure.kind === 'sum' ? 'numeric' : sketchType;
      return `${ident(measure.column)} ${type} NOT NULL`;
    }),
    ...def.dimensions.map((d) => `${ident(d.column)} text NOT NULL`),
  ];
  const key = ['tenant_id', 'bucket', ...def.dimensions.map((d) => d.column)].map(ident).join(', ');
  const table = qualified(schema, def.table);
  const out: Statement[] = [
    { text: `CREATE TABLE ${table} (${cols.join(', ')}, PRIMARY KEY (${key}))`, values: [] },
    { text: `CREATE INDEX ${ident(`${def.table}_bucket_idx`)} ON ${table} USING brin (bucket)`, values: [] },
  ];
  if (citus) out.push({ text: `SELECT create_distributed_table($1, 'tenant_id', colocate_with => $2)`, values: [table, qualified(schema, 'events')] });
  return out;
}

export function dropTableSql(schema: string, def: RollupDefinition): Statement {
  return { text: `DROP TABLE IF EXISTS ${qualified(schema, def.table)}`, values: [] };
}

/**
 * The last ingest_seq of the next backfill chunk: the chunk-th event after `after`, or the horizon
 * when fewer remain. Counting events rather than sequence values skips the gaps that dropped
 * partitions and burnt values leave.
 */
export function chunkEndSql(schema: string, after: number, horizon: number, chunkRows: number): Statement {
  return {
    text: `SELECT ingest_seq::text AS seq FROM ${qualified(schema, 'events')} WHERE ingest_seq > $1 AND ingest_seq <= $2 ORDER BY ingest_seq OFFSET $3 LIMIT 1`,
    values: [after, horizon, chunkRows - 1],
  };
}
