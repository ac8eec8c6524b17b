// Topic consumption for workers: consumeBatch/ack (request/response in Rust), a stoppable
// run loop with batched acks, and runConsumer with per-message retries.
//
// Delivery is at-least-once: a message is acked only after it was processed (or given up
// on with ackOnFailed), and acks only ever cover a contiguous processed prefix of each
// partition. A worker that dies before acking gets its messages redelivered once the
// server's visibility timeout expires. Handlers must therefore be idempotent.
import { AckTracker } from './wasm/kalam_wasm.js';
import { KalamError } from './errors.js';
import { HttpClientBase, type HttpClientOptions, type RequestOptions, type SqlValue, type QueryResponse } from './http.js';
import type { RowData } from './cells.js';

/** Where a group starts reading when it has no committed offset. */
export type ConsumeStart = 'latest' | 'earliest' | 'Latest' | 'Earliest' | number | bigint | string | { offset: number | bigint | string } | { Offset: number | bigint | string };

export interface ConsumeRequest {
  topic: string;
  group_id: string;
  start?: ConsumeStart;
  /** Max messages per poll (default 10). */
  batch_size?: number;
  partition_id?: number;
  timeout_seconds?: number;
  /** `run()` only: ack each message after the handler returns unless it acked itself (default true). */
  auto_ack?: boolean;
  signal?: AbortSignal;
}

export interface ConsumeMessage {
  topic: string;
  group_id: string;
  partition_id: number;
  /** Offset within the partition (exact below 2^53; `offset_exact` is always exact). */
  offset: number;
  offset_exact: string;
  /** The row the message was produced from (decoded from base64 JSON in Rust). */
  payload: unknown;
  /** @deprecated alias of `payload` kept for code written for @kalamdb/consumer. */
  value: unknown;
  key?: string;
  op?: 'Insert' | 'Update' | 'Delete' | string;
  timestamp_ms?: number;
  user?: string;
}

export interface ConsumeResponse {
  messages: ConsumeMessage[];
  next_offset: number;
  next_offset_exact: string;
  has_more: boolean;
}

export interface AckResponse {
  success: boolean;
  acknowledged_offset: string;
}

export interface ConnectionInfo {
  url: string;
  /** `worker` in a dedicated/shared/service worker, `window` on a page, `node` in Node. */
  runtime: 'worker' | 'window' | 'node' | 'unknown';
  at: Date;
}

export interface ConsumerConnectionError {
  error: KalamError;
  message: string;
  recoverable: boolean;
  at: Date;
}

export interface ConsumerClientOptions extends HttpClientOptions {
  /** After the first successful topic request (and again after recovering from errors). */
  onConnect?: (info: ConnectionInfo) => void;
  /** When a topic request fails (the run loops keep retrying while `recoverable`). */
  onConnectionError?: (error: ConsumerConnectionError) => void;
}

export interface ConsumeContext {
  user?: string;
  message: ConsumeMessage;
  /** Marks the message processed; the ack itself is batched per poll. */
  ack(): Promise<void>;
}

export type ConsumerHandler = (ctx: ConsumeContext) => void | Promise<void>;

export interface ConsumerHandle {
  /** Runs until `stop()` (or the signal given to consumer()) ; resolves when stopped. */
  run(handler: ConsumerHandler): Promise<void>;
  /** Stops the loop, interrupting an in-flight poll; pending processed acks are flushed. */
  stop(): void;
}

