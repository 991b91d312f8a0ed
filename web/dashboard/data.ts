/**
 * From metrics API responses to what a panel shows: its table (the accessible view, and the CSV)
 * and its chart data. Pure and DOM-free. Revenue is summed exactly (decimal strings, 4 places, as
 * the API sends them) so a panel's figures equal the database's to the last digit.
 */
import type { MetricsPoint, MetricsSeries, WireMeasure } from '../../src/serving/wire.js';
import { NO_DIMENSION, buckets, dimensionLabel, isDistinct, type Dimension, type Panel, type ResolvedRange } from './model.js';

export type { MetricsPoint, MetricsSeries };
export interface MetricsResponse {
  grain: string;
  from: string;
  to: string;
  rollupRunAt: string | null;
  series: MetricsSeries[];
}

/**
 * One metrics request a panel needs: grouped by a dimension, optionally only one event type, with
 * the measures it reads (the API's `measures`: distinct counts only where a panel shows them, so
 * the smallest rollup that keeps them answers).
 */
export interface Need {
  by: Dimension;
  type: string | null;
  measures: WireMeasure[];
}
export const needKey = (n: Need): string => `${n.by}|${n.type ?? ''}|${n.measures.join(',')}`;

export function needsOf(p: Panel): Need[] {
  if (p.kind === 'funnel') return [{ by: 'type', type: null, measures: ['events'] }];
  if (p.measure === 'ratio') return [{ by: p.by, type: p.num, measures: ['events'] }, { by: p.by, type: p.den, measures: ['events'] }];
  return [{ by: p.by, type: null, measures: p.measure === 'events' ? ['events'] : ['events', p.measure] }];
}


// ---- exact decimals (revenue) -------------------------------------------------------------

const SCALE = 4;
/** "12.3400" → 123400n (units of 10^-4). */
export function toUnits(s: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(s.trim());
  if (!m) throw new RangeError(`not a decimal: ${s}`);
  const frac = (m[3] ?? '').padEnd(SCALE, '0').slice(0, SCALE);
  const v = BigInt(m[2] ?? '0') * 10n ** BigInt(SCALE) + BigInt(frac || '0');
  return m[1] === '-' ? -v : v;
}
/** 123400n → "12.3400". */
export function fromUnits(u: bigint): string {
  const neg = u < 0n;
  const a = neg ? -u : u;
  const base = 10n ** BigInt(SCALE);
  return `${neg ? '-' : ''}${a / base}.${(a % base).toString().padStart(SCALE, '0')}`;
}

const group = (digits: string): string => digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
export const formatInt = (n: number): string => (n < 0 ? '-' : '') + group(String(Math.abs(Math.round(n))));
/** "1234.5000" → "1,234.50": exact, trailing zeros trimmed to two places. */
export function formatMoney(exact: string): string {
  const [i = '0', f = ''] = exact.replace(/^-/, '').split('.');
  let frac = f.replace(/0+$/, '');
  if (frac.length < 2) frac = frac.padEnd(2, '0');
  return `${exact.startsWith('-') ? '-' : ''}${group(i)}.${frac}`;
}
export function formatRate(num: number, den: number): string {
  return den === 0 ? '—' : `${((num / den) * 100).toFixed(2)}%`;
}
/** Internal key of the API's "other" series (a value no producer can send: it has a NUL). */
export const OTHER = '\u0000other';
export const keyLabel = (k: string | null): string => (k === null ? 'all' : k === OTHER ? 'other' : k === '' ? '(none)' : k);
const keyOf = (s: MetricsSeries): string | null => (s.other ? OTHER : s.key);

// ---- tables -------------------------------------------------------------------------------

export interface Cell {
  /** What the page shows. */
  text: string;
  /** What the CSV holds (no grouping, exact). */
  raw: string;
}
export interface Column {
  label: string;
  numeric: boolean;
}
export interface Table {
  columns: Column[];
  rows: Cell[][];
}

