// A fresh Vite app per React version with the PACKED @kalam-wasm/client and @kalam-wasm/react
// tarballs plus react/react-dom of that version, installed as a user's `npm install` would.
// The folder is keyed by the tarballs' bytes and the versions (npm pack is reproducible), so
// a warm run with unchanged packages installs nothing; the app itself is rebuilt every run.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bin, root } from '../../packages/toolbox.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const output = join(root, 'tests', 'output');
export const REACT_VERSIONS = { 18: '18.3.1', 19: '19.2.4' };

function ensureBuilt() {
  if (!existsSync(join(root, 'dist', 'client', 'package.json'))) throw new Error('dist/client is missing: node scripts/build.mjs client (or --dev)');
  // TypeScript only: seconds to build, so always fresh from bindings/react.
  execFileSync('node', [join(root, 'scripts', 'build.mjs'), 'react'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Packs both packages once per run; returns the tarball paths. */
export function packTarballs() {
  ensureBuilt();
  const packDir = join(output, 'react-packs');
  rmSync(packDir, { recursive: true, force: true });
  mkdirSync(packDir, { recursive: true });
  if (!existsSync(join(root, 'dist', 'orm', 'package.json'))) execFileSync('node', [join(root, 'scripts', 'build.mjs'), 'orm'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  return ['client', 'react', 'orm'].map((name) => {
    const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', packDir, join(root, 'dist', name)], { encoding: 'utf8' });
    return join(packDir, out.trim().split('\n').pop());
  });
}

/**
 * The README's ```sql setup statements and ```jsx test examples (each with its `// → text`
 * and `// click: label` steps, in order), renamed by `rename`.
 */
export function readmeExamples(rename) {
  const readme = readFileSync(join(root, 'pkg-templates', 'react', 'README.md'), 'utf8');
  const blocks = (info) => [...readme.matchAll(new RegExp(`^\`\`\`${info}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map((m) => rename(m[1]));
  const setup = blocks('sql setup').join('\n').split(/;\s*\n/).map((x) => x.trim()).filter(Boolean);
  const examples = blocks('jsx test').map((code) => ({
    code,
    steps: [...code.matchAll(/^\/\/ (→|click:) (.+)$/gm)].map((m) => (m[1] === '→' ? { shows: m[2] } : { click: m[2] })),
  }));
  return { setup, examples };
}

/**
 * Installs (when needed) and builds the app for React `major` (plus `examples`: README
 * examples, each built as its own page readme-N.html); returns `{ dir, dist }`.
 */
export function reactApp(major, tarballs, examples = []) {
  const version = REACT_VERSIONS[major];
  // drizzle-orm for the Drizzle mode (the orm's peer), the version the repository tests with.
  const drizzle = JSON.parse(readFileSync(join(root, 'node_modules', 'drizzle-orm', 'package.json'), 'utf8')).version;
  const deps = [`react@${version}`, `react-dom@${version}`, `drizzle-orm@${drizzle}`];
  const hash = createHash('sha256');
  for (const t of tarballs) hash.update(readFileSync(t));
  hash.update(deps.join(' '));
  const key = hash.digest('hex').slice(0, 16);
  const prefix = `react${major}-app-`;
  const dir = join(output, `${prefix}${key}`);
  if (!existsSync(join(dir, '.installed'))) {
    for (const old of readdirSync(output).filter((d) => d.startsWith(prefix))) rmSync(join(output, old), { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `react${major}-app`, private: true, type: 'module' }));
    const local = tarballs.map((t) => {
      const copy = join(dir, t.split('/').pop());
      writeFileSync(copy, readFileSync(t));
      return `./${copy.split('/').pop()}`;
    });
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...local, ...deps], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
    writeFileSync(join(dir, '.installed'), `${new Date().toISOString()}\n`);
  }
  const installed = JSON.parse(readFileSync(join(dir, 'node_modules', 'react', 'package.json'), 'utf8')).version;
  if (installed !== version) throw new Error(`react ${installed} installed, wanted ${version} (a peer dependency pulled another?)`);
  cpSync(join(here, 'index.html'), join(dir, 'index.html'));
  cpSync(join(here, 'main.js'), join(dir, 'main.js'));
  const input = { main: join(dir, 'index.html') };
  for (const old of readdirSync(dir).filter((f) => f.startsWith('readme-'))) rmSync(join(dir, old));
  examples.forEach((example, i) => {
    writeFileSync(join(dir, `readme-${i}.jsx`), example.code);
    writeFileSync(join(dir, `readme-${i}.html`), `<!doctype html><html><head><meta charset="utf-8"></head><body><div id="root"></div><script type="module" src="./readme-${i}.jsx"></script></body></html>\n`);
    input[`readme-${i}`] = join(dir, `readme-${i}.html`);
  });
  writeFileSync(join(dir, 'vite.config.js'), `export default ${JSON.stringify({ build: { rollupOptions: { input } } })};\n`);
  rmSync(join(dir, 'dist'), { recursive: true, force: true });
  // React's development build: StrictMode double-invokes effects (mount, unmount, mount) only there.
  execFileSync(bin('vite', 'vite'), ['build', '--logLevel', 'warn', '--minify', 'false'], {
    cwd: dir, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, NODE_ENV: 'development' },
  });
  return { dir, dist: join(dir, 'dist') };
}
