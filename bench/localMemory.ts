/**
 * `npm run bench:local-memory`: what the local stack's process holds over time, beside references
 * measured in the same run. Each configuration runs in a child process of its own (memory figures
 * of one process must not mix), for a bounded time, sampling `process.memoryUsage()` every few
 * seconds after a full GC (`--expose-gc`), so what is printed is what is retained, not garbage
 * waiting for the collector. Not a test: nothing passes or fails here.
 *
 *   npm run bench:local-memory                               # stack at 1500/s, stack idle, 120 s each
 *   npm run bench:local-memory -- --rate 200 --seconds 180
 *   npm run bench:local-memory -- --modes stack,emulator     # which configurations (see MODES)
 *   npm run bench:local-memory -- --modes stack,stack@arena2 # the same with MALLOC_ARENA_MAX=2
 *
 * Configurations:
 *   stack     `hubsink local` in-process (startLocalStack) with the generator at --rate, status polled
 *             every 2 s as the CLI does;
 *   idle      the same stack with the generator off: the reference for "what the stack costs at rest";
 *   emulator  the emulator alone with a producer at --rate and one plain consumer (no checkpoints,
 *             no database): the reference for what the Event Hubs part costs;
 *   produce   the emulator with the producer only (no consumer): what the log itself holds.
 *
 * Besides the process itself it reports its descendants' PSS (embedded PostgreSQL, Azurite), read
 * from /proc where there is one.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LocalStack } from '../src/local/stack.js';

const MODES = ['stack', 'idle', 'emulator', 'produce'] as const;
type Mode = (typeof MODES)[number];
/** A configuration, optionally with glibc's malloc limited to 2 arenas (`stack@arena2`). */
type Run = { mode: Mode; arena2: boolean; label: string };

interface Sample {
  t: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** PSS of every descendant process (PostgreSQL, Azurite), when /proc is there. */
  children: number;
  /** Of which PostgreSQL's processes. */
  postgres: number;
  /** Bytes of the segments the emulator holds its events in (retention bounds their bytes; these add at most two segments per partition). */
  logBytes: number;
  logEvents: number;
  /** Events accepted by the hub so far. */
  sent: number;
  /** Events ingested (stack) or received (emulator) so far. */
  done: number;
  cpuMs: number;
  load1: number;
}

interface Args {
  rate: number;
  seconds: number;
  every: number;
  modes: Run[];
  out?: string;
  child?: Mode;
  /** The emulator's byte cap per partition, MiB (default: the local stack's). */
  capMib?: number;
}

const MB = 1024 * 1024;
const mb = (b: number): string => (b / MB).toFixed(0);

