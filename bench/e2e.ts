/**
 * End-to-end benchmark: the generator (in this process) sends through the emulator to a
 * `hubsink run` child process, which writes into PostgreSQL. Events/s from the first send to the
 * last insert, and the runner's peak resident memory (VmHWM).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { ident } from '../src/db/ident.js';
import { startEmulator } from '@hubsink/eventhubs-emulator';
import { createGenerator } from '../src/generator/generator.js';
import { sendGenerated } from '../src/generator/send.js';
import { createProducer } from '../src/hubs/clients.js';
import { n0, type BenchContext, type BenchSection, type SectionResult } from './section.js';

export interface E2eFigure {
  events: number;
  distinctValid: number;
  partitions: number;
  runnerBatchSize: number;
  sendPerSec: number;
  endToEndPerSec: number;
  runnerPeakRssMiB: number;
  /** Resident memory once the runner owns every partition, before the first event: what loading the code and clients costs. */
  runnerIdleRssMiB: number;
  /** The reference: a bare `node -e ''` process's resident memory, measured in the same run. */
  bareNodeRssMiB: number;
  /** The runner's CPU time (user + system, from /proc) per event sent, start-up excluded. */
  runnerCpuUsPerEvent: number;
  seconds: number;
}

/** utime + stime of a process in µs (from /proc; clock ticks are 100 Hz on Linux). */
async function cpuUs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? NaN) / 1024;
}

/** Resident memory of a bare Node process (no modules, no work), as the runner's memory is read. */
function bareNodeRss(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', 'process.stdout.write(String(process.memoryUsage().rss))'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', () => resolve(Number(out) / 1048576));
  });
}

async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = Number(/VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

export async function benchE2e(
  pool: pg.Pool,
  opts: { schema: string; databaseUrl: string; azurite: string; events: number; repoRoot: string; log: (s: string) => void },
): Promise<E2eFigure> {
  const partitions = 4;
  const batchSize = 300;
  const emu = await startEmulator({ port: 0, hubs: [{ name: 'clickstream', partitions }, { name: 'clickstream-deadletter', partitions: 2 }] });
  const child = spawn(
    process.execPath,
    [path.join(opts.repoRoot, 'bin', 'hubsink.js'), 'run', '--deadletter', '--checkpoint-container', `bench${Date.now().toString(36)}`, '--balance-interval-ms', '500', '--batch-size', String(batchSize), '--status-interval', '0'],
    {
      env: { PATH: process.env.PATH, EventHubConnection: emu.connectionString(), AzureWebJobsStorage: opts.azurite, DATABASE_URL: opts.databaseUrl, HUBSINK_SCHEMA: opts.schema },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const count = async (): Promise<number> => Number((await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${ident(opts.schema)}.events`)).rows[0]?.n ?? 0);
  try {
    // Wait until the runner owns every partition, so the clock measures the pipeline, not start-up.
    const deadline = Date.now() + 60_000;
    while ((stderr.match(/ingest: claimed partition/g) ?? []).length < partitions) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`runner did not claim the partitions:\n${stderr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const producer = await createProducer({ kind: 'connectionString', connectionString: emu.connectionString() }, 'clickstream');
    const gen = createGenerator({ seed: 'bench-e2e', tenants: 200, duplicates: 0.01, malformed: 0.001 });
    const distinct = new Set<string>();
    const cpu0 = child.pid ? await cpuUs(child.pid) : NaN;
    const idleRss = child.pid ? await rssMiB(child.pid) : NaN;
    const bareRss = await bareNodeRss();
    const t0 = process.hrtime.bigint();
    const sent = await sendGenerated(producer, gen, {
      count: opts.events,
      onSent: (evs) => {
        for (const e of evs) if (e.kind === 'event') distinct.add(e.body.toString('latin1'));
      },
    });
    const sendSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await producer.close();
    const expected = distinct.size;
    const until = Date.now() + 300_000;
    let n = 0;
    while ((n = await count()) < expected) {
      if (child.exitCode !== null || Date.now() > until) throw new Error(`runner wrote ${n} of ${expected} events:\n${stderr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const rss = child.pid ? await peakRssMiB(child.pid) : NaN;
    const cpu = child.pid ? (await cpuUs(child.pid)) - cpu0 : NaN;
    opts.log(`  ${sent.sent} events in ${seconds.toFixed(1)} s: ${Math.round(sent.sent / seconds)}/s end to end; runner RSS ${idleRss.toFixed(0)} MiB idle, peak ${rss.toFixed(0)} MiB; bare node ${bareRss.toFixed(0)} MiB`);
    return {
      events: sent.sent,
      distinctValid: expected,
      partitions,
      runnerBatchSize: batchSize,
      sendPerSec: sent.sent / sendSeconds,
      endToEndPerSec: sent.sent / seconds,
      runnerPeakRssMiB: rss,
      runnerCpuUsPerEvent: cpu / sent.sent,
      runnerIdleRssMiB: idleRss,
      bareNodeRssMiB: bareRss,
      seconds,
    };
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000))]);
    if (code === 'timeout') child.kill('SIGKILL');
    await emu.stop();
  }
}

export const e2eSection: BenchSection = {
  name: 'e2e',
  needsAzurite: true,
  async run(ctx: BenchContext): Promise<SectionResult> {
    const srv = ctx.server;
    if (!ctx.azurite) throw new Error('the e2e section needs Azurite');
    const e = await benchE2e(srv.pool, { schema: await srv.fresh(), databaseUrl: srv.url, azurite: ctx.azurite, events: ctx.quick ? 20_000 : 60_000, repoRoot: ctx.repoRoot, log: ctx.log });
    return {
      tables: [
        {
          title: `End to end on ${srv.label}: generator -> emulator (${e.partitions} partitions) -> hubsink run (batches of ${e.runnerBatchSize}, dead-letter consumer on) -> PostgreSQL`,
          rows: [
            ['events', 'generator events/s', 'end-to-end events/s', "reference: bare `node -e ''` RSS MiB", 'runner RSS idle MiB', 'runner peak RSS MiB', 'runner CPU µs/event'],
            [n0(e.events), n0(e.sendPerSec), n0(e.endToEndPerSec), e.bareNodeRssMiB.toFixed(0), e.runnerIdleRssMiB.toFixed(0), e.runnerPeakRssMiB.toFixed(0), e.runnerCpuUsPerEvent.toFixed(1)],
          ],
        },
      ],
      targets: [
        {
          name: 'runner peak RSS under sustained load',
          value: e.runnerPeakRssMiB,
          unit: 'MiB',
          target: '<= 150',
          met: e.runnerPeakRssMiB <= 150,
          note: `VmHWM of hubsink run while ${n0(e.events)} events arrive as fast as the generator sends (${n0(e.endToEndPerSec)}/s end to end); ${e.runnerIdleRssMiB.toFixed(0)} MiB before the first event; a bare \`node -e ''\` ${e.bareNodeRssMiB.toFixed(0)} MiB`,
        },
      ],
      data: { ...e, server: srv.label },
    };
  },
};
