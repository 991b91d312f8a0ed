/**
 * Defining, backfilling and dropping analyst-defined rollups (statements in custom.ts).
 *
 * Exactness: `define` fixes a horizon H the way a fold cycle does (the high-water mark, then one
 * wait for the writers holding values at or below it), and in one transaction stores the spec,
 * creates the tables and starts their state rows at H. From then on the incremental fold folds the
 * events after H. The backfill folds those at or below H, in chunks of events by ingest_seq: each
 * chunk and its progress (backfill_seq) commit together, so a backfill stopped anywhere resumes
 * where it stopped and no event is folded twice or missed. A chunk locks the spec row (backfills of
 * one spec take turns) and then the definitions' state rows, so it also takes turns with the fold.
 */
import type pg from 'pg';
import type { RollupDimensionLimits } from '../config.js';
import { inTransaction } from '../db/queryable.js';
import { RefusedError } from '../errors.js';
import { recordsOf } from './catalog.js';
import {
  advanceBackfillSql,
  chunkEndSql,
  createTableStatements,
  deleteCustomSpecSql,
  deleteStateSql,
  dropTableSql,
  insertCustomSpecSql,
  lockCustomSpecSql,
  setStateSql,
  sketchTypeSql,
  type CustomSpecRecord,
} from './custom.js';
import { DEFAULT_SPECS, expandCatalog, type RollupDefinition, type RollupSpec } from './definitions.js';
import { RollupSetupError, type RollupCapabilities } from './sketches.js';
import { DEFAULT_LOCK_TIMEOUT_MS, RollupBusyError, loadSketchProfile, waitForHorizon } from './run.js';
import { aggregateAllTenantsSql, aggregateSql, countEventsSql, lockStateSql } from './sql.js';

/** No analyst-defined rollup of that name (or a built-in one, which cannot be dropped). */
export class CustomRollupMissingError extends RefusedError {
  override name = 'CustomRollupMissingError';
}

export interface DefineResult {
  spec: RollupSpec;
  horizon: number;
  definitions: RollupDefinition[];
}

