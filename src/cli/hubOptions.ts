/**
 * What the commands that read a hub and its checkpoint container share (`checkpoints`, `dlq`,
 * `doctor`): parsers for hub, consumer group and container names, opening the consumer and the
 * container with few quick retries, and the services a command talks to, probed before it starts.
 */
import { InvalidArgumentError } from 'commander';
import type { EventHubConsumerClient } from '@azure/event-hubs';
import type { ContainerClient } from '@azure/storage-blob';
import { requireEventHubs, type HubsinkConfig, type StorageConnection } from '../config.js';
import { createConsumer, existingContainer } from '../hubs/clients.js';
import type { ServiceContext } from '../hubs/explain.js';
import { probeEventHubs } from '../hubs/probe.js';
import { parseTime } from './program.js';
import { eventHubsContext, storageContext } from './withServices.js';

const HUB_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,254}[A-Za-z0-9])?$/;
const CONSUMER_GROUP = /^(\$Default|[A-Za-z0-9](?:[A-Za-z0-9._-]{0,48}[A-Za-z0-9])?)$/;
/** Storage container names: 3-63 lower-case letters, digits and single hyphens. */
const CONTAINER = /^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/;

export function parseHub(value: string): string {
  if (!HUB_NAME.test(value)) throw new InvalidArgumentError('not a valid Event Hub name (letters, digits, . _ -; starts and ends with a letter or digit)');
  return value;
}

export function parseConsumerGroup(value: string): string {
  if (!CONSUMER_GROUP.test(value)) throw new InvalidArgumentError('not a valid consumer group name ($Default, or letters, digits, . _ -)');
  return value;
}

export function parseContainer(value: string): string {
  if (!CONTAINER.test(value)) throw new InvalidArgumentError('not a valid blob container name (3-63 lower-case letters, digits and hyphens)');
  return value;
}

export function parseTimeOption(value: string): Date {
  return parseTime(value);
}

/**
 * The container as it is: a read-only command must not need the right to create one. Few quick
 * retries: an operator waiting on storage that is down wants the error soon.
 */
export function openContainer(storage: StorageConnection, name: string): Promise<ContainerClient> {
  return existingContainer(storage, name, { retryOptions: { maxTries: 2, retryDelayInMs: 500, tryTimeoutInMs: 30_000 } });
}

export async function openConsumer(cfg: HubsinkConfig, hub: string, group: string): Promise<EventHubConsumerClient> {
  // Few quick retries: an operator waiting on a wrong connection string wants the error soon.
  return createConsumer(requireEventHubs(cfg), group, hub, undefined, { retryOptions: { maxRetries: 2, retryDelayInMs: 500, timeoutInMs: 20_000 } });
}

/** What a command on `hub` and `group` talks to, named as the user named them (options, else settings). */
export function cliServiceContext(cfg: HubsinkConfig, names: { hub: string; hubSetting: string; consumerGroup: string; consumerGroupSetting: string }): ServiceContext {
  return {
    ...(cfg.eventHubs ? { eventHubs: eventHubsContext(cfg.eventHubs, names) } : {}),
    ...(cfg.storage ? { storage: storageContext(cfg.storage) } : {}),
  };
}

/** Fails in seconds, explained, when the hub or the consumer group cannot serve (a wrong key, a typo). */
export async function probeHub(cfg: HubsinkConfig, ctx: ServiceContext): Promise<void> {
  if (ctx.eventHubs?.hub === undefined) return;
  await probeEventHubs(requireEventHubs(cfg), { ...ctx.eventHubs, hub: ctx.eventHubs.hub }, { failUnreachable: true });
}
