// zoosync.js: offline-first sync between IndexedDB and Apache ZooKeeper
// through the zoosyncd gateway (protocol v1). ES modules, no build step:
// this entry and the modules it imports from lib/.
//
//   import { openSyncDB } from '/client/zoosync.js';
//   const db = await openSyncDB({ name: 'todo-app', url: 'https://gw.example', stores: ['todos'] });
//
// The contract is CLIENT.md; zoosync.d.ts has the types; README.md explains
// the choices this implementation made where the contract leaves room.

import { ZooSyncError, isTransient, errorInfo, errorFromInfo } from './lib/errors.js';
import {
  DEFAULT_MAX_VALUE_BYTES, MAX_MUTATIONS_PER_PUSH, PUSH_OP_OVERHEAD, STORE_RE, MAX_KEY_BYTES,
  utf8Length, hasLoneSurrogate, checkKey, toJSONText, zkPath, orderKey, prefixEnd,
} from './lib/protocol.js';
import { RECORDS, MUTS, META, CONFLICTS, openIDB } from './lib/schema.js';
import { sleep, randomId, clone, same, Emitter } from './lib/util.js';

export { ZooSyncError } from './lib/errors.js';
export { utf8Length, checkKey, toJSONText, fnv1a64, zkPath, orderKey, compareKeys } from './lib/protocol.js';

/** @typedef {import('./zoosync.d.ts').SyncDBOptions} SyncDBOptions */
/** @typedef {import('./zoosync.d.ts').Status} Status */
/** @typedef {import('./zoosync.d.ts').Change} Change */
/** @typedef {import('./zoosync.d.ts').ConflictInfo} ConflictInfo */
/** @typedef {import('./zoosync.d.ts').ErrorInfo} ErrorInfo */

const NON_RETRYABLE_KEEP = new Set([401, 403]);

/**
 * Puts a record, keeping its index fields right: `o` on live records (the
 * by_order index, range reads), `t` on tombstones (by_tomb, purging).
 * @param {IDBObjectStore} recs @param {any} rec
 */
function putRec(recs, rec) {
  if (rec.d) { delete rec.o; rec.t = rec.c || ''; } else { delete rec.t; rec.o = orderKey(rec.k); }
  return recs.put(rec);
}

/**
 * Deletes the tombstones of a store whose deletion the feed has passed
 * (cursor at or below the store's cursor) and that no pending mutation needs.
 * A change older than the store's cursor can no longer arrive (older pages are
 * ignored, and a later page shows each key in its latest state), so nothing
 * is lost; a later create is pushed with base 0, which matches a deleted key.
 * @param {IDBTransaction} tx @param {string} store @param {string|undefined} cursor
 * @returns {Promise<number>} how many rows left
 */
async function sweepTombstones(tx, store, cursor) {
  const recs = tx.objectStore(RECORDS);
  const keys = await rq(recs.index('by_tomb').getAllKeys(IDBKeyRange.bound([store, ''], [store, cursor || ''])));
  if (!keys.length) return 0;
  const byKey = tx.objectStore(MUTS).index('by_key');
  const pend = await Promise.all(keys.map((pk) => rq(byKey.count(pk))));
  let n = 0;
  keys.forEach((pk, i) => { if (!pend[i]) { recs.delete(pk); n++; } });
  return n;
}

/** @param {IDBRequest} r @returns {Promise<any>} */
function rq(r) {
  return new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
}

/**
 * The records of `keys` (one store), aligned with keys (undefined when absent;
 * a key given twice gets the same object). One getAll over the keys' range
 * when that range holds few other records (one count says), else one get per
 * key; all requests issued at once either way.
 * @param {IDBObjectStore} recs @param {string} store @param {string[]} keys
 */
async function getRecords(recs, store, keys) {
  const each = () => Promise.all(keys.map((k) => rq(recs.get([store, k]))));
  if (keys.length < 16) return each();
  let lo = keys[0], hi = keys[0];
  for (const k of keys) { if (k < lo) lo = k; if (k > hi) hi = k; } // code-unit order, as IndexedDB compares strings
  const range = IDBKeyRange.bound([store, lo], [store, hi]);
  const n = await rq(recs.count(range));
  if (n > 2 * keys.length + 64) return each();
  const rows = n ? await rq(recs.getAll(range)) : [];
  const by = new Map(rows.map((r) => [r.k, r]));
  return keys.map((k) => by.get(k));
}

/**
 * The by_order index range of a range query (null when empty).
 * @param {string} store @param {any} q
 * @returns {{range: IDBKeyRange|null, limit: number|undefined, reverse: boolean}}
 */
function keyRange(store, q) {
  if (q === null || typeof q !== 'object') throw new ZooSyncError('bad_request', 'range: must be an object');
  for (const f of Object.keys(q)) {
    if (!['prefix', 'start', 'end', 'limit', 'reverse'].includes(f)) throw new ZooSyncError('bad_request', `range: unknown field ${JSON.stringify(f)}`);
  }
  for (const f of ['prefix', 'start', 'end']) {
    const v = q[f];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw new ZooSyncError('bad_request', `range.${f}: must be a string`);
    if (hasLoneSurrogate(v)) throw new ZooSyncError('bad_request', `range.${f}: contains a lone surrogate`);
  }
  const { limit } = q;
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) throw new ZooSyncError('bad_request', 'range.limit: must be an integer >= 0');
  if (q.reverse !== undefined && typeof q.reverse !== 'boolean') throw new ZooSyncError('bad_request', 'range.reverse: must be a boolean');
  let lo = '', hi = /** @type {string|null} */ (null);
  if (q.prefix) { lo = orderKey(q.prefix); hi = prefixEnd(lo); }
  if (q.start !== undefined) { const x = orderKey(q.start); if (x > lo) lo = x; }
  if (q.end !== undefined) { const x = orderKey(q.end); if (hi === null || x < hi) hi = x; }
  const range = hi !== null && hi <= lo ? null : IDBKeyRange.bound([store, lo], [store, hi === null ? [] : hi], false, true);
  return { range, limit, reverse: !!q.reverse };
}

/** Deletes mutations by id, a run of consecutive ids as one range (ids are integers). @param {IDBObjectStore} st @param {number[]} ids */
function deleteIds(st, ids) {
  const a = [...new Set(ids)].sort((x, y) => x - y);
  for (let i = 0; i < a.length;) {
    let j = i;
    while (j + 1 < a.length && a[j + 1] === a[j] + 1) j++;
    st.delete(i === j ? a[i] : IDBKeyRange.bound(a[i], a[j]));
    i = j + 1;
  }
}

/** Runs fn(tx) in one IndexedDB transaction and resolves after it committed. */
async function inTx(idb, names, mode, fn) {
  const tx = mode === 'readwrite' ? idb.transaction(names, mode, { durability: 'strict' }) : idb.transaction(names, mode);
  const done = new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve(undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new ZooSyncError('aborted', 'IndexedDB transaction aborted'));
  });
  let result;
  try {
    result = await fn(tx);
  } catch (e) {
    try { tx.abort(); } catch { /* already finished */ }
    await done.catch(() => {});
    throw e;
  }
  await done;
  return result;
}

const storeRange = (s) => IDBKeyRange.bound([s, ''], [s, []]);
const idRange = (s) => IDBKeyRange.bound([s, 0], [s, Infinity]);

const metaGet = async (tx, k) => { const r = await rq(tx.objectStore(META).get(k)); return r ? r.v : undefined; };
const metaPut = (tx, k, v) => rq(tx.objectStore(META).put({ k, v }));

/**
 * Allocates the client id (once) and `n` consecutive mutation ids inside the
 * caller's write transaction.
 */
async function allocIds(tx, n) {
  let [client, next] = await Promise.all([metaGet(tx, 'client'), metaGet(tx, 'nextId')]);
  if (!client) { client = 'c-' + randomId(8); tx.objectStore(META).put({ k: 'client', v: client }); }
  next = next || 1;
  tx.objectStore(META).put({ k: 'nextId', v: next + n });
  return { client, first: next };
}

// ------------------------------------------------------------- the database

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
      if (s.prefix !== undefined) {
        const p = s.prefix;
        if (typeof p !== 'string' || p === '') throw new ZooSyncError('bad_request', `stores: ${name}: prefix must be a non-empty string`);
        if (p.includes('\u0000') || hasLoneSurrogate(p) || utf8Length(p) > MAX_KEY_BYTES) throw new ZooSyncError('invalid_key', `stores: ${name}: prefix is not a valid key prefix`);
      }
    }
  }
  const factory = opts.indexedDB || globalThis.indexedDB;
  if (!factory) throw new ZooSyncError('unsupported', 'IndexedDB is not available');
  if (!globalThis.crypto || typeof globalThis.crypto.getRandomValues !== 'function') {
    // Browsers and Node 19+ have it; on Node 18: globalThis.crypto = (await import('node:crypto')).webcrypto
    throw new ZooSyncError('unsupported', 'Web Crypto (globalThis.crypto.getRandomValues) is not available');
  }
  const idb = await openIDB(factory, opts.name);
  const db = new SyncDB(idb, opts);
  await db._init();
  return db;
}

