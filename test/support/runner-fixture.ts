/**
 * What the `hubsink run` end-to-end tests share: an emulator with both hubs, a migrated schema,
 * a unique checkpoint container on Azurite, the generator as the producer, runner child processes
 * (`node bin/hubsink.js run`), and the exact expected contents of `events`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { startEmulator, type Emulator } from '@hubsink/eventhubs-emulator';
import { createProducer } from '../../src/hubs/clients.js';
import { migrate } from '../../src/db/migrate.js';
import { maintainPartitions } from '../../src/db/partitions.js';
import { detectCapabilities } from '../../src/db/capabilities.js';
import { createGenerator, type GeneratedEvent } from '../../src/generator/generator.js';
import { sendGenerated } from '../../src/generator/send.js';
import { createTestSchema, testAzuriteConnection, testDatabaseUrl, uniqueName, type TestSchema } from './services.js';
import { truthOfLabels } from './labels.js';
import { startDatabaseProxy, type TcpProxy } from './tcpProxy.js';

/** The repository root, from test/support/. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Stack {
  emu: Emulator;
  db: TestSchema;
  hub: string;
  dlHub: string;
  container: string;
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/** `prepare: false` leaves the schema empty, as a user who has run nothing yet has it. */
export async function startStack(opts: { partitions?: number; prepare?: boolean } = {}): Promise<Stack> {
  const hub = uniqueName('rin');
  const dlHub = uniqueName('rdl');
  const emu = await startEmulator({
    port: 0,
    hubs: [
      { name: hub, partitions: opts.partitions ?? 4 },
      { name: dlHub, partitions: 2 },
    ],
  });
  const db = await createTestSchema('run_');
  try {
    if (opts.prepare === false) return stackOf(emu, db, hub, dlHub);
    await migrate(db.pool, db.schema);
    const caps = await detectCapabilities(db.pool);
    await maintainPartitions(db.pool, db.schema, { now: new Date(), aheadDays: 3, retentionDays: 30, caps });
  } catch (err) {
    await db.drop();
    await emu.stop();
    throw err;
  }
  return stackOf(emu, db, hub, dlHub);
}

function stackOf(emu: Emulator, db: TestSchema, hub: string, dlHub: string): Stack {
  const container = uniqueName('ckpt');
  return {
    emu,
    db,
    hub,
    dlHub,
    container,
    env: (extra = {}) => {
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        EventHubConnection: emu.connectionString(),
        INGEST_EVENTHUB_NAME: hub,
        DEADLETTER_EVENTHUB_NAME: dlHub,
        AzureWebJobsStorage: testAzuriteConnection(),
        DATABASE_URL: testDatabaseUrl(),
        HUBSINK_SCHEMA: db.schema,
        PGPOOL_MAX: '6',
        ...extra,
      };
      return env;
    },
    close: async () => {
      await db.drop();
      await emu.stop();
    },
  };
}

export interface SentLoad {
  events: GeneratedEvent[];
  /** rowKey of every distinct valid event: exactly what `events` must hold. */
  expected: Set<string>;
  malformed: number;
}

/** Sends `count` generated events to the ingest hub with the real producer. */
export async function sendLoad(stack: Stack, opts: { count: number; duplicates: number; malformed: number; seed: string; tenants?: number; rate?: number }): Promise<SentLoad> {
  const producer = await createProducer({ kind: 'connectionString', connectionString: stack.emu.connectionString() }, stack.hub);
  const gen = createGenerator({ seed: opts.seed, tenants: opts.tenants ?? 40, duplicates: opts.duplicates, malformed: opts.malformed });
  const events: GeneratedEvent[] = [];
  try {
    await sendGenerated(producer, gen, { count: opts.count, ...(opts.rate ? { rate: opts.rate } : {}), onSent: (evs) => events.push(...evs) });
  } finally {
    await producer.close();
  }
  return { events, ...expectedOf(events) };
}

/** The ground truth, from the generator's labels (test/support/labels.ts), not from the validator under test. */
export function expectedOf(events: readonly GeneratedEvent[]): { expected: Set<string>; malformed: number } {
  const t = truthOfLabels(events);
  return { expected: t.expected, malformed: t.malformedAt.length };
}

export async function eventKeys(pool: pg.Pool, schema: string): Promise<string[]> {
  const { rows } = await pool.query<{ tenant_id: string; event_id: string; occurred_at: Date }>(
    `SELECT tenant_id::text, event_id::text, occurred_at FROM "${schema}".events`,
  );
  return rows.map((r) => `${r.tenant_id}|${r.event_id}|${r.occurred_at.getTime()}`);
}

export async function countRows(pool: pg.Pool, schema: string, table: 'events' | 'dead_letters'): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${schema}".${table}`);
  return Number(rows[0]?.n ?? 0);
}

/** Polls until `done`; `timeoutMs` only guards against a hang (make it generous), it claims no speed. */
export async function waitFor<T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!done(last)) {
    if (Date.now() > deadline) throw new Error(`hang guard: still waiting for ${what} after ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 250));
    last = await probe();
  }
  return last;
}

export interface RunnerProcess {
  child: ChildProcess;
  /** Everything written to stderr so far. */
  stderr(): string;
  stdoutLines(): string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `node bin/hubsink.js <args>` with the stack's settings. */
export function spawnHubsink(args: readonly string[], env: NodeJS.ProcessEnv): RunnerProcess {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'hubsink.js'), ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString('utf8')));
  child.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, stderr: () => err, stdoutLines: () => out.split('\n').filter((l) => l.trim() !== ''), exited };
}

/** Fast balancing so tests do not wait for the SDK's 10 s / 60 s defaults. */
export function runnerArgs(stack: Stack, extra: readonly string[] = []): string[] {
  return ['run', '--checkpoint-container', stack.container, '--balance-interval-ms', '500', '--ownership-expiry-ms', '4000', '--status-interval', '0', '--max-wait', '0.5', ...extra];
}

/** Stops a child for good (tests' cleanup): SIGKILL if it is still there. */
export async function kill(p: RunnerProcess): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await p.exited;
}

/**
 * A test file's stack and the runner processes it spawns: the stack starts before the file's tests
 * (handed to `set`), and after them every child in `children` is killed and the stack closed. With
 * `databaseProxy`, a TCP proxy in front of the test database is started too (for outages), and
 * stopped after the children.
 */
export function stackForFile(
  set: (stack: Stack) => void,
  children: RunnerProcess[],
  opts: Parameters<typeof startStack>[0] & { databaseProxy?: (proxy: TcpProxy) => void } = {},
): void {
  const { databaseProxy, ...stackOpts } = opts;
  let stack: Stack | undefined;
  let proxy: TcpProxy | undefined;
  beforeAll(async () => {
    stack = await startStack(stackOpts);
    set(stack);
    if (databaseProxy) databaseProxy((proxy = await startDatabaseProxy()));
  });
  afterAll(async () => {
    for (const c of children) await kill(c);
    await proxy?.stop();
    await stack?.close();
  });
}

/** The first difference between what `events` holds and what it should hold, for a readable failure. */
export function diff(actual: readonly string[], expected: Set<string>): string {
  const a = new Set(actual);
  const missing = [...expected].filter((k) => !a.has(k));
  const extra = [...a].filter((k) => !expected.has(k));
  const dup = actual.length - a.size;
  return `missing ${missing.length} (e.g. ${missing.slice(0, 2).join(', ')}), unexpected ${extra.length} (e.g. ${extra.slice(0, 2).join(', ')}), repeated ${dup}`;
}

export { uniqueName };
