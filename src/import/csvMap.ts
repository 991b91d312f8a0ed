/**
 * CSV columns → event fields (pure). Columns whose names are event fields (`tenantId`, or
 * `tenant_id`, `TenantId`: case and underscores do not matter) map to them; `--map col=field` maps
 * the rest (`--map sku=properties.sku` puts a column into `properties`, `--map col=` drops it);
 * every other column goes into `properties` under its own name, so nothing in a file is lost.
 *
 * The JSON body built from a record lists fields in one fixed order and properties sorted by key:
 * the event id derived from it (when there is no eventId column) does not depend on column order.
 */
import type { EventField as ColumnField, SameNames } from '../pipeline/eventColumns.js';
import { setOwn } from '../pipeline/normalize.js';
import { HubsinkError } from '../errors.js';

export const EVENT_FIELDS = [
  'eventId',
  'tenantId',
  'type',
  'occurredAt',
  'sessionId',
  'userId',
  'deviceId',
  'url',
  'referrer',
  'campaignId',
  'country',
  'browser',
  'revenue',
  'properties',
] as const;
export type EventField = (typeof EVENT_FIELDS)[number];
/** Compile-time: the fields a CSV column may map to are exactly the event columns' fields (pipeline/eventColumns.ts). */
const _fieldsAreColumns: SameNames<EventField, ColumnField> = true;

export type ColumnTarget = { kind: 'field'; field: EventField } | { kind: 'property'; key: string } | { kind: 'drop' };

const normalize = (s: string): string => s.toLowerCase().replace(/[_\s-]/g, '');
const BY_NORMALIZED = new Map<string, EventField>(EVENT_FIELDS.map((f) => [normalize(f), f]));

export class CsvMappingError extends HubsinkError {
  readonly kind = 'usage';
  override name = 'CsvMappingError';
}

/** Pure: parses `--map` values (`col=field`, `col=properties.key`, `col=`). */
export function parseMaps(values: readonly string[]): Map<string, ColumnTarget> {
  const out = new Map<string, ColumnTarget>();
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new CsvMappingError(`--map ${JSON.stringify(v)}: expected column=field (field: ${EVENT_FIELDS.join(', ')}, properties.<key>, or nothing to drop the column)`);
    const col = v.slice(0, eq);
    const target = v.slice(eq + 1).trim();
    if (out.has(col)) throw new CsvMappingError(`--map: column ${JSON.stringify(col)} is mapped twice`);
    if (target === '') out.set(col, { kind: 'drop' });
    else if (target.startsWith('properties.') && target.length > 'properties.'.length) out.set(col, { kind: 'property', key: target.slice('properties.'.length) });
    else {
      const field = BY_NORMALIZED.get(normalize(target));
      if (!field) throw new CsvMappingError(`--map ${JSON.stringify(v)}: ${JSON.stringify(target)} is not an event field (${EVENT_FIELDS.join(', ')}, or properties.<key>)`);
      out.set(col, { kind: 'field', field });
    }
  }
  return out;
}

export interface CsvMapping {
  /** The header as read. */
  header: string[];
  targets: ColumnTarget[];
  /** Columns that went to `properties` because nothing mapped them (worth telling the user). */
  unmapped: string[];
}

/** Pure: the target of every header column. Two columns for one field, or a --map naming no column, is an error. */
export function buildCsvMapping(header: readonly string[], maps: ReadonlyMap<string, ColumnTarget>): CsvMapping {
  const present = new Set(header);
  const unknown = [...maps.keys()].filter((c) => !present.has(c));
  if (unknown.length > 0) throw new CsvMappingError(`--map names column(s) not in the header: ${unknown.map((c) => JSON.stringify(c)).join(', ')} (header: ${header.join(', ')})`);
  const targets: ColumnTarget[] = [];
  const unmapped: string[] = [];
  const used = new Map<string, string>();
  for (const col of header) {
    let t = maps.get(col);
    if (!t) {
      const field = BY_NORMALIZED.get(normalize(col));
      if (field) t = { kind: 'field', field };
      else {
        t = { kind: 'property', key: col };
        unmapped.push(col);
      }
    }
    if (t.kind === 'field') {
      const prev = used.get(t.field);
      if (prev !== undefined) throw new CsvMappingError(`columns ${JSON.stringify(prev)} and ${JSON.stringify(col)} both map to ${t.field}; drop one with --map ${JSON.stringify(col)}=`);
      used.set(t.field, col);
    }
    targets.push(t);
  }
  return { header: [...header], targets, unmapped };
}

