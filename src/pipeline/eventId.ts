/**
 * Event ids for events that arrive without one. A name-based UUID (v5) of the exact body bytes makes
 * a redelivered or replayed copy of the same body get the same id, so the events key turns it into a
 * no-op instead of a second row (docs/design.md, guarantee 2).
 */
import { v5 as uuidv5 } from 'uuid';

/**
 * The namespace of hubsink's derived ids. Fixed forever: changing it would give every id-less event
 * already stored a different id on redelivery, and so a duplicate row. (Generated once at random.)
 */
export const HUBSINK_EVENT_ID_NAMESPACE = 'b1483146-fdbc-48ae-9410-1facad5ec431';

export function deriveEventId(body: Buffer): string {
  // A view, not a copy: v5 hashes the bytes as given; a Buffer is a Uint8Array.
  return uuidv5(new Uint8Array(body.buffer, body.byteOffset, body.byteLength), HUBSINK_EVENT_ID_NAMESPACE);
}
