/**
 * `hubsink access grant|revoke|list`: which Microsoft Entra groups and users may read which
 * storefronts when the app runs with HUBSINK_ACCESS=entra (README, "Access per storefront"). The
 * app reads the grants on every request, so a change counts from the next request on. Data goes to
 * stdout (lines, a table, or JSON with --json); warnings to stderr.
 */
import type { Command } from 'commander';
import { loadConfig, type DatabaseConnection } from '../config.js';
import { addGrants, listGrants, OBJECT_ID, removeGrants, unknownTenants, type Grant, type PrincipalKind } from '../db/grants.js';
import { createPool } from '../db/pool.js';
import { inTransaction } from '../db/queryable.js';
import { describeConnectError } from '../doctor/database.js';
import { RefusedError, UnavailableError } from '../errors.js';
import { isConnectOrSignInState, isSqlStateCode, isUndefinedTable } from '../pipeline/pgErrors.js';
import { formatTable } from '../operator/format.js';
import { escapeControls } from '../operator/terminal.js';
import { schemaOption } from './db.js';
import { UsageError } from './program.js';

interface PrincipalOpts {
  group?: string;
  user?: string;
}

interface ChangeOpts extends PrincipalOpts {
  tenant?: string;
  allTenants?: boolean;
  note?: string;
  json?: boolean;
  schema?: string;
}

interface ListOpts extends PrincipalOpts {
  tenant?: string;
  json?: boolean;
  schema?: string;
}

const ID_HINT = 'an Entra object id is a GUID such as 3f2b8c1e-5d4a-4f6b-9c7d-1a2b3c4d5e6f (the group\'s or user\'s "Object ID" in the Entra admin center)';

/** Pure: the principal a command names: exactly one of --group and --user, a well-formed object id. */
export function principalOption(opts: PrincipalOpts, required: boolean): { kind: PrincipalKind; id: string } | null {
  if (opts.group !== undefined && opts.user !== undefined) throw new UsageError('give one of --group and --user, not both');
  const kind: PrincipalKind | null = opts.group !== undefined ? 'group' : opts.user !== undefined ? 'user' : null;
  if (kind === null) {
    if (required) throw new UsageError('name whom the grant is for: --group <object-id> or --user <object-id>');
    return null;
  }
  const raw = (kind === 'group' ? opts.group : opts.user) ?? '';
  if (!OBJECT_ID.test(raw)) throw new UsageError(`--${kind} ${JSON.stringify(escapeControls(raw))}: not an object id; ${ID_HINT}`);
  return { kind, id: raw.toLowerCase() };
}

/** Pure: --tenant as storefront ids: a comma-separated list of positive whole numbers. */
export function parseTenantList(raw: string): number[] {
  const ids: number[] = [];
  for (const part of raw.split(',').map((p) => p.trim())) {
    if (/^-?0+$/.test(part)) throw new UsageError(`--tenant ${JSON.stringify(raw)}: 0 is not a storefront id; to grant every storefront use --all-tenants`);
    if (!/^[1-9][0-9]{0,15}$/.test(part) || !Number.isSafeInteger(Number(part))) {
      throw new UsageError(`--tenant ${JSON.stringify(escapeControls(raw))}: ${JSON.stringify(escapeControls(part))} is not a storefront id (a positive whole number; several: 7,8,9)`);
    }
    if (!ids.includes(Number(part))) ids.push(Number(part));
  }
  return ids;
}

/** Pure: what a grant or revoke covers: the storefronts of --tenant, or every one (null). */
export function scopeOption(opts: Pick<ChangeOpts, 'tenant' | 'allTenants'>): (number | null)[] {
  if (opts.tenant !== undefined && opts.allTenants) throw new UsageError('give --tenant or --all-tenants, not both');
  if (opts.allTenants) return [null];
  if (opts.tenant === undefined) throw new UsageError('name the storefronts: --tenant <id>[,<id>...] or --all-tenants');
  return parseTenantList(opts.tenant);
}

const scopeText = (t: number | null): string => (t === null ? 'every storefront' : `storefront ${t}`);

/** Pure: one line per grant, as `grant` and `revoke` print them. */
export function grantLine(verb: string, kind: PrincipalKind, id: string, tenantId: number | null): string {
  return `${verb} ${kind} ${id}: ${scopeText(tenantId)}`;
}

