/**
 * The dashboard page: wires the state (model.ts), the data (data.ts) and the charts (charts.ts) to
 * the DOM. No framework: a handful of native controls, rebuilt when the layout changes and updated
 * in place when data arrives (so polling never steals keyboard focus).
 */
import './style.css';
import { draw, type Drawn } from './charts.js';
import { GRAIN_ORDER, editorOptions, panelGrains, type RollupCatalogWire, type WireGrain } from './catalog.js';
import { buildView, needKey, needsOf, toCsv, formatInt, type MetricsResponse, type Need, type PanelView, type Table } from './data.js';
import {
  ALL_STOREFRONTS,
  CHARTS,
  KINDS,
  RANGES,
  decodeState,
  describeFreshness,
  dimensionLabel,
  defaultState,
  encodeState,
  isDistinct,
  isEventType,
  movePanel,
  widenRange,
  NO_DIMENSION,
  resolveRange,
  tenantProblem,
  type DashboardState,
  type FreshnessResponse,
  type Panel,
  type RangeKey,
  type ResolvedRange,
} from './model.js';

const POLL_MS = 5000;
const TENANTS_EVERY_MS = 30_000;
const STORAGE_KEY = 'hubsink.dashboard.v1';

// ---- API ------------------------------------------------------------------------------------

/** `/api/dashboard/...` → `/api`; the local stack's `/` → `/api`. */
const API_BASE = /^(.*)\/dashboard(?:\/.*)?$/.exec(location.pathname)?.[1] ?? '/api';
/** A function key from `?code=` (see README, "Dashboard"): sent as a header, never put in the fragment. */
const KEY = new URLSearchParams(location.search).get('code');

class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function api<T>(path: string, params: Record<string, string>): Promise<T> {
  const url = `${API_BASE}${path}?${new URLSearchParams(params).toString()}`;
  let res: Response;
  try {
    res = await fetch(url, { headers: KEY ? { 'x-functions-key': KEY } : {}, cache: 'no-store' });
  } catch {
    throw new ApiError('cannot reach the API (network error); retrying', 0);
  }
  const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
  // With HUBSINK_ACCESS=entra the API says why (not signed in, storefront not granted); the host's own key check says nothing.
  if ((res.status === 401 || res.status === 403) && !body?.error?.message) {
    throw new ApiError('the API refused the request: open the dashboard with a valid function key, …/api/dashboard?code=KEY (see the README)', res.status);
  }
  if (!res.ok) throw new ApiError(body?.error?.message ?? `HTTP ${res.status}`, res.status);
  return body as T;
}

interface TenantsResponse {
  tenants: { tenantId: number; name: string | null; events: number }[];
  truncated: boolean;
  /** False for an analyst granted only some storefronts (HUBSINK_ACCESS=entra): no all-storefronts view. */
  allStorefronts?: boolean;
}

// ---- small DOM helpers ----------------------------------------------------------------------

type Attrs = Record<string, string | boolean | undefined>;
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...children);
  return el;
}
const byId = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from the page`);
  return el as T;
};
function select<T extends string>(id: string, label: string, options: readonly { key: T; label: string; disabled?: boolean }[], value: T): [HTMLLabelElement, HTMLSelectElement] {
  const s = h('select', { id });
  for (const o of options) s.append(h('option', { value: o.key, selected: o.key === value, disabled: o.disabled }, o.label));
  return [h('label', { for: id }, label), s];
}
let uid = 0;

// ---- state ----------------------------------------------------------------------------------

function initialState(): DashboardState {
  if (location.hash.length > 1) return decodeState(location.hash);
  const saved = localStorage.getItem(STORAGE_KEY);
  return saved ? decodeState(saved) : defaultState();
}

let state = initialState();
let paused = false;
let tenants: TenantsResponse | null = null;
/** What the rollups can answer (GET /api/rollups), re-read with the storefront list. */
let catalog: RollupCatalogWire | null = null;
let tenantsAt = 0;
let tenantsFor = '';

function save(): void {
  const frag = encodeState(state);
  history.replaceState(null, '', `${location.pathname}${location.search}#${frag}`);
  localStorage.setItem(STORAGE_KEY, frag);
}

