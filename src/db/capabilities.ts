/**
 * What the connected server offers. Backend differences are decided from this data in one place
 * instead of probing the server again wherever they matter.
 */
import type { Queryable } from './queryable.js';
import type { Statement } from './statement.js';

export interface Capabilities {
  citus: boolean;
  citusVersion?: string;
  /** The hll extension can be created (its files are installed on the server). */
  hllAvailable: boolean;
  /** The hll extension is created in this database. */
  hllInstalled: boolean;
  serverVersionNum: number;
}

export function capabilitiesSql(): Statement {
  return {
    text: `SELECT current_setting('server_version_num')::int AS server_version_num,
  (SELECT extversion FROM pg_extension WHERE extname = 'citus') AS citus_version,
  EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hll') AS hll_available,
  EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hll') AS hll_installed`,
    values: [],
  };
}

interface Row {
  server_version_num: number;
  citus_version: string | null;
  hll_available: boolean;
  hll_installed: boolean;
}

/** Pure: the row becomes the capabilities. */
export function capabilitiesFromRow(row: Row): Capabilities {
  return {
    citus: row.citus_version !== null,
    ...(row.citus_version !== null ? { citusVersion: row.citus_version } : {}),
    hllAvailable: row.hll_available,
    hllInstalled: row.hll_installed,
    serverVersionNum: row.server_version_num,
  };
}

/**
 * Given a pool, the probe's connection is closed afterwards rather than returned: the session
 * settings chosen from the answer (configureSession) apply to new connections only, and none
 * should stay in the pool without them.
 */
export async function detectCapabilities(pool: Queryable): Promise<Capabilities> {
  const client = 'release' in pool ? pool : await pool.connect();
  let rows: Row[];
  try {
    ({ rows } = await client.query<Row>(capabilitiesSql()));
  } finally {
    if (client !== pool) client.release(true);
  }
  const row = rows[0];
  if (!row) throw new Error('capability query returned no row');
  return capabilitiesFromRow(row);
}
