/**
 * What the rollup catalog (GET /api/rollups) can answer, for the panel editor and for the requests
 * panels make. Pure and DOM-free. The dimension names and measures come from the API, never from a
 * list in the page, so a rollup an analyst defines shows up in the editor without a new build.
 */
import type { RollupCatalogWire, WireGrain, WireMeasure } from '../../src/serving/wire.js';
import { needsOf, type Need } from './data.js';
import { MEASURES, NO_DIMENSION, dimensionLabel, isDistinct, type Panel } from './model.js';

export type { RollupCatalogWire, WireGrain, WireMeasure };

/** Finest first: a panel reads at the range's grain, or the next coarser one that can answer it. */
export const GRAIN_ORDER: readonly WireGrain[] = ['minute', 'hour', 'day'];

/** One metrics request in catalog terms. */
export interface Question {
  /** The dimension a response is split by; null for none. */
  by: string | null;
  /** Filtered on the type dimension (the sides of a ratio). */
  typed: boolean;
  measures: readonly WireMeasure[];
  /** The all-storefronts view. */
  all: boolean;
}

/** Pure: whether some rollup of the catalog answers the question at the grain exactly. */
export function answers(cat: RollupCatalogWire, q: Question, grain: WireGrain): boolean {
  const dims = [...(q.by ? [q.by] : []), ...(q.typed ? ['type'] : [])];
  return cat.rollups.some(
    (r) => r.grains.includes(grain) && (!q.all || r.allTenants) && dims.every((d) => r.dimensions.includes(d)) && q.measures.every((m) => r.measures.includes(m)),
  );
}

/** Pure: the grains at which the catalog answers the question, finest first. */
export function grainsFor(cat: RollupCatalogWire, q: Question): WireGrain[] {
  return GRAIN_ORDER.filter((g) => answers(cat, q, g));
}

/**
 * Pure: the grain to read questions at for a range of `rangeGrain`: that grain if the catalog
 * answers them all there, else the finest coarser grain that does; null when none does.
 */
export function readGrain(cat: RollupCatalogWire, qs: readonly Question[], rangeGrain: WireGrain): WireGrain | null {
  const start = GRAIN_ORDER.indexOf(rangeGrain);
  return GRAIN_ORDER.slice(start).find((g) => qs.every((q) => answers(cat, q, g))) ?? null;
}

/** Pure: every dimension some rollup keeps, in catalog order, with where its values come from. */
export function catalogDimensions(cat: RollupCatalogWire): { name: string; source: string }[] {
  const out = new Map<string, { name: string; source: string }>();
  for (const d of cat.dimensions) if (!out.has(d.name)) out.set(d.name, d);
  for (const r of cat.rollups) for (const d of r.dimensions) if (!out.has(d)) out.set(d, { name: d, source: d });
  return [...out.values()];
}

/** Pure: whether a dimension is defined by an analyst (only in custom rollups). */
export function isCustomDimension(cat: RollupCatalogWire, name: string): boolean {
  const holders = cat.rollups.filter((r) => r.dimensions.includes(name));
  return holders.length > 0 && holders.every((r) => r.custom);
}

export interface EditorOption {
  key: string;
  label: string;
  disabled?: boolean;
}

/** Pure: a need as a question to the catalog. */
export function questionOf(n: Need, all: boolean): Question {
  return { by: n.by === NO_DIMENSION ? null : n.by, typed: n.type !== null, measures: n.measures, all };
}

/** Pure: the grains at which the catalog answers every request of a panel, finest first. */
export function panelGrains(cat: RollupCatalogWire, p: Panel, all: boolean): WireGrain[] {
  const qs = needsOf(p).map((n) => questionOf(n, all));
  return GRAIN_ORDER.filter((g) => qs.every((q) => answers(cat, q, g)));
}

const grainNote = (gs: readonly WireGrain[]): string => (gs.length === GRAIN_ORDER.length ? '' : ` (${gs.join(', ')})`);

/**
 * Pure: what the panel editor offers: each measure and each dimension of the catalog, enabled when
 * some rollup answers it together with the panel's other setting (at any grain: the panel reads at
 * the range's grain or the next coarser one that answers), and labelled with the grains it is kept
 * at when not all. A setting the panel already has stays listed, disabled, if nothing answers it.
 */
export function editorOptions(cat: RollupCatalogWire | null, p: Panel, all: boolean): { measures: EditorOption[]; dimensions: EditorOption[] } {
  const ok = (q: Panel) => cat === null || panelGrains(cat, q, all).length > 0;
  const measures = MEASURES.map((m) => ({
    key: m.key,
    label: m.label,
    disabled: (p.kind === 'totals' && isDistinct(m.key)) || !ok({ ...p, measure: m.key, num: p.num || 'a', den: p.den || 'b' }),
  }));
  const dimensions: EditorOption[] = [{ key: NO_DIMENSION, label: dimensionLabel(NO_DIMENSION), disabled: !ok({ ...p, by: NO_DIMENSION }) }];
  for (const d of cat ? catalogDimensions(cat) : []) {
    const gs = panelGrains(cat as RollupCatalogWire, { ...p, by: d.name }, all);
    if (gs.length === 0 && d.name !== p.by) continue;
    const source = d.source !== d.name && d.source !== '' ? ` — ${d.source}` : '';
    dimensions.push({ key: d.name, label: `${dimensionLabel(d.name)}${source}${gs.length === 0 ? ' (not kept for this measure)' : grainNote(gs)}`, disabled: gs.length === 0 });
  }
  if (!dimensions.some((d) => d.key === p.by)) dimensions.push({ key: p.by, label: `${dimensionLabel(p.by)} (not kept by any rollup)`, disabled: true });
  return { measures, dimensions };
}
