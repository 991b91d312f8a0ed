/**
 * The dashboard's state, pure and DOM-free (unit-tested under Node): the layout of panels, the
 * time range and how both travel in the URL's fragment (shareable, never sent to a server) and in
 * localStorage.
 */
import { BUILTIN_DIMENSION_LABELS, DIMENSION_NAME } from '../../src/serving/wire.js';

export type Grain = 'minute' | 'hour' | 'day';
export const GRAIN_MS: Readonly<Record<Grain, number>> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

export type RangeKey = '15m' | '1h' | '24h' | '7d' | '30d' | 'custom';
export const RANGES: readonly { key: RangeKey; label: string }[] = [
  { key: '15m', label: 'Last 15 minutes' },
  { key: '1h', label: 'Last hour' },
  { key: '24h', label: 'Last 24 hours' },
  { key: '7d', label: 'Last 7 days' },
  { key: '30d', label: 'Last 30 days' },
  { key: 'custom', label: 'Custom…' },
];
const PRESETS: Readonly<Record<Exclude<RangeKey, 'custom'>, { ms: number; grain: Grain }>> = {
  '15m': { ms: 15 * 60_000, grain: 'minute' },
  '1h': { ms: 3_600_000, grain: 'minute' },
  '24h': { ms: 86_400_000, grain: 'hour' },
  '7d': { ms: 7 * 86_400_000, grain: 'hour' },
  '30d': { ms: 30 * 86_400_000, grain: 'day' },
};
/**
 * Minute rollups are kept one day by default (HUBSINK_ROLLUP_MINUTE_RETENTION_DAYS): a custom range
 * that starts earlier uses hours, which the API would otherwise refuse for the minute grain.
 */
const MINUTE_RETENTION_MS = 86_400_000;

export interface ResolvedRange {
  from: Date;
  to: Date;
  grain: Grain;
}

const floorTo = (t: number, g: Grain): number => Math.floor(t / GRAIN_MS[g]) * GRAIN_MS[g];
const ceilTo = (t: number, g: Grain): number => Math.ceil(t / GRAIN_MS[g]) * GRAIN_MS[g];

/**
 * Like the API's `grain=auto`, the grain follows the range: minutes up to 3 hours, hours up to 8
 * days, days beyond. Ranges end with the bucket that holds `now`, so the newest events show.
 */
export function grainForSpan(ms: number, from: number, now: number): Grain {
  if (ms <= 3 * 3_600_000 && from >= now - MINUTE_RETENTION_MS) return 'minute';
  if (ms <= 8 * 86_400_000) return 'hour';
  return 'day';
}

export function resolveRange(key: RangeKey, now: Date, custom?: { from: Date; to: Date }): ResolvedRange {
  if (key === 'custom') {
    if (!custom || !(custom.to.getTime() > custom.from.getTime())) throw new RangeError('a custom range needs a start before its end');
    const grain = grainForSpan(custom.to.getTime() - custom.from.getTime(), custom.from.getTime(), now.getTime());
    return { from: new Date(floorTo(custom.from.getTime(), grain)), to: new Date(ceilTo(custom.to.getTime(), grain)), grain };
  }
  const p = PRESETS[key];
  const to = floorTo(now.getTime(), p.grain) + GRAIN_MS[p.grain];
  return { from: new Date(to - p.ms), to: new Date(to), grain: p.grain };
}

/** The range rounded out to whole buckets of a coarser grain. */
export function widenRange(r: ResolvedRange, grain: Grain): ResolvedRange {
  return { from: new Date(floorTo(r.from.getTime(), grain)), to: new Date(ceilTo(r.to.getTime(), grain)), grain };
}

/** Every bucket start in [from, to). */
export function buckets(r: ResolvedRange): number[] {
  const out: number[] = [];
  for (let t = r.from.getTime(); t < r.to.getTime(); t += GRAIN_MS[r.grain]) out.push(t);
  return out;
}

export type Measure = 'events' | 'revenue' | 'sessions' | 'users' | 'ratio';
export const MEASURES: readonly { key: Measure; label: string }[] = [
  { key: 'events', label: 'Events' },
  { key: 'revenue', label: 'Revenue' },
  { key: 'sessions', label: 'Distinct sessions' },
  { key: 'users', label: 'Distinct users' },
  { key: 'ratio', label: 'Ratio of two event types' },
];
/**
 * A panel's split: 'none', or the name of a dimension some rollup keeps. Which ones exist comes
 * from GET /api/rollups (catalog.ts), analyst-defined ones included; the page lists none itself.
 */
