/**
 * `hubsink import <path|glob|blob-url> …`: backfill history from NDJSON or CSV files (optionally
 * gzip), local or in Azure Blob Storage, through the ingest validation and write path. Progress on
 * stderr (a bar with rate and ETA on a terminal), the summary on stdout (`--json` for a script).
 * Exit codes: 0 every line is in `events` (or was already), 1 some lines were parked or the import
 * stopped (run it again to resume), 2 bad arguments or settings.
 */
import cliProgress from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig, MAX_IMPORT_WORKERS, requireDatabase } from '../config.js';
import { detectCapabilities } from '../db/capabilities.js';
import { ident } from '../db/ident.js';
import { createPool } from '../db/pool.js';
import { configureSession } from '../db/session.js';
import { parseMaps } from '../import/csvMap.js';
import { failed, MAX_AGE_LIMIT_DAYS, runImport, type ImportSummary } from '../import/importer.js';
import { checkSource } from '../import/preflight.js';
import { resolveSources, type ImportFormat, type ImportSource } from '../import/sources.js';
import { escapeControls } from '../operator/terminal.js';
import { finishWith, parsePositiveInt, UsageError } from './program.js';

interface ImportCliOptions {
  format?: ImportFormat;
  map: string[];
  maxAge?: number;
  batchSize: number;
  workers?: number;
  rollup?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

function parseFormat(v: string): ImportFormat {
  if (v !== 'ndjson' && v !== 'csv') throw new InvalidArgumentError('expected ndjson or csv');
  return v;
}

function parseMaxAge(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`expected a whole number of days from 0 to ${MAX_AGE_LIMIT_DAYS}`);
  const n = Number(v);
  if (n > MAX_AGE_LIMIT_DAYS) throw new InvalidArgumentError(`at most ${MAX_AGE_LIMIT_DAYS} days (ten years) of history can be imported`);
  return n;
}

/** As HUBSINK_IMPORT_WORKERS: each thread holds connections, so a typo of 1000 is refused, not obeyed. */
function parseWorkers(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_IMPORT_WORKERS) throw new InvalidArgumentError(`expected a whole number from 1 to ${MAX_IMPORT_WORKERS}`);
  return Number(v);
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

const n0 = (x: number): string => Math.round(x).toLocaleString('en-US');

function oldestOf(s: ImportSummary): string | undefined {
  return s.files.map((f) => f.oldest).filter((o): o is string => o !== null).sort()[0];
}

/** Pure: the human summary. File names, columns and errors come from the files: escaped. */
export function formatSummary(s: ImportSummary): string {
  const lines = [
    `${s.dryRun ? 'validated' : 'imported'} ${n0(s.lines)} lines from ${s.files.length} file(s) in ${s.seconds.toFixed(1)} s (${n0(s.linesPerSecond)} lines/s)`,
    ...(s.dryRun
      ? [`  valid       ${n0(s.lines - s.invalid - s.tooOld)} (repeats within a batch: ${n0(s.duplicates)})`]
      : [`  inserted    ${n0(s.inserted)}`, `  duplicates  ${n0(s.duplicates)} (already in events, or repeated in the files)`]),
    `  invalid     ${n0(s.invalid)}${s.invalid > 0 && !s.dryRun ? ' (parked: hubsink dlq list --reason invalid)' : ''}`,
    ...(s.rejected > 0 ? [`  rejected    ${n0(s.rejected)} (parked: hubsink dlq list --reason rejected)`] : []),
    ...(s.dryRun && s.tooOld > 0 ? [`  too old     ${n0(s.tooOld)} (need --max-age ${s.maxAgeNeeded})`] : []),
    ...(oldestOf(s) ? [`  oldest      ${oldestOf(s) ?? ''} (needs --max-age ${s.maxAgeNeeded})`] : []),
    ...(s.rollupRuns > 0 ? [`  rollup runs ${s.rollupRuns}`] : []),
  ];
  for (const f of s.files) {
    const extra = [
      f.resumedAfter > 0 ? `resumed after line ${f.resumedAfter}` : '',
      f.partitionsCreated.length > 0 ? `created ${f.partitionsCreated.length} partition(s)` : '',
      f.oldest ? `${f.oldest.slice(0, 10)}..${(f.newest ?? '').slice(0, 10)}` : '',
    ].filter(Boolean);
    const counts = s.dryRun ? `${n0(f.invalid)} invalid, ${n0(f.tooOld)} too old` : `${n0(f.inserted)} inserted, ${n0(f.invalid + f.rejected)} parked`;
    lines.push(`  ${f.status.padEnd(16)} ${escapeControls(f.source)}: ${n0(f.lines)} lines, ${counts}${extra.length ? `; ${extra.join(', ')}` : ''}`);
    if (f.error) lines.push(`      ${escapeControls(f.error)}`);
  }
  if (s.stoppedBy && !s.files.some((f) => f.error === s.stoppedBy)) lines.push(`stopped: ${escapeControls(s.stoppedBy)}`);
  return `${lines.join('\n')}\n`;
}

