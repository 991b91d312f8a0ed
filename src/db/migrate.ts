/**
 * Applies the numbered SQL files in `sql/` (NNN_name.sql) in order, each in its own transaction,
 * and records them in `<schema>.hubsink_migrations`. Which files are due is decided per version, not
 * as "above the highest applied": a migration that landed after a higher-numbered one had been
 * applied is still applied (so such files must not depend on each other). Safe to run from several
 * processes at once: every transaction first takes one database-wide advisory lock, because
 * extensions and Citus metadata are database-wide, so migrations of different schemas must
 * serialize too.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { detectCapabilities } from './capabilities.js';
import { ident } from './ident.js';
import { maintainPartitions } from './partitions.js';
import { HubsinkError } from '../errors.js';
import { inTransaction } from './queryable.js';
import type { Statement } from './statement.js';

/** Arbitrary constant ("hubsink" in ASCII) shared by every hubsink migrator on a database. */
export const MIGRATION_LOCK_KEY = 0x6875_6273_696e_6bn;

export interface MigrationFile {
  version: number;
  name: string;
  file: string;
  sql: string;
  checksum: string;
}

export interface MigrateOptions {
  log?: (msg: string) => void;
  /** Directory holding the NNN_name.sql files; defaults to the package's `sql/`. */
  dir?: string;
  /**
   * Also create the partitions of the accepted window [now − retention, now + ahead], so the
   * database takes events as soon as migrate returns. Nothing is dropped here: retention belongs
   * to the maintenance runs, which check the rollups first.
   */
  partitions?: { now: Date; aheadDays: number; retentionDays: number };
}

export class MigrationError extends HubsinkError {
  readonly kind = 'failed';
  override name = 'MigrationError';
}

const FILE_NAME = /^(\d{3})_([a-z0-9_]+)\.sql$/;

/**
 * Pure: a migration as its checksum sees it: comments (`--` and nested `/* *\/`) dropped and every
 * run of whitespace made one space, outside string literals and quoted identifiers, which are kept
 * as they are. Dollar-quoted bodies (DO blocks, function bodies, format templates) are code, and are
 * normalized the same way. So a comment can be corrected or the file re-indented after it was
 * applied, while any change to what the server runs still changes the checksum.
 */
export function migrationContent(sql: string): string {
  const out: string[] = [];
  let space = false;
  const emit = (tok: string): void => {
    if (space && out.length > 0) out.push(' ');
    space = false;
    out.push(tok);
  };
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      i = eol === -1 ? n : eol;
      space = true;
    } else if (c === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql.startsWith('/*', i)) {
          depth++;
          i += 2;
        } else if (sql.startsWith('*/', i)) {
          depth--;
          i += 2;
        } else i++;
      }
      space = true;
    } else if (/\s/.test(c)) {
      space = true;
      i++;
    } else if (c === "'" || c === '"') {
      // A literal or quoted identifier, verbatim; doubled quotes stay inside, and so do backslash
      // escapes of an E'' string.
      const escapes = c === "'" && /[eE]/.test(sql[i - 1] ?? '') && !/[A-Za-z0-9_]/.test(sql[i - 2] ?? '');
      let j = i + 1;
      while (j < n) {
        if (escapes && sql[j] === '\\') j += 2;
        else if (sql[j] === c && sql[j + 1] === c) j += 2;
        else if (sql[j] === c) break;
        else j++;
      }
      emit(sql.slice(i, j + 1));
      i = j + 1;
    } else {
      const tag = c === '$' && !/[A-Za-z0-9_$]/.test(sql[i - 1] ?? '') ? /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i)) : null;
      const end = tag ? sql.indexOf(tag[0], i + tag[0].length) : -1;
      if (tag && end !== -1) {
        emit(`${tag[0]}${migrationContent(sql.slice(i + tag[0].length, end))}${tag[0]}`);
        i = end + tag[0].length;
      } else {
        emit(c);
        i++;
      }
    }
  }
  return out.join('');
}

/** Pure: checksum of a migration: of its content, so comments and layout may change (migrationContent). */
export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(migrationContent(sql), 'utf8').digest('hex');
}

