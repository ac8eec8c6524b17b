// Topic consumption for workers: consumeBatch/ack (request/response in Rust), a stoppable
// run loop over every partition, and runConsumer with per-message retries.
//
// Delivery is at-least-once and no offset is ever committed before its handler succeeded.
// Acks are cumulative and drop other consumers' claims (PROTOCOL.md §12.4), so which offsets
// may be acked, when to probe the committed offset and which redeliveries to skip is decided
// by the Rust ledger (core/topics.rs); this file only moves data, sleeps and calls handlers.
import { ConsumerLedger } from './wasm/kalam_wasm.js';
import { callCore } from './wasm-loader.js';
import { ErrorCode, KalamError } from './errors.js';
import { HttpClientBase, LogLevel, type HttpClientOptions, type RequestOptions, type SqlValue, type QueryResponse } from './http.js';
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

/** Options of the run loops (`consumer()`, `runConsumer`) beyond one poll. */
export interface LoopOptions {
  /** Partition count to consume (0..n-1) when no single `partition_id` is given. */
  partitions?: number;
  /**
   * At least the server's `[topics] visibility_timeout_secs` (default 60 s). Used only when
   * the server does not report committed offsets to probes: then acks past offsets this
   * consumer did not process wait this long (see the README's delivery guarantees).
   */
  visibilityTimeoutMs?: number;
  idleBackoffMs?: number;
  maxIdleBackoffMs?: number;
  /** Backoff of failed polls and acks (capped, jittered; retried until stopped). */
  transportRetry?: { initialBackoffMs?: number; maxBackoffMs?: number; jitterRatio?: number };
  /** Every transport failure of the loop (it keeps retrying) and every non-fatal problem. */
  onTransportError?: (info: TransportErrorInfo) => void;
}

export interface TransportErrorInfo {
  error: KalamError;
  operation: 'consume' | 'ack' | 'probe' | 'partitions';
  partitionId?: number;
  /** Consecutive failures of this kind; the loop retries after `retryInMs`. */
  attempt: number;
  retryInMs: number;
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

const STOPPED = Symbol('stopped');

/** `promise`, or STOPPED at once when `signal` aborts (the request may finish unobserved). */
function untilStopped<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | typeof STOPPED> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.resolve(STOPPED);
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(STOPPED);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      (e: unknown) => { signal.removeEventListener('abort', onAbort); if (signal.aborted) resolve(STOPPED); else reject(e); },
    );
  });
}

