import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** PostgreSQL for integration tests: set by test/run.ts (embedded) or by the user (TEST_DATABASE_URL). */
export function testDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run the suite with `npm test` (it starts PostgreSQL) or set it');
  return url;
}

export function testAzuriteConnection(): string {
  const cs = process.env.TEST_AZURITE_CONNECTION;
  if (!cs) throw new Error('TEST_AZURITE_CONNECTION is not set: run the suite with `npm test` (it starts Azurite)');
  return cs;
}

/** A short unique lower-case name, valid as a schema, hub or blob container name. */
export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(5).toString('hex')}`;
}

export interface TestSchema {
  schema: string;
  /** Pool whose connections use only this schema (plus public for extensions). */
  pool: pg.Pool;
  /** Drops the schema and closes the pool. */
  drop(): Promise<void>;
}

/**
 * Every test works in its own schema so files can run concurrently and against a shared server,
 * including a Citus coordinator.
 */
export async function createTestSchema(prefix = 't_'): Promise<TestSchema> {
  const schema = uniqueName(prefix);
  const admin = new pg.Client({ connectionString: testDatabaseUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA "${schema}"`);
  } finally {
    await admin.end();
  }
  const pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 10, options: `-c search_path=${schema},public` });
  return {
    schema,
    pool,
    async drop() {
      await pool.end();
      const c = new pg.Client({ connectionString: testDatabaseUrl() });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}
