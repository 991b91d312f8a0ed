import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { freePort } from './ports.js';

export interface LocalAzurite {
  port: number;
  /** Full connection string; `UseDevelopmentStorage=true` only works on the default port. */
  connectionString: string;
  stop(): Promise<void>;
}

const ACCOUNT = 'devstoreaccount1';
const STARTUP_HANG_GUARD_MS = 120_000;
// Azurite's well-known development key (public, documented by Microsoft; not a secret).
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export function azuriteConnectionString(port: number): string {
  return `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${KEY};BlobEndpoint=http://127.0.0.1:${port}/${ACCOUNT};`;
}

function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (child.exitCode !== null) return reject(new Error(`azurite exited with code ${child.exitCode}`));
      const sock = connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve();
      });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`azurite did not listen on ${port} within ${timeoutMs} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

/**
 * Runs Azurite's blob service as a child process. `--skipApiVersionCheck` is required because the
 * storage SDK speaks a newer API version than Azurite 3.35 knows.
 */
export async function startAzurite(opts: { location?: string; port?: number; log?: (l: string) => void; startupTimeoutMs?: number } = {}): Promise<LocalAzurite> {
  const require = createRequire(import.meta.url);
  const main = path.join(path.dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'blob', 'main.js');
  const port = opts.port ?? (await freePort());
  const args = [main, '--blobHost', '127.0.0.1', '--blobPort', String(port), '--skipApiVersionCheck', '--disableProductStyleUrl', '--disableTelemetry', '--silent'];
  if (opts.location) {
    await mkdir(opts.location, { recursive: true });
    args.push('--location', opts.location);
  } else {
    args.push('--inMemoryPersistence');
  }
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = opts.log;
  if (log) {
    child.stdout?.on('data', (d: Buffer) => log(d.toString()));
    child.stderr?.on('data', (d: Buffer) => log(d.toString()));
  } else {
    child.stdout?.resume();
    child.stderr?.resume();
  }
  // A hang guard, not a speed claim: on a busy machine Azurite took over 30 s to load.
  try {
    await waitForPort(port, child, opts.startupTimeoutMs ?? STARTUP_HANG_GUARD_MS);
  } catch (err) {
    // Nothing is left behind when the start fails.
    child.kill('SIGKILL');
    throw err;
  }
  return {
    port,
    connectionString: azuriteConnectionString(port),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}
