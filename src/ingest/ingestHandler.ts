/**
 * Handler factory for the `ingest` function. Kept apart from the registration so tests can call it
 * with an InvocationContext and realistic trigger metadata, and with their own dependencies.
 */
import type { InvocationContext } from '@azure/functions';
import { normalizeFunctionsBatch } from '../pipeline/normalize.js';
import { describeError, withDescribedMessage } from '../pipeline/classify.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { formatCounts, ingestBatch, type IngestDeps, type IngestResult } from './ingestBatch.js';

export interface IngestHandlerDeps {
  ingest: IngestDeps;
  hub: string;
  consumerGroup: string;
  telemetry?: Telemetry;
}

export function makeIngestHandler(getDeps: () => Promise<IngestHandlerDeps>) {
  return async function ingestHandler(messages: unknown, context: InvocationContext): Promise<IngestResult> {
    const deps = await getDeps();
    const raws = normalizeFunctionsBatch(messages, context.triggerMetadata ?? {}, { hub: deps.hub, consumerGroup: deps.consumerGroup });
    const partition = raws[0]?.source.partitionId ?? 'unknown';
    const retry = context.retryContext ? ` retry=${context.retryContext.retryCount}` : '';
    try {
      const result = await ingestBatch(deps.ingest, raws);
      deps.telemetry?.ingestBatch(deps.hub, result);
      context.log(`ingest partition=${partition} ${formatCounts(result)}${retry}`);
      return result;
    } catch (err) {
      // Throwing keeps the checkpoint: the retry policy re-invokes this same batch.
      context.error(`ingest partition=${partition} events=${raws.length} failed, the host will retry the batch: ${describeError(err)}${retry}`);
      throw withDescribedMessage(err);
    }
  };
}
