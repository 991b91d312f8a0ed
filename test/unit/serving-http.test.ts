/**
 * The serving functions' one mapping from a kind of error to an HTTP response (src/serving/httpErrors.ts),
 * and the handlers' use of it on the paths that need no database: parameters, start-up failures,
 * a statement timeout and an unexpected failure (from a stand-in pool that only rejects; the real
 * database paths are in test/integration/rollups-http.test.ts and dashboard-api.test.ts).
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import functions, { type HttpResponseInit, type InvocationContext } from '@azure/functions';
import type pg from 'pg';
import { ConfigError } from '../../src/config.js';
import { ERROR_KINDS, FailedError, RefusedError, UnavailableError } from '../../src/errors.js';
import { RollupBusyError } from '../../src/rollups/run.js';
import { RollupSetupError } from '../../src/rollups/sketches.js';
import { errorResponse, HTTP_STATUS, httpStatusOf, notReady, ParameterError, QueryTimeoutError } from '../../src/serving/httpErrors.js';
import { makeMetricsHandler, type MetricsDeps } from '../../src/serving/handler.js';
import { makeTenantsHandler } from '../../src/serving/tenantsHandler.js';
import { makeFreshnessHandler } from '../../src/serving/freshnessHandler.js';

const { HttpRequest, InvocationContext: Context } = functions;

type Body = { error: { parameter?: string; message: string } };

describe('error kinds → HTTP status', () => {
  test('the table: 400 for a bad parameter, 503 for not configured / unavailable / busy, 500 for a failure', () => {
    assert.deepEqual(HTTP_STATUS, { usage: 400, config: 503, refused: 409, unavailable: 503, busy: 503, failed: 500, unauthenticated: 401, forbidden: 403 });
    assert.deepEqual(Object.keys(HTTP_STATUS).sort(), [...ERROR_KINDS].sort());
  });

  const cases: [string, unknown, number][] = [
    ['ParameterError', new ParameterError('from', 'required'), 400],
    ['ConfigError', new ConfigError(['DATABASE_URL is not set']), 503],
    ['RollupSetupError', new RollupSetupError('rollup tables not found: run `hubsink migrate` first'), 503],
    ['QueryTimeoutError', new QueryTimeoutError('the query took too long'), 503],
    ['RollupBusyError', new RollupBusyError('writers held the lock'), 503],
    ['RefusedError', new RefusedError('no'), 409],
    ['FailedError', new FailedError('it broke'), 500],
    ['a plain Error', new Error('syntax error at or near "FROM"'), 500],
    ['a thrown string', 'boom', 500],
  ];
  for (const [name, err, status] of cases) {
    test(`${name} → ${status}`, () => {
      assert.equal(httpStatusOf(err), status);
      const r = errorResponse(err);
      assert.equal(r.status, status);
      assert.deepEqual(r.headers, { 'cache-control': 'no-store' });
      const { error } = r.jsonBody as Body;
      // Our messages say the fix; a 500 never repeats what failed (it may quote SQL or a server).
      if (status === 500) assert.equal(error.message, 'internal error (logged)');
      else assert.equal(error.message, (err as Error).message);
    });
  }

  test('a parameter error names the parameter, in the field and in the message', () => {
    assert.deepEqual(errorResponse(new ParameterError('to', 'must be after from')).jsonBody, { error: { parameter: 'to', message: 'to: must be after from' } });
  });

  test('a start-up failure is 503 and does not repeat its cause (which may quote a connection string)', () => {
    const r = errorResponse(notReady(new Error('password authentication failed for postgres://u:hunter2@h/d')));
    assert.equal(r.status, 503);
    assert.deepEqual(r.jsonBody, { error: { message: 'the service is not configured or cannot reach its database' } });
  });
});

function context(logged: string[]): InvocationContext {
  return new Context({ invocationId: 'test', functionName: 'serving', logHandler: (_level, ...args) => logged.push(args.map(String).join(' ')) });
}

/** A stand-in pool for paths that must not reach a database, or whose query fails as given. */
function poolRejecting(err: Error): pg.Pool {
  return { query: () => Promise.reject(err) } as unknown as pg.Pool;
}

