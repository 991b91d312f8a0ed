/**
 * Database checks of `hubsink doctor`: what the server is, what hubsink's schema holds, what the
 * app's role may do there. The probe reads facts (SQL, parameterized, identifiers escaped); the
 * check functions turn facts into ✓/✗ with the fix, and are pure.
 */
import { isLoopback, urlTls, type DatabaseConnection } from '../config.js';
import type { Capabilities } from '../db/capabilities.js';
import type { GrantSummary } from '../db/grants.js';
import { ident } from '../db/ident.js';
import { compareChecksum, type MigrationFile } from '../db/migrate.js';
import { partitionName, partitionStatements, partitionWindow, startOfUtcDay } from '../db/partitions.js';
import type { Queryable } from '../db/queryable.js';
import { isConnectOrSignInState, isSignInRefused, isSqlStateCode, SQLSTATE } from '../pipeline/pgErrors.js';
import { fail, ok, warn, type CheckResult } from './report.js';

const S = 'Database' as const;

// ---------------------------------------------------------------------------------------------
// Facts

export interface ServerFacts {
  version: string;
  versionNum: number;
  user: string;
  database: string;
  /** The session is encrypted (pg_stat_ssl). */
  ssl: boolean;
}

export interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
}

export interface RightsFacts {
  user: string;
  schemaExists: boolean;
  schemaUsage: boolean;
  schemaCreate: boolean;
  /** Tables and sequences of the schema (partitions left out) with the rights the role lacks. */
  objects: { name: string; kind: 'table' | 'sequence'; missing: string[] }[];
  /** The role owns `events` (or is a member of its owner): creating and dropping partitions needs it. */
  ownsEvents: boolean | null;
}

// ---------------------------------------------------------------------------------------------
// Probe (reads)

export async function serverFacts(db: Queryable): Promise<ServerFacts> {
  const { rows } = await db.query<{ version: string; num: number; usr: string; db: string; ssl: boolean | null }>({
    text: `SELECT current_setting('server_version') AS version, current_setting('server_version_num')::int AS num,
  current_user AS usr, current_database() AS db,
  (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl`,
    values: [],
  });
  const r = rows[0];
  if (!r) throw new Error('the server returned no row for its version');
  return { version: r.version, versionNum: r.num, user: r.usr, database: r.db, ssl: r.ssl === true };
}

/** Active Citus worker nodes (only asked when Citus is present). */
export async function citusWorkers(db: Queryable): Promise<{ name: string; port: number }[]> {
  const { rows } = await db.query<{ node_name: string; node_port: number }>({ text: 'SELECT node_name, node_port FROM citus_get_active_worker_nodes() ORDER BY 1, 2', values: [] });
  return rows.map((r) => ({ name: r.node_name, port: r.node_port }));
}

/** Applied migrations, or null when the schema has no migrations table. */
export async function appliedMigrations(db: Queryable, schema: string): Promise<AppliedMigration[] | null> {
  const { rows: t } = await db.query<{ t: string | null }>({ text: 'SELECT to_regclass($1::text)::text AS t', values: [`${ident(schema)}.hubsink_migrations`] });
  if (!t[0]?.t) return null;
  const { rows } = await db.query<AppliedMigration>({ text: `SELECT version, name, checksum FROM ${ident(schema)}.hubsink_migrations ORDER BY version`, values: [] });
  return rows;
}

/** Names of the daily partitions of `<schema>.events`, or null when there is no such table. */
export async function eventPartitions(db: Queryable, schema: string): Promise<string[] | null> {
  const { rows: t } = await db.query<{ t: string | null }>({ text: 'SELECT to_regclass($1::text)::text AS t', values: [`${ident(schema)}.events`] });
  if (!t[0]?.t) return null;
  const { rows } = await db.query<{ name: string }>(partitionStatements(schema).list);
  return rows.map((r) => r.name);
}

/**
 * Rights the app's statements need, per object (see requiredRights), of `role` (default: the role
 * signed in): an operator checks the app's role by name. Undefined when that role does not exist.
 */
