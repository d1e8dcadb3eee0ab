// db.js: the public API: openSyncDB() and SyncDB. Validation, local writes
// (through the local store), subscribers, events and status; the tabs and
// leadership (tabs.js); the leader's sync engine (sync.js), which sees this
// database only through the SyncHost built here.

import { ZooSyncError, errorInfo, errorFromInfo } from './errors.js';
import {
  STORE_RE, DEFAULT_MAX_VALUE_BYTES, MAX_MUTATIONS_PER_PUSH, DEFAULT_MAX_TX_BYTES, DEFAULT_ROOT,
  checkKey, checkPrefix, toJSONText, utf8Length, txBytes,
} from './protocol.js';
import { openIDB, deleteIDB, newGroupId } from './schema.js';
import { LocalStore, destroyBegun } from './local.js';
import { Syncer } from './sync.js';
import { TabChannel, Leadership, listenPage } from './tabs.js';
import { Emitter, clone, sleep } from './util.js';

/** @typedef {import('../zoosync.d.ts').SyncDBOptions} SyncDBOptions */
/** @typedef {import('../zoosync.d.ts').Status} Status */
/** @typedef {import('../zoosync.d.ts').Change} Change */
/** @typedef {import('../zoosync.d.ts').ConflictEvent} ConflictEvent */
/** @typedef {import('../zoosync.d.ts').RangeQuery} RangeQuery */
/** @typedef {import('../zoosync.d.ts').Transaction} Transaction */
/** @typedef {import('./local.js').WriteOp} WriteOp */
/** @typedef {import('./tabs.js').TabMessage} TabMessage */
/** @typedef {import('./sync.js').SyncHost} SyncHost */

/**
 * Opens (creating if needed) a synced database.
 * @param {SyncDBOptions} opts
 * @returns {Promise<SyncDB>}
 */
export async function openSyncDB(opts) {
  if (!opts || typeof opts.name !== 'string' || !opts.name) throw new ZooSyncError('bad_request', 'name: required');
  const stores = opts.stores || [];
  if (!Array.isArray(stores) || stores.length === 0) throw new ZooSyncError('bad_request', 'stores: at least one store');
  const seen = new Set();
  for (const s of stores) {
    const name = s && typeof s === 'object' ? s.name : s;
    if (typeof name !== 'string' || !STORE_RE.test(name)) throw new ZooSyncError('invalid_store', `stores: ${JSON.stringify(name)} is not a valid store name`);
    if (seen.has(name)) throw new ZooSyncError('bad_request', `stores: ${name} is given twice`);
    seen.add(name);
    if (s && typeof s === 'object') {
      for (const f of Object.keys(s)) if (f !== 'name' && f !== 'prefix') throw new ZooSyncError('bad_request', `stores: ${name}: unknown field ${JSON.stringify(f)}`);
      if (s.prefix !== undefined) checkPrefix(name, s.prefix);
    }
  }
  const factory = opts.indexedDB || globalThis.indexedDB;
  if (!factory) throw new ZooSyncError('unsupported', 'IndexedDB is not available');
  if (!globalThis.crypto || typeof globalThis.crypto.getRandomValues !== 'function') {
    // Browsers and Node 19+ have it; on Node 18: globalThis.crypto = (await import('node:crypto')).webcrypto
    throw new ZooSyncError('unsupported', 'Web Crypto (globalThis.crypto.getRandomValues) is not available');
  }
  let idb = await openIDB(factory, opts.name);
  if (await destroyBegun(idb)) { // a destroy() that did not finish (the page closed): finish it
    idb.close();
    await deleteIDB(factory, opts.name);
    idb = await openIDB(factory, opts.name);
  }
  const db = new SyncDB(idb, opts);
  await db._init();
  return db;
}

