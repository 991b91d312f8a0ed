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

export interface E2eFigure {
  events: number;
  distinctValid: number;
  partitions: number;
  runnerBatchSize: number;
  sendPerSec: number;
  endToEndPerSec: number;
  runnerPeakRssMiB: number;
  seconds: number;
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
    opts.log(`  ${sent.sent} events in ${seconds.toFixed(1)} s: ${Math.round(sent.sent / seconds)}/s end to end; runner peak RSS ${rss.toFixed(0)} MiB`);
    return {
      events: sent.sent,
      distinctValid: expected,
      partitions,
      runnerBatchSize: batchSize,
      sendPerSec: sent.sent / sendSeconds,
      endToEndPerSec: sent.sent / seconds,
      runnerPeakRssMiB: rss,
      seconds,
    };
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000))]);
    if (code === 'timeout') child.kill('SIGKILL');
    await emu.stop();
  }
}
