// `npm run build:deploy`: the deployable Function App in deploy/, nothing else: host.json, a
// package.json without dependencies, one esbuild bundle of the src/functions modules with every
// library they use (dist/functions.js) and the dashboard assets (dist/dashboard/, built by
// build:dashboard). Dev tools (emulator, embedded PostgreSQL, Azurite, the local stack, the
// generator, the CLI) are not reachable from src/functions, so they are not in it; the test
// test/integration/deployable.test.ts checks that from the bundle's metafile.
import { build } from 'esbuild';
import { cp, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'deploy');
await rm(out, { recursive: true, force: true });
await mkdir(path.join(out, 'dist'), { recursive: true });

const functions = (await readdir(path.join(root, 'src', 'functions'))).filter((f) => f.endsWith('.ts') && f !== 'context.ts').sort();
const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));

const result = await build({
  absWorkingDir: root,
  stdin: {
    contents: functions.map((f) => `import './src/functions/${f.replace(/\.ts$/, '.js')}';`).join('\n'),
    resolveDir: root,
    sourcefile: 'functions-entry.ts',
    loader: 'ts',
  },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  outfile: path.join(out, 'dist', 'functions.js'),
  // The host provides @azure/functions-core; pg-native is pg's optional native driver, not used.
  external: ['@azure/functions-core', 'pg-native'],
  // Bundled CommonJS libraries call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __hubsinkCreateRequire } from 'node:module'; const require = __hubsinkCreateRequire(import.meta.url);" },
  minify: true,
  keepNames: true,
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
});
await writeFile(path.join(root, 'dist', 'deploy-meta.json'), JSON.stringify(result.metafile));

await cp(path.join(root, 'host.json'), path.join(out, 'host.json'));
const dashboard = path.join(root, 'dist', 'dashboard');
if (await stat(dashboard).then(() => true, () => false)) await cp(dashboard, path.join(out, 'dist', 'dashboard'), { recursive: true });
await writeFile(
  path.join(out, 'package.json'),
  `${JSON.stringify({ name: pkg.name, version: pkg.version, private: true, description: pkg.description, type: 'module', main: 'dist/functions.js', engines: pkg.engines, license: pkg.license }, null, 2)}\n`,
);

async function size(p) {
  const st = await stat(p);
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const e of await readdir(p)) n += await size(path.join(p, e));
  return n;
}
const mb = (n) => `${(n / 1024 / 1024).toFixed(2)} MB`;
process.stdout.write(`deploy/: ${mb(await size(out))} (dist/functions.js ${mb(await size(path.join(out, 'dist', 'functions.js')))}, ${functions.length} function modules)\n`);
