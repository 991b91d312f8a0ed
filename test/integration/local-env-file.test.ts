/**
 * `hubsink local` writes the settings of the stack it runs to `<data-dir>/env` (mode 0600) and its
 * banner prints the one line that loads it. Then every command of the README's operator's guide,
 * taken from the README's own code blocks, runs in a shell that has nothing but that file sourced
 * (and PATH): none of them may fail for a missing or wrong setting, nor print an empty error.
 */
import { afterAll, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestSchema, testDatabaseUrl, type TestSchema } from '../support/services.js';
import { REPO_ROOT, spawnHubsink, waitFor, type RunnerProcess } from '../support/runner-fixture.js';

const ANY_PORTS = ['--pg-port', '0', '--emulator-port', '0', '--azurite-port', '0', '--http-port', '0', '--metrics-port', '0'];
/** Guards against a hang only. */
const HANG_GUARD_MS = 120_000;

let local: RunnerProcess | undefined;
let db: TestSchema | undefined;
let dir: string | undefined;
afterAll(async () => {
  if (local && local.child.exitCode === null) {
    // The supervisor stops its stack in order on SIGTERM (a SIGKILL would leave the stack's session running).
    local.child.kill('SIGTERM');
    const gone = await Promise.race([local.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), HANG_GUARD_MS))]);
    if (!gone) local.child.kill('SIGKILL');
  }
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The README's operator's guide, as the commands its code blocks show (`$ hubsink …`). */
async function operatorGuideCommands(): Promise<string[]> {
  const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf("\n## Operator's guide");
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end);
  const commands: string[] = [];
  let inBlock = false;
  for (const line of section.split('\n')) {
    if (line.startsWith('```')) inBlock = !inBlock;
    else if (inBlock && /^\$ hubsink /.test(line)) commands.push(line.slice(2));
  }
  return commands;
}

function inShell(envFile: string, command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // Nothing but PATH (for node and the shell) and HOME: every setting must come from the file.
    const child = spawn('bash', ['-c', `source '${envFile}' && ${command}`], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command}: no end within ${HANG_GUARD_MS} ms\n${stderr}`));
    }, HANG_GUARD_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test("hubsink local writes .hubsink/env (0600) and prints its source line; the operator's guide runs with only that file sourced", async () => {
  const commands = await operatorGuideCommands();
  // The list is the README's: it must hold the guide's kinds of commands, or the parsing went wrong.
  for (const needle of ['dlq stats', 'dlq list', 'dlq replay ', 'dlq replay-hub', 'dlq discard', 'checkpoints show', 'checkpoints rewind']) {
    expect(commands.some((c) => c.includes(needle)), `${needle} in ${commands.join(' | ')}`).toBe(true);
  }

  db = await createTestSchema('lenv_');
  dir = await mkdtemp(path.join(tmpdir(), 'hubsink-local-env-'));
  local = spawnHubsink(['local', '--data-dir', dir, '--database-url', testDatabaseUrl(), '--rate', '50', '--malformed', '0.05', '--rollup-interval', '2', ...ANY_PORTS], {
    PATH: process.env.PATH,
    HUBSINK_SCHEMA: db.schema,
  });
  const proc = local;
  const banner = await waitFor('the banner', () => Promise.resolve(proc.stdoutLines().join('\n')), (s) => /Generator/.test(s) || proc.child.exitCode !== null, HANG_GUARD_MS);
  const line = /Settings +source (\S+)/.exec(banner);
  expect(line, `${banner}\n${proc.stderr()}`).not.toBeNull();
  const envFile = path.resolve(REPO_ROOT, line?.[1] ?? '');
  expect(envFile).toBe(path.join(dir, 'env'));
  expect((await stat(envFile)).mode & 0o777).toBe(0o600);
  const text = await readFile(envFile, 'utf8');
  for (const name of ['DATABASE_URL', 'HUBSINK_SCHEMA', 'EventHubConnection', 'AzureWebJobsStorage', 'INGEST_EVENTHUB_NAME', 'DEADLETTER_EVENTHUB_NAME']) {
    expect(text).toMatch(new RegExp(`^export ${name}='[^']+'$`, 'm'));
  }
  expect(text).toContain(`export HUBSINK_SCHEMA='${db.schema}'`);

  for (const command of commands) {
    const r = await inShell(envFile, command);
    const said = `${command}\nexit ${r.code}\nstdout: ${r.stdout.slice(0, 500)}\nstderr: ${r.stderr.slice(0, 1000)}`;
    // 0 or 1 (a refusal, say a rewind while the runner runs, is fine); 2 is a usage or settings
    // error, which only the guide's deliberate discard without --yes may show.
    expect([0, 1, 2], said).toContain(r.code);
    if (r.code === 2) expect(r.stderr, said).toMatch(/add --yes to do it/);
    expect(r.stderr, said).not.toMatch(/is not set|invalid configuration|command not found|password authentication failed|hubsink:\s*$/m);
  }
});
