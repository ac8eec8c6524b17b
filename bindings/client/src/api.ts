// The public API of @kalam-wasm/client, shared by every entry point.
import { callCore, initWasm } from './wasm-loader.js';

export { initWasm };
export { KalamDBClient, createClient } from './client.js';
export type { ClientOptions } from './client.js';
export type { HealthCheckResponse, SetupStatus, SetupRequest } from './http-client.js';
export { LiveManager, MessageType, ChangeType } from './live.js';
export type {
  ConnectionState, ConnectionStateName, ReconnectOptions, DisconnectReason, LiveConnectionError, LiveSubscriptionError,
  LiveRowsChange, LiveOptions, LiveRowsCallback, LiveEvent, LiveEventsOptions, LiveSubscriptionInfo, Unsubscribe, BatchControl,
  LiveManagerOptions, EventRow, SubscriptionOptions, LogLevelName, VerifyOptions, LivenessOptions,
} from './live.js';
export { LiveQueryController, createLiveQuery, createLiveQueryController, keyOfRow, keyOfRowKey } from './live-query.js';
export type {
  LiveQueryStatus, LiveQueryControllerStatus, LiveQuerySnapshot, LiveQueryControllerSnapshot, LiveQueryListener,
  LiveQueryControllerListener, LiveGetKey, LiveQueryClient, LiveQueryOptions, LiveQueryControllerOptions,
} from './live-query.js';
export { KalamError, ErrorCode } from './errors.js';
export type { KalamErrorInit } from './errors.js';
export { SeqId } from './seq-id.js';
export { KalamCellValue, FileRef, wrapRowMap, parseFileRef, parseFileRefs, storedFileName } from './cells.js';
export type { RowData, SchemaField, KalamDataType, FieldFlag, FileRefData } from './cells.js';
export { Auth, isBasicAuth, isJwtAuth, isNoAuth, isAuthenticated, buildAuthHeader, encodeBasicAuth } from './auth.js';
export type { AuthCredentials, AuthProvider, BasicAuthCredentials, JwtAuthCredentials, NoAuthCredentials, LoginResponse, LoginUserInfo } from './auth.js';
export { KalamRow, LogLevel, rowsOf } from './http.js';
export type { ErrorDetail, QueryResponse, QueryResult, RequestOptions, QueryWithFilesOptions, UploadProgress, SqlValue, RowKey, LogEntry, LogListener, HttpClientOptions } from './http.js';

/** The version of the Rust core compiled into this package. */
export async function coreVersion(): Promise<string> {
  await initWasm();
  return callCore('coreVersion');
}
