// conflicts.js: a push's `conflict` results. onConflict gives the value to
// keep; it is written with the remote version as its base, in one IndexedDB
// transaction with the change log (pushed again when it differs from the
// remote value). When onConflict throws, the remote state is shown and the
// conflict is kept in the `conflicts` object store; so is every other
// member of its `tx` group, whatever onConflict said of it (a group is
// resolved whole or not at all). A queued write of the key that belongs to
// another `tx` group stays (a group is never split) and goes out on the base
// the conflicted mutation had, so that the server judges it again.

import { ZooSyncError } from './errors.js';
import { toJSONText } from './protocol.js';
import { RECORDS, LOG, META, CONFLICTS, mutationInfo, newGroupId, newSegment } from './schema.js';
import { rq, putRec, allocIds, readSegments, dropFromLog, idRange } from './local.js';
import { clone, same } from './util.js';

/** @typedef {import('./schema.js').StoredMutation} StoredMutation */
/** @typedef {import('./schema.js').StoredRecord} StoredRecord */
/** @typedef {import('./push.js').PushResult} PushResult */
/** @typedef {import('./sync.js').StoreSync} StoreSync */
/** @typedef {import('../zoosync.d.ts').ConflictInfo} ConflictInfo */
/** @typedef {import('../zoosync.d.ts').Change} Change */

/**
 * One conflict as decided: onConflict's value, or the error that leaves it
 * unresolved; `seenMax` the newest pending id of its key when it was asked
 * (later ones were written meanwhile), `base` the version its mutation was
 * based on.
 * @typedef {{m: StoredMutation, info: ConflictInfo, value: any, error: any, byGroup: boolean, seenMax: number, base: number}} Decision
 */

/**
 * What one write transaction of resolutions changes, gathered as each
 * decision is applied (see applyDecision), written at its end.
 * @typedef {object} TxState
 * @property {string} store
 * @property {IDBObjectStore} cs the conflicts object store
 * @property {Map<number, {e: import('./schema.js').SegmentEntry, g: import('./schema.js').StoredSegment}>} entries pending id -> its log entry
 * @property {Set<number>} gone mutations that leave the log
 * @property {Set<import('./schema.js').StoredSegment>} edited segments whose entries were rewritten
 * @property {Set<string>} dirty keys whose row is put back
 * @property {Map<string, number>} pinned key -> the base its oldest kept write goes out on (not the remote version)
 * @property {{m: StoredMutation, deleted: boolean, value: any}[]} adds resolutions to push as new mutations
 * @property {Change[]} changes what subscribers are told
 */

/**
 * Calls onConflict for each conflict and writes the resolutions.
 * @param {StoreSync} ss the store's sync
 * @param {{m: StoredMutation, r: PushResult}[]} list
 */
export async function resolveConflicts(ss, list) {
  const { store, local, host } = ss;
  const decided = await decide(ss, list);
  if (!decided.length) return;
  /** @type {Set<Decision>} those the write transaction handled (the others were settled meanwhile) */
  const handled = new Set();
  /** @type {Change[]} */
  const changes = [];
  await local.run([RECORDS, LOG, META, CONFLICTS], 'readwrite', async (tx) => {
    const recs = tx.objectStore(RECORDS);
    // Each key's row (it lists the key's pending ids), read once, put at
    // the end; then the log segments that hold those mutations.
    const keys = [...new Set(decided.map((x) => x.m.k))];
    /** @type {(StoredRecord|undefined)[]} */
    const rows = await Promise.all(keys.map((k) => rq(recs.get([store, k]))));
    const byKey = new Map(keys.map((k, i) => [k, rows[i]]));
    const ids = rows.flatMap((r) => (r && r.p) || []);
    /** @type {import('./schema.js').StoredSegment[]} */
    const segs = ids.length ? await readSegments(tx, store, ...idRange(ids)) : [];
    /** @type {TxState} */
    const st = { store, cs: tx.objectStore(CONFLICTS), entries: new Map(), gone: new Set(), edited: new Set(), dirty: new Set(),
      pinned: new Map(), adds: [], changes };
    for (const g of segs) for (const e of g.m) st.entries.set(e.id, { e, g });
    for (const x of decided) {
      const rec = byKey.get(x.m.k);
      if (!rec || !rec.p || !rec.p.includes(x.m.id)) continue; // handled already (a retried response)
      handled.add(x);
      applyDecision(st, x, rec);
    }
    // The records' versions moved: their pending mutations' kept bases go
    // (the push reads the rows), but for a pinned key's oldest kept write.
    for (const k of st.dirty) {
      const p = /** @type {StoredRecord} */ (byKey.get(k)).p || [];
      for (const id of p) {
        const at = st.entries.get(id);
        if (at && at.e.b !== undefined) { delete at.e.b; st.edited.add(at.g); }
      }
      const pin = st.pinned.get(k), at = pin !== undefined && p.length ? st.entries.get(idRange(p)[0]) : undefined;
      if (at) { at.e.b = pin; st.edited.add(at.g); }
    }
    dropFromLog(tx, segs, st.gone, st.edited);
    if (st.adds.length) await appendResolutions(tx, store, st.adds, byKey);
    for (const k of st.dirty) putRec(recs, /** @type {StoredRecord} */ (byKey.get(k)));
  });
  for (const x of decided) {
    if (!handled.has(x)) continue;
    const why = x.error && String(x.error.message || x.error);
    host.reportConflict({ ...x.info, resolved: x.error ? undefined : clone(x.value), ...(x.error ? { unresolved: true, error: why } : {}) });
    if (x.error) {
      host.reportError(new ZooSyncError('conflict_unresolved', `${store}/${x.m.k}: ${x.byGroup ? '' : 'onConflict threw: '}${why}`,
        { store, mutation: x.info.mutation }));
    }
  }
  if (changes.length) host.deliver(store, changes);
  host.refreshPending();
  ss.requestPush();
}

