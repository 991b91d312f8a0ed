/**
 * explainServiceError as a table: each error shape the SDKs were seen to throw (an AggregateError of
 * retries with no message, wrapped again in `cause`) is explained by its innermost cause, with the
 * setting or command that fixes it, and never as an empty message.
 */
import { describe, expect, test } from 'vitest';
import { eventHubsContext, eventHubsEndpoint, explainServiceError, explained, ServiceError, storageContext, storageEndpoint, type ServiceContext } from '../../src/hubs/explain.js';

/** An @azure/core-amqp MessagingError as it arrives (a plain Error with code and retryable). */
function messaging(message: string, code: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { name: 'MessagingError', code, retryable: code !== 'MessagingEntityNotFoundError', ...extra });
}

/** What core-amqp's retry throws: every attempt in an AggregateError, the same again as cause. */
function retried(inner: Error): Error {
  return Object.assign(new AggregateError([inner, inner], ''), { retryable: true, cause: new AggregateError([inner, inner], '') });
}

function restError(message: string, code: string, statusCode: number | undefined, url: string): Error {
  return Object.assign(new Error(message), { name: 'RestError', code, statusCode, request: { url } });
}

const ctx: ServiceContext = {
  eventHubs: { setting: 'EventHubConnection', endpoint: 'myns.servicebus.windows.net:5671', hub: 'clickstream', hubSetting: '--hub', consumerGroup: 'analytics', consumerGroupSetting: '--consumer-group' },
  storage: { setting: 'AzureWebJobsStorage', endpoint: 'acct.blob.core.windows.net:443' },
};