export interface ChartSeries {
  label: string;
  values: number[];
}
export type ChartData =
  | { kind: 'time'; x: number[]; series: ChartSeries[]; money: boolean; percent: boolean }
  | { kind: 'bars'; items: { label: string; value: number; text: string }[] };

export interface PanelView {
  table: Table;
  chart: ChartData;
  /** Shown above the chart when there is nothing to draw, or something to explain. */
  note: string | null;
}

const cellInt = (n: number): Cell => ({ text: formatInt(n), raw: String(n) });
const cellMoney = (u: bigint): Cell => ({ text: formatMoney(fromUnits(u)), raw: fromUnits(u) });
const cellRate = (num: number, den: number): Cell => ({ text: formatRate(num, den), raw: den === 0 ? '' : String(num / den) });
const cellText = (s: string): Cell => ({ text: s, raw: s });
const utc = (t: number): string => new Date(t).toISOString().replace(':00.000Z', 'Z');

const MEASURE_LABEL: Record<string, string> = { events: 'Events', revenue: 'Revenue', sessions: 'Distinct sessions', users: 'Distinct users' };

type Plain = 'events' | 'sessions' | 'users';

/** Per key: bucket start (ms) → point. */
function index(r: MetricsResponse): Map<string | null, Map<number, MetricsPoint>> {
  const out = new Map<string | null, Map<number, MetricsPoint>>();
  for (const s of r.series) {
    const m = new Map<number, MetricsPoint>();
    for (const p of s.points) m.set(Date.parse(p.t), p);
    out.set(keyOf(s), m);
  }
  return out;
}

/** By key, "other" last. */
function byKeyOrder(a: string | null, b: string | null): number {
  if ((a === OTHER) !== (b === OTHER)) return a === OTHER ? 1 : -1;
  return (a ?? '').localeCompare(b ?? '');
}

/** Chart series are capped; the table always has every row. */
const MAX_CHART_SERIES = 10;

function seriesView(p: Panel, range: ResolvedRange, resp: MetricsResponse): PanelView {
  const idx = index(resp);
  const keys = [...idx.keys()].sort(byKeyOrder);
  const hasKey = p.by !== NO_DIMENSION;
  const m = p.measure === 'revenue' ? 'revenue' : (p.measure as Plain);
  const columns: Column[] = [{ label: 'Bucket (UTC)', numeric: false }, ...(hasKey ? [{ label: dimensionLabel(p.by), numeric: false }] : []), { label: MEASURE_LABEL[m] ?? m, numeric: true }];
  const rows: Cell[][] = [];
  for (const k of keys) {
    const pts = [...(idx.get(k) ?? new Map<number, MetricsPoint>()).entries()].sort((a, b) => a[0] - b[0]);
    for (const [t, pt] of pts) {
      rows.push([cellText(utc(t)), ...(hasKey ? [cellText(keyLabel(k))] : []), m === 'revenue' ? cellMoney(toUnits(pt.revenue ?? '0')) : cellInt(pt[m] ?? 0)]);
    }
  }
  const x = buckets(range);
  const totals = keys.map((k) => {
    let sum = 0;
    for (const pt of idx.get(k)?.values() ?? []) sum += m === 'revenue' ? Number(pt.revenue ?? 0) : (pt[m] ?? 0);
    return { k, sum };
  });
  // The largest series are drawn; the table keeps the rest.
  const drawn = hasKey ? [...totals].sort((a, b) => b.sum - a.sum).slice(0, MAX_CHART_SERIES).map((t) => t.k) : keys;
  const series: ChartSeries[] = drawn.map((k) => {
    const pts = idx.get(k);
    return { label: hasKey ? keyLabel(k) : (MEASURE_LABEL[m] ?? m), values: x.map((t) => { const pt = pts?.get(t); return pt ? (m === 'revenue' ? Number(pt.revenue ?? 0) : (pt[m] ?? 0)) : 0; }) };
  });
  const note = rows.length === 0 ? 'No events in this range yet.' : hasKey && keys.length > MAX_CHART_SERIES ? `Chart shows the ${MAX_CHART_SERIES} largest of ${keys.length}; the table has all.` : null;
  return { table: { columns, rows }, chart: { kind: 'time', x, series, money: m === 'revenue', percent: false }, note };
}

