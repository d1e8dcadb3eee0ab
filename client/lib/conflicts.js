// conflicts.js: a push's `conflict` results. onConflict gives the value to
// keep; it is written with the remote version as its base, in one IndexedDB
// transaction with the change log (pushed again when it differs from the
// remote value). When onConflict throws, the remote state is shown and the
// conflict is kept in the `conflicts` object store.

import { ZooSyncError } from './errors.js';
import { toJSONText } from './protocol.js';
import { RECORDS, MUTS, META, CONFLICTS, IDX, mutationInfo, newRecord, newGroupId } from './schema.js';
import { rq, putRec, allocIds } from './local.js';
import { clone, same } from './util.js';

/** @typedef {import('./schema.js').StoredMutation} StoredMutation */
/** @typedef {import('./schema.js').StoredRecord} StoredRecord */
/** @typedef {import('./push.js').PushResult} PushResult */
/** @typedef {import('./sync.js').StoreSync} StoreSync */
/** @typedef {import('../zoosync.d.ts').ConflictInfo} ConflictInfo */
/** @typedef {import('../zoosync.d.ts').Change} Change */

/**
 * Calls onConflict for each conflict and writes the resolutions.
 * @param {StoreSync} ss the store's sync
 * @param {{m: StoredMutation, r: PushResult}[]} list
 */
export async function resolveConflicts(ss, list) {
  const { store, local, host } = ss;
  // The local side of each conflict, and the newest pending id it accounts for.
  const locals = await local.run([RECORDS, MUTS], 'readonly', async (tx) => {
    return Promise.all(list.map(async ({ m }) => {
      /** @type {[StoredRecord|undefined, StoredMutation[]]} */
      const [rec, pend] = await Promise.all([
        rq(tx.objectStore(RECORDS).get([store, m.k])),
        rq(tx.objectStore(MUTS).index(IDX.byKey).getAll([store, m.k])),
      ]);
      return { rec, seenMax: pend.reduce((a, p) => Math.max(a, p.id), 0) };
    }));
  });
  /** @type {{m: StoredMutation, info: ConflictInfo, value: any, error: any, seenMax: number}[]} */
  const resolved = [];
  for (let i = 0; i < list.length; i++) {
    const { m, r } = list[i];
    const rec = locals[i].rec;
    const cur = r.current;
    /** @type {ConflictInfo} */
    const info = {
      store, key: m.k,
      local: rec && !rec.d ? clone(rec.v) : undefined,
      remote: cur ? clone(cur.value) : undefined,
      localDeleted: !rec || !!rec.d, remoteDeleted: !cur,
      remoteVersion: cur ? cur.version : 0,
      mutation: mutationInfo(m, store),
      ...(r.reason ? { reason: r.reason } : {}),
    };
    let value, error = null;
    try {
      value = await host.onConflict({ ...info, local: clone(info.local), remote: clone(info.remote) });
      if (value !== undefined) value = JSON.parse(toJSONText(value));
    } catch (e) { error = e; }
    resolved.push({ m, info, value, error, seenMax: locals[i].seenMax });
  }
  /** @type {Change[]} */
  const changes = [];
  /** @type {Map<string, string>} an aborted group's id -> its resolutions' new group id */
  const newGroups = new Map();
  await local.run([MUTS, RECORDS, META, CONFLICTS], 'readwrite', async (tx) => {
    const ms = tx.objectStore(MUTS);
    const recs = tx.objectStore(RECORDS);
    const cs = tx.objectStore(CONFLICTS);
    /** @type {{m: StoredMutation, deleted: boolean, value: any}[]} */
    const adds = [];
    for (const x of resolved) {
      const { m, info } = x;
      const still = await rq(ms.get(m.id));
      if (!still) continue; // handled already (a retried response)
      ms.delete(m.id);
      /** @type {StoredMutation[]} */
      const rest = (await rq(ms.index(IDX.byKey).getAll([store, m.k]))).filter((/** @type {StoredMutation} */ p) => p.id !== m.id);
      const newer = rest.filter((p) => p.id > x.seenMax);
      /** @type {StoredRecord} */
      const rec = await rq(recs.get([store, m.k])) || newRecord(store, m.k);
      rec.ver = info.remoteVersion;
      if (x.error) {
        // Unresolved: keep it readable, show the remote state, push nothing.
        cs.put({ s: store, k: m.k, local: info.local, localDeleted: info.localDeleted, remote: info.remote,
          remoteDeleted: info.remoteDeleted, remoteVersion: info.remoteVersion, at: Date.now(), error: String(x.error && x.error.message || x.error) });
        for (const p of rest) if (p.id <= x.seenMax) ms.delete(p.id);
        if (!newer.length) {
          rec.d = info.remoteDeleted; rec.v = info.remote;
          changes.push({ key: m.k, value: rec.v, deleted: rec.d, origin: 'remote' });
        }
        putRec(recs, rec);
        continue;
      }
      cs.delete([store, m.k]);
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
        /** @type {StoredMutation} */
        const nm = { id: first + i, s: store, k: a.m.k, op: a.deleted ? 'delete' : 'put', at: Date.now() };
        if (!a.deleted) nm.v = a.value;
        if (a.m.tx) { // resolutions of one aborted group stay one group
          let g = newGroups.get(a.m.tx);
          if (!g) { g = newGroupId(); newGroups.set(a.m.tx, g); }
          nm.tx = g;
        }
        ms.add(nm);
      });
    }
  });
  for (const x of resolved) {
    const c = { ...x.info, resolved: x.error ? undefined : clone(x.value), ...(x.error ? { unresolved: true, error: String(x.error && x.error.message || x.error) } : {}) };
    host.reportConflict(c);
    if (x.error) host.reportError(new ZooSyncError('conflict_unresolved', `${store}/${x.m.k}: onConflict threw: ${x.error && x.error.message || x.error}`, { store, mutation: x.info.mutation }));
  }
  if (changes.length) host.deliver(store, changes);
  host.refreshPending();
  ss.requestPush();
}
