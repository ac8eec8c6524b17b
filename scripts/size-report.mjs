#!/usr/bin/env node
// The size report and the size gate. Prints raw / gzip / brotli bytes of each built
// package's .wasm and JavaScript against the budgets in wasm-pack.toml (DESIGN.md §7), then
// checks two rules on the gzip bytes:
//   - growth: a bundle may not grow more than 2 % over the size recorded in
//     `[bundles.<name>.size]` (always on; a bundle with no recorded size is not checked);
//   - budget: a bundle may not exceed `[bundles.<name>.budget]`, when `[build]
//     enforce_budgets = true` (off until the size cuts of issue 15 land; over budget is a
//     warning meanwhile).
// A failure throws (scripts/build.mjs then exits non-zero with the message).
//
// Usage:
//   node scripts/size-report.mjs            report + gate on what is in dist/
//   node scripts/size-report.mjs --record [bundle ...]   report, then write the current gzip bytes into
//                                           `[bundles.<name>.size]` of wasm-pack.toml (after a
//                                           release build, when a change is meant to move them)
//   node scripts/size-report.mjs --no-gate  report only
// scripts/build.mjs runs it after every build; the gate runs for release builds only (a
// `--dev` build is several times larger and is never gated).
//
// The JS row is what an app ships: the package's browser entry (for packages with several
// public entries in package.json "exports", the largest) bundled the way a Vite/webpack app
// bundles it (esbuild: bundle, minify, ESM, browser platform; peer packages and the .wasm
// left out), gzip -9 as one file. The sum of every .js file of the package gzipped on its
// own (Node entry, CLI and wasm glue included) is printed next to it for information only.
import { readFileSync, readdirSync, existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { buildSync } from 'esbuild';
import { parse } from 'smol-toml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const matrixFile = join(root, 'wasm-pack.toml');

/** How much a bundle may grow over its recorded size before the gate fails (2 %). */
export const GROWTH_LIMIT = 0.02;

function sizes(buffers) {
  const all = Buffer.concat(buffers);
  return {
    raw: all.length,
    gzip: buffers.reduce((n, b) => n + gzipSync(b, { level: 9 }).length, 0),
    brotli: buffers.reduce((n, b) => n + brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length, 0),
  };
}

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

/**
 * The browser entries of a package.json: for each public subpath of `exports` (not
 * package.json, not the .wasm), its `browser` condition, else `import`, else `default`.
 * Falls back to `browser`/`module`/`main` when there is no `exports`. Paths as written.
 */
export function browserEntries(pkg) {
  const pick = (target) => {
    if (typeof target === 'string') return target;
    if (!target || typeof target !== 'object') return undefined;
    for (const cond of ['browser', 'import', 'default']) {
      const t = pick(target[cond]);
      if (t) return t;
    }
    return undefined;
  };
  const ex = pkg.exports;
  // Subpath keys start with '.'; otherwise `exports` is the root entry's own target.
  const subpaths = ex && typeof ex === 'object' && Object.keys(ex).some((k) => k.startsWith('.'));
  const targets = ex === undefined ? [] : subpaths
    ? Object.entries(ex).filter(([sub]) => sub !== './package.json').map(([, t]) => pick(t))
    : [pick(ex)];
  const entries = [...new Set(targets.filter((t) => typeof t === 'string' && t.endsWith('.js')))];
  if (entries.length === 0) {
    const fallback = [pkg.browser, pkg.module, pkg.main].find((t) => typeof t === 'string');
    if (fallback) entries.push(fallback);
  }
  return entries;
}

/**
 * One entry file bundled as an app's bundler would ship it: esbuild bundle + minify, ESM,
 * browser platform, every bare import (peer packages) and any .wasm left external (the
 * `new URL(..., import.meta.url)` of the wasm loader is not touched either). The bytes.
 */
export function bundleEntry(file) {
  const result = buildSync({
    entryPoints: [file], bundle: true, minify: true, format: 'esm', platform: 'browser',
    target: 'es2022', packages: 'external', external: ['*.wasm'], write: false, logLevel: 'silent',
  });
  return Buffer.from(result.outputFiles[0].contents);
}

/**
 * The JS row of a package folder: the largest of its browser entries bundled (`entry`: its
 * path in the package; `bytes`: the bundle), plus every .js file of the package (`files`),
 * for the per-file sum and the dev-build check.
 */
export function measurePackageJs(dir) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const entries = browserEntries(pkg);
  if (entries.length === 0) throw new Error(`${dir}/package.json names no browser entry`);
  let best;
  for (const entry of entries) {
    const bytes = bundleEntry(join(dir, entry));
    const gzip = gzipSync(bytes, { level: 9 }).length;
    if (!best || gzip > best.gzip) best = { entry, bytes, gzip };
  }
  const files = [
    ...readdirSync(dir).filter((f) => f.endsWith('.js')).map((f) => join(dir, f)),
    ...(existsSync(join(dir, 'wasm')) ? readdirSync(join(dir, 'wasm')).filter((f) => f.endsWith('.js')).map((f) => join(dir, 'wasm', f)) : []),
  ].map((f) => readFileSync(f));
  return { entry: best.entry, bytes: best.bytes, files };
}

