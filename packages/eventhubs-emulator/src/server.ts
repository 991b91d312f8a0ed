/**
 * The AMQP side of the emulator, on rhea's server connections: CBS, `$management`, publishing
 * links and consumer links, wired to the pure pieces (partition logs, filters, SAS checks).
 * Everything listens on loopback only.
 */
import type { AddressInfo, Server, Socket } from 'node:net';
import { FrameSizeGuard } from './frameGuard.js';
import rhea, { type Connection, type Delivery, type EventContext, type Message, type Receiver, type Sender } from 'rhea';
import { AmqpDecodeError } from './amqpCodec.js';
import { BATCH_FORMAT, decodeEnvelope, prepareEvent, runtimeInfoSection, type PreparedEvent } from './eventCodec.js';
import { DETACH_FORCED, FaultPlan, SERVER_BUSY } from './faults.js';
import { FilterError, SELECTOR_FILTER_DESCRIPTOR, SELECTOR_FILTER_KEY, parseSelector, resolveStart, type StartPosition } from './filters.js';
import { createHub, parseAddress, type Address, type EmulatorHubSpec, type Hub } from './hubs.js';
import { partitionForKey } from './jenkins.js';
import { handleManagementRequest } from './management.js';
import type { LogEntry, PartitionLog, RetentionLimits } from './partitionLog.js';
import { covers, resourcePath, verifySasToken } from './sas.js';

const { types, message: messageCodec } = rhea;

export const MAX_MESSAGE_SIZE = 1024 * 1024;
/** Largest frame a peer may send: a whole message plus room for the transfer performative. */
export const MAX_FRAME_SIZE = MAX_MESSAGE_SIZE + 64 * 1024;
/** CBS and management replies held for a peer that gives no credit; past this its reply link is closed. */
export const MAX_QUEUED_REPLIES = 64;
export const DEFAULT_KEY_NAME = 'RootManageSharedAccessKey';
/** The same placeholder the official emulator documents, so its sample settings work unchanged. */
export const DEFAULT_KEY = 'SAS_KEY_VALUE';
const EPOCH_PROPERTY = 'com.microsoft:epoch';
const RUNTIME_METRIC_CAPABILITY = 'com.microsoft:enable-receiver-runtime-metric';
const SAS_TOKEN_TYPE = 'servicebus.windows.net:sastoken';

export interface EmulatorOptions {
  host?: string;
  port?: number;
  hubs?: EmulatorHubSpec[];
  keyName?: string;
  key?: string;
  opaqueOffsets?: boolean;
  retention?: RetentionLimits;
}

/** An event as stored in a partition, for tests and tools. */
export interface StoredEvent {
  /** Data-section bytes (concatenated); for amqp-value or amqp-sequence bodies, their JSON rendering. */
  body: Buffer;
  bodyType: 'data' | 'value' | 'sequence';
  properties: Record<string, unknown> | undefined;
  sequenceNumber: number;
  offset: string;
  enqueuedTime: Date;
  partitionKey: string | undefined;
}

export interface EmulatorFaults {
  /** Rejects the next n sends to `hub` (default condition com.microsoft:server-busy). */
  rejectNextSends(hub: string, n: number, condition?: string): void;
  /** Detaches consumer links (of one hub, or all); returns how many. */
  detachReceivers(hub?: string, condition?: string): number;
  /** Drops every client connection at the TCP level; returns how many. */
  dropConnections(): number;
  /** Holds back deliveries to consumers by `ms` (0 turns it off). */
  delayDeliveries(ms: number): void;
  clear(): void;
}

export interface Emulator {
  readonly port: number;
  readonly host: string;
  connectionString(hub?: string): string;
  createHub(spec: EmulatorHubSpec): void;
  deleteHub(name: string): void;
  /** Clears every hub's events and the emulator's per-hub state (round robin, faults). */
  reset(): void;
  faults: EmulatorFaults;
  partitionEvents(hub: string, partitionId: string): readonly StoredEvent[];
  /** Events and their bytes (what retention bounds) in every partition of every hub, and the bytes of the segments holding them. */
  retained(): { events: number; bytes: number; heldBytes: number };
  stop(): Promise<void>;
}

