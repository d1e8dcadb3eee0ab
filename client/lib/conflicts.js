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
      return { rec, seenMax: ((rec && rec.p) || []).reduce((a, id) => Math.max(a, id), 0) };
    }));
  });
  /** @type {{m: StoredMutation, info: ConflictInfo, value: any, error: any, seenMax: number, base: number}[]} */
  const resolved = [];
  for (let i = 0; i < list.length; i++) {
    const { m, r } = list[i];
    const rec = locals[i].rec;
    // Settled meanwhile (another tab took over and resolved it): not asked again.
    if (!rec || !rec.p || !rec.p.includes(m.id)) continue;
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
    resolved.push({ m, info, value, error, seenMax: locals[i].seenMax, base: m.base !== undefined ? m.base : rec.ver || 0 });
  }
  // A group is resolved whole or not at all: one unresolved member leaves
  // every member of its group unresolved (and nothing of it is pushed).
  const failedGroups = new Set(resolved.filter((x) => x.error && x.m.tx).map((x) => x.m.tx));
  for (const x of resolved) {
    if (!x.error && x.m.tx && failedGroups.has(x.m.tx)) x.error = new Error('another member of its tx group was not resolved');
  }
  if (!resolved.length) return;
  /** @type {Set<typeof resolved[number]>} those the write transaction handled (the others were settled meanwhile) */
  const handled = new Set();
  /** @type {Change[]} */
  const changes = [];
  /** @type {Map<string, string>} an aborted group's id -> its resolutions' new group id */
  const newGroups = new Map();
  await local.run([RECORDS, LOG, META, CONFLICTS], 'readwrite', async (tx) => {
    const recs = tx.objectStore(RECORDS);
    const cs = tx.objectStore(CONFLICTS);
    /** @type {{m: StoredMutation, deleted: boolean, value: any}[]} */
    const adds = [];
    // Each key's row (it lists the key's pending ids), read once, put at
    // the end; then the log segments that hold those mutations.
    const keys = [...new Set(resolved.map((x) => x.m.k))];
    /** @type {(StoredRecord|undefined)[]} */
    const rows = await Promise.all(keys.map((k) => rq(recs.get([store, k]))));
    const byKey = new Map(keys.map((k, i) => [k, rows[i]]));
    const ids = rows.flatMap((r) => (r && r.p) || []);
    /** @type {import('./schema.js').StoredSegment[]} */
    const segs = ids.length ? await readSegments(tx, store, ...idRange(ids)) : [];
    /** @type {Map<number, {e: import('./schema.js').SegmentEntry, g: import('./schema.js').StoredSegment}>} */
    const entries = new Map();
    for (const g of segs) for (const e of g.m) entries.set(e.id, { e, g });
    /** @type {Set<number>} mutations that leave the log */
    const gone = new Set();
    /** @type {Set<import('./schema.js').StoredSegment>} segments whose entries were rewritten */
    const edited = new Set();
    /** @type {Set<string>} */
    const dirty = new Set();
    /** @type {Map<string, number>} key -> the base its oldest kept write goes out on (not the remote version) */
    const pinned = new Map();
    for (const x of resolved) {
      const { m, info } = x;
      const had = byKey.get(m.k);
      if (!had || !had.p || !had.p.includes(m.id)) continue; // handled already (a retried response)
      handled.add(x);
      /** @type {StoredRecord} */
      const rec = had;
      dirty.add(m.k);
      gone.add(m.id);
      const rest = /** @type {number[]} */ (rec.p).filter((id) => id !== m.id);
      rec.p = rest;
      const newer = rest.filter((id) => id > x.seenMax);
      rec.ver = info.remoteVersion;
      if (x.error) {
        // Unresolved: keep it readable, show the remote state, push nothing.
        cs.put({ s: store, k: m.k, local: info.local, localDeleted: info.localDeleted, remote: info.remote,
          remoteDeleted: info.remoteDeleted, remoteVersion: info.remoteVersion, at: Date.now(), error: String(x.error && x.error.message || x.error) });
        // The key's writes queued before the conflict was known go with it,
        // up to the first that is a member of another `tx` group: a group is
        // never split, so that write and every later one stay, rebased on
        // the remote version (the key keeps showing the newest of them).
        const firstGroup = rest.filter((id) => id <= x.seenMax).sort((p, q) => p - q)
          .find((id) => { const at = entries.get(id); return !!(at && at.g.tx && at.g.tx !== m.tx); });
        const keep = firstGroup === undefined ? newer : rest.filter((id) => id >= firstGroup);
        for (const id of rest) if (!keep.includes(id)) gone.add(id);
        rec.p = keep;
        if (firstGroup !== undefined && !newer.length) pinned.set(m.k, x.base); // nothing decided: judged again
        if (!keep.length) {
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
      /** @type {number[]} */
      const kept = [];
      for (const id of rest) {
        const at = entries.get(id);
        if (at && at.g.tx) {
          const p = at.e;
          p.op = deleted ? 'delete' : 'put'; if (deleted) delete p.v; else p.v = x.value;
          edited.add(at.g); kept.push(id); rewritten = true;
        } else gone.add(id);
      }
      rec.p = kept;
      const differs = deleted ? !info.remoteDeleted : (info.remoteDeleted || !same(x.value, info.remote));
      if (differs && !rewritten) adds.push({ m, deleted, value: x.value });
    }
    // The records' versions moved: their pending mutations' kept bases go (the push reads the rows).
    for (const k of dirty) {
      const p = /** @type {StoredRecord} */ (byKey.get(k)).p || [];
      for (const id of p) {
        const at = entries.get(id);
        if (at && at.e.b !== undefined) { delete at.e.b; edited.add(at.g); }
      }
      const pin = pinned.get(k), at = pin !== undefined && p.length ? entries.get(idRange(p)[0]) : undefined;
      if (at) { at.e.b = pin; edited.add(at.g); }
    }
    dropFromLog(tx, segs, gone, edited);
    if (adds.length) {
      // A group's resolutions take consecutive ids (one segment each; segments never interleave).
      /** @type {Map<any, typeof adds>} */
      const buckets = new Map();
      for (const a of adds) {
        const b = a.m.tx || a;
        let l = buckets.get(b);
        if (!l) { l = []; buckets.set(b, l); }
        l.push(a);
      }
      adds.splice(0, adds.length, ...[...buckets.values()].flat());
      const { first } = await allocIds(tx, adds.length);
      const at = Date.now();
      /** @type {Map<string, StoredMutation[]>} a new group's id ('' for none) -> its mutations */
      const out = new Map();
      const log = tx.objectStore(LOG);
      adds.forEach((a, i) => {
        /** @type {StoredMutation} */
        const nm = { id: first + i, s: store, k: a.m.k, op: a.deleted ? 'delete' : 'put', at };
        if (!a.deleted) nm.v = a.value;
        const rec = /** @type {StoredRecord} */ (byKey.get(a.m.k));
        rec.p = [...(rec.p || []), nm.id];
        if (a.m.tx) { // resolutions of one aborted group stay one group (one segment)
          let g = newGroups.get(a.m.tx);
          if (!g) { g = newGroupId(); newGroups.set(a.m.tx, g); }
          let l = out.get(g);
          if (!l) { l = []; out.set(g, l); }
          l.push(nm);
        } else log.put(newSegment(store, [nm], undefined, at));
      });
      for (const [g, l] of out) log.put(newSegment(store, l, g, at));
    }
    for (const k of dirty) putRec(recs, /** @type {StoredRecord} */ (byKey.get(k)));
  });
  for (const x of resolved) {
    if (!handled.has(x)) continue;
    const c = { ...x.info, resolved: x.error ? undefined : clone(x.value), ...(x.error ? { unresolved: true, error: String(x.error && x.error.message || x.error) } : {}) };
    host.reportConflict(c);
    if (x.error) host.reportError(new ZooSyncError('conflict_unresolved', `${store}/${x.m.k}: onConflict threw: ${x.error && x.error.message || x.error}`, { store, mutation: x.info.mutation }));
  }
  if (changes.length) host.deliver(store, changes);
  host.refreshPending();
  ss.requestPush();
}
