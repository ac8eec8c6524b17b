// npm-installed tools for the package tests (bundlers, Node runtimes, Bun, Deno), each in its
// own folder under the git-ignored .tools/npm/, keyed by the exact versions: installed once,
// reused by every later run (a warm run installs nothing). Apps under test live in a fresh
// folder below the tool folder, so Node's module lookup finds the tool from the app while
// the app's own node_modules holds only the packed tarballs under test.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Exact versions of everything the matrix installs (bump here; the cache key follows). */
export const TOOLS = {
  vite: { vite: '8.4.0' },
  webpack: { webpack: '5.113.0', 'webpack-cli': '7.3.1' },
  rollup: { rollup: '4.68.8', '@rollup/plugin-node-resolve': '16.0.3', '@web/rollup-plugin-import-meta-assets': '2.3.3' },
  esbuild: { esbuild: '0.28.2' },
  parcel: { parcel: '2.16.4' },
  node18: { node: '18.20.8', ws: '8.23.0' },
  node20: { node: '20.20.2', ws: '8.23.0' },
  node22: { node: '22.23.3' },
  bun: { bun: '1.4.5' },
  deno: { deno: '2.9.6' },
  typescript: { typescript: '5.9.3', '@types/node': '22.20.7' },
};

/** Installs tool set `name` (idempotent) and returns its folder. */
export function toolDir(name) {
  const deps = TOOLS[name];
  const key = createHash('sha256').update(JSON.stringify(deps)).digest('hex').slice(0, 12);
  const dir = join(root, '.tools', 'npm', `${name}-${key}`);
  const done = join(dir, '.installed');
  if (existsSync(done)) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `kalam-tools-${name}`, private: true, dependencies: deps }, null, 2));
  const started = Date.now();
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
  writeFileSync(done, `${new Date().toISOString()}\n`);
  console.log(`installed ${name} (${Object.entries(deps).map(([k, v]) => `${k}@${v}`).join(', ')}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return dir;
}

/**
 * A fresh app folder `<tool folder>/apps/<name>` holding `files` and the packed tarballs
 * installed from their .tgz files (as from a registry: never a link). Returns its path.
 */
export function freshApp(tool, name, files, tarballs, pkg = {}) {
  const dir = join(toolDir(tool), 'apps', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `app-${name}`, private: true, type: 'module', ...pkg }, null, 2));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error', ...tarballs], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
  return dir;
}

/** The `bin` of an installed tool package (e.g. bin('vite', 'vite')). */
export function bin(tool, command) {
  return join(toolDir(tool), 'node_modules', '.bin', command);
}
