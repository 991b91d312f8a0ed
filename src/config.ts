/**
 * The one place where the environment becomes configuration. Every entry point (Functions app,
 * CLI, standalone runner, local stack) calls `loadConfig` once and passes the result down.
 * Names follow docs/design.md ("Configuration names") so the same app settings work in Azure, under `func start` and standalone.
 */
import { z } from 'zod';
import { BUILTIN_DIMENSION_NAMES } from './dimensions.js';
import { HubsinkError } from './errors.js';

export class ConfigError extends HubsinkError {
  readonly kind = 'config';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** A connection to an Event Hubs namespace: SAS connection string or managed identity. */
export type EventHubsConnection =
  | { kind: 'connectionString'; connectionString: string }
  | { kind: 'identity'; fullyQualifiedNamespace: string; clientId?: string };

export type DatabaseConnection =
  | { kind: 'url'; url: string; entraAuth: boolean }
  | {
      kind: 'params';
      host: string;
      port: number;
      user?: string;
      database?: string;
      password?: string;
      entraAuth: boolean;
      ssl: boolean;
    };

export type StorageConnection =
  | { kind: 'connectionString'; connectionString: string }
  | { kind: 'identity'; accountName?: string; blobServiceUri?: string };

export interface HubsinkConfig {
  /** Name of the app setting that holds the Event Hubs connection (the Functions `connection`). */
  eventHubConnectionSetting: string;
  eventHubs?: EventHubsConnection;
  ingestHub: string;
  deadLetterHub: string;
  consumerGroup: string;
  deadLetterConsumerGroup: string;
  replayConsumerGroup: string;
  storage?: StorageConnection;
  database?: DatabaseConnection;
  schema: string;
  poolMax: number;
  retentionDays: number;
  partitionsAheadDays: number;
  maxBodyBytes: number;
  /** `hubsink import`: how many times its stored size a .gz may expand to (a decompression bomb past it). */
  importMaxGzipRatio: number;
  /**
   * Worker threads of `hubsink import` (HUBSINK_IMPORT_WORKERS); 1, the default, keeps it on one
   * thread. Threads pay where the database is on other machines and the files are long; beside a
   * database on the same cores they took its CPU (docs/bench.md, issue 23, parallel import).
   */
  importWorkers: number;
  /** Upper bound on in-process retrying of transient database failures for one batch. */
  transientRetryMs: number;
  upsertChunkSize: number;
  /** Whether HUBSINK_UPSERT_CHUNK was given: an operator's choice holds on Citus too (see importChunkSize). */
  upsertChunkSet?: boolean;
  /** Chunks of at least this many rows are written by COPY, smaller ones by the upsert statement. */
  copyMinRows: number;
  citusCachedConnsPerWorker: number;
  rollupMaxWindowRows: number;
  rollupRetentionDays: { minute: number; hour: number; day: number };
  /** APPLICATIONINSIGHTS_CONNECTION_STRING: when set, the Function App sends its metrics to Azure Monitor. */
  appInsightsConnectionString?: string;
  /** The metrics API's own pool: its size, a per-statement time limit, and the rows one response may read. */
  metrics: { poolMax: number; statementTimeoutMs: number; maxRows: number };
  /** How producer-controlled dimension values are bounded before they enter the rollups. */
  rollupDimensions: RollupDimensionLimits;
  /** Who may read which storefront through the HTTP functions (README, "Access per storefront"). */
  access: AccessConfig;
  /** Settings that work but are unsafe (e.g. a password sent without TLS); entry points print them. */
  warnings: string[];
}

/**
 * `key` (the default): whoever holds a function key reads every storefront. `entra`: the caller
 * signed in through App Service authentication, and reads the storefronts granted to it.
 */
export type AccessMode = 'key' | 'entra';

export interface AccessConfig {
  mode: AccessMode;
  /**
   * WEBSITE_AUTH_ENABLED, which App Service itself sets (read-only) when its authentication is on.
   * Only then does the platform strip X-MS-CLIENT-PRINCIPAL headers sent by clients and put its own
   * in their place; with it off, such a header may have been written by anyone.
   */
  platformAuthEnabled: boolean;
}

/**
 * Below this many rows a chunk goes through the upsert statement rather than COPY: COPY's extra
 * round trips and connection checkout cost more than its faster inserts win (docs/bench.md).
 */
export const DEFAULT_COPY_MIN_ROWS = 200;

/** The most worker threads `hubsink import` takes (HUBSINK_IMPORT_WORKERS, --workers): each holds its own connections. */
export const MAX_IMPORT_WORKERS = 64;

/**
 * Dimension values (type, country, browser, campaign) come from producers. Rollups keep them for
 * years, so each is cut to `maxLength` characters, and a dimension with an allow-list keeps only
 * the listed values: anything else is stored as `other` (missing values stay '').
 */
export interface RollupDimensionLimits {
  maxLength: number;
  /** Keyed by the dimension's public name (type, country, browser, campaign). */
  allow: Readonly<Record<string, readonly string[]>>;
}

/** The value stored in place of a dimension value outside its allow-list. */
export const OTHER_VALUE = 'other';

/** SQL identifiers we splice into statements (after quoting) must be plain lower-case names. */
export const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
/** Event Hub names: letters, digits, periods, hyphens, underscores; 1-256; start/end alphanumeric. */
const HUB_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,254}[A-Za-z0-9])?$/;
const CONSUMER_GROUP = /^(\$Default|[A-Za-z0-9](?:[A-Za-z0-9._-]{0,48}[A-Za-z0-9])?)$/;

