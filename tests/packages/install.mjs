// Packs each built package with `npm pack` and installs the tarballs into one empty
// project folder, exactly as a user's `npm install` would (no workspace links).
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const appDir = join(root, 'tests', 'output', 'package-app');

export function packAndInstall() {
  const packDir = join(root, 'tests', 'output', 'packs');
  rmSync(packDir, { recursive: true, force: true });
  rmSync(appDir, { recursive: true, force: true });
  mkdirSync(packDir, { recursive: true });
  mkdirSync(appDir, { recursive: true });
  const tarballs = ['client', 'consumer'].map((name) => {
    const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', packDir, join(root, 'dist', name)], { encoding: 'utf8' });
    return join(packDir, out.trim().split('\n').pop());
  });
  writeFileSync(join(appDir, 'package.json'), JSON.stringify({ name: 'package-app', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], { cwd: appDir, stdio: 'inherit' });
  return { tarballs, installed: readdirSync(join(appDir, 'node_modules', '@kalam-wasm')) };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(packAndInstall());
}
