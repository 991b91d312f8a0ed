/**
 * Test entry point (`npm test` runs it after lint and type-check). Starts the real services the
 * integration tests need once for the whole run, then hands over to node's test runner:
 * - PostgreSQL: the server named by TEST_DATABASE_URL, else an embedded PostgreSQL in a temp dir;
 * - Azurite's blob service, in memory (unless TEST_AZURITE_CONNECTION names one).
 * Each test isolates itself by schema / hub / container name, so files may run concurrently.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres } from '../src/local/postgres.js';
import { startAzurite } from '../src/local/azurite.js';

const here = path.dirname(fileURLToPath(import.meta.url));

async function findTests(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await findTests(p)));
    else if (entry.name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  let files = await findTests(here);
  if (filters.length > 0) files = files.filter((f) => filters.some((s) => f.includes(s)));
  if (files.length === 0) {
    console.error(`no test files match ${filters.join(' ')}`);
    return 1;
  }
  const cleanups: (() => Promise<void>)[] = [];
  const env = { ...process.env };
  try {
    if (!env.TEST_DATABASE_URL) {
      const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-test-pg-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data') });
      cleanups.unshift(() => pg.stop());
      env.TEST_DATABASE_URL = pg.url;
      console.log(`# embedded PostgreSQL at 127.0.0.1:${pg.port}`);
    } else {
      console.log('# using the PostgreSQL named by TEST_DATABASE_URL');
    }
    if (!env.TEST_AZURITE_CONNECTION) {
      const az = await startAzurite();
      cleanups.unshift(() => az.stop());
      env.TEST_AZURITE_CONNECTION = az.connectionString;
      console.log(`# Azurite blob service at 127.0.0.1:${az.port}`);
    }
    const concurrency = env.TEST_CONCURRENCY ?? '2';
    // --test-force-exit: a test file whose SDK clients leave timers behind (the Event Hubs client's
    // token refresh) must not keep the run alive; --test-timeout bounds any single test.
    const child = spawn(
      process.execPath,
      ['--test', `--test-concurrency=${concurrency}`, '--test-force-exit', '--test-timeout=300000', '--test-reporter=spec', ...files],
      { env, stdio: 'inherit' },
    );
    // Ctrl-C or a CI timeout: stop the tests, then the services (finally below), leaving no orphans.
    const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
    process.once('SIGINT', forward('SIGINT'));
    process.once('SIGTERM', forward('SIGTERM'));
    return await new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
  } finally {
    for (const c of cleanups) await c().catch((e: unknown) => console.error('cleanup failed:', e));
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