/**
 * Asks onConflict about each conflict whose mutation is still queued (one
 * settled meanwhile, e.g. by the tab that took over while this one was
 * frozen, is not asked about again). A group is resolved whole or not at
 * all: one unresolved member leaves every member of its group unresolved.
 * @param {StoreSync} ss @param {{m: StoredMutation, r: PushResult}[]} list
 * @returns {Promise<Decision[]>}
 */
async function decide(ss, list) {
  const { store, local, host } = ss;
  // The local side of each conflict, and the newest pending id it accounts for.
  const locals = await local.run([RECORDS], 'readonly', async (tx) => {
    return Promise.all(list.map(async ({ m }) => {
      /** @type {StoredRecord|undefined} */
      const rec = await rq(tx.objectStore(RECORDS).get([store, m.k]));
      return { rec, seenMax: ((rec && rec.p) || []).reduce((a, id) => Math.max(a, id), 0) };
    }));
  });
  /** @type {Decision[]} */
  const out = [];
  for (let i = 0; i < list.length; i++) {
    const { m, r } = list[i];
    const rec = locals[i].rec;
    if (!rec || !rec.p || !rec.p.includes(m.id)) continue;
    const cur = r.current;
    /** @type {ConflictInfo} */
    const info = {
      store, key: m.k,
      local: !rec.d ? clone(rec.v) : undefined,
      remote: cur ? clone(cur.value) : undefined,
      localDeleted: !!rec.d, remoteDeleted: !cur,
      remoteVersion: cur ? cur.version : 0,
      mutation: mutationInfo(m, store),
      ...(r.reason ? { reason: r.reason } : {}),
    };
    let value, error = null;
    try {
      value = await host.onConflict({ ...info, local: clone(info.local), remote: clone(info.remote) });
      if (value !== undefined) value = JSON.parse(toJSONText(value));
    } catch (e) { error = e; }
    out.push({ m, info, value, error, byGroup: false, seenMax: locals[i].seenMax, base: m.base !== undefined ? m.base : rec.ver || 0 });
  }
  const failedGroups = new Set(out.filter((x) => x.error && x.m.tx).map((x) => x.m.tx));
  for (const x of out) {
    if (x.error || !x.m.tx || !failedGroups.has(x.m.tx)) continue;
    x.error = new Error('another member of its tx group was not resolved');
    x.byGroup = true;
  }
  return out;
}

/**
 * Applies one decision to its key's row (rec, whose `p` still lists the
 * conflicted mutation) and gathers the rest in st.
 * @param {TxState} st @param {Decision} x @param {StoredRecord} rec
 */
