#!/usr/bin/env node
// Builds the npm packages described in wasm-pack.toml into dist/<bundle>/:
// cargo (wasm32, bundle features) -> wasm-bindgen (ESM glue + typings) -> wasm-opt ->
// tsc (bindings/shared + bindings/<bundle>/src) -> package.json/README from pkg-templates ->
// tsc --noEmit of bindings/<bundle>/tsconfig.json (the same sources in place, as editors see them).
// Usage: node scripts/build.mjs [bundle ...] [--dev]   (--dev: debug profile, no wasm-opt)
// Expects the tools from scripts/setup.sh (run by scripts/build.sh and scripts/test.sh).
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'smol-toml';
import { reportSizes, wasmFileName } from './size-report.mjs';
import { applyNameMap, parseNameMap } from './wasm-names.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const matrix = parse(readFileSync(join(root, 'wasm-pack.toml'), 'utf8'));
const args = process.argv.slice(2);
const dev = args.includes('--dev');
const wanted = args.filter((a) => !a.startsWith('--'));
const bundles = Object.entries(matrix.bundles).filter(([name]) => wanted.length === 0 || wanted.includes(name));
for (const name of wanted) {
  if (!matrix.bundles[name]) throw new Error(`unknown bundle '${name}' (wasm-pack.toml has: ${Object.keys(matrix.bundles).join(', ')})`);
}

const cargoToml = readFileSync(join(root, 'Cargo.toml'), 'utf8');
const version = /^\[package\][^[]*?^version\s*=\s*"([^"]+)"/ms.exec(cargoToml)[1];
const crateFile = matrix.build.crate.replaceAll('-', '_');
const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, 'target');
const profile = dev ? 'debug' : matrix.build.profile;
const env = { ...process.env, PATH: `${join(root, '.tools', 'bin')}:${join(root, 'node_modules', '.bin')}:${process.env.PATH}` };

function run(cmd, cmdArgs, opts = {}) {
  console.log(`  $ ${cmd} ${cmdArgs.join(' ')}`);
  execFileSync(cmd, cmdArgs, { stdio: 'inherit', env, cwd: root, ...opts });
}

const distRoot = join(root, matrix.build.dist_dir);

/**
 * `tsc --noEmit` of bindings/<bundle>/tsconfig.json: the sources typechecked where they are
 * (the view editors get), against the typings just written to dist/<bundle>. Emits nothing.
 */
function typecheckInPlace(bundle) {
  run('tsc', ['--noEmit', '-p', join(root, bundle.bindings)]);
}

/**
 * A TypeScript-only package (`wasm = false`, the ORM): tsc of bindings/<bundle>/src against
 * the built client's typings (a peer dependency, so dist/client must exist), then minify.
 */
function buildTypeScriptPackage(name, bundle) {
  console.log(`\n== ${bundle.package} (TypeScript only, ${dev ? 'dev' : 'release'})`);
  const client = join(distRoot, matrix.bundles.client.out_dir);
  if (!existsSync(join(client, 'index.d.ts'))) throw new Error(`${bundle.package} compiles against the client's typings: build the client first (node scripts/build.mjs client)`);
  const out = join(distRoot, bundle.out_dir);
  const stage = join(distRoot, '.stage', name);
  rmSync(out, { recursive: true, force: true });
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  const src = join(root, bundle.bindings, 'src');
  for (const file of readdirSync(src).filter((f) => f.endsWith('.ts'))) cpSync(join(src, file), join(stage, file));
  writeFileSync(join(stage, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'ES2022', moduleResolution: 'bundler', lib: ['ES2022', 'DOM'],
      types: ['node'], typeRoots: [join(root, 'node_modules', '@types')],
      paths: { [matrix.bundles.client.package]: [join(client, 'index.d.ts')] },
      strict: true, declaration: true, skipLibCheck: true, outDir: out, rootDir: stage,
    },
    include: ['*.ts'],
  }, null, 2));
  run('tsc', ['-p', join(stage, 'tsconfig.json'), '--emitDeclarationOnly']);
  run('tsc', ['-p', join(stage, 'tsconfig.json'), '--declaration', 'false', '--removeComments']);
  if (!dev) {
    const jsFiles = readdirSync(out).filter((f) => f.endsWith('.js')).map((f) => join(out, f));
    run('esbuild', [...jsFiles, '--minify', '--format=esm', '--target=es2022', `--outdir=${out}`, '--outbase=' + out, '--allow-overwrite', '--log-level=warning']);
  }
  const template = join(root, bundle.template);
  writeFileSync(join(out, 'package.json'), readFileSync(join(template, 'package.json'), 'utf8')
    .replaceAll('{{package}}', bundle.package).replaceAll('{{version}}', version).replaceAll('{{description}}', bundle.description)
    .replaceAll('{{client_package}}', matrix.bundles.client.package));
  cpSync(join(template, 'README.md'), join(out, 'README.md'));
  if (!existsSync(join(out, 'index.js'))) throw new Error(`build of ${bundle.package} is incomplete in ${out}`);
  typecheckInPlace(bundle);
  console.log(`  -> ${out}`);
}

