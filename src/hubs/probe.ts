/**
 * A quick look at a hub before the real work starts, so a setup mistake fails in seconds with its
 * explanation. The SDK counts a refused token as retryable and would spend its whole retry budget
 * (a minute and more) on a wrong key; the probe's client does not retry, and what no retry can fix
 * (a wrong key, a missing hub or consumer group) stops the command. Event Hubs has no request that
 * says whether a consumer group exists, so the probe opens a receiver in it for a moment: one held
 * by an owner-level (epoch) receiver proves the group exists just as well.
 */
import { latestEventPosition, type EventHubConsumerClient } from '@azure/event-hubs';
import type { EventHubsConnection } from '../config.js';
import { createConsumer } from './clients.js';
import { explainServiceError, ServiceError, type EventHubsContext } from './explain.js';

export interface ProbeTarget extends EventHubsContext {
  hub: string;
}

export interface ProbeOptions {
  /** Also fail on an unreachable namespace (a CLI command); the runner's start only stops on what no retry fixes. */
  failUnreachable?: boolean;
  /** Told what an unreachable namespace means when it does not fail the probe. */
  onUnreachable?: (message: string) => void;
  timeoutMs?: number;
}

function receiverProbe(client: EventHubConsumerClient, partitionId: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (result: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sub.close().then(
        () => resolve(result),
        () => resolve(result),
      );
    };
    // No answer in time is no proof of anything: the real work will meet the same state.
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const sub = client.subscribe(
      partitionId,
      {
        processEvents: () => {
          finish(undefined);
          return Promise.resolve();
        },
        processError: (err) => {
          finish(err);
          return Promise.resolve();
        },
      },
      { startPosition: latestEventPosition, maxBatchSize: 1, maxWaitTimeInSeconds: 1, skipParsingBodyAsJson: true },
    );
  });
}

/** Throws a ServiceError when the hub (or its consumer group) cannot serve; returns its partition ids. */
export async function probeEventHubs(conn: EventHubsConnection, target: ProbeTarget, opts: ProbeOptions = {}): Promise<string[] | undefined> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const group = target.consumerGroup ?? '$Default';
  const client = await createConsumer(conn, group, target.hub, undefined, { retryOptions: { maxRetries: 0, timeoutInMs: timeoutMs } });
  const stop = (err: unknown): void => {
    const e = explainServiceError(err, { eventHubs: target });
    if (!e.retryable || opts.failUnreachable === true) throw new ServiceError(e, { cause: err });
    opts.onUnreachable?.(e.message);
  };
  try {
    let ids: string[];
    try {
      ids = await client.getPartitionIds();
    } catch (err) {
      stop(err);
      return undefined;
    }
    const first = ids[0];
    if (target.consumerGroup !== undefined && target.consumerGroup.toLowerCase() !== '$default' && first !== undefined) {
      const err = await receiverProbe(client, first, timeoutMs);
      if (err !== undefined) {
        const e = explainServiceError(err, { eventHubs: target });
        // An owner-level receiver in the group proves it exists.
        if (e.problem !== 'epoch') stop(err);
      }
    }
    return ids;
  } finally {
    await client.close().catch(() => undefined);
  }
}