interface AmqpErrorShape {
  condition: string;
  description: string;
}

/** rhea's link fields this module reads or sets that its typings do not declare. */
interface LinkInternals {
  local: { attach: { max_message_size?: number; snd_settle_mode?: number; offered_capabilities?: unknown } };
  credit: number;
}

interface Consumer {
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

interface ReplyLink {
  link: Sender;
  queue: Message[];
}

interface ConnState {
  connection: Connection;
  /** Granted claims: resource path → expiry (seconds since epoch). */
  claims: Map<string, number>;
  replyLinks: Map<string, ReplyLink>;
  consumers: Set<Consumer>;
}

function amqpError(condition: string, description: string): AmqpErrorShape {
  return { condition, description };
}

function asStringList(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}

/** The selector text from a source filter map, whatever shape rhea decoded it into. */
function selectorFrom(filter: unknown): string | undefined {
  if (!filter || typeof filter !== 'object') return undefined;
  for (const [key, raw] of Object.entries(filter as Record<string, unknown>)) {
    let v: unknown = raw;
    let described = key === SELECTOR_FILTER_KEY;
    for (let depth = 0; depth < 3 && v && typeof v === 'object'; depth++) {
      const o = v as { descriptor?: { value?: unknown }; value?: unknown };
      const d = o.descriptor?.value;
      if (d === SELECTOR_FILTER_KEY || d === SELECTOR_FILTER_DESCRIPTOR || (typeof d === 'bigint' && d === BigInt(SELECTOR_FILTER_DESCRIPTOR))) described = true;
      if (Buffer.isBuffer(d) && d.length === 8 && d.readBigUInt64BE(0) === BigInt(SELECTOR_FILTER_DESCRIPTOR)) described = true;
      v = o.value;
    }
    if (described && typeof v === 'string') return v;
  }
  return undefined;
}

function numberProperty(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  if (Buffer.isBuffer(v) && v.length === 8) return Number(v.readBigInt64BE(0));
  return undefined;
}

function bodyOf(message: Message): { body: Buffer; bodyType: StoredEvent['bodyType'] } {
  const b: unknown = message.body;
  const section = b as { typecode?: number; content?: unknown; multiple?: boolean } | undefined;
  if (section && typeof section === 'object' && section.typecode === 0x75) {
    const parts = (Array.isArray(section.content) ? section.content : [section.content]).filter((x): x is Buffer => Buffer.isBuffer(x));
    return { body: Buffer.concat(parts), bodyType: 'data' };
  }
  if (Buffer.isBuffer(b)) return { body: b, bodyType: 'data' };
  if (section && typeof section === 'object' && section.typecode === 0x76) {
    return { body: Buffer.from(JSON.stringify(section.content)), bodyType: 'sequence' };
  }
  return { body: Buffer.from(JSON.stringify(b) ?? 'null'), bodyType: 'value' };
}

class EmulatorServer implements Emulator {
  readonly host: string;
  port = 0;
  private readonly keyName: string;
  private readonly key: string;
  private readonly opaqueOffsets: boolean;
  private readonly retention: RetentionLimits | undefined;
  private readonly hubs = new Map<string, Hub>();
  private readonly conns = new Map<Connection, ConnState>();
  private readonly sockets = new Set<Socket>();
  private readonly plan = new FaultPlan();
  private readonly container = rhea.create_container({ id: 'hubsink-eventhubs-emulator' });
  private server: Server | undefined;
  readonly faults: EmulatorFaults;

