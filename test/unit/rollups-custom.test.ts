/** Analyst-defined rollup specs: what `hubsink rollup define` accepts, refuses, stores and reads back. */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { buildCustomSpec, formatDimensionSource, fromStored, mergeCatalog, parseDimensionSource, toStored, type DefineInput } from '../../src/rollups/custom.js';
import { cached } from '../../src/rollups/catalog.js';
import { catalogWire } from '../../src/serving/catalogHandler.js';
import { DEFAULT_SPECS } from '../../src/rollups/definitions.js';

const input = (name: string, dimensions: string[], more: Partial<DefineInput> = {}): DefineInput => ({ name, dimensions, grains: ['hour', 'day'], measures: ['events', 'revenue'], allTenants: true, ...more });

test('refusals name the cause, all at once', () => {
  const cases: [DefineInput, RegExp][] = [
    [input('1x', ['x=country']), /rollup name "1x"/],
    [input('a;drop', ['x=country']), /rollup name "a;drop"/],
    [input('x'.repeat(32), ['x=country']), /must be 1 to 31 characters/],
    [input('type', ['x=country']), /rollup type is built in/],
    [input('ok', []), /give at least one --dimension/],
    [input('ok', ['x=password']), /unknown source "password"/],
    [input('ok', ['x=urlpath(country)']), /urlpath\(\) reads url or referrer/],
    [input('ok', ['x=properties']), /a properties path has 1 to 8 keys/],
    [input('ok', ['x=properties..sku']), /each key of a properties path has 1 to 128 characters/],
    [input('ok', [`x=properties.${'k.'.repeat(8)}k`]), /1 to 8 keys/],
    [input('ok', ['X=country']), /--dimension "X": a dimension name is 1 to 31/],
    [input('ok', ['x=country', 'x=browser']), /--dimension x is given twice/],
    [input('ok', ['nosource']), /expected name=source/],
    [input('ok', ['x=country'], { measures: ['clicks'] }), /unknown measure "clicks"/],
    [input('ok', ['x=country'], { grains: [] }), /at least one of minute, hour, day/],
  ];
  for (const [i, re] of cases) {
    const r = buildCustomSpec(i, []);
    assert.ok(!r.ok, JSON.stringify(i));
    if (!r.ok) assert.match(r.problems.join('; '), re, JSON.stringify(i));
  }
  const both = buildCustomSpec(input('Bad', ['x=nope']), []);
  assert.ok(!both.ok && both.problems.length === 2, 'every problem at once');
});

test('sources: columns from the allow-list, properties paths as data, urlpath of url or referrer; a built-in name keeps its column', () => {
  assert.deepEqual(parseDimensionSource('country'), { ok: true, source: { kind: 'column', column: 'country' } });
  assert.deepEqual(parseDimensionSource(`properties.a'b"{},\\.c`), { ok: true, source: { kind: 'property', path: [`a'b"{},\\`, 'c'] } });
  assert.deepEqual(parseDimensionSource('urlpath(referrer)'), { ok: true, source: { kind: 'urlPath', column: 'referrer' } });
  for (const s of ['country', 'properties.sku.id', 'urlpath(url)']) {
    const p = parseDimensionSource(s);
    assert.ok(p.ok);
    if (p.ok) assert.equal(formatDimensionSource(p.source), s);
  }
  const r = buildCustomSpec(input('geo_sku', ['campaign=campaign_id', 'sku=properties.sku'], { grains: ['day', 'minute', 'day'], measures: ['users'] }), []);
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.deepEqual(r.spec.dimensions.map((d) => [d.name, d.column]), [['campaign', 'campaign_id'], ['sku', 'sku']]);
  assert.deepEqual(r.spec.grains, ['minute', 'day']);
  assert.deepEqual(r.spec.measures, ['events', 'users']);
  // Stored and read back: the same spec; a row edited by hand to name a bad column is refused.
  assert.deepEqual(fromStored('geo_sku', JSON.parse(JSON.stringify(toStored(r.spec)))), { ok: true, spec: r.spec });
  const bad = toStored(r.spec);
  bad.dimensions[1] = { name: 'sku', column: 'sku"; DROP TABLE x; --', source: { kind: 'property', path: ['sku'] } };
  assert.ok(!fromStored('geo_sku', bad).ok);
  assert.ok(!fromStored('total', toStored(r.spec)).ok, 'a built-in name');
  assert.ok(!fromStored('x', { dimensions: 'nope' }).ok);
  // Against what exists: the same name, or a dimension name reading another source.
  assert.match(JSON.stringify(buildCustomSpec(input('geo_sku', ['x=country']), [r.spec])), /already defined/);
  assert.match(JSON.stringify(buildCustomSpec(input('other', ['sku=properties.item']), [r.spec])), /that name already reads properties.sku/);
  assert.ok(buildCustomSpec(input('other', ['sku=properties.sku']), [r.spec]).ok, 'the same source under the same name is the same dimension');
});

test('mergeCatalog: custom specs after the built-in ones; a conflicting stored row is left out, named; the wire lists sources', () => {
  const a = buildCustomSpec(input('skus', ['sku=properties.sku']), []);
  const b = buildCustomSpec(input('skus2', ['sku=properties.other']), []);
  assert.ok(a.ok && b.ok);
  if (!a.ok || !b.ok) return;
  const m = mergeCatalog([a.spec, b.spec]);
  assert.deepEqual(m.skipped, ['skus2']);
  assert.deepEqual(m.specs.map((s) => s.name), [...DEFAULT_SPECS.map((s) => s.name), 'skus']);
  assert.deepEqual(m.rollups.slice(-2).map((d) => d.table), ['rollup_skus_hour', 'rollup_skus_day']);
  const wire = catalogWire(m);
  assert.deepEqual(wire.rollups.at(-1), { name: 'skus', dimensions: ['sku'], measures: ['events', 'revenue'], grains: ['hour', 'day'], allTenants: true, custom: true });
  assert.deepEqual(wire.dimensions.find((d) => d.name === 'sku'), { name: 'sku', source: 'properties.sku' });
  assert.equal(wire.rollups[0]?.custom, false);
});

test('cached: one read per ttl, shared by concurrent callers; a failed read is not kept', async () => {
  let t = 0;
  let reads = 0;
  let fail = false;
  const get = cached(() => {
    reads++;
    return fail ? Promise.reject(new Error('down')) : Promise.resolve(reads);
  }, 1000, () => t);
  assert.deepEqual(await Promise.all([get(), get()]), [1, 1]);
  t = 999;
  assert.equal(await get(), 1);
  t = 1000;
  fail = true;
  await assert.rejects(get());
  fail = false;
  assert.equal(await get(), 3);
});
