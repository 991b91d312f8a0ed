/**
 * The `dead_letters` store: parked poison events, what operators list, replay and discard.
 * Statements are pure builders (text + values); the async functions only run them. Every value is
 * a bind parameter; the schema name goes through ident().
 *
 * Parking is idempotent on the source key (see sql/002_dead_letters.sql for why that key), so a dead
 * letter delivered twice is parked once, and a parked row that was replayed or discarded is never
 * brought back by a redelivery.
 */
import { createHash } from 'node:crypto';
import { clampDate } from '../pipeline/deadletter.js';
import { PARK_REASONS, countsFor, isParkReason, type DeadLetterRecord, type ParkReason } from '../pipeline/types.js';
import { ident } from './ident.js';
import type { Queryable } from './queryable.js';
import type { Statement } from './statement.js';
import { classifyError, describeError } from '../pipeline/classify.js';
import { isStatementUnfit } from '../pipeline/pgErrors.js';

export type DeadLetterStatus = 'parked' | 'replayed' | 'discarded';
export const DEAD_LETTER_STATUSES: readonly DeadLetterStatus[] = ['parked', 'replayed', 'discarded'];

// ---------------------------------------------------------------------------------------------
// Values that PostgreSQL text and jsonb cannot hold as they are.

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/**
 * text columns refuse NUL, and a lone UTF-16 surrogate has no UTF-8 form; informational text
 * (errors, partition keys) gets U+FFFD instead of either.
 */
export function safeText(s: string): string {
  const noNul = s.includes('\u0000') ? s.replaceAll('\u0000', '\uFFFD') : s;
  return LONE_SURROGATE.test(noNul) ? noNul.replace(LONE_SURROGATES, '\uFFFD') : noNul;
}

/** A time PostgreSQL stores, as ISO text: see clampDate. */
export function clampTime(d: Date): string {
  return clampDate(d).toISOString();
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/**
 * Application properties as jsonb, losslessly. jsonb refuses strings with NUL, and AMQP values may be
 * bytes, dates, int64 or non-finite numbers, which JSON cannot spell: such values are written as a
 * one-key object tagged `$bytes` (base64), `$date` (ISO), `$bigint`, `$number` or `$string`
 * (base64 of the UTF-8 of a string with NUL) or `$utf16` (base64 of the UTF-16 of a string with a lone
 * surrogate, which has no UTF-8). Keys with NUL or lone surrogates get U+FFFD. A plain object that happens to have one `$`-key is
 * tagged `$object` so decoding never mistakes it for one of ours.
 */
export function encodeJsonValue(v: unknown, depth = 0): Json {
  if (depth > 64) return { $string: Buffer.from('[nested too deep]', 'utf8').toString('base64') };
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : { $number: String(v) };
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (typeof v === 'string') {
    // jsonb refuses \u0000 and lone surrogates; UTF-16 keeps a lone surrogate exactly.
    if (LONE_SURROGATE.test(v)) return { $utf16: Buffer.from(v, 'utf16le').toString('base64') };
    return v.includes('\u0000') ? { $string: Buffer.from(v, 'utf8').toString('base64') } : v;
  }
  if (v instanceof Date) return { $date: Number.isNaN(v.getTime()) ? 'invalid' : v.toISOString() };
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('base64') };
  if (Array.isArray(v)) return v.map((x) => encodeJsonValue(x, depth + 1));
  if (typeof v === 'object') {
    const out: { [k: string]: Json } = {};
    const entries = Object.keys(v).map((k) => [k, (v as Record<string, unknown>)[k]] as const);
    for (const [k, x] of entries) {
      Object.defineProperty(out, safeText(k), { value: encodeJsonValue(x, depth + 1), enumerable: true, writable: true, configurable: true });
    }
    const keys = Object.keys(out);
    if (keys.length === 1 && keys[0]?.startsWith('$')) return { $object: out };
    return out;
  }
  return String(v as string);
}

/** The inverse of encodeJsonValue. */
export function decodeJsonValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(decodeJsonValue);
  if (v === null || typeof v !== 'object') return v;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1) {
    const [k] = keys;
    const x = o[k as string];
    if (k === '$bytes' && typeof x === 'string') return Buffer.from(x, 'base64');
    if (k === '$date' && typeof x === 'string') return new Date(x);
    if (k === '$bigint' && typeof x === 'string' && /^-?\d+$/.test(x)) return BigInt(x);
    if (k === '$number' && typeof x === 'string') return Number(x);
    if (k === '$string' && typeof x === 'string') return Buffer.from(x, 'base64').toString('utf8');
    if (k === '$utf16' && typeof x === 'string') return Buffer.from(x, 'base64').toString('utf16le');
    if (k === '$object' && x !== null && typeof x === 'object' && !Array.isArray(x)) return decodeObject(x as Record<string, unknown>);
  }
  return decodeObject(o);
}

