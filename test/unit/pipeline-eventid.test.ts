import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { HUBSINK_EVENT_ID_NAMESPACE, deriveEventId } from '../../src/pipeline/eventId.js';

/** RFC 9562 §5.5 written out independently of the `uuid` package. */
function referenceV5(namespace: string, name: Buffer): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const b = createHash('sha1').update(ns).update(name).digest().subarray(0, 16);
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x50;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('deriveEventId', () => {
  test('the reference implementation reproduces the RFC example (DNS namespace, www.example.com)', () => {
    assert.equal(referenceV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', Buffer.from('www.example.com')), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });

  const bodies: [string, Buffer][] = [
    ['JSON', Buffer.from('{"tenantId":1,"type":"click"}')],
    ['empty', Buffer.alloc(0)],
    ['invalid UTF-8', Buffer.from([0xff, 0xfe, 0x00, 0x80])],
    ['large', Buffer.alloc(100_000, 0x61)],
  ];
  for (const [name, body] of bodies) {
    test(`${name}: a v5 UUID in the hubsink namespace, equal to the reference`, () => {
      const id = deriveEventId(body);
      assert.match(id, V5);
      assert.equal(id, referenceV5(HUBSINK_EVENT_ID_NAMESPACE, body));
    });
  }

  test('identical bytes → identical ids, also from a different Buffer or a view into a larger one', () => {
    const text = '{"tenantId":7,"type":"page_view","occurredAt":"2024-05-10T11:00:00Z"}';
    const a = deriveEventId(Buffer.from(text));
    assert.equal(deriveEventId(Buffer.from(text)), a);
    const larger = Buffer.from(`xx${text}yy`);
    assert.equal(deriveEventId(larger.subarray(2, 2 + Buffer.byteLength(text))), a);
  });

  test('different bytes → different ids, even when the JSON means the same', () => {
    const ids = new Set(
      ['{"a":1,"b":2}', '{"b":2,"a":1}', '{"a":1, "b":2}', '{"a":1,"b":2}\n', '{"a":1,"b":3}'].map((s) => deriveEventId(Buffer.from(s))),
    );
    assert.equal(ids.size, 5);
  });

  test('the namespace is a fixed, well-formed UUID', () => {
    assert.match(HUBSINK_EVENT_ID_NAMESPACE, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});
