// local.js: the local store and the change log. LocalStore owns the
// IndexedDB connection; the rest of the client reaches IndexedDB only
// through it: its reads and writes, and run(), which runs a function in one
// IndexedDB transaction (the push, pull and conflict code write records,
// their pending mutations and meta together that way). The helpers below
// work inside such a transaction.
//
// The change log is the object store `log` (schema.js, StoredSegment): a
// write puts one segment holding its mutations and one row per key, which
// lists the ids of the key's pending mutations (StoredRecord.p). Requests
// of one transaction are issued
// without awaiting each one (IndexedDB runs them in order); only reads
// whose results decide the writes are awaited.

import { ZooSyncError } from './errors.js';
import { hasLoneSurrogate, orderKey, prefixEnd } from './protocol.js';
import {
  RECORDS, LOG, META, CONFLICTS, META_KEYS, IDX, withIndexFields, newRecord, newClientId,
  pendingMutation, unresolvedConflict, pendingOf, logOf, logRange, segmentKey, newSegment,
} from './schema.js';

/** @typedef {import('./schema.js').StoredRecord} StoredRecord */
/** @typedef {import('./schema.js').StoredMutation} StoredMutation */
/** @typedef {import('./schema.js').StoredSegment} StoredSegment */
/** @typedef {import('../zoosync.d.ts').Change} Change */
/** @typedef {import('../zoosync.d.ts').RangeQuery} RangeQuery */
/**
 * What a log segment held when this tab last wrote or read it whole: its time
 * and size then, and its entries' ids and keys (aligned).
 * @typedef {{at: number, n: number, ids: number[], keys: string[]}} SegmentIndex
 */

/**
 * A local write, validated: `value` is the client's own copy, `text` its JSON.
 * @typedef {{op: 'put'|'delete', store: string, key: string, value?: any, text?: string}} WriteOp
 */

// ---- inside one IndexedDB transaction

/** @param {IDBRequest} r @returns {Promise<any>} */
export function rq(r) {
  return new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
}

/** @param {IDBTransaction} tx @param {string} k @returns {Promise<any>} */
export const metaGet = async (tx, k) => { const r = await rq(tx.objectStore(META).get(k)); return r ? r.v : undefined; };
/** @param {IDBTransaction} tx @param {string} k @param {any} v @returns {Promise<any>} */
export const metaPut = (tx, k, v) => rq(tx.objectStore(META).put({ k, v }));
/** A meta put whose result nobody waits for (a failure aborts the transaction). @param {IDBTransaction} tx @param {string} k @param {any} v */
export const metaSet = (tx, k, v) => { tx.objectStore(META).put({ k, v }); };
/** @param {IDBTransaction} tx @param {string} k */
export const metaDelete = (tx, k) => { tx.objectStore(META).delete(k); };

/** Every record of a store. @param {string} s */
export const storeRange = (s) => IDBKeyRange.bound([s, ''], [s, []]);

/**
 * Puts a record, keeping its index fields right: `o` on live records (the
 * by_order index, range reads), `t` on tombstones (by_tomb, purging).
 * @param {IDBObjectStore} recs @param {StoredRecord} rec
 */
export function putRec(recs, rec) {
  return recs.put(withIndexFields(rec));
}

/**
 * Allocates the client id (once) and `n` consecutive mutation ids inside the
 * caller's write transaction.
 * @param {IDBTransaction} tx @param {number} n
 * @returns {Promise<{client: string, first: number}>}
 */
export async function allocIds(tx, n) {
  let [client, next, destroying] = await Promise.all([metaGet(tx, META_KEYS.client), metaGet(tx, META_KEYS.nextId), metaGet(tx, META_KEYS.destroying)]);
  // After destroy() began (its own transaction, serialized with this one),
  // a write would be deleted with the database: refuse it, aborting tx.
  if (destroying) throw new ZooSyncError('closed', 'the database is being destroyed (destroy() in this or another tab)', { details: { destroying: true } });
  if (!client) { client = newClientId(); tx.objectStore(META).put({ k: META_KEYS.client, v: client }); }
  next = next || 1;
  tx.objectStore(META).put({ k: META_KEYS.nextId, v: next + n });
  return { client, first: next };
}

/**
 * Whether a destroy() began on this database (LocalStore.beginDestroy) and
 * did not finish: the next open deletes it first.
 * @param {IDBDatabase} idb @returns {Promise<boolean>}
 */
