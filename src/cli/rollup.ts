/**
 * `hubsink rollup`: one incremental step of every rollup plus retention (what the timer does each
 * minute), `--status` for watermarks and lag, and `rollup rebuild` to recompute a tenant's buckets
 * from raw events. Data goes to stdout (tables, or JSON with --json); progress to stderr.
 */
import type { Command } from 'commander';
import { IDENTIFIER, loadConfig, type HubsinkConfig } from '../config.js';
import { detectCapabilities } from '../db/capabilities.js';
import { createPool } from '../db/pool.js';
import {
  describeCycle,
  rebuildProblems,
  rebuildRollups,
  rollupCycle,
  rollupStatus,
  rollUpUntilCaughtUp,
  type RollupRunResult,
  type RollupStatus,
} from '../rollups/run.js';
import { describeShortfall } from '../rollups/rebuildGuard.js';
import { dropLegacy, migrateHistory } from '../rollups/history.js';
import { retentionCutoff } from '../rollups/definitions.js';
import { registerCustom } from './rollupDefine.js';
import { FailedError } from '../errors.js';
import { formatTable } from '../operator/format.js';
import { escapeControls } from '../operator/terminal.js';
import { parsePositiveInt, parseTime, UsageError } from './program.js';

function schemaOption(value: string | undefined, cfg: HubsinkConfig): string {
  const schema = value ?? cfg.schema;
  if (!IDENTIFIER.test(schema)) throw new UsageError(`--schema ${JSON.stringify(schema)}: must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)`);
  return schema;
}

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Pure: the human form of `--status`. */
export function formatStatus(status: readonly RollupStatus[]): string {
  return formatTable(
    ['rollup', 'watermark', 'high-water', 'pending', 'lag', 'last run', 'last rows', 'last ms'],
    status.map((s) => [
      s.name,
      String(s.lastSeq),
      String(s.highWater),
      `${s.pendingRows}${s.pendingCapped ? '+' : ''}`,
      `${s.lagSeconds.toFixed(1)}s`,
      s.lastRunAt ? s.lastRunAt.toISOString() : 'never',
      String(s.lastRows),
      s.lastDurationMs === null ? '-' : String(s.lastDurationMs),
    ]),
  );
}

function runLine(r: RollupRunResult): string {
  return `${escapeControls(r.name)}\t(${r.fromSeq}, ${r.toSeq}]\trows=${r.rows}\t${r.durationMs}ms\t${r.caughtUp ? 'caught up' : 'behind'}`;
}

interface RollupOpts {
  status?: boolean;
  json?: boolean;
  catchUp?: boolean;
  maxRuns: number;
  maxRows?: number;
  schema?: string;
}

interface RebuildOpts {
  tenant: number;
  from: Date;
  to: Date;
  json?: boolean;
  schema?: string;
  force?: boolean;
}

