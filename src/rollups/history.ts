/**
 * `hubsink rollup migrate-history`: the history of the single cubes of migration 003
 * (rollup_minute, rollup_hour, rollup_day: up to 10 years of days) re-aggregated into every
 * definition of the same grain (sums add, sketches union), the all-storefronts rows included.
 *
 * Exactly once: migration 005 started each new rollup at the old cube's watermark, so the cube
 * holds exactly the events the new rollups lack. The copy goes in chunks of buckets; each chunk and
 * its progress row (rollup_history_progress) commit together, so an interrupted run resumes where it
 * stopped and a second run copies nothing. Each chunk checks, before it commits, that per tenant and
 * bucket the rollup gained exactly the old cube's events and revenue; `--drop-old` drops the old
 * tables only when every chunk of every pair is done.
 */
import type pg from 'pg';
import { inTransaction, type Queryable } from '../db/queryable.js';
import { ident, qualified } from '../db/ident.js';
import type { Statement } from '../db/statement.js';
import { HubsinkError } from '../errors.js';
import { GRAIN_MS, LEGACY_ROLLUPS, MEASURES, ROLLUPS, bucketStart, type RollupDefinition } from './definitions.js';
import { loadSketchProfile } from './run.js';
import type { RollupCapabilities, SketchProfile } from './sketches.js';

export const PROGRESS_TABLE = 'rollup_history_progress';

export class HistoryMismatchError extends HubsinkError {
  readonly kind = 'failed';
  override name = 'HistoryMismatchError';
}

/** Pure: the copy of one chunk of an old cube into a new rollup; $1 from, $2 to (buckets). */
export function copyChunkSql(source: RollupDefinition, target: RollupDefinition, sketch: SketchProfile, schema: string, allTenants: boolean): Statement {
  const dims = target.dimensions.map((d) => ident(d.column));
  const measures = target.measures.map((m) => MEASURES[m]);
  const agg = measures.map((m) => (m.kind === 'distinct' ? sketch.unionSketch(ident(m.column)) : `sum(${ident(m.column)})`));
  const cols = ['tenant_id', 'bucket', ...dims, ...measures.map((m) => ident(m.column))];
  const group = [...(allTenants ? [] : ['tenant_id']), 'bucket', ...dims];
  return {
    text: [
      `INSERT INTO ${qualified(schema, target.table)} AS r (${cols.join(', ')})`,
      `SELECT ${allTenants ? '0' : 'tenant_id'}, bucket, ${[...dims, ...agg].join(', ')}`,
      `FROM ${qualified(schema, source.table)} WHERE bucket >= $1 AND bucket < $2`,
      `GROUP BY ${group.join(', ')}`,
      `ON CONFLICT (${['tenant_id', 'bucket', ...dims].join(', ')}) DO UPDATE SET`,
      measures.map((m) => `${ident(m.column)} = ${m.kind === 'distinct' ? sketch.merge(`r.${ident(m.column)}`, `EXCLUDED.${ident(m.column)}`) : `r.${ident(m.column)} + EXCLUDED.${ident(m.column)}`}`).join(', '),
    ].join('\n'),
    values: [],
  };
}

/** Events and revenue per tenant and bucket of a table over [from, to) ($1, $2), all-storefronts rows apart. */
function totalsSql(schema: string, table: string): string {
  return `SELECT tenant_id::text AS t, bucket, sum(events)::text AS e, sum(revenue)::text AS r FROM ${qualified(schema, table)} WHERE bucket >= $1 AND bucket < $2 GROUP BY 1, 2`;
}

type Totals = Map<string, { e: bigint; r: number }>;

async function totals(db: Queryable, schema: string, table: string, from: Date, to: Date): Promise<Totals> {
  const { rows } = await db.query<{ t: string; bucket: Date; e: string; r: string }>({ text: totalsSql(schema, table), values: [from, to] });
  return new Map(rows.map((x) => [`${x.t}|${x.bucket.toISOString()}`, { e: BigInt(x.e), r: Number(x.r) }]));
}

