/**
 * The metrics HTTP handler: validate, query the coarsest fitting rollup, shape JSON. The Functions
 * registration (src/functions/metrics.ts) passes the app context; tests pass their own pool.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type pg from 'pg';
import { loadSketchProfile } from '../rollups/run.js';
import type { RollupRetention } from '../rollups/definitions.js';
import type { RollupCapabilities, SketchProfile } from '../rollups/sketches.js';
import { callerScope, refusal, requireTenant, type AccessControl, type Scope } from './access.js';
import { isStatementTimeout } from '../pipeline/pgErrors.js';
import { errorResponse, httpStatusOf, notReady, NO_STORE, ParameterError, QueryTimeoutError, requestQuery } from './httpErrors.js';
import { loadCatalog } from '../rollups/catalog.js';
import { servingCatalog } from './catalogHandler.js';
import { parseMetricsRequest, resolveMetricsQuery } from './params.js';
import { DEFAULT_MAX_ROWS, exceedsRowLimit, lastRunSql, metricsSql, shapeMetrics, type MetricsRow } from './query.js';

export interface MetricsDeps {
  /**
   * The pool dashboard queries run on. Give it its own small pool with a statement_timeout
   * (createServingPool), so a burst of heavy requests cannot take the connections ingest needs.
   */
  pool: pg.Pool;
  schema: string;
  caps: RollupCapabilities;
  retentionDays: RollupRetention;
  /** Most rollup rows one response may read (default DEFAULT_MAX_ROWS). */
  maxRows?: number;
  now?: () => Date;
  /** HUBSINK_ACCESS=entra: whose grants decide (absent: a function key reads every storefront). */
  access?: AccessControl;
}

export type MetricsHandler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

export function makeMetricsHandler(getDeps: () => Promise<MetricsDeps>): MetricsHandler {
  // The encoding of the rollup tables does not change while a process runs; read it once.
  let profile: { pool: pg.Pool; schema: string; sketch: Promise<SketchProfile> } | undefined;
  const sketchFor = (deps: MetricsDeps): Promise<SketchProfile> => {
    if (!profile || profile.pool !== deps.pool || profile.schema !== deps.schema) {
      const sketch = loadSketchProfile(deps.pool, deps.schema, deps.caps);
      profile = { pool: deps.pool, schema: deps.schema, sketch };
      void sketch.catch(() => {
        profile = undefined;
      });
    }
    return profile.sketch;
  };

  // Analyst-defined rollups answer as soon as they are backfilled: the catalog is re-read every few seconds.
  const catalogOf = servingCatalog();

  return async (request, context) => {
    let deps: MetricsDeps;
    try {
      deps = await getDeps();
    } catch (err) {
      context.error('metrics: cannot initialise:', err);
      return errorResponse(notReady(err));
    }
    // Who asks comes before what is asked: a caller not signed in learns nothing, not even a 400.
    let scope: Scope;
    try {
      scope = await callerScope(request, deps.access);
    } catch (err) {
      return refusal(context, 'metrics', err);
    }
    const now = (deps.now ?? (() => new Date()))();
    try {
      // Everything the catalog does not decide is checked first: a malformed request reads nothing.
      const checked = parseMetricsRequest(request.params.tenantId, requestQuery(request), { now, retentionDays: deps.retentionDays });
      if (!checked.ok) return errorResponse(new ParameterError(checked.error.parameter, checked.error.message));
      // A storefront not granted is refused before anything is read, the catalog included.
      try {
        requireTenant(scope, checked.request.tenantId);
      } catch (err) {
        return refusal(context, 'metrics', err);
      }
      let parsed = resolveMetricsQuery(checked.request, (await catalogOf(deps)).rollups);
      // The cached catalog may predate a rollup that GET /api/rollups already offers: before
      // refusing, read it afresh once.
      if (!parsed.ok) parsed = resolveMetricsQuery(checked.request, (await loadCatalog(deps.pool, deps.schema, { serving: true })).rollups);
      if (!parsed.ok) return errorResponse(new ParameterError(parsed.error.parameter, parsed.error.message));
      const q = parsed.query;
      const sketch = await sketchFor(deps);
      const maxRows = deps.maxRows ?? DEFAULT_MAX_ROWS;
      const sql = metricsSql(q, sketch, deps.schema, { maxRows });
      const [rows, state] = await Promise.all([
        deps.pool.query<MetricsRow>(sql),
        deps.pool.query<{ last_run_at: Date | null }>(lastRunSql(deps.schema, q.rollup.name)),
      ]);
      if (exceedsRowLimit(rows.rows, maxRows)) {
        return errorResponse(new ParameterError('to', `this range holds more than ${maxRows} rows of rollup ${q.rollup.name} for the tenant; narrow the range or use a coarser grain`));
      }
      return { status: 200, headers: NO_STORE, jsonBody: shapeMetrics(q, sketch.kind, state.rows[0]?.last_run_at ?? null, rows.rows) };
    } catch (err) {
      if (isStatementTimeout(err)) {
        context.warn('metrics: statement timeout:', err instanceof Error ? err.message : String(err));
        return errorResponse(new QueryTimeoutError('the query took too long; narrow the range or use a coarser grain, or retry later', { cause: err }));
      }
      // A RollupSetupError (tables not migrated, hll gone) says the fix: 503 with its message.
      if (httpStatusOf(err) === 500) context.error('metrics: query failed:', err);
      else context.error('metrics:', err instanceof Error ? err.message : String(err));
      return errorResponse(err);
    }
  };
}
