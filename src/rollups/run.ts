/**
 * Rollup I/O: the incremental step, rebuild, retention and status. Statement text comes from
 * src/rollups/sql.ts; this module owns transactions and the order of steps.
 *
 * Exactly-once: a cycle first fixes a horizon for all rollups together: it reads the sequence's
 * high-water mark, then takes and at once releases a SHARE lock on events, which waits until
 * every writer that could hold a sequence value at or below that mark has committed or aborted.
 * From then on no value at or below the horizon can appear, whichever transaction looks. Then each
 * rollup claims the window (last_seq, horizon] in its own transaction that (1) locks its state row
 * FOR UPDATE, so concurrent runs serialize and the second sees the first's advanced last_seq;
 * (2) aggregates the window into the rollup; (3) advances last_seq. All or nothing: a failed run
 * leaves the state unchanged.
 *
 * Why one wait per cycle, bounded short: while the SHARE request waits in the lock queue it
 * blocks every new insert behind it. One wait of at most DEFAULT_LOCK_TIMEOUT_MS per cycle (not one
 * of 10 s per rollup) bounds that stall; a busy minute is skipped (RollupBusyError, nothing changed)
 * and the next cycle folds in what it missed.
 * Ingest inserts with ON CONFLICT DO NOTHING, so a redelivered event never gets a row (or a
 * sequence value that reaches a rollup) of its own.
 */
import type pg from 'pg';
import type { RollupDimensionLimits } from '../config.js';
import { inTransaction, type Queryable } from '../db/queryable.js';
import { listPartitions, oldestPartitionStart, partitionStatements } from '../db/partitions.js';
import {
  GRAINS,
  MEASURES,
  ROLLUPS,
  isDistinctMeasure,
  bucketCeil,
  bucketStart,
  retentionCutoff,
  type Dimension,
  type Grain,
  type RollupDefinition,
  type RollupRetention,
} from './definitions.js';
import { RollupSetupError, resolveSketchProfile, type RollupCapabilities, type SketchProfile } from './sketches.js';
import {
  EVENTS_TABLE,
  advanceStateSql,
  aggregateAllTenantsSql,
  aggregateSql,
  allTenantsFromRowsSql,
  deltaEventsSql,
  deltaFromDeltaSql,
  deltaFromEventsSql,
  dropDeltaSql,
  mergeDeltaSql,
  countEventsSql,
  deleteBucketsSql,
  ensureStateSql,
  hllSchemaSql,
  highWaterSql,
  lockStateSql,
  oldestPendingSql,
  pendingCountSql,
  pruneSql,
  sketchColumnsSql,
  stateSql,
  waitForWritersSql,
} from './sql.js';
import { HubsinkError } from '../errors.js';
import { SQLSTATE, sqlState } from '../pipeline/pgErrors.js';
import { foldDefinitions, loadCatalog } from './catalog.js';
import { RebuildLossError, rebuildShortfalls, refusalMessage, type RebuildShortfall } from './rebuildGuard.js';

/** The events lock could not be had within the lock timeout; the next run tries again. */
export class RollupBusyError extends HubsinkError {
  readonly kind = 'busy';
  override name = 'RollupBusyError';
}

export interface RollupRunOptions {
  caps: RollupCapabilities;
  /** Upper bound of sequence values (hence rows) one run folds into one rollup. */
  maxWindowRows: number;
  now?: () => Date;
  /**
   * How long a cycle waits for in-flight writers before skipping until the next one. Inserts queue
   * behind the wait, so this bounds the stall a cycle can cause ingest.
   */
  lockTimeoutMs?: number;
  rollups?: readonly RollupDefinition[];
  /** Bounds of the dimension values stored (config.rollupDimensions); default DEFAULT_DIMENSION_LIMITS. */
  dimensions?: RollupDimensionLimits;
  /** Default foldModeFor(caps); tests run both on one server. */
  foldMode?: FoldMode;
  /**
   * Rollup retention. The fold then writes no minute rows older than the minute retention: they
   * would be pruned at the end of the cycle, and a catch-up over days of backlog would spend most
   * of its time writing them (minute rows are nearly one per event for small storefronts). Hour
   * and day rows are written for every event; their retention is far longer than any backlog.
   * Absent: every bucket is written, and nothing is pruned.
   */
  retentionDays?: RollupRetention;
  /**
   * Sessions that fold at once (default FOLD_SESSIONS). A fold is bound by the rows it writes,
   * one statement at a time on one server core; each session folds whole trees of the fold plan
   * (foldTrees), so finer deltas still feed coarser ones.
   */
  sessions?: number;
}

