import { Command } from 'commander';
import { runCli } from './program.js';
import { register as registerAccess } from './access.js';
import { register as registerCheckpoints } from './checkpoints.js';
import { register as registerDb } from './db.js';
import { register as registerDoctor } from './doctor.js';
import { register as registerDlq } from './dlq.js';
import { register as registerEmulator } from './emulator.js';
import { register as registerGenerate } from './generate.js';
import { register as registerImport } from './import.js';
import { register as registerLocal } from './local.js';
import { register as registerRollup } from './rollup.js';
import { register as registerRun } from './run.js';
import { existsSync, readFileSync } from 'node:fs';

// The compiled module sits in dist/src/cli, the source in src/cli: the first package.json above.
const pkgFile = ['../../package.json', '../../../package.json'].map((p) => new URL(p, import.meta.url)).find((u) => existsSync(u));
const pkg = (pkgFile ? JSON.parse(readFileSync(pkgFile, 'utf8')) : { version: 'unknown' }) as { version: string };

export function buildProgram(): Command {
  const program = new Command('hubsink')
    .description('Event Hubs → Citus/PostgreSQL stream processor: exact ingest, dead letters, rollups')
    .version(pkg.version);
  // Each command module adds its subcommand(s). Keep this list sorted.
  const registrations: ((p: Command) => void)[] = [registerAccess, registerCheckpoints, registerDb, registerDlq, registerDoctor, registerEmulator, registerGenerate, registerImport, registerLocal, registerRollup, registerRun];
  for (const register of registrations) register(program);
  return program;
}

/**
 * A reader that went away (`hubsink emulator --help | head -5`) is not a failure of the command:
 * the first write to the closed pipe fails with EPIPE, and the process ends quietly with the exit
 * status it has so far (0 for help output) instead of dying of an unhandled 'error' event.
 */
export function endQuietlyOnClosedStdout(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  });
}

/** Entry point used by bin/hubsink.js. */
export async function main(argv: string[] = process.argv): Promise<void> {
  endQuietlyOnClosedStdout();
  process.exitCode = await runCli(buildProgram(), argv);
}