const cases: { name: string; err: unknown; ctx?: ServiceContext; problem: string; kind: string; retryable: boolean; says: RegExp[]; never?: RegExp[] }[] = [
  {
    name: 'wrong SAS key, wrapped twice by the retries',
    err: retried(messaging('InvalidSignature: the token has an invalid signature', 'UnauthorizedError')),
    ctx,
    problem: 'auth',
    kind: 'failed',
    retryable: false,
    says: [/refused the credentials/, /InvalidSignature/, /SharedAccessKey in EventHubConnection/, /myns\.servicebus\.windows\.net:5671/],
  },
  {
    name: 'wrong key given with --connection',
    err: retried(messaging('InvalidSignature: the token has an invalid signature', 'UnauthorizedError')),
    ctx: { eventHubs: { setting: '--connection', endpoint: '127.0.0.1:5672' } },
    problem: 'auth',
    kind: 'failed',
    retryable: false,
    says: [/SharedAccessKey in --connection/, /source \.hubsink\/env/],
  },
  {
    name: 'unknown hub, as the management link reports it',
    err: messaging("The messaging entity 'sb://myns.servicebus.windows.net/nosuchhub/$management' could not be found.", 'MessagingEntityNotFoundError'),
    ctx: { eventHubs: { setting: 'EventHubConnection', endpoint: 'myns.servicebus.windows.net:5671' } },
    problem: 'hub-not-found',
    kind: 'failed',
    retryable: false,
    says: [/event hub 'nosuchhub' does not exist/, /az eventhubs eventhub create .*--namespace-name myns --name nosuchhub/],
    never: [/\$management/, /sb:\/\//],
  },
  {
    name: 'unknown hub on the local emulator',
    err: messaging("The messaging entity 'sb://127.0.0.1:5672/nosuch/$management' could not be found.", 'MessagingEntityNotFoundError'),
    ctx: { eventHubs: { setting: 'EventHubConnection', endpoint: '127.0.0.1:5672', hub: 'nosuch', hubSetting: 'INGEST_EVENTHUB_NAME' } },
    problem: 'hub-not-found',
    kind: 'failed',
    retryable: false,
    says: [/hubsink emulator --hub nosuch:4/, /with INGEST_EVENTHUB_NAME/],
    never: [/\$management/],
  },
  {
    name: 'unknown consumer group',
    err: messaging("The messaging entity 'clickstream/ConsumerGroups/analytics' could not be found.", 'MessagingEntityNotFoundError'),
    ctx,
    problem: 'group-not-found',
    kind: 'failed',
    retryable: false,
    says: [/consumer group 'analytics' does not exist on event hub 'clickstream'/, /consumer-group create .*--eventhub-name clickstream --name analytics/, /with --consumer-group/],
  },
  {
    name: 'unknown consumer group, named only by the message',
    err: messaging("The messaging entity 'dl/ConsumerGroups/nosuchgroup' could not be found.", 'MessagingEntityNotFoundError'),
    problem: 'group-not-found',
    kind: 'failed',
    retryable: false,
    says: [/consumer group 'nosuchgroup' does not exist on event hub 'dl'/],
  },
  {
    name: 'closed port',
    err: retried(messaging('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED', { address: '127.0.0.1', port: 1 })),
    ctx,
    problem: 'unreachable',
    kind: 'unavailable',
    retryable: true,
    says: [/cannot reach Event Hubs at 127\.0\.0\.1:1 \(ECONNREFUSED\)/, /Endpoint in EventHubConnection/],
  },
  {
    // Seen on a loaded machine: the port answered by something that is not Event Hubs, or a connect
    // that timed out. The SDK's error then has no socket code, only this message; it printed bare.
    name: 'a connection that never opened',
    err: retried(Object.assign(new Error('Failed to connect'), { name: 'Error' })),
    ctx,
    problem: 'unreachable',
    kind: 'unavailable',
    retryable: true,
    says: [/cannot reach Event Hubs at myns\.servicebus\.windows\.net:5671 \(Failed to connect\)/, /Endpoint in EventHubConnection/],
  },
  {
    name: 'unknown host',
    err: retried(messaging('getaddrinfo ENOTFOUND nosuch.servicebus.windows.net', 'ENOTFOUND')),
    ctx: { eventHubs: { setting: 'EventHubConnection', endpoint: 'nosuch.servicebus.windows.net:5671' } },
    problem: 'unreachable',
    kind: 'unavailable',
    retryable: true,
    says: [/nosuch\.servicebus\.windows\.net:5671 \(ENOTFOUND\)/],
  },
  {
    name: 'an epoch receiver holds the group',
    err: messaging("A receiver with epoch '0' already exists for partition 0 in consumer group '$Default'", 'ReceiverDisconnectedError'),
    ctx,
    problem: 'epoch',
    kind: 'refused',
    retryable: false,
    says: [/owner-level \(epoch\) receiver/, /--read-consumer-group/],
  },
  {
    name: 'storage down',
    err: restError('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED', undefined, 'http://127.0.0.1:1/devstoreaccount1/c?restype=container'),
    ctx,
    problem: 'unreachable',
    kind: 'unavailable',
    retryable: true,
    says: [/cannot reach blob storage at 127\.0\.0\.1:1 \(ECONNREFUSED\)/, /AzureWebJobsStorage/],
  },
  {
    name: 'storage with a wrong account key',
    err: restError('Server failed to authenticate the request.', 'AuthorizationFailure', 403, 'https://acct.blob.core.windows.net/c'),
    ctx,
    problem: 'auth',
    kind: 'failed',
    retryable: false,
    says: [/blob storage at acct\.blob\.core\.windows\.net:443 refused the credentials \(AuthorizationFailure\)/, /AccountKey in AzureWebJobsStorage/],
  },
  {
    name: 'an AggregateError of something else',
    err: new AggregateError([new Error('first reason'), new Error('second reason')], ''),
    problem: 'other',
    kind: 'failed',
    retryable: true,
    says: [/first reason; second reason/],
  },
  {
    name: 'an error with no message at all',
    err: new AggregateError([], ''),
    problem: 'other',
    kind: 'failed',
    retryable: true,
    says: [/AggregateError|HUBSINK_DEBUG/],
  },
];

describe('explainServiceError', () => {
  test.each(cases)('$name', (c) => {
    const e = explainServiceError(c.err, c.ctx);
    expect(e.problem).toBe(c.problem);
    expect(e.kind).toBe(c.kind);
    expect(e.retryable).toBe(c.retryable);
    expect(e.message.trim()).not.toBe('');
    for (const re of c.says) expect(e.message).toMatch(re);
    for (const re of c.never ?? []) expect(e.message).not.toMatch(re);
  });

  test('explained keeps our errors and wraps the rest with the original as cause', () => {
    const raw = retried(messaging('InvalidSignature: the token has an invalid signature', 'UnauthorizedError'));
    const wrapped = explained(raw, ctx);
    expect(wrapped).toBeInstanceOf(ServiceError);
    expect((wrapped as ServiceError).cause).toBe(raw);
    expect(explained(wrapped, ctx)).toBe(wrapped);
  });
});

describe('endpoints from settings', () => {
  test.each([
    ['Endpoint=sb://myns.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=b', 'myns.servicebus.windows.net:5671'],
    ['Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=a;SharedAccessKey=b;UseDevelopmentEmulator=true', '127.0.0.1:5672'],
    ['Endpoint=sb://localhost;SharedAccessKeyName=a;SharedAccessKey=b;UseDevelopmentEmulator=true', 'localhost:5672'],
    ['SharedAccessKeyName=a', undefined],
  ])('Event Hubs %s', (cs, want) => expect(eventHubsEndpoint(cs)).toBe(want));

  test.each([
    ['UseDevelopmentStorage=true', '127.0.0.1:10000'],
    ['DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=k;BlobEndpoint=http://127.0.0.1:41234/devstoreaccount1;', '127.0.0.1:41234'],
    ['DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=k;EndpointSuffix=core.windows.net', 'acct.blob.core.windows.net:443'],
  ])('storage %s', (cs, want) => expect(storageEndpoint(cs)).toBe(want));

  test('contexts name the identity settings when there is no connection string', () => {
    expect(eventHubsContext({ kind: 'identity', fullyQualifiedNamespace: 'ns.servicebus.windows.net' }, { hub: 'h' })).toMatchObject({ setting: 'EventHubConnection__fullyQualifiedNamespace', endpoint: 'ns.servicebus.windows.net:5671', hub: 'h' });
    expect(storageContext({ kind: 'identity', accountName: 'acct' })).toEqual({ setting: 'AzureWebJobsStorage__accountName', endpoint: 'acct.blob.core.windows.net:443' });
  });
});