function currentRange(): ResolvedRange {
  const custom = state.customFrom && state.customTo ? { from: new Date(state.customFrom), to: new Date(state.customTo) } : undefined;
  return resolveRange(state.range === 'custom' && !custom ? '1h' : state.range, new Date(), custom);
}

// ---- header: storefront, range, pause, add ---------------------------------------------------

const tenantSelect = byId<HTMLSelectElement>('tenant');
const rangeSelect = byId<HTMLSelectElement>('range');
const customBox = byId<HTMLElement>('custom');
const fromInput = byId<HTMLInputElement>('custom-from');
const toInput = byId<HTMLInputElement>('custom-to');
const pauseButton = byId<HTMLButtonElement>('pause');
const message = byId<HTMLElement>('message');
const freshness = byId<HTMLElement>('freshness');
const updated = byId<HTMLElement>('updated');
const panelsHost = byId<HTMLElement>('panels');

for (const r of RANGES) rangeSelect.append(h('option', { value: r.key }, r.label));

/** `datetime-local` values are read as UTC, like every time on the page. */
const toLocalInput = (iso: string | null): string => (iso ? iso.slice(0, 16) : '');
const fromLocalInput = (v: string): string | null => (v && !Number.isNaN(Date.parse(`${v}:00Z`)) ? new Date(`${v}:00Z`).toISOString() : null);

function syncHeader(): void {
  rangeSelect.value = state.range;
  customBox.hidden = state.range !== 'custom';
  fromInput.value = toLocalInput(state.customFrom);
  toInput.value = toLocalInput(state.customTo);
  pauseButton.textContent = paused ? 'Resume' : 'Pause';
  pauseButton.setAttribute('aria-pressed', String(paused));
}

function renderTenantOptions(): void {
  const opts: HTMLOptionElement[] = [];
  const list = tenants?.tenants ?? [];
  if (state.tenant !== null && !list.some((t) => t.tenantId === state.tenant)) opts.push(h('option', { value: String(state.tenant) }, `Storefront ${state.tenant} (not in the list)`));
  if (state.tenant === null) opts.push(h('option', { value: '' }, list.length ? 'Choose a storefront' : 'No storefronts yet'));
  for (const t of list) opts.push(h('option', { value: String(t.tenantId) }, `${t.name ?? `Storefront ${t.tenantId}`} — ${formatInt(t.events)} events`));
  if ((list.length > 0 && tenants?.allStorefronts !== false) || state.tenant === ALL_STOREFRONTS) opts.push(h('option', { value: ALL_STOREFRONTS }, 'All storefronts'));
  tenantSelect.replaceChildren(...opts);
  tenantSelect.value = state.tenant === null ? '' : String(state.tenant);
}

tenantSelect.addEventListener('change', () => {
  const v = tenantSelect.value;
  state.tenant = v === ALL_STOREFRONTS ? ALL_STOREFRONTS : v ? Number(v) : null;
  state.tenantRaw = v || null;
  save();
  void refresh(true);
});
rangeSelect.addEventListener('change', () => {
  state.range = rangeSelect.value as RangeKey;
  if (state.range === 'custom' && !(state.customFrom && state.customTo)) {
    const r = resolveRange('24h', new Date());
    state.customFrom = r.from.toISOString();
    state.customTo = r.to.toISOString();
  }
  syncHeader();
  save();
  void refresh(true);
});
byId<HTMLButtonElement>('custom-apply').addEventListener('click', () => {
  const from = fromLocalInput(fromInput.value);
  const to = fromLocalInput(toInput.value);
  if (!from || !to || Date.parse(to) <= Date.parse(from)) {
    showMessage('The custom range needs a start before its end (times in UTC).');
    return;
  }
  state.customFrom = from;
  state.customTo = to;
  save();
  void refresh(true);
});
pauseButton.addEventListener('click', () => {
  paused = !paused;
  syncHeader();
  if (!paused) void refresh(false);
  else updated.textContent = 'Paused: live updates are off.';
});
byId<HTMLButtonElement>('add').addEventListener('click', () => {
  state.panels.push({ title: 'New panel', kind: 'series', measure: 'events', by: 'none', chart: 'line', num: '', den: '', steps: [] });
  save();
  renderPanels({ edit: state.panels.length - 1 });
  void refresh(false);
});
byId<HTMLButtonElement>('reset').addEventListener('click', () => {
  state.panels = defaultState().panels;
  save();
  renderPanels();
  void refresh(false);
});