/** Pure: the human form of `list`. */
export function formatGrants(grants: readonly Grant[]): string {
  return formatTable(
    ['kind', 'object id', 'storefront', 'granted at', 'note'],
    grants.map((g) => [g.kind, g.principalId, g.tenantId === null ? 'all' : String(g.tenantId), g.grantedAt.toISOString(), escapeControls(g.note ?? '')]),
  );
}

function jsonGrant(g: Grant): Record<string, unknown> {
  return { kind: g.kind, principalId: g.principalId, tenantId: g.tenantId, allTenants: g.tenantId === null, note: g.note, grantedAt: g.grantedAt.toISOString() };
}

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/**
 * The database's errors, named with what fixes them: a schema not migrated to the grants table (the
 * command that sets it up), or a server that cannot be reached or refuses the sign-in (the
 * settings). Without this a refused connection reached the CLI's generic explanation, which took
 * a bare ECONNREFUSED for Event Hubs.
 */
function databaseError(err: unknown, schema: string, db: DatabaseConnection | undefined): unknown {
  const code = (err as { code?: unknown }).code;
  if (isUndefinedTable(err)) return new UnavailableError(`schema ${schema} has no access_grants table: run \`hubsink migrate\` first`, { cause: err });
  // A node error code (ECONNREFUSED, ENOTFOUND…), or SQLSTATE classes 08 (connection), 28 (sign-in), 3D (no such database).
  if (db && typeof code === 'string' && (!isSqlStateCode(code) || isConnectOrSignInState(code))) {
    const d = describeConnectError(err, db);
    return new UnavailableError(`cannot use the database: ${d.detail}; ${d.fix}`, { cause: err });
  }
  return err;
}

async function withPool<T>(schema: string, fn: (pool: Awaited<ReturnType<typeof createPool>>) => Promise<T>): Promise<T> {
  const cfg = loadConfig();
  const pool = await createPool(cfg);
  try {
    return await fn(pool);
  } catch (err) {
    throw databaseError(err, schema, cfg.database);
  } finally {
    await pool.end();
  }
}

