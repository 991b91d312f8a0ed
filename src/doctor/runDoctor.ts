/**
 * `hubsink doctor`: is this deployment ready? Reads the app's configuration and checks, in order,
 * the database, Event Hubs and storage, each check a ✓ or a ✗ with its fix. A check that needs one
 * that failed (everything after an unreachable server) is reported as not run. The clients, the
 * pool, the clock and the migration files are injected, so the same code runs against Azure, the
 * local stack, and the tests' broken pieces.
 */
import type { EventHubConsumerClient, EventHubProducerClient } from '@azure/event-hubs';
import type { ContainerClient } from '@azure/storage-blob';
import type pg from 'pg';
import { urlTls, type HubsinkConfig } from '../config.js';
import { detectCapabilities } from '../db/capabilities.js';
import { grantSummary } from '../db/grants.js';
import type { MigrationFile } from '../db/migrate.js';
import { partitionStates, readCheckpoints, type CheckpointScope } from '../hubs/checkpoints.js';
import { rollupFreshness } from '../rollups/freshness.js';
import {
  appliedMigrations,
  checkAccessGrants,
  checkExtensions,
  checkFreshness,
  checkMigrations,
  checkPartitions,
  checkRights,
  checkServer,
  citusWorkers,
  databaseSettings,
  describeConnectError,
  eventPartitions,
  rightsFacts,
  serverFacts,
} from './database.js';
import { checkCheckpoints, checkContainer, checkHub, checkListen, checkSend, hubPartitions, openReceiver, openSender, storageSetting } from './hubs.js';
import { fail, ok, skipped, warn, type CheckResult } from './report.js';

export interface DoctorDeps {
  cfg: HubsinkConfig;
  now: () => Date;
  /** The role whose rights are checked (the app's), instead of the one signed in. */
  role?: string;
  /** Check ids not to run (reported as not run). */
  skip?: ReadonlySet<string>;
  /** A pool of the app's settings (one connection is enough). */
  openPool: () => Promise<pg.Pool>;
  consumer: (hub: string, group: string) => Promise<EventHubConsumerClient>;
  producer: (hub: string) => Promise<EventHubProducerClient>;
  container: (name: string) => Promise<ContainerClient>;
  migrations: () => Promise<MigrationFile[]>;
  /** The checkpoint container (the Functions host's unless told otherwise). */
  checkpointContainer: string;
  /** Hang guard for each probe. */
  waitMs?: number;
  /** A rollup further behind than this fails. */
  staleRollupSeconds?: number;
}

