import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import pg from 'pg';
import { classifyError, describeError, type ErrorClass } from '../../src/pipeline/classify.js';
import { sqlState } from '../../src/pipeline/pgErrors.js';

/** The error class pg itself raises for a server error, with its SQLSTATE. */
function dbError(code: string, message: string): Error {
  const e = new pg.DatabaseError(message, message.length, 'error');
  e.code = code;
  return e;
}

function nodeError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code, errno: -111, syscall: 'connect' });
}

describe('classifyError', () => {
  const table: [string, unknown, ErrorClass][] = [
    ['08006 connection failure', dbError('08006', 'connection failure'), 'unavailable'],
    ['08001 cannot connect', dbError('08001', 'could not connect to server'), 'unavailable'],
    ['53300 too many connections', dbError('53300', 'sorry, too many clients already'), 'unavailable'],
    ['53100 disk full', dbError('53100', 'could not extend file'), 'transient'],
    ['57P01 admin shutdown', dbError('57P01', 'terminating connection due to administrator command'), 'unavailable'],
    ['57P03 cannot connect now', dbError('57P03', 'the database system is starting up'), 'unavailable'],
    ['28P01 password authentication failed (a rotated secret)', dbError('28P01', 'password authentication failed for user "hubsink"'), 'unavailable'],
    ['55P03 lock timeout', dbError('55P03', 'canceling statement due to lock timeout'), 'transient'],
    ['57014 statement timeout', dbError('57014', 'canceling statement due to statement timeout'), 'transient'],
    ['40001 serialization failure', dbError('40001', 'could not serialize access'), 'transient'],
    ['40P01 deadlock', dbError('40P01', 'deadlock detected'), 'transient'],
    ['23505 unique violation', dbError('23505', 'duplicate key value violates unique constraint "events_pkey"'), 'rejected'],
    ['22P02 invalid text representation', dbError('22P02', 'invalid input syntax for type uuid'), 'rejected'],
    ['23514 check violation (no partition)', dbError('23514', 'no partition of relation "events" found for row'), 'rejected'],
    ['22021 bad encoding', dbError('22021', 'invalid byte sequence for encoding "UTF8": 0x00'), 'rejected'],
    ['22003 numeric out of range', dbError('22003', 'numeric field overflow'), 'rejected'],
    ['XX000 duplicate key (Citus COPY path)', dbError('XX000', 'duplicate key value violates unique constraint "events_pkey_102008"'), 'rejected'],
    ['XX000 remote node unreachable (Citus)', dbError('XX000', 'connection to the remote node 10.0.0.5:5432 failed with the following error: timeout'), 'unavailable'],
    ['XX000 no partition (Citus COPY path)', dbError('XX000', 'no partition of relation "events_246089" found for row'), 'rejected'],
    ['XX000 other', dbError('XX000', 'cache lookup failed for relation 12345'), 'fatal'],
    ['42P01 undefined table', dbError('42P01', 'relation "events" does not exist'), 'fatal'],
    ['42501 permission denied', dbError('42501', 'permission denied for table events'), 'fatal'],
    ['54001 stack depth', dbError('54001', 'stack depth limit exceeded'), 'fatal'],
    ['ECONNREFUSED', nodeError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'), 'unavailable'],
    ['ECONNRESET', nodeError('ECONNRESET', 'read ECONNRESET'), 'unavailable'],
    ['ETIMEDOUT', nodeError('ETIMEDOUT', 'connect ETIMEDOUT'), 'unavailable'],
    ['pg connection terminated', new Error('Connection terminated unexpectedly'), 'unavailable'],
    ['pg pool connect timeout', new Error('timeout exceeded when trying to connect'), 'unavailable'],
    ['plain Error', new Error('something broke'), 'fatal'],
    ['TypeError (a bug)', new TypeError("Cannot read properties of undefined (reading 'x')"), 'fatal'],
    ['EACCES node error', nodeError('EACCES', 'permission denied'), 'fatal'],
    ['a thrown string', 'Connection terminated', 'unavailable'],
    // Node's happy-eyeballs connect to `localhost` (::1 and 127.0.0.1) fails with an AggregateError.
    ['AggregateError of refused connects', new AggregateError([nodeError('ECONNREFUSED', 'connect ECONNREFUSED ::1:5432'), nodeError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')]), 'unavailable'],
    ['a wrapper whose cause is a deadlock', new Error('batch failed', { cause: dbError('40P01', 'deadlock detected') }), 'transient'],
    ['a wrapper whose cause is a missing table', new Error('batch failed', { cause: dbError('42P01', 'relation does not exist') }), 'fatal'],
    ['an identity error at start-up', Object.assign(new Error('ManagedIdentityCredential: no response'), { name: 'CredentialUnavailableError' }), 'unavailable'],
    ['a cycle of causes', (() => { const e = new Error('a'); (e as { cause?: unknown }).cause = e; return e; })(), 'fatal'],
    ['null', null, 'fatal'],
    ['undefined', undefined, 'fatal'],
    ['object with a non-SQLSTATE code', { code: 42, message: 'x' }, 'fatal'],
  ];
  for (const [name, err, expected] of table) {
    test(`${name} → ${expected}`, () => assert.equal(classifyError(err), expected));
  }
});

describe('sqlState and describeError', () => {
  test('sqlState reads only five-character SQLSTATEs', () => {
    assert.equal(sqlState(dbError('23505', 'x')), '23505');
    assert.equal(sqlState(nodeError('ECONNREFUSED', 'x')), undefined);
    assert.equal(sqlState({ code: '2350' }), undefined);
    assert.equal(sqlState('23505'), undefined);
  });
  test('describeError: code first, one line, bounded length', () => {
    assert.equal(describeError(dbError('23514', 'no partition\nof relation "events"')), '23514 no partition of relation "events"');
    assert.equal(describeError(nodeError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')), 'ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5432');
    assert.equal(describeError(new Error('plain')), 'plain');
    assert.equal(describeError('text'), 'text');
    assert.equal(describeError(new Error('x'.repeat(5000))).length, 2000);
  });
  test('describeError unwraps AggregateError members and cause chains, so a failed batch names its cause', () => {
    // What @azure/core-amqp throws with the dead-letter hub unreachable: an AggregateError with no message.
    const amqp = new AggregateError([nodeError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5671'), nodeError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5671')]);
    assert.equal(describeError(amqp), 'ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5671');
    assert.equal(describeError(new AggregateError([], '')), 'AggregateError');
    const wrapped = new Error('sending 3 dead letters failed', { cause: amqp });
    assert.equal(describeError(wrapped), 'sending 3 dead letters failed: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5671');
    const deep = new Error('outer', { cause: new Error('middle', { cause: dbError('57P01', 'terminating connection due to administrator command') }) });
    assert.equal(describeError(deep), 'outer: middle: 57P01 terminating connection due to administrator command');
    // A wrapper that already quotes its cause is not repeated.
    const quoting = new Error('database unreachable: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5432', { cause: nodeError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432') });
    assert.equal(describeError(quoting), 'database unreachable: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5432');
  });
});
