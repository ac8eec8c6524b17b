// The app client: HTTP SQL, auth, row helpers, files and diagnostics.
import type { HttpCore } from './wasm/kalam_wasm.js';
import { KalamError, rethrowAsKalamError } from './errors.js';
import type { FileContext } from './cells.js';
import {
  HttpClientBase, decodeResponseJson, encodeSqlValues, type HttpClientOptions, type QueryResponse, type QueryWithFilesOptions,
  type RequestOptions, type RowKey, type SqlValue, type UploadProgress,
} from './http.js';

export interface ClientOptions extends HttpClientOptions {}

export interface HealthCheckResponse {
  status: string;
  version?: string;
  api_version?: string;
  build_date?: string;
}

export interface SetupStatus {
  needs_setup: boolean;
  message?: string;
}

export interface SetupRequest {
  user: string;
  password: string;
  rootPassword: string;
  email?: string | null;
}

export class KalamDBClient extends HttpClientBase {
  constructor(options: ClientOptions) {
    super(options);
  }

  /** @internal FileRefs from this client download with its credentials. */
  protected override fileContext(core: HttpCore): FileContext {
    return {
      baseUrl: core.baseUrl,
      download: (path, opts) => rethrowAsKalamError(() => core.download(path, opts?.userId, opts?.signal, undefined)),
    };
  }

  /** Inserts one row (values are bound as params; identifiers quoted). */
  async insert(table: string, row: Record<string, SqlValue>, options?: RequestOptions): Promise<QueryResponse> {
    const core = await this.core();
    const json = await rethrowAsKalamError(() => core.insert(table, encodeSqlValues(row), options?.signal, options?.timeoutMs));
    return decodeResponseJson(json, this.fileContext(core));
  }

  /** Updates the row whose key is `key` (a value of `id`, or `{ column: value }`). */
  async update(table: string, key: RowKey, changes: Record<string, SqlValue>, options?: RequestOptions): Promise<QueryResponse> {
    const core = await this.core();
    const json = await rethrowAsKalamError(() => core.update(table, encodeSqlValues(key), encodeSqlValues(changes), options?.signal, options?.timeoutMs));
    return decodeResponseJson(json, this.fileContext(core));
  }

  /** Deletes the row whose key is `key`. */
  async delete(table: string, key: RowKey, options?: RequestOptions): Promise<void> {
    const core = await this.core();
    await rethrowAsKalamError(() => core.delete(table, encodeSqlValues(key), options?.signal, options?.timeoutMs));
  }

  /**
   * SQL with `FILE("name")` placeholders and the files for them, sent as multipart.
   * `onProgress` reports upload progress where XMLHttpRequest exists (browsers); uploads are
   * never retried except once after an expired token. The 4th argument may also be the
   * progress callback itself (the official SDK's signature).
   */
  async queryWithFiles(sql: string, files: Record<string, Blob>, params?: SqlValue[],
    optionsOrOnProgress?: QueryWithFilesOptions | ((progress: UploadProgress) => void)): Promise<QueryResponse> {
    const options: QueryWithFilesOptions | undefined = typeof optionsOrOnProgress === 'function'
      ? { onProgress: optionsOrOnProgress } : optionsOrOnProgress;
    const core = await this.core();
    const names = Object.keys(files);
    const blobs = names.map((n) => files[n]!);
    const paramsJson = params?.length ? encodeSqlValues(params) : undefined;
    if (options?.onProgress && typeof XMLHttpRequest !== 'undefined') {
      return this.#uploadWithProgress(core, sql, names, blobs, paramsJson, options);
    }
    const json = await rethrowAsKalamError(() => core.queryWithFiles(sql, names, blobs, paramsJson, options?.namespace, options?.signal, options?.timeoutMs));
    return decodeResponseJson(json, this.fileContext(core));
  }

