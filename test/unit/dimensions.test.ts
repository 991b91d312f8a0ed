/**
 * The built-in dimension names live in src/dimensions.ts alone: the settings, the rollup catalog and
 * the dashboard's headings follow it. Iterates the list, so a dimension added there is checked in
 * each place without editing this file.
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { BUILTIN_DIMENSION_LABELS, BUILTIN_DIMENSION_NAMES, DIMENSION_NAME } from '../../src/dimensions.js';
import { loadConfig } from '../../src/config.js';
import { DIMENSIONS, DIMENSION_COLUMNS, LEGACY_ROLLUPS, specProblems } from '../../src/rollups/definitions.js';
import { dimensionLabel, isDimensionName } from '../../web/dashboard/model.js';

describe('built-in dimensions: one list, every place derived', () => {
  test('each name is a valid dimension name, once', () => {
    assert.equal(new Set(BUILTIN_DIMENSION_NAMES).size, BUILTIN_DIMENSION_NAMES.length);
    for (const name of BUILTIN_DIMENSION_NAMES) assert.match(name, DIMENSION_NAME);
  });

  test('config reads an allow-list setting for each', () => {
    for (const name of BUILTIN_DIMENSION_NAMES) {
      const cfg = loadConfig({ [`HUBSINK_ROLLUP_${name.toUpperCase()}_VALUES`]: 'a, b,,a' });
      assert.deepEqual(cfg.rollupDimensions.allow[name], ['a', 'b'], name);
    }
  });

  test('the catalog says where each takes its values from, in the list order', () => {
    assert.deepEqual(
      DIMENSIONS.map((d) => d.name),
      BUILTIN_DIMENSION_NAMES,
    );
    for (const d of DIMENSIONS) {
      assert.ok(d.source.kind !== 'column' || (DIMENSION_COLUMNS as readonly string[]).includes(d.source.column), d.name);
      assert.deepEqual(specProblems({ name: 'probe', dimensions: [d], measures: ['events'], grains: ['day'], allTenants: false }), [], d.name);
    }
  });

  test('the dashboard heads each with its label and accepts it as a split', () => {
    for (const name of BUILTIN_DIMENSION_NAMES) {
      assert.equal(dimensionLabel(name), BUILTIN_DIMENSION_LABELS[name]);
      assert.ok(isDimensionName(name), name);
    }
    assert.equal(dimensionLabel('custom_thing'), 'custom_thing', 'an analyst-defined dimension shows its own name');
  });

  test("the legacy cubes keep migration 003's columns whatever is built in", () => {
    for (const r of LEGACY_ROLLUPS) assert.deepEqual(
      r.dimensions.map((d) => d.column),
      ['type', 'country', 'browser', 'campaign_id'],
    );
  });
});