function decodeObject(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) Object.defineProperty(out, k, { value: decodeJsonValue(o[k]), enumerable: true, writable: true, configurable: true });
  return out;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INT64_MAX = 2n ** 63n - 1n;

function tenantOrNull(t: number | undefined): number | null {
  return t !== undefined && Number.isSafeInteger(t) && BigInt(t) <= INT64_MAX && BigInt(t) >= -INT64_MAX ? t : null;
}

// ---------------------------------------------------------------------------------------------
// Parking

/** Column, array type, value; in parameter order. */
const PARK_COLUMNS: readonly (readonly [column: string, arrayType: string, value: (r: DeadLetterRecord) => unknown])[] = [
  ['reason', 'text[]', (r) => r.reason],
  ['error', 'text[]', (r) => safeText(r.error)],
  ['tenant_id', 'bigint[]', (r) => tenantOrNull(r.tenantId)],
  ['event_id', 'uuid[]', (r) => (r.eventId !== undefined && UUID.test(r.eventId) ? r.eventId : null)],
  ['body', 'bytea[]', (r) => r.body],
  ['properties', 'jsonb[]', (r) => JSON.stringify(encodeJsonValue(r.properties))],
  ['body_sha256', 'bytea[]', (r) => createHash('sha256').update(r.body).digest()],
  ['source_hub', 'text[]', (r) => safeText(r.source.hub.toLowerCase())],
  ['source_consumer_group', 'text[]', (r) => safeText(r.source.consumerGroup)],
  ['source_partition', 'text[]', (r) => safeText(r.source.partitionId)],
  ['source_sequence', 'bigint[]', (r) => r.source.sequenceNumber],
  ['source_offset', 'text[]', (r) => safeText(r.source.offset)],
  ['source_enqueued_at', 'timestamptz[]', (r) => clampTime(r.source.enqueuedTime)],
  ['source_partition_key', 'text[]', (r) => (r.source.partitionKey === undefined ? null : safeText(r.source.partitionKey))],
  ['attempts', 'int[]', (r) => Math.max(0, Math.min(2 ** 31 - 1, Math.trunc(r.attempts) || 0))],
  ['first_failure_at', 'timestamptz[]', (r) => clampTime(r.firstFailureAt)],
  ['last_failure_at', 'timestamptz[]', (r) => clampTime(r.lastFailureAt)],
];

/**
 * Pure: the park statement of these records, one array per column. Same text for every batch.
 * Refuses what must never be parked (transient failures wait on the hub).
 */
export function parkSql(schema: string, records: readonly DeadLetterRecord[]): Statement {
  const cols = PARK_COLUMNS.map(([c]) => c).join(', ');
  const params = PARK_COLUMNS.map(([, t], i) => `$${i + 1}::${t}`).join(', ');
  const text =
    `INSERT INTO ${ident(schema)}.dead_letters (${cols}) SELECT * FROM unnest(${params}) ` +
    'ON CONFLICT ON CONSTRAINT dead_letters_source_key DO NOTHING RETURNING id, reason';
  for (const r of records) {
    if (!isParkReason(r.reason)) throw new Error(`only ${PARK_REASONS.join(' or ')} events are parked, not ${r.reason}`);
  }
  return { text, values: PARK_COLUMNS.map(([, , value]) => records.map(value)) };
}

export interface ParkResult {
  /** Newly parked rows, with their ids and counts by reason. */
  parked: number;
  ids: number[];
  byReason: Record<ParkReason, number>;
  /** Already parked earlier (a redelivered dead letter): left as they are. */
  alreadyParked: number;
}

/** Bounds of one park statement: rows, and bytes of its parameters (bytea travels as hex, twice its size). */
export const PARK_MAX_ROWS = 500;
export const PARK_MAX_BYTES = 16 * 1024 * 1024;

/** Pure: about how many bytes a record adds to the park statement's parameters. */
export function parkBytes(r: DeadLetterRecord): number {
  let props = 0;
  try {
    props = JSON.stringify(encodeJsonValue(r.properties)).length * 2;
  } catch {
    props = 0;
  }
  return 2 * r.body.length + props + 2 * r.error.length + 512;
}

