// schema.js: the IndexedDB format, in one place. Every object store, index,
// stored field and meta key the client persists is named and explained
// here; the other modules use these names.
//
// The stored fields keep their short names (s, k, v, d, ver, c, e, o, t,
// p, q; a pending entry's id, op, v, tx, at):
// they are the on-disk format of every database this client has created.
// The object stores' key paths and indexes name them (records [s, k],
// by_order [s, o], ...), and IndexedDB cannot rename a key path in place,
// so longer names would need a migration that rewrites every row, and a tab
// still running an older client would not read the result. So they stay
// as they are, and the typedefs below are their documentation.

import { orderKey } from './protocol.js';
import { randomId } from './util.js';

/**
 * The IndexedDB database version (2: the by_order and by_tomb indexes; 3:
 * the change log lives in the records, index by_pending, and the
 * `mutations` object store is gone).
 */
export const IDB_VERSION = 3;

/** Object store `records`: the local state of every record, keyed [s, k]. */
export const RECORDS = 'records';
/** Object store `mutations`: the change log of version-2 databases, keyed by id (moved into the records by the upgrade to 3). */
export const MUTS = 'mutations';
/** Object store `meta`: {k, v} rows, see META_KEYS. */
export const META = 'meta';
/** Object store `conflicts`: unresolved conflicts, keyed [s, k]. */
export const CONFLICTS = 'conflicts';
/** Every object store, for a transaction over all of them. */
export const ALL = [RECORDS, META, CONFLICTS];

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
 * @property {PendingEntry[]} [p] the key's pending mutations (its part of the change log), oldest first; absent when none
 * @property {[string, number][]} [q] with p only: [s, id] of each pending mutation, indexed by `by_pending` (multiEntry), the change log in id order
 */

/**
 * A pending mutation as a record row holds it (store and key are the row's).
 * Written in the same put as the record's new state, so the data and the
 * change log cannot disagree.
 * @typedef {object} PendingEntry
 * @property {number} id mutation id, increasing across the whole database (the push's `id`)
 * @property {'put'|'delete'} op
 * @property {any} [v] the value of a put
 * @property {string} [tx] the `tx` group id of a transaction()'s writes
 * @property {number} at when it was written (ms since the epoch)
 */

/**
 * A mutation of the change log, as the rest of the client handles it (a
 * PendingEntry with its store and key; the row of `mutations` in version 2).
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
  /** records [s, id] for every pending mutation (multiEntry over q): the change log in id order */
  byPending: 'by_pending',
});

/** The change log of one store, in index by_pending. @param {string} s */
export const pendingRange = (s) => IDBKeyRange.bound([s, 0], [s, Infinity]);

/** How many mutations of a record row are pending. @param {StoredRecord|undefined|null} rec */
export const pendingOf = (rec) => (rec && rec.p ? rec.p.length : 0);

/** A pending entry with its store and key. @param {StoredRecord} rec @param {PendingEntry} e @returns {StoredMutation} */
export const mutationOf = (rec, e) => {
  /** @type {StoredMutation} */
  const m = { id: e.id, s: rec.s, k: rec.k, op: e.op, at: e.at };
  if (e.op === 'put') m.v = e.v;
  if (e.tx) m.tx = e.tx;
  return m;
};

/** The pending entry of a mutation (store and key dropped). @param {StoredMutation} m @returns {PendingEntry} */
export const entryOf = (m) => {
  /** @type {PendingEntry} */
  const e = { id: m.id, op: m.op, at: m.at };
  if (m.op === 'put') e.v = m.v;
  if (m.tx) e.tx = m.tx;
  return e;
};

/**
 * The mutations of record rows read from by_pending (a row comes once per
 * pending mutation), oldest first; with `n`, the first n (the n index
 * entries the rows were read for: any other mutation of those rows is newer);
 * `withBase`: each gets its row's server version as `base`.
 * @param {StoredRecord[]} rows @param {number} [n] @param {boolean} [withBase] @returns {StoredMutation[]}
 */
export function logOf(rows, n, withBase = false) {
  /** @type {StoredMutation[]} */
  const out = [];
  const seen = new Set();
  for (const r of rows) {
    const id = r.s + '\u0000' + r.k; // neither a store name nor a key holds U+0000
    if (seen.has(id)) continue;
    seen.add(id);
    for (const e of r.p || []) {
      const m = mutationOf(r, e);
      if (withBase) m.base = r.ver || 0;
      out.push(m);
    }
  }
  out.sort((a, b) => a.id - b.id);
  return n === undefined ? out : out.slice(0, n);
}

/**
 * Sets a record's index fields: `o` on live records, `t` on tombstones.
 * @param {StoredRecord} rec @returns {StoredRecord} rec
 */
export function withIndexFields(rec) {
  if (rec.d) { delete rec.o; rec.t = rec.c || ''; } else { delete rec.t; rec.o = orderKey(rec.k); }
  if (rec.p && rec.p.length) rec.q = rec.p.map((e) => [rec.s, e.id]); else { delete rec.p; delete rec.q; }
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
 * Opens the database, creating or upgrading it. Version 1 had neither
 * by_order nor by_tomb: the upgrade fills in o / t on every record, once.
 * Version 2 kept the change log in the object store `mutations`: the
 * upgrade moves every mutation into its record's `p` (a tombstone row is
 * made for a key without one), then deletes `mutations`; all in the upgrade
 * transaction, so a crash leaves the database at version 2, unchanged.
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
      if (!recs.indexNames.contains(IDX.byPending)) recs.createIndex(IDX.byPending, 'q', { multiEntry: true });
      if (!db.objectStoreNames.contains(META)) db.createObjectStore(META, { keyPath: 'k' });
      if (!db.objectStoreNames.contains(CONFLICTS)) db.createObjectStore(CONFLICTS, { keyPath: ['s', 'k'] });
      // Then the version-2 change log moves into the records (after the
      // version-1 step below has rewritten every record, so that neither
      // overwrites the other).
      const moveLog = () => {
        if (!db.objectStoreNames.contains(MUTS)) return;
        const g = up.objectStore(MUTS).getAll();
        g.onsuccess = () => {
          /** @type {StoredMutation[]} */
          const muts = g.result;
          db.deleteObjectStore(MUTS);
          /** @type {Map<string, StoredMutation[]>} */
          const byKey = new Map();
          for (const m of muts.sort((a, b) => a.id - b.id)) {
            const id = JSON.stringify([m.s, m.k]);
            let l = byKey.get(id);
            if (!l) { l = []; byKey.set(id, l); }
            l.push(m);
          }
          for (const l of byKey.values()) {
            const q = recs.get([l[0].s, l[0].k]);
            q.onsuccess = () => {
              /** @type {StoredRecord} */
              const last = l[l.length - 1];
              const rec = q.result || { ...newRecord(last.s, last.k), d: last.op === 'delete', ...(last.op === 'put' ? { v: last.v } : {}) };
              rec.p = [...(rec.p || []), ...l.map(entryOf)];
              recs.put(withIndexFields(rec));
            };
          }
        };
      };
      if (!recs.indexNames.contains(IDX.byOrder)) {
        recs.createIndex(IDX.byOrder, ['s', 'o']);
        recs.createIndex(IDX.byTomb, ['s', 't']);
        const c = recs.openCursor();
        c.onsuccess = () => {
          const cur = c.result;
          if (!cur) { moveLog(); return; }
          cur.update(withIndexFields(cur.value));
          cur.continue();
        };
      } else moveLog();
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
