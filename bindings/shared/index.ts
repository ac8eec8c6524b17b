// Entry for browsers, dedicated/shared/service workers and bundlers (Vite, webpack, Rollup,
// esbuild, Parcel). Free of side effects: the .wasm is located lazily by wasm-loader.ts.
export * from './api.js';
