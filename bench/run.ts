/**
 * `npm run bench`: hubsink's figures next to their limits, measured in one run on one machine.
 * Starts its own embedded PostgreSQL and Azurite; also measures ingest on the server named by
 * TEST_DATABASE_URL (e.g. a Citus coordinator) when set. Prints a table and writes
 * bench/results/latest.json. Not a test: nothing here passes or fails on timing.
 *
 *   npm run bench                               # everything, ~5 minutes on 2 cores
 *   npm run bench -- --only ingest,rollups      # some sections
 *   TEST_DATABASE_URL=postgres://… npm run bench  # plus ingest on that server
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { detectCapabilities, type Capabilities } from '../src/db/capabilities.js';
import { ident } from '../src/db/ident.js';
import { migrate } from '../src/db/migrate.js';
import { maintainPartitions } from '../src/db/partitions.js';
import { configureSession } from '../src/db/session.js';
import { startAzurite } from '../src/local/azurite.js';
import { loadEmbeddedPostgres } from '../src/local/embedded.js';
import { benchClaim, type ClaimFigure } from './claim.js';
import { benchE2e, type E2eFigure } from './e2e.js';
import { benchIngest, type IngestFigure } from './ingest.js';
import { benchDashboard, benchRollups, type DashboardFigure, type RollupFigure } from './rollups.js';
import { benchStall, type StallFigure } from './stall.js';
import { benchImport, type ImportFigure } from './import.js';
import { benchTelemetry, type TelemetryFigure } from './telemetry.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SECTIONS = ['ingest', 'rollups', 'stall', 'dashboard', 'e2e', 'claim', 'telemetry', 'import'] as const;
type Section = (typeof SECTIONS)[number];

interface ServerInfo {
  label: string;
  version: string;
  citus: string | null;
  settings: Record<string, string>;
}

interface Results {
  generatedAt: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; os: string; loadAverageAtStart: number[]; loadAverageAtEnd?: number[] };
  servers: ServerInfo[];
  ingest: { server: string; settings: string; figures: IngestFigure[] }[];
  rollups?: RollupFigure & { server: string };
  stall?: StallFigure & { server: string };
  dashboard?: DashboardFigure & { server: string; rollupsOver: string };
  e2e?: E2eFigure & { server: string };
  claim?: ClaimFigure;
  telemetry?: TelemetryFigure & { server: string };
  import?: ImportFigure & { server: string };
  seconds: number;
}

const log = (s: string): void => void process.stderr.write(`${s}\n`);

function parseArgs(argv: readonly string[]): { only: Set<Section>; out: string } {
  let only = new Set<Section>(SECTIONS);
  let out = path.join(REPO_ROOT, 'bench', 'results', 'latest.json');
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--only') {
      const list = (argv[++i] ?? '').split(',').filter(Boolean);
      const bad = list.filter((s) => !(SECTIONS as readonly string[]).includes(s));
      if (bad.length > 0 || list.length === 0) throw new Error(`--only takes a comma-separated list of ${SECTIONS.join(', ')}`);
      only = new Set(list as Section[]);
    } else if (a === '--out') {
      out = path.resolve(argv[++i] ?? out);
    } else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run bench [-- --only ingest,rollups,stall,dashboard,e2e,claim,telemetry,import] [--out FILE]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${String(a)}`);
  }
  return { only, out };
}

async function serverInfo(pool: pg.Pool, label: string, caps: Capabilities): Promise<ServerInfo> {
  const settings: Record<string, string> = {};
  for (const name of ['shared_buffers', 'fsync', 'synchronous_commit', 'max_connections']) {
    const r = await pool.query<Record<string, string>>(`SHOW ${name}`);
    settings[name] = String(Object.values(r.rows[0] ?? {})[0] ?? '');
  }
  if (caps.citus) {
    const w = await pool.query<{ n: string }>("SELECT count(*)::text AS n FROM pg_dist_node WHERE noderole = 'primary' AND groupid > 0");
    settings['citus workers'] = w.rows[0]?.n ?? '?';
    const s = await pool.query<Record<string, string>>('SHOW citus.shard_count');
    settings['citus.shard_count'] = String(Object.values(s.rows[0] ?? {})[0] ?? '?');
  }
  const v = await pool.query<{ server_version: string }>('SHOW server_version');
  return { label, version: v.rows[0]?.server_version ?? '?', citus: caps.citusVersion ?? null, settings };
}

/** An empty migrated schema with today's partitions; remembered for the final clean-up. */
function schemaFactory(pool: pg.Pool, caps: Capabilities, created: string[]): () => Promise<string> {
  return async () => {
    const schema = `bench_${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
    await pool.query(`CREATE SCHEMA ${ident(schema)}`);
    created.push(schema);
    await migrate(pool, schema);
    await maintainPartitions(pool, schema, { now: new Date(), aheadDays: 3, retentionDays: 30, caps });
    return schema;
  };
}

const n0 = (x: number): string => Math.round(x).toLocaleString('en-US');

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('   ')).join('\n');
}

export function report(r: Results): string {
  const m = r.machine;
  const out: string[] = [
    `hubsink benchmarks, ${r.generatedAt} (${r.seconds.toFixed(0)} s)`,
    `machine: ${m.cpus} cores (${m.cpuModel}), ${m.memoryGiB.toFixed(1)} GiB, Node ${m.node}, ${m.os}; generator, emulator, runner and servers all on it`,
    `load average (1/5/15 min) at start ${m.loadAverageAtStart.join(' / ')}, at end ${(m.loadAverageAtEnd ?? []).join(' / ')}: other work on the machine shows up in the absolute figures; compare the ratios`,
    ...r.servers.map((s) => `server ${s.label}: PostgreSQL ${s.version}${s.citus ? `, Citus ${s.citus}` : ''}; ${Object.entries(s.settings).map(([k, v]) => `${k}=${v}`).join(', ')}`),
    '',
  ];
  for (const g of r.ingest) {
    out.push(`Ingest into ${g.server} (${g.settings}): events/s, hubsink write path (decode + validate + upsert) vs COPY of the same rows;`);
    out.push('streams = batches written at once (4 = one per partition, as the runner does); upsert only = the same statement on rows validated beforehand');
    out.push(
      table([
        ['batch', 'streams', 'storefronts/batch', 'hubsink', 'upsert only', 'COPY', 'hubsink/COPY (target >= 0.85)', 'upsert/COPY'],
        ...g.figures.map((f) => [
          String(f.batchSize),
          String(f.streams),
          String(f.tenantsPerBatch),
          n0(f.pipelinePerSec),
          n0(f.upsertPerSec),
          n0(f.copyPerSec),
          f.ratio.toFixed(2),
          f.upsertRatio.toFixed(2),
        ]),
      ]),
      '',
    );
  }
  if (r.rollups) {
    const x = r.rollups;
    out.push(`Rollups on ${x.server}: time to fold ${n0(x.newEvents)} new events into minute, hour and day rollups (median of ${x.emptySeconds.length})`);
    out.push(
      table([
        ['history', 'seconds', 'events/s'],
        ['empty', x.emptyMedian.toFixed(2), n0(x.newEvents / x.emptyMedian)],
        [`${n0(x.history)}+ events`, x.historyMedian.toFixed(2), n0(x.newEvents / x.historyMedian)],
        ['ratio (target <= 1.2)', x.ratio.toFixed(2), ''],
      ]),
      '',
    );
  }
  if (r.stall) {
    const x = r.stall;
    out.push(
      `Insert stall on ${x.server}: ${x.streams} writers, a batch of ${x.batchSize} every ${x.intervalMs} ms each, ${x.phaseSeconds} s per phase; rollup cycles every ${x.rollupEveryMs} ms; ` +
        `slow writer = one transaction held ${x.slowHoldMs} ms every ${x.slowEveryMs} ms`,
    );
    out.push(
      table([
        ['phase', 'lock wait ms', 'worst insert ms', 'p99 ms', 'median ms', 'events/s', 'CPU µs/event', 'cycles done/skipped'],
        ...x.phases.map((p) => [
          p.name,
          p.lockTimeoutMs === null ? '-' : String(p.lockTimeoutMs),
          p.maxMs.toFixed(0),
          p.p99Ms.toFixed(0),
          p.medianMs.toFixed(1),
          n0(p.eventsPerSec),
          p.cpuUsPerEvent.toFixed(1),
          p.rollups ? `${p.rollupCycles}/${p.rollupSkipped}` : '-',
        ]),
      ]),
      '',
    );
  }
  if (r.dashboard) {
    const d = r.dashboard;
    out.push(`Dashboard queries on ${d.server} (metrics handler over ${d.rollupsOver}; ${d.queries} queries: ${d.mix.join('; ')})`);
    out.push(table([['median ms', 'p99 ms'], [d.medianMs.toFixed(1), d.p99Ms.toFixed(1)]]), '');
  }
  if (r.e2e) {
    const e = r.e2e;
    out.push(`End to end on ${e.server}: generator -> emulator (${e.partitions} partitions) -> hubsink run (batches of ${e.runnerBatchSize}, dead-letter consumer on) -> PostgreSQL`);
    out.push(
      table([
        ['events', 'generator events/s', 'end-to-end events/s', 'runner peak RSS MiB'],
        [n0(e.events), n0(e.sendPerSec), n0(e.endToEndPerSec), e.runnerPeakRssMiB.toFixed(0)],
      ]),
      '',
    );
  }
  if (r.claim) {
    const c = r.claim;
    out.push(`Partition claiming: hubsink run on a hub of ${c.partitions} partitions, balancing every ${c.balanceIntervalMs / 1000} s (the runner's default), vs the SDK's balanced strategy`);
    out.push(
      table([
        ['strategy', `first runner owns all ${c.partitions} (s)`, `second runner has ${c.partitions / 2} (s)`],
        ...[c.greedy, c.balanced].map((x) => [x.strategy === 'greedy' ? 'greedy (hubsink)' : 'balanced (reference)', x.firstOwnsAllSeconds.toFixed(2), x.secondGetsShareSeconds.toFixed(2)]),
      ]),
      '',
    );
  }
  if (r.telemetry) {
    const x = r.telemetry;
    out.push(`Telemetry cost on ${x.server}: ingestBatch, ${n0(x.events)} events in batches of ${x.batchSize}, instruments off (no-op) vs on (OpenTelemetry, collected every second), median of ${x.reps}`);
    out.push(
      table([
        ['telemetry', 'events/s', 'CPU µs/event'],
        ['off', n0(x.offPerSec), x.offCpuUsPerEvent.toFixed(2)],
        ['on', n0(x.onPerSec), x.onCpuUsPerEvent.toFixed(2)],
        [`one report per batch alone: ${n0(x.reportNsPerBatch)} ns`, '', `${(x.reportNsPerEvent / 1000).toFixed(4)} per event`],
      ]),
      '',
    );
  }
  if (r.import) {
    const x = r.import;
    out.push(`hubsink import on ${x.server}: ${n0(x.lines)} NDJSON lines, batches of ${x.batchSize}, one connection, vs COPY of the same rows (validated beforehand, same batches), median of ${x.reps}`);
    out.push(
      table([
        ['', 'lines/s', 'CPU µs/line'],
        ['hubsink import', n0(x.importPerSec), x.importCpuUsPerLine.toFixed(1)],
        ['COPY', n0(x.copyPerSec), x.copyCpuUsPerLine.toFixed(1)],
        ['ratio', x.ratio.toFixed(2), ''],
      ]),
      '',
    );
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const { only, out } = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const cleanups: (() => Promise<unknown>)[] = [];
  const cpus = os.cpus();
  const results: Results = {
    generatedAt: new Date().toISOString(),
    machine: { cpus: cpus.length, cpuModel: cpus[0]?.model.trim() ?? '?', memoryGiB: os.totalmem() / 2 ** 30, node: process.version, os: `${os.type()} ${os.release()}`, loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    servers: [],
    ingest: [],
    seconds: 0,
  };
  try {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hubsink-bench-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    log('starting embedded PostgreSQL and Azurite…');
    const startEmbeddedPostgres = await loadEmbeddedPostgres();
    const server = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg') });
    cleanups.push(() => server.stop());
    const azurite = only.has('e2e') || only.has('claim') ? await startAzurite() : undefined;
    if (azurite) cleanups.push(() => azurite.stop());

    const pool = new pg.Pool({ connectionString: server.url, max: 10 });
    // An idle connection dropped at shutdown must not crash the run.
    pool.on('error', () => undefined);
    cleanups.push(() => pool.end());
    const caps = await detectCapabilities(pool);
    const schemas: string[] = [];
    cleanups.push(async () => {
      for (const s of schemas) await pool.query(`DROP SCHEMA IF EXISTS ${ident(s)} CASCADE`);
    });
    const fresh = schemaFactory(pool, caps, schemas);
    const label = 'embedded PostgreSQL';
    results.servers.push(await serverInfo(pool, label, caps));

    if (only.has('ingest')) {
      log(`ingest on ${label}`);
      const figures = await benchIngest(pool, await fresh(), { events: 60_000, batchSizes: [100, 500, 1000], streams: [1, 4], reps: 3, log });
      results.ingest.push({ server: label, settings: '60,000 events, 500 storefronts, median of 3 alternating runs', figures });
    }

    const other = process.env.TEST_DATABASE_URL;
    if (other && only.has('ingest')) {
      const opool = new pg.Pool({ connectionString: other, max: 10 });
      opool.on('error', () => undefined);
      cleanups.push(() => opool.end());
      const ocaps = await detectCapabilities(opool);
      configureSession(opool, ocaps, { citusCachedConnsPerWorker: 32 });
      const olabel = ocaps.citus ? 'Citus (TEST_DATABASE_URL)' : 'PostgreSQL (TEST_DATABASE_URL)';
      results.servers.push(await serverInfo(opool, olabel, ocaps));
      const oschemas: string[] = [];
      cleanups.push(async () => {
        for (const s of oschemas) await opool.query(`DROP SCHEMA IF EXISTS ${ident(s)} CASCADE`);
      });
      log(`ingest on ${olabel}`);
      const figures = await benchIngest(opool, await schemaFactory(opool, ocaps, oschemas)(), { events: 20_000, batchSizes: [100, 500, 1000], streams: [1, 4], reps: 2, log });
      results.ingest.push({
        server: olabel,
        settings: `20,000 events, 500 storefronts, median of 2 alternating runs${ocaps.citus ? ', citus.max_cached_conns_per_worker=32' : ''}`,
        figures,
      });
    }

    if (only.has('rollups') || only.has('dashboard')) {
      log(`rollups on ${label}`);
      const { figure, historySchema } = await benchRollups(pool, caps, fresh, { newEvents: 100_000, history: 1_000_000, reps: 3, log });
      if (only.has('rollups')) results.rollups = { ...figure, server: label };
      if (only.has('dashboard')) {
        log(`dashboard queries on ${label}`);
        const d = await benchDashboard(pool, historySchema, caps, { queries: 400, log });
        results.dashboard = { ...d, server: label, rollupsOver: `${n0(figure.history + figure.newEvents * figure.historySeconds.length)} events, 200 storefronts, 7 days` };
      }
    }

    if (only.has('stall')) {
      log(`insert stall under rollups on ${label}`);
      results.stall = { ...(await benchStall(pool, fresh, caps, { phaseSeconds: 15, log })), server: label };
    }

    if (only.has('e2e') && azurite) {
      log(`end to end on ${label}`);
      const e = await benchE2e(pool, { schema: await fresh(), databaseUrl: server.url, azurite: azurite.connectionString, events: 60_000, repoRoot: REPO_ROOT, log });
      results.e2e = { ...e, server: label };
    }
    if (only.has('telemetry')) {
      log(`telemetry cost on ${label}`);
      results.telemetry = { ...(await benchTelemetry(pool, await fresh(), { events: 40_000, batchSize: 500, reps: 3, log })), server: label };
    }
    if (only.has('import')) {
      log(`import on ${label}`);
      results.import = { ...(await benchImport(pool, await fresh(), caps, { lines: 100_000, batchSize: 5000, reps: 3, log })), server: label };
    }
    if (only.has('claim') && azurite) {
      log('partition claiming');
      results.claim = await benchClaim({ pool, schema: await fresh(), databaseUrl: server.url, azurite: azurite.connectionString, log });
    }
  } finally {
    for (const c of cleanups.reverse()) await c().catch((err: unknown) => log(`clean-up: ${err instanceof Error ? err.message : String(err)}`));
  }
  results.seconds = (Date.now() - started) / 1000;
  results.machine.loadAverageAtEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  process.stdout.write(`\n${report(results)}\n`);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote ${path.relative(process.cwd(), out) || out}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
