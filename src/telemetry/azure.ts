/**
 * Telemetry for the Function App: Azure Monitor's OpenTelemetry distro (`useAzureMonitor`) when
 * APPLICATIONINSIGHTS_CONNECTION_STRING is set, nothing otherwise. The distro is large (it brings the
 * whole OpenTelemetry Node SDK and its instrumentations), so it is imported only when the setting is
 * there: a Function App without it never loads a byte of it.
 *
 * Our instruments are created on the global MeterProvider the distro installs; its exporter sends
 * them to Application Insights, where each appears in `customMetrics` under the instrument's name
 * (`hubsink.events.inserted`, ...) with its attributes in `customDimensions`, every 60 s (the
 * distro's default export interval; OTEL_METRIC_EXPORT_INTERVAL changes it). Gauges are read at each
 * export, so their sources cost one round of calls per interval.
 */
import type { Resource } from '@opentelemetry/resources';
import type { MetricReader } from '@opentelemetry/sdk-metrics';
import { createOtelTelemetry, METER_NAME } from './otel.js';
import { noopTelemetry, type Telemetry } from './telemetry.js';

export interface AppTelemetry {
  telemetry: Telemetry;
  /** Whether Azure Monitor is on. */
  enabled: boolean;
  /** Exports what is pending and stops (tests; the host just ends the process). */
  shutdown(): Promise<void>;
}

export interface AzureMonitorOptions {
  /** More readers on the same MeterProvider (tests read our instruments through an in-memory one). */
  metricReaders?: MetricReader[];
}

/**
 * Our resource replaces the one the distro detects (its options merge by copying the resource's
 * fields over), so it brings the distro's Azure detectors itself: cloud.*, faas.* and
 * cloud.resource_id stay as the distro would set them, with service.name/version/instance.id ours.
 */
async function functionAppResource(): Promise<Resource> {
  const [{ azureAppServiceDetector, azureFunctionsDetector }, { serviceResource }] = await Promise.all([import('@opentelemetry/resource-detector-azure'), import('./resource.js')]);
  return serviceResource(process.env, 'functions', [azureAppServiceDetector, azureFunctionsDetector]);
}

export async function azureMonitorTelemetry(connectionString: string | undefined, opts: AzureMonitorOptions = {}): Promise<AppTelemetry> {
  if (!connectionString) return { telemetry: noopTelemetry, enabled: false, shutdown: () => Promise.resolve() };
  const [{ useAzureMonitor, shutdownAzureMonitor }, { metrics }] = await Promise.all([import('@azure/monitor-opentelemetry'), import('@opentelemetry/api')]);
  useAzureMonitor({
    azureMonitorExporterOptions: { connectionString },
    resource: await functionAppResource(),
    ...(opts.metricReaders ? { metricReaders: opts.metricReaders } : {}),
  });
  return { telemetry: createOtelTelemetry(metrics.getMeter(METER_NAME)), enabled: true, shutdown: shutdownAzureMonitor };
}
