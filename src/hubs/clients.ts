/**
 * Event Hubs and blob clients built from configuration: a SAS connection string, or managed
 * identity (the `__fullyQualifiedNamespace` / `__accountName` app-setting forms of the Functions host).
 */
import {
  EventHubConsumerClient,
  EventHubProducerClient,
  type CheckpointStore,
  type EventHubClientOptions,
  type EventHubConsumerClientOptions,
} from '@azure/event-hubs';
import { BlobServiceClient, type ContainerClient, type StoragePipelineOptions } from '@azure/storage-blob';
import type { TokenCredential } from '@azure/core-auth';
import type { EventHubsConnection, StorageConnection } from '../config.js';

async function credentialFor(clientId?: string): Promise<TokenCredential> {
  const identity = await import('@azure/identity');
  return clientId ? new identity.ManagedIdentityCredential({ clientId }) : new identity.DefaultAzureCredential();
}

export async function createProducer(conn: EventHubsConnection, hub: string, options: EventHubClientOptions = {}): Promise<EventHubProducerClient> {
  if (conn.kind === 'connectionString') return new EventHubProducerClient(conn.connectionString, hub, options);
  return new EventHubProducerClient(conn.fullyQualifiedNamespace, hub, await credentialFor(conn.clientId), options);
}

export async function createConsumer(
  conn: EventHubsConnection,
  consumerGroup: string,
  hub: string,
  checkpointStore?: CheckpointStore,
  options: EventHubConsumerClientOptions = {},
): Promise<EventHubConsumerClient> {
  if (conn.kind === 'connectionString') {
    return checkpointStore
      ? new EventHubConsumerClient(consumerGroup, conn.connectionString, hub, checkpointStore, options)
      : new EventHubConsumerClient(consumerGroup, conn.connectionString, hub, options);
  }
  const cred = await credentialFor(conn.clientId);
  return checkpointStore
    ? new EventHubConsumerClient(consumerGroup, conn.fullyQualifiedNamespace, hub, cred, checkpointStore, options)
    : new EventHubConsumerClient(consumerGroup, conn.fullyQualifiedNamespace, hub, cred, options);
}

/** Where checkpoints live. The Functions host uses container `azure-webjobs-eventhub`. */
export const FUNCTIONS_CHECKPOINT_CONTAINER = 'azure-webjobs-eventhub';

export async function blobContainer(storage: StorageConnection, container: string): Promise<ContainerClient> {
  let svc: BlobServiceClient;
  if (storage.kind === 'connectionString') {
    svc = BlobServiceClient.fromConnectionString(storage.connectionString);
  } else {
    const url = storage.blobServiceUri ?? `https://${storage.accountName ?? ''}.blob.core.windows.net`;
    svc = new BlobServiceClient(url, await credentialFor());
  }
  const c = svc.getContainerClient(container);
  await c.createIfNotExists();
  return c;
}

/**
 * The container as it is, never created (a reader must not need the right to create one, and
 * creating it would hide a missing one), with the caller's retry policy.
 */
export async function existingContainer(storage: StorageConnection, container: string, options: StoragePipelineOptions = {}): Promise<ContainerClient> {
  if (storage.kind === 'connectionString') return BlobServiceClient.fromConnectionString(storage.connectionString, options).getContainerClient(container);
  const url = storage.blobServiceUri ?? `https://${storage.accountName ?? ''}.blob.core.windows.net`;
  return new BlobServiceClient(url, await credentialFor(), options).getContainerClient(container);
}

/** The namespace host of a connection, as the checkpoint blob layout names it. */
export function fullyQualifiedNamespace(conn: EventHubsConnection): string {
  if (conn.kind === 'identity') return conn.fullyQualifiedNamespace;
  const m = /Endpoint\s*=\s*sb:\/\/([^/;]+)/i.exec(conn.connectionString);
  if (!m?.[1]) throw new Error('connection string has no Endpoint=sb://… part');
  return m[1];
}
