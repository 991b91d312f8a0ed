/**
 * GET /api/rollups: the rollup catalog as the dashboard's panel editor reads it (which dimensions,
 * measures and grains can be answered, and for which view), analyst-defined rollups included once
 * backfilled. Read from the database on every request (one small query, made once per page load),
 * so a page opened after `hubsink rollup define` has returned offers the new rollup.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type pg from 'pg';
import { CATALOG_TTL_MS, cached, loadCatalog, type CatalogSnapshot } from '../rollups/catalog.js';
import { formatDimensionSource } from '../rollups/custom.js';
import { errorResponse, notReady, NO_STORE, ParameterError, requestQuery } from './httpErrors.js';
import type { RollupCatalogWire } from './wire.js';

export interface CatalogDeps {
  pool: pg.Pool;
  schema: string;
}

/** Pure: the wire form of a catalog. */
export function catalogWire(c: Pick<CatalogSnapshot, 'specs'>): RollupCatalogWire {
  const dims = new Map<string, string>();
  for (const s of c.specs) for (const d of s.dimensions) if (!dims.has(d.name)) dims.set(d.name, formatDimensionSource(d.source));
  return {
    rollups: c.specs.map((s) => ({
      name: s.name,
      dimensions: s.dimensions.map((d) => d.name),
      measures: [...s.measures],
      grains: [...s.grains],
      allTenants: s.allTenants,
      custom: s.custom === true,
    })),
    dimensions: [...dims.entries()].map(([name, source]) => ({ name, source })),
  };
}

type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

/** A reader of the serving catalog per pool and schema, cached for CATALOG_TTL_MS (shared with the metrics handler). */
export function servingCatalog(ttlMs = CATALOG_TTL_MS): (deps: CatalogDeps) => Promise<CatalogSnapshot> {
  let current: { pool: pg.Pool; schema: string; get: () => Promise<CatalogSnapshot> } | undefined;
  return (deps) => {
    if (!current || current.pool !== deps.pool || current.schema !== deps.schema) {
      current = { pool: deps.pool, schema: deps.schema, get: cached(() => loadCatalog(deps.pool, deps.schema, { serving: true }), ttlMs) };
    }
    return current.get();
  };
}

export function makeRollupsHandler(getDeps: () => Promise<CatalogDeps>, opts: { ttlMs?: number } = {}): Handler {
  // Not cached by default: the metrics handler's 5 s cache would hide a rollup defined just before
  // the page loaded, and the panel editor reads this once per load.
  const read = servingCatalog(opts.ttlMs ?? 0);
  return async (request, context) => {
    const [extra] = [...requestQuery(request).keys()];
    if (extra !== undefined) return errorResponse(new ParameterError(extra, 'unknown parameter; this endpoint takes none'));
    let deps: CatalogDeps;
    try {
      deps = await getDeps();
    } catch (err) {
      context.error('rollups: cannot initialise:', err);
      return errorResponse(notReady(err));
    }
    try {
      const snapshot = await read(deps);
      for (const p of snapshot.problems) context.warn(`rollups: ${p}`);
      return { status: 200, headers: NO_STORE, jsonBody: catalogWire(snapshot) };
    } catch (err) {
      context.error('rollups: query failed:', err);
      return errorResponse(err);
    }
  };
}
