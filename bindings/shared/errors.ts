// One error type for every failure (DESIGN.md §4). Errors are created in Rust as
// `{ code, message, status?, retryable, details? }` and surface here as real `Error`s.
import { ERROR_CODES } from './core-constants.js';

/**
 * Codes produced by the client itself; server codes are passed through verbatim. The list is
 * the Rust core's (`core::error::codes`), generated into core-constants.ts.
 */
export const ErrorCode = ERROR_CODES;

export interface KalamErrorInit {
  code: string;
  message: string;
  status?: number;
  retryable?: boolean;
  details?: string;
}

/**
 * Every rejection of this package is a `KalamError`:
 * - `code`: the server's code (`SQL_EXECUTION_ERROR`, `TOKEN_EXPIRED`, `PERMISSION_DENIED`, ...)
 *   or one of {@link ErrorCode};
 * - `status`: the HTTP status, when there was an HTTP answer;
 * - `retryable`: whether the same call may succeed if tried again unchanged;
 * - `details`: extra text from the server (often the failing SQL), when given.
 */
export class KalamError extends Error {
  readonly code: string;
  readonly status?: number;
  readonly retryable: boolean;
  readonly details?: string;

  constructor(init: KalamErrorInit) {
    super(init.message);
    this.name = 'KalamError';
    this.code = init.code;
    this.status = init.status;
    this.retryable = init.retryable ?? false;
    this.details = init.details;
  }

  /** Turns whatever crossed the boundary (a Rust error object, an Error, a string) into a KalamError. */
  static from(value: unknown): KalamError {
    if (value instanceof KalamError) return value;
    if (value && typeof value === 'object' && typeof (value as KalamErrorInit).code === 'string'
      && typeof (value as KalamErrorInit).message === 'string') {
      return new KalamError(value as KalamErrorInit);
    }
    if (value instanceof Error) {
      if (value.name === 'AbortError') return new KalamError({ code: ErrorCode.ABORTED, message: value.message });
      return new KalamError({ code: ErrorCode.PROTOCOL, message: value.message });
    }
    return new KalamError({ code: ErrorCode.PROTOCOL, message: String(value) });
  }

  toJSON(): KalamErrorInit & { name: string } {
    return { name: this.name, code: this.code, message: this.message, status: this.status, retryable: this.retryable, details: this.details };
  }
}

/** Calls `fn`, rethrowing anything it throws as a KalamError. */
export async function rethrowAsKalamError<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw KalamError.from(err);
  }
}
