// schema.js: the IndexedDB format, in one place. Every object store, index,
// stored field and meta key the client persists is named and explained
// here; the other modules use these names.
//
// The stored fields keep their short names (s, k, v, d, ver, c, e, o, t,
// p; a log segment's s, id, n, at, tx, m; an entry's id, k, op, v):
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
 * `mutations` object store is gone; 4: the change log is the object store
 * `log`, one row (a segment) per local write call, and a record row keeps
 * only the ids of its key's pending mutations; no by_pending).
 */
export const IDB_VERSION = 4;

/** Object store `records`: the local state of every record, keyed [s, k]. */
export const RECORDS = 'records';
/** Object store `mutations`: the change log of version-2 databases, keyed by id (moved into the records by the upgrade to 3). */
export const MUTS = 'mutations';
/** Object store `log` (version 4): the change log, one StoredSegment per local write call, keyed [s, id, n, at]. */
export const LOG = 'log';
/** Object store `meta`: {k, v} rows, see META_KEYS. */
export const META = 'meta';
/** Object store `conflicts`: unresolved conflicts, keyed [s, k]. */
export const CONFLICTS = 'conflicts';
/** Every object store, for a transaction over all of them. */
export const ALL = [RECORDS, LOG, META, CONFLICTS];

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
 * @property {number[]} [p] the ids of the key's pending mutations, oldest first (their entries are in `log`); absent when none
 */

/**
 * A row of `log` (version 4): the mutations of one local write call (a
 * put, a delete, a transaction()'s group, or the resolutions a conflict
 * pushes again), in the store `s`. Written in the same IndexedDB
 * transaction as the records, so the data and the change log cannot
 * disagree. Its key [s, id, n, at] carries what the pending count and the
 * status need, so they read keys only (getAllKeys), never the values; a
 * segment whose entries leave the log is rewritten without them (a new key
 * when n changes) or deleted when none is left.
 * @typedef {object} StoredSegment
 * @property {string} s store name
 * @property {number} id the id of its first mutation when written (it stays; entries are in id order)
 * @property {number} n how many entries it holds (= m.length)
 * @property {number} at when it was written (ms since the epoch)
 * @property {string} [tx] the `tx` group id of its mutations (a transaction()'s writes)
 * @property {SegmentEntry[]} m its pending mutations, in id order
 */

/**
 * One mutation of a log segment (store, time and group are the segment's).
 * @typedef {object} SegmentEntry
 * @property {number} id mutation id, increasing across the whole database (the push's `id`)
 * @property {string} k key
 * @property {'put'|'delete'} op
 * @property {any} [v] the value of a put
 * @property {number} [b] its base: the server version of its key's record, set when it was written as the
 *   key's only pending mutation, and kept equal to the record's `ver` (a conflict or a restore that moves
 *   `ver` while it is pending drops it); absent: the push reads the record row for the base
 */

/**
 * A pending mutation of version 3 as its record row held it (`p` entries
 * then, with `q` = [s, id] for the by_pending index); read by the upgrade only.
 * @typedef {object} PendingEntry
 * @property {number} id
 * @property {'put'|'delete'} op
 * @property {any} [v]
 * @property {string} [tx]
 * @property {number} at
 */

/**
 * A mutation of the change log, as the rest of the client handles it (a
 * SegmentEntry with its segment's store, group and time; the row of
 * `mutations` in version 2).
 * @typedef {object} StoredMutation
 * @property {number} id mutation id, increasing across the whole database (the push's `id`)
 * @property {string} s store name
 * @property {string} k key
 * @property {'put'|'delete'} op
 * @property {any} [v] the value of a put
 * @property {string} [tx] the `tx` group id of a transaction()'s writes
 * @property {number} at when it was written (ms since the epoch)
 * @property {number} [base] not stored: set on a batch read for a push
 * @property {number} [seg] not stored: the id of the segment it was read from
 * @property {number} [segN] not stored: how many mutations that segment held when read
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
  /** true: destroy() has begun (every later write is refused; the next open finishes the deletion) */
  destroying: 'destroying',
});

