/**
 * The standalone runner's observability endpoint: `/metrics` in Prometheus text format (rendered by
 * @opentelemetry/exporter-prometheus from our MeterProvider, not by hand), `/healthz` (the process
 * answers) and `/readyz` (the caller's readiness check: 200 when ready, 503 with the failed checks
 * otherwise). Loopback unless the caller binds elsewhere: metrics name hubs and partitions.
 * `target_info` carries the resource (service.name `hubsink`, version, instance): see resource.ts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { createOtelTelemetry, METER_NAME } from './otel.js';
import { serviceResource } from './resource.js';
import type { Readiness, Telemetry } from './telemetry.js';

export interface MetricsEndpointOptions {
  host: string;
  port: number;
  /** Until set (see setReadiness), /readyz answers 503 "starting". */
  readiness?: () => Promise<Readiness>;
  log?: (line: string) => void;
}

export interface MetricsEndpoint {
  readonly url: string;
  readonly telemetry: Telemetry;
  setReadiness(check: () => Promise<Readiness>): void;
  close(): Promise<void>;
}

export async function startMetricsEndpoint(opts: MetricsEndpointOptions): Promise<MetricsEndpoint> {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter], resource: serviceResource(process.env, 'runner') });
  const telemetry = createOtelTelemetry(provider.getMeter(METER_NAME));
  let readiness = opts.readiness ?? (() => Promise.resolve<Readiness>({ ready: false, checks: { started: 'starting' } }));

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url.pathname === '/metrics') {
      exporter.getMetricsRequestHandler(req, res);
      return;
    }
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('ok\n');
      return;
    }
    if (url.pathname === '/readyz') {
      readiness().then(
        (r) => res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(r)}\n`),
        (err: unknown) => res.writeHead(503, { 'content-type': 'application/json' }).end(`${JSON.stringify({ ready: false, checks: { readiness: String(err) } })}\n`),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics, /healthz or /readyz\n');
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    telemetry,
    setReadiness(check) {
      readiness = check;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await provider.shutdown().catch((err: unknown) => opts.log?.(`metrics: ${String(err)}`));
    },
  };
}