export async function rightsFacts(db: Queryable, schema: string, role?: string): Promise<RightsFacts | undefined> {
  const { rows: s } = await db.query<{ usr: string | null; ex: boolean; usage: boolean | null; crt: boolean | null }>({
    text: `SELECT r.rolname AS usr, EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS ex,
  CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) THEN has_schema_privilege(r.oid, $1, 'USAGE') END AS usage,
  CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) THEN has_schema_privilege(r.oid, $1, 'CREATE') END AS crt
FROM pg_roles r WHERE r.rolname = coalesce($2::text, current_user)`,
    values: [schema, role ?? null],
  });
  const head = s[0];
  if (!head?.usr) return undefined;
  if (!head.ex) return { user: head.usr, schemaExists: false, schemaUsage: false, schemaCreate: false, objects: [], ownsEvents: null };
  const { rows } = await db.query<{ name: string; kind: string; sel: boolean; ins: boolean; upd: boolean; del: boolean; seq_usage: boolean; owner: boolean }>({
    text: `SELECT c.relname AS name, c.relkind::text AS kind,
  c.relkind <> 'S' AND has_table_privilege($2::name, c.oid, 'SELECT') AS sel,
  c.relkind <> 'S' AND has_table_privilege($2::name, c.oid, 'INSERT') AS ins,
  c.relkind <> 'S' AND has_table_privilege($2::name, c.oid, 'UPDATE') AS upd,
  c.relkind <> 'S' AND has_table_privilege($2::name, c.oid, 'DELETE') AS del,
  c.relkind = 'S' AND has_sequence_privilege($2::name, c.oid, 'USAGE') AS seq_usage,
  pg_has_role($2::name, c.relowner, 'USAGE') AS owner
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'S') AND NOT c.relispartition
ORDER BY c.relname`,
    values: [schema, head.usr],
  });
  const objects = rows.map((r) => {
    const kind: 'table' | 'sequence' = r.kind === 'S' ? 'sequence' : 'table';
    const have: Record<string, boolean> = { SELECT: r.sel, INSERT: r.ins, UPDATE: r.upd, DELETE: r.del, USAGE: r.seq_usage };
    return { name: r.name, kind, missing: requiredRights(r.name, kind).filter((p) => !have[p]) };
  });
  const events = rows.find((r) => r.name === 'events');
  return { user: head.usr, schemaExists: true, schemaUsage: head.usage === true, schemaCreate: head.crt === true, objects, ownsEvents: events ? events.owner : null };
}

// ---------------------------------------------------------------------------------------------
// Checks (pure)

/**
 * Pure: the rights the app's statements need on one of its objects: events are inserted and read
 * (partitions are dropped, never rows deleted), the migrations table only read; every other table
 * (dead letters, rollups and their state, tenants, imports) is also updated and deleted from; the
 * grants of HUBSINK_ACCESS=entra only read.
 * Sequences feed the tables' defaults.
 */
export function requiredRights(name: string, kind: 'table' | 'sequence'): string[] {
  if (kind === 'sequence') return ['USAGE'];
  if (name === 'events') return ['SELECT', 'INSERT'];
  // The app only reads grants; `hubsink access` (an operator) writes them, so an app cannot grant itself.
  if (name === 'hubsink_migrations' || name === 'access_grants') return ['SELECT'];
  return ['SELECT', 'INSERT', 'UPDATE', 'DELETE'];
}

/** The settings that name the database, for messages. */
export function databaseSettings(db: DatabaseConnection): string {
  return db.kind === 'url' ? 'DATABASE_URL' : 'PGHOST/PGPORT/PGDATABASE';
}

function where(db: DatabaseConnection): string {
  if (db.kind === 'params') return `${db.host}:${db.port}`;
  try {
    const u = new URL(db.url);
    return `${u.hostname}:${u.port || '5432'}`;
  } catch {
    return 'the server of DATABASE_URL';
  }
}

