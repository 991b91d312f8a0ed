/**
 * `hubsink local` smoke tests, run as a user would (`node bin/hubsink.js local`): it starts, events
 * flow into PostgreSQL, rollups feed the metrics endpoint, status lines appear, and it stops by
 * itself (--duration) or on Ctrl-C within a bounded time, leaving no process behind. All ports are
 * "any free one" so the tests never collide with a local stack a developer is running.
 */
import { afterAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createTestSchema, testDatabaseUrl } from '../support/services.js';
import { kill, REPO_ROOT, spawnHubsink, waitFor, type RunnerProcess } from '../support/runner-fixture.js';

const children: RunnerProcess[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const c of children) await kill(c);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const ANY_PORTS = ['--pg-port', '0', '--emulator-port', '0', '--azurite-port', '0', '--http-port', '0'];

/** Processes whose command line mentions `needle` (the data folder names every child of the stack). */
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

function bannerValue(stdout: string, re: RegExp): string | undefined {
  return re.exec(stdout)?.[1];
}

/**
 * The embedded database's URL and password as the banner tells a person to use them: the URL
 * without a password, and the password read from the file the banner names.
 */
async function bannerDatabase(stdout: string): Promise<{ url: string; password: string }> {
  const file = bannerValue(stdout, /PGPASSWORD="\$\(cat '([^']+)'\)" psql/);
  const url = bannerValue(stdout, /psql '([^']+)'/);
  assert.ok(file && url, stdout);
  const password = (await readFile(file, 'utf8')).trim();
  assert.ok(password.length > 0 && !stdout.includes(password), 'the banner must not print the password');
  return { url, password };
}

async function countEvents(db: { url: string; password?: string }, schema = 'public'): Promise<number> {
  // As libpq takes PGPASSWORD for a URL without one (pg lets the URL's empty password win).
  const u = new URL(db.url);
  if (db.password) u.password = encodeURIComponent(db.password);
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    const r = await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${schema}".events`);
    return Number(r.rows[0]?.n ?? 0);
  } finally {
    await c.end();
  }
}

