/**
 * Insert stall benchmark: how long ingest's inserts wait while rollup cycles take their short
 * EXCLUSIVE lock on events (the wait for in-flight writers, src/rollups/run.ts). While that lock
 * request waits in the queue, every new insert queues behind it, so the worst insert latency under
 * rollups is the figure; the reference is the same writers in the same run without rollups.
 *
 * Writers: `streams` connections, each inserting a batch every `intervalMs` (fresh event ids, so
 * every row is new). A slow writer (one transaction held open for `slowHoldMs` every `slowEveryMs`,
 * as a slow batch would) is what makes a cycle's lock wait long; the bound on that wait is what
 * keeps the stall short. Each phase reports the worst and p99 insert latency, throughput and the
 * bench process's CPU per event.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Capabilities } from '../src/db/capabilities.js';
import { insertEventRows } from '../src/db/events.js';
import { ident } from '../src/db/ident.js';
import type { EventRow } from '../src/pipeline/types.js';
import { DEFAULT_LOCK_TIMEOUT_MS, RollupBusyError, runRollups } from '../src/rollups/run.js';
import { n0, type BenchContext, type BenchSection, type SectionResult } from './section.js';
import { makeEvents } from './ingest.js';

export interface StallPhase {
  name: string;
  rollups: boolean;
  slowWriter: boolean;
  lockTimeoutMs: number | null;
  inserts: number;
  eventsPerSec: number;
  cpuUsPerEvent: number;
  maxMs: number;
  p99Ms: number;
  medianMs: number;
  rollupCycles: number;
  rollupSkipped: number;
}

export interface StallFigure {
  streams: number;
  batchSize: number;
  intervalMs: number;
  phaseSeconds: number;
  rollupEveryMs: number;
  slowHoldMs: number;
  slowEveryMs: number;
  phases: StallPhase[];
}

function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
}

export async function benchStall(
  pool: pg.Pool,
  fresh: () => Promise<string>,
  caps: Capabilities,
  opts: { phaseSeconds: number; log: (s: string) => void },
): Promise<StallFigure> {
  const streams = 4;
  const batchSize = 250;
  const intervalMs = 100;
  const rollupEveryMs = 2_000;
  const slowHoldMs = 3_000;
  const slowEveryMs = 5_000;
  const template = makeEvents(20_000, 'stall').rows;
  const phases: StallPhase[] = [];

  const runPhase = async (name: string, p: { rollups: boolean; slowWriter: boolean; lockTimeoutMs?: number }): Promise<void> => {
    const schema = await fresh();
    const writers = await Promise.all(Array.from({ length: streams }, () => pool.connect()));
    const latencies: number[] = [];
    let events = 0;
    let offset = 0;
    let stop = false;
    const batch = (): EventRow[] => {
      const rows: EventRow[] = [];
      for (let i = 0; i < batchSize; i++) {
        const t = template[(offset + i) % template.length];
        if (t) rows.push({ ...t, eventId: randomUUID() });
      }
      offset += batchSize;
      return rows;
    };
    const writer = async (client: pg.PoolClient): Promise<void> => {
      while (!stop) {
        const rows = batch();
        const t0 = performance.now();
        await insertEventRows(client, schema, rows);
        const ms = performance.now() - t0;
        latencies.push(ms);
        events += rows.length;
        if (ms < intervalMs) await sleep(intervalMs - ms);
      }
    };
    let cycles = 0;
    let skipped = 0;
    const rollups = async (): Promise<void> => {
      while (!stop) {
        try {
          await runRollups(pool, schema, { caps, maxWindowRows: 1_000_000, ...(p.lockTimeoutMs !== undefined ? { lockTimeoutMs: p.lockTimeoutMs } : {}) });
          cycles++;
        } catch (err) {
          if (!(err instanceof RollupBusyError)) throw err;
          skipped++;
        }
        await sleep(rollupEveryMs);
      }
    };
    const slow = async (): Promise<void> => {
      const c = await pool.connect();
      try {
        while (!stop) {
          await c.query('BEGIN');
          await insertEventRows(c, schema, batch().slice(0, 1));
          await sleep(slowHoldMs);
          await c.query('COMMIT');
          await sleep(slowEveryMs - slowHoldMs);
        }
      } finally {
        c.release();
      }
    };
    const cpu0 = process.cpuUsage();
    const started = performance.now();
    const tasks = [...writers.map(writer), ...(p.rollups ? [rollups()] : []), ...(p.slowWriter ? [slow()] : [])];
    await sleep(opts.phaseSeconds * 1000);
    stop = true;
    await Promise.all(tasks);
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpu0);
    for (const w of writers) w.release();
    await pool.query(`DROP SCHEMA ${ident(schema)} CASCADE`);
    const phase: StallPhase = {
      name,
      rollups: p.rollups,
      slowWriter: p.slowWriter,
      lockTimeoutMs: p.rollups ? (p.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS) : null,
      inserts: latencies.length,
      eventsPerSec: events / seconds,
      cpuUsPerEvent: (cpu.user + cpu.system) / Math.max(1, events),
      maxMs: Math.max(0, ...latencies),
      p99Ms: quantile(latencies, 0.99),
      medianMs: quantile(latencies, 0.5),
      rollupCycles: cycles,
      rollupSkipped: skipped,
    };
    opts.log(
      `  ${name}: worst insert ${phase.maxMs.toFixed(0)} ms, p99 ${phase.p99Ms.toFixed(0)} ms, median ${phase.medianMs.toFixed(1)} ms, ` +
        `${Math.round(phase.eventsPerSec)} events/s, ${phase.cpuUsPerEvent.toFixed(1)} µs CPU/event${p.rollups ? `, rollup cycles ${cycles} done / ${skipped} skipped` : ''}`,
    );
    phases.push(phase);
  };

  await runPhase('writers only (reference)', { rollups: false, slowWriter: false });
  await runPhase('writers + rollups', { rollups: true, slowWriter: false });
  await runPhase('writers + slow writer (reference)', { rollups: false, slowWriter: true });
  await runPhase('writers + slow writer + rollups', { rollups: true, slowWriter: true });
  await runPhase('writers + slow writer + rollups, one lock wait of up to 10 s (the earlier per-rollup bound)', { rollups: true, slowWriter: true, lockTimeoutMs: 10_000 });
  return { streams, batchSize, intervalMs, phaseSeconds: opts.phaseSeconds, rollupEveryMs, slowHoldMs, slowEveryMs, phases };
}

export const stallSection: BenchSection = {
  name: 'stall',
  async run(ctx: BenchContext): Promise<SectionResult> {
    const srv = ctx.server;
    ctx.log(`insert stall under rollups on ${srv.label}`);
    const x = await benchStall(srv.pool, () => srv.fresh(), srv.caps, { phaseSeconds: ctx.quick ? 5 : 15, log: ctx.log });
    return {
      tables: [
        {
          title:
            `Insert stall on ${srv.label}: ${x.streams} writers, a batch of ${x.batchSize} every ${x.intervalMs} ms each, ${x.phaseSeconds} s per phase; rollup cycles every ${x.rollupEveryMs} ms; ` +
            `slow writer = one transaction held ${x.slowHoldMs} ms every ${x.slowEveryMs} ms`,
          rows: [
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
          ],
        },
      ],
      targets: [],
      data: { ...x, server: srv.label },
    };
  },
};