/**
 * Checksums that databases migrated before content checksums hold: per version, the raw-text
 * checksum of the file as it was shipped then, and the content checksum of that same text. A stored
 * raw checksum is accepted (and replaced by the content checksum) only while the file's content
 * checksum is still that one: its comments or layout may have changed since, its statements not.
 */
export const RAW_TEXT_CHECKSUMS: Readonly<Record<number, { raw: string; content: string }>> = {
  1: { raw: 'b980c86e0075821f2cb6c47f2a9be9853cce9ab3fc217f94ba6da129f6cf394e', content: 'b168e0f9187cece67e99987f7b3778e10296639396fa41df0f6d0a7ddc1557ce' },
  2: { raw: '557f1058207adbcdb1533c76167f2abc0cb93535baa2bc70bcc8c43e8ba38397', content: '613d7e7695f5c6a4ebb6a102bceedd82603cd111b0a92325b6801c63054f07f7' },
  3: { raw: 'b9080b9344d954de72dc5a58216b64d7822cd90c86249cb07820cd863bbc921f', content: '39ba86d8df426b8599c4feec25b23c6d85b7338d01d17ad891fe4dd56f189c7d' },
  4: { raw: 'a570e7e2d2906e0972de06361e4a51e10f60a743a797b51a6a0ec5c00993d33b', content: 'd8d938c9510e00a57839caa7f22e9cc84a50118d3b2c4c7db311a2eda4344b1d' },
};

/**
 * Pure: what to do with an applied migration whose stored checksum is `stored`: nothing (`same`),
 * replace the stored raw-text checksum by the content checksum (`upgrade`), or refuse (`changed`).
 */
export function compareChecksum(version: number, stored: string, file: Pick<MigrationFile, 'checksum'>): 'same' | 'upgrade' | 'changed' {
  if (stored === file.checksum) return 'same';
  const legacy = RAW_TEXT_CHECKSUMS[version];
  return legacy && legacy.raw === stored && legacy.content === file.checksum ? 'upgrade' : 'changed';
}