export function register(program: Command): void {
  const rollup = program
    .command('rollup')
    .description('fold new events into the minute/hour/day rollups once (what the timer does every minute), or show their status')
    .option('--status', 'show each rollup\'s watermark, lag in rows and seconds, and last run instead of running')
    .option('--json', 'print JSON on stdout')
    .option('--catch-up', 'repeat bounded runs until every rollup has caught up (after an outage)')
    .option('--max-runs <n>', 'with --catch-up: give up after this many runs', parsePositiveInt, 1000)
    .option('--max-rows <n>', 'most events one run folds into one rollup (default: HUBSINK_ROLLUP_MAX_ROWS, else 1000000)', parsePositiveInt)
    .option('--schema <name>', 'schema holding events and rollups (default: HUBSINK_SCHEMA, else public)')
    .addHelpText(
      'after',
      '\nExamples:\n  hubsink rollup                 one step of every rollup, then rollup retention\n' +
        '  hubsink rollup --catch-up      repeat until caught up\n  hubsink rollup --status --json\n' +
        '  hubsink rollup rebuild --tenant 42 --from 2026-01-31T00:00:00Z --to 2026-02-01T00:00:00Z',
    )
    .action(async (opts: RollupOpts) => {
      if (opts.status && opts.catchUp) throw new UsageError('--status and --catch-up do not go together');
      const cfg = loadConfig();
      const schema = schemaOption(opts.schema, cfg);
      const pool = await createPool(cfg);
      try {
        if (opts.status) {
          const status = await rollupStatus(pool, schema);
          out(opts.json ? JSON.stringify(status) : formatStatus(status));
          return;
        }
        const caps = await detectCapabilities(pool);
        const maxWindowRows = opts.maxRows ?? cfg.rollupMaxWindowRows;
        if (!opts.catchUp) {
          const r = await rollupCycle(pool, schema, { caps, maxWindowRows, retentionDays: cfg.rollupRetentionDays, dimensions: cfg.rollupDimensions });
          out(opts.json ? JSON.stringify(r) : [...r.runs.map(runLine), ...r.pruned.map((p) => `${escapeControls(p.name)}\tpruned=${p.deletedRows}\tbefore ${p.cutoff.toISOString()}`)].join('\n'));
          return;
        }
        const { runs, caughtUp, pruned } = await rollUpUntilCaughtUp(pool, schema, {
          caps,
          maxWindowRows,
          dimensions: cfg.rollupDimensions,
          retentionDays: cfg.rollupRetentionDays,
          maxRuns: opts.maxRuns,
          onRun: (r, run) => process.stderr.write(`run ${run}: ${describeCycle({ runs: r, pruned: [] })}\n`),
        });
        const totals = (runs[0] ?? []).map((first) => ({
          name: first.name,
          fromSeq: first.fromSeq,
          toSeq: runs[runs.length - 1]?.find((x) => x.name === first.name)?.toSeq ?? first.toSeq,
          rows: runs.flat().filter((x) => x.name === first.name).reduce((a, x) => a + x.rows, 0),
        }));
        if (opts.json) out(JSON.stringify({ runs: runs.length, caughtUp, rollups: totals, pruned }));
        else out(totals.map((t) => `${escapeControls(t.name)}\t(${t.fromSeq}, ${t.toSeq}]\trows=${t.rows}\truns=${runs.length}\t${caughtUp ? 'caught up' : 'behind'}`).join('\n'));
        if (!caughtUp) throw new FailedError(`not caught up after ${runs.length} runs (raise --max-runs or --max-rows)`);
      } finally {
        await pool.end();
      }
    });

  rollup
    .command('rebuild')
    .description('recompute a tenant\'s rollup buckets in a time range from raw events (whole buckets; consistent with the incremental runs)')
    .requiredOption('--tenant <id>', 'tenant id', parsePositiveInt)
    .requiredOption('--from <time>', 'start: ISO-8601 time, or an age such as 6h or 2d', (v) => parseTime(v))
    .requiredOption('--to <time>', 'end (exclusive): ISO-8601 time, or an age', (v) => parseTime(v))
    .option('--force', 'rebuild even buckets whose raw events are fewer than the rollups hold (their raw events were dropped): prints what is lost')
    .option('--json', 'print JSON on stdout')
    .option('--schema <name>', 'schema holding events and rollups (default: HUBSINK_SCHEMA, else public)')
    .addHelpText(
      'after',
      '\nA rebuild never lowers a bucket below the events it holds unless --force is given: when the raw events of the\n' +
        'range are fewer than the rollups folded in (a partition dropped and created again empty), it is refused\n' +
        '(exit code 1) with both numbers, and nothing is changed.',
    )
    .action(async (_opts: RebuildOpts, cmd: Command) => {
      // --json and --schema exist on `rollup` too, and commander gives a parent's options to the
      // parent wherever they appear; read both levels.
      const opts = cmd.optsWithGlobals<RebuildOpts>();
      const cfg = loadConfig();
      const schema = schemaOption(opts.schema, cfg);
      if (opts.from.getTime() >= opts.to.getTime()) throw new UsageError('--from must be before --to');
      const request = { tenantId: opts.tenant, from: opts.from, to: opts.to };
      const problems = rebuildProblems(request);
      if (problems.length > 0) throw new UsageError(problems.join('; '));
      const pool = await createPool(cfg);
      try {
        const caps = await detectCapabilities(pool);
        // The guard against erasing history takes the oldest partition that exists (not this
        // shell's HUBSINK_RETENTION_DAYS, which may not be the app's): a refusal is a usage error.
        const results = await rebuildRollups(pool, schema, { ...request, caps, dimensions: cfg.rollupDimensions, force: opts.force === true });
        for (const r of results) if (r.lost) process.stderr.write(`--force: ${describeShortfall(r.lost)}\n`);
        if (opts.json) out(JSON.stringify({ tenantId: opts.tenant, rollups: results }));
        else {
          out(
            formatTable(
              ['rollup', 'from', 'to', 'deleted rows', 'events', 'watermark'],
              results.map((r) => [r.name, r.from.toISOString(), r.to.toISOString(), String(r.deletedRows), String(r.rows), String(r.watermark)]),
            ),
          );
        }
      } finally {
        await pool.end();
      }
    });

  rollup
    .command('migrate-history')
    .description('copy the history of the old single-cube rollups (rollup_minute, rollup_hour, rollup_day) into the rollups per question; resumable, safe to run twice')
    .option('--chunk-days <n>', 'days of buckets copied per transaction', parsePositiveInt, 30)
    .option('--drop-old', 'then drop the old tables, once every chunk of every rollup is copied and verified')
    .option('--json', 'print JSON on stdout')
    .option('--schema <name>', 'schema holding events and rollups (default: HUBSINK_SCHEMA, else public)')
    .addHelpText(
      'after',
      '\nEach chunk is copied and checked (per tenant and bucket, the new rollup gains exactly the old cube\'s events and\n' +
        'revenue) in one transaction with its progress row, so an interrupted run resumes where it stopped. Buckets past\n' +
        'the new retention of their grain (HUBSINK_ROLLUP_*_RETENTION_DAYS) are not copied. Progress goes to stderr.',
    )
    .action(async (_opts: { chunkDays: number; dropOld?: boolean; json?: boolean; schema?: string }, cmd: Command) => {
      const opts = cmd.optsWithGlobals<{ chunkDays: number; dropOld?: boolean; json?: boolean; schema?: string }>();
      const cfg = loadConfig();
      const schema = schemaOption(opts.schema, cfg);
      const pool = await createPool(cfg);
      try {
        const caps = await detectCapabilities(pool);
        const now = new Date();
        const progress = await migrateHistory(pool, schema, {
          caps,
          chunkDays: opts.chunkDays,
          notBefore: (grain) => retentionCutoff(now, grain, cfg.rollupRetentionDays),
          log: (line) => process.stderr.write(`${line}\n`),
        });
        const dropped = opts.dropOld ? await dropLegacy(pool, schema) : [];
        if (opts.json) out(JSON.stringify({ pairs: progress, dropped }));
        else if (progress.length === 0) out('no old rollup tables: nothing to migrate');
        else {
          out(formatTable(['from', 'to', 'copied up to', 'done'], progress.map((p) => [p.source, p.target, p.doneUntil.toISOString(), p.finished ? 'yes' : 'no'])));
          if (dropped.length > 0) out(`dropped ${escapeControls(dropped.join(', '))}`);
        }
      } finally {
        await pool.end();
      }
    });
  registerCustom(rollup);
}
