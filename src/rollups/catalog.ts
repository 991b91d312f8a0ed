/**
 * The rollup catalog at run time: the built-in specs plus the analyst-defined ones stored in
 * rollup_custom_specs. The fold reads it each cycle, the metrics API and GET /api/rollups on each
 * request (cached for a few seconds), so `hubsink rollup define` takes effect without a restart.
 */
import type { Queryable } from '../db/queryable.js';
import { isUndefinedTable } from '../pipeline/pgErrors.js';
import { type RollupDefinition, type RollupSpec } from './definitions.js';
import { fromStored, listCustomSpecsSql, mergeCatalog, type CustomSpecRecord } from './custom.js';

export interface CatalogSnapshot {
  /** Every definition to fold, prune and report: built-in first, then analyst-defined. */
  rollups: RollupDefinition[];
  specs: RollupSpec[];
  /** The analyst-defined specs as stored, with their backfill's progress. */
  custom: CustomSpecRecord[];
  /** Stored rows left out, each with why (a conflicting or unreadable row never stops the rest). */
  problems: string[];
}

function toSafeInt(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new Error(`${what} out of range: ${text}`);
  return n;
}

interface CustomRow {
  name: string;
  spec: unknown;
  horizon: string;
  backfill_seq: string;
  backfill_rows: string;
  backfilled_at: Date | null;
  created_at: Date;
}

/** Pure: records from rows, with the rows that do not read as a valid spec named. */
export function recordsOf(rows: readonly CustomRow[]): { records: CustomSpecRecord[]; problems: string[] } {
  const records: CustomSpecRecord[] = [];
  const problems: string[] = [];
  for (const r of rows) {
    const parsed = fromStored(r.name, r.spec);
    if (!parsed.ok) {
      problems.push(parsed.problem);
      continue;
    }
    records.push({
      spec: parsed.spec,
      horizon: toSafeInt(r.horizon, 'horizon'),
      backfillSeq: toSafeInt(r.backfill_seq, 'backfill_seq'),
      backfillRows: toSafeInt(r.backfill_rows, 'backfill_rows'),
      backfilledAt: r.backfilled_at,
      createdAt: r.created_at,
    });
  }
  return { records, problems };
}

/** The stored specs; none before migration 007 has run (an app updated before `hubsink migrate`). */
export async function loadCustomSpecs(db: Queryable, schema: string): Promise<{ records: CustomSpecRecord[]; problems: string[] }> {
  try {
    const { rows } = await db.query<CustomRow>(listCustomSpecsSql(schema));
    return recordsOf(rows);
  } catch (err) {
    if (isUndefinedTable(err)) return { records: [], problems: [] };
    throw err;
  }
}

/**
 * The catalog as the database holds it now. `serving`: only the analyst-defined rollups whose
 * backfill has finished (a half-backfilled rollup would answer with too few events), for the
 * metrics API, GET /api/rollups and rebuilds; the fold takes them all (it folds what comes after the
 * horizon while the backfill fills in what came before).
 */
export async function loadCatalog(db: Queryable, schema: string, opts: { serving?: boolean } = {}): Promise<CatalogSnapshot> {
  const { records, problems } = await loadCustomSpecs(db, schema);
  const chosen = opts.serving ? records.filter((r) => r.backfilledAt !== null) : records;
  const merged = mergeCatalog(chosen.map((r) => r.spec));
  return {
    rollups: merged.rollups,
    specs: merged.specs,
    custom: chosen.filter((r) => !merged.skipped.includes(r.spec.name)),
    problems: [...problems, ...merged.skipped.map((n) => `analyst-defined rollup ${n} conflicts with a rollup defined before it; left out`)],
  };
}

/** The definitions the fold, retention and status run over: built-in and every analyst-defined one. */
export async function foldDefinitions(db: Queryable, schema: string): Promise<readonly RollupDefinition[]> {
  return (await loadCatalog(db, schema)).rollups;
}

/** Pure: a value read at most every `ttlMs`; concurrent callers share one read, a failed read is not kept. */
export function cached<T>(load: () => Promise<T>, ttlMs: number, now: () => number = Date.now): () => Promise<T> {
  let value: { at: number; p: Promise<T> } | undefined;
  return () => {
    const t = now();
    if (value && t - value.at < ttlMs) return value.p;
    const p = load();
    value = { at: t, p };
    p.catch(() => {
      if (value?.p === p) value = undefined;
    });
    return p;
  };
}

/** How long the metrics API keeps the catalog it read: a definition shows up within this. */
export const CATALOG_TTL_MS = 5_000;
