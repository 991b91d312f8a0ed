/**
 * Process-wide dependencies of the Azure Functions handlers, created once on first use (config is
 * parsed once; one pool per worker process). Registrations stay thin: they pass `getAppContext`
 * to handler factories, and tests pass their own dependencies instead.
 *
 * Only successes are cached. A build that fails (the database unreachable at start-up, an identity
 * error before the managed identity is ready) is forgotten, so the next invocation builds again
 * instead of failing forever with the first error; and a pool built before the failure is ended.
 */
import type { EventHubProducerClient } from '@azure/event-hubs';
import type pg from 'pg';
import { loadConfig, requireEventHubs, type HubsinkConfig } from '../config.js';
import { createPool, createServingPool } from '../db/pool.js';
import { detectCapabilities, type Capabilities } from '../db/capabilities.js';
import { configureSession } from '../db/session.js';
import { TenantRegistry } from '../db/tenants.js';
import { createDeadLetterProducer, EventHubDeadLetterSink } from '../hubs/deadLetterSink.js';
import { parkOversize } from '../deadletters/oversize.js';
import type { DeadLetterSink } from '../pipeline/types.js';
import { parkedByReason, poolUsage } from '../db/probes.js';
import { rollupFreshness } from '../rollups/freshness.js';
import { app as functionsApp } from '@azure/functions';
import { azureMonitorTelemetry, type AppTelemetry } from '../telemetry/azure.js';
import { appHubGauges, type AppHubGauges } from '../telemetry/appGauges.js';
import { noopTelemetry, type GaugeSources, type Telemetry } from '../telemetry/telemetry.js';

export interface AppContext {
  config: HubsinkConfig;
  pool: pg.Pool;
  caps: Capabilities;
  tenants: TenantRegistry;
  /** Azure Monitor when APPLICATIONINSIGHTS_CONNECTION_STRING is set, else a no-op. */
  telemetry: Telemetry;
  /** The metrics API's own small pool (statement_timeout on), created on first use. */
  servingPool(): Promise<pg.Pool>;
  /** Created on first use: functions that never dead-letter do not need Event Hubs settings. */
  deadLetterSink(): Promise<DeadLetterSink>;
}

/** What building the context needs; injected in tests. */
export interface AppContextDeps {
  config: () => HubsinkConfig;
  createPool: (config: HubsinkConfig) => Promise<pg.Pool>;
  createServingPool: (config: HubsinkConfig) => Promise<pg.Pool>;
  detectCapabilities: (pool: pg.Pool) => Promise<Capabilities>;
  createProducer: (config: HubsinkConfig) => Promise<EventHubProducerClient>;
  /** Once per process (it installs the global MeterProvider); absent: no telemetry. */
  telemetry?: (config: HubsinkConfig) => Promise<AppTelemetry>;
  /** The ingest lag and dead-letter backlog gauges, made only when telemetry is enabled. */
  hubGauges?: (config: HubsinkConfig) => AppHubGauges;
  /** Runs `close` when the worker terminates (the host's appTerminate hook). */
  onTerminate?: (close: () => Promise<void>) => void;
  log?: (line: string) => void;
}

/** Forgets a failed promise so the next call tries again; callers share one attempt in flight. */
function retryable<T>(build: () => Promise<T>): () => Promise<T> {
  let current: Promise<T> | undefined;
  return () => {
    current ??= build().catch((err: unknown) => {
      current = undefined;
      throw err;
    });
    return current;
  };
}

export function appContextLoader(deps: AppContextDeps): () => Promise<AppContext> {
  return retryable(async () => {
    const config = deps.config();
    const pool = await deps.createPool(config);
    let caps: Capabilities;
    try {
      caps = await deps.detectCapabilities(pool);
    } catch (err) {
      // The next invocation builds a new pool: this one must not keep its connections open.
      await pool.end().catch(() => undefined);
      throw err;
    }
    configureSession(pool, caps, { citusCachedConnsPerWorker: config.citusCachedConnsPerWorker });
    const app = deps.telemetry ? await deps.telemetry(config) : undefined;
    const telemetry = app?.telemetry ?? noopTelemetry;
    const sources: GaugeSources = {
      parked: () => parkedByReason(pool, config.schema),
      rollupFreshness: () => rollupFreshness(pool, config.schema, new Date()),
      pool: () => poolUsage(pool),
    };
    // Lag and backlog cost Event Hubs and Storage calls at every export: only when someone collects.
    const hubs = app?.enabled ? (deps.hubGauges ?? appHubGauges)(config) : undefined;
    if (hubs?.on) Object.assign(sources, hubs.sources);
    else if (hubs) (deps.log ?? console.warn)(`telemetry: no ingest lag or dead-letter backlog gauges: ${hubs.reason}`);
    const unobserve = telemetry.observe(sources);
    if (app?.enabled) {
      deps.onTerminate?.(async () => {
        unobserve();
        if (hubs?.on) await hubs.close();
        await app.shutdown();
      });
    }
    return {
      config,
      pool,
      caps,
      tenants: new TenantRegistry(),
      telemetry,
      servingPool: retryable(() => deps.createServingPool(config)),
      // Poison too large for any dead-letter message is parked directly, where the deadletter
      // function would have put it; otherwise one huge invalid event would hold its partition forever.
      deadLetterSink: retryable(async () => new EventHubDeadLetterSink(await deps.createProducer(config), { onOversize: parkOversize(pool, config.schema) })),
    };
  });
}

let config: HubsinkConfig | undefined;

/** Parsed once per process; registrations need it at import time (hub names, consumer groups). */
export function getConfig(): HubsinkConfig {
  config ??= loadConfig();
  return config;
}

export const getAppContext: () => Promise<AppContext> = appContextLoader({
  config: getConfig,
  createPool: (c) => createPool(c),
  createServingPool: (c) => createServingPool(c),
  detectCapabilities,
  createProducer: (c) => createDeadLetterProducer(requireEventHubs(c), c.deadLetterHub),
  telemetry: retryable(() => azureMonitorTelemetry(getConfig().appInsightsConnectionString)),
  onTerminate: (close) => {
    functionsApp.hook.appTerminate(close);
  },
});