function ratioSeriesView(p: Panel, range: ResolvedRange, num: MetricsResponse, den: MetricsResponse): PanelView {
  const ni = index(num);
  const di = index(den);
  const hasKey = p.by !== NO_DIMENSION;
  const keys = [...new Set([...ni.keys(), ...di.keys()])].sort(byKeyOrder);
  const columns: Column[] = [
    { label: 'Bucket (UTC)', numeric: false },
    ...(hasKey ? [{ label: dimensionLabel(p.by), numeric: false }] : []),
    { label: p.num, numeric: true },
    { label: p.den, numeric: true },
    { label: 'Rate', numeric: true },
  ];
  const rows: Cell[][] = [];
  const x = buckets(range);
  const series: ChartSeries[] = [];
  for (const k of keys) {
    const times = [...new Set([...(ni.get(k)?.keys() ?? []), ...(di.get(k)?.keys() ?? [])])].sort((a, b) => a - b);
    for (const t of times) {
      const n = ni.get(k)?.get(t)?.events ?? 0;
      const d = di.get(k)?.get(t)?.events ?? 0;
      rows.push([cellText(utc(t)), ...(hasKey ? [cellText(keyLabel(k))] : []), cellInt(n), cellInt(d), k === OTHER ? cellText('—') : cellRate(n, d)]);
    }
    if (series.length < MAX_CHART_SERIES) {
      series.push({ label: hasKey ? keyLabel(k) : `${p.num} / ${p.den}`, values: x.map((t) => { const d = di.get(k)?.get(t)?.events ?? 0; return d === 0 ? 0 : ((ni.get(k)?.get(t)?.events ?? 0) / d) * 100; }) });
    }
  }
  const note = rows.length === 0 ? `No ${p.num} or ${p.den} events in this range.` : null;
  return { table: { columns, rows }, chart: { kind: 'time', x, series, money: false, percent: true }, note };
}

function totalsOf(resp: MetricsResponse, m: 'events' | 'revenue'): Map<string | null, bigint> {
  const out = new Map<string | null, bigint>();
  for (const s of resp.series) {
    let sum = 0n;
    for (const pt of s.points) sum += m === 'revenue' ? toUnits(pt.revenue ?? '0') : BigInt(pt.events);
    out.set(keyOf(s), sum);
  }
  return out;
}

const desc = (a: [string | null, bigint], b: [string | null, bigint]): number => (a[1] === b[1] ? byKeyOrder(a[0], b[0]) : a[1] > b[1] ? -1 : 1);

function totalsView(p: Panel, resp: MetricsResponse): PanelView {
  const m = p.measure === 'revenue' ? 'revenue' : 'events';
  const entries = [...totalsOf(resp, m).entries()].sort(desc);
  const cell = (v: bigint): Cell => (m === 'revenue' ? cellMoney(v) : cellInt(Number(v)));
  const columns: Column[] = [{ label: p.by === NO_DIMENSION ? 'All' : dimensionLabel(p.by), numeric: false }, { label: MEASURE_LABEL[m] ?? m, numeric: true }];
  const rows = entries.map(([k, v]) => [cellText(keyLabel(k)), cell(v)]);
  const items = entries.map(([k, v]) => ({ label: keyLabel(k), value: m === 'revenue' ? Number(fromUnits(v)) : Number(v), text: cell(v).text }));
  return { table: { columns, rows }, chart: { kind: 'bars', items }, note: rows.length === 0 ? 'No events in this range yet.' : null };
}

