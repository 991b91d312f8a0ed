/**
 * `hubsink import` of 200,000 NDJSON lines with 1% invalid lines and 1% exact repeats, killed half
 * way (SIGKILL, a real child process) and run again: `events` holds exactly the distinct valid
 * events, every invalid line is parked once with its file and line; a third run inserts nothing.
 * The same for a gzip file, which resumes by reading again from the start.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrate } from '../../src/db/migrate.js';
import { diff, eventKeys, kill, spawnHubsink, waitFor, type RunnerProcess } from '../support/runner-fixture.js';
import { deadLetterLines, importEnv, makeLines, writeNdjson, type ImportJson } from '../support/import-fixture.js';
import { createTestSchema, type TestSchema } from '../support/services.js';

let db: TestSchema;
let dir: string;
const children: RunnerProcess[] = [];

beforeAll(async () => {
  db = await createTestSchema('imp_');
  await migrate(db.pool, db.schema);
  dir = await mkdtemp(path.join(tmpdir(), 'hubsink-import-'));
});
afterAll(async () => {
  for (const c of children) await kill(c);
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

async function unitsDone(file: string): Promise<number> {
  const { rows } = await db.pool.query<{ units: string }>(`SELECT units::text FROM "${db.schema}".import_files WHERE source = $1`, [file]);
  return Number(rows[0]?.units ?? 0);
}

async function importRun(args: string[]): Promise<{ code: number | null; json: ImportJson; stderr: string }> {
  const p = spawnHubsink(['import', '--json', ...args], importEnv(db.schema));
  children.push(p);
  const { code } = await p.exited;
  const out = p.stdoutLines().at(-1) ?? '{}';
  return { code, json: JSON.parse(out) as ImportJson, stderr: p.stderr() };
}

async function killedHalfWay(file: string, args: string[], atUnits: number): Promise<void> {
  const p = spawnHubsink(['import', ...args, file], importEnv(db.schema));
  children.push(p);
  try {
    // A bound that only stops a stuck run: on a loaded Citus cluster half of 200,000 lines took over 60 s.
    await waitFor('half the file', () => unitsDone(file), (n) => n >= atUnits || p.child.exitCode !== null, 180_000);
    assert.equal(p.child.exitCode, null, `the import ended before it could be killed: ${p.stderr().slice(-500)}`);
  } finally {
    // Killed whatever happened: an import left running would write into the next test's counts.
    p.child.kill('SIGKILL');
    await p.exited;
  }
}

test('200,000 lines, 1% invalid, 1% repeats, killed half way and resumed: exactly the distinct valid events', async () => {
  const data = makeLines({ count: 200_000, seed: 'import-200k', duplicates: 0.01, malformed: 0.01 });
  assert.ok(data.invalidLines.length > 1000 && data.repeats > 1000, `the file has invalid lines (${data.invalidLines.length}) and repeats (${data.repeats})`);
  const file = path.join(dir, 'history.ndjson');
  await writeNdjson(file, data.lines);

  await killedHalfWay(file, ['--batch-size', '5000'], 100_000);
  const half = await unitsDone(file);
  assert.ok(half >= 100_000 && half < 200_000, `killed at ${half}`);

  const second = await importRun([file]);
  // Parked lines make the exit status 1: the work is not all in events.
  assert.equal(second.code, 1, second.stderr);
  assert.equal(second.json.files[0]?.status, 'imported');
  assert.equal(second.json.files[0]?.resumedAfter, half);
  const keys = await eventKeys(db.pool, db.schema);
  assert.equal(keys.length, data.expected.size, diff(keys, data.expected));
  assert.deepEqual(new Set(keys), data.expected);
  assert.deepEqual(await deadLetterLines(db.pool, db.schema, file), data.invalidLines);

  const third = await importRun([file]);
  assert.equal(third.json.files[0]?.status, 'already imported');
  assert.equal(third.json.inserted, 0);
  assert.equal((await eventKeys(db.pool, db.schema)).length, data.expected.size);
}, 600_000);

test('a gzip file killed half way is read again from the start and still exact; CRLF line ends are fine', async () => {
  const data = makeLines({ count: 30_000, seed: 'import-gz', duplicates: 0.01, malformed: 0.01, tenants: 7 });
  const file = path.join(dir, 'history-gz.jsonl.gz');
  await writeNdjson(file, data.lines, { gzip: true, crlf: true });
  const before = (await eventKeys(db.pool, db.schema)).length;
  await killedHalfWay(file, ['--batch-size', '1000'], 10_000);
  const run = await importRun([file]);
  assert.equal(run.code, 1, run.stderr);
  assert.ok((run.json.files[0]?.resumedAfter ?? 0) >= 10_000);
  assert.deepEqual(await deadLetterLines(db.pool, db.schema, file), data.invalidLines);
  const { rows } = await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${db.schema}".events WHERE source_partition = $1`, [file]);
  assert.equal(Number(rows[0]?.n), data.expected.size - 0, `events from ${file}`);
  assert.equal((await eventKeys(db.pool, db.schema)).length, before + data.expected.size);
});
