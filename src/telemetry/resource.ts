/**
 * The OpenTelemetry resource: who reports. Without one, exporters say `unknown_service:node`
 * (Prometheus `target_info`, Application Insights' cloud_RoleName).
 *
 * - `service.name`: the Function App's name (WEBSITE_SITE_NAME) in Azure, else `hubsink`.
 * - `service.version`: hubsink's package version.
 * - `service.instance.id`: WEBSITE_INSTANCE_ID in Azure (what the distro's App Service detector
 *   uses), `<host>:<pid>` for the runner.
 * - No `service.namespace`: Azure Monitor's exporter makes cloud_RoleName `<namespace>.<name>`, which
 *   would file our metrics under another role than the host's own telemetry. OTEL_SERVICE_NAME and
 *   OTEL_RESOURCE_ATTRIBUTES (service.namespace=... included) still override everything here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { defaultResource, detectResources, envDetector, resourceFromAttributes, type Resource, type ResourceDetector } from '@opentelemetry/resources';

let version: string | undefined;

/**
 * From the first package.json named hubsink above this module: src/telemetry (sources),
 * dist/src/telemetry (compiled), or dist/ of the deployable bundle (deploy/package.json).
 */
export function packageVersion(): string {
  if (version !== undefined) return version;
  version = 'unknown';
  for (const rel of ['../package.json', '../../package.json', '../../../package.json']) {
    const url = new URL(rel, import.meta.url);
    if (!existsSync(url)) continue;
    try {
      const pkg = JSON.parse(readFileSync(url, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'hubsink' && typeof pkg.version === 'string') {
        version = pkg.version;
        break;
      }
    } catch {
      // Not ours or unreadable: try the next one.
    }
  }
  return version;
}

type Env = Record<string, string | undefined>;

/** Pure: hubsink's own resource attributes. */
export function serviceAttributes(env: Env, role: 'functions' | 'runner'): Record<string, string> {
  const attrs: Record<string, string> = { 'service.name': (role === 'functions' ? env.WEBSITE_SITE_NAME : undefined) || 'hubsink', 'service.version': packageVersion() };
  const instance = role === 'functions' ? env.WEBSITE_INSTANCE_ID : `${hostname()}:${process.pid}`;
  if (instance) attrs['service.instance.id'] = instance;
  return attrs;
}

/**
 * The SDK's defaults (telemetry.sdk.*), then the platform's detectors (the Function App passes the
 * Azure ones, which the distro would otherwise apply: a resource given to `useAzureMonitor` replaces
 * its detected one), then ours, then the OTEL_* environment variables.
 */
export function serviceResource(env: Env, role: 'functions' | 'runner', platform: ResourceDetector[] = []): Resource {
  let r = defaultResource();
  if (platform.length > 0) r = r.merge(detectResources({ detectors: platform }));
  return r.merge(resourceFromAttributes(serviceAttributes(env, role))).merge(detectResources({ detectors: [envDetector] }));
}
