/**
 * Comments and docs that cite a test, a test file or the design must cite something that exists:
 * every `test/...` or `*.test.ts` path named anywhere in the repository's sources and docs is a file,
 * every test quoted by its title ('the test "..." in test/x.test.ts') is a test of that file, and
 * nothing cites the design notes kept outside the repository (only docs/design.md).
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SKIP = new Set(['node_modules', 'dist', 'deploy', 'coverage', 'test-results', '.git']);
const TEXT = /\.(ts|js|cjs|mjs|md|sql|json|yml|yaml|html|css)$|^run$/;

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name)) continue;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (TEXT.test(name) && name !== 'package-lock.json') out.push(p);
  }
  return out;
}

const SELF = fileURLToPath(import.meta.url);
const SOURCES = ['src', 'packages', 'sql', 'docs', 'bench', 'web', 'scripts', 'test', '.ci', 'README.md']
  .map((p) => path.join(ROOT, p))
  .filter((p) => existsSync(p))
  .flatMap((p) => (statSync(p).isDirectory() ? files(p) : [p]))
  // This file's own examples are not citations.
  .filter((f) => f !== SELF);

/** Pure: the test paths a text names: test/... (with or without .ts / .test.ts) and bare x.test.ts. */
export function citedTestPaths(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/(?:packages\/[a-z0-9-]+\/)?\btest\/(?:unit|integration|support|setup)\/[A-Za-z0-9_./-]*[A-Za-z0-9_]/g)) out.add(m[0]);
  for (const m of text.matchAll(/(?<![/\w-])[a-z0-9]+(?:-[a-z0-9]+)*\.test\.ts\b/g)) out.add(m[0]);
  return [...out];
}

function exists(cited: string, from: string): boolean {
  if (!cited.includes('/')) return SOURCES.some((f) => path.basename(f) === cited);
  const p = path.join(ROOT, cited);
  if (existsSync(p) || existsSync(`${p}.ts`) || existsSync(`${p}.test.ts`)) return true;
  // A package's own files cite their tests relative to the package.
  const pkg = /^(.*\/packages\/[^/]+)\//.exec(from)?.[1];
  return pkg !== undefined && (existsSync(path.join(pkg, cited)) || existsSync(path.join(pkg, `${cited}.ts`)) || existsSync(path.join(pkg, `${cited}.test.ts`)));
}

test('pure: cited test paths are found in comments, prose and paths', () => {
  assert.deepEqual(citedTestPaths('checked by test/unit/db-sql.test.ts, and (db-migrate.test.ts); not foo.test.tsx'), ['test/unit/db-sql.test.ts', 'db-migrate.test.ts']);
  assert.deepEqual(citedTestPaths('see test/integration/rollups-fixture and packages/eventhubs-emulator/test/unit/x.test.ts.'), [
    'test/integration/rollups-fixture',
    'packages/eventhubs-emulator/test/unit/x.test.ts',
  ]);
});

test('every cited test file exists', () => {
  const missing: string[] = [];
  for (const f of SOURCES) {
    const text = readFileSync(f, 'utf8');
    for (const cited of citedTestPaths(text)) {
      // A path filter in a command line is not a citation (`npx vitest run test/unit/pipeline`).
      if (/vitest (run )?(--project \w+ )?$/.test(text.slice(0, text.indexOf(cited)).split('\n').pop() ?? '')) continue;
      if (!exists(cited, f)) missing.push(`${path.relative(ROOT, f)}: ${cited}`);
    }
  }
  assert.deepEqual(missing, []);
});

test('a test cited by its title is a test of the file named beside it', () => {
  const wrong: string[] = [];
  let checked = 0;
  for (const f of SOURCES) {
    const text = readFileSync(f, 'utf8').replace(/\n\s*(\*|--|\/\/)\s*/g, ' ');
    for (const m of text.matchAll(/the test "([^"]+)" \(?(?:in )?((?:packages\/[a-z0-9-]+\/)?test\/[A-Za-z0-9_./-]+\.test\.ts)/g)) {
      const [, title, file] = m;
      if (!title || !file) continue;
      checked++;
      const target = path.join(ROOT, file);
      const body = existsSync(target) ? readFileSync(target, 'utf8').replace(/\s+/g, ' ') : '';
      if (!body.includes(title)) wrong.push(`${path.relative(ROOT, f)}: "${title}" not in ${file}`);
    }
  }
  assert.deepEqual(wrong, []);
  // sql/003_rollups.sql and src/rollups/definitions.ts cite one by its title.
  assert.ok(checked >= 2, `only ${checked} title citations found: the pattern no longer matches them`);
});

test('nothing cites design notes outside the repository', () => {
  const outside = [['DESIGN', 'md'].join('.'), ['notes', ''].join('/')];
  const found: string[] = [];
  for (const f of SOURCES) {
    const text = readFileSync(f, 'utf8');
    for (const o of outside) if (new RegExp(`(^|[^\\w./-])${o.replace('.', '\\.')}`, 'm').test(text)) found.push(`${path.relative(ROOT, f)}: ${o}`);
  }
  assert.deepEqual(found, []);
});
