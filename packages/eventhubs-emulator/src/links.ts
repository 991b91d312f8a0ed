/**
 * What the emulator's link handlers share (management, CBS, send, receive): a connection's state,
 * the errors links are refused with, the claims a connection holds, and the reply links of the
 * request-response nodes ($cbs, $management).
 */
import type { Connection, Message, Receiver, Sender } from 'rhea';
import type { FaultPlan } from './faults.js';
import type { Hub } from './hubs.js';
import type { PartitionLog } from './partitionLog.js';
import { covers } from './sas.js';

export const MAX_MESSAGE_SIZE = 1024 * 1024;
/** CBS and management replies held for a peer that gives no credit; past this its reply link is closed. */
export const MAX_QUEUED_REPLIES = 64;

export interface AmqpErrorShape {
  condition: string;
  description: string;
}

/** rhea's link fields the link handlers read or set that its typings do not declare. */
export interface LinkInternals {
  local: { attach: { max_message_size?: number; snd_settle_mode?: number; offered_capabilities?: unknown } };
  credit: number;
}

export interface Consumer {
  link: Sender;
  conn: ConnState;
  hub: Hub;
  log: PartitionLog;
  groupKey: string;
  epoch: number | undefined;
  next: number;
  metrics: boolean;
  closed: boolean;
  timer: NodeJS.Timeout | undefined;
}

export interface ReplyLink {
  link: Sender;
  queue: Message[];
}

export interface ConnState {
  connection: Connection;
  /** Granted claims: resource path → expiry (seconds since epoch). */
  claims: Map<string, number>;
  replyLinks: Map<string, ReplyLink>;
  consumers: Set<Consumer>;
}

/** What the server gives its link handlers. */
export interface LinkHost {
  readonly keyName: string;
  readonly key: string;
  readonly plan: FaultPlan;
  findHub(name: string): Hub | undefined;
  /** The connection's state, made on first use. */
  state(connection: Connection): ConnState;
  /** The connection's state if it is still open; never made. */
  stateIfOpen(connection: Connection): ConnState | undefined;
  /** The state of every open connection. */
  connections(): Iterable<ConnState>;
}

export function amqpError(condition: string, description: string): AmqpErrorShape {
  return { condition, description };
}

/** Whether the connection holds an unexpired claim covering `path`. */
export function authorized(state: ConnState, path: string): boolean {
  const nowSec = Math.floor(Date.now() / 1000);
  for (const [granted, expiry] of state.claims) {
    if (expiry > nowSec && covers(granted, path)) return true;
  }
  return false;
}

/** Refuses a link the way the service does: attach with no terminus, then detach with the error. */
export function refuse(link: Sender | Receiver, error: AmqpErrorShape): void {
  link.close(error);
}

export function badPartition(hub: Hub, id: string): AmqpErrorShape {
  return amqpError(
    'com.microsoft:argument-out-of-range',
    `The specified partition '${id}' is invalid for an EventHub partition sender or receiver. It should be between 0 and ${hub.partitions.length - 1}.`,
  );
}

/** A client receiver on $cbs or $management: where the answers to its requests go. */
export function openReplyLink(state: ConnState, link: Sender): void {
  link.set_source({ address: link.source?.address ?? '' });
  link.set_target({ address: link.target?.address ?? link.name });
  state.replyLinks.set(link.name, { link, queue: [] });
}

export function reply(state: ConnState | undefined, replyTo: unknown, message: Message): void {
  if (typeof replyTo !== 'string') return;
  const r = state?.replyLinks.get(replyTo);
  if (!r) return;
  if (r.queue.length >= MAX_QUEUED_REPLIES) {
    // A peer that asks and never takes the answers must not grow the queue without bound.
    r.queue.length = 0;
    r.link.close(amqpError('amqp:resource-limit-exceeded', `more than ${MAX_QUEUED_REPLIES} replies waiting for credit`));
    return;
  }
  r.queue.push(message);
  flushReplies(r);
}

export function flushReplies(r: ReplyLink): void {
  while (r.queue.length > 0 && r.link.is_open() && r.link.sendable()) {
    r.link.send(r.queue.shift() as Message);
  }
}
