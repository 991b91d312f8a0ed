/**
 * Event Hubs and storage checks of `hubsink doctor`. The probes use the real clients built from the
 * app's settings; the explanations of what they return or throw are pure.
 */
import type { EventHubConsumerClient, EventHubProducerClient } from '@azure/event-hubs';
import type { EventHubsConnection, HubsinkConfig, StorageConnection } from '../config.js';
import { checkpointAhead, lagOf, recreatedHubFix, type CheckpointAhead, type LagRow, type PartitionState, type StoredCheckpoint } from '../hubs/checkpoints.js';
import { innermostFinding, type ServiceProblem } from '../hubs/explain.js';
import { describeError } from '../pipeline/classify.js';
import { fail, ok, warn, type CheckResult } from './report.js';

const EH = 'Event Hubs' as const;
const ST = 'Storage' as const;

/** Pure: the setting that names the namespace and the credentials, for messages. */
export function eventHubsSetting(cfg: Pick<HubsinkConfig, 'eventHubConnectionSetting'>, conn: EventHubsConnection): string {
  return conn.kind === 'connectionString' ? cfg.eventHubConnectionSetting : `${cfg.eventHubConnectionSetting}__fullyQualifiedNamespace`;
}

function rights(conn: EventHubsConnection, right: 'Listen' | 'Send', scope: string): string {
  return conn.kind === 'connectionString'
    ? `use a shared access policy with ${right} on ${scope} (SharedAccessKeyName/SharedAccessKey in the connection string)`
    : `assign the role Azure Event Hubs Data ${right === 'Listen' ? 'Receiver' : 'Sender'} on ${scope} to the identity running this (az login, or the app's managed identity)`;
}

export type EventHubsProblem = 'not-found' | 'consumer-group-not-found' | 'unauthorized' | 'unreachable' | 'owner-held' | 'other';

/**
 * Pure: what an error from the Event Hubs client means, read through the client's wrappers (an
 * AggregateError of its retries, with an empty message) by the CLI's own explainer.
 */
export function classifyEventHubsError(error: unknown): EventHubsProblem {
  const f = innermostFinding(error);
  const map: Record<ServiceProblem, EventHubsProblem> = {
    auth: 'unauthorized',
    'hub-not-found': 'not-found',
    'group-not-found': 'consumer-group-not-found',
    unreachable: 'unreachable',
    epoch: 'owner-held',
    other: 'other',
  };
  return f ? map[f.problem] : 'other';
}

/** Pure: the innermost message that says what happened, never an empty string. */
function message(error: unknown): string {
  const text = innermostFinding(error)?.detail ?? describeError(error);
  return (text.split('\n')[0] ?? '').trim() || 'failed without a message';
}

/** Pure: the namespace answered for the ingest hub, or why not. */
export function checkHub(
  which: 'ingest' | 'dead-letter',
  hub: string,
  r: { partitionIds: string[] } | { error: unknown },
  cfg: Pick<HubsinkConfig, 'eventHubConnectionSetting'>,
  conn: EventHubsConnection,
): CheckResult {
  const id = `eventhubs.${which === 'ingest' ? 'ingest' : 'deadletter'}-hub`;
  const setting = which === 'ingest' ? 'INGEST_EVENTHUB_NAME' : 'DEADLETTER_EVENTHUB_NAME';
  const title = `${which} hub ${hub}`;
  if ('partitionIds' in r) return ok(EH, id, title, `${r.partitionIds.length} partition(s)`);
  const what = classifyEventHubsError(r.error);
  const detail = message(r.error);
  if (what === 'not-found') return fail(EH, id, title, `no such hub in the namespace (${detail})`, `create the hub ${hub} (infra/azuredeploy.json does), or correct ${setting}`);
  if (what === 'unauthorized') return fail(EH, id, title, `refused: ${detail}`, `${conn.kind === 'connectionString' ? `correct the key in ${cfg.eventHubConnectionSetting}` : 'sign in with an identity that holds a role on the hub'}; ${rights(conn, 'Listen', `the hub ${hub}`)}`);
  if (what === 'unreachable') return fail(EH, id, title, `namespace unreachable: ${detail}`, `correct ${eventHubsSetting(cfg, conn)} (the namespace host), and check that this machine reaches it on port 5671 (AMQP over TLS)`);
  return fail(EH, id, title, detail, `check ${eventHubsSetting(cfg, conn)} and ${setting}`);
}

