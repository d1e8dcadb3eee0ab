// schema.js: the IndexedDB format, in one place. Every object store, index,
// stored field and meta key the client persists is named and explained
// here; the other modules use these names.
//
// The stored fields keep their short names (s, k, v, d, ver, c, e, o, t):
// they are the on-disk format of every database this client has created.
// The object stores' key paths and indexes name them (records [s, k],
// by_order [s, o], ...), and IndexedDB cannot rename a key path in place,
// so longer names would need a migration that rewrites every row, and a tab
// still running an older client would not read the result. So they stay
// as they are, and the typedefs below are their documentation.

import { orderKey } from './protocol.js';
import { randomId } from './util.js';

/** The IndexedDB database version (2: the by_order and by_tomb indexes). */
export const IDB_VERSION = 2;

/** Object store `records`: the local state of every record, keyed [s, k]. */
export const RECORDS = 'records';
/** Object store `mutations`: the change log, keyed by id. */
export const MUTS = 'mutations';
/** Object store `meta`: {k, v} rows, see META_KEYS. */
export const META = 'meta';
/** Object store `conflicts`: unresolved conflicts, keyed [s, k]. */
export const CONFLICTS = 'conflicts';
/** Every object store, for a transaction over all of them. */
export const ALL = [RECORDS, MUTS, META, CONFLICTS];

/**
 * A row of `records`.
 * @typedef {object} StoredRecord
 * @property {string} s store name
 * @property {string} k key
 * @property {any} [v] value (undefined when deleted)
 * @property {boolean} [d] deleted: a tombstone, kept while a pending mutation needs it
 * @property {number} ver the server version the local state is based on (0: none)
 * @property {string} c the feed cursor of that server state ('' when none)
 * @property {number} e the resync epoch that last saw the record (a resync drops the others)
 * @property {string} [o] live records only: orderKey(k), indexed by `by_order` [s, o] for range reads in the server's key order
 * @property {string} [t] tombstones only: = c, indexed by `by_tomb` [s, t] so purgeable tombstones are found without a scan
 */

/**
 * A row of `mutations` (the change log).
 * @typedef {object} StoredMutation
 * @property {number} id mutation id, increasing across the whole database (the push's `id`)
 * @property {string} s store name
 * @property {string} k key
 * @property {'put'|'delete'} op
 * @property {any} [v] the value of a put
 * @property {string} [tx] the `tx` group id of a transaction()'s writes
 * @property {number} at when it was written (ms since the epoch)
 * @property {number} [base] not stored: set on a batch read for a push
 */

/**
 * A row of `conflicts` (onConflict threw).
 * @typedef {object} StoredConflict
 * @property {string} s store name
 * @property {string} k key
 * @property {any} local
 * @property {boolean} localDeleted
 * @property {any} remote
 * @property {boolean} remoteDeleted
 * @property {number} remoteVersion
 * @property {number} at when it was kept (ms since the epoch)
 * @property {string} error what onConflict threw
 */

/**
 * A store's initial sync (or resync) progress, meta `initial:<store>`.
 * @typedef {{received: number, total: number|null, done: boolean}} StoredProgress
 */

/**
 * A store's resync state, meta `resync:<store>`: the epoch of the last
 * resync, and whether it is still running.
 * @typedef {{epoch: number, active: boolean}} StoredResync
 */

/**
 * The keys of `meta` rows ({k, v}); v's type is given for each.
 */
export const META_KEYS = Object.freeze({
  /** string: the client id, allocated by the first write */
  client: 'client',
  /** number: the next mutation id */
  nextId: 'nextId',
  /** @param {string} s @returns {string} string: the store's feed cursor */
  cursor: (s) => 'cursor:' + s,
  /** @param {string} s @returns {string} object: the store's description (GET /v1/stores/<s>) */
  desc: (s) => 'desc:' + s,
  /** @param {string} s @returns {string} StoredProgress */
  initial: (s) => 'initial:' + s,
  /** @param {string} s @returns {string} StoredResync */
  resync: (s) => 'resync:' + s,
  /** @param {string} s @returns {string} string: the prefix the store mirrors ('' for the whole store) */
  scope: (s) => 'scope:' + s,
  /** @param {string} s @returns {string} string[]: keys of rejected mutations waiting to be restored from the server */
  restore: (s) => 'restore:' + s,
});

