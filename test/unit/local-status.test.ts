import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { formatDuration, renderStatusBlock, renderStatusLine, type LocalStatus } from '../../src/local/status.js';
import { matchRoute } from '../../src/local/localHttpServer.js';
import { formatBanner } from '../../src/cli/local.js';
import type { LocalInfo } from '../../src/local/stack.js';
import { checkReachableByPostgresUser } from '../../src/local/stackPostgres.js';
import { emptyStats } from '../../src/runner/stats.js';

function status(at: number, received: number, sent: number): LocalStatus {
  const runner = emptyStats(0, { deadLetter: true, rollups: true });
  runner.ingest.received = received;
  runner.ingest.inserted = received - 10;
  runner.ingest.duplicates = 8;
  runner.ingest.deadLettered.invalid = 2;
  runner.ingest.partitions = ['0', '1', '2', '3'];
  runner.deadletter.parked.invalid = 2;
  runner.rollups.runs = 4;
  runner.rollups.lastRunAt = at - 3000;
  return { now: at, startedAt: 0, generator: { enabled: true, sent, rate: 200, error: null }, runner, rollupLag: { seconds: 7.4, pendingRows: 1500, capped: false }, recent: ['12:00:00 info  ingest: claimed partition 3'] };
}

describe('local status', () => {
  test('the plain line carries every figure and the rate between two refreshes', () => {
    const line = renderStatusLine(status(4000, 1000, 1010), status(2000, 600, 610));
    assert.equal(
      line,
      'status up_s=4 sent=1010 in_per_s=200 received=1000 inserted=990 duplicates=8 dl_invalid=2 dl_rejected=0 dl_transient=0 parked=2 rollup_runs=4 rollup_lag_s=7 rollup_pending=1500',
    );
    assert.match(renderStatusLine(status(4000, 1000, 1010), undefined), /in_per_s=- /);
  });

  test('the terminal block shows rates, dead letters by reason, rollup lag, partitions and recent log lines', () => {
    const block = renderStatusBlock(status(65_000, 13_000, 13_100), status(64_000, 12_800, 12_900), 200);
    assert.equal(block[0], 'hubsink local · up 1m05s · Ctrl-C to stop');
    assert.match(block.join('\n'), /200 events\/s in · received 13,000 · inserted 12,990 · duplicates 8/);
    assert.match(block.join('\n'), /invalid 2 · rejected 0 · transient 0 · parked 2/);
    assert.match(block.join('\n'), /lag 7 s \(1,500 events pending\) · runs 4/);
    assert.match(block.join('\n'), /ingest 0,1,2,3/);
    assert.match(block.at(-1) ?? '', /claimed partition 3/);
    for (const l of renderStatusBlock(status(65_000, 13_000, 13_100), undefined, 40)) assert.ok(l.length <= 40);
  });

  test('durations read naturally', () => {
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(59_999), '59s');
    assert.equal(formatDuration(61_000), '1m01s');
    assert.equal(formatDuration(3 * 3600_000 + 5 * 60_000), '3h05m');
  });
});

