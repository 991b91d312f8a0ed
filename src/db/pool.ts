import { emitWarning } from 'node:process';
import pg from 'pg';
import type { DatabaseConnection, HubsinkConfig } from '../config.js';
import { requireDatabase } from '../config.js';
import { onNewConnection, pinSearchPath, statementTimeoutSql } from './session.js';

const ENTRA_SCOPE = 'https://ossrdbms-aad.database.windows.net/.default';

export type TokenProvider = () => Promise<string>;

/** Lazily builds a DefaultAzureCredential; it caches and refreshes tokens itself. */
export async function defaultEntraTokenProvider(): Promise<TokenProvider> {
  const { DefaultAzureCredential } = await import('@azure/identity');
  const credential = new DefaultAzureCredential();
  return async () => {
    const token = await credential.getToken(ENTRA_SCOPE);
    if (!token) throw new Error('Entra ID returned no token for Azure Database for PostgreSQL');
    return token.token;
  };
}

/** Pure: the pg pool options for a database connection setting. */
export function poolOptions(db: DatabaseConnection, max: number, tokenProvider?: TokenProvider): pg.PoolConfig {
  const base: pg.PoolConfig = { max, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 10_000, application_name: 'hubsink' };
  const opts: pg.PoolConfig =
    db.kind === 'url'
      ? { ...base, connectionString: db.url }
      : {
          ...base,
          host: db.host,
          port: db.port,
          ...(db.user ? { user: db.user } : {}),
          ...(db.database ? { database: db.database } : {}),
          ...(db.password ? { password: db.password } : {}),
          ...(db.ssl ? { ssl: { rejectUnauthorized: true } } : {}),
        };
  // pg calls a password function once per new physical connection, so tokens stay fresh.
  if (db.entraAuth) {
    if (!tokenProvider) throw new Error('PG_ENTRA_AUTH=true needs a token provider');
    opts.password = tokenProvider;
  }
  return opts;
}

const warned = new Set<string>();

/** Prints each of the configuration's warnings once per process, however many pools it opens. */
function warnOnce(cfg: HubsinkConfig): void {
  for (const w of cfg.warnings) {
    if (warned.has(w)) continue;
    warned.add(w);
    emitWarning(w, { code: 'HUBSINK_INSECURE_SETTING' });
  }
}

async function newPool(cfg: HubsinkConfig, max: number, tokenProvider?: TokenProvider): Promise<pg.Pool> {
  const db = requireDatabase(cfg);
  warnOnce(cfg);
  const tp = db.entraAuth ? (tokenProvider ?? (await defaultEntraTokenProvider())) : undefined;
  const pool = new pg.Pool(poolOptions(db, max, tp));
  // An idle client's error (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  // pg-pool drops its own listener while a client is checked out: a connection lost between two
  // queries (PostgreSQL stopped or restarted) would then be an unhandled 'error' event that kills
  // the process. The query that uses the client next fails and is retried as any other.
  pool.on('connect', (client) => client.on('error', () => undefined));
  // Before anything else runs on a connection, so no statement sees a schema another role can write.
  pinSearchPath(pool, cfg.schema);
  return pool;
}

/** The pool of ingest, rollups, dead letters and the CLI. */
export function createPool(cfg: HubsinkConfig, tokenProvider?: TokenProvider): Promise<pg.Pool> {
  return newPool(cfg, cfg.poolMax, tokenProvider);
}

/**
 * The metrics API's own small pool, with a statement_timeout on every connection: a burst of
 * heavy dashboard requests queues here instead of taking the connections ingest needs, and no
 * single request holds a connection (or a server backend) longer than the timeout.
 */
export async function createServingPool(cfg: HubsinkConfig, tokenProvider?: TokenProvider): Promise<pg.Pool> {
  const pool = await newPool(cfg, cfg.metrics.poolMax, tokenProvider);
  onNewConnection(pool, statementTimeoutSql(cfg.metrics.statementTimeoutMs));
  return pool;
}