test('starts, ingests, serves metrics, shows status and stops by itself; the data stays for the next run', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-local-'));
  dirs.push(dir);
  const dataDir = dir;
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  // The checks below talk to the stack while it runs; under a loaded machine they took longer than
  // a 15 s run (the stack had stopped: connection refused in CI). 60 s is a margin, not a claim.
  const p = spawnHubsink(['local', '--data-dir', dataDir, '--duration', '60', '--rate', '300', '--rollup-interval', '2', '--status-interval', '1', ...ANY_PORTS], env);
  children.push(p);
  const stdout = await waitFor('the banner', () => Promise.resolve(p.stdoutLines().join('\n')), (s) => /Metrics +curl/.test(s) || p.child.exitCode !== null, 90_000);
  const curl = bannerValue(stdout, /curl '([^']+)'/);
  assert.ok(curl, `${stdout}${p.stderr()} exit=${JSON.stringify(p.child.exitCode)} sig=${String(p.child.signalCode)}`);
  const db = await bannerDatabase(stdout);
  assert.match(stdout, new RegExp(`data kept in ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));

  const n = await waitFor('events in PostgreSQL', () => countEvents(db), (c) => c > 0, 30_000);
  assert.ok(n > 0);
  // Rollups run every 2 s: the metrics endpoint soon answers with points for the busiest storefront.
  const body = await waitFor(
    'metrics with points',
    async () => {
      const res = await fetch(curl);
      return { status: res.status, json: (await res.json()) as { tenantId?: number; series?: { key: string | null; points: { events: number }[] }[] } };
    },
    (r) => r.status === 200 && (r.json.series ?? []).some((s) => s.points.some((pt) => pt.events > 0)),
    30_000,
  );
  assert.equal(body.json.tenantId, 1);
  const bad = await fetch(curl.replace('grain=minute', 'grain=fortnight'));
  assert.equal(bad.status, 400);
  assert.equal((await fetch(curl.replace(/\/api\/.*/, '/nope'))).status, 404);
  // The banner's dashboard address serves the page, and the page's assets are there.
  const dashboard = bannerValue(stdout, /Dashboard +(http:\/\/\S+)/);
  assert.ok(dashboard, stdout);
  const page = await fetch(dashboard);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  const script = /<script defer src="([^"]+)"/.exec(await page.text())?.[1];
  assert.ok(script, 'no script tag');
  const js = await fetch(new URL(script, dashboard));
  assert.equal(js.status, 200);
  assert.match(js.headers.get('cache-control') ?? '', /immutable/);

  const exit = await p.exited;
  // How long the stop takes is no claim of this test; the test timeout is its hang guard.
  assert.equal(exit.code, 0, p.stderr().slice(-3000));
  const err = p.stderr();
  const lines = err.split('\n').filter((l) => l.startsWith('status '));
  assert.ok(lines.length >= 5, err.slice(-2000));
  const last = lines.at(-1) ?? '';
  assert.ok(Number(/inserted=(\d+)/.exec(last)?.[1]) > 0, last);
  assert.match(last, /rollup_runs=[1-9]/);
  assert.match(err, /runner stopped[\s\S]*hubsink local stopped/);
  // The stop drains the emulator's hubs: every event sent was received and accounted for, and every
  // dead-lettered one parked (the hubs are in memory: what is left in them at the stop is gone).
  const final = err.split('\n').find((l) => l.startsWith('final ')) ?? '';
  const figure = (name: string): number => Number(new RegExp(`\\b${name}=(\\d+)`).exec(final)?.[1]);
  assert.ok(figure('sent') > 0, final);
  assert.equal(figure('received'), figure('sent'), final);
  assert.equal(figure('inserted') + figure('duplicates') + figure('dl_invalid') + figure('dl_rejected') + figure('dl_transient'), figure('received'), final);
  assert.equal(figure('parked'), figure('dl_invalid') + figure('dl_rejected'), final);
  assert.deepEqual(await processesMentioning(dataDir), []);
  await access(path.join(dataDir, 'pg', 'PG_VERSION'));

  // A second run on the same folder finds the first run's events.
  const again = spawnHubsink(['local', '--data-dir', dataDir, '--duration', '2', '--no-generate', ...ANY_PORTS], env);
  children.push(again);
  const stdout2 = await waitFor('the second banner', () => Promise.resolve(again.stdoutLines().join('\n')), (s) => /psql '/.test(s) || again.child.exitCode !== null, 90_000);
  assert.ok(bannerValue(stdout2, /psql '([^']+)'/), again.stderr());
  assert.ok((await countEvents(await bannerDatabase(stdout2))) >= n);
  assert.match(stdout2, /Generator +off/);
  assert.equal((await again.exited).code, 0, again.stderr().slice(-2000));
  assert.deepEqual(await processesMentioning(dataDir), []);
});

test('Ctrl-C (SIGINT to the foreground process group) stops everything in order, with an external database', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-local-'));
  dirs.push(dir);
  const db = await createTestSchema('loc_');
  try {
    // Detached so the test can signal the group like a terminal does.
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'hubsink.js'), 'local', '--data-dir', dir, '--database-url', testDatabaseUrl(), '--rate', '400', ...ANY_PORTS], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, HUBSINK_SCHEMA: db.schema },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<{ code: number | null }>((resolve) => child.once('exit', (code) => resolve({ code })));
    children.push({ child, stderr: () => err, stdoutLines: () => out.split('\n'), exited: exited.then((e) => ({ ...e, signal: null })) });
    await waitFor('events in the external database', () => db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${db.schema}".events`).then((r) => Number(r.rows[0]?.n)).catch(() => 0), (n) => n > 200 || child.exitCode !== null, 90_000);
    assert.equal(child.exitCode, null, err);
    assert.doesNotMatch(out, /embedded/);
    assert.ok(child.pid);
    process.kill(-child.pid, 'SIGINT');
    const exit = await exited;
    assert.equal(exit.code, 0, err.slice(-3000));
    assert.match(err, /stopping \(SIGTERM\)[\s\S]*runner stopped[\s\S]*hubsink local stopped/);
    assert.deepEqual(await processesMentioning(dir), []);
    // Everything the runner counted is in the database: nothing was cut off half-written.
    const last = err.split('\n').find((l) => l.startsWith('final ')) ?? '';
    const inserted = Number(/inserted=(\d+)/.exec(last)?.[1]);
    const { rows } = await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${db.schema}".events`);
    assert.equal(Number(rows[0]?.n), inserted);
  } finally {
    await db.drop();
  }
});

test('bad arguments are usage errors', async () => {
  for (const args of [
    ['local', '--rate', 'fast'],
    ['local', '--database-url', 'mysql://x'],
    ['local', '--eventhub-connection', 'nope'],
    ['local', '--pg-port', '70000'],
  ]) {
    const p = spawnHubsink(args, { PATH: process.env.PATH });
    children.push(p);
    assert.equal((await p.exited).code, 2, `${args.join(' ')}: ${p.stderr()}`);
  }
});
