// The public API of @kalam-wasm/consumer, shared by every entry point.
import { coreVersion as wasmCoreVersion } from './wasm/kalam_wasm.js';
import { initWasm } from './wasm-loader.js';

export { initWasm };

/** The version of the Rust core compiled into this package. */
export async function coreVersion(): Promise<string> {
  await initWasm();
  return wasmCoreVersion();
}