export class SyncDB {
  /** @param {IDBDatabase} idb @param {SyncDBOptions} opts */
  constructor(idb, opts) {
    this._idb = idb;
    this._opts = opts;
    this.name = opts.name;
    /** @type {string[]} */
    this.stores = opts.stores.map((s) => (typeof s === 'string' ? s : s.name));
    /** @type {Map<string, string>} partial replication: the key prefix a store mirrors */
    this._prefix = new Map();
    for (const s of opts.stores) if (typeof s === 'object' && s.prefix) this._prefix.set(s.name, s.prefix);
    this._urls = (Array.isArray(opts.url) ? opts.url : opts.url ? [opts.url] : []).map((u) => String(u).replace(/\/+$/, ''));
    this._em = new Emitter();
    /** @type {Map<string, Set<Function>>} */
    this._subs = new Map();
    this._closed = false;
    this._closing = null;
    this._leader = false;
    this._paused = !!opts.offline;
    this._syncer = null;
    this._resign = null;
    /** @type {Map<string, any>} */
    this._desc = new Map();
    this._leaderStatus = null;
    this._status = /** @type {Status} */ ({
      online: this._pageOnline(), connected: false, pending: 0, oldestPendingMs: null,
      lastSyncAt: null, leader: false, progress: null, error: null,
    });
    this._statusTimer = null;
    this._onConflict = opts.onConflict || ((c) => c.remote);
    this._listeners = [];
  }

  async _init() {
    this._idb.onversionchange = (ev) => this._onVersionChange(ev);
    await inTx(this._idb, [META], 'readwrite', async (tx) => {
      for (const s of this.stores) {
        const [d, scope] = await Promise.all([metaGet(tx, 'desc:' + s), metaGet(tx, 'scope:' + s)]);
        const want = this._prefix.get(s) || '';
        if (scope !== undefined ? scope !== want : want !== '' && (await metaGet(tx, 'cursor:' + s)) !== undefined) {
          // The mirrored part changed: pull it from the beginning; the resync's
          // end drops the records it does not bring (unless pending).
          const r = await metaGet(tx, 'resync:' + s);
          await metaPut(tx, 'resync:' + s, { epoch: ((r && r.epoch) || 0) + 1, active: true });
          tx.objectStore(META).delete('cursor:' + s);
          tx.objectStore(META).delete('initial:' + s);
          tx.objectStore(META).delete('desc:' + s);
        } else if (d) this._desc.set(s, d);
        if (scope !== want) await metaPut(tx, 'scope:' + s, want);
      }
    });
    const BC = this._opts.BroadcastChannel !== undefined ? this._opts.BroadcastChannel : globalThis.BroadcastChannel;
    if (BC) {
      this._bc = new BC('zoosync:' + this.name);
      this._bc.onmessage = (ev) => this._onMessage(ev.data);
    }
    const win = globalThis.window && typeof globalThis.addEventListener === 'function' ? globalThis : null;
    if (win) {
      const on = (t, fn) => { win.addEventListener(t, fn); this._listeners.push([win, t, fn]); };
      on('online', () => this._onlineChanged());
      on('offline', () => this._onlineChanged());
      on('pagehide', () => { this._stepDown(true); });
      on('pageshow', (e) => { if (e.persisted) this._campaign(); });
      if (globalThis.document) {
        const d = globalThis.document;
        const onDoc = (t, fn) => { d.addEventListener(t, fn); this._listeners.push([d, t, fn]); };
        onDoc('freeze', () => this._stepDown(true));
        onDoc('resume', () => this._campaign());
      }
    }
    this._post({ t: 'hello' });
    this._campaign();
    this._refreshPending();
  }

  // ---- public API ----

  /** @param {string} store @param {string} key @returns {Promise<any>} */
  async get(store, key) {
    this._check(store);
    checkKey(key);
    const r = await inTx(this._idb, [RECORDS], 'readonly', (tx) => rq(tx.objectStore(RECORDS).get([store, key])));
    return r && !r.d ? r.v : undefined;
  }

  /**
   * The live records of a store in the server's key order (UTF-8 bytes), read
   * by key range from the by_order index (live records only): `prefix`, or
   * `start` (inclusive) / `end` (exclusive), or both (their intersection);
   * `limit` records at most; `reverse` from the end.
   * @param {string} store @param {import('./zoosync.d.ts').RangeQuery} [q]
   * @returns {Promise<{key: string, value: any}[]>}
   */
  async getAll(store, q = {}) {
    this._check(store);
    const { range, limit, reverse } = keyRange(store, q);
    if (!range || limit === 0) return [];
    const rows = await inTx(this._idb, [RECORDS], 'readonly', async (tx) => {
      const idx = tx.objectStore(RECORDS).index('by_order');
      if (!reverse) return rq(limit === undefined ? idx.getAll(range) : idx.getAll(range, limit));
      return new Promise((resolve, reject) => {
        const out = [];
        const c = idx.openCursor(range, 'prev');
        c.onsuccess = () => {
          const cur = c.result;
          if (!cur || (limit !== undefined && out.length >= limit)) { resolve(out); return; }
          out.push(cur.value);
          if (limit !== undefined && out.length >= limit) resolve(out); else cur.continue();
        };
        c.onerror = () => reject(c.error);
      });
    });
    return rows.map((r) => ({ key: r.k, value: r.v }));
  }

  /**
   * How many live records a key range holds (same query as getAll; `limit`
   * caps the count). One IndexedDB count on the by_order index.
   * @param {string} store @param {import('./zoosync.d.ts').RangeQuery} [q] @returns {Promise<number>}
   */
  async count(store, q = {}) {
    this._check(store);
    const { range, limit } = keyRange(store, q);
    if (!range) return 0;
    const n = await inTx(this._idb, [RECORDS], 'readonly', (tx) => rq(tx.objectStore(RECORDS).index('by_order').count(range)));
    return limit === undefined ? n : Math.min(n, limit);
  }

  /**
   * Record metadata: the server version and cursor the local state is based on,
   * and whether local changes are pending. @param {string} store @param {string} key
   */
  async getMeta(store, key) {
    this._check(store);
    checkKey(key);
    return inTx(this._idb, [RECORDS, MUTS], 'readonly', async (tx) => {
      const r = await rq(tx.objectStore(RECORDS).get([store, key]));
      const pending = await rq(tx.objectStore(MUTS).index('by_key').count([store, key]));
      if (!r && !pending) return undefined;
      return { key, version: r ? r.ver : 0, cursor: (r && r.c) || null, deleted: r ? !!r.d : true, pending };
    });
  }

  /** @param {string} store @param {string} key @param {any} value */
  put(store, key, value) { return this._write([{ op: 'put', store, key, value }], false); }

  /** @param {string} store @param {string} key */
  delete(store, key) { return this._write([{ op: 'delete', store, key }], false); }

  /**
   * Runs fn with a transaction object; its writes are applied together in one
   * IndexedDB transaction when fn resolves (nothing when it throws), and pushed
   * as one `tx` group.
   * @template T
   * @param {(tx: {put(s: string, k: string, v: any): Promise<void>, delete(s: string, k: string): Promise<void>, get(s: string, k: string): Promise<any>}) => Promise<T>} fn
   * @returns {Promise<T>}
   */
  async transaction(fn) {
    const ops = [];
    /** @type {Map<string, {deleted: boolean, value: any}>} */
    const overlay = new Map();
    let open = true;
    const guard = () => { if (!open) throw new ZooSyncError('bad_request', 'transaction: used after it finished'); };
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
    if (!this._subs.has(store)) this._subs.set(store, new Set());
    this._subs.get(store).add(fn);
    return () => { const s = this._subs.get(store); if (s) s.delete(fn); };
  }

  /** @param {'status'|'conflict'|'error'|'close'} type @param {Function} fn @returns {() => void} */
  on(type, fn) { return this._em.on(type, fn); }
  /** @param {'status'|'conflict'|'error'|'close'} type @param {Function} fn */
  off(type, fn) { this._em.off(type, fn); }

  /** @returns {Status} the present status (a copy) */
  get status() { return { ...this._status, progress: this._status.progress && clone(this._status.progress) }; }

  /** The client id, allocated by the first write (undefined before). */
  async clientId() { return inTx(this._idb, [META], 'readonly', (tx) => metaGet(tx, 'client')); }

  /** The stored cursor of a store (undefined before the first pull). @param {string} store */
  async cursor(store) { this._check(store); return inTx(this._idb, [META], 'readonly', (tx) => metaGet(tx, 'cursor:' + store)); }

  /** The pending mutations (the change log), oldest first. @param {string} [store] */
  async pendingMutations(store) {
    const rows = await inTx(this._idb, [MUTS], 'readonly', (tx) => rq(tx.objectStore(MUTS).getAll()));
    return rows.filter((m) => !store || m.s === store).map((m) => ({
      id: m.id, store: m.s, key: m.k, op: m.op, ...(m.op === 'put' ? { value: m.v } : {}), ...(m.tx ? { tx: m.tx } : {}), at: m.at,
    }));
  }