export type Dimension = string;
export const NO_DIMENSION = 'none';
export const isDimensionName = (s: string): boolean => s === NO_DIMENSION || DIMENSION_NAME.test(s);
/** Friendlier headings for the built-in dimensions; any other shows its own name. */
const DIMENSION_LABELS: Readonly<Record<string, string>> = BUILTIN_DIMENSION_LABELS;
export function dimensionLabel(name: Dimension): string {
  if (name === NO_DIMENSION) return 'None (all events)';
  return DIMENSION_LABELS[name] ?? name;
}
/** series: per bucket over the range; totals: one figure per dimension value; funnel: steps. */
export type PanelKind = 'series' | 'totals' | 'funnel';
export const KINDS: readonly { key: PanelKind; label: string }[] = [
  { key: 'series', label: 'Over time' },
  { key: 'totals', label: 'Totals for the range' },
  { key: 'funnel', label: 'Funnel' },
];
export type Chart = 'line' | 'bar' | 'table';
export const CHARTS: readonly { key: Chart; label: string }[] = [
  { key: 'line', label: 'Line' },
  { key: 'bar', label: 'Bar' },
  { key: 'table', label: 'Table' },
];

export interface Panel {
  title: string;
  kind: PanelKind;
  measure: Measure;
  by: Dimension;
  chart: Chart;
  /** Event types of a ratio (numerator / denominator). */
  num: string;
  den: string;
  /** Event types of a funnel, in order. */
  steps: string[];
}

/** Distinct counts are sketches per bucket: they cannot be added up over a range. */
export function isDistinct(m: Measure): boolean {
  return m === 'sessions' || m === 'users';
}

const panel = (p: Partial<Panel> & Pick<Panel, 'title' | 'kind'>): Panel => ({ measure: 'events', by: 'none', chart: 'bar', num: '', den: '', steps: [], ...p });

export const DEFAULT_PANELS: readonly Panel[] = [
  panel({ title: 'Events by type', kind: 'series', measure: 'events', by: 'type', chart: 'bar' }),
  panel({ title: 'Revenue', kind: 'series', measure: 'revenue', chart: 'line' }),
  panel({ title: 'Distinct sessions', kind: 'series', measure: 'sessions', chart: 'line' }),
  panel({ title: 'Distinct users', kind: 'series', measure: 'users', chart: 'line' }),
  panel({ title: 'Funnel: page view → add to cart → purchase', kind: 'funnel', steps: ['page_view', 'add_to_cart', 'purchase'] }),
  panel({ title: 'Ad click-through rate by campaign', kind: 'totals', measure: 'ratio', by: 'campaign', num: 'ad_click', den: 'ad_impression' }),
  panel({ title: 'E-mail open rate by campaign', kind: 'totals', measure: 'ratio', by: 'campaign', num: 'email_open', den: 'email_send' }),
  panel({ title: 'E-mail click rate by campaign', kind: 'totals', measure: 'ratio', by: 'campaign', num: 'email_click', den: 'email_open' }),
  panel({ title: 'Top countries', kind: 'totals', measure: 'events', by: 'country' }),
  panel({ title: 'Top browsers', kind: 'totals', measure: 'events', by: 'browser' }),
];

/** The storefront picker's choice of the all-storefronts view (the metrics API's `all`). */
export const ALL_STOREFRONTS = 'all';

export interface DashboardState {
  /** The storefront, or 'all' storefronts; null: pick the most active one. `tenantRaw` keeps what the URL said. */
  tenant: number | typeof ALL_STOREFRONTS | null;
  tenantRaw: string | null;
  range: RangeKey;
  customFrom: string | null;
  customTo: string | null;
  panels: Panel[];
}

export function defaultState(): DashboardState {
  return { tenant: null, tenantRaw: null, range: '1h', customFrom: null, customTo: null, panels: DEFAULT_PANELS.map((p) => ({ ...p, steps: [...p.steps] })) };
}

const EVENT_TYPE = /^[^\s\p{Cc}]{1,64}$/u;
export const isEventType = (s: string): boolean => EVENT_TYPE.test(s);

const oneOf = <T extends string>(v: unknown, list: readonly { key: T }[], dflt: T): T => (list.find((x) => x.key === v)?.key ?? dflt);

/** Pure: an untrusted panel (from a URL someone shared) → a valid one. */
export function sanitizePanel(raw: unknown): Panel | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Record<string, unknown>;
  const kind = oneOf(r.k, KINDS, 'series');
  let measure = oneOf(r.m, MEASURES, 'events');
  const str = (v: unknown): string => (typeof v === 'string' && isEventType(v) ? v : '');
  const p: Panel = {
    title: typeof r.t === 'string' ? r.t.slice(0, 120) : '',
    kind,
    measure,
    by: typeof r.b === 'string' && isDimensionName(r.b) ? r.b : NO_DIMENSION,
    chart: oneOf(r.c, CHARTS, 'bar'),
    num: str(r.n),
    den: str(r.d),
    steps: Array.isArray(r.s) ? r.s.map(str).filter((s) => s !== '').slice(0, 8) : [],
  };
  if (kind === 'totals' && isDistinct(measure)) measure = p.measure = 'events';
  if (kind === 'totals' && p.chart === 'line') p.chart = 'bar';
  if (kind === 'funnel' && p.steps.length < 2) p.steps = ['page_view', 'add_to_cart', 'purchase'];
  if (measure === 'ratio' && (!p.num || !p.den)) p.measure = 'events';
  return p;
}

