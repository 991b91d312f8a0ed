/**
 * The access_grants table (sql/006_access.sql): which Microsoft Entra principal (a group or a user,
 * by object id) may read which storefront, or all of them. Statements here; what a set of grants
 * allows is decided in src/serving/access.ts.
 */
import { ident, qualified } from './ident.js';
import type { Queryable } from './queryable.js';
import type { Statement } from './statement.js';

export type PrincipalKind = 'group' | 'user';

/** tenant_id 0 in the table: every storefront (storefront ids are positive). */
export const ALL_TENANTS_ID = 0;

export interface Grant {
  kind: PrincipalKind;
  /** Object id, lower case. */
  principalId: string;
  /** null: every storefront. */
  tenantId: number | null;
  note: string | null;
  grantedAt: Date;
}

/** An Entra object id: a GUID in its usual 8-4-4-4-12 hex form. */
export const OBJECT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface GrantRow {
  principal_kind: PrincipalKind;
  principal_id: string;
  tenant_id: string;
  note: string | null;
  granted_at: Date;
}

function toGrant(r: GrantRow): Grant {
  const t = Number(r.tenant_id);
  return { kind: r.principal_kind, principalId: r.principal_id, tenantId: t === ALL_TENANTS_ID ? null : t, note: r.note, grantedAt: r.granted_at };
}

const COLUMNS = 'principal_kind, principal_id::text AS principal_id, tenant_id::text AS tenant_id, note, granted_at';

/** The storefront ids (0: all) granted to a user or any of its groups. */
export function grantedTenantsSql(schema: string, userId: string | null, groupIds: readonly string[]): Statement {
  return {
    text:
      `SELECT DISTINCT tenant_id::text AS tenant_id FROM ${qualified(schema, 'access_grants')} ` +
      `WHERE (principal_kind = 'user' AND principal_id = $1::uuid) OR (principal_kind = 'group' AND principal_id = ANY($2::uuid[]))`,
    values: [userId, [...groupIds]],
  };
}

export async function grantedTenants(db: Queryable, schema: string, userId: string | null, groupIds: readonly string[]): Promise<{ all: boolean; tenants: number[] }> {
  const r = await db.query<{ tenant_id: string }>(grantedTenantsSql(schema, userId, groupIds));
  const ids = r.rows.map((x) => Number(x.tenant_id));
  return { all: ids.includes(ALL_TENANTS_ID), tenants: ids.filter((t) => t !== ALL_TENANTS_ID).sort((a, b) => a - b) };
}

/** Adds grants; those already there are left as they are. Returns the ones added. */
export async function addGrants(db: Queryable, schema: string, kind: PrincipalKind, principalId: string, tenantIds: readonly (number | null)[], note: string | null): Promise<Grant[]> {
  const ids = tenantIds.map((t) => t ?? ALL_TENANTS_ID);
  const r = await db.query<GrantRow>({
    text:
      `INSERT INTO ${qualified(schema, 'access_grants')} (principal_kind, principal_id, tenant_id, note) ` +
      `SELECT $1, $2::uuid, t, $4 FROM unnest($3::bigint[]) AS t ` +
      `ON CONFLICT (principal_kind, principal_id, tenant_id) DO NOTHING RETURNING ${COLUMNS}`,
    values: [kind, principalId, ids, note],
  });
  return r.rows.map(toGrant);
}

/** Removes grants; returns the ones that were there. */
export async function removeGrants(db: Queryable, schema: string, kind: PrincipalKind, principalId: string, tenantIds: readonly (number | null)[]): Promise<Grant[]> {
  const ids = tenantIds.map((t) => t ?? ALL_TENANTS_ID);
  const r = await db.query<GrantRow>({
    text: `DELETE FROM ${qualified(schema, 'access_grants')} WHERE principal_kind = $1 AND principal_id = $2::uuid AND tenant_id = ANY($3::bigint[]) RETURNING ${COLUMNS}`,
    values: [kind, principalId, ids],
  });
  return r.rows.map(toGrant);
}

export interface GrantFilter {
  principalId?: string;
  /** Grants that let someone read this storefront: its own and the all-storefronts ones. */
  tenantId?: number;
}

export async function listGrants(db: Queryable, schema: string, filter: GrantFilter = {}): Promise<Grant[]> {
  const r = await db.query<GrantRow>({
    text:
      `SELECT ${COLUMNS} FROM ${qualified(schema, 'access_grants')} ` +
      `WHERE ($1::uuid IS NULL OR principal_id = $1::uuid) AND ($2::bigint IS NULL OR tenant_id IN ($2::bigint, 0)) ` +
      `ORDER BY principal_kind, principal_id, tenant_id`,
    values: [filter.principalId ?? null, filter.tenantId ?? null],
  });
  return r.rows.map(toGrant);
}

/** Of `ids`, those not registered in tenants (no event from them yet). */
export async function unknownTenants(db: Queryable, schema: string, ids: readonly number[]): Promise<number[]> {
  if (ids.length === 0) return [];
  const r = await db.query<{ t: string }>({
    text: `SELECT t::text AS t FROM unnest($1::bigint[]) AS t WHERE NOT EXISTS (SELECT 1 FROM ${qualified(schema, 'tenants')} x WHERE x.tenant_id = t) ORDER BY t`,
    values: [[...ids]],
  });
  return r.rows.map((x) => Number(x.t));
}

export interface GrantSummary {
  grants: number;
  /** Principals holding the all-storefronts grant. */
  allTenants: number;
  principals: number;
  /** Distinct storefronts granted one by one. */
  storefronts: number;
}

/** How many grants there are (`hubsink doctor`), or null when the schema has no access_grants table. */
export async function grantSummary(db: Queryable, schema: string): Promise<GrantSummary | null> {
  const { rows: t } = await db.query<{ t: string | null }>({ text: 'SELECT to_regclass($1::text)::text AS t', values: [`${ident(schema)}.access_grants`] });
  if (!t[0]?.t) return null;
  const { rows } = await db.query<{ grants: string; all_tenants: string; principals: string; storefronts: string }>({
    text:
      `SELECT count(*)::text AS grants, count(*) FILTER (WHERE tenant_id = $1)::text AS all_tenants, ` +
      `count(DISTINCT (principal_kind, principal_id))::text AS principals, count(DISTINCT tenant_id) FILTER (WHERE tenant_id <> $1)::text AS storefronts ` +
      `FROM ${qualified(schema, 'access_grants')}`,
    values: [ALL_TENANTS_ID],
  });
  const r = rows[0];
  return { grants: Number(r?.grants ?? 0), allTenants: Number(r?.all_tenants ?? 0), principals: Number(r?.principals ?? 0), storefronts: Number(r?.storefronts ?? 0) };
}