function toSafeInt(text: string | undefined, what: string): number {
  const n = Number(text ?? 'NaN');
  if (!Number.isSafeInteger(n)) throw new Error(`${what} out of range: ${String(text)}`);
  return n;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Stores a spec checked by buildCustomSpec, creates its tables and starts its state rows at the
 * horizon; the backfill is backfillCustomRollup's. Refused when the name is taken, meanwhile too.
 */
export async function defineCustomRollup(
  pool: pg.Pool,
  schema: string,
  spec: RollupSpec,
  opts: { caps: RollupCapabilities; lockTimeoutMs?: number; busyRetries?: number },
): Promise<DefineResult> {
  const definitions = expandCatalog([spec]);
  const needsSketch = spec.measures.some((m) => m === 'sessions' || m === 'users');
  const sketch = needsSketch ? (await pool.query<{ t: string | null }>(sketchTypeSql(schema))).rows[0]?.t : 'bigint[]';
  if (!sketch) throw new RollupSetupError(`${schema} has no built-in rollup tables to take the sketch type from: run hubsink migrate first`);
  let horizon: number | undefined;
  for (let attempt = 0; horizon === undefined; attempt++) {
    try {
      horizon = await waitForHorizon(pool, schema, opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
    } catch (err) {
      if (!(err instanceof RollupBusyError) || attempt >= (opts.busyRetries ?? 5)) throw err;
      await sleep(1_000);
    }
  }
  const h = horizon;
  await inTransaction(pool, async (client) => {
    const inserted = await client.query(insertCustomSpecSql(schema, spec, h));
    if ((inserted.rowCount ?? 0) === 0) throw new RefusedError(`rollup ${spec.name} is already defined (hubsink rollup list shows it)`);
    for (const def of definitions) for (const st of createTableStatements(schema, def, sketch, opts.caps.citus)) await client.query(st);
    await client.query(setStateSql(schema, definitions.map((d) => d.name), h));
  });
  return { spec, horizon: h, definitions };
}

export interface BackfillProgress {
  name: string;
  /** Last ingest_seq folded in. */
  doneSeq: number;
  horizon: number;
  /** Events folded in by the backfill so far (this and earlier runs). */
  rows: number;
  /** Chunks this run committed. */
  chunks: number;
  finished: boolean;
}

export interface BackfillOptions {
  caps: RollupCapabilities;
  /** Most events one chunk (one transaction) folds in. */
  chunkRows: number;
  dimensions?: RollupDimensionLimits;
  /** Called after each committed chunk (and once when there was nothing left to do). */
  onProgress?: (p: BackfillProgress) => void;
  /** Stop after this many chunks (what an interruption leaves, for tests and --max-chunks). */
  maxChunks?: number;
  now?: () => Date;
}

async function lockRecord(client: pg.PoolClient, schema: string, name: string): Promise<CustomSpecRecord> {
  const { rows } = await client.query(lockCustomSpecSql(schema, name));
  const { records, problems } = recordsOf(rows);
  const rec = records[0];
  if (!rec) {
    if (problems.length > 0) throw new RollupSetupError(problems.join('; '));
    throw new CustomRollupMissingError(`no analyst-defined rollup named ${JSON.stringify(name)} (hubsink rollup list shows them)`);
  }
  return rec;
}

/**
 * Folds the events at or below a custom rollup's horizon that are still retained, chunk by chunk,
 * from where the last run stopped. Returns the progress after the last chunk.
 */
export async function backfillCustomRollup(pool: pg.Pool, schema: string, name: string, opts: BackfillOptions): Promise<BackfillProgress> {
  if (!Number.isSafeInteger(opts.chunkRows) || opts.chunkRows < 1) throw new RangeError(`chunkRows must be a positive integer, got ${String(opts.chunkRows)}`);
  const now = opts.now ?? (() => new Date());
  const first = await inTransaction(pool, (client) => lockRecord(client, schema, name));
  const definitions = expandCatalog([first.spec]);
  // Every rollup table shares one sketch encoding; the built-in totals always have sketch columns.
  const sketch = await loadSketchProfile(pool, schema, opts.caps);
  let chunks = 0;
  for (;;) {
    const step = await inTransaction(pool, async (client) => {
      const rec = await lockRecord(client, schema, name);
      const progress = (doneSeq: number, rows: number): BackfillProgress => ({ name, doneSeq, horizon: rec.horizon, rows, chunks, finished: doneSeq >= rec.horizon });
      if (rec.backfillSeq >= rec.horizon) {
        if (rec.backfilledAt === null) await client.query(advanceBackfillSql(schema, name, rec.horizon, 0, true, now()));
        return progress(rec.backfillSeq, rec.backfillRows);
      }
      const end = await client.query<{ seq: string }>(chunkEndSql(schema, rec.backfillSeq, rec.horizon, opts.chunkRows));
      const toSeq = end.rows[0] ? toSafeInt(end.rows[0].seq, 'ingest_seq') : rec.horizon;
      await client.query(lockStateSql(schema, definitions.map((d) => d.name)));
      const selection = { source: 'window', fromSeq: rec.backfillSeq, toSeq } as const;
      const counted = await client.query<{ n: string }>(countEventsSql(schema, selection));
      const rows = toSafeInt(counted.rows[0]?.n, 'row count');
      if (rows > 0) {
        for (const def of definitions) {
          await client.query(aggregateSql(def, sketch, schema, selection, opts.dimensions));
          if (def.allTenants) await client.query(aggregateAllTenantsSql(def, sketch, schema, selection, opts.dimensions));
        }
      }
      await client.query(advanceBackfillSql(schema, name, toSeq, rows, toSeq >= rec.horizon, now()));
      chunks++;
      return progress(toSeq, rec.backfillRows + rows);
    });
    opts.onProgress?.(step);
    if (step.finished || (opts.maxChunks !== undefined && chunks >= opts.maxChunks)) return step;
  }
}

/**
 * Drops a custom rollup: its spec row, state rows and tables, in one transaction that waits for a
 * running fold or backfill chunk of it (their locks). The fold and the API stop offering it at once
 * (the API within CATALOG_TTL_MS).
 */
export async function dropCustomRollup(pool: pg.Pool, schema: string, name: string): Promise<RollupDefinition[]> {
  if (DEFAULT_SPECS.some((s) => s.name === name)) throw new CustomRollupMissingError(`rollup ${name} is built in, not analyst-defined: it cannot be dropped`);
  return inTransaction(pool, async (client) => {
    const rec = await lockRecord(client, schema, name);
    const definitions = expandCatalog([rec.spec]);
    await client.query(lockStateSql(schema, definitions.map((d) => d.name)));
    await client.query(deleteCustomSpecSql(schema, name));
    await client.query(deleteStateSql(schema, definitions.map((d) => d.name)));
    for (const def of definitions) await client.query(dropTableSql(schema, def));
    return definitions;
  });
}