export class SyncDB {
  /** @param {IDBDatabase} idb @param {SyncDBOptions} opts */
  constructor(idb, opts) {
    /** @private */ this._opts = opts;
    /** @private */ this._local = new LocalStore(idb, (ev) => this._onVersionChange(ev));
    /** @type {string} */
    this.name = opts.name;
    /** @type {string[]} */
    this.stores = opts.stores.map((s) => (typeof s === 'string' ? s : s.name));
    /** @private @type {Map<string, string>} partial replication: the key prefix a store mirrors */
    this._prefix = new Map();
    for (const s of opts.stores) if (typeof s === 'object' && s.prefix) this._prefix.set(s.name, s.prefix);
    /** @private @type {string[]} */
    this._urls = (Array.isArray(opts.url) ? opts.url : opts.url ? [opts.url] : []).map((u) => String(u).replace(/\/+$/, ''));
    /** @private */ this._em = new Emitter();
    /** @private @type {Map<string, Set<(changes: Change[]) => void>>} */
    this._subs = new Map();
    /** @private */ this._closed = false;
    /** @private the page is hidden or frozen (pagehide, freeze) and not shown again since */
    this._hidden = false;
    /** @private @type {Promise<void>|null} */
    this._closing = null;
    /** @private */ this._paused = !!opts.offline;
    /** @type {Syncer|null} the sync engine while this tab leads (tests look at it) */
    this._syncer = null;
    /** @private @type {Status|null} the leader's status, as another tab told it */
    this._leaderStatus = null;
    /** @private @type {string|null} the id of the tab whose 'leader' came last (null: none, or an older client's) */
    this._leaderFrom = null;
    /** @private this tab's id in its 'leader' and 'status' messages */
    this._tabId = newGroupId();
    /** @private @type {Status} */
    this._status = {
      online: this._pageOnline(), connected: false, pending: 0, oldestPendingMs: null,
      lastSyncAt: null, leader: false, progress: null, error: null,
    };
    /** @private @type {ReturnType<typeof setTimeout>|null} */
    this._statusTimer = null;
    /** @private @type {Promise<void>|null} the pending count running (_refreshPending), which also serves calls made meanwhile */
    this._counting = null;
    /** @private another count was asked for while it ran */
    this._countAgain = false;
    /** @private @type {string|undefined} */
    this._lastStatusText = undefined;
    /** @private */ this._onConflict = opts.onConflict || ((/** @type {any} */ c) => c.remote);
    /** @private @type {() => void} */
    this._unlistenPage = () => {};
    /** @private @type {TabChannel|null} */
    this._tabs = null;
    const locks = opts.locks !== undefined ? opts.locks : (globalThis.navigator && globalThis.navigator.locks);
    /** @private */
    this._leadership = new Leadership({ name: this.name, locks, closed: () => this._closed || this._hidden, onLead: () => this._lead() });
  }

  /** @private */
  async _init() {
    const reconfigured = await this._local.init(this.stores, this._prefix);
    const BC = this._opts.BroadcastChannel !== undefined ? this._opts.BroadcastChannel : globalThis.BroadcastChannel;
    this._tabs = new TabChannel(BC, this.name, (msg) => this._onMessage(msg));
    // An instance that opened with other prefixes between our init and our
    // channel's creation posted 'reconfigured' before we could hear it.
    if (!(await this._local.scopesMatch(this.stores, this._prefix))) {
      await this._shutdown('reconfigured', false);
      throw new ZooSyncError('closed', 'another tab opened this database with another prefix for one of its stores meanwhile');
    }
    this._unlistenPage = listenPage({
      online: () => this._onlineChanged(),
      // A hidden or frozen page gives leadership up, and withdraws a queued
      // request for it (a frozen tab granted the lock could not sync).
      hide: () => { this._hidden = true; this._leadership.withdraw(); this._stepDown(true); },
      // Shown again: campaign; a step-down still running (its IndexedDB
      // work waited for the page to run again) campaigns when it ends.
      show: () => {
        this._hidden = false;
        // messages may have been missed while hidden (a new leader's among them): ask again
        this._leaderFrom = null;
        this._post({ t: 'hello' });
        this._leadership.campaign();
      },
    });
    this._post({ t: 'hello' });
    // A store's prefix changed (this instance's stores differ from the last
    // opener's): an instance still open with the old ones must not sync
    // into the database this one has started over.
    if (reconfigured) this._post({ t: 'reconfigured' });
    this._leadership.campaign();
    // Awaited: openSyncDB resolves with status.pending counted from the
    // change log, never a 0 that only means "not read yet".
    await this._refreshPending();
  }

