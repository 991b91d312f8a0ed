/**
 * Daily partitions of `events`: created ahead of time, dropped past retention. On Citus its own
 * create_time_partitions / drop_old_time_partitions (they distribute new partitions too); on plain
 * PostgreSQL the same names and bounds by our own DDL, so data and tooling look identical on both.
 * All dates are UTC day boundaries: the transaction pins TimeZone because Citus truncates days and
 * formats partition names in the session's time zone.
 */
import type pg from 'pg';
import type { Capabilities } from './capabilities.js';
import { ident } from './ident.js';
import { inTransaction, type Queryable } from './queryable.js';
import type { Statement } from './statement.js';

const DAY_MS = 86_400_000;
/** Partition maintenance of one schema serializes on (this, hashtext(schema)). */
export const PARTITION_LOCK_CLASS = 0x68_62_70_74; // "hbpt"

export interface PartitionOptions {
  now: Date;
  aheadDays: number;
  retentionDays: number;
  caps: Capabilities;
  /** false: only create (what `migrate` does); retention is left to the maintenance runs. Default true. */
  drop?: boolean;
  /**
   * Called, outside the maintenance transaction, when a partition past retention holds rows some
   * rollup has not folded in yet: the caller rolls up, and the partition goes if the rollups now
   * cover it. Without it such partitions are kept (and reported) until a later run.
   */
  rollUp?: () => Promise<void>;
}

/** A partition past retention that was not dropped, and why. */
export interface KeptPartition {
  name: string;
  reason: string;
}

export interface MaintenanceResult {
  created: string[];
  dropped: string[];
  kept: KeptPartition[];
}

export interface PartitionInfo {
  name: string;
  from: Date;
  to: Date;
}

export function startOfUtcDay(d: Date): Date {
  return new Date(Math.floor(d.getTime() / DAY_MS) * DAY_MS);
}

function addDays(d: Date, n: number): Date {
  return new Date(d.getTime() + n * DAY_MS);
}