describe('local banner and routes', () => {
  const info: LocalInfo = {
    databaseUrl: 'postgres://postgres:Zr4nd0mZ@127.0.0.1:54320/postgres',
    embeddedPostgres: true,
    pgDataDir: '/repo/.hubsink/pg',
    pgPasswordFile: '/repo/.hubsink/pg.password',
    eventHubConnection: 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=s3cr3t/key=',
    emulator: null,
    storage: { port: 10000, persistent: true },
    metricsUrl: 'http://127.0.0.1:7071',
    schema: 'public',
    ingestHub: 'clickstream',
    deadLetterHub: 'clickstream-deadletter',
    generator: { rate: 200, tenants: 20, seed: 's' },
    firstTenant: 1,
    access: { mode: 'key', principal: null },
  };

  test('tells how to connect with psql and curl, and never prints a real key or password', () => {
    const b = formatBanner(info, new Date('2026-03-10T12:34:56Z'));
    // The shell reads the embedded database's password from its file; the banner never holds it.
    assert.ok(
      b.includes(`PGPASSWORD="$(cat '/repo/.hubsink/pg.password')" psql 'postgres://postgres@127.0.0.1:54320/postgres' -c 'SELECT type, count(*) FROM events GROUP BY 1'`),
      b,
    );
    assert.doesNotMatch(b, /Zr4nd0mZ/);
    assert.match(b, /postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:54320\/postgres {2}\(embedded; data kept in \/repo\/\.hubsink\/pg, password in \/repo\/\.hubsink\/pg\.password\)/);
    assert.match(b, /curl 'http:\/\/127\.0\.0\.1:7071\/api\/tenants\/1\/metrics\?from=2026-03-10T12:00:00Z&to=2026-03-10T13:00:00Z&grain=minute&by=type'/);
    assert.doesNotMatch(b, /s3cr3t/);
    assert.match(b, /SharedAccessKey=\*\*\*/);
    assert.match(formatBanner({ ...info, schema: 'shop' }), /FROM shop\.events/);
    assert.match(b, /Dashboard +http:\/\/127\.0\.0\.1:7071\/ /);
  });

  test('an external --database-url and Event Hubs: passwords and SharedAccessSignature values redacted', () => {
    const b = formatBanner({
      ...info,
      embeddedPostgres: false,
      pgDataDir: null,
      pgPasswordFile: null,
      databaseUrl: 'postgres://app:hunter2@db.example.com:5432/shop?sslmode=verify-full',
      eventHubConnection: 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessSignature=SharedAccessSignature sr=ns&sig=S1G&se=99&skn=send',
    });
    assert.doesNotMatch(b, /hunter2|S1G/);
    assert.match(b, /psql 'postgres:\/\/app:\*\*\*@db\.example\.com:5432\/shop\?sslmode=verify-full'/);
    assert.match(b, /SharedAccessSignature=\*\*\*/);
  });

  test('routes: the metrics path, the dashboard and its API, wrong methods, everything else', () => {
    assert.deepEqual(matchRoute('GET', '/api/tenants/42/metrics'), { kind: 'metrics', tenantId: '42' });
    assert.deepEqual(matchRoute('GET', '/api/tenants/a%20b/metrics/'), { kind: 'metrics', tenantId: 'a b' });
    assert.deepEqual(matchRoute('POST', '/api/tenants/42/metrics'), { kind: 'method' });
    assert.deepEqual(matchRoute('GET', '/api/tenants/42'), { kind: 'not-found' });
    assert.deepEqual(matchRoute('GET', '/'), { kind: 'dashboard', path: '' });
    assert.deepEqual(matchRoute('GET', '/api/dashboard'), { kind: 'dashboard', path: '' });
    assert.deepEqual(matchRoute('GET', '/api/dashboard/assets/app-X1.js'), { kind: 'dashboard', path: 'assets/app-X1.js' });
    assert.deepEqual(matchRoute('GET', '/api/tenants'), { kind: 'tenants' });
    assert.deepEqual(matchRoute('HEAD', '/api/freshness'), { kind: 'freshness' });
    assert.deepEqual(matchRoute('GET', '/api/rollups'), { kind: 'rollups' });
    assert.deepEqual(matchRoute('DELETE', '/api/tenants'), { kind: 'method' });
    assert.deepEqual(matchRoute('GET', '/favicon.ico'), { kind: 'not-found' });
    assert.deepEqual(matchRoute('GET', '/api/dashboards'), { kind: 'not-found' });
  });

  test('as root, a data folder below a folder others cannot enter is refused with advice (others: not checked)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-reach-'));
    try {
      await mkdir(path.join(dir, 'inner'));
      await chmod(dir, 0o700);
      if (process.getuid?.() === 0) {
        await assert.rejects(checkReachableByPostgresUser(path.join(dir, 'inner', 'data')), /cannot enter .*hubsink-reach-.*--data-dir/);
      } else {
        // Not root: PostgreSQL runs as the calling user, who owns the folder.
        await checkReachableByPostgresUser(path.join(dir, 'inner', 'data'));
      }
      await chmod(dir, 0o755);
      await checkReachableByPostgresUser(path.join(dir, 'inner', 'data'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
