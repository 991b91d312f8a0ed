/**
 * `hubsink migrate` and `hubsink partitions`: the database chores a deployment runs before (and
 * alongside) the Function App. Data (what was applied, created, dropped) goes to stdout; progress
 * to stderr.
 */
import type { Command } from 'commander';
import { IDENTIFIER, loadConfig } from '../config.js';
import { detectCapabilities } from '../db/capabilities.js';
import { migrate } from '../db/migrate.js';
import { maintainPartitions } from '../db/partitions.js';
import { createPool } from '../db/pool.js';
import { parseNonNegativeInt, parsePositiveInt, UsageError } from './program.js';

function schemaOption(value: string | undefined, fallback: string): string {
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
    .description('create or upgrade the hubsink tables (applies the numbered sql/ files not yet applied; safe to run concurrently)')
    .option('--schema <name>', 'schema to migrate (default: HUBSINK_SCHEMA, else public)')
    .option('--json', 'print {"schema", "applied"} as JSON')
    .action(async (opts: { schema?: string; json?: boolean }) => {
      const cfg = loadConfig();
      const schema = schemaOption(opts.schema, cfg.schema);
      const pool = await createPool(cfg);
      try {
        const { applied } = await migrate(pool, schema, { log: (m) => process.stderr.write(`${m}\n`) });
        if (opts.json) print([JSON.stringify({ schema, applied })]);
        else {
          print(applied);
          if (applied.length === 0) process.stderr.write(`schema ${schema} is up to date\n`);
        }
      } finally {
        await pool.end();
      }
    });

  program
    .command('partitions')
    .description('create the daily partitions of events ahead of time and drop those past retention')
    .option('--ahead <days>', 'days ahead to cover (default: HUBSINK_PARTITIONS_AHEAD_DAYS, else 3)', parsePositiveInt)
    .option('--retention <days>', 'days of events to keep (default: HUBSINK_RETENTION_DAYS, else 30)', parseNonNegativeInt)
    .option('--schema <name>', 'schema holding events (default: HUBSINK_SCHEMA, else public)')
    .option('--json', 'print {"schema", "created", "dropped"} as JSON')
    .action(async (opts: { ahead?: number; retention?: number; schema?: string; json?: boolean }) => {
      const cfg = loadConfig();
      const schema = schemaOption(opts.schema, cfg.schema);
      const pool = await createPool(cfg);
      try {
        const caps = await detectCapabilities(pool);
        const r = await maintainPartitions(pool, schema, {
          now: new Date(),
          aheadDays: opts.ahead ?? cfg.partitionsAheadDays,
          retentionDays: opts.retention ?? cfg.retentionDays,
          caps,
        });
        if (opts.json) print([JSON.stringify({ schema, ...r })]);
        else {
          print([...r.created.map((n) => `created ${n}`), ...r.dropped.map((n) => `dropped ${n}`)]);
          if (r.created.length + r.dropped.length === 0) process.stderr.write(`partitions of ${schema}.events are up to date\n`);
        }
      } finally {
        await pool.end();
      }
    });
}