/** Pure: parses and orders file names; anything not NNN_name.sql is ignored, duplicate versions refused. */
export function orderMigrationFiles(names: readonly string[]): { version: number; name: string; file: string }[] {
  const out: { version: number; name: string; file: string }[] = [];
  const seen = new Map<number, string>();
  for (const file of names) {
    const m = FILE_NAME.exec(file);
    if (!m?.[1] || !m[2]) continue;
    const version = Number(m[1]);
    const prior = seen.get(version);
    if (prior !== undefined) throw new MigrationError(`two migrations share version ${m[1]}: ${prior} and ${file}`);
    seen.set(version, file);
    out.push({ version, name: m[2], file });
  }
  return out.sort((a, b) => a.version - b.version);
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The package's `sql/` directory. The compiled module lives in dist/src/db and the source in
 * src/db, so walk up from here to the first directory that has both package.json and sql/.
 */
export async function defaultMigrationsDir(): Promise<string> {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const candidate = path.join(dir, 'sql');
    if ((await isDir(candidate)) && (await stat(path.join(dir, 'package.json')).then(() => true, () => false))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new MigrationError('cannot find the sql/ directory next to package.json above the hubsink modules');
}

export async function loadMigrations(dir: string): Promise<MigrationFile[]> {
  const files = orderMigrationFiles(await readdir(dir));
  if (files.length === 0) throw new MigrationError(`no NNN_name.sql migrations in ${dir}`);
  return Promise.all(
    files.map(async (f) => {
      const sql = await readFile(path.join(dir, f.file), 'utf8');
      return { ...f, sql, checksum: migrationChecksum(sql) };
    }),
  );
}

/** Pure: the statements the migrator itself runs, for one schema. */
export function migrationStatements(schema: string) {
  const s = ident(schema);
  return {
    lock: { text: 'SELECT pg_advisory_xact_lock($1::bigint)', values: [MIGRATION_LOCK_KEY.toString()] } satisfies Statement,
    createSchema: { text: `CREATE SCHEMA IF NOT EXISTS ${s}`, values: [] } satisfies Statement,
    createTable: {
      text: `CREATE TABLE IF NOT EXISTS ${s}.hubsink_migrations (
  version    int PRIMARY KEY,
  name       text NOT NULL,
  checksum   text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`,
      values: [],
    } satisfies Statement,
    // The schema first: the files create their objects unqualified. No `public`: a role with CREATE
    // there could plant functions the files would call (extensions are named with their schema).
    searchPath: { text: `SET LOCAL search_path = ${s}, pg_catalog`, values: [] } satisfies Statement,
    applied: { text: `SELECT version, name, checksum FROM ${s}.hubsink_migrations ORDER BY version`, values: [] } satisfies Statement,
    record: (m: Pick<MigrationFile, 'version' | 'name' | 'checksum'>): Statement => ({
      text: `INSERT INTO ${s}.hubsink_migrations (version, name, checksum) VALUES ($1, $2, $3)`,
      values: [m.version, m.name, m.checksum],
    }),
    upgradeChecksum: (m: Pick<MigrationFile, 'version' | 'checksum'>): Statement => ({
      text: `UPDATE ${s}.hubsink_migrations SET checksum = $2 WHERE version = $1`,
      values: [m.version, m.checksum],
    }),
  };
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

export async function migrate(pool: pg.Pool, schema: string, opts: MigrateOptions = {}): Promise<{ applied: string[]; createdPartitions: string[] }> {
  const log = opts.log ?? (() => undefined);
  const files = await loadMigrations(opts.dir ?? (await defaultMigrationsDir()));
  const st = migrationStatements(schema);
  const applied: string[] = [];
  for (const m of files) {
    const label = `${String(m.version).padStart(3, '0')}_${m.name}`;
    try {
      const fresh = await inTransaction(pool, async (client) => {
        await client.query(st.lock);
        await client.query(st.createSchema);
        await client.query(st.createTable);
        // Read under the lock: another migrator may have applied this file while we waited.
        const { rows } = await client.query<AppliedRow>(st.applied);
        const done = rows.find((r) => r.version === m.version);
        if (done) {
          const verdict = compareChecksum(m.version, done.checksum, m);
          if (verdict === 'upgrade') {
            await client.query(st.upgradeChecksum(m));
            log(`${label}: stored checksum of schema ${schema} upgraded to the content checksum (comments and layout no longer count)`);
          }
          if (verdict === 'changed') {
            throw new MigrationError(
              `migration ${label} was already applied to schema ${schema} but its file has changed since ` +
                `(checksum ${done.checksum.slice(0, 12)}… in the database, ${m.checksum.slice(0, 12)}… on disk). ` +
                'Applied migrations must never be edited: restore the file and add a new numbered migration instead.',
            );
          }
          return false;
        }
        await client.query(st.searchPath);
        await client.query(m.sql);
        await client.query(st.record(m));
        return true;
      });
      if (fresh) {
        applied.push(label);
        log(`applied ${label} to schema ${schema}`);
      }
    } catch (err) {
      if (err instanceof MigrationError) throw err;
      throw new MigrationError(`migration ${label} failed in schema ${schema}: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
  }
  const last = files[files.length - 1];
  const { rows } = await pool.query<AppliedRow>(st.applied);
  const unknown = rows.filter((r) => !files.some((f) => f.version === r.version));
  if (unknown.length > 0 && last) {
    // A newer hubsink migrated this schema; this one keeps working on what it knows.
    log(`schema ${schema} has migrations newer than this hubsink knows (${unknown.map((r) => r.version).join(', ')}); last known is ${last.version}`);
  }
  if (!opts.partitions) return { applied, createdPartitions: [] };
  const caps = await detectCapabilities(pool);
  const r = await maintainPartitions(pool, schema, { ...opts.partitions, caps, drop: false });
  if (r.created.length > 0) log(`created ${r.created.length} partition(s) of ${schema}.events: ${r.created[0]} … ${r.created[r.created.length - 1]}`);
  return { applied, createdPartitions: r.created };
}
