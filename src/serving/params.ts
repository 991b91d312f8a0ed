/**
 * Validation of the metrics API's parameters. Pure: input strings in, a typed query or a 400 with
 * a message naming the parameter out. Nothing from the request reaches SQL text: the tenant and
 * times become bind parameters, and `grain` and `by` select entries of fixed tables.
 */
import {
  GRAINS,
  GRAIN_MS,
  MEASURE_NAMES,
  ROLLUPS,
  answeringRollups,
  catalogDimensions,
  isAligned,
  retentionCutoff,
  type Dimension,
  type Grain,
  type MeasureName,
  type RollupDefinition,
  type RollupRetention,
} from '../rollups/definitions.js';

export type GrainParam = Grain | 'auto';

export interface MetricsQuery {
  /** The storefront; 0 for the all-storefronts view (`all`), whose rows have tenant_id = 0. */
  tenantId: number;
  from: Date;
  to: Date;
  grain: Grain;
  by: Dimension | null;
  /** With `by`: how many series (the largest by events) a response holds beside one "other" series. */
  top: number;
  /** Only events of this type (e.g. the two sides of a click-through rate); absent or null: all types. */
  type?: string | null;
  /** What each point carries; always starts with events. */
  measures: readonly MeasureName[];
  /** The smallest rollup that answers the query exactly. */
  rollup: RollupDefinition;
}

/** The `{tenantId}` of the all-storefronts view. */
export const ALL_TENANTS = 'all';
export const DEFAULT_MEASURES: readonly MeasureName[] = ['events', 'revenue'];

export interface ParamError {
  parameter: string;
  message: string;
}

export type ParamResult = { ok: true; query: MetricsQuery } | { ok: false; error: ParamError };

/** Largest number of buckets one response may span, per grain. */
export const MAX_BUCKETS: Readonly<Record<Grain, number>> = { minute: 2 * 1440, hour: 92 * 24, day: 3660 };

/**
 * Dimension values come from producers and are unbounded in number; a response holds the `top`
 * largest series by events and folds the rest into one "other" series, so its size is bounded by
 * (top + 1) x buckets whatever the producers sent.
 */
export const DEFAULT_TOP = 10;
export const MAX_TOP = 50;

const KNOWN = ['from', 'to', 'grain', 'by', 'top', 'type', 'measures'] as const;
/** Coarsest first: `auto` takes the first grain that tiles the range exactly. */
const COARSEST_FIRST: readonly Grain[] = ['day', 'hour', 'minute'];

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2}))?$/;

/**
 * Strict ISO-8601: a date (midnight UTC) or a date-time with seconds optional and an explicit
 * offset. Every field is range-checked (2026-02-30 is refused, not rolled over into March).
 */
export function parseIsoTime(value: string): Date | undefined {
  const m = ISO.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > daysInMonth) return undefined;
  let offsetMin = 0;
  if (zone !== 'Z') {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 23 || om > 59) return undefined;
    offsetMin = (zone.startsWith('-') ? -1 : 1) * (oh * 60 + om);
  }
  const ms = Number(frac.padEnd(3, '0').slice(0, 3));
  const t = Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMin * 60_000;
  const out = new Date(t);
  return Number.isNaN(out.getTime()) ? undefined : out;
}

function fail(parameter: string, message: string): { ok: false; error: ParamError } {
  return { ok: false, error: { parameter, message } };
}

export interface ParamOptions {
  now: Date;
  retentionDays: RollupRetention;
  maxBuckets?: Readonly<Record<Grain, number>>;
  /** The catalog queries are answered from (default: the built-in one). */
  rollups?: readonly RollupDefinition[];
}

/**
 * Chooses the grain for [from, to): explicit grains must tile the range exactly; `auto` takes the
 * coarsest grain that does. Then checks retention and the bucket count.
 */
export function chooseGrain(requested: GrainParam, from: Date, to: Date, opts: ParamOptions): { grain: Grain } | { error: ParamError } {
  const maxBuckets = opts.maxBuckets ?? MAX_BUCKETS;
  let grain: Grain;
  if (requested === 'auto') {
    const found = COARSEST_FIRST.find((g) => isAligned(from, g) && isAligned(to, g));
    if (!found) return { error: { parameter: isAligned(from, 'minute') ? 'to' : 'from', message: 'must fall on a whole minute (no seconds) so a rollup answers the range exactly' } };
    grain = found;
  } else {
    grain = requested;
    for (const [name, t] of [['from', from], ['to', to]] as const) {
      if (!isAligned(t, grain)) return { error: { parameter: name, message: `must fall on a ${grain} boundary (UTC) for grain=${grain}` } };
    }
  }
  const cutoff = retentionCutoff(opts.now, grain, opts.retentionDays);
  if (from.getTime() < cutoff.getTime()) {
    return {
      error: {
        parameter: 'from',
        message: `${grain} rollups are kept for ${opts.retentionDays[grain]} day${opts.retentionDays[grain] === 1 ? '' : 's'} (from ${cutoff.toISOString()}); use a coarser grain for older data`,
      },
    };
  }
  const buckets = (to.getTime() - from.getTime()) / GRAIN_MS[grain];
  if (buckets > maxBuckets[grain]) {
    return {
      error: {
        parameter: 'to',
        message: `range too large for grain=${grain}: ${buckets} buckets, at most ${maxBuckets[grain]}; narrow the range or use a coarser grain`,
      },
    };
  }
  return { grain };
}

