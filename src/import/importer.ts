/**
 * `hubsink import`: files of events → `events`, with the guarantees of the live path. Each batch of
 * lines is validated by the ingest validator (prepareBatch), written by the ingest write path
 * (writeEvents: idempotent on the events key), and its invalid or refused lines are parked in
 * `dead_letters` with the file and line as their source. Then the file's position in
 * `import_files` moves past the batch, so an interrupted import resumes after the last batch it
 * wrote; repeating that batch is harmless (the events key, and the dead_letters source key).
 *
 * Identity: a line without `eventId` gets the ingest rule's id, a UUIDv5 of its exact bytes
 * (NDJSON) or of the body built from the record (CSV). So identical lines are one event wherever
 * they are (another file, a re-export, the same body sent live), and a line changed in any byte
 * is a new event.
 *
 * History: events may be up to `maxAgeDays` old (the partitions they need are created); an older
 * one stops the import before its batch is written, with a message saying which --max-age would
 * take it, so nothing is parked that a second run could not import.
 */
import type pg from 'pg';
import { DEFAULT_COPY_MIN_ROWS, type HubsinkConfig } from '../config.js';
import type { Capabilities } from '../db/capabilities.js';
import { parkDeadLetters } from '../db/deadLetterParking.js';
import { writeEvents, writeOptions } from '../db/events.js';
import { advanceFile, beginFile, finishFile, type FileKey } from '../db/importFiles.js';
import { rollUpUntilCaughtUp } from '../rollups/run.js';
import { TenantRegistry } from '../db/tenants.js';
import { prepareBatch } from '../pipeline/batch.js';
import { describeError } from '../pipeline/classify.js';
import { deadLetterFromRow } from '../pipeline/deadletter.js';
import type { DeadLetterRecord, RawEvent } from '../pipeline/types.js';
import { noopTelemetry, type Telemetry } from '../telemetry/telemetry.js';
import type { ColumnTarget, CsvMapping } from './csvMap.js';
import { readItems, type ImportItem } from './records.js';
import type { ImportSource } from './sources.js';
import { HubsinkError } from '../errors.js';
import { redactSecrets } from '../operator/terminal.js';

/** The source hub of imported events and their dead letters (dlq list shows import/<file>/<line>). */
export const IMPORT_HUB = 'import';
/** The oldest history import accepts at all (ten years: the day rollups' default retention). */
export const MAX_AGE_LIMIT_DAYS = 3650;
const DAY_MS = 86_400_000;
const IMPORTED_AT = new Date(0);
/** Most rollup runs after one batch: an import of history folds in large windows before the next batch. */
const ROLLUP_RUNS_PER_BATCH = 100;

export interface ImportOptions {
  /** Absent for a dry run. */
  pool?: pg.Pool;
  caps?: Capabilities;
  config: Pick<HubsinkConfig, 'schema' | 'partitionsAheadDays' | 'maxBodyBytes' | 'importMaxGzipRatio' | 'transientRetryMs' | 'upsertChunkSize' | 'upsertChunkSet' | 'rollupMaxWindowRows' | 'copyMinRows'> &
    Partial<Pick<HubsinkConfig, 'rollupDimensions'>>;
  maxAgeDays: number;
  batchSize: number;
  dryRun: boolean;
  /** Fold imported events into the rollups after every batch. */
  rollup: boolean;
  csvMaps: ReadonlyMap<string, ColumnTarget>;
  telemetry?: Telemetry;
  clock?: () => Date;
  /** Stops after the batch in progress (Ctrl-C). */
  signal?: AbortSignal;
  onFileStart?: (src: ImportSource, resumeFrom: number, alreadyDone: boolean) => void;
  onCsvMapping?: (src: ImportSource, m: CsvMapping) => void;
  /** Raw bytes read (for the bar) and lines handled so far. */
  onProgress?: (p: { rawBytes: number; lines: number }) => void;
}

export interface Counts {
  lines: number;
  inserted: number;
  duplicates: number;
  invalid: number;
  rejected: number;
  /** Dry run only: valid events older than --max-age (a real run stops at the first). */
  tooOld: number;
}

