/**
 * The Function App's ingest lag and dead-letter backlog. The host consumes and checkpoints; these
 * gauges read what it wrote (container `azure-webjobs-eventhub` of AzureWebJobsStorage, the SDK's blob
 * layout: src/hubs/checkpoints.ts) against each hub's partition properties, as `hubsink checkpoints
 * show` does. They cost Event Hubs and Storage calls at every collection (see hubGauges.ts), so the
 * caller registers them only when Azure Monitor is on.
 *
 * The clients are created on the first collection, not when the context is built: an invocation never
 * waits for them, and a Function App whose telemetry is never collected never opens them. Two
 * consumer clients (one per hub; they are used for management requests only, never to receive) and
 * one container client. A failed creation is retried at the next collection.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { ConfigError, requireEventHubs, requireStorage, type EventHubsConnection, type HubsinkConfig, type StorageConnection } from '../config.js';
import { createConsumer, existingContainer, FUNCTIONS_CHECKPOINT_CONTAINER } from '../hubs/clients.js';
import { backlogSource, ingestLagSource, type HubScope, type PartitionPropertiesSource } from './hubGauges.js';
import type { GaugeSources } from './telemetry.js';

/** What the gauges need of a consumer client. */
export interface PropertiesClient extends PartitionPropertiesSource {
  readonly fullyQualifiedNamespace: string;
  close(): Promise<void>;
}

export interface AppHubGaugeOptions {
  /** Default: the Functions host's container. */
  container?: string;
  /** Default: a consumer client with few, quick retries (a collection must not hang). */
  createClient?: (conn: EventHubsConnection, consumerGroup: string, hub: string) => Promise<PropertiesClient>;
  /** Default: the existing container (never created), two quick tries. */
  openContainer?: (storage: StorageConnection, name: string) => Promise<ContainerClient>;
}

export type AppHubGauges =
  | { on: true; sources: Pick<GaugeSources, 'ingestLag' | 'deadLetterBacklog'>; close(): Promise<void> }
  | { on: false; reason: string };

const defaultClient = (conn: EventHubsConnection, consumerGroup: string, hub: string): Promise<PropertiesClient> =>
  createConsumer(conn, consumerGroup, hub, undefined, { retryOptions: { maxRetries: 1, retryDelayInMs: 500, timeoutInMs: 10_000 } });

const defaultContainer = (storage: StorageConnection, name: string): Promise<ContainerClient> =>
  existingContainer(storage, name, { retryOptions: { maxTries: 2, retryDelayInMs: 500, tryTimeoutInMs: 10_000 } });

/** Off, with the reason, when a setting they need is missing. */
export function appHubGauges(config: HubsinkConfig, opts: AppHubGaugeOptions = {}): AppHubGauges {
  let conn: EventHubsConnection;
  let storage: StorageConnection;
  try {
    conn = requireEventHubs(config);
    storage = requireStorage(config);
  } catch (err) {
    return { on: false, reason: err instanceof ConfigError ? err.problems.join('; ') : String(err) };
  }
  const createClient = opts.createClient ?? defaultClient;
  const openContainer = opts.openContainer ?? defaultContainer;
  const containerName = opts.container ?? FUNCTIONS_CHECKPOINT_CONTAINER;
  const clients: PropertiesClient[] = [];
  let closed = false;

  /** Built once on first use; a failure is forgotten so the next collection tries again. */
  const lazy = <T>(build: () => Promise<T>): (() => Promise<T>) => {
    let current: Promise<T> | undefined;
    return () => {
      if (closed) return Promise.reject(new Error('hub gauges are closed'));
      current ??= build().catch((err: unknown) => {
        current = undefined;
        throw err;
      });
      return current;
    };
  };
  const container = lazy(() => openContainer(storage, containerName));
  const scopeOf = (hub: string, consumerGroup: string): (() => Promise<HubScope>) => {
    const client = lazy(async () => {
      const c = await createClient(conn, consumerGroup, hub);
      // Closed while it was being created: it must not outlive the shutdown.
      if (closed) {
        await c.close().catch(() => undefined);
        throw new Error('hub gauges are closed');
      }
      clients.push(c);
      return c;
    });
    return async () => {
      const [c, ct] = await Promise.all([client(), container()]);
      return { hub, client: c, container: ct, scope: { fullyQualifiedNamespace: c.fullyQualifiedNamespace, eventHubName: hub, consumerGroup } };
    };
  };
  const ingest = scopeOf(config.ingestHub, config.consumerGroup);
  const deadLetter = scopeOf(config.deadLetterHub, config.deadLetterConsumerGroup);
  return {
    on: true,
    sources: {
      ingestLag: async () => ingestLagSource(await ingest())(),
      deadLetterBacklog: async () => backlogSource(await deadLetter())(),
    },
    async close() {
      closed = true;
      await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
    },
  };
}