  /** Unresolved conflicts (onConflict threw), kept until resolveConflict. @param {string} [store] */
  async conflicts(store) {
    const rows = await inTx(this._idb, [CONFLICTS], 'readonly', (tx) => rq(tx.objectStore(CONFLICTS).getAll()));
    return rows.filter((c) => !store || c.s === store).map((c) => ({
      store: c.s, key: c.k, local: c.local, localDeleted: c.localDeleted, remote: c.remote, remoteDeleted: c.remoteDeleted,
      remoteVersion: c.remoteVersion, at: c.at, error: c.error,
    }));
  }

  /**
   * Forgets an unresolved conflict; with a value, also writes it (as a normal put,
   * or a delete when value is undefined).
   * @param {string} store @param {string} key @param {any} [value]
   */
  async resolveConflict(store, key, ...value) {
    this._check(store); checkKey(key);
    if (value.length) {
      if (value[0] === undefined) await this.delete(store, key); else await this.put(store, key, value[0]);
    }
    await inTx(this._idb, [CONFLICTS], 'readwrite', (tx) => rq(tx.objectStore(CONFLICTS).delete([store, key])));
  }

  /**
   * Pushes all pending mutations and pulls; resolves when pending is 0. With
   * `timeoutMs`, rejects with code `timeout` when mutations are still pending
   * at the deadline (and stops waiting for them; they stay queued).
   * @param {{timeoutMs?: number}} [opts]
   */
  async sync(opts = {}) {
    this._assertOpen();
    const timeoutMs = opts && opts.timeoutMs;
    if (timeoutMs === undefined) return this._sync(null);
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) throw new ZooSyncError('bad_request', 'sync: timeoutMs must be a number >= 0');
    const ctl = new AbortController();
    const run = this._sync(ctl.signal);
    run.catch(() => {});
    let timer;
    const deadline = new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs, 'deadline'); });
    try {
      if ((await Promise.race([run.then(() => 'done'), deadline])) === 'done') return;
    } finally {
      clearTimeout(timer);
      ctl.abort();
    }
    const n = this._closed ? 0 : await this._countPending();
    if (n > 0) throw new ZooSyncError('timeout', `sync: ${n} mutation(s) still pending after ${timeoutMs} ms`, { details: { pending: n } });
  }

  /** @param {AbortSignal|null} signal ends the wait (the sync itself goes on in the leader) */
  async _sync(signal) {
    if (this._leader && this._syncer) {
      await this._syncer.syncNow(signal);
      return;
    }
    this._post({ t: 'sync' });
    for (;;) {
      this._assertOpen();
      if (signal && signal.aborted) return;
      const n = await this._countPending();
      if (n === 0) return;
      if (this._leader && this._syncer) { await this._syncer.syncNow(signal); return; }
      await sleep(100, signal || undefined);
    }
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

  /** Stops syncing, hands leadership over and closes the database. */
  async close() { await this._shutdown(null); }

  /**
   * Logs out: ends syncing in every tab of this database (they close their
   * connections and emit `close` with reason `destroyed`), then deletes the
   * IndexedDB database. With pending mutations it rejects with code `pending`
   * and changes nothing, unless `force` (then they are lost).
   * @param {{force?: boolean}} [opts]
   */
  async destroy(opts = {}) {
    this._assertOpen();
    if (!(opts && opts.force)) {
      const n = await this._countPending();
      if (n > 0) throw new ZooSyncError('pending', `destroy: ${n} mutation(s) not pushed yet; sync() first, or destroy({force: true}) to drop them`, { details: { pending: n } });
    }
    this._post({ t: 'destroy' });     // other tabs stop at once (versionchange would tell them too)
    await this._shutdown('destroyed', false);
    const factory = this._opts.indexedDB || globalThis.indexedDB;
    await new Promise((resolve, reject) => {
      const r = factory.deleteDatabase(this.name);
      r.onsuccess = () => resolve(undefined);
      r.onerror = () => reject(r.error);
      // blocked: a connection that ignores versionchange (another program, an
      // older client) is still open; the deletion waits until it closes.
    });
    this._em.emit('close', { reason: 'destroyed' });
  }

  /**
   * Another connection deletes (newVersion null) or upgrades the database:
   * stop syncing and close at once so that it can go ahead.
   * @param {IDBVersionChangeEvent} ev
   */
  _onVersionChange(ev) {
    this._shutdown(ev && ev.newVersion === null ? 'destroyed' : 'versionchange').catch(() => {});
  }

  /**
   * Closes this instance. With a reason (the database is deleted or upgraded
   * elsewhere), the IndexedDB connection is closed first, before the sync
   * workers finish, and `close` is emitted with {reason}.
   * @param {string|null} reason @param {boolean} [emit]
   */
  _shutdown(reason, emit = true) {
    if (this._closing) return this._closing;
    this._closed = true;
    this._closing = (async () => {
      for (const [t, type, fn] of this._listeners) t.removeEventListener(type, fn);
      this._listeners = [];
      clearTimeout(this._statusTimer);
      const s = this._syncer;
      if (reason) {
        if (s) { s.stopped = true; s.abort.abort(); }
        this._idb.close();
      }
      await this._stepDown();
      if (this._lockAbort) this._lockAbort.abort();
      if (this._bc) { try { this._bc.close(); } catch { /* closed */ } }
      this._idb.close();
      if (reason && emit) this._em.emit('close', { reason });
    })();
    return this._closing;
  }

  // ---- internals: local writes ----

  _assertOpen() { if (this._closed) throw new ZooSyncError('closed', 'the database is closed'); }

  _check(store) {
    this._assertOpen();
    if (typeof store !== 'string' || !STORE_RE.test(store)) throw new ZooSyncError('invalid_store', `store: ${JSON.stringify(store)} is not a valid store name`);
    if (!this.stores.includes(store)) throw new ZooSyncError('store_not_found', `store: ${store} is not one of this database's stores (${this.stores.join(', ')})`, { store });
  }

  /** A local write outside a partially replicated store's prefix: `forbidden`. */
  _checkScope(store, key) {
    const p = this._prefix.get(store);
    if (p && !key.startsWith(p)) throw new ZooSyncError('forbidden', `key ${JSON.stringify(key)}: outside ${store}'s prefix ${JSON.stringify(p)} (partial replication)`, { store });
  }

  _maxValueBytes(store) {
    const d = this._desc.get(store);
    return (d && d.maxValueBytes) || DEFAULT_MAX_VALUE_BYTES;
  }

  _checkSize(store, key, text) {
    const n = utf8Length(text);
    const max = this._maxValueBytes(store);
    if (n > max) throw new ZooSyncError('value_too_large', `value: ${n} bytes, over the store's maxValueBytes (${max})`, { store });
    return n;
  }

  /**
   * Writes records and their mutations in one IndexedDB transaction.
   * @param {{op: 'put'|'delete', store: string, key: string, value?: any, text?: string}[]} ops
   * @param {boolean} group one `tx` group
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
      const maxTx = this._opts.maxTxBytes || 1000000;
      const root = this._opts.root || '/zoosync';
      let bytes = 0;
      for (const o of ops) bytes += PUSH_OP_OVERHEAD + utf8Length(zkPath(root, o.store, o.key)) + (o.text ? utf8Length(o.text) : 0);
      if (bytes > maxTx) throw new ZooSyncError('tx_too_large', `transaction: takes about ${bytes} bytes in one ZooKeeper multi, over ${maxTx}`, { store: ops[0].store });
      txId = 't-' + randomId(6);
    }
    const now = Date.now();
    /** @type {Map<string, Change[]>} */
    const changes = new Map();
    await inTx(this._idb, [RECORDS, MUTS, META], 'readwrite', async (tx) => {
      // Every read is issued at once (the ids and the previous records); the
      // writes are then issued together, without waiting on each request.
      const recs = tx.objectStore(RECORDS);
      const muts = tx.objectStore(MUTS);
      const idsP = allocIds(tx, ops.length);
      const prevsP = new Set(ops.map((o) => o.store)).size === 1
        ? getRecords(recs, ops[0].store, ops.map((o) => o.key))
        : Promise.all(ops.map((o) => rq(recs.get([o.store, o.key]))));
      const [{ first }, prevs] = await Promise.all([idsP, prevsP]);
      /** @type {Map<string, any>} the record as this transaction left it (a key written twice) */
      const latest = new Map();
      for (let i = 0; i < ops.length; i++) {
        const o = ops[i];
        const id = JSON.stringify([o.store, o.key]);
        const prev = latest.has(id) ? latest.get(id) : prevs[i];
        const rec = prev ? { ...prev } : { s: o.store, k: o.key, ver: 0, c: '', e: 0 };
        rec.d = o.op === 'delete';
        rec.v = o.op === 'put' ? o.value : undefined;
        latest.set(id, rec);
        putRec(recs, rec);
        /** @type {any} */
        const m = { id: first + i, s: o.store, k: o.key, op: o.op, at: now };
        if (o.op === 'put') m.v = o.value;
        if (txId) m.tx = txId;
        muts.add(m);
        if (!changes.has(o.store)) changes.set(o.store, []);
        // o.value is the client's own copy (parsed from its JSON text); _deliver clones it per subscriber.
        changes.get(o.store).push({ key: o.key, value: rec.v, deleted: rec.d, origin: 'local' });
      }
    });
    for (const [store, list] of changes) this._deliver(store, list, true);
    this._post({ t: 'kick' });
    if (this._syncer) this._syncer.kick();
    this._refreshPending();
  }

  // ---- internals: delivery, tabs, status ----

  /** Calls this tab's subscribers and, when `broadcast`, the other tabs'. */
  _deliver(store, changes, broadcast) {
    if (!changes.length) return;
    if (broadcast) this._post({ t: 'changes', store, changes });
    const subs = this._subs.get(store);
    if (!subs) return;
    for (const fn of [...subs]) {
      try { fn(changes.map((c) => ({ ...c, value: clone(c.value) }))); } catch (e) { setTimeout(() => { throw e; }); }
    }
  }

  _post(msg) {
    if (!this._bc || this._closed) return;
    try { this._bc.postMessage(msg); } catch { /* closed */ }
  }

  _onMessage(msg) {
    if (this._closed || !msg || typeof msg !== 'object') return;
    switch (msg.t) {
      case 'changes': this._deliver(msg.store, msg.changes, false); if (msg.changes.some((c) => c.origin === 'local')) this._refreshPending(); break;
      case 'kick': if (this._syncer) this._syncer.kick(); this._refreshPending(); break;
      case 'sync': if (this._syncer) this._syncer.syncNow(null).catch(() => {}); break;
      case 'destroy': this._shutdown('destroyed').catch(() => {}); break;
      case 'hello': if (this._leader) this._post({ t: 'status', status: this._status }); break;
      case 'status':
        if (!this._leader) { this._leaderStatus = msg.status; this._setStatus({}); }
        break;
      case 'conflict': this._em.emit('conflict', msg.c); break;
      case 'error': this._em.emit('error', errorFromInfo(msg.e)); break;
      case 'leader': if (!this._leader) { this._leaderStatus = msg.status || null; this._setStatus({}); } break;
      default: break;
    }
  }

  _pageOnline() {
    const nav = globalThis.navigator;
    return !(nav && nav.onLine === false);
  }

  _onlineChanged() {
    const online = this._pageOnline() && !this._paused;
    this._setStatus({ online });
    if (this._syncer) this._syncer.onlineChanged(online);
  }

  /** @param {Partial<Status>} patch @param {boolean} [flush] emit now rather than coalesced */
  _setStatus(patch, flush = false) {
    Object.assign(this._status, patch);
    this._status.online = this._pageOnline() && !this._paused;
    this._status.leader = this._leader;
    if (!this._leader && this._leaderStatus) {
      // The leader counts the same change log: its figures win once it has answered.
      for (const k of ['connected', 'lastSyncAt', 'progress', 'error', 'pending', 'oldestPendingMs']) {
        if (k === 'pending' || k === 'oldestPendingMs') { if (!('pending' in patch)) this._status[k] = this._leaderStatus[k]; } else this._status[k] = this._leaderStatus[k];
      }
    } else if (!this._leader) {
      this._status.connected = false;
    }
    const emit = () => {
      this._statusTimer = null;
      if (this._closed) return;
      const s = this.status;
      const text = JSON.stringify(s);
      if (text === this._lastStatusText) return;
      this._lastStatusText = text;
      if (this._leader) this._post({ t: 'status', status: s });
      this._em.emit('status', s);
    };
    if (flush) { clearTimeout(this._statusTimer); emit(); return; }
    if (this._statusTimer) return;
    this._statusTimer = setTimeout(emit, 0);
  }

  async _countPending() {
    return inTx(this._idb, [MUTS], 'readonly', (tx) => rq(tx.objectStore(MUTS).count()));
  }

  async _refreshPending() {
    if (this._closed) return;
    try {
      const { n, oldest } = await inTx(this._idb, [MUTS], 'readonly', async (tx) => {
        const st = tx.objectStore(MUTS);
        const n = await rq(st.count());
        let oldest = null;
        if (n) {
          const c = await rq(st.openCursor());
          if (c) oldest = c.value.at;
        }
        return { n, oldest };
      });
      this._oldestAt = oldest;
      this._setStatus({ pending: n, oldestPendingMs: oldest === null ? null : Math.max(0, Date.now() - oldest) });
    } catch { /* closing */ }
  }

  _emitConflict(c) {
    this._em.emit('conflict', c);
    this._post({ t: 'conflict', c });
  }

  _emitError(err) {
    const info = errorInfo(err);
    this._setStatus({ error: info });
    this._em.emit('error', err);
    this._post({ t: 'error', e: info });
  }

  // ---- leadership ----

  _campaign() {
    if (this._closed || this._leader || this._campaigning) return;
    const locks = this._opts.locks !== undefined ? this._opts.locks : (globalThis.navigator && globalThis.navigator.locks);
    this._campaigning = true;
    if (!locks) { this._campaigning = false; this._lead(new Promise((r) => { this._resign = r; })); return; }
    this._lockAbort = new AbortController();
    locks.request('zoosync-leader:' + this.name, { signal: this._lockAbort.signal }, () => {
      this._campaigning = false;
      if (this._closed) return undefined;
      return new Promise((release) => {
        this._resign = release;
        this._lead(null);
      });
    }).catch(() => { this._campaigning = false; });
  }

  _lead() {
    this._leader = true;
    this._leaderStatus = null;
    this._syncer = new Syncer(this);
    this._setStatus({ connected: false, progress: null });
    this._post({ t: 'leader', status: this.status });
    this._syncer.start();
  }

  /** Gives up leadership (and re-campaigns unless closing or `sleeping`). */
  async _stepDown(sleeping = false) {
    const s = this._syncer;
    this._syncer = null;
    if (s) await s.stop();
    const wasLeader = this._leader;
    this._leader = false;
    if (this._resign) { const r = this._resign; this._resign = null; r(undefined); }
    if (this._lockAbort && !this._leader) { /* a queued request stays queued unless closing */ }
    if (wasLeader) { this._setStatus({ connected: false }); }
    if (!sleeping && !this._closed && wasLeader) this._campaign();
  }
}

