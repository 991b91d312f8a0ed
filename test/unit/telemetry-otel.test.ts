import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { INSTRUMENTS, noopTelemetry } from '../../src/telemetry/telemetry.js';
import { ProcessedPositions } from '../../src/runner/runnerTelemetry.js';
import { lagReading, partitionLag } from '../../src/hubs/checkpoints.js';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { createOtelTelemetry, METER_NAME } from '../../src/telemetry/otel.js';
import { findMetric, histogram, pointValue, testTelemetry, TestReader } from '../support/metrics.js';

const batch = (received: number, inserted: number, duplicates: number, invalid: number, rejected: number, transient: number, latencyMs: number) => ({
  received,
  inserted,
  duplicates,
  deadLettered: { invalid, rejected, transient },
  latencyMs,
});

describe('OpenTelemetry instruments', () => {
  test('batch counts add up per hub and reason, histograms record one point per batch', async () => {
    const { telemetry, reader } = testTelemetry();
    telemetry.ingestBatch('clicks', batch(100, 90, 5, 3, 2, 0, 40));
    telemetry.ingestBatch('clicks', batch(50, 49, 1, 0, 0, 0, 10));
    telemetry.ingestBatch('other', batch(7, 0, 0, 0, 0, 7, 2500));
    const rm = await reader.read();
    assert.equal(pointValue(rm, INSTRUMENTS.received.name, { hub: 'clicks' }), 150);
    assert.equal(pointValue(rm, INSTRUMENTS.inserted.name, { hub: 'clicks' }), 139);
    assert.equal(pointValue(rm, INSTRUMENTS.duplicate.name, { hub: 'clicks' }), 6);
    assert.equal(pointValue(rm, INSTRUMENTS.deadLettered.name, { hub: 'clicks', reason: 'invalid' }), 3);
    assert.equal(pointValue(rm, INSTRUMENTS.deadLettered.name, { hub: 'clicks', reason: 'rejected' }), 2);
    // A reason that never occurred on a hub has no point at all (not a zero that hides a typo).
    assert.equal(pointValue(rm, INSTRUMENTS.deadLettered.name, { hub: 'clicks', reason: 'transient' }), undefined);
    assert.equal(pointValue(rm, INSTRUMENTS.deadLettered.name, { hub: 'other', reason: 'transient' }), 7);
    assert.deepEqual(histogram(rm, INSTRUMENTS.batchSize.name, { hub: 'clicks' }), { count: 2, sum: 150 });
    const d = histogram(rm, INSTRUMENTS.batchDuration.name, { hub: 'clicks' });
    assert.equal(d?.count, 2);
    assert.ok(Math.abs((d?.sum ?? 0) - 0.05) < 1e-9, `duration sum in seconds, got ${String(d?.sum)}`);
    assert.equal(findMetric(rm, INSTRUMENTS.batchDuration.name)?.descriptor.unit, 's');
  });

  test('rollup run durations, in seconds per rollup', async () => {
    const { telemetry, reader } = testTelemetry();
    telemetry.rollupRuns([
      { name: 'minute', rows: 10, durationMs: 120 },
      { name: 'hour', rows: 10, durationMs: 80 },
    ]);
    const rm = await reader.read();
    assert.deepEqual(histogram(rm, INSTRUMENTS.rollupDuration.name, { rollup: 'minute' }), { count: 1, sum: 0.12 });
    assert.deepEqual(histogram(rm, INSTRUMENTS.rollupDuration.name, { rollup: 'hour' }), { count: 1, sum: 0.08 });
  });

  test('gauges read their sources at collection; a failing source is skipped, the others still report; unobserve stops them', async () => {
    const { telemetry, reader } = testTelemetry();
    let parked = 4;
    let calls = 0;
    const stop = telemetry.observe({
      ingestLag: () => Promise.resolve([{ hub: 'clicks', partition: '0', lag: 12 }, { hub: 'clicks', partition: '1', lag: 0 }, { hub: 'clicks', partition: '2', lag: -40, checkpointAhead: true }]),
      deadLetterBacklog: () => Promise.reject(new Error('hub unreachable')),
      parked: () => {
        calls++;
        return Promise.resolve([{ reason: 'invalid', count: parked }, { reason: 'rejected', count: 1 }]);
      },
      rollupFreshness: () => Promise.resolve([{ rollup: 'minute', seconds: 42.5 }]),
      pool: () => ({ inUse: 3, waiting: 2 }),
    });
    let rm = await reader.read();
    assert.equal(pointValue(rm, INSTRUMENTS.ingestLag.name, { hub: 'clicks', partition: '0' }), 12);
    assert.equal(pointValue(rm, INSTRUMENTS.ingestLag.name, { hub: 'clicks', partition: '1' }), 0);
    // A re-created hub's partition is flagged by an attribute of its own; the others carry none.
    assert.equal(pointValue(rm, INSTRUMENTS.ingestLag.name, { hub: 'clicks', partition: '2', checkpoint: 'ahead' }), -40);
    assert.equal(pointValue(rm, INSTRUMENTS.ingestLag.name, { hub: 'clicks', partition: '2' }), undefined);
    assert.equal(pointValue(rm, INSTRUMENTS.deadLetterBacklog.name, { hub: 'clicks' }), undefined);
    assert.equal(pointValue(rm, INSTRUMENTS.parked.name, { reason: 'invalid' }), 4);
    assert.equal(pointValue(rm, INSTRUMENTS.rollupFreshness.name, { rollup: 'minute' }), 42.5);
    assert.equal(pointValue(rm, INSTRUMENTS.poolInUse.name), 3);
    assert.equal(pointValue(rm, INSTRUMENTS.poolWaiting.name), 2);
    parked = 9;
    rm = await reader.read();
    assert.equal(pointValue(rm, INSTRUMENTS.parked.name, { reason: 'invalid' }), 9);
    assert.equal(calls, 2);
    stop();
    parked = 11;
    rm = await reader.read();
    assert.equal(calls, 2, 'an unregistered source is not read any more');
    assert.notEqual(pointValue(rm, INSTRUMENTS.parked.name, { reason: 'invalid' }), 11);
  });

  test('a source that never answers is cut at its deadline: the others report within the reader\'s timeout', async () => {
    const reader = new TestReader();
    const provider = new MeterProvider({ readers: [reader] });
    const telemetry = createOtelTelemetry(provider.getMeter(METER_NAME), { sourceTimeoutMs: 50 });
    telemetry.observe({
      // Storage that accepts connections and never answers.
      deadLetterBacklog: () => new Promise<never>(() => undefined),
      parked: () => Promise.resolve([{ reason: 'invalid', count: 3 }]),
      pool: () => ({ inUse: 1, waiting: 0 }),
    });
    // The periodic exporter collects with a timeout (30 s by default): past it, the whole batch callback is lost.
    const { resourceMetrics: rm, errors } = await reader.collect({ timeoutMillis: 2000 });
    assert.deepEqual(errors, []);
    assert.equal(pointValue(rm, INSTRUMENTS.parked.name, { reason: 'invalid' }), 3);
    assert.equal(pointValue(rm, INSTRUMENTS.poolInUse.name), 1);
    assert.equal(pointValue(rm, INSTRUMENTS.deadLetterBacklog.name, { hub: 'clicks' }), undefined);
    await provider.shutdown();
  });

  test('every documented instrument exists with its unit once used', async () => {
    const { telemetry, reader } = testTelemetry();
    telemetry.ingestBatch('h', batch(3, 1, 1, 1, 0, 0, 1));
    telemetry.rollupRuns([{ name: 'day', rows: 1, durationMs: 1 }]);
    telemetry.observe({
      ingestLag: () => Promise.resolve([{ hub: 'h', partition: '0', lag: 1 }]),
      deadLetterBacklog: () => Promise.resolve([{ hub: 'dl', backlog: 1 }]),
      parked: () => Promise.resolve([{ reason: 'invalid', count: 1 }]),
      rollupFreshness: () => Promise.resolve([{ rollup: 'day', seconds: 1 }]),
      pool: () => ({ inUse: 1, waiting: 0 }),
    });
    const rm = await reader.read();
    for (const spec of Object.values(INSTRUMENTS)) {
      const m = findMetric(rm, spec.name);
      assert.ok(m, `${spec.name} missing`);
      assert.equal(m.descriptor.unit, spec.unit, spec.name);
    }
  });

  test('the no-op default accepts everything and registers nothing', () => {
    noopTelemetry.ingestBatch('h', batch(1, 1, 0, 0, 0, 0, 1));
    noopTelemetry.rollupRuns([]);
    assert.equal(typeof noopTelemetry.observe({ pool: () => ({ inUse: 0, waiting: 0 }) }), 'function');
  });
});

