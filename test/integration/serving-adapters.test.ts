/**
 * The local HTTP adapter (src/local/localHttpServer.ts) and the Functions adapter hand the validator the same
 * shape, so one table of query strings gets the same answers from both: a repeated parameter is a
 * 400 naming it, as the README says, and never "the last value wins". The Functions side is built
 * as the host builds it without HTTP streaming: the raw URL plus `query` as a map, a repeat joined
 * with a comma; the local side is a real HTTP request to the local server.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import functions, { type HttpResponseInit } from '@azure/functions';
import { serveMetrics, type LocalHttp } from '../../src/local/localHttpServer.js';
import { makeMetricsHandler } from '../../src/serving/handler.js';
import { makeTenantsHandler } from '../../src/serving/tenantsHandler.js';
import { makeFreshnessHandler } from '../../src/serving/freshnessHandler.js';
import { rollupSchema, type RollupFixture } from '../support/rollups-fixture.js';

const { HttpRequest, InvocationContext } = functions;

let f: RollupFixture;
let local: LocalHttp;
let handlers: { metrics: ReturnType<typeof makeMetricsHandler>; tenants: ReturnType<typeof makeTenantsHandler>; freshness: ReturnType<typeof makeFreshnessHandler> };

beforeAll(async () => {
  f = await rollupSchema('sad_');
  const retentionDays = { minute: 7, hour: 90, day: 3650 };
  handlers = {
    metrics: makeMetricsHandler(() => Promise.resolve({ pool: f.s.pool, schema: f.s.schema, caps: f.caps, retentionDays })),
    tenants: makeTenantsHandler(() => Promise.resolve({ pool: f.s.pool, schema: f.s.schema, retentionDays })),
    freshness: makeFreshnessHandler(() => Promise.resolve({ pool: f.s.pool, schema: f.s.schema })),
  };
  local = await serveMetrics(handlers, { port: 0 });
});
afterAll(async () => {
  await local?.close();
  await f?.s.drop();
});

/** The query map the Functions host passes over: each name once, a repeat's values joined. */
function hostQueryMap(qs: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(qs)) out[k] = k in out ? `${out[k]},${v}` : v;
  return out;
}

interface Answer {
  status: number;
  message: string;
}

function answer(r: { status?: number; jsonBody?: unknown }): Answer {
  const msg = (r.jsonBody as { error?: { message?: string } } | undefined)?.error?.message ?? '';
  return { status: r.status ?? 200, message: msg };
}

async function viaFunctions(path: string, qs: string): Promise<Answer> {
  const m = /^\/api\/tenants\/([^/]+)\/metrics$/.exec(path);
  const handler = m ? handlers.metrics : path === '/api/tenants' ? handlers.tenants : handlers.freshness;
  const req = new HttpRequest({ url: `https://app.example${path}?${qs}`, method: 'GET', query: hostQueryMap(qs), params: m ? { tenantId: m[1] as string } : {} });
  const r: HttpResponseInit = await handler(req, new InvocationContext({ functionName: 'adapters' }));
  return answer(r);
}

async function viaLocal(path: string, qs: string): Promise<Answer> {
  const res = await fetch(`${local.url}${path}?${qs}`);
  const text = await res.text();
  let jsonBody: unknown;
  try {
    jsonBody = JSON.parse(text);
  } catch {
    jsonBody = undefined;
  }
  return answer({ status: res.status, jsonBody });
}

const range = 'from=2026-12-05&to=2026-12-07';
const cases: { name: string; path: string; qs: string; status: number; message?: RegExp }[] = [
  { name: 'metrics: from repeated', path: '/api/tenants/1/metrics', qs: `${range}&from=2026-12-06`, status: 400, message: /^from: given more than once/ },
  { name: 'metrics: to repeated with the same value', path: '/api/tenants/1/metrics', qs: `${range}&to=2026-12-07`, status: 400, message: /^to: given more than once/ },
  { name: 'metrics: grain repeated', path: '/api/tenants/1/metrics', qs: `${range}&grain=day&grain=hour`, status: 400, message: /^grain: given more than once/ },
  { name: 'metrics: unknown parameter', path: '/api/tenants/1/metrics', qs: `${range}&limit=5`, status: 400, message: /^limit: unknown parameter/ },
  { name: 'metrics: valid', path: '/api/tenants/1/metrics', qs: `${range}&grain=day`, status: 200 },
  { name: 'tenants: from repeated', path: '/api/tenants', qs: `${range}&from=2026-12-06`, status: 400, message: /^from: given more than once/ },
  { name: 'tenants: valid', path: '/api/tenants', qs: range, status: 200 },
  { name: 'freshness: any parameter', path: '/api/freshness', qs: 'x=1&x=2', status: 400, message: /x/ },
];

describe('one table, both adapters', () => {
  test.each(cases)('$name', async (c) => {
    const [fn, loc] = [await viaFunctions(c.path, c.qs), await viaLocal(c.path, c.qs)];
    expect(fn.status, fn.message).toBe(c.status);
    expect(loc.status, loc.message).toBe(c.status);
    expect(loc.message).toBe(fn.message);
    if (c.message) expect(fn.message).toMatch(c.message);
  });
});
