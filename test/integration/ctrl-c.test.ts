/**
 * Ctrl-C as a terminal delivers it: SIGINT to every process of the foreground process group, in the
 * middle of a run, for `hubsink local` (directly and under npm, as `npm start` runs it), `hubsink
 * run` and `hubsink emulator`. Once: an orderly stop that finishes what is in flight and exits 0.
 * Twice: everything stops at once. Either way nothing is left running.
 */
import { afterAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { testDatabaseUrl } from '../support/services.js';
import { startDatabaseProxy } from '../support/tcpProxy.js';
import { countRows, REPO_ROOT, runnerArgs, sendLoad, startStack, waitFor, type Stack } from '../support/runner-fixture.js';

/** Hang guard for one orderly stop (the local stack's own bound is 90 s). */
const STOP_HANG_GUARD_MS = 120_000;

interface Group {
  child: ChildProcess;
  pid: number;
  out: () => string;
  err: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const groups: Group[] = [];
const dirs: string[] = [];
let stack: Stack | undefined;
afterAll(async () => {
  for (const g of groups) {
    try {
      process.kill(-g.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await stack?.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A process group of its own, as a shell makes for a foreground job. */
function spawnGroup(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Group {
  const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  assert.ok(child.pid);
  const g = { child, pid: child.pid, out: () => out, err: () => err, exited };
  groups.push(g);
  return g;
}

const hubsink = (args: readonly string[], env: NodeJS.ProcessEnv): Group => spawnGroup(process.execPath, [path.join(REPO_ROOT, 'bin', 'hubsink.js'), ...args], env);

/** Ctrl-C: SIGINT to every process of the group (none left: nothing to do, as for a terminal). */
function ctrlC(g: Group): void {
  try {
    process.kill(-g.pid, 'SIGINT');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function stopped(g: Group): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no exit within the ${STOP_HANG_GUARD_MS} ms hang guard:\n${g.err().slice(-3000)}`)), STOP_HANG_GUARD_MS)));
  try {
    return await Promise.race([g.exited, guard]);
  } finally {
    clearTimeout(timer);
  }
}

/** True while any process of the group is alive. */
function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose command line mentions `needle` (the data folder names every child of the local stack). */
async function processesMentioning(needle: string): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' ');
      if (cmd.includes(needle)) out.push(`${pid}: ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function nothingLeft(g: Group, needle?: string): Promise<void> {
  // Children killed with their parent may take a moment to be reaped.
  await waitFor('the process group to be empty', () => Promise.resolve(groupAlive(g.pid)), (alive) => !alive, 10_000);
  if (needle !== undefined) await waitFor(`no process mentioning ${needle}`, () => processesMentioning(needle), (l) => l.length === 0, 10_000);
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const ANY_PORTS = ['--pg-port', '0', '--emulator-port', '0', '--azurite-port', '0', '--http-port', '0', '--metrics-port', '0'];

/** Waits for `hubsink local` to run with events flowing (a status line with inserted > 0). */
async function localRunning(g: Group): Promise<void> {
  await waitFor(
    'hubsink local to ingest',
    () => Promise.resolve(g.err()),
    (s) => /^status .*inserted=[1-9]/m.test(s) || g.child.exitCode !== null || g.child.signalCode !== null,
    180_000,
  );
  assert.ok(g.child.exitCode === null && g.child.signalCode === null, g.err().slice(-3000));
}

function figures(final: string): (name: string) => number {
  return (name) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(final)?.[1]);
}

/** The orderly stop as the user sees it, with the embedded PostgreSQL stopped last and cleanly. */
async function assertOrderlyLocalStop(g: Group, dataDir: string): Promise<void> {
  const err = g.err();
  assert.match(err, /stopping \(SIGTERM\)[\s\S]*runner stopped[\s\S]*\nfinal [^\n]*\nhubsink local stopped/, err.slice(-3000));
  // PostgreSQL stayed up until the runner had finished: no write met a database going away.
  assert.doesNotMatch(err, /database unavailable|ECONNREFUSED|57P03|Connection terminated/, err.slice(-3000));
  const final = err.split('\n').find((l) => l.startsWith('final ')) ?? '';
  const f = figures(final);
  assert.ok(f('sent') > 0, final);
  assert.equal(f('received'), f('sent'), final);
  assert.equal(f('inserted') + f('duplicates') + f('dl_invalid') + f('dl_rejected') + f('dl_transient'), f('received'), final);
  // A clean shutdown removes postmaster.pid; a killed server leaves it behind.
  await assert.rejects(access(path.join(dataDir, 'pg', 'postmaster.pid')), 'PostgreSQL was not shut down cleanly');
  await nothingLeft(g, dataDir);
}

async function localDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-ctrlc-'));
  dirs.push(dir);
  return dir;
}

const localEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME });

test('hubsink local with embedded PostgreSQL, Ctrl-C once: batches finish, the hubs drain, the final line adds up, PostgreSQL stops last, exit 0', async () => {
  const dir = await localDir();
  const g = hubsink(['local', '--data-dir', dir, '--rate', '300', '--status-interval', '1', ...ANY_PORTS], localEnv());
  await localRunning(g);
  ctrlC(g);
  const exit = await stopped(g);
  assert.deepEqual(exit, { code: 0, signal: null }, g.err().slice(-3000));
  await assertOrderlyLocalStop(g, dir);
});

test('npm run hubsink -- local (npm start without the build), Ctrl-C once: the same orderly stop', async () => {
  const dir = await localDir();
  const g = spawnGroup('npm', ['run', '--silent', 'hubsink', '--', 'local', '--data-dir', dir, '--rate', '300', '--status-interval', '1', ...ANY_PORTS], localEnv());
  await localRunning(g);
  ctrlC(g);
  const exit = await stopped(g);
  // npm re-raises a signal it received once its script has ended, so it reports SIGINT itself; what
  // matters is that the script it ran stopped in order.
  assert.ok(exit.code === 0 || exit.signal === 'SIGINT', JSON.stringify(exit));
  await assertOrderlyLocalStop(g, dir);
});

test('hubsink local, Ctrl-C twice: everything stops at once, exit 130, nothing left running', async () => {
  const dir = await localDir();
  const g = hubsink(['local', '--data-dir', dir, '--rate', '300', '--status-interval', '1', ...ANY_PORTS], localEnv());
  await localRunning(g);
  ctrlC(g);
  await waitFor('the orderly stop to begin', () => Promise.resolve(g.err()), (s) => /stopping \(SIGTERM\)/.test(s), 30_000);
  ctrlC(g);
  const exit = await stopped(g);
  assert.deepEqual(exit, { code: 130, signal: null }, g.err().slice(-3000));
  assert.match(g.err(), /SIGINT again: killing everything now/);
  await nothingLeft(g, dir);
});

test('hubsink run, Ctrl-C once mid-stream: exit 0 with every event it counted in the database', async () => {
  stack = await startStack();
  const s = stack;
  const g = hubsink(runnerArgs(s, ['--deadletter', '--status-interval', '1']), s.env());
  const sending = sendLoad(s, { count: 6000, duplicates: 0.01, malformed: 0.005, seed: 'ctrl-c-run', rate: 1500 });
  await waitFor('the runner to be mid-stream', () => countRows(s.db.pool, s.db.schema, 'events'), (n) => n >= 500 || g.child.exitCode !== null, 120_000);
  ctrlC(g);
  const exit = await stopped(g);
  assert.deepEqual(exit, { code: 0, signal: null }, g.err().slice(-3000));
  assert.match(g.err(), /SIGINT: shutting down[\s\S]*runner stopped/);
  assert.doesNotMatch(g.err(), /unavailable|Unhandled|error /, g.err().slice(-3000));
  // The last status line is written after the stop: what it counts as inserted is in the table.
  const last = g.err().split('\n').filter((l) => /inserted=\d+/.test(l)).at(-1) ?? '';
  assert.equal(await countRows(s.db.pool, s.db.schema, 'events'), Number(/inserted=(\d+)/.exec(last)?.[1]), last);
  await nothingLeft(g);

  await sending;
});

test('hubsink run, Ctrl-C while the database is unreachable: it stops at once without waiting for the database, exit 0, nothing left', async () => {
  const s = stack ?? (stack = await startStack());
  const proxy = await startDatabaseProxy();
  try {
    const g = hubsink(runnerArgs(s, ['--status-interval', '0']), s.env({ DATABASE_URL: proxy.url(testDatabaseUrl()), HUBSINK_TRANSIENT_RETRY_MS: '500' }));
    await waitFor('partitions claimed', () => Promise.resolve(g.err()), (e) => /ingest: claimed partition/.test(e) || g.child.exitCode !== null, 120_000);
    await proxy.cut();
    await sendLoad(s, { count: 500, duplicates: 0, malformed: 0, seed: 'ctrl-c-run-2' });
    await waitFor('failed attempts while the database is unreachable', () => Promise.resolve(g.err()), (e) => /failed, not checkpointing/.test(e) || g.child.exitCode !== null, 120_000);
    assert.equal(g.child.exitCode, null, g.err().slice(-2000));
    ctrlC(g);
    const exit = await stopped(g);
    assert.deepEqual(exit, { code: 0, signal: null }, g.err().slice(-3000));
    assert.match(g.err(), /SIGINT: shutting down[\s\S]*runner stopped/);
    await nothingLeft(g);
  } finally {
    await proxy.stop();
  }
});

test('hubsink emulator: Ctrl-C held down (a signal every few ms until it is gone) stops it as Ctrl-C does, nothing left running', async () => {
  for (let round = 0; round < 3; round++) {
    const g = hubsink(['emulator', '--port', '0', '--json'], localEnv());
    await waitFor('the emulator to print its address', () => Promise.resolve(g.out()), (o) => o.includes('\n') || g.child.exitCode !== null, 60_000);
    let gone = false;
    void g.exited.then(() => (gone = true));
    // Bounded: the hang guard below ends the test if the process never exits.
    const spam = (async () => {
      for (let i = 0; i < 20_000 && !gone; i++) {
        ctrlC(g);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const exit = await stopped(g);
    await spam;
    // A signal that lands while Node tears the process down finds no handler and ends it by
    // SIGINT, which a shell reports as 130 like the emulator's own second-Ctrl-C exit.
    assert.ok(exit.code === 0 || exit.code === 130 || exit.signal === 'SIGINT', `exit ${JSON.stringify(exit)}:\n${g.err()}`);
    assert.match(g.err(), /SIGINT: stopping the emulator/);
    await nothingLeft(g);
  }
});

test('hubsink emulator, Ctrl-C once: stops, exit 0, the port is free; twice: it is gone at once', async () => {
  for (const times of [1, 2]) {
    const g = hubsink(['emulator', '--port', '0', '--json'], localEnv());
    const info = await waitFor('the emulator to print its address', () => Promise.resolve(g.out()), (o) => o.includes('\n') || g.child.exitCode !== null, 60_000);
    const port = (JSON.parse(info) as { port: number }).port;
    assert.ok(await portOpen(port));
    ctrlC(g);
    if (times === 2) {
      await waitFor('the stop to begin', () => Promise.resolve(g.err()), (e) => /stopping the emulator/.test(e) || g.child.exitCode !== null, 30_000);
      ctrlC(g);
    }
    const exit = await stopped(g);
    assert.match(g.err(), /SIGINT: stopping the emulator/);
    // Its stop is quick: the second Ctrl-C finds it stopping (130), already gone (0), or in Node's
    // last moments, when no handler is left and the signal itself ends it (seen under load).
    if (times === 1) assert.deepEqual(exit, { code: 0, signal: null }, g.err());
    else if (/again: exiting now/.test(g.err())) assert.deepEqual(exit, { code: 130, signal: null }, g.err());
    else assert.ok((exit.code === 0 && exit.signal === null) || (exit.code === null && exit.signal === 'SIGINT'), `${JSON.stringify(exit)}\n${g.err()}`);
    await nothingLeft(g);
    assert.equal(await portOpen(port), false);
  }
});
