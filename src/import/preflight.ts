/**
 * Before an import reads a row: does each source carry the fields every event needs? A CSV whose
 * header (with the `--map`s) leaves tenantId, type or occurredAt without a column, or NDJSON whose
 * first lines all lack one, would park every row of a file that may hold millions; it is refused
 * (exit 2) naming the field and the `--map` that would supply it. Only the header, or the first
 * lines (at most PREFLIGHT_LINES and PREFLIGHT_BYTES), are read.
 */
import { HubsinkError } from '../errors.js';
import { CsvMappingError, missingColumnsMessage, missingRequiredFields, REQUIRED_FIELDS, type ColumnTarget, type CsvMapping, type RequiredField } from './csvMap.js';
import { readItems } from './records.js';
import type { ImportSource } from './sources.js';

export const PREFLIGHT_LINES = 100;
export const PREFLIGHT_BYTES = 1024 * 1024;

export class ImportShapeError extends HubsinkError {
  readonly kind = 'usage';
  override name = 'ImportShapeError';
}

/** Pure: the required fields none of the sampled NDJSON bodies has (bodies that are not JSON objects say nothing). */
export function fieldsMissingFromAll(bodies: readonly Buffer[]): RequiredField[] {
  const seen = new Set<RequiredField>();
  let objects = 0;
  for (const b of bodies) {
    let v: unknown;
    try {
      v = JSON.parse(b.toString('utf8')) as unknown;
    } catch {
      continue;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) continue;
    objects++;
    for (const f of REQUIRED_FIELDS) if (Object.hasOwn(v, f) && (v as Record<string, unknown>)[f] !== null) seen.add(f);
  }
  if (objects === 0) return [];
  return REQUIRED_FIELDS.filter((f) => !seen.has(f));
}

/** Throws ImportShapeError when a source cannot yield one valid event. */
export async function checkSource(src: ImportSource, csvMaps: ReadonlyMap<string, ColumnTarget>, limits: { maxLineBytes: number; maxGzipRatio: number }): Promise<void> {
  let mapping: CsvMapping | undefined;
  const bodies: Buffer[] = [];
  const items = readItems(src, {
    skipUnits: 0,
    startByte: 0,
    csvMaps,
    ...limits,
    onCsvMapping: (m) => {
      mapping = m;
    },
  });
  let bytes = 0;
  try {
    for await (const item of items) {
      // A CSV header is known before its first row (records the parser skipped may come out first).
      if (src.format === 'csv') {
        if (mapping) break;
        continue;
      }
      if (item.error === undefined) bodies.push(item.body);
      bytes += item.body.length;
      if (bodies.length >= PREFLIGHT_LINES || bytes >= PREFLIGHT_BYTES) break;
    }
  } catch (err) {
    // A bad --map is the caller's; a file that cannot be read is the import's to report, in its summary.
    if (err instanceof CsvMappingError) throw err;
    return;
  }
  if (src.format === 'csv') {
    if (!mapping) return;
    const missing = missingRequiredFields(mapping);
    if (missing.length > 0) throw new ImportShapeError(missingColumnsMessage(src.name, missing, mapping));
    return;
  }
  const missing = fieldsMissingFromAll(bodies);
  if (missing.length > 0) {
    throw new ImportShapeError(
      `${src.name}: none of the first ${bodies.length} line(s) has ${missing.join(', ')}, which every event needs; nothing was imported ` +
        '(each line is one JSON object with tenantId, type and occurredAt; see the README, "Importing history")',
    );
  }
}