/** The file name of a bundle's .wasm in its package (scripts/build.mjs names it). */
export function wasmFileName(bundleName) {
  return `kalam_${bundleName}_bg.wasm`;
}

/** The key of a row's kind in `[bundles.<name>.budget]` and `[bundles.<name>.size]`. */
const sizeKey = (kind) => `${kind}_gzip_bytes`;

/**
 * The gate on measured rows (`{ name, bundle, kind, gzip }`) against a parsed wasm-pack.toml.
 * Returns `{ failures, notes }`: one message per broken rule, and notes on bundles that shrank
 * (re-record to lock the gain in). Pure, so tests run it on fake reports.
 */
export function checkSizes(rows, matrix) {
  const enforceBudgets = matrix.build?.enforce_budgets === true;
  const failures = [];
  const notes = [];
  for (const r of rows) {
    const bundle = matrix.bundles[r.name];
    const budget = bundle?.budget?.[sizeKey(r.kind)];
    const recorded = bundle?.size?.[sizeKey(r.kind)];
    if (enforceBudgets && typeof budget === 'number' && r.gzip > budget) {
      failures.push(`${r.bundle} ${r.kind} is ${r.gzip} bytes gzip, over its budget of ${budget} ([bundles.${r.name}.budget] ${sizeKey(r.kind)})`);
    }
    if (typeof recorded === 'number') {
      const growth = (r.gzip - recorded) / recorded;
      if (growth > GROWTH_LIMIT) {
        failures.push(`${r.bundle} ${r.kind} is ${r.gzip} bytes gzip, ${(growth * 100).toFixed(1)} % over the ${recorded} recorded in wasm-pack.toml ([bundles.${r.name}.size] ${sizeKey(r.kind)}; at most +${GROWTH_LIMIT * 100} %). Make it smaller, or if the growth is wanted re-record: node scripts/size-report.mjs --record`);
      } else if (growth < -GROWTH_LIMIT) {
        notes.push(`${r.bundle} ${r.kind} is ${(-growth * 100).toFixed(1)} % under its recorded ${recorded} bytes: node scripts/size-report.mjs --record locks the gain in`);
      }
    }
  }
  return { failures, notes };
}

/**
 * wasm-pack.toml text with `[bundles.<name>.size]` set to the rows' gzip bytes. Edits the text
 * (comments and layout stay): replaces a recorded key, adds a missing one, and adds a missing
 * section after the bundle's last section.
 */
