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
import type { HubsinkConfig } from '../config.js';
import type { Capabilities } from '../db/capabilities.js';
import { advanceFile, beginFile, finishFile, type FileKey } from '../db/importFiles.js';
import { rollUpUntilCaughtUp } from '../rollups/run.js';
import { TenantRegistry } from '../db/tenants.js';
import { describeError } from '../pipeline/classify.js';
import { noopTelemetry, type Telemetry } from '../telemetry/telemetry.js';
import type { ColumnTarget, CsvMapping } from './csvMap.js';
import { IMPORT_HUB, packItems, processBatch, zeroCounts, type BatchContext, type BatchResult, type Counts } from './importBatch.js';
import { readItems, type ImportItem } from './records.js';
import type { ImportSource } from './sources.js';
import { BatchWorkers } from './workerPool.js';
import { HubsinkError } from '../errors.js';
import { redactSecrets } from '../operator/terminal.js';

export { DAY_MS, IMPORT_HUB, importChunkSize, MAX_AGE_LIMIT_DAYS, maxAgeFor, type Counts } from './importBatch.js';

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
  /**
   * Worker threads that decode, validate and write batches (HUBSINK_IMPORT_WORKERS, --workers), each
   * on its own connections made from `workerConfig`. 1 (the default) does it all on this thread.
   */
  workers?: number;
  /** The whole parsed configuration, for the worker threads' own pools; required when workers > 1. */
  workerConfig?: HubsinkConfig;
  telemetry?: Telemetry;
  clock?: () => Date;
  /** Stops after the batch in progress (Ctrl-C). */
  signal?: AbortSignal;
  onFileStart?: (src: ImportSource, resumeFrom: number, alreadyDone: boolean) => void;
  onCsvMapping?: (src: ImportSource, m: CsvMapping) => void;
  /** Raw bytes read (for the bar) and lines done (written, or validated in a dry run) so far. */
  onProgress?: (p: { rawBytes: number; lines: number }) => void;
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
  /** Worker threads used (1: none, all on the main thread). */
  workers: number;
  stoppedBy?: string;
}

export class ImportStopped extends HubsinkError {
  readonly kind = 'failed';
  override name = 'ImportStopped';
}

export function failed(s: ImportSummary): boolean {
  return s.invalid + s.rejected + s.tooOld > 0 || s.stoppedBy !== undefined || s.files.some((f) => f.status === 'failed' || f.status === 'stopped');
}

/** A batch under way: its result, and how far the file is done once it and every batch before it are. */
interface InFlight {
  result: Promise<BatchResult>;
  through: { unit: number; byte: number };
  /** Raw bytes read when the batch was complete: the bar never runs ahead of recorded progress by more than the batches in flight. */
  rawBytes: number;
}