function applyDecision(st, x, rec) {
  const { m, info } = x;
  st.dirty.add(m.k);
  st.gone.add(m.id);
  const rest = /** @type {number[]} */ (rec.p).filter((id) => id !== m.id);
  rec.p = rest;
  const newer = rest.filter((id) => id > x.seenMax); // written while onConflict ran
  rec.ver = info.remoteVersion;
  if (x.error) {
    // Unresolved: keep it readable, show the remote state, push nothing.
    st.cs.put({ s: st.store, k: m.k, local: info.local, localDeleted: info.localDeleted, remote: info.remote,
      remoteDeleted: info.remoteDeleted, remoteVersion: info.remoteVersion, at: Date.now(), error: String(x.error && x.error.message || x.error) });
    // The key's writes queued before the conflict was known go with it, up
    // to the first that is a member of another `tx` group: a group is never
    // split, so that write and every later one stay (the key keeps showing
    // the newest of them), on the conflicted mutation's base unless a write
    // made meanwhile rebased them: the server judges them again.
    const firstGroup = rest.filter((id) => id <= x.seenMax).sort((p, q) => p - q)
      .find((id) => { const at = st.entries.get(id); return !!(at && at.g.tx && at.g.tx !== m.tx); });
    const keep = firstGroup === undefined ? newer : rest.filter((id) => id >= firstGroup);
    for (const id of rest) if (!keep.includes(id)) st.gone.add(id);
    rec.p = keep;
    if (firstGroup !== undefined && !newer.length) st.pinned.set(m.k, x.base);
    if (!keep.length) {
      rec.d = info.remoteDeleted; rec.v = info.remote;
      st.changes.push({ key: m.k, value: rec.v, deleted: rec.d, origin: 'remote' });
    }
    return;
  }
  st.cs.delete([st.store, m.k]);
  if (newer.length) return; // a newer local write wins, rebased on the remote version
  const deleted = x.value === undefined;
  rec.d = deleted; rec.v = deleted ? undefined : x.value;
  st.changes.push({ key: m.k, value: clone(rec.v), deleted, origin: 'remote' });
  // Later members of `tx` groups on this key take the resolution (the group
  // goes out whole); other queued writes of the key are replaced by it.
  let rewritten = false;
  /** @type {number[]} */
  const kept = [];
  for (const id of rest) {
    const at = st.entries.get(id);
    if (at && at.g.tx) {
      const p = at.e;
      p.op = deleted ? 'delete' : 'put'; if (deleted) delete p.v; else p.v = x.value;
      st.edited.add(at.g); kept.push(id); rewritten = true;
    } else st.gone.add(id);
  }
  rec.p = kept;
  const differs = deleted ? !info.remoteDeleted : (info.remoteDeleted || !same(x.value, info.remote));
  if (differs && !rewritten) st.adds.push({ m, deleted, value: x.value });
}

/**
 * Queues resolutions that differ from the remote state as new mutations:
 * consecutive ids for one aborted group's resolutions, which stay one group
 * (one segment; segments never interleave), one segment for each other.
 * @param {IDBTransaction} tx @param {string} store
 * @param {{m: StoredMutation, deleted: boolean, value: any}[]} adds
 * @param {Map<string, StoredRecord|undefined>} byKey the rows, updated here
 */
async function appendResolutions(tx, store, adds, byKey) {
  /** @type {Map<any, typeof adds>} */
  const buckets = new Map();
  for (const a of adds) {
    const b = a.m.tx || a;
    let l = buckets.get(b);
    if (!l) { l = []; buckets.set(b, l); }
    l.push(a);
  }
  const ordered = [...buckets.values()].flat();
  const { first } = await allocIds(tx, ordered.length);
  const at = Date.now();
  /** @type {Map<string, string>} an aborted group's id -> its resolutions' new group id */
  const newGroups = new Map();
  /** @type {Map<string, StoredMutation[]>} a new group's id -> its mutations */
  const out = new Map();
  const log = tx.objectStore(LOG);
  ordered.forEach((a, i) => {
    /** @type {StoredMutation} */
    const nm = { id: first + i, s: store, k: a.m.k, op: a.deleted ? 'delete' : 'put', at };
    if (!a.deleted) nm.v = a.value;
    const rec = /** @type {StoredRecord} */ (byKey.get(a.m.k));
    rec.p = [...(rec.p || []), nm.id];
    if (a.m.tx) {
      let g = newGroups.get(a.m.tx);
      if (!g) { g = newGroupId(); newGroups.set(a.m.tx, g); }
      let l = out.get(g);
      if (!l) { l = []; out.set(g, l); }
      l.push(nm);
    } else log.put(newSegment(store, [nm], undefined, at));
  });
  for (const [g, l] of out) log.put(newSegment(store, l, g, at));
}
