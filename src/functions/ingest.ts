import { app, trigger } from '@azure/functions';
import { makeIngestHandler } from '../ingest/ingestHandler.js';
import { getAppContext, getConfig } from './context.js';

const config = getConfig();

/**
 * Binary bodies keep the exact bytes for dead-letter records (the default string mode parses JSON
 * leniently). `dataType` is not in the eventHub trigger's types, hence the generic trigger.
 * Retry forever with capped backoff: a thrown batch (dead-letter hub or database unusable) must be
 * re-invoked, never checkpointed past; a finite count would lose it once exhausted.
 */
app.generic('ingest', {
  trigger: trigger.generic({
    type: 'eventHubTrigger',
    name: 'messages',
    direction: 'in',
    connection: config.eventHubConnectionSetting,
    eventHubName: config.ingestHub,
    consumerGroup: config.consumerGroup,
    cardinality: 'many',
    dataType: 'binary',
  }),
  retry: { strategy: 'exponentialBackoff', maxRetryCount: -1, minimumInterval: { seconds: 2 }, maximumInterval: { minutes: 5 } },
  handler: makeIngestHandler(async () => {
    const ctx = await getAppContext();
    return {
      hub: ctx.config.ingestHub,
      consumerGroup: ctx.config.consumerGroup,
      telemetry: ctx.telemetry,
      ingest: { pool: ctx.pool, config: ctx.config, sink: await ctx.deadLetterSink(), tenants: ctx.tenants },
    };
  }),
});