export interface RollupRunResult {
  name: string;
  /** Exclusive lower bound of the window (the previous last_seq). */
  fromSeq: number;
  /** Inclusive upper bound (the new last_seq). */
  toSeq: number;
  /** Events folded in. */
  rows: number;
  durationMs: number;
  /** True when the window reached the high-water mark seen by this run. */
  caughtUp: boolean;
}

/**
 * Events a run folded in, each counted once: rollups standing at the same watermark share one
 * window and report its rows each, so a sum over results would count an event once per rollup.
 */
export function eventsFolded(results: readonly RollupRunResult[]): number {
  const windows = new Map<string, number>();
  for (const r of results) windows.set(`${r.fromSeq}:${r.toSeq}`, r.rows);
  let n = 0;
  for (const rows of windows.values()) n += rows;
  return n;
}

/** One short wait per cycle: a busy minute skips rather than stalls ingest. */
export const DEFAULT_LOCK_TIMEOUT_MS = 1_500;

function toSafeInt(text: string | null | undefined, what: string): number {
  const n = Number(text ?? '0');
  if (!Number.isSafeInteger(n)) throw new Error(`${what} out of range: ${String(text)}`);
  return n;
}

/** Reads how the rollup tables encode distinct counts and returns the matching profile. */
export async function loadSketchProfile(
  db: Queryable,
  schema: string,
  caps: RollupCapabilities,
  rollups: readonly RollupDefinition[] = ROLLUPS,
): Promise<SketchProfile> {
  const sketchCols = [...new Set(rollups.flatMap((r) => r.measures.filter(isDistinctMeasure).map((m) => MEASURES[m].column)))];
  const cols = await db.query<{ table_name: string; column_name: string; typname: string }>(
    sketchColumnsSql(schema, rollups.map((r) => r.table), sketchCols),
  );
  // Read the extension from the catalog too: capabilities detected at start-up may predate the
  // migration that installed it.
  const hll = await db.query<{ nspname: string }>(hllSchemaSql());
  const hllSchema = hll.rows[0]?.nspname;
  return resolveSketchProfile(
    { sketchTypnames: cols.rows.map((r) => r.typname), ...(hllSchema ? { hllSchema } : {}) },
    { ...caps, hllInstalled: caps.hllInstalled || hllSchema !== undefined },
  );
}

async function readHighWater(db: Queryable, schema: string): Promise<number> {
  const { rows } = await db.query<{ high_water: string; cache: string }>(highWaterSql(schema));
  const row = rows[0];
  if (!row) throw new RollupSetupError(`${schema}.${EVENTS_TABLE}.ingest_seq has no sequence`);
  // With a cache, sessions hold preallocated values below the last value the catalog reports,
  // and could insert them after a run has moved past them.
  if (row.cache !== '1') throw new RollupSetupError(`the ingest_seq sequence has CACHE ${row.cache}; rollups need CACHE 1`);
  return toSafeInt(row.high_water, 'ingest_seq high-water mark');
}

async function waitForWriters(client: pg.PoolClient, schema: string, lockTimeoutMs: number): Promise<void> {
  const s = waitForWritersSql(schema, lockTimeoutMs);
  await client.query(s.savepoint);
  try {
    await client.query(s.timeout);
    await client.query(s.lock);
  } catch (err) {
    await client.query(s.release);
    if (sqlState(err) === SQLSTATE.lockNotAvailable) {
      throw new RollupBusyError(`writers held ${schema}.${EVENTS_TABLE} for more than ${lockTimeoutMs} ms; the next run will try again`);
    }
    throw err;
  }
  await client.query(s.release);
  await client.query(s.drop);
}

/**
 * Fixes the horizon of a cycle: the high-water mark read before one bounded wait for the writers
 * that hold values at or below it. Its own short transaction, so the state rows are not held while
 * waiting. Throws RollupBusyError when the writers outlast the timeout; nothing is changed then.
 */
export async function waitForHorizon(pool: pg.Pool, schema: string, lockTimeoutMs: number): Promise<number> {
  return inTransaction(pool, async (client) => {
    // Read before the lock: every value up to it was handed to a transaction that held ROW
    // EXCLUSIVE on events then, so the lock below waits for all of them.
    const highWater = await readHighWater(client, schema);
    await waitForWriters(client, schema, lockTimeoutMs);
    return highWater;
  });
}

