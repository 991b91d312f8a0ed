/**
 * The reference the ingest benchmark compares against: COPY ... FROM STDIN of the same rows into
 * the same table, the fastest way PostgreSQL loads rows. pg-copy-streams is not a dependency, so this
 * speaks the protocol through pg's Submittable hook (the client hands us the connection when the
 * server asks for COPY data) and writes COPY's text format itself.
 */
import type pg from 'pg';
import type { EventRow } from '../src/pipeline/types.js';
import { ident } from '../src/db/ident.js';

const COLUMNS = [
  'tenant_id',
  'event_id',
  'occurred_at',
  'type',
  'session_id',
  'user_id',
  'device_id',
  'url',
  'referrer',
  'campaign_id',
  'country',
  'browser',
  'revenue',
  'properties',
  'source_partition',
  'source_sequence',
  'source_offset',
  'source_enqueued_at',
] as const;

/** COPY text format: backslash escapes, \N for NULL. */
function field(v: string | number | null): string {
  if (v === null) return '\\N';
  if (typeof v === 'number') return String(v);
  return v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}

export function copyText(rows: readonly EventRow[]): string {
  let out = '';
  for (const r of rows) {
    const s = r.raw.source;
    out +=
      [
        r.tenantId,
        r.eventId,
        r.occurredAt.toISOString(),
        r.type,
        r.sessionId,
        r.userId,
        r.deviceId,
        r.url,
        r.referrer,
        r.campaignId,
        r.country,
        r.browser,
        r.revenue === null ? null : String(r.revenue),
        r.properties === null ? null : JSON.stringify(r.properties),
        s.partitionId,
        s.sequenceNumber,
        s.offset,
        s.enqueuedTime.toISOString(),
      ]
        .map(field)
        .join('\t') + '\n';
  }
  return out;
}

export function copySql(schema: string): string {
  return `COPY ${ident(schema)}.events (${COLUMNS.join(', ')}) FROM STDIN`;
}

/** The connection methods pg hands to a Submittable (not in @types/pg). */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

/** One COPY FROM STDIN as a pg Submittable; resolves with the rows the server reports. */
class CopyIn {
  private rows = 0;
  private error: Error | undefined;
  constructor(
    private readonly text: string,
    private readonly data: Buffer,
    private readonly done: (err: Error | undefined, rows: number) => void,
  ) {}
  submit(connection: CopyConnection): void {
    connection.query(this.text);
  }
  handleCopyInResponse(connection: CopyConnection): void {
    connection.sendCopyFromChunk(this.data);
    connection.endCopyFrom();
  }
  handleCommandComplete(msg: { text?: string }): void {
    const m = /COPY (\d+)/.exec(msg.text ?? '');
    this.rows = m ? Number(m[1]) : 0;
  }
  handleError(err: Error): void {
    this.error = err;
    this.done(err, 0);
  }
  handleReadyForQuery(): void {
    if (!this.error) this.done(undefined, this.rows);
  }
  // Not expected for COPY FROM; present because the client may call them.
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

export function copyRows(client: pg.PoolClient, schema: string, rows: readonly EventRow[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const q = new CopyIn(copySql(schema), Buffer.from(copyText(rows), 'utf8'), (err, n) => (err ? reject(err) : resolve(n)));
    (client as unknown as { query(s: CopyIn): void }).query(q);
  });
}
