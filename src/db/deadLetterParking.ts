/**
 * Parking dead letters in `dead_letters`: the park statement, its bounds (rows and bytes), and the
 * policy for a record the database refuses (bisecting to it, then parking it as a stub). Statements
 * are pure builders (text + values); parkDeadLetters only runs them. Every value is a bind
 * parameter; the schema name goes through ident().
 *
 * Parking is idempotent on the source key (see sql/002_dead_letters.sql for why that key), so a dead
 * letter delivered twice is parked once, and a parked row that was replayed or discarded is never
 * brought back by a redelivery.
 */
import { createHash } from 'node:crypto';
import { classifyError, describeError } from '../pipeline/classify.js';
import { isStatementUnfit } from '../pipeline/pgErrors.js';
import { PARK_REASONS, countsFor, isParkReason, type DeadLetterRecord, type ParkReason } from '../pipeline/types.js';
import { ident } from './ident.js';
import { clampTime, encodeJsonValue, safeText } from './jsonbCodec.js';
import type { Queryable } from './queryable.js';
import type { Statement } from './statement.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INT64_MAX = 2n ** 63n - 1n;

function tenantOrNull(t: number | undefined): number | null {
  return t !== undefined && Number.isSafeInteger(t) && BigInt(t) <= INT64_MAX && BigInt(t) >= -INT64_MAX ? t : null;
}

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
