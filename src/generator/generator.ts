/**
 * The event stream `hubsink generate` sends: the retail model's events as JSON bytes, mixed with
 * exact re-sends (the same bytes again, as a producer that retries after a lost acknowledgement does)
 * and malformed bodies of the kinds real producers get wrong. Each event's label says what it is,
 * so tests and benchmarks know what the pipeline should make of it.
 */
import { createRng, type Rng } from './prng.js';
import { isoWithOffset, RetailModel, type RetailEvent } from './retail.js';

export const MALFORMED_KINDS = [
  'not-json',
  'truncated-json',
  'invalid-utf8',
  'not-an-object',
  'missing-type',
  'bad-tenant',
  'bad-time',
  'out-of-window',
  'empty-body',
] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

/**
 * What a valid event is, as the generator made it (not as a validator reads it back): its storefront,
 * the eventId it carries (undefined when sent id-less, so the pipeline derives one from the body)
 * and the instant it happened. Tests build the exact expected contents of `events` from these.
 */
export interface ValidLabel {
  tenantId: number;
  type: string;
  eventId: string | undefined;
  occurredAtMs: number;
}

/**
 * Every event carries its label: `event` (valid and new), `duplicate` (an exact re-send of an earlier
 * valid one, same label), `malformed` (invalid, `malformed` naming why); `idless` marks the valid
 * ones sent without an eventId.
 */
export type GeneratedEvent =
  | ({ kind: 'event'; body: Buffer; partitionKey: string; idless: boolean } & ValidLabel)
  | ({ kind: 'duplicate'; body: Buffer; partitionKey: string; idless: boolean } & ValidLabel)
  | { kind: 'malformed'; body: Buffer; tenantId: number; partitionKey: string; malformed: MalformedKind };

export interface GeneratorOptions {
  seed: string | number;
  tenants: number;
  tenantBase?: number;
  /** Probability that an event is an exact re-send of an earlier valid one. */
  duplicates?: number;
  /** Probability that an event is malformed. */
  malformed?: number;
  /** Zipf exponent of traffic across storefronts. */
  skew?: number;
  /** Share of valid events sent without an eventId. */
  idlessShare?: number;
  /** Milliseconds since the epoch; events carry times near it. Injected so tests control it. */
  clock?: () => number;
  /** How far back a re-send may reach (in valid events). */
  duplicateWindow?: number;
}

export interface GeneratorStats {
  total: number;
  events: number;
  duplicates: number;
  malformed: number;
  byType: Record<string, number>;
  byMalformed: Record<string, number>;
}

export interface EventGenerator {
  next(): GeneratedEvent;
  readonly stats: GeneratorStats;
  readonly tenantIds: readonly number[];
}

function checkRate(name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0 || v >= 1) throw new RangeError(`${name} must be in [0, 1), got ${String(v)}`);
  return v;
}