function checkDays(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative whole number of days, got ${String(n)}`);
}

/**
 * Pure: the occurredAt range ingest accepts, inclusive: [now − retention, now + ahead]. Validation
 * uses exactly this, so an accepted event always finds a partition (see partitionPlan).
 */
export function partitionWindow(now: Date, aheadDays: number, retentionDays: number): { from: Date; to: Date } {
  checkDays('aheadDays', aheadDays);
  checkDays('retentionDays', retentionDays);
  return { from: addDays(now, -retentionDays), to: addDays(now, aheadDays) };
}

/** Pure: `events_pYYYY_MM_DD`, the name Citus's create_time_partitions gives a daily partition. */
export function partitionName(day: Date): string {
  const iso = startOfUtcDay(day).toISOString();
  return `events_p${iso.slice(0, 4)}_${iso.slice(5, 7)}_${iso.slice(8, 10)}`;
}

/**
 * Pure: which days must exist and what may go. Days from the one holding the window's start
 * through the day after the one holding its end: the spare day keeps the window covered when the
 * daily maintenance runs late, since the window's end moves with the clock between runs.
 * Partitions whose upper bound is at or before the window's start hold only events nobody
 * accepts any more, and are dropped.
 */
export function partitionPlan(now: Date, aheadDays: number, retentionDays: number): { days: PartitionInfo[]; createFrom: Date; createTo: Date; dropBefore: Date } {
  const w = partitionWindow(now, aheadDays, retentionDays);
  const createFrom = startOfUtcDay(w.from);
  const createTo = addDays(startOfUtcDay(w.to), 2);
  const days: PartitionInfo[] = [];
  for (let d = createFrom; d < createTo; d = addDays(d, 1)) days.push({ name: partitionName(d), from: d, to: addDays(d, 1) });
  return { days, createFrom, createTo, dropBefore: w.from };
}

/**
 * Pure: the statements, for one schema. Bounds and names are bind parameters or server-side
 * format(): the format* statements return the DDL text to run next.
 */
export function partitionStatements(schema: string) {
  const s = ident(schema);
  const parent = `${s}.events`;
  return {
    lock: { text: 'SELECT pg_advisory_xact_lock($1::int, hashtext($2::text))', values: [PARTITION_LOCK_CLASS, schema] } satisfies Statement,
    /** What a reader of partitions takes (a rebuild): no partition is dropped under it. */
    sharedLock: { text: 'SELECT pg_advisory_xact_lock_shared($1::int, hashtext($2::text))', values: [PARTITION_LOCK_CLASS, schema] } satisfies Statement,
    utc: { text: "SET LOCAL TimeZone = 'UTC'", values: [] } satisfies Statement,
    // Bounds are read back from the catalog with the same TimeZone/DateStyle that printed them.
    list: {
      text: `SELECT c.relname AS name,
  (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz AS from_value,
  (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS to_value
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = to_regclass($1::text)
ORDER BY 2 NULLS FIRST, 1`,
      values: [parent],
    } satisfies Statement,
    citusCreate: (from: Date, to: Date): Statement => ({
      text: "SELECT create_time_partitions($1::regclass, INTERVAL '1 day', $2::timestamptz, $3::timestamptz)",
      values: [parent, to.toISOString(), from.toISOString()],
    }),
    // DDL takes no bind parameters: format() quotes the name and bounds on the server.
    formatCreate: (name: string, from: Date, to: Date): Statement => ({
      text: "SELECT format('CREATE TABLE %I.%I PARTITION OF %I.events FOR VALUES FROM (%L) TO (%L)', $1::text, $2::text, $1::text, $3::timestamptz, $4::timestamptz) AS ddl",
      values: [schema, name, from.toISOString(), to.toISOString()],
    }),
    formatDrop: (name: string): Statement => ({ text: "SELECT format('DROP TABLE %I.%I', $1::text, $2::text) AS ddl", values: [schema, name] }),
    formatLock: (name: string): Statement => ({ text: "SELECT format('LOCK TABLE %I.%I IN ACCESS EXCLUSIVE MODE', $1::text, $2::text) AS ddl", values: [schema, name] }),
    formatMaxSeq: (name: string): Statement => ({ text: "SELECT format('SELECT max(ingest_seq)::text AS max_seq FROM %I.%I', $1::text, $2::text) AS sql", values: [schema, name] }),
    // The lowest watermark of every rollup: rows at or below it are folded into all of them.
    watermark: { text: `SELECT min(last_seq)::text AS last_seq, count(*)::int AS n FROM ${s}.rollup_state`, values: [] } satisfies Statement,
  };
}

interface ListRow {
  name: string;
  from_value: Date | null;
  to_value: Date | null;
}

/** Partitions of `<schema>.events` with their bounds, oldest first (a DEFAULT partition has none). */
export async function listPartitions(client: Queryable, schema: string): Promise<{ name: string; from: Date | null; to: Date | null }[]> {
  const st = partitionStatements(schema);
  const { rows } = await client.query<ListRow>(st.list);
  return rows.map((r) => ({ name: r.name, from: r.from_value, to: r.to_value }));
}

/**
 * In a transaction: takes the schema's maintenance lock and pins TimeZone to UTC until it ends, then
 * lists the partitions as they are under the lock.
 */
export async function lockPartitions(client: pg.PoolClient, schema: string): Promise<{ name: string; from: Date | null; to: Date | null }[]> {
  const st = partitionStatements(schema);
  await client.query(st.lock);
  await client.query(st.utc);
  return listPartitions(client, schema);
}

/** Runs a format* statement and returns the statement it printed. */
async function format(client: pg.PoolClient, st: Statement): Promise<string> {
  const { rows } = await client.query<Record<string, string>>(st);
  const text = Object.values(rows[0] ?? {})[0];
  if (typeof text !== 'string') throw new Error('format() returned nothing');
  return text;
}

/** Pure: the lower bound of the oldest bounded partition, i.e. how far back raw events can exist. */
export function oldestPartitionStart(partitions: readonly { from: Date | null }[]): Date | undefined {
  let oldest: Date | undefined;
  for (const p of partitions) if (p.from && (!oldest || p.from.getTime() < oldest.getTime())) oldest = p.from;
  return oldest;
}

/** Pure: the partitions a run would drop: those wholly before the window's start. */
export function expiredPartitions<P extends { to: Date | null }>(partitions: readonly P[], dropBefore: Date): P[] {
  return partitions.filter((p) => p.to !== null && p.to.getTime() <= dropBefore.getTime());
}

/**
 * Rows of `name` not yet folded into every rollup: the partition's highest ingest_seq against the
 * lowest rollup watermark. undefined when the rollups cover it (or it is empty).
 */
async function unfolded(client: pg.PoolClient, schema: string, name: string): Promise<string | undefined> {
  const st = partitionStatements(schema);
  const { rows } = await client.query<{ max_seq: string | null }>(await format(client, st.formatMaxSeq(name)));
  const maxSeq = rows[0]?.max_seq ?? null;
  if (maxSeq === null) return undefined;
  const w = await client.query<{ last_seq: string | null; n: number }>(st.watermark);
  const lastSeq = w.rows[0]?.last_seq ?? null;
  if (lastSeq === null || w.rows[0]?.n === 0) return undefined;
  if (BigInt(maxSeq) <= BigInt(lastSeq)) return undefined;
  return `holds rows up to ingest_seq ${maxSeq} but the rollups have folded in only up to ${lastSeq}; kept until they catch up (hubsink rollup --catch-up)`;
}

/** Expired partitions that still hold rows the rollups lack; read outside any transaction. */
async function expiredUnfolded(pool: pg.Pool, schema: string, dropBefore: Date): Promise<string[]> {
  const client = await pool.connect();
  try {
    const out: string[] = [];
    for (const p of expiredPartitions(await listPartitions(client, schema), dropBefore)) {
      if ((await unfolded(client, schema, p.name)) !== undefined) out.push(p.name);
    }
    return out;
  } finally {
    client.release();
  }
}

/**
 * Creates the window's partitions and drops those past retention, in one transaction under the
 * schema's maintenance lock. A partition past retention is dropped only when every rollup's
 * watermark covers its rows (checked under an ACCESS EXCLUSIVE lock on it, so no row can arrive in
 * between): dropping it earlier would lose from the rollups what they had not folded in yet.
 */
export async function maintainPartitions(pool: pg.Pool, schema: string, opts: PartitionOptions): Promise<MaintenanceResult> {
  const st = partitionStatements(schema);
  const plan = partitionPlan(opts.now, opts.aheadDays, opts.retentionDays);
  const drop = opts.drop !== false;
  // Roll up before taking any lock: the rollup waits for writers on events, which our DDL would block.
  if (drop && opts.rollUp && (await expiredUnfolded(pool, schema, plan.dropBefore)).length > 0) await opts.rollUp();
  return inTransaction(pool, async (client) => {
    const before = await lockPartitions(client, schema);
    if (opts.caps.citus) {
      await client.query(st.citusCreate(plan.createFrom, plan.createTo));
    } else {
      const existing = new Set(before.map((p) => p.name));
      for (const day of plan.days) {
        if (existing.has(day.name)) continue;
        await client.query(await format(client, st.formatCreate(day.name, day.from, day.to)));
      }
    }
    const kept: KeptPartition[] = [];
    if (drop) {
      for (const p of expiredPartitions(before, plan.dropBefore)) {
        await client.query(await format(client, st.formatLock(p.name)));
        const reason = await unfolded(client, schema, p.name);
        if (reason !== undefined) kept.push({ name: p.name, reason });
        else await client.query(await format(client, st.formatDrop(p.name)));
      }
    }
    const after = await listPartitions(client, schema);
    const beforeNames = new Set(before.map((p) => p.name));
    const afterNames = new Set(after.map((p) => p.name));
    return {
      created: after.filter((p) => !beforeNames.has(p.name)).map((p) => p.name),
      dropped: before.filter((p) => !afterNames.has(p.name)).map((p) => p.name),
      kept,
    };
  });
}

/** Pure: one line per partition touched, for logs and the CLI. */
export function describeMaintenance(r: MaintenanceResult): string[] {
  return [...r.created.map((n) => `created ${n}`), ...r.dropped.map((n) => `dropped ${n}`), ...r.kept.map((k) => `kept ${k.name}: ${k.reason}`)];
}
