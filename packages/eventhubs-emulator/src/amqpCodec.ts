/**
 * Just enough of the AMQP 1.0 type system (spec part 1.6 and 3.2) to handle messages at the byte
 * level. The emulator stores what the producer sent as raw bytes and only rewrites the
 * message-annotations section, so every other section (bodies, application properties with their
 * exact AMQP types, footers) reaches consumers byte for byte.
 */

export class AmqpDecodeError extends Error {
  override name = 'AmqpDecodeError';
}

/** Section descriptors (spec 3.2), as small ulongs. */
export const Section = {
  header: 0x70,
  deliveryAnnotations: 0x71,
  messageAnnotations: 0x72,
  properties: 0x73,
  applicationProperties: 0x74,
  data: 0x75,
  amqpSequence: 0x76,
  amqpValue: 0x77,
  footer: 0x78,
} as const;

const symbolicSections: Record<string, number> = {
  'amqp:header:list': Section.header,
  'amqp:delivery-annotations:map': Section.deliveryAnnotations,
  'amqp:message-annotations:map': Section.messageAnnotations,
  'amqp:properties:list': Section.properties,
  'amqp:application-properties:map': Section.applicationProperties,
  'amqp:data:binary': Section.data,
  'amqp:amqp-sequence:list': Section.amqpSequence,
  'amqp:amqp-value:*': Section.amqpValue,
  'amqp:footer:map': Section.footer,
};

function need(buf: Buffer, end: number): void {
  if (end > buf.length) throw new AmqpDecodeError(`truncated AMQP value (needs ${end} bytes, has ${buf.length})`);
}

/**
 * Position just after the encoded value that starts at `pos`. The format code's high nibble tells
 * the width class (spec 1.6 "subcategories"), so no value needs decoding to be skipped.
 */
export function valueEnd(buf: Buffer, pos: number): number {
  need(buf, pos + 1);
  const code = buf[pos] as number;
  if (code === 0x00) {
    const afterDescriptor = valueEnd(buf, pos + 1);
    return valueEnd(buf, afterDescriptor);
  }
  let end: number;
  switch (code >> 4) {
    case 0x4:
      end = pos + 1;
      break;
    case 0x5:
      end = pos + 2;
      break;
    case 0x6:
      end = pos + 3;
      break;
    case 0x7:
      end = pos + 5;
      break;
    case 0x8:
      end = pos + 9;
      break;
    case 0x9:
      end = pos + 17;
      break;
    case 0xa:
    case 0xc:
    case 0xe:
      need(buf, pos + 2);
      end = pos + 2 + (buf[pos + 1] as number);
      break;
    case 0xb:
    case 0xd:
    case 0xf:
      need(buf, pos + 5);
      end = pos + 5 + buf.readUInt32BE(pos + 1);
      break;
    default:
      throw new AmqpDecodeError(`unknown AMQP format code 0x${code.toString(16)} at ${pos}`);
  }
  need(buf, end);
  return end;
}

/** Reads a ulong or symbol descriptor and maps it to a section code (or -1 if it is none of them). */
function readDescriptor(buf: Buffer, pos: number): { code: number; end: number } {
  need(buf, pos + 1);
  const fc = buf[pos] as number;
  const end = valueEnd(buf, pos);
  if (fc === 0x53) return { code: buf[pos + 1] as number, end };
  if (fc === 0x44) return { code: 0, end };
  if (fc === 0x80) {
    const v = buf.readBigUInt64BE(pos + 1);
    return { code: v <= 0xffn ? Number(v) : -1, end };
  }
  if (fc === 0xa3 || fc === 0xb3) {
    const s = readStringLike(buf, pos);
    return { code: symbolicSections[s] ?? -1, end };
  }
  return { code: -1, end };
}

export interface SectionSpan {
  /** Section descriptor code (0x70..0x78), or -1 for an unknown descriptor. */
  code: number;
  /** Offset of the 0x00 constructor that starts the section. */
  start: number;
  /** Offset where the section's value starts (after the descriptor). */
  valueStart: number;
  end: number;
}

/** Splits an encoded message into its sections, in order. */
export function splitSections(buf: Buffer): SectionSpan[] {
  const out: SectionSpan[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (buf[pos] !== 0x00) throw new AmqpDecodeError(`expected a described section at ${pos}`);
    const d = readDescriptor(buf, pos + 1);
    const end = valueEnd(buf, d.end);
    out.push({ code: d.code, start: pos, valueStart: d.end, end });
    pos = end;
  }
  return out;
}

