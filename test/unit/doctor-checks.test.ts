/**
 * The pure parts of `hubsink doctor`: the partition window by an injected clock (far past, zero
 * retention), migrations and checksums, rights and their GRANTs, Event Hubs errors as the client
 * throws them (an AggregateError with an empty message), checkpoints ahead of their partition, the
 * access mode and its grants, the report (escaped, redacted) and local.settings.json under the environment.
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.js';
import { migrationChecksum, type MigrationFile } from '../../src/db/migrate.js';
import { partitionName } from '../../src/db/partitions.js';
import { checkAccessGrants, checkFreshness, checkMigrations, checkPartitions, checkRights, checkServer, describeConnectError, requiredRights } from '../../src/doctor/database.js';
import { checkCheckpoints, checkHub, classifyEventHubsError } from '../../src/doctor/hubs.js';
import { formatReport, jsonReport, type CheckResult } from '../../src/doctor/report.js';
import { accessModeCheck, configurationCheck } from '../../src/doctor/runDoctor.js';
import { settingsFrom } from '../../src/cli/doctor.js';
import type { PartitionState, StoredCheckpoint } from '../../src/hubs/checkpoints.js';

const DAY = 86_400_000;

function days(from: Date, n: number): string[] {
  return Array.from({ length: n }, (_, i) => partitionName(new Date(from.getTime() + i * DAY)));
}

describe('checkPartitions', () => {
  const now = new Date('2026-03-10T12:00:00Z');
  test('the window [now − retention, now + ahead] covered day by day passes; one missing day fails naming `hubsink partitions`', () => {
    const all = days(new Date('2026-02-08T00:00:00Z'), 35);
    assert.equal(checkPartitions(all, now, 3, 30, 's').status, 'ok');
    const gap = all.filter((n) => n !== 'events_p2026_03_11');
    const r = checkPartitions(gap, now, 3, 30, 's');
    assert.equal(r.status, 'fail');
    assert.match(r.detail, /^1 day\(s\) of 2026-02-08 to 2026-03-13 have no partition: events_p2026_03_11$/);
    assert.match(r.fix ?? '', /hubsink partitions/);
  });
  test('partitions only far in the past cover nothing; zero retention needs today and the days ahead', () => {
    const old = days(new Date('2020-01-01T00:00:00Z'), 40);
    const r = checkPartitions(old, now, 3, 30, 's');
    assert.equal(r.status, 'fail');
    assert.match(r.detail, /^34 day\(s\)/);
    assert.equal(checkPartitions(days(new Date('2026-03-10T00:00:00Z'), 4), now, 3, 0, 's').status, 'ok');
    assert.equal(checkPartitions(days(new Date('2026-03-10T00:00:00Z'), 3), now, 3, 0, 's').status, 'fail');
  });
  test('no events table: run `hubsink migrate`', () => {
    assert.match(checkPartitions(null, now, 3, 30, 'shop').fix ?? '', /hubsink migrate.*HUBSINK_SCHEMA=shop/);
  });
});

describe('checkMigrations', () => {
  const file = (version: number, sql: string): MigrationFile => ({ version, name: `m${version}`, file: `00${version}_m${version}.sql`, sql, checksum: migrationChecksum(sql) });
  const files = [file(1, 'CREATE TABLE a (x int);'), file(2, 'CREATE TABLE b (x int);')];
  test('all applied with equal checksums passes; one not applied fails naming migrate; a changed one fails', () => {
    const applied = files.map((f) => ({ version: f.version, name: f.name, checksum: f.checksum }));
    assert.equal(checkMigrations(applied, files, 's').status, 'ok');
    const one = checkMigrations(applied.slice(0, 1), files, 's');
    assert.deepEqual([one.status, one.detail], ['fail', '1 migration(s) not applied: 002_m2']);
    const changed = checkMigrations([applied[0] as (typeof applied)[0], { version: 2, name: 'm2', checksum: 'f'.repeat(64) }], files, 's');
    assert.equal(changed.status, 'fail');
    assert.match(changed.detail, /checksum differs for 002_m2/);
    assert.match(checkMigrations(null, files, 's').fix ?? '', /hubsink migrate/);
  });
});

describe('checkRights', () => {
  test('each missing right becomes a GRANT on the escaped names; all present passes', () => {
    const r = checkRights(
      {
        user: 'Odd"Role',
        schemaExists: true,
        schemaUsage: true,
        schemaCreate: false,
        objects: [
          { name: 'events', kind: 'table', missing: ['INSERT'] },
          { name: 'events_ingest_seq_seq', kind: 'sequence', missing: ['USAGE'] },
          { name: 'tenants', kind: 'table', missing: [] },
        ],
        ownsEvents: true,
      },
      'shop',
    );
    assert.equal(r.status, 'fail');
    assert.equal(r.detail, 'lacks CREATE on schema shop; INSERT on events; USAGE on events_ingest_seq_seq');
    assert.equal(
      r.fix,
      'as the schema\'s owner: GRANT CREATE ON SCHEMA "shop" TO "Odd""Role"; GRANT INSERT ON "shop"."events" TO "Odd""Role"; GRANT USAGE ON SEQUENCE "shop"."events_ingest_seq_seq" TO "Odd""Role";',
    );
    assert.equal(checkRights({ user: 'app', schemaExists: true, schemaUsage: true, schemaCreate: true, objects: [{ name: 'events', kind: 'table', missing: [] }], ownsEvents: true }, 'shop').status, 'ok');
  });
});

describe('database: server and connection errors', () => {
  const cfg = loadConfig({ PGHOST: 'pg.example.org', PGUSER: 'app', PG_ENTRA_AUTH: 'true' });
  const db = cfg.database ?? assert.fail('no database');
  test('a session without TLS where TLS is configured fails; an old server fails', () => {
    const facts = { version: '16.4', versionNum: 160004, user: 'app', database: 'hubsink', ssl: false };
    assert.equal(checkServer(facts, db, true).status, 'fail');
    assert.match(checkServer({ ...facts, ssl: true }, db, true).detail, /TLS, certificate verified/);
    assert.match(checkServer({ ...facts, ssl: true, versionNum: 130000 }, db, true).detail, /version 14 or newer/);
  });
  test('errors name the setting to fix', () => {
    assert.match(describeConnectError(Object.assign(new Error('x'), { code: 'ENOTFOUND' }), db).fix, /PGHOST/);
    assert.match(describeConnectError(Object.assign(new Error('password authentication failed'), { code: '28P01' }), db).fix, /PGUSER must be the Entra ID role/);
    assert.match(describeConnectError(new Error('self-signed certificate in certificate chain'), db).fix, /PGSSLROOTCERT/);
    const url = loadConfig({ DATABASE_URL: 'postgres://u:p@db.example.org/x?sslmode=verify-full' }).database ?? assert.fail('');
    assert.match(describeConnectError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), url).fix, /DATABASE_URL/);
  });
  test('rollups further behind than the limit fail', () => {
    assert.equal(checkFreshness([{ rollup: 'minute', seconds: 30 }], 900).status, 'ok');
    const stale = checkFreshness([{ rollup: 'minute', seconds: 30 }, { rollup: 'day', seconds: 7200 }], 900);
    assert.equal(stale.status, 'fail');
    assert.match(stale.detail, /day 2 h/);
  });
});

describe('Event Hubs errors', () => {
  const cfg = loadConfig({ EventHubConnection: 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s' });
  const conn = cfg.eventHubs ?? assert.fail('');
  const aggregate = (inner: Error): Error => Object.assign(new AggregateError([new Error('first'), inner], ''), { retryable: false });
  test('the AggregateError the client throws after its retries is read through to its last error', () => {
    const inner = Object.assign(new Error('InvalidSignature: the token has an invalid signature'), { code: 'UnauthorizedError' });
    assert.equal(classifyEventHubsError(aggregate(inner)), 'unauthorized');
    const r = checkHub('ingest', 'clicks', { error: aggregate(inner) }, cfg, conn);
    assert.match(r.detail, /^refused: InvalidSignature/);
    assert.match(r.fix ?? '', /key in EventHubConnection/);
  });
  test('a missing hub and a missing consumer group are told apart', () => {
    assert.equal(classifyEventHubsError(new Error("The messaging entity 'sb://ns/clicks/$management' could not be found.")), 'not-found');
    assert.equal(classifyEventHubsError(new Error("The messaging entity 'sb://ns.servicebus.windows.net/clicks/ConsumerGroups/x' could not be found.")), 'consumer-group-not-found');
    assert.equal(classifyEventHubsError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5671'), { code: 'ECONNREFUSED' })), 'unreachable');
    assert.equal(classifyEventHubsError(Object.assign(new Error("A receiver with epoch '0' already exists"), { code: 'ReceiverDisconnectedError' })), 'owner-held');
  });
});

describe('checkpoints', () => {
  const state = (id: string, last: number, empty = false): PartitionState => ({
    partitionId: id,
    beginningSequenceNumber: 0,
    lastEnqueuedSequenceNumber: last,
    lastEnqueuedOffset: String(last * 100),
    lastEnqueuedOnUtc: new Date(0),
    isEmpty: empty,
  });
  test('a checkpoint past the last event, or on an empty partition, is ahead; one at the start (-1) is not', () => {
    const states = [state('0', 99), state('1', -1, true), state('2', 10), state('3', -1, true)];
    const cps = new Map<string, StoredCheckpoint>([
      ['0', { partitionId: '0', sequenceNumber: 150 }],
      ['1', { partitionId: '1', sequenceNumber: 7 }],
      ['2', { partitionId: '2', sequenceNumber: 4 }],
      ['3', { partitionId: '3', sequenceNumber: -1 }],
    ]);
    const r = checkCheckpoints('clicks', 'cg', 'azure-webjobs-eventhub', states, cps);
    assert.equal(r.status, 'fail');
    assert.match(r.detail, /partition\(s\) 0 \(checkpoint 150, last event 99\), 1 \(checkpoint 7, no event yet\) checkpointed past their last event/);
    // The runner's fix: rewind exactly the partitions ahead, in the checkpoint container used.
    assert.equal(r.fix, "stop the app, then `hubsink checkpoints rewind --hub clicks --consumer-group 'cg' --container azure-webjobs-eventhub --recreated`");
    assert.equal(checkCheckpoints('clicks', 'cg', 'c', [state('2', 10)], new Map([['2', { partitionId: '2', sequenceNumber: 4 }]])).detail, '1 of 1 partition(s) checkpointed, lag 6 event(s)');
    // At the last event exactly: caught up, not ahead.
    assert.equal(checkCheckpoints('clicks', 'cg', 'c', [state('0', 99)], new Map([['0', { partitionId: '0', sequenceNumber: 99 }]])).status, 'ok');
  });
});

describe('access (HUBSINK_ACCESS=entra)', () => {
  test('the access mode: only in entra mode, and WEBSITE_AUTH_ENABLED must be true in Azure', () => {
    const db = { DATABASE_URL: 'postgres://u@127.0.0.1/x' };
    assert.deepEqual(configurationCheck(loadConfig(db)).map((r) => r.id), ['configuration']);
    const off = configurationCheck(loadConfig({ ...db, HUBSINK_ACCESS: 'entra' })).find((r) => r.id === 'configuration.access');
    assert.equal(off?.status, 'warn');
    assert.match(off?.detail ?? '', /WEBSITE_AUTH_ENABLED is not true .* In Azure it must be true/);
    assert.match(off?.fix ?? '', /App Service authentication .*accessMode=entra/);
    assert.deepEqual(configurationCheck(loadConfig({ ...db, HUBSINK_ACCESS: 'entra', WEBSITE_AUTH_ENABLED: 'True' })).map((r) => [r.id, r.status]), [['configuration', 'ok'], ['configuration.access', 'ok']]);
    assert.equal(accessModeCheck(true).status, 'ok');
  });
  test('grants: no table fails naming migrate, none warns naming `hubsink access grant`, some pass with counts', () => {
    const none = checkAccessGrants(null, 'shop');
    assert.deepEqual([none.id, none.status], ['database.access', 'fail']);
    assert.match(none.fix ?? '', /hubsink migrate.*HUBSINK_SCHEMA=shop.*hubsink access grant/);
    const empty = checkAccessGrants({ grants: 0, allTenants: 0, principals: 0, storefronts: 0 }, 'shop');
    assert.equal(empty.status, 'warn');
    assert.match(empty.detail, /403/);
    assert.match(empty.fix ?? '', /`hubsink access grant --group <object id> --tenant <storefront id>`, or `--all-tenants`/);
    const some = checkAccessGrants({ grants: 4, allTenants: 1, principals: 3, storefronts: 2 }, 'shop');
    assert.deepEqual([some.status, some.detail], ['ok', '4 grant(s) to 3 principal(s), 2 storefront(s) granted, 1 with every storefront (`hubsink access list`)']);
  });
  test('the app needs only SELECT on the grants: an operator writes them', () => {
    assert.deepEqual(requiredRights('access_grants', 'table'), ['SELECT']);
    assert.deepEqual(requiredRights('dead_letters', 'table'), ['SELECT', 'INSERT', 'UPDATE', 'DELETE']);
  });
});

describe('report', () => {
  const results: CheckResult[] = [
    { id: 'a', section: 'Event Hubs', title: 'hub \u001b[31mred', status: 'fail', detail: 'Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=secret123', fix: 'set INGEST_EVENTHUB_NAME' },
    { id: 'b', section: 'Database', title: 'reachable', status: 'ok', detail: 'PostgreSQL 16' },
  ];
  test('human output: sections in order, ✓/✗, the fix under each ✗, controls escaped, secrets redacted', () => {
    const text = formatReport(results);
    assert.equal(text.split('\n')[0], 'Database');
    assert.match(text, /^ {2}✗ hub \\x1b\[31mred: .*SharedAccessKey=\*\*\*/m);
    assert.match(text, /^ {6}fix: set INGEST_EVENTHUB_NAME$/m);
    assert.doesNotMatch(text, /secret123/);
    assert.match(text, /1 of 2 checks failed$/);
  });
  test('--json: ok false, secrets redacted', () => {
    const j = jsonReport(results);
    assert.equal(j.ok, false);
    assert.doesNotMatch(JSON.stringify(j), /secret123/);
  });
  test('configuration line says what is configured, and a warning of the settings is a !', () => {
    const c = configurationCheck(loadConfig({ DATABASE_URL: 'postgres://u:pw@db.example.org/x' }));
    assert.deepEqual(c.map((r) => r.status), ['ok', 'warn']);
    assert.match(c[0]?.detail ?? '', /no Event Hubs; no storage; database by DATABASE_URL; schema public/);
  });
});

describe('settingsFrom', () => {
  test('Values of local.settings.json, with the environment winning; malformed files are usage errors', () => {
    const s = settingsFrom(JSON.stringify({ Values: { A: 'file', B: 'file' } }), { B: 'env', C: '' });
    assert.deepEqual([s.A, s.B, s.C], ['file', 'env', undefined]);
    assert.throws(() => settingsFrom('{', {}), /not JSON/);
    assert.throws(() => settingsFrom('{"Values": {"A": 1}}', {}), /Values\.A must be a string/);
  });
});
