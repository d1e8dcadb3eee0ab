// conflicts.js: a push's `conflict` results. onConflict gives the value to
// keep; it is written with the remote version as its base, in one IndexedDB
// transaction with the change log (pushed again when it differs from the
// remote value). When onConflict throws, the remote state is shown and the
// conflict is kept in the `conflicts` object store.

import { ZooSyncError } from './errors.js';
import { toJSONText } from './protocol.js';
import { RECORDS, META, CONFLICTS, mutationInfo, newRecord, newGroupId } from './schema.js';
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
  const locals = await local.run([RECORDS], 'readonly', async (tx) => {
    return Promise.all(list.map(async ({ m }) => {
      /** @type {StoredRecord|undefined} */
      const rec = await rq(tx.objectStore(RECORDS).get([store, m.k]));
      return { rec, seenMax: ((rec && rec.p) || []).reduce((a, p) => Math.max(a, p.id), 0) };
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
  await local.run([RECORDS, META, CONFLICTS], 'readwrite', async (tx) => {
    const recs = tx.objectStore(RECORDS);
    const cs = tx.objectStore(CONFLICTS);
    /** @type {{m: StoredMutation, deleted: boolean, value: any}[]} */
    const adds = [];
    // Each key's row (it holds the key's pending mutations), read once, put at the end.
    const keys = [...new Set(resolved.map((x) => x.m.k))];
    /** @type {(StoredRecord|undefined)[]} */
    const rows = await Promise.all(keys.map((k) => rq(recs.get([store, k]))));
    const byKey = new Map(keys.map((k, i) => [k, rows[i]]));
    /** @type {Set<string>} */
    const dirty = new Set();
    for (const x of resolved) {
      const { m, info } = x;
      const had = byKey.get(m.k);
      if (!had || !had.p || !had.p.some((e) => e.id === m.id)) continue; // handled already (a retried response)
      /** @type {StoredRecord} */
      const rec = had;
      dirty.add(m.k);
      rec.p = /** @type {import('./schema.js').PendingEntry[]} */ (rec.p).filter((e) => e.id !== m.id);
      const rest = rec.p;
      const newer = rest.filter((p) => p.id > x.seenMax);
      rec.ver = info.remoteVersion;
      if (x.error) {
        // Unresolved: keep it readable, show the remote state, push nothing.
        cs.put({ s: store, k: m.k, local: info.local, localDeleted: info.localDeleted, remote: info.remote,
          remoteDeleted: info.remoteDeleted, remoteVersion: info.remoteVersion, at: Date.now(), error: String(x.error && x.error.message || x.error) });
        rec.p = rest.filter((p) => p.id > x.seenMax);
        if (!newer.length) {
          rec.d = info.remoteDeleted; rec.v = info.remote;
          changes.push({ key: m.k, value: rec.v, deleted: rec.d, origin: 'remote' });
        }
        continue;
      }
      cs.delete([store, m.k]);
      if (newer.length) continue; // a newer local write wins, rebased on the remote version
      const deleted = x.value === undefined;
      rec.d = deleted; rec.v = deleted ? undefined : x.value;
      changes.push({ key: m.k, value: clone(rec.v), deleted, origin: 'remote' });
      let rewritten = false;
      /** @type {import('./schema.js').PendingEntry[]} */
      const kept = [];
      for (const p of rest) {
        if (p.tx) { p.op = deleted ? 'delete' : 'put'; if (deleted) delete p.v; else p.v = x.value; kept.push(p); rewritten = true; }
      }
      rec.p = kept;
      const differs = deleted ? !info.remoteDeleted : (info.remoteDeleted || !same(x.value, info.remote));
      if (differs && !rewritten) adds.push({ m, deleted, value: x.value });
    }
    if (adds.length) {
      const { first } = await allocIds(tx, adds.length);
      adds.forEach((a, i) => {
        /** @type {import('./schema.js').PendingEntry} */
        const nm = { id: first + i, op: a.deleted ? 'delete' : 'put', at: Date.now() };
        if (!a.deleted) nm.v = a.value;
        if (a.m.tx) { // resolutions of one aborted group stay one group
          let g = newGroups.get(a.m.tx);
          if (!g) { g = newGroupId(); newGroups.set(a.m.tx, g); }
          nm.tx = g;
        }
        const rec = /** @type {StoredRecord} */ (byKey.get(a.m.k));
        rec.p = [...(rec.p || []), nm];
      });
    }
    for (const k of dirty) putRec(recs, /** @type {StoredRecord} */ (byKey.get(k)));
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
