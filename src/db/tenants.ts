/**
 * Registers storefronts as their first events arrive. events has no foreign key to tenants (an
 * unknown storefront must never be refused), so ingest inserts unseen ids here instead. On Citus,
 * tenants is a reference table, so every insert is a 2PC across all nodes: the in-memory cache
 * keeps steady-state batches from paying that.
 */
import { ident } from './ident.js';
import type { Queryable } from './queryable.js';
import type { Statement } from './statement.js';

export function ensureTenantsSql(schema: string, tenantIds: readonly number[]): Statement {
  return { text: `INSERT INTO ${ident(schema)}.tenants (tenant_id) SELECT unnest($1::bigint[]) ON CONFLICT (tenant_id) DO NOTHING`, values: [[...tenantIds]] };
}

export class TenantRegistry {
  /** Insertion-ordered, so the oldest entries are evicted first. Keyed by schema and id. */
  private readonly known = new Set<string>();

  constructor(private readonly maxCached = 100_000) {
    if (!Number.isSafeInteger(maxCached) || maxCached < 1) throw new RangeError('maxCached must be a positive integer');
  }

  get size(): number {
    return this.known.size;
  }

  /** Ids of this batch that are not known to exist, de-duplicated and sorted. */
  unseen(schema: string, tenantIds: readonly number[]): number[] {
    const ids = new Set<number>();
    for (const id of tenantIds) if (!this.known.has(`${schema}:${id}`)) ids.add(id);
    // Sorted so concurrent writers take the key locks in the same order and cannot deadlock.
    return [...ids].sort((a, b) => a - b);
  }

  async ensure(client: Queryable, schema: string, tenantIds: readonly number[]): Promise<void> {
    const ids = this.unseen(schema, tenantIds);
    if (ids.length === 0) return;
    await client.query(ensureTenantsSql(schema, ids));
    // Remembered only after the insert succeeded: a failed one must be retried next time.
    for (const id of ids) this.remember(`${schema}:${id}`);
  }

  private remember(key: string): void {
    this.known.add(key);
    while (this.known.size > this.maxCached) {
      const oldest = this.known.values().next();
      if (oldest.done) break;
      this.known.delete(oldest.value);
    }
  }
}