// ------------------------------------------------------------------ syncing

/** The leader's network side: one push worker and one pull/stream worker per store. */
class Syncer {
  /** @param {SyncDB} db */
  constructor(db) {
    this.db = db;
    this.opts = db._opts;
    this.urls = db._urls;
    this.urlIndex = 0;
    this.stopped = false;
    this.abort = new AbortController();
    this.fetch = this.opts.fetch || globalThis.fetch.bind(globalThis);
    this.token = undefined;
    /** @type {Map<string, StoreSync>} */
    this.stores = new Map();
    for (const s of db.stores) this.stores.set(s, new StoreSync(this, s));
    this.timers = [];
  }

  start() {
    if (!this.urls.length) return; // local-only database
    for (const s of this.stores.values()) s.start();
    // Fallback for writes of other tabs whose notice was lost, and status ages.
    const t = setInterval(() => {
      this.db._refreshPending();
      for (const s of this.stores.values()) s.kickPush();
    }, this.opts.checkIntervalMs || 2000);
    this.timers.push(t);
  }

  async stop() {
    this.stopped = true;
    this.abort.abort();
    for (const t of this.timers) clearInterval(t);
    await Promise.all([...this.stores.values()].map((s) => s.stopped()));
  }

  kick() { for (const s of this.stores.values()) s.kickPush(); }

  online() { return this.db._status.online; }

  onlineChanged(online) {
    for (const s of this.stores.values()) s.onlineChanged(online);
  }

  /** @param {AbortSignal|null} signal */
  async syncNow(signal) {
    if (!this.urls.length) return;
    await Promise.all([...this.stores.values()].map((s) => s.syncNow(signal)));
  }

  url() { return this.urls[this.urlIndex % this.urls.length]; }

  failover(fromUrl) {
    if (this.urls.length > 1 && this.url() === fromUrl) this.urlIndex = (this.urlIndex + 1) % this.urls.length;
  }

  /**
   * Makes the next request ask token({refresh: true}) again, unless the token
   * was already renewed since `seen` was current (several streams told at once
   * ask once).
   */
  refreshToken(seen) {
    if (typeof this.opts.token !== 'function') return;
    if (this.token !== seen && this.token !== undefined) return;
    const t = this.opts.token;
    this.token = Promise.resolve().then(() => t({ refresh: true }));
    this.tokenFresh = this.token;
    this.token.catch(() => {});
  }

  async getToken(refresh) {
    const t = this.opts.token;
    if (t === undefined || t === null) return undefined;
    if (typeof t === 'string') return t;
    if (this.token === undefined || (refresh && this.tokenFresh !== this.token)) {
      this.token = Promise.resolve().then(() => t({ refresh: !!refresh }));
      this.tokenFresh = refresh ? this.token : undefined;
    }
    try { return await this.token; } catch (e) { this.token = undefined; throw e; }
  }

