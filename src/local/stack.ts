/**
 * The one-command local stack: embedded PostgreSQL (data kept between runs), Azurite, the Event
 * Hubs emulator with both hubs, migrations and partitions, the runner with its dead-letter consumer
 * and rollups, the generator at a modest rate, the metrics endpoint and the dashboard. External PostgreSQL or
 * Event Hubs replace the embedded ones when given. Everything started is stopped in reverse order.
 *
 * Each service starts in a module of its own (stackPostgres, stackStorage, stackEventHubs,
 * stackGenerator, stackHttp); the app's services come from the composition root (src/app). This
 * file puts them together.
 */
import path from 'node:path';
import { loadConfig, type AccessMode, type HubsinkConfig } from '../config.js';
import { buildAppServices } from '../app/services.js';
import { migrate } from '../db/migrate.js';
import { rollupStatus } from '../rollups/run.js';
import { describeError } from '../pipeline/classify.js';
import type { Logger } from '../operator/log.js';
import { startRunner, type Runner } from '../runner/runner.js';
import type { Principal } from '../serving/access.js';
import { preferredOrFreePort } from './ports.js';
import type { LocalStatus } from './status.js';
import { startStackEventHubs } from './stackEventHubs.js';
import { startStackGenerator } from './stackGenerator.js';
import { startStackHttp } from './stackHttp.js';
import { startStackPostgres } from './stackPostgres.js';
import { startStackStorage } from './stackStorage.js';
import { StopList } from './stackStops.js';

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

export async function startLocalStack(opts: LocalOptions): Promise<LocalStack> {
  const log = opts.log;
  const stops = new StopList(log);
  const base = loadConfig(opts.env);
  const dataDir = path.resolve(opts.dataDir);

  try {
    const postgres = await startStackPostgres({ dataDir, ...(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {}), port: opts.ports.postgres, log }, stops);
    const storage = await startStackStorage({ dataDir, persistent: opts.eventHubConnection !== undefined, port: opts.ports.azurite }, stops);
    const hubs = await startStackEventHubs(
      { ...(opts.eventHubConnection ? { eventHubConnection: opts.eventHubConnection } : {}), port: opts.ports.emulator, config: base, ...(opts.emulatorRetention ? { retention: opts.emulatorRetention } : {}) },
      stops,
    );

    const config = loadConfig({
      ...opts.env,
      [base.eventHubConnectionSetting]: hubs.connectionString,
      AzureWebJobsStorage: storage.connectionString,
      DATABASE_URL: postgres.databaseUrl,
      // Locally a database that went away is better reported soon than retried for long.
      HUBSINK_TRANSIENT_RETRY_MS: opts.env.HUBSINK_TRANSIENT_RETRY_MS ?? '5000',
    });

    const services = await buildAppServices(config);
    stops.add('the database pools', 10_000, () => services.close());
    const { pool } = services;
    const { applied } = await migrate(pool, config.schema, { log: (m) => log('info', m) });
    if (applied.length === 0) log('info', `schema ${config.schema} is up to date`);
    // Partitions: the runner maintains them itself, at start and every few hours (as `hubsink run` does).

    const { startMetricsEndpoint } = await import('../telemetry/endpoint.js');
    const telemetryEndpoint = await startMetricsEndpoint({ host: '127.0.0.1', port: await preferredOrFreePort(opts.ports.telemetry ?? 9464), log: (l) => log('warn', l) });
    stops.add('the telemetry endpoint', 5000, () => telemetryEndpoint.close());
    const runner: Runner = await startRunner({
      telemetry: telemetryEndpoint.telemetry,
      config,
      pool,
      log,
      deadLetter: true,
      rollups: true,
      rollupIntervalMs: opts.rollupIntervalMs,
      // One instance: claim the partitions quickly at start.
      loadBalancingIntervalMs: 1000,
      ownershipExpirationMs: 15_000,
    });
    stops.add('the runner', 60_000, () => runner.stop());
    telemetryEndpoint.setReadiness(() => runner.readiness());

    const http = await startStackHttp(services, { port: opts.ports.http, ...(opts.access ? { access: opts.access } : {}), log }, stops);

    const seed = opts.seed ?? `local-${Date.now().toString(36)}`;
    const gen = await startStackGenerator(
      { rate: opts.rate, tenants: opts.tenants, duplicates: opts.duplicates, malformed: opts.malformed, seed, eventHubConnection: hubs.connectionString, hub: config.ingestHub, runnerStats: () => runner.stats(), log },
      stops,
    );

    const info: LocalInfo = {
      databaseUrl: postgres.databaseUrl,
      embeddedPostgres: postgres.pgDataDir !== null,
      pgDataDir: postgres.pgDataDir,
      pgPasswordFile: postgres.pgPasswordFile,
      eventHubConnection: hubs.connectionString,
      emulator: hubs.emulator,
      storage: { port: storage.port, persistent: storage.persistent },
      metricsUrl: http.url,
      telemetryUrl: telemetryEndpoint.url,
      schema: config.schema,
      ingestHub: config.ingestHub,
      deadLetterHub: config.deadLetterHub,
      generator: opts.rate > 0 ? { rate: opts.rate, tenants: opts.tenants, seed } : null,
      firstTenant: 1,
      access: http.access,
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
      emulatorRetained: () => hubs.retained(),
      stop() {
        stopping ??= stops.stopAll();
        return stopping;
      },
    };
  } catch (err) {
    log('error', `start-up failed: ${describeError(err)}; stopping what was started`);
    await stops.stopAll();
    throw err;
  }
}
