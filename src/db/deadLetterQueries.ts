/**
 * Reading the `dead_letters` store and changing the status of its rows: what operators list, count,
 * show, replay and discard. Statements are pure builders (text + values); the async functions only
 * run them. Every value is a bind parameter; the schema name goes through ident().
 */
import type { ParkReason, SourceCoordinates } from '../pipeline/types.js';
import { ident } from './ident.js';
import { decodeJsonValue, safeText } from './jsonbCodec.js';
import type { Queryable } from './queryable.js';
import type { Statement } from './statement.js';

export type DeadLetterStatus = 'parked' | 'replayed' | 'discarded';
export const DEAD_LETTER_STATUSES: readonly DeadLetterStatus[] = ['parked', 'replayed', 'discarded'];

export interface DeadLetterFilter {
  reason?: ParkReason;
  tenantId?: number;
  /** parked_at >= since */
  since?: Date;
  /** parked_at < until */
  until?: Date;
  status?: DeadLetterStatus;
  /** Keyset paging: id > afterId. */
  afterId?: number;
  ids?: readonly number[];
}

/** Pure: WHERE clause and values for a filter, parameters numbered from `first`. */
export function filterClause(f: DeadLetterFilter, first = 1): { where: string; values: unknown[] } {
  const conds: string[] = [];
  const values: unknown[] = [];
  const add = (sql: (p: string) => string, v: unknown): void => {
    values.push(v);
    conds.push(sql(`$${first + values.length - 1}`));
  };
  if (f.status !== undefined) add((p) => `status = ${p}`, f.status);
  if (f.reason !== undefined) add((p) => `reason = ${p}`, f.reason);
  if (f.tenantId !== undefined) add((p) => `tenant_id = ${p}::bigint`, f.tenantId);
  if (f.since !== undefined) add((p) => `parked_at >= ${p}::timestamptz`, f.since.toISOString());
  if (f.until !== undefined) add((p) => `parked_at < ${p}::timestamptz`, f.until.toISOString());
  if (f.afterId !== undefined) add((p) => `id > ${p}::bigint`, f.afterId);
  if (f.ids !== undefined) add((p) => `id = ANY(${p}::bigint[])`, [...f.ids]);
  return { where: conds.length > 0 ? `WHERE ${conds.join(' AND ')}` : '', values };
}

const SUMMARY_COLUMNS =
  'id, reason, error, status, tenant_id, event_id, octet_length(body) AS body_bytes, source_hub, source_consumer_group, ' +
  'source_partition, source_sequence, source_offset, source_enqueued_at, source_partition_key, attempts, ' +
  'first_failure_at, last_failure_at, parked_at, updated_at, replay_attempts, last_replay_at, outcome';

/** Pure: a page of rows (without bodies) in id order. */
export function listSql(schema: string, f: DeadLetterFilter, limit: number): Statement {
  const { where, values } = filterClause(f);
  values.push(limit);
  return { text: `SELECT ${SUMMARY_COLUMNS} FROM ${ident(schema)}.dead_letters ${where} ORDER BY id LIMIT $${values.length}`, values };
}

/** Pure: full rows (with body and properties) in id order, for replay and show. */
export function fullRowsSql(schema: string, f: DeadLetterFilter, limit: number): Statement {
  const { where, values } = filterClause(f);
  values.push(limit);
  return {
    text: `SELECT ${SUMMARY_COLUMNS}, body, properties FROM ${ident(schema)}.dead_letters ${where} ORDER BY id LIMIT $${values.length}`,
    values,
  };
}

/** Pure: how many rows a filter selects. */
export function countSql(schema: string, f: DeadLetterFilter): Statement {
  const { where, values } = filterClause(f);
  return { text: `SELECT count(*)::bigint AS n FROM ${ident(schema)}.dead_letters ${where}`, values };
}

interface SummaryRow {
  id: string;
  reason: ParkReason;
  error: string;
  status: DeadLetterStatus;
  tenant_id: string | null;
  event_id: string | null;
  body_bytes: number;
  source_hub: string;
  source_consumer_group: string;
  source_partition: string;
  source_sequence: string;
  source_offset: string;
  source_enqueued_at: Date;
  source_partition_key: string | null;
  attempts: number;
  first_failure_at: Date;
  last_failure_at: Date;
  parked_at: Date;
  updated_at: Date;
  replay_attempts: number;
  last_replay_at: Date | null;
  outcome: string | null;
}

interface FullRow extends SummaryRow {
  body: Buffer;
  properties: unknown;
}

