/**
 * `hubsink import` throughput: runImport over an NDJSON file of generated events (read, split,
 * validate, write through writeEvents, record progress) against COPY of the same rows, validated
 * beforehand and COPY-text encoded before the clock starts, in batches of the same size over one
 * connection (import writes one batch at a time), alternating in one run. CPU per line from
 * process.cpuUsage (the whole process: worker threads included). With `workers` > 1 the import
 * decodes and writes on that many worker threads, each on its own connections; COPY stays one
 * connection, the reference the issue's target names.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import type { Capabilities } from '../src/db/capabilities.js';
import { loadConfig } from '../src/config.js';
import { ident } from '../src/db/ident.js';
import { importChunkSize, runImport } from '../src/import/importer.js';
import { resolveSources } from '../src/import/sources.js';
import { copyText, encodeCopyBytes } from '../src/db/copyEvents.js';
import { makeEvents } from './ingest.js';
import { n0, type BenchContext, type BenchSection, type SectionResult, type Target } from './section.js';

export interface ImportFigure {
  lines: number;
  batchSize: number;
  /** Rows per write statement of the import (HUBSINK_UPSERT_CHUNK). */
  chunkSize: number;
  /** Worker threads of the import (1: none). */
  workers: number;
  reps: number;
  importPerSec: number;
  copyPerSec: number;
  ratio: number;
  importCpuUsPerLine: number;
  copyCpuUsPerLine: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

export async function benchImport(pool: pg.Pool, schema: string, caps: Capabilities, opts: { url: string; lines: number; batchSize: number; chunkSize?: number; workers?: number; reps: number; log: (s: string) => void }): Promise<ImportFigure> {
  const { raws, rows } = makeEvents(opts.lines, `bench-import-${opts.lines}`);
  const texts: Buffer[] = [];
  for (let i = 0; i < rows.length; i += opts.batchSize) texts.push(encodeCopyBytes(rows.slice(i, i + opts.batchSize)));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hubsink-bench-import-'));
  const file = path.join(dir, 'events.ndjson');
  await writeFile(file, Buffer.concat(raws.flatMap((r) => [r.body, Buffer.from('\n')])));
  const base = loadConfig({ DATABASE_URL: opts.url, ...(opts.chunkSize ? { HUBSINK_UPSERT_CHUNK: String(opts.chunkSize) } : {}) });
  const workers = opts.workers ?? 1;
  const config = { ...base, schema };
  const chunkSize = importChunkSize(base, caps, opts.batchSize);
  const reset = () => pool.query(`TRUNCATE ${ident(schema)}.events, ${ident(schema)}.tenants, ${ident(schema)}.import_files, ${ident(schema)}.dead_letters`);
  const imp: { s: number; cpu: number }[] = [];
  const cp: { s: number; cpu: number }[] = [];
  try {
    for (let rep = 0; rep < opts.reps; rep++) {
      await reset();
      const sources = await resolveSources([file]);
      let cpu0 = process.cpuUsage();
      let t0 = process.hrtime.bigint();
      const s = await runImport(sources, { pool, caps, config, maxAgeDays: 30, batchSize: opts.batchSize, workers, workerConfig: config, dryRun: false, rollup: false, csvMaps: new Map() });
      imp.push({ s: Number(process.hrtime.bigint() - t0) / 1e9, cpu: cpuOf(process.cpuUsage(cpu0)) });
      if (s.inserted !== rows.length) throw new Error(`import inserted ${s.inserted} of ${rows.length}: ${s.stoppedBy ?? ''}`);

      await reset();
      const client = await pool.connect();
      try {
        let copied = 0;
        cpu0 = process.cpuUsage();
        t0 = process.hrtime.bigint();
        for (const text of texts) copied += await copyText(client, schema, text);
        cp.push({ s: Number(process.hrtime.bigint() - t0) / 1e9, cpu: cpuOf(process.cpuUsage(cpu0)) });
        if (copied !== rows.length) throw new Error(`COPY loaded ${copied} of ${rows.length}`);
      } finally {
        client.release();
      }
    }
  } finally {
    await reset();
    await rm(dir, { recursive: true, force: true });
  }
  const importPerSec = opts.lines / median(imp.map((r) => r.s));
  const copyPerSec = opts.lines / median(cp.map((r) => r.s));
  const fig: ImportFigure = {
    lines: opts.lines,
    batchSize: opts.batchSize,
    chunkSize,
    workers,
    reps: opts.reps,
    importPerSec,
    copyPerSec,
    ratio: importPerSec / copyPerSec,
    importCpuUsPerLine: median(imp.map((r) => r.cpu)) / opts.lines,
    copyCpuUsPerLine: median(cp.map((r) => r.cpu)) / opts.lines,
  };
  opts.log(`  batch ${opts.batchSize}, chunk ${chunkSize}, ${workers} worker(s): import ${Math.round(importPerSec)} lines/s (${fig.importCpuUsPerLine.toFixed(1)} µs CPU/line), COPY ${Math.round(copyPerSec)}/s, ratio ${fig.ratio.toFixed(2)}`);
  return fig;
}

