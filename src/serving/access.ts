/**
 * Who is calling, and which storefronts they may read (HUBSINK_ACCESS=entra; README, "Access per
 * storefront"). With `key`, the default, there is no access control here: the Functions host has
 * checked the function key, and a key reads every storefront.
 *
 * In entra mode App Service authentication ("Easy Auth") stands in front of the app. It signs the
 * caller in with Microsoft Entra ID and passes the caller's claims in the X-MS-CLIENT-PRINCIPAL
 * header (base64 JSON). The platform strips that header from client requests, but only while its
 * authentication is on; it says so by setting WEBSITE_AUTH_ENABLED. So the header is read only when
 * that setting is true: otherwise anyone could have written it.
 *
 * The parsing and the decisions are pure; reading the grants is the one I/O, done per request so a
 * revoke takes effect on the next one.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type pg from 'pg';
import { grantedTenants, OBJECT_ID } from '../db/grants.js';
import type { AccessConfig } from '../config.js';
import { ForbiddenError, UnauthenticatedError, UnavailableError } from '../errors.js';
import { isUndefinedTable } from '../pipeline/pgErrors.js';
import { errorResponse, httpStatusOf } from './httpErrors.js';

export const PRINCIPAL_HEADER = 'x-ms-client-principal';

/** The claims of a Microsoft Entra ID sign-in that name the caller and its groups. */
export const OID_CLAIMS: readonly string[] = ['http://schemas.microsoft.com/identity/claims/objectidentifier', 'oid'];
export const GROUPS_CLAIM = 'groups';

export interface Principal {
  /** The user's (or calling app's) object id, lower case; null when the sign-in carried none. */
  userId: string | null;
  /** Object ids of the groups in the token, lower case. */
  groups: string[];
}

/** What a caller may read. */
export type Scope = { all: true } | { all: false; tenants: readonly number[] };

export const EVERY_STOREFRONT: Scope = { all: true };

export type PrincipalResult = { ok: true; principal: Principal } | { ok: false; reason: string };

/**
 * Pure: the caller from the X-MS-CLIENT-PRINCIPAL header, or why there is none. `trusted` is
 * whether the platform's authentication is on (then the header is the platform's own).
 *
 * Only Entra ID sign-ins count (`auth_typ` aad): object ids of another identity provider mean
 * nothing to the grants. Group values that are not object ids (group names, when the app
 * registration emits those) are ignored, as is a groups overage claim: such groups grant nothing.
 */
export function parsePrincipal(header: string | null, trusted: boolean): PrincipalResult {
  if (!trusted) return { ok: false, reason: 'the platform\'s authentication is off (WEBSITE_AUTH_ENABLED is not true), so no caller can be believed' };
  if (header === null || header.trim() === '') return { ok: false, reason: 'no signed-in caller' };
  let body: unknown;
  try {
    if (!/^[A-Za-z0-9+/=_-]+$/.test(header.trim())) throw new Error('not base64');
    body = JSON.parse(Buffer.from(header.trim(), 'base64').toString('utf8'));
  } catch {
    return { ok: false, reason: 'the client principal header is not base64 JSON' };
  }
  if (typeof body !== 'object' || body === null) return { ok: false, reason: 'the client principal header is not a JSON object' };
  const { auth_typ: authType, claims } = body as { auth_typ?: unknown; claims?: unknown };
  if (typeof authType !== 'string' || authType.toLowerCase() !== 'aad') return { ok: false, reason: `only Microsoft Entra ID sign-ins are accepted (auth_typ ${JSON.stringify(authType ?? null)})` };
  if (!Array.isArray(claims)) return { ok: false, reason: 'the client principal has no claims' };
  let userId: string | null = null;
  const groups = new Set<string>();
  for (const c of claims as unknown[]) {
    if (typeof c !== 'object' || c === null) continue;
    const { typ, val } = c as { typ?: unknown; val?: unknown };
    if (typeof typ !== 'string' || typeof val !== 'string' || !OBJECT_ID.test(val)) continue;
    if (OID_CLAIMS.includes(typ)) userId ??= val.toLowerCase();
    else if (typ === GROUPS_CLAIM) groups.add(val.toLowerCase());
  }
  if (userId === null && groups.size === 0) return { ok: false, reason: 'the sign-in carries neither an object id nor a group' };
  return { ok: true, principal: { userId, groups: [...groups].sort() } };
}

/** Pure: the header App Service would send for `p` (the local stack's development principal). */
export function principalHeader(p: Principal): string {
  const claims = [...(p.userId ? [{ typ: OID_CLAIMS[0], val: p.userId }] : []), ...p.groups.map((g) => ({ typ: GROUPS_CLAIM, val: g }))];
  return Buffer.from(JSON.stringify({ auth_typ: 'aad', claims, name_typ: 'name', role_typ: 'roles' }), 'utf8').toString('base64');
}

/**
 * Pure: `hubsink local --principal`: a comma-separated list of object ids, each a user (bare, or
 * `user:ID`) or a group (`group:ID`); at most one user.
 */
export function parseDevPrincipal(text: string): { ok: true; principal: Principal } | { ok: false; error: string } {
  let userId: string | null = null;
  const groups = new Set<string>();
  const parts = text.split(',').map((p) => p.trim());
  for (const part of parts) {
    const m = /^(?:(user|group):)?(.*)$/i.exec(part);
    const kind = (m?.[1] ?? 'user').toLowerCase();
    const id = m?.[2] ?? '';
    if (!OBJECT_ID.test(id)) return { ok: false, error: `${JSON.stringify(part)} is not an object id (a GUID such as 00000000-0000-0000-0000-000000000000, optionally after user: or group:)` };
    if (kind === 'group') groups.add(id.toLowerCase());
    else if (userId !== null && userId !== id.toLowerCase()) return { ok: false, error: 'give at most one user object id (the others as group:ID)' };
    else userId = id.toLowerCase();
  }
  return { ok: true, principal: { userId, groups: [...groups].sort() } };
}

