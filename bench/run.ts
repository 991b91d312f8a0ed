/**
 * `npm run bench`: hubsink's figures next to their references, measured in one run on one machine.
 * Starts its own embedded PostgreSQL and Azurite; also measures ingest on the server named by
 * TEST_DATABASE_URL (e.g. a Citus coordinator) when set. Prints a table of targets and one table per
 * section, and writes bench/results/latest.json. Not a test: nothing here passes or fails on timing.
 *
 *   npm run bench                               # everything
 *   npm run bench -- --only ingest,rollups      # some sections
 *   TEST_DATABASE_URL=postgres://… npm run bench  # plus ingest on that server
 *
 * Adding a figure: write a BenchSection (bench/section.ts) in bench/<name>.ts and add it to SECTIONS
 * below. Its run() returns tables to print and, for each stated target, a Target row; the load
 * average is recorded with every section and every target.
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
import { claimSection } from './claim.js';
import { deploySection } from './deploy.js';
import { e2eSection } from './e2e.js';
import { ingestSection } from './ingest.js';
import { dashboardSection, rollupsSection } from './rollups.js';
import { rollupScaleSection } from './rollupScale.js';
import { stallSection } from './stall.js';
import { importSection } from './import.js';
import { telemetrySection } from './telemetry.js';
import { n0, type BenchContext, type BenchSection, type BenchServer, type SectionResult, type Target } from './section.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** In the order they run: the dashboard reads the rollups section's history. */
const SECTIONS: readonly BenchSection[] = [ingestSection, rollupsSection, rollupScaleSection, stallSection, dashboardSection, e2eSection, claimSection, deploySection, telemetrySection, importSection];

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
  targets: Target[];
  sections: Record<string, { loadAverageAtStart: number[]; loadAverageAtEnd: number[]; seconds: number; tables: SectionResult['tables']; data: unknown }>;
  seconds: number;
}

const log = (s: string): void => void process.stderr.write(`${s}\n`);
const loadAvg = (): number[] => os.loadavg().map((x) => Math.round(x * 100) / 100);

function parseArgs(argv: readonly string[]): { only: Set<string>; out: string; quick: boolean } {
  const names = SECTIONS.map((s) => s.name);
  let only = new Set(names);
  let out = path.join(REPO_ROOT, 'bench', 'results', 'latest.json');
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--only') {
      const list = (argv[++i] ?? '').split(',').filter(Boolean);
      const bad = list.filter((s) => !names.includes(s));
      if (bad.length > 0 || list.length === 0) throw new Error(`--only takes a comma-separated list of ${names.join(', ')}`);
      only = new Set(list);
    } else if (a === '--out') {
      out = path.resolve(argv[++i] ?? out);
    } else if (a === '--quick') {
      quick = true;
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(`usage: npm run bench [-- --only ${names.join(',')}] [--quick] [--out FILE]\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${String(a)}`);
  }
  return { only, out, quick };
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

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('   ')).join('\n');
}

function fmt(x: number): string {
  return Math.abs(x) >= 100 ? n0(x) : x.toFixed(2);
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
  if (r.targets.length > 0) {
    out.push('Targets');
    out.push(
      table([
        ['figure', 'measured', 'unit', 'target', 'met', 'load (1 min)', 'against'],
        ...r.targets.map((t) => [t.name, fmt(t.value), t.unit, t.target, t.met ? 'yes' : 'NO', t.loadAverage?.toFixed(1) ?? '', t.note ?? '']),
      ]),
      '',
    );
  }
  for (const [name, s] of Object.entries(r.sections)) {
    for (const t of s.tables) {
      out.push(`${t.title} [${name}, ${s.seconds.toFixed(0)} s, load ${s.loadAverageAtStart[0]} -> ${s.loadAverageAtEnd[0]}]`, table(t.rows), '');
    }
  }
  return out.join('\n');
}

async function openServer(url: string, label: string, cleanups: (() => Promise<unknown>)[], citusConns: boolean): Promise<BenchServer> {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle connection dropped at shutdown must not crash the run.
  pool.on('error', () => undefined);
  cleanups.push(() => pool.end());
  const caps = await detectCapabilities(pool);
  if (citusConns) configureSession(pool, caps, { citusCachedConnsPerWorker: 32 });
  const schemas: string[] = [];
  cleanups.push(async () => {
    for (const s of schemas) await pool.query(`DROP SCHEMA IF EXISTS ${ident(s)} CASCADE`);
  });
  return { label: caps.citus ? label.replace('PostgreSQL', 'Citus') : label, url, pool, caps, fresh: schemaFactory(pool, caps, schemas) };
}

async function main(): Promise<void> {
  const { only, out, quick } = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const cleanups: (() => Promise<unknown>)[] = [];
  const cpus = os.cpus();
  const results: Results = {
    generatedAt: new Date().toISOString(),
    machine: { cpus: cpus.length, cpuModel: cpus[0]?.model.trim() ?? '?', memoryGiB: os.totalmem() / 2 ** 30, node: process.version, os: `${os.type()} ${os.release()}`, loadAverageAtStart: loadAvg() },
    servers: [],
    targets: [],
    sections: {},
    seconds: 0,
  };
  try {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hubsink-bench-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const selected = SECTIONS.filter((s) => only.has(s.name));
    log('starting embedded PostgreSQL…');
    const startEmbeddedPostgres = await loadEmbeddedPostgres();
    const embedded = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg') });
    cleanups.push(() => embedded.stop());
    let azurite: string | undefined;
    if (selected.some((s) => s.needsAzurite)) {
      log('starting Azurite…');
      const az = await startAzurite();
      cleanups.push(() => az.stop());
      azurite = az.connectionString;
    }
    const server = await openServer(embedded.url, 'embedded PostgreSQL', cleanups, false);
    results.servers.push(await serverInfo(server.pool, server.label, server.caps));
    const otherUrl = process.env.TEST_DATABASE_URL;
    let other: BenchServer | undefined;
    if (otherUrl) {
      other = await openServer(otherUrl, 'PostgreSQL (TEST_DATABASE_URL)', cleanups, true);
      results.servers.push(await serverInfo(other.pool, other.label, other.caps));
    }
    const ctx: BenchContext = { server, ...(other ? { other } : {}), ...(azurite ? { azurite } : {}), repoRoot: REPO_ROOT, shared: new Map(), quick, log };
    for (const section of selected) {
      log(`${section.name}…`);
      const t0 = Date.now();
      const loadAverageAtStart = loadAvg();
      const r = await section.run(ctx);
      const loadAverageAtEnd = loadAvg();
      for (const t of r.targets) results.targets.push({ ...t, loadAverage: t.loadAverage ?? loadAverageAtEnd[0] ?? 0 });
      results.sections[section.name] = { loadAverageAtStart, loadAverageAtEnd, seconds: (Date.now() - t0) / 1000, tables: r.tables, data: r.data };
    }
  } finally {
    for (const c of cleanups.reverse()) await c().catch((err: unknown) => log(`clean-up: ${err instanceof Error ? err.message : String(err)}`));
  }
  results.seconds = (Date.now() - started) / 1000;
  results.machine.loadAverageAtEnd = loadAvg();
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
