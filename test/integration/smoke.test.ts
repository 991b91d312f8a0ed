import { test } from 'vitest';
import assert from 'node:assert/strict';
import { createTestSchema } from '../support/services.js';

test('the test database is reachable and schemas isolate', async () => {
  const s = await createTestSchema();
  try {
    const { rows } = await s.pool.query<{ schema: string }>('SELECT current_schema() AS schema');
    assert.equal(rows[0]?.schema, s.schema);
  } finally {
    await s.drop();
  }
});
