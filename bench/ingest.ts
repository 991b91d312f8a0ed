/**
 * Ingest benchmark, three figures measured side by side in one run, alternating, on the same table:
 *
 * - COPY, the reference: `COPY events FROM STDIN` of the same rows, text encoded before the clock
 *   starts, one connection per stream. Nothing but COPY is timed.
 * - the write statement (database side): what the write path sends for a chunk, on payloads encoded
 *   beforehand: COPY (chunks of at least HUBSINK_COPY_MIN_ROWS) or the unnest upsert (smaller ones),
 *   through writeChunk's choice, with tenants registered beforehand.
 * - the whole write path: ingestBatch on raw bodies, exactly the `ingest` function's and the
 *   runner's path (decode, validate, de-duplicate, register tenants, encode, write).
 *
 * Plus Node's CPU per event for decode + validate + de-duplicate + encode-for-write alone
 * (prepareBatch and encodeCopyBytes, no database; bench/cpu.ts), from process.cpuUsage over every event.
 */
import os from 'node:os';
import type pg from 'pg';
import { DEFAULT_COPY_MIN_ROWS, loadConfig } from '../src/config.js';
import { CopyAdvisor, copyChunk, copyText, encodeCopyBytes } from '../src/db/copyEvents.js';
import { insertEventRows, insertEventsSql } from '../src/db/events.js';
import { ident } from '../src/db/ident.js';
import { TenantRegistry } from '../src/db/tenants.js';
import { ingestBatch } from '../src/ingest/ingestBatch.js';
import type { DeadLetterSink, EventRow } from '../src/pipeline/types.js';
import { benchCpu, chunks, cpuNow, describeCpu, makeEvents, MIXES } from './cpu.js';
import { median, n0, type BenchContext, type BenchSection, type BenchServer, type SectionResult, type Target } from './section.js';

export interface IngestFigure {
  batchSize: number;
  /** Batches written at once: 1, or one per Event Hubs partition as the runner does. */
  streams: number;
  events: number;
  /** Distinct storefronts per batch, on average. */
  tenantsPerBatch: number;
  /** 'copy' or 'upsert': what the write path uses for this batch size. */
  statement: string;
  copyPerSec: number;
  statementPerSec: number;
  pathPerSec: number;
  /** Node CPU (user + system) per event over the whole-path runs, pg client included. */
  pathCpuUsPerEvent: number;
  statementRatio: number;
  pathRatio: number;
  reps: number;
}

const refuseSink: DeadLetterSink = {
  send: (records) => Promise.reject(new Error(`benchmark events must all be valid; ${records.length} were dead-lettered: ${records[0]?.error ?? ''}`)),
};

export { makeEvents };

/** Deals items round-robin into `n` streams (as events spread over partitions). */
function deal<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = Array.from({ length: n }, () => []);
  xs.forEach((x, i) => out[i % n]?.push(x));
  return out;
}

