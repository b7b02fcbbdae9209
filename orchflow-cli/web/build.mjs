// Bundles src/ into ../assets (app.js, app.css, index.html) with esbuild; the licences of the
// bundled third-party code go in a comment at the top of app.js.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(here, '../assets');
const licences = [
  ['@dagrejs/dagre', 'node_modules/@dagrejs/dagre'],
  ['@dagrejs/graphlib (bundled inside dagre)', 'node_modules/@dagrejs/graphlib'],
].map(([name, dir]) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(here, dir, 'package.json'), 'utf8'));
  const text = fs.readFileSync(path.join(here, dir, 'LICENSE'), 'utf8').trim();
  return `${name} ${pkg.version} (${pkg.license})\n\n${text}`;
});
const banner = `/*! orchflow viewer. Third-party code bundled in this file:\n\n${licences.join('\n\n----\n\n').replace(/\*\//g, '* /')}\n*/`;

fs.mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: [path.join(here, 'src/main.js')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  legalComments: 'none',
  banner: { js: banner },
  outfile: path.join(out, 'app.js'),
  logLevel: 'warning',
});
await esbuild.build({
  entryPoints: [path.join(here, 'src/app.css')],
  bundle: true,
  minify: true,
  outfile: path.join(out, 'app.css'),
  logLevel: 'warning',
});
fs.copyFileSync(path.join(here, 'src/index.html'), path.join(out, 'index.html'));
for (const f of ['index.html', 'app.js', 'app.css']) {
  console.log(`assets/${f}  ${fs.statSync(path.join(out, f)).size} bytes`);
}
