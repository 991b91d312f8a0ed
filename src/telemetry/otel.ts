/**
 * The Telemetry port on an OpenTelemetry Meter (the API only: whoever owns the MeterProvider decides
 * where the figures go: Azure Monitor, a Prometheus endpoint, an in-memory reader in tests).
 */
import type { Attributes, BatchObservableResult, Meter, Observable } from '@opentelemetry/api';
import type { BatchCounts } from '../pipeline/types.js';
import { FAILURE_REASONS } from '../pipeline/types.js';
import { INSTRUMENTS, type GaugeSources, type RollupRunFigures, type Telemetry } from './telemetry.js';

/** Seconds. Batches take milliseconds to a few seconds (retries); rollup runs up to minutes. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const SIZE_BUCKETS = [1, 10, 50, 100, 200, 300, 500, 1000, 2000, 5000, 10000];

export const METER_NAME = 'hubsink';

/**
 * A gauge source that has not answered by then is skipped for this collection. Readers time out the
 * whole batch callback (the periodic exporter after 30 s), which would drop every gauge with it.
 */
export const SOURCE_TIMEOUT_MS = 15_000;

export interface OtelTelemetryOptions {
  sourceTimeoutMs?: number;
}

export function createOtelTelemetry(meter: Meter, opts: OtelTelemetryOptions = {}): Telemetry {
  const sourceTimeoutMs = opts.sourceTimeoutMs ?? SOURCE_TIMEOUT_MS;
  const I = INSTRUMENTS;
  const counter = (s: { name: string; unit: string; description: string }) => meter.createCounter(s.name, { unit: s.unit, description: s.description });
  const gauge = (s: { name: string; unit: string; description: string }) => meter.createObservableGauge(s.name, { unit: s.unit, description: s.description });
  const received = counter(I.received);
  const inserted = counter(I.inserted);
  const duplicate = counter(I.duplicate);
  const deadLettered = counter(I.deadLettered);
  const batchDuration = meter.createHistogram(I.batchDuration.name, { unit: I.batchDuration.unit, description: I.batchDuration.description, advice: { explicitBucketBoundaries: DURATION_BUCKETS } });
  const batchSize = meter.createHistogram(I.batchSize.name, { unit: I.batchSize.unit, description: I.batchSize.description, advice: { explicitBucketBoundaries: SIZE_BUCKETS } });
  const rollupDuration = meter.createHistogram(I.rollupDuration.name, { unit: I.rollupDuration.unit, description: I.rollupDuration.description, advice: { explicitBucketBoundaries: DURATION_BUCKETS } });
  const ingestLag = gauge(I.ingestLag);
  const backlog = gauge(I.deadLetterBacklog);
  const parked = gauge(I.parked);
  const freshness = gauge(I.rollupFreshness);
  const poolInUse = gauge(I.poolInUse);
  const poolWaiting = gauge(I.poolWaiting);
  // Attribute objects are reused per hub: a batch costs a handful of adds and no allocations.
  const hubAttrs = new Map<string, { hub: Attributes; reasons: Record<string, Attributes> }>();
  const attrsOf = (hub: string) => {
    let a = hubAttrs.get(hub);
    if (!a) {
      a = { hub: { hub }, reasons: Object.fromEntries(FAILURE_REASONS.map((r) => [r, { hub, reason: r }])) };
      hubAttrs.set(hub, a);
    }
    return a;
  };

  return {
    ingestBatch(hub: string, c: BatchCounts): void {
      const a = attrsOf(hub);
      received.add(c.received, a.hub);
      inserted.add(c.inserted, a.hub);
      duplicate.add(c.duplicates, a.hub);
      for (const reason of FAILURE_REASONS) {
        const n = c.deadLettered[reason];
        if (n > 0) deadLettered.add(n, a.reasons[reason]);
      }
      batchDuration.record(c.latencyMs / 1000, a.hub);
      batchSize.record(c.received, a.hub);
    },
    rollupRuns(runs: readonly RollupRunFigures[]): void {
      for (const r of runs) rollupDuration.record(r.durationMs / 1000, { rollup: r.name });
    },
    observe(sources: GaugeSources): () => void {
      const observables: Observable[] = [];
      if (sources.ingestLag) observables.push(ingestLag);
      if (sources.deadLetterBacklog) observables.push(backlog);
      if (sources.parked) observables.push(parked);
      if (sources.rollupFreshness) observables.push(freshness);
      if (sources.pool) observables.push(poolInUse, poolWaiting);
      // One source failing or hanging (the database is down, storage unreachable) must not hide the others.
      const settle = async <T>(fn: (() => Promise<T>) | undefined): Promise<T | undefined> => {
        if (!fn) return undefined;
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), sourceTimeoutMs);
          timer.unref();
        });
        try {
          return await Promise.race([fn(), late]);
        } catch {
          return undefined;
        } finally {
          clearTimeout(timer);
        }
      };
      const callback = async (result: BatchObservableResult): Promise<void> => {
        const [lag, bl, pk, fr] = await Promise.all([settle(sources.ingestLag), settle(sources.deadLetterBacklog), settle(sources.parked), settle(sources.rollupFreshness)]);
        // The extra attribute only where flagged: healthy series keep the attributes dashboards already use.
        for (const l of lag ?? []) result.observe(ingestLag, l.lag, l.checkpointAhead ? { hub: l.hub, partition: l.partition, checkpoint: 'ahead' } : { hub: l.hub, partition: l.partition });
        for (const b of bl ?? []) result.observe(backlog, b.backlog, { hub: b.hub });
        for (const p of pk ?? []) result.observe(parked, p.count, { reason: p.reason });
        for (const f of fr ?? []) result.observe(freshness, f.seconds, { rollup: f.rollup });
        if (sources.pool) {
          const p = sources.pool();
          result.observe(poolInUse, p.inUse);
          result.observe(poolWaiting, p.waiting);
        }
      };
      if (observables.length === 0) return () => undefined;
      meter.addBatchObservableCallback(callback, observables);
      return () => meter.removeBatchObservableCallback(callback, observables);
    },
  };
}
