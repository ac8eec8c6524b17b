#!/usr/bin/env node
// Prints raw / gzip / brotli bytes of each built package's .wasm and JavaScript against the
// budgets in wasm-pack.toml (DESIGN.md §7). Over budget is a warning, not a failure: the
// numbers are for people; the benchmarks carry the ratios.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { parse } from 'smol-toml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function sizes(buffers) {
  const all = Buffer.concat(buffers);
  return {
    raw: all.length,
    gzip: buffers.reduce((n, b) => n + gzipSync(b, { level: 9 }).length, 0),
    brotli: buffers.reduce((n, b) => n + brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length, 0),
  };
}

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

/** The file name of a bundle's .wasm in its package (scripts/build.mjs names it). */
export function wasmFileName(bundleName) {
  return `kalam_${bundleName}_bg.wasm`;
}

/** Returns the rows it printed (for tests) and warns above budget. */
export function reportSizes(only) {
  const matrix = parse(readFileSync(join(root, 'wasm-pack.toml'), 'utf8'));
  const rows = [];
  for (const [name, bundle] of Object.entries(matrix.bundles)) {
    if (only && !only.includes(name)) continue;
    const dir = join(root, matrix.build.dist_dir, bundle.out_dir);
    if (!existsSync(dir)) continue;
    // TypeScript-only packages (`wasm = false`) have no .wasm and no wasm/ folder.
    const hasWasm = bundle.wasm !== false;
    const wasm = hasWasm ? [readFileSync(join(dir, 'wasm', wasmFileName(name)))] : [];
    const jsFiles = [
      ...readdirSync(dir).filter((f) => f.endsWith('.js')).map((f) => join(dir, f)),
      ...(hasWasm ? readdirSync(join(dir, 'wasm')).filter((f) => f.endsWith('.js')).map((f) => join(dir, 'wasm', f)) : []),
    ];
    const js = jsFiles.map((f) => readFileSync(f));
    const kinds = [['wasm', wasm, bundle.budget.wasm_gzip_bytes], ['js', js, bundle.budget.js_gzip_bytes]].filter(([, bufs]) => bufs.length);
    for (const [kind, bufs, budget] of kinds) {
      const s = sizes(bufs);
      rows.push({ bundle: bundle.package, kind, ...s, budget });
    }
  }
  console.log('\nsize report (gzip -9 / brotli -11, per file, summed)');
  console.log('bundle                 kind      raw        gzip      brotli    budget(gzip)');
  for (const r of rows) {
    const over = r.gzip > r.budget;
    console.log(`${r.bundle.padEnd(22)} ${r.kind.padEnd(5)} ${kb(r.raw).padStart(10)} ${kb(r.gzip).padStart(10)} ${kb(r.brotli).padStart(10)}   ${kb(r.budget).padStart(9)} ${over ? 'OVER BUDGET' : 'ok'} (${((r.gzip / r.budget) * 100).toFixed(0)}%)`);
    if (over) console.warn(`warning: ${r.bundle} ${r.kind} is ${kb(r.gzip)} gzip, over its ${kb(r.budget)} budget`);
  }
  return rows;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) reportSizes();
