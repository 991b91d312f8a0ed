/**
 * Where the dead-letter sink sends records too large for any message on the dead-letter hub: poison
 * (`invalid`, `rejected`) is parked directly, which is where the `deadletter` function would have put
 * it. A `transient` record cannot be parked (it must be written, and the database is what failed), so
 * this throws: the ingest function fails and the host retries the batch until the database is back.
 */
import type pg from 'pg';
import { parkDeadLetters } from '../db/deadLetterParking.js';
import { OversizeDeadLetterError } from '../hubs/deadLetterSink.js';
import { isParkReason, type DeadLetterRecord } from '../pipeline/types.js';

export function parkOversize(pool: pg.Pool, schema: string): (records: readonly DeadLetterRecord[]) => Promise<void> {
  return async (records) => {
    const transient = records.filter((r) => !isParkReason(r.reason));
    if (transient.length > 0) {
      throw new OversizeDeadLetterError(
        `${transient.length} transient dead-letter record(s) are too large for the dead-letter hub; the batch is retried until the database takes them`,
      );
    }
    await parkDeadLetters(pool, schema, records);
  };
}