  // ---- public API ----

  /** @param {string} store @param {string} key @returns {Promise<any>} */
  async get(store, key) {
    this._check(store);
    checkKey(key);
    const r = await this._local.record(store, key);
    return r && !r.d ? r.v : undefined;
  }

  /**
   * The live records of a store in the server's key order (UTF-8 bytes), read
   * by key range from the by_order index (live records only): `prefix`, or
   * `start` (inclusive) / `end` (exclusive), or both (their intersection);
   * `limit` records at most; `reverse` from the end.
   * @param {string} store @param {RangeQuery} [q]
   * @returns {Promise<{key: string, value: any}[]>}
   */
  async getAll(store, q = {}) {
    this._check(store);
    return this._local.getAll(store, q);
  }

  /**
   * How many live records a key range holds (same query as getAll; `limit`
   * caps the count). One IndexedDB count on the by_order index.
   * @param {string} store @param {RangeQuery} [q] @returns {Promise<number>}
   */
  async count(store, q = {}) {
    this._check(store);
    return this._local.count(store, q);
  }

  /**
   * Record metadata: the server version and cursor the local state is based on,
   * and whether local changes are pending. @param {string} store @param {string} key
   */
  async getMeta(store, key) {
    this._check(store);
    checkKey(key);
    return this._local.getMeta(store, key);
  }

  /** @param {string} store @param {string} key @param {any} value @returns {Promise<void>} */
  put(store, key, value) { return this._write([{ op: 'put', store, key, value }], false); }

  /** @param {string} store @param {string} key @returns {Promise<void>} */
  delete(store, key) { return this._write([{ op: 'delete', store, key }], false); }

  /**
   * Runs fn with a transaction object; its writes are applied together in one
   * IndexedDB transaction when fn resolves (nothing when it throws), and pushed
   * as one `tx` group.
   * @template T
   * @param {(tx: Transaction) => Promise<T>} fn
   * @returns {Promise<T>}
   */
  async transaction(fn) {
    /** @type {WriteOp[]} */
    const ops = [];
    /** @type {Map<string, {deleted: boolean, value: any}>} */
    const overlay = new Map();
    let open = true;
    const guard = () => { if (!open) throw new ZooSyncError('bad_request', 'transaction: used after it finished'); };
    /** @type {Transaction} */
    const tx = {
      put: async (store, key, value) => {
        guard();
        this._check(store); checkKey(key); this._checkScope(store, key);
        const text = toJSONText(value);
        this._checkSize(store, key, text);
        const v = JSON.parse(text); // the client's own copy; never mutated (get clones it)
        ops.push({ op: 'put', store, key, value: v, text });
        overlay.set(JSON.stringify([store, key]), { deleted: false, value: v });
      },
      delete: async (store, key) => {
        guard();
        this._check(store); checkKey(key); this._checkScope(store, key);
        ops.push({ op: 'delete', store, key });
        overlay.set(JSON.stringify([store, key]), { deleted: true, value: undefined });
      },
      get: async (store, key) => {
        guard();
        const o = overlay.get(JSON.stringify([store, key]));
        if (o) return o.deleted ? undefined : clone(o.value);
        return this.get(store, key);
      },
    };
    let result;
    try { result = await fn(tx); } finally { open = false; }
    if (ops.length) await this._write(ops, true);
    return result;
  }

  /**
   * Calls fn with the changes of one store after they are in IndexedDB.
   * @param {string} store @param {(changes: Change[]) => void} fn @returns {() => void}
   */
  subscribe(store, fn) {
    this._check(store);
    let subs = this._subs.get(store);
    if (!subs) { subs = new Set(); this._subs.set(store, subs); }
    subs.add(fn);
    return () => { const s = this._subs.get(store); if (s) s.delete(fn); };
  }

  /** @param {'status'|'conflict'|'error'|'close'} type @param {Function} fn @returns {() => void} */
  on(type, fn) { return this._em.on(type, fn); }
  /** @param {'status'|'conflict'|'error'|'close'} type @param {Function} fn */
  off(type, fn) { this._em.off(type, fn); }

  /** @returns {Status} the present status (a copy) */
  get status() { return { ...this._status, progress: this._status.progress && clone(this._status.progress) }; }

