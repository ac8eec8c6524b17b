// Lazy, single-flight instantiation of the package's .wasm. By default the bytes are fetched
// from the file next to this module: `new URL(..., import.meta.url)` is the form every
// bundler (Vite, webpack, Parcel) recognises as an asset reference, and browsers and workers
// resolve it as is. That default is an expression evaluated on first use, not a registration
// at import time, so bundlers that drop side-effect-free statements (package.json
// "sideEffects") cannot lose it. The Node entry (node.ts) replaces it with a file read.
// No globals are faked and no code is generated at run time.
import init, { coreCall } from './wasm/kalam_wasm.js';
import type { InitInput } from './wasm/kalam_wasm.js';
import { ErrorCode, KalamError } from './errors.js';

type WasmSource = () => InitInput | Promise<InitInput>;

let source: WasmSource | undefined;
let ready: Promise<void> | undefined;
let instantiated = false;

/** Set by an environment entry point (node.ts); overridable with {@link initWasm}. */
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
    const moduleOrPath = await (source ? source() : new URL('./wasm/kalam_wasm_bg.wasm', import.meta.url));
    await init({ module_or_path: moduleOrPath });
    instantiated = true;
  })().catch((err: unknown) => {
    ready = undefined; // a failed load (e.g. offline) may be retried
    throw err;
  });
  return ready;
}

/**
 * One synchronous rule of the core (`coreCall` in the .wasm: FileRef names and paths, table
 * names, ...), its error rethrown as a KalamError. Before the first `initWasm()` (or any
 * client call, which awaits it) there is no core to ask, and the answer is a typed error
 * rather than a TypeError from the glue. @internal
 */
export function callCore<T = string>(op: string, ...args: unknown[]): T {
  if (!instantiated) {
    throw new KalamError({ code: ErrorCode.INVALID_ARGUMENT, message: `${op} needs the WebAssembly core: await initWasm() (or any client call) first` });
  }
  try {
    return coreCall(op, args) as T;
  } catch (err) {
    throw KalamError.from(err);
  }
}
