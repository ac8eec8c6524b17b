// scripts/wasm-names.mjs: wasm-opt's short import/export names applied to a wasm-bindgen
// style glue, end to end on a hand-made module with the real wasm-opt (the release build
// does the same to the packages' glue; packages.test.mjs runs those), and the check that
// refuses a glue that does not match its module.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { applyNameMap, checkGlue, parseNameMap, renameGlue, renameTypings } from '../../scripts/wasm-names.mjs';
import { root } from './install.mjs';

const IMPORT = '__wbg_double_0123456789abcdef';

/** A module importing `./k_bg.js` `IMPORT` (i32 -> i32) and exporting `run_it` (x -> IMPORT(x)). */
function module() {
  const str = (s) => [s.length, ...Buffer.from(s)];
  const section = (id, bytes) => [id, bytes.length, ...bytes];
  return Buffer.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f]),
    ...section(2, [0x01, ...str('./k_bg.js'), ...str(IMPORT), 0x00, 0x00]),
    ...section(3, [0x01, 0x00]),
    ...section(7, [0x01, ...str('run_it'), 0x00, 0x01]),
    ...section(10, [0x01, 0x06, 0x00, 0x20, 0x00, 0x10, 0x00, 0x0b]),
  ]);
}

// Shaped like wasm-bindgen's output: one import object, keys one per line, `wasm.<export>`.
const glue = `let wasm;
function __wbg_get_imports() {
    const import0 = {
        __proto__: null,
        ${IMPORT}: function(arg0) {
            return arg0 * 2;
        },
    };
    return {
        __proto__: null,
        "./k_bg.js": import0,
    };
}
export function runIt(x) { return wasm.run_it(x); }
export function init(bytes) {
    wasm = new WebAssembly.Instance(new WebAssembly.Module(bytes), __wbg_get_imports()).exports;
}
`;

test('wasm-opt minified names, applied to the glue: the module instantiates and runs, the long names are gone', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kalam-names-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'in.wasm'), module());
  writeFileSync(join(dir, 'k.js'), glue);
  writeFileSync(join(dir, 'k.d.ts'), 'export interface InitOutput {\n    readonly run_it: (a: number) => number;\n}\n');
  const stdout = execFileSync(join(root, 'node_modules', '.bin', 'wasm-opt'),
    ['-Oz', '--minify-imports-and-exports-and-modules', join(dir, 'in.wasm'), '-o', join(dir, 'out.wasm')], { encoding: 'utf8' });
  const map = parseNameMap(stdout);
  assert.equal(map.imports.length, 1);
  assert.equal(map.exports.length, 1);
  applyNameMap(map, join(dir, 'out.wasm'), join(dir, 'k.js'), [join(dir, 'k.d.ts')]);
  const out = readFileSync(join(dir, 'k.js'), 'utf8');
  assert.doesNotMatch(out, new RegExp(IMPORT));
  assert.doesNotMatch(out, /run_it|\.\/k_bg\.js/);
  assert.doesNotMatch(readFileSync(join(dir, 'out.wasm')).toString('latin1'), new RegExp(`${IMPORT}|run_it`));
  assert.match(readFileSync(join(dir, 'k.d.ts'), 'utf8'), new RegExp(`readonly ${JSON.stringify(map.exports[0][1]).replace(/[$]/g, '\\$')}:`));
  const m = await import(pathToFileURL(join(dir, 'k.js')).href);
  m.init(readFileSync(join(dir, 'out.wasm')));
  assert.equal(m.runIt(21), 42);
});

test('a glue that does not match its module is refused, naming what is missing', () => {
  const map = { imports: [['./k_bg.js', IMPORT, 'a']], exports: [['run_it', 'b']] };
  const renamed = renameGlue(glue, map, 'm');
  assert.match(renamed, /\n\s+"a": function/);
  assert.match(renamed, /"m": import0/);
  assert.match(renamed, /wasm\["b"\]\(x\)/);
  const imports = [{ module: 'm', name: 'a', kind: 'function' }];
  const exports = [{ name: 'b', kind: 'function' }];
  assert.deepEqual(checkGlue(renamed, imports, exports), []);
  // The module wants another import, exports something else, or imports from another module.
  assert.match(checkGlue(renamed, [...imports, { module: 'm', name: 'c', kind: 'function' }], exports).join('\n'), /does not provide import "c"/);
  assert.match(checkGlue(renamed, imports, [{ name: 'z', kind: 'function' }]).join('\n'), /calls wasm\.b, which the module does not export/);
  assert.match(checkGlue(renamed, [{ module: 'other', name: 'a', kind: 'function' }], exports).join('\n'), /no import module "other"/);
  // The glue as wasm-bindgen wrote it does not match the minified module.
  assert.ok(checkGlue(glue, imports, exports).length >= 2);
});

test('name mappings: none without the flag, typings renamed', () => {
  assert.equal(parseNameMap(''), null);
  assert.equal(parseNameMap('\n'), null);
  assert.throws(() => parseNameMap('{"imports": 1}'), /expected \{ imports, exports \}/);
  const map = { imports: [], exports: [['httpshell_run', 'Ka'], ['memory', 'Da']] };
  assert.equal(renameTypings('    readonly httpshell_run: () => any;\n    readonly memory: WebAssembly.Memory;\n', map),
    '    readonly "Ka": () => any;\n    readonly "Da": WebAssembly.Memory;\n');
  assert.equal(renameTypings('export const memory: WebAssembly.Memory;\n', map), 'export const Da: WebAssembly.Memory;\n');
});
