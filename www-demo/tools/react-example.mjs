// Builds the demo's React example (www-demo/react/main.jsx) into <site>/react/app.js: esbuild
// bundles React, react-dom and the built @kalam-wasm/react (dist/react); @kalam-wasm/client
// stays external (the page's import map loads /pkg/client/, like the main demo, so its .wasm
// is found). React and react-dom are installed once into .tools/npm/demo-react-<version>
// (npm's cache is enough offline); one copy of each is aliased for every import, so the
// package and the app share one React.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const REACT_VERSION = '19.2.4';

function ensureReact(root) {
  const dir = join(root, '.tools', 'npm', `demo-react-${REACT_VERSION}`);
  if (!existsSync(join(dir, '.installed'))) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'demo-react', private: true }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', `react@${REACT_VERSION}`, `react-dom@${REACT_VERSION}`], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
    writeFileSync(join(dir, '.installed'), `${new Date().toISOString()}\n`);
  }
  return join(dir, 'node_modules');
}

/** Bundles the example into `site`/react/app.js (production React). */
export async function buildReactExample(root, site) {
  if (!existsSync(join(root, 'dist', 'react', 'index.js'))) throw new Error('dist/react is missing: run node scripts/build.mjs react');
  const modules = ensureReact(root);
  const { build } = await import(join(root, 'node_modules', 'esbuild', 'lib', 'main.js'));
  await build({
    entryPoints: [join(root, 'www-demo', 'react', 'main.jsx')],
    outfile: join(site, 'react', 'app.js'),
    bundle: true,
    format: 'esm',
    target: 'es2022',
    jsx: 'automatic',
    minify: true,
    logLevel: 'warning',
    external: ['@kalam-wasm/client'],
    alias: { react: join(modules, 'react'), 'react-dom': join(modules, 'react-dom'), '@kalam-wasm/react': join(root, 'dist', 'react') },
    define: { 'process.env.NODE_ENV': '"production"' },
  });
}
