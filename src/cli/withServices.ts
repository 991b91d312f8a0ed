/**
 * A command that talks to Event Hubs or blob storage runs its remote work in `withServices`, with
 * the settings and options that name each thing it uses (src/hubs/explain.ts does the explaining).
 */
import { explained, type ServiceContext } from '../hubs/explain.js';
export { eventHubsContext, storageContext } from '../hubs/explain.js';

/** Runs `fn`; what it throws that is not ours leaves explained in the command's context. */
export async function withServices<T>(ctx: ServiceContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw explained(err, ctx);
  }
}
