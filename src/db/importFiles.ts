/**
 * `import_files`: where each input file of `hubsink import` stands (migration 004_import_files).
 */
import { ident } from './ident.js';
import type { Queryable } from './queryable.js';
import type { Statement } from './statement.js';

export interface FileKey {
  source: string;
  size: number;
  modifiedAt: Date;
}

/** Where a file stands: its key, the position and counts so far, and when it was finished. */
export interface FileProgress extends FileKey, ProgressDelta {
  format: string;
  finishedAt: Date | null;
}

export interface ProgressDelta {
  units: number;
  bytes: number;
  inserted: number;
  duplicates: number;
  invalid: number;
  rejected: number;
}

/** The file's key as bind values $1..$3 of every statement below. */
function keyValues(key: FileKey): unknown[] {
  return [key.source, key.size, key.modifiedAt.toISOString()];
}

export function importFilesSql(schema: string) {
  const t = `${ident(schema)}.import_files`;
  return {
    // Creates the row at the first sight of a file; returns where it stands either way.
    begin: (key: FileKey, format: string): Statement => ({
      text:
        `INSERT INTO ${t} (source, size, modified_at, format) VALUES ($1, $2, $3, $4) ` +
        'ON CONFLICT (source, size, modified_at) DO UPDATE SET updated_at = now() ' +
        'RETURNING units::text, bytes::text, inserted::text, duplicates::text, invalid::text, rejected::text, finished_at',
      values: [...keyValues(key), format],
    }),
    // Absolute positions (not increments): a batch repeated after a crash must not count twice.
    advance: (key: FileKey, at: { units: number; bytes: number }, counts: Omit<ProgressDelta, 'units' | 'bytes'>): Statement => ({
      text:
        `UPDATE ${t} SET units = $4, bytes = $5, inserted = inserted + $6, duplicates = duplicates + $7, invalid = invalid + $8, rejected = rejected + $9, updated_at = now() ` +
        'WHERE source = $1 AND size = $2 AND modified_at = $3 AND units < $4',
      values: [...keyValues(key), at.units, at.bytes, counts.inserted, counts.duplicates, counts.invalid, counts.rejected],
    }),
    finish: (key: FileKey): Statement => ({
      text: `UPDATE ${t} SET finished_at = now(), updated_at = now() WHERE source = $1 AND size = $2 AND modified_at = $3`,
      values: keyValues(key),
    }),
  };
}

export async function beginFile(db: Queryable, schema: string, key: FileKey, format: string): Promise<FileProgress> {
  const { rows } = await db.query<{ units: string; bytes: string; inserted: string; duplicates: string; invalid: string; rejected: string; finished_at: Date | null }>(
    importFilesSql(schema).begin(key, format),
  );
  const r = rows[0];
  if (!r) throw new Error(`import_files: no row for ${key.source}`);
  return {
    ...key,
    format,
    units: Number(r.units),
    bytes: Number(r.bytes),
    inserted: Number(r.inserted),
    duplicates: Number(r.duplicates),
    invalid: Number(r.invalid),
    rejected: Number(r.rejected),
    finishedAt: r.finished_at,
  };
}

/** Moves the file's position to `units`/`bytes` (after the batch was written) and adds its counts. */
export async function advanceFile(db: Queryable, schema: string, key: FileKey, at: { units: number; bytes: number }, counts: Omit<ProgressDelta, 'units' | 'bytes'>): Promise<void> {
  await db.query(importFilesSql(schema).advance(key, at, counts));
}

export async function finishFile(db: Queryable, schema: string, key: FileKey): Promise<void> {
  await db.query(importFilesSql(schema).finish(key));
}
