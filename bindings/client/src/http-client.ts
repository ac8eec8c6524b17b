// The HTTP half of the app client: SQL, auth, row helpers, files and diagnostics. The full
// client (`client.ts`) adds live queries on top; every rule (auth, retries, endpoints, form
// parts) runs in the Rust core, this class only shapes arguments and answers.
import { KalamError } from './errors.js';
import type { FileContext } from './cells.js';
import {
  HttpClientBase, decodeResponseJson, encodeSqlValues, type QueryResponse, type QueryWithFilesOptions,
  type RequestOptions, type RowKey, type SqlValue, type UploadProgress, type UploadTransport,
} from './http.js';

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

export class KalamHttpClient extends HttpClientBase {
  /** @internal FileRefs from this client download with its credentials. */
  protected override fileContext(): FileContext {
    return {
      ...super.fileContext(),
      download: (path, opts) => this.run<Blob>('download', { path, userId: opts?.userId }, { signal: opts?.signal }),
    };
  }

  /** Inserts one row (values are bound as params; identifiers quoted). */
  async insert(table: string, row: Record<string, SqlValue>, options?: RequestOptions): Promise<QueryResponse> {
    return this.#write('insert', { table, row: encodeSqlValues(row), namespace: options?.namespace }, options);
  }

  /** Updates the row whose key is `key` (a value of `id`, or `{ column: value }`). */
  async update(table: string, key: RowKey, changes: Record<string, SqlValue>, options?: RequestOptions): Promise<QueryResponse> {
    return this.#write('update', { table, key: encodeSqlValues(key), changes: encodeSqlValues(changes), namespace: options?.namespace }, options);
  }

  /** Deletes the row whose key is `key`. */
  async delete(table: string, key: RowKey, options?: RequestOptions): Promise<void> {
    await this.#write('delete', { table, key: encodeSqlValues(key), namespace: options?.namespace }, options);
  }

  async #write(op: string, args: object, options?: RequestOptions): Promise<QueryResponse> {
    return decodeResponseJson(await this.run<string>(op, args, options), this.fileContext());
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
    const names = Object.keys(files);
    const blobs = names.map((n) => files[n]!);
    const transport = options?.onProgress && typeof XMLHttpRequest !== 'undefined'
      ? xhrTransport(names, blobs, options.onProgress) : undefined;
    const args = { sql, names, params: params?.length ? encodeSqlValues(params) : undefined, namespace: options?.namespace };
    const json = await this.run<string>('queryWithFiles', args, options, blobs, transport);
    return decodeResponseJson(json, this.fileContext());
  }

  /** Server health (KalamDB answers only loopback callers). */
  async health(options?: RequestOptions): Promise<HealthCheckResponse> {
    return this.endpoint<HealthCheckResponse>('health', undefined, options);
  }

  /** Whether the server still needs its first-run setup (loopback unless allowed remotely). */
  async setupStatus(options?: RequestOptions): Promise<SetupStatus> {
    return this.endpoint<SetupStatus>('setupStatus', undefined, options);
  }

  /** First-run setup: sets root's password and creates a dba user (does not log in). */
  async setup(request: SetupRequest, options?: RequestOptions): Promise<{ user: unknown; message: string }> {
    const { user, password, rootPassword, email } = request;
    return this.endpoint('setup', { user, password, rootPassword, email: email ?? undefined }, options);
  }

  /** The signed-in user. */
  async me(options?: RequestOptions): Promise<{ user: { id: string; role: string; email: string | null }; admin_ui_access: boolean }> {
    return this.endpoint('me', undefined, options);
  }
}

/**
 * Sends one upload attempt with XMLHttpRequest so `onProgress` sees the bytes go out (fetch
 * cannot report upload progress). Retries, tokens and aborts are the core's.
 */
function xhrTransport(names: string[], blobs: Blob[], onProgress: (progress: UploadProgress) => void): UploadTransport {
  const sizes = blobs.map((b) => b.size);
  const total = sizes.reduce((a, b) => a + b, 0);
  return (url, authorization, form, timeoutMs, signal) => new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    if (authorization) xhr.setRequestHeader('Authorization', authorization);
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
        onProgress(progress);
      } catch {
        // a throwing progress callback must not break the upload
      }
    };
    const onAbort = () => xhr.abort();
    const settle = () => signal.removeEventListener('abort', onAbort);
    xhr.onload = () => { settle(); resolve({ status: xhr.status, body: xhr.responseText }); };
    xhr.onerror = () => { settle(); reject(new KalamError({ code: 'NETWORK', message: 'upload failed: network error', retryable: true })); };
    xhr.ontimeout = () => { settle(); reject(new KalamError({ code: 'TIMEOUT', message: `no answer within ${timeoutMs} ms`, retryable: true })); };
    xhr.onabort = () => { settle(); reject(new KalamError({ code: 'ABORTED', message: 'the operation was aborted' })); };
    if (signal.aborted) {
      settle();
      reject(new KalamError({ code: 'ABORTED', message: 'the operation was aborted' }));
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    xhr.send(form);
  });
}

export { encodeSqlValues };