async function truncate(pool: pg.Pool, schema: string): Promise<void> {
  // On a shared Citus coordinator TRUNCATE can meet a deadlock with other sessions' DDL: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query(`TRUNCATE ${ident(schema)}.events, ${ident(schema)}.tenants`);
      return;
    } catch (err) {
      if ((err as { code?: unknown }).code !== '40P01' || attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

async function timed(fn: () => Promise<void>): Promise<{ seconds: number; cpuUs: number }> {
  const c0 = cpuNow();
  const t0 = process.hrtime.bigint();
  await fn();
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuUs: cpuNow() - c0 };
}

export async function benchIngest(
  pool: pg.Pool,
  schema: string,
  opts: { events: number; batchSizes: readonly number[]; streams: readonly number[]; reps: number; log: (s: string) => void },
): Promise<IngestFigure[]> {
  const { raws, rows } = makeEvents(opts.events, `bench-ingest-${opts.events}`);
  const config = { ...loadConfig({}), schema };
  const allTenants = [...new Set(rows.map((r) => r.tenantId))].sort((a, b) => a - b);
  const out: IngestFigure[] = [];
  for (const streams of opts.streams) {
    for (const size of opts.batchSizes) {
      const rawStreams = deal(raws, streams).map((s) => chunks(s, size));
      const rowStreams = deal(rows, streams).map((s) => chunks(s, size));
      const useCopy = size >= config.copyMinRows;
      // Encoded before any clock starts: the COPY reference and the statement figure time the server.
      const texts = rowStreams.map((s) => s.map((c) => encodeCopyBytes(c)));
      const statements = useCopy ? [] : rowStreams.map((s) => s.map((c) => insertEventsSql(schema, c)));
      const allRowChunks = rowStreams.flat();
      const tenantsPerBatch = allRowChunks.reduce((n, c) => n + new Set(c.map((r) => r.tenantId)).size, 0) / allRowChunks.length;
      const copy: number[] = [];
      const statement: number[] = [];
      const whole: number[] = [];
      let wholeCpu = 0;
      for (let rep = 0; rep < opts.reps; rep++) {
        // 1. COPY, the reference.
        await truncate(pool, schema);
        let copied = 0;
        const clients = await Promise.all(rowStreams.map(() => pool.connect()));
        try {
          const t = await timed(async () => {
            await Promise.all(
              texts.map(async (stream, i) => {
                const client = clients[i];
                if (!client) return;
                for (const buf of stream) {
                  // Not `copied += await …`: that reads `copied` before the await and loses the other streams' counts.
                  const n = await copyText(client, schema, buf);
                  copied += n;
                }
              }),
            );
          });
          copy.push(t.seconds);
        } finally {
          for (const c of clients) c.release();
        }
        if (copied !== rows.length) throw new Error(`COPY loaded ${copied} of ${rows.length}`);

        // 2. The write statement on payloads encoded beforehand (tenants registered beforehand).
        await truncate(pool, schema);
        await pool.query(`INSERT INTO ${ident(schema)}.tenants (tenant_id) SELECT unnest($1::bigint[])`, [allTenants]);
        let written = 0;
        const advisor = new CopyAdvisor();
        const upsert = (c: readonly EventRow[]) => insertEventRows(pool, schema, c);
        const ts = await timed(async () => {
          await Promise.all(
            rowStreams.map(async (stream, i) => {
              for (let j = 0; j < stream.length; j++) {
                const c = stream[j] ?? [];
                const st = statements[i]?.[j];
                if (!useCopy && !st) throw new Error(`no statement prepared for stream ${i} chunk ${j}`);
                const n = useCopy || !st ? (await copyChunk(pool, schema, c, upsert, advisor, texts[i]?.[j])).inserted : (await pool.query(st)).rows.length;
                written += n;
              }
            }),
          );
        });
        statement.push(ts.seconds);
        if (written !== rows.length) throw new Error(`the write statement inserted ${written} of ${rows.length}`);

        // 3. The whole write path on raw bodies.
        await truncate(pool, schema);
        const deps = { pool, config, sink: refuseSink, tenants: new TenantRegistry() };
        let inserted = 0;
        const tw = await timed(async () => {
          await Promise.all(
            rawStreams.map(async (stream) => {
              for (const c of stream) {
                // Not `inserted += await …`: that reads `inserted` before the await and loses the other streams' counts.
                const r = await ingestBatch(deps, c);
                inserted += r.inserted;
              }
            }),
          );
        });
        whole.push(tw.seconds);
        wholeCpu += tw.cpuUs;
        if (inserted !== raws.length) throw new Error(`the write path inserted ${inserted} of ${raws.length}`);
      }
      const copyPerSec = opts.events / median(copy);
      const statementPerSec = opts.events / median(statement);
      const pathPerSec = opts.events / median(whole);
      const f: IngestFigure = {
        batchSize: size,
        streams,
        events: opts.events,
        tenantsPerBatch: Math.round(tenantsPerBatch),
        statement: useCopy ? 'copy' : 'upsert',
        copyPerSec,
        statementPerSec,
        pathPerSec,
        pathCpuUsPerEvent: wholeCpu / (opts.events * opts.reps),
        statementRatio: statementPerSec / copyPerSec,
        pathRatio: pathPerSec / copyPerSec,
        reps: opts.reps,
      };
      out.push(f);
      opts.log(
        `  ${streams} stream(s), batch ${size}: COPY ${n0(copyPerSec)}/s, statement (${f.statement}) ${n0(statementPerSec)}/s (${f.statementRatio.toFixed(2)}), whole path ${n0(pathPerSec)}/s (${f.pathRatio.toFixed(2)}), ${f.pathCpuUsPerEvent.toFixed(1)} µs Node CPU/event`,
      );
    }
  }
  await truncate(pool, schema);
  return out;
}

function ingestTable(server: string, settings: string, figures: readonly IngestFigure[]): { title: string; rows: string[][] } {
  return {
    title: `Ingest into ${server} (${settings}): events/s; statement = what the write path sends, on payloads encoded beforehand; whole path = ingestBatch on raw bodies`,
    rows: [
      ['batch', 'streams', 'storefronts/batch', 'statement', 'COPY', 'statement', 'whole path', 'statement/COPY', 'whole/COPY', 'Node CPU µs/event (whole)'],
      ...figures.map((f) => [
        String(f.batchSize),
        String(f.streams),
        String(f.tenantsPerBatch),
        f.statement,
        n0(f.copyPerSec),
        n0(f.statementPerSec),
        n0(f.pathPerSec),
        f.statementRatio.toFixed(2),
        f.pathRatio.toFixed(2),
        f.pathCpuUsPerEvent.toFixed(1),
      ]),
    ],
  };
}

/** The figure the targets are stated for: batches of 1,000, one stream per partition (4). */
function headline(figures: readonly IngestFigure[]): IngestFigure | undefined {
  return figures.find((f) => f.batchSize === 1000 && f.streams === 4) ?? figures[figures.length - 1];
}

async function onServer(ctx: BenchContext, srv: BenchServer, events: number, reps: number): Promise<{ settings: string; figures: IngestFigure[] }> {
  ctx.log(`ingest on ${srv.label}`);
  const figures = await benchIngest(srv.pool, await srv.fresh(), { events, batchSizes: [100, 500, 1000], streams: [1, 4], reps, log: ctx.log });
  return { settings: `${n0(events)} events, 500 storefronts, median of ${reps} alternating runs${srv.caps.citus ? ', citus.max_cached_conns_per_worker=32' : ''}`, figures };
}

export const ingestSection: BenchSection = {
  name: 'ingest',
  async run(ctx: BenchContext): Promise<SectionResult> {
    const tables: SectionResult['tables'] = [];
    const targets: Target[] = [];
    const data: Record<string, unknown> = {};

    const cpuEvents = ctx.quick ? 20_000 : 60_000;
    const cpus = MIXES.map((mix) => benchCpu(makeEvents(cpuEvents, 'bench-cpu', mix).raws, 1000, ctx.quick ? 3 : 5, mix));
    data.cpu = cpus;
    const load = (os.loadavg()[0] ?? NaN).toFixed(1);
    for (const cpu of cpus) ctx.log(`  ${describeCpu(cpu)}`);
    tables.push({
      title: `Node CPU per well-formed event (${n0(cpuEvents)} events per mix, batches of 1,000, median of ${ctx.quick ? 3 : 5}; process.cpuUsage; load ${load})`,
      rows: [
        ['mix', 'bytes/event', 'decode + validate + de-dup', 'encode (COPY text)', 'total µs/event', 'reference: decode + JSON.parse alone', 'total / JSON.parse', 'zod path alone (validateEvent)'],
        ...cpus.map((cpu) => [
          cpu.mix,
          n0(cpu.bodyBytes),
          cpu.prepareUsPerEvent.toFixed(2),
          cpu.encodeUsPerEvent.toFixed(2),
          cpu.usPerEvent.toFixed(2),
          cpu.jsonParseUsPerEvent.toFixed(2),
          (cpu.usPerEvent / cpu.jsonParseUsPerEvent).toFixed(2),
          cpu.zodUsPerEvent.toFixed(2),
        ]),
      ],
    });
    for (const cpu of cpus) {
      targets.push({ name: `Node CPU per event (${cpu.mix} mix): decode + validate + de-dup + encode`, value: cpu.usPerEvent, unit: 'µs', target: '<= 3', met: cpu.usPerEvent <= 3, note: `decode + JSON.parse alone ${cpu.jsonParseUsPerEvent.toFixed(2)} µs; zod path alone ${cpu.zodUsPerEvent.toFixed(1)} µs` });
    }

    const main = await onServer(ctx, ctx.server, ctx.quick ? 20_000 : 60_000, ctx.quick ? 1 : 3);
    data[ctx.server.label] = main;
    tables.push(ingestTable(ctx.server.label, main.settings, main.figures));
    const h = headline(main.figures);
    if (h) {
      const against = `COPY ${n0(h.copyPerSec)}/s, batch ${h.batchSize}, ${h.streams} streams`;
      targets.push({ name: `write statement / COPY, ${ctx.server.label}`, value: h.statementRatio, unit: '×', target: '>= 0.9', met: h.statementRatio >= 0.9, note: against });
      targets.push({ name: `whole write path / COPY, ${ctx.server.label}`, value: h.pathRatio, unit: '×', target: '>= 0.6', met: h.pathRatio >= 0.6, note: against });
    }
    if (ctx.other) {
      const o = await onServer(ctx, ctx.other, ctx.quick ? 10_000 : 20_000, ctx.quick ? 1 : 2);
      data[ctx.other.label] = o;
      tables.push(ingestTable(ctx.other.label, o.settings, o.figures));
      const oh = headline(o.figures);
      if (oh) {
        const goal = ctx.other.caps.citus ? 0.85 : 0.6;
        targets.push({
          name: `whole write path / COPY, ${ctx.other.label}`,
          value: oh.pathRatio,
          unit: '×',
          target: `>= ${goal}`,
          met: oh.pathRatio >= goal,
          note: `COPY ${n0(oh.copyPerSec)}/s, batch ${oh.batchSize}, ${oh.streams} streams; statement/COPY ${oh.statementRatio.toFixed(2)}`,
        });
      }
    }
    data.copyMinRows = DEFAULT_COPY_MIN_ROWS;
    return { tables, targets, data };
  },
};
