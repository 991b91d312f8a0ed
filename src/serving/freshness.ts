/**
 * `GET /api/freshness`: when each rollup last ran and how far behind ingest it is, so the dashboard
 * can show stale data as stale. The pending count is bounded (it stops counting at `pendingBound`),
 * and one answer is shared for `cacheMs` so many open dashboards cost one status query.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type pg from 'pg';
import { rollupStatus, type RollupStatus } from '../rollups/run.js';
import { errorResponse, notReady, NO_STORE, ParameterError, requestQuery } from './http.js';

export interface FreshnessDeps {
  pool: pg.Pool;
  schema: string;
  now?: () => Date;
}

export interface FreshnessEntry {
  name: string;
  grain: string;
  lastRunAt: string | null;
  /** Age of the oldest event not folded in yet (0 when none is pending). */
  lagSeconds: number;
  pendingEvents: number;
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
      return { status: 200, headers: NO_STORE, jsonBody: await cached.body };
    } catch (err) {
      context.error('freshness: query failed:', err);
      return errorResponse(err);
    }
  };
}
