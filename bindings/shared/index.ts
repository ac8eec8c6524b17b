// Entry for browsers, dedicated/shared/service workers and bundlers (Vite, webpack, esbuild):
// the .wasm is resolved next to this file, which bundlers understand as an asset reference.
import { setDefaultWasmSource } from './wasm-loader.js';

setDefaultWasmSource(() => new URL('./wasm/kalam_wasm_bg.wasm', import.meta.url));

export * from './api.js';