function progress(sources: readonly ImportSource[]): { update: (p: { rawBytes: number; lines: number }) => void; file: (name: string) => void; stop: () => void } {
  const total = sources.reduce((n, s) => n + s.size, 0);
  const started = Date.now();
  let current = '';
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: 'importing [{bar}] {percentage}% | {mib}/{totalMib} MiB | {lines} lines | {rate} lines/s | ETA {eta_formatted} | {file}',
        hideCursor: true,
        fps: 5,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(Math.max(1, total), 0, { mib: '0', totalMib: (total / 2 ** 20).toFixed(1), lines: '0', rate: '0', file: '' });
    return {
      update: (p) =>
        bar.update(Math.min(total, p.rawBytes), {
          mib: (p.rawBytes / 2 ** 20).toFixed(1),
          lines: n0(p.lines),
          rate: n0((p.lines * 1000) / Math.max(1, Date.now() - started)),
          file: current,
        }),
      file: (raw) => {
        const name = escapeControls(raw);
        current = name.length > 40 ? `…${name.slice(-39)}` : name;
      },
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update: (p) => {
      if (Date.now() - last < 5000) return;
      last = Date.now();
      process.stderr.write(`import: ${n0(p.lines)} lines, ${((100 * p.rawBytes) / Math.max(1, total)).toFixed(0)}% of ${(total / 2 ** 20).toFixed(1)} MiB\n`);
    },
    file: (name) => process.stderr.write(`import: ${escapeControls(name)}\n`),
    stop: () => undefined,
  };
}

