/**
 * Who reports (src/telemetry/resource.ts): the service attributes for the runner and the Function App,
 * and the OTEL_* variables overriding them.
 */
import { afterEach, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { packageVersion, serviceAttributes, serviceResource } from '../../src/telemetry/resource.js';

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

describe('the OpenTelemetry resource', () => {
  const saved = { name: process.env.OTEL_SERVICE_NAME, attrs: process.env.OTEL_RESOURCE_ATTRIBUTES };
  afterEach(() => {
    for (const [k, v] of [['OTEL_SERVICE_NAME', saved.name], ['OTEL_RESOURCE_ATTRIBUTES', saved.attrs]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  test('the version is package.json\'s', () => {
    assert.equal(packageVersion(), version);
  });

  test('runner: hubsink, its version, host:pid; never the Function App\'s name', () => {
    assert.deepEqual(serviceAttributes({ WEBSITE_SITE_NAME: 'some-app' }, 'runner'), { 'service.name': 'hubsink', 'service.version': version, 'service.instance.id': `${hostname()}:${process.pid}` });
  });

  test('Function App: WEBSITE_SITE_NAME and WEBSITE_INSTANCE_ID when the host sets them, else hubsink and no instance id', () => {
    assert.deepEqual(serviceAttributes({ WEBSITE_SITE_NAME: 'shop-ingest', WEBSITE_INSTANCE_ID: 'a1b2' }, 'functions'), { 'service.name': 'shop-ingest', 'service.version': version, 'service.instance.id': 'a1b2' });
    assert.deepEqual(serviceAttributes({ WEBSITE_SITE_NAME: '' }, 'functions'), { 'service.name': 'hubsink', 'service.version': version });
  });

  test('the SDK attributes stay, no service.namespace; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win', () => {
    delete process.env.OTEL_SERVICE_NAME;
    delete process.env.OTEL_RESOURCE_ATTRIBUTES;
    const plain = serviceResource({}, 'runner').attributes;
    assert.equal(plain['service.name'], 'hubsink');
    assert.equal(plain['telemetry.sdk.language'], 'nodejs');
    assert.equal(plain['service.namespace'], undefined);
    process.env.OTEL_SERVICE_NAME = 'ingest-eu';
    process.env.OTEL_RESOURCE_ATTRIBUTES = 'service.namespace=shop,deployment.environment=prod';
    const over = serviceResource({}, 'runner').attributes;
    assert.equal(over['service.name'], 'ingest-eu');
    assert.equal(over['service.namespace'], 'shop');
    assert.equal(over['deployment.environment'], 'prod');
    assert.equal(over['service.version'], version);
  });
});
