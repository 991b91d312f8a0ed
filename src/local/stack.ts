/**
 * The one-command local stack: embedded PostgreSQL (data kept between runs), Azurite, the Event
 * Hubs emulator with both hubs, migrations and partitions, the runner with its dead-letter consumer
 * and rollups, the generator at a modest rate, the metrics endpoint and the dashboard. External PostgreSQL or
 * Event Hubs replace the embedded ones when given. Everything started is stopped in reverse order.
 */
import { createHash } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, type AccessMode, type HubsinkConfig } from '../config.js';
import { makeServingHandlers } from '../app/serving.js';
import { buildAppServices } from '../app/services.js';
import { migrate } from '../db/migrate.js';
import { rollupStatus } from '../rollups/run.js';
import { startEmulator } from '@hubsink/eventhubs-emulator';
import { createGenerator } from '../generator/generator.js';
import { sendGenerated } from '../generator/send.js';
import { createProducer } from '../hubs/clients.js';
import { describeError } from '../pipeline/classify.js';
import type { Logger } from '../runner/checkpointingConsumer.js';
import { startRunner, type Runner } from '../runner/runner.js';
import type { RunnerStats } from '../runner/stats.js';
import { databaseAccess, type Principal } from '../serving/access.js';
import { startAzurite } from './azurite.js';
import { loadEmbeddedPostgres } from './embedded.js';
import { serveMetrics } from './http.js';
import { preferredOrFreePort } from './ports.js';
import { blockedForPostgresUser } from './reach.js';
import type { LocalStatus } from './status.js';
import { sumOf } from '../pipeline/types.js';

/**
 * A long local run must not grow without bound: at most 16 MiB of events per partition (6
 * partitions: ~96 MiB of bodies at most), as `hubsink emulator` bounds its own by bytes.
 */
export const LOCAL_EMULATOR_RETENTION = { maxEventsPerPartition: 250_000, maxBytesPerPartition: 16 * 1024 * 1024 } as const;

/** How long a stop waits for the runner to receive what the generator sent. */
const DRAIN_MS = 10_000;

/** Pure: events sent that the runner has not yet received, on the ingest and dead-letter hubs. */
export function undrained(stats: RunnerStats, sent: number): { ingest: number; deadLetter: number } {
  const i = stats.ingest;
  const toDeadLetter = sumOf(i.deadLettered);
  return {
    ingest: Math.max(0, sent - i.received),
    deadLetter: stats.deadletter.enabled ? Math.max(0, toDeadLetter - stats.deadletter.received) : 0,
  };
}