/** Resolves with the probe's value, or rejects after `ms` (the probes have timeouts of their own; this guards against a hang). */
async function guarded<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${Math.round(ms / 1000)} s`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function configurationCheck(cfg: HubsinkConfig): CheckResult[] {
  const eh = cfg.eventHubs ? (cfg.eventHubs.kind === 'identity' ? `Event Hubs ${cfg.eventHubs.fullyQualifiedNamespace} (identity)` : 'Event Hubs by connection string') : 'no Event Hubs';
  const st = cfg.storage ? (cfg.storage.kind === 'identity' ? `storage ${cfg.storage.accountName ?? cfg.storage.blobServiceUri ?? ''} (identity)` : 'storage by connection string') : 'no storage';
  const db = cfg.database ? `database by ${databaseSettings(cfg.database)}${cfg.database.entraAuth ? ' (Entra ID)' : ''}` : 'no database';
  const out = [ok('Configuration', 'configuration', 'settings parse', `${eh}; ${st}; ${db}; schema ${cfg.schema}; hubs ${cfg.ingestHub} and ${cfg.deadLetterHub}`)];
  for (const w of cfg.warnings) out.push(warn('Configuration', 'configuration.warning', 'unsafe setting', w, 'see the warning; sslmode=verify-full or PGSSLMODE=verify-full'));
  if (cfg.access.mode === 'entra') out.push(accessModeCheck(cfg.access.platformAuthEnabled));
  return out;
}

/**
 * Pure: entra mode trusts the caller's identity only where the platform's authentication is on,
 * which App Service says by setting WEBSITE_AUTH_ENABLED itself. Run outside Azure, doctor reads the
 * deployer's settings, where that setting is absent: so it says what must hold in Azure.
 */
export function accessModeCheck(platformAuthEnabled: boolean): CheckResult {
  const title = 'access per storefront (HUBSINK_ACCESS=entra)';
  if (platformAuthEnabled) return ok('Configuration', 'configuration.access', title, 'WEBSITE_AUTH_ENABLED is true: App Service authentication signs callers in, and their grants decide');
  return warn(
    'Configuration',
    'configuration.access',
    title,
    'WEBSITE_AUTH_ENABLED is not true in these settings. In Azure it must be true (the platform sets it when App Service authentication is on), or every request is refused with 401; outside Azure doctor cannot see it',
    'turn on App Service authentication with Microsoft Entra ID on the Function App (infra/azuredeploy.json does with accessMode=entra; check with `az webapp auth show`)',
  );
}

export async function runDoctor(deps: DoctorDeps): Promise<CheckResult[]> {
  const out: CheckResult[] = [...configurationCheck(deps.cfg)];
  out.push(...(await databaseChecks(deps)));
  const eh = await eventHubsChecks(deps);
  out.push(...eh.results);
  out.push(...(await storageChecks(deps, eh.hubsOk)));
  const skip = deps.skip ?? new Set<string>();
  return out.map((r) => (skip.has(r.id) && r.status !== 'skip' ? skipped(r.section, r.id, r.title, 'skipped (--skip)') : r));
}

async function databaseChecks(deps: DoctorDeps): Promise<CheckResult[]> {
  const { cfg } = deps;
  const ms = deps.waitMs ?? 30_000;
  const S = 'Database' as const;
  const later = (why: string): CheckResult[] => [
    skipped(S, 'database.citus', 'Citus', why),
    skipped(S, 'database.hll', 'hll', why),
    skipped(S, 'database.migrations', `schema ${cfg.schema} migrated`, why),
    skipped(S, 'database.partitions', 'partitions cover the window', why),
    skipped(S, 'database.rights', 'rights of the role', why),
    skipped(S, 'database.freshness', 'rollups fresh', why),
    ...(cfg.access.mode === 'entra' ? [skipped(S, 'database.access', 'access grants (HUBSINK_ACCESS=entra)', why)] : []),
  ];
  if (!cfg.database) {
    return [fail(S, 'database.reachable', 'reachable', 'no database is configured', 'set DATABASE_URL, or PGHOST, PGUSER, PGDATABASE (PG_ENTRA_AUTH=true for Entra ID)'), ...later('no database')];
  }
  const db = cfg.database;
  let pool: pg.Pool | undefined;
  const out: CheckResult[] = [];
  try {
    pool = await deps.openPool();
    const p = pool;
    let facts;
    try {
      facts = await guarded('the database', ms, serverFacts(p));
    } catch (err) {
      const d = describeConnectError(err, db);
      return [fail(S, 'database.reachable', 'reachable', d.detail, d.fix), ...later('the database is unreachable')];
    }
    const tlsExpected = db.entraAuth || (db.kind === 'params' ? db.ssl : urlTls(db.url)?.encrypted === true);
    out.push(checkServer(facts, db, tlsExpected));
    try {
      const caps = await guarded('capabilities', ms, detectCapabilities(p));
      const workers = caps.citus ? await guarded('Citus workers', ms, citusWorkers(p)) : undefined;
      out.push(...checkExtensions(caps, workers));
    } catch (err) {
      out.push(fail(S, 'database.citus', 'Citus and hll', errorText(err), `check the role's access to pg_extension (${databaseSettings(db)})`));
    }
    const step = async (id: string, title: string, fn: () => Promise<CheckResult>, fix: string): Promise<void> => {
      try {
        out.push(await guarded(title, ms, fn()));
      } catch (err) {
        out.push(fail(S, id, title, errorText(err), fix));
      }
    };
    const migrateFix = `run \`hubsink migrate\` (HUBSINK_SCHEMA=${cfg.schema})`;
    await step('database.migrations', `schema ${cfg.schema} migrated`, async () => checkMigrations(await appliedMigrations(p, cfg.schema), await deps.migrations(), cfg.schema), migrateFix);
    await step('database.partitions', 'partitions cover the window', async () => checkPartitions(await eventPartitions(p, cfg.schema), deps.now(), cfg.partitionsAheadDays, cfg.retentionDays, cfg.schema), migrateFix);
    await step(
      'database.rights',
      'rights of the role',
      async () => {
        const f = await rightsFacts(p, cfg.schema, deps.role);
        if (f) return checkRights(f, cfg.schema);
        return fail(S, 'database.rights', `rights of role ${deps.role ?? ''}`, 'no such role on the server', 'name the app\'s role with --role (the app\'s name for an Entra ID identity); for the template\'s flexible server the app is an Entra administrator, its role exists once the app has signed in or was added as one');
      },
      `grant the role its rights on schema ${cfg.schema}`,
    );
    const migrated = out.find((r) => r.id === 'database.migrations')?.status !== 'fail';
    if (migrated) {
      await step('database.freshness', 'rollups fresh', async () => checkFreshness(await rollupFreshness(p, cfg.schema, deps.now()), deps.staleRollupSeconds ?? 900), 'run `hubsink rollup --status`');
    } else out.push(skipped(S, 'database.freshness', 'rollups fresh', 'the schema is not migrated'));
    if (cfg.access.mode === 'entra') {
      await step('database.access', 'access grants (HUBSINK_ACCESS=entra)', async () => checkAccessGrants(await grantSummary(p, cfg.schema), cfg.schema), migrateFix);
    }
    return out;
  } finally {
    await pool?.end().catch(() => undefined);
  }
}