export async function runImport(sources: readonly ImportSource[], opts: ImportOptions): Promise<ImportSummary> {
  const clock = opts.clock ?? (() => new Date());
  const started = Date.now();
  const telemetry = opts.telemetry ?? noopTelemetry;
  const workerCount = opts.workers ?? 1;
  const write = opts.pool !== undefined && !opts.dryRun;
  if (write && !opts.caps) throw new Error('runImport: caps are required with a pool');
  const summary: ImportSummary = { dryRun: opts.dryRun, files: [], seconds: 0, linesPerSecond: 0, maxAgeNeeded: 0, rollupRuns: 0, workers: workerCount, ...zeroCounts() };
  const ctx: BatchContext = {
    config: opts.config,
    maxAgeDays: opts.maxAgeDays,
    batchSize: opts.batchSize,
    tenants: new TenantRegistry(),
    ...(write && opts.pool ? { pool: opts.pool } : {}),
    ...(opts.caps ? { caps: opts.caps } : {}),
  };
  let workers: BatchWorkers | undefined;
  if (workerCount > 1) {
    if (!opts.workerConfig) throw new Error('runImport: workerConfig is required with workers > 1');
    workers = new BatchWorkers(workerCount, { config: opts.workerConfig, ...(write && opts.caps ? { caps: opts.caps } : {}), maxAgeDays: opts.maxAgeDays, batchSize: opts.batchSize });
  }
  // With threads, enough batches in flight to keep each busy while the oldest one is recorded; on
  // this thread, one batch is written while the next is read and validated.
  const window = workers ? 2 * workerCount : 1;
  let rawBytes = 0;
  let linesDone = 0;
  const schema = opts.config.schema;

  try {
    for (const src of sources) {
      if (opts.signal?.aborted) break;
      const key: FileKey = { source: src.name, size: src.size, modifiedAt: src.modifiedAt };
      const file: FileSummary = { source: src.name, format: `${src.format}${src.gzip ? '+gzip' : ''}`, status: opts.dryRun ? 'validated' : 'imported', resumedAfter: 0, oldest: null, newest: null, partitionsCreated: [], ...zeroCounts() };
      summary.files.push(file);
      let skipUnits = 0;
      let startByte = 0;
      if (write && opts.pool) {
        const p = await beginFile(opts.pool, schema, key, src.format);
        if (p.finishedAt) {
          file.status = 'already imported';
          opts.onFileStart?.(src, p.units, true);
          rawBytes += src.size;
          opts.onProgress?.({ rawBytes, lines: linesDone });
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
      let readBytes = rawBytes;

      const inFlight: InFlight[] = [];
      const start = (items: ImportItem[], through: { unit: number; byte: number }): void => {
        const now = clock();
        const result = workers ? workers.run(src.name, now.getTime(), packItems(items)) : processBatch(ctx, src.name, items, now);
        // Awaited in order by record(); a failure meanwhile must not count as unhandled.
        result.catch(() => undefined);
        inFlight.push({ result, through, rawBytes: readBytes });
      };
      /** The oldest batch in flight, once done: its counts added and the file's progress moved past it. */
      const record = async (): Promise<void> => {
        const next = inFlight.shift();
        if (!next) return;
        const r = await next.result;
        summary.maxAgeNeeded = Math.max(summary.maxAgeNeeded, r.maxAgeNeeded);
        if (!Number.isNaN(r.oldest) && (file.oldest === null || r.oldest < Date.parse(file.oldest))) file.oldest = new Date(r.oldest).toISOString();
        if (!Number.isNaN(r.newest) && (file.newest === null || r.newest > Date.parse(file.newest))) file.newest = new Date(r.newest).toISOString();
        file.partitionsCreated.push(...r.partitionsCreated);
        if (r.stopped !== undefined) throw new ImportStopped(r.stopped);
        if (write && opts.pool && opts.caps) {
          const pool = opts.pool;
          await advanceFile(pool, schema, key, { units: next.through.unit, bytes: next.through.byte }, r.counts);
          const c = r.counts;
          telemetry.ingestBatch(IMPORT_HUB, { received: c.lines, inserted: c.inserted, duplicates: c.duplicates, deadLettered: { invalid: c.invalid, rejected: c.rejected, transient: 0 }, latencyMs: 0 });
          if (opts.rollup) {
            await rollUpUntilCaughtUp(pool, schema, {
              caps: opts.caps,
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
        }
        add(file, r.counts);
        linesDone += r.counts.lines;
        opts.onProgress?.({ rawBytes: next.rawBytes, lines: linesDone });
      };

      let batch: ImportItem[] = [];
      let lastUnit = skipUnits;
      let lastByte = startByte;
      try {
        for await (const item of readItems(src, {
          skipUnits,
          startByte,
          csvMaps: opts.csvMaps,
          maxLineBytes: opts.config.maxBodyBytes,
          maxGzipRatio: opts.config.importMaxGzipRatio,
          onRawBytes: (n) => (readBytes += n),
          onCsvMapping: (m) => opts.onCsvMapping?.(src, m),
        })) {
          batch.push(item);
          lastUnit = Math.max(lastUnit, item.unit);
          lastByte = Math.max(lastByte, item.endByte);
          if (batch.length >= opts.batchSize) {
            if (inFlight.length >= window) await record();
            start(batch, { unit: lastUnit, byte: lastByte });
            batch = [];
            if (opts.signal?.aborted) break;
          }
        }
        if (batch.length > 0 && !opts.signal?.aborted) {
          if (inFlight.length >= window) await record();
          start(batch, { unit: lastUnit, byte: lastByte });
        }
        while (inFlight.length > 0) await record();
        if (opts.signal?.aborted) {
          file.status = 'stopped';
          summary.stoppedBy = typeof opts.signal.reason === 'string' ? opts.signal.reason : 'interrupted';
          rawBytes = readBytes;
          break;
        }
        if (write && opts.pool) await finishFile(opts.pool, schema, key);
        rawBytes = fileRawStart + src.size;
        opts.onProgress?.({ rawBytes, lines: linesDone });
      } catch (err) {
        // Batches after the failed one may be written (harmless: a resume writes them again), never recorded.
        await Promise.allSettled(inFlight.splice(0).map((f) => f.result));
        file.status = err instanceof ImportStopped ? 'stopped' : 'failed';
        // Errors of the storage SDK quote the request URL, SAS included: printed and returned redacted.
        file.error = redactSecrets(describeError(err));
        summary.stoppedBy = file.error;
        break;
      }
    }
  } finally {
    await workers?.close();
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
