/**
 * Process-wide dependencies of the Azure Functions handlers, created once on first use (config is
 * parsed once; one pool per worker process). Registrations stay thin: they pass `getAppContext`
 * to handler factories, and tests pass their own dependencies instead.
 */
import type pg from 'pg';
import { loadConfig, requireEventHubs, type HubsinkConfig } from '../config.js';
import { createPool } from '../db/pool.js';
import { detectCapabilities, type Capabilities } from '../db/capabilities.js';
import { configureSession } from '../db/session.js';
import { TenantRegistry } from '../db/tenants.js';
import { createProducer } from '../hubs/clients.js';
import { EventHubDeadLetterSink } from '../hubs/deadLetterSink.js';
import { parkOversize } from '../deadletters/oversize.js';
import type { DeadLetterSink } from '../pipeline/types.js';
import { parkedByReason, poolUsage, rollupFreshness } from '../db/probes.js';
import { azureMonitorTelemetry } from '../telemetry/azure.js';
import type { Telemetry } from '../telemetry/telemetry.js';

export interface AppContext {
  config: HubsinkConfig;
  pool: pg.Pool;
  caps: Capabilities;
  tenants: TenantRegistry;
  /** Azure Monitor when APPLICATIONINSIGHTS_CONNECTION_STRING is set, else a no-op. */
  telemetry: Telemetry;
  /** Created on first use: functions that never dead-letter do not need Event Hubs settings. */
  deadLetterSink(): Promise<DeadLetterSink>;
}

let current: Promise<AppContext> | undefined;
let config: HubsinkConfig | undefined;

/** Parsed once per process; registrations need it at import time (hub names, consumer groups). */
export function getConfig(): HubsinkConfig {
  config ??= loadConfig();
  return config;
}

async function build(): Promise<AppContext> {
  const config = getConfig();
  const pool = await createPool(config);
  const caps = await detectCapabilities(pool);
  configureSession(pool, caps, { citusCachedConnsPerWorker: config.citusCachedConnsPerWorker });
  let sink: Promise<DeadLetterSink> | undefined;
  const { telemetry } = await azureMonitorTelemetry(config.appInsightsConnectionString);
  telemetry.observe({
    parked: () => parkedByReason(pool, config.schema),
    rollupFreshness: () => rollupFreshness(pool, config.schema, new Date()),
    pool: () => poolUsage(pool),
  });
  return {
    config,
    pool,
    caps,
    tenants: new TenantRegistry(),
    telemetry,
    deadLetterSink() {
      // Poison too large for any dead-letter message is parked directly, where the deadletter
      // function would have put it; otherwise one huge invalid event would hold its partition forever.
      sink ??= createProducer(requireEventHubs(config), config.deadLetterHub).then(
        (p) => new EventHubDeadLetterSink(p, { onOversize: parkOversize(pool, config.schema) }),
      );
      return sink;
    },
  };
}

export function getAppContext(): Promise<AppContext> {
  current ??= build().catch((err: unknown) => {
    // Let the next invocation try again (e.g. the database was briefly unreachable at start-up).
    current = undefined;
    throw err;
  });
  return current;
}