/** How a cycle computes the rows of one definition from a window. */
export type FoldStep =
  /** aggregated from events into the definition's delta */
  | { def: RollupDefinition; from: 'events' }
  /** aggregated from the delta of a finer definition of the same window */
  | { def: RollupDefinition; from: RollupDefinition };

/** How the fold is done: one pushed-down statement per definition, or deltas derived from each other. */
export type FoldMode = 'direct' | 'deltas';

/** Citus runs per-definition INSERT..SELECT on the shards; a temporary table would pull every row to the coordinator. */
export function foldModeFor(caps: RollupCapabilities): FoldMode {
  return caps.citus ? 'direct' : 'deltas';
}

function derivesFrom(def: RollupDefinition, parent: RollupDefinition): boolean {
  const gi = GRAINS.indexOf(def.grain);
  const pi = GRAINS.indexOf(parent.grain);
  if (parent === def || pi > gi) return false;
  // Same grain: only a strictly richer parent, so no two definitions derive from each other.
  if (pi === gi && parent.dimensions.length <= def.dimensions.length) return false;
  const same = (a: Dimension, b: Dimension) => a.name === b.name && a.column === b.column && JSON.stringify(a.source) === JSON.stringify(b.source);
  return def.dimensions.every((d) => parent.dimensions.some((p) => same(d, p))) && def.measures.every((m) => parent.measures.includes(m));
}

/**
 * Pure: the order in which a cycle computes the deltas of definitions that share a window. Each
 * definition is derived from the smallest delta that holds it exactly (coarsest grain, then fewest
 * dimensions: type_day from type_hour, total_hour from total_minute); only the others read events.
 * Parents come before their children. `minuteFiltered`: the minute deltas hold only the buckets
 * within the minute retention, so only minute definitions derive from them.
 */
export function planFold(defs: readonly RollupDefinition[], opts: { minuteFiltered?: boolean } = {}): FoldStep[] {
  const rank = (d: RollupDefinition) => [GRAINS.indexOf(d.grain), -d.dimensions.length] as const;
  const ordered = [...defs].sort((a, b) => {
    const [ag, ad] = rank(a);
    const [bg, bd] = rank(b);
    return ag - bg || ad - bd;
  });
  return ordered.map((def) => {
    // A minute delta cut at the minute retention holds too few events for a coarser grain.
    const parents = ordered.filter((p) => derivesFrom(def, p) && !(opts.minuteFiltered && p.grain === 'minute' && def.grain !== 'minute'));
    parents.sort((a, b) => GRAINS.indexOf(b.grain) - GRAINS.indexOf(a.grain) || a.dimensions.length - b.dimensions.length);
    const parent = parents[0];
    return parent ? { def, from: parent } : { def, from: 'events' };
  });
}

/**
 * Folds one window into every definition given, in the caller's transaction. Returns the events of
 * the window (the same number for every definition).
 */
async function foldWindow(
  client: pg.PoolClient,
  schema: string,
  defs: readonly RollupDefinition[],
  sketch: SketchProfile,
  selection: { source: 'window'; fromSeq: number; toSeq: number },
  mode: FoldMode,
  limits: RollupDimensionLimits | undefined,
  minuteFrom: Date | undefined,
  known: number | undefined,
): Promise<number> {
  const selectionOf = (def: RollupDefinition) => (minuteFrom && def.grain === 'minute' ? { ...selection, notBefore: minuteFrom } : selection);
  const count = async () => known ?? toSafeInt((await client.query<{ n: string }>(countEventsSql(schema, selection))).rows[0]?.n, 'row count');
  if (mode === 'direct') {
    const rows = await count();
    // Sequence values burnt by duplicates (ON CONFLICT DO NOTHING) or aborted inserts leave
    // windows without rows; only the state moves then.
    if (rows === 0) return 0;
    for (const def of defs) {
      await client.query(aggregateSql(def, sketch, schema, selectionOf(def), limits));
      if (def.allTenants) await client.query(aggregateAllTenantsSql(def, sketch, schema, selectionOf(def), limits));
    }
    return rows;
  }
  const plan = planFold(defs, { minuteFiltered: minuteFrom !== undefined });
  // A failure aborts the transaction, and its rollback drops the deltas it created; a transaction
  // that folds several windows drops each window's deltas once merged.
  const drop = async () => {
    for (const { def } of plan) await client.query(dropDeltaSql(def));
  };
  // A window another tree of the cycle found empty needs no delta.
  if (known === 0) return 0;
  let rows = known;
  for (const step of plan) {
    if (step.from === 'events') {
      const sel = selectionOf(step.def);
      await client.query(deltaFromEventsSql(step.def, sketch, schema, sel, limits));
      // Every event of the window is in exactly one row of an uncut delta: its events add up to
      // the window's count, so the window is not read once more to count it.
      if (rows === undefined && !('notBefore' in sel)) rows = toSafeInt((await client.query<{ n: string }>(deltaEventsSql(step.def))).rows[0]?.n, 'row count');
    } else {
      await client.query(deltaFromDeltaSql(step.def, step.from, sketch));
    }
    if (rows === 0) break;
  }
  rows ??= await count();
  if (rows === 0) {
    await drop();
    return 0;
  }
  for (const { def } of plan) {
    await client.query(mergeDeltaSql(def, sketch, schema));
    if (def.allTenants) await client.query(allTenantsFromRowsSql(def, sketch, schema, { delta: true }));
  }
  await drop();
  return rows;
}

