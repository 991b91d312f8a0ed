/**
 * The AMQP side of the emulator, on rhea's server connections: the server's lifecycle, its hubs and
 * connections, and the dispatch of each link by its kind to its own module: `$management`
 * (managementLink.ts), CBS (cbsLink.ts), publishing (sendLink.ts) and consumer links
 * (receiveLink.ts), wired to the pure pieces (partition logs, filters, SAS checks). Everything
 * listens on loopback only.
 */
import type { AddressInfo, Server, Socket } from 'node:net';
import { FrameSizeGuard } from './frameGuard.js';
import rhea, { type Connection, type EventContext, type Message } from 'rhea';
import { onCbsRequest } from './cbsLink.js';
import { DETACH_FORCED, FaultPlan, SERVER_BUSY } from './faults.js';
import { createHub, parseAddress, type EmulatorHubSpec, type Hub } from './hubs.js';
import { amqpError, flushReplies, MAX_MESSAGE_SIZE, openReplyLink, refuse, type ConnState, type LinkHost } from './links.js';
import { onManagementRequest } from './managementLink.js';
import type { RetentionLimits } from './partitionLog.js';
import { ConsumerLinks } from './receiveLink.js';
import { attachPublisher, onPublishTransfer } from './sendLink.js';

const { message: messageCodec } = rhea;

/** Largest frame a peer may send: a whole message plus room for the transfer performative. */
export const MAX_FRAME_SIZE = MAX_MESSAGE_SIZE + 64 * 1024;
export const DEFAULT_KEY_NAME = 'RootManageSharedAccessKey';
/** The same placeholder the official emulator documents, so its sample settings work unchanged. */
export const DEFAULT_KEY = 'SAS_KEY_VALUE';

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

class EmulatorServer implements Emulator, LinkHost {
  readonly host: string;
  port = 0;
  readonly keyName: string;
  readonly key: string;
  private readonly opaqueOffsets: boolean;
  private readonly retention: RetentionLimits | undefined;
  private readonly hubs = new Map<string, Hub>();
  private readonly conns = new Map<Connection, ConnState>();
  private readonly sockets = new Set<Socket>();
  readonly plan = new FaultPlan();
  private readonly consumers = new ConsumerLinks(this);
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
    for (const state of this.conns.values()) for (const c of state.consumers) this.consumers.dispose(c);
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

  findHub(name: string): Hub | undefined {
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
    for (const c of this.consumers.all()) {
      if (c.hub === hub) this.consumers.close(c, amqpError('amqp:not-found', `The messaging entity '${hub.name}' was deleted.`));
    }
    this.hubs.delete(name.toLowerCase());
  }

  reset(): void {
    for (const hub of this.hubs.values()) {
      for (const p of hub.partitions) p.clear();
      hub.roundRobin = 0;
    }
    for (const c of this.consumers.all()) c.next = 0;
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

  state(connection: Connection): ConnState {
    let s = this.conns.get(connection);
    if (!s) {
      s = { connection, claims: new Map(), replyLinks: new Map(), consumers: new Set() };
      this.conns.set(connection, s);
    }
    return s;
  }

  stateIfOpen(connection: Connection): ConnState | undefined {
    return this.conns.get(connection);
  }

  connections(): Iterable<ConnState> {
    return this.conns.values();
  }

  private onConnectionGone(connection: Connection): void {
    const s = this.conns.get(connection);
    if (!s) return;
    for (const c of s.consumers) this.consumers.dispose(c);
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

  private detachReceivers(hubName: string | undefined, condition: string): number {
    const hub = hubName === undefined ? undefined : this.findHub(hubName);
    if (hubName !== undefined && !hub) return 0;
    return this.consumers.detach(hub, amqpError(condition, 'The link was detached by the emulator (fault injection).'));
  }

  // ---- links, by kind ----

  /** A client sender attached: we receive on it ($cbs, $management, or publishing to a hub). */
  private onReceiverOpen(ctx: EventContext): void {
    const link = ctx.receiver;
    if (!link) return;
    const address = link.target?.address;
    link.set_target({ address: address ?? '' });
    const target = parseAddress(address);
    if (target.kind === 'cbs' || target.kind === 'management') return;
    if (target.kind !== 'hub' && target.kind !== 'partition') {
      refuse(link, amqpError('amqp:not-found', `The messaging entity '${address ?? ''}' could not be found.`));
      return;
    }
    attachPublisher(this, ctx, link, target, address);
  }

  /** A client receiver attached: we send on it (CBS/management replies, or events). */
  private onSenderOpen(ctx: EventContext): void {
    const link = ctx.sender;
    if (!link) return;
    const sourceAddress = link.source?.address;
    const source = parseAddress(sourceAddress);
    if (source.kind === 'cbs' || source.kind === 'management') {
      openReplyLink(this.state(ctx.connection), link);
      return;
    }
    if (source.kind !== 'consumer') {
      refuse(link, amqpError('amqp:not-found', `The messaging entity '${sourceAddress ?? ''}' could not be found.`));
      return;
    }
    this.consumers.open(ctx.connection, link, source, sourceAddress ?? '');
  }

  private onSenderClosed(ctx: EventContext): void {
    const link = ctx.sender;
    if (!link) return;
    const c = this.consumers.forLink(link);
    if (c) this.consumers.dispose(c);
    this.conns.get(ctx.connection)?.replyLinks.delete(link.name);
  }

  /** A transfer in: a CBS or management request, or events published. */
  private onMessage(ctx: EventContext): void {
    const link = ctx.receiver;
    const delivery = ctx.delivery;
    if (!link || !delivery) return;
    const target = parseAddress(link.target?.address);
    if (target.kind === 'cbs') {
      delivery.accept();
      if (ctx.message) onCbsRequest(this, ctx.connection, ctx.message);
      return;
    }
    if (target.kind === 'management') {
      delivery.accept();
      if (ctx.message) onManagementRequest(this, ctx.connection, ctx.message);
      return;
    }
    if (target.kind === 'hub' || target.kind === 'partition') {
      onPublishTransfer(this, ctx, link, delivery, target, (log) => this.consumers.appended(log));
      return;
    }
    delivery.reject(amqpError('amqp:not-found', 'no such entity'));
  }

  /** Credit out: events for a consumer link, or the replies waiting on a CBS or management link. */
  private onSendable(ctx: EventContext): void {
    const link = ctx.sender;
    if (!link) return;
    const c = this.consumers.forLink(link);
    if (c) {
      this.consumers.schedulePump(c);
      return;
    }
    const r = this.conns.get(ctx.connection)?.replyLinks.get(link.name);
    if (r) flushReplies(r);
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
