/**
 * The pure parts of dead letters and checkpoints: value encoding for jsonb, SQL builders, decoding
 * and planning a dead-letter batch, lag and rewind rules, and operator-facing formatting.
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { markReplayedBySourceSql, parkSql, sourceKeyValues } from '../../src/db/deadLetterParking.js';
import { filterClause, statsSql } from '../../src/db/deadLetterQueries.js';
import { decodeJsonValue, encodeJsonValue, safeText } from '../../src/db/jsonbCodec.js';
import { decodeDeadLetters, planDeadLetters, undecodableRecord } from '../../src/deadLetters/process.js';
import { ago, formatBody, formatTable, hexDump, jsonSafe, oneLine } from '../../src/operator/format.js';
import { createProgress, progressLine } from '../../src/operator/progress.js';
import {
  blobPrefix,
  checkpointBlobName,
  checkpointFromMetadata,
  lagOf,
  liveOwnership,
  planRewind,
  type PartitionState,
} from '../../src/hubs/checkpoints.js';
import { toDeadLetterMessage } from '../../src/pipeline/deadLetterMessage.js';
import type { DeadLetterRecord, RawEvent } from '../../src/pipeline/types.js';
import { makeSource } from '../support/rows.js';

const at = new Date('2026-04-01T00:00:00.000Z');

function rec(reason: DeadLetterRecord['reason'], n: number): DeadLetterRecord {
  return {
    reason,
    error: `e${n}`,
    body: Buffer.from(`{"n":${n}}`),
    properties: { p: n },
    tenantId: 3,
    source: makeSource({ hub: 'ClickStream', partitionId: '1', sequenceNumber: n, offset: `o${n}`, enqueuedTime: at }),
    attempts: 1,
    firstFailureAt: at,
    lastFailureAt: at,
  };
}

describe('jsonb encoding of application properties', () => {
  const cases: [string, unknown][] = [
    ['string', 'plain'],
    ['string with NUL', 'a\u0000b'],
    ['number', 42.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['boolean', false],
    ['null', null],
    ['bigint', -(2n ** 63n)],
    ['date', new Date('2026-01-01T00:00:00.001Z')],
    ['bytes', Buffer.from([0, 255, 7])],
    ['array', [1, 'x', null, [true]]],
    ['object', { a: { b: 'c' } }],
    ['object that looks tagged', { $bytes: 'AAA=' }],
    ['object with one other $ key', { $ref: '#/x' }],
  ];
  for (const [name, value] of cases) {
    test(`${name} survives JSON text`, () => {
      const back = decodeJsonValue(JSON.parse(JSON.stringify(encodeJsonValue(value))));
      if (typeof value === 'number' && Number.isNaN(value)) assert.ok(Number.isNaN(back));
      else assert.deepEqual(back, value);
      assert.ok(!JSON.stringify(encodeJsonValue(value)).includes('\\u0000'), 'jsonb refuses \\u0000');
    });
  }
  test('nesting deeper than 64 levels is cut, not sent to the server', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 200; i++) deep = [deep];
    const text = JSON.stringify(encodeJsonValue(deep));
    assert.ok(text.split('[').length - 1 <= 66);
  });
  test('safeText replaces NUL only', () => {
    assert.equal(safeText('a\u0000b\u0000'), 'a\uFFFDb\uFFFD');
    assert.equal(safeText('ünïcödé'), 'ünïcödé');
  });
});

describe('dead_letters SQL builders', () => {
  test('filters become numbered parameters, never text', () => {
    const f = filterClause({ status: 'parked', reason: 'rejected', tenantId: 9, since: at, until: new Date(at.getTime() + 1), afterId: 5, ids: [1, 2] }, 3);
    assert.equal(
      f.where,
      'WHERE status = $3 AND reason = $4 AND tenant_id = $5::bigint AND parked_at >= $6::timestamptz AND parked_at < $7::timestamptz AND id > $8::bigint AND id = ANY($9::bigint[])',
    );
    assert.deepEqual(f.values, ['parked', 'rejected', 9, at.toISOString(), '2026-04-01T00:00:00.001Z', 5, [1, 2]]);
    assert.deepEqual(filterClause({}), { where: '', values: [] });
  });
  test('the park statement is idempotent on the source key and takes one array per column', () => {
    const { text: sql, values: params } = parkSql('dl_schema', [rec('invalid', 1), rec('rejected', 2)]);
    assert.match(sql, /^INSERT INTO "dl_schema"\.dead_letters \(reason, error, /);
    assert.match(sql, /ON CONFLICT ON CONSTRAINT dead_letters_source_key DO NOTHING RETURNING id, reason$/);
    assert.equal(params.length, (sql.match(/\$\d+::/g) ?? []).length);
    for (const column of params) assert.equal((column as unknown[]).length, 2);
    assert.throws(() => parkSql('dl_schema', [rec('transient', 3)]), /only invalid or rejected events are parked, not transient/);
    assert.throws(() => parkSql('Bad-Schema', []), /not a valid SQL identifier/);
  });
  test('the source key lower-cases the hub and hashes the body, as parking does', () => {
    const [hub, part, seq, enq, sha] = sourceKeyValues([rec('invalid', 7)]);
    assert.deepEqual(hub, ['clickstream']);
    assert.deepEqual(part, ['1']);
    assert.deepEqual(seq, [7]);
    assert.deepEqual(enq, [at.toISOString()]);
    assert.equal((sha?.[0] as Buffer).length, 32);
    const st = markReplayedBySourceSql('s', [rec('invalid', 7)], 'done');
    assert.equal(st.values.length, 6);
    assert.equal(st.values[5], 'done');
  });
  test('stats statements bind their limits', () => {
    const st = statsSql('s', { tenants: 5, days: 3 });
    assert.deepEqual(st.byTenant.values, [5]);
    assert.deepEqual(st.byDay.values, [3]);
    assert.match(st.byDay.text, /make_interval\(days => \$1::int\)/);
  });
});

describe('a batch from the dead-letter hub', () => {
  const raw = (body: Buffer, properties: Record<string, unknown>): RawEvent => ({
    body,
    properties,
    source: makeSource({ hub: 'clickstream-deadletter', partitionId: '2', sequenceNumber: 44, offset: 'abc', enqueuedTime: at }),
  });
  test('decodes dead letters and turns anything else into an invalid record under its own coordinates', () => {
    const m = toDeadLetterMessage(rec('rejected', 9));
    const { records, undecodable } = decodeDeadLetters([raw(m.body, m.properties), raw(Buffer.from('hello'), { x: 1 })], at);
    assert.equal(records.length, 1);
    assert.equal(records[0]?.reason, 'rejected');
    assert.equal(records[0]?.source.hub, 'ClickStream');
    assert.equal(undecodable.length, 1);
    const u = undecodable[0];
    assert.ok(u);
    assert.equal(u.reason, 'invalid');
    assert.match(u.error, /^undecodable dead letter: not a hubsink dead letter: /);
    assert.equal(u.source.hub, 'clickstream-deadletter');
    assert.equal(u.source.sequenceNumber, 44);
    assert.deepEqual(u.body, Buffer.from('hello'));
    assert.deepEqual(undecodableRecord(raw(Buffer.from('x'), {}), 'why', at).error, 'undecodable dead letter: why');
  });
  test('retry writes transient records and parks the rest as they are; replay writes everything', () => {
    const rs = [rec('transient', 1), rec('invalid', 2), rec('rejected', 3)];
    const retry = planDeadLetters(rs, 'retry');
    assert.deepEqual(retry.rewrite.map((r) => r.reason), ['transient']);
    assert.deepEqual(retry.park.map((r) => r.reason), ['invalid', 'rejected']);
    const replay = planDeadLetters(rs, 'replay');
    assert.equal(replay.rewrite.length, 3);
    assert.equal(replay.park.length, 0);
  });
});

describe('checkpoint blobs, lag and rewind', () => {
  const scope = { fullyQualifiedNamespace: 'MyNs.servicebus.windows.net', eventHubName: 'ClickStream', consumerGroup: '$Default' };
  test('blob names are lower-cased like the SDKs write them', () => {
    assert.equal(blobPrefix(scope, 'ownership'), 'myns.servicebus.windows.net/clickstream/$default/ownership/');
    assert.equal(checkpointBlobName(scope, '3'), 'myns.servicebus.windows.net/clickstream/$default/checkpoint/3');
  });
  test('metadata: offsets stay opaque strings; an empty or unreadable sequence number is absent', () => {
    assert.deepEqual(checkpointFromMetadata('0', { sequencenumber: '17', offset: 'geo:12:abc' }), { partitionId: '0', sequenceNumber: 17, offset: 'geo:12:abc' });
    assert.deepEqual(checkpointFromMetadata('1', { sequencenumber: '', offset: '' }), { partitionId: '1' });
    assert.deepEqual(checkpointFromMetadata('2', { sequencenumber: '1e3', offset: '5' }), { partitionId: '2', offset: '5' });
    assert.deepEqual(checkpointFromMetadata('3', undefined), { partitionId: '3' });
  });
  test('live ownership has an owner and was renewed recently', () => {
    const now = new Date(at.getTime() + 100_000);
    const live = liveOwnership(
      [
        { partitionId: '0', ownerId: 'a', lastModified: new Date(now.getTime() - 5_000) },
        { partitionId: '1', ownerId: '', lastModified: new Date(now.getTime() - 1_000) },
        { partitionId: '2', ownerId: 'b', lastModified: new Date(now.getTime() - 61_000) },
        { partitionId: '3', ownerId: 'c' },
      ],
      now,
      60_000,
    );
    assert.deepEqual(live.map((o) => o.partitionId), ['0']);
  });

  const p = (over: Partial<PartitionState> = {}): PartitionState => ({
    partitionId: '0',
    beginningSequenceNumber: 0,
    lastEnqueuedSequenceNumber: 99,
    lastEnqueuedOffset: 'z',
    lastEnqueuedOnUtc: at,
    isEmpty: false,
    ...over,
  });
  const lagCases: [string, PartitionState, Parameters<typeof lagOf>[1], number | null][] = [
    ['checkpoint in the middle', p(), { partitionId: '0', sequenceNumber: 89 }, 10],
    ['caught up', p(), { partitionId: '0', sequenceNumber: 99 }, 0],
    ['start checkpoint', p(), { partitionId: '0', sequenceNumber: -1, offset: '-1' }, 100],
    ['no checkpoint: all retained', p({ beginningSequenceNumber: 40 }), undefined, 60],
    ['checkpoint older than retention', p({ beginningSequenceNumber: 50 }), { partitionId: '0', sequenceNumber: 10 }, 50],
    ['empty partition', p({ isEmpty: true, beginningSequenceNumber: 100 }), undefined, 0],
    ['checkpoint without sequence number', p(), { partitionId: '0', offset: '5' }, null],
    ['checkpoint past the end', p(), { partitionId: '0', sequenceNumber: 500 }, null],
  ];
  for (const [name, state, cp, lag] of lagCases) {
    test(`lag: ${name}`, () => assert.equal(lagOf(state, cp).lag, lag));
  }

  test('rewind: writes just before the first event at the time, the start, or keeps what is already earlier', () => {
    const before = { kind: 'before' as const, sequenceNumber: 49, offset: 'o49', first: { sequenceNumber: 50, enqueuedTime: at } };
    assert.deepEqual(planRewind(p(), before, { partitionId: '0', sequenceNumber: 99 }), {
      partitionId: '0',
      previous: { partitionId: '0', sequenceNumber: 99 },
      action: 'write',
      sequenceNumber: 49,
      offset: 'o49',
      reprocess: 50,
    });
    const keep = planRewind(p(), before, { partitionId: '0', sequenceNumber: 30 });
    assert.equal(keep.action, 'keep');
    assert.match(keep.action === 'keep' ? keep.reason : '', /already at or before/);
    const start = planRewind(p({ beginningSequenceNumber: 20 }), { kind: 'start' }, { partitionId: '0', sequenceNumber: 99 });
    assert.deepEqual(start.action === 'write' ? [start.sequenceNumber, start.offset, start.reprocess] : [], [-1, '-1', 80]);
    assert.equal(planRewind(p(), { kind: 'start' }, { partitionId: '0', sequenceNumber: -1, offset: '-1' }).action, 'keep');
    assert.equal(planRewind(p(), { kind: 'nothing-after' }, undefined).action, 'keep');
    const noPrevious = planRewind(p(), before, undefined);
    assert.deepEqual(noPrevious.action === 'write' ? [noPrevious.sequenceNumber, noPrevious.reprocess] : [], [49, null]);
  });
});

describe('operator output', () => {
  test('tables align columns and trim trailing space', () => {
    assert.equal(formatTable(['ID', 'NAME', 'X'], [['1', 'a', ''], ['100', 'bbbb', 'z']]), 'ID   NAME  X\n1    a\n100  bbbb  z');
  });
  test('bodies: JSON pretty-printed, other UTF-8 as text, the rest as hex', () => {
    assert.deepEqual(formatBody(Buffer.from('{"a":[1]}')), { kind: 'json', text: '{\n  "a": [\n    1\n  ]\n}' });
    assert.deepEqual(formatBody(Buffer.from('plain words')), { kind: 'text', text: 'plain words' });
    const hex = formatBody(Buffer.from([0xff, 0x41]));
    assert.equal(hex.kind, 'hex');
    assert.equal(hex.text, `00000000  ff 41${' '.repeat(42)}  |.A|`);
    assert.match(hexDump(Buffer.alloc(40), 32), /\n… 8 more bytes$/);
  });
  test('one-line errors, ages, JSON-safe values', () => {
    assert.equal(oneLine('a\nb\tc', 10), 'a b c');
    assert.equal(oneLine('abcdefghijkl', 5), 'abcd…');
    assert.equal(ago(new Date(at.getTime() - 5_000), at), '5 s ago');
    assert.equal(ago(new Date(at.getTime() - 3 * 86_400_000), at), '3 d ago');
    assert.deepEqual(jsonSafe({ b: Buffer.from([1]), n: 5n, d: at, u: undefined }), { b: { base64: 'AQ==' }, n: '5', d: at.toISOString(), u: null });
  });
  test('plain progress: a line after the first step, then at most one per interval, and a last one', () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString('utf8'));
        cb();
      },
    }) as unknown as NodeJS.WriteStream;
    let clock = 0;
    const pr = createProgress({ label: 'replay', total: 10, stream, intervalMs: 1000, now: () => clock });
    pr.advance(1);
    clock = 500;
    pr.advance(4);
    clock = 1500;
    pr.advance(2);
    pr.advance(3);
    pr.stop();
    assert.deepEqual(lines, ['replay: 1/10 (10%)\n', 'replay: 7/10 (70%)\n', 'replay: 10/10 (100%)\n']);
    assert.equal(progressLine('x', 0, 0), 'x: 0/0 (100%)');
  });
});
