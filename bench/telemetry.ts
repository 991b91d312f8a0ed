/**
 * What telemetry costs per event: the ingest path (ingestBatch, batches of 500) with telemetry off
 * (the no-op default) and on (OpenTelemetry instruments on a MeterProvider whose Prometheus reader
 * is collected every second, as a scrape would), alternating in one run; CPU per event from
 * process.cpuUsage. Telemetry is recorded once per batch, so the direct cost is also measured alone:
 * one ingestBatch() report on the instruments, per call.
 */
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type pg from 'pg';
import { loadConfig } from '../src/config.js';
import { ident } from '../src/db/ident.js';
import { TenantRegistry } from '../src/db/tenants.js';
import { ingestBatch } from '../src/ingest/ingestBatch.js';
import { createOtelTelemetry, METER_NAME } from '../src/telemetry/otel.js';
import { noopTelemetry, type Telemetry } from '../src/telemetry/telemetry.js';
import type { DeadLetterSink } from '../src/pipeline/types.js';
import { makeEvents } from './ingest.js';
import { n0, type BenchContext, type BenchSection, type SectionResult } from './section.js';

export interface TelemetryFigure {
  events: number;
  batchSize: number;
  reps: number;
  offPerSec: number;
  onPerSec: number;
  offCpuUsPerEvent: number;
  onCpuUsPerEvent: number;
  /** One report of a batch's counts on the instruments, alone. */
  reportNsPerBatch: number;
  reportNsPerEvent: number;
}

const refuseSink: DeadLetterSink = { send: (r) => Promise.reject(new Error(`bench events must be valid; ${r.length} dead-lettered`)) };

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

export async function benchTelemetry(pool: pg.Pool, schema: string, opts: { events: number; batchSize: number; reps: number; log: (s: string) => void }): Promise<TelemetryFigure> {
  const { raws } = makeEvents(opts.events, `bench-telemetry-${opts.events}`);
  const batches: (typeof raws)[] = [];
  for (let i = 0; i < raws.length; i += opts.batchSize) batches.push(raws.slice(i, i + opts.batchSize));
  const config = { ...loadConfig({}), schema };
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  const on = createOtelTelemetry(provider.getMeter(METER_NAME));
  const collect = (): Promise<unknown> => exporter.collect();

  const run = async (telemetry: Telemetry): Promise<{ seconds: number; cpuUs: number }> => {
    await pool.query(`TRUNCATE ${ident(schema)}.events, ${ident(schema)}.tenants`);
    const deps = { pool, config, sink: refuseSink, tenants: new TenantRegistry() };
    const scrape = telemetry === noopTelemetry ? undefined : setInterval(() => void collect(), 1000);
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (const b of batches) {
      const r = await ingestBatch(deps, b);
      telemetry.ingestBatch('clickstream', r);
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(scrape);
    return { seconds, cpuUs: cpu.user + cpu.system };
  };

  const off: { seconds: number; cpuUs: number }[] = [];
  const onRuns: { seconds: number; cpuUs: number }[] = [];
  for (let rep = 0; rep < opts.reps; rep++) {
    off.push(await run(noopTelemetry));
    onRuns.push(await run(on));
  }

  // The direct cost, without the database's noise: one report per batch of realistic counts.
  const counts = { received: opts.batchSize, inserted: opts.batchSize - 7, duplicates: 5, deadLettered: { invalid: 2, rejected: 0, transient: 0 }, latencyMs: 12 };
  const calls = 200_000;
  for (let i = 0; i < 10_000; i++) on.ingestBatch('clickstream', counts);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) on.ingestBatch('clickstream', counts);
  const reportNsPerBatch = Number(process.hrtime.bigint() - t0) / calls;
  await provider.shutdown();
  await pool.query(`TRUNCATE ${ident(schema)}.events, ${ident(schema)}.tenants`);

  const fig: TelemetryFigure = {
    events: opts.events,
    batchSize: opts.batchSize,
    reps: opts.reps,
    offPerSec: opts.events / median(off.map((r) => r.seconds)),
    onPerSec: opts.events / median(onRuns.map((r) => r.seconds)),
    offCpuUsPerEvent: median(off.map((r) => r.cpuUs)) / opts.events,
    onCpuUsPerEvent: median(onRuns.map((r) => r.cpuUs)) / opts.events,
    reportNsPerBatch,
    reportNsPerEvent: reportNsPerBatch / opts.batchSize,
  };
  opts.log(
    `  telemetry off ${Math.round(fig.offPerSec)}/s ${fig.offCpuUsPerEvent.toFixed(2)} µs CPU/event; on ${Math.round(fig.onPerSec)}/s ${fig.onCpuUsPerEvent.toFixed(2)} µs CPU/event; one report ${Math.round(reportNsPerBatch)} ns per batch`,
  );
  return fig;
}

export const telemetrySection: BenchSection = {
  name: 'telemetry',
  async run(ctx: BenchContext): Promise<SectionResult> {
    const srv = ctx.server;
    ctx.log(`telemetry cost on ${srv.label}`);
    const x = await benchTelemetry(srv.pool, await srv.fresh(), { events: ctx.quick ? 10_000 : 40_000, batchSize: 500, reps: ctx.quick ? 1 : 3, log: ctx.log });
    return {
      tables: [
        {
          title: `Telemetry cost on ${srv.label}: ingestBatch, ${n0(x.events)} events in batches of ${x.batchSize}, instruments off (no-op) vs on (OpenTelemetry, collected every second), median of ${x.reps}`,
          rows: [
            ['telemetry', 'events/s', 'CPU µs/event'],
            ['off', n0(x.offPerSec), x.offCpuUsPerEvent.toFixed(2)],
            ['on', n0(x.onPerSec), x.onCpuUsPerEvent.toFixed(2)],
            [`one batch report alone: ${n0(x.reportNsPerBatch)} ns`, '', (x.reportNsPerEvent / 1000).toFixed(4)],
          ],
        },
      ],
      targets: [],
      data: { ...x, server: srv.label },
    };
  },
};
