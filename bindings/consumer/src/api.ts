// The public API of @kalam-wasm/consumer, shared by every entry point.
import { callCore, initWasm } from './wasm-loader.js';

export { initWasm };
export { KalamConsumerClient, createConsumerClient, runConsumer } from './consumer.js';
export type {
  ConsumeRequest, ConsumeResponse, ConsumeMessage, ConsumeStart, AckResponse, ConsumeContext, ConsumerHandler,
  ConsumerHandle, ConsumerClientOptions, ConnectionInfo, ConsumerConnectionError, RunConsumerOptions, RetryOptions, MessageContext,
  LoopOptions, TransportErrorInfo,
} from './consumer.js';
export { KalamError, ErrorCode } from './errors.js';
export type { KalamErrorInit } from './errors.js';
export { SeqId } from './seq-id.js';
export { KalamCellValue, wrapRowMap } from './cells.js';
export type { RowData, SchemaField, KalamDataType } from './cells.js';
export { Auth, isBasicAuth, isJwtAuth, isNoAuth } from './auth.js';
export type { AuthCredentials, AuthProvider, LoginResponse } from './auth.js';
export { LogLevel, rowsOf } from './http.js';
export type { QueryResponse, QueryResult, RequestOptions, SqlValue, LogEntry, LogListener } from './http.js';

/** The version of the Rust core compiled into this package. */
export async function coreVersion(): Promise<string> {
  await initWasm();
  return callCore('coreVersion');
}
