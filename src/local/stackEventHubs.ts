/**
 * The local stack's Event Hubs: the emulator with the ingest and dead-letter hubs and every
 * consumer group the app uses, unless a connection string is given.
 */
import { startEmulator } from '@hubsink/eventhubs-emulator';
import type { HubsinkConfig } from '../config.js';
import { preferredOrFreePort } from './ports.js';
import type { StopList } from './stackStops.js';

/**
 * A long local run must not grow without bound: at most 16 MiB of events per partition (6
 * partitions: ~96 MiB of bodies at most), as `hubsink emulator` bounds its own by bytes.
 */
export const LOCAL_EMULATOR_RETENTION = { maxEventsPerPartition: 250_000, maxBytesPerPartition: 16 * 1024 * 1024 } as const;

export interface StackEventHubs {
  connectionString: string;
  /** The emulator's port and hubs (null with external Event Hubs). */
  emulator: { port: number; hubs: string[] } | null;
  /** What the emulator holds now (null with external Event Hubs). */
  retained(): { events: number; bytes: number; heldBytes: number } | null;
}

export async function startStackEventHubs(
  opts: {
    eventHubConnection?: string;
    port: number;
    config: Pick<HubsinkConfig, 'ingestHub' | 'deadLetterHub' | 'consumerGroup' | 'deadLetterConsumerGroup' | 'replayConsumerGroup'>;
    retention?: { maxEventsPerPartition?: number; maxBytesPerPartition?: number };
  },
  stops: StopList,
): Promise<StackEventHubs> {
  if (opts.eventHubConnection) return { connectionString: opts.eventHubConnection, emulator: null, retained: () => null };
  const c = opts.config;
  const port = await preferredOrFreePort(opts.port);
  const groups = [c.replayConsumerGroup, c.consumerGroup, c.deadLetterConsumerGroup].filter((g, i, a) => g !== '$Default' && a.indexOf(g) === i);
  const emulator = await startEmulator({
    port,
    hubs: [
      { name: c.ingestHub, partitions: 4, consumerGroups: groups },
      { name: c.deadLetterHub, partitions: 2, consumerGroups: groups },
    ],
    retention: opts.retention ?? LOCAL_EMULATOR_RETENTION,
  });
  stops.add('the Event Hubs emulator', 10_000, () => emulator.stop());
  return {
    connectionString: emulator.connectionString(),
    emulator: { port: emulator.port, hubs: [`${c.ingestHub} (4 partitions)`, `${c.deadLetterHub} (2 partitions)`] },
    retained: () => emulator.retained(),
  };
}
