/**
 * Creating the daily partitions a write needs, at the moment it needs them. Partition maintenance
 * (partitions.ts) keeps the accepted window covered ahead of time; this is the safety net when it
 * did not (a maintenance run missed, a partition dropped by hand): an accepted event must be
 * written, not parked as `rejected` because nobody created its day.
 *
 * Plain `CREATE TABLE ... PARTITION OF` works on PostgreSQL and on a Citus coordinator alike (Citus
 * distributes a new partition of a distributed table itself), with the names and bounds that
 * maintainPartitions gives. The advisory lock is the one maintenance takes, so concurrent writers
 * and the daily run never race to create the same table.
 */
import type pg from 'pg';
import { inTransaction } from './queryable.js';
import { lockPartitions, partitionName, partitionStatements, startOfUtcDay } from './partitions.js';

const DAY_MS = 86_400_000;

/** Pure: the distinct UTC days of these times that lie in [from, to], oldest first. */
export function daysInWindow(times: readonly Date[], window: { from: Date; to: Date }): Date[] {
  const lo = startOfUtcDay(window.from).getTime();
  const hi = window.to.getTime();
  const days = new Set<number>();
  for (const t of times) {
    const ms = t.getTime();
    if (Number.isNaN(ms) || ms < window.from.getTime() || ms > hi) continue;
    const day = startOfUtcDay(t).getTime();
    if (day >= lo) days.add(day);
  }
  return [...days].sort((a, b) => a - b).map((d) => new Date(d));
}

/**
 * Creates the daily partitions of these days that do not exist yet (existing ones, and days some
 * other partition already covers, are left alone). Returns the names created.
 */
export async function createDayPartitions(pool: pg.Pool, schema: string, days: readonly Date[]): Promise<string[]> {
  if (days.length === 0) return [];
  const st = partitionStatements(schema);
  return inTransaction(pool, async (client) => {
    const existing = await lockPartitions(client, schema);
    const covered = (from: number, to: number) =>
      existing.some((p) => p.from !== null && p.to !== null && p.from.getTime() < to && p.to.getTime() > from);
    const created: string[] = [];
    for (const day of days) {
      const from = startOfUtcDay(day).getTime();
      const to = from + DAY_MS;
      if (covered(from, to)) continue;
      const name = partitionName(day);
      const { rows } = await client.query<{ ddl: string }>(st.formatCreate(name, new Date(from), new Date(to)));
      if (rows[0]) await client.query(rows[0].ddl);
      existing.push({ name, from: new Date(from), to: new Date(to) });
      created.push(name);
    }
    return created;
  });
}