  /** The client id, allocated by the first write (undefined before). @returns {Promise<string|undefined>} */
  async clientId() { this._assertOpen(); return this._local.clientId(); }

  /** The stored cursor of a store (undefined before the first pull). @param {string} store @returns {Promise<string|undefined>} */
  async cursor(store) { this._check(store); return this._local.cursor(store); }

  /** The pending mutations (the change log), oldest first. @param {string} [store] */
  async pendingMutations(store) { this._assertOpen(); return this._local.pendingMutations(store); }

  /** Unresolved conflicts (onConflict threw), kept until resolveConflict. @param {string} [store] */
  async conflicts(store) { this._assertOpen(); return this._local.conflicts(store); }

  /**
   * Forgets an unresolved conflict; with a value, also writes it (as a normal put,
   * or a delete when value is undefined).
   * @param {string} store @param {string} key @param {...any} value
   */
  async resolveConflict(store, key, ...value) {
    this._check(store); checkKey(key);
    if (value.length) {
      if (value[0] === undefined) await this.delete(store, key); else await this.put(store, key, value[0]);
    }
    await this._local.forgetConflict(store, key);
  }

  /**
   * Pushes all pending mutations and pulls; resolves when pending is 0. With
   * `timeoutMs`, rejects with code `timeout` when mutations are still pending
   * at the deadline (and stops waiting for them; they stay queued).
   * @param {{timeoutMs?: number}} [opts]
   * @returns {Promise<void>}
   */
  async sync(opts = {}) {
    this._assertOpen();
    const timeoutMs = opts && opts.timeoutMs;
    if (timeoutMs === undefined) return this._sync(null);
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) throw new ZooSyncError('bad_request', 'sync: timeoutMs must be a number >= 0');
    const ctl = new AbortController();
    const run = this._sync(ctl.signal);
    run.catch(() => {});
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    let timer;
    const deadline = new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs, 'deadline'); });
    try {
      if ((await Promise.race([run.then(() => 'done'), deadline])) === 'done') return;
    } finally {
      clearTimeout(timer);
      ctl.abort();
    }
    const n = this._closed ? 0 : await this._local.countPending();
    if (n > 0) throw new ZooSyncError('timeout', `sync: ${n} mutation(s) still pending after ${timeoutMs} ms`, { details: { pending: n } });
  }

  /**
   * Pauses (true) or resumes (false) all network traffic of this tab, as the
   * page's `offline`/`online` events do. Writes go on locally.
   * @param {boolean} offline
   */
  setOffline(offline) {
    this._paused = !!offline;
    this._onlineChanged();
  }

  /** Stops syncing, hands leadership over and closes the database. @returns {Promise<void>} */
  async close() { await this._shutdown(null); }

  /**
   * Logs out: ends syncing in every tab of this database (they close their
   * connections and emit `close` with reason `destroyed`), then deletes the
   * IndexedDB database. With pending mutations it rejects with code `pending`
   * and changes nothing, unless `force` (then they are lost).
   * @param {{force?: boolean}} [opts]
   * @returns {Promise<void>}
   */
  async destroy(opts = {}) {
    this._assertOpen();
    // One transaction against every write (LocalStore.beginDestroy): a write
    // of any tab lands before it and is counted, or is refused after it.
    const n = await this._local.beginDestroy(!!(opts && opts.force));
    if (n > 0) throw new ZooSyncError('pending', `destroy: ${n} mutation(s) not pushed yet; sync() first, or destroy({force: true}) to drop them`, { details: { pending: n } });
    this._post({ t: 'destroy' });     // other tabs stop at once (versionchange would tell them too)
    const closing = this._shutdown('destroyed', false); // closes the connection at once
    // Asked for now, not after the sync has wound down: an open of the
    // database from now on waits behind the deletion, rather than finishing
    // it itself and then losing its writes to this one. A connection that
    // ignores versionchange (another program, an older client) blocks the
    // deletion until it closes.
    const deleting = deleteIDB(this._opts.indexedDB || globalThis.indexedDB, this.name);
    await closing;
    await deleting;
    this._em.emit('close', { reason: 'destroyed' });
  }

  // ---- internals: closing ----

  /** @private @param {AbortSignal|null} signal ends the wait (the sync itself goes on in the leader) */
  async _sync(signal) {
    if (this._leadership.leader && this._syncer) {
      await this._syncer.syncNow(signal);
      return;
    }
    this._post({ t: 'sync' });
    for (;;) {
      this._assertOpen();
      if (signal && signal.aborted) return;
      const n = await this._local.countPending();
      if (n === 0) return;
      if (this._leadership.leader && this._syncer) { await this._syncer.syncNow(signal); return; }
      await sleep(100, signal || undefined);
    }
  }

  /**
   * Another connection deletes (newVersion null) or upgrades the database:
   * stop syncing and close at once so that it can go ahead.
   * @private @param {IDBVersionChangeEvent} ev
   */
  _onVersionChange(ev) {
    this._shutdown(ev && ev.newVersion === null ? 'destroyed' : 'versionchange').catch(() => {});
  }

  /**
   * Closes this instance. With a reason (the database is deleted or upgraded
   * elsewhere), the IndexedDB connection is closed first, before the sync
   * workers finish, and `close` is emitted with {reason}.
   * @private @param {'destroyed'|'versionchange'|'reconfigured'|null} reason @param {boolean} [emit]
   * @returns {Promise<void>}
   */
  _shutdown(reason, emit = true) {
    if (this._closing) return this._closing;
    this._closed = true;
    this._closing = (async () => {
      this._unlistenPage();
      if (this._statusTimer) clearTimeout(this._statusTimer);
      const s = this._syncer;
      if (reason) {
        if (s) s.halt();
        this._local.close();
      }
      await this._stepDown();
      this._leadership.close();
      if (this._tabs) this._tabs.close();
      this._local.close();
      if (reason && emit) this._em.emit('close', { reason });
    })();
    return this._closing;
  }

  // ---- internals: local writes ----

  /** @private */
  _assertOpen() { if (this._closed) throw new ZooSyncError('closed', 'the database is closed'); }

  /** @private @param {unknown} store */
  _check(store) {
    this._assertOpen();
    if (typeof store !== 'string' || !STORE_RE.test(store)) throw new ZooSyncError('invalid_store', `store: ${JSON.stringify(store)} is not a valid store name`);
    if (!this.stores.includes(store)) throw new ZooSyncError('store_not_found', `store: ${store} is not one of this database's stores (${this.stores.join(', ')})`, { store });
  }

  /** A local write outside a partially replicated store's prefix: `forbidden`. @private @param {string} store @param {string} key */
  _checkScope(store, key) {
    const p = this._prefix.get(store);
    if (p && !key.startsWith(p)) throw new ZooSyncError('forbidden', `key ${JSON.stringify(key)}: outside ${store}'s prefix ${JSON.stringify(p)} (partial replication)`, { store });
  }

  /** @private @param {string} store @param {string} key @param {string} text @returns {number} */
  _checkSize(store, key, text) {
    const n = utf8Length(text);
    const d = this._local.description(store);
    const max = (d && d.maxValueBytes) || DEFAULT_MAX_VALUE_BYTES;
    if (n > max) throw new ZooSyncError('value_too_large', `value: ${n} bytes, over the store's maxValueBytes (${max})`, { store });
    return n;
  }

  /**
   * Validates, then writes records and their mutations in one IndexedDB
   * transaction (the local store's write()); then tells subscribers, the
   * other tabs and the sync.
   * @private @param {WriteOp[]} ops @param {boolean} group one `tx` group
   */
  async _write(ops, group) {
    for (const o of ops) {
      this._check(o.store);
      checkKey(o.key);
      this._checkScope(o.store, o.key);
      if (o.op === 'put' && o.text === undefined) {
        o.text = toJSONText(o.value);
        this._checkSize(o.store, o.key, o.text);
        o.value = JSON.parse(o.text);
      }
    }
    let txId;
    if (group) {
      const stores = new Set(ops.map((o) => o.store));
      if (stores.size > 1) throw new ZooSyncError('bad_request', `transaction: spans several stores (${[...stores].join(', ')}); a server-side tx group lives in one store`);
      if (ops.length > MAX_MUTATIONS_PER_PUSH) throw new ZooSyncError('tx_too_large', `transaction: ${ops.length} writes, at most ${MAX_MUTATIONS_PER_PUSH} in one group`, { store: ops[0].store });
      const maxTx = this._opts.maxTxBytes || DEFAULT_MAX_TX_BYTES;
      const bytes = txBytes(this._opts.root || DEFAULT_ROOT, ops, maxTx);
      if (bytes > maxTx) throw new ZooSyncError('tx_too_large', `transaction: takes about ${bytes} bytes in one ZooKeeper multi, over ${maxTx}`, { store: ops[0].store });
      txId = newGroupId();
    }
    let changes;
    try {
      changes = await this._local.write(ops, txId);
    } catch (e) {
      // destroy() began in a tab that did not get to tell this one (its page
      // closed): this instance is done; the next open finishes the deletion
      if (e instanceof ZooSyncError && e.code === 'closed' && e.details && e.details.destroying) this._shutdown('destroyed').catch(() => {});
      throw e;
    }
    for (const [store, list] of changes) this._deliver(store, list, true);
    this._post({ t: 'kick' });
    if (this._syncer) this._syncer.kick();
    this._refreshPending();
  }

  // ---- internals: delivery, tabs, status ----

  /** Calls this tab's subscribers and, when `broadcast`, the other tabs'. @private @param {string} store @param {Change[]} changes @param {boolean} broadcast */
  _deliver(store, changes, broadcast) {
    if (!changes.length) return;
    if (broadcast) this._post({ t: 'changes', store, changes });
    const subs = this._subs.get(store);
    if (!subs) return;
    for (const fn of [...subs]) {
      try { fn(changes.map((c) => ({ ...c, value: clone(c.value) }))); } catch (e) { setTimeout(() => { throw e; }); }
    }
  }

  /** @private @param {TabMessage} msg */
  _post(msg) {
    if (!this._tabs || this._closed) return;
    this._tabs.post(msg);
  }

  /** @private @param {TabMessage} msg */
  _onMessage(msg) {
    if (this._closed || !msg || typeof msg !== 'object') return;
    const leader = this._leadership.leader;
    switch (msg.t) {
      case 'changes': this._deliver(msg.store, msg.changes, false); if (msg.changes.some((c) => c.origin === 'local')) this._refreshPending(); break;
      case 'kick': if (this._syncer) this._syncer.kick(); this._refreshPending(); break;
      case 'sync': if (this._syncer) this._syncer.syncNow(null).catch(() => {}); break;
      case 'destroy': this._shutdown('destroyed').catch(() => {}); break;
      case 'reconfigured':
        this._local.scopesMatch(this.stores, this._prefix).then((same) => {
          if (!same) this._shutdown('reconfigured').catch(() => {});
        }, () => {});
        break;
      case 'hello': if (leader) this._post({ t: 'status', status: this._status, from: this._tabId }); break;
      case 'status':
        // only the current leader's (a former leader's may come late); a tab
        // that has not heard a 'leader' yet takes the first it hears
        if (leader || (msg.from !== undefined && this._leaderFrom !== null && msg.from !== this._leaderFrom)) break;
        if (msg.from !== undefined) this._leaderFrom = msg.from;
        this._leaderStatus = msg.status;
        this._setStatus({});
        break;
      case 'conflict': this._em.emit('conflict', msg.c); break;
      case 'error': this._em.emit('error', errorFromInfo(msg.e)); break;
      case 'leader':
        if (leader) break;
        this._leaderFrom = msg.from !== undefined ? msg.from : null;
        this._leaderStatus = msg.status || null;
        this._setStatus({});
        break;
      default: break;
    }
  }

  /** @private @returns {boolean} */
  _pageOnline() {
    const nav = globalThis.navigator;
    return !(nav && nav.onLine === false);
  }

  /** @private */
  _onlineChanged() {
    const online = this._pageOnline() && !this._paused;
    this._setStatus({ online });
    if (this._syncer) this._syncer.onlineChanged(online);
  }

  /** @private @param {Partial<Status>} patch @param {boolean} [flush] emit now rather than coalesced */
  _setStatus(patch, flush = false) {
    const st = /** @type {Record<string, any>} */ (this._status);
    const leader = this._leadership.leader;
    Object.assign(st, patch);
    st.online = this._pageOnline() && !this._paused;
    st.leader = leader;
    if (!leader && this._leaderStatus) {
      // The leader counts the same change log: its figures win once it has answered.
      const ls = /** @type {Record<string, any>} */ (this._leaderStatus);
      for (const k of ['connected', 'lastSyncAt', 'progress', 'error', 'pending', 'oldestPendingMs']) {
        if (k === 'pending' || k === 'oldestPendingMs') { if (!('pending' in patch)) st[k] = ls[k]; } else st[k] = ls[k];
      }
    } else if (!leader) {
      st.connected = false;
    }
    const emit = () => {
      this._statusTimer = null;
      if (this._closed) return;
      const s = this.status;
      const text = JSON.stringify(s);
      if (text === this._lastStatusText) return;
      this._lastStatusText = text;
      if (this._leadership.leader) this._post({ t: 'status', status: s, from: this._tabId });
      this._em.emit('status', s);
    };
    if (flush) { if (this._statusTimer) clearTimeout(this._statusTimer); emit(); return; }
    if (this._statusTimer) return;
    this._statusTimer = setTimeout(emit, 0);
  }

  /**
   * Recounts the status' pending figures. One count at a time: calls made
   * while one runs ask for one more after it (a burst of writes or pushes
   * costs two counts, not one readonly transaction between each pair of
   * writes).
   * @private
   */
  async _refreshPending() {
    if (this._closed) return;
    // A caller's promise settles after a count that began after its call:
    // the running one for a call made before it started, else the next.
    if (this._counting) { this._countAgain = true; return this._counting; }
    const run = async () => {
      try {
        do {
          this._countAgain = false;
          const { n, oldest } = await this._local.pendingSummary();
          this._setStatus({ pending: n, oldestPendingMs: oldest === null ? null : Math.max(0, Date.now() - oldest) });
        } while (this._countAgain && !this._closed);
      } catch { /* closing */ } finally { this._counting = null; }
    };
    this._counting = run();
    return this._counting;
  }

  /** @private @param {ConflictEvent} c */
  _emitConflict(c) {
    this._em.emit('conflict', c);
    this._post({ t: 'conflict', c });
  }

  /** @private @param {ZooSyncError} err */
  _emitError(err) {
    const info = errorInfo(err);
    this._setStatus({ error: info });
    this._em.emit('error', err);
    this._post({ t: 'error', e: info });
  }

  // ---- leadership ----

  /**
   * What the sync engine may use of this database (sync.js, SyncHost).
   * @private @returns {SyncHost}
   */
  _host() {
    return {
      local: this._local,
      opts: this._opts,
      urls: this._urls,
      stores: this.stores,
      prefix: (store) => this._prefix.get(store),
      online: () => this._status.online,
      progress: () => this._status.progress,
      setStatus: (patch, flush) => this._setStatus(patch, flush),
      deliver: (store, changes) => this._deliver(store, changes, true),
      reportError: (err) => this._emitError(err),
      reportConflict: (c) => this._emitConflict(c),
      refreshPending: () => { this._refreshPending(); },
      onConflict: (c) => this._onConflict(c),
      reconfigured: () => { this._shutdown('reconfigured').catch(() => {}); },
    };
  }

  /** This tab became the leader: start the sync engine. @private */
  _lead() {
    this._leaderStatus = null;
    this._syncer = new Syncer(this._host());
    this._setStatus({ connected: false, progress: null });
    this._post({ t: 'leader', status: this.status, from: this._tabId });
    this._syncer.start();
  }

  /**
   * Stops the sync engine and gives up leadership (and re-campaigns unless
   * closing or `sleeping`).
   * @private @param {boolean} [sleeping]
   */
  async _stepDown(sleeping = false) {
    const s = this._syncer;
    this._syncer = null;
    if (s) await s.stop();
    const wasLeader = this._leadership.resign();
    if (wasLeader) { this._setStatus({ connected: false }); }
    if (!this._closed && wasLeader && !(sleeping && this._hidden)) this._leadership.campaign();
  }
}