/**
 * One incremental step of the definitions given, up to a horizon fixed by waitForHorizon, in one
 * transaction: their state rows are locked (name order), and those that stand at the same
 * watermark share one window, folded together (so the events are read once for all of them).
 */
export async function runRollupGroup(
  pool: pg.Pool,
  schema: string,
  defs: readonly RollupDefinition[],
  sketch: SketchProfile,
  horizon: number,
  opts: Omit<RollupRunOptions, 'caps' | 'rollups' | 'lockTimeoutMs'> & {
    mode: FoldMode;
    /**
     * The events of windows (`fromSeq:toSeq`) a session of the same cycle has counted: below the
     * horizon no event can appear, so the count holds for every transaction of the cycle.
     */
    counted?: Map<string, number>;
  },
): Promise<RollupRunResult[]> {
  const now = opts.now ?? (() => new Date());
  if (!Number.isSafeInteger(opts.maxWindowRows) || opts.maxWindowRows < 1) throw new Error('maxWindowRows must be a positive integer');
  const started = now();
  const minuteFrom = opts.retentionDays ? retentionCutoff(started, 'minute', opts.retentionDays) : undefined;
  return inTransaction(pool, async (client) => {
    const state = await client.query<{ name: string; last_seq: string }>(lockStateSql(schema, defs.map((d) => d.name)));
    const lastSeq = new Map(state.rows.map((r) => [r.name, toSafeInt(r.last_seq, 'last_seq')]));
    const windows = new Map<number, RollupDefinition[]>();
    for (const def of defs) {
      const from = lastSeq.get(def.name);
      if (from === undefined) throw new RollupSetupError(`no rollup_state row for ${def.name}`);
      windows.set(from, [...(windows.get(from) ?? []), def]);
    }
    const folded = new Map<string, { fromSeq: number; toSeq: number; rows: number }>();
    for (const [fromSeq, group] of [...windows.entries()].sort((a, b) => a[0] - b[0])) {
      const toSeq = Math.max(fromSeq, Math.min(horizon, fromSeq + opts.maxWindowRows));
      const key = `${fromSeq}:${toSeq}`;
      const rows = toSeq > fromSeq ? await foldWindow(client, schema, group, sketch, { source: 'window', fromSeq, toSeq }, opts.mode, opts.dimensions, minuteFrom, opts.counted?.get(key)) : 0;
      opts.counted?.set(key, rows);
      for (const def of group) folded.set(def.name, { fromSeq, toSeq, rows });
    }
    const finished = now();
    const durationMs = Math.max(0, finished.getTime() - started.getTime());
    const out: RollupRunResult[] = [];
    for (const def of defs) {
      const f = folded.get(def.name);
      if (!f) continue;
      await client.query(advanceStateSql(schema, { name: def.name, lastSeq: f.toSeq, runAt: finished, rows: f.rows, durationMs }));
      out.push({ name: def.name, fromSeq: f.fromSeq, toSeq: f.toSeq, rows: f.rows, durationMs, caughtUp: f.toSeq >= horizon });
    }
    return out;
  });
}

/** One incremental step of one rollup up to a horizon fixed by waitForHorizon, in one transaction. */
export async function runRollup(
  pool: pg.Pool,
  schema: string,
  def: RollupDefinition,
  sketch: SketchProfile,
  horizon: number,
  opts: Omit<RollupRunOptions, 'caps' | 'rollups' | 'lockTimeoutMs'> & { mode?: FoldMode },
): Promise<RollupRunResult> {
  const [r] = await runRollupGroup(pool, schema, [def], sketch, horizon, { ...opts, mode: opts.mode ?? 'direct' });
  if (!r) throw new RollupSetupError(`no rollup_state row for ${def.name}`);
  return r;
}

