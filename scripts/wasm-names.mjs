// Short import/export names between a .wasm and its wasm-bindgen glue (issue 15).
//
// wasm-bindgen names every import `__wbg_<name>_<16 hex digits>` and keeps the Rust export
// names; they are spelled out in the .wasm's import/export sections and again in the glue's
// import object and its `wasm.<name>` calls, where gzip cannot shrink the hashes (about
// 2 KB of gzip in each .wasm and 1.3 KB in each glue file). wasm-opt's
// `--minify-imports-and-exports-and-modules` (in the `wasm_opt` flags of wasm-pack.toml)
// renames them in the .wasm and prints the mapping as JSON; this applies it to the glue
// and its typings, then checks the result against the module itself: every import of the
// module must be provided by the glue, and every `wasm.<name>` the glue calls must be an
// export, so a glue that does not match fails the build instead of the first instantiation.
//
// Used by scripts/build.mjs (release builds) and bench/size/measure.sh:
//   node scripts/wasm-names.mjs <mapping.json> <module.wasm> <glue.js> [<typings.d.ts> ...]
// (rewrites the glue and typings in place; an empty mapping file leaves them untouched).
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The `{ imports: [[module, name, short]], exports: [[name, short]] }` wasm-opt printed, or null. */
export function parseNameMap(stdout) {
  const text = stdout.trim();
  if (!text) return null;
  const map = JSON.parse(text);
  if (!Array.isArray(map.imports) || !Array.isArray(map.exports)) throw new Error('wasm-opt name mapping: expected { imports, exports }');
  return map;
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The glue text with the short names of `map`: import-object keys (one per line, as
 * wasm-bindgen writes them), the import module's key, and `wasm.<export>` calls.
 * `moduleName` is the module name the .wasm now imports from.
 */
export function renameGlue(glue, map, moduleName) {
  let out = glue;
  for (const [, from, to] of map.imports) {
    out = out.replace(new RegExp(`(\\n[ \\t]+)${escape(from)}:`, 'g'), (_, indent) => `${indent}${JSON.stringify(to)}:`);
  }
  for (const [from, to] of map.exports) {
    out = out.replace(new RegExp(`\\bwasm\\.${escape(from)}(?![\\w$])`, 'g'), () => `wasm[${JSON.stringify(to)}]`);
  }
  return out.replace(/"\.\/[^"\n]+_bg\.js": import0/, () => `${JSON.stringify(moduleName)}: import0`);
}

/** Typings (`readonly <export>:` of InitOutput, `export const <export>:` of the _bg.wasm.d.ts) with the short names. */
export function renameTypings(text, map) {
  let out = text;
  for (const [from, to] of map.exports) {
    out = out
      .replace(new RegExp(`\\breadonly ${escape(from)}:`, 'g'), () => `readonly ${JSON.stringify(to)}:`)
      .replace(new RegExp(`\\bexport const ${escape(from)}:`, 'g'), () => `export const ${to}:`);
  }
  return out;
}

/**
 * Checks a renamed glue against the module's real imports and exports
 * (`WebAssembly.Module.imports/exports`): returns the problems, empty when it matches.
 */
export function checkGlue(glue, imports, exports) {
  const problems = [];
  const modules = [...new Set(imports.map((i) => i.module))];
  for (const m of modules) {
    if (!glue.includes(`${JSON.stringify(m)}: import0`)) problems.push(`the glue provides no import module ${JSON.stringify(m)}`);
  }
  for (const i of imports) {
    if (!glue.includes(`${JSON.stringify(i.name)}:`) && !new RegExp(`\\n[ \\t]+${escape(i.name)}:`).test(glue)) {
      problems.push(`the glue does not provide import ${JSON.stringify(i.name)}`);
    }
  }
  const exported = new Set(exports.map((e) => e.name));
  for (const m of glue.matchAll(/\bwasm(?:\.([\w$]+)|\[("[^"]*")\])/g)) {
    const name = m[1] ?? JSON.parse(m[2]);
    if (!exported.has(name)) problems.push(`the glue calls wasm.${name}, which the module does not export`);
  }
  return [...new Set(problems)];
}

/** Applies a mapping to glue (and typings) files in place and checks the glue against `wasmFile`. */
export function applyNameMap(map, wasmFile, glueFile, typingFiles = []) {
  const mod = new WebAssembly.Module(readFileSync(wasmFile));
  const imports = WebAssembly.Module.imports(mod);
  const exports = WebAssembly.Module.exports(mod);
  const modules = [...new Set(imports.map((i) => i.module))];
  if (modules.length !== 1) throw new Error(`${wasmFile}: expected one import module, found ${modules.length}`);
  const glue = renameGlue(readFileSync(glueFile, 'utf8'), map, modules[0]);
  const problems = checkGlue(glue, imports, exports);
  if (problems.length) throw new Error(`${glueFile} does not match ${wasmFile} after renaming:\n  ${problems.join('\n  ')}`);
  writeFileSync(glueFile, glue);
  for (const f of typingFiles) writeFileSync(f, renameTypings(readFileSync(f, 'utf8'), map));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [mapFile, wasmFile, glueFile, ...typings] = process.argv.slice(2);
  if (!glueFile) {
    console.error('usage: node scripts/wasm-names.mjs <mapping.json> <module.wasm> <glue.js> [<typings.d.ts> ...]');
    process.exit(2);
  }
  const map = parseNameMap(readFileSync(mapFile, 'utf8'));
  if (map) applyNameMap(map, wasmFile, glueFile, typings);
}
