// A fresh app folder with the PACKED @kalam-wasm/client and @kalam-wasm/orm tarballs plus
// drizzle-orm and ws from the registry, installed as a user's `npm install` would. The folder
// is keyed by a hash of the tarballs and versions (npm pack is byte-reproducible), so a warm
// run with unchanged packages skips the install.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from '../support.mjs';

const output = join(root, 'tests', 'output');
const version = (name) => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;

function ensureBuilt() {
  const built = (name) => existsSync(join(root, 'dist', name, 'package.json'));
  if (!built('client')) throw new Error('dist/client is missing: node scripts/build.mjs client (or --dev)');
  // The ORM is TypeScript only: building it takes seconds.
  if (!built('orm')) execFileSync('node', [join(root, 'scripts', 'build.mjs'), 'orm'], { cwd: root, stdio: 'inherit' });
}

/** Packs, installs when needed, and returns `{ dir, url(path) }` for the app folder. */
export function ormApp() {
  ensureBuilt();
  const packDir = join(output, 'orm-packs');
  rmSync(packDir, { recursive: true, force: true });
  mkdirSync(packDir, { recursive: true });
  const tarballs = ['client', 'orm'].map((name) => {
    const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', packDir, join(root, 'dist', name)], { encoding: 'utf8' });
    return join(packDir, out.trim().split('\n').pop());
  });
  const deps = [`drizzle-orm@${version('drizzle-orm')}`, `ws@${version('ws')}`];
  const hash = createHash('sha256');
  for (const t of tarballs) hash.update(readFileSync(t));
  hash.update(deps.join(' '));
  const key = hash.digest('hex').slice(0, 16);
  const dir = join(output, `orm-app-${key}`);
  if (!existsSync(join(dir, '.installed'))) {
    for (const old of readdirSync(output).filter((d) => d.startsWith('orm-app-'))) rmSync(join(output, old), { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'orm-app', private: true, type: 'module' }));
    // Copies of the tarballs inside the folder: the lockfile then names files that stay.
    const local = tarballs.map((t) => {
      const copy = join(dir, t.split('/').pop());
      writeFileSync(copy, readFileSync(t));
      return `./${copy.split('/').pop()}`;
    });
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...local, ...deps], { cwd: dir, stdio: 'inherit' });
    writeFileSync(join(dir, '.installed'), `${new Date().toISOString()}\n`);
  }
  return { dir, url: (path) => pathToFileURL(join(dir, path)).href };
}