/** Two: the fold's cost is on the server, which has at least two cores wherever hubsink runs. */
export const FOLD_SESSIONS = 2;

/**
 * Pure: the definitions as the trees of the fold plan (planFold), dearest first. A delta is seen
 * only by the session that built it, so a definition derived from another's delta is folded with
 * it and reads no events (type_hour from campaign_type_hour, not from a second scan); a tree is
 * the unit one session folds in one transaction. The cost orders the queue the sessions take trees
 * from: reading events (1, + 1 a dimension, + 2 with sketches, which are dear to build; a minute
 * delta cut at the minute retention reads its window but keeps little), deriving from a delta
 * (1/4), and the rows written, which multiply with the dimensions and thin out with the grain.
 * `minuteFiltered` as for planFold. Catalog order is kept inside a tree.
 */
export function foldTrees(defs: readonly RollupDefinition[], opts: { minuteFiltered?: boolean } = {}): RollupDefinition[][] {
  const plan = planFold(defs, opts);
  const root = new Map<RollupDefinition, RollupDefinition>();
  for (const step of plan) root.set(step.def, step.from === 'events' ? step.def : (root.get(step.from) ?? step.from));
  const cut = (def: RollupDefinition) => opts.minuteFiltered === true && def.grain === 'minute';
  const writes: Readonly<Record<Grain, number>> = { minute: 1, hour: 1, day: 0.25 };
  const cost = (step: FoldStep) =>
    (step.from === 'events' ? (cut(step.def) ? 0.5 : 1 + step.def.dimensions.length + (step.def.measures.some(isDistinctMeasure) ? 2 : 0)) : 0.25) +
    (1 + step.def.dimensions.length ** 2) * (cut(step.def) ? 0.25 : writes[step.def.grain]) * 0.5;
  const trees = new Map<RollupDefinition, { cost: number; defs: Set<RollupDefinition> }>();
  for (const step of plan) {
    const r = root.get(step.def) ?? step.def;
    const tree = trees.get(r) ?? { cost: 0, defs: new Set<RollupDefinition>() };
    tree.cost += cost(step);
    tree.defs.add(step.def);
    trees.set(r, tree);
  }
  return [...trees.values()].sort((x, y) => y.cost - x.cost).map((t) => defs.filter((d) => t.defs.has(d)));
}

/**
 * One incremental step of every rollup. One bounded wait for writers fixes the horizon for all of
 * them (none when every rollup is already there); then `sessions` connections take the trees of
 * the fold plan (foldTrees), dearest first, each folded in one transaction that reads each window
 * once for the tree. Definitions at different watermarks (a new one catching up) get their own
 * windows in it. Each tree is all or nothing; a failed tree leaves its state unchanged, the others
 * are still folded, and the first failure is thrown at the end.
 * Throws RollupBusyError, with nothing changed, when the wait times out.
 */
export async function runRollups(pool: pg.Pool, schema: string, opts: RollupRunOptions): Promise<RollupRunResult[]> {
  // Read each cycle, so an analyst-defined rollup is folded from the next cycle on, no restart.
  const rollups = opts.rollups ?? (await foldDefinitions(pool, schema));
  const names = rollups.map((r) => r.name);
  await pool.query(ensureStateSql(schema, names));
  const sketch = await loadSketchProfile(pool, schema, opts.caps, rollups);
  const state = await pool.query<{ last_seq: string }>(stateSql(schema, names));
  const behind = state.rows.length > 0 ? Math.min(...state.rows.map((r) => toSafeInt(r.last_seq, 'last_seq'))) : 0;
  const highWater = await readHighWater(pool, schema);
  // Nothing new since every rollup's watermark: no reason to queue for the lock at all.
  const horizon = highWater > behind ? await waitForHorizon(pool, schema, opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS) : behind;
  const mode = opts.foldMode ?? foldModeFor(opts.caps);
  // Each session takes the dearest tree left: one long tree runs beside the others, whatever
  // the estimates got wrong.
  const queue = foldTrees(rollups, { minuteFiltered: opts.retentionDays !== undefined && mode === 'deltas' });
  const settled: PromiseSettledResult<RollupRunResult[]>[] = [];
  const counted = new Map<string, number>();
  const session = async () => {
    for (let tree = queue.shift(); tree; tree = queue.shift()) {
      settled.push(await runRollupGroup(pool, schema, tree, sketch, horizon, { ...opts, mode, counted }).then(
        (value) => ({ status: 'fulfilled' as const, value }),
        (reason: unknown) => ({ status: 'rejected' as const, reason }),
      ));
    }
  };
  const sessions = Math.max(1, Math.floor(opts.sessions ?? FOLD_SESSIONS) || 1);
  await Promise.all(Array.from({ length: Math.min(sessions, queue.length) }, session));
  const failed = settled.find((x): x is PromiseRejectedResult => x.status === 'rejected');
  if (failed) throw failed.reason;
  const results = settled.flatMap((x) => (x.status === 'fulfilled' ? x.value : []));
  const byName = new Map(results.map((r) => [r.name, r]));
  return rollups.map((r) => byName.get(r.name)).filter((r): r is RollupRunResult => r !== undefined);
}

