/**
 * `GET /api/tenants?from=&to=[&limit=]`: the storefronts, most active in the range first, for the
 * dashboard's picker. Validated and bounded like the metrics API (same time syntax, same grain
 * choice, same retention and range limits); nothing from the request reaches SQL text.
 *
 * Two statements instead of one join: on Citus `tenants` is a reference table and the rollups are
 * distributed, and an outer join with the reference table on the outer side is not supported by
 * every Citus version. Both statements are bounded by `limit`.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type pg from 'pg';
import { qualified } from '../db/ident.js';
import type { Statement } from '../db/statement.js';
import { rollupForGrain, type Grain, type RollupRetention } from '../rollups/definitions.js';
import { callerScope, refusal, tenantFilter, type AccessControl } from './access.js';
import { errorResponse, notReady, NO_STORE, ParameterError, requestQuery } from './httpErrors.js';
import { chooseGrain, parseTimeRange, type ParamError } from './params.js';
import { lastRunSql } from './query.js';

export interface TenantsQuery {
  from: Date;
  to: Date;
  grain: Grain;
  limit: number;
}

export const DEFAULT_TENANTS_LIMIT = 200;
export const MAX_TENANTS_LIMIT = 1000;
const KNOWN = ['from', 'to', 'limit'] as const;

export type TenantsParamResult = { ok: true; query: TenantsQuery } | { ok: false; error: ParamError };

function fail(parameter: string, message: string): TenantsParamResult {
  return { ok: false, error: { parameter, message } };
}

/** Pure: query string → a validated query, or the parameter at fault. */
export function parseTenantsParams(query: URLSearchParams, opts: { now: Date; retentionDays: RollupRetention }): TenantsParamResult {
  const range = parseTimeRange(query, KNOWN);
  if (!range.ok) return range;
  const { from, to } = range;

  let limit = DEFAULT_TENANTS_LIMIT;
  const rawLimit = query.get('limit');
  if (rawLimit !== null) {
    if (!/^[1-9][0-9]{0,5}$/.test(rawLimit) || Number(rawLimit) > MAX_TENANTS_LIMIT) return fail('limit', `must be a whole number from 1 to ${MAX_TENANTS_LIMIT}`);
    limit = Number(rawLimit);
  }
  const chosen = chooseGrain('auto', from, to, opts);
  if ('error' in chosen) return { ok: false, error: chosen.error };
  return { ok: true, query: { from, to, grain: chosen.grain, limit } };
}

/**
 * The most active storefronts of the range, from the coarsest totals rollup that tiles it (not the
 * all-storefronts rows). `only` (the caller's grants in entra mode) keeps the others out of the
 * answer altogether; null: every one.
 */
export function activeTenantsSql(q: TenantsQuery, schema: string, only: readonly number[] | null = null): Statement {
  const def = rollupForGrain(q.grain);
  return {
    text: [
      `SELECT tenant_id::text AS tenant_id, sum(events)::text AS events`,
      `FROM ${qualified(schema, def.table)}`,
      `WHERE bucket >= $1 AND bucket < $2 AND tenant_id <> 0${only ? ' AND tenant_id = ANY($4::bigint[])' : ''}`,
      `GROUP BY tenant_id`,
      `ORDER BY sum(events) DESC, tenant_id`,
      `LIMIT $3`,
    ].join('\n'),
    values: only ? [q.from, q.to, q.limit, [...only]] : [q.from, q.to, q.limit],
  };
}

/**
 * Registered storefronts: the active ones by id (for their names), then the rest in id order, one
 * more than asked for so the response can say whether the list was cut.
 */
export function knownTenantsSql(schema: string, activeIds: readonly string[], limit: number, only: readonly number[] | null = null): Statement {
  const granted = only ? ' AND tenant_id = ANY($3::bigint[])' : '';
  return {
    text: [
      `(SELECT tenant_id::text AS tenant_id, name FROM ${qualified(schema, 'tenants')} WHERE tenant_id = ANY($1::bigint[]))`,
      `UNION ALL`,
      `(SELECT tenant_id::text, name FROM ${qualified(schema, 'tenants')} WHERE NOT (tenant_id = ANY($1::bigint[]))${granted} ORDER BY tenant_id LIMIT $2)`,
    ].join('\n'),
    values: only ? [activeIds, limit + 1, [...only]] : [activeIds, limit + 1],
  };
}

