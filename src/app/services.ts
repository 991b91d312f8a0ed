/**
 * The composition root: the services every way of running hubsink shares, built from a parsed
 * config in one order. The pool comes first, then its capabilities and the session settings chosen
 * from them, then the tenant registry. The dead-letter producer and the sink that parks oversize
 * poison come next, then the serving pool the dashboard and metrics handlers read.
 *
 * The Functions context (src/functions/context.ts), the runner (src/runner/runner.ts) and the local
 * stack (src/local/stack.ts) build these here and add only what is theirs (docs/design.md, "How the
 * app is put together"). The pool, the clock and the clients stay injectable: the factories are
 * parameters, and a caller may bring its own pool.
 */
import type { EventHubProducerClient } from '@azure/event-hubs';
import type pg from 'pg';
import { requireEventHubs, type HubsinkConfig } from '../config.js';
import { detectCapabilities, type Capabilities } from '../db/capabilities.js';
import { createPool, createServingPool } from '../db/pool.js';
import { configureSession } from '../db/session.js';
import { TenantRegistry } from '../db/tenants.js';
import { parkOversize } from '../deadLetters/oversize.js';
import { createDeadLetterProducer, EventHubDeadLetterSink } from '../hubs/deadLetterSink.js';
import { describeError } from '../pipeline/classify.js';

/** How the services' clients are made; tests pass their own (a proxied pool, a failing producer). */
export interface ServiceFactories {
  createPool: (config: HubsinkConfig) => Promise<pg.Pool>;
  createServingPool: (config: HubsinkConfig) => Promise<pg.Pool>;
  detectCapabilities: (pool: pg.Pool) => Promise<Capabilities>;
  createProducer: (config: HubsinkConfig) => Promise<EventHubProducerClient>;
}

export const DEFAULT_FACTORIES: ServiceFactories = {
  createPool: (c) => createPool(c),
  createServingPool: (c) => createServingPool(c),
  detectCapabilities,
  createProducer: (c) => createDeadLetterProducer(requireEventHubs(c), c.deadLetterHub),
};

export interface DeadLetterOutput {
  producer: EventHubProducerClient;
  sink: EventHubDeadLetterSink;
}

export interface AppServices {
  config: HubsinkConfig;
  pool: pg.Pool;
  caps: Capabilities;
  tenants: TenantRegistry;
  /**
   * The dead-letter hub's producer and the sink on it, made on first use (what never dead-letters
   * needs no Event Hubs settings). A failed build is forgotten, so the next call tries again.
   */
  deadLetters(): Promise<DeadLetterOutput>;
  deadLetterSink(): Promise<EventHubDeadLetterSink>;
  /** The metrics API's own small pool (statement_timeout on), made on first use, so it cannot starve ingest. */
  servingPool(): Promise<pg.Pool>;
  /** Closes what was built here: the sink and its producer, the serving pool, and the pool unless it was brought. */
  close(): Promise<void>;
}

/** Forgets a failed promise so the next call tries again; callers share one attempt in flight. */
export function retryable<T>(build: () => Promise<T>): () => Promise<T> {
  let current: Promise<T> | undefined;
  return () => {
    current ??= build().catch((err: unknown) => {
      current = undefined;
      throw err;
    });
    return current;
  };
}

export interface BuildOptions {
  factories?: Partial<ServiceFactories>;
  /** A pool to use instead of one made from the config: the caller configured it and ends it. */
  pool?: pg.Pool;
}

/**
 * Builds the shared services. When detecting the capabilities fails (the database unreachable at
 * start-up), a pool made here is ended before the error is thrown: the next attempt makes a new
 * one, and this one must not keep its connections open.
 */
export async function buildAppServices(config: HubsinkConfig, opts: BuildOptions = {}): Promise<AppServices> {
  const make = { ...DEFAULT_FACTORIES, ...opts.factories };
  const ownPool = opts.pool === undefined;
  const pool = opts.pool ?? (await make.createPool(config));
  let caps: Capabilities;
  try {
    caps = await make.detectCapabilities(pool);
  } catch (err) {
    if (ownPool) await pool.end().catch(() => undefined);
    throw err;
  }
  if (ownPool) configureSession(pool, caps, { citusCachedConnsPerWorker: config.citusCachedConnsPerWorker });

  let built: DeadLetterOutput | undefined;
  const deadLetters = retryable(async () => {
    const producer = await make.createProducer(config);
    // Poison too large for any dead-letter message is parked directly, where the dead-letter
    // consumer would have put it; otherwise one huge invalid event would hold its partition forever.
    built = { producer, sink: new EventHubDeadLetterSink(producer, { onOversize: parkOversize(pool, config.schema) }) };
    return built;
  });
  let serving: pg.Pool | undefined;
  const servingPool = retryable(async () => (serving = await make.createServingPool(config)));
  let closing: Promise<void> | undefined;
  return {
    config,
    pool,
    caps,
    tenants: new TenantRegistry(),
    deadLetters,
    deadLetterSink: async () => (await deadLetters()).sink,
    servingPool,
    close() {
      closing ??= (async () => {
        const parts: [string, () => Promise<void>][] = [];
        const sink = built?.sink;
        const servingBuilt = serving;
        if (sink) parts.push(['the dead-letter producer', () => sink.close()]);
        if (servingBuilt) parts.push(['the serving pool', () => servingBuilt.end()]);
        if (ownPool) parts.push(['the pool', () => pool.end()]);
        const problems: string[] = [];
        for (const [what, close] of parts) await close().catch((err: unknown) => problems.push(`${what}: ${describeError(err)}`));
        if (problems.length > 0) throw new Error(`closing the app's services: ${problems.join('; ')}`);
      })();
      return closing;
    },
  };
}