export interface RebuildOptions {
  tenantId: number;
  from: Date;
  to: Date;
  caps: RollupCapabilities;
  /**
   * Raw events before this instant are gone; rebuilding buckets there would replace good rollups
   * with nothing, so it is refused. rebuildRollups sets it from the oldest partition that exists.
   */
  notBefore?: Date;
  rollups?: readonly RollupDefinition[];
  /** The same bounds the incremental runs use, so rebuilt buckets match them. */
  dimensions?: RollupDimensionLimits;
  /**
   * Rebuild even buckets whose raw events are fewer than the rollup holds (see rebuildGuard.ts);
   * the results then say what was lost. Without it such a rebuild is refused with nothing changed.
   */
  force?: boolean;
}

export interface RebuildResult {
  name: string;
  grain: Grain;
  /** The whole buckets rebuilt: [from, to). */
  from: Date;
  to: Date;
  /** Rollup rows removed before re-aggregating. */
  deletedRows: number;
  /** Events re-aggregated (those with ingest_seq <= watermark). */
  rows: number;
  watermark: number;
  /** With force: what the rebuild lowered (buckets whose raw events were fewer than folded). */
  lost?: RebuildShortfall;
}

export class RebuildRangeError extends HubsinkError {
  readonly kind = 'usage';
  override name = 'RebuildRangeError';
}

/** Pure: checks a rebuild request; returns problems (empty when fine). */
export function rebuildProblems(opts: Pick<RebuildOptions, 'tenantId' | 'from' | 'to' | 'notBefore'>): string[] {
  const problems: string[] = [];
  if (!Number.isSafeInteger(opts.tenantId) || opts.tenantId <= 0) problems.push('tenant must be a positive whole number');
  if (Number.isNaN(opts.from.getTime())) problems.push('from is not a valid time');
  if (Number.isNaN(opts.to.getTime())) problems.push('to is not a valid time');
  if (problems.length === 0 && opts.from.getTime() >= opts.to.getTime()) problems.push('from must be before to');
  if (problems.length === 0 && opts.notBefore && opts.from.getTime() < opts.notBefore.getTime()) {
    problems.push(
      `from is before ${opts.notBefore.toISOString()}, the start of the oldest partition of events that exists: raw events before it are already dropped, so a rebuild would replace their rollups with nothing`,
    );
  }
  return problems;
}

/**
 * Recomputes a tenant's buckets overlapping [from, to) from raw events, in one transaction holding
 * every rollup's state lock: whole buckets are deleted and re-aggregated from the events at or
 * below each rollup's own watermark, which is exactly what the incremental path has folded in;
 * later events arrive through the next incremental run. Needed because sketches cannot subtract.
 */
