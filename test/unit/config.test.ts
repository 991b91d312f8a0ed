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
  test('defaults from docs/design.md', () => {
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

  describe('an Entra ID token never travels without verified TLS', () => {
    const entra = { PG_ENTRA_AUTH: 'true' };
    const host = 'c-x.postgres.cosmos.azure.com';
    const refused: [string, Record<string, string>, RegExp][] = [
      ['DATABASE_URL without sslmode', { DATABASE_URL: `postgres://app@${host}:5432/citus` }, /no sslmode/],
      ['sslmode=disable', { DATABASE_URL: `postgres://app@${host}/citus?sslmode=disable` }, /sslmode=disable/],
      ['sslmode=no-verify', { DATABASE_URL: `postgres://app@${host}/citus?sslmode=no-verify` }, /sslmode=no-verify/],
      ['sslmode=prefer', { DATABASE_URL: `postgres://app@${host}/citus?sslmode=prefer` }, /sslmode=prefer/],
      ['sslmode=require (libpq: no verification)', { DATABASE_URL: `postgres://app@${host}/citus?sslmode=require` }, /sslmode=require/],
      ['sslmode=verify-ca (no host name check)', { DATABASE_URL: `postgres://app@${host}/citus?sslmode=verify-ca&uselibpqcompat=true` }, /sslmode=verify-ca/],
      ['verify-full overridden by a later sslmode', { DATABASE_URL: `postgres://app@${host}/citus?sslmode=verify-full&sslmode=disable` }, /sslmode=disable/],
      ['ssl=true alone (no certificate check)', { DATABASE_URL: `postgres://app@${host}/citus?ssl=true` }, /no sslmode/],
      ['a URL without settings and PGSSLMODE=disable', { DATABASE_URL: `postgres://app@${host}/citus`, PGSSLMODE: 'disable' }, /sslmode=disable/],
      ['PG* with PGSSLMODE=disable', { PGHOST: host, PGUSER: 'app', PGSSLMODE: 'disable' }, /PGSSLMODE="disable"/],
      ['PG* with PGSSLMODE=no-verify', { PGHOST: host, PGUSER: 'app', PGSSLMODE: 'no-verify' }, /PGSSLMODE="no-verify"/],
      ['PG* with PGSSLMODE=require', { PGHOST: host, PGUSER: 'app', PGSSLMODE: 'require' }, /PGSSLMODE="require"/],
    ];
    for (const [name, env, message] of refused) {
      test(`refused at start-up: ${name}`, () => {
        const problems = problemsOf({ ...entra, ...env }).join('\n');
        assert.match(problems, message);
        assert.match(problems, /verify-full/);
      });
    }
    test('accepted: sslmode=verify-full in the URL, or PG* with PGSSLMODE unset or verify-full (certificate verified)', () => {
      assert.equal(loadConfig({ ...entra, DATABASE_URL: `postgres://app@${host}/citus?sslmode=verify-full` }).database?.kind, 'url');
      assert.equal(loadConfig({ ...entra, DATABASE_URL: `postgres://app@${host}/citus`, PGSSLMODE: 'verify-full' }).database?.kind, 'url');
      for (const sslmode of [undefined, 'verify-full']) {
        const db = loadConfig({ ...entra, PGHOST: host, PGUSER: 'app', ...(sslmode ? { PGSSLMODE: sslmode } : {}) }).database;
        assert.ok(db?.kind === 'params' && db.ssl);
        assert.deepEqual(poolOptions(db, 2, () => Promise.resolve('t')).ssl, { rejectUnauthorized: true });
      }
    });
    test('password authentication to a remote host without TLS works but warns; loopback and TLS do not', () => {
      assert.match(loadConfig({ DATABASE_URL: `postgres://u:secret@${host}/d` }).warnings.join(), /without TLS/);
      assert.match(loadConfig({ DATABASE_URL: `postgres://u@${host}/d?sslmode=disable`, PGPASSWORD: 'secret' }).warnings.join(), /without TLS/);
      assert.match(loadConfig({ PGHOST: host, PGUSER: 'u', PGPASSWORD: 'secret' }).warnings.join(), /PGPASSWORD goes there without TLS/);
      const quiet = [
        { DATABASE_URL: 'postgres://u:secret@127.0.0.1:5432/d' },
        { DATABASE_URL: 'postgres://u:secret@localhost/d' },
        { DATABASE_URL: 'postgres://u:secret@[::1]:5432/d' },
        { DATABASE_URL: `postgres://u:secret@${host}/d?sslmode=verify-full` },
        { DATABASE_URL: `postgres://u:secret@${host}/d?sslmode=require` },
        { DATABASE_URL: `postgres://u@${host}/d` },
        { PGHOST: host, PGUSER: 'u', PGPASSWORD: 'secret', PGSSLMODE: 'verify-full' },
        { PGHOST: '/var/run/postgresql', PGUSER: 'u', PGPASSWORD: 'secret' },
      ];
      for (const env of quiet) assert.deepEqual(loadConfig(env).warnings, [], JSON.stringify(env));
      // The warning names the host, never the password.
      assert.doesNotMatch(loadConfig({ DATABASE_URL: `postgres://u:secret@${host}/d` }).warnings.join(), /secret/);
    });
  });

  test('metrics pool and row limit, rollup dimension bounds: defaults and validation', () => {
    const c = loadConfig({});
    assert.deepEqual(c.metrics, { poolMax: 2, statementTimeoutMs: 10_000, maxRows: 200_000 });
    assert.deepEqual(c.rollupDimensions, { maxLength: 64, allow: {} });
    const set = loadConfig({ HUBSINK_ROLLUP_COUNTRY_VALUES: 'DE, FR,,DE', HUBSINK_ROLLUP_VALUE_MAX_LENGTH: '32', HUBSINK_METRICS_POOL_MAX: '4' });
    assert.deepEqual(set.rollupDimensions, { maxLength: 32, allow: { country: ['DE', 'FR'] } });
    assert.equal(set.metrics.poolMax, 4);
    // Analyst-defined dimensions (hubsink rollup define) are named at run time: any name counts.
    assert.deepEqual(loadConfig({ HUBSINK_ROLLUP_SKU_VALUES: 'A-1,B-2', HUBSINK_ROLLUP_TYPE_VALUES: 'page_view' }).rollupDimensions.allow, { type: ['page_view'], sku: ['A-1', 'B-2'] });
    assert.match(problemsOf({ HUBSINK_ROLLUP_SKU_VALUES: ' , ' }).join('\n'), /HUBSINK_ROLLUP_SKU_VALUES/);
    const problems = problemsOf({
      HUBSINK_ROLLUP_BROWSER_VALUES: ' , ',
      HUBSINK_ROLLUP_VALUE_MAX_LENGTH: '0',
      HUBSINK_METRICS_STATEMENT_TIMEOUT_MS: '-1',
      HUBSINK_METRICS_MAX_ROWS: '10',
    }).join('\n');
    for (const name of ['HUBSINK_ROLLUP_BROWSER_VALUES', 'HUBSINK_ROLLUP_VALUE_MAX_LENGTH', 'HUBSINK_METRICS_STATEMENT_TIMEOUT_MS', 'HUBSINK_METRICS_MAX_ROWS']) {
      assert.match(problems, new RegExp(name));
    }
  });

  test('import gzip ratio: 200 by default, a whole number of at least 1', () => {
    assert.equal(loadConfig({}).importMaxGzipRatio, 200);
    assert.equal(loadConfig({ HUBSINK_IMPORT_MAX_GZIP_RATIO: '1000' }).importMaxGzipRatio, 1000);
    for (const bad of ['0', '-5', '2.5', 'lots']) assert.match(problemsOf({ HUBSINK_IMPORT_MAX_GZIP_RATIO: bad }).join('\n'), /HUBSINK_IMPORT_MAX_GZIP_RATIO/, bad);
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
