/**
 * A normalized, deterministic text of the schema the migrations produce, read from the catalog
 * (pg_catalog), not from pg_dump, whose version must match the server's. `sql/schema.sql` holds
 * the committed text; test/integration/schema.test.ts compares a freshly migrated schema with it,
 * so a migration shows up in review as a diff of that file.
 *
 * What it holds, each kind sorted by name: tables (columns in their order, with type, nullability
 * and default; partition key; storage options), constraints, indexes, triggers, sequences,
 * functions, views, enum and domain types, and the extensions the schema's columns use.
 *
 * Normalized so the same text comes out of embedded PostgreSQL 15, Debian's PostgreSQL 15 with hll
 * and a Citus 13 coordinator:
 * - the schema's name is `:schema`;
 * - partitions (the daily `events_pYYYYMMDD` ones, named by date) are left out: a parent's
 *   partitioning and indexes are shown, its children are not;
 * - the rollups' distinct-count sketch columns (src/rollups/definitions.ts, measures of kind
 *   `distinct`) have the type `<sketch>`: `public.hll` when the hll extension could be installed,
 *   `bigint[]` otherwise (src/rollups/sketches.ts). A sketch column of any other type is printed as
 *   it is, so a change of the fallback shows;
 * - objects that belong to an extension are left out (Citus's truncate triggers on distributed and
 *   reference tables), and so are extensions themselves (hll and citus are database-wide, installed
 *   or not by the server's packages), Citus's metadata (pg_dist_*: which tables are distributed or
 *   reference tables; db-migrate.test.ts checks that on Citus) and Citus shards, which a coordinator
 *   that holds shards keeps in the same schema as `<table>_<shard id>`;
 * - owners, grants, statistics and the rows the migrations insert are not schema and are left out.
 */
import type pg from 'pg';
import { LEGACY_ROLLUPS, ROLLUPS, isDistinctMeasure } from '../../src/rollups/definitions.js';

export const SCHEMA_PLACEHOLDER = ':schema';

const SKETCH_COLUMNS = new Set([...ROLLUPS, ...LEGACY_ROLLUPS].flatMap((r) => r.measures.filter(isDistinctMeasure).map((m) => `${r.table}.${m}`)));
const SKETCH_TYPES = new Set(['public.hll', 'hll', 'bigint[]']);


/** Not a member of an extension (pg_depend deptype 'e'). */
const notExtensionMember = (catalog: string, oid: string): string =>
  `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = '${catalog}'::regclass AND d.objid = ${oid} AND d.deptype = 'e')`;

/**
 * Reads with search_path = pg_catalog alone, so every name the catalog functions print is
 * qualified with its schema (then normalized), whatever the pool's search_path.
 */
export async function dumpSchema(pool: pg.Pool, schema: string): Promise<string> {
  const db = await pool.connect();
  try {
    await db.query('BEGIN READ ONLY');
    await db.query('SET LOCAL search_path = pg_catalog');
    return await dumpWith(db, schema);
  } finally {
    await db.query('ROLLBACK').catch(() => undefined);
    db.release();
  }
}

