import { test } from 'vitest';
import assert from 'node:assert/strict';
import { createTestSchema } from '../support/services.js';
import { configureSession } from '../../src/db/session.js';
import { detectCapabilities } from '../../src/db/capabilities.js';

const SHOW = "SELECT current_setting('citus.max_cached_conns_per_worker', true) AS v";

test('detectCapabilities reports the server; configureSession sets the Citus cache on every connection', async () => {
  const s = await createTestSchema('dbs_');
  try {
    const caps = await detectCapabilities(s.pool);
    // The probe's connection did not stay in the pool: it would lack the session settings.
    assert.equal(s.pool.totalCount, 0);
    // Plain PostgreSQL accepts a dotted placeholder setting, so the mechanism is exercised on both backends.
    configureSession(s.pool, { ...caps, citus: true }, { citusCachedConnsPerWorker: 7 });
    const clients = await Promise.all([s.pool.connect(), s.pool.connect(), s.pool.connect()]);
    try {
      const values = await Promise.all(clients.map(async (c) => (await c.query<{ v: string | null }>(SHOW)).rows[0]?.v));
      assert.deepEqual(values, ['7', '7', '7']);
      const { rows: ext } = await clients[0].query<{ citus: string | null; num: string }>(
        "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'citus') AS citus, current_setting('server_version_num') AS num",
      );
      assert.equal(caps.citus, ext[0]?.citus !== null);
      assert.equal(caps.citusVersion, ext[0]?.citus ?? undefined);
      assert.equal(caps.serverVersionNum, Number(ext[0]?.num));
      assert.ok(caps.serverVersionNum >= 140000);
      if (caps.hllInstalled) assert.ok(caps.hllAvailable);
    } finally {
      for (const c of clients) c.release();
    }
  } finally {
    await s.drop();
  }
});

test('configureSession does nothing without Citus', async () => {
  const s = await createTestSchema('dbs_');
  try {
    configureSession(s.pool, { citus: false, hllAvailable: false, hllInstalled: false, serverVersionNum: 150000 }, { citusCachedConnsPerWorker: 9 });
    const { rows } = await s.pool.query<{ v: string | null }>(SHOW);
    assert.notEqual(rows[0]?.v, '9');
    assert.throws(() => configureSession(s.pool, { citus: true, hllAvailable: false, hllInstalled: false, serverVersionNum: 150000 }, { citusCachedConnsPerWorker: -1 }), RangeError);
  } finally {
    await s.drop();
  }
});