export function recordSizesText(text, rows) {
  let out = text;
  for (const r of rows) {
    const header = `[bundles.${r.name}.size]`;
    const line = `${sizeKey(r.kind)} = ${r.gzip}`;
    const lines = out.split('\n');
    const start = lines.findIndex((l) => l.trim() === header);
    if (start >= 0) {
      let end = lines.findIndex((l, i) => i > start && /^\s*\[/.test(l));
      if (end < 0) end = lines.length;
      const at = lines.findIndex((l, i) => i > start && i < end && new RegExp(`^\\s*${sizeKey(r.kind)}\\s*=`).test(l));
      if (at >= 0) {
        lines[at] = line;
      } else {
        // After the section's last non-blank line.
        let last = end - 1;
        while (last > start && lines[last].trim() === '') last--;
        lines.splice(last + 1, 0, line);
      }
    } else {
      // A new section after the last line of this bundle's sections ([bundles.<name>] and
      // [bundles.<name>.*]), before the next bundle.
      const own = (l) => l.trim() === `[bundles.${r.name}]` || l.trim().startsWith(`[bundles.${r.name}.`);
      const first = lines.findIndex(own);
      if (first < 0) throw new Error(`wasm-pack.toml has no [bundles.${r.name}]`);
      let end = lines.findIndex((l, i) => i > first && /^\s*\[/.test(l) && !own(l));
      if (end < 0) end = lines.length;
      let last = end - 1;
      while (last > first && lines[last].trim() === '') last--;
      lines.splice(last + 1, 0, '', header,
        '# gzip -9 bytes of the last recorded release build (node scripts/size-report.mjs --record);',
        `# the build fails when the bundle grows more than ${GROWTH_LIMIT * 100} % over them.`, line);
    }
    out = lines.join('\n');
  }
  return out;
}

/**
 * Whether a .wasm still has its `name` section: wasm-opt (`--strip-debug`) removes it from
 * release builds, a `--dev` build keeps it. A dev build is several times larger and must
 * neither be gated nor recorded.
 */
export function hasNameSection(bytes) {
  let at = 8; // magic + version
  const leb = () => {
    let n = 0;
    for (let shift = 0; at < bytes.length; shift += 7) {
      const b = bytes[at++];
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
    }
    return n;
  };
  while (at < bytes.length) {
    const id = bytes[at++];
    const size = leb();
    const end = at + size;
    if (id === 0) {
      const len = leb();
      if (Buffer.from(bytes.subarray(at, at + len)).toString('latin1') === 'name') return true;
    }
    at = end;
  }
  return false;
}

/** Measures the built packages in dist/ (only the named bundles, if given). */
export function measureSizes(only, matrix = parse(readFileSync(matrixFile, 'utf8'))) {
  const rows = [];
  for (const [name, bundle] of Object.entries(matrix.bundles)) {
    if (only && !only.includes(name)) continue;
    const dir = join(root, matrix.build.dist_dir, bundle.out_dir);
    if (!existsSync(dir)) continue;
    // TypeScript-only packages (`wasm = false`) have no .wasm and no wasm/ folder.
    const hasWasm = bundle.wasm !== false;
    const wasm = hasWasm ? readFileSync(join(dir, 'wasm', wasmFileName(name))) : undefined;
    const { entry, bytes, files: js } = measurePackageJs(dir);
    // A dev build is flagged on both rows of its package: by the wasm's name section, or for
    // a TypeScript-only package by its JavaScript not being minified: esbuild writes a few
    // long lines, tsc short ones. Measured over the whole package, since one minified file
    // can still have many short lines (the CLI's help text).
    const lines = js.reduce((n, b) => n + b.toString('latin1').split('\n').length, 0);
    const dev = hasWasm ? hasNameSection(wasm[0]) : js.reduce((n, b) => n + b.length, 0) / lines < 200;
    const row = (kind, buf) => ({ name, bundle: bundle.package, kind, ...sizes([buf]), budget: bundle.budget[sizeKey(kind)], recorded: bundle.size?.[sizeKey(kind)], dev });
    if (wasm) rows.push(row('wasm', wasm));
    rows.push({ ...row('js', bytes), entry, filesGzip: sizes(js).gzip });
  }
  return rows;
}

// The gate runs by default when this file or scripts/build.mjs is the program and no `--dev`
// was asked for: a library caller (a test that only reads the rows) is never failed by it.
const program = process.argv[1] ? resolve(process.argv[1]) : '';
const gateByDefault = !process.argv.includes('--dev') && !process.argv.includes('--no-gate')
  && [fileURLToPath(import.meta.url), join(root, 'scripts', 'build.mjs')].includes(program);

/**
 * Prints the report and returns its rows; with `gate` (default: see above) throws when the
 * gate fails.
 */
export function reportSizes(only, { gate = gateByDefault } = {}) {
  const matrix = parse(readFileSync(matrixFile, 'utf8'));
  const rows = measureSizes(only, matrix);
  console.log('\nsize report (gzip -9 / brotli -11; js: the largest browser entry bundled by esbuild, minified, as an app ships it)');
  console.log('bundle                 kind      raw        gzip      brotli    budget(gzip)       recorded  entry (every .js gzipped alone, summed)');
  for (const r of rows) {
    const over = r.gzip > r.budget;
    const vsRecorded = typeof r.recorded === 'number' ? `${r.gzip >= r.recorded ? '+' : ''}${(((r.gzip - r.recorded) / r.recorded) * 100).toFixed(1)} %` : '-';
    console.log(`${r.bundle.padEnd(22)} ${r.kind.padEnd(5)} ${kb(r.raw).padStart(10)} ${kb(r.gzip).padStart(10)} ${kb(r.brotli).padStart(10)}   ${kb(r.budget).padStart(9)} ${over ? 'OVER BUDGET' : 'ok'} (${((r.gzip / r.budget) * 100).toFixed(0)}%)  ${vsRecorded.padStart(7)}${r.entry ? `  ${r.entry} (${kb(r.filesGzip)})` : ''}`);
    if (over && matrix.build.enforce_budgets !== true) console.warn(`warning: ${r.bundle} ${r.kind} is ${kb(r.gzip)} gzip, over its ${kb(r.budget)} budget (not enforced yet: [build] enforce_budgets)`);
  }
  const dev = rows.filter((r) => r.dev);
  if (gate && dev.length) console.log(`size gate: skipped for ${[...new Set(dev.map((r) => r.bundle))].join(', ')} (a --dev build)`);
  if (gate) {
    const { failures, notes } = checkSizes(rows.filter((r) => !r.dev), matrix);
    for (const n of notes) console.log(`note: ${n}`);
    if (failures.length) throw new Error(`size gate failed:\n  ${failures.join('\n  ')}`);
    console.log(`size gate: ok (growth <= ${GROWTH_LIMIT * 100} % over recorded sizes${matrix.build.enforce_budgets === true ? ', budgets enforced' : '; budgets not enforced yet'})`);
  }
  return rows;
}

if (program === fileURLToPath(import.meta.url)) {
  const record = process.argv.includes('--record');
  let rows;
  try {
    // Bundle names (the wasm-pack.toml keys) limit the report and the recording to them.
    const names = process.argv.slice(2).filter((a) => !a.startsWith('--'));
    rows = reportSizes(names.length ? names : undefined, { gate: gateByDefault && !record });
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
  if (record) {
    if (rows.some((r) => r.dev)) {
      console.error('not recording: dist/ holds a --dev build; run node scripts/build.mjs (release) first');
      process.exit(1);
    }
    writeFileSync(matrixFile, recordSizesText(readFileSync(matrixFile, 'utf8'), rows));
    console.log(`recorded ${rows.length} sizes in wasm-pack.toml ([bundles.*.size])`);
  }
}