for (const [name, bundle] of bundles) {
  if (bundle.wasm === false) {
    buildTypeScriptPackage(name, bundle);
    continue;
  }
  console.log(`\n== ${bundle.package} (features: ${bundle.features.join(', ')}, ${dev ? 'dev' : profile})`);
  const cargoArgs = ['build', '--lib', '--target', 'wasm32-unknown-unknown', '-p', matrix.build.crate,
    '--no-default-features', '--features', bundle.features.join(',')];
  if (!dev) cargoArgs.push('--profile', profile);
  run('cargo', cargoArgs);
  const wasmIn = join(targetDir, 'wasm32-unknown-unknown', profile, `${crateFile}.wasm`);

  const out = join(distRoot, bundle.out_dir);
  const stage = join(distRoot, '.stage', name);
  rmSync(out, { recursive: true, force: true });
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(join(stage, 'wasm'), { recursive: true });

  run('wasm-bindgen', ['--target', matrix.build.wasm_bindgen_target, '--out-dir', join(stage, 'wasm'),
    '--out-name', 'kalam_wasm', wasmIn]);
  const bgWasm = join(stage, 'wasm', 'kalam_wasm_bg.wasm');
  if (!dev) {
    // With `--minify-imports-and-exports-and-modules` wasm-opt prints the name mapping on
    // stdout; the glue and its typings get the same short names (scripts/wasm-names.mjs).
    const optArgs = [...matrix.build.wasm_opt, bgWasm, '-o', bgWasm];
    console.log(`  $ wasm-opt ${optArgs.join(' ')}`);
    const map = parseNameMap(execFileSync('wasm-opt', optArgs, { stdio: ['ignore', 'pipe', 'inherit'], env, cwd: root, encoding: 'utf8' }));
    if (map) {
      const w = join(stage, 'wasm');
      applyNameMap(map, bgWasm, join(w, 'kalam_wasm.js'), [join(w, 'kalam_wasm.d.ts'), join(w, 'kalam_wasm_bg.wasm.d.ts')]);
      console.log(`  short wasm import/export names (${map.imports.length} imports, ${map.exports.length} exports) applied to the glue`);
    }
  }

  for (const dir of [join(root, 'bindings', 'shared'), join(root, bundle.bindings, 'src')]) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) cpSync(join(dir, file), join(stage, file));
  }
  writeFileSync(join(stage, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'ES2022', moduleResolution: 'bundler', lib: ['ES2022', 'DOM', 'ESNext'],
      types: ['node'], typeRoots: [join(root, 'node_modules', '@types')],
      strict: true, declaration: true, skipLibCheck: true, outDir: out, rootDir: stage,
    },
    include: ['*.ts'],
  }, null, 2));
  // Typings keep their doc comments; the shipped JavaScript does not (bytes for every user).
  run('tsc', ['-p', join(stage, 'tsconfig.json'), '--emitDeclarationOnly']);
  run('tsc', ['-p', join(stage, 'tsconfig.json'), '--declaration', 'false', '--removeComments']);

  cpSync(join(stage, 'wasm'), join(out, 'wasm'), { recursive: true });
  rmSync(join(out, 'wasm', '.gitignore'), { force: true });
  // Each package ships its .wasm under its own name (kalam_<bundle>_bg.wasm): tools that copy
  // assets without hashing them (esbuild, Rollup without a plugin, a CDN folder) would
  // otherwise put the client's and the consumer's module at the same URL.
  const wasmFile = wasmFileName(name);
  renameSync(join(out, 'wasm', 'kalam_wasm_bg.wasm'), join(out, 'wasm', wasmFile));
  renameSync(join(out, 'wasm', 'kalam_wasm_bg.wasm.d.ts'), join(out, 'wasm', `${wasmFile}.d.ts`));
  for (const dir of [out, join(out, 'wasm')]) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.js') || f.endsWith('.d.ts'))) {
      const text = readFileSync(join(dir, file), 'utf8');
      if (text.includes('kalam_wasm_bg.wasm')) writeFileSync(join(dir, file), text.replaceAll('kalam_wasm_bg.wasm', wasmFile));
    }
  }
  if (!dev) {
    // Shipped JavaScript is minified per file (ES modules stay ES modules, exports keep their
    // names); the .d.ts files carry the documentation.
    const jsFiles = [...readdirSync(out).filter((f) => f.endsWith('.js')).map((f) => join(out, f)),
      join(out, 'wasm', 'kalam_wasm.js')];
    run('esbuild', [...jsFiles, '--minify', '--format=esm', '--target=es2022', `--outdir=${out}`, '--outbase=' + out, '--allow-overwrite', '--log-level=warning']);
  }
  const template = join(root, bundle.template);
  const pkg = readFileSync(join(template, 'package.json'), 'utf8')
    .replaceAll('{{package}}', bundle.package)
    .replaceAll('{{version}}', version)
    .replaceAll('{{description}}', bundle.description)
    .replaceAll('{{wasm_file}}', wasmFile);
  writeFileSync(join(out, 'package.json'), pkg);
  cpSync(join(template, 'README.md'), join(out, 'README.md'));
  if (!existsSync(join(out, 'index.js')) || !existsSync(join(out, 'wasm', wasmFile))) {
    throw new Error(`build of ${bundle.package} is incomplete in ${out}`);
  }
  typecheckInPlace(bundle);
  console.log(`  -> ${out}`);
}
rmSync(join(distRoot, '.stage'), { recursive: true, force: true });
reportSizes(bundles.map(([name]) => name));