  /**
   * One HTTP exchange with the current gateway. Resolves the response (ok);
   * throws ZooSyncError with the protocol's code (or network/timeout).
   * @param {string} method @param {string} path
   * @param {{body?: any, timeoutMs?: number, signal?: AbortSignal, stream?: boolean, headers?: Record<string,string>}} [o]
   */
  async http(method, path, o = {}) {
    let refreshed = false;
    for (;;) {
      const base = this.url();
      const ctl = new AbortController();
      const onAbort = () => ctl.abort();
      this.abort.signal.addEventListener('abort', onAbort);
      if (o.signal) o.signal.addEventListener('abort', onAbort);
      const timeoutMs = o.timeoutMs || this.opts.requestTimeoutMs || 15000;
      let timedOut = false;
      const timer = setTimeout(() => { timedOut = true; ctl.abort(); }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener('abort', onAbort);
        if (o.signal) o.signal.removeEventListener('abort', onAbort);
      };
      /** @type {Record<string, string>} */
      const headers = { ...(o.headers || {}) };
      let token;
      try { token = await this.getToken(refreshed); } catch (e) { cleanup(); throw new ZooSyncError('unauthorized', `token: ${e && e.message}`); }
      if (token) headers.Authorization = 'Bearer ' + token;
      let body;
      if (o.body !== undefined) { headers['Content-Type'] = 'application/json'; body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body); }
      let res;
      try {
        res = await this.fetch(base + path, { method, headers, body, signal: ctl.signal, cache: 'no-store' });
      } catch (e) {
        cleanup();
        if (this.stopped || (o.signal && o.signal.aborted)) throw new ZooSyncError('aborted', 'stopped');
        this.failover(base);
        throw new ZooSyncError(timedOut ? 'timeout' : 'network', `${method} ${base}${path}: ${timedOut ? `no answer in ${timeoutMs} ms` : (e && e.message) || e}`, { details: { url: base } });
      }
      if (o.stream && res.ok) { clearTimeout(timer); res._cleanup = cleanup; res._ctl = ctl; res._base = base; return res; }
      let text;
      try { text = await res.text(); } catch (e) {
        cleanup();
        if (this.stopped) throw new ZooSyncError('aborted', 'stopped');
        this.failover(base);
        throw new ZooSyncError(timedOut ? 'timeout' : 'network', `${method} ${base}${path}: body: ${(e && e.message) || e}`);
      }
      cleanup();
      let json = null;
      if (text) { try { json = JSON.parse(text); } catch { json = null; } }
      if (res.ok) return { status: res.status, json, headers: res.headers, base };
      const ra = Number(res.headers.get('Retry-After'));
      const code = (json && json.error) || (res.status >= 500 ? 'unavailable' : `http_${res.status}`);
      const err = new ZooSyncError(code, (json && json.message) || `${method} ${path}: HTTP ${res.status}`, {
        status: res.status, retryAfter: Number.isFinite(ra) && ra > 0 ? ra : undefined, details: json,
      });
      if (res.status === 401 && !refreshed && typeof this.opts.token === 'function') { refreshed = true; continue; }
      if (res.status >= 500) this.failover(base);
      throw err;
    }
  }
}

/** The sync state machine of one store. */
class StoreSync {
  /** @param {Syncer} sy @param {string} store */
  constructor(sy, store) {
    this.sy = sy;
    this.db = sy.db;
    this.store = store;
    this.pushWake = new AbortController();
    this.pullWake = new AbortController();
    this.pushWanted = true;
    this.fails = { push: 0, pull: 0 };
    this.notBefore = { push: 0, pull: 0 };
    this.workers = [];
    this.pushIdle = Promise.resolve();
    this.streamCtl = null;
    this.applyLock = Promise.resolve();
    /** @type {string|undefined} partial replication */
    this.prefix = this.db._prefix.get(store);
  }

  /** The `prefix=` query parameter of a partially replicated store ('' when whole). */
  pq() { return this.prefix ? 'prefix=' + encodeURIComponent(this.prefix) : ''; }

  get o() { return this.sy.opts; }

  start() {
    this.workers.push(this.pushLoop(), this.pullLoop());
  }

  async stopped() {
    this.pushWake.abort(); this.pullWake.abort();
    if (this.streamCtl) this.streamCtl.abort();
    await Promise.allSettled(this.workers);
  }

  kickPush() { this.pushWanted = true; this.pushWake.abort(); }

  onlineChanged(online) {
    this.fails.push = 0; this.fails.pull = 0;
    this.notBefore = { push: 0, pull: 0 };
    if (!online && this.streamCtl) this.streamCtl.abort();
    this.pushWake.abort(); this.pullWake.abort();
  }

  async waitOnline() {
    while (!this.sy.stopped && !this.sy.online()) await this.sleepPull(60000, 'both');
  }

  async sleepPush(ms) {
    if (this.pushWake.signal.aborted) this.pushWake = new AbortController();
    await sleep(ms, this.pushWake.signal, this.sy.abort.signal);
    if (this.pushWake.signal.aborted) this.pushWake = new AbortController();
  }

  /** Sleeps a backoff delay that kicks do not cut short (an online event does). */
  async backoff(kind, err) {
    const until = Date.now() + this.backoffMs(kind, err);
    this.notBefore[kind] = until;
    while (!this.sy.stopped && this.notBefore[kind] === until && Date.now() < until) {
      if (kind === 'push') await this.sleepPush(until - Date.now()); else await this.sleepPull(until - Date.now());
    }
  }

  async sleepPull(ms) {
    if (this.pullWake.signal.aborted) this.pullWake = new AbortController();
    await sleep(ms, this.pullWake.signal, this.sy.abort.signal);
    if (this.pullWake.signal.aborted) this.pullWake = new AbortController();
  }

  backoffMs(kind, err) {
    const n = this.fails[kind]++;
    const base = (this.o.backoff && this.o.backoff.baseMs) || 250;
    const max = (this.o.backoff && this.o.backoff.maxMs) || 30000;
    let ms;
    if (err && isTransient(err) && n < this.sy.urls.length - 1 && err.status !== 429) ms = 20; // try the next URL at once
    else {
      const d = Math.min(max, base * 2 ** Math.min(n, 20));
      ms = d / 2 + Math.random() * d / 2; // jitter
    }
    if (err && err.retryAfter) ms = Math.max(ms, err.retryAfter * 1000);
    if (err && !isTransient(err)) ms = Math.max(ms, Math.min(max, 5000));
    return ms;
  }

  async loadDesc() {
    try {
      const r = await this.sy.http('GET', `/v1/stores/${this.store}` + (this.prefix ? '?' + this.pq() : ''));
      const d = r.json;
      this.db._desc.set(this.store, d);
      await inTx(this.db._idb, [META], 'readwrite', (tx) => metaPut(tx, 'desc:' + this.store, d));
      return d;
    } catch (e) {
      if (e.code === 'store_not_found') throw Object.assign(e, { store: this.store });
      if (isTransient(e) || e.code === 'aborted') throw e;
      return this.db._desc.get(this.store);
    }
  }

  reportError(e) {
    if (e.code === 'aborted' || this.sy.stopped) return;
    if (!e.store) e.store = this.store;
    this.db._emitError(e);
  }

  // ---- push ----

  async pushLoop() {
    while (!this.sy.stopped) {
      await this.waitOnline();
      if (this.sy.stopped) break;
      if (!this.pushWanted) { await this.sleepPush(this.o.checkIntervalMs || 2000); continue; }
      this.pushWanted = false;
      try {
        await this.pushAll();
        this.fails.push = 0;
        this.db._setStatus({ error: null, lastSyncAt: Date.now() });
      } catch (e) {
        if (this.sy.stopped || e.code === 'aborted') break;
        this.pushWanted = true;
        if (!isTransient(e) || this.fails.push > 2) this.reportError(e);
        await this.backoff('push', e);
      }
    }
  }

  /** Pushes until this store has no pending mutation. */
  async pushAll() {
    await this.restoreKeys();
    for (;;) {
      if (this.sy.stopped) throw new ZooSyncError('aborted', 'stopped');
      const batch = await this.readBatch();
      if (!batch.units.length) return;
      await this.sendUnits(batch.client, batch.units);
      this.db._refreshPending();
    }
  }