/** Bytes of a binary value (vbin8/vbin32). */
export function readBinary(buf: Buffer, pos: number): Buffer {
  const fc = buf[pos];
  if (fc === 0xa0) return buf.subarray(pos + 2, valueEnd(buf, pos));
  if (fc === 0xb0) return buf.subarray(pos + 5, valueEnd(buf, pos));
  throw new AmqpDecodeError(`expected binary at ${pos}, found 0x${(fc ?? 0).toString(16)}`);
}

/** Text of a string or symbol value; throws for anything else. */
export function readStringLike(buf: Buffer, pos: number): string {
  const fc = buf[pos];
  const end = valueEnd(buf, pos);
  if (fc === 0xa1 || fc === 0xa3) return buf.toString(fc === 0xa1 ? 'utf8' : 'latin1', pos + 2, end);
  if (fc === 0xb1 || fc === 0xb3) return buf.toString(fc === 0xb1 ? 'utf8' : 'latin1', pos + 5, end);
  throw new AmqpDecodeError(`expected a string or symbol at ${pos}, found 0x${(fc ?? 0).toString(16)}`);
}

export interface MapEntry {
  /** Key text when the key is a symbol or string, else undefined. */
  key: string | undefined;
  keyStart: number;
  valueStart: number;
  end: number;
}

/** Entries of a map value at `pos` (map8/map32, or null meaning empty). */
export function readMapEntries(buf: Buffer, pos: number): MapEntry[] {
  const fc = buf[pos];
  if (fc === 0x40) return [];
  let count: number;
  let p: number;
  if (fc === 0xc1) {
    need(buf, pos + 3);
    count = buf[pos + 2] as number;
    p = pos + 3;
  } else if (fc === 0xd1) {
    need(buf, pos + 9);
    count = buf.readUInt32BE(pos + 5);
    p = pos + 9;
  } else {
    throw new AmqpDecodeError(`expected a map at ${pos}, found 0x${(fc ?? 0).toString(16)}`);
  }
  if (count % 2 !== 0) throw new AmqpDecodeError('map with an odd number of elements');
  const out: MapEntry[] = [];
  for (let i = 0; i < count; i += 2) {
    const keyStart = p;
    const valueStart = valueEnd(buf, keyStart);
    const end = valueEnd(buf, valueStart);
    let key: string | undefined;
    const kc = buf[keyStart];
    if (kc === 0xa1 || kc === 0xa3 || kc === 0xb1 || kc === 0xb3) key = readStringLike(buf, keyStart);
    out.push({ key, keyStart, valueStart, end });
    p = end;
  }
  return out;
}

// ---- encoders for the few values the emulator writes itself ----

function variable(code8: number, code32: number, bytes: Buffer): Buffer {
  if (bytes.length <= 0xff) return Buffer.concat([Buffer.from([code8, bytes.length]), bytes]);
  const head = Buffer.alloc(5);
  head[0] = code32;
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

export function encodeSymbol(s: string): Buffer {
  return variable(0xa3, 0xb3, Buffer.from(s, 'latin1'));
}

export function encodeString(s: string): Buffer {
  return variable(0xa1, 0xb1, Buffer.from(s, 'utf8'));
}

export function encodeLong(n: number | bigint): Buffer {
  const b = Buffer.alloc(9);
  b[0] = 0x81;
  b.writeBigInt64BE(BigInt(n), 1);
  return b;
}

export function encodeTimestamp(ms: number): Buffer {
  const b = Buffer.alloc(9);
  b[0] = 0x83;
  b.writeBigInt64BE(BigInt(Math.trunc(ms)), 1);
  return b;
}

/** A map32 from already-encoded key/value pairs (`pairs` holds `count` pairs, concatenated). */
export function encodeMapFromPairs(pairs: Buffer, pairCount: number): Buffer {
  const head = Buffer.alloc(9);
  head[0] = 0xd1;
  head.writeUInt32BE(pairs.length + 4, 1);
  head.writeUInt32BE(pairCount * 2, 5);
  return Buffer.concat([head, pairs]);
}

/** A section: 0x00, smallulong descriptor, value. */
export function encodeSection(code: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x00, 0x53, code]), value]);
}