/** Pure: a receiver on the consumer group opened (so it exists, and these credentials may Listen). */
export function checkListen(hub: string, group: string, setting: string, r: { opened: true } | { error: unknown }, conn: EventHubsConnection): CheckResult {
  const id = `eventhubs.listen.${setting.toLowerCase()}`;
  const title = `consumer group ${group} on ${hub} (${setting})`;
  if ('opened' in r) return ok(EH, id, title, 'exists; these credentials may listen');
  const what = classifyEventHubsError(r.error);
  const detail = message(r.error);
  if (what === 'owner-held') return ok(EH, id, title, 'exists; held by a running consumer (owner level), so listening was not tried on it');
  if (what === 'consumer-group-not-found' || what === 'not-found') return fail(EH, id, title, `does not exist (${detail})`, `create the consumer group ${group} on ${hub} (infra/azuredeploy.json does), or correct ${setting}`);
  if (what === 'unauthorized') return fail(EH, id, title, `may not listen: ${detail}`, rights(conn, 'Listen', `the hub ${hub}`));
  return fail(EH, id, title, detail, `check ${setting} and the Event Hubs connection`);
}

/** Pure: a sender link to the dead-letter hub opened (the service checks Send when it attaches). */
export function checkSend(hub: string, r: { opened: true } | { error: unknown }, conn: EventHubsConnection): CheckResult {
  const title = `may send to the dead-letter hub ${hub}`;
  if ('opened' in r) return ok(EH, 'eventhubs.deadletter-send', title, 'a sender link opened (nothing was sent)');
  const what = classifyEventHubsError(r.error);
  const detail = message(r.error);
  if (what === 'unauthorized') {
    return fail(
      EH,
      'eventhubs.deadletter-send',
      title,
      `refused: ${detail}`,
      `${rights(conn, 'Send', `the hub ${hub} (its own scope, not the namespace's)`)}. Run as an operator, whom the template grants no Send, this fails by design: skip it with --skip eventhubs.deadletter-send`,
    );
  }
  return fail(EH, 'eventhubs.deadletter-send', title, detail, 'check DEADLETTER_EVENTHUB_NAME and the Event Hubs connection');
}

// ---------------------------------------------------------------------------------------------
// Probes

/** The hub's partitions, or what the client threw. */
export async function hubPartitions(client: EventHubConsumerClient | EventHubProducerClient): Promise<{ partitionIds: string[] } | { error: unknown }> {
  try {
    return { partitionIds: await client.getPartitionIds() };
  } catch (error) {
    return { error };
  }
}

/**
 * Opens a receiver on one partition from its end and waits for the first (empty) batch: the link
 * attached, so the consumer group exists and the credentials may Listen. Reads nothing old.
 */
export function openReceiver(consumer: EventHubConsumerClient, partitionId: string, waitMs: number): Promise<{ opened: true } | { error: unknown }> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: { opened: true } | { error: unknown }): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sub.close().then(
        () => resolve(r),
        () => resolve(r),
      );
    };
    const timer = setTimeout(() => finish({ error: new Error(`no answer within ${Math.round(waitMs / 1000)} s (hang guard)`) }), waitMs);
    const sub = consumer.subscribe(
      partitionId,
      {
        processEvents: () => {
          finish({ opened: true });
          return Promise.resolve();
        },
        processError: (err) => {
          finish({ error: err });
          return Promise.resolve();
        },
      },
      { startPosition: { enqueuedOn: new Date() }, maxBatchSize: 1, maxWaitTimeInSeconds: 1, skipParsingBodyAsJson: true },
    );
  });
}

