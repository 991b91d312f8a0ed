/**
 * Rows per write statement of `hubsink import`: each batch is one COPY on Citus (where a COPY pays
 * per shard it touches), the setting elsewhere, and an operator's HUBSINK_UPSERT_CHUNK everywhere.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.js';
import { importChunkSize } from '../../src/import/importer.js';

test('Citus without HUBSINK_UPSERT_CHUNK: one COPY per batch; plain PostgreSQL: the setting (1,000 by default)', () => {
  const config = loadConfig({});
  assert.equal(config.upsertChunkSet, false);
  assert.equal(importChunkSize(config, { citus: true }, 5000), 5000);
  assert.equal(importChunkSize(config, { citus: true }, 20_000), 20_000);
  assert.equal(importChunkSize(config, { citus: false }, 5000), 1000);
  // A batch smaller than the setting never makes a statement smaller than the setting allows.
  assert.equal(importChunkSize(config, { citus: true }, 10), 1000);
});

test('an operator\'s HUBSINK_UPSERT_CHUNK holds on Citus too, the default value included', () => {
  for (const value of ['1000', '250', '50000']) {
    const config = loadConfig({ HUBSINK_UPSERT_CHUNK: value });
    assert.equal(config.upsertChunkSet, true);
    assert.equal(importChunkSize(config, { citus: true }, 5000), Number(value));
    assert.equal(importChunkSize(config, { citus: false }, 5000), Number(value));
  }
  assert.equal(loadConfig({ HUBSINK_UPSERT_CHUNK: '' }).upsertChunkSet, false, 'an empty setting is no setting');
});
