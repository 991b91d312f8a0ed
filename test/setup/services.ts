/**
 * Vitest globalSetup of the integration project: starts the real services once per run and hands
 * their addresses to the test workers (`inject`, see test/support/services.ts):
 * - PostgreSQL: the server named by TEST_DATABASE_URL, else an embedded PostgreSQL in a temp dir;
 * - Azurite's blob service, in memory (unless TEST_AZURITE_CONNECTION names one).
 * Ports are ephemeral, so two runs on one machine never collide. Each test isolates itself by
 * schema / hub / container name, so files may run concurrently. The unit project has no
 * globalSetup: `vitest run --project unit` starts nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { detectCapabilities, type Capabilities } from '../../src/db/capabilities.js';
import { startAzurite } from '../../src/local/azurite.js';
import { loadEmbeddedPostgres } from '../../src/local/embedded.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    azuriteConnection: string;
    /** What the test server offers, for `test.skipIf` at collection time (hll, Citus). */
    serverCapabilities: Capabilities;
  }
}

/** A service that could not start: the message says which one and why; no stack is worth showing. */
export class ServiceStartError extends Error {
  override name = 'ServiceStartError';
  constructor(message: string) {
    super(message);
    // Vitest prints a thrown error's stack; for a start-up failure the reason is the whole story.
    this.stack = `${this.name}: ${message}`;
  }
}

export interface TestServices {
  databaseUrl: string;
  azuriteConnection: string;
  capabilities: Capabilities;
  stop(): Promise<void>;
}

type Log = (line: string) => void;

/** How each service is started; a parameter so the failure path can be tested. */
export interface Starters {
  postgres(dataDir: string): Promise<{ url: string; port: number; stop(): Promise<void> }>;
  azurite(): Promise<{ connectionString: string; port: number; stop(): Promise<void> }>;
}

const realStarters: Starters = {
  postgres: async (dataDir) => (await loadEmbeddedPostgres())({ dataDir }),
  azurite: () => startAzurite(),
};

async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ServiceStartError(`test setup: could not ${what}: ${why}`);
  }
}

/** Starts what `env` does not name. On failure, stops what did start and throws ServiceStartError. */
export async function startTestServices(env: NodeJS.ProcessEnv, log: Log, start: Starters = realStarters): Promise<TestServices> {
  const cleanups: (() => Promise<unknown>)[] = [];
  const stop = async (): Promise<void> => {
    for (const c of cleanups.splice(0)) await c().catch((e: unknown) => log(`test teardown: ${e instanceof Error ? e.message : String(e)}`));
  };
  try {
    let databaseUrl = env.TEST_DATABASE_URL;
    if (databaseUrl) {
      log('# using the PostgreSQL named by TEST_DATABASE_URL');
    } else {
      const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-test-pg-'));
      cleanups.unshift(() => rm(dir, { recursive: true, force: true }));
      const server = await step('start embedded PostgreSQL', () => start.postgres(path.join(dir, 'data')));
      cleanups.unshift(() => server.stop());
      databaseUrl = server.url;
      log(`# embedded PostgreSQL at 127.0.0.1:${server.port}`);
    }
    let azuriteConnection = env.TEST_AZURITE_CONNECTION;
    if (!azuriteConnection) {
      const az = await step('start Azurite', () => start.azurite());
      cleanups.unshift(() => az.stop());
      azuriteConnection = az.connectionString;
      log(`# Azurite blob service at 127.0.0.1:${az.port}`);
    }
    const url = databaseUrl;
    const capabilities = await step(env.TEST_DATABASE_URL ? 'reach the PostgreSQL named by TEST_DATABASE_URL' : 'reach the embedded PostgreSQL', async () => {
      const pool = new pg.Pool({ connectionString: url, max: 1 });
      try {
        return await detectCapabilities(pool);
      } finally {
        await pool.end();
      }
    });
    log(`# PostgreSQL ${capabilities.serverVersionNum}, Citus ${capabilities.citusVersion ?? 'absent'}, hll ${capabilities.hllAvailable ? 'available' : 'absent'}`);
    return { databaseUrl, azuriteConnection, capabilities, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const services = await startTestServices(process.env, (l) => console.log(l));
  project.provide('databaseUrl', services.databaseUrl);
  project.provide('azuriteConnection', services.azuriteConnection);
  project.provide('serverCapabilities', services.capabilities);
  return () => services.stop();
}
