/**
 * `hubsink dlq stats | list | show | replay | discard`, spawned as an operator runs them, against
 * dead letters the `deadletter` handler parked in real PostgreSQL.
 */
import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { makeDeadLetterHandler } from '../../src/deadLetters/deadLetterHandler.js';
import { getDeadLetter, listDeadLetters } from '../../src/db/deadLetterQueries.js';
import type { DeadLetterRecord } from '../../src/pipeline/types.js';
import { testDatabaseUrl, type TestSchema } from '../support/services.js';
import { asDeadLetterEvents, countRows, fastSleep, hostShape, invocation, readySchema, runCli, testConfig } from '../support/deadLetters.js';
import { makeSource } from '../support/rows.js';

const DAY = 86_400_000;

let seq = 0;
function record(tenantId: number, body: Buffer, reason: 'invalid' | 'rejected', error: string): DeadLetterRecord {
  seq++;
  const at = new Date(Date.now() - 3_600_000);
  return {
    reason,
    error,
    body,
    properties: { TenantId: String(tenantId) },
    tenantId,
    source: makeSource({ partitionId: '0', sequenceNumber: seq, offset: `o${seq}`, enqueuedTime: new Date(at.getTime() + seq) }),
    attempts: 1,
    firstFailureAt: at,
    lastFailureAt: at,
  };
}

function eventBody(tenantId: number, occurredAt: Date): Buffer {
  return Buffer.from(JSON.stringify({ eventId: randomUUID(), tenantId, type: 'email_open', occurredAt: occurredAt.toISOString(), campaignId: 'spring' }));
}

