// Browser side of the live e2e tests: drives a LiveManager from the built package and
// records what its callbacks saw. Runs on a page (window.H) or in a dedicated worker.
import '/client/index.js'; // sets where the .wasm is
import { LiveManager } from '/client/live.js';
import { KalamError } from '/client/errors.js';
import { createClient, Auth } from '/client/index.js';

async function login(url, user, password) {
  const res = await fetch(`${url}/v1/api/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password }),
  });
  const body = await res.json();
  if (!res.ok) throw new KalamError({ code: body.error ?? 'HTTP_ERROR', message: body.message ?? `login failed (${res.status})`, status: res.status, retryable: res.status >= 500 });
  return body.access_token;
}

const plain = (row) => Object.fromEntries(Object.entries(row).map(([k, cell]) => [k, cell.toJson()]));
const errorInfo = (e) => ({ code: e.code, message: e.message, fatal: e.fatal, isKalamError: e instanceof KalamError, isError: e instanceof Error, subscriptionId: e.subscription_id });

export class Harness {
  constructor() {
    this.recs = new Map();
    this.tokenCalls = [];
    this.sockets = 0;
    this.states = [];
    this.stateLog = [];
    this.connErrors = [];
    this.connects = 0;
    this.disconnects = 0;
    this.disconnectReasons = [];
  }

  /**
   * `options.client: true`: the full app client (`createClient`, Basic credentials, its own
   * HTTP SQL path for self-verification) instead of a bare LiveManager.
   */
  async init({ url, user, password, options = {} }) {
    const self = this;
    const Base = globalThis.WebSocket;
    class CountingWebSocket extends Base {
      constructor(...args) {
        super(...args);
        self.sockets += 1;
      }
    }
    if (options.client) {
      const { client: _, ...rest } = options;
      this.manager = createClient({
        url,
        authProvider: async () => Auth.basic(user, password),
        WebSocket: CountingWebSocket,
        reconnect: { initialDelayMs: 300, maxDelayMs: 2000 },
        ...rest,
        onConnectionStateChange: (s) => { this.states.push(s.state); this.stateLog.push({ state: s.state, at: Date.now() }); },
        onConnect: () => { this.connects += 1; },
        onDisconnect: (r) => { this.disconnects += 1; this.disconnectReasons.push(r); },
        onConnectionError: (e) => this.connErrors.push({ ...errorInfo(e), recoverable: e.recoverable, at: Date.now() }),
      });
      return true;
    }
    let cached = null;
    this.manager = new LiveManager({
      url,
      getToken: async (force) => {
        this.tokenCalls.push(force);
        if (!cached || force) cached = await login(url, user, password);
        return cached;
      },
      WebSocket: CountingWebSocket,
      reconnect: { initialDelayMs: 300, maxDelayMs: 2000 },
      // The app's HTTP SQL path for the self-verification checksums (same user).
      runSql: async (sql) => {
        cached ??= await login(url, user, password);
        const res = await fetch(`${url}/v1/api/sql`, {
          method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${cached}` }, body: JSON.stringify({ sql }),
        });
        return res.text();
      },
      ...options,
      onStateChange: (s) => { this.states.push(s.state); this.stateLog.push({ state: s.state, at: Date.now() }); },
      onConnect: () => { this.connects += 1; },
      onDisconnect: (r) => { this.disconnects += 1; this.disconnectReasons.push(r); },
      onConnectionError: (e) => this.connErrors.push({ ...errorInfo(e), recoverable: e.recoverable }),
    });
    return true;
  }

  /** Subscribes with live(); `name` labels the record. Returns the subscription id. */
  async live(name, sql, opts = {}) {
    const rec = {
      kind: 'rows', calls: 0, initialCalls: 0, emptyBeforeInitial: 0, resyncs: 0, dupCallbacks: 0, orderViolations: 0,
      inserted: 0, updated: 0, removed: 0, errors: [], checkpoints: 0, lastCheckpoint: null, last: [], id: null,
      lastChange: null,
    };
    this.recs.set(name, rec);
    const unsub = await this.manager.live(sql, (rows, change) => {
      rec.calls += 1;
      if (change.initial) rec.initialCalls += 1;
      else if (rec.initialCalls === 0) rec.emptyBeforeInitial += 1;
      if (change.resync) rec.resyncs += 1;
      rec.inserted += change.inserted.length;
      rec.updated += change.updated.length;
      rec.removed += change.removed.length;
      const ids = rows.map((r) => r.id.toJson());
      if (new Set(ids).size !== ids.length) rec.dupCallbacks += 1;
      if (rows.length !== change.rowMap.size) rec.orderViolations += 1;
      rec.last = rows;
      rec.lastChange = { initial: change.initial, resync: change.resync, inserted: change.inserted.length, updated: change.updated.length, removed: change.removed.length, subscriptionId: change.subscriptionId };
    }, {
      ...opts,
      onError: (e) => rec.errors.push(errorInfo(e)),
      onCheckpoint: ({ subscriptionId, lastSeqId }) => {
        rec.checkpoints += 1;
        rec.lastCheckpoint = lastSeqId.toString();
        rec.checkpointSub = subscriptionId;
      },
    });
    rec.unsub = unsub;
    rec.id = this.manager.getSubscriptions().at(-1)?.id ?? null;
    return rec.id;
  }

  async liveEvents(name, sql, opts = {}) {
    const rec = { kind: 'events', events: [], errors: [], checkpoints: 0, lastCheckpoint: null };
    this.recs.set(name, rec);
    rec.unsub = await this.manager.liveEvents(sql, (ev) => {
      rec.events.push({ type: ev.type, change_type: ev.change_type, rows: ev.rows?.length, old: ev.old_values?.length, batch: ev.batch_control ?? null, first: ev.rows?.[0] ?? ev.old_values?.[0] ?? null });
    }, {
      ...opts,
      onError: (e) => rec.errors.push(errorInfo(e)),
      onCheckpoint: ({ lastSeqId }) => {
        rec.checkpoints += 1;
        rec.lastCheckpoint = lastSeqId.toString();
      },
    });
    return true;
  }

  /** What a subscription's callbacks saw; `rows: true` adds the current rows as plain objects. */
  stats(name, { rows = false } = {}) {
    const rec = this.recs.get(name);
    if (!rec) return null;
    const { unsub, last, ...rest } = rec;
    return { ...rest, rowCount: last?.length ?? 0, rows: rows && last ? last.map(plain) : undefined };
  }

  async unsubscribe(name) {
    await this.recs.get(name).unsub();
    return true;
  }

  async unsubscribeTwice(name) {
    const u = this.recs.get(name).unsub;
    await u();
    await u();
    return true;
  }

  async connect() {
    await this.manager.connect();
    return true;
  }

  async disconnect() {
    await this.manager.disconnect();
    return true;
  }

  async shutdown() {
    await this.manager.shutdown();
    return true;
  }

  info() {
    return {
      state: this.manager.state, connected: this.manager.isConnected(), sockets: this.sockets, tokenCalls: this.tokenCalls,
      states: this.states, stateLog: this.stateLog, connErrors: this.connErrors, connects: this.connects, disconnects: this.disconnects, disconnectReasons: this.disconnectReasons,
      subscriptions: this.manager.getSubscriptions().map((s) => ({ ...s, lastSeqId: s.lastSeqId?.toString() ?? null, createdAt: undefined })),
    };
  }

  /** Calls `online` etc. the way the page would. */
  dispatch(event) {
    globalThis.dispatchEvent(new Event(event));
    return true;
  }

  async liveError(sql, opts = {}) {
    try {
      await this.manager.live(sql, () => {}, opts);
      return null;
    } catch (e) {
      return errorInfo(e);
    }
  }
}
