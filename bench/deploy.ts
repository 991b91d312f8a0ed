/**
 * The deployable's size and cold import time: on a consumption plan the package is fetched and
 * loaded at every cold start. Each import runs in a fresh `node` process (so nothing is cached in
 * memory) and is timed inside it; the reference is importing the same function modules unbundled
 * from dist/src/functions with node_modules, in the same run.
 */
import { execFile } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { BenchContext, BenchSection, SectionResult } from './section.js';

export interface DeployFigure {
  deployBytes: number;
  bundleBytes: number;
  runs: number;
  bundle: { medianMs: number; cpuMs: number };
  unbundled: { medianMs: number; cpuMs: number; modules: number };
}

async function size(p: string): Promise<number> {
  const st = await stat(p);
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const e of await readdir(p)) n += await size(path.join(p, e));
  return n;
}

// The Functions host provides @azure/functions-core; outside it, a stand-in that accepts registrations.
const CHILD = `
import Module from 'node:module';
const orig = Module._load;
const core = { setProgrammingModel() {}, getProgrammingModel() {}, registerHook: () => ({ dispose() {} }), log() {}, registerFunction: () => ({ dispose() {} }) };
Module._load = function (r, ...a) { return r === '@azure/functions-core' ? core : orig.call(this, r, ...a); };
const files = JSON.parse(process.env.BENCH_FILES);
const c0 = process.cpuUsage();
const t0 = performance.now();
for (const f of files) await import(f);
const ms = performance.now() - t0;
const cpu = process.cpuUsage(c0);
process.stdout.write(JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000 }));
process.exit(0);
`;

function importOnce(files: string[], cwd: string): Promise<{ ms: number; cpuMs: number }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', CHILD],
      { cwd, env: { PATH: process.env.PATH ?? '', BENCH_FILES: JSON.stringify(files), INGEST_EVENTHUB_NAME: 'bench', DEADLETTER_EVENTHUB_NAME: 'bench-dl' }, timeout: 60_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(JSON.parse(stdout) as { ms: number; cpuMs: number })),
    );
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

export async function benchDeploy(opts: { repoRoot: string; runs: number; log: (s: string) => void }): Promise<DeployFigure> {
  const deploy = path.join(opts.repoRoot, 'deploy');
  const bundle = path.join(deploy, 'dist', 'functions.js');
  const fnDir = path.join(opts.repoRoot, 'dist', 'src', 'functions');
  const modules = (await readdir(fnDir)).filter((f) => f.endsWith('.js') && f !== 'context.js').map((f) => path.join(fnDir, f));
  const b: { ms: number; cpuMs: number }[] = [];
  const u: { ms: number; cpuMs: number }[] = [];
  // Alternate, so a change in machine load hits both alike.
  for (let i = 0; i < opts.runs; i++) {
    b.push(await importOnce([bundle], deploy));
    u.push(await importOnce(modules, opts.repoRoot));
  }
  opts.log(`deploy: ${opts.runs} cold imports each`);
  return {
    deployBytes: await size(deploy),
    bundleBytes: await size(bundle),
    runs: opts.runs,
    bundle: { medianMs: median(b.map((x) => x.ms)), cpuMs: median(b.map((x) => x.cpuMs)) },
    unbundled: { medianMs: median(u.map((x) => x.ms)), cpuMs: median(u.map((x) => x.cpuMs)), modules: modules.length },
  };
}

export const deploySection: BenchSection = {
  name: 'deploy',
  async run(ctx: BenchContext): Promise<SectionResult> {
    const d = await benchDeploy({ repoRoot: ctx.repoRoot, runs: ctx.quick ? 3 : 7, log: ctx.log });
    const mb = (n: number): string => (n / 1024 / 1024).toFixed(2);
    return {
      tables: [
        {
          title: `Deployable (deploy/, the Function App): ${mb(d.deployBytes)} MB, of which the bundle dist/functions.js ${mb(d.bundleBytes)} MB; cold import in a fresh node, median of ${d.runs}`,
          rows: [
            ['import', 'ms', 'CPU ms'],
            ['deploy/dist/functions.js (bundle)', d.bundle.medianMs.toFixed(0), d.bundle.cpuMs.toFixed(0)],
            [`dist/src/functions (${d.unbundled.modules} modules + node_modules, reference)`, d.unbundled.medianMs.toFixed(0), d.unbundled.cpuMs.toFixed(0)],
          ],
        },
      ],
      targets: [],
      data: d,
    };
  },
};
