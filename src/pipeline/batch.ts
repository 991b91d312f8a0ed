/**
 * A received batch → rows to write and dead letters for what is invalid (pure).
 */
import { deadLetterFromRaw } from './deadLetterMessage.js';
import type { DeadLetterRecord, EventRow, RawEvent } from './types.js';
import { fastValidate } from './fastValidate.js';
import { CopyWriter, ScannedRow, scanEvent, withCopyLine } from './scanCopy.js';
import { validateEvent, type ValidateOptions } from './validate.js';

export interface PreparedBatch {
  rows: EventRow[];
  invalid: DeadLetterRecord[];
  /** Valid rows dropped because an earlier row of the same batch has the same key. */
  duplicatesInBatch: number;
}

/** The events key, (tenant_id, event_id, occurred_at), as one string. */
export function rowKey(row: EventRow): string {
  return `${row.tenantId}|${row.eventId}|${row.occurredAt.getTime()}`;
}

/**
 * Validates every event; invalid ones become dead letters (reason `invalid`, attempt 1). Valid rows are
 * de-duplicated by the events key, keeping the first: the database would ignore the repeats anyway,
 * but one statement must not propose the same key twice (an ON CONFLICT DO UPDATE refuses to touch a
 * row twice, and with DO NOTHING in-batch repeats would be counted as redeliveries).
 */
export interface PrepareOptions {
  /**
   * Whether the rows will be written by COPY: then the byte scanner (scanCopy.ts) writes each
   * common event's COPY line as it validates it, and only what it declines takes the fast or zod
   * path. Without it (small batches, whose chunks go through the upsert), rows are built as before.
   */
  copy?: boolean;
}

export function prepareBatch(raws: RawEvent[], opts: ValidateOptions, now: Date, prep: PrepareOptions = {}): PreparedBatch {
  const rows: EventRow[] = [];
  const invalid: DeadLetterRecord[] = [];
  // By event id first (a string the row has already, so no key is built per row); full keys only for
  // the rare ids that come with different tenants or times.
  const byId = new Map<string, EventRow>();
  let fullKeys: Set<string> | undefined;
  let duplicatesInBatch = 0;
  let writer: CopyWriter | undefined;
  if (prep.copy === true) {
    // Room for every line (the scanner's bound per body), so a batch's lines stay in one buffer.
    let bytes = 0;
    for (const raw of raws) bytes += 2 * raw.body.byteLength + 256;
    writer = new CopyWriter(Math.max(1024, bytes));
  }
  for (const raw of raws) {
    let row: EventRow | undefined = writer ? scanEvent(raw, opts, writer) : undefined;
    // Then the fast path, without validateFast's result object (one allocation per event less).
    if (row === undefined) {
      try {
        row = fastValidate(raw, opts);
      } catch {
        row = undefined;
      }
    }
    if (row === undefined) {
      const result = validateEvent(raw, opts);
      if (result.ok) {
        row = result.row;
      } else {
        const extra: { tenantId?: number; eventId?: string } = {};
        if (result.tenantId !== undefined) extra.tenantId = result.tenantId;
        if (result.eventId !== undefined) extra.eventId = result.eventId;
        invalid.push(deadLetterFromRaw(raw, 'invalid', result.error, now, extra));
        continue;
      }
    }
    const first = byId.get(row.eventId);
    if (first === undefined) byId.set(row.eventId, row);
    else {
      if (!fullKeys) fullKeys = new Set();
      fullKeys.add(rowKey(first));
      const key = rowKey(row);
      if (fullKeys.has(key)) {
        duplicatesInBatch++;
        continue;
      }
      fullKeys.add(key);
    }
    // A row the scanner declined gets its line too, so the batch's lines stay one run of bytes.
    if (writer !== undefined && !(row instanceof ScannedRow)) row = withCopyLine(row, opts, writer);
    rows.push(row);
  }
  return { rows, invalid, duplicatesInBatch };
}