describe('ingest lag per partition', () => {
  const p = { partitionId: '0', beginningSequenceNumber: 10, lastEnqueuedSequenceNumber: 99, lastEnqueuedOffset: '0', lastEnqueuedOnUtc: new Date(0), isEmpty: false };
  test('last enqueued minus last processed; never negative', () => {
    assert.equal(partitionLag(p, 99, undefined), 0);
    assert.equal(partitionLag(p, 60, undefined), 39);
    assert.equal(partitionLag(p, 120, undefined), 0);
  });
  test('before the first batch here: from the checkpoint, or everything retained without one', () => {
    assert.equal(partitionLag(p, undefined, { partitionId: '0', sequenceNumber: 49 }), 50);
    assert.equal(partitionLag(p, undefined, undefined), 90);
    assert.equal(partitionLag({ ...p, isEmpty: true }, undefined, undefined), 0);
  });
  test('a checkpoint ahead of the partition (a re-created hub) is flagged with the negative difference, whatever was handled', () => {
    const recreated = { ...p, beginningSequenceNumber: 0, lastEnqueuedSequenceNumber: 9 };
    const cp = { partitionId: '0', sequenceNumber: 120 };
    assert.deepEqual(lagReading(recreated, undefined, cp), { lag: -111, ahead: { partitionId: '0', checkpointSequenceNumber: 120, lastEnqueuedSequenceNumber: 9 } });
    assert.equal(lagReading(recreated, 130, cp)?.ahead?.checkpointSequenceNumber, 120);
    assert.equal(lagReading({ ...recreated, isEmpty: true, lastEnqueuedSequenceNumber: -1 }, undefined, cp)?.lag, -121);
    // Not ahead: the plain lag, unflagged.
    assert.deepEqual(lagReading(p, undefined, { partitionId: '0', sequenceNumber: 49 }), { lag: 50 });
    assert.deepEqual(lagReading(p, 99, { partitionId: '0', sequenceNumber: 99 }), { lag: 0 });
  });
  test('positions only move forward', () => {
    const pos = new ProcessedPositions();
    pos.record('0', [{ sequenceNumber: 5 }, { sequenceNumber: 9 }]);
    pos.record('0', [{ sequenceNumber: 3 }]);
    pos.record('1', []);
    assert.equal(pos.get('0'), 9);
    assert.equal(pos.get('1'), undefined);
  });
});