function cpuOf(u: NodeJS.CpuUsage): number {
  return u.user + u.system;
}

function importRows(label: string, x: ImportFigure): string[] {
  return [label, String(x.batchSize), String(x.chunkSize), String(x.workers), n0(x.importPerSec), x.importCpuUsPerLine.toFixed(1), n0(x.copyPerSec), x.copyCpuUsPerLine.toFixed(1), x.ratio.toFixed(2)];
}

/** Worker threads of the parallel runs: one per core of this 2-core machine. */
const PARALLEL_WORKERS = 2;

const IMPORT_HEADER = ['server', 'batch', 'rows per COPY', 'worker threads', 'import lines/s', 'import Node CPU µs/line', 'COPY lines/s', 'COPY Node CPU µs/line', 'import / COPY'];

export const importSection: BenchSection = {
  name: 'import',
  async run(ctx: BenchContext): Promise<SectionResult> {
    const srv = ctx.server;
    ctx.log(`import on ${srv.label}`);
    const reps = ctx.quick ? 1 : 3;
    const lines = ctx.quick ? 20_000 : 100_000;
    const x = await benchImport(srv.pool, await srv.fresh(), srv.caps, { url: srv.url, lines, batchSize: 5000, reps, log: ctx.log });
    // Parallel decode on the same machine: worker threads share the cores with PostgreSQL here.
    const par = await benchImport(srv.pool, await srv.fresh(), srv.caps, { url: srv.url, lines, batchSize: 5000, workers: PARALLEL_WORKERS, reps, log: ctx.log });
    const rows = [IMPORT_HEADER, importRows(srv.label, x), importRows(srv.label, par)];
    const targets: Target[] = [
      { name: `hubsink import / COPY, ${srv.label}`, value: x.ratio, unit: '×', target: '>= 0.7', met: x.ratio >= 0.7, note: `COPY ${n0(x.copyPerSec)} lines/s, one connection, batches of ${x.batchSize}; import ${x.importCpuUsPerLine.toFixed(1)} µs Node CPU/line` },
      { name: `hubsink import --workers ${PARALLEL_WORKERS} / COPY, ${srv.label}`, value: par.ratio, unit: '×', target: '>= 0.7', met: par.ratio >= 0.7, note: `COPY ${n0(par.copyPerSec)} lines/s; import ${par.importCpuUsPerLine.toFixed(1)} µs Node CPU/line (all threads)` },
    ];
    const data: Record<string, unknown> = { [srv.label]: [x, par] };
    const other = ctx.other;
    if (other) {
      // On Citus the rows per COPY decide the cost (each COPY pays per shard it touches): the
      // default of 1,000 beside each batch as one COPY, and larger batches.
      const lines = ctx.quick ? 20_000 : 50_000;
      const variants: { batchSize: number; chunkSize?: number; workers?: number }[] = other.caps.citus
        ? [{ batchSize: 5000 }, { batchSize: 5000, workers: PARALLEL_WORKERS }, { batchSize: 5000, chunkSize: 1000 }, { batchSize: 20_000 }]
        : [{ batchSize: 5000 }, { batchSize: 5000, workers: PARALLEL_WORKERS }];
      const figs: ImportFigure[] = [];
      for (const v of variants) {
        ctx.log(`import on ${other.label}`);
        const f = await benchImport(other.pool, await other.fresh(), other.caps, { url: other.url, lines, ...v, reps: ctx.quick ? 1 : 2, log: ctx.log });
        figs.push(f);
        rows.push(importRows(other.label, f));
      }
      data[other.label] = figs;
      // The target is judged on the defaults (batches of 5,000; on Citus one COPY per batch), on one thread and in parallel.
      const goal = other.caps.citus ? 0.5 : 0.7;
      for (const f of figs.slice(0, 2)) {
        targets.push({ name: `hubsink import${f.workers > 1 ? ` --workers ${f.workers}` : ''} / COPY, ${other.label}`, value: f.ratio, unit: '×', target: `>= ${goal}`, met: f.ratio >= goal, note: `COPY ${n0(f.copyPerSec)} lines/s, batches of ${f.batchSize}, ${f.chunkSize} rows per COPY; import ${f.importCpuUsPerLine.toFixed(1)} µs Node CPU/line` });
      }
    }
    return {
      tables: [
        {
          title: `hubsink import: NDJSON lines (${n0(x.lines)} on ${srv.label}${other ? `, ${n0(ctx.quick ? 20_000 : 50_000)} on ${other.label}` : ''}), one connection, vs COPY of the same rows on it (validated and COPY-encoded beforehand, same batches), median of the runs; Node CPU from process.cpuUsage`,
          rows,
        },
      ],
      targets,
      data,
    };
  },
};