/** Pure: the grants read for a caller as a scope. */
export function scopeOf(grants: { all: boolean; tenants: readonly number[] }): Scope {
  return grants.all ? EVERY_STOREFRONT : { all: false, tenants: [...grants.tenants] };
}

/** Pure: may a caller of `scope` read storefront `tenantId`? */
export function mayRead(scope: Scope, tenantId: number): boolean {
  return scope.all || scope.tenants.includes(tenantId);
}

/** Pure: null when the scope covers every storefront, else the granted ids (to filter lists with). */
export function tenantFilter(scope: Scope): readonly number[] | null {
  return scope.all ? null : scope.tenants;
}

/**
 * The metrics of one storefront: 403 unless granted. Storefront 0 is the all-storefronts view
 * (`/api/tenants/all/metrics`, rows summed over every storefront): only the all-storefronts grant.
 */
export function requireTenant(scope: Scope, tenantId: number): void {
  if (tenantId === 0) return requireAllTenants(scope);
  if (!mayRead(scope, tenantId)) throw new ForbiddenError(`storefront ${tenantId} is not granted to you (an operator grants it with \`hubsink access grant\`)`);
}

/** Views across every storefront (sums over all of them) need the all-storefronts grant. */
export function requireAllTenants(scope: Scope): void {
  if (!scope.all) throw new ForbiddenError('this view sums every storefront: it needs the all-storefronts grant (`hubsink access grant --all-tenants`)');
}

/** How a handler learns the caller's scope in entra mode; absent (key mode): every storefront. */
export interface AccessControl {
  /** Whether X-MS-CLIENT-PRINCIPAL is the platform's (its authentication is on). */
  trustPrincipalHeader: boolean;
  grantsOf(principal: Principal): Promise<{ all: boolean; tenants: readonly number[] }>;
}

/** Grants read from the database on each call (a small indexed lookup, so a revoke counts at once). */
export function databaseAccess(pool: pg.Pool, schema: string, trustPrincipalHeader: boolean): AccessControl {
  return {
    trustPrincipalHeader,
    async grantsOf(p) {
      try {
        return await grantedTenants(pool, schema, p.userId, p.groups);
      } catch (err) {
        if (isUndefinedTable(err)) {
          throw new UnavailableError(`the access_grants table is missing in schema ${schema}: run \`hubsink migrate\``, { cause: err });
        }
        throw err;
      }
    },
  };
}

/**
 * The caller's scope, or throws: 401 (UnauthenticatedError) without a principal to believe, 403
 * (ForbiddenError) for a principal granted nothing. `access` undefined: key mode, every storefront.
 */
export async function callerScope(request: Pick<HttpRequest, 'headers'>, access: AccessControl | undefined): Promise<Scope> {
  if (!access) return EVERY_STOREFRONT;
  const who = parsePrincipal(request.headers.get(PRINCIPAL_HEADER), access.trustPrincipalHeader);
  if (!who.ok) throw new UnauthenticatedError(`sign in with Microsoft Entra ID: ${who.reason}`);
  const scope = scopeOf(await access.grantsOf(who.principal));
  if (!scope.all && scope.tenants.length === 0) throw new ForbiddenError('no storefront is granted to you (an operator grants them with `hubsink access grant`)');
  return scope;
}

/**
 * The response to a caller refused (401, 403) or to grants that could not be read (503, 500): said
 * to the client as errorResponse says it, and logged, since a run of refusals is worth seeing.
 */
export function refusal(context: Pick<InvocationContext, 'warn' | 'error'>, name: string, err: unknown): HttpResponseInit {
  const status = httpStatusOf(err);
  if (status === 500) context.error(`${name}: reading the access grants failed:`, err);
  else context.warn(`${name}: ${status}: ${err instanceof Error ? err.message : String(err)}`);
  return errorResponse(err);
}

/** The access control `config` asks for: none in key mode, the grants table in entra mode. */
export function accessControl(config: AccessConfig, pool: pg.Pool, schema: string): AccessControl | undefined {
  return config.mode === 'entra' ? databaseAccess(pool, schema, config.platformAuthEnabled) : undefined;
}

/**
 * The Functions host's own check for the HTTP functions. In key mode, a function key. In entra mode
 * none: the callers are analysts signed in through App Service authentication, who hold no key, and
 * the handlers check their grants instead (and refuse every request while that authentication is off).
 */
export function httpAuthLevel(config: AccessConfig): 'function' | 'anonymous' {
  return config.mode === 'entra' ? 'anonymous' : 'function';
}

type HttpHandler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

/**
 * `handler` behind the entra-mode check for endpoints that hold no storefront's data (the rollup
 * catalog): a caller not signed in gets 401, one granted nothing 403. `getAccess` resolving to
 * undefined (key mode) lets every request through.
 */
export function signedIn(handler: HttpHandler, getAccess: () => Promise<AccessControl | undefined>, name: string): HttpHandler {
  return async (request, context) => {
    try {
      await callerScope(request, await getAccess());
    } catch (err) {
      return refusal(context, name, err);
    }
    return handler(request, context);
  };
}