  /** Reads the longest prefix of the queue that can go in one request. */
  async readBatch() {
    return inTx(this.db._idb, [MUTS, RECORDS, META], 'readonly', async (tx) => {
      const [client, rows] = await Promise.all([
        metaGet(tx, 'client'),
        rq(tx.objectStore(MUTS).index('by_store').getAll(idRange(this.store), MAX_MUTATIONS_PER_PUSH + 1)),
      ]);
      const units = [];
      const keys = new Set();
      let count = 0, bytes = 0;
      const maxBytes = this.o.maxPushBytes || 1 << 20;
      let i = 0;
      while (i < rows.length) {
        let j = i + 1;
        if (rows[i].tx) while (j < rows.length && rows[j].tx === rows[i].tx) j++;
        const unit = rows.slice(i, j);
        if (rows[i].tx && j === rows.length && rows.length > MAX_MUTATIONS_PER_PUSH && units.length) break; // group may go on
        const ukeys = new Set(unit.map((m) => m.k));
        if ([...ukeys].some((k) => keys.has(k))) break;
        const ubytes = unit.reduce((a, m) => a + 100 + m.k.length * 3 + (m.op === 'put' ? utf8Length(JSON.stringify(m.v)) : 0), 0);
        if (units.length && (count + unit.length > MAX_MUTATIONS_PER_PUSH || bytes + ubytes > maxBytes)) break;
        for (const k of ukeys) keys.add(k);
        count += unit.length; bytes += ubytes;
        units.push(unit);
        i = j;
      }
      // Bases: the server version each key's local state is based on.
      const recs = tx.objectStore(RECORDS);
      const firsts = [];
      for (const unit of units) {
        const seen = new Set();
        for (const m of unit) {
          if (!seen.has(m.k)) { firsts.push(m); seen.add(m.k); } else m.base = undefined; // later member of the same group on the same key
        }
      }
      const rs = await getRecords(recs, this.store, firsts.map((m) => m.k));
      firsts.forEach((m, i) => { const r = rs[i]; m.base = r ? r.ver || 0 : 0; });
      return { client, units };
    });
  }

  /** Sends units; a unit the server rejects for good is isolated by halving. */
  async sendUnits(client, units) {
    const muts = units.flat();
    const body = {
      client,
      mutations: muts.map((m) => {
        const o = { id: m.id, key: m.k, op: m.op };
        if (m.op === 'put') o.value = m.v;
        if (m.base !== undefined) o.base = m.base;
        if (m.tx) o.tx = m.tx;
        return o;
      }),
    };
    let res;
    try {
      res = await this.sy.http('POST', `/v1/stores/${this.store}/push`, { body });
    } catch (e) {
      if (e.code === 'aborted' || isTransient(e)) throw e;
      if (NON_RETRYABLE_KEEP.has(e.status) || e.code === 'store_not_found') throw Object.assign(e, { store: this.store });
      if (e.status >= 400 && e.status < 500) {
        if (units.length > 1) {
          const mid = Math.ceil(units.length / 2);
          await this.sendUnits(client, units.slice(0, mid));
          await this.sendUnits(client, units.slice(mid));
          return;
        }
        await this.rejectUnit(units[0], e);
        return;
      }
      throw e;
    }
    await this.applyResults(muts, res.json);
  }

  /** A unit the server rejected for good: report it, drop it, restore the server's state. */
  async rejectUnit(unit, e) {
    const changed = await inTx(this.db._idb, [MUTS], 'readwrite', async (tx) => {
      const st = tx.objectStore(MUTS);
      for (const m of unit) st.delete(m.id);
      const lefts = await Promise.all(unit.map((m) => rq(st.index('by_key').count([this.store, m.k]))));
      return unit.filter((m, i) => !lefts[i]).map((m) => m.k);
    });
    const mutation = unit.length === 1 ? mutInfo(unit[0], this.store) : unit.map((m) => mutInfo(m, this.store));
    const err = new ZooSyncError(e.code, `${this.store}: mutation ${unit.map((m) => m.id).join(',')} rejected by the server: ${e.message}`,
      { status: e.status, store: this.store, mutation, details: e.details });
    this.db._emitError(err);
    this.db._refreshPending();
    if (e.code === 'value_too_large') await this.loadDesc().catch(() => {}); // the limit may have been lowered
    await this.refetch([...new Set(changed)]).catch(() => {});
  }

  /** Adopts the server's present state of keys that have no pending mutation. */
  async refetch(keys) {
    for (const k of keys) {
      let state;
      try {
        const r = await this.sy.http('GET', `/v1/stores/${this.store}/records/${encodeURIComponent(k)}`);
        state = { value: r.json.value, version: r.json.version, cursor: r.json.cursor, deleted: false };
      } catch (e) {
        if (e.code !== 'not_found' && e.status !== 404 && e.status !== 403) throw e; // 403: the token may not read it
        state = { deleted: true };
      }
      const out = await inTx(this.db._idb, [RECORDS, MUTS], 'readwrite', async (tx) => {
        const pend = await rq(tx.objectStore(MUTS).index('by_key').count([this.store, k]));
        const recs = tx.objectStore(RECORDS);
        const had = await rq(recs.get([this.store, k]));
        const rec = had || { s: this.store, k, ver: 0, c: '', e: 0, d: true };
        if (pend) { if (state.version) { rec.ver = state.version; putRec(recs, rec); } return null; }
        const before = JSON.stringify([!!rec.d, rec.d ? null : rec.v]);
        if (state.deleted) { rec.d = true; rec.v = undefined; } else {
          rec.d = false; rec.v = state.value; rec.ver = state.version;
          if (state.cursor && state.cursor > (rec.c || '')) rec.c = state.cursor;
        }
        if (rec.d) recs.delete([this.store, k]); // nothing pending needs a tombstone
        else putRec(recs, rec);
        return before === JSON.stringify([!!rec.d, rec.d ? null : rec.v]) ? null : { key: k, value: rec.v, deleted: !!rec.d, origin: 'remote' };
      });
      if (out) this.db._deliver(this.store, [out], true);
    }
  }

  /**
   * Applies a push response: one IndexedDB transaction, then restores and
   * conflicts. A `rejected` mutation leaves the queue in that transaction, and
   * its key is queued for a restore from the server (meta `restore:<store>`,
   * so a crash or a failed GET does not lose it); a rejected `tx` group is
   * undone whole, whatever its other members' results say.
   */
  async applyResults(muts, body) {
    const byId = new Map(muts.map((m) => [m.id, m]));
    const results = (body.results || []).filter((r) => byId.has(r.id));
    const badTx = new Set(results.filter((r) => r.status === 'rejected' && byId.get(r.id).tx).map((r) => byId.get(r.id).tx));
    const conflicts = [];
    const dups = [];
    let rejected = [];
    await inTx(this.db._idb, [MUTS, RECORDS, META], 'readwrite', async (tx) => {
      const ms = tx.objectStore(MUTS);
      const recs = tx.objectStore(RECORDS);
      const applied = [];
      const gone = [];
      for (const r of results) {
        const m = byId.get(r.id);
        if (r.status === 'rejected' || (m.tx && badTx.has(m.tx))) {
          rejected.push({ m, reason: r.status === 'rejected' ? String(r.reason || 'rejected') : 'tx_aborted', errors: r.errors });
          continue;
        }
        if (r.status === 'conflict') { conflicts.push({ m, r }); continue; }
        gone.push(m.id);
        if (r.status === 'duplicate') { dups.push(m.k); continue; }
        applied.push({ m, r });
      }
      if (rejected.length) {
        // Only those still queued: a retried request's answer is handled once.
        const still = await Promise.all(rejected.map((x) => rq(ms.getKey(x.m.id))));
        rejected = rejected.filter((x, i) => still[i] !== undefined);
        for (const x of rejected) gone.push(x.m.id);
        if (rejected.length) {
          const prev = (await metaGet(tx, 'restore:' + this.store)) || [];
          await metaPut(tx, 'restore:' + this.store, [...new Set([...prev, ...rejected.map((x) => x.m.k)])]);
        }
      }
      deleteIds(ms, gone);
      if (applied.length) {
        // One read per key, all issued at once; results apply in order on the in-memory record.
        const keys = [...new Set(applied.map((a) => a.m.k))];
        const got = await getRecords(recs, this.store, keys);
        const byKey = new Map(keys.map((k, i) => [k, got[i]]));
        const dirty = new Set();
        for (const { m, r } of applied) {
          const rec = byKey.get(m.k);
          if (!rec) continue;
          if (Number.isInteger(r.version)) rec.ver = r.version;
          else if (m.op === 'delete') rec.ver = rec.ver || 0;
          if (r.cursor && r.cursor > (rec.c || '')) rec.c = r.cursor;
          dirty.add(m.k);
        }
        for (const k of dirty) putRec(recs, byKey.get(k));
      }
      if (gone.length) await sweepTombstones(tx, this.store, await metaGet(tx, 'cursor:' + this.store));
    });
    if (rejected.length) {
      this.db._refreshPending();
      await this.restoreKeys().catch((e) => { this.pushWanted = true; if (e.code !== 'aborted') this.reportError(e); });
      this.reportRejected(rejected);
    }
    if (dups.length) await this.refetch([...new Set(dups)]).catch(() => {});
    if (conflicts.length) await this.resolveConflicts(conflicts);
  }

  /** Restores the keys of rejected mutations from the server (meta `restore:<store>`), then forgets them. */
  async restoreKeys() {
    const keys = await inTx(this.db._idb, [META], 'readonly', (tx) => metaGet(tx, 'restore:' + this.store));
    if (!keys || !keys.length) return;
    await this.refetch(keys);
    await inTx(this.db._idb, [META], 'readwrite', async (tx) => {
      const now = (await metaGet(tx, 'restore:' + this.store)) || [];
      const left = now.filter((k) => !keys.includes(k));
      if (left.length) await metaPut(tx, 'restore:' + this.store, left); else tx.objectStore(META).delete('restore:' + this.store);
    });
  }