async function eventHubsChecks(deps: DoctorDeps): Promise<{ results: CheckResult[]; hubsOk: ReadonlyMap<string, boolean> }> {
  const { cfg } = deps;
  const ms = deps.waitMs ?? 30_000;
  const E = 'Event Hubs' as const;
  const conn = cfg.eventHubs;
  const groups: [string, string, string][] = [
    [cfg.ingestHub, cfg.consumerGroup, 'INGEST_CONSUMER_GROUP'],
    [cfg.deadLetterHub, cfg.deadLetterConsumerGroup, 'DEADLETTER_CONSUMER_GROUP'],
    [cfg.deadLetterHub, cfg.replayConsumerGroup, 'REPLAY_CONSUMER_GROUP'],
  ];
  if (!conn) {
    const setting = cfg.eventHubConnectionSetting;
    return {
      hubsOk: new Map(),
      results: [
        fail(E, 'eventhubs.ingest-hub', `ingest hub ${cfg.ingestHub}`, 'no Event Hubs namespace is configured', `set ${setting} (a connection string) or ${setting}__fullyQualifiedNamespace (managed identity)`),
        skipped(E, 'eventhubs.deadletter-hub', `dead-letter hub ${cfg.deadLetterHub}`, 'no namespace'),
        ...groups.map(([hub, group, setting]) => skipped(E, `eventhubs.listen.${setting.toLowerCase()}`, `consumer group ${group} on ${hub} (${setting})`, 'no namespace')),
        skipped(E, 'eventhubs.deadletter-send', `may send to the dead-letter hub ${cfg.deadLetterHub}`, 'no namespace'),
      ],
    };
  }
  const results: CheckResult[] = [];
  const hubsOk = new Map<string, boolean>();
  for (const [which, hub] of [['ingest', cfg.ingestHub], ['dead-letter', cfg.deadLetterHub]] as const) {
    const consumer = await deps.consumer(hub, '$Default');
    try {
      const r = await guarded(`hub ${hub}`, ms, hubPartitions(consumer)).catch((error: unknown) => ({ error }));
      const c = checkHub(which, hub, r, cfg, conn);
      hubsOk.set(hub, c.status === 'ok');
      results.push(c);
    } finally {
      await consumer.close().catch(() => undefined);
    }
  }
  for (const [hub, group, setting] of groups) {
    const title = `consumer group ${group} on ${hub} (${setting})`;
    if (!hubsOk.get(hub)) {
      results.push(skipped(E, `eventhubs.listen.${setting.toLowerCase()}`, title, `hub ${hub} did not answer`));
      continue;
    }
    const consumer = await deps.consumer(hub, group);
    try {
      const ids = await consumer.getPartitionIds();
      results.push(checkListen(hub, group, setting, await openReceiver(consumer, ids[0] ?? '0', ms), conn));
    } catch (error) {
      results.push(checkListen(hub, group, setting, { error }, conn));
    } finally {
      await consumer.close().catch(() => undefined);
    }
  }
  if (hubsOk.get(cfg.deadLetterHub) && !deps.skip?.has('eventhubs.deadletter-send')) {
    const producer = await deps.producer(cfg.deadLetterHub);
    try {
      results.push(checkSend(cfg.deadLetterHub, await guarded('sender link', ms, openSender(producer)).catch((error: unknown) => ({ error })), conn));
    } finally {
      await producer.close().catch(() => undefined);
    }
  } else {
    results.push(skipped(E, 'eventhubs.deadletter-send', `may send to the dead-letter hub ${cfg.deadLetterHub}`, hubsOk.get(cfg.deadLetterHub) ? 'skipped (--skip)' : `hub ${cfg.deadLetterHub} did not answer`));
  }
  return { results, hubsOk };
}