export interface FileSummary extends Counts {
  source: string;
  format: string;
  status: 'imported' | 'already imported' | 'validated' | 'stopped' | 'failed';
  /** Lines skipped because an earlier run had done them. */
  resumedAfter: number;
  oldest: string | null;
  newest: string | null;
  partitionsCreated: string[];
  error?: string;
}

export interface ImportSummary extends Counts {
  dryRun: boolean;
  files: FileSummary[];
  seconds: number;
  linesPerSecond: number;
  /** Days --max-age needs to take every valid event seen. */
  maxAgeNeeded: number;
  rollupRuns: number;
  stoppedBy?: string;
}

/** Pure: the smallest whole --max-age (days) that accepts an event this old (ms). */
export function maxAgeFor(ageMs: number): number {
  return Math.max(0, Math.floor(ageMs / DAY_MS) + 1);
}

export class ImportStopped extends HubsinkError {
  readonly kind = 'failed';
  override name = 'ImportStopped';
}

const zero = (): Counts => ({ lines: 0, inserted: 0, duplicates: 0, invalid: 0, rejected: 0, tooOld: 0 });

function rawOf(src: ImportSource, item: ImportItem): RawEvent {
  return {
    body: item.body,
    properties: {},
    // File and line are the coordinates; the time is fixed (the epoch), neither the import's nor the
    // file's, so a line parked again by a later run, even of a touched file, is the same dead letter.
    source: { hub: IMPORT_HUB, consumerGroup: IMPORT_HUB, partitionId: src.name, sequenceNumber: item.line, offset: String(item.endByte), enqueuedTime: IMPORTED_AT },
  };
}

export function failed(s: ImportSummary): boolean {
  return s.invalid + s.rejected + s.tooOld > 0 || s.stoppedBy !== undefined || s.files.some((f) => f.status === 'failed' || f.status === 'stopped');
}

/**
 * Rows per write statement of the import. On Citus a COPY pays per shard it touches (a connection
 * and a commit on each, 32 shards by default), so 1,000 rows spread over every shard pay that cost
 * five times per batch of 5,000: there each batch is one COPY, unless HUBSINK_UPSERT_CHUNK says
 * otherwise (docs/bench.md, "Batch for the cluster": 2.4 times the lines per second on a
 * coordinator with two workers). Plain PostgreSQL keeps the setting: its COPY costs per row.
 */
export function importChunkSize(config: Pick<HubsinkConfig, 'upsertChunkSize' | 'upsertChunkSet'>, caps: Pick<Capabilities, 'citus'>, batchSize: number): number {
  if (!caps.citus || config.upsertChunkSet === true) return config.upsertChunkSize;
  return Math.max(config.upsertChunkSize, batchSize);
}

