/**
 * Process-wide dependencies of the Azure Functions handlers, created once on first use (config is
 * parsed once; one pool per worker process). Registrations stay thin: they pass `getAppContext`
 * to handler factories, and tests pass their own dependencies instead.
 */
import type pg from 'pg';
import { loadConfig, requireEventHubs, type HubsinkConfig } from '../config.js';
import { createPool, createServingPool } from '../db/pool.js';
import { detectCapabilities, type Capabilities } from '../db/capabilities.js';
import { configureSession } from '../db/session.js';
import { TenantRegistry } from '../db/tenants.js';
import { createProducer } from '../hubs/clients.js';
import { EventHubDeadLetterSink } from '../hubs/deadLetterSink.js';
import { parkOversize } from '../deadletters/oversize.js';
import type { DeadLetterSink } from '../pipeline/types.js';

export interface AppContext {
  config: HubsinkConfig;
  pool: pg.Pool;
  caps: Capabilities;
  tenants: TenantRegistry;
  /** The metrics API's own small pool (statement_timeout on), created on first use. */
  servingPool(): Promise<pg.Pool>;
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
  let serving: Promise<pg.Pool> | undefined;
  return {
    config,
    pool,
    caps,
    tenants: new TenantRegistry(),
    servingPool() {
      serving ??= createServingPool(config).catch((err: unknown) => {
        serving = undefined;
        throw err;
      });
      return serving;
    },
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