/** Index names. */
export const IDX = Object.freeze({
  /** records [s, o]: live records in the server's key order */
  byOrder: 'by_order',
  /** records [s, t]: tombstones by cursor */
  byTomb: 'by_tomb',
  /** mutations [s, id]: one store's log in order */
  byStore: 'by_store',
  /** mutations [s, k]: one key's pending mutations */
  byKey: 'by_key',
});

/**
 * Sets a record's index fields: `o` on live records, `t` on tombstones.
 * @param {StoredRecord} rec @returns {StoredRecord} rec
 */
export function withIndexFields(rec) {
  if (rec.d) { delete rec.o; rec.t = rec.c || ''; } else { delete rec.t; rec.o = orderKey(rec.k); }
  return rec;
}

/**
 * A new record row for a key the database has never held.
 * @param {string} s @param {string} k @returns {StoredRecord}
 */
export const newRecord = (s, k) => ({ s, k, ver: 0, c: '', e: 0 });

/** A new `tx` group id. @returns {string} */
export const newGroupId = () => 't-' + randomId(6);

/** A new client id. @returns {string} */
export const newClientId = () => 'c-' + randomId(8);

/**
 * Opens the database, creating or upgrading it (version 1 had neither
 * index: the upgrade fills in o / t on every record, once).
 * @param {IDBFactory} factory @param {string} name
 * @returns {Promise<IDBDatabase>}
 */
export function openIDB(factory, name) {
  return new Promise((resolve, reject) => {
    const r = factory.open(name, IDB_VERSION);
    r.onupgradeneeded = () => {
      const db = r.result;
      const up = /** @type {IDBTransaction} */ (r.transaction);
      const recs = db.objectStoreNames.contains(RECORDS) ? up.objectStore(RECORDS) : db.createObjectStore(RECORDS, { keyPath: ['s', 'k'] });
      if (!recs.indexNames.contains(IDX.byOrder)) {
        recs.createIndex(IDX.byOrder, ['s', 'o']);
        recs.createIndex(IDX.byTomb, ['s', 't']);
        const c = recs.openCursor();
        c.onsuccess = () => {
          const cur = c.result;
          if (!cur) return;
          cur.update(withIndexFields(cur.value));
          cur.continue();
        };
      }
      if (!db.objectStoreNames.contains(MUTS)) {
        const m = db.createObjectStore(MUTS, { keyPath: 'id' });
        m.createIndex(IDX.byStore, ['s', 'id']);
        m.createIndex(IDX.byKey, ['s', 'k']);
      }
      if (!db.objectStoreNames.contains(META)) db.createObjectStore(META, { keyPath: 'k' });
      if (!db.objectStoreNames.contains(CONFLICTS)) db.createObjectStore(CONFLICTS, { keyPath: ['s', 'k'] });
    };
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.onblocked = () => { /* another tab holds an older version open: wait */ };
  });
}

/**
 * Deletes the database; waits while a connection that ignores versionchange
 * (another program, an older client) is still open.
 * @param {IDBFactory} factory @param {string} name @returns {Promise<void>}
 */
export function deleteIDB(factory, name) {
  return new Promise((resolve, reject) => {
    const r = factory.deleteDatabase(name);
    r.onsuccess = () => resolve(undefined);
    r.onerror = () => reject(r.error);
  });
}

// ---- the stored forms as the public API shows them

/**
 * @param {StoredMutation} m @param {string} store
 * @returns {import('../zoosync.d.ts').MutationInfo}
 */
export function mutationInfo(m, store) {
  /** @type {import('../zoosync.d.ts').MutationInfo} */
  const o = { id: m.id, store, key: m.k, op: m.op };
  if (m.op === 'put') o.value = m.v;
  if (m.tx) o.tx = m.tx;
  return o;
}

/** @param {StoredMutation} m @returns {import('../zoosync.d.ts').PendingMutation} */
export const pendingMutation = (m) => ({
  id: m.id, store: m.s, key: m.k, op: m.op, ...(m.op === 'put' ? { value: m.v } : {}), ...(m.tx ? { tx: m.tx } : {}), at: m.at,
});

/** @param {StoredConflict} c @returns {import('../zoosync.d.ts').UnresolvedConflict} */
export const unresolvedConflict = (c) => ({
  store: c.s, key: c.k, local: c.local, localDeleted: c.localDeleted, remote: c.remote, remoteDeleted: c.remoteDeleted,
  remoteVersion: c.remoteVersion, at: c.at, error: c.error,
});
