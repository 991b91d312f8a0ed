// `npm run build:dashboard`: bundles web/dashboard into dist/dashboard/ (index.html, assets with
// content-hashed names, manifest.json) and prints the sizes. No CDN: uPlot is bundled in.
import { build } from 'esbuild';
import process from 'node:process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'dashboard');
await rm(out, { recursive: true, force: true });
await mkdir(path.join(out, 'assets'), { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: { app: 'web/dashboard/main.ts' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome109', 'firefox115', 'safari16'],
  outdir: path.join(out, 'assets'),
  entryNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'eof',
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((f) => path.basename(f));
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));
if (!js || !css) throw new Error(`expected one .js and one .css output, got ${outputs.join(', ')}`);
await writeFile(path.join(out, 'manifest.json'), `${JSON.stringify({ js, css }, null, 2)}\n`);
await writeFile(path.join(out, 'index.html'), await readFile(path.join(root, 'web', 'dashboard', 'index.html'), 'utf8'));

for (const f of [js, css]) {
  const bytes = await readFile(path.join(out, 'assets', f));
  process.stdout.write(`dashboard ${f}: ${(bytes.length / 1024).toFixed(1)} KiB, ${(gzipSync(bytes).length / 1024).toFixed(1)} KiB gzipped\n`);
}