/** Pure: a connection failure, explained with the setting that fixes it. */
export function describeConnectError(err: unknown, db: DatabaseConnection): { detail: string; fix: string } {
  const e = err as { code?: string; message?: string };
  const msg = e.message ?? String(err);
  const at = where(db);
  const settings = databaseSettings(db);
  const auth = db.entraAuth
    ? 'PGUSER must be the Entra ID role of the identity signing in (the app\'s name for the template\'s flexible server), and that identity must be one of the server\'s Entra administrators or a role created with pgaadauth_create_principal'
    : db.kind === 'url'
      ? 'correct the user and password in DATABASE_URL'
      : 'set PGUSER and PGPASSWORD to a role of the server';
  const tls = /certificate|self[- ]signed|CERT|altnames|SSL|TLS/i;
  if (e.code === 'ECONNREFUSED') return { detail: `connection refused at ${at}`, fix: `check ${settings}, that the server runs, and that its firewall admits this machine` };
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return { detail: `host not found (${at})`, fix: `correct the host in ${settings}` };
  if (e.code === 'ETIMEDOUT' || /timeout/i.test(msg)) return { detail: `no answer from ${at} (${msg})`, fix: `check ${settings} and the server's firewall rules (add this machine's address)` };
  if (isSignInRefused(e.code)) return { detail: msg, fix: auth };
  if (e.code === SQLSTATE.invalidCatalogName) return { detail: msg, fix: db.kind === 'url' ? 'correct the database name in DATABASE_URL' : 'set PGDATABASE to an existing database' };
  if (tls.test(msg) || /^(DEPTH_ZERO|SELF_SIGNED|UNABLE_TO|ERR_TLS|CERT_)/.test(e.code ?? '')) {
    return {
      detail: `TLS: ${msg}`,
      fix: db.kind === 'url' ? 'the server\'s certificate must verify: add sslrootcert=<CA file> to DATABASE_URL, or correct its host name' : 'the server\'s certificate must verify: set PGSSLROOTCERT to its CA, or correct PGHOST to the certificate\'s name; PGSSLMODE=disable only on loopback',
    };
  }
  return { detail: msg || String(err), fix: `check ${settings}` };
}

/** Pure: host and port a connection setting names (port 5432 when a URL gives none). */
function hostPort(db: DatabaseConnection): { host: string; port: number } | undefined {
  if (db.kind === 'params') return { host: db.host, port: db.port };
  try {
    const u = new URL(db.url);
    return { host: u.hostname, port: Number(u.port || '5432') };
  } catch {
    return undefined;
  }
}

/**
 * Pure: when `err` is the database failing to connect or sign in (a socket error at its host and
 * port, inside an AggregateError too, or SQLSTATE class 08, 28 or 3D), the message that names the
 * database and its setting; otherwise undefined. Commands that meet such an error without context
 * would otherwise explain it as an Event Hubs or storage failure.
 */
export function explainDatabaseFailure(err: unknown, db: DatabaseConnection): string | undefined {
  const target = hostPort(db);
  const seen = new Set<unknown>();
  const visit = (e: unknown): unknown => {
    if (!e || typeof e !== 'object' || seen.has(e)) return undefined;
    seen.add(e);
    const x = e as { code?: unknown; port?: unknown; hostname?: unknown; errors?: unknown; cause?: unknown };
    if (typeof x.code === 'string') {
      if (isSqlStateCode(x.code)) {
        if (isConnectOrSignInState(x.code)) return e;
      } else if (target && (x.port === target.port || x.hostname === target.host)) {
        return e;
      }
    }
    for (const inner of [...(Array.isArray(x.errors) ? (x.errors as unknown[]) : []), x.cause]) {
      const found = visit(inner);
      if (found) return found;
    }
    return undefined;
  };
  const found = visit(err);
  if (!found) return undefined;
  const d = describeConnectError(found, db);
  return `cannot use the database: ${d.detail}; ${d.fix}`;
}

/** Pure: reachability, TLS as configured, the version. */
export function checkServer(f: ServerFacts, db: DatabaseConnection, tlsExpected: boolean): CheckResult {
  const title = 'reachable';
  const what = `PostgreSQL ${f.version} at ${where(db)}, database ${f.database} as ${f.user}`;
  if (f.versionNum < 140000) return fail(S, 'database.reachable', title, `${what}: version 14 or newer is needed`, 'use PostgreSQL 14 or newer');
  if (tlsExpected && !f.ssl) return fail(S, 'database.reachable', title, `${what}, but the session is not encrypted`, `require TLS: sslmode=verify-full in DATABASE_URL, or PGSSLMODE=verify-full`);
  const tls = f.ssl ? (db.entraAuth || tlsVerified(db) ? 'TLS, certificate verified' : 'TLS, certificate not verified') : 'no TLS';
  if (!f.ssl && !loopback(db)) return warn(S, 'database.reachable', title, `${what}, ${tls}`, 'set sslmode=verify-full in DATABASE_URL, or PGSSLMODE=verify-full');
  return ok(S, 'database.reachable', title, `${what}, ${tls}`);
}

function tlsVerified(db: DatabaseConnection): boolean {
  return db.kind === 'params' ? db.ssl : urlTls(db.url)?.verified === true;
}

function loopback(db: DatabaseConnection): boolean {
  return isLoopback(db.kind === 'params' ? db.host : (urlTls(db.url)?.host ?? ''));
}

