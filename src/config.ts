/**
 * The one place where the environment becomes configuration. Every entry point (Functions app,
 * CLI, standalone runner, local stack) calls `loadConfig` once and passes the result down.
 * Names follow DESIGN.md so the same app settings work in Azure, under `func start` and standalone.
 */
import { z } from 'zod';

export class ConfigError extends Error {
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
  /** Upper bound on in-process retrying of transient database failures for one batch. */
  transientRetryMs: number;
  upsertChunkSize: number;
  citusCachedConnsPerWorker: number;
  rollupMaxWindowRows: number;
  rollupRetentionDays: { minute: number; hour: number; day: number };
  /** APPLICATIONINSIGHTS_CONNECTION_STRING: when set, the Function App sends its metrics to Azure Monitor. */
  appInsightsConnectionString?: string;
}

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
  let database: DatabaseConnection | undefined;
  const url = nonEmpty(env, 'DATABASE_URL');
  if (url) {
    if (!/^postgres(ql)?:\/\//.test(url)) problems.push('DATABASE_URL: expected postgres://user:password@host:port/database');
    else database = { kind: 'url', url, entraAuth };
  } else if (nonEmpty(env, 'PGHOST')) {
    const host = nonEmpty(env, 'PGHOST') ?? '';
    const user = nonEmpty(env, 'PGUSER');
    const db = nonEmpty(env, 'PGDATABASE');
    const password = nonEmpty(env, 'PGPASSWORD');
    const sslmode = nonEmpty(env, 'PGSSLMODE');
    if (entraAuth && !user) problems.push('PGUSER: required with PG_ENTRA_AUTH=true (the Entra ID role name)');
    database = {
      kind: 'params',
      host,
      port: read('PGPORT', intSetting(1, 65535), 5432),
      ...(user ? { user } : {}),
      ...(db ? { database: db } : {}),
      ...(password ? { password } : {}),
      entraAuth,
      // Entra tokens must never cross the network in clear text.
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
    transientRetryMs: read('HUBSINK_TRANSIENT_RETRY_MS', intSetting(0, 600_000), 20_000),
    upsertChunkSize: read('HUBSINK_UPSERT_CHUNK', intSetting(1, 100_000), 1000),
    citusCachedConnsPerWorker: read('HUBSINK_CITUS_CACHED_CONNS', intSetting(0, 1000), 32),
    rollupMaxWindowRows: read('HUBSINK_ROLLUP_MAX_ROWS', intSetting(1, 100_000_000), 1_000_000),
    rollupRetentionDays: {
      minute: read('HUBSINK_ROLLUP_MINUTE_RETENTION_DAYS', intSetting(1, 36500), 7),
      hour: read('HUBSINK_ROLLUP_HOUR_RETENTION_DAYS', intSetting(1, 36500), 90),
      day: read('HUBSINK_ROLLUP_DAY_RETENTION_DAYS', intSetting(1, 36500), 3650),
    },
    ...(nonEmpty(env, 'APPLICATIONINSIGHTS_CONNECTION_STRING') ? { appInsightsConnectionString: nonEmpty(env, 'APPLICATIONINSIGHTS_CONNECTION_STRING') ?? '' } : {}),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return cfg;
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