describe('hubsink dlq', () => {
  let s: TestSchema;
  let env: Record<string, string>;
  beforeAll(async () => {
    s = await readySchema('clidlq_');
    env = { DATABASE_URL: testDatabaseUrl(), HUBSINK_SCHEMA: s.schema };
    // Parked by the deadletter function: 6 events it judged too old with a 2-day retention (the
    // cause, fixed by going back to 30 days), 2 that will never be valid, and one that is not UTF-8.
    const records = [
      ...Array.from({ length: 6 }, (_, i) => record(201 + (i % 2), eventBody(201 + (i % 2), new Date(Date.now() - 5 * DAY)), 'invalid', 'occurredAt: older than the retention window (2 days)')),
      record(203, Buffer.from('{"tenantId": 203, "type": "click", "occurredAt": "yesterday"}'), 'invalid', 'occurredAt: not an ISO-8601 time with an offset'),
      record(203, Buffer.from('{"tenantId": 203'), 'invalid', 'body: not valid JSON'),
      record(204, Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x7b]), 'invalid', 'body: not valid UTF-8'),
    ];
    const handler = makeDeadLetterHandler(() =>
      Promise.resolve({ hub: 'clickstream-deadletter', consumerGroup: '$Default', deps: { pool: s.pool, config: testConfig(s.schema), sleep: fastSleep } }),
    );
    const batch = hostShape(asDeadLetterEvents(records, 0), { hub: 'clickstream-deadletter', consumerGroup: '$Default', partitionId: '0' });
    const r = await handler(batch.messages, invocation('deadletter', batch.triggerMetadata));
    assert.equal(r.parked.invalid, 9);
  });
  afterAll(() => s.drop());

  test('stats and list show what is parked; show pretty-prints JSON bodies and hex-dumps the rest', async () => {
    const stats = await runCli(['dlq', 'stats', '--no-hub'], env);
    assert.equal(stats.code, 0, stats.stderr);
    assert.match(stats.stdout, /^parked: 9 \(oldest /);
    assert.match(stats.stdout, /STATUS\s+REASON\s+COUNT\nparked\s+invalid\s+9/);
    assert.match(stats.stdout, /TENANT\s+PARKED\n(201|202)\s+3\n(201|202)\s+3\n203\s+2\n204\s+1/);
    const statsJson = JSON.parse((await runCli(['dlq', 'stats', '--no-hub', '--json'], env)).stdout) as { byTenant: { tenantId: number; count: number }[] };
    assert.deepEqual(statsJson.byTenant.map((t) => t.count), [3, 3, 2, 1]);

    const list = await runCli(['dlq', 'list', '--tenant', '203'], env);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^ID\s+PARKED AT\s+STATUS\s+REASON\s+TENANT\s+SOURCE\s+BYTES\s+OUTCOME\s+ERROR$/);
    assert.equal(lines.length, 3);
    assert.match(lines[1] ?? '', /parked\s+invalid\s+203\s+clickstream\/0\/7\s+\d+\s+-\s+occurredAt: not an ISO-8601/);
    const limited = await runCli(['dlq', 'list', '--limit', '2'], env);
    assert.equal(limited.stdout.trim().split('\n').length, 3);
    assert.match(limited.stderr, /showing 2 of 9; use --limit or filters for more/);

    const rows = JSON.parse((await runCli(['dlq', 'list', '--json', '--tenant', '204'], env)).stdout) as { id: number; bodyBytes: number }[];
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.bodyBytes, 6);
    const hex = await runCli(['dlq', 'show', String(rows[0]?.id)], env);
    assert.equal(hex.code, 0, hex.stderr);
    assert.match(hex.stdout, /body \(6 bytes, hex\):\n00000000 {2}de ad be ef 00 7b +\|\.\.\.\.\.\{\|/);
    // The host lower-cased the property's first letter on the way in.
    assert.match(hex.stdout, /properties:\s+\{"tenantId":"204"\}/);

    const [first] = JSON.parse((await runCli(['dlq', 'list', '--json', '--tenant', '201', '--limit', '1'], env)).stdout) as { id: number }[];
    const shown = await runCli(['dlq', 'show', String(first?.id)], env);
    assert.match(shown.stdout, /reason: {8}invalid\nerror: {9}occurredAt: older than the retention window \(2 days\)/);
    assert.match(shown.stdout, /body \(\d+ bytes, json\):\n\{\n {2}"eventId": "[0-9a-f-]{36}",\n {2}"tenantId": 201,/);
    const asJson = JSON.parse((await runCli(['dlq', 'show', String(first?.id), '--json'], env)).stdout) as { body: { base64: string; text: string } };
    assert.equal(Buffer.from(asJson.body.base64, 'base64').toString('utf8'), asJson.body.text);

    const missing = await runCli(['dlq', 'show', '987654321'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no dead letter with id 987654321/);
  });

  test('replay: a dry run changes nothing; after the cause is fixed the events are inserted; a second replay inserts nothing', async () => {
    const narrow = { ...env, HUBSINK_RETENTION_DAYS: '2' };
    const eventsBefore = await countRows(s.pool, s.schema, 'events');
    const dry = await runCli(['dlq', 'replay', '--reason', 'invalid', '--dry-run'], narrow);
    assert.equal(dry.code, 1, 'a dry run that would leave events parked says so');
    assert.equal(dry.stdout.trim().split('\n').filter((l) => /\tstill invalid\t/.test(l)).length, 9);
    assert.match(dry.stderr, /dry run: 9 of 9 selected: would insert 0, already present 0, still invalid 9, still rejected 0/);

    // The cause is fixed (the retention is back to 30 days); a dry run first.
    const dryFixed = await runCli(['dlq', 'replay', '--dry-run', '--tenant', '201'], env);
    assert.equal(dryFixed.code, 0, dryFixed.stderr);
    assert.equal(dryFixed.stdout.trim().split('\n').filter((l) => /^\d+\tinserted$/.test(l)).length, 3);
    assert.equal(await countRows(s.pool, s.schema, 'events'), eventsBefore, 'a dry run inserts nothing');
    const parkedNow = await listDeadLetters(s.pool, s.schema, { status: 'parked' }, 100);
    assert.equal(parkedNow.length, 9);
    assert.ok(parkedNow.every((p) => p.replayAttempts === 0 && p.outcome === null), 'a dry run marks nothing');

    const replay = await runCli(['dlq', 'replay', '--json'], env);
    assert.equal(replay.code, 1, 'three events are still invalid');
    const summary = JSON.parse(replay.stdout) as Record<string, number>;
    assert.deepEqual(
      { selected: summary.selected, inserted: summary.inserted, alreadyPresent: summary.alreadyPresent, stillInvalid: summary.stillInvalid },
      { selected: 9, inserted: 6, alreadyPresent: 0, stillInvalid: 3 },
    );
    assert.match(replay.stderr, /9 of 9 selected: inserted 6, already present 0, still invalid 3, still rejected 0/);
    assert.match(replay.stderr, /replay: 9\/9 \(100%\)/);
    assert.equal(await countRows(s.pool, s.schema, 'events'), eventsBefore + 6);
    const replayed = await listDeadLetters(s.pool, s.schema, { status: 'replayed' }, 100);
    assert.equal(replayed.length, 6);
    assert.ok(replayed.every((r) => r.outcome === 'inserted' && r.replayAttempts === 1));
    const still = await listDeadLetters(s.pool, s.schema, { status: 'parked' }, 100);
    assert.equal(still.length, 3);
    assert.ok(still.every((r) => r.outcome === 'still invalid' && r.replayAttempts === 1));
    // Today's error replaces the old one.
    const notUtf8 = still.find((r) => r.tenantId === 204);
    assert.ok(notUtf8);
    assert.notEqual(notUtf8.error, 'body: not valid UTF-8');

    const again = await runCli(['dlq', 'replay', '--json'], env);
    assert.equal(again.code, 1);
    const s2 = JSON.parse(again.stdout) as Record<string, number>;
    assert.equal(s2.inserted, 0);
    assert.equal(s2.selected, 3);
    assert.equal(await countRows(s.pool, s.schema, 'events'), eventsBefore + 6);

    // Replaying rows whose events are already written (status replayed) finds them present.
    const present = await runCli(['dlq', 'replay', '--status', 'replayed', '--tenant', '202', '--json'], env);
    assert.equal(present.code, 0, present.stderr);
    assert.deepEqual(JSON.parse(present.stdout), { dryRun: false, selected: 3, processed: 3, inserted: 0, alreadyPresent: 3, stillInvalid: 0, stillRejected: 0 });
    assert.equal(await countRows(s.pool, s.schema, 'events'), eventsBefore + 6);
  });

  test('discard needs --yes, then marks the selected parked rows discarded', async () => {
    const no = await runCli(['dlq', 'discard', '--tenant', '203'], env);
    assert.equal(no.code, 2);
    assert.match(no.stderr, /this would discard 2 parked dead letter\(s\); add --yes to do it/);
    assert.equal((await listDeadLetters(s.pool, s.schema, { status: 'discarded' }, 100)).length, 0);
    const yes = await runCli(['dlq', 'discard', '--tenant', '203', '--yes', '--json'], env);
    assert.equal(yes.code, 0, yes.stderr);
    const { discarded } = JSON.parse(yes.stdout) as { discarded: number[] };
    assert.equal(discarded.length, 2);
    for (const id of discarded) assert.equal((await getDeadLetter(s.pool, s.schema, id))?.status, 'discarded');
    const left = await runCli(['dlq', 'list', '--status', 'parked', '--json'], env);
    assert.deepEqual((JSON.parse(left.stdout) as { tenantId: number }[]).map((r) => r.tenantId), [204]);
    // By default only what is still parked: discarded and replayed rows are out of the way.
    const byDefault = await runCli(['dlq', 'list', '--json'], env);
    assert.deepEqual((JSON.parse(byDefault.stdout) as { status: string }[]).map((r) => r.status), ['parked']);
    const all = await runCli(['dlq', 'list', '--all', '--json'], env);
    assert.ok((JSON.parse(all.stdout) as { status: string }[]).filter((r) => r.status === 'discarded').length === 2, all.stdout);
  });
});
