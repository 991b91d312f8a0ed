/**
 * `hubsink import --workers 3`: batches decoded, validated and written by worker threads, answers
 * in any order, progress recorded in file order. Killed mid-file (SIGKILL, a real child process):
 * every line up to the recorded position is in `events` or parked, by the generator's labels, so
 * the recorded progress never passed an unwritten batch; run again, it resumes there and ends with
 * exactly the distinct valid events and each invalid line parked once.
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
  db = await createTestSchema('impp_');
  await migrate(db.pool, db.schema);
  dir = await mkdtemp(path.join(tmpdir(), 'hubsink-import-par-'));
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

async function importRun(args: string[]): Promise<{ code: number | null; json: ImportJson & { workers?: number }; stderr: string }> {
  const p = spawnHubsink(['import', '--json', ...args], importEnv(db.schema));
  children.push(p);
  const { code } = await p.exited;
  const out = p.stdoutLines().at(-1) ?? '{}';
  return { code, json: JSON.parse(out) as ImportJson & { workers?: number }, stderr: p.stderr() };
}

test('three worker threads, killed mid-file and resumed: progress never passes an unwritten batch, exactly the distinct valid events', async () => {
  const t0 = Date.now();
  const gen = { seed: 'import-par-60k', duplicates: 0.01, malformed: 0.01, clock: () => t0 };
  const data = makeLines({ count: 60_000, ...gen });
  assert.ok(data.invalidLines.length > 300 && data.repeats > 300, `the file has invalid lines (${data.invalidLines.length}) and repeats (${data.repeats})`);
  const file = path.join(dir, 'parallel.ndjson');
  await writeNdjson(file, data.lines);

  const p = spawnHubsink(['import', '--workers', '3', '--batch-size', '2000', file], importEnv(db.schema));
  children.push(p);
  try {
    // A bound that only stops a stuck run (under load 20 a Citus cluster took minutes for 100,000 lines).
    await waitFor('a third of the file', () => unitsDone(file), (n) => n >= 20_000 || p.child.exitCode !== null, 240_000);
    assert.equal(p.child.exitCode, null, `the import ended before it could be killed: ${p.stderr().slice(-500)}`);
  } finally {
    p.child.kill('SIGKILL');
    await p.exited;
  }
  const recorded = await unitsDone(file);
  assert.ok(recorded >= 20_000 && recorded < 60_000 && recorded % 2000 === 0, `killed at ${recorded}`);

  // The same generator, stopped at the recorded line, is the truth of the part recorded as done.
  const prefix = makeLines({ count: recorded, ...gen });
  assert.ok(prefix.lines.every((l, i) => l.equals(data.lines[i] ?? Buffer.alloc(0))), 'the generator repeats itself');
  const stored = new Set(await eventKeys(db.pool, db.schema));
  const missing = [...prefix.expected].filter((k) => !stored.has(k));
  assert.deepEqual(missing, [], `events of lines up to ${recorded} recorded as done but not written`);
  const parked = new Set(await deadLetterLines(db.pool, db.schema, file));
  assert.deepEqual(prefix.invalidLines.filter((l) => !parked.has(l)), [], `invalid lines up to ${recorded} not parked`);

  const second = await importRun(['--workers', '3', '--batch-size', '2000', file]);
  assert.equal(second.code, 1, second.stderr);
  assert.equal(second.json.workers, 3);
  assert.equal(second.json.files[0]?.status, 'imported');
  assert.equal(second.json.files[0]?.resumedAfter, recorded);
  assert.equal(second.json.lines, 60_000 - recorded);
  const keys = await eventKeys(db.pool, db.schema);
  assert.equal(keys.length, data.expected.size, diff(keys, data.expected));
  assert.deepEqual(new Set(keys), data.expected);
  assert.deepEqual(await deadLetterLines(db.pool, db.schema, file), data.invalidLines);

  const third = await importRun(['--workers', '2', file]);
  assert.equal(third.json.files[0]?.status, 'already imported');
  assert.equal(third.json.inserted, 0);
}, 600_000);

test('a dry run with worker threads counts what one thread counts', async () => {
  const data = makeLines({ count: 20_000, seed: 'import-par-dry', duplicates: 0.01, malformed: 0.02 });
  const file = path.join(dir, 'dry.ndjson');
  await writeNdjson(file, data.lines);
  const one = await importRun(['--dry-run', '--workers', '1', '--batch-size', '1000', file]);
  const four = await importRun(['--dry-run', '--workers', '4', '--batch-size', '1000', file]);
  assert.equal(one.json.workers, 1);
  assert.equal(four.json.workers, 4);
  for (const r of [one, four]) {
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.json.lines, 20_000);
    assert.equal(r.json.invalid, data.invalidLines.length);
  }
  assert.equal(four.json.duplicates, one.json.duplicates);
});
