/**
 * `hubsink import` throughput: runImport over an NDJSON file of generated events (read, split,
 * validate, write through writeEvents, record progress) against COPY of the same rows, validated
 * beforehand and COPY-text encoded before the clock starts, in batches of the same size over one
 * connection (import writes one batch at a time), alternating in one run. CPU per line from
 * process.cpuUsage.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import type { Capabilities } from '../src/db/capabilities.js';
import { loadConfig } from '../src/config.js';
import { ident } from '../src/db/ident.js';
import { runImport } from '../src/import/importer.js';
import { resolveSources } from '../src/import/sources.js';
import { copyText, encodeCopyBytes } from '../src/db/copyEvents.js';
import { makeEvents } from './ingest.js';
import { n0, type BenchContext, type BenchSection, type SectionResult, type Target } from './section.js';

export interface ImportFigure {
  lines: number;
  batchSize: number;
  /** Rows per write statement of the import (HUBSINK_UPSERT_CHUNK). */
  chunkSize: number;
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

export async function benchImport(pool: pg.Pool, schema: string, caps: Capabilities, opts: { lines: number; batchSize: number; chunkSize?: number; reps: number; log: (s: string) => void }): Promise<ImportFigure> {
  const { raws, rows } = makeEvents(opts.lines, `bench-import-${opts.lines}`);
  const texts: Buffer[] = [];
  for (let i = 0; i < rows.length; i += opts.batchSize) texts.push(encodeCopyBytes(rows.slice(i, i + opts.batchSize)));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hubsink-bench-import-'));
  const file = path.join(dir, 'events.ndjson');
  await writeFile(file, Buffer.concat(raws.flatMap((r) => [r.body, Buffer.from('\n')])));
  const base = loadConfig(opts.chunkSize ? { HUBSINK_UPSERT_CHUNK: String(opts.chunkSize) } : {});
  const config = { ...base, schema };
  const chunkSize = opts.chunkSize ?? base.upsertChunkSize;
  const reset = () => pool.query(`TRUNCATE ${ident(schema)}.events, ${ident(schema)}.tenants, ${ident(schema)}.import_files, ${ident(schema)}.dead_letters`);
  const imp: { s: number; cpu: number }[] = [];
  const cp: { s: number; cpu: number }[] = [];
  try {
    for (let rep = 0; rep < opts.reps; rep++) {
      await reset();
      const sources = await resolveSources([file]);
      let cpu0 = process.cpuUsage();
      let t0 = process.hrtime.bigint();
      const s = await runImport(sources, { pool, caps, config, maxAgeDays: 30, batchSize: opts.batchSize, dryRun: false, rollup: false, csvMaps: new Map() });
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
    reps: opts.reps,
    importPerSec,
    copyPerSec,
    ratio: importPerSec / copyPerSec,
    importCpuUsPerLine: median(imp.map((r) => r.cpu)) / opts.lines,
    copyCpuUsPerLine: median(cp.map((r) => r.cpu)) / opts.lines,
  };
  opts.log(`  batch ${opts.batchSize}, chunk ${chunkSize}: import ${Math.round(importPerSec)} lines/s (${fig.importCpuUsPerLine.toFixed(1)} µs CPU/line), COPY ${Math.round(copyPerSec)}/s, ratio ${fig.ratio.toFixed(2)}`);
  return fig;
}

function cpuOf(u: NodeJS.CpuUsage): number {
  return u.user + u.system;
}

function importRows(label: string, x: ImportFigure): string[] {
  return [label, String(x.batchSize), String(x.chunkSize), n0(x.importPerSec), x.importCpuUsPerLine.toFixed(1), n0(x.copyPerSec), x.copyCpuUsPerLine.toFixed(1), x.ratio.toFixed(2)];
}

const IMPORT_HEADER = ['server', 'batch', 'rows per COPY', 'import lines/s', 'import Node CPU µs/line', 'COPY lines/s', 'COPY Node CPU µs/line', 'import / COPY'];

export const importSection: BenchSection = {
  name: 'import',
  async run(ctx: BenchContext): Promise<SectionResult> {
    const srv = ctx.server;
    ctx.log(`import on ${srv.label}`);
    const reps = ctx.quick ? 1 : 3;
    const x = await benchImport(srv.pool, await srv.fresh(), srv.caps, { lines: ctx.quick ? 20_000 : 100_000, batchSize: 5000, reps, log: ctx.log });
    const rows = [IMPORT_HEADER, importRows(srv.label, x)];
    const targets: Target[] = [
      { name: `hubsink import / COPY, ${srv.label}`, value: x.ratio, unit: '×', target: '>= 0.7', met: x.ratio >= 0.7, note: `COPY ${n0(x.copyPerSec)} lines/s, one connection, batches of ${x.batchSize}; import ${x.importCpuUsPerLine.toFixed(1)} µs Node CPU/line` },
    ];
    const data: Record<string, unknown> = { [srv.label]: x };
    const other = ctx.other;
    if (other) {
      // On Citus the rows per COPY decide the cost (each COPY pays per shard it touches): the
      // default of 1,000 beside each batch as one COPY, and larger batches.
      const lines = ctx.quick ? 20_000 : 50_000;
      const variants: { batchSize: number; chunkSize?: number }[] = other.caps.citus
        ? [{ batchSize: 5000 }, { batchSize: 5000, chunkSize: 5000 }, { batchSize: 20_000, chunkSize: 20_000 }]
        : [{ batchSize: 5000 }];
      const figs: ImportFigure[] = [];
      for (const v of variants) {
        ctx.log(`import on ${other.label}`);
        const f = await benchImport(other.pool, await other.fresh(), other.caps, { lines, ...v, reps: ctx.quick ? 1 : 2, log: ctx.log });
        figs.push(f);
        rows.push(importRows(other.label, f));
      }
      data[other.label] = figs;
      // The target is judged on the defaults (batches of 5,000, HUBSINK_UPSERT_CHUNK 1,000).
      const def = figs[0];
      if (def) {
        const goal = other.caps.citus ? 0.5 : 0.7;
        targets.push({ name: `hubsink import / COPY, ${other.label}`, value: def.ratio, unit: '×', target: `>= ${goal}`, met: def.ratio >= goal, note: `COPY ${n0(def.copyPerSec)} lines/s, batches of ${def.batchSize}, ${def.chunkSize} rows per COPY` });
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