export async function rebuildRollups(pool: pg.Pool, schema: string, opts: RebuildOptions): Promise<RebuildResult[]> {
  const problems = rebuildProblems(opts);
  if (problems.length > 0) throw new RebuildRangeError(problems.join('; '));
  // Analyst-defined rollups only once backfilled: a rebuild of one still backfilling would count
  // its range twice (here and in the backfill).
  const rollups = opts.rollups ?? (await loadCatalog(pool, schema, { serving: true })).rollups;
  await pool.query(ensureStateSql(schema, rollups.map((r) => r.name)));
  const sketch = await loadSketchProfile(pool, schema, opts.caps, rollups);
  return inTransaction(pool, async (client) => {
    // The guard reads what exists, under the partition maintenance lock (shared), so no partition
    // in the range is dropped while the rebuild reads it.
    await client.query(partitionStatements(schema).sharedLock);
    const oldest = oldestPartitionStart(await listPartitions(client, schema));
    if (!oldest) throw new RebuildRangeError(`${schema}.events has no partitions: there are no raw events to rebuild from`);
    const guarded = rebuildProblems({ ...opts, notBefore: oldest });
    if (guarded.length > 0) throw new RebuildRangeError(guarded.join('; '));
    const state = await client.query<{ name: string; last_seq: string }>(lockStateSql(schema, rollups.map((r) => r.name)));
    const watermarks = new Map(state.rows.map((r) => [r.name, toSafeInt(r.last_seq, 'last_seq')]));
    const shortfalls = await rebuildShortfalls(client, schema, rollups, opts, watermarks);
    if (shortfalls.length > 0 && opts.force !== true) throw new RebuildLossError(refusalMessage(opts.tenantId, shortfalls));
    const out: RebuildResult[] = [];
    for (const def of rollups) {
      const watermark = watermarks.get(def.name);
      if (watermark === undefined) throw new RollupSetupError(`no rollup_state row for ${def.name}`);
      const from = bucketStart(opts.from, def.grain);
      const to = bucketCeil(opts.to, def.grain);
      const deleted = await client.query(deleteBucketsSql(def, schema, opts.tenantId, from, to));
      const selection = { source: 'rebuild', tenantId: opts.tenantId, from, to, watermark } as const;
      const counted = await client.query<{ n: string }>(countEventsSql(schema, selection));
      const rows = toSafeInt(counted.rows[0]?.n, 'row count');
      if (rows > 0) {
        await client.query(aggregateSql(def, sketch, schema, selection, opts.dimensions));
      }
      if (def.allTenants) {
        // The all-storefronts buckets of the range, summed again from every tenant's rows, which
        // stand at the same watermark (both are folded in the same transactions).
        await client.query(deleteBucketsSql(def, schema, 0, from, to));
        await client.query(allTenantsFromRowsSql(def, sketch, schema, { range: { from, to } }));
      }
      const lost = shortfalls.find((x) => x.name === def.name);
      out.push({ name: def.name, grain: def.grain, from, to, deletedRows: deleted.rowCount ?? 0, rows, watermark, ...(lost ? { lost } : {}) });
    }
    return out;
  });
}

export interface PruneResult {
  name: string;
  cutoff: Date;
  deletedRows: number;
}

/**
 * Rollup retention, independent of raw partition retention: dropping raw partitions never touches
 * rollups, and rollups keep coarse history long after the raw rows are gone.
 */
export async function pruneRollups(
  pool: pg.Pool,
  schema: string,
  now: Date,
  retention: RollupRetention,
  rollups?: readonly RollupDefinition[],
): Promise<PruneResult[]> {
  const out: PruneResult[] = [];
  for (const def of rollups ?? (await foldDefinitions(pool, schema))) {
    const cutoff = retentionCutoff(now, def.grain, retention);
    const r = await pool.query(pruneSql(def, schema, cutoff));
    out.push({ name: def.name, cutoff, deletedRows: r.rowCount ?? 0 });
  }
  return out;
}

export interface RollupStatus {
  name: string;
  grain: Grain;
  table: string;
  lastSeq: number;
  highWater: number;
  /** Events not yet folded in, counted up to `pendingBound`. */
  pendingRows: number;
  pendingCapped: boolean;
  /** Age of the oldest event not yet folded in; 0 when caught up. */
  lagSeconds: number;
  lastRunAt: Date | null;
  lastRows: number;
  lastDurationMs: number | null;
}