const INTEGER = /^-?\d+$/;
const NUMBER = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/**
 * Pure: one record → the JSON body of an event. Empty cells are absent. tenantId and revenue become
 * numbers when they look like numbers (otherwise they stay strings, and validation says what is
 * wrong); a `properties` column holds a JSON object, merged with the property columns.
 */
export function recordToBody(mapping: CsvMapping, cells: readonly string[]): Buffer {
  const fields: Partial<Record<EventField, unknown>> = {};
  const props: Record<string, unknown> = {};
  let propertiesText: string | undefined;
  mapping.targets.forEach((t, i) => {
    const v = cells[i];
    if (v === undefined || v === '') return;
    if (t.kind === 'drop') return;
    if (t.kind === 'property') {
      setOwn(props, t.key, v);
      return;
    }
    if (t.field === 'properties') propertiesText = v;
    else if (t.field === 'tenantId') fields.tenantId = INTEGER.test(v.trim()) ? Number(v.trim()) : v;
    else if (t.field === 'revenue') fields.revenue = NUMBER.test(v.trim()) ? Number(v.trim()) : v;
    else fields[t.field] = v;
  });
  let properties: unknown = undefined;
  if (propertiesText !== undefined) {
    try {
      properties = JSON.parse(propertiesText) as unknown;
    } catch {
      // Left as text: validation reports that properties must be an object.
      properties = propertiesText;
    }
  }
  if (Object.keys(props).length > 0) {
    if (properties === undefined) properties = {};
    if (typeof properties === 'object' && properties !== null && !Array.isArray(properties)) {
      const merged = properties as Record<string, unknown>;
      for (const k of Object.keys(props).sort()) if (!Object.hasOwn(merged, k)) setOwn(merged, k, props[k]);
    }
  }
  const body: Record<string, unknown> = {};
  // Only known field names are set here, never a column's name.
  for (const f of EVENT_FIELDS) {
    if (f === 'properties') {
      if (properties !== undefined) body.properties = sortKeys(properties);
    } else if (fields[f] !== undefined) body[f] = fields[f];
  }
  return Buffer.from(JSON.stringify(body), 'utf8');
}

function sortKeys(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  const o = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o).sort()) setOwn(out, k, o[k]);
  return out;
}

/** Fields an event cannot do without (eventId is derived when missing). */
export const REQUIRED_FIELDS = ['tenantId', 'type', 'occurredAt'] as const satisfies readonly EventField[];
export type RequiredField = (typeof REQUIRED_FIELDS)[number];

/** Column names often used for a required field in exports: the first one present is suggested. */
const LIKELY_COLUMNS: Readonly<Record<RequiredField, readonly string[]>> = {
  tenantId: ['tenant', 'storefront', 'storefrontid', 'store', 'storeid', 'shop', 'shopid', 'account', 'accountid', 'customer', 'customerid'],
  type: ['eventtype', 'event', 'eventname', 'kind', 'action', 'name'],
  occurredAt: ['timestamp', 'time', 'ts', 'eventtime', 'occurred', 'createdat', 'datetime', 'date', 'when'],
};

/** Pure: the required fields no column maps to. */
export function missingRequiredFields(mapping: CsvMapping): RequiredField[] {
  const mapped = new Set(mapping.targets.flatMap((t) => (t.kind === 'field' ? [t.field] : [])));
  return REQUIRED_FIELDS.filter((f) => !mapped.has(f));
}

/** Pure: a column of `candidates` that probably holds `field`, for the `--map` to suggest. */
export function likelyColumn(field: RequiredField, candidates: readonly string[]): string | undefined {
  const byName = new Map(candidates.map((c) => [normalize(c), c]));
  for (const name of LIKELY_COLUMNS[field]) {
    const c = byName.get(name);
    if (c !== undefined) return c;
  }
  return undefined;
}

/**
 * Pure: the message for a header that leaves required fields unmapped: each field, the `--map`
 * that would supply it (a likely column, else a placeholder), and the header as it is.
 */
export function missingColumnsMessage(source: string, missing: readonly RequiredField[], mapping: CsvMapping): string {
  const header = mapping.header;
  const spare = header.filter((_, i) => mapping.targets[i]?.kind === 'property');
  const fixes = missing.map((f) => {
    const col = likelyColumn(f, spare);
    return `${f}: add a column named ${f}, or map one with --map ${col !== undefined ? `${JSON.stringify(col).slice(1, -1)}=${f}` : `<column>=${f}`}`;
  });
  return `${source}: no column for the required field(s) ${missing.join(', ')}; nothing was imported.\n  ${fixes.join('\n  ')}\n  (header: ${header.join(', ')})`;
}
