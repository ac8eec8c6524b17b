// Lazy, single-flight instantiation of the package's .wasm. The entry point for each
// environment (index.ts for browsers/workers/bundlers, node.ts for Node) decides where
// the bytes come from. No globals are faked and no code is generated at run time.
import init from './wasm/kalam_wasm.js';
import type { InitInput } from './wasm/kalam_wasm.js';

type WasmSource = () => InitInput | Promise<InitInput>;

let source: WasmSource | undefined;
let ready: Promise<void> | undefined;

/** Set by the environment entry point; overridable with {@link initWasm}. */
export function setDefaultWasmSource(fn: WasmSource): void {
  source ??= fn;
}

/**
 * Instantiates the WebAssembly core. Called automatically on first use; call it yourself
 * to instantiate early or to load the .wasm from your own URL, bytes or module
 * (for strict CSP or custom hosting).
 */
export function initWasm(input?: InitInput | Promise<InitInput>): Promise<void> {
  if (input !== undefined && ready === undefined) {
    source = () => input;
  }
  ready ??= (async () => {
    if (!source) throw new Error('kalam-wasm: no WebAssembly source configured');
    const moduleOrPath = await source();
    await init({ module_or_path: moduleOrPath });
  })().catch((err: unknown) => {
    ready = undefined; // a failed load (e.g. offline) may be retried
    throw err;
  });
  return ready;
}