const compactPanel = (p: Panel): Record<string, unknown> => ({
  t: p.title,
  k: p.kind,
  m: p.measure,
  b: p.by,
  c: p.chart,
  ...(p.measure === 'ratio' ? { n: p.num, d: p.den } : {}),
  ...(p.kind === 'funnel' ? { s: p.steps } : {}),
});

/** Pure: state → the URL fragment (without '#'). */
export function encodeState(s: DashboardState): string {
  const q = new URLSearchParams();
  if (s.tenant !== null) q.set('tenant', String(s.tenant));
  q.set('range', s.range);
  if (s.range === 'custom' && s.customFrom && s.customTo) {
    q.set('from', s.customFrom);
    q.set('to', s.customTo);
  }
  q.set('panels', JSON.stringify(s.panels.map(compactPanel)));
  return q.toString();
}

/** Pure: a URL fragment → state. Anything malformed falls back to the defaults, piece by piece. */
export function decodeState(fragment: string): DashboardState {
  const s = defaultState();
  const q = new URLSearchParams(fragment.replace(/^#/, ''));
  const t = q.get('tenant');
  if (t !== null) {
    s.tenantRaw = t;
    s.tenant = t === ALL_STOREFRONTS ? ALL_STOREFRONTS : /^[1-9][0-9]{0,15}$/.test(t) && Number.isSafeInteger(Number(t)) ? Number(t) : null;
  }
  s.range = oneOf(q.get('range'), RANGES, '1h');
  if (s.range === 'custom') {
    const from = q.get('from');
    const to = q.get('to');
    if (from && to && !Number.isNaN(Date.parse(from)) && !Number.isNaN(Date.parse(to)) && Date.parse(to) > Date.parse(from)) {
      s.customFrom = from;
      s.customTo = to;
    } else s.range = '1h';
  }
  const raw = q.get('panels');
  if (raw !== null) {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (Array.isArray(parsed)) s.panels = parsed.slice(0, 24).map(sanitizePanel).filter((p): p is Panel => p !== null);
    } catch {
      // Keep the default panels.
    }
  }
  return s;
}

/** A tenant id in the URL that is not a valid id: the message the page shows instead of panels. */
export function tenantProblem(s: DashboardState): string | null {
  if (s.tenantRaw !== null && s.tenant === null) return `“${s.tenantRaw.slice(0, 40)}” is not a storefront id: ids are positive whole numbers. Pick a storefront from the list.`;
  return null;
}

export function movePanel(panels: readonly Panel[], index: number, delta: -1 | 1): Panel[] {
  const out = [...panels];
  const j = index + delta;
  if (index < 0 || index >= out.length || j < 0 || j >= out.length) return out;
  const [p] = out.splice(index, 1);
  if (p) out.splice(j, 0, p);
  return out;
}

export interface FreshnessResponse {
  now: string;
  rollups: { name: string; grain: string; lastRunAt: string | null; lagSeconds: number; pendingEvents: number | null; pendingCapped: boolean }[];
}

/** Rollups run every minute in Azure (every 10 s locally): three minutes without a run is stale. */
export const STALE_MS = 180_000;

const secs = (s: number): string => (s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

/**
 * Pure: the freshness line for the rollup of the shown grain. Ages are measured on the server's
 * clock (its `now`), so a skewed browser clock cannot hide staleness. Stale: no run yet, the last
 * run too long ago, or the oldest event not folded in too old.
 */
export function describeFreshness(f: FreshnessResponse, grain: string, staleMs = STALE_MS): { text: string; stale: boolean } {
  const r = f.rollups.find((x) => x.grain === grain) ?? f.rollups[0];
  if (!r) return { text: 'STALE — rollups have never run: figures are missing.', stale: true };
  const age = r.lastRunAt ? Math.max(0, (Date.parse(f.now) - Date.parse(r.lastRunAt)) / 1000) : null;
  const stale = age === null || age * 1000 > staleMs || r.lagSeconds * 1000 > staleMs;
  // null: the caller may read only some storefronts (HUBSINK_ACCESS=entra), and the count spans all.
  const n = r.pendingEvents;
  const behind =
    n === 0 || (n === null && r.lagSeconds === 0)
      ? 'caught up with ingest'
      : n === null
        ? `${secs(r.lagSeconds)} behind ingest`
        : `${secs(r.lagSeconds)} behind ingest (${n.toLocaleString('en-US')}${r.pendingCapped ? '+' : ''} ${n === 1 && !r.pendingCapped ? 'event' : 'events'} waiting)`;
  return { text: `${stale ? 'STALE — ' : ''}Rollups (${r.grain}) last ran ${age === null ? 'never' : `${secs(age)} ago`} · ${behind}`, stale };
}