type Env = Record<string, string | undefined>;

function nonEmpty(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

const boolSetting = z
  .string()
  .transform((s) => s.trim().toLowerCase())
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no']))
  .transform((s) => s === 'true' || s === '1' || s === 'yes');

function intSetting(min: number, max: number) {
  return z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
}

/** Dimension names that have an allow-list setting: the built-in ones and any other HUBSINK_ROLLUP_<NAME>_VALUES. */
function allowListNames(env: Env): string[] {
  const names = new Set<string>(BUILTIN_DIMENSION_NAMES);
  for (const key of Object.keys(env)) {
    const m = /^HUBSINK_ROLLUP_([A-Z][A-Z0-9_]{0,30})_VALUES$/.exec(key);
    if (m?.[1]) names.add(m[1].toLowerCase());
  }
  return [...names];
}

export function loadConfig(env: Env = process.env): HubsinkConfig {
  const problems: string[] = [];

  function read<T>(name: string, schema: z.ZodType<T, string>, fallback: T): T {
    const raw = nonEmpty(env, name);
    if (raw === undefined) return fallback;
    const r = schema.safeParse(raw);
    if (r.success) return r.data;
    problems.push(`${name}=${JSON.stringify(raw)}: ${r.error.issues.map((i) => i.message).join('; ')}`);
    return fallback;
  }
  function pattern(name: string, re: RegExp, fallback: string, what: string): string {
    return read(name, z.string().regex(re, what), fallback);
  }

  const eventHubConnectionSetting = pattern(
    'HUBSINK_EVENTHUB_CONNECTION_SETTING',
    /^[A-Za-z_][A-Za-z0-9_]*$/,
    'EventHubConnection',
    'must be an app setting name',
  );
  let eventHubs: EventHubsConnection | undefined;
  const ehcs = nonEmpty(env, eventHubConnectionSetting);
  const ehns = nonEmpty(env, `${eventHubConnectionSetting}__fullyQualifiedNamespace`);
  if (ehcs) {
    if (!/(^|;)\s*Endpoint\s*=\s*sb:\/\//i.test(ehcs)) {
      problems.push(`${eventHubConnectionSetting}: not an Event Hubs connection string (expected "Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...")`);
    } else {
      eventHubs = { kind: 'connectionString', connectionString: ehcs };
    }
  } else if (ehns) {
    if (!/^[A-Za-z0-9.-]+(:\d+)?$/.test(ehns)) {
      problems.push(`${eventHubConnectionSetting}__fullyQualifiedNamespace=${JSON.stringify(ehns)}: expected a host name such as myns.servicebus.windows.net`);
    } else {
      const clientId = nonEmpty(env, `${eventHubConnectionSetting}__clientId`);
      eventHubs = { kind: 'identity', fullyQualifiedNamespace: ehns, ...(clientId ? { clientId } : {}) };
    }
  }

  const ingestHub = pattern('INGEST_EVENTHUB_NAME', HUB_NAME, 'clickstream', 'not a valid Event Hub name');
  const deadLetterHub = pattern('DEADLETTER_EVENTHUB_NAME', HUB_NAME, 'clickstream-deadletter', 'not a valid Event Hub name');
  const cgMsg = 'not a valid consumer group name';
  const consumerGroup = pattern('INGEST_CONSUMER_GROUP', CONSUMER_GROUP, '$Default', cgMsg);
  const deadLetterConsumerGroup = pattern('DEADLETTER_CONSUMER_GROUP', CONSUMER_GROUP, '$Default', cgMsg);
  const replayConsumerGroup = pattern('REPLAY_CONSUMER_GROUP', CONSUMER_GROUP, 'hubsink-replay', cgMsg);
  if (ingestHub === deadLetterHub) problems.push('DEADLETTER_EVENTHUB_NAME must differ from INGEST_EVENTHUB_NAME');

  let storage: StorageConnection | undefined;
  const sa = nonEmpty(env, 'AzureWebJobsStorage');
  if (sa) storage = { kind: 'connectionString', connectionString: sa };
  else {
    const accountName = nonEmpty(env, 'AzureWebJobsStorage__accountName');
    const blobServiceUri = nonEmpty(env, 'AzureWebJobsStorage__blobServiceUri');
    if (accountName || blobServiceUri) storage = { kind: 'identity', ...(accountName ? { accountName } : {}), ...(blobServiceUri ? { blobServiceUri } : {}) };
  }

  const entraAuth = read('PG_ENTRA_AUTH', boolSetting, false);
  const warnings: string[] = [];
  let database: DatabaseConnection | undefined;
  const url = nonEmpty(env, 'DATABASE_URL');
  if (url) {
    const tls = urlTls(url, nonEmpty(env, 'PGSSLMODE'));
    if (!tls) problems.push('DATABASE_URL: expected postgres://user:password@host:port/database');
    else {
      if (entraAuth && !tls.verified) {
        problems.push(
          `DATABASE_URL: PG_ENTRA_AUTH=true sends an Entra ID token as the password, so the connection must use TLS with certificate verification: add sslmode=verify-full (found ${tls.sslmode ? `sslmode=${tls.sslmode}` : 'no sslmode'})`,
        );
      }
      if (!entraAuth && !tls.encrypted && !isLoopback(tls.host) && (tls.password || nonEmpty(env, 'PGPASSWORD'))) {
        warnings.push(`DATABASE_URL: a password goes to ${tls.host} without TLS; add sslmode=verify-full`);
      }
      database = { kind: 'url', url, entraAuth };
    }
  } else if (nonEmpty(env, 'PGHOST')) {
    const host = nonEmpty(env, 'PGHOST') ?? '';
    const user = nonEmpty(env, 'PGUSER');
    const db = nonEmpty(env, 'PGDATABASE');
    const password = nonEmpty(env, 'PGPASSWORD');
    const sslmode = nonEmpty(env, 'PGSSLMODE');
    if (entraAuth && !user) problems.push('PGUSER: required with PG_ENTRA_AUTH=true (the Entra ID role name)');
    if (entraAuth && sslmode !== undefined && !VERIFIED_SSLMODES.includes(sslmode)) {
      problems.push(
        `PGSSLMODE=${JSON.stringify(sslmode)}: PG_ENTRA_AUTH=true sends an Entra ID token as the password, so the connection must use TLS with certificate verification: set PGSSLMODE=verify-full or leave it unset`,
      );
    }
    if (!entraAuth && password && !isLoopback(host) && (sslmode === undefined || !ENCRYPTED_SSLMODES.includes(sslmode))) {
      warnings.push(`PGHOST=${host}: PGPASSWORD goes there without TLS; set PGSSLMODE=verify-full`);
    }
    database = {
      kind: 'params',
      host,
      port: read('PGPORT', intSetting(1, 65535), 5432),
      ...(user ? { user } : {}),
      ...(db ? { database: db } : {}),
      ...(password ? { password } : {}),
      entraAuth,
      // Entra tokens must never cross the network in clear text (poolOptions verifies the certificate).
      ssl: entraAuth || (sslmode !== undefined && sslmode !== 'disable'),
    };
  } else if (entraAuth) {
    problems.push('PG_ENTRA_AUTH=true needs PGHOST and PGUSER (or DATABASE_URL)');
  }

  const schema = pattern('HUBSINK_SCHEMA', IDENTIFIER, 'public', 'must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)');

  const cfg: HubsinkConfig = {
    eventHubConnectionSetting,
    ...(eventHubs ? { eventHubs } : {}),
    ingestHub,
    deadLetterHub,
    consumerGroup,
    deadLetterConsumerGroup,
    replayConsumerGroup,
    ...(storage ? { storage } : {}),
    ...(database ? { database } : {}),
    schema,
    poolMax: read('PGPOOL_MAX', intSetting(1, 1000), 10),
    retentionDays: read('HUBSINK_RETENTION_DAYS', intSetting(1, 36500), 30),
    partitionsAheadDays: read('HUBSINK_PARTITIONS_AHEAD_DAYS', intSetting(1, 365), 3),
    maxBodyBytes: read('HUBSINK_MAX_BODY_BYTES', intSetting(64, 1024 * 1024), 256 * 1024),
    importMaxGzipRatio: read('HUBSINK_IMPORT_MAX_GZIP_RATIO', intSetting(1, 1_000_000), 200),
    importWorkers: read('HUBSINK_IMPORT_WORKERS', intSetting(1, MAX_IMPORT_WORKERS), 1),
    transientRetryMs: read('HUBSINK_TRANSIENT_RETRY_MS', intSetting(0, 600_000), 20_000),
    upsertChunkSize: read('HUBSINK_UPSERT_CHUNK', intSetting(1, 100_000), 1000),
    upsertChunkSet: nonEmpty(env, 'HUBSINK_UPSERT_CHUNK') !== undefined,
    copyMinRows: read('HUBSINK_COPY_MIN_ROWS', intSetting(1, 1_000_000), DEFAULT_COPY_MIN_ROWS),
    citusCachedConnsPerWorker: read('HUBSINK_CITUS_CACHED_CONNS', intSetting(0, 1000), 32),
    rollupMaxWindowRows: read('HUBSINK_ROLLUP_MAX_ROWS', intSetting(1, 100_000_000), 1_000_000),
    rollupRetentionDays: {
      // Live panels read the last 24 h by the minute; older ranges are answered by the hour.
      minute: read('HUBSINK_ROLLUP_MINUTE_RETENTION_DAYS', intSetting(1, 36500), 1),
      hour: read('HUBSINK_ROLLUP_HOUR_RETENTION_DAYS', intSetting(1, 36500), 90),
      day: read('HUBSINK_ROLLUP_DAY_RETENTION_DAYS', intSetting(1, 36500), 3650),
    },
    ...(nonEmpty(env, 'APPLICATIONINSIGHTS_CONNECTION_STRING') ? { appInsightsConnectionString: nonEmpty(env, 'APPLICATIONINSIGHTS_CONNECTION_STRING') ?? '' } : {}),
    metrics: {
      poolMax: read('HUBSINK_METRICS_POOL_MAX', intSetting(1, 100), 2),
      statementTimeoutMs: read('HUBSINK_METRICS_STATEMENT_TIMEOUT_MS', intSetting(100, 600_000), 10_000),
      maxRows: read('HUBSINK_METRICS_MAX_ROWS', intSetting(1000, 10_000_000), 200_000),
    },
    rollupDimensions: {
      maxLength: read('HUBSINK_ROLLUP_VALUE_MAX_LENGTH', intSetting(8, 256), 64),
      // Analyst-defined dimensions are named at run time (hubsink rollup define), so every
      // HUBSINK_ROLLUP_<NAME>_VALUES counts, not only the built-in names.
      allow: Object.fromEntries(
        allowListNames(env).flatMap((name) => {
          const setting = `HUBSINK_ROLLUP_${name.toUpperCase()}_VALUES`;
          const raw = nonEmpty(env, setting);
          if (raw === undefined) return [];
          const values = [...new Set(raw.split(',').map((v) => v.trim()).filter((v) => v !== ''))];
          if (values.length === 0 || values.length > 10_000 || values.some((v) => v.length > 256)) {
            problems.push(`${setting}: expected a comma-separated list of 1 to 10000 values, each at most 256 characters`);
            return [];
          }
          return [[name, values]];
        }),
      ),
    },
    access: {
      mode: read('HUBSINK_ACCESS', z.string().trim().toLowerCase().pipe(z.enum(['key', 'entra'], { message: 'must be key (a function key reads every storefront) or entra (signed-in callers read the storefronts granted to them)' })), 'key'),
      // Set by the platform, not by a person: anything but a true value counts as off.
      platformAuthEnabled: /^(true|1)$/i.test(nonEmpty(env, 'WEBSITE_AUTH_ENABLED') ?? ''),
    },
    warnings,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return cfg;
}

/** sslmode values under which node-postgres verifies the server's certificate chain and name. */
const VERIFIED_SSLMODES: readonly string[] = ['verify-full'];
/** sslmode values under which node-postgres encrypts (it never falls back to clear text). */
const ENCRYPTED_SSLMODES: readonly string[] = ['prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];

/** Pure: a host that never leaves the machine (a Unix socket counts). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return h === '' || h.startsWith('/') || h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Pure: what a postgres:// URL asks of TLS, as node-postgres reads it (the last sslmode wins; a
 * URL without ssl settings falls back to PGSSLMODE). `verified` only for verify-full: libpq's
 * `require` and `verify-ca` do not check the host name (node-postgres in libpq mode follows them),
 * and `prefer` may mean either, so none of them is enough for a token.
 */
export function urlTls(url: string, envSslmode?: string): { host: string; password: boolean; sslmode?: string; encrypted: boolean; verified: boolean } | undefined {
  if (!/^postgres(ql)?:\/\//.test(url)) return undefined;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  const last = (name: string) => u.searchParams.getAll(name).at(-1);
  const host = last('host') ?? decodeURIComponent(u.hostname);
  const ssl = last('ssl');
  const sslmode = last('sslmode') ?? (ssl === undefined ? envSslmode : undefined);
  const verified = sslmode === 'verify-full';
  const encrypted = sslmode !== undefined ? ENCRYPTED_SSLMODES.includes(sslmode) : ssl === 'true' || ssl === '1';
  return { host, password: u.password !== '', ...(sslmode !== undefined ? { sslmode } : {}), encrypted, verified };
}

/** For commands that cannot work without a database: a clear error naming the settings. */
export function requireDatabase(cfg: HubsinkConfig): DatabaseConnection {
  if (!cfg.database) throw new ConfigError(['DATABASE_URL is not set (or set PGHOST, PGUSER, PGDATABASE, PGPASSWORD; PG_ENTRA_AUTH=true for Entra ID)']);
  return cfg.database;
}

export function requireEventHubs(cfg: HubsinkConfig): EventHubsConnection {
  if (!cfg.eventHubs) {
    throw new ConfigError([
      `${cfg.eventHubConnectionSetting} is not set (an Event Hubs connection string, or ${cfg.eventHubConnectionSetting}__fullyQualifiedNamespace for managed identity)`,
    ]);
  }
  return cfg.eventHubs;
}

export function requireStorage(cfg: HubsinkConfig): StorageConnection {
  if (!cfg.storage) throw new ConfigError(['AzureWebJobsStorage is not set (a storage connection string; UseDevelopmentStorage=true for Azurite)']);
  return cfg.storage;
}
