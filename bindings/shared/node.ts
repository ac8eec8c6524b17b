// Entry for Node 18+: read the .wasm from disk (Node's fetch cannot load file: URLs).
import { readFile } from 'node:fs/promises';
import { setDefaultWasmSource } from './wasm-loader.js';

setDefaultWasmSource(() => readFile(new URL('./wasm/kalam_wasm_bg.wasm', import.meta.url)));

export * from './api.js';