async function drainHubs(stats: () => RunnerStats, sent: () => number, log: Logger, ms = DRAIN_MS): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = undrained(stats(), sent());
    if (left.ingest === 0 && left.deadLetter === 0) return;
    if (Date.now() > deadline) {
      log('warn', `stopping with ${left.ingest} sent event(s) not yet received from the ingest hub and ${left.deadLetter} from the dead-letter hub (waited ${ms / 1000} s)`);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface LocalOptions {
  /** Project-local folder for PostgreSQL's data (and Azurite's, with external Event Hubs). */
  dataDir: string;
  /** External PostgreSQL instead of the embedded one. */
  databaseUrl?: string;
  /** External Event Hubs (a connection string) instead of the emulator. */
  eventHubConnection?: string;
  /** Generator events per second; 0 turns it off. */
  rate: number;
  tenants: number;
  duplicates: number;
  malformed: number;
  seed?: string;
  /** Preferred ports (0: any free one); a taken preferred port falls back to a free one. */
  ports: { postgres: number; emulator: number; azurite: number; http: number; telemetry?: number };
  rollupIntervalMs: number;
  /** The emulator's retention (default LOCAL_EMULATOR_RETENTION); the memory bench lowers it. */
  emulatorRetention?: { maxEventsPerPartition?: number; maxBytesPerPartition?: number };
  /** The environment settings are read from (schema, hub names, limits). */
  env: Record<string, string | undefined>;
  log: Logger;
  /**
   * Access mode of the HTTP endpoints (default: HUBSINK_ACCESS of `env`, else key). In entra mode
   * the local server plays App Service authentication: it signs every request in as `principal`
   * (none: every request is a 401), and the grants in the database decide.
   */
  access?: { mode: AccessMode; principal?: Principal | null };
}

export interface LocalInfo {
  /** With its password: print it only through redactSecrets. */
  databaseUrl: string;
  embeddedPostgres: boolean;
  pgDataDir: string | null;
  /** The embedded PostgreSQL's password file (mode 0600), when the stack runs one. */
  pgPasswordFile: string | null;
  eventHubConnection: string;
  emulator: { port: number; hubs: string[] } | null;
  storage: { port: number; persistent: boolean };
  metricsUrl: string;
  /** The runner's /metrics (Prometheus), /healthz and /readyz. */
  telemetryUrl?: string;
  schema: string;
  ingestHub: string;
  deadLetterHub: string;
  generator: { rate: number; tenants: number; seed: string } | null;
  firstTenant: number;
  /** How the HTTP endpoints decide who reads what (entra: as which development principal). */
  access: { mode: AccessMode; principal: Principal | null };
}

export interface LocalStack {
  info: LocalInfo;
  config: HubsinkConfig;
  status(): Promise<LocalStatus>;
  /** What the emulator holds now (null with external Event Hubs). */
  emulatorRetained(): { events: number; bytes: number; heldBytes: number } | null;
  stop(): Promise<void>;
}

/** Runs `fn`, giving up (with a log line) after `ms`: shutdown must not hang on one piece. */
async function bounded(what: string, ms: number, log: Logger, fn: () => Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  try {
    const r = await Promise.race([fn().then(() => 'done' as const), timeout]);
    if (r === 'timeout') log('warn', `stopping ${what} took longer than ${ms} ms; going on`);
  } catch (err) {
    log('warn', `stopping ${what}: ${describeError(err)}`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * As root, embedded PostgreSQL runs as the `postgres` user, which must be able to walk down to its
 * data folder. initdb's own error ("Permission denied") does not say what to do; this does.
 */
export async function checkReachableByPostgresUser(dataDir: string): Promise<void> {
  const blocked = await blockedForPostgresUser(path.dirname(dataDir));
  if (blocked) {
    throw new Error(
      `as root, PostgreSQL runs as the "postgres" user, which cannot enter ${blocked.dir} (mode ${blocked.mode}); ` +
        'pick a --data-dir below a folder others may enter (e.g. /tmp/hubsink), run as a normal user, or use --database-url',
    );
  }
}

/**
 * Where the embedded server keeps its data. Normally `<data-dir>/pg`. As root with a data folder the
 * `postgres` user cannot reach (a checkout in root's mode-700 home, or in a mktemp folder), a
 * folder of the system temp dir named after the data folder instead, so `npm start` works from
 * any checkout and keeps its data between runs. That folder is made by root; one that exists and
 * belongs to another user is refused rather than trusted.
 */
export async function embeddedDataFolder(dataDir: string, isRoot = process.getuid?.() === 0, tempRoot = tmpdir()): Promise<{ dir: string; movedBecause?: string }> {
  const wanted = path.join(dataDir, 'pg');
  // The data folder itself is opened up (mode 755) when the server starts; what lies above it is not ours to change.
  const blocked = await blockedForPostgresUser(path.dirname(dataDir), isRoot);
  if (!blocked) return { dir: wanted };
  const parent = path.join(tempRoot, `hubsink-local-${createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 12)}`);
  await mkdir(parent, { recursive: true, mode: 0o755 });
  const st = await stat(parent);
  if (st.uid !== (process.getuid?.() ?? st.uid)) throw new Error(`${parent} exists and belongs to another user; pick a --data-dir below a folder others may enter, or use --database-url`);
  return { dir: path.join(parent, 'pg'), movedBecause: `the postgres user cannot enter ${blocked.dir} (mode ${blocked.mode})` };
}

export async function startLocalStack(opts: LocalOptions): Promise<LocalStack> {
  const log = opts.log;
  const stops: { what: string; ms: number; fn: () => Promise<unknown> }[] = [];
  const stopAll = async (): Promise<void> => {
    while (stops.length > 0) {
      const s = stops.pop();
      if (s) await bounded(s.what, s.ms, log, s.fn);
    }
  };
  const base = loadConfig(opts.env);
  const dataDir = path.resolve(opts.dataDir);

  try {
    // PostgreSQL
    let databaseUrl = opts.databaseUrl;
    let pgDataDir: string | null = null;
    let pgPasswordFile: string | null = null;
    if (!databaseUrl) {
      const folder = await embeddedDataFolder(dataDir);
      pgDataDir = folder.dir;
      if (folder.movedBecause) log('warn', `PostgreSQL data kept in ${pgDataDir}, not below ${dataDir}: as root it runs as "postgres", and ${folder.movedBecause}`);
      await checkReachableByPostgresUser(path.dirname(pgDataDir));
      log('info', `starting embedded PostgreSQL (data in ${pgDataDir})`);
      const startEmbeddedPostgres = await loadEmbeddedPostgres();
      const port = await preferredOrFreePort(opts.ports.postgres);
      const pgServer = await startEmbeddedPostgres({ dataDir: pgDataDir, port, persistent: true });
      stops.push({ what: 'PostgreSQL', ms: 30_000, fn: () => pgServer.stop() });
      databaseUrl = pgServer.url;
      pgPasswordFile = pgServer.passwordFile;
    }

    // Checkpoint storage. With the emulator, hubs start empty on every run, so checkpoints must too.
    const persistentStorage = opts.eventHubConnection !== undefined;
    const azurite = await startAzurite({
      port: await preferredOrFreePort(opts.ports.azurite),
      ...(persistentStorage ? { location: path.join(dataDir, 'azurite') } : {}),
    });
    stops.push({ what: 'Azurite', ms: 10_000, fn: () => azurite.stop() });

    // Event Hubs
    let eventHubConnection = opts.eventHubConnection;
    let emulatorInfo: LocalInfo['emulator'] = null;
    let emulatorRetained: () => { events: number; bytes: number; heldBytes: number } | null = () => null;
    if (!eventHubConnection) {
      const port = await preferredOrFreePort(opts.ports.emulator);
      const groups = [base.replayConsumerGroup, base.consumerGroup, base.deadLetterConsumerGroup].filter((g, i, a) => g !== '$Default' && a.indexOf(g) === i);
      const emulator = await startEmulator({
        port,
        hubs: [
          { name: base.ingestHub, partitions: 4, consumerGroups: groups },
          { name: base.deadLetterHub, partitions: 2, consumerGroups: groups },
        ],
        retention: opts.emulatorRetention ?? LOCAL_EMULATOR_RETENTION,
      });
      stops.push({ what: 'the Event Hubs emulator', ms: 10_000, fn: () => emulator.stop() });
      eventHubConnection = emulator.connectionString();
      emulatorRetained = () => emulator.retained();
      emulatorInfo = { port: emulator.port, hubs: [`${base.ingestHub} (4 partitions)`, `${base.deadLetterHub} (2 partitions)`] };
    }

    const config = loadConfig({
      ...opts.env,
      [base.eventHubConnectionSetting]: eventHubConnection,
      AzureWebJobsStorage: azurite.connectionString,
      DATABASE_URL: databaseUrl,
      // Locally a database that went away is better reported soon than retried for long.
      HUBSINK_TRANSIENT_RETRY_MS: opts.env.HUBSINK_TRANSIENT_RETRY_MS ?? '5000',
    });

    const services = await buildAppServices(config);
    stops.push({ what: 'the database pools', ms: 10_000, fn: () => services.close() });
    const { pool, caps } = services;
    const { applied } = await migrate(pool, config.schema, { log: (m) => log('info', m) });
    if (applied.length === 0) log('info', `schema ${config.schema} is up to date`);
    // Partitions: the runner maintains them itself, at start and every few hours (as `hubsink run` does).

    const { startMetricsEndpoint } = await import('../telemetry/endpoint.js');
    const telemetryEndpoint = await startMetricsEndpoint({ host: '127.0.0.1', port: await preferredOrFreePort(opts.ports.telemetry ?? 9464), log: (l) => log('warn', l) });
    stops.push({ what: 'the telemetry endpoint', ms: 5000, fn: () => telemetryEndpoint.close() });
    const runner: Runner = await startRunner({
      telemetry: telemetryEndpoint.telemetry,
      config,
      pool,
      log,
      deadletter: true,
      rollups: true,
      rollupIntervalMs: opts.rollupIntervalMs,
      // One instance: claim the partitions quickly at start.
      loadBalancingIntervalMs: 1000,
      ownershipExpirationMs: 15_000,
    });
    stops.push({ what: 'the runner', ms: 60_000, fn: () => runner.stop() });
    telemetryEndpoint.setReadiness(() => runner.readiness());

    // Dashboard queries on their own small pool, as in the Function App, so they cannot starve ingest.
    const servingPool = await services.servingPool();
    const accessMode = opts.access?.mode ?? config.access.mode;
    const principal = accessMode === 'entra' ? (opts.access?.principal ?? null) : null;
    // The local server strips client-sent principal headers as the platform does, so its own are believed.
    const access = accessMode === 'entra' ? { access: databaseAccess(servingPool, config.schema, true) } : {};
    const handlers = makeServingHandlers(() => Promise.resolve({ pool: servingPool, config, caps, ...access }), { entra: accessMode === 'entra' });
    const http = await serveMetrics(handlers, {
      port: await preferredOrFreePort(opts.ports.http),
      log: (l) => log('warn', l),
      ...(accessMode === 'entra' ? { principal } : {}),
    });
    stops.push({ what: 'the metrics endpoint', ms: 5000, fn: () => http.close() });

    // Generator
    const seed = opts.seed ?? `local-${Date.now().toString(36)}`;
    const gen = { enabled: opts.rate > 0, sent: 0, error: null as string | null };
    if (opts.rate > 0) {
      const producer = await createProducer({ kind: 'connectionString', connectionString: eventHubConnection }, config.ingestHub);
      const generator = createGenerator({ seed, tenants: opts.tenants, duplicates: opts.duplicates, malformed: opts.malformed });
      const abort = new AbortController();
      const sending = sendGenerated(producer, generator, { rate: opts.rate, signal: abort.signal, onProgress: (n) => (gen.sent = n) }).catch((err: unknown) => {
        gen.error = describeError(err);
        log('error', `generator stopped: ${gen.error}`);
      });
      // Popped after the generator's stop: the emulator's hubs live in this process, so what the
      // runner has not received when the stack stops is gone with them.
      stops.push({ what: 'draining the hubs', ms: DRAIN_MS + 5000, fn: () => drainHubs(() => runner.stats(), () => gen.sent, log) });
      stops.push({
        what: 'the generator',
        ms: 15_000,
        fn: async () => {
          abort.abort();
          await sending;
          await producer.close();
        },
      });
    }

    const info: LocalInfo = {
      databaseUrl,
      embeddedPostgres: pgDataDir !== null,
      pgDataDir,
      pgPasswordFile,
      eventHubConnection,
      emulator: emulatorInfo,
      storage: { port: azurite.port, persistent: persistentStorage },
      metricsUrl: http.url,
      telemetryUrl: telemetryEndpoint.url,
      schema: config.schema,
      ingestHub: config.ingestHub,
      deadLetterHub: config.deadLetterHub,
      generator: opts.rate > 0 ? { rate: opts.rate, tenants: opts.tenants, seed } : null,
      firstTenant: 1,
      access: { mode: accessMode, principal },
    };

    const startedAt = Date.now();
    let lag: LocalStatus['rollupLag'] = null;
    let lagAt = 0;
    let stopping: Promise<void> | undefined;
    return {
      info,
      config,
      async status() {
        // Rollup lag costs a few queries; refresh it every few seconds only.
        if (Date.now() - lagAt > 4000 && !stopping) {
          lagAt = Date.now();
          try {
            const st = await rollupStatus(pool, config.schema, { pendingBound: 100_000 });
            lag = st.length === 0 ? null : { seconds: Math.max(...st.map((s) => s.lagSeconds)), pendingRows: Math.max(...st.map((s) => s.pendingRows)), capped: st.some((s) => s.pendingCapped) };
          } catch (err) {
            log('debug', `rollup status: ${describeError(err)}`);
          }
        }
        return { now: Date.now(), startedAt, generator: { enabled: gen.enabled, sent: gen.sent, rate: opts.rate, error: gen.error }, runner: runner.stats(), rollupLag: lag, recent: [] };
      },
      emulatorRetained: () => emulatorRetained(),
      stop() {
        stopping ??= stopAll();
        return stopping;
      },
    };
  } catch (err) {
    log('error', `start-up failed: ${describeError(err)}; stopping what was started`);
    await stopAll();
    throw err;
  }
}