/**
 * Pure: what the metrics and tenants APIs share: only `known` parameters, each at most once, and
 * a required range [from, to) of strict ISO-8601 times with from before to.
 */
export function parseTimeRange(query: URLSearchParams, known: readonly string[]): { ok: true; from: Date; to: Date } | { ok: false; error: ParamError } {
  const failed = (parameter: string, message: string): { ok: false; error: ParamError } => ({ ok: false, error: { parameter, message } });
  const seen = new Set<string>();
  for (const key of query.keys()) {
    if (!known.includes(key)) return failed(key, `unknown parameter; allowed: ${known.join(', ')}`);
    if (seen.has(key)) return failed(key, 'given more than once');
    seen.add(key);
  }
  const times: Partial<Record<'from' | 'to', Date>> = {};
  for (const name of ['from', 'to'] as const) {
    const raw = query.get(name);
    if (raw === null || raw === '') return failed(name, 'required: an ISO-8601 time with offset, e.g. 2026-01-31T00:00:00Z');
    // An unencoded '+' of an offset arrives as a space in a query string.
    const parsed = parseIsoTime(raw.replace(/ (\d{2}:\d{2})$/, '+$1'));
    if (!parsed) return failed(name, 'not an ISO-8601 time with offset, e.g. 2026-01-31T00:00:00Z or 2026-01-31');
    times[name] = parsed;
  }
  const { from, to } = times;
  if (!from || !to) return failed('from', 'required');
  if (to.getTime() <= from.getTime()) return failed('to', 'must be after from');
  return { ok: true, from, to };
}

/** Pure: how a definition list reads in an error message: `total (minute, hour, day), type (hour)`. */
export function describeRollups(defs: readonly RollupDefinition[]): string {
  const bySpec = new Map<string, Grain[]>();
  for (const d of defs) bySpec.set(d.spec, [...(bySpec.get(d.spec) ?? []), d.grain]);
  return [...bySpec.entries()].map(([spec, grains]) => `${spec} (${grains.join(', ')})`).join(', ');
}

/**
 * Pure: the smallest rollup that answers the query, or a 400 that names the parameter to change and
 * says which rollups exist for what was asked.
 */
export function chooseRollup(
  q: { grain: Grain; by: Dimension | null; type: string | null; measures: readonly MeasureName[]; allTenants: boolean; grainRequested: GrainParam },
  rollups: readonly RollupDefinition[],
): { rollup: RollupDefinition } | { error: ParamError } {
  const question = { grain: q.grain, by: q.by?.name ?? null, filters: q.type !== null ? ['type'] : [], measures: q.measures, allTenants: q.allTenants };
  const found = answeringRollups(question, rollups)[0];
  if (found) return { rollup: found };
  const what = [q.by ? `by=${q.by.name}` : null, q.type !== null ? 'type' : null].filter((x) => x !== null).join(' with ');
  const anyGrain = GRAINS.flatMap((grain) => answeringRollups({ ...question, grain }, rollups));
  if (anyGrain.length > 0) {
    const grains = [...new Set(anyGrain.map((d) => d.grain))];
    return {
      error: {
        parameter: q.grainRequested === 'auto' ? 'from' : 'grain',
        message: `no rollup keeps ${what || 'these measures'} at ${q.grain} grain; it is kept at ${grains.join(', ')} (${describeRollups(anyGrain)}): ${q.grainRequested === 'auto' ? `align from and to to whole ${grains[0] ?? 'hour'}s` : `use grain=${grains[0] ?? 'hour'}`}`,
      },
    };
  }
  const withoutMeasures = GRAINS.flatMap((grain) => answeringRollups({ ...question, grain, measures: ['events'] }, rollups));
  if (withoutMeasures.length > 0) {
    const kept = GRAINS.flatMap((grain) => answeringRollups({ ...question, grain, by: null, filters: [] }, rollups));
    return {
      error: {
        parameter: 'measures',
        message: `no rollup keeps ${q.measures.join(', ')} ${what ? `for ${what}` : ''}${q.allTenants ? ' for all storefronts' : ''}; rollups for ${what || 'these'}: ${describeRollups(withoutMeasures)} with ${[...new Set(withoutMeasures.flatMap((d) => d.measures))].join(', ')}${kept.length > 0 ? `; ${q.measures.join(', ')} ${q.measures.length > 1 ? 'are' : 'is'} kept by ${describeRollups(kept)}` : ''}`.replace(/ {2,}/g, ' '),
      },
    };
  }
  const dims = q.allTenants ? catalogDimensions(rollups.filter((r) => r.allTenants)) : catalogDimensions(rollups);
  return {
    error: {
      parameter: q.by ? 'by' : 'type',
      message: `no rollup keeps ${what}${q.allTenants ? ' for all storefronts' : ''}; dimensions kept together with type: ${describeRollups(rollups.filter((r) => r.dimensions.some((d) => d.name === 'type')))}; by may be one of ${dims.map((d) => d.name).join(', ')}`,
    },
  };
}