const retentionDays = { minute: 7, hour: 90, day: 3650 };
const caps = { hllInstalled: false, citus: false } as unknown as MetricsDeps['caps'];
const range = 'from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z';
const now = () => new Date('2026-01-05T00:00:00Z');

async function metrics(deps: () => Promise<MetricsDeps>, qs: string, logged: string[] = []): Promise<HttpResponseInit> {
  const req = new HttpRequest({ url: `http://127.0.0.1/api/tenants/7/metrics?${qs}`, method: 'GET', params: { tenantId: '7' } });
  return makeMetricsHandler(deps)(req, context(logged));
}

describe('the handlers answer through the one mapping', () => {
  const untouched = poolRejecting(new Error('the pool must not be used for a bad request'));

  test('metrics, tenants and freshness: a bad parameter is 400 naming it, before any query', async () => {
    const m = await metrics(() => Promise.resolve({ pool: untouched, schema: 's', caps, retentionDays, now }), `${range}&grain=week`);
    assert.equal(m.status, 400);
    assert.deepEqual(m.jsonBody, { error: { parameter: 'grain', message: 'grain: must be one of minute, hour, day, auto' } });

    const tenants = makeTenantsHandler(() => Promise.resolve({ pool: untouched, schema: 's', retentionDays, now }));
    const t = await tenants(new HttpRequest({ url: 'http://127.0.0.1/api/tenants?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', method: 'GET' }), context([]));
    assert.equal(t.status, 400);
    assert.deepEqual(t.jsonBody, { error: { parameter: 'to', message: 'to: must be after from' } });

    const fresh = makeFreshnessHandler(() => Promise.resolve({ pool: untouched, schema: 's' }));
    const f = await fresh(new HttpRequest({ url: 'http://127.0.0.1/api/freshness?x=1', method: 'GET' }), context([]));
    assert.equal(f.status, 400);
    assert.deepEqual(f.jsonBody, { error: { parameter: 'x', message: 'x: unknown parameter; this endpoint takes none' } });
  });

  test('dependencies that cannot be built: 503 without the cause, which is logged', async () => {
    const logged: string[] = [];
    const cause = new ConfigError(['DATABASE_URL is not set']);
    const m = await metrics(() => Promise.reject(cause), range, logged);
    assert.equal(m.status, 503);
    assert.deepEqual(m.jsonBody, { error: { message: 'the service is not configured or cannot reach its database' } });
    assert.match(logged.join('\n'), /cannot initialise.*DATABASE_URL is not set/s);
    const t = await makeTenantsHandler(() => Promise.reject(new UnavailableError('x')))(new HttpRequest({ url: `http://127.0.0.1/api/tenants?${range}`, method: 'GET' }), context([]));
    assert.equal(t.status, 503);
    const f = await makeFreshnessHandler(() => Promise.reject(new Error('x')))(new HttpRequest({ url: 'http://127.0.0.1/api/freshness', method: 'GET' }), context([]));
    assert.equal(f.status, 503);
  });

  test('a statement timeout is 503 with advice; an unexpected failure is 500 that quotes nothing', async () => {
    const timeout = Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' });
    const slow = await metrics(() => Promise.resolve({ pool: poolRejecting(timeout), schema: 's', caps, retentionDays, now }), range);
    assert.equal(slow.status, 503);
    assert.match((slow.jsonBody as Body).error.message, /took too long; narrow the range/);

    const logged: string[] = [];
    const broken = Object.assign(new Error('relation "secret_table" does not exist'), { code: '42P01' });
    const r = await metrics(() => Promise.resolve({ pool: poolRejecting(broken), schema: 's', caps, retentionDays, now }), range, logged);
    assert.equal(r.status, 500);
    assert.deepEqual(r.jsonBody, { error: { message: 'internal error (logged)' } });
    assert.match(logged.join('\n'), /secret_table/);
  });
});
