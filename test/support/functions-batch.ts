/**
 * Builds what the Functions host passes an Event Hub trigger with cardinality many and dataType
 * binary: the bodies as Buffers and `triggerMetadata` shaped as the Node.js library delivers it
 * (keys camel-cased, numeric strings parsed, sequence numbers as Long objects, enqueued times without
 * `Z`, `partitionKeyArray` missing empty keys; see docs/design.md, "Functions host facts").
 */
import functions, { type InvocationContext } from '@azure/functions';

export interface HostEvent {
  body: Buffer | object | string;
  properties?: Record<string, unknown>;
  partitionKey?: string;
}

export interface HostBatch {
  messages: Buffer[];
  triggerMetadata: Record<string, unknown>;
}

export function hostBatch(
  events: readonly HostEvent[],
  opts: { hub: string; partitionId?: string; consumerGroup?: string; firstSequence?: number; enqueued?: Date } = { hub: 'clickstream' },
): HostBatch {
  const partitionId = opts.partitionId ?? '0';
  const first = opts.firstSequence ?? 0;
  const t0 = (opts.enqueued ?? new Date()).getTime();
  const messages = events.map((e) => (Buffer.isBuffer(e.body) ? e.body : Buffer.from(typeof e.body === 'string' ? e.body : JSON.stringify(e.body))));
  const long = (n: number) => ({ low: n | 0, high: Math.floor(n / 2 ** 32), unsigned: false });
  // The host writes times without a zone designator.
  const hostTime = (ms: number) => new Date(ms).toISOString().replace('Z', '');
  const systemPropertiesArray = events.map((e, i) => ({
    sequenceNumber: first + i,
    offset: (first + i) * 1024, // numeric-looking offsets arrive as numbers
    enqueuedTimeUtc: hostTime(t0 + i),
    ...(e.partitionKey ? { partitionKey: e.partitionKey } : {}),
  }));
  return {
    messages,
    triggerMetadata: {
      partitionContext: { fullyQualifiedNamespace: 'ns.servicebus.windows.net', eventHubName: opts.hub, consumerGroup: opts.consumerGroup ?? '$Default', partitionId },
      sequenceNumberArray: events.map((_, i) => long(first + i)),
      offsetArray: events.map((_, i) => (first + i) * 1024),
      enqueuedTimeUtcArray: events.map((_, i) => hostTime(t0 + i)),
      // Empty partition keys are dropped by the host, so this array may be shorter than the batch.
      partitionKeyArray: events.map((e) => e.partitionKey ?? '').filter((k) => k !== ''),
      propertiesArray: events.map((e) => camelKeys(e.properties ?? {})),
      systemPropertiesArray,
    },
  };
}

function camelKeys(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k.charAt(0).toLowerCase() + k.slice(1), v]));
}

export function invocationContext(functionName: string, triggerMetadata: Record<string, unknown>, logs: string[] = [], retryCount?: number): InvocationContext {
  return new functions.InvocationContext({
    invocationId: `test-${Math.random().toString(16).slice(2)}`,
    functionName,
    triggerMetadata,
    ...(retryCount !== undefined ? { retryContext: { retryCount, maxRetryCount: -1 } } : {}),
    logHandler: (_level, ...args) => logs.push(args.map(String).join(' ')),
  });
}