/** Pure: Citus with its workers, and hll. */
export function checkExtensions(caps: Capabilities, workers: { name: string; port: number }[] | undefined): CheckResult[] {
  const out: CheckResult[] = [];
  if (caps.citus) {
    const w = workers ?? [];
    out.push(
      ok(S, 'database.citus', 'Citus', `${caps.citusVersion ?? ''} with ${w.length} active worker(s)${w.length === 0 ? ' (shards on the coordinator)' : `: ${w.map((x) => `${x.name}:${x.port}`).join(', ')}`}`),
    );
  } else out.push(ok(S, 'database.citus', 'Citus', 'not installed (plain PostgreSQL; tables are not distributed)'));
  if (caps.hllInstalled) out.push(ok(S, 'database.hll', 'hll', 'installed (rollups keep HyperLogLog sketches)'));
  else if (caps.hllAvailable) out.push(warn(S, 'database.hll', 'hll', 'available but not created in this database', 'run `hubsink migrate` (it creates the extension)'));
  else out.push(ok(S, 'database.hll', 'hll', 'not available (rollups use the exact bigint[] fallback for distinct counts)'));
  return out;
}

/** Pure: every migration file applied, with the checksum it has on disk. */
export function checkMigrations(applied: AppliedMigration[] | null, files: readonly MigrationFile[], schema: string): CheckResult {
  const title = `schema ${schema} migrated`;
  if (applied === null) return fail(S, 'database.migrations', title, `no ${schema}.hubsink_migrations table: the schema was never migrated`, `run \`hubsink migrate\` (HUBSINK_SCHEMA=${schema})`);
  const missing = files.filter((f) => !applied.some((a) => a.version === f.version));
  const changed = files.filter((f) => {
    const a = applied.find((x) => x.version === f.version);
    return a !== undefined && compareChecksum(f.version, a.checksum, f) === 'changed';
  });
  const label = (f: Pick<MigrationFile, 'version' | 'name'>): string => `${String(f.version).padStart(3, '0')}_${f.name}`;
  if (changed.length > 0) {
    return fail(
      S,
      'database.migrations',
      title,
      `checksum differs for ${changed.map(label).join(', ')}: the schema was migrated by another version of these files`,
      'deploy the hubsink version that migrated this schema, or restore the files; applied migrations are never edited',
    );
  }
  if (missing.length > 0) return fail(S, 'database.migrations', title, `${missing.length} migration(s) not applied: ${missing.map(label).join(', ')}`, `run \`hubsink migrate\` (HUBSINK_SCHEMA=${schema})`);
  const newer = applied.filter((a) => !files.some((f) => f.version === a.version));
  const last = files.at(-1);
  if (newer.length > 0) return warn(S, 'database.migrations', title, `migrated by a newer hubsink (versions ${newer.map((a) => a.version).join(', ')} unknown here)`, 'upgrade this hubsink');
  return ok(S, 'database.migrations', title, `${applied.length} migration(s), checksums equal${last ? ` (last ${label(last)})` : ''}`);
}

/**
 * Pure: with HUBSINK_ACCESS=entra the HTTP functions answer only callers with a grant: no table is
 * a failure (every request fails), no grant a warning (every signed-in caller gets 403, which is
 * right for a deployment nobody was given yet, and wrong otherwise).
 */
export function checkAccessGrants(summary: GrantSummary | null, schema: string): CheckResult {
  const title = 'access grants (HUBSINK_ACCESS=entra)';
  const grantFix = 'grant a group (or user) by its Entra object id: `hubsink access grant --group <object id> --tenant <storefront id>`, or `--all-tenants` for a central team';
  if (summary === null) return fail(S, 'database.access', title, `no table ${schema}.access_grants, so every request fails`, `run \`hubsink migrate\` (HUBSINK_SCHEMA=${schema}), then ${grantFix}`);
  if (summary.grants === 0) return warn(S, 'database.access', title, 'no grant yet: every signed-in caller is refused (403)', grantFix);
  const parts = [
    `${summary.grants} grant(s) to ${summary.principals} principal(s)`,
    ...(summary.storefronts > 0 ? [`${summary.storefronts} storefront(s) granted`] : []),
    ...(summary.allTenants > 0 ? [`${summary.allTenants} with every storefront`] : []),
  ];
  return ok(S, 'database.access', title, `${parts.join(', ')} (\`hubsink access list\`)`);
}

/**
 * Pure: the daily partitions of the window ingest accepts, [now − retention, now + ahead]
 * (partitionWindow): every day of it must have its partition, or events of that day are
 * created on demand at the cost of a DDL lock in the ingest path.
 */