export interface TenantEntry {
  tenantId: number;
  name: string | null;
  /** Events in the range (0: registered, but quiet in the range). */
  events: number;
}

export interface TenantsResponse {
  from: string;
  to: string;
  grain: Grain;
  rollupRunAt: string | null;
  tenants: TenantEntry[];
  /** More storefronts exist than `limit`; quiet ones were left out. */
  truncated: boolean;
  /** Whether this caller may read the all-storefronts view (entra mode: only with the all-storefronts grant). */
  allStorefronts: boolean;
}

/** Pure: active first (by events, then id), then quiet registered ones by id, at most `limit`. */
export function shapeTenants(
  q: TenantsQuery,
  rollupRunAt: Date | null,
  active: readonly { tenant_id: string; events: string }[],
  known: readonly { tenant_id: string; name: string | null }[],
  allStorefronts = true,
): TenantsResponse {
  const names = new Map(known.map((k) => [k.tenant_id, k.name]));
  const activeIds = new Set(active.map((a) => a.tenant_id));
  const tenants: TenantEntry[] = active.map((a) => ({ tenantId: Number(a.tenant_id), name: names.get(a.tenant_id) ?? null, events: Number(a.events) }));
  const quiet = known.filter((k) => !activeIds.has(k.tenant_id));
  let truncated = false;
  for (const k of quiet) {
    if (tenants.length >= q.limit) {
      truncated = true;
      break;
    }
    tenants.push({ tenantId: Number(k.tenant_id), name: k.name, events: 0 });
  }
  return { from: q.from.toISOString(), to: q.to.toISOString(), grain: q.grain, rollupRunAt: rollupRunAt?.toISOString() ?? null, tenants, truncated, allStorefronts };
}

export interface TenantsDeps {
  pool: pg.Pool;
  schema: string;
  retentionDays: RollupRetention;
  now?: () => Date;
  /** HUBSINK_ACCESS=entra: the list holds only the caller's storefronts (absent: every one). */
  access?: AccessControl;
}

type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

export function makeTenantsHandler(getDeps: () => Promise<TenantsDeps>): Handler {
  return async (request, context) => {
    let deps: TenantsDeps;
    try {
      deps = await getDeps();
    } catch (err) {
      context.error('tenants: cannot initialise:', err);
      return errorResponse(notReady(err));
    }
    let only: readonly number[] | null;
    try {
      only = tenantFilter(await callerScope(request, deps.access));
    } catch (err) {
      return refusal(context, 'tenants', err);
    }
    const now = (deps.now ?? (() => new Date()))();
    const parsed = parseTenantsParams(requestQuery(request), { now, retentionDays: deps.retentionDays });
    if (!parsed.ok) return errorResponse(new ParameterError(parsed.error.parameter, parsed.error.message));
    const q = parsed.query;
    try {
      const a = activeTenantsSql(q, deps.schema, only);
      const active = await deps.pool.query<{ tenant_id: string; events: string }>(a);
      const k = knownTenantsSql(
        deps.schema,
        active.rows.map((r) => r.tenant_id),
        q.limit,
        only,
      );
      const [known, state] = await Promise.all([
        deps.pool.query<{ tenant_id: string; name: string | null }>(k),
        deps.pool.query<{ last_run_at: Date | null }>(lastRunSql(deps.schema, rollupForGrain(q.grain).name)),
      ]);
      return { status: 200, headers: NO_STORE, jsonBody: shapeTenants(q, state.rows[0]?.last_run_at ?? null, active.rows, known.rows, only === null) };
    } catch (err) {
      context.error('tenants: query failed:', err);
      return errorResponse(err);
    }
  };
}