async function storageChecks(deps: DoctorDeps, hubsOk: ReadonlyMap<string, boolean>): Promise<CheckResult[]> {
  const { cfg } = deps;
  const ms = deps.waitMs ?? 30_000;
  const T = 'Storage' as const;
  const pairs: [string, string][] = [
    [cfg.ingestHub, cfg.consumerGroup],
    [cfg.deadLetterHub, cfg.deadLetterConsumerGroup],
  ];
  const cpTitle = (hub: string, group: string): string => `checkpoints of ${hub}/${group}`;
  if (!cfg.storage) {
    return [
      fail(T, 'storage.container', `checkpoint container ${deps.checkpointContainer}`, 'no storage account is configured', 'set AzureWebJobsStorage (a connection string; UseDevelopmentStorage=true for Azurite) or AzureWebJobsStorage__accountName'),
      ...pairs.map(([hub, group]) => skipped(T, `storage.checkpoints.${hub}`, cpTitle(hub, group), 'no storage')),
    ];
  }
  const storage = cfg.storage;
  const container = await deps.container(deps.checkpointContainer);
  const reached = await guarded('storage', ms, container.exists().then((exists) => ({ exists }))).catch((error: unknown) => ({ error }));
  const out = [checkContainer(deps.checkpointContainer, reached, storage)];
  for (const [hub, group] of pairs) {
    const title = cpTitle(hub, group);
    if ('error' in reached) {
      out.push(skipped(T, `storage.checkpoints.${hub}`, title, 'storage unreachable'));
      continue;
    }
    if (!hubsOk.get(hub)) {
      out.push(skipped(T, `storage.checkpoints.${hub}`, title, `hub ${hub} did not answer (lag needs its partitions)`));
      continue;
    }
    const consumer = await deps.consumer(hub, group);
    try {
      const scope: CheckpointScope = { fullyQualifiedNamespace: consumer.fullyQualifiedNamespace, eventHubName: hub, consumerGroup: group };
      const [states, checkpoints] = await guarded(
        title,
        ms,
        Promise.all([partitionStates(consumer), reached.exists ? readCheckpoints(container, scope) : Promise.resolve(new Map())]),
      );
      out.push(checkCheckpoints(hub, group, deps.checkpointContainer, states, checkpoints));
    } catch (err) {
      out.push(fail(T, `storage.checkpoints.${hub}`, title, errorText(err), `check ${storageSetting(storage)} and the Event Hubs connection`));
    } finally {
      await consumer.close().catch(() => undefined);
    }
  }
  return out;
}
