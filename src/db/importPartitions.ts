/**
 * Daily partitions for days outside the maintained window, which `hubsink import` needs for history.
 * Create-only (nothing is dropped here), under the same advisory lock, UTC pinning and DDL as the
 * partition maintenance in partitions.ts, whose public statements it reuses.
 */
import type pg from 'pg';
import type { Capabilities } from './capabilities.js';
import { listPartitions, partitionName, partitionStatements, PARTITION_LOCK_CLASS, startOfUtcDay } from './partitions.js';

const DAY_MS = 86_400_000;

/** Pure: the UTC days not covered by any partition's [from, to), grouped into runs of consecutive days. */
export function missingDayRuns(days: readonly Date[], existing: readonly { from: Date | null; to: Date | null }[]): { from: Date; to: Date }[] {
  const wanted = [...new Set(days.map((d) => startOfUtcDay(d).getTime()))].sort((a, b) => a - b);
  const covered = (t: number): boolean => existing.some((p) => p.from !== null && p.to !== null && p.from.getTime() <= t && t + DAY_MS <= p.to.getTime());
  const runs: { from: Date; to: Date }[] = [];
  for (const t of wanted) {
    if (covered(t)) continue;
    const last = runs[runs.length - 1];
    if (last && last.to.getTime() === t) last.to = new Date(t + DAY_MS);
    else runs.push({ from: new Date(t), to: new Date(t + DAY_MS) });
  }
  return runs;
}

/** Creates the daily partitions the given days need; returns the names created. */
export async function ensureDayPartitions(pool: pg.Pool, schema: string, days: readonly Date[], caps: Capabilities): Promise<string[]> {
  if (days.length === 0) return [];
  // Cheap check first, without the lock: usually every day exists already.
  if (missingDayRuns(days, await listPartitions(pool, schema)).length === 0) return [];
  const st = partitionStatements(schema);
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    try {
      await client.query(st.lock, [PARTITION_LOCK_CLASS, schema]);
      await client.query(st.utc);
      const runs = missingDayRuns(days, await listPartitions(client, schema));
      const created: string[] = [];
      for (const run of runs) {
        if (caps.citus) {
          await client.query(st.citusCreate, [st.parent, run.to.toISOString(), run.from.toISOString()]);
        } else {
          for (let t = run.from.getTime(); t < run.to.getTime(); t += DAY_MS) {
            const day = new Date(t);
            const { rows } = await client.query<{ ddl: string }>(st.formatCreate, [schema, partitionName(day), day.toISOString(), new Date(t + DAY_MS).toISOString()]);
            if (rows[0]) await client.query(rows[0].ddl);
          }
        }
        for (let t = run.from.getTime(); t < run.to.getTime(); t += DAY_MS) created.push(partitionName(new Date(t)));
      }
      await client.query('COMMIT');
      return created;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw err;
    }
  } finally {
    client.release(broken);
  }
}