async function dumpWith(db: pg.PoolClient, schema: string): Promise<string> {
  const out: string[] = [];
  const rels = await db.query<{ oid: number; relname: string; relkind: string; reloptions: string[] | null; partkey: string | null }>(
    `SELECT c.oid, c.relname, c.relkind, c.reloptions, CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END AS partkey
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND ${notExtensionMember('pg_class', 'c.oid')}
     ORDER BY c.relname COLLATE "C"`,
    [schema],
  );
  const names = new Set(rels.rows.map((r) => r.relname));
  // A Citus shard is `<table>_<shard id>` beside its table (on a coordinator that holds shards).
  const isShard = (name: string): boolean => {
    const m = /^(.+)_\d+$/.exec(name);
    return m?.[1] !== undefined && names.has(m[1]);
  };
  const tables = rels.rows.filter((r) => !isShard(r.relname));

  for (const t of tables) {
    const cols = await db.query<{ attname: string; type: string; attnotnull: boolean; def: string | null; attidentity: string; attgenerated: string }>(
      `SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
              pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS def, a.attidentity, a.attgenerated
       FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [t.oid],
    );
    const lines = cols.rows.map((c) => {
      const type = SKETCH_COLUMNS.has(`${t.relname}.${c.attname}`) && SKETCH_TYPES.has(c.type) ? '<sketch>' : c.type;
      const def =
        c.attgenerated === 's' ? ` GENERATED ALWAYS AS (${c.def ?? ''}) STORED` : c.attidentity ? ` GENERATED ${c.attidentity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY` : c.def !== null ? ` DEFAULT ${c.def}` : '';
      return `  ${c.attname} ${type}${c.attnotnull ? ' NOT NULL' : ''}${def}`;
    });
    const cons = await db.query<{ conname: string; def: string }>(
      `SELECT conname, pg_catalog.pg_get_constraintdef(oid) AS def FROM pg_catalog.pg_constraint WHERE conrelid = $1 ORDER BY conname COLLATE "C"`,
      [t.oid],
    );
    for (const c of cons.rows) lines.push(`  CONSTRAINT ${c.conname} ${c.def}`);
    out.push(`CREATE TABLE ${schema}.${t.relname} (\n${lines.join(',\n')}\n)${t.partkey ? ` PARTITION BY ${t.partkey}` : ''}${t.reloptions ? ` WITH (${[...t.reloptions].sort().join(', ')})` : ''};`);

    const idx = await db.query<{ def: string }>(
      `SELECT pg_catalog.pg_get_indexdef(i.indexrelid) AS def FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
       WHERE i.indrelid = $1 ORDER BY c.relname COLLATE "C"`,
      [t.oid],
    );
    for (const i of idx.rows) out.push(`${i.def};`);
    const trg = await db.query<{ def: string }>(
      `SELECT pg_catalog.pg_get_triggerdef(t.oid) AS def FROM pg_catalog.pg_trigger t
       WHERE t.tgrelid = $1 AND NOT t.tgisinternal AND ${notExtensionMember('pg_trigger', 't.oid')} AND ${notExtensionMember('pg_proc', 't.tgfoid')}
       ORDER BY t.tgname COLLATE "C"`,
      [t.oid],
    );
    for (const g of trg.rows) out.push(`${g.def};`);
    out.push('');
  }

  const seqs = await db.query<{ relname: string; type: string; seqstart: string; seqincrement: string; seqmin: string; seqmax: string; seqcache: string; seqcycle: boolean; owner: string | null }>(
    `SELECT c.relname, pg_catalog.format_type(s.seqtypid, NULL) AS type, s.seqstart::text, s.seqincrement::text, s.seqmin::text, s.seqmax::text, s.seqcache::text, s.seqcycle,
            (SELECT t.relname || '.' || a.attname FROM pg_catalog.pg_depend d
               JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
               JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')) AS owner
     FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND ${notExtensionMember('pg_class', 'c.oid')}
     ORDER BY c.relname COLLATE "C"`,
    [schema],
  );
  for (const s of seqs.rows) {
    if (isShard(s.relname)) continue;
    out.push(
      `CREATE SEQUENCE ${schema}.${s.relname} AS ${s.type} START ${s.seqstart} INCREMENT ${s.seqincrement} MINVALUE ${s.seqmin} MAXVALUE ${s.seqmax} CACHE ${s.seqcache}${s.seqcycle ? ' CYCLE' : ''}` +
        `${s.owner ? ` OWNED BY ${schema}.${s.owner}` : ''};`,
    );
  }
  if (seqs.rows.length > 0) out.push('');

  const views = await db.query<{ relname: string; relkind: string; def: string }>(
    `SELECT c.relname, c.relkind, pg_catalog.pg_get_viewdef(c.oid) AS def
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relkind IN ('v', 'm') AND ${notExtensionMember('pg_class', 'c.oid')} ORDER BY c.relname COLLATE "C"`,
    [schema],
  );
  for (const v of views.rows) out.push(`CREATE ${v.relkind === 'm' ? 'MATERIALIZED VIEW' : 'VIEW'} ${schema}.${v.relname} AS\n${v.def.trim()}\n`);

  const types = await db.query<{ typname: string; typtype: string; labels: string[] | null; base: string | null }>(
    `SELECT t.typname, t.typtype,
            (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid) AS labels,
            CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END AS base
     FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname = $1 AND t.typtype IN ('e', 'd') AND ${notExtensionMember('pg_type', 't.oid')} ORDER BY t.typname COLLATE "C"`,
    [schema],
  );
  for (const t of types.rows) {
    out.push(t.typtype === 'e' ? `CREATE TYPE ${schema}.${t.typname} AS ENUM (${(t.labels ?? []).map((l) => `'${l}'`).join(', ')});` : `CREATE DOMAIN ${schema}.${t.typname} AS ${t.base ?? ''};`);
  }

  const funcs = await db.query<{ def: string }>(
    `SELECT pg_catalog.pg_get_functiondef(p.oid) AS def
     FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = $1 AND p.prokind IN ('f', 'p') AND ${notExtensionMember('pg_proc', 'p.oid')}
     ORDER BY p.proname COLLATE "C", pg_catalog.pg_get_function_identity_arguments(p.oid) COLLATE "C"`,
    [schema],
  );
  for (const f of funcs.rows) out.push(`${f.def.trim()};\n`);

  return normalize(out.join('\n'), schema);
}

/** Pure: the schema's name (bare or quoted) becomes the placeholder; one trailing newline. */
export function normalize(text: string, schema: string): string {
  const escaped = schema.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return `${text.replace(new RegExp(`"${escaped}"|\\b${escaped}\\b`, 'g'), SCHEMA_PLACEHOLDER).trimEnd()}\n`;
}

export const DUMP_HEADER =
  '-- The schema that the migrations in sql/ produce, normalized (test/integration/schema-dump.ts says how).\n' +
  '-- Generated: do not edit. After changing a migration, refresh it with `npm run schema:dump` and review the diff.\n\n';
