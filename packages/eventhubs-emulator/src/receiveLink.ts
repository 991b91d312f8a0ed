/**
 * Consumer links (a client's receiver, our sender) on a partition of a consumer group: the attach
 * checks with the start position and epochs, and the deliveries, pumped as the link gives credit.
 */
import rhea, { type Connection, type Sender } from 'rhea';
import { runtimeInfoSection } from './eventCodec.js';
import { FilterError, SELECTOR_FILTER_DESCRIPTOR, SELECTOR_FILTER_KEY, parseSelector, resolveStart, type StartPosition } from './filters.js';
import type { Address, Hub } from './hubs.js';
import { amqpError, authorized, badPartition, refuse, type AmqpErrorShape, type Consumer, type LinkHost, type LinkInternals } from './links.js';
import type { LogEntry, PartitionLog } from './partitionLog.js';
import { resourcePath } from './sas.js';

const { types } = rhea;

const EPOCH_PROPERTY = 'com.microsoft:epoch';
const RUNTIME_METRIC_CAPABILITY = 'com.microsoft:enable-receiver-runtime-metric';

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

/** The consumer links of every connection, and their deliveries. */
export class ConsumerLinks {
  private readonly byLink = new WeakMap<Sender, Consumer>();

  constructor(private readonly host: LinkHost) {}

  forLink(link: Sender): Consumer | undefined {
    return this.byLink.get(link);
  }

  all(): Consumer[] {
    const out: Consumer[] = [];
    for (const s of this.host.connections()) for (const c of s.consumers) out.push(c);
    return out;
  }

  open(connection: Connection, link: Sender, source: Extract<Address, { kind: 'consumer' }>, address: string): void {
    const state = this.host.state(connection);
    const hub = this.host.findHub(source.hub);
    if (!hub) {
      refuse(link, amqpError('amqp:not-found', `The messaging entity '${source.hub}' could not be found.`));
      return;
    }
    const groupKey = source.consumerGroup.toLowerCase();
    if (!hub.consumerGroups.has(groupKey)) {
      refuse(link, amqpError('amqp:not-found', `The messaging entity '${hub.name}/ConsumerGroups/${source.consumerGroup}' could not be found.`));
      return;
    }
    const log = hub.partitions.find((p) => p.partitionId === source.partitionId);
    if (!log) {
      refuse(link, badPartition(hub, source.partitionId));
      return;
    }
    if (!authorized(state, resourcePath(`sb://x/${address}`))) {
      refuse(link, amqpError('amqp:unauthorized-access', `Unauthorized access. A valid token is required to receive from '${address}'.`));
      return;
    }
    let start: number;
    try {
      const selector = selectorFrom(link.source?.filter);
      const pos: StartPosition | undefined = selector === undefined ? undefined : parseSelector(selector);
      start = resolveStart(log, pos);
    } catch (err) {
      if (err instanceof FilterError) {
        refuse(link, amqpError(err.condition, err.message));
        return;
      }
      throw err;
    }
    const props = link.properties as Record<string, unknown> | undefined;
    const epoch = numberProperty(props?.[EPOCH_PROPERTY]);
    const rivals = this.all().filter((c) => c.log === log && c.groupKey === groupKey);
    const epochs = rivals.map((c) => c.epoch).filter((e): e is number => e !== undefined);
    const highest = epochs.length > 0 ? Math.max(...epochs) : undefined;
    if (epoch === undefined && highest !== undefined) {
      refuse(
        link,
        amqpError(
          'amqp:link:stolen',
          `A receiver with epoch '${highest}' already exists for partition ${log.partitionId} in consumer group '${source.consumerGroup}'; a receiver without an epoch cannot be created.`,
        ),
      );
      return;
    }
    if (epoch !== undefined && highest !== undefined && epoch < highest) {
      refuse(
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
        this.close(
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
    this.byLink.set(link, consumer);
  }

  dispose(c: Consumer): void {
    c.closed = true;
    if (c.timer) clearTimeout(c.timer);
    c.timer = undefined;
    c.conn.consumers.delete(c);
  }

  close(c: Consumer, error: AmqpErrorShape): void {
    this.dispose(c);
    c.link.close(error);
  }

  /** Closes the consumer links of one hub (or of all, when `hub` is undefined); returns how many. */
  detach(hub: Hub | undefined, error: AmqpErrorShape): number {
    let n = 0;
    for (const c of this.all()) {
      if (hub && c.hub !== hub) continue;
      this.close(c, error);
      n++;
    }
    return n;
  }

  /** Events were appended to `log`: its consumers have more to send. */
  appended(log: PartitionLog): void {
    for (const c of this.all()) if (c.log === log) this.schedulePump(c);
  }

  schedulePump(c: Consumer): void {
    if (c.closed || c.timer) return;
    const delay = this.host.plan.deliveryDelayMs;
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
      this.close(c, amqpError('amqp:internal-error', 'the emulator failed to deliver'));
    }
  }

  private pump(c: Consumer): void {
    if (c.closed || !c.link.is_open()) return;
    const log = c.log;
    if (c.next < log.beginSequenceNumber) c.next = log.beginSequenceNumber;
    let sent = 0;
    while (c.next < log.endSequenceNumber && c.link.sendable() && sent < 256) {
      const entry = log.get(c.next) as LogEntry;
      c.link.send(deliveryPayload(c, entry), undefined, 0);
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
}

function deliveryPayload(c: Consumer, entry: LogEntry): Buffer {
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
