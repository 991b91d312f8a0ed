/**
 * Databases the way the app finds them: a test schema migrated with the accepted window's
 * partitions, and a server of a test's own that it can stop and start again on the same port and
 * data, for outages.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { detectCapabilities, type Capabilities } from '../../src/db/capabilities.js';
import { migrate } from '../../src/db/migrate.js';
import { maintainPartitions } from '../../src/db/partitions.js';
import { configureSession } from '../../src/db/session.js';
import { startEmbeddedPostgres } from '../../src/local/postgres.js';
import type { EventRow } from '../../src/pipeline/types.js';
import { createTestSchema, type TestSchema } from './services.js';

/**
 * A migrated test schema whose pool has the session settings the app gives it, with partitions
 * for [now − 30 days, now + 3 days].
 */
export async function createEventsSchema(prefix: string): Promise<{ s: TestSchema; caps: Capabilities }> {
  const s = await createTestSchema(prefix);
  const caps = await detectCapabilities(s.pool);
  configureSession(s.pool, caps, { citusCachedConnsPerWorker: 8 });
  await migrate(s.pool, s.schema);
  await maintainPartitions(s.pool, s.schema, { now: new Date(), aheadDays: 3, retentionDays: 30, caps });
  return { s, caps };
}

/** How many of these rows are in the schema's events (by event id). */
export async function countEventsOf(s: TestSchema, rows: readonly EventRow[]): Promise<number> {
  const { rows: r } = await s.pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${s.schema}".events WHERE event_id = ANY($1::uuid[])`, [
    rows.map((x) => x.eventId),
  ]);
  return Number(r[0]?.n);
}

export interface OwnServer {
  /** A small pool that gives up connecting after 2 s, so an outage shows quickly. */
  pool: pg.Pool;
  /** Stops the server (the pool stays, and fails until start()). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Ends the pool, stops the server if it runs, and removes its data. */
  close(): Promise<void>;
}

/**
 * An embedded PostgreSQL of the test's own, migrated into `public` with partitions for
 * [now − retentionDays, now + aheadDays].
 */
export async function startOwnServer(name: string, window: { aheadDays: number; retentionDays: number }): Promise<OwnServer> {
  const dir = await mkdtemp(path.join(tmpdir(), `hubsink-${name}-`));
  const dataDir = path.join(dir, 'data');
  let server = await startEmbeddedPostgres({ dataDir, persistent: true });
  let running = true;
  const port = server.port;
  const pool = new pg.Pool({ connectionString: server.url, max: 2, connectionTimeoutMillis: 2000 });
  pool.on('error', () => undefined);
  const own: OwnServer = {
    pool,
    async stop() {
      await server.stop();
      running = false;
    },
    async start() {
      server = await startEmbeddedPostgres({ dataDir, port, persistent: true });
      running = true;
    },
    async close() {
      await pool.end().catch(() => undefined);
      if (running) await server.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await migrate(pool, 'public');
    await maintainPartitions(pool, 'public', { now: new Date(), ...window, caps: await detectCapabilities(pool) });
  } catch (err) {
    await own.close();
    throw err;
  }
  return own;
}