function parseArgs(argv: readonly string[]): Args {
  const run = (label: string): Run => ({ mode: label.replace(/@arena2$/, '') as Mode, arena2: label.endsWith('@arena2'), label });
  const a: Args = { rate: 1500, seconds: 120, every: 5, modes: [run('stack'), run('idle')] };
  const num = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`${name} takes a number of at least ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--rate') a.rate = num(k, argv[++i], 0);
    else if (k === '--seconds') a.seconds = num(k, argv[++i], 10);
    else if (k === '--every') a.every = num(k, argv[++i], 1);
    else if (k === '--out') a.out = argv[++i];
    else if (k === '--cap-mib') a.capMib = num(k, argv[++i], 0.01);
    else if (k === '--modes' || k === '--child') {
      const list = (argv[++i] ?? '').split(',').filter(Boolean);
      const bad = list.filter((m) => !(MODES as readonly string[]).includes(k === '--child' ? m : m.replace(/@arena2$/, '')));
      if (bad.length > 0 || list.length === 0) throw new Error(`${k} takes ${k === '--child' ? 'one' : 'a comma-separated list'} of ${MODES.join(', ')}${k === '--child' ? '' : ' (each optionally with @arena2)'}`);
      if (k === '--child') a.child = list[0] as Mode;
      else a.modes = list.map(run);
    } else if (k === '--help' || k === '-h') {
      process.stdout.write(`usage: npm run bench:local-memory -- [--rate N] [--seconds S] [--every S] [--cap-mib M] [--modes ${MODES.join(',')}] [--out FILE]\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${String(k)}`);
  }
  return a;
}

/**
 * Memory of every descendant of `root`, and of those named postgres, from /proc (0 where there is
 * none). PSS, not RSS: PostgreSQL's backends share its buffer pool, and summing their RSS would
 * count those pages once per backend.
 */
async function descendantsPss(root: number): Promise<{ all: number; postgres: number }> {
  let entries: string[];
  try {
    entries = (await readdir('/proc')).filter((e) => /^\d+$/.test(e));
  } catch {
    return { all: 0, postgres: 0 };
  }
  const parent = new Map<number, number>();
  const isPostgres = new Set<number>();
  await Promise.all(
    entries.map(async (e) => {
      try {
        const stat = await readFile(`/proc/${e}/stat`, 'utf8');
        // The command name is in parentheses and may hold spaces: fields count from after it.
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).startsWith('postgres')) isPostgres.add(Number(e));
        parent.set(Number(e), Number(fields[1]));
      } catch {
        // The process ended meanwhile.
      }
    }),
  );
  const mine: number[] = [];
  for (const [pid, ppid] of parent) {
    let p: number | undefined = ppid;
    for (let depth = 0; p !== undefined && p > 1 && depth < 16; depth++) {
      if (p === root) {
        mine.push(pid);
        break;
      }
      p = parent.get(p);
    }
  }
  let all = 0;
  let postgres = 0;
  await Promise.all(
    mine.map(async (pid) => {
      try {
        const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
        const kb = Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
        all += kb * 1024;
        if (isPostgres.has(pid)) postgres += kb * 1024;
      } catch {
        // Ended meanwhile.
      }
    }),
  );
  return { all, postgres };
}

// ---- the child: one configuration ----

interface Running {
  counts(): { sent: number; done: number };
  retained(): { events: number; heldBytes: number };
  stop(): Promise<void>;
}

type Retention = { maxEventsPerPartition: number; maxBytesPerPartition: number };

async function retentionFor(capMib: number | undefined): Promise<Retention> {
  const { LOCAL_EMULATOR_RETENTION } = await import('../src/local/stackEventHubs.js');
  return capMib === undefined ? { ...LOCAL_EMULATOR_RETENTION } : { ...LOCAL_EMULATOR_RETENTION, maxBytesPerPartition: Math.round(capMib * MB) };
}

async function startStack(rate: number, dataDir: string, retention: Retention): Promise<Running> {
  const { startLocalStack } = await import('../src/local/stack.js');
  let warnings = 0;
  const stack: LocalStack = await startLocalStack({
    dataDir,
    rate,
    tenants: 20,
    duplicates: 0.01,
    malformed: 0.002,
    seed: 'bench-local-memory',
    ports: { postgres: 0, emulator: 0, azurite: 0, http: 0, telemetry: 0 },
    rollupIntervalMs: 10_000,
    emulatorRetention: retention,
    env: { ...process.env, HUBSINK_SCHEMA: 'bench_memory' },
    log: (level, message) => {
      if (level === 'warn' || level === 'error') {
        if (warnings++ < 20) process.stderr.write(`[stack] ${level} ${message}\n`);
      }
    },
  });
  let last = { sent: 0, done: 0 };
  // The CLI refreshes its status line every 2 s (a rollup-lag query every 4 s): so does this.
  const timer = setInterval(() => {
    void stack.status().then((s) => (last = { sent: s.generator.sent, done: s.runner.ingest.received }));
  }, 2000);
  return {
    counts: () => last,
    retained: () => stack.emulatorRetained() ?? { events: 0, heldBytes: 0 },
    async stop() {
      clearInterval(timer);
      await stack.stop();
    },
  };
}

async function startEmulatorLoad(rate: number, consume: boolean, retention: Retention): Promise<Running> {
  const { startEmulator } = await import('@hubsink/eventhubs-emulator');
  const { EventHubConsumerClient, earliestEventPosition } = await import('@azure/event-hubs');
  const { createProducer } = await import('../src/hubs/clients.js');
  const { createGenerator } = await import('../src/generator/generator.js');
  const { sendGenerated } = await import('../src/generator/send.js');
  const hub = 'events';
  // The stack's ingest hub: 4 partitions.
  const emulator = await startEmulator({ port: 0, hubs: [{ name: hub, partitions: 4 }], retention });
  const cs = emulator.connectionString();
  const producer = await createProducer({ kind: 'connectionString', connectionString: cs }, hub);
  const abort = new AbortController();
  let sent = 0;
  let done = 0;
  const sending = sendGenerated(producer, createGenerator({ seed: 'bench-local-memory', tenants: 20, duplicates: 0.01, malformed: 0.002 }), {
    rate,
    signal: abort.signal,
    onProgress: (n) => (sent = n),
  }).catch((err: unknown) => process.stderr.write(`[emulator] generator: ${String(err)}\n`));
  let consumer: InstanceType<typeof EventHubConsumerClient> | undefined;
  let sub: { close(): Promise<void> } | undefined;
  if (consume) {
    consumer = new EventHubConsumerClient('$Default', cs, hub);
    sub = consumer.subscribe(
      {
        processEvents: (events) => {
          done += events.length;
          return Promise.resolve();
        },
        processError: () => Promise.resolve(),
      },
      { startPosition: earliestEventPosition, maxBatchSize: 300, maxWaitTimeInSeconds: 1, skipParsingBodyAsJson: true },
    );
  }
  return {
    counts: () => ({ sent, done }),
    retained: () => emulator.retained(),
    async stop() {
      abort.abort();
      await sending;
      await sub?.close();
      await consumer?.close();
      await producer.close();
      await emulator.stop();
    },
  };
}

async function runChild(args: Args & { child: Mode }): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hubsink-bench-memory-'));
  const rate = args.child === 'idle' ? 0 : args.rate;
  const retention = await retentionFor(args.capMib);
  const running =
    args.child === 'stack' || args.child === 'idle' ? await startStack(rate, dataDir, retention) : await startEmulatorLoad(rate, args.child === 'emulator', retention);
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  const emit = async (): Promise<void> => {
    gc?.();
    const m = process.memoryUsage();
    const c = process.cpuUsage(cpu0);
    const kids = await descendantsPss(process.pid);
    const held = running.retained();
    const s: Sample = {
      t: (Date.now() - t0) / 1000,
      rss: m.rss,
      heapTotal: m.heapTotal,
      heapUsed: m.heapUsed,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      children: kids.all,
      postgres: kids.postgres,
      logBytes: held.heldBytes,
      logEvents: held.events,
      ...running.counts(),
      cpuMs: (c.user + c.system) / 1000,
      load1: os.loadavg()[0] ?? 0,
    };
    process.stdout.write(`${JSON.stringify(s)}\n`);
  };
  await emit();
  while (Date.now() - t0 < args.seconds * 1000) {
    await new Promise((r) => setTimeout(r, args.every * 1000));
    await emit();
  }
  await running.stop();
  await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
}

// ---- the parent: runs the configurations one after the other, prints tables ----

/** Least-squares slope of y over t (per second). */
function slope(points: readonly { t: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mt = points.reduce((s, p) => s + p.t, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const num = points.reduce((s, p) => s + (p.t - mt) * (p.y - my), 0);
  const den = points.reduce((s, p) => s + (p.t - mt) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

interface ModeResult {
  mode: string;
  rate: number;
  samples: Sample[];
  /** Over the last two thirds of the run (after start-up), MB per minute. */
  growth: { rss: number; heapUsed: number; external: number; logBytes: number; postgres: number; others: number };
  exitCode: number | null;
}

function runMode(run: Run, args: Args): Promise<ModeResult> {
  const mode = run.label;
  const script = fileURLToPath(import.meta.url);
  const childArgs = ['--expose-gc', script, '--child', run.mode, '--rate', String(args.rate), '--seconds', String(args.seconds), '--every', String(args.every)];
  if (args.capMib !== undefined) childArgs.push('--cap-mib', String(args.capMib));
  return new Promise((resolve, reject) => {
    const env = run.arena2 ? { ...process.env, MALLOC_ARENA_MAX: '2' } : process.env;
    const child = spawn(process.execPath, childArgs, { stdio: ['ignore', 'pipe', 'inherit'], env });
    const samples: Sample[] = [];
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const s = JSON.parse(line) as Sample;
          samples.push(s);
          process.stderr.write(`  ${mode} ${s.t.toFixed(0)} s: rss ${mb(s.rss)} MB, heap ${mb(s.heapUsed)} MB, external ${mb(s.external)} MB, log ${mb(s.logBytes)} MB, children ${mb(s.children)} MB (postgres ${mb(s.postgres)}), sent ${s.sent}, done ${s.done}\n`);
        } catch {
          process.stderr.write(`${line}\n`);
        }
      }
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      const late = samples.filter((s) => s.t >= args.seconds / 3);
      const per = (f: (s: Sample) => number): number => (slope(late.map((s) => ({ t: s.t, y: f(s) }))) * 60) / MB;
      resolve({
        mode,
        rate: run.mode === 'idle' ? 0 : args.rate,
        samples,
        growth: {
          rss: per((s) => s.rss),
          heapUsed: per((s) => s.heapUsed),
          external: per((s) => s.external),
          logBytes: per((s) => s.logBytes),
          postgres: per((s) => s.postgres),
          others: per((s) => s.children - s.postgres),
        },
        exitCode: code,
      });
    });
  });
}

function printTables(results: readonly ModeResult[], args: Args): void {
  const out: string[] = [];
  for (const r of results) {
    out.push(`\n${r.mode} (rate ${r.rate}/s, ${args.seconds} s, a sample every ${args.every} s after a full GC)`);
    out.push('| s | rss MB | heapTotal MB | heapUsed MB | external MB | arrayBuffers MB | emulator log MB | log events | PostgreSQL PSS MB | other children PSS MB | sent | done | CPU s | load |');
    out.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const s of r.samples) {
      out.push(`| ${s.t.toFixed(0)} | ${mb(s.rss)} | ${mb(s.heapTotal)} | ${mb(s.heapUsed)} | ${mb(s.external)} | ${mb(s.arrayBuffers)} | ${mb(s.logBytes)} | ${s.logEvents} | ${mb(s.postgres)} | ${mb(s.children - s.postgres)} | ${s.sent} | ${s.done} | ${(s.cpuMs / 1000).toFixed(1)} | ${s.load1.toFixed(2)} |`);
    }
  }
  out.push(`\nSummary (growth: least-squares slope over the last two thirds of each run)`);
  out.push('| configuration | rate/s | final rss MB | rss MB/min | heapUsed MB/min | external MB/min | log MB/min | PostgreSQL PSS MB (MB/min) | other children PSS MB (MB/min) | events done | CPU ms/event | load (mean) |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of results) {
    const last = r.samples[r.samples.length - 1];
    if (!last) {
      out.push(`| ${r.mode} | ${r.rate} | no samples (exit ${String(r.exitCode)}) | | | | | | | | | |`);
      continue;
    }
    const load = r.samples.reduce((s, x) => s + x.load1, 0) / r.samples.length;
    const cpuPerEvent = last.done > 0 ? (last.cpuMs / last.done).toFixed(3) : '-';
    out.push(
      `| ${r.mode} | ${r.rate} | ${mb(last.rss)} | ${r.growth.rss.toFixed(1)} | ${r.growth.heapUsed.toFixed(1)} | ${r.growth.external.toFixed(1)} | ${r.growth.logBytes.toFixed(1)} | ${mb(last.postgres)} (${r.growth.postgres.toFixed(1)}) | ${mb(last.children - last.postgres)} (${r.growth.others.toFixed(1)}) | ${last.done} | ${cpuPerEvent} | ${load.toFixed(2)} |`,
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.child) return runChild({ ...args, child: args.child });
  process.stderr.write(`local memory bench: ${args.modes.map((m) => m.label).join(', ')} at ${args.rate}/s, ${args.seconds} s each; MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? '(unset)'}\n`);
  const results: ModeResult[] = [];
  for (const mode of args.modes) results.push(await runMode(mode, args));
  printTables(results, args);
  if (args.out) {
    await writeFile(args.out, `${JSON.stringify({ generatedAt: new Date().toISOString(), cpus: os.cpus().length, node: process.version, mallocArenaMax: process.env.MALLOC_ARENA_MAX ?? null, args, results }, null, 2)}\n`);
  }
  if (results.some((r) => r.exitCode !== 0)) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