export async function runImport(sources: readonly ImportSource[], opts: ImportOptions): Promise<ImportSummary> {
  const clock = opts.clock ?? (() => new Date());
  const started = Date.now();
  const telemetry = opts.telemetry ?? noopTelemetry;
  const tenants = new TenantRegistry();
  const summary: ImportSummary = { dryRun: opts.dryRun, files: [], seconds: 0, linesPerSecond: 0, maxAgeNeeded: 0, rollupRuns: 0, ...zero() };
  let rawBytes = 0;
  let linesSeen = 0;
  const schema = opts.config.schema;

  for (const src of sources) {
    if (opts.signal?.aborted) break;
    const key: FileKey = { source: src.name, size: src.size, modifiedAt: src.modifiedAt };
    const file: FileSummary = { source: src.name, format: `${src.format}${src.gzip ? '+gzip' : ''}`, status: opts.dryRun ? 'validated' : 'imported', resumedAfter: 0, oldest: null, newest: null, partitionsCreated: [], ...zero() };
    summary.files.push(file);
    let skipUnits = 0;
    let startByte = 0;
    if (opts.pool && !opts.dryRun) {
      const p = await beginFile(opts.pool, schema, key, src.format);
      if (p.finishedAt) {
        file.status = 'already imported';
        opts.onFileStart?.(src, p.units, true);
        rawBytes += src.size;
        opts.onProgress?.({ rawBytes, lines: linesSeen });
        continue;
      }
      skipUnits = p.units;
      startByte = p.bytes;
      file.resumedAfter = p.units;
    }
    opts.onFileStart?.(src, skipUnits, false);
    const fileRawStart = rawBytes;
    // Seeking skips the bytes already done; they still count as done on the bar.
    if (!src.gzip && src.format === 'ndjson' && skipUnits > 0) rawBytes += startByte;

    let batch: ImportItem[] = [];
    let lastUnit = skipUnits;
    let lastByte = startByte;
    // One batch is written while the next is read and validated; their progress is recorded in order.
    let writing: Promise<void> | undefined;
    let writeError: Error | undefined;

    const handle = async (items: ImportItem[], through: { unit: number; byte: number }): Promise<void> => {
      const now = clock();
      const cutoff = now.getTime() - opts.maxAgeDays * DAY_MS;
      const readable = items.filter((i) => i.error === undefined);
      // Batches that will be written by COPY get their COPY text written while they are validated (scanCopy.ts).
      const copy = opts.pool !== undefined && !opts.dryRun && readable.length >= (opts.config.copyMinRows ?? DEFAULT_COPY_MIN_ROWS);
      const prepared = prepareBatch(readable.map((i) => rawOf(src, i)), { now, retentionDays: MAX_AGE_LIMIT_DAYS, aheadDays: opts.config.partitionsAheadDays, maxBodyBytes: opts.config.maxBodyBytes }, now, { copy });
      const unreadable: DeadLetterRecord[] = items
        .filter((i) => i.error !== undefined)
        .map((i) => ({ reason: 'invalid', error: i.error ?? '', body: i.body, properties: {}, source: rawOf(src, i).source, attempts: 1, firstFailureAt: now, lastFailureAt: now }));
      let rows = prepared.rows;
      for (const r of rows) {
        const t = r.occurredAt.getTime();
        summary.maxAgeNeeded = Math.max(summary.maxAgeNeeded, maxAgeFor(now.getTime() - t));
        if (file.oldest === null || t < Date.parse(file.oldest)) file.oldest = r.occurredAt.toISOString();
        if (file.newest === null || t > Date.parse(file.newest)) file.newest = r.occurredAt.toISOString();
      }
      const tooOld = rows.filter((r) => r.occurredAt.getTime() < cutoff);
      const counts = { lines: items.length, inserted: 0, duplicates: prepared.duplicatesInBatch, invalid: prepared.invalid.length + unreadable.length, rejected: 0, tooOld: 0 };
      if (tooOld.length > 0) {
        if (!opts.dryRun) {
          const first = tooOld[0];
          const age = now.getTime() - (first?.occurredAt.getTime() ?? 0);
          throw new ImportStopped(
            `${src.name} line ${first?.raw.source.sequenceNumber ?? '?'}: occurredAt ${first?.occurredAt.toISOString() ?? '?'} is ${(age / DAY_MS).toFixed(1)} days old, beyond --max-age ${opts.maxAgeDays} ` +
              `(events before ${new Date(cutoff).toISOString()} are refused). Nothing of this batch was written; run again with --max-age ${Math.min(MAX_AGE_LIMIT_DAYS, maxAgeFor(age))} or more ` +
              `(at most ${MAX_AGE_LIMIT_DAYS}) to import it: the import resumes here.`,
          );
        }
        counts.tooOld = tooOld.length;
        rows = rows.filter((r) => r.occurredAt.getTime() >= cutoff);
      }
      if (!opts.pool || opts.dryRun) {
        add(file, counts);
        return;
      }
      const pool = opts.pool;
      const caps = opts.caps;
      if (!caps) throw new Error('runImport: caps are required with a pool');
      // Days of history outside the maintained window get their partitions when a row first needs one.
      const partitionWindow = { from: new Date(cutoff), to: new Date(now.getTime() + opts.config.partitionsAheadDays * DAY_MS) };
      const outcome = await writeEvents(pool, schema, rows, { ...writeOptions(opts.config, { tenants, partitionWindow }), chunkSize: importChunkSize(opts.config, caps, opts.batchSize) });
      file.partitionsCreated.push(...outcome.createdPartitions);
      if (outcome.transient) {
        throw new ImportStopped(`the database failed for ${opts.config.transientRetryMs} ms (${outcome.transient.error}); stopped before ${src.name} line ${items[0]?.line ?? '?'}: run again to resume there`);
      }
      const rejected = outcome.rejected.map((r) => deadLetterFromRow(r.row, 'rejected', r.error, now));
      const park = [...prepared.invalid, ...unreadable, ...rejected];
      if (park.length > 0) await parkDeadLetters(pool, schema, park);
      counts.inserted = outcome.inserted;
      counts.duplicates += outcome.duplicates;
      counts.rejected = rejected.length;
      await advanceFile(pool, schema, key, { units: through.unit, bytes: through.byte }, counts);
      telemetry.ingestBatch(IMPORT_HUB, { received: items.length, inserted: counts.inserted, duplicates: counts.duplicates, deadLettered: { invalid: counts.invalid, rejected: counts.rejected, transient: 0 }, latencyMs: 0 });
      if (opts.rollup) {
        await rollUpUntilCaughtUp(pool, schema, {
          caps,
          maxWindowRows: opts.config.rollupMaxWindowRows,
          now: clock,
          ...(opts.config.rollupDimensions ? { dimensions: opts.config.rollupDimensions } : {}),
          maxRuns: ROLLUP_RUNS_PER_BATCH,
          onRun: (runs) => {
            summary.rollupRuns++;
            telemetry.rollupRuns(runs);
          },
        });
      }
      add(file, counts);
    };
    const submit = async (items: ImportItem[], through: { unit: number; byte: number }): Promise<void> => {
      await writing;
      if (writeError !== undefined) throw writeError;
      writing = handle(items, through).then(
        () => opts.onProgress?.({ rawBytes, lines: linesSeen }),
        (err: unknown) => {
          writeError = err instanceof Error ? err : new Error(String(err));
        },
      );
    };

    try {
      for await (const item of readItems(src, {
        skipUnits,
        startByte,
        csvMaps: opts.csvMaps,
        maxLineBytes: opts.config.maxBodyBytes,
        maxGzipRatio: opts.config.importMaxGzipRatio,
        onRawBytes: (n) => (rawBytes += n),
        onCsvMapping: (m) => opts.onCsvMapping?.(src, m),
      })) {
        batch.push(item);
        lastUnit = Math.max(lastUnit, item.unit);
        lastByte = Math.max(lastByte, item.endByte);
        linesSeen++;
        if (batch.length >= opts.batchSize) {
          await submit(batch, { unit: lastUnit, byte: lastByte });
          batch = [];
          if (opts.signal?.aborted) break;
        }
      }
      if (batch.length > 0 && !opts.signal?.aborted) await submit(batch, { unit: lastUnit, byte: lastByte });
      await writing;
      if (writeError !== undefined) throw writeError;
      if (opts.signal?.aborted) {
        file.status = 'stopped';
        summary.stoppedBy = typeof opts.signal.reason === 'string' ? opts.signal.reason : 'interrupted';
        break;
      }
      if (opts.pool && !opts.dryRun) await finishFile(opts.pool, schema, key);
      rawBytes = fileRawStart + src.size;
      opts.onProgress?.({ rawBytes, lines: linesSeen });
    } catch (err) {
      await writing;
      file.status = err instanceof ImportStopped ? 'stopped' : 'failed';
      // Errors of the storage SDK quote the request URL, SAS included: printed and returned redacted.
      file.error = redactSecrets(describeError(err));
      summary.stoppedBy = file.error;
      break;
    }
  }
  for (const f of summary.files) add(summary, f);
  summary.seconds = (Date.now() - started) / 1000;
  summary.linesPerSecond = summary.seconds > 0 ? summary.lines / summary.seconds : 0;
  return summary;
}

function add(to: Counts, c: Counts): void {
  to.lines += c.lines;
  to.inserted += c.inserted;
  to.duplicates += c.duplicates;
  to.invalid += c.invalid;
  to.rejected += c.rejected;
  to.tooOld += c.tooOld;
}
