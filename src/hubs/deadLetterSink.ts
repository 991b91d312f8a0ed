/**
 * DeadLetterSink on an Event Hub. Records are grouped by partition key (the tenant when known) so
 * a tenant's dead letters stay ordered on one partition; each group is packed into as few batches
 * as the hub's size limit allows. Any send failure propagates: the ingest function must then fail
 * so the host re-invokes the batch instead of checkpointing past events nobody has.
 */
import type { EventHubProducerClient } from '@azure/event-hubs';
import { toDeadLetterMessage } from '../pipeline/deadletter.js';
import type { DeadLetterRecord, DeadLetterSink } from '../pipeline/types.js';

export class EventHubDeadLetterSink implements DeadLetterSink {
  constructor(private readonly producer: EventHubProducerClient) {}

  async send(records: readonly DeadLetterRecord[]): Promise<void> {
    const groups = new Map<string, ReturnType<typeof toDeadLetterMessage>[]>();
    for (const rec of records) {
      const msg = toDeadLetterMessage(rec);
      const key = msg.partitionKey ?? '';
      let g = groups.get(key);
      if (!g) groups.set(key, (g = []));
      g.push(msg);
    }
    for (const [key, msgs] of groups) {
      const options = key ? { partitionKey: key } : {};
      let batch = await this.producer.createBatch(options);
      for (const m of msgs) {
        const event = { body: m.body, properties: m.properties, contentType: 'application/octet-stream' };
        if (batch.tryAdd(event)) continue;
        if (batch.count === 0) throw new Error(`dead-letter record of ${m.body.length} bytes exceeds the hub's maximum message size`);
        await this.producer.sendBatch(batch);
        batch = await this.producer.createBatch(options);
        if (!batch.tryAdd(event)) throw new Error(`dead-letter record of ${m.body.length} bytes exceeds the hub's maximum message size`);
      }
      if (batch.count > 0) await this.producer.sendBatch(batch);
    }
  }

  close(): Promise<void> {
    return this.producer.close();
  }
}