/** Pure: the (tenant|bucket) keys where after − before differs from the old cube's totals. */
export function chunkMismatches(before: Totals, after: Totals, old: Totals, allTenants: boolean): string[] {
  const expected: Totals = new Map(old);
  if (allTenants) {
    // The all-storefronts rows gain every tenant's events of the bucket.
    for (const [k, v] of old) {
      const key = `0|${k.split('|')[1] ?? ''}`;
      const cur = expected.get(key) ?? { e: 0n, r: 0 };
      expected.set(key, { e: cur.e + v.e, r: cur.r + v.r });
    }
  }
  const out: string[] = [];
  for (const key of new Set([...after.keys(), ...expected.keys()])) {
    const gained = (after.get(key)?.e ?? 0n) - (before.get(key)?.e ?? 0n);
    const gainedR = (after.get(key)?.r ?? 0) - (before.get(key)?.r ?? 0);
    const want = expected.get(key) ?? { e: 0n, r: 0 };
    if (gained !== want.e || Math.abs(gainedR - want.r) > 1e-6 * Math.max(1, Math.abs(want.r))) out.push(key);
  }
  return out;
}

export interface HistoryProgress {
  source: string;
  target: string;
  doneUntil: Date;
  finished: boolean;
}

export interface HistoryOptions {
  caps: RollupCapabilities;
  /** Buckets per chunk, in days of data (default 30: a month of days, hours or minutes). */
  chunkDays?: number;
  /** Buckets before this are past the new retention of their grain and are not copied. */
  notBefore?: (grain: RollupDefinition['grain']) => Date;
  rollups?: readonly RollupDefinition[];
  log?: (line: string) => void;
}

/** Which old cubes still exist. */
export async function legacyTables(db: Queryable, schema: string): Promise<RollupDefinition[]> {
  const { rows } = await db.query<{ name: string }>({
    text: `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = ANY($2::text[])`,
    values: [schema, LEGACY_ROLLUPS.map((r) => r.table)],
  });
  const present = new Set(rows.map((r) => r.name));
  return LEGACY_ROLLUPS.filter((r) => present.has(r.table));
}

/**
 * Copies what is left of every (old cube, new rollup) pair, chunk by chunk. Returns every pair's
 * progress. Throws HistoryMismatchError (the chunk rolled back) if a chunk did not add up.
 */