/** Index names. */
export const IDX = Object.freeze({
  /** records [s, o]: live records in the server's key order */
  byOrder: 'by_order',
  /** records [s, t]: tombstones by cursor */
  byTomb: 'by_tomb',
  /** version 3 only (records [s, id] per pending mutation, multiEntry over q): dropped by the upgrade to 4 */
  byPending: 'by_pending',
});

/** The log segments of one store (all of them: keys [s, id, n, at]). @param {string} s */
export const logRange = (s) => IDBKeyRange.bound([s], [s, []]);

/** The log segment that was written with first id `id` (whatever its n). @param {string} s @param {number} id */
export const segmentRange = (s, id) => IDBKeyRange.bound([s, id], [s, id, []]);

/** A segment's key. @param {StoredSegment} g @returns {[string, number, number, number]} */
export const segmentKey = (g) => [g.s, g.id, g.n, g.at];

/** How many mutations of a record row are pending. @param {StoredRecord|undefined|null} rec */
export const pendingOf = (rec) => (rec && rec.p ? rec.p.length : 0);

/**
 * The mutations of log segments, oldest first, each with `seg` set.
 * @param {StoredSegment[]} segs @returns {StoredMutation[]}
 */
export function logOf(segs) {
  /** @type {StoredMutation[]} */
  const out = [];
  let sorted = true;
  for (const g of segs) {
    for (const e of g.m) {
      /** @type {StoredMutation} */
      const m = { id: e.id, s: g.s, k: e.k, op: e.op, at: g.at, seg: g.id, segN: g.n };
      if (e.op === 'put') m.v = e.v;
      if (e.b !== undefined) m.base = e.b;
      if (g.tx) m.tx = g.tx;
      if (out.length && out[out.length - 1].id > m.id) sorted = false;
      out.push(m);
    }
  }
  if (!sorted) out.sort((x, y) => x.id - y.id);
  return out;
}

/**
 * A new segment of mutations written together (one store, one group and
 * time each): its entries drop the store, group and time (a mutation's
 * `base`, when given, is kept as `b`).
 * @param {string} s @param {StoredMutation[]} muts in id order, non-empty
 * @param {string|undefined} tx @param {number} at @returns {StoredSegment}
 */
export function newSegment(s, muts, tx, at) {
  /** @type {StoredSegment} */
  const g = { s, id: muts[0].id, n: muts.length, at, m: muts.map((x) => {
    /** @type {SegmentEntry} */
    const e = { id: x.id, k: x.k, op: x.op };
    if (x.op === 'put') e.v = x.v;
    if (x.base !== undefined) e.b = x.base;
    return e;
  }) };
  if (tx) g.tx = tx;
  return g;
}

/**
 * Sets a record's index fields: `o` on live records, `t` on tombstones.
 * @param {StoredRecord} rec @returns {StoredRecord} rec
 */