/** Failures worth retrying forever in a loop: the network, timeouts, 5xx, rate limits, auth renewal. */
function transient(error: KalamError): boolean {
  return error.retryable || error.code === 'NETWORK' || error.code === 'TIMEOUT' || error.code === 'TOKEN_EXPIRED'
    || (error.status ?? 0) >= 500 || error.code === 'PROTOCOL';
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
  readonly #ledgers = new Map<string, ConsumerLedger>();
  readonly #ledgersInUse = new Set<string>();

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
    const options = {
      topic: request.topic, group_id: request.group_id, start: normaliseStart(request.start),
      batch_size: request.batch_size, partition_id: request.partition_id, timeout_seconds: request.timeout_seconds,
      probe: (request as { probe?: boolean }).probe === true ? true : undefined,
    };
    try {
      const json = await this.run('consume', options, { signal: request.signal });
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
    try {
      const json = await this.run('ack', { topic, groupId, partitionId, upto: String(upto) }, { signal });
      this.#reportOk();
      return JSON.parse(json) as AckResponse;
    } catch (err) {
      throw this.#reportError(err);
    }
  }

  /**
   * A poll loop with batched acks: one partition (`partition_id`, default 0) or `partitions`
   * of them. The handler's message is acked when it returns (or calls `ack()`, or never with
   * `auto_ack: false` unless it calls `ack()`).
   */
  consumer(options: ConsumeRequest & LoopOptions): ConsumerHandle {
    const controller = new AbortController();
    options.signal?.addEventListener('abort', () => controller.abort(), { once: true });
    if (options.signal?.aborted) controller.abort();
    return {
      stop: () => controller.abort(),
      run: async (handler) => {
        this.#running.add(controller);
        try {
          const partitions = options.partitions === undefined || options.partition_id !== undefined
            ? [options.partition_id ?? 0]
            : await this.#partitions(options.topic, options, controller.signal);
          await this.#loop({ ...options, partitionIds: partitions }, controller.signal, async (message, done) => {
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
   * @internal The shared loop: poll each partition in turn, hand new messages to `process`
   * (which calls `done` once the message may be acked), then send what the ledger allows.
   */
  async loop(
    options: ConsumeRequest & LoopOptions & { partitionIds: number[] },
    signal: AbortSignal,
    process: (message: ConsumeMessage, done: () => void) => Promise<void>,
  ): Promise<void> {
    return this.#loop(options, signal, process);
  }

  /** @internal Lets `disconnect()` stop a run loop of this client; returns the untrack. */
  track(controller: AbortController): () => void {
    this.#running.add(controller);
    return () => this.#running.delete(controller);
  }

  /** @internal The partitions to consume: `partitions`, else `system.topics` (dba/system). */
  async partitionsOf(topic: string, options: LoopOptions, signal: AbortSignal): Promise<number[]> {
    return this.#partitions(topic, options, signal);
  }

  async #partitions(topic: string, options: LoopOptions, signal: AbortSignal): Promise<number[]> {
    const count = (n: number) => Array.from({ length: n }, (_, i) => i);
    if (options.partitions !== undefined) {
      if (!Number.isInteger(options.partitions) || options.partitions < 1) {
        throw new KalamError({ code: ErrorCode.INVALID_ARGUMENT, message: `partitions must be a positive integer, got ${String(options.partitions)}` });
      }
      return count(options.partitions);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.query('SELECT topic_id, partitions FROM system.topics WHERE topic_id = $1', [topic], { signal });
        const r = result.results[0];
        const at = (name: string) => r?.schema?.findIndex((f) => f.name === name) ?? -1;
        const row = r?.rows?.find((cells) => cells[at('topic_id')] === topic);
        const n = Number(row?.[at('partitions')]);
        if (Number.isInteger(n) && n >= 1) return count(n);
        throw new KalamError({ code: 'NOT_FOUND', message: `Topic '${topic}' is not in system.topics` });
      } catch (err) {
        const error = KalamError.from(err);
        if (signal.aborted) return [0];
        if (!transient(error)) {
          // A service role cannot read system tables: say so (onError and the log), and
          // consume partition 0.
          const warning = new KalamError({
            code: ErrorCode.INVALID_ARGUMENT,
            message: `could not read the partition count of ${topic} (${error.code}: ${error.message}); consuming partition 0 only: pass partitions (or partitionId)`,
          });
          this.log(LogLevel.Warn, 'consumer', warning.message);
          options.onTransportError?.({ error: warning, operation: 'partitions', attempt, retryInMs: 0 });
          return [0];
        }
        const retryInMs = this.#transportDelay(options, attempt);
        options.onTransportError?.({ error, operation: 'partitions', attempt, retryInMs });
        await pause(retryInMs, signal);
      }
    }
  }

  #transportDelay(options: LoopOptions, attempt: number): number {
    const r = options.transportRetry;
    return callCore<number>('backoffMs', attempt, r?.initialBackoffMs ?? 250, r?.maxBackoffMs ?? 5_000, 2, r?.jitterRatio ?? 0.3, Math.random());
  }

  /** One ledger per (topic, group, start) and client, kept across runs; a second concurrent run gets its own. */
  #ledger(topic: string, group: string, start: unknown, visibilityMs: number): { ledger: ConsumerLedger; release: () => void } {
    const key = JSON.stringify([topic, group, start, visibilityMs]);
    const shared = this.#ledgers.get(key);
    if (shared && !this.#ledgersInUse.has(key)) {
      this.#ledgersInUse.add(key);
      return { ledger: shared, release: () => this.#ledgersInUse.delete(key) };
    }
    const ledger = new ConsumerLedger(JSON.stringify(start), visibilityMs);
    if (shared) return { ledger, release: () => ledger.free() };
    this.#ledgers.set(key, ledger);
    this.#ledgersInUse.add(key);
    return { ledger, release: () => this.#ledgersInUse.delete(key) };
  }

  async #loop(
    options: ConsumeRequest & LoopOptions & { partitionIds: number[] },
    signal: AbortSignal,
    process: (message: ConsumeMessage, done: () => void) => Promise<void>,
  ): Promise<void> {
    await this.core(); // the ledger lives in the wasm module
    const start = normaliseStart(options.start);
    const visibilityMs = options.visibilityTimeoutMs ?? 60_000;
    const { ledger, release } = this.#ledger(options.topic, options.group_id, start, visibilityMs);
    // One ledger call (`ConsumerLedger.apply`: see its ops in src/shell/consumer_ledger.rs).
    const led = <T = undefined>(op: string, ...args: unknown[]) => ledger.apply(op, args) as T;
    const partitions = options.partitionIds.length ? options.partitionIds : [0];
    const idleMin = options.idleBackoffMs ?? 250;
    const idleMax = options.maxIdleBackoffMs ?? 2_000;
    const failures = { consume: 0, ack: 0, probe: 0 };
    const report = (operation: 'consume' | 'ack' | 'probe', err: unknown, partitionId: number): number => {
      const error = KalamError.from(err);
      if (!transient(error)) throw error;
      failures[operation] += 1;
      const retryInMs = this.#transportDelay(options, failures[operation]);
      options.onTransportError?.({ error, operation, partitionId, attempt: failures[operation], retryInMs });
      return retryInMs;
    };
    const poll = (p: number, probe: boolean, sig: AbortSignal) => this.consumeBatch({
      topic: options.topic, group_id: options.group_id, start: JSON.parse(led<string>('pollStart', p)) as ConsumeStart,
      batch_size: options.batch_size, partition_id: p, timeout_seconds: options.timeout_seconds, signal: sig,
      ...(probe ? { probe: true } : {}),
    } as ConsumeRequest);
    // Sends the acks the ledger allows and the probes it asks for (a few rounds: a probe
    // can release an ack). Failures stay in the ledger and are retried on the next round.
    const settle = async (sig: AbortSignal): Promise<number> => {
      let wait = 0;
      for (let round = 0; round < 3 && !sig.aborted; round++) {
        const steps = JSON.parse(led<string>('steps', Date.now())) as ([number, 'ack', string] | [number, 'probe'])[];
        if (!steps.length) break;
        for (const step of steps) {
          const p = step[0];
          if (step[1] === 'ack') {
            const upto = step[2];
            try {
              const done = await untilStopped(this.ack(options.topic, options.group_id, p, upto, { signal: sig }), sig);
              if (done === STOPPED) return wait;
              led('acked', p, upto);
              failures.ack = 0;
            } catch (err) {
              wait = Math.max(wait, report('ack', err, p));
              return wait;
            }
          } else {
            const sent = Date.now();
            try {
              const answer = await untilStopped(poll(p, true, sig), sig);
              if (answer === STOPPED) return wait;
              failures.probe = 0;
              if (answer.messages.length) {
                // The server ignored limit 0 and claimed messages: they wait for redelivery.
                const offsets = answer.messages.map((m) => m.offset_exact);
                led('delivered', p, answer.next_offset_exact, sent, ...offsets);
                led('abandon', p, ...offsets);
                led('probed', p, Date.now());
              } else {
                led('probed', p, Date.now(), answer.next_offset_exact);
              }
            } catch (err) {
              const error = KalamError.from(err);
              if (transient(error)) {
                led('probeRetryLater', p, Date.now());
                wait = Math.max(wait, report('probe', error, p));
                return wait;
              }
              led('probed', p, Date.now()); // refused (e.g. limit 0 rejected): time rule
            }
          }
        }
      }
      return wait;
    };
    let idle = idleMin;
    try {
      while (!signal.aborted) {
        let delivered = false;
        let wait = 0;
        for (const p of partitions) {
          if (signal.aborted) break;
          const sent = Date.now();
          let batch: ConsumeResponse;
          try {
            const answer = await untilStopped(poll(p, false, signal), signal);
            if (answer === STOPPED) break;
            batch = answer;
            failures.consume = 0;
          } catch (err) {
            led('pollFailed', p, sent);
            wait = Math.max(wait, report('consume', err, p));
            continue;
          }
          const offsets = batch.messages.map((m) => m.offset_exact);
          const hand = led<string>('delivered', p, batch.next_offset_exact, sent, ...offsets);
          if (batch.messages.length) delivered = true;
          for (let i = 0; i < batch.messages.length && !signal.aborted; i++) {
            if (hand[i] !== '1') continue; // committed, or processed here already: a redelivery
            const message = batch.messages[i];
            let finished = false;
            await process(message, () => {
              if (!finished) { finished = true; led('processed', p, message.offset_exact); }
            });
            if (!finished) led('abandon', p, message.offset_exact);
          }
          wait = Math.max(wait, await settle(signal));
        }
        if (signal.aborted) break;
        if (wait > 0) {
          await pause(wait, signal);
        } else if (!delivered) {
          // Caught up (or acks held): poll again later, sooner while acks wait for a probe.
          await pause(led<boolean>('holding', Date.now()) ? Math.min(idle, idleMin) : idle, signal);
          idle = Math.min(idleMax, idle * 2);
        } else {
          idle = idleMin;
        }
      }
    } finally {
      // Unfinished messages are left for redelivery; processed ones are acked now if the
      // ledger allows it (one bounded attempt), else by this client's next run.
      led('abandonUnfinished');
      const flush = new AbortController();
      const timer = setTimeout(() => flush.abort(), 1_000);
      await settle(flush.signal).catch(() => 0);
      clearTimeout(timer);
      release();
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
  /** Aborts when the consumer is stopped (a handler may give up early; it is then redelivered). */
  signal: AbortSignal;
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
  /** One partition only; default: every partition of the topic. */
  partitionId?: number;
  /** The topic's partition count (default: read from `system.topics`, which needs dba or system). */
  partitions?: number;
  timeoutSeconds?: number;
  /** At least the server's topic visibility timeout (default 60 s); see the README. */
  visibilityTimeoutMs?: number;
  onMessage: (ctx: MessageContext) => void | Promise<void>;
  retry?: RetryOptions;
  onRetry?: (info: { error: unknown; attempt: number; maxAttempts: number; backoffMs: number; runKey: string; message: ConsumeMessage }) => void;
  onFailed?: (ctx: MessageContext & { error: unknown }) => void | Promise<void>;
  /** Ack a message whose retries are exhausted (default true); false leaves it for redelivery. */
  ackOnFailed?: boolean;
  /**
   * Failed hooks, transport failures of polls and acks (`operation`, `retryInMs`: the loop
   * keeps retrying), and the error that ended the loop (also thrown).
   */
  onError?: (info: { error: unknown; runKey?: string; message?: ConsumeMessage; operation?: TransportErrorInfo['operation']; partitionId?: number; retryInMs?: number }) => void;
  /** Backoff of failed polls and acks (default 250 ms doubling to 5 s, ±30 %). */
  transportRetry?: LoopOptions['transportRetry'];
  stopSignal?: AbortSignal;
}

/**
 * Runs `onMessage` for every message of `topic` in group `groupId` (every partition) until
 * `stopSignal` aborts. A throwing handler never stops the loop: the message is retried with
 * backoff, then handed to `onFailed`. Network failures never stop it either: polls and acks
 * are retried until stopped. A stop is not a failure: an interrupted message is redelivered.
 */
export async function runConsumer(options: RunConsumerOptions): Promise<void> {
  const { client, name, topic, groupId } = options;
  const retry = {
    maxAttempts: Math.max(1, options.retry?.maxAttempts ?? 3),
    initialBackoffMs: options.retry?.initialBackoffMs ?? 300,
    maxBackoffMs: options.retry?.maxBackoffMs ?? 5_000,
    multiplier: options.retry?.multiplier ?? 2,
    jitterRatio: options.retry?.jitterRatio ?? 0,
    shouldRetry: options.retry?.shouldRetry ?? (() => true),
  };
  const controller = new AbortController();
  const stop = () => controller.abort();
  options.stopSignal?.addEventListener('abort', stop, { once: true });
  if (options.stopSignal?.aborted) stop();
  const signal = controller.signal;
  const untrack = client.track(controller);
  const ackOnFailed = options.ackOnFailed ?? true;
  const loopOptions: LoopOptions = {
    partitions: options.partitions, visibilityTimeoutMs: options.visibilityTimeoutMs, transportRetry: options.transportRetry,
    onTransportError: (info) => options.onError?.({ error: info.error, operation: info.operation, partitionId: info.partitionId, retryInMs: info.retryInMs }),
  };
  try {
    const partitionIds = options.partitionId !== undefined
      ? [options.partitionId]
      : await client.partitionsOf(topic, loopOptions, signal);
    await client.loop({
      topic, group_id: groupId, start: options.start ?? 'latest', batch_size: options.batchSize ?? 20,
      timeout_seconds: options.timeoutSeconds, partitionIds, ...loopOptions,
    }, signal, async (message, done) => {
      const runKey = `${name}:${topic}:${message.partition_id}:${message.offset_exact}`;
      const payload = message.payload as { row?: unknown } | null;
      let acked = false;
      const markDone = () => { if (!acked) { acked = true; done(); } };
      for (let attempt = 1; attempt <= retry.maxAttempts; attempt++) {
        const ctx: MessageContext = {
          name, topic, groupId, runKey, attempt, maxAttempts: retry.maxAttempts, message, signal,
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
          // Stopped while it ran: not a failure; the message is left for redelivery.
          if (signal.aborted) return;
          const last = attempt >= retry.maxAttempts || !retry.shouldRetry(error, attempt);
          if (!last) {
            const delay = callCore<number>('backoffMs', attempt, retry.initialBackoffMs, retry.maxBackoffMs, retry.multiplier, retry.jitterRatio, Math.random());
            options.onRetry?.({ error, attempt, maxAttempts: retry.maxAttempts, backoffMs: delay, runKey, message });
            await pause(delay, signal);
            if (signal.aborted) return; // a stop during the backoff is not a failed attempt
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
    untrack();
    options.stopSignal?.removeEventListener('abort', stop);
  }
}