function ratioTotalsView(p: Panel, num: MetricsResponse, den: MetricsResponse): PanelView {
  const n = totalsOf(num, 'events');
  const d = totalsOf(den, 'events');
  const keys = [...new Set([...n.keys(), ...d.keys()])];
  const entries = keys.map((k) => ({ k, n: Number(n.get(k) ?? 0n), d: Number(d.get(k) ?? 0n) })).sort((a, b) => (a.d === b.d ? byKeyOrder(a.k, b.k) : b.d - a.d));
  const columns: Column[] = [{ label: p.by === NO_DIMENSION ? 'All' : dimensionLabel(p.by), numeric: false }, { label: p.num, numeric: true }, { label: p.den, numeric: true }, { label: 'Rate', numeric: true }];
  // The "other" series of numerator and denominator fold different values: no rate between them.
  const rows = entries.map((e) => [cellText(keyLabel(e.k)), cellInt(e.n), cellInt(e.d), e.k === OTHER ? cellText('—') : cellRate(e.n, e.d)]);
  const items = entries.filter((e) => e.d > 0 && e.k !== OTHER).map((e) => ({ label: keyLabel(e.k), value: (e.n / e.d) * 100, text: formatRate(e.n, e.d) }));
  let note: string | null = null;
  if (rows.length === 0) note = `No ${p.num} or ${p.den} events in this range.`;
  else if (items.length === 0) note = `No ${p.den} events in this range, so there is no rate to show.`;
  return { table: { columns, rows }, chart: { kind: 'bars', items }, note };
}

function funnelView(p: Panel, resp: MetricsResponse): PanelView {
  const t = totalsOf(resp, 'events');
  const counts = p.steps.map((s) => Number(t.get(s) ?? 0n));
  const first = counts[0] ?? 0;
  const columns: Column[] = [{ label: 'Step', numeric: false }, { label: 'Events', numeric: true }, { label: 'Of previous step', numeric: true }, { label: 'Of first step', numeric: true }];
  const rows = p.steps.map((s, i) => {
    const c = counts[i] ?? 0;
    return [cellText(s), cellInt(c), i === 0 ? cellText('—') : cellRate(c, counts[i - 1] ?? 0), i === 0 ? cellText('—') : cellRate(c, first)];
  });
  const items = p.steps.map((s, i) => ({ label: s, value: counts[i] ?? 0, text: `${formatInt(counts[i] ?? 0)}${i > 0 ? ` (${formatRate(counts[i] ?? 0, counts[i - 1] ?? 0)})` : ''}` }));
  return { table: { columns, rows }, chart: { kind: 'bars', items }, note: first === 0 ? `No ${p.steps[0] ?? ''} events in this range yet.` : null };
}

/** Pure: a panel and the responses it needs (keyed by needKey) → what it shows. */
export function buildView(p: Panel, range: ResolvedRange, responses: ReadonlyMap<string, MetricsResponse>): PanelView {
  const needs = needsOf(p);
  const get = (i: number): MetricsResponse => {
    const n = needs[i];
    const r = n ? responses.get(needKey(n)) : undefined;
    if (!r) throw new Error('missing data for the panel');
    return r;
  };
  if (p.kind === 'funnel') return funnelView(p, get(0));
  if (p.measure === 'ratio') return p.kind === 'totals' ? ratioTotalsView(p, get(0), get(1)) : ratioSeriesView(p, range, get(0), get(1));
  if (p.kind === 'totals' && !isDistinct(p.measure)) return totalsView(p, get(0));
  return seriesView(p, range, get(0));
}

/** RFC 4180 CSV of a table (raw values: no grouping, exact decimals). */
export function toCsv(t: Table): string {
  const esc = (s: string): string => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  // A text cell such as a campaign named "=HYPERLINK(…)" must not become a spreadsheet formula.
  const text = (s: string): string => esc(/^[=+\-@\t\r]/.test(s) ? `'${s}` : s);
  const line = (r: Cell[]): string => r.map((c, i) => (t.columns[i]?.numeric ? esc(c.raw) : text(c.raw))).join(',');
  return [t.columns.map((c) => text(c.label)).join(','), ...t.rows.map(line)].join('\r\n') + '\r\n';
}