/** Pure: `measures=events,sessions` → the list in catalog order, events first; or the reason it is refused. */
export function parseMeasures(raw: string | null): { measures: MeasureName[] } | { error: ParamError } {
  if (raw === null) return { measures: [...DEFAULT_MEASURES] };
  const asked = raw.split(',').map((m) => m.trim());
  const unknown = asked.filter((m) => !(MEASURE_NAMES as readonly string[]).includes(m));
  if (raw.trim() === '' || unknown.length > 0) {
    return { error: { parameter: 'measures', message: `must be a comma-separated list of ${MEASURE_NAMES.join(', ')}${unknown.length > 0 ? `; unknown: ${unknown.map((m) => JSON.stringify(m)).join(', ')}` : ''}` } };
  }
  return { measures: MEASURE_NAMES.filter((m) => m === 'events' || asked.includes(m)) };
}

/** The parameters of a metrics request that are checked without the catalog. */
export interface MetricsRequest {
  tenantId: number;
  allTenants: boolean;
  from: Date;
  to: Date;
  grain: Grain;
  grainRequested: GrainParam;
  /** As given; checked against the catalog by resolveMetricsQuery. */
  by: string | null;
  top: number;
  type: string | null;
  measures: MeasureName[];
}

/**
 * Pure, and needs no database: every check that does not depend on the rollup catalog, so a
 * malformed request is refused before anything is read.
 */
export function parseMetricsRequest(
  tenantIdParam: string | undefined,
  query: URLSearchParams,
  opts: Omit<ParamOptions, 'rollups'>,
): { ok: true; request: MetricsRequest } | { ok: false; error: ParamError } {
  const t = tenantIdParam ?? '';
  const allTenants = t === ALL_TENANTS;
  if (!allTenants && (!/^[1-9][0-9]{0,15}$/.test(t) || !Number.isSafeInteger(Number(t)))) {
    return fail('tenantId', `must be a positive whole number (at most 2^53-1), or ${ALL_TENANTS} for every storefront`);
  }
  const tenantId = allTenants ? 0 : Number(t);

  const range = parseTimeRange(query, KNOWN);
  if (!range.ok) return range;
  const { from, to } = range;

  const grainRaw = query.get('grain') ?? 'auto';
  const grains: readonly GrainParam[] = ['minute', 'hour', 'day', 'auto'];
  const requested = grains.find((g) => g === grainRaw);
  if (!requested) return fail('grain', `must be one of ${grains.join(', ')}`);

  const topRaw = query.get('top');
  let top = DEFAULT_TOP;
  if (topRaw !== null) {
    if (!/^[1-9][0-9]{0,2}$/.test(topRaw) || Number(topRaw) > MAX_TOP) return fail('top', `must be a whole number from 1 to ${MAX_TOP}`);
    top = Number(topRaw);
  }

  const type = query.get('type');
  // The rule events.type has (1 to 64 characters); the value is a bind parameter, never SQL text.
  if (type !== null && (type.length < 1 || type.length > 64)) return fail('type', 'must be an event type of 1 to 64 characters');

  const measures = parseMeasures(query.get('measures'));
  if ('error' in measures) return { ok: false, error: measures.error };

  const chosen = chooseGrain(requested, from, to, opts);
  if ('error' in chosen) return { ok: false, error: chosen.error };
  return {
    ok: true,
    request: { tenantId, allTenants, from, to, grain: chosen.grain, grainRequested: requested, by: query.get('by'), top, type, measures: measures.measures },
  };
}

/** Pure: the dimension and the rollup that answer a checked request, from the catalog given. */
export function resolveMetricsQuery(req: MetricsRequest, rollups: readonly RollupDefinition[] = ROLLUPS): ParamResult {
  let by: Dimension | null = null;
  if (req.by !== null) {
    const dims = catalogDimensions(rollups);
    const dim = dims.find((d) => d.name === req.by);
    if (!dim) return fail('by', `must be one of ${dims.map((d) => d.name).join(', ')}`);
    by = dim;
  }
  const rollup = chooseRollup({ grain: req.grain, by, type: req.type, measures: req.measures, allTenants: req.allTenants, grainRequested: req.grainRequested }, rollups);
  if ('error' in rollup) return { ok: false, error: rollup.error };
  const { tenantId, from, to, grain, top, type, measures } = req;
  return { ok: true, query: { tenantId, from, to, grain, by, top, ...(type !== null ? { type } : {}), measures, rollup: rollup.rollup } };
}

export function parseMetricsParams(tenantIdParam: string | undefined, query: URLSearchParams, opts: ParamOptions): ParamResult {
  const parsed = parseMetricsRequest(tenantIdParam, query, opts);
  return parsed.ok ? resolveMetricsQuery(parsed.request, opts.rollups ?? ROLLUPS) : parsed;
}
