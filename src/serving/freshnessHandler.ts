/**
 * `GET /api/freshness`: when each rollup last ran and how far behind ingest it is, so the dashboard
 * can show stale data as stale. The pending count is bounded (it stops counting at `pendingBound`),
 * and one answer is shared for `cacheMs` so many open dashboards cost one status query.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type pg from 'pg';
import { rollupStatus, type RollupStatus } from '../rollups/run.js';
import { callerScope, refusal, type AccessControl, type Scope } from './access.js';
import { errorResponse, notReady, NO_STORE, ParameterError, requestQuery } from './httpErrors.js';

export interface FreshnessDeps {
  pool: pg.Pool;
  schema: string;
  now?: () => Date;
  /** HUBSINK_ACCESS=entra: who may see what (absent: every caller sees everything). */
  access?: AccessControl;
}

export interface FreshnessEntry {
  name: string;
  grain: string;
  lastRunAt: string | null;
  /** Age of the oldest event not folded in yet (0 when none is pending). */
  lagSeconds: number;
  /**
   * Events of every storefront waiting to be folded in; null for a caller granted only some
   * storefronts (entra mode), to whom the others' volume is not shown.
   */
  pendingEvents: number | null;
  /** pendingEvents is a lower bound: counting stopped there. */
  pendingCapped: boolean;
}

export interface FreshnessResponse {
  now: string;
  rollups: FreshnessEntry[];
}

/** Pure. */
export function shapeFreshness(now: Date, status: readonly RollupStatus[]): FreshnessResponse {
  return {
    now: now.toISOString(),
    rollups: status.map((s) => ({
      name: s.name,
      grain: s.grain,
      lastRunAt: s.lastRunAt?.toISOString() ?? null,
      lagSeconds: Math.round(s.lagSeconds * 10) / 10,
      pendingEvents: s.pendingRows,
      pendingCapped: s.pendingCapped,
    })),
  };
}

/**
 * Pure: the answer as a caller of `scope` may see it. Run times and lag concern every storefront
 * alike (one rollup run folds them all), so they stay; the count of waiting events sums every
 * storefront's traffic, so only a caller granted all of them sees it.
 */
export function freshnessFor(scope: Scope, body: FreshnessResponse): FreshnessResponse {
  if (scope.all) return body;
  return { ...body, rollups: body.rollups.map((r) => ({ ...r, pendingEvents: null, pendingCapped: false })) };
}

type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

export function makeFreshnessHandler(getDeps: () => Promise<FreshnessDeps>, opts: { cacheMs?: number; pendingBound?: number } = {}): Handler {
  const cacheMs = opts.cacheMs ?? 2000;
  let cached: { at: number; body: Promise<FreshnessResponse> } | undefined;
  return async (request, context) => {
    const [extra] = [...requestQuery(request).keys()];
    if (extra !== undefined) return errorResponse(new ParameterError(extra, 'unknown parameter; this endpoint takes none'));
    let deps: FreshnessDeps;
    try {
      deps = await getDeps();
    } catch (err) {
      context.error('freshness: cannot initialise:', err);
      return errorResponse(notReady(err));
    }
    let scope: Scope;
    try {
      scope = await callerScope(request, deps.access);
    } catch (err) {
      return refusal(context, 'freshness', err);
    }
    const now = deps.now ?? (() => new Date());
    const t = Date.now();
    if (!cached || t - cached.at >= cacheMs) {
      const body = rollupStatus(deps.pool, deps.schema, { now, pendingBound: opts.pendingBound ?? 10_000 }).then((s) => shapeFreshness(now(), s));
      cached = { at: t, body };
      // A failed status must not be served from the cache.
      body.catch(() => {
        if (cached?.body === body) cached = undefined;
      });
    }
    try {
      return { status: 200, headers: NO_STORE, jsonBody: freshnessFor(scope, await cached.body) };
    } catch (err) {
      context.error('freshness: query failed:', err);
      return errorResponse(err);
    }
  };
}