export async function rollupStatus(
  pool: pg.Pool,
  schema: string,
  opts: { now?: () => Date; pendingBound?: number; rollups?: readonly RollupDefinition[] } = {},
): Promise<RollupStatus[]> {
  const rollups = opts.rollups ?? (await foldDefinitions(pool, schema));
  const bound = opts.pendingBound ?? 10_000_000;
  const now = opts.now ?? (() => new Date());
  const highWater = await readHighWater(pool, schema);
  const state = await pool.query<{ name: string; last_seq: string; last_run_at: Date | null; last_rows: string; last_duration_ms: number | null }>(
    stateSql(schema, rollups.map((r) => r.name)),
  );
  const byName = new Map(state.rows.map((r) => [r.name, r]));
  const out: RollupStatus[] = [];
  // Definitions normally share one watermark: count what is pending once per watermark.
  const pendingAt = new Map<number, Promise<{ pendingRows: number; oldestAt: Date | undefined }>>();
  const pendingFor = (lastSeq: number) => {
    let p = pendingAt.get(lastSeq);
    if (!p) {
      p = (async () => {
        const pending = await pool.query<{ n: string }>(pendingCountSql(schema, lastSeq, bound));
        const pendingRows = toSafeInt(pending.rows[0]?.n, 'pending count');
        const oldest = pendingRows > 0 ? await pool.query<{ ingested_at: Date }>(oldestPendingSql(schema, lastSeq)) : undefined;
        return { pendingRows, oldestAt: oldest?.rows[0]?.ingested_at };
      })();
      pendingAt.set(lastSeq, p);
    }
    return p;
  };
  for (const def of rollups) {
    const s = byName.get(def.name);
    const lastSeq = toSafeInt(s?.last_seq, 'last_seq');
    const { pendingRows, oldestAt } = await pendingFor(lastSeq);
    out.push({
      name: def.name,
      grain: def.grain,
      table: def.table,
      lastSeq,
      highWater,
      pendingRows,
      pendingCapped: pendingRows >= bound,
      lagSeconds: oldestAt ? Math.max(0, (now().getTime() - oldestAt.getTime()) / 1000) : 0,
      lastRunAt: s?.last_run_at ?? null,
      lastRows: toSafeInt(s?.last_rows, 'last_rows'),
      lastDurationMs: s?.last_duration_ms ?? null,
    });
  }
  return out;
}

export interface RollupCycleOptions extends RollupRunOptions {
  retentionDays: RollupRetention;
}

export interface RollupCycleResult {
  runs: RollupRunResult[];
  pruned: PruneResult[];
}

/**
 * What the timer does every minute (and `hubsink rollup` once): one incremental step of every
 * rollup, then retention. Pruning each minute keeps every delete small.
 */
export async function rollupCycle(pool: pg.Pool, schema: string, opts: RollupCycleOptions): Promise<RollupCycleResult> {
  const r = await rollUpUntilCaughtUp(pool, schema, { ...opts, maxRuns: 1 });
  return { runs: r.runs[0] ?? [], pruned: r.pruned };
}

export interface CatchUpOptions extends RollupRunOptions {
  /** Most runs before giving up; each folds at most maxWindowRows per rollup. */
  maxRuns: number;
  /** After each run (telemetry, counters, progress); `run` counts from 1. */
  onRun?: (results: RollupRunResult[], run: number) => void;
  /** Asked before each run and before pruning: true ends early (a shutdown). */
  stopped?: () => boolean;
}

export interface CatchUpResult {
  /** The results of each run, in order. */
  runs: RollupRunResult[][];
  /** The last run reached the high-water mark (false when maxRuns or `stopped` ended it first). */
  caughtUp: boolean;
  pruned: PruneResult[];
}

/**
 * Runs the rollups until they have caught up, at most `maxRuns` times, then prunes when asked.
 * The one loop behind the runner, partition retention, the import and `hubsink rollup --catch-up`:
 * each sets its own bound and decides what a busy events table (RollupBusyError, thrown as is) or
 * a bound reached means.
 */
export async function rollUpUntilCaughtUp(pool: pg.Pool, schema: string, opts: CatchUpOptions): Promise<CatchUpResult> {
  const runs: RollupRunResult[][] = [];
  let caughtUp = false;
  while (runs.length < opts.maxRuns && !caughtUp && opts.stopped?.() !== true) {
    const results = await runRollups(pool, schema, opts);
    runs.push(results);
    opts.onRun?.(results, runs.length);
    caughtUp = results.every((r) => r.caughtUp);
  }
  const pruned =
    opts.retentionDays && opts.stopped?.() !== true ? await pruneRollups(pool, schema, (opts.now ?? (() => new Date()))(), opts.retentionDays, opts.rollups) : [];
  return { runs, caughtUp, pruned };
}

/** Pure: one log line for a cycle. */
export function describeCycle(r: RollupCycleResult): string {
  const runs = r.runs.map((x) => `${x.name} (${x.fromSeq},${x.toSeq}] rows=${x.rows} ${x.durationMs}ms${x.caughtUp ? '' : ' behind'}`);
  const pruned = r.pruned.filter((p) => p.deletedRows > 0).map((p) => `${p.name} pruned=${p.deletedRows}`);
  return [...runs, ...pruned].join('; ');
}
