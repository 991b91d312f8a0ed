/**
 * The Function App's telemetry: with APPLICATIONINSIGHTS_CONNECTION_STRING the Azure Monitor distro is
 * set up and our instruments are on its MeterProvider (read through an extra in-memory reader), and
 * its exporter sends them under the same names as Application Insights metric items, the ones that
 * become customMetrics rows. The ingestion endpoint is a loopback HTTPS server (the exporter speaks
 * only HTTPS) with a throwaway self-signed certificate, so nothing leaves the machine.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { loadConfig } from '../../src/config.js';
import { azureMonitorTelemetry } from '../../src/telemetry/azure.js';
import { INSTRUMENTS } from '../../src/telemetry/telemetry.js';
import { packageVersion } from '../../src/telemetry/resource.js';
import { pointValue, TestReader } from '../support/metrics.js';

// This process only: trust the loopback endpoint's self-signed certificate; no statsbeat to Azure.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
process.env.APPLICATIONINSIGHTS_STATSBEAT_DISABLED = 'true';

const posted: unknown[] = [];
let ingestion: https.Server;
let certDir: string;
beforeAll(async () => {
  certDir = await mkdtemp(path.join(tmpdir(), 'hubsink-ai-'));
  const key = path.join(certDir, 'key.pem');
  const cert = path.join(certDir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
  ingestion = https.createServer({ key: await readFile(key), cert: await readFile(cert) }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let body = Buffer.concat(chunks);
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
    if (req.url?.includes('/track')) {
      for (const line of body.toString('utf8').split('\n')) if (line.trim()) posted.push(...([] as unknown[]).concat(JSON.parse(line)));
    }
    const n = posted.length;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ itemsReceived: n, itemsAccepted: n, errors: [] }));
  });
  });
});
afterAll(async () => {
  ingestion.closeAllConnections();
  await new Promise<void>((resolve) => ingestion.close(() => resolve()));
  await rm(certDir, { recursive: true, force: true });
});

test('without the setting: nothing is set up', async () => {
  const cfg = loadConfig({});
  assert.equal(cfg.appInsightsConnectionString, undefined);
  const t = await azureMonitorTelemetry(cfg.appInsightsConnectionString);
  assert.equal(t.enabled, false);
});

test('with the setting: our instruments reach the Azure Monitor exporter under their own names', async () => {
  await new Promise<void>((resolve) => ingestion.listen(0, '127.0.0.1', () => resolve()));
  const port = (ingestion.address() as AddressInfo).port;
  const cs = `InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=http://127.0.0.1:${port}/;LiveEndpoint=http://127.0.0.1:${port}/`;
  const cfg = loadConfig({ APPLICATIONINSIGHTS_CONNECTION_STRING: cs });
  assert.equal(cfg.appInsightsConnectionString, cs);
  const reader = new TestReader();
  // What the Functions host sets: the app's name and the instance (the distro detects Functions by the version).
  Object.assign(process.env, { WEBSITE_SITE_NAME: 'hubsink-fn-test', WEBSITE_INSTANCE_ID: 'instance-7', FUNCTIONS_EXTENSION_VERSION: '~4' });
  const app = await azureMonitorTelemetry(cfg.appInsightsConnectionString, { metricReaders: [reader] });
  assert.equal(app.enabled, true);
  app.telemetry.ingestBatch('clickstream', { received: 500, inserted: 480, duplicates: 15, deadLettered: { invalid: 5, rejected: 0, transient: 0 }, latencyMs: 30 });
  app.telemetry.observe({ parked: () => Promise.resolve([{ reason: 'invalid', count: 7 }]) });

  const rm = await reader.read();
  // Who reports: the Function App's name and instance, hubsink's version, and what the distro's Azure detectors add.
  assert.equal(rm.resource.attributes['service.name'], 'hubsink-fn-test');
  assert.equal(rm.resource.attributes['service.instance.id'], 'instance-7');
  assert.equal(rm.resource.attributes['service.version'], packageVersion());
  assert.match(packageVersion(), /^\d+\.\d+\.\d+/);
  assert.equal(rm.resource.attributes['cloud.platform'], 'azure.functions');
  assert.equal(rm.resource.attributes['faas.instance'], 'instance-7');
  assert.equal(pointValue(rm, INSTRUMENTS.received.name, { hub: 'clickstream' }), 500);
  assert.equal(pointValue(rm, INSTRUMENTS.inserted.name, { hub: 'clickstream' }), 480);
  assert.equal(pointValue(rm, INSTRUMENTS.parked.name, { reason: 'invalid' }), 7);

  // Shutting down flushes the exporter's metrics to the (loopback) ingestion endpoint.
  await app.shutdown();
  type Item = { tags?: Record<string, string>; data?: { baseType?: string; baseData?: { metrics?: { name: string; value: number }[]; properties?: Record<string, string> } } };
  const metrics = (posted as Item[])
    .filter((i) => i.data?.baseType === 'MetricData')
    .flatMap((i) => (i.data?.baseData?.metrics ?? []).map((m) => ({ ...m, properties: i.data?.baseData?.properties ?? {} })));
  const find = (name: string) => metrics.find((m) => m.name === name);
  assert.equal(find(INSTRUMENTS.received.name)?.value, 500, `sent: ${metrics.map((m) => m.name).join(', ')}`);
  assert.equal(find(INSTRUMENTS.received.name)?.properties.hub, 'clickstream');
  assert.equal(find(INSTRUMENTS.inserted.name)?.value, 480);
  assert.equal(find(INSTRUMENTS.deadLettered.name)?.properties.reason, 'invalid');
  assert.equal(find(INSTRUMENTS.parked.name)?.value, 7);
  assert.ok(find(INSTRUMENTS.batchDuration.name), 'histograms are sent too');
  // Application Insights files them under the app's role (cloud_RoleName), as the host's own telemetry.
  const ours = (posted as Item[]).find((i) => i.data?.baseData?.metrics?.some((m) => m.name === INSTRUMENTS.received.name));
  assert.equal(ours?.tags?.['ai.cloud.role'], 'hubsink-fn-test');
  assert.equal(ours?.tags?.['ai.cloud.roleInstance'], 'instance-7');
  assert.equal(ours?.tags?.['ai.application.ver'], packageVersion());
});
