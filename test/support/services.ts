import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import type { Capabilities } from '../../src/db/capabilities.js';

/**
 * PostgreSQL for integration tests: started by the integration project's globalSetup
 * (test/setup/services.ts), or the server the user named in TEST_DATABASE_URL.
 */
export function testDatabaseUrl(): string {
  const url = inject('databaseUrl');
  if (!url) throw new Error('no test database: run integration tests through vitest (`npm test`, `vitest --project integration`)');
  return url;
}

/** Azurite's blob service for integration tests, from the same globalSetup. */
export function testAzuriteConnection(): string {
  const cs = inject('azuriteConnection');
  if (!cs) throw new Error('no Azurite: run integration tests through vitest (`npm test`, `vitest --project integration`)');
  return cs;
}

/** What the test server offers (from the globalSetup), known when test files are collected. */
export function serverCapabilities(): Capabilities {
  return inject('serverCapabilities');
}

/** For `test.skipIf(...)`: the reason goes in the test's title, so a skip is never silent. */
export const noCitus = (): boolean => !serverCapabilities().citus;
export const noHll = (): boolean => !serverCapabilities().hllAvailable;

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
