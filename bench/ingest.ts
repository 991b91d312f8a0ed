/**
 * Ingest benchmark: hubsink's write path (decode + validate + de-duplicate + upsert through
 * ingestBatch, batches of 100 / 500 / 1,000 with many storefronts in each) against COPY of the same
 * rows into the same table, in the same run, alternating, so both see the same server state.
 */
import type pg from 'pg';
import { loadConfig } from '../src/config.js';
import { TenantRegistry } from '../src/db/tenants.js';
import { writeEvents } from '../src/db/events.js';
import { ident } from '../src/db/ident.js';
import { createGenerator } from '../src/generator/generator.js';
import { ingestBatch } from '../src/ingest/ingestBatch.js';
import type { DeadLetterSink, EventRow, RawEvent } from '../src/pipeline/types.js';
import { validateEvent } from '../src/pipeline/validate.js';
import { copyRows } from './copy.js';

export interface IngestFigure {
  batchSize: number;
  /** Batches written at once: 1, or one per Event Hubs partition as the runner does. */
  streams: number;
  events: number;
  /** Distinct storefronts per batch, on average. */
  tenantsPerBatch: number;
  pipelinePerSec: number;
  /** writeEvents alone on rows validated beforehand: the database side of the write path. */
  upsertPerSec: number;
  copyPerSec: number;
  /** pipeline / COPY; the target is >= 0.85 on plain PostgreSQL. */
  ratio: number;
  upsertRatio: number;
  reps: number;
}

const refuseSink: DeadLetterSink = {
  send: (records) => Promise.reject(new Error(`benchmark events must all be valid; ${records.length} were dead-lettered: ${records[0]?.error ?? ''}`)),
};

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

export function makeEvents(n: number, seed: string): { raws: RawEvent[]; rows: EventRow[] } {
  const gen = createGenerator({ seed, tenants: 500, skew: 0.6 });
  const now = new Date();
  const raws: RawEvent[] = [];
  for (let i = 0; i < n; i++) {
    const ev = gen.next();
    raws.push({ body: ev.body, properties: {}, source: { hub: 'clickstream', consumerGroup: '$Default', partitionId: String(i % 4), sequenceNumber: i, offset: String(i), enqueuedTime: now, partitionKey: ev.partitionKey } });
  }
  const rows = raws.map((raw) => {
    const v = validateEvent(raw, { now, retentionDays: 30, aheadDays: 3, maxBodyBytes: 256 * 1024 });
    if (!v.ok) throw new Error(`generated event invalid: ${v.error}`);
    return v.row;
  });
  return { raws, rows };
}

function chunks<T>(xs: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

async function truncate(pool: pg.Pool, schema: string): Promise<void> {
  await pool.query(`TRUNCATE ${ident(schema)}.events, ${ident(schema)}.tenants`);
}

/** Deals items round-robin into `n` streams (as events spread over partitions). */
function deal<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = Array.from({ length: n }, () => []);
  xs.forEach((x, i) => out[i % n]?.push(x));
  return out;
}

export async function benchIngest(
  pool: pg.Pool,
  schema: string,
  opts: { events: number; batchSizes: readonly number[]; streams: readonly number[]; reps: number; log: (s: string) => void },
): Promise<IngestFigure[]> {
  const { raws, rows } = makeEvents(opts.events, `bench-ingest-${opts.events}`);
  const config = { ...loadConfig({}), schema };
  const out: IngestFigure[] = [];
  for (const streams of opts.streams) {
    for (const size of opts.batchSizes) {
      const rawStreams = deal(raws, streams).map((s) => chunks(s, size));
      const rowStreams = deal(rows, streams).map((s) => chunks(s, size));
      const allRowChunks = rowStreams.flat();
      const tenantsPerBatch = allRowChunks.reduce((n, c) => n + new Set(c.map((r) => r.tenantId)).size, 0) / allRowChunks.length;
      const pipe: number[] = [];
      const upsert: number[] = [];
      const copy: number[] = [];
      for (let rep = 0; rep < opts.reps; rep++) {
        await truncate(pool, schema);
        const deps = { pool, config, sink: refuseSink, tenants: new TenantRegistry() };
        let inserted = 0;
        let t = process.hrtime.bigint();
        await Promise.all(
          rawStreams.map(async (stream) => {
            for (const c of stream) {
              // Not `inserted += await …`: that reads `inserted` before the await and loses the other streams' counts.
              const r = await ingestBatch(deps, c);
              inserted += r.inserted;
            }
          }),
        );
        pipe.push(Number(process.hrtime.bigint() - t) / 1e9);
        if (inserted !== raws.length) throw new Error(`pipeline inserted ${inserted} of ${raws.length}`);

        await truncate(pool, schema);
        const tenants = new TenantRegistry();
        let written = 0;
        t = process.hrtime.bigint();
        await Promise.all(
          rowStreams.map(async (stream) => {
            for (const c of stream) {
              const r = await writeEvents(pool, schema, c, { chunkSize: config.upsertChunkSize, transientRetryMs: config.transientRetryMs, tenants });
              written += r.inserted;
            }
          }),
        );
        upsert.push(Number(process.hrtime.bigint() - t) / 1e9);
        if (written !== rows.length) throw new Error(`upsert inserted ${written} of ${rows.length}`);

        await truncate(pool, schema);
        let copied = 0;
        const clients = await Promise.all(rowStreams.map(() => pool.connect()));
        try {
          t = process.hrtime.bigint();
          await Promise.all(
            rowStreams.map(async (stream, i) => {
              const client = clients[i];
              if (!client) return;
              for (const c of stream) {
                const n = await copyRows(client, schema, c);
                copied += n;
              }
            }),
          );
          copy.push(Number(process.hrtime.bigint() - t) / 1e9);
        } finally {
          for (const c of clients) c.release();
        }
        if (copied !== rows.length) throw new Error(`COPY loaded ${copied} of ${rows.length}`);
      }
      const pipelinePerSec = opts.events / median(pipe);
      const upsertPerSec = opts.events / median(upsert);
      const copyPerSec = opts.events / median(copy);
      out.push({
        batchSize: size,
        streams,
        events: opts.events,
        tenantsPerBatch: Math.round(tenantsPerBatch),
        pipelinePerSec,
        upsertPerSec,
        copyPerSec,
        ratio: pipelinePerSec / copyPerSec,
        upsertRatio: upsertPerSec / copyPerSec,
        reps: opts.reps,
      });
      opts.log(`  ${streams} stream(s), batch ${size}: pipeline ${Math.round(pipelinePerSec)}/s, upsert only ${Math.round(upsertPerSec)}/s, COPY ${Math.round(copyPerSec)}/s, ratio ${(pipelinePerSec / copyPerSec).toFixed(2)}`);
    }
  }
  await truncate(pool, schema);
  return out;
}
