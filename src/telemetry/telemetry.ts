/**
 * The metrics port of hubsink. Features (ingest, runner, rollups, import) report through this small
 * interface and never import OpenTelemetry: the entry points choose the implementation (OpenTelemetry
 * with Azure Monitor in the Function App, a Prometheus endpoint in the runner, an in-memory reader in
 * tests) and the default does nothing, so pure code and tests that do not care pay nothing.
 *
 * Everything is reported per batch or per run, never per event: one counter add per batch is the whole
 * cost on the hot path (see bench/telemetry.ts). Values that are state rather than events (lag,
 * backlog, parked rows, freshness, pool) are gauges read when a reader collects, from sources the
 * caller registers with `observe`.
 */
import type { BatchCounts } from '../pipeline/types.js';

/** What the gauges read at collection time. Every source is optional; a failing one is skipped. */
export interface GaugeSources {
  /** Last enqueued sequence number minus the last one processed, per owned partition. */
  /** `checkpointAhead`: the checkpoint lies past the partition's last event (a re-created hub); lag is then negative. */
  ingestLag?: () => Promise<readonly { hub: string; partition: string; lag: number; checkpointAhead?: true }[]>;
  /** Events on the dead-letter hub after its consumer group's checkpoints, per hub. */
  deadLetterBacklog?: () => Promise<readonly { hub: string; backlog: number }[]>;
  /** Rows in `dead_letters` with status `parked`, per reason. */
  parked?: () => Promise<readonly { reason: string; count: number }[]>;
  /** Age in seconds of the oldest event not folded into each rollup (0 when caught up). */
  rollupFreshness?: () => Promise<readonly { rollup: string; seconds: number }[]>;
  /** The database pool: connections checked out, and requests waiting for one. */
  pool?: () => { inUse: number; waiting: number };
}

export interface RollupRunFigures {
  name: string;
  rows: number;
  durationMs: number;
}

export interface Telemetry {
  /** After every ingest batch (the function, the runner, replays, imports): counters and histograms. */
  ingestBatch(hub: string, counts: BatchCounts): void;
  /** After every rollup run: one duration per rollup. */
  rollupRuns(runs: readonly RollupRunFigures[]): void;
  /** Registers gauge sources; the returned function unregisters them. */
  observe(sources: GaugeSources): () => void;
}

/** What `/readyz` reports. */
export interface Readiness {
  ready: boolean;
  /** Each check and what it found ('ok', or why not). */
  checks: Record<string, string>;
}

export const noopTelemetry: Telemetry = {
  ingestBatch: () => undefined,
  rollupRuns: () => undefined,
  observe: () => () => undefined,
};

export interface InstrumentSpec {
  name: string;
  kind: 'counter' | 'histogram' | 'gauge';
  unit: string;
  attributes: readonly string[];
  description: string;
}

/**
 * The instruments, with names and units that stay stable: dashboards and alerts depend on them.
 * The README's "Observing hubsink" section lists the same table.
 */
export const INSTRUMENTS = {
  received: { name: 'hubsink.events.received', kind: 'counter', unit: '{event}', attributes: ['hub'], description: 'Events received in ingest batches' },
  inserted: { name: 'hubsink.events.inserted', kind: 'counter', unit: '{event}', attributes: ['hub'], description: 'Events inserted into events (new rows)' },
  duplicate: { name: 'hubsink.events.duplicate', kind: 'counter', unit: '{event}', attributes: ['hub'], description: 'Events already present (redeliveries, replays, repeats within a batch)' },
  deadLettered: { name: 'hubsink.events.dead_lettered', kind: 'counter', unit: '{event}', attributes: ['hub', 'reason'], description: 'Events handed to the dead-letter sink, by reason' },
  batchDuration: { name: 'hubsink.batch.duration', kind: 'histogram', unit: 's', attributes: ['hub'], description: 'Time to validate, write and dead-letter one batch' },
  batchSize: { name: 'hubsink.batch.size', kind: 'histogram', unit: '{event}', attributes: ['hub'], description: 'Events per ingest batch' },
  ingestLag: {
    name: 'hubsink.ingest.lag',
    kind: 'gauge',
    unit: '{event}',
    attributes: ['hub', 'partition', 'checkpoint'],
    description: 'Last enqueued sequence number minus the last one processed; negative, with checkpoint=ahead, when the checkpoint is past the partition (hub re-created: checkpoints rewind --recreated)',
  },
  deadLetterBacklog: { name: 'hubsink.deadletter.backlog', kind: 'gauge', unit: '{event}', attributes: ['hub'], description: 'Events on the dead-letter hub not yet checkpointed by its consumer group' },
  parked: { name: 'hubsink.deadletters.parked', kind: 'gauge', unit: '{event}', attributes: ['reason'], description: 'Rows in dead_letters waiting for an operator (status parked)' },
  rollupFreshness: { name: 'hubsink.rollup.freshness', kind: 'gauge', unit: 's', attributes: ['rollup'], description: 'Age of the oldest event not yet folded into the rollup (0 when caught up)' },
  rollupDuration: { name: 'hubsink.rollup.duration', kind: 'histogram', unit: 's', attributes: ['rollup'], description: 'Duration of one incremental rollup run' },
  poolInUse: { name: 'hubsink.db.pool.in_use', kind: 'gauge', unit: '{connection}', attributes: [], description: 'Database connections checked out of the pool' },
  poolWaiting: { name: 'hubsink.db.pool.waiting', kind: 'gauge', unit: '{request}', attributes: [], description: 'Requests waiting for a database connection' },
} as const satisfies Record<string, InstrumentSpec>;

