/**
 * Reading OpenTelemetry instruments in tests: a MetricReader collected on demand, and lookups of one
 * data point by instrument name and attributes.
 */
import { DataPointType, MeterProvider, MetricReader, type MetricData, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { createOtelTelemetry, METER_NAME } from '../../src/telemetry/otel.js';
import type { Telemetry } from '../../src/telemetry/telemetry.js';

export class TestReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  async read(): Promise<ResourceMetrics> {
    const { resourceMetrics, errors } = await this.collect();
    if (errors.length > 0) throw new Error(`collect failed: ${errors.map(String).join('; ')}`);
    return resourceMetrics;
  }
}

export function testTelemetry(): { telemetry: Telemetry; reader: TestReader; provider: MeterProvider } {
  const reader = new TestReader();
  const provider = new MeterProvider({ readers: [reader] });
  return { telemetry: createOtelTelemetry(provider.getMeter(METER_NAME)), reader, provider };
}

export function findMetric(rm: ResourceMetrics, name: string): MetricData | undefined {
  for (const sm of rm.scopeMetrics) for (const m of sm.metrics) if (m.descriptor.name === name) return m;
  return undefined;
}

function matches(attrs: Record<string, unknown>, want: Record<string, string>): boolean {
  const keys = Object.keys(want);
  return keys.length === Object.keys(attrs).length && keys.every((k) => attrs[k] === want[k]);
}

/** The value of a sum or gauge point with exactly these attributes; undefined when absent. */
export function pointValue(rm: ResourceMetrics, name: string, attrs: Record<string, string> = {}): number | undefined {
  const m = findMetric(rm, name);
  if (!m) return undefined;
  if (m.dataPointType === DataPointType.HISTOGRAM || m.dataPointType === DataPointType.EXPONENTIAL_HISTOGRAM) throw new Error(`${name} is a histogram`);
  const p = m.dataPoints.find((d) => matches(d.attributes, attrs));
  return p ? Number(p.value) : undefined;
}

/** count and sum of a histogram point with exactly these attributes. */
export function histogram(rm: ResourceMetrics, name: string, attrs: Record<string, string> = {}): { count: number; sum: number } | undefined {
  const m = findMetric(rm, name);
  if (!m) return undefined;
  if (m.dataPointType !== DataPointType.HISTOGRAM) throw new Error(`${name} is not a histogram`);
  const p = m.dataPoints.find((d) => matches(d.attributes, attrs));
  return p ? { count: p.value.count, sum: p.value.sum ?? 0 } : undefined;
}

/** Samples of a Prometheus text exposition: metric name, labels, value (comments skipped). */
export function parsePrometheus(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || line.startsWith('#')) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ''] = l[2] ?? '';
    out.push({ name: m[1] ?? '', labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample with this name whose labels include `labels`; undefined if none. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = parsePrometheus(text).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length > 1) throw new Error(`${hits.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return hits[0]?.value;
}