  constructor(opts: EmulatorOptions) {
    this.host = opts.host ?? '127.0.0.1';
    this.keyName = opts.keyName ?? DEFAULT_KEY_NAME;
    this.key = opts.key ?? DEFAULT_KEY;
    this.opaqueOffsets = opts.opaqueOffsets ?? false;
    this.retention = opts.retention;
    for (const spec of opts.hubs ?? []) this.createHub(spec);
    this.faults = {
      rejectNextSends: (hub, n, condition) => this.plan.rejectNextSends(hub, n, condition ?? SERVER_BUSY),
      detachReceivers: (hub, condition) => this.detachReceivers(hub, condition ?? DETACH_FORCED),
      dropConnections: () => this.dropConnections(),
      delayDeliveries: (ms) => this.plan.delayDeliveries(ms),
      clear: () => this.plan.clear(),
    };
  }

  // ---- lifecycle ----

  async start(port: number): Promise<void> {
    const c = this.container;
    // A bug or a peer's odd frame must cost one link, not the process hosting the emulator.
    const guard =
      (handler: (ctx: EventContext) => void) =>
      (ctx: EventContext): void => {
        try {
          handler(ctx);
        } catch (err) {
          process.stderr.write(`event hubs emulator: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
          const link = ctx.sender ?? ctx.receiver;
          if (link && !link.is_closed()) link.close(amqpError('amqp:internal-error', 'the emulator failed to handle this request'));
        }
      };
    c.on('connection_open', guard((ctx) => this.onConnectionOpen(ctx)));
    c.on('connection_close', guard((ctx) => this.onConnectionGone(ctx.connection)));
    c.on('disconnected', guard((ctx) => this.onConnectionGone(ctx.connection)));
    c.on('receiver_open', guard((ctx) => this.onReceiverOpen(ctx)));
    c.on('sender_open', guard((ctx) => this.onSenderOpen(ctx)));
    c.on('message', guard((ctx) => this.onMessage(ctx)));
    c.on('sendable', guard((ctx) => this.onSendable(ctx)));
    c.on('sender_close', guard((ctx) => this.onSenderClosed(ctx)));
    // Peers' link and session errors are expected (clients detach as they like); handling the
    // events keeps rhea from raising them as container errors.
    for (const ev of ['receiver_close', 'sender_error', 'receiver_error', 'session_error', 'session_close', 'connection_error', 'error', 'protocol_error']) {
      c.on(ev, () => undefined);
    }
    const server = c.listen({
      host: this.host,
      port,
      // Publishing links settle what they accept or reject themselves (after routing and checks).
      receiver_options: { autoaccept: false, credit_window: 500 },
    });
    this.server = server;
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      // Before authentication too: what a peer can make the emulator buffer is one frame at most.
      const guard = new FrameSizeGuard(MAX_FRAME_SIZE);
      socket.on('data', (chunk: Buffer) => {
        if (!guard.push(chunk)) socket.destroy(new Error(`a frame larger than ${MAX_FRAME_SIZE} bytes`));
      });
    });
    await new Promise<void>((resolve, reject) => {
      if (server.listening) return resolve();
      server.once('listening', () => resolve());
      server.once('error', reject);
    });
    this.port = (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const state of this.conns.values()) for (const c of state.consumers) this.disposeConsumer(c);
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    this.destroySockets('the emulator stopped');
    this.sockets.clear();
    this.conns.clear();
    await closed;
  }

  connectionString(hub?: string): string {
    if (hub !== undefined && !this.findHub(hub)) throw new Error(`no event hub named '${hub}'`);
    const entity = hub === undefined ? '' : `EntityPath=${this.findHub(hub)?.name ?? hub};`;
    return `Endpoint=sb://${this.host}:${this.port};SharedAccessKeyName=${this.keyName};SharedAccessKey=${this.key};${entity}UseDevelopmentEmulator=true`;
  }

  // ---- hubs ----

  private findHub(name: string): Hub | undefined {
    return this.hubs.get(name.toLowerCase());
  }

  createHub(spec: EmulatorHubSpec): void {
    if (this.findHub(spec.name)) throw new Error(`an event hub named '${spec.name}' already exists`);
    const hub = createHub(spec, { opaqueOffsets: this.opaqueOffsets, retention: this.retention, now: Date.now });
    this.hubs.set(spec.name.toLowerCase(), hub);
  }

  deleteHub(name: string): void {
    const hub = this.findHub(name);
    if (!hub) return;
    for (const c of this.allConsumers()) {
      if (c.hub === hub) this.closeConsumer(c, amqpError('amqp:not-found', `The messaging entity '${hub.name}' was deleted.`));
    }
    this.hubs.delete(name.toLowerCase());
  }

  reset(): void {
    for (const hub of this.hubs.values()) {
      for (const p of hub.partitions) p.clear();
      hub.roundRobin = 0;
    }
    for (const c of this.allConsumers()) c.next = 0;
    this.plan.clear();
  }

  partitionEvents(hubName: string, partitionId: string): readonly StoredEvent[] {
    const hub = this.findHub(hubName);
    if (!hub) throw new Error(`no event hub named '${hubName}'`);
    const log = hub.partitions.find((p) => p.partitionId === partitionId);
    if (!log) throw new Error(`event hub '${hub.name}' has no partition '${partitionId}'`);
    return log.all().map((e) => {
      const m = messageCodec.decode(e.bytes) as unknown as Message;
      const props = m.application_properties as Record<string, unknown> | undefined;
      return {
        ...bodyOf(m),
        properties: props,
        sequenceNumber: e.sequenceNumber,
        offset: e.offset,
        enqueuedTime: new Date(e.enqueuedTimeMs),
        partitionKey: e.partitionKey,
      };
    });
  }

  retained(): { events: number; bytes: number; heldBytes: number } {
    let events = 0;
    let bytes = 0;
    let heldBytes = 0;
    for (const hub of this.hubs.values()) {
      for (const p of hub.partitions) {
        events += p.size;
        bytes += p.bytes;
        heldBytes += p.heldBytes;
      }
    }
    return { events, bytes, heldBytes };
  }

  // ---- connections ----

  private onConnectionOpen(ctx: EventContext): void {
    this.conns.set(ctx.connection, { connection: ctx.connection, claims: new Map(), replyLinks: new Map(), consumers: new Set() });
  }

  private state(connection: Connection): ConnState {
    let s = this.conns.get(connection);
    if (!s) {
      s = { connection, claims: new Map(), replyLinks: new Map(), consumers: new Set() };
      this.conns.set(connection, s);
    }
    return s;
  }

  private onConnectionGone(connection: Connection): void {
    const s = this.conns.get(connection);
    if (!s) return;
    for (const c of s.consumers) this.disposeConsumer(c);
    this.conns.delete(connection);
  }

  private dropConnections(): number {
    const n = this.sockets.size;
    this.destroySockets('connection dropped by the emulator (fault injection)');
    for (const connection of [...this.conns.keys()]) this.onConnectionGone(connection);
    return n;
  }

  /**
   * Destroys client sockets with an error: rhea learns of a dead socket only through 'error' or
   * 'end', and a server connection that never hears of it keeps its heartbeat timer going forever.
   */
  private destroySockets(reason: string): void {
    for (const s of this.sockets) s.destroy(new Error(reason));
    this.sockets.clear();
  }

  /** Whether the connection holds an unexpired claim covering `path`. */
  private authorized(state: ConnState, path: string): boolean {
    const nowSec = Math.floor(Date.now() / 1000);
    for (const [granted, expiry] of state.claims) {
      if (expiry > nowSec && covers(granted, path)) return true;
    }
    return false;
  }

  /** Refuses a link the way the service does: attach with no terminus, then detach with the error. */
  private refuse(link: Sender | Receiver, error: AmqpErrorShape): void {
    link.close(error);
  }

  // ---- links opened by clients ----

  /** A client sender attached: we receive on it ($cbs, $management, or publishing to a hub). */
  private onReceiverOpen(ctx: EventContext): void {
    const link = ctx.receiver;
    if (!link) return;
    const address = link.target?.address;
    link.set_target({ address: address ?? '' });
    const target = parseAddress(address);
    if (target.kind === 'cbs' || target.kind === 'management') return;
    if (target.kind !== 'hub' && target.kind !== 'partition') {
      this.refuse(link, amqpError('amqp:not-found', `The messaging entity '${address ?? ''}' could not be found.`));
      return;
    }
    const hub = this.findHub(target.hub);
    if (!hub) {
      this.refuse(link, amqpError('amqp:not-found', `The messaging entity '${target.hub}' could not be found.`));
      return;
    }
    if (target.kind === 'partition' && !hub.partitions.some((p) => p.partitionId === target.partitionId)) {
      this.refuse(link, this.badPartition(hub, target.partitionId));
      return;
    }
    if (!this.authorized(this.state(ctx.connection), resourcePath(`sb://x/${address ?? ''}`))) {
      this.refuse(link, amqpError('amqp:unauthorized-access', `Unauthorized access. A valid token is required to send to '${address ?? ''}'.`));
      return;
    }
    (link as unknown as LinkInternals).local.attach.max_message_size = MAX_MESSAGE_SIZE;
  }

  private badPartition(hub: Hub, id: string): AmqpErrorShape {
    return amqpError(
      'com.microsoft:argument-out-of-range',
      `The specified partition '${id}' is invalid for an EventHub partition sender or receiver. It should be between 0 and ${hub.partitions.length - 1}.`,
    );
  }

  /** A client receiver attached: we send on it (CBS/management replies, or events). */
  private onSenderOpen(ctx: EventContext): void {
    const link = ctx.sender;
    if (!link) return;
    const sourceAddress = link.source?.address;
    const targetAddress = link.target?.address;
    const source = parseAddress(sourceAddress);
    if (source.kind === 'cbs' || source.kind === 'management') {
      link.set_source({ address: sourceAddress ?? '' });
      link.set_target({ address: targetAddress ?? link.name });
      this.state(ctx.connection).replyLinks.set(link.name, { link, queue: [] });
      return;
    }
    if (source.kind !== 'consumer') {
      this.refuse(link, amqpError('amqp:not-found', `The messaging entity '${sourceAddress ?? ''}' could not be found.`));
      return;
    }
    this.openConsumer(ctx.connection, link, source, sourceAddress ?? '');
  }

  private openConsumer(connection: Connection, link: Sender, source: Extract<Address, { kind: 'consumer' }>, address: string): void {
    const state = this.state(connection);
    const hub = this.findHub(source.hub);
    if (!hub) {
      this.refuse(link, amqpError('amqp:not-found', `The messaging entity '${source.hub}' could not be found.`));
      return;
    }
    const groupKey = source.consumerGroup.toLowerCase();
    if (!hub.consumerGroups.has(groupKey)) {
      this.refuse(
        link,
        amqpError('amqp:not-found', `The messaging entity '${hub.name}/ConsumerGroups/${source.consumerGroup}' could not be found.`),
      );
      return;
    }
    const log = hub.partitions.find((p) => p.partitionId === source.partitionId);
    if (!log) {
      this.refuse(link, this.badPartition(hub, source.partitionId));
      return;
    }
    if (!this.authorized(state, resourcePath(`sb://x/${address}`))) {
      this.refuse(link, amqpError('amqp:unauthorized-access', `Unauthorized access. A valid token is required to receive from '${address}'.`));
      return;
    }
    let start: number;
    try {
      const selector = selectorFrom(link.source?.filter);
      const pos: StartPosition | undefined = selector === undefined ? undefined : parseSelector(selector);
      start = resolveStart(log, pos);
    } catch (err) {
      if (err instanceof FilterError) {
        this.refuse(link, amqpError(err.condition, err.message));
        return;
      }
      throw err;
    }
    const props = link.properties as Record<string, unknown> | undefined;
    const epoch = numberProperty(props?.[EPOCH_PROPERTY]);
    const rivals = this.allConsumers().filter((c) => c.log === log && c.groupKey === groupKey);
    const epochs = rivals.map((c) => c.epoch).filter((e): e is number => e !== undefined);
    const highest = epochs.length > 0 ? Math.max(...epochs) : undefined;
    if (epoch === undefined && highest !== undefined) {
      this.refuse(
        link,
        amqpError(
          'amqp:link:stolen',
          `A receiver with epoch '${highest}' already exists for partition ${log.partitionId} in consumer group '${source.consumerGroup}'; a receiver without an epoch cannot be created.`,
        ),
      );
      return;
    }
    if (epoch !== undefined && highest !== undefined && epoch < highest) {
      this.refuse(
        link,
        amqpError(
          'amqp:link:stolen',
          `A receiver with a higher epoch of '${highest}' already exists; a receiver with epoch ${epoch} cannot be created. Use increasing epochs, or close the old receiver.`,
        ),
      );
      return;
    }
    if (epoch !== undefined) {
      for (const old of rivals) {
        this.closeConsumer(
          old,
          amqpError(
            'amqp:link:stolen',
            `New receiver '${link.name}' with higher epoch of '${epoch}' is created hence current receiver '${old.link.name}' with epoch '${old.epoch ?? 'none'}' is getting disconnected.`,
          ),
        );
      }
    }
    const selector = selectorFrom(link.source?.filter);
    link.set_source({
      address,
      ...(selector === undefined ? {} : { filter: { [SELECTOR_FILTER_KEY]: types.wrap_described(selector, SELECTOR_FILTER_DESCRIPTOR) } }),
    });
    link.set_target({ address: link.target?.address ?? '' });
    const internals = link as unknown as LinkInternals;
    // Events go out pre-settled, as the service sends them.
    internals.local.attach.snd_settle_mode = 1;
    const metrics = asStringList(link.desired_capabilities).includes(RUNTIME_METRIC_CAPABILITY);
    if (metrics) internals.local.attach.offered_capabilities = [RUNTIME_METRIC_CAPABILITY];
    const consumer: Consumer = { link, conn: state, hub, log, groupKey, epoch, next: start, metrics, closed: false, timer: undefined };
    state.consumers.add(consumer);
    this.consumerByLink.set(link, consumer);
  }

  private readonly consumerByLink = new WeakMap<Sender, Consumer>();

  private allConsumers(): Consumer[] {
    const out: Consumer[] = [];
    for (const s of this.conns.values()) for (const c of s.consumers) out.push(c);
    return out;
  }

  private disposeConsumer(c: Consumer): void {
    c.closed = true;
    if (c.timer) clearTimeout(c.timer);
    c.timer = undefined;
    c.conn.consumers.delete(c);
  }

  private closeConsumer(c: Consumer, error: AmqpErrorShape): void {
    this.disposeConsumer(c);
    c.link.close(error);
  }

  private detachReceivers(hubName: string | undefined, condition: string): number {
    const hub = hubName === undefined ? undefined : this.findHub(hubName);
    if (hubName !== undefined && !hub) return 0;
    let n = 0;
    for (const c of this.allConsumers()) {
      if (hub && c.hub !== hub) continue;
      this.closeConsumer(c, amqpError(condition, 'The link was detached by the emulator (fault injection).'));
      n++;
    }
    return n;
  }

  private onSenderClosed(ctx: EventContext): void {
    const link = ctx.sender;
    if (!link) return;
    const c = this.consumerByLink.get(link);
    if (c) this.disposeConsumer(c);
    this.conns.get(ctx.connection)?.replyLinks.delete(link.name);
  }

  // ---- deliveries in ----

  private onMessage(ctx: EventContext): void {
    const link = ctx.receiver;
    const delivery = ctx.delivery;
    if (!link || !delivery) return;
    const target = parseAddress(link.target?.address);
    const ext = ctx as EventContext & { format?: number };
    if (target.kind === 'cbs') {
      delivery.accept();
      if (ctx.message) this.onCbsRequest(ctx.connection, ctx.message);
      return;
    }
    if (target.kind === 'management') {
      delivery.accept();
      if (ctx.message) this.onManagementRequest(ctx.connection, ctx.message);
      return;
    }
    if (target.kind === 'hub' || target.kind === 'partition') {
      // Checked on every transfer, not only at attach: a token expires, and a client that ignores
      // the detach must not keep publishing.
      if (!this.authorized(this.state(ctx.connection), resourcePath(`sb://x/${link.target?.address ?? ''}`))) {
        const err = amqpError('amqp:unauthorized-access', `Unauthorized access. A valid token is required to send to '${link.target?.address ?? ''}'.`);
        delivery.reject(err);
        if (!link.is_closed()) link.close(err);
        return;
      }
      this.onPublish(target, delivery, ctx.message as unknown, ext.format ?? 0);
      return;
    }
    delivery.reject(amqpError('amqp:not-found', 'no such entity'));
  }

  private reply(connection: Connection, replyTo: unknown, message: Message): void {
    if (typeof replyTo !== 'string') return;
    const r = this.conns.get(connection)?.replyLinks.get(replyTo);
    if (!r) return;
    if (r.queue.length >= MAX_QUEUED_REPLIES) {
      // A peer that asks and never takes the answers must not grow the queue without bound.
      r.queue.length = 0;
      r.link.close(amqpError('amqp:resource-limit-exceeded', `more than ${MAX_QUEUED_REPLIES} replies waiting for credit`));
      return;
    }
    r.queue.push(message);
    this.flushReplies(r);
  }

  private flushReplies(r: ReplyLink): void {
    while (r.queue.length > 0 && r.link.is_open() && r.link.sendable()) {
      r.link.send(r.queue.shift() as Message);
    }
  }

  private onCbsRequest(connection: Connection, request: Message): void {
    const props = (request.application_properties ?? {}) as Record<string, unknown>;
    const respond = (status: number, description: string, condition?: string): void => {
      this.reply(connection, request.reply_to, {
        correlation_id: request.message_id,
        application_properties: {
          'status-code': status,
          'status-description': description,
          ...(condition ? { 'error-condition': condition } : {}),
        },
        body: undefined,
      });
    };
    if (props.operation !== 'put-token') return respond(400, `unsupported CBS operation '${String(props.operation)}'`, 'amqp:not-implemented');
    if (props.type !== SAS_TOKEN_TYPE) {
      return respond(401, 'the emulator accepts only shared access signatures (servicebus.windows.net:sastoken)', 'amqp:unauthorized-access');
    }
    if (typeof props.name !== 'string' || typeof request.body !== 'string') {
      return respond(400, 'put-token needs an audience (name) and a token (body)', 'com.microsoft:argument-error');
    }
    const check = verifySasToken(request.body, { keyName: this.keyName, key: this.key, nowSec: Math.floor(Date.now() / 1000) });
    if (!check.ok) return respond(401, check.reason, 'amqp:unauthorized-access');
    const wanted = resourcePath(props.name);
    const granted = resourcePath(check.token.resource);
    if (!covers(granted, wanted)) {
      return respond(401, `InvalidAudience: the token is for '${check.token.resource}', not '${props.name}'`, 'amqp:unauthorized-access');
    }
    const hubName = wanted.split('/')[0] ?? '';
    if (hubName !== '' && hubName !== '$management' && hubName !== '$cbs' && !this.findHub(hubName)) {
      return respond(404, `The messaging entity '${props.name}' could not be found.`, 'amqp:not-found');
    }
    this.state(connection).claims.set(wanted, check.token.expiresAtSec);
    respond(202, 'Accepted');
  }

  private onManagementRequest(connection: Connection, request: Message): void {
    const props = (request.application_properties ?? {}) as Record<string, unknown>;
    let result;
    const token = props.security_token;
    const check =
      typeof token === 'string' ? verifySasToken(token, { keyName: this.keyName, key: this.key, nowSec: Math.floor(Date.now() / 1000) }) : undefined;
    const hubPath = typeof props.name === 'string' ? props.name.toLowerCase() : '';
    if (!check || !check.ok) {
      result = { status: 401, description: check ? check.reason : 'a security_token is required', condition: 'amqp:unauthorized-access' };
    } else if (!covers(resourcePath(check.token.resource), hubPath)) {
      result = { status: 401, description: `the token does not grant access to '${String(props.name)}'`, condition: 'amqp:unauthorized-access' };
    } else {
      result = handleManagementRequest(
        { operation: props.operation, type: props.type, name: props.name, partition: props.partition },
        (n) => this.findHub(n),
      );
    }
    const reply: Message = {
      body: undefined,
      correlation_id: request.message_id,
      application_properties: {
        'status-code': result.status,
        'status-description': result.description,
        ...('condition' in result && result.condition ? { 'error-condition': result.condition } : {}),
      },
    };
    if ('body' in result && result.body !== undefined) reply.body = result.body;
    this.reply(connection, request.reply_to, reply);
  }

  private onPublish(target: Extract<Address, { kind: 'hub' | 'partition' }>, delivery: Delivery, message: unknown, format: number): void {
    const hub = this.findHub(target.hub);
    if (!hub) {
      delivery.reject(amqpError('amqp:not-found', `The messaging entity '${target.hub}' could not be found.`));
      return;
    }
    const injected = this.plan.takeSendRejection(hub.name);
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
      delivery.reject(this.badPartition(hub, target.kind === 'partition' ? target.partitionId : '?'));
      return;
    }
    log.append(events, partitionKey);
    delivery.accept();
    for (const c of this.allConsumers()) if (c.log === log) this.schedulePump(c);
  }

  // ---- deliveries out ----

  private onSendable(ctx: EventContext): void {
    const link = ctx.sender;
    if (!link) return;
    const c = this.consumerByLink.get(link);
    if (c) {
      this.schedulePump(c);
      return;
    }
    const r = this.conns.get(ctx.connection)?.replyLinks.get(link.name);
    if (r) this.flushReplies(r);
  }

  private schedulePump(c: Consumer): void {
    if (c.closed || c.timer) return;
    const delay = this.plan.deliveryDelayMs;
    c.timer = setTimeout(() => {
      c.timer = undefined;
      this.safePump(c);
    }, delay);
  }

  private safePump(c: Consumer): void {
    try {
      this.pump(c);
    } catch (err) {
      process.stderr.write(`event hubs emulator: delivery failed: ${err instanceof Error ? err.message : String(err)}\n`);
      this.closeConsumer(c, amqpError('amqp:internal-error', 'the emulator failed to deliver'));
    }
  }

  private pump(c: Consumer): void {
    if (c.closed || !c.link.is_open()) return;
    const log = c.log;
    if (c.next < log.beginSequenceNumber) c.next = log.beginSequenceNumber;
    let sent = 0;
    while (c.next < log.endSequenceNumber && c.link.sendable() && sent < 256) {
      const entry = log.get(c.next) as LogEntry;
      c.link.send(this.deliveryPayload(c, entry), undefined, 0);
      c.next++;
      sent++;
    }
    // More to send and credit left: continue on a later turn so one busy consumer cannot starve the loop.
    if (c.next < log.endSequenceNumber && (c.link as unknown as LinkInternals).credit > 0) {
      c.timer = setTimeout(() => {
        c.timer = undefined;
        this.safePump(c);
      }, sent > 0 ? 0 : 5);
    }
  }

  private deliveryPayload(c: Consumer, entry: LogEntry): Buffer {
    // Without runtime metrics the stored bytes go out as they are, with no copy per delivery.
    if (!c.metrics) return entry.bytes;
    const last = c.log.last() ?? entry;
    const da = runtimeInfoSection({
      lastSequenceNumber: last.sequenceNumber,
      lastOffset: last.offset,
      lastEnqueuedTimeMs: last.enqueuedTimeMs,
      retrievalTimeMs: Date.now(),
    });
    return Buffer.concat([entry.bytes.subarray(0, entry.headLength), da, entry.bytes.subarray(entry.headLength)]);
  }
}

/** Starts an emulator listening on loopback (port 0 = an ephemeral port). */
export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const host = opts.host ?? '127.0.0.1';
  if (host !== '127.0.0.1' && host !== '::1' && host !== 'localhost') throw new Error('the emulator listens on loopback only');
  const server = new EmulatorServer({ ...opts, host });
  await server.start(opts.port ?? 0);
  return server;
}