export async function migrateHistory(pool: pg.Pool, schema: string, opts: HistoryOptions): Promise<HistoryProgress[]> {
  const log = opts.log ?? (() => undefined);
  const chunkMs = (opts.chunkDays ?? 30) * GRAIN_MS.day;
  const sources = await legacyTables(pool, schema);
  const targets = opts.rollups ?? ROLLUPS;
  if (sources.length === 0) return [];
  const sketch = await loadSketchProfile(pool, schema, opts.caps, [...sources, ...targets]);
  const out: HistoryProgress[] = [];
  for (const source of sources) {
    const range = await pool.query<{ lo: Date | null; hi: Date | null }>(`SELECT min(bucket) AS lo, max(bucket) AS hi FROM ${qualified(schema, source.table)}`);
    const lo = range.rows[0]?.lo;
    const hi = range.rows[0]?.hi;
    for (const target of targets.filter((t) => t.grain === source.grain)) {
      await pool.query({ text: `INSERT INTO ${qualified(schema, PROGRESS_TABLE)} (source, target, done_until) VALUES ($1, $2, 'epoch') ON CONFLICT DO NOTHING`, values: [source.table, target.table] });
      const end = hi ? new Date(hi.getTime() + GRAIN_MS[source.grain]) : undefined;
      let finished = false;
      let doneUntil = new Date(0);
      while (!finished) {
        const step = await inTransaction(pool, async (client) => {
          // Locked: a second migrate-history running at the same time waits, then sees the chunk done.
          const p = await client.query<{ done_until: Date; finished: boolean }>({
            text: `SELECT done_until, finished FROM ${qualified(schema, PROGRESS_TABLE)} WHERE source = $1 AND target = $2 FOR UPDATE`,
            values: [source.table, target.table],
          });
          const row = p.rows[0];
          if (!row) throw new Error(`no progress row for ${source.table} → ${target.table}`);
          if (row.finished || !lo || !end) {
            if (!row.finished) await client.query({ text: `UPDATE ${qualified(schema, PROGRESS_TABLE)} SET finished = true, updated_at = now() WHERE source = $1 AND target = $2`, values: [source.table, target.table] });
            return { finished: true, doneUntil: row.done_until };
          }
          const floor = opts.notBefore ? bucketStart(opts.notBefore(source.grain), source.grain) : lo;
          const from = new Date(Math.max(lo.getTime(), floor.getTime(), row.done_until.getTime()));
          const chunkEnd = new Date(Math.min(end.getTime(), bucketStart(new Date(from.getTime() + chunkMs), source.grain).getTime()));
          if (from.getTime() < end.getTime()) {
            const before = await totals(client, schema, target.table, from, chunkEnd);
            const old = await totals(client, schema, source.table, from, chunkEnd);
            await client.query({ ...copyChunkSql(source, target, sketch, schema, false), values: [from, chunkEnd] });
            if (target.allTenants) await client.query({ ...copyChunkSql(source, target, sketch, schema, true), values: [from, chunkEnd] });
            const after = await totals(client, schema, target.table, from, chunkEnd);
            const bad = chunkMismatches(before, after, old, target.allTenants);
            if (bad.length > 0) {
              throw new HistoryMismatchError(`${target.table} did not gain exactly ${source.table}'s events for tenant|bucket ${bad.slice(0, 5).join(', ')}${bad.length > 5 ? ` and ${bad.length - 5} more` : ''}; nothing of this chunk was kept`);
            }
          }
          const done = chunkEnd.getTime() >= end.getTime();
          await client.query({
            text: `UPDATE ${qualified(schema, PROGRESS_TABLE)} SET done_until = $3, finished = $4, updated_at = now() WHERE source = $1 AND target = $2`,
            values: [source.table, target.table, chunkEnd, done],
          });
          log(`${source.table} → ${target.table}: copied up to ${chunkEnd.toISOString()}${done ? ' (done)' : ''}`);
          return { finished: done, doneUntil: chunkEnd };
        });
        finished = step.finished;
        doneUntil = step.doneUntil;
      }
      out.push({ source: source.table, target: target.table, doneUntil, finished });
    }
  }
  return out;
}

/**
 * Drops the old cubes once every (old cube, new rollup) pair is copied, each chunk having been
 * checked as it was copied. Refuses (nothing dropped) otherwise, saying which pairs are left.
 */
export async function dropLegacy(pool: pg.Pool, schema: string, rollups: readonly RollupDefinition[] = ROLLUPS): Promise<string[]> {
  const sources = await legacyTables(pool, schema);
  const { rows } = await pool.query<{ source: string; target: string }>({ text: `SELECT source, target FROM ${qualified(schema, PROGRESS_TABLE)} WHERE finished`, values: [] });
  const done = new Set(rows.map((r) => `${r.source}>${r.target}`));
  const missing = sources.flatMap((s) => rollups.filter((t) => t.grain === s.grain && !done.has(`${s.table}>${t.table}`)).map((t) => `${s.table} → ${t.table}`));
  if (missing.length > 0) throw new HistoryMismatchError(`not dropping the old rollup tables: history not yet copied and verified for ${missing.join(', ')}; run \`hubsink rollup migrate-history\` first`);
  for (const s of sources) await pool.query(`DROP TABLE ${qualified(schema, s.table)}`);
  return sources.map((s) => s.table);
}
