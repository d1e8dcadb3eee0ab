// In-page side of the browser tests: opens a database and records what it sees.
import { openSyncDB } from '/client/zoosync.js';

const policies = {
  remote: undefined,
  local: (c) => c.local,
  // Merges two {items: [...]} values; records the call.
  merge: (c) => { T.conflictCalls.push(c); return { items: [...new Set([...(c.local?.items || []), ...(c.remote?.items || [])])].sort() }; },
};

const T = {
  db: null,
  events: { status: [], conflict: [], error: [], changes: [], close: [] },
  conflictCalls: [],
  async open(opts, policy) {
    const db = await openSyncDB({ ...opts, onConflict: policies[policy || 'remote'] });
    T.db = db;
    db.on('status', (s) => T.events.status.push({ ...s, t: Date.now() }));
    db.on('conflict', (c) => T.events.conflict.push(c));
    db.on('error', (e) => T.events.error.push({ code: e.code, message: e.message, store: e.store, mutation: e.mutation, errors: e.errors, group: e.group }));
    db.on('close', (e) => T.events.close.push({ ...e, t: Date.now() }));
    for (const s of db.stores) db.subscribe(s, (ch) => { for (const c of ch) T.events.changes.push({ store: s, ...c, t: Date.now() }); });
    return true;
  },
  /** The raw IndexedDB content: records, meta, the log segments and the change log (from the segments). */
  raw(name) {
    return new Promise((resolve, reject) => {
      const r = indexedDB.open(name);
      r.onerror = () => reject(r.error);
      r.onsuccess = () => {
        const idb = r.result;
        const tx = idb.transaction(['records', 'log', 'meta'], 'readonly');
        const out = {};
        for (const s of ['records', 'log', 'meta']) {
          const q = tx.objectStore(s).getAll();
          q.onsuccess = () => { out[s] = q.result; };
        }
        // The change log is the object store `log` (StoredSegment): as mutation rows, in id order.
        tx.oncomplete = () => {
          idb.close();
          out.mutations = out.log.flatMap((g) => g.m.map((e) => ({ ...e, s: g.s, at: g.at, ...(g.tx ? { tx: g.tx } : {}) }))).sort((a, b) => a.id - b.id);
          resolve(out);
        };
        tx.onerror = () => reject(tx.error);
      };
    });
  },
};
window.T = T;
window.ready = true;