/** Pure: the malformed body of a kind, built from a valid event so it looks like real traffic gone wrong. */
export function malformedBody(kind: MalformedKind, e: RetailEvent, rng: Rng, nowMs: number): Buffer {
  const json = JSON.stringify(e);
  switch (kind) {
    case 'not-json':
      return Buffer.from(rng.pick(['GET /favicon.ico HTTP/1.1', 'tenantId=3&type=page_view', '<event type="click"/>', 'undefined', 'NaN']), 'utf8');
    case 'truncated-json':
      // Cut inside the object: at least the opening brace stays, the closing one never does.
      return Buffer.from(json.slice(0, 1 + rng.int(json.length - 2)), 'utf8');
    case 'invalid-utf8': {
      // A lone continuation byte and an overlong encoding inside a string value.
      const marker = Buffer.from('"type":"', 'utf8');
      const b = Buffer.from(json, 'utf8');
      const at = b.indexOf(marker) + marker.length;
      return Buffer.concat([b.subarray(0, at), Buffer.from([0x80, 0xc0, 0xaf]), b.subarray(at)]);
    }
    case 'not-an-object':
      return Buffer.from(JSON.stringify(rng.pick([[e], 'page_view', 42, null, true])), 'utf8');
    case 'missing-type': {
      const { type: _type, ...rest } = e;
      return Buffer.from(JSON.stringify(rest), 'utf8');
    }
    case 'bad-tenant':
      return Buffer.from(JSON.stringify({ ...e, tenantId: rng.pick<unknown>([`store-${e.tenantId}`, -e.tenantId, e.tenantId + 0.5, 0, null]) }), 'utf8');
    case 'bad-time':
      return Buffer.from(JSON.stringify({ ...e, occurredAt: rng.pick<unknown>(['yesterday', '2024-13-45T25:61:00Z', 'not a time', 1700000000, '']) }), 'utf8');
    case 'out-of-window': {
      // Years away from now, far outside any retention window or partitions created ahead.
      const years = rng.chance(0.5) ? -3 : 3;
      return Buffer.from(JSON.stringify({ ...e, occurredAt: isoWithOffset(nowMs + years * 365 * 86_400_000, 0) }), 'utf8');
    }
    case 'empty-body':
      return Buffer.alloc(0);
  }
}

export function createGenerator(opts: GeneratorOptions): EventGenerator {
  const rng = createRng(opts.seed);
  const clock = opts.clock ?? Date.now;
  const duplicateRate = checkRate('duplicates', opts.duplicates ?? 0);
  const malformedRate = checkRate('malformed', opts.malformed ?? 0);
  if (duplicateRate + malformedRate >= 1) throw new RangeError('duplicates + malformed must be below 1');
  const model = new RetailModel(rng.fork('retail'), clock, {
    tenants: opts.tenants,
    ...(opts.tenantBase !== undefined ? { tenantBase: opts.tenantBase } : {}),
    ...(opts.skew !== undefined ? { skew: opts.skew } : {}),
    ...(opts.idlessShare !== undefined ? { idlessShare: opts.idlessShare } : {}),
  });
  const mix = rng.fork('mix');
  const bad = rng.fork('malformed');
  const window = opts.duplicateWindow ?? 4096;
  // Recently sent valid events: re-sends reach back across batches, not only within one.
  const recent: Extract<GeneratedEvent, { kind: 'event' }>[] = [];
  let ring = 0;
  const stats: GeneratorStats = { total: 0, events: 0, duplicates: 0, malformed: 0, byType: {}, byMalformed: {} };

  return {
    stats,
    tenantIds: model.tenantIds,
    next(): GeneratedEvent {
      stats.total++;
      const r = mix.next();
      if (r < malformedRate) {
        const e = model.next();
        const kind = bad.pick(MALFORMED_KINDS);
        stats.malformed++;
        stats.byMalformed[kind] = (stats.byMalformed[kind] ?? 0) + 1;
        return { kind: 'malformed', body: malformedBody(kind, e, bad, clock()), tenantId: e.tenantId, partitionKey: String(e.tenantId), malformed: kind };
      }
      if (r < malformedRate + duplicateRate && recent.length > 0) {
        const orig = mix.pick(recent);
        stats.duplicates++;
        return { ...orig, kind: 'duplicate' };
      }
      const e = model.next();
      const ev = {
        kind: 'event' as const,
        body: Buffer.from(JSON.stringify(e), 'utf8'),
        tenantId: e.tenantId,
        partitionKey: String(e.tenantId),
        type: e.type,
        eventId: e.eventId,
        idless: e.eventId === undefined,
        occurredAtMs: model.instantOf(e),
      };
      stats.events++;
      stats.byType[e.type] = (stats.byType[e.type] ?? 0) + 1;
      if (recent.length < window) recent.push(ev);
      else {
        recent[ring] = ev;
        ring = (ring + 1) % window;
      }
      return ev;
    },
  };
}