export interface ParkedSummary {
  id: number;
  reason: ParkReason;
  error: string;
  status: DeadLetterStatus;
  tenantId: number | null;
  eventId: string | null;
  bodyBytes: number;
  /** As stored: a missing partition key is NULL. */
  source: Omit<SourceCoordinates, 'partitionKey'> & { partitionKey: string | null };
  attempts: number;
  firstFailureAt: Date;
  lastFailureAt: Date;
  parkedAt: Date;
  updatedAt: Date;
  replayAttempts: number;
  lastReplayAt: Date | null;
  outcome: string | null;
}

export interface ParkedDeadLetter extends ParkedSummary {
  body: Buffer;
  properties: Record<string, unknown>;
}

/** Pure: a database row as the shape callers use. bigint columns arrive as strings. */
export function summaryFromRow(r: SummaryRow): ParkedSummary {
  return {
    id: Number(r.id),
    reason: r.reason,
    error: r.error,
    status: r.status,
    tenantId: r.tenant_id === null ? null : Number(r.tenant_id),
    eventId: r.event_id,
    bodyBytes: Number(r.body_bytes),
    source: {
      hub: r.source_hub,
      consumerGroup: r.source_consumer_group,
      partitionId: r.source_partition,
      sequenceNumber: Number(r.source_sequence),
      offset: r.source_offset,
      enqueuedTime: r.source_enqueued_at,
      partitionKey: r.source_partition_key,
    },
    attempts: r.attempts,
    firstFailureAt: r.first_failure_at,
    lastFailureAt: r.last_failure_at,
    parkedAt: r.parked_at,
    updatedAt: r.updated_at,
    replayAttempts: r.replay_attempts,
    lastReplayAt: r.last_replay_at,
    outcome: r.outcome,
  };
}

export function parkedFromRow(r: FullRow): ParkedDeadLetter {
  const props = decodeJsonValue(r.properties);
  return {
    ...summaryFromRow(r),
    body: r.body,
    properties: props !== null && typeof props === 'object' && !Array.isArray(props) ? (props as Record<string, unknown>) : {},
  };
}

export async function listDeadLetters(db: Queryable, schema: string, f: DeadLetterFilter, limit: number): Promise<ParkedSummary[]> {
  const st = listSql(schema, f, limit);
  const { rows } = await db.query<SummaryRow>(st);
  return rows.map(summaryFromRow);
}

export async function fetchDeadLetters(db: Queryable, schema: string, f: DeadLetterFilter, limit: number): Promise<ParkedDeadLetter[]> {
  const st = fullRowsSql(schema, f, limit);
  const { rows } = await db.query<FullRow>(st);
  return rows.map(parkedFromRow);
}

export async function getDeadLetter(db: Queryable, schema: string, id: number): Promise<ParkedDeadLetter | undefined> {
  const [row] = await fetchDeadLetters(db, schema, { ids: [id] }, 1);
  return row;
}

export async function countDeadLetters(db: Queryable, schema: string, f: DeadLetterFilter): Promise<number> {
  const st = countSql(schema, f);
  const { rows } = await db.query<{ n: string }>(st);
  return Number(rows[0]?.n ?? 0);
}

// ---------------------------------------------------------------------------------------------
// Stats

export interface DeadLetterStats {
  byStatusReason: { status: DeadLetterStatus; reason: ParkReason; count: number }[];
  /** Parked rows per tenant (null = tenant unknown), largest first. */
  byTenant: { tenantId: number | null; count: number }[];
  /** Parked rows per UTC day of parking, newest first. */
  byDay: { day: string; reason: ParkReason; count: number }[];
  oldestParkedAt: Date | null;
}

/** Pure: the statistics statements. */
export function statsSql(schema: string, opts: { tenants: number; days: number }): { byStatusReason: Statement; byTenant: Statement; byDay: Statement; oldest: Statement } {
  const t = `${ident(schema)}.dead_letters`;
  return {
    byStatusReason: { text: `SELECT status, reason, count(*)::bigint AS n FROM ${t} GROUP BY status, reason ORDER BY status, reason`, values: [] },
    byTenant: {
      text: `SELECT tenant_id, count(*)::bigint AS n FROM ${t} WHERE status = 'parked' GROUP BY tenant_id ORDER BY n DESC, tenant_id NULLS LAST LIMIT $1`,
      values: [opts.tenants],
    },
    byDay: {
      text:
        `SELECT to_char(date_trunc('day', parked_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day, reason, count(*)::bigint AS n FROM ${t} ` +
        `WHERE status = 'parked' AND parked_at >= now() - make_interval(days => $1::int) GROUP BY 1, 2 ORDER BY 1 DESC, 2`,
      values: [opts.days],
    },
    oldest: { text: `SELECT min(parked_at) AS oldest FROM ${t} WHERE status = 'parked'`, values: [] },
  };
}