  /**
   * One `error` event per rejected mutation with a reason of its own (a group's
   * `tx_aborted` members ride along in `group`); code = the reason.
   * @param {{m: any, reason: string, errors?: any[]}[]} list
   */
  reportRejected(list) {
    const groups = new Map();
    for (const x of list) if (x.m.tx) { if (!groups.has(x.m.tx)) groups.set(x.m.tx, []); groups.get(x.m.tx).push(x); }
    const own = list.filter((x) => x.reason !== 'tx_aborted');
    for (const members of groups.values()) if (!members.some((x) => x.reason !== 'tx_aborted')) own.push(members[0]);
    for (const x of own) {
      const group = x.m.tx ? groups.get(x.m.tx).map((y) => mutInfo(y.m, this.store)) : undefined;
      const err = new ZooSyncError(x.reason, `${this.store}/${x.m.k}: mutation ${x.m.id} rejected by the server (${x.reason})` +
        (group && group.length > 1 ? `; its tx group of ${group.length} is undone` : ''),
      { store: this.store, mutation: mutInfo(x.m, this.store), errors: Array.isArray(x.errors) ? x.errors : [], group });
      this.db._emitError(err);
    }
  }

  /** Calls onConflict for each conflict and writes the resolutions. */
  async resolveConflicts(list) {
    // The local side of each conflict, and the newest pending id it accounts for.
    const locals = await inTx(this.db._idb, [RECORDS, MUTS], 'readonly', async (tx) => {
      return Promise.all(list.map(async ({ m }) => {
        const [rec, pend] = await Promise.all([
          rq(tx.objectStore(RECORDS).get([this.store, m.k])),
          rq(tx.objectStore(MUTS).index('by_key').getAll([this.store, m.k])),
        ]);
        return { rec, seenMax: pend.reduce((a, p) => Math.max(a, p.id), 0) };
      }));
    });
    const resolved = [];
    for (let i = 0; i < list.length; i++) {
      const { m, r } = list[i];
      const rec = locals[i].rec;
      const cur = r.current;
      /** @type {ConflictInfo} */
      const info = {
        store: this.store, key: m.k,
        local: rec && !rec.d ? clone(rec.v) : undefined,
        remote: cur ? clone(cur.value) : undefined,
        localDeleted: !rec || !!rec.d, remoteDeleted: !cur,
        remoteVersion: cur ? cur.version : 0,
        mutation: mutInfo(m, this.store),
        ...(r.reason ? { reason: r.reason } : {}),
      };
      let value, error = null;
      try {
        value = await this.db._onConflict({ ...info, local: clone(info.local), remote: clone(info.remote) });
        if (value !== undefined) value = JSON.parse(toJSONText(value));
      } catch (e) { error = e; }
      resolved.push({ m, info, value, error, seenMax: locals[i].seenMax });
    }
    const changes = [];
    const newGroups = new Map();
    await inTx(this.db._idb, [MUTS, RECORDS, META, CONFLICTS], 'readwrite', async (tx) => {
      const ms = tx.objectStore(MUTS);
      const recs = tx.objectStore(RECORDS);
      const cs = tx.objectStore(CONFLICTS);
      const adds = [];
      for (const x of resolved) {
        const { m, info } = x;
        const still = await rq(ms.get(m.id));
        if (!still) continue; // handled already (a retried response)
        ms.delete(m.id);
        const rest = (await rq(ms.index('by_key').getAll([this.store, m.k]))).filter((p) => p.id !== m.id);
        const newer = rest.filter((p) => p.id > x.seenMax);
        const rec = await rq(recs.get([this.store, m.k])) || { s: this.store, k: m.k, ver: 0, c: '', e: 0 };
        rec.ver = info.remoteVersion;
        if (x.error) {
          // Unresolved: keep it readable, show the remote state, push nothing.
          cs.put({ s: this.store, k: m.k, local: info.local, localDeleted: info.localDeleted, remote: info.remote,
            remoteDeleted: info.remoteDeleted, remoteVersion: info.remoteVersion, at: Date.now(), error: String(x.error && x.error.message || x.error) });
          for (const p of rest) if (p.id <= x.seenMax) ms.delete(p.id);
          if (!newer.length) {
            rec.d = info.remoteDeleted; rec.v = info.remote;
            changes.push({ key: m.k, value: rec.v, deleted: rec.d, origin: 'remote' });
          }
          putRec(recs, rec);
          continue;
        }
        cs.delete([this.store, m.k]);
        if (newer.length) { putRec(recs, rec); continue; } // a newer local write wins, rebased on the remote version
        const deleted = x.value === undefined;
        rec.d = deleted; rec.v = deleted ? undefined : x.value;
        putRec(recs, rec);
        changes.push({ key: m.k, value: clone(rec.v), deleted, origin: 'remote' });
        let rewritten = false;
        for (const p of rest) {
          if (p.tx) { p.op = deleted ? 'delete' : 'put'; if (deleted) delete p.v; else p.v = x.value; ms.put(p); rewritten = true; }
          else ms.delete(p.id);
        }
        const differs = deleted ? !info.remoteDeleted : (info.remoteDeleted || !same(x.value, info.remote));
        if (differs && !rewritten) adds.push({ m, deleted, value: x.value });
      }
      if (adds.length) {
        const { first } = await allocIds(tx, adds.length);
        adds.forEach((a, i) => {
          const nm = { id: first + i, s: this.store, k: a.m.k, op: a.deleted ? 'delete' : 'put', at: Date.now() };
          if (!a.deleted) nm.v = a.value;
          if (a.m.tx) { // resolutions of one aborted group stay one group
            if (!newGroups.has(a.m.tx)) newGroups.set(a.m.tx, 't-' + randomId(6));
            nm.tx = newGroups.get(a.m.tx);
          }
          ms.add(nm);
        });
      }
    });
    for (const x of resolved) {
      const c = { ...x.info, resolved: x.error ? undefined : clone(x.value), ...(x.error ? { unresolved: true, error: String(x.error && x.error.message || x.error) } : {}) };
      this.db._emitConflict(c);
      if (x.error) this.db._emitError(new ZooSyncError('conflict_unresolved', `${this.store}/${x.m.k}: onConflict threw: ${x.error && x.error.message || x.error}`, { store: this.store, mutation: x.info.mutation }));
    }
    if (changes.length) this.db._deliver(this.store, changes, true);
    this.db._refreshPending();
    this.pushWanted = true;
  }

  /** @param {AbortSignal|null} signal stops waiting */
  async syncNow(signal) {
    this.kickPush();
    for (;;) {
      if (this.sy.stopped) throw new ZooSyncError('closed', 'leadership ended');
      if (signal && signal.aborted) return;
      const n = await inTx(this.db._idb, [MUTS], 'readonly', (tx) => rq(tx.objectStore(MUTS).index('by_store').count(idRange(this.store))));
      if (n === 0) break;
      await sleep(50, signal || undefined);
    }
    if (signal && signal.aborted) return;
    await this.pullAll(true).catch((e) => { if (e.code === 'cursor_expired' || e.code === 'invalid_cursor') this.pullWake.abort(); else throw e; });
  }

  // ---- pull and live ----

  async pullLoop() {
    while (!this.sy.stopped) {
      await this.waitOnline();
      if (this.sy.stopped) break;
      try {
        await this.loadDesc();
        await this.pullAll(false);
        this.fails.pull = 0;
        await this.live();
      } catch (e) {
        this.db._setStatus({ connected: false });
        if (this.sy.stopped || e.code === 'aborted') { if (this.sy.stopped) break; continue; }
        if (e.code === 'cursor_expired' || e.code === 'invalid_cursor') {
          await this.startResync();
          continue;
        }
        if (!isTransient(e) || this.fails.pull > 2) this.reportError(e);
        await this.backoff('pull', e);
      }
    }
  }

  async startResync() {
    await inTx(this.db._idb, [META], 'readwrite', async (tx) => {
      const r = await metaGet(tx, 'resync:' + this.store);
      const epoch = ((r && r.epoch) || 0) + 1;
      await metaPut(tx, 'resync:' + this.store, { epoch, active: true });
      tx.objectStore(META).delete('cursor:' + this.store);
      tx.objectStore(META).delete('initial:' + this.store);
    });
  }

