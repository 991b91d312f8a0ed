/**
 * The standalone runner (`hubsink run`): the ingest pipeline outside the Functions host, for
 * containers and local use. EventHubConsumerClient + BlobCheckpointStore, the same ingestBatch and
 * dead-letter sink as the `ingest` function, optionally the dead-letter consumer (the `deadletter`
 * function's work) and the rollup timer. Checkpoints use the Functions host's container and blob
 * layout by default, so `hubsink checkpoints` reads and rewinds both alike.
 */
import { BlobCheckpointStore } from '@azure/eventhubs-checkpointstore-blob';
import type { CheckpointStore, EventHubConsumerClient } from '@azure/event-hubs';
import type { ContainerClient } from '@azure/storage-blob';
import type pg from 'pg';
import { buildAppServices } from '../app/services.js';
import type { Capabilities } from '../db/capabilities.js';
import { ConfigError, requireDatabase, requireEventHubs, requireStorage, type HubsinkConfig } from '../config.js';
import { eventsFolded, RollupBusyError, rollUpUntilCaughtUp } from '../rollups/run.js';
import { DEFAULT_PARTITION_EVERY_MS, DEFAULT_PARTITION_RETRY_MS, PartitionSchedule } from '../partitions/maintain.js';
import { ident } from '../db/ident.js';
import { processDeadLetters } from '../deadLetters/process.js';
import { checkpointAhead, describeCheckpointAhead, readCheckpoints } from '../hubs/checkpoints.js';
import { blobContainer, createConsumer, FUNCTIONS_CHECKPOINT_CONTAINER } from '../hubs/clients.js';
import { eventHubsContext } from '../hubs/explain.js';
import { probeEventHubs } from '../hubs/probe.js';
import { ingestBatch, prepareIngest, writePrepared } from '../ingest/ingestBatch.js';
import { classifyError, describeError } from '../pipeline/classify.js';
import { normalizeReceivedEvents } from '../pipeline/normalize.js';
import type { Logger } from '../operator/log.js';
import { CheckpointingConsumer } from './checkpointingConsumer.js';
import { boundHeapGrowth } from './heap.js';
import { addDeadLetters, addIngest, emptyStats, snapshot, type RunnerStats } from './stats.js';
import { noopTelemetry, type Readiness, type Telemetry } from '../telemetry/telemetry.js';
import { ProcessedPositions, runnerGauges, runnerReadiness } from './runnerTelemetry.js';

export interface RunnerOptions {
  config: HubsinkConfig;
  log: Logger;
  /** Also consume the dead-letter hub: retry transient records, park poison. */
  deadLetter?: boolean;
  /** Also run the rollups every `rollupIntervalMs`. */
  rollups?: boolean;
  rollupIntervalMs?: number;
  checkpointContainer?: string;
  /** How often each instance balances partitions (the SDK's default is 10 s; tests use ~500 ms). */
  loadBalancingIntervalMs?: number;
  /** After how long a silent owner's partitions may be claimed by others (SDK default 60 s). */
  ownershipExpirationMs?: number;
  maxBatchSize?: number;
  maxWaitTimeInSeconds?: number;
  startFrom?: 'earliest' | 'latest';
  /** Backoff between failed attempts of one batch. */
  retryBaseMs?: number;
  retryCapMs?: number;
  /** A pool to use instead of one built from the config (the caller then ends it). */
  pool?: pg.Pool;
  /** The time validation, partition maintenance and rollups go by (tests simulate days with it). */
  clock?: () => Date;
  /** Where batch counts, rollup runs and gauges go (default: nowhere). */
  telemetry?: Telemetry;
  /** Clock time between partition maintenance runs (default 3 h; the first runs at start). */
  partitionEveryMs?: number;
  /** Real time between checks whether maintenance is due by the clock (default 60 s). */
  partitionCheckMs?: number;
  /** Clock time before a failed maintenance run is tried again (default 5 min). */
  partitionRetryMs?: number;
  /** 'greedy' (default) claims every free or expired partition per cycle; 'balanced' one (the bench's reference). */
  loadBalancingStrategy?: 'greedy' | 'balanced';
  /** A checkpoint store to use instead of one on the blob container (tests count its calls). */
  checkpointStore?: CheckpointStore;
  /** V8's heap growing factor for this process, as 1 + percent/100 (default 50; 0 leaves V8's own). See heap.ts. */
  heapGrowingPercent?: number;
}