export async function deadLetterStats(db: Queryable, schema: string, opts: { tenants: number; days: number }): Promise<DeadLetterStats> {
  const st = statsSql(schema, opts);
  const a = await db.query<{ status: DeadLetterStatus; reason: ParkReason; n: string }>(st.byStatusReason);
  const b = await db.query<{ tenant_id: string | null; n: string }>(st.byTenant);
  const c = await db.query<{ day: string; reason: ParkReason; n: string }>(st.byDay);
  const d = await db.query<{ oldest: Date | null }>(st.oldest);
  return {
    byStatusReason: a.rows.map((r) => ({ status: r.status, reason: r.reason, count: Number(r.n) })),
    byTenant: b.rows.map((r) => ({ tenantId: r.tenant_id === null ? null : Number(r.tenant_id), count: Number(r.n) })),
    byDay: c.rows.map((r) => ({ day: r.day, reason: r.reason, count: Number(r.n) })),
    oldestParkedAt: d.rows[0]?.oldest ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// Status changes

/**
 * Pure: marks rows replayed with their outcome. Only rows still in `fromStatus` change, so a row
 * discarded by a concurrent operator is not silently flipped.
 */
export function markReplayedSql(schema: string, ids: readonly number[], outcomes: readonly string[], fromStatus: DeadLetterStatus): Statement {
  return {
    text:
      `UPDATE ${ident(schema)}.dead_letters d SET status = 'replayed', outcome = u.outcome, replay_attempts = d.replay_attempts + 1, ` +
      'last_replay_at = now(), updated_at = now() ' +
      'FROM unnest($1::bigint[], $2::text[]) AS u(id, outcome) WHERE d.id = u.id AND d.status = $3 RETURNING d.id',
    values: [[...ids], outcomes.map(safeText), fromStatus],
  };
}

/**
 * Pure: a replay that failed again leaves the row parked, with today's reason and error (the code
 * that judged it may have changed since it was parked) and the outcome `still <reason>`.
 */
export function markReplayFailedSql(
  schema: string,
  items: readonly { id: number; reason: ParkReason; error: string }[],
  fromStatus: DeadLetterStatus,
): Statement {
  return {
    text:
      `UPDATE ${ident(schema)}.dead_letters d SET reason = u.reason, error = u.error, outcome = 'still ' || u.reason, ` +
      'replay_attempts = d.replay_attempts + 1, last_replay_at = now(), updated_at = now() ' +
      'FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(id, reason, error) WHERE d.id = u.id AND d.status = $4 RETURNING d.id',
    values: [items.map((i) => i.id), items.map((i) => i.reason), items.map((i) => safeText(i.error)), fromStatus],
  };
}

/** Pure: discards the parked rows a filter selects (only parked ones: replayed rows are in `events`). */
export function discardSql(schema: string, f: Omit<DeadLetterFilter, 'status'>, note: string): Statement {
  const { where, values } = filterClause({ ...f, status: 'parked' }, 2);
  return {
    text: `UPDATE ${ident(schema)}.dead_letters SET status = 'discarded', outcome = $1, updated_at = now() ${where} RETURNING id`,
    values: [safeText(note), ...values],
  };
}

async function idsOf(db: Queryable, st: Statement): Promise<number[]> {
  const { rows } = await db.query<{ id: string }>(st);
  return rows.map((r) => Number(r.id));
}

export async function markReplayed(
  db: Queryable,
  schema: string,
  items: readonly { id: number; outcome: string }[],
  fromStatus: DeadLetterStatus = 'parked',
): Promise<number[]> {
  if (items.length === 0) return [];
  return idsOf(db, markReplayedSql(schema, items.map((i) => i.id), items.map((i) => i.outcome), fromStatus));
}

export async function markReplayFailed(
  db: Queryable,
  schema: string,
  items: readonly { id: number; reason: ParkReason; error: string }[],
  fromStatus: DeadLetterStatus = 'parked',
): Promise<number[]> {
  if (items.length === 0) return [];
  return idsOf(db, markReplayFailedSql(schema, items, fromStatus));
}

export async function discardDeadLetters(db: Queryable, schema: string, f: Omit<DeadLetterFilter, 'status'>, note = 'discarded by operator'): Promise<number[]> {
  return idsOf(db, discardSql(schema, f, note));
}
