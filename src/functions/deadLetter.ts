import { app, trigger } from '@azure/functions';
import { makeDeadLetterHandler } from '../deadLetters/deadLetterHandler.js';
import { getAppContext, getConfig } from './context.js';

const config = getConfig();

/**
 * Binary bodies: a dead letter's body is the original event's bytes, which must stay exact.
 * Retry forever with capped backoff: while the database is down, a thrown batch of transient dead
 * letters must be re-invoked (the host would otherwise checkpoint past it); the cap keeps the retry
 * close enough to notice the database coming back.
 */
app.generic('deadletter', {
  trigger: trigger.generic({
    type: 'eventHubTrigger',
    name: 'messages',
    direction: 'in',
    connection: config.eventHubConnectionSetting,
    eventHubName: config.deadLetterHub,
    consumerGroup: config.deadLetterConsumerGroup,
    cardinality: 'many',
    dataType: 'binary',
  }),
  retry: { strategy: 'exponentialBackoff', maxRetryCount: -1, minimumInterval: { seconds: 5 }, maximumInterval: { minutes: 5 } },
  handler: makeDeadLetterHandler(async () => {
    const ctx = await getAppContext();
    return {
      hub: ctx.config.deadLetterHub,
      consumerGroup: ctx.config.deadLetterConsumerGroup,
      deps: { pool: ctx.pool, config: ctx.config, tenants: ctx.tenants },
    };
  }),
});