  /** Pulls pages until `more` is false; each page in its own IndexedDB transaction. */
  async pullAll(once) {
    const limit = this.o.pageSize || 1000;
    let st = await inTx(this.db._idb, [META], 'readonly', async (tx) => ({
      cursor: await metaGet(tx, 'cursor:' + this.store),
      initial: await metaGet(tx, 'initial:' + this.store),
      resync: await metaGet(tx, 'resync:' + this.store),
    }));
    let initial = st.initial || null;
    if (!st.cursor || (initial && !initial.done)) {
      const d = this.db._desc.get(this.store);
      initial = { received: (initial && initial.received) || 0, total: d ? d.records : null, done: false };
      this.setProgress(initial);
    }
    let cursor = st.cursor;
    for (;;) {
      const q = `limit=${limit}` + (this.prefix ? '&' + this.pq() : '') + (cursor ? `&since=${encodeURIComponent(cursor)}` : '');
      const r = await this.sy.http('GET', `/v1/stores/${this.store}/changes?${q}`);
      const page = r.json;
      const isLast = !page.more;
      if (initial && !initial.done) {
        initial = { ...initial, received: initial.received + page.changes.length, done: isLast };
        if (initial.total !== null && initial.received > initial.total) initial.total = initial.received;
      }
      await this.applyRemote(page.changes, page.cursor, { initial, finishResync: isLast });
      cursor = page.cursor;
      if (initial) this.setProgress(initial);
      this.db._setStatus({ lastSyncAt: Date.now() });
      if (isLast) break;
      if (once === 'one') break;
    }
    if (initial && initial.done) this.setProgress(null);
  }

  setProgress(p) {
    const prog = { ...(this.db._status.progress || {}) };
    if (p) prog[this.store] = { received: p.received, total: p.total, done: !!p.done };
    else delete prog[this.store];
    this.db._setStatus({ progress: Object.keys(prog).length ? prog : null }, true);
  }

  /**
   * Applies changes from the feed in one transaction, with the new cursor.
   * A change never rolls a record back (its cursor must be greater) and never
   * overwrites a record with pending local mutations.
   */
  async applyRemote(changes, cursor, { initial = null, finishResync = false } = {}) {
    // Partial replication: a gateway that ignored ?prefix= sends more; keep only the prefix.
    if (this.prefix) changes = changes.filter((c) => typeof c.key === 'string' && c.key.startsWith(this.prefix));
    const run = async () => {
      const out = [];
      await inTx(this.db._idb, [RECORDS, MUTS, META], 'readwrite', async (tx) => {
        const recs = tx.objectStore(RECORDS);
        const ms = tx.objectStore(MUTS);
        const [old, rs] = await Promise.all([metaGet(tx, 'cursor:' + this.store), metaGet(tx, 'resync:' + this.store)]);
        const epoch = rs && rs.active ? rs.epoch : null;
        if (old && cursor && cursor < old && !epoch) return; // an older page than what we have: nothing new
        const anyPending = (await rq(ms.index('by_store').count(idRange(this.store)))) > 0;
        const prevs = await getRecords(recs, this.store, changes.map((c) => c.key));
        const pends = anyPending ? await Promise.all(changes.map((c) => rq(ms.index('by_key').count([this.store, c.key])))) : null;
        changes.forEach((c, i) => {
          const prev = prevs[i];
          if (prev && prev.c && c.cursor <= prev.c) { if (epoch !== null && prev.e !== epoch) { prev.e = epoch; putRec(recs, prev); } return; }
          if (pends && pends[i]) { if (prev && epoch !== null) { prev.e = epoch; putRec(recs, prev); } return; }
          if (c.deleted) {
            // Nothing pending: the row goes (no tombstone; see sweepTombstones).
            if (prev) recs.delete([this.store, c.key]);
            if (prev && !prev.d) out.push({ key: c.key, value: undefined, deleted: true, origin: 'remote' });
            return;
          }
          const rec = { s: this.store, k: c.key, d: false, v: c.value, ver: c.version, c: c.cursor, e: epoch !== null ? epoch : (prev ? prev.e : 0) };
          putRec(recs, rec);
          out.push({ key: c.key, value: rec.v, deleted: false, origin: 'remote' });
        });
        if (cursor && (!old || cursor > old || epoch !== null)) await metaPut(tx, 'cursor:' + this.store, cursor);
        const now = cursor && old && cursor < old && epoch === null ? old : (cursor || old);
        if (now) await sweepTombstones(tx, this.store, now);
        if (initial) await metaPut(tx, 'initial:' + this.store, initial);
        if (epoch !== null && finishResync) {
          // Drop what the server no longer has (unless pending locally or newer than the snapshot).
          const all = await rq(recs.getAll(storeRange(this.store)));
          const stale = all.filter((r) => !(r.e === epoch || (r.c && cursor && r.c > cursor)));
          const ps = await Promise.all(stale.map((r) => rq(ms.index('by_key').count([this.store, r.k]))));
          stale.forEach((r, i) => {
            if (ps[i]) return;
            recs.delete([this.store, r.k]);
            if (!r.d) out.push({ key: r.k, value: undefined, deleted: true, origin: 'remote' });
          });
          await metaPut(tx, 'resync:' + this.store, { epoch, active: false });
        }
      });
      this.db._deliver(this.store, out, true);
    };
    const p = this.applyLock.then(run);
    this.applyLock = p.catch(() => {});
    return p;
  }

  /** Holds the event stream until it ends; applies each event. */
  async live() {
    const cursor = await inTx(this.db._idb, [META], 'readonly', (tx) => metaGet(tx, 'cursor:' + this.store));
    const ctl = new AbortController();
    this.streamCtl = ctl;
    const keepalive = this.o.keepaliveMs || 15000;
    let res;
    try {
      const q = [this.pq(), cursor ? `since=${encodeURIComponent(cursor)}` : ''].filter(Boolean).join('&');
      res = await this.sy.http('GET', `/v1/stores/${this.store}/events` + (q ? '?' + q : ''), {
        stream: true, signal: ctl.signal, headers: { Accept: 'text/event-stream', ...(cursor ? { 'Last-Event-ID': cursor } : {}) },
        timeoutMs: Math.max(2 * keepalive, 2000),
      });
    } catch (e) {
      this.streamCtl = null;
      if (e.status === 404 && e.code === 'not_found') return this.poll(); // a gateway without /events
      throw e;
    }
    const base = res._base;
    const tokenAtOpen = this.sy.token; // the token this stream was opened with
    this.db._setStatus({ connected: true, lastSyncAt: Date.now() });
    this.fails.pull = 0;
    let dead = false;
    let timer = null;
    const arm = () => { clearTimeout(timer); timer = setTimeout(() => { dead = true; ctl.abort(); }, 2 * keepalive); };
    arm();
    try {
      await readSSE(res.body, arm, async (ev) => {
        if (ev.event === 'resync') throw new ZooSyncError('cursor_expired', 'the event stream asks for a resync');
        if (ev.event === 'reauth') throw new ZooSyncError('reauth', `the event stream asks for a fresh token: ${ev.data}`);
        if (ev.event !== 'change' && ev.event !== 'message') return;
        const data = JSON.parse(ev.data);
        await this.applyRemote(data.changes || [], data.cursor || ev.id);
        this.db._setStatus({ lastSyncAt: Date.now() });
      });
    } catch (e) {
      if (e instanceof ZooSyncError && e.code === 'cursor_expired') throw e;
      if (e instanceof ZooSyncError && e.code === 'reauth') {
        // The token expired (or was revoked): ask token() again, then reopen from the cursor at once.
        this.sy.refreshToken(tokenAtOpen);
        return;
      }
      if (this.sy.stopped) throw new ZooSyncError('aborted', 'stopped');
      if (dead) { this.sy.failover(base); throw new ZooSyncError('stream_dead', `event stream from ${base}: silent for ${2 * keepalive} ms`); }
      if (!this.sy.online()) throw new ZooSyncError('aborted', 'offline');
      this.sy.failover(base);
      throw new ZooSyncError('network', `event stream from ${base}: ${e && e.message}`);
    } finally {
      clearTimeout(timer);
      res._cleanup();
      this.streamCtl = null;
      this.db._setStatus({ connected: false });
    }
    // Closed by the server (shutting down): reconnect, preferably elsewhere.
    this.sy.failover(base);
  }

  /** Without /events: pull now and then. */
  async poll() {
    this.db._setStatus({ connected: true });
    await this.sleepPull(this.o.pollMs || 2000);
    this.db._setStatus({ connected: false });
  }
}

function mutInfo(m, store) {
  const o = { id: m.id, store, key: m.k, op: m.op };
  if (m.op === 'put') o.value = m.v;
  if (m.tx) o.tx = m.tx;
  return o;
}

/**
 * Reads a text/event-stream body: calls onBytes for every chunk (comments
 * included, for the keepalive watchdog) and onEvent for every event.
 * @param {ReadableStream<Uint8Array>} body
 */
async function readSSE(body, onBytes, onEvent) {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let ev = { event: '', data: [], id: '' };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      onBytes();
      buf += dec.decode(value, { stream: true });
      let nl;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
        if (line === '') {
          if (ev.data.length) await onEvent({ event: ev.event || 'message', data: ev.data.join('\n'), id: ev.id });
          ev = { event: '', data: [], id: ev.id };
          continue;
        }
        if (line[0] === ':') continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        let v = i < 0 ? '' : line.slice(i + 1);
        if (v[0] === ' ') v = v.slice(1);
        if (field === 'event') ev.event = v;
        else if (field === 'data') ev.data.push(v);
        else if (field === 'id') ev.id = v;
      }
    }
  } finally {
    try { reader.cancel().catch(() => {}); } catch { /* released */ }
  }
}