function runtime(): ConnectionInfo['runtime'] {
  const g = globalThis as Record<string, unknown>;
  if (typeof g.WorkerGlobalScope === 'function') return 'worker';
  if (typeof g.document === 'object') return 'window';
  if (typeof (g.process as { versions?: { node?: string } } | undefined)?.versions?.node === 'string') return 'node';
  return 'unknown';
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

// Offsets travel as digit strings so values above 2^53 stay exact (Rust parses them).
function normaliseStart(start: ConsumeStart | undefined): unknown {
  if (typeof start === 'bigint') return start.toString();
  if (start && typeof start === 'object') return String('offset' in start ? start.offset : start.Offset);
  return start ?? 'latest';
}

export class KalamConsumerClient extends HttpClientBase {
  readonly #onConnect?: (info: ConnectionInfo) => void;
  readonly #onConnectionError?: (error: ConsumerConnectionError) => void;
  #connected = false;
  readonly #running = new Set<AbortController>();

  constructor(options: ConsumerClientOptions) {
    super(options);
    this.#onConnect = options.onConnect;
    this.#onConnectionError = options.onConnectionError;
  }

  #reportOk(): void {
    if (this.#connected) return;
    this.#connected = true;
    this.#onConnect?.({ url: this.options.url, runtime: runtime(), at: new Date() });
  }

  #reportError(err: unknown): KalamError {
    const error = KalamError.from(err);
    if (error.code === 'ABORTED') return error;
    this.#connected = false;
    this.#onConnectionError?.({ error, message: error.message, recoverable: error.retryable, at: new Date() });
    return error;
  }

  /** One poll of one partition; returns at once (the server does not long-poll). */
  async consumeBatch(request: ConsumeRequest): Promise<ConsumeResponse> {
    const core = await this.core();
    const body = JSON.stringify({
      topic: request.topic, group_id: request.group_id, start: normaliseStart(request.start),
      batch_size: request.batch_size, partition_id: request.partition_id, timeout_seconds: request.timeout_seconds,
    });
    try {
      const json = await core.consume(body, request.signal, undefined);
      const batch = JSON.parse(json) as ConsumeResponse;
      for (const m of batch.messages) m.value = m.payload;
      this.#reportOk();
      return batch;
    } catch (err) {
      throw this.#reportError(err);
    }
  }

  /** Commits the group's offset up to and including `uptoOffset` (never regresses). */
  async ack(topic: string, groupId: string, partitionId: number, uptoOffset: number | bigint | string, options?: RequestOptions): Promise<AckResponse>;
  async ack(options: { topic: string; groupId: string; partitionId?: number; uptoOffset: number | bigint | string; signal?: AbortSignal }): Promise<AckResponse>;
  async ack(...args: unknown[]): Promise<AckResponse> {
    const [topic, groupId, partitionId, upto, signal] = typeof args[0] === 'object' && args[0] !== null
      ? (() => {
        const o = args[0] as { topic: string; groupId: string; partitionId?: number; uptoOffset: number | bigint | string; signal?: AbortSignal };
        return [o.topic, o.groupId, o.partitionId ?? 0, o.uptoOffset, o.signal] as const;
      })()
      : [args[0] as string, args[1] as string, (args[2] as number | undefined) ?? 0, args[3] as number | bigint | string,
        (args[4] as RequestOptions | undefined)?.signal] as const;
    const core = await this.core();
    try {
      const json = await core.ack(topic, groupId, partitionId, String(upto), signal, undefined);
      this.#reportOk();
      return JSON.parse(json) as AckResponse;
    } catch (err) {
      throw this.#reportError(err);
    }
  }

  /** A poll loop over one partition with batched acks. */
  consumer(options: ConsumeRequest & { idleBackoffMs?: number; maxIdleBackoffMs?: number }): ConsumerHandle {
    const controller = new AbortController();
    options.signal?.addEventListener('abort', () => controller.abort(), { once: true });
    if (options.signal?.aborted) controller.abort();
    return {
      stop: () => controller.abort(),
      run: async (handler) => {
        this.#running.add(controller);
        try {
          await this.#loop(options, controller.signal, async (message, done) => {
            let acked = false;
            await handler({
              user: message.user, message,
              ack: async () => {
                if (!acked) { acked = true; done(); }
              },
            });
            if (!acked && options.auto_ack !== false) done();
          });
        } finally {
          this.#running.delete(controller);
        }
      },
    };
  }

  /**
   * @internal The shared loop: poll, hand each message to `process` (which calls `done`
   * when the message may be acked), then ack the contiguous processed prefix in one request.
   */
  async loop(
    options: ConsumeRequest & { idleBackoffMs?: number; maxIdleBackoffMs?: number },
    signal: AbortSignal,
    process: (message: ConsumeMessage, done: () => void) => Promise<void>,
  ): Promise<void> {
    return this.#loop(options, signal, process);
  }

  async #loop(
    options: ConsumeRequest & { idleBackoffMs?: number; maxIdleBackoffMs?: number },
    signal: AbortSignal,
    process: (message: ConsumeMessage, done: () => void) => Promise<void>,
  ): Promise<void> {
    await this.core(); // AckTracker lives in the wasm module
    const tracker = new AckTracker();
    const partition = options.partition_id ?? 0;
    const idleMin = options.idleBackoffMs ?? 250;
    const idleMax = options.maxIdleBackoffMs ?? 2_000;
    let idle = idleMin;
    let failures = 0;
    const flush = async () => {
      for (const [p, upto] of JSON.parse(tracker.pendingAcks()) as [number, string][]) {
        await this.ack(options.topic, options.group_id, p, upto);
        tracker.acked(p, upto);
      }
    };
    try {
      while (!signal.aborted) {
        let batch: ConsumeResponse;
        try {
          batch = await this.consumeBatch({ ...options, partition_id: partition, signal });
          failures = 0;
        } catch (err) {
          if (signal.aborted) break;
          const error = KalamError.from(err);
          if (!error.retryable && error.code !== 'TOKEN_EXPIRED') throw error;
          failures += 1;
          await pause(Math.min(idleMax * 4, idleMin * 2 ** failures), signal);
          continue;
        }
        if (batch.messages.length === 0) {
          await pause(idle, signal);
          idle = Math.min(idleMax, idle * 2);
          continue;
        }
        idle = idleMin;
        tracker.delivered(partition, batch.messages.map((m) => m.offset_exact));
        const processed: string[] = [];
        for (const message of batch.messages) {
          if (signal.aborted) break;
          await process(message, () => processed.push(message.offset_exact));
        }
        tracker.processed(partition, processed);
        await flush();
        if (!batch.has_more && !signal.aborted) await pause(idleMin, signal);
      }
    } finally {
      // Stopping never loses processed work: its acks still go out.
      await flush().catch((err: unknown) => this.#reportError(err));
    }
  }

  /** Stops every running consumer loop of this client. */
  async disconnect(): Promise<void> {
    for (const c of this.#running) c.abort();
    this.#running.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.disconnect();
  }
}

export function createConsumerClient(options: ConsumerClientOptions): KalamConsumerClient {
  return new KalamConsumerClient(options);
}

export interface RetryOptions {
  maxAttempts?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  multiplier?: number;
  /** 0..1: each backoff is scaled by a random factor in [1 - jitterRatio, 1 + jitterRatio]. */
  jitterRatio?: number;
  shouldRetry?: (error: unknown, attempt: number) => boolean;
}

export interface MessageContext {
  name: string;
  topic: string;
  groupId: string;
  /** `name:topic:partition:offset`: stable across redeliveries (use it for idempotency). */
  runKey: string;
  attempt: number;
  maxAttempts: number;
  message: ConsumeMessage;
  /** The payload row (or its `row` field when the payload wraps one). */
  row: unknown;
  user?: string;
  sql(sql: string, params?: SqlValue[]): Promise<QueryResponse>;
  queryOne(sql: string, params?: SqlValue[]): Promise<RowData | null>;
  queryAll(sql: string, params?: SqlValue[]): Promise<RowData[]>;
  /** Marks the message processed now (otherwise done after onMessage returns). */
  ack(): Promise<void>;
}

export interface RunConsumerOptions {
  client: KalamConsumerClient;
  name: string;
  topic: string;
  groupId: string;
  start?: ConsumeStart;
  batchSize?: number;
  partitionId?: number;
  timeoutSeconds?: number;
  onMessage: (ctx: MessageContext) => void | Promise<void>;
  retry?: RetryOptions;
  onRetry?: (info: { error: unknown; attempt: number; maxAttempts: number; backoffMs: number; runKey: string; message: ConsumeMessage }) => void;
  onFailed?: (ctx: MessageContext & { error: unknown }) => void | Promise<void>;
  /** Ack a message whose retries are exhausted (default true); false leaves it for redelivery. */
  ackOnFailed?: boolean;
  onError?: (info: { error: unknown; runKey?: string; message?: ConsumeMessage }) => void;
  stopSignal?: AbortSignal;
}

/**
 * Runs `onMessage` for every message of `topic` in group `groupId` until `stopSignal`
 * aborts. A throwing handler never stops the loop: the message is retried with backoff,
 * then handed to `onFailed`.
 */
export async function runConsumer(options: RunConsumerOptions): Promise<void> {
  const { client, name, topic, groupId } = options;
  const retry = {
    maxAttempts: Math.max(1, options.retry?.maxAttempts ?? 3),
    initialBackoffMs: options.retry?.initialBackoffMs ?? 300,
    maxBackoffMs: options.retry?.maxBackoffMs ?? 5_000,
    multiplier: options.retry?.multiplier ?? 2,
    jitterRatio: Math.min(1, Math.max(0, options.retry?.jitterRatio ?? 0)),
    shouldRetry: options.retry?.shouldRetry ?? (() => true),
  };
  const controller = new AbortController();
  const stop = () => controller.abort();
  options.stopSignal?.addEventListener('abort', stop, { once: true });
  if (options.stopSignal?.aborted) stop();
  const ackOnFailed = options.ackOnFailed ?? true;
  try {
    await client.loop({
      topic, group_id: groupId, start: options.start ?? 'latest', batch_size: options.batchSize ?? 20,
      partition_id: options.partitionId ?? 0, timeout_seconds: options.timeoutSeconds,
    }, controller.signal, async (message, done) => {
      const runKey = `${name}:${topic}:${message.partition_id}:${message.offset_exact}`;
      const payload = message.payload as { row?: unknown } | null;
      let acked = false;
      const markDone = () => { if (!acked) { acked = true; done(); } };
      for (let attempt = 1; attempt <= retry.maxAttempts; attempt++) {
        const ctx: MessageContext = {
          name, topic, groupId, runKey, attempt, maxAttempts: retry.maxAttempts, message,
          row: payload && typeof payload === 'object' && 'row' in payload ? payload.row : message.payload,
          user: message.user,
          sql: (sql, params) => client.query(sql, params),
          queryOne: (sql, params) => client.queryOne(sql, params),
          queryAll: (sql, params) => client.queryAll(sql, params),
          ack: async () => markDone(),
        };
        try {
          await options.onMessage(ctx);
          markDone();
          return;
        } catch (error) {
          const last = attempt >= retry.maxAttempts || !retry.shouldRetry(error, attempt) || controller.signal.aborted;
          if (!last) {
            const base = Math.min(retry.maxBackoffMs, retry.initialBackoffMs * retry.multiplier ** (attempt - 1));
            const backoffMs = Math.round(base * (1 + retry.jitterRatio * (Math.random() * 2 - 1)));
            options.onRetry?.({ error, attempt, maxAttempts: retry.maxAttempts, backoffMs, runKey, message });
            await pause(backoffMs, controller.signal);
            continue;
          }
          try {
            await options.onFailed?.({ ...ctx, error });
          } catch (hookError) {
            options.onError?.({ error: hookError, runKey, message });
          }
          if (ackOnFailed) markDone();
          return;
        }
      }
    });
  } catch (error) {
    options.onError?.({ error });
    throw KalamError.from(error);
  } finally {
    options.stopSignal?.removeEventListener('abort', stop);
  }
}

