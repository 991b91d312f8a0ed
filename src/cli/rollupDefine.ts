/**
 * `hubsink rollup define | backfill | list | drop`: analyst-defined rollups. `define` stores the
 * spec, creates its tables and backfills them from the raw events still retained (progress on
 * stderr); the running app picks the rollup up at its next fold and the metrics API within seconds,
 * without a restart. Data goes to stdout (a table, or JSON with --json).
 */
import type { Command } from 'commander';
import { IDENTIFIER, loadConfig, type HubsinkConfig } from '../config.js';
import { detectCapabilities } from '../db/capabilities.js';
import { createPool } from '../db/pool.js';
import { escapeControls } from '../operator/terminal.js';
import { loadCustomSpecs } from '../rollups/catalog.js';
import { buildCustomSpec, formatDimensionSource, type CustomSpecRecord } from '../rollups/custom.js';
import { backfillCustomRollup, defineCustomRollup, dropCustomRollup, type BackfillProgress } from '../rollups/customStore.js';
import { parsePositiveInt, UsageError } from './program.js';

function schemaOf(value: string | undefined, cfg: HubsinkConfig): string {
  const schema = value ?? cfg.schema;
  if (!IDENTIFIER.test(schema)) throw new UsageError(`--schema ${JSON.stringify(schema)}: must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)`);
  return schema;
}

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

const list = (v: string): string[] => v.split(',').map((x) => x.trim()).filter((x) => x !== '');
const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** Pure: one progress line of a backfill. */
export function progressLine(p: BackfillProgress): string {
  const pct = p.horizon === 0 ? 100 : Math.floor((100 * p.doneSeq) / p.horizon);
  return `backfill ${p.name}: ${p.rows} events folded, up to ingest_seq ${p.doneSeq} of ${p.horizon} (${p.finished ? 'done' : `${pct}%`})`;
}

