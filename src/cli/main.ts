import { Command } from 'commander';
import { runCli } from './program.js';
import { register as registerCheckpoints } from './checkpoints.js';
import { register as registerDb } from './db.js';
import { register as registerDlq } from './dlq.js';
import { register as registerEmulator } from './emulator.js';
import { register as registerGenerate } from './generate.js';
import { register as registerImport } from './import.js';
import { register as registerLocal } from './local.js';
import { register as registerRollup } from './rollup.js';
import { register as registerRun } from './run.js';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('hubsink')
    .description('Event Hubs → Citus/PostgreSQL stream processor: exact ingest, dead letters, rollups')
    .version(pkg.version);
  // Each command module adds its subcommand(s). Keep this list sorted.
  const registrations: ((p: Command) => void)[] = [registerCheckpoints, registerDb, registerDlq, registerEmulator, registerGenerate, registerImport, registerLocal, registerRollup, registerRun];
  for (const register of registrations) register(program);
  return program;
}

/** Entry point used by bin/hubsink.js. */
export async function main(argv: string[] = process.argv): Promise<void> {
  process.exitCode = await runCli(buildProgram(), argv);
}
