/**
 * One partition's event log: sequence numbers from 0, opaque offsets, enqueued times that never go
 * backwards (one per batch, each batch at least 1 ms after the one before), and retention by count and/or bytes so a long local run stays bounded. Pure: the clock is
 * injected and no I/O happens here.
 */
import { type PreparedEvent, stampEvent } from './eventCodec.js';

export interface LogEntry {
  readonly sequenceNumber: number;
  readonly offset: string;
  readonly enqueuedTimeMs: number;
  readonly partitionKey: string | undefined;
  /**
   * The event as delivered, minus delivery annotations: its header section (if any), then the
   * message annotations (with the service's stamps) and every later section. A view into one of
   * the log's segments.
   */
  readonly bytes: Buffer;
  /** Length of the header section at the start of `bytes` (0 when there is none). */
  readonly headLength: number;
  /** Byte position in the partition's stream, used for numeric offsets. */
  readonly position: number;
}

export interface RetentionLimits {
  maxEventsPerPartition?: number;
  maxBytesPerPartition?: number;
}

export interface PartitionLogOptions {
  partitionId: string;
  /** Non-numeric offsets, so code that parses offsets as numbers fails in tests. */
  opaqueOffsets?: boolean;
  retention?: RetentionLimits;
  now?: () => number;
}

const OPAQUE_PREFIX = 'eo.';

/**
 * Small events are stored back to back in segments of this size; an event larger than
 * LARGE_EVENT_BYTES gets an allocation of exactly its size (its own overhead is negligible then).
 * One allocation per small event cost far more than the event itself once a partition holds
 * 100,000 of them: each carries a JS object and an allocator header, and the allocator's heap,
 * fragmented by millions of ~500-byte blocks freed out of order, does not shrink. A segment is
 * freed whole when retention drops its last event, so a partition holds its retained events'
 * bytes, plus the unused ends of its segments (under LARGE_EVENT_BYTES each), plus at most two
 * segments (the oldest, partly dropped, and the one being filled).
 */
export const SEGMENT_BYTES = 256 * 1024;
export const LARGE_EVENT_BYTES = SEGMENT_BYTES / 16;

interface Segment {
  buf: Buffer;
  used: number;
  /** Retained events stored in this segment. */
  live: number;
}

export class PartitionLog {
  readonly partitionId: string;
  private readonly opaque: boolean;
  private readonly maxEvents: number;
  private readonly maxBytes: number;
  private readonly now: () => number;
  private entries: LogEntry[] = [];
  /** Index in `entries` of the oldest retained entry (entries before it are dropped lazily). */
  private first = 0;
  private nextSequence = 0;
  private nextPosition = 0;
  private lastTime = 0;
  private retainedBytes = 0;
  /** The segment small events are being copied into. */
  private filling: Segment | undefined;
  /** The segment of each entry, parallel to `entries`. */
  private entrySegments: Segment[] = [];
  private held = 0;

  constructor(opts: PartitionLogOptions) {
    this.partitionId = opts.partitionId;
    this.opaque = opts.opaqueOffsets ?? false;
    this.maxEvents = opts.retention?.maxEventsPerPartition ?? Number.POSITIVE_INFINITY;
    this.maxBytes = opts.retention?.maxBytesPerPartition ?? Number.POSITIVE_INFINITY;
    if (!(this.maxEvents >= 1) || !(this.maxBytes >= 1)) throw new RangeError('retention limits must be at least 1');
    this.now = opts.now ?? Date.now;
  }

  /** Sequence number the next event will get. */
  get endSequenceNumber(): number {
    return this.nextSequence;
  }

  /** Oldest retained sequence number (equals endSequenceNumber when empty). */
  get beginSequenceNumber(): number {
    return this.entries[this.first]?.sequenceNumber ?? this.nextSequence;
  }

  get size(): number {
    return this.entries.length - this.first;
  }

  /** Bytes of the retained events (what `maxBytesPerPartition` bounds). */
  get bytes(): number {
    return this.retainedBytes;
  }

  /** Bytes of the allocations holding the retained events (see SEGMENT_BYTES). */
  get heldBytes(): number {
    return this.held;
  }

  /** Copies `head` and `tail` next to each other into a segment (a fresh one if they do not fit). */
  private store(head: Buffer, tail: Buffer): Buffer {
    const n = head.length + tail.length;
    let seg: Segment;
    if (n > LARGE_EVENT_BYTES) {
      seg = { buf: Buffer.allocUnsafeSlow(n), used: 0, live: 0 };
      this.held += n;
    } else {
      if (!this.filling || this.filling.buf.length - this.filling.used < n) {
        // The one being replaced is freed with its last event (or now, if it has none left).
        if (this.filling && this.filling.live === 0) this.held -= this.filling.buf.length;
        this.filling = { buf: Buffer.allocUnsafeSlow(SEGMENT_BYTES), used: 0, live: 0 };
        this.held += SEGMENT_BYTES;
      }
      seg = this.filling;
    }
    this.entrySegments.push(seg);
    const at = seg.used;
    head.copy(seg.buf, at);
    tail.copy(seg.buf, at + head.length);
    seg.used += n;
    seg.live++;
    return seg.buf.subarray(at, at + n);
  }