/** Pure: the human form of `rollup list`, producer-influenced text escaped. */
export function formatCustomList(records: readonly CustomSpecRecord[]): string {
  if (records.length === 0) return 'no analyst-defined rollups (define one with hubsink rollup define NAME --dimension name=source)';
  const header = ['rollup', 'dimensions', 'measures', 'grains', 'all storefronts', 'backfill'];
  const rows = records.map((r) => [
    r.spec.name,
    r.spec.dimensions.map((d) => `${d.name}=${formatDimensionSource(d.source)}`).join(' '),
    r.spec.measures.join(','),
    r.spec.grains.join(','),
    r.spec.allTenants ? 'yes' : 'no',
    r.backfilledAt ? `done ${r.backfilledAt.toISOString()} (${r.backfillRows} events)` : `at ${r.backfillSeq} of ${r.horizon} (run hubsink rollup backfill ${r.spec.name})`,
  ].map((c) => escapeControls(c)));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function recordJson(r: CustomSpecRecord) {
  return {
    name: r.spec.name,
    dimensions: r.spec.dimensions.map((d) => ({ name: d.name, source: formatDimensionSource(d.source) })),
    measures: r.spec.measures,
    grains: r.spec.grains,
    allTenants: r.spec.allTenants,
    horizon: r.horizon,
    backfillSeq: r.backfillSeq,
    backfillRows: r.backfillRows,
    backfilledAt: r.backfilledAt,
  };
}

interface DefineOpts {
  dimension: string[];
  grains: string[];
  measures: string[];
  allStorefronts: boolean;
  chunk: number;
  backfill: boolean;
  json?: boolean;
  schema?: string;
}

async function runBackfill(cfg: HubsinkConfig, schema: string, name: string, chunk: number, pool: Awaited<ReturnType<typeof createPool>>): Promise<BackfillProgress> {
  const caps = await detectCapabilities(pool);
  return backfillCustomRollup(pool, schema, name, {
    caps,
    chunkRows: chunk,
    dimensions: cfg.rollupDimensions,
    onProgress: (p) => process.stderr.write(`${progressLine(p)}\n`),
  });
}

/** Adds the analyst-defined rollup commands to `hubsink rollup`. */
export function registerCustom(rollup: Command): void {
  rollup
    .command('define <name>')
    .description('define a rollup of your own (no code change, no restart): create its tables, then backfill them from the raw events still retained')
    .option('--dimension <name=source>', 'a dimension: an events column (country, url, ...), properties.<key>[.<key>], or urlpath(url|referrer); repeatable', collect, [])
    .option('--grains <list>', 'grains to keep: minute, hour, day', list, ['hour', 'day'])
    .option('--measures <list>', 'measures: events, revenue, sessions, users (events always)', list, ['events', 'revenue'])
    .option('--no-all-storefronts', 'keep no all-storefronts rows (the all view cannot then answer by these dimensions)')
    .option('--chunk <events>', 'most events one backfill transaction folds in', parsePositiveInt, 100_000)
    .option('--no-backfill', 'only define; run hubsink rollup backfill NAME later (the API offers the rollup once it is backfilled)')
    .option('--json', 'print JSON on stdout')
    .option('--schema <name>', 'schema holding events and rollups (default: HUBSINK_SCHEMA, else public)')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  hubsink rollup define sku --dimension sku=properties.sku --grains hour,day\n' +
        '  hubsink rollup define landing --dimension page=urlpath(url) --dimension country=country --grains day\n' +
        '\nValues are cut to HUBSINK_ROLLUP_VALUE_MAX_LENGTH characters; set HUBSINK_ROLLUP_<NAME>_VALUES (the same in the\n' +
        'app and in this shell) to keep only listed values and store the rest as `other`. An interrupted backfill\n' +
        'resumes with hubsink rollup backfill NAME.',
    )
    .action(async (name: string, _opts: DefineOpts, cmd: Command) => {
      const opts = cmd.optsWithGlobals<DefineOpts>();
      const cfg = loadConfig();
      const schema = schemaOf(opts.schema, cfg);
      const pool = await createPool(cfg);
      try {
        const { records } = await loadCustomSpecs(pool, schema);
        const built = buildCustomSpec(
          { name, dimensions: opts.dimension, grains: opts.grains, measures: opts.measures, allTenants: opts.allStorefronts },
          records.map((r) => r.spec),
        );
        if (!built.ok) throw new UsageError(built.problems.join('; '));
        const caps = await detectCapabilities(pool);
        const defined = await defineCustomRollup(pool, schema, built.spec, { caps });
        process.stderr.write(`defined ${name}: tables ${defined.definitions.map((d) => d.table).join(', ')}; new events are folded after ingest_seq ${defined.horizon}\n`);
        const progress = opts.backfill ? await runBackfill(cfg, schema, name, opts.chunk, pool) : undefined;
        if (opts.json) out(JSON.stringify({ name, tables: defined.definitions.map((d) => d.table), horizon: defined.horizon, backfill: progress ?? null }));
        else out(`${name}\t${defined.definitions.map((d) => d.table).join(',')}\t${progress ? `backfilled ${progress.rows} events` : 'not backfilled'}`);
      } finally {
        await pool.end();
      }
    });

  rollup
    .command('backfill <name>')
    .description('fold the retained raw events into an analyst-defined rollup, resuming where an interrupted backfill stopped')
    .option('--chunk <events>', 'most events one backfill transaction folds in', parsePositiveInt, 100_000)
    .option('--json', 'print JSON on stdout')
    .option('--schema <name>', 'schema holding events and rollups (default: HUBSINK_SCHEMA, else public)')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<{ chunk: number; json?: boolean; schema?: string }>();
      const cfg = loadConfig();
      const schema = schemaOf(opts.schema, cfg);
      const pool = await createPool(cfg);
      try {
        const p = await runBackfill(cfg, schema, name, opts.chunk, pool);
        out(opts.json ? JSON.stringify(p) : escapeControls(progressLine(p)));
      } finally {
        await pool.end();
      }
    });

  rollup
    .command('list')
    .description('list the analyst-defined rollups, their dimensions and their backfill')
    .option('--json', 'print JSON on stdout')
    .option('--schema <name>', 'schema holding events and rollups (default: HUBSINK_SCHEMA, else public)')
    .action(async (_opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<{ json?: boolean; schema?: string }>();
      const cfg = loadConfig();
      const schema = schemaOf(opts.schema, cfg);
      const pool = await createPool(cfg);
      try {
        const { records, problems } = await loadCustomSpecs(pool, schema);
        for (const p of problems) process.stderr.write(`${escapeControls(p)}\n`);
        out(opts.json ? JSON.stringify(records.map(recordJson)) : formatCustomList(records));
      } finally {
        await pool.end();
      }
    });

  rollup
    .command('drop <name>')
    .description('drop an analyst-defined rollup: its tables and their history go')
    .option('--yes', 'really drop it (required)')
    .option('--schema <name>', 'schema holding events and rollups (default: HUBSINK_SCHEMA, else public)')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<{ yes?: boolean; schema?: string }>();
      if (opts.yes !== true) throw new UsageError(`dropping rollup ${JSON.stringify(name)} deletes its tables and history; add --yes to confirm`);
      const cfg = loadConfig();
      const schema = schemaOf(opts.schema, cfg);
      const pool = await createPool(cfg);
      try {
        const dropped = await dropCustomRollup(pool, schema, name);
        out(`dropped ${name}: ${dropped.map((d) => d.table).join(', ')}`);
      } finally {
        await pool.end();
      }
    });
}
