/**
 * Reads the runner's checkpoint blobs themselves (through Azurite with the SDK's BlobCheckpointStore,
 * not hubsink's own reader) and checks them against what is stored: every ingest event at or below a
 * partition's checkpoint must be in `events` (valid ones, by their label's key) or dead-lettered or
 * parked (malformed ones: on the dead-letter hub or in dead_letters, by source partition and sequence).
 * The checkpoints are read first: the stores only grow, so whatever they hold later still covers them.
 */
import { EventHubConsumerClient } from '@azure/event-hubs';
import { BlobCheckpointStore } from '@azure/eventhubs-checkpointstore-blob';
import { BlobServiceClient } from '@azure/storage-blob';
import type { GeneratedEvent } from '../../src/generator/generator.js';
import { labelKey } from './labels.js';
import { testAzuriteConnection } from './services.js';
import type { Stack } from './runner-fixture.js';
import { eventKeys } from './runner-fixture.js';

export interface CheckpointAudit {
  /** Checkpointed sequence number per partition (absent: no checkpoint yet). */
  checkpoints: Record<string, number>;
  /** Ingest events at or below a checkpoint that are neither written nor dead-lettered nor parked. */
  uncovered: string[];
  /** Events on the ingest hub after the checkpoints (what a new runner must read again). */
  behind: number;
}

export function labelsByBody(events: readonly GeneratedEvent[]): Map<string, GeneratedEvent> {
  return new Map(events.map((e) => [e.body.toString('hex'), e]));
}

/** The SDK's store on the stack's checkpoint container, and the namespace as the runner's client names it in the blob paths. */
async function storeOf(stack: Stack): Promise<{ exists: boolean; store: BlobCheckpointStore; fqns: string }> {
  const container = BlobServiceClient.fromConnectionString(testAzuriteConnection()).getContainerClient(stack.container);
  // A client connects only when used: this one only names the namespace.
  const client = new EventHubConsumerClient('$Default', stack.emu.connectionString(), stack.hub);
  const fqns = client.fullyQualifiedNamespace;
  await client.close();
  return { exists: await container.exists(), store: new BlobCheckpointStore(container), fqns };
}

/** The ingest hub's checkpointed sequence number per partition, from the blobs (absent: none yet). */
export async function readCheckpointBlobs(stack: Stack): Promise<Record<string, number>> {
  const { exists, store, fqns } = await storeOf(stack);
  const listed = exists ? await store.listCheckpoints(fqns, stack.hub, '$Default') : [];
  const checkpoints: Record<string, number> = {};
  for (const c of listed) if (c.sequenceNumber !== undefined) checkpoints[c.partitionId] = c.sequenceNumber;
  return checkpoints;
}

/** The ingest hub's owner id per partition, from the ownership blobs ('' when released; absent: never claimed). */
export async function readOwnerBlobs(stack: Stack): Promise<Record<string, string>> {
  const { exists, store, fqns } = await storeOf(stack);
  const listed = exists ? await store.listOwnership(fqns, stack.hub, '$Default') : [];
  return Object.fromEntries(listed.map((o) => [o.partitionId, o.ownerId]));
}

/**
 * Rows of `events` whose ingest event lies after its partition's checkpoint: a runner that starts
 * from these checkpoints reads those events again and must find them already written.
 */
export async function writtenPastCheckpoints(stack: Stack, checkpoints: Readonly<Record<string, number>>): Promise<number> {
  const { pool, schema } = stack.db;
  const { rows } = await pool.query<{ p: string; n: string }>(
    `SELECT source_partition AS p, count(*)::text AS n FROM "${schema}".events WHERE source_sequence > coalesce(($1::jsonb ->> source_partition)::bigint, -1) GROUP BY 1`,
    [JSON.stringify(checkpoints)],
  );
  return rows.reduce((n, r) => n + Number(r.n), 0);
}

export async function auditCheckpoints(stack: Stack, partitions: number, labels: ReadonlyMap<string, GeneratedEvent>): Promise<CheckpointAudit> {
  const checkpoints = await readCheckpointBlobs(stack);
  const { pool, schema } = stack.db;
  const written = new Set(await eventKeys(pool, schema));
  const parked = new Set(
    (await pool.query<{ p: string; s: string }>(`SELECT source_partition AS p, source_sequence::text AS s FROM "${schema}".dead_letters WHERE source_hub = $1`, [stack.hub])).rows.map((r) => `${r.p}/${r.s}`),
  );
  const onDeadLetterHub = new Set<string>();
  for (const pid of ['0', '1']) {
    for (const e of stack.emu.partitionEvents(stack.dlHub, pid)) {
      const props = e.properties ?? {};
      if (props['hubsink.sourceHub'] === stack.hub) onDeadLetterHub.add(`${String(props['hubsink.sourcePartition'])}/${String(props['hubsink.sourceSequenceNumber'])}`);
    }
  }

  const uncovered: string[] = [];
  let behind = 0;
  for (const pid of Array.from({ length: partitions }, (_, i) => String(i))) {
    const cp = checkpoints[pid] ?? -1;
    for (const e of stack.emu.partitionEvents(stack.hub, pid)) {
      if (e.sequenceNumber > cp) {
        behind++;
        continue;
      }
      const label = labels.get(e.body.toString('hex'));
      const at = `${pid}/${e.sequenceNumber}`;
      if (!label) uncovered.push(`${at}: not a generated event`);
      else if (label.kind === 'malformed') {
        if (!parked.has(at) && !onDeadLetterHub.has(at)) uncovered.push(`${at}: malformed (${label.malformed}), neither on the dead-letter hub nor parked`);
      } else if (!written.has(labelKey(label))) uncovered.push(`${at}: ${labelKey(label)} not in events`);
    }
  }
  return { checkpoints, uncovered, behind };
}