function showMessage(text: string | null): void {
  message.hidden = text === null;
  message.textContent = text ?? '';
}

// ---- panels ---------------------------------------------------------------------------------

interface PanelDom {
  root: HTMLElement;
  note: HTMLElement;
  chartHost: HTMLElement;
  tableHost: HTMLElement;
  tableToggle: HTMLButtonElement;
  drawn: Drawn | null;
  showTable: boolean;
  view: PanelView | null;
}
let panelDoms: PanelDom[] = [];

function csvName(p: Panel): string {
  const r = currentRange();
  const slug = p.title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'panel';
  return `${slug}-${state.tenant ?? 'all'}-${r.from.toISOString().slice(0, 16).replace(':', '')}.csv`;
}

function download(p: Panel, t: Table): void {
  const url = URL.createObjectURL(new Blob([toCsv(t)], { type: 'text/csv;charset=utf-8' }));
  const a = h('a', { href: url, download: csvName(p) });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function editor(p: Panel, i: number, onChange: () => void): HTMLElement {
  // Stable ids (one editor is open at a time), so focus survives the re-render after a change.
  const id = `edit-${i}`;
  const form = h('form', { class: 'editor', 'aria-label': `Settings of ${p.title || 'panel'}` });
  form.addEventListener('submit', (e) => e.preventDefault());
  const title = h('input', { id: `${id}-title`, type: 'text', value: p.title, maxlength: '120' });
  title.addEventListener('change', () => {
    p.title = title.value.trim().slice(0, 120) || 'Panel';
    onChange();
  });
  const [kl, kind] = select(`${id}-kind`, 'Show', KINDS, p.kind);
  // Only what some rollup answers (GET /api/rollups), analyst-defined dimensions included.
  const offered = editorOptions(catalog, p, state.tenant === ALL_STOREFRONTS);
  const [ml, measure] = select(`${id}-measure`, 'Measure', offered.measures as { key: Panel['measure']; label: string; disabled?: boolean }[], p.measure);
  const [dl, dim] = select(`${id}-by`, 'Dimension', offered.dimensions, p.by);
  const [cl, chart] = select(`${id}-chart`, 'Chart', CHARTS.map((c) => ({ ...c, disabled: p.kind !== 'series' && c.key === 'line' })), p.chart);
  const num = h('input', { id: `${id}-num`, type: 'text', value: p.num, list: 'event-types', placeholder: 'e.g. ad_click' });
  const den = h('input', { id: `${id}-den`, type: 'text', value: p.den, list: 'event-types', placeholder: 'e.g. ad_impression' });
  const steps = h('input', { id: `${id}-steps`, type: 'text', value: p.steps.join(', '), placeholder: 'page_view, add_to_cart, purchase' });
  const problem = h('p', { class: 'problem', role: 'alert' });
  const row = (...kids: Node[]): HTMLElement => h('div', { class: 'field' }, ...kids);
  form.append(row(h('label', { for: title.id }, 'Title'), title), row(kl, kind));
  if (p.kind === 'funnel') form.append(row(h('label', { for: steps.id }, 'Steps (event types, in order)'), steps));
  else {
    form.append(row(ml, measure));
    if (p.measure === 'ratio') form.append(row(h('label', { for: num.id }, 'Numerator event type'), num), row(h('label', { for: den.id }, 'Denominator event type'), den));
    form.append(row(dl, dim));
  }
  form.append(row(cl, chart), problem);
  kind.addEventListener('change', () => {
    p.kind = kind.value as Panel['kind'];
    if (p.kind === 'totals' && isDistinct(p.measure)) p.measure = 'events';
    if (p.kind !== 'series' && p.chart === 'line') p.chart = 'bar';
    if (p.kind === 'funnel' && p.steps.length < 2) p.steps = ['page_view', 'add_to_cart', 'purchase'];
    onChange();
  });
  measure.addEventListener('change', () => {
    p.measure = measure.value as Panel['measure'];
    if (p.measure === 'ratio' && !(p.num && p.den)) {
      p.num = 'ad_click';
      p.den = 'ad_impression';
    }
    onChange();
  });
  dim.addEventListener('change', () => {
    p.by = dim.value;
    onChange();
  });
  chart.addEventListener('change', () => {
    p.chart = chart.value as Panel['chart'];
    onChange();
  });
  const types = (input: HTMLInputElement, apply: (v: string) => void): void => {
    input.addEventListener('change', () => {
      const v = input.value.trim();
      if (!isEventType(v)) {
        problem.textContent = `“${v}” is not an event type (1 to 64 characters, no spaces).`;
        return;
      }
      problem.textContent = '';
      apply(v);
      onChange();
    });
  };
  types(num, (v) => (p.num = v));
  types(den, (v) => (p.den = v));
  steps.addEventListener('change', () => {
    const list = steps.value.split(/[,>→]/).map((s) => s.trim()).filter((s) => s !== '');
    if (list.length < 2 || list.length > 8 || !list.every(isEventType)) {
      problem.textContent = 'A funnel needs 2 to 8 event types, separated by commas.';
      return;
    }
    problem.textContent = '';
    p.steps = list;
    onChange();
  });
  return form;
}

function panelDom(p: Panel, i: number, n: number, opts: { edit?: boolean; showTable?: boolean }): PanelDom {
  const id = `panel-${++uid}`;
  const root = h('section', { class: 'panel', 'aria-labelledby': `${id}-h`, 'data-index': String(i) });
  const heading = h('h2', { id: `${id}-h` }, p.title);
  const btn = (label: string, aria: string, attrs: Attrs = {}): HTMLButtonElement => h('button', { type: 'button', 'aria-label': `${aria} ${p.title}`, ...attrs }, label);
  const showTable = opts.showTable ?? p.chart === 'table';
  const tableToggle = btn(showTable ? 'Chart' : 'Table', showTable ? 'Show the chart of' : 'Show the table of', { 'aria-pressed': String(showTable), 'data-action': 'table' });
  const csv = btn('CSV', 'Download as CSV:', { 'data-action': 'csv' });
  const edit = btn('Edit', 'Edit', { 'aria-expanded': String(Boolean(opts.edit)), 'data-action': 'edit' });
  const up = btn('↑', 'Move up:', { disabled: i === 0, 'data-action': 'up' });
  const down = btn('↓', 'Move down:', { disabled: i === n - 1, 'data-action': 'down' });
  const remove = btn('✕', 'Remove', { 'data-action': 'remove' });
  const tools = h('div', { class: 'tools' }, tableToggle, csv, edit, up, down, remove);
  const note = h('p', { class: 'note', 'aria-live': 'polite' });
  const chartHost = h('div', { class: 'chart', hidden: showTable });
  const tableHost = h('div', { class: 'table-wrap', hidden: !showTable });
  root.append(h('header', {}, heading, tools));
  const dom: PanelDom = { root, note, chartHost, tableHost, tableToggle, drawn: null, showTable, view: null };
  if (opts.edit) {
    root.append(
      editor(p, i, () => {
        save();
        renderPanels({ edit: state.panels.indexOf(p), focus: document.activeElement?.id });
        void refresh(false);
      }),
    );
  }
  root.append(note, chartHost, tableHost);

  tableToggle.addEventListener('click', () => {
    dom.showTable = !dom.showTable;
    tableToggle.textContent = dom.showTable ? 'Chart' : 'Table';
    tableToggle.setAttribute('aria-pressed', String(dom.showTable));
    tableToggle.setAttribute('aria-label', `${dom.showTable ? 'Show the chart of' : 'Show the table of'} ${p.title}`);
    chartHost.hidden = dom.showTable;
    tableHost.hidden = !dom.showTable;
    if (dom.view) paint(p, dom);
  });
  csv.addEventListener('click', () => {
    if (dom.view) download(p, dom.view.table);
  });
  edit.addEventListener('click', () => renderPanels({ edit: opts.edit ? undefined : i, focus: `${'edit'}:${i}`, keepTables: true }));
  const move = (delta: -1 | 1) => () => {
    const shown = panelDoms.map((d) => d.showTable);
    const [s] = shown.splice(i, 1);
    shown.splice(i + delta, 0, s ?? false);
    state.panels = movePanel(state.panels, i, delta);
    save();
    renderPanels({ focus: `${delta < 0 ? 'up' : 'down'}:${i + delta}`, tables: shown });
    void refresh(false);
  };
  up.addEventListener('click', move(-1));
  down.addEventListener('click', move(1));
  remove.addEventListener('click', () => {
    state.panels.splice(i, 1);
    save();
    renderPanels({ focus: state.panels.length > 0 ? `remove:${Math.min(i, state.panels.length - 1)}` : 'add' });
    void refresh(false);
  });
  return dom;
}

function renderTable(t: Table, caption: string): HTMLTableElement {
  const table = h('table', {}, h('caption', {}, caption));
  const head = h('tr', {}, ...t.columns.map((c) => h('th', { scope: 'col', class: c.numeric ? 'num' : undefined }, c.label)));
  const body = h('tbody');
  for (const r of t.rows) body.append(h('tr', {}, ...r.map((cell, j) => h('td', { class: t.columns[j]?.numeric ? 'num' : undefined }, cell.text))));
  table.append(h('thead', {}, head), body);
  return table;
}

function paint(p: Panel, dom: PanelDom): void {
  const v = dom.view;
  if (!v) return;
  dom.note.textContent = v.note ?? '';
  if (dom.showTable) {
    dom.tableHost.replaceChildren(renderTable(v.table, `${p.title} (${v.table.rows.length} rows)`));
    return;
  }
  dom.drawn ??= draw(dom.chartHost);
  dom.drawn.update(v.chart, p.chart === 'line' ? 'line' : 'bar');
}

function renderPanels(opts: { edit?: number | undefined; focus?: string | undefined; keepTables?: boolean; tables?: boolean[] } = {}): void {
  const previous = panelDoms;
  for (const d of previous) d.drawn?.destroy();
  panelDoms = state.panels.map((p, i) =>
    panelDom(p, i, state.panels.length, {
      edit: opts.edit === i,
      ...(opts.tables ? { showTable: opts.tables[i] ?? p.chart === 'table' } : opts.keepTables && previous[i] ? { showTable: previous[i].showTable } : {}),
    }),
  );
  panelsHost.replaceChildren(...panelDoms.map((d) => d.root));
  // Carry the data over so the new panels are not blank until the next poll.
  for (const [i, d] of panelDoms.entries()) {
    const old = previous[i];
    if (old?.view && sameNeeds(state.panels[i], lastPanels[i])) {
      d.view = old.view;
      const p = state.panels[i];
      if (p) paint(p, d);
    }
  }
  lastPanels = state.panels.map((p) => ({ ...p, steps: [...p.steps] }));
  if (opts.focus) {
    const [action, idx] = opts.focus.split(':');
    const target = idx !== undefined ? panelDoms[Number(idx)]?.root.querySelector<HTMLElement>(`[data-action="${action}"]`) : document.getElementById(opts.focus);
    (target && !(target as HTMLButtonElement).disabled ? target : panelDoms[Number(idx)]?.root.querySelector<HTMLElement>('[data-action="edit"]'))?.focus();
  }
}
let lastPanels: Panel[] = [];
const sameNeeds = (a: Panel | undefined, b: Panel | undefined): boolean => !!a && !!b && JSON.stringify(a) === JSON.stringify(b);

// ---- data -----------------------------------------------------------------------------------

function renderFreshness(f: FreshnessResponse, grain: string): void {
  const d = describeFreshness(f, grain);
  freshness.className = `freshness${d.stale ? ' stale' : ''}`;
  freshness.textContent = d.text;
}

let inFlight: Promise<void> | null = null;
let again = false;

/** One refresh at a time; a request during one queues exactly one more. */
function refresh(forceTenants: boolean): Promise<void> {
  if (inFlight) {
    again = true;
    if (forceTenants) tenantsAt = 0;
    return inFlight;
  }
  if (forceTenants) tenantsAt = 0;
  inFlight = load()
    .catch((err: unknown) => showMessage(err instanceof Error ? err.message : String(err)))
    .finally(() => {
      inFlight = null;
      if (again) {
        again = false;
        void refresh(false);
      }
    });
  return inFlight;
}

async function load(): Promise<void> {
  const range = currentRange();
  const span = { from: range.from.toISOString(), to: range.to.toISOString() };
  const tKey = `${span.from}|${span.to}`;
  const [fresh] = await Promise.all([
    api<FreshnessResponse>('/freshness', {}).catch(() => null),
    (async () => {
      if (!tenants || Date.now() - tenantsAt > TENANTS_EVERY_MS || tKey !== tenantsFor) {
        // The tenant list is by activity over whole buckets: ask for the range rounded out to them.
        const [t, c] = await Promise.all([api<TenantsResponse>('/tenants', span), api<RollupCatalogWire>('/rollups', {}).catch(() => catalog)]);
        tenants = t;
        catalog = c;
        tenantsAt = Date.now();
        tenantsFor = tKey;
      }
    })(),
  ]);
  if (fresh) renderFreshness(fresh, range.grain);
  if (state.tenant === null && state.tenantRaw === null && tenants?.tenants[0] && tenants.tenants[0].events > 0) {
    state.tenant = tenants.tenants[0].tenantId;
    save();
  }
  renderTenantOptions();

  const problem = tenantProblem(state);
  const list = tenants?.tenants ?? [];
  let blocker: string | null = problem;
  if (!blocker && state.tenant === null) blocker = list.length === 0 ? 'No storefront has sent events yet. Send events to the ingest hub (npm start runs a generator), then they appear here.' : 'Choose a storefront.';
  if (!blocker && state.tenant !== null && state.tenant !== ALL_STOREFRONTS && !list.some((t) => t.tenantId === state.tenant) && tenants && !tenants.truncated) {
    blocker = `Storefront ${state.tenant} is not known to hubsink: no event from it was ever received. Pick a storefront from the list.`;
  }
  if (!blocker && state.tenant === ALL_STOREFRONTS && tenants?.allStorefronts === false) {
    blocker = 'All storefronts sums every storefront, which needs the all-storefronts grant (an operator runs hubsink access grant --all-tenants). Pick a storefront from the list.';
  }
  panelsHost.hidden = blocker !== null;
  showMessage(blocker);
  if (blocker !== null || state.tenant === null) return;

  const all = state.tenant === ALL_STOREFRONTS;
  const tenant = String(state.tenant);
  // Each panel reads at the range's grain, or at the next coarser one its rollups keep (a split by
  // country is kept by the hour), over the range rounded out to that grain's buckets.
  const plans = state.panels.map((p) => {
    const grains = catalog ? panelGrains(catalog, p, all) : [range.grain];
    const grain = GRAIN_ORDER.slice(GRAIN_ORDER.indexOf(range.grain)).find((g) => grains.includes(g));
    return grain === undefined ? null : { grain, range: widenRange(range, grain) };
  });
  const reqKey = (g: WireGrain, n: Need): string => `${g}|${needKey(n)}`;
  const needs = new Map<string, { need: Need; range: ResolvedRange }>();
  for (const [i, p] of state.panels.entries()) {
    const plan = plans[i];
    if (plan) for (const n of needsOf(p)) needs.set(reqKey(plan.grain, n), { need: n, range: plan.range });
  }
  const responses = new Map<string, MetricsResponse>();
  const failures = new Map<string, string>();
  await Promise.all(
    [...needs.entries()].map(async ([k, { need: n, range: r }]) => {
      const params: Record<string, string> = { from: r.from.toISOString(), to: r.to.toISOString(), grain: r.grain, measures: n.measures.join(',') };
      if (n.by !== NO_DIMENSION) {
        params.by = n.by;
        // As many series as the API gives; the chart draws the largest, the table keeps all.
        params.top = '50';
      }
      if (n.type) params.type = n.type;
      try {
        responses.set(k, await api<MetricsResponse>(`/tenants/${tenant}/metrics`, params));
      } catch (err) {
        failures.set(k, err instanceof Error ? err.message : String(err));
      }
    }),
  );
  // The layout may have changed while the requests ran; paint only panels whose data is here.
  for (const [i, p] of state.panels.entries()) {
    const dom = panelDoms[i];
    const plan = plans[i];
    if (!dom) continue;
    if (!plan) {
      dom.note.textContent = `No rollup keeps ${p.kind === 'funnel' ? 'event types' : p.by === NO_DIMENSION ? 'this measure' : `${dimensionLabel(p.by)} with this measure`}${all ? ' for all storefronts' : ''}: edit the panel.`;
      dom.root.classList.add('failed');
      continue;
    }
    const failed = needsOf(p).map((n) => failures.get(reqKey(plan.grain, n))).find((f) => f !== undefined);
    if (failed !== undefined) {
      dom.note.textContent = `Cannot load this panel: ${failed}`;
      dom.root.classList.add('failed');
      continue;
    }
    if (!needsOf(p).every((n) => responses.has(reqKey(plan.grain, n)))) continue;
    dom.root.classList.remove('failed');
    const own = new Map(needsOf(p).map((n) => [needKey(n), responses.get(reqKey(plan.grain, n)) as MetricsResponse]));
    const view = buildView(p, plan.range, own);
    if (plan.grain !== range.grain) view.note = [`By ${plan.grain}: the rollups keep this by the ${plan.grain}.`, view.note].filter((x) => x !== null).join(' ');
    dom.view = view;
    dom.root.dataset.grain = plan.grain;
    dom.root.dataset.from = plan.range.from.toISOString();
    dom.root.dataset.to = plan.range.to.toISOString();
    paint(p, dom);
  }
  const auth = [...failures.values()].find((f) => f.includes('function key'));
  if (auth) showMessage(auth);
  const hm = (d: Date): string => d.toISOString().slice(range.grain === 'day' ? 0 : 11, range.grain === 'day' ? 10 : 16);
  updated.textContent = `${hm(range.from)}–${hm(range.to)} UTC by ${range.grain} · updated ${new Date().toISOString().slice(11, 19)} · every ${POLL_MS / 1000} s`;
  updated.dataset.from = span.from;
  updated.dataset.to = span.to;
  updated.dataset.grain = range.grain;
  document.body.dataset.loadedAt = String(Date.now());
}

// ---- start ----------------------------------------------------------------------------------

function schedule(): void {
  setTimeout(() => {
    const next = (): void => schedule();
    if (paused || document.hidden) return next();
    void refresh(false).finally(next);
  }, POLL_MS);
}

window.addEventListener('hashchange', () => {
  state = decodeState(location.hash);
  syncHeader();
  renderPanels();
  void refresh(true);
});

syncHeader();
save();
renderPanels();
void refresh(true);
schedule();
