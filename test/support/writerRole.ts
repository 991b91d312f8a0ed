/**
 * A login role that writes a test schema without owning it, as an application role beside the role
 * that migrates: usage of the schema, SELECT/INSERT/UPDATE/DELETE on its tables, its sequences. It
 * owns nothing, so a runner connected as it must find partition maintenance with nothing to do (the
 * stack created the window's partitions). On a Citus coordinator the role, the grants and revokes
 * on distributed tables reach the workers, where the shards are written.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { testDatabaseUrl, uniqueName } from './services.js';

export interface WriterRole {
  readonly name: string;
  /** The test database's URL, signed in as this role. */
  readonly url: string;
  /** Runs SQL as the test server's administrator (the role's grants and revokes). */
  admin(sql: string): Promise<void>;
  drop(): Promise<void>;
}

async function asAdmin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: testDatabaseUrl() });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

export async function createWriterRole(schema: string): Promise<WriterRole> {
  const name = uniqueName('hs_writer_');
  const password = randomBytes(12).toString('hex');
  // Names from uniqueName (lower-case letters, digits, _), so quoting them is enough.
  await asAdmin(`CREATE ROLE "${name}" LOGIN PASSWORD '${password}'`);
  await asAdmin(
    `GRANT USAGE ON SCHEMA "${schema}" TO "${name}";
     GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "${schema}" TO "${name}";
     GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "${schema}" TO "${name}"`,
  );
  const url = new URL(testDatabaseUrl());
  url.username = name;
  url.password = password;
  return {
    name,
    url: url.toString(),
    admin: asAdmin,
    async drop() {
      await asAdmin(`DROP OWNED BY "${name}"; DROP ROLE IF EXISTS "${name}"`);
    },
  };
}
