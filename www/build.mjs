// Builds the dashboard into dist/: hashed JS and CSS under dist/assets/,
// index.html pointing at them, the favicon, the API docs (docs.mjs). Fails
// past the size budget.
import * as esbuild from 'esbuild';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { buildDocs } from './docs.mjs';

const root = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(root, 'dist');
const BUDGET = 60 * 1024; // gzipped JS, bytes

await fs.rm(dist, { recursive: true, force: true });

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: ['src/main.tsx'],
  bundle: true,
  minify: true,
  sourcemap: false,
  target: 'es2020',
  format: 'esm',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: 'dist/assets',
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs);
const js = outputs.filter((f) => f.endsWith('.js'));
const css = outputs.filter((f) => f.endsWith('.css'));
const href = (f) => '/' + path.relative('dist', f).split(path.sep).join('/');

// The template has one marker where the hashed files go; no inline script or
// style, so the CSP needs no 'unsafe-inline'.
const tags = [
  ...css.map((f) => `<link rel="stylesheet" href="${href(f)}">`),
  ...js.map((f) => `<script type="module" src="${href(f)}"></script>`),
].join('\n');
const template = await fs.readFile(path.join(root, 'index.html'), 'utf8');
if (!template.includes('<!--ASSETS-->')) throw new Error('index.html lacks <!--ASSETS-->');
await fs.writeFile(path.join(dist, 'index.html'), template.replace('<!--ASSETS-->', tags));
await fs.copyFile(path.join(root, 'public/favicon.svg'), path.join(dist, 'favicon.svg'));

// the API docs: a separate entry, outside the app's bundle and its budget
await buildDocs(root, dist);

let gzJs = 0;
for (const f of outputs) {
  const bytes = await fs.readFile(path.join(root, f));
  const gz = gzipSync(bytes, { level: 9 }).length;
  if (f.endsWith('.js')) gzJs += gz;
  console.log(`${f}  ${(bytes.length / 1024).toFixed(1)} KB, ${(gz / 1024).toFixed(1)} KB gzipped`);
}
console.log(`total JS gzipped: ${(gzJs / 1024).toFixed(1)} KB (budget ${BUDGET / 1024} KB)`);
if (gzJs > BUDGET) {
  console.error('JS bundle is over its budget');
  process.exit(1);
}
