import { describe, expect, test } from 'vitest';
import { buildCsvMapping, likelyColumn, missingColumnsMessage, missingRequiredFields, parseMaps } from '../../src/import/csvMap.js';
import { fieldsMissingFromAll } from '../../src/import/preflight.js';

describe('CSV header check (pure)', () => {
  test.each([
    [['tenantId', 'type', 'occurredAt'], [], []],
    [['tenant_id', 'Type', 'occurred_at', 'extra'], [], []],
    [['tenant_id', 'occurred_at', 'event_type'], [], ['type']],
    [['tenant_id', 'occurred_at', 'event_type'], ['event_type=type'], []],
    [['tenantId', 'type', 'occurredAt'], ['type='], ['type']],
    [['a', 'b'], [], ['tenantId', 'type', 'occurredAt']],
  ])('%j with --map %j misses %j', (header, maps, missing) => {
    expect(missingRequiredFields(buildCsvMapping(header, parseMaps(maps)))).toEqual(missing);
  });

  test('the message names each field, a likely column for its --map, and the header', () => {
    const m = buildCsvMapping(['store', 'timestamp', 'kind', 'x'], parseMaps([]));
    const text = missingColumnsMessage('f.csv', missingRequiredFields(m), m);
    expect(text).toMatch(/tenantId: .*--map store=tenantId/);
    expect(text).toMatch(/type: .*--map kind=type/);
    expect(text).toMatch(/occurredAt: .*--map timestamp=occurredAt/);
    expect(text).toMatch(/\(header: store, timestamp, kind, x\)/);
  });

  test('a column already mapped to something else is not suggested', () => {
    expect(likelyColumn('type', ['x', 'y'])).toBeUndefined();
    expect(likelyColumn('occurredAt', ['Created_At'])).toBe('Created_At');
  });
});

describe('NDJSON first lines (pure)', () => {
  const b = (v: unknown) => Buffer.from(JSON.stringify(v));
  test.each([
    ['all fields somewhere', [b({ tenantId: 1, type: 't', occurredAt: 'x' })], []],
    ['tenantId in none', [b({ type: 't', occurredAt: 'x' }), b({ type: 'u', occurredAt: 'y' })], ['tenantId']],
    ['one line has it: not refused', [b({ type: 't', occurredAt: 'x' }), b({ tenantId: 2, type: 't', occurredAt: 'x' })], []],
    ['null counts as missing', [b({ tenantId: null, type: 't', occurredAt: 'x' })], ['tenantId']],
    ['nothing parseable says nothing', [Buffer.from('not json'), b([1, 2])], []],
  ])('%s', (_name, bodies, missing) => {
    expect(fieldsMissingFromAll(bodies)).toEqual(missing);
  });
});