/** Pure: consecutive groups of records within both bounds (a record larger than the byte bound goes alone). */
export function parkGroups(records: readonly DeadLetterRecord[], maxRows = PARK_MAX_ROWS, maxBytes = PARK_MAX_BYTES): DeadLetterRecord[][] {
  const groups: DeadLetterRecord[][] = [];
  let current: DeadLetterRecord[] = [];
  let bytes = 0;
  for (const r of records) {
    const n = parkBytes(r);
    if (current.length > 0 && (current.length >= maxRows || bytes + n > maxBytes)) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(r);
    bytes += n;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

const SAFE_INT = (n: number) => (Number.isSafeInteger(n) ? n : 0);

/** Strings made storable in text and jsonb, lossy (U+FFFD) where they are not; for stubs only. */
function saneProperties(v: unknown, depth = 0): unknown {
  if (depth > 32) return '[nested too deep]';
  if (typeof v === 'string') return safeText(v);
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (v === null || typeof v === 'boolean' || v === undefined) return v ?? null;
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return clampTime(v);
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('base64') };
  if (Array.isArray(v)) return v.map((x) => saneProperties(x, depth + 1));
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) Object.defineProperty(out, safeText(k), { value: saneProperties((v as Record<string, unknown>)[k], depth + 1), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return safeText(String(v as string));
}

/**
 * Pure: what is parked in place of a record the database refused as it was. Times are clamped, text
 * made safe, and both errors recorded: why it was dead-lettered, and why it could not be parked as
 * it was. Each level gives up more: the properties, then the body (its size and hash are noted).
 */
export type StubLevel = 'sanitised' | 'without properties' | 'without properties and body';
export const STUB_LEVELS: readonly StubLevel[] = ['sanitised', 'without properties', 'without properties and body'];

export function parkStub(r: DeadLetterRecord, parkError: string, level: StubLevel = 'sanitised'): DeadLetterRecord {
  let properties: Record<string, unknown> = {};
  if (level === 'sanitised') {
    try {
      properties = saneProperties(r.properties) as Record<string, unknown>;
    } catch {
      properties = {};
    }
  }
  const keepBody = level !== 'without properties and body';
  const note =
    level === 'sanitised'
      ? 'parked as a sanitised stub'
      : level === 'without properties'
        ? 'parked without its properties'
        : `parked without its properties and body (${r.body.length} bytes, sha256 ${createHash('sha256').update(r.body).digest('hex')})`;
  const source = {
    hub: safeText(r.source.hub),
    consumerGroup: safeText(r.source.consumerGroup),
    partitionId: safeText(r.source.partitionId),
    sequenceNumber: SAFE_INT(r.source.sequenceNumber),
    offset: safeText(r.source.offset),
    enqueuedTime: new Date(clampTime(r.source.enqueuedTime)),
    ...(r.source.partitionKey !== undefined ? { partitionKey: safeText(r.source.partitionKey) } : {}),
  };
  const stub: DeadLetterRecord = {
    reason: r.reason,
    error: `${safeText(r.error).slice(0, 2000)} [${note}: the database refused it as it was: ${safeText(parkError).slice(0, 1000)}]`,
    body: keepBody ? r.body : Buffer.alloc(0),
    properties,
    source,
    attempts: Math.max(1, Math.min(2 ** 31 - 1, Math.trunc(r.attempts) || 1)),
    firstFailureAt: new Date(clampTime(r.firstFailureAt)),
    lastFailureAt: new Date(clampTime(r.lastFailureAt)),
  };
  if (r.tenantId !== undefined) stub.tenantId = r.tenantId;
  if (r.eventId !== undefined) stub.eventId = r.eventId;
  return stub;
}

export interface ParkOptions {
  maxRows?: number;
  maxBytes?: number;
  /** Called for each record parked as a stub, with the error that refused the original. */
  onStub?: (record: DeadLetterRecord, error: unknown) => void;
}

/**
 * Parks records idempotently, in statements bounded by rows and bytes. One record the database
 * refuses never blocks the others (nor the partition they came from): a statement that fails for
 * any reason but an unreachable or busy database is halved until the refused record stands alone,
 * which is parked as a stub (parkStub) and the rest as they are. Transient and unavailable
 * failures are thrown: the caller retries the batch, and parking again is harmless.
 */
export async function parkDeadLetters(db: Queryable, schema: string, records: readonly DeadLetterRecord[], opts: ParkOptions = {}): Promise<ParkResult> {
  const byReason = countsFor(PARK_REASONS);
  const ids: number[] = [];
  if (records.length === 0) return { parked: 0, ids, byReason, alreadyParked: 0 };
  // A bad schema name is the caller's error, thrown before anything is tried (or bisected).
  ident(schema);
  const insert = async (group: readonly DeadLetterRecord[]): Promise<void> => {
    const res = await db.query<{ id: string; reason: ParkReason }>(parkSql(schema, group));
    for (const r of res.rows) {
      byReason[r.reason]++;
      ids.push(Number(r.id));
    }
  };
  // Retrying cannot help when the database is unreachable or busy (the caller retries the batch),
  // nor bisecting when the statement itself is wrong for the schema (missing table, privileges).
  const hopeless = (err: unknown): boolean => {
    const cls = classifyError(err);
    return cls === 'transient' || cls === 'unavailable' || isStatementUnfit(err);
  };
  // A transient record here is a caller's bug, not a bad record: refuse before bisecting anything.
  for (const r of records) {
    if (!isParkReason(r.reason)) throw new Error(`only ${PARK_REASONS.join(' or ')} events are parked, not ${r.reason}`);
  }
  const pending = parkGroups(records, opts.maxRows, opts.maxBytes);
  for (let group = pending.shift(); group !== undefined; group = pending.shift()) {
    try {
      await insert(group);
      continue;
    } catch (err) {
      if (hopeless(err)) throw err;
      const [only] = group;
      if (group.length > 1) {
        const mid = Math.ceil(group.length / 2);
        pending.unshift(group.slice(0, mid), group.slice(mid));
        continue;
      }
      if (!only) continue;
      let why = describeError(err);
      for (const [i, level] of STUB_LEVELS.entries()) {
        try {
          await insert([parkStub(only, why, level)]);
          opts.onStub?.(only, err);
          break;
        } catch (stubErr) {
          // Refused even without properties or body: the database itself is broken, and the batch
          // must wait for an operator.
          if (hopeless(stubErr) || i === STUB_LEVELS.length - 1) throw stubErr;
          why = `${why}; then: ${describeError(stubErr)}`;
        }
      }
    }
  }
  return { parked: ids.length, ids, byReason, alreadyParked: records.length - ids.length };
}

/** Pure: the source key of a record, exactly as parkSql writes it. */
export function sourceKeyValues(records: readonly DeadLetterRecord[]): unknown[][] {
  const keyColumns = ['source_hub', 'source_partition', 'source_sequence', 'source_enqueued_at', 'body_sha256'];
  return keyColumns.map((c) => {
    const col = PARK_COLUMNS.find(([name]) => name === c);
    if (!col) throw new Error(`no park column ${c}`);
    return records.map(col[2]);
  });
}

/**
 * Pure: marks the parked rows of these records replayed (replay-hub wrote their events), matched on
 * the source key.
 */
export function markReplayedBySourceSql(schema: string, records: readonly DeadLetterRecord[], outcome: string): Statement {
  return {
    text:
      `UPDATE ${ident(schema)}.dead_letters d SET status = 'replayed', outcome = $6, replay_attempts = d.replay_attempts + 1, ` +
      'last_replay_at = now(), updated_at = now() ' +
      'FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::bytea[]) AS k(hub, part, seq, enq, sha) ' +
      "WHERE d.status = 'parked' AND d.source_hub = k.hub AND d.source_partition = k.part AND d.source_sequence = k.seq " +
      'AND d.source_enqueued_at = k.enq AND d.body_sha256 = k.sha RETURNING d.id',
    values: [...sourceKeyValues(records), safeText(outcome)],
  };
}

// ---------------------------------------------------------------------------------------------
// Reading

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
  source: {
    hub: string;
    consumerGroup: string;
    partitionId: string;
    sequenceNumber: number;
    offset: string;
    enqueuedTime: Date;
    partitionKey: string | null;
  };
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

// ---------------------------------------------------------------------------------------------
// Replays

/**
 * Pure: the rows of `events` that may match these keys. The filter is a superset (tenant in the
 * list and event id in the list), which prunes to the tenants' shards on Citus without a join
 * against a function; existingEventKeys keeps the exact matches.
 */
export function existingEventKeysSql(schema: string, keys: readonly { tenantId: number; eventId: string; occurredAt: Date }[]): Statement {
  return {
    text:
      `SELECT tenant_id::text AS tenant_id, event_id::text AS event_id, occurred_at FROM ${ident(schema)}.events ` +
      'WHERE tenant_id = ANY($1::bigint[]) AND event_id = ANY($2::uuid[])',
    values: [[...new Set(keys.map((k) => k.tenantId))], [...new Set(keys.map((k) => k.eventId.toLowerCase()))]],
  };
}

/** Pure: the events key as one comparable string. */
export function eventKey(k: { tenantId: number; eventId: string; occurredAt: Date }): string {
  return `${k.tenantId}|${k.eventId.toLowerCase()}|${k.occurredAt.getTime()}`;
}

export async function existingEventKeys(db: Queryable, schema: string, keys: readonly { tenantId: number; eventId: string; occurredAt: Date }[]): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const wanted = new Set(keys.map(eventKey));
  const st = existingEventKeysSql(schema, keys);
  const { rows } = await db.query<{ tenant_id: string; event_id: string; occurred_at: Date }>(st);
  const found = new Set<string>();
  for (const r of rows) {
    const k = eventKey({ tenantId: Number(r.tenant_id), eventId: r.event_id, occurredAt: r.occurred_at });
    if (wanted.has(k)) found.add(k);
  }
  return found;
}
