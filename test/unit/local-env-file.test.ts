import { describe, expect, test } from 'vitest';
import { envFileText, shellQuote, sourceLine } from '../../src/local/envFile.js';

describe('the local settings file (pure)', () => {
  test('values are single-quoted for sh, a quote inside included', () => {
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
    expect(shellQuote('Endpoint=sb://h:1;K=v')).toBe(`'Endpoint=sb://h:1;K=v'`);
  });

  test('one export per setting, and hubsink defined only when not on PATH', () => {
    const text = envFileText({
      databaseUrl: "postgres://postgres:p'w@127.0.0.1:54320/postgres",
      schema: 'public',
      eventHubConnection: 'Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=R;SharedAccessKey=K;UseDevelopmentEmulator=true',
      storageConnection: 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=k==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;',
      ingestHub: 'clickstream',
      deadLetterHub: 'clickstream-deadletter',
      consumerGroup: '$Default',
      deadLetterConsumerGroup: '$Default',
      replayConsumerGroup: 'hubsink-replay',
      hubsinkBin: '/repo/bin/hubsink.js',
    });
    expect(text).toContain(`export DATABASE_URL='postgres://postgres:p'\\''w@127.0.0.1:54320/postgres'`);
    expect(text).toContain(`export INGEST_CONSUMER_GROUP='$Default'`);
    expect(text).toMatch(/^command -v hubsink >\/dev\/null 2>&1 \|\| hubsink\(\) \{ node '\/repo\/bin\/hubsink\.js' "\$@"; \}$/m);
  });

  test('the source line is relative below the working directory, absolute elsewhere, quoted when it must be', () => {
    expect(sourceLine('/repo/.hubsink/env', '/repo')).toBe('source .hubsink/env');
    expect(sourceLine('/data/my stack/env', '/repo')).toBe(`source '/data/my stack/env'`);
    expect(sourceLine('/tmp/x/env', '/repo')).toBe('source /tmp/x/env');
  });
});
