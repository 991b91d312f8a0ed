/**
 * The fast validator reads eventId with a char-code scan instead of UUID_RE: on near-miss ids (one
 * character of a UUID replaced, inserted or removed, any case), it must decide as the zod path does.
 * Random strings almost never come this close to a UUID, so pipeline-validate-fast.test.ts's
 * generators rarely reach these cases.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { validateFast } from '../../src/pipeline/fastValidate.js';
import { validateEvent, type ValidateOptions } from '../../src/pipeline/validate.js';
import { makeSource } from '../support/rows.js';

const NOW = new Date('2026-03-14T12:00:00Z');
const OPTS: ValidateOptions = { now: NOW, retentionDays: 30, aheadDays: 3, maxBodyBytes: 256 * 1024 };

const odd = fc.constantFrom('-', '.', 'g', 'G', 'A', 'F', 'f', '0', '9', ':', '/', '@', '`', ' ', 'ß', '\u0660', '\uff10', 'é', '😀');
const nearMiss = fc
  .tuple(fc.uuid(), fc.integer({ min: 0, max: 36 }), odd, fc.constantFrom('replace', 'insert', 'delete', 'none'), fc.constantFrom('lower', 'upper', 'mixed'))
  .map(([u, at, c, how, kind]) => {
    const cased = kind === 'upper' ? u.toUpperCase() : kind === 'mixed' ? [...u].map((x, i) => (i % 2 ? x.toUpperCase() : x)).join('') : u;
    if (how === 'replace') return cased.slice(0, at) + c + cased.slice(at + 1);
    if (how === 'insert') return cased.slice(0, at) + c + cased.slice(at);
    if (how === 'delete') return cased.slice(0, at) + cased.slice(at + 1);
    return cased;
  });

test('near-miss event ids: the fast path decides exactly as the zod path', () => {
  let accepted = 0;
  fc.assert(
    fc.property(nearMiss, (eventId) => {
      const body = Buffer.from(JSON.stringify({ eventId, tenantId: 7, type: 'page_view', occurredAt: '2026-03-14T11:59:00.000Z' }), 'utf8');
      const raw = { body, properties: {}, source: makeSource({ partitionId: '0', enqueuedTime: NOW }) };
      const slow = validateEvent(raw, OPTS);
      assert.deepStrictEqual(validateFast(raw, OPTS), slow);
      if (slow.ok) accepted++;
    }),
    { numRuns: 3000 },
  );
  assert.ok(accepted > 300, `only ${accepted} ids were valid UUIDs: the generator tests nothing but rejections`);
});