export function checkPartitions(names: string[] | null, now: Date, aheadDays: number, retentionDays: number, schema: string): CheckResult {
  const title = 'partitions cover the window';
  if (names === null) return fail(S, 'database.partitions', title, `no table ${schema}.events`, `run \`hubsink migrate\` (HUBSINK_SCHEMA=${schema})`);
  const w = partitionWindow(now, aheadDays, retentionDays);
  const have = new Set(names);
  const missing: string[] = [];
  for (let d = startOfUtcDay(w.from); d.getTime() <= w.to.getTime(); d = new Date(d.getTime() + 86_400_000)) {
    const n = partitionName(d);
    if (!have.has(n)) missing.push(n);
  }
  const range = `${w.from.toISOString().slice(0, 10)} to ${w.to.toISOString().slice(0, 10)}`;
  if (missing.length > 0) {
    const list = missing.length > 4 ? `${missing.slice(0, 2).join(', ')} … ${missing.slice(-2).join(', ')}` : missing.join(', ');
    return fail(
      S,
      'database.partitions',
      title,
      `${missing.length} day(s) of ${range} have no partition: ${list}`,
      'run `hubsink partitions` (the app\'s `partitions` timer does it daily; check it runs)',
    );
  }
  return ok(S, 'database.partitions', title, `${range} (retention ${retentionDays} d, ahead ${aheadDays} d), ${names.length} partition(s)`);
}

/** Pure: what the role may do, and the GRANT that gives what it lacks. */
export function checkRights(f: RightsFacts, schema: string): CheckResult {
  const title = `rights of role ${f.user}`;
  // Shown, never run: role names (an Entra ID one such as hubsink-ab12) need not be plain identifiers.
  const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`;
  const s = quote(schema);
  const role = quote(f.user);
  if (!f.schemaExists) return fail(S, 'database.rights', title, `schema ${schema} does not exist`, `run \`hubsink migrate\` (HUBSINK_SCHEMA=${schema})`);
  const lacks: string[] = [];
  const grants: string[] = [];
  if (!f.schemaUsage || !f.schemaCreate) {
    const p = [...(f.schemaUsage ? [] : ['USAGE']), ...(f.schemaCreate ? [] : ['CREATE'])];
    lacks.push(`${p.join(', ')} on schema ${schema}`);
    grants.push(`GRANT ${p.join(', ')} ON SCHEMA ${s} TO ${role};`);
  }
  for (const o of f.objects) {
    if (o.missing.length === 0) continue;
    lacks.push(`${o.missing.join(', ')} on ${o.name}`);
    grants.push(`GRANT ${o.missing.join(', ')} ON ${o.kind === 'sequence' ? 'SEQUENCE ' : ''}${s}.${quote(o.name)} TO ${role};`);
  }
  if (f.ownsEvents === false) {
    lacks.push('ownership of events (creating and dropping daily partitions needs it)');
    grants.push(`ALTER TABLE ${s}.${quote('events')} OWNER TO ${role}; (or GRANT the owning role TO ${role})`);
  }
  if (lacks.length > 0) return fail(S, 'database.rights', title, `lacks ${lacks.join('; ')}`, `as the schema's owner: ${grants.join(' ')}`);
  return ok(S, 'database.rights', title, `USAGE and CREATE on ${schema}, the rights ingest, dead letters and rollups need on its ${f.objects.length} tables and sequences`);
}

/**
 * Pure: how far each rollup is behind. The `rollup` timer runs every minute; beyond
 * `staleSeconds` something keeps it from running or finishing.
 */
export function checkFreshness(rows: { rollup: string; seconds: number }[], staleSeconds: number): CheckResult {
  const title = 'rollups fresh';
  const worst = rows.reduce((m, r) => Math.max(m, r.seconds), 0);
  const detail = rows.map((r) => `${r.rollup} ${formatAge(r.seconds)}`).join(', ');
  if (worst > staleSeconds) {
    return fail(S, 'database.freshness', title, `oldest event not rolled up: ${detail}`, 'check that the `rollup` function runs (its logs in Application Insights), or run `hubsink rollup`; `hubsink rollup --status` shows the lag');
  }
  return ok(S, 'database.freshness', title, rows.length === 0 ? 'no rollups' : `behind by ${detail}`);
}

export function formatAge(seconds: number): string {
  if (seconds < 1) return '0 s';
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}