export function register(program: Command): void {
  program
    .command('import')
    .description('backfill events from NDJSON or CSV files (optionally .gz), local or in Azure Blob Storage; resumable, idempotent')
    .argument('<sources...>', 'files, directories, globs (quoted: "data/**/*.ndjson.gz"), blob URLs (…/container/prefix, with a SAS or the AzureWebJobsStorage account) or blob:container/prefix')
    .option('--format <format>', 'ndjson or csv, for names without a known extension (.ndjson .jsonl .json .csv, +.gz)', parseFormat)
    .option('--map <column=field>', 'CSV: map a column to an event field, to properties.<key>, or drop it (column=); repeatable', collect, [])
    .option('--max-age <days>', `oldest events accepted, in days (default HUBSINK_RETENTION_DAYS; at most ${MAX_AGE_LIMIT_DAYS}); partitions for older days are created`, parseMaxAge)
    .option('--batch-size <n>', 'lines per batch (one write, one progress step)', parsePositiveInt, 5000)
    .option('--workers <n>', 'worker threads that decode, validate and write batches, each on its own connections: the cores, where the database is on other machines (default HUBSINK_IMPORT_WORKERS, else 1: all on one thread)', parseWorkers)
    .option('--rollup', 'fold imported events into the rollups after every batch, instead of leaving them to the rollup timer')
    .option('--dry-run', 'validate only: read and check every line, write nothing (no database needed)')
    .option('--json', 'print the summary as JSON')
    .addHelpText(
      'after',
      '\nLines without eventId get a UUIDv5 of their bytes (CSV: of the event built from the record): identical lines are one event.\n' +
        'Invalid lines are parked in dead_letters with the file and line (hubsink dlq list). An interrupted import resumes where it stopped.\n' +
        'Exit codes: 0 all imported, 1 lines parked or the import stopped (run it again to resume), 2 bad arguments or settings.\n' +
        'Progress is recorded in file order whatever the threads finish first, so a killed import resumes exactly.\n' +
        '\nSettings (environment): DATABASE_URL (or PG*), HUBSINK_SCHEMA, HUBSINK_RETENTION_DAYS, HUBSINK_IMPORT_WORKERS, AzureWebJobsStorage (blob sources without a SAS).',
    )
    .action(async (args: string[], opts: ImportCliOptions) => {
      process.stdout.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EPIPE') throw err;
      });
      const cfg = loadConfig();
      const maps = parseMaps(opts.map);
      const maxAgeDays = opts.maxAge ?? cfg.retentionDays;
      if (maxAgeDays > MAX_AGE_LIMIT_DAYS) throw new UsageError(`HUBSINK_RETENTION_DAYS ${maxAgeDays} is above the import limit of ${MAX_AGE_LIMIT_DAYS} days: give --max-age`);
      const sources = await resolveSources(args, {
        ...(cfg.storage ? { storage: cfg.storage } : {}),
        ...(opts.format ? { format: opts.format } : {}),
        warn: (message) => process.stderr.write(`warning: ${escapeControls(message)}\n`),
      });
      if (!opts.dryRun) requireDatabase(cfg);
      // Before any row: a file that cannot yield one valid event would park every row.
      for (const src of sources) await checkSource(src, maps, { maxLineBytes: cfg.maxBodyBytes, maxGzipRatio: cfg.importMaxGzipRatio });
      if (maxAgeDays > cfg.retentionDays && !opts.dryRun) {
        process.stderr.write(
          `note: events older than HUBSINK_RETENTION_DAYS (${cfg.retentionDays}) get partitions now, but the daily partition maintenance drops them from events ` +
            `once the rollups have them; the rollups keep them (minute ${cfg.rollupRetentionDays.minute}, hour ${cfg.rollupRetentionDays.hour}, day ${cfg.rollupRetentionDays.day} days). ` +
            'Raise HUBSINK_RETENTION_DAYS to keep raw history.\n',
        );
      }

      const pool = opts.dryRun ? undefined : await createPool(cfg);
      const stop = new AbortController();
      let signals = 0;
      const onSignal = (name: string) => (): void => {
        signals++;
        if (signals > 1) process.exit(130);
        process.stderr.write(`\n${name}: stopping after the batch in progress (again to quit at once; the import resumes from its last batch)\n`);
        stop.abort(name);
      };
      const onInt = onSignal('SIGINT');
      const onTerm = onSignal('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
      const bar = progress(sources);
      try {
        const caps = pool ? await detectCapabilities(pool) : undefined;
        if (pool && caps) {
          configureSession(pool, caps, { citusCachedConnsPerWorker: cfg.citusCachedConnsPerWorker });
          const found = await pool.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`${ident(cfg.schema)}.import_files`]);
          if (!found.rows[0]?.t) throw new UsageError(`table ${cfg.schema}.import_files does not exist: run \`hubsink migrate\` first (HUBSINK_SCHEMA=${cfg.schema})`);
        }
        const summary = await runImport(sources, {
          ...(pool ? { pool } : {}),
          ...(caps ? { caps } : {}),
          config: cfg,
          maxAgeDays,
          batchSize: opts.batchSize,
          workers: opts.workers ?? cfg.importWorkers,
          workerConfig: cfg,
          dryRun: opts.dryRun === true,
          rollup: opts.rollup === true,
          csvMaps: maps,
          signal: stop.signal,
          onFileStart: (src, resumeFrom, done) => {
            bar.file(src.name);
            if (done) process.stderr.write(`${escapeControls(src.name)}: already imported, skipped\n`);
            else if (resumeFrom > 0) process.stderr.write(`${escapeControls(src.name)}: resuming after line ${resumeFrom}\n`);
          },
          onCsvMapping: (src, m) => {
            if (m.unmapped.length > 0) process.stderr.write(`${escapeControls(src.name)}: column(s) ${escapeControls(m.unmapped.join(', '))} go to properties (map them with --map column=field)\n`);
          },
          onProgress: (p) => bar.update(p),
        });
        bar.stop();
        process.stdout.write(opts.json ? `${JSON.stringify(summary)}\n` : formatSummary(summary));
        if (failed(summary)) finishWith('failed');
      } finally {
        bar.stop();
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        await pool?.end();
      }
    });
}
