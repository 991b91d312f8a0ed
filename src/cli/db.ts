/**
 * `hubsink migrate` and `hubsink partitions`: the database chores a deployment runs before (and
 * alongside) the Function App. Data (what was applied, created, dropped) goes to stdout; progress
 * to stderr.
 */
import type { Command } from 'commander';
import { IDENTIFIER, loadConfig } from '../config.js';
import { detectCapabilities } from '../db/capabilities.js';
import { migrate } from '../db/migrate.js';
import { describeMaintenance } from '../db/partitions.js';
import { createPool } from '../db/pool.js';
import { maintain } from '../partitions/maintain.js';
import { finishWith, parsePositiveInt, UsageError } from './program.js';

export function schemaOption(value: string | undefined, fallback: string): string {
  const schema = value ?? fallback;
  if (!IDENTIFIER.test(schema)) throw new UsageError(`--schema ${JSON.stringify(schema)}: must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)`);
  return schema;
}

function print(lines: readonly string[]): void {
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
}

export function register(program: Command): void {
  program
    .command('migrate')
    .description(
      'create or upgrade the hubsink tables (applies the numbered sql/ files not yet applied; safe to run concurrently) ' +
        'and create the daily partitions of the accepted window, so the database takes events at once',
    )
    .option('--schema <name>', 'schema to migrate (default: HUBSINK_SCHEMA, else public)')
    .option('--json', 'print {"schema", "applied", "createdPartitions"} as JSON')
    .action(async (opts: { schema?: string; json?: boolean }) => {
      const cfg = loadConfig();
      const schema = schemaOption(opts.schema, cfg.schema);
      const pool = await createPool(cfg);
      try {
        const { applied, createdPartitions } = await migrate(pool, schema, {
          log: (m) => process.stderr.write(`${m}\n`),
          // The window validation accepts, by the app's own settings.
          partitions: { now: new Date(), aheadDays: cfg.partitionsAheadDays, retentionDays: cfg.retentionDays },
        });
        if (opts.json) print([JSON.stringify({ schema, applied, createdPartitions })]);
        else {
          print([...applied, ...createdPartitions.map((n) => `created ${n}`)]);
          if (applied.length + createdPartitions.length === 0) process.stderr.write(`schema ${schema} and its partitions are up to date\n`);
        }
      } finally {
        await pool.end();
      }
    });

  program
    .command('partitions')
    .description('create the daily partitions of events ahead of time and drop those past retention (never before the rollups have folded them in)')
    .option('--ahead <days>', 'days ahead to cover (default: HUBSINK_PARTITIONS_AHEAD_DAYS, else 3)', parsePositiveInt)
    .option('--retention <days>', 'days of events to keep, at least 1 (default: HUBSINK_RETENTION_DAYS, else 30)', parsePositiveInt)
    .option('--force', 'allow --retention below the app\'s HUBSINK_RETENTION_DAYS')
    .option('--schema <name>', 'schema holding events (default: HUBSINK_SCHEMA, else public)')
    .option('--json', 'print {"schema", "created", "dropped", "kept"} as JSON')
    .addHelpText(
      'after',
      '\nA partition past retention whose rows some rollup has not folded in yet is rolled up first; if the rollups\n' +
        'still do not cover it, it is kept and named (exit code 1), and a later run drops it.',
    )
    .action(async (opts: { ahead?: number; retention?: number; force?: boolean; schema?: string; json?: boolean }) => {
      const cfg = loadConfig();
      const schema = schemaOption(opts.schema, cfg.schema);
      if (opts.retention !== undefined && opts.retention < cfg.retentionDays && opts.force !== true) {
        throw new UsageError(
          `--retention ${opts.retention} is below the app's HUBSINK_RETENTION_DAYS (${cfg.retentionDays}): it would drop days the app still accepts ` +
            'events for (they would then need their partitions again). Pass --force if that is really meant.',
        );
      }
      const pool = await createPool(cfg);
      try {
        const caps = await detectCapabilities(pool);
        const r = await maintain(
          { pool, config: { ...cfg, schema }, caps, clock: () => new Date() },
          { ...(opts.ahead !== undefined ? { aheadDays: opts.ahead } : {}), ...(opts.retention !== undefined ? { retentionDays: opts.retention } : {}) },
        );
        if (opts.json) print([JSON.stringify({ schema, ...r })]);
        else {
          print(describeMaintenance(r).filter((l) => !l.startsWith('kept ')));
          for (const k of r.kept) process.stderr.write(`hubsink: kept ${k.name}: ${k.reason}\n`);
          if (r.created.length + r.dropped.length + r.kept.length === 0) process.stderr.write(`partitions of ${schema}.events are up to date\n`);
        }
        if (r.kept.length > 0) finishWith('failed');
      } finally {
        await pool.end();
      }
    });
}