export interface Runner {
  readonly pool: pg.Pool;
  readonly caps: Capabilities;
  stats(): RunnerStats;
  /** For `/readyz`: database reachable, partitions owned or being claimed, not shutting down. */
  readiness(): Promise<Readiness>;
  /** Finishes batches in flight, gives up partition ownership, closes clients and the pool. */
  stop(): Promise<void>;
}

/** Every setting the runner needs, checked at once so one error names all that are missing. */
/**
 * A claimed partition's checkpoint compared with the hub: a checkpoint ahead of the partition's last
 * event (the hub was deleted and created again) is reported with the command that fixes it, and the
 * partition is held instead of waiting silently for the new numbering to pass it and then skipping.
 */
function vetAgainstHub(client: EventHubConsumerClient, consumerGroup: string, container: ContainerClient, containerName: string): (partitionId: string) => Promise<string | undefined> {
  return async (partitionId) => {
    const scope = { fullyQualifiedNamespace: client.fullyQualifiedNamespace, eventHubName: client.eventHubName, consumerGroup };
    const [checkpoints, props] = await Promise.all([readCheckpoints(container, scope), client.getPartitionProperties(partitionId)]);
    const ahead = checkpointAhead({ ...props, lastEnqueuedOffset: String(props.lastEnqueuedOffset) }, checkpoints.get(partitionId));
    return ahead ? describeCheckpointAhead(ahead, { hub: client.eventHubName, consumerGroup, container: containerName }) : undefined;
  };
}

