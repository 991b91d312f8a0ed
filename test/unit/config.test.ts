import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig, requireDatabase, requireEventHubs, requireStorage } from '../../src/config.js';
import { poolOptions } from '../../src/db/pool.js';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('loadConfig', () => {
  test('defaults from DESIGN.md', () => {
    const c = loadConfig({});
    assert.equal(c.ingestHub, 'clickstream');
    assert.equal(c.deadLetterHub, 'clickstream-deadletter');
    assert.equal(c.consumerGroup, '$Default');
    assert.equal(c.replayConsumerGroup, 'hubsink-replay');
    assert.equal(c.schema, 'public');
    assert.equal(c.retentionDays, 30);
    assert.equal(c.partitionsAheadDays, 3);
    assert.equal(c.eventHubs, undefined);
    assert.equal(c.database, undefined);
  });

  test('connection string and managed identity forms', () => {
    const cs = 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s';
    assert.deepEqual(loadConfig({ EventHubConnection: cs }).eventHubs, { kind: 'connectionString', connectionString: cs });
    assert.deepEqual(
      loadConfig({ EventHubConnection__fullyQualifiedNamespace: 'ns.servicebus.windows.net', EventHubConnection__clientId: 'abc' }).eventHubs,
      { kind: 'identity', fullyQualifiedNamespace: 'ns.servicebus.windows.net', clientId: 'abc' },
    );
  });

  test('database by URL or PG* variables, Entra ID forces TLS', () => {
    assert.deepEqual(loadConfig({ DATABASE_URL: 'postgres://u:p@h:5432/d' }).database, { kind: 'url', url: 'postgres://u:p@h:5432/d', entraAuth: false });
    const db = loadConfig({ PGHOST: 'c-x.postgres.cosmos.azure.com', PGUSER: 'app-identity', PGDATABASE: 'citus', PG_ENTRA_AUTH: 'true' }).database;
    assert.deepEqual(db, { kind: 'params', host: 'c-x.postgres.cosmos.azure.com', port: 5432, user: 'app-identity', database: 'citus', entraAuth: true, ssl: true });
  });

  test('names every malformed setting at once', () => {
    const problems = problemsOf({
      HUBSINK_SCHEMA: 'Robert"; DROP TABLE',
      HUBSINK_RETENTION_DAYS: 'thirty',
      PGPOOL_MAX: '0',
      EventHubConnection: 'not a connection string',
      DATABASE_URL: 'mysql://x',
      INGEST_EVENTHUB_NAME: 'bad name!',
    });
    const joined = problems.join('\n');
    for (const name of ['HUBSINK_SCHEMA', 'HUBSINK_RETENTION_DAYS', 'PGPOOL_MAX', 'EventHubConnection', 'DATABASE_URL', 'INGEST_EVENTHUB_NAME']) {
      assert.match(joined, new RegExp(name), `${name} not named in: ${joined}`);
    }
    assert.equal(problems.length, 6);
  });

  test('Entra ID without a user is refused', () => {
    assert.match(problemsOf({ PGHOST: 'h', PG_ENTRA_AUTH: 'true' }).join(), /PGUSER/);
    assert.match(problemsOf({ PG_ENTRA_AUTH: 'maybe' }).join(), /PG_ENTRA_AUTH/);
  });

  test('same hub for ingest and dead letters is refused', () => {
    assert.match(problemsOf({ INGEST_EVENTHUB_NAME: 'x', DEADLETTER_EVENTHUB_NAME: 'x' }).join(), /must differ/);
  });

  test('require* name the missing settings', () => {
    const c = loadConfig({});
    assert.throws(() => requireDatabase(c), /DATABASE_URL/);
    assert.throws(() => requireEventHubs(c), /EventHubConnection/);
    assert.throws(() => requireStorage(c), /AzureWebJobsStorage/);
  });
});

describe('poolOptions', () => {
  test('Entra ID: password is a callback that fetches a token per physical connection', async () => {
    let calls = 0;
    const opts = poolOptions({ kind: 'params', host: 'h', port: 5432, user: 'u', entraAuth: true, ssl: true }, 5, () => {
      calls += 1;
      return Promise.resolve(`token-${calls}`);
    });
    assert.equal(typeof opts.password, 'function');
    const pw = opts.password as () => Promise<string>;
    assert.equal(await pw(), 'token-1');
    assert.equal(await pw(), 'token-2');
    assert.deepEqual(opts.ssl, { rejectUnauthorized: true });
    assert.equal(opts.max, 5);
  });

  test('Entra ID without a token provider is a programming error', () => {
    assert.throws(() => poolOptions({ kind: 'url', url: 'postgres://h/d', entraAuth: true }, 5), /token provider/);
  });
});
