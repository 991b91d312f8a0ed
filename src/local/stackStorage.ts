/**
 * The local stack's checkpoint storage: Azurite. With the emulator, hubs start empty on every run,
 * so checkpoints must too; with external Event Hubs they are kept below the data folder.
 */
import path from 'node:path';
import { startAzurite } from './azurite.js';
import { preferredOrFreePort } from './ports.js';
import type { StopList } from './stackStops.js';

export interface StackStorage {
  connectionString: string;
  port: number;
  persistent: boolean;
}

export async function startStackStorage(opts: { dataDir: string; persistent: boolean; port: number }, stops: StopList): Promise<StackStorage> {
  const azurite = await startAzurite({
    port: await preferredOrFreePort(opts.port),
    ...(opts.persistent ? { location: path.join(opts.dataDir, 'azurite') } : {}),
  });
  stops.add('Azurite', 10_000, () => azurite.stop());
  return { connectionString: azurite.connectionString, port: azurite.port, persistent: opts.persistent };
}