export async function destroyBegun(idb) {
  return !!(await inTx(idb, [META], 'readonly', (tx) => metaGet(tx, META_KEYS.destroying)));
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
export async function sweepTombstones(tx, store, cursor) {
  return sweepRows(tx.objectStore(RECORDS), await tombstonesUpTo(tx, store, cursor), new Map(), cursor || '');
}

/**
 * The tombstones of `store` at or below `cursor` (the rows sweepTombstones
 * considers). @param {IDBTransaction} tx @param {string} store @param {string|undefined} cursor
 * @returns {Promise<StoredRecord[]>}
 */
export function tombstonesUpTo(tx, store, cursor) {
  return rq(tx.objectStore(RECORDS).index(IDX.byTomb).getAll(IDBKeyRange.bound([store, ''], [store, cursor || ''])));
}

/**
 * sweepTombstones on rows read before the transaction's own writes:
 * `touched` holds each key those writes changed, as they left it (null:
 * deleted), and a touched row is judged in that state. (The writes create
 * no tombstone, so rows read earlier miss none.)
 * @param {IDBObjectStore} recs @param {StoredRecord[]} rows
 * @param {Map<string, StoredRecord|null>} touched @param {string} cursor
 * @returns {number} rows deleted
 */
export function sweepRows(recs, rows, touched, cursor) {
  let n = 0;
  for (const row of rows) {
    const r = touched.has(row.k) ? touched.get(row.k) : row;
    if (!r || !r.d || (r.c || '') > cursor || pendingOf(r)) continue;
    recs.delete([r.s, r.k]);
    n++;
  }
  return n;
}

/**
 * The records of `keys` (one store), aligned with keys (undefined when absent;
 * a key given twice gets the same object). One getAll over the keys' range
 * when that range holds few other records (a count says; counts are cheap),
 * else one get per key.
 * @param {IDBObjectStore} recs @param {string} store @param {string[]} keys
 * @returns {Promise<(StoredRecord|undefined)[]>}
 */
export async function getRecords(recs, store, keys) {
  const each = () => Promise.all(keys.map((k) => rq(recs.get([store, k]))));
  if (keys.length < 16) return each();
  let lo = keys[0], hi = keys[0];
  for (const k of keys) { if (k < lo) lo = k; if (k > hi) hi = k; } // code-unit order, as IndexedDB compares strings
  const range = IDBKeyRange.bound([store, lo], [store, hi]);
  // The count and a getAll capped just above the number of keys go out
  // together: one round trip when the range holds little else (the usual
  // case); otherwise the getAll read at most cap rows for nothing.
  const cap = keys.length + 64;
  /** @type {[number, StoredRecord[]]} */
  const [n, rows] = await Promise.all([rq(recs.count(range)), rq(recs.getAll(range, cap))]);
  if (n > cap) return each();
  const by = new Map(rows.map((r) => [r.k, r]));
  return keys.map((k) => by.get(k));
}

/**
 * The first `n` mutations of a store's change log (all without n) from id
 * `from` on, oldest first, each with its record's server version as
 * `base`: the segments' keys first (they carry the sizes), then just the
 * segments that hold those mutations, then the rows of their keys.
 * Segments partition the ids in order (each holds ids allocated together),
 * so a segment whose successor starts at or below `from` is skipped.
 * `note` is given the segments read (whole).
 * @param {IDBTransaction} tx @param {string} store @param {number} [n] @param {number} [from]
 * @param {(segs: StoredSegment[]) => void} [note]
 * @returns {Promise<StoredMutation[]>}
 */
export async function readLog(tx, store, n, from = 0, note) {
  const log = tx.objectStore(LOG);
  /** @type {[string, number, number, number][]} */
  const keys = await rq(log.getAllKeys(logRange(store)));
  let a = 0;
  while (a + 1 < keys.length && keys[a + 1][1] <= from) a++;
  if (!keys.length) return [];
  let b = keys.length;
  if (n !== undefined) {
    // Enough segments for n mutations at or above `from` (the first may hold lower ones).
    let sum = 0;
    for (let i = a + 1; i < keys.length; i++) { sum += keys[i][2]; if (sum >= n) { b = i + 1; break; } }
  }
  if (a >= b) return [];
  /** @type {StoredSegment[]} */
  const segs = await rq(log.getAll(IDBKeyRange.bound([store, keys[a][1]], [store, keys[b - 1][1], []])));
  if (note) note(segs);
  let muts = logOf(segs);
  if (from > 0) muts = muts.filter((m) => m.id >= from);
  if (n !== undefined && muts.length > n) muts = muts.slice(0, n);
  // A key's oldest pending mutation usually carries its base (SegmentEntry.b);
  // the rows are read only for the keys whose oldest one does not.
  /** @type {Set<string>} */
  const seen = new Set();
  /** @type {Set<string>} */
  const need = new Set();
  for (const m of muts) {
    if (seen.has(m.k)) continue;
    seen.add(m.k);
    if (m.base === undefined) need.add(m.k);
  }
  if (need.size) {
    const ks = [...need];
    const rows = await getRecords(tx.objectStore(RECORDS), store, ks);
    const ver = new Map(ks.map((k, i) => [k, (rows[i] && rows[i].ver) || 0]));
    for (const m of muts) if (need.has(m.k)) m.base = ver.get(m.k) || 0;
  }
  return muts;
}

/**
 * The lowest and highest of ids (not empty), by a loop: a spread into
 * Math.min throws RangeError past ~100,000 arguments, and a key written that
 * often offline would stall its store's log for good.
 * @param {number[]} ids @returns {[number, number]}
 */
export function idRange(ids) {
  let lo = ids[0], hi = ids[0];
  for (const id of ids) { if (id < lo) lo = id; if (id > hi) hi = id; }
  return [lo, hi];
}

/**
 * The log segments of a store that hold mutations with ids in [lo, hi] (and
 * any segment between them): the one holding lo starts at or before it.
 * @param {IDBTransaction} tx @param {string} store @param {number} lo @param {number} hi
 * @returns {Promise<StoredSegment[]>}
 */
export async function readSegments(tx, store, lo, hi) {
  const log = tx.objectStore(LOG);
  /** @type {[string, number, number, number]|undefined} */
  const first = await new Promise((resolve, reject) => {
    const c = log.openKeyCursor(IDBKeyRange.bound([store], [store, lo, []]), 'prev');
    c.onsuccess = () => resolve(c.result ? /** @type {any} */ (c.result.key) : undefined);
    c.onerror = () => reject(c.error);
  });
  return rq(log.getAll(IDBKeyRange.bound([store, first ? first[1] : lo], [store, hi, []])));
}

/**
 * Rewrites log segments without the mutations in `gone` (a segment left
 * empty is deleted); `edited`: segments changed in place, rewritten too.
 * @param {IDBTransaction} tx @param {StoredSegment[]} segs @param {Set<number>} gone @param {Set<StoredSegment>} [edited]
 */
export function dropFromLog(tx, segs, gone, edited) {
  const log = tx.objectStore(LOG);
  for (const g of segs) {
    const m = g.m.filter((e) => !gone.has(e.id));
    if (m.length === g.m.length && !(edited && edited.has(g))) continue;
    log.delete(segmentKey(g));
    if (!m.length) continue;
    g.m = m;
    g.n = m.length;
    log.put(g);
  }
}

/**
 * Drops mutation ids from a record row's pending list (the caller puts the row).
 * @param {StoredRecord} rec @param {Set<number>} ids @returns {number} how many it dropped
 */
export function dropPending(rec, ids) {
  if (!rec.p) return 0;
  const n = rec.p.length;
  rec.p = rec.p.filter((id) => !ids.has(id));
  return n - rec.p.length;
}

/**
 * The by_order index range of a range query (null when empty).
 * @param {string} store @param {any} q
 * @returns {{range: IDBKeyRange|null, limit: number|undefined, reverse: boolean}}
 */
export function keyRange(store, q) {
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

/**
 * Runs fn(tx) in one IndexedDB transaction and resolves after it committed
 * (readwrite ones with durability `strict`). When fn throws, the transaction
 * is aborted and nothing of it is written.
 * @template T
 * @param {IDBDatabase} idb @param {string[]} names @param {IDBTransactionMode} mode
 * @param {(tx: IDBTransaction) => Promise<T>|T} fn
 * @returns {Promise<T>}
 */
export async function inTx(idb, names, mode, fn) {
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

// ---- the local store

/** The local side of one database: its IndexedDB connection, records, change log, meta and kept conflicts. */
export class LocalStore {
  /**
   * @param {IDBDatabase} idb
   * @param {(ev: IDBVersionChangeEvent) => void} onVersionChange another connection deletes or upgrades the database
   */
  constructor(idb, onVersionChange) {
    /** @private */ this._idb = idb;
    /** @private @type {Map<string, any>} the stores' descriptions, as last fetched */
    this._desc = new Map();
    /** @private @type {string[]} the database's stores (init) */
    this._stores = [];
    /**
     * @private @type {Map<string, Map<number, SegmentIndex>>} per store: the
     * log segments this tab wrote or read whole, by id: which mutation ids
     * and keys each held then (see segmentIndex)
     */
    this._segs = new Map();
    idb.onversionchange = onVersionChange;
  }

  /**
   * Notes which mutation ids and keys log segments hold, as read (committed)
   * or as written (after the commit). A segment never gains mutations and
   * never changes an entry's id or key (it only loses entries: its key's n
   * drops), and ids are never reused, so for as long as a segment with the
   * same id and time exists, it holds a subset of what is noted here.
   * @param {StoredSegment[]} segs
   */
  noteSegments(segs) {
    for (const g of segs) {
      let m = this._segs.get(g.s);
      if (!m) { m = new Map(); this._segs.set(g.s, m); }
      m.set(g.id, { at: g.at, n: g.n, ids: g.m.map((e) => e.id), keys: g.m.map((e) => e.k) });
    }
  }

  /**
   * Forgets the noted segments that are not among `keys` (every segment
   * of the log, as one transaction read them): they are gone for good. So
   * what a tab notes stays within the size of the log, in a tab that does
   * not push too (the status' recount after each write calls this).
   * @param {[string, number, number, number][]} keys
   */
  forgetSegmentsBut(keys) {
    if (!this._segs.size) return;
    /** @type {Map<string, Set<number>>} */
    const have = new Map();
    for (const k of keys) {
      let ids = have.get(k[0]);
      if (!ids) { ids = new Set(); have.set(k[0], ids); }
      ids.add(k[1]);
    }
    for (const [s, m] of this._segs) {
      const ids = have.get(s);
      if (!ids) { this._segs.delete(s); continue; }
      for (const id of m.keys()) if (!ids.has(id)) m.delete(id);
    }
  }

  /**
   * The noted segments of a store (noteSegments), by id; the caller may
   * delete the entries of segments that no longer exist.
   * @param {string} store @returns {Map<number, SegmentIndex>}
   */
  segmentIndex(store) {
    let m = this._segs.get(store);
    if (!m) { m = new Map(); this._segs.set(store, m); }
    return m;
  }

  /**
   * Runs fn in one IndexedDB transaction over `names`; resolves after it committed.
   * @template T
   * @param {string[]} names @param {IDBTransactionMode} mode @param {(tx: IDBTransaction) => Promise<T>|T} fn
   * @returns {Promise<T>}
   */
  run(names, mode, fn) { return inTx(this._idb, names, mode, fn); }

  /** Closes the connection (idempotent). */
  close() { this._idb.close(); }

  /**
   * Loads the stores' descriptions and, for each store whose mirrored prefix
   * changed since the last open, starts it over: its cursor, progress and
   * description go and a resync begins (its end drops the records the new
   * prefix does not bring, unless pending).
   * @param {string[]} stores @param {Map<string, string>} prefixes
   * @returns {Promise<boolean>} whether a store's prefix changed from one an earlier open set
   */
  async init(stores, prefixes) {
    /** @private */ this._stores = stores;
    let changed = false;
    await this.run([META], 'readwrite', async (tx) => {
      for (const s of stores) {
        const [d, scope] = await Promise.all([metaGet(tx, META_KEYS.desc(s)), metaGet(tx, META_KEYS.scope(s))]);
        const want = prefixes.get(s) || '';
        if (scope !== undefined ? scope !== want : want !== '' && (await metaGet(tx, META_KEYS.cursor(s))) !== undefined) {
          const r = await metaGet(tx, META_KEYS.resync(s));
          await metaPut(tx, META_KEYS.resync(s), { epoch: ((r && r.epoch) || 0) + 1, active: true });
          metaDelete(tx, META_KEYS.cursor(s));
          metaDelete(tx, META_KEYS.initial(s));
          metaDelete(tx, META_KEYS.desc(s));
        } else if (d) this._desc.set(s, d);
        if (scope !== want) await metaPut(tx, META_KEYS.scope(s), want);
        if (scope !== undefined && scope !== want) changed = true;
      }
    });
    return changed;
  }

  /**
   * Whether the database still mirrors these stores' prefixes (another
   * instance may have opened it with others since).
   * @param {string[]} stores @param {Map<string, string>} prefixes @returns {Promise<boolean>}
   */
  scopesMatch(stores, prefixes) {
    return this.run([META], 'readonly', async (tx) => {
      const got = await Promise.all(stores.map((s) => metaGet(tx, META_KEYS.scope(s))));
      return stores.every((s, i) => got[i] === undefined || got[i] === (prefixes.get(s) || ''));
    });
  }

  /** A store's description as last fetched (undefined before). @param {string} store @returns {any} */
  description(store) { return this._desc.get(store); }

  /** Keeps a store's fresh description (memory, then meta). @param {string} store @param {any} d */
  async saveDescription(store, d) {
    this._desc.set(store, d);
    await this.run([META], 'readwrite', (tx) => metaPut(tx, META_KEYS.desc(store), d));
  }

  /** @param {string} store @param {string} key @returns {Promise<StoredRecord|undefined>} */
  record(store, key) { return this.run([RECORDS], 'readonly', (tx) => rq(tx.objectStore(RECORDS).get([store, key]))); }

  /**
   * Live records of a key range, in the server's key order.
   * @param {string} store @param {RangeQuery} q @returns {Promise<{key: string, value: any}[]>}
   */
  async getAll(store, q) {
    const { range, limit, reverse } = keyRange(store, q);
    if (!range || limit === 0) return [];
    /** @type {StoredRecord[]} */
    const rows = await this.run([RECORDS], 'readonly', async (tx) => {
      const idx = tx.objectStore(RECORDS).index(IDX.byOrder);
      if (!reverse) return rq(limit === undefined ? idx.getAll(range) : idx.getAll(range, limit));
      return new Promise((resolve, reject) => {
        /** @type {StoredRecord[]} */
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

  /** How many live records a key range holds. @param {string} store @param {RangeQuery} q @returns {Promise<number>} */
  async count(store, q) {
    const { range, limit } = keyRange(store, q);
    if (!range) return 0;
    const n = await this.run([RECORDS], 'readonly', (tx) => rq(tx.objectStore(RECORDS).index(IDX.byOrder).count(range)));
    return limit === undefined ? n : Math.min(n, limit);
  }

  /** @param {string} store @param {string} key @returns {Promise<import('../zoosync.d.ts').RecordMeta|undefined>} */
  getMeta(store, key) {
    return this.run([RECORDS], 'readonly', async (tx) => {
      /** @type {StoredRecord|undefined} */
      const r = await rq(tx.objectStore(RECORDS).get([store, key]));
      const pending = pendingOf(r);
      if (!r && !pending) return undefined;
      return { key, version: r ? r.ver : 0, cursor: (r && r.c) || null, deleted: r ? !!r.d : true, pending };
    });
  }

  /** The client id (undefined before the first write). @returns {Promise<string|undefined>} */
  clientId() { return this.run([META], 'readonly', (tx) => metaGet(tx, META_KEYS.client)); }

  /** A store's feed cursor (undefined before the first pull). @param {string} store @returns {Promise<string|undefined>} */
  cursor(store) { return this.run([META], 'readonly', (tx) => metaGet(tx, META_KEYS.cursor(store))); }

  /** @param {string} [store] @returns {Promise<import('../zoosync.d.ts').PendingMutation[]>} */
  async pendingMutations(store) {
    /** @type {StoredSegment[]} */
    const segs = await this.run([LOG], 'readonly', (tx) => rq(store === undefined
      ? tx.objectStore(LOG).getAll()
      : tx.objectStore(LOG).getAll(logRange(store))));
    return logOf(segs).map(pendingMutation);
  }

  /** @param {string} [store] @returns {Promise<import('../zoosync.d.ts').UnresolvedConflict[]>} */
  async conflicts(store) {
    /** @type {import('./schema.js').StoredConflict[]} */
    const rows = await this.run([CONFLICTS], 'readonly', (tx) => rq(tx.objectStore(CONFLICTS).getAll()));
    return rows.filter((c) => !store || c.s === store).map(unresolvedConflict);
  }

  /** @param {string} store @param {string} key @returns {Promise<void>} */
  async forgetConflict(store, key) {
    await this.run([CONFLICTS], 'readwrite', (tx) => rq(tx.objectStore(CONFLICTS).delete([store, key])));
  }

  /** Pending mutations, of one store or all (the segments' keys carry their sizes). @param {string} [store] @returns {Promise<number>} */
  async countPending(store) {
    return (await this.pendingSummary(store)).n;
  }

  /**
   * The start of destroy(), in one transaction with the log: unless force,
   * counts the pending mutations and, when there are some, changes nothing
   * and returns their count; otherwise marks the database as being
   * destroyed (every write after this one is refused: allocIds) and
   * returns 0. So a write either lands before (and is counted) or is
   * refused; none is acknowledged and then deleted.
   * @param {boolean} force @returns {Promise<number>}
   */
  beginDestroy(force) {
    return this.run([LOG, META], 'readwrite', async (tx) => {
      if (!force) {
        /** @type {[string, number, number, number][]} */
        const keys = await rq(tx.objectStore(LOG).getAllKeys());
        const n = keys.reduce((sum, k) => sum + k[2], 0);
        if (n > 0) return n;
      }
      await metaPut(tx, META_KEYS.destroying, true);
      return 0;
    });
  }

  /**
   * How many mutations are pending, and when the oldest was written: the
   * log's keys only ([s, id, n, at]), never its values.
   * @param {string} [store] @returns {Promise<{n: number, oldest: number|null}>}
   */
  pendingSummary(store) {
    return this.run([LOG], 'readonly', async (tx) => {
      const log = tx.objectStore(LOG);
      /** @type {[string, number, number, number][]} */
      const keys = await rq(store === undefined ? log.getAllKeys() : log.getAllKeys(logRange(store)));
      if (store === undefined) this.forgetSegmentsBut(keys);
      let n = 0, oldest = null;
      for (const k of keys) { n += k[2]; if (oldest === null || k[3] < oldest) oldest = k[3]; }
      return { n, oldest };
    });
  }

  /**
   * Writes records and their mutations in one IndexedDB transaction: the
   * client id (the first time) and the next mutation ids, the records, the
   * change log. Resolves, after the commit, with the changes per store.
   * @param {WriteOp[]} ops validated
   * @param {string|undefined} txId the `tx` group id of a transaction()
   * @returns {Promise<Map<string, Change[]>>}
   */
  async write(ops, txId) {
    const now = Date.now();
    /** @type {Map<string, Change[]>} */
    const changes = new Map();
    /** @type {StoredSegment[]} the segments written */
    const written = [];
    await this.run([RECORDS, LOG, META], 'readwrite', async (tx) => {
      // Every read is issued at once (the ids and the previous records); the
      // writes are then issued together, without waiting on each request:
      // one put per record (which lists its pending ids) and one log
      // segment per store with the mutations.
      const recs = tx.objectStore(RECORDS);
      const idsP = allocIds(tx, ops.length);
      const prevsP = new Set(ops.map((o) => o.store)).size === 1
        ? getRecords(recs, ops[0].store, ops.map((o) => o.key))
        : Promise.all(ops.map((o) => rq(recs.get([o.store, o.key]))));
      const [{ first }, prevs] = await Promise.all([idsP, prevsP]);
      /** @type {Map<string, StoredRecord>} the record as this transaction left it (a key written twice) */
      const latest = new Map();
      /** @type {Map<string, StoredMutation[]>} each store's new mutations */
      const byStore = new Map();
      for (let i = 0; i < ops.length; i++) {
        const o = ops[i];
        const id = JSON.stringify([o.store, o.key]);
        const prev = latest.has(id) ? latest.get(id) : prevs[i];
        /** @type {StoredRecord} */
        const rec = prev ? { ...prev } : newRecord(o.store, o.key);
        rec.d = o.op === 'delete';
        rec.v = o.op === 'put' ? o.value : undefined;
        /** @type {StoredMutation} */
        const m = { id: first + i, s: o.store, k: o.key, op: o.op, at: now };
        if (o.op === 'put') m.v = o.value;
        if (!rec.p || !rec.p.length) m.base = rec.ver || 0; // the key's only pending mutation: its base is known
        let ms = byStore.get(o.store);
        if (!ms) { ms = []; byStore.set(o.store, ms); }
        ms.push(m);
        rec.p = rec.p ? [...rec.p, m.id] : [m.id];
        latest.set(id, rec);
        let list = changes.get(o.store);
        if (!list) { list = []; changes.set(o.store, list); }
        // o.value is the client's own copy (parsed from its JSON text); delivery clones it per subscriber.
        list.push({ key: o.key, value: rec.v, deleted: rec.d, origin: 'local' });
      }
      for (const rec of latest.values()) putRec(recs, rec);
      const log = tx.objectStore(LOG);
      for (const [s, ms] of byStore) { const g = newSegment(s, ms, txId, now); written.push(g); log.put(g); }
    });
    this.noteSegments(written); // committed (an aborted write's ids are allocated again)
    return changes;
  }
}
