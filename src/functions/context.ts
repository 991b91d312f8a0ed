/**
 * Process-wide dependencies of the Azure Functions handlers, created once on first use (config is
 * parsed once; one pool per worker process). Registrations stay thin: they pass `getAppContext`
 * to handler factories, and tests pass their own dependencies instead.
 *
 * Only successes are cached. A build that fails (the database unreachable at start-up, an identity
 * error before the managed identity is ready) is forgotten, so the next invocation builds again
 * instead of failing forever with the first error; and a pool built before the failure is ended.
 */
import { loadConfig, type HubsinkConfig } from '../config.js';
import { buildAppServices, DEFAULT_FACTORIES, retryable, type AppServices, type ServiceFactories } from '../app/services.js';
import { makeServingHandlers, servingDepsOf, type ServingHandlers } from '../app/serving.js';
import { parkedByReason, poolUsage } from '../db/probes.js';
import { rollupFreshness } from '../rollups/freshness.js';
import { app as functionsApp } from '@azure/functions';
import { azureMonitorTelemetry, type AppTelemetry } from '../telemetry/azure.js';
import { appHubGauges, type AppHubGauges } from '../telemetry/appGauges.js';
import { noopTelemetry, type GaugeSources, type Telemetry } from '../telemetry/telemetry.js';

/** The app's services (src/app/services.ts) and what the Function App adds: its telemetry. */
export interface AppContext extends AppServices {
  /** Azure Monitor when APPLICATIONINSIGHTS_CONNECTION_STRING is set, else a no-op. */
  telemetry: Telemetry;
}

/** What building the context needs; injected in tests. */
export interface AppContextDeps extends ServiceFactories {
  config: () => HubsinkConfig;
  /** Once per process (it installs the global MeterProvider); absent: no telemetry. */
  telemetry?: (config: HubsinkConfig) => Promise<AppTelemetry>;
  /** The ingest lag and dead-letter backlog gauges, made only when telemetry is enabled. */
  hubGauges?: (config: HubsinkConfig) => AppHubGauges;
  /** Runs `close` when the worker terminates (the host's appTerminate hook). */
  onTerminate?: (close: () => Promise<void>) => void;
  log?: (line: string) => void;
}

export function appContextLoader(deps: AppContextDeps): () => Promise<AppContext> {
  return retryable(async () => {
    const config = deps.config();
    const services = await buildAppServices(config, { factories: deps });
    let app: AppTelemetry | undefined;
    try {
      app = deps.telemetry ? await deps.telemetry(config) : undefined;
    } catch (err) {
      // The next invocation builds everything again: this build must not keep its connections open.
      await services.close().catch(() => undefined);
      throw err;
    }
    const telemetry = app?.telemetry ?? noopTelemetry;
    const { pool } = services;
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
      const shutdown = app.shutdown.bind(app);
      deps.onTerminate?.(async () => {
        unobserve();
        if (hubs?.on) await hubs.close();
        await shutdown();
      });
    }
    return { ...services, telemetry };
  });
}

let config: HubsinkConfig | undefined;

/** Parsed once per process; registrations need it at import time (hub names, consumer groups). */
export function getConfig(): HubsinkConfig {
  config ??= loadConfig();
  return config;
}

export const getAppContext: () => Promise<AppContext> = appContextLoader({
  ...DEFAULT_FACTORIES,
  config: getConfig,
  telemetry: retryable(() => azureMonitorTelemetry(getConfig().appInsightsConnectionString)),
  onTerminate: (close) => {
    functionsApp.hook.appTerminate(close);
  },
});

let serving: ServingHandlers | undefined;

/** The dashboard and metrics handlers, built once for their registrations (dashboard.ts, metrics.ts). */
export function getServingHandlers(): ServingHandlers {
  serving ??= makeServingHandlers(async () => servingDepsOf(await getAppContext()), { entra: getConfig().access.mode === 'entra' });
  return serving;
}