export function withIndexFields(rec) {
  if (rec.d) { delete rec.o; rec.t = rec.c || ''; } else { delete rec.t; rec.o = orderKey(rec.k); }
  if (!rec.p || !rec.p.length) delete rec.p;
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
 * The log segments of an upgrade: mutations in id order; a run of one
 * store's mutations of one `tx` group is one segment, any other mutation a
 * segment of its own (it keeps its own time).
 * @param {StoredMutation[]} muts @returns {StoredSegment[]}
 */
function segmentsOf(muts) {
  /** @type {StoredSegment[]} */
  const out = [];
  let i = 0;
  while (i < muts.length) {
    let j = i + 1;
    if (muts[i].tx) while (j < muts.length && muts[j].tx === muts[i].tx && muts[j].s === muts[i].s) j++;
    out.push(newSegment(muts[i].s, muts.slice(i, j), muts[i].tx, muts[i].at));
    i = j;
  }
  return out;
}

/**
 * Opens the database, creating or upgrading it, in the upgrade transaction
 * (a crash during it leaves the older database as it was). Version 1 had
 * neither by_order nor by_tomb: the upgrade fills in o / t on every record,
 * once. Version 2 kept the change log in the object store `mutations`: its
 * mutations become log segments, each key's row gets their ids in `p` (a
 * tombstone row is made for a key without one), and `mutations` goes.
 * Version 3 kept the log in the records (`p` entries, index by_pending):
 * the entries become log segments, `p` keeps their ids, and by_pending goes.
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
      const log = db.objectStoreNames.contains(LOG) ? up.objectStore(LOG) : db.createObjectStore(LOG, { keyPath: ['s', 'id', 'n', 'at'] });
      if (!db.objectStoreNames.contains(META)) db.createObjectStore(META, { keyPath: 'k' });
      if (!db.objectStoreNames.contains(CONFLICTS)) db.createObjectStore(CONFLICTS, { keyPath: ['s', 'k'] });
      const putSegments = (/** @type {StoredMutation[]} */ muts) => {
        for (const g of segmentsOf(muts.sort((a, b) => a.id - b.id))) log.put(g);
      };
      // Version 3: each row's pending entries move to segments; p keeps their ids.
      const fromV3 = () => {
        if (!recs.indexNames.contains(IDX.byPending)) return;
        recs.deleteIndex(IDX.byPending);
        /** @type {StoredMutation[]} */
        const muts = [];
        const c = recs.openCursor();
        c.onsuccess = () => {
          const cur = c.result;
          if (!cur) { putSegments(muts); return; }
          const rec = cur.value;
          if (rec.p || rec.q) {
            /** @type {PendingEntry[]} */
            const es = rec.p || [];
            for (const e of es) {
              /** @type {StoredMutation} */
              const m = { id: e.id, s: rec.s, k: rec.k, op: e.op, at: e.at };
              if (e.op === 'put') m.v = e.v;
              if (e.tx) m.tx = e.tx;
              muts.push(m);
            }
            rec.p = es.map((e) => e.id);
            delete rec.q;
            cur.update(withIndexFields(rec));
          }
          cur.continue();
        };
      };
      // Version 2 (and 1): the mutations of `mutations` become segments (after
      // the version-1 step below has rewritten every record, so that neither
      // overwrites the other).
      const fromV2 = () => {
        if (!db.objectStoreNames.contains(MUTS)) { fromV3(); return; }
        const g = up.objectStore(MUTS).getAll();
        g.onsuccess = () => {
          /** @type {StoredMutation[]} */
          const muts = g.result.sort((/** @type {StoredMutation} */ a, /** @type {StoredMutation} */ b) => a.id - b.id);
          db.deleteObjectStore(MUTS);
          /** @type {Map<string, StoredMutation[]>} */
          const byKey = new Map();
          for (const m of muts) {
            const id = JSON.stringify([m.s, m.k]);
            let l = byKey.get(id);
            if (!l) { l = []; byKey.set(id, l); }
            l.push(m);
          }
          for (const l of byKey.values()) {
            const q = recs.get([l[0].s, l[0].k]);
            q.onsuccess = () => {
              /** @type {StoredMutation} */
              const last = l[l.length - 1];
              const rec = q.result || { ...newRecord(last.s, last.k), d: last.op === 'delete', ...(last.op === 'put' ? { v: last.v } : {}) };
              rec.p = l.map((m) => m.id);
              recs.put(withIndexFields(rec));
            };
          }
          putSegments(muts);
        };
      };
      if (!recs.indexNames.contains(IDX.byOrder)) {
        recs.createIndex(IDX.byOrder, ['s', 'o']);
        recs.createIndex(IDX.byTomb, ['s', 't']);
        const c = recs.openCursor();
        c.onsuccess = () => {
          const cur = c.result;
          if (!cur) { fromV2(); return; }
          cur.update(withIndexFields(cur.value));
          cur.continue();
        };
      } else fromV2();
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
