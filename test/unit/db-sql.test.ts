import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { chunk, insertEventsSql } from '../../src/db/events.js';
import { MIGRATION_LOCK_KEY, migrationChecksum, migrationStatements, orderMigrationFiles, MigrationError } from '../../src/db/migrate.js';
import { PARTITION_LOCK_CLASS, partitionName, partitionPlan, partitionStatements, partitionWindow, startOfUtcDay } from '../../src/db/partitions.js';
import { citusSessionSql, searchPathSql, statementTimeoutSql } from '../../src/db/session.js';
import { capabilitiesFromRow, capabilitiesSql } from '../../src/db/capabilities.js';
import { probeEventsSql } from '../../src/db/copyEvents.js';
import { importFilesSql } from '../../src/db/importFiles.js';
import { parkedCountSql } from '../../src/db/probes.js';
import type { Statement } from '../../src/db/statement.js';
import { ensureTenantsSql } from '../../src/db/tenants.js';
import { makeRow } from '../support/rows.js';

describe('insertEventsSql', () => {
  test('is one parameterized INSERT .. SELECT FROM unnest with the conflict target and RETURNING', () => {
    const row = makeRow({ tenantId: 3 });
    const { text: sql, values } = insertEventsSql('hub_a', [row]);
    assert.equal(values.length, 18, 'one value per $n');
    for (const column of values) assert.equal((column as unknown[]).length, 1);
    assert.ok(sql.startsWith('INSERT INTO "hub_a".events (tenant_id, event_id, occurred_at, type, '));
    assert.match(sql, /SELECT \* FROM unnest\(\$1::bigint\[\], \$2::uuid\[\], \$3::timestamptz\[\], \$4::text\[\],/);
    assert.match(sql, /\$13::numeric\[\], \$14::jsonb\[\],/);
    assert.match(sql, /\$18::timestamptz\[\]\) ON CONFLICT \(tenant_id, event_id, occurred_at\) DO NOTHING RETURNING 1$/);
    assert.equal((sql.match(/\$\d+/g) ?? []).length, 18);
    assert.equal(insertEventsSql('hub_a', [makeRow(), makeRow()]).text, sql, 'stable text, so the server can reuse the plan');
    assert.equal(insertEventsSql('hub_a', []).text, sql);
  });

  test('names exactly the agreed columns', () => {
    const cols = /\(([^)]*)\) SELECT/.exec(insertEventsSql('s', []).text)?.[1]?.split(', ');
    assert.deepEqual(cols, [
      'tenant_id', 'event_id', 'occurred_at', 'type', 'session_id', 'user_id', 'device_id', 'url', 'referrer',
      'campaign_id', 'country', 'browser', 'revenue', 'properties', 'source_partition', 'source_sequence',
      'source_offset', 'source_enqueued_at',
    ]);
  });

  for (const bad of ['Public', 'a"b', 'x; drop table events', '', '1abc']) {
    test(`refuses the schema name ${JSON.stringify(bad)}`, () => {
      assert.throws(() => insertEventsSql(bad, []), /not a valid SQL identifier/);
    });
  }
});

test('insertEventsSql values: one array per column in row order, JSON and numbers as text', () => {
  const a = makeRow({ tenantId: 7, revenue: 12.5, properties: { k: [1, { x: 'y' }] }, occurredAt: new Date('2031-01-02T03:04:05.678Z') });
  const b = makeRow({ tenantId: 8 });
  const p = insertEventsSql('s', [a, b]).values as unknown[][];
  assert.equal(p.length, 18);
  assert.deepEqual(p[0], [7, 8]);
  assert.deepEqual(p[1], [a.eventId, b.eventId]);
  assert.deepEqual(p[2], ['2031-01-02T03:04:05.678Z', b.occurredAt.toISOString()]);
  assert.deepEqual(p[12], ['12.5', null]);
  assert.deepEqual(p[13], ['{"k":[1,{"x":"y"}]}', null]);
  assert.deepEqual(p[14], [a.raw.source.partitionId, b.raw.source.partitionId]);
  assert.deepEqual(p[15], [a.raw.source.sequenceNumber, b.raw.source.sequenceNumber]);
  for (const col of p) assert.equal(col.length, 2);
});