  last(): LogEntry | undefined {
    return this.entries[this.entries.length - 1];
  }

  /** Retained entries, oldest first. */
  all(): readonly LogEntry[] {
    return this.entries.slice(this.first);
  }

  formatOffset(sequenceNumber: number, position: number): string {
    return this.opaque ? `${OPAQUE_PREFIX}${sequenceNumber.toString(36)}.p${this.partitionId}` : String(position);
  }

  /**
   * Appends a whole batch; all its events share one enqueued time, as on the service. The promise:
   * distinct batches on a partition get enqueued times at least 1 ms apart, even when they arrive
   * within one millisecond or the wall clock steps back, so an enqueued-time position always falls
   * between two batches. (The log's time runs ahead of the clock only while batches arrive faster
   * than one per millisecond.)
   */
  append(events: readonly PreparedEvent[], partitionKey: string | undefined): LogEntry[] {
    const time = this.nextSequence === 0 ? this.now() : Math.max(this.now(), this.lastTime + 1);
    this.lastTime = time;
    const added: LogEntry[] = [];
    for (const ev of events) {
      const sequenceNumber = this.nextSequence++;
      const position = this.nextPosition;
      const offset = this.formatOffset(sequenceNumber, position);
      const stamped = stampEvent(ev, { sequenceNumber, offset, enqueuedTimeMs: time, partitionKey });
      const entry: LogEntry = {
        sequenceNumber,
        offset,
        enqueuedTimeMs: time,
        partitionKey: ev.partitionKey ?? partitionKey,
        bytes: this.store(stamped.head, stamped.tail),
        headLength: stamped.head.length,
        position,
      };
      this.nextPosition += entry.bytes.length;
      this.retainedBytes += entry.bytes.length;
      this.entries.push(entry);
      added.push(entry);
    }
    this.enforceRetention();
    return added;
  }

  private enforceRetention(): void {
    // The newest event is always kept so the partition's "last enqueued" facts stay true.
    while (this.size > 1 && (this.size > this.maxEvents || this.retainedBytes > this.maxBytes)) {
      const e = this.entries[this.first] as LogEntry;
      this.retainedBytes -= e.bytes.length;
      const seg = this.entrySegments[this.first] as Segment;
      if (--seg.live === 0 && seg !== this.filling) this.held -= seg.buf.length;
      this.first++;
    }
    // Compact now and then instead of shifting the array on every drop.
    if (this.first > 1024 && this.first * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.first);
      this.entrySegments = this.entrySegments.slice(this.first);
      this.first = 0;
    }
  }

  /** The retained entry with this sequence number, if any. */
  get(sequenceNumber: number): LogEntry | undefined {
    const idx = this.first + (sequenceNumber - this.beginSequenceNumber);
    if (idx < this.first || idx >= this.entries.length) return undefined;
    return this.entries[idx];
  }

  /** First retained sequence number whose entry satisfies `pred`, which must be monotonic. */
  private firstWhere(pred: (e: LogEntry) => boolean): number {
    let lo = this.first;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pred(this.entries[mid] as LogEntry)) hi = mid;
      else lo = mid + 1;
    }
    return this.entries[lo]?.sequenceNumber ?? this.nextSequence;
  }

  /** First sequence number to deliver for an enqueued-time filter `> ms`. */
  startAfterTime(ms: number): number {
    return this.firstWhere((e) => e.enqueuedTimeMs > ms);
  }

  /**
   * Sequence number an offset denotes, or undefined when this log never issued it. Offsets are
   * opaque to clients; only the log that issued them interprets them.
   */
  sequenceOfOffset(offset: string): number | undefined {
    if (this.opaque) {
      const m = /^eo\.([0-9a-z]+)\.p(.+)$/.exec(offset);
      if (!m || m[2] !== this.partitionId) return undefined;
      const seq = parseInt(m[1] as string, 36);
      return Number.isSafeInteger(seq) && seq < this.nextSequence ? seq : undefined;
    }
    if (!/^\d+$/.test(offset)) return undefined;
    const pos = Number(offset);
    if (pos >= this.nextPosition) return undefined;
    if (pos < (this.entries[this.first]?.position ?? this.nextPosition)) {
      // Dropped by retention; earlier than anything retained.
      return this.beginSequenceNumber - 1;
    }
    const seq = this.firstWhere((e) => e.position >= pos);
    return this.get(seq)?.position === pos ? seq : undefined;
  }

  /** Drops every event; numbering restarts at 0. */
  clear(): void {
    this.entries = [];
    this.entrySegments = [];
    this.filling = undefined;
    this.held = 0;
    this.first = 0;
    this.nextSequence = 0;
    this.nextPosition = 0;
    this.retainedBytes = 0;
    this.lastTime = 0;
  }
}