export function requireRunnerSettings(cfg: HubsinkConfig): void {
  const problems: string[] = [];
  for (const check of [requireEventHubs, requireStorage, requireDatabase]) {
    try {
      check(cfg);
    } catch (err) {
      if (err instanceof ConfigError) problems.push(...err.problems);
      else throw err;
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

/** Most rollup runs one cycle takes; what is left waits for the next interval. */
const ROLLUP_RUNS_PER_CYCLE = 20;

const CONTAINER_NAME = /^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/;

export async function startRunner(opts: RunnerOptions): Promise<Runner> {
  const cfg = opts.config;
  requireRunnerSettings(cfg);
  const eventHubs = requireEventHubs(cfg);
  const storage = requireStorage(cfg);
  boundHeapGrowth(opts.heapGrowingPercent);
  const containerName = opts.checkpointContainer ?? FUNCTIONS_CHECKPOINT_CONTAINER;
  if (!CONTAINER_NAME.test(containerName)) throw new ConfigError([`checkpoint container ${JSON.stringify(containerName)}: 3-63 lower-case letters, digits and single hyphens`]);
  const log = opts.log;
  const clock = opts.clock ?? (() => new Date());
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch((err: unknown) => log('warn', `shutdown: ${describeError(err)}`));
    cleanups.length = 0;
  };

  try {
    const services = await buildAppServices(cfg, opts.pool ? { pool: opts.pool } : {});
    cleanups.push(() => services.close());
    const { pool, caps, tenants } = services;
    // Fail at start-up, not with a batch retried forever, when the schema was never migrated.
    const found = await pool.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`${ident(cfg.schema)}.events`]);
    if (!found.rows[0]?.t) throw new ConfigError([`table ${cfg.schema}.events does not exist: run \`hubsink migrate\` first (HUBSINK_SCHEMA=${cfg.schema})`]);
    // Partitions before the first event: a runner must never write into a window without them,
    // and one that stays up for weeks keeps them ahead of the clock (the Function App's timer does
    // the same daily).
    const partitions = new PartitionSchedule(
      { pool, config: cfg, caps, clock },
      { everyMs: opts.partitionEveryMs ?? DEFAULT_PARTITION_EVERY_MS, retryMs: opts.partitionRetryMs ?? DEFAULT_PARTITION_RETRY_MS, log },
    );
    await partitions.runNow();
    const partitionTimer = setInterval(() => void partitions.tick(), opts.partitionCheckMs ?? 60_000);
    cleanups.push(async () => {
      clearInterval(partitionTimer);
      await partitions.idle();
    });

    const container = await blobContainer(storage, containerName);
    // The checkpoint store package pins its own copy of the Event Hubs types; the shapes are the same.
    const store = opts.checkpointStore ?? (new BlobCheckpointStore(container) as unknown as CheckpointStore);
    const consumerOptions = {
      loadBalancingOptions: {
        // Greedy: each balancing cycle claims every free or expired partition (and steals up to a
        // fair share), where 'balanced' claims one per cycle: 32 partitions took over 5 minutes.
        strategy: opts.loadBalancingStrategy ?? 'greedy',
        updateIntervalInMs: opts.loadBalancingIntervalMs ?? 10_000,
        partitionOwnershipExpirationIntervalInMs: opts.ownershipExpirationMs ?? 60_000,
      },
    };
    // The producer also serves the dead-letter backlog gauge below.
    const { producer, sink } = await services.deadLetters();
    const telemetry = opts.telemetry ?? noopTelemetry;
    const processed = new ProcessedPositions();
    const stats = emptyStats(Date.now(), { deadLetter: opts.deadLetter === true, rollups: opts.rollups === true });
    const ingestDeps = {
      pool,
      config: cfg,
      sink,
      tenants,
      clock,
      onRetry: (attempt: number, err: unknown) => log('warn', `ingest: database ${classifyError(err)}, retrying in place, attempt ${attempt}: ${describeError(err)}`),
    };
    const common = {
      log,
      ...(opts.maxBatchSize !== undefined ? { maxBatchSize: opts.maxBatchSize } : {}),
      ...(opts.maxWaitTimeInSeconds !== undefined ? { maxWaitTimeInSeconds: opts.maxWaitTimeInSeconds } : {}),
      ...(opts.startFrom !== undefined ? { startFrom: opts.startFrom } : {}),
      ...(opts.retryBaseMs !== undefined ? { retryBaseMs: opts.retryBaseMs } : {}),
      ...(opts.retryCapMs !== undefined ? { retryCapMs: opts.retryCapMs } : {}),
    };

    // A wrong key or a missing hub or consumer group is no outage: stop at start with what fixes it.
    for (const [hub, hubSetting, consumerGroup, consumerGroupSetting] of [
      [cfg.ingestHub, 'INGEST_EVENTHUB_NAME', cfg.consumerGroup, 'INGEST_CONSUMER_GROUP'],
      ...(opts.deadLetter ? [[cfg.deadLetterHub, 'DEADLETTER_EVENTHUB_NAME', cfg.deadLetterConsumerGroup, 'DEADLETTER_CONSUMER_GROUP']] : []),
    ] as const) {
      await probeEventHubs(eventHubs, { ...eventHubsContext(eventHubs, { hub, hubSetting, consumerGroup, consumerGroupSetting }), hub }, { onUnreachable: (m) => log('warn', m) });
    }
    const clients: EventHubConsumerClient[] = [];
    const ingestClient = await createConsumer(eventHubs, cfg.consumerGroup, cfg.ingestHub, store, consumerOptions);
    clients.push(ingestClient);
    cleanups.push(() => ingestClient.close());
    const ingest = new CheckpointingConsumer({
      ...common,
      client: ingestClient,
      name: 'ingest',
      // Decoding the next batch while this one is written (see checkpointingConsumer.ts).
      prepare: (events, partitionId) => prepareIngest(ingestDeps, normalizeReceivedEvents(events, { hub: cfg.ingestHub, consumerGroup: cfg.consumerGroup, partitionId })),
      handle: (events, partitionId, prepared) =>
        prepared ? writePrepared(ingestDeps, prepared) : ingestBatch(ingestDeps, normalizeReceivedEvents(events, { hub: cfg.ingestHub, consumerGroup: cfg.consumerGroup, partitionId })),
      onHandled: (r, partitionId, events) => {
        addIngest(stats, r, Date.now());
        processed.record(partitionId, events);
        telemetry.ingestBatch(cfg.ingestHub, r);
      },
      onRetry: () => stats.ingest.failedAttempts++,
      vetPartition: vetAgainstHub(ingestClient, cfg.consumerGroup, container, containerName),
    });

    let deadLetter: CheckpointingConsumer<unknown> | undefined;
    if (opts.deadLetter) {
      const dlClient = await createConsumer(eventHubs, cfg.deadLetterConsumerGroup, cfg.deadLetterHub, store, consumerOptions);
      clients.push(dlClient);
      cleanups.push(() => dlClient.close());
      const dlDeps = { pool, config: cfg, tenants, clock };
      const dl = new CheckpointingConsumer({
        ...common,
        client: dlClient,
        name: 'deadletter',
        handle: (events, partitionId) =>
          processDeadLetters(dlDeps, normalizeReceivedEvents(events, { hub: cfg.deadLetterHub, consumerGroup: cfg.deadLetterConsumerGroup, partitionId }), 'retry'),
        onHandled: (c) => addDeadLetters(stats, c),
        onRetry: () => stats.deadletter.failedAttempts++,
        vetPartition: vetAgainstHub(dlClient, cfg.deadLetterConsumerGroup, container, containerName),
      });
      deadLetter = dl as CheckpointingConsumer<unknown>;
    }

    // Rollups: one run at start, then every interval; a run catches up in a few bounded steps.
    let rollupTimer: NodeJS.Timeout | undefined;
    let rollupRun: Promise<void> = Promise.resolve();
    let stopped = false;
    const rollupOnce = async (): Promise<void> => {
      try {
        // Rollups keep their own retention, independent of raw partitions (as the rollup timer does).
        await rollUpUntilCaughtUp(pool, cfg.schema, {
          caps,
          maxWindowRows: cfg.rollupMaxWindowRows,
          now: clock,
          dimensions: cfg.rollupDimensions,
          retentionDays: cfg.rollupRetentionDays,
          maxRuns: ROLLUP_RUNS_PER_CYCLE,
          stopped: () => stopped,
          onRun: (results) => {
            telemetry.rollupRuns(results);
            stats.rollups.runs++;
            stats.rollups.folded += eventsFolded(results);
            stats.rollups.lastRunAt = Date.now();
            stats.rollups.lastError = null;
          },
        });
      } catch (err) {
        // Writers held the table past the short lock wait: this cycle is skipped (nothing changed)
        // rather than stalling ingest; the next one folds in what it missed.
        if (err instanceof RollupBusyError) {
          log('info', `rollups: skipped this cycle: ${err.message}`);
          return;
        }
        stats.rollups.failures++;
        stats.rollups.lastError = describeError(err);
        log('warn', `rollups: ${describeError(err)} (the next run tries again)`);
      }
    };
    const scheduleRollups = (delay: number): void => {
      rollupTimer = setTimeout(() => {
        rollupRun = rollupOnce().finally(() => {
          if (!stopped) scheduleRollups(opts.rollupIntervalMs ?? 60_000);
        });
      }, delay);
    };

    const hubScope = (hub: string, consumerGroup: string) => ({ fullyQualifiedNamespace: producer.fullyQualifiedNamespace, eventHubName: hub, consumerGroup });
    const unobserve = telemetry.observe(
      runnerGauges({
        pool,
        schema: cfg.schema,
        ingest: {
          hub: cfg.ingestHub,
          client: ingestClient,
          container,
          scope: hubScope(cfg.ingestHub, cfg.consumerGroup),
          // A held partition (checkpoint ahead of a re-created hub) is owned only between the SDK's
          // claim and its receiver's refusal of the old offset, then claimed again seconds later:
          // its gauge stays, so an alert on it does not flicker.
          ownedPartitions: () => [...new Set([...ingest.ownedPartitions, ...ingest.heldPartitions.map((h) => h.partitionId)])].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b)),
          processed,
        },
        deadLetter: { hub: cfg.deadLetterHub, client: producer, container, scope: hubScope(cfg.deadLetterHub, cfg.deadLetterConsumerGroup) },
        clock,
      }),
    );
    cleanups.push(() => Promise.resolve(unobserve()));
    ingest.start();
    deadLetter?.start();
    if (opts.rollups) scheduleRollups(0);
    log('info', `runner started: hub ${cfg.ingestHub} (${cfg.consumerGroup})${opts.deadLetter ? `, dead letters ${cfg.deadLetterHub} (${cfg.deadLetterConsumerGroup})` : ''}${opts.rollups ? ', rollups' : ''}; checkpoints in container ${containerName}`);

    let stopping: Promise<void> | undefined;
    return {
      pool,
      caps,
      stats() {
        stats.ingest.partitions = ingest.ownedPartitions;
        stats.deadletter.partitions = deadLetter?.ownedPartitions ?? [];
        return snapshot(stats);
      },
      readiness: () => runnerReadiness({ pool, stopping: () => stopped, consuming: () => !stopped, ownedPartitions: () => ingest.ownedPartitions }),
      stop() {
        stopping ??= (async () => {
          stopped = true;
          clearTimeout(rollupTimer);
          await Promise.all([ingest.stop(), deadLetter?.stop(), rollupRun]);
          await cleanup();
          log('info', 'runner stopped');
        })();
        return stopping;
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
