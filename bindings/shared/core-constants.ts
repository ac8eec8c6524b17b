// Generated from the Rust core by src/core/ts_constants.rs: do not edit. After changing the
// Rust, rewrite it with `KALAM_BLESS=1 cargo test -p kalam-wasm --lib ts_constants`.

/** Codes produced by the client itself (`core::error::codes`). */
export const ERROR_CODES = {
  /** The request never got an HTTP answer (DNS, refused, reset, CORS). */
  NETWORK: 'NETWORK',
  /** No answer within the configured timeout. */
  TIMEOUT: 'TIMEOUT',
  /** Cancelled through an `AbortSignal` (or by `shutdown()`). */
  ABORTED: 'ABORTED',
  /** The server sent something that does not follow the protocol. */
  PROTOCOL: 'PROTOCOL',
  /** The caller passed something unusable (bad option, bad live SQL, bad key). */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** The configured server URL cannot be used. */
  INVALID_URL: 'INVALID_URL',
  /** The client (or the subscription) was closed. */
  CLOSED: 'CLOSED',
  /** Authentication failed and no provider could produce a working credential. */
  AUTH_FAILED: 'AUTH_FAILED',
  /** An HTTP error whose body carried no recognisable error code. */
  HTTP_ERROR: 'HTTP_ERROR',
} as const;

/** SeqId (`_seq`) layout: bits 63..22 milliseconds since this epoch, then the worker id, then the sequence. */
export const SEQ_ID_EPOCH_MS = 1704067200000n;
export const SEQ_ID_TIMESTAMP_SHIFT = 22n;
export const SEQ_ID_WORKER_SHIFT = 12n;
export const SEQ_ID_WORKER_MASK = 0x3ffn;
export const SEQ_ID_SEQUENCE_MASK = 0xfffn;

/** The columns KalamDB adds to every table, with the type their cells decode as. */
export const SYSTEM_COLUMNS = {
  _seq: 'BigInt',
  _commit_seq: 'BigInt',
  _deleted: 'Boolean',
} as const;