/** Opens the producer's sender link without sending: createBatch asks the link for its size limit. */
export async function openSender(producer: EventHubProducerClient): Promise<{ opened: true } | { error: unknown }> {
  try {
    await producer.createBatch();
    return { opened: true };
  } catch (error) {
    return { error };
  }
}

/** Pure: the setting that names the storage account. */
export function storageSetting(s: StorageConnection): string {
  return s.kind === 'connectionString' ? 'AzureWebJobsStorage' : s.blobServiceUri ? 'AzureWebJobsStorage__blobServiceUri' : 'AzureWebJobsStorage__accountName';
}

/** Pure: the checkpoint container answered, or why not. */
export function checkContainer(container: string, r: { exists: boolean } | { error: unknown }, s: StorageConnection): CheckResult {
  const title = `checkpoint container ${container}`;
  const setting = storageSetting(s);
  if ('exists' in r) {
    return r.exists
      ? ok(ST, 'storage.container', title, 'reachable')
      : warn(ST, 'storage.container', title, 'reachable, but no consumer has checkpointed yet (the app creates it)', 'nothing, if the app has not run yet; else check that it runs with the same AzureWebJobsStorage');
  }
  const e = r.error as { statusCode?: number; code?: string; message?: string };
  const detail = message(r.error);
  if (e.statusCode === 403 || e.statusCode === 401) {
    return fail(
      ST,
      'storage.container',
      title,
      `refused: ${detail}`,
      s.kind === 'connectionString' ? `correct the key in ${setting}` : 'assign Storage Blob Data Owner (the app) or Contributor (operators) on the account to the identity running this',
    );
  }
  return fail(ST, 'storage.container', title, `unreachable: ${detail}`, `correct ${setting} (the account, or UseDevelopmentStorage=true for Azurite) and check that this machine reaches it`);
}

/**
 * Pure: checkpoints of one consumer group, their lag, and any ahead of their partition (the
 * runner's and `checkpoints show`'s definition, checkpointAhead, with the same fix).
 */
export function checkCheckpoints(hub: string, group: string, container: string, states: readonly PartitionState[], checkpoints: ReadonlyMap<string, StoredCheckpoint>): CheckResult {
  const id = `storage.checkpoints.${hub}`;
  const title = `checkpoints of ${hub}/${group}`;
  const rows: LagRow[] = states.map((p) => lagOf(p, checkpoints.get(p.partitionId)));
  const ahead = states.map((p) => checkpointAhead(p, checkpoints.get(p.partitionId))).filter((a): a is CheckpointAhead => a !== undefined);
  const have = states.filter((p) => checkpoints.has(p.partitionId)).length;
  const known = rows.every((r) => r.lag !== null);
  const lag = rows.reduce((n, r) => n + (r.lag ?? 0), 0);
  const detail = `${have} of ${states.length} partition(s) checkpointed, lag ${known ? lag : `at least ${lag}`} event(s)`;
  if (ahead.length > 0) {
    const which = ahead.map((a) => `${a.partitionId} (checkpoint ${a.checkpointSequenceNumber}, ${a.lastEnqueuedSequenceNumber < 0 ? 'no event yet' : `last event ${a.lastEnqueuedSequenceNumber}`})`);
    return fail(
      ST,
      id,
      title,
      `${detail}; partition(s) ${which.join(', ')} checkpointed past their last event (was the hub re-created?), so their new events are skipped`,
      `stop the app, then \`${recreatedHubFix({ hub, consumerGroup: group, container })}\``,
    );
  }
  return ok(ST, id, title, have === 0 ? `none yet (the consumer starts from the start: ${lag} event(s) retained)` : detail);
}