export function register(program: Command): void {
  const access = program
    .command('access')
    .description('manage which Entra groups and users may read which storefronts (HUBSINK_ACCESS=entra)')
    .addHelpText(
      'after',
      '\nThe app reads the grants on every request: a grant or revoke counts from the next request, without a restart.\n' +
        'With HUBSINK_ACCESS=key (the default) grants are kept but not used: a function key reads every storefront.\n\n' +
        'Examples:\n' +
        '  hubsink access grant --group 3f2b8c1e-5d4a-4f6b-9c7d-1a2b3c4d5e6f --tenant 7,8 --note "Berlin analysts"\n' +
        '  hubsink access grant --group 0b7e0a52-8d0c-4b55-a0c1-6c3d0a9e4f21 --all-tenants --note "central marketing"\n' +
        '  hubsink access revoke --group 3f2b8c1e-5d4a-4f6b-9c7d-1a2b3c4d5e6f --tenant 8\n' +
        '  hubsink access list --tenant 7',
    );

  access
    .command('grant')
    .description('let a group or user read storefronts (already granted ones are left as they are)')
    .option('--group <object-id>', 'an Entra group, by object id')
    .option('--user <object-id>', 'an Entra user (or app), by object id')
    .option('--tenant <ids>', 'storefront ids, comma-separated (positive whole numbers)')
    .option('--all-tenants', 'every storefront, present and future (the central team); also needed for views that sum every storefront')
    .option('--note <text>', 'who this is, for `access list` (at most 200 characters)')
    .option('--json', 'print {"granted", "alreadyGranted"} as JSON')
    .option('--schema <name>', 'schema holding the grants (default: HUBSINK_SCHEMA, else public)')
    .action(async (opts: ChangeOpts) => {
      const who = principalOption(opts, true);
      const tenants = scopeOption(opts);
      if (!who) return;
      const note = opts.note ?? null;
      if (note !== null && (note.length > 200 || /[\p{Cc}]/u.test(note))) throw new UsageError('--note: at most 200 characters, without control characters');
      const schema = schemaOption(opts.schema, loadConfig().schema);
      await withPool(schema, async (pool) => {
        const added = await addGrants(pool, schema, who.kind, who.id, tenants, note);
        const addedIds = new Set(added.map((g) => g.tenantId));
        const already = tenants.filter((t) => !addedIds.has(t));
        // A grant may come before the storefront's first event; worth a word, not a refusal.
        const unknown = await unknownTenants(pool, schema, tenants.filter((t): t is number => t !== null));
        for (const t of unknown) process.stderr.write(`hubsink: note: storefront ${t} has sent no event yet (not in ${schema}.tenants); granted all the same\n`);
        if (opts.json) {
          out(JSON.stringify({ granted: added.map(jsonGrant), alreadyGranted: already.map((t) => ({ kind: who.kind, principalId: who.id, tenantId: t, allTenants: t === null })) }));
          return;
        }
        const lines = [...added.map((g) => grantLine('granted', who.kind, who.id, g.tenantId)), ...already.map((t) => grantLine('already granted', who.kind, who.id, t))];
        out(lines.join('\n'));
      });
    });

  access
    .command('revoke')
    .description('take storefronts away from a group or user; all or nothing: a grant that is not there changes nothing and fails')
    .option('--group <object-id>', 'an Entra group, by object id')
    .option('--user <object-id>', 'an Entra user (or app), by object id')
    .option('--tenant <ids>', 'storefront ids, comma-separated')
    .option('--all-tenants', 'the every-storefront grant (storefronts granted one by one stay granted)')
    .option('--json', 'print {"revoked"} as JSON')
    .option('--schema <name>', 'schema holding the grants (default: HUBSINK_SCHEMA, else public)')
    .action(async (opts: ChangeOpts) => {
      const who = principalOption(opts, true);
      const tenants = scopeOption(opts);
      if (!who) return;
      const schema = schemaOption(opts.schema, loadConfig().schema);
      await withPool(schema, async (pool) => {
        const removed = await inTransaction(pool, async (client) => {
          const gone = await removeGrants(client, schema, who.kind, who.id, tenants);
          const goneIds = new Set(gone.map((g) => g.tenantId));
          const missing = tenants.filter((t) => !goneIds.has(t));
          if (missing.length > 0) {
            // Thrown inside the transaction: it rolls back, so a half-right command revokes nothing.
            throw new RefusedError(
              `${who.kind} ${who.id} holds no grant of ${missing.map(scopeText).join(', ')}: nothing was revoked ` +
                `(\`hubsink access list --${who.kind} ${who.id}\` shows what it holds)`,
            );
          }
          return gone;
        });
        if (opts.json) out(JSON.stringify({ revoked: removed.map(jsonGrant) }));
        else out(removed.map((g) => grantLine('revoked', who.kind, who.id, g.tenantId)).join('\n'));
      });
    });

  access
    .command('list')
    .description('show the grants: whom, which storefront ("all": every one), since when, and the note')
    .option('--group <object-id>', 'only this group\'s grants')
    .option('--user <object-id>', 'only this user\'s grants')
    .option('--tenant <id>', 'only the grants that let someone read this storefront (its own and the every-storefront ones)')
    .option('--json', 'print a JSON array')
    .option('--schema <name>', 'schema holding the grants (default: HUBSINK_SCHEMA, else public)')
    .action(async (opts: ListOpts) => {
      const who = principalOption(opts, false);
      let tenantId: number | undefined;
      if (opts.tenant !== undefined) {
        const ids = parseTenantList(opts.tenant);
        if (ids.length !== 1) throw new UsageError('--tenant: give one storefront id to list by');
        tenantId = ids[0];
      }
      const schema = schemaOption(opts.schema, loadConfig().schema);
      await withPool(schema, async (pool) => {
        const grants = await listGrants(pool, schema, { ...(who ? { principalId: who.id } : {}), ...(tenantId !== undefined ? { tenantId } : {}) });
        const mine = who ? grants.filter((g) => g.kind === who.kind) : grants;
        if (opts.json) out(JSON.stringify(mine.map(jsonGrant)));
        else if (mine.length === 0) process.stderr.write('no grants match\n');
        else out(formatGrants(mine));
      });
    });
}
