/**
 * Publishing links (a client's sender, our receiver) on a hub or one of its partitions: the attach
 * checks, then each transfer checked, decoded, routed to a partition and appended to its log.
 */
import rhea, { type Delivery, type EventContext, type Message, type Receiver } from 'rhea';
import { AmqpDecodeError } from './amqpCodec.js';
import { BATCH_FORMAT, decodeEnvelope, prepareEvent, type PreparedEvent } from './eventCodec.js';
import type { Address } from './hubs.js';
import { partitionForKey } from './jenkins.js';
import { amqpError, authorized, badPartition, MAX_MESSAGE_SIZE, refuse, type LinkHost, type LinkInternals } from './links.js';
import type { PartitionLog } from './partitionLog.js';
import { resourcePath } from './sas.js';

const { message: messageCodec } = rhea;

type PublishTarget = Extract<Address, { kind: 'hub' | 'partition' }>;

/** A publishing link attached: refused unless its hub (and partition) exist and a claim covers it. */
export function attachPublisher(host: LinkHost, ctx: EventContext, link: Receiver, target: PublishTarget, address: string | undefined): void {
  const hub = host.findHub(target.hub);
  if (!hub) {
    refuse(link, amqpError('amqp:not-found', `The messaging entity '${target.hub}' could not be found.`));
    return;
  }
  if (target.kind === 'partition' && !hub.partitions.some((p) => p.partitionId === target.partitionId)) {
    refuse(link, badPartition(hub, target.partitionId));
    return;
  }
  if (!authorized(host.state(ctx.connection), resourcePath(`sb://x/${address ?? ''}`))) {
    refuse(link, amqpError('amqp:unauthorized-access', `Unauthorized access. A valid token is required to send to '${address ?? ''}'.`));
    return;
  }
  (link as unknown as LinkInternals).local.attach.max_message_size = MAX_MESSAGE_SIZE;
}

/** A transfer on a publishing link; `appended` hears of the log it went to. */
export function onPublishTransfer(host: LinkHost, ctx: EventContext, link: Receiver, delivery: Delivery, target: PublishTarget, appended: (log: PartitionLog) => void): void {
  const ext = ctx as EventContext & { format?: number };
  // Checked on every transfer, not only at attach: a token expires, and a client that ignores
  // the detach must not keep publishing.
  if (!authorized(host.state(ctx.connection), resourcePath(`sb://x/${link.target?.address ?? ''}`))) {
    const err = amqpError('amqp:unauthorized-access', `Unauthorized access. A valid token is required to send to '${link.target?.address ?? ''}'.`);
    delivery.reject(err);
    if (!link.is_closed()) link.close(err);
    return;
  }
  publish(host, target, delivery, ctx.message as unknown, ext.format ?? 0, appended);
}

function publish(host: LinkHost, target: PublishTarget, delivery: Delivery, message: unknown, format: number, appended: (log: PartitionLog) => void): void {
  const hub = host.findHub(target.hub);
  if (!hub) {
    delivery.reject(amqpError('amqp:not-found', `The messaging entity '${target.hub}' could not be found.`));
    return;
  }
  const injected = host.plan.takeSendRejection(hub.name);
  if (injected) {
    delivery.reject(amqpError(injected, `The emulator rejected this send (fault injection: ${injected}).`));
    return;
  }
  let payload: Buffer;
  if (format === BATCH_FORMAT && Buffer.isBuffer(message)) payload = message;
  else if (format === 0 && message && typeof message === 'object') payload = messageCodec.encode(message as Message);
  else {
    delivery.reject(amqpError('amqp:not-implemented', `message format ${format} is not supported`));
    return;
  }
  if (payload.length > MAX_MESSAGE_SIZE) {
    delivery.reject(
      amqpError(
        'amqp:link:message-size-exceeded',
        `The received message (size ${payload.length} bytes) exceeds the limit (${MAX_MESSAGE_SIZE} bytes) currently allowed on the link.`,
      ),
    );
    return;
  }
  let events: PreparedEvent[];
  let partitionKey: string | undefined;
  try {
    if (format === BATCH_FORMAT) {
      const env = decodeEnvelope(payload);
      events = env.events.map(prepareEvent);
      partitionKey = env.partitionKey ?? events[0]?.partitionKey;
    } else {
      const ev = prepareEvent(payload);
      events = [ev];
      partitionKey = ev.partitionKey;
    }
  } catch (err) {
    if (err instanceof AmqpDecodeError) {
      delivery.reject(amqpError('amqp:decode-error', err.message));
      return;
    }
    throw err;
  }
  let log: PartitionLog | undefined;
  if (target.kind === 'partition') {
    if (partitionKey !== undefined) {
      delivery.reject(amqpError('com.microsoft:argument-error', 'A partition key cannot be used when sending to a specific partition.'));
      return;
    }
    log = hub.partitions.find((p) => p.partitionId === target.partitionId);
  } else if (partitionKey !== undefined) {
    log = hub.partitions[partitionForKey(partitionKey, hub.partitions.length)];
  } else {
    log = hub.partitions[hub.roundRobin++ % hub.partitions.length];
  }
  if (!log) {
    delivery.reject(badPartition(hub, target.kind === 'partition' ? target.partitionId : '?'));
    return;
  }
  log.append(events, partitionKey);
  delivery.accept();
  appended(log);
}