  async #uploadWithProgress(core: HttpCore, sql: string, names: string[], blobs: Blob[], paramsJson: string | undefined,
    options: QueryWithFilesOptions): Promise<QueryResponse> {
    const aborted = () => new KalamError({ code: 'ABORTED', message: 'the operation was aborted' });
    if (options.signal?.aborted) throw aborted();
    let authorization = await rethrowAsKalamError(() => core.prepareUpload(sql, names, paramsJson, options.namespace));
    // Like the fetch path: sent again once after TOKEN_EXPIRED (refused before anything ran).
    for (let attempt = 0; ; attempt++) {
      if (options.signal?.aborted) throw aborted();
      const { status, body } = await this.#xhrUpload(core, sql, names, blobs, paramsJson, authorization, options);
      try {
        return decodeResponseJson(core.decodeResponse(status, body, undefined), this.fileContext(core));
      } catch (err) {
        const error = KalamError.from(err);
        if (error.code !== 'TOKEN_EXPIRED' || attempt > 0) throw error;
      }
      authorization = `Bearer ${await rethrowAsKalamError(() => core.accessToken(true))}`;
    }
  }

  #xhrUpload(core: HttpCore, sql: string, names: string[], blobs: Blob[], paramsJson: string | undefined,
    authorization: string | undefined, options: QueryWithFilesOptions): Promise<{ status: number; body: string }> {
    const form = new FormData();
    form.append('sql', sql);
    if (paramsJson) form.append('params', paramsJson);
    const namespace = options.namespace ?? this.options.namespace;
    if (namespace) form.append('namespace_id', namespace);
    names.forEach((name, i) => {
      const blob = blobs[i]!;
      form.append(`file:${name}`, blob, (blob as File).name || name);
    });
    const sizes = blobs.map((b) => b.size);
    const total = sizes.reduce((a, b) => a + b, 0);
    return new Promise<{ status: number; body: string }>((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', `${core.baseUrl}/v1/api/sql`);
      if (authorization) xhr.setRequestHeader('Authorization', authorization);
      const timeoutMs = options.timeoutMs ?? this.options.timeoutMs ?? 30_000;
      if (timeoutMs > 0) xhr.timeout = timeoutMs;
      xhr.upload.onprogress = (e) => {
        if (!e.lengthComputable || total === 0) return;
        let loaded = Math.min(e.loaded, total);
        let index = 0;
        while (index < sizes.length - 1 && loaded > sizes[index]!) {
          loaded -= sizes[index]!;
          index += 1;
        }
        const progress: UploadProgress = {
          file_index: index + 1, total_files: names.length, file_name: names[index]!,
          bytes_sent: loaded, total_bytes: sizes[index]!, percent: sizes[index] ? Math.round((loaded / sizes[index]!) * 100) : 100,
        };
        try {
          options.onProgress?.(progress);
        } catch {
          // a throwing progress callback must not break the upload
        }
      };
      const onAbort = () => xhr.abort();
      const settle = () => options.signal?.removeEventListener('abort', onAbort);
      xhr.onload = () => { settle(); resolve({ status: xhr.status, body: xhr.responseText }); };
      xhr.onerror = () => { settle(); reject(new KalamError({ code: 'NETWORK', message: 'upload failed: network error', retryable: true })); };
      xhr.ontimeout = () => { settle(); reject(new KalamError({ code: 'TIMEOUT', message: `no answer within ${timeoutMs} ms`, retryable: true })); };
      xhr.onabort = () => { settle(); reject(new KalamError({ code: 'ABORTED', message: 'the operation was aborted' })); };
      if (options.signal?.aborted) {
        settle();
        reject(new KalamError({ code: 'ABORTED', message: 'the operation was aborted' }));
        return;
      }
      options.signal?.addEventListener('abort', onAbort, { once: true });
      xhr.send(form);
    });
  }

  /** Server health (KalamDB answers only loopback callers). */
  async health(options?: RequestOptions): Promise<HealthCheckResponse> {
    return this.plain<HealthCheckResponse>('GET', '/v1/api/healthcheck', undefined, false, options);
  }

  /** Whether the server still needs its first-run setup (loopback unless allowed remotely). */
  async setupStatus(options?: RequestOptions): Promise<SetupStatus> {
    return this.plain<SetupStatus>('GET', '/v1/api/auth/status', undefined, false, options);
  }

  /** First-run setup: sets root's password and creates a dba user (does not log in). */
  async setup(request: SetupRequest, options?: RequestOptions): Promise<{ user: unknown; message: string }> {
    const body = { user: request.user, password: request.password, root_password: request.rootPassword, email: request.email ?? null };
    return this.plain('POST', '/v1/api/auth/setup', body, false, options);
  }

  /** The signed-in user. */
  async me(options?: RequestOptions): Promise<{ user: { id: string; role: string; email: string | null }; admin_ui_access: boolean }> {
    return this.plain('GET', '/v1/api/auth/me', undefined, true, options);
  }
}

/** Creates a client; nothing is loaded or sent until the first call. */
export function createClient(options: ClientOptions): KalamDBClient {
  return new KalamDBClient(options);
}

export { encodeSqlValues };
