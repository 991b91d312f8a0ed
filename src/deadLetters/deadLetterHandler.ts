/**
 * Handler factory for the `deadletter` function (Event Hub trigger on the dead-letter hub). Kept
 * apart from the registration so tests can call it with an InvocationContext and realistic trigger
 * metadata built from events really received from a hub.
 *
 * Throwing is how this handler holds its checkpoint: the host checkpoints a batch whether the
 * function succeeded or not, and only the retry policy (retry forever, capped backoff) re-invokes the
 * same batch instead. So every failure to write or park (database down, schema missing) throws.
 */
import type { InvocationContext } from '@azure/functions';
import { describeError, withDescribedMessage } from '../pipeline/classify.js';
import { normalizeFunctionsBatch } from '../pipeline/normalize.js';
import { formatDeadLetterCounts, processDeadLetters, type DeadLetterCounts, type DeadLetterDeps } from './process.js';

export interface DeadLetterHandlerDeps {
  deps: DeadLetterDeps;
  /** The dead-letter hub and the function's consumer group: coordinates for undecodable events. */
  hub: string;
  consumerGroup: string;
}

export function makeDeadLetterHandler(getDeps: () => Promise<DeadLetterHandlerDeps>) {
  return async function deadLetterHandler(messages: unknown, context: InvocationContext): Promise<DeadLetterCounts> {
    const d = await getDeps();
    const raws = normalizeFunctionsBatch(messages, context.triggerMetadata ?? {}, { hub: d.hub, consumerGroup: d.consumerGroup });
    const partition = raws[0]?.source.partitionId ?? 'unknown';
    const retry = context.retryContext ? ` retry=${context.retryContext.retryCount}` : '';
    try {
      const counts = await processDeadLetters(d.deps, raws, 'retry');
      context.log(`deadletter partition=${partition} ${formatDeadLetterCounts(counts)}${retry}`);
      return counts;
    } catch (err) {
      context.error(
        `deadletter partition=${partition} events=${raws.length} failed, the host will retry the batch: ${describeError(err)}${retry}`,
      );
      throw withDescribedMessage(err);
    }
  };
}
