/**
 * What a peer can do to the emulator: publishing is authorised on every transfer (a client that
 * ignores the detach of an expired token cannot keep publishing), and a frame larger than any
 * message is refused before it is buffered. Driven by rhea directly, since the Event Hubs client
 * always behaves.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import rhea, { type Connection, type EventContext } from 'rhea';
import { DEFAULT_KEY, DEFAULT_KEY_NAME, startEmulator, type Emulator } from '../../src/index.js';
import { MAX_FRAME_SIZE } from '../../src/server.js';
import { createSasToken } from '../../src/sas.js';
import { uniqueName, waitFor } from '../support.js';

let emu: Emulator;
const hub = uniqueName('sec');

beforeAll(async () => {
  emu = await startEmulator({ port: 0, hubs: [{ name: hub, partitions: 1 }] });
});
afterAll(async () => {
  await emu.stop();
});

test('a sender whose token expired is refused on its next transfer, and its link is closed', async () => {
  const container = rhea.create_container();
  const conn: Connection = container.connect({ host: '127.0.0.1', port: emu.port, reconnect: false });
  const outcomes: string[] = [];
  let linkError = '';
  try {
    await new Promise<void>((resolve, reject) => {
      conn.once('connection_open', () => resolve());
      conn.once('disconnected', () => reject(new Error('disconnected')));
    });
    // put-token for the hub, valid for 2 s.
    const expiresAt = Math.floor(Date.now() / 1000) + 2;
    const token = createSasToken(`sb://127.0.0.1/${hub}`, DEFAULT_KEY_NAME, DEFAULT_KEY, expiresAt);
    const replies: number[] = [];
    const cbsIn = conn.open_receiver({ source: { address: '$cbs' }, target: { address: 'cbs-reply' }, name: 'cbs-reply' });
    cbsIn.on('message', (ctx: EventContext) => replies.push(Number((ctx.message?.application_properties as Record<string, unknown>)['status-code'])));
    const cbsOut = conn.open_sender({ target: { address: '$cbs' } });
    await waitFor('the CBS links', () => cbsOut.sendable() && cbsIn.is_open(), 10_000);
    cbsOut.send({
      message_id: '1',
      reply_to: 'cbs-reply',
      application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: `sb://127.0.0.1/${hub}` },
      body: token,
    });
    await waitFor('the put-token reply', () => replies.length > 0, 10_000);
    assert.equal(replies[0], 202);
    const sender = conn.open_sender({ target: { address: hub } });
    sender.on('accepted', () => outcomes.push('accepted'));
    sender.on('rejected', () => outcomes.push('rejected'));
    sender.on('sender_close', (ctx: EventContext) => (linkError = String((ctx.sender?.error as { condition?: string } | undefined)?.condition ?? 'closed')));
    await waitFor('the publishing link', () => sender.sendable(), 10_000);
    sender.send({ body: 'while the token is valid' });
    await waitFor('the first outcome', () => outcomes.length === 1, 10_000);
    assert.deepEqual(outcomes, ['accepted']);
    // Wait out the token; the link stays attached (nothing detaches it), as a misbehaving client keeps it.
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt * 1000 - Date.now()) + 1100));
    sender.send({ body: 'after the token expired' });
    await waitFor('the second outcome', () => outcomes.length === 2, 10_000);
    assert.deepEqual(outcomes, ['accepted', 'rejected']);
    await waitFor('the link closed by the emulator', () => linkError !== '', 10_000);
    assert.equal(linkError, 'amqp:unauthorized-access');
    assert.equal(emu.partitionEvents(hub, '0').length, 1);
  } finally {
    conn.close();
  }
});

test('a peer declaring a frame larger than any message is dropped before the emulator buffers it', async () => {
  const sock = tcpConnect({ host: '127.0.0.1', port: emu.port });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', reject);
  });
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  sock.on('error', () => undefined);
  sock.resume();
  // AMQP protocol header, then a frame header announcing 1 GiB (unauthenticated: no SASL, no token).
  const frame = Buffer.alloc(8);
  frame.writeUInt32BE(1024 * 1024 * 1024, 0);
  frame.writeUInt8(2, 4);
  sock.write(Buffer.concat([Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'), frame, Buffer.alloc(1024)]));
  const timeout = new Promise<'open'>((r) => setTimeout(() => r('open'), 10_000));
  assert.equal(await Promise.race([closed.then(() => 'closed' as const), timeout]), 'closed');
  assert.ok(MAX_FRAME_SIZE < 1024 * 1024 * 1024);
});