test('chunk splits into consecutive slices and refuses a non-positive size', () => {
  assert.deepEqual(chunk([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(chunk([], 3), []);
  assert.deepEqual(chunk([1, 2], 5), [[1, 2]]);
  assert.throws(() => chunk([1], 0), RangeError);
  assert.throws(() => chunk([1], 1.5), RangeError);
});

describe('migration files', () => {
  test('are ordered by number; other files are ignored', () => {
    const got = orderMigrationFiles(['010_b.sql', 'README.md', '002_dead_letters.sql', '001_core.sql', '3_bad.sql', '003_rollups.sql.bak']);
    assert.deepEqual(got.map((f) => [f.version, f.name, f.file]), [
      [1, 'core', '001_core.sql'],
      [2, 'dead_letters', '002_dead_letters.sql'],
      [10, 'b', '010_b.sql'],
    ]);
  });
  test('sharing a number are refused', () => {
    assert.throws(() => orderMigrationFiles(['002_a.sql', '002_b.sql']), MigrationError);
  });
  test('checksum ignores CRLF versus LF, comments and layout, but no statement text', () => {
    assert.equal(migrationChecksum('a;\r\nb;\r\n'), migrationChecksum('a;\nb;\n'));
    assert.equal(migrationChecksum('a;\nb;\n'), migrationChecksum('a;\nb; \n'));
    assert.notEqual(migrationChecksum('a;\nb;\n'), migrationChecksum('a;\nc;\n'));
    assert.match(migrationChecksum(''), /^[0-9a-f]{64}$/);
  });
  test('statements quote the schema and set a transaction-local search_path', () => {
    const st = migrationStatements('my_schema');
    assert.deepEqual(st.searchPath, { text: 'SET LOCAL search_path = "my_schema", pg_catalog', values: [] });
    assert.deepEqual(st.createSchema, { text: 'CREATE SCHEMA IF NOT EXISTS "my_schema"', values: [] });
    assert.deepEqual(st.lock, { text: 'SELECT pg_advisory_xact_lock($1::bigint)', values: [MIGRATION_LOCK_KEY.toString()] });
    const record = st.record({ version: 4, name: 'import_files', checksum: 'ab'.repeat(32) });
    assert.match(record.text, /VALUES \(\$1, \$2, \$3\)/);
    assert.deepEqual(record.values, [4, 'import_files', 'ab'.repeat(32)]);
    assert.throws(() => migrationStatements('bad-name'), /not a valid SQL identifier/);
  });
});

describe('partitions', () => {
  test('window is [now − retention, now + ahead] to the millisecond', () => {
    const now = new Date('2031-03-15T22:30:00.123Z');
    assert.deepEqual(partitionWindow(now, 3, 30), { from: new Date('2031-02-13T22:30:00.123Z'), to: new Date('2031-03-18T22:30:00.123Z') });
    assert.deepEqual(partitionWindow(now, 0, 0), { from: now, to: now });
    assert.throws(() => partitionWindow(now, -1, 3), RangeError);
    assert.throws(() => partitionWindow(now, 1, 2.5), RangeError);
  });
  test('names use the UTC day, as Citus does for daily partitions', () => {
    assert.equal(partitionName(new Date('2031-12-31T23:59:59.999Z')), 'events_p2031_12_31');
    assert.equal(partitionName(new Date('2032-01-01T00:00:00Z')), 'events_p2032_01_01');
    assert.equal(startOfUtcDay(new Date('2031-03-15T22:30:00Z')).toISOString(), '2031-03-15T00:00:00.000Z');
  });
  test('plan covers every day of the window plus one spare day, and drops what ends before the window', () => {
    const plan = partitionPlan(new Date('2031-03-15T22:30:00Z'), 3, 5);
    assert.equal(plan.createFrom.toISOString(), '2031-03-10T00:00:00.000Z');
    assert.equal(plan.createTo.toISOString(), '2031-03-20T00:00:00.000Z');
    assert.equal(plan.dropBefore.toISOString(), '2031-03-10T22:30:00.000Z');
    assert.equal(plan.days.length, 10);
    assert.equal(plan.days[0]?.name, 'events_p2031_03_10');
    assert.equal(plan.days.at(-1)?.name, 'events_p2031_03_19');
    for (const d of plan.days) assert.equal(d.to.getTime() - d.from.getTime(), 86_400_000);
    // Every instant the validator accepts up to a day after this run falls in a planned day.
    const { from, to } = partitionWindow(new Date('2031-03-16T22:29:59Z'), 3, 5);
    assert.ok(plan.days.some((d) => d.from <= to && to < d.to));
    assert.ok(plan.createFrom <= from);
  });
  test('statements take bounds as parameters and quote the schema', () => {
    const st = partitionStatements('hub_a');
    assert.deepEqual(st.list.values, ['"hub_a".events']);
    assert.deepEqual(st.lock.values, [PARTITION_LOCK_CLASS, 'hub_a']);
    assert.deepEqual(st.sharedLock.values, [PARTITION_LOCK_CLASS, 'hub_a']);
    assert.match(st.sharedLock.text, /pg_advisory_xact_lock_shared\(\$1::int, hashtext\(\$2::text\)\)/);
    const from = new Date('2031-03-10T00:00:00Z');
    const to = new Date('2031-03-20T00:00:00Z');
    const citus = st.citusCreate(from, to);
    assert.match(citus.text, /create_time_partitions\(\$1::regclass, INTERVAL '1 day', \$2::timestamptz, \$3::timestamptz\)/);
    // create_time_partitions(table, interval, end_at, start_from): the end comes first.
    assert.deepEqual(citus.values, ['"hub_a".events', to.toISOString(), from.toISOString()]);
    const create = st.formatCreate('events_p2031_03_10', from, new Date('2031-03-11T00:00:00Z'));
    assert.match(create.text, /format\('CREATE TABLE %I\.%I PARTITION OF %I\.events FOR VALUES FROM \(%L\) TO \(%L\)'/);
    assert.deepEqual(create.values, ['hub_a', 'events_p2031_03_10', '2031-03-10T00:00:00.000Z', '2031-03-11T00:00:00.000Z']);
    assert.deepEqual(st.formatDrop('events_p2031_03_10').values, ['hub_a', 'events_p2031_03_10']);
  });
});

test('citusSessionSql formats only a validated integer', () => {
  assert.deepEqual(citusSessionSql(32), { text: 'SET citus.max_cached_conns_per_worker = 32', values: [] });
  assert.deepEqual(citusSessionSql(0), { text: 'SET citus.max_cached_conns_per_worker = 0', values: [] });
  for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => citusSessionSql(bad), RangeError);
});

test('capabilitiesFromRow', () => {
  assert.deepEqual(capabilitiesFromRow({ server_version_num: 150018, citus_version: null, hll_available: true, hll_installed: false }), {
    citus: false,
    hllAvailable: true,
    hllInstalled: false,
    serverVersionNum: 150018,
  });
  assert.deepEqual(capabilitiesFromRow({ server_version_num: 150018, citus_version: '13.2-1', hll_available: true, hll_installed: true }), {
    citus: true,
    citusVersion: '13.2-1',
    hllAvailable: true,
    hllInstalled: true,
    serverVersionNum: 150018,
  });
});

test('ensureTenantsSql inserts an unnested id array and ignores known ids', () => {
  assert.deepEqual(ensureTenantsSql('s1', [3, 5]), {
    text: 'INSERT INTO "s1".tenants (tenant_id) SELECT unnest($1::bigint[]) ON CONFLICT (tenant_id) DO NOTHING',
    values: [[3, 5]],
  });
});

describe('every db statement carries its values', () => {
  const key = { source: '/data/a.csv', size: 120, modifiedAt: new Date('2031-01-02T03:04:05Z') };
  const files = importFilesSql('s1');
  const a = makeRow({ tenantId: 4, occurredAt: new Date('2031-01-02T00:00:00Z') });
  const b = makeRow({ tenantId: 5, occurredAt: new Date('2031-01-01T00:00:00Z') });
  const cases: [name: string, st: Statement, values: unknown[]][] = [
    ['import begin', files.begin(key, 'csv'), ['/data/a.csv', 120, '2031-01-02T03:04:05.000Z', 'csv']],
    [
      'import advance',
      files.advance(key, { units: 10, bytes: 99 }, { inserted: 6, duplicates: 1, invalid: 2, rejected: 1 }),
      ['/data/a.csv', 120, '2031-01-02T03:04:05.000Z', 10, 99, 6, 1, 2, 1],
    ],
    ['import finish', files.finish(key), ['/data/a.csv', 120, '2031-01-02T03:04:05.000Z']],
    [
      'copy probe',
      probeEventsSql('s1', [a, b]),
      [[4, 5], [a.eventId, b.eventId], [a.occurredAt.toISOString(), b.occurredAt.toISOString()], '2031-01-01T00:00:00.000Z', '2031-01-02T00:00:00.000Z'],
    ],
    ['parked count', parkedCountSql('s1'), []],
    ['capabilities', capabilitiesSql(), []],
    ['search path', searchPathSql('s1'), ['pg_catalog, "s1"']],
    ['statement timeout', statementTimeoutSql(2500), ['2500ms']],
    ['tenants', ensureTenantsSql('s1', [9]), [[9]]],
  ];
  for (const [name, st, values] of cases) {
    test(`${name}: values in $n order, one per parameter`, () => {
      assert.deepEqual(st.values, values);
      assert.equal(Math.max(0, ...[...st.text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]))), values.length, st.text);
    });
  }
});
