/**
 * The ground truth of generated streams, taken from the generator's labels (what it made) instead of
 * from the validator that ingest and import run: a validator bug must not move the expectation with it.
 */
import { v5 as uuidv5 } from 'uuid';
import type { GeneratedEvent } from '../../src/generator/generator.js';

/**
 * The namespace of ids derived for id-less events (docs/design.md, "Events": a UUIDv5 of the raw body
 * bytes). Written out here rather than imported, so that a change to it in the code fails the tests:
 * it is fixed forever, since stored id-less events would otherwise come back as new rows on redelivery.
 */
const DERIVED_ID_NAMESPACE = 'b1483146-fdbc-48ae-9410-1facad5ec431';

/** The `events` key (`tenant|eventId|occurredAt ms`) a valid generated event must be stored under. */
export function labelKey(ev: Extract<GeneratedEvent, { kind: 'event' | 'duplicate' }>): string {
  const eventId = ev.eventId ?? uuidv5(new Uint8Array(ev.body.buffer, ev.body.byteOffset, ev.body.byteLength), DERIVED_ID_NAMESPACE);
  return `${ev.tenantId}|${eventId.toLowerCase()}|${ev.occurredAtMs}`;
}

export interface LabelTruth {
  /** Key of every distinct valid event: exactly what `events` must hold. */
  expected: Set<string>;
  /** Indexes (0-based) of the events labelled malformed. */
  malformedAt: number[];
  /** Valid events whose key was already expected (labelled duplicates, and any other exact repeat). */
  repeats: number;
}

export function truthOfLabels(events: readonly GeneratedEvent[]): LabelTruth {
  const expected = new Set<string>();
  const malformedAt: number[] = [];
  let repeats = 0;
  events.forEach((ev, i) => {
    if (ev.kind === 'malformed') {
      malformedAt.push(i);
      return;
    }
    const k = labelKey(ev);
    if (expected.has(k)) repeats++;
    else expected.add(k);
  });
  return { expected, malformedAt, repeats };
}
