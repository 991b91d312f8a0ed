/**
 * Events as the service sees them: a transfer is either a batch envelope (message format
 * 0x80013700, one data section per encoded event) or a plain message (format 0) that is one event.
 * Each stored event keeps the producer's bytes; the service-owned annotations are added to the
 * message-annotations section at enqueue time.
 */
import {
  AmqpDecodeError,
  Section,
  encodeLong,
  encodeMapFromPairs,
  encodeSection,
  encodeString,
  encodeSymbol,
  encodeTimestamp,
  readBinary,
  readMapEntries,
  readStringLike,
  splitSections,
} from './amqpCodec.js';

export const BATCH_FORMAT = 0x80013700;

export const Annotation = {
  partitionKey: 'x-opt-partition-key',
  sequenceNumber: 'x-opt-sequence-number',
  offset: 'x-opt-offset',
  enqueuedTime: 'x-opt-enqueued-time',
} as const;

/** Keys only the service may set: a producer's values for them are dropped. */
const SERVICE_KEYS = new Set<string>([Annotation.sequenceNumber, Annotation.offset, Annotation.enqueuedTime, 'x-opt-publisher', 'x-opt-partition-id']);

export interface Envelope {
  events: Buffer[];
  /** The envelope's x-opt-partition-key (the SDK copies the first event's annotations there). */
  partitionKey: string | undefined;
}

function partitionKeyIn(buf: Buffer, mapPos: number): string | undefined {
  for (const e of readMapEntries(buf, mapPos)) {
    if (e.key === Annotation.partitionKey) {
      const fc = buf[e.valueStart];
      if (fc === 0x40) return undefined;
      return readStringLike(buf, e.valueStart);
    }
  }
  return undefined;
}

/** Decodes a batch envelope into its encoded events. */
export function decodeEnvelope(payload: Buffer): Envelope {
  const events: Buffer[] = [];
  let partitionKey: string | undefined;
  for (const s of splitSections(payload)) {
    if (s.code === Section.data) events.push(readBinary(payload, s.valueStart));
    else if (s.code === Section.messageAnnotations) partitionKey = partitionKeyIn(payload, s.valueStart);
    else if (s.code === Section.amqpValue || s.code === Section.amqpSequence) {
      throw new AmqpDecodeError('a batch envelope carries its events in data sections');
    }
  }
  if (events.length === 0) throw new AmqpDecodeError('the batch envelope holds no events');
  return { events, partitionKey };
}

export interface PreparedEvent {
  /** The header section, if any (kept in front of the annotations). */
  head: Buffer;
  /** The producer's message-annotation pairs minus service-owned keys, concatenated. */
  pairs: Buffer;
  pairCount: number;
  /** properties, application-properties, body and footer sections, unchanged. */
  rest: Buffer;
  partitionKey: string | undefined;
}

/** Splits one encoded event so the service annotations can be added without touching the rest. */
export function prepareEvent(raw: Buffer): PreparedEvent {
  const head: Buffer[] = [];
  const pairs: Buffer[] = [];
  const rest: Buffer[] = [];
  let pairCount = 0;
  let partitionKey: string | undefined;
  let sawBody = false;
  for (const s of splitSections(raw)) {
    switch (s.code) {
      case Section.header:
        head.push(raw.subarray(s.start, s.end));
        break;
      case Section.deliveryAnnotations:
        // Delivery annotations are per hop; the service does not forward them.
        break;
      case Section.messageAnnotations:
        for (const e of readMapEntries(raw, s.valueStart)) {
          if (e.key !== undefined && SERVICE_KEYS.has(e.key)) continue;
          if (e.key === Annotation.partitionKey && raw[e.valueStart] !== 0x40) partitionKey = readStringLike(raw, e.valueStart);
          pairs.push(raw.subarray(e.keyStart, e.end));
          pairCount++;
        }
        break;
      case -1:
        throw new AmqpDecodeError('unknown section descriptor in an event');
      default:
        if (s.code === Section.data || s.code === Section.amqpValue || s.code === Section.amqpSequence) sawBody = true;
        rest.push(raw.subarray(s.start, s.end));
    }
  }
  if (!sawBody) throw new AmqpDecodeError('an event has no body section');
  return { head: Buffer.concat(head), pairs: Buffer.concat(pairs), pairCount, rest: Buffer.concat(rest), partitionKey };
}

export interface Stamp {
  sequenceNumber: number;
  offset: string;
  enqueuedTimeMs: number;
  /** Partition key to stamp when the event itself does not carry one (it came from the envelope). */
  partitionKey: string | undefined;
}

/** The event as it will be delivered (minus delivery annotations): header, then annotations + rest. */
export function stampEvent(ev: PreparedEvent, stamp: Stamp): { head: Buffer; tail: Buffer } {
  const extra: Buffer[] = [ev.pairs];
  let count = ev.pairCount;
  if (ev.partitionKey === undefined && stamp.partitionKey !== undefined) {
    extra.push(encodeSymbol(Annotation.partitionKey), encodeString(stamp.partitionKey));
    count++;
  }
  extra.push(
    encodeSymbol(Annotation.sequenceNumber),
    encodeLong(stamp.sequenceNumber),
    encodeSymbol(Annotation.offset),
    encodeString(stamp.offset),
    encodeSymbol(Annotation.enqueuedTime),
    encodeTimestamp(stamp.enqueuedTimeMs),
  );
  count += 3;
  const annotations = encodeSection(Section.messageAnnotations, encodeMapFromPairs(Buffer.concat(extra), count));
  return { head: ev.head, tail: Buffer.concat([annotations, ev.rest]) };
}

export interface RuntimeInfo {
  lastSequenceNumber: number;
  lastOffset: string;
  lastEnqueuedTimeMs: number;
  retrievalTimeMs: number;
}

/** Delivery annotations a receiver gets when it asked for runtime metrics. */
export function runtimeInfoSection(info: RuntimeInfo): Buffer {
  const pairs = Buffer.concat([
    encodeSymbol('last_enqueued_sequence_number'),
    encodeLong(info.lastSequenceNumber),
    encodeSymbol('last_enqueued_offset'),
    encodeString(info.lastOffset),
    encodeSymbol('last_enqueued_time_utc'),
    encodeTimestamp(info.lastEnqueuedTimeMs),
    encodeSymbol('runtime_info_retrieval_time_utc'),
    encodeTimestamp(info.retrievalTimeMs),
  ]);
  return encodeSection(Section.deliveryAnnotations, encodeMapFromPairs(pairs, 4));
}
