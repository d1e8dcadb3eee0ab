// push.js: the push side of one store: the change log goes to the gateway
// in batches, and each answer is applied in one IndexedDB transaction
// (results, rejected mutations and keys to restore together), then the
// restores and the conflicts (conflicts.js).

import { ZooSyncError, isTransient } from './errors.js';
import { MAX_MUTATIONS_PER_PUSH, utf8Length } from './protocol.js';
import { RECORDS, LOG, META, META_KEYS, mutationInfo, pendingOf, segmentRange, logRange } from './schema.js';
import { rq, metaGet, metaPut, metaDelete, getRecords, putRec, sweepTombstones, readLog, dropPending, dropFromLog, readSegments, idRange } from './local.js';
import { resolveConflicts } from './conflicts.js';

/** @typedef {import('./schema.js').StoredMutation} StoredMutation */
/** @typedef {import('./schema.js').StoredRecord} StoredRecord */
/** @typedef {import('./sync.js').StoreSync} StoreSync */
/** @typedef {import('../zoosync.d.ts').Change} Change */

/** Statuses that keep the queue (and report, and retry with backoff) rather than drop a mutation. */
const NON_RETRYABLE_KEEP = new Set([401, 403]);

/**
 * One push result (docs/PROTOCOL.md, Push).
 * @typedef {{id: number, status: 'applied'|'duplicate'|'conflict'|'rejected', version?: number, cursor?: string, current?: {value: any, version: number}|null, reason?: string, errors?: any[]}} PushResult
 */

/**
 * Takes the mutations in `gone` out of the log segments a batch was read
 * from (StoredMutation.seg: a segment keeps the id it was written with). A
 * segment whose every mutation, as read, is gone is deleted by its id's key
 * range, without reading it: segments never gain mutations, so it is empty
 * now (or already deleted, for a retried answer). The others are read in
 * one getAll each and rewritten. Returns when the reads are done; the
 * writes are issued without waiting.
 * @param {IDBTransaction} tx @param {string} store @param {StoredMutation[]} muts @param {Set<number>} gone
 * @returns {Promise<void>}
 */
async function settleSegments(tx, store, muts, gone) {
  /** @type {Map<number, {n: number, out: number}>} segment id -> its size as read, and how many of it are gone */
  const by = new Map();
  for (const m of muts) {
    if (m.seg === undefined) continue;
    let x = by.get(m.seg);
    if (!x) { x = { n: m.segN || 0, out: 0 }; by.set(m.seg, x); }
    if (gone.has(m.id)) x.out++;
  }
  const log = tx.objectStore(LOG);
  /** @type {Promise<import('./schema.js').StoredSegment[]>[]} */
  const reads = [];
  for (const [id, x] of by) {
    if (!x.out) continue;
    if (x.out === x.n) log.delete(segmentRange(store, id));
    else reads.push(rq(log.getAll(segmentRange(store, id)))); // some of it stays
  }
  if (reads.length) dropFromLog(tx, (await Promise.all(reads)).flat(), gone);
}

/**
 * The keys of a batch whose every mutation has an `applied` result with a
 * version and a cursor (outside rejected groups), each with its mutations
 * in the batch, in id order: the rows StorePush.blindKeys may rebuild.
 * @param {StoredMutation[]} muts @param {PushResult[]} results (each for one of muts) @param {Set<string>} badTx
 * @returns {Map<string, StoredMutation[]>}
 */
function blindCandidates(muts, results, badTx) {
  /** @type {Map<number, PushResult>} */
  const res = new Map();
  /** @type {Set<number>} ids answered twice (their rows are read) */
  const twice = new Set();
  for (const r of results) {
    if (res.has(r.id)) twice.add(r.id);
    res.set(r.id, r);
  }
  /** @type {Set<string>} */
  const no = new Set();
  /** @type {Map<string, StoredMutation[]>} */
  const out = new Map();
  for (const m of muts) {
    const r = res.get(m.id);
    if (!r || r.status !== 'applied' || !Number.isInteger(r.version) || typeof r.cursor !== 'string' || !r.cursor ||
      (m.tx && badTx.has(m.tx)) || twice.has(m.id) || m.seg === undefined) { no.add(m.k); continue; }
    let l = out.get(m.k);
    if (!l) { l = []; out.set(m.k, l); }
    l.push(m);
  }
  for (const k of no) out.delete(k);
  return out;
}

/** The push side of one store. */
export class StorePush {
  /** @param {StoreSync} ss */
  constructor(ss) {
    this.ss = ss;
    this.store = ss.store;
    this.local = ss.local;
    this.host = ss.host;
    /**
     * No pending mutation of this store has an id below this one (0: not
     * known). Ids only grow (new mutations take the next id), so once a
     * batch's answer is applied, the next batch is read from the lowest id
     * the answer left queued, or from the one after the batch: the log is
     * not scanned again from its start over what was just deleted.
     */
    this.floor = 0;
    /** lowest id of the batch in flight that its answers left queued */
    this.minLeft = Infinity;
    /** every answer to the batch in flight said `applied` */
    this.allApplied = true;
    /** @type {Map<string, Promise<void>>} key -> settles when the batch in flight that holds it has its answer written (pending in IndexedDB until then) */
    this.keyWait = new Map();

    /**
     * @type {Map<string, string>} key -> cursor of this tab's own writes whose
     * `applied` answer is committed (the record's cursor is at least that):
     * the event stream skips these changes without a transaction (pull.js)
     */
    this.acked = new Map();
  }

  /**
   * Pushes until this store has no pending mutation. While a batch is on
   * the wire the next one is read (a readonly transaction); it is used when
   * the answer left nothing queued and settled every mutation as `applied`
   * (so no conflict, restore or rejection changed a record or the log) and
   * it shares no key with the batch sent (so its bases are still right).
   * Otherwise it is read again. New mutations only ever come after it (ids
   * grow). (Sending it while the answer is still being written was tried:
   * on the 2-core machine of docs/PERFORMANCE.md it was no faster, the
   * pages and the gateway being CPU-bound, and it widened the window in
   * which a crash makes the server answer `duplicate`.)
   */
  async pushAll() {
    /** @type {Awaited<ReturnType<StorePush['readBatch']>>|null} */
    let ahead = null;
    let first = true;
    for (;;) {
      if (this.ss.stopped) throw new ZooSyncError('aborted', 'stopped');
      const batch = ahead || await this.readBatch(this.floor);
      ahead = null;
      if (first) {
        // Keys a rejected or duplicate mutation left to restore are restored
        // before anything is sent (their list comes with the first batch's
        // read, not in a transaction of its own: one round trip less on
        // every push round); the batch is then read again.
        first = false;
        if (batch.restore && batch.restore.length) { await this.restoreKeys(batch.restore); continue; }
      }
      if (!batch.units.length) return;
      const muts = batch.units.flat();
      const lastId = muts[muts.length - 1].id;
      const next = this.readBatch(lastId + 1);
      next.catch(() => {});
      this.minLeft = Infinity;
      this.allApplied = true;
      /** @type {() => void} */
      let done = () => {};
      const settled = new Promise((r) => { done = r; });
      const keys = new Set(muts.map((m) => m.k));
      for (const k of keys) this.keyWait.set(k, settled);
      try {
        await this.sendUnits(batch.client, batch.units);
      } finally {
        for (const k of keys) if (this.keyWait.get(k) === settled) this.keyWait.delete(k);
        done();
      }
      this.floor = Math.min(this.minLeft, lastId + 1);
      this.host.refreshPending();
      if (this.allApplied && this.minLeft === Infinity) {
        const b = await next.catch(() => null);
        if (b && b.units.length && !b.units.some((u) => u.some((m) => keys.has(m.k)))) ahead = b;
      }
    }
  }

  /**
   * Reads the longest prefix of the queue that can go in one request: at
   * most 1000 mutations and maxPushBytes, cut before a key repeats, `tx`
   * groups whole; each key's first mutation gets its `base`. `from`: the
   * lowest id that may still be queued.
   * `restore`: the keys queued for restoreKeys (meta `restore:<store>`).
   * @param {number} [from]
   * @returns {Promise<{client: string, units: StoredMutation[][], restore: string[]|undefined}>}
   */
  async readBatch(from = 0) {
    return this.local.run([RECORDS, LOG, META], 'readonly', async (tx) => {
      /** @type {[string, StoredMutation[], string[]|undefined]} */
      const [client, rows, restore] = await Promise.all([
        metaGet(tx, META_KEYS.client),
        readLog(tx, this.store, MAX_MUTATIONS_PER_PUSH + 1, from, (segs) => this.local.noteSegments(segs)),
        metaGet(tx, META_KEYS.restore(this.store)),
      ]);
      /** @type {StoredMutation[][]} */
      const units = [];
      const keys = new Set();
      let count = 0, bytes = 0;
      const maxBytes = this.ss.opts.maxPushBytes || 1 << 20;
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
      // Bases: the server version each key's local state is based on (its
      // record row's: readLog sets m.base).
      for (const unit of units) {
        const seen = new Set();
        for (const m of unit) {
          if (!seen.has(m.k)) seen.add(m.k); else m.base = undefined; // later member of the same group on the same key
        }
      }
      return { client, units, restore };
    });
  }

  /**
   * Sends units; a unit the server rejects for good is isolated by halving.
   * @param {string} client @param {StoredMutation[][]} units
   * @returns {Promise<void>}
   */
  async sendUnits(client, units) {
    const muts = units.flat();
    const body = {
      client,
      mutations: muts.map((m) => {
        /** @type {any} */
        const o = { id: m.id, key: m.k, op: m.op };
        if (m.op === 'put') o.value = m.v;
        if (m.base !== undefined) o.base = m.base;
        if (m.tx) o.tx = m.tx;
        return o;
      }),
    };
    let res;
    try {
      res = await this.ss.gw.request('POST', `/v1/stores/${this.store}/push`, { body });
    } catch (e) {
      const err = /** @type {ZooSyncError} */ (e);
      if (err.code === 'aborted' || isTransient(err)) throw err;
      if ((err.status !== undefined && NON_RETRYABLE_KEEP.has(err.status)) || err.code === 'store_not_found') throw Object.assign(err, { store: this.store });
      if (err.status !== undefined && err.status >= 400 && err.status < 500) {
        if (units.length > 1) {
          const mid = Math.ceil(units.length / 2);
          await this.sendUnits(client, units.slice(0, mid));
          await this.sendUnits(client, units.slice(mid));
          return;
        }
        await this.rejectUnit(units[0], err);
        return;
      }
      throw err;
    }
    await this.applyResults(muts, res.json);
  }

  /**
   * A unit the server rejected for good: report it, drop it, restore the
   * server's state. The keys to restore are queued (meta `restore:<store>`)
   * in the transaction that drops the mutations, as for a `rejected` result,
   * so a crash or a failed GET before the restore does not leave the
   * rejected value in place.
   * @param {StoredMutation[]} unit @param {ZooSyncError} e
   */
  async rejectUnit(unit, e) {
    this.allApplied = false;
    await this.local.run([RECORDS, LOG, META], 'readwrite', async (tx) => {
      const recs = tx.objectStore(RECORDS);
      const keys = [...new Set(unit.map((m) => m.k))];
      const ids = new Set(unit.map((m) => m.id));
      const restoreKey = META_KEYS.restore(this.store);
      const [rows, prevRestore] = await Promise.all([getRecords(recs, this.store, keys), metaGet(tx, restoreKey),
        settleSegments(tx, this.store, unit, ids)]);
      /** @type {string[]} */
      const left = [];
      rows.forEach((rec, i) => {
        if (!rec) { left.push(keys[i]); return; }
        if (dropPending(rec, ids)) putRec(recs, rec);
        if (!pendingOf(rec)) left.push(keys[i]);
      });
      if (left.length) await metaPut(tx, restoreKey, [...new Set([...(prevRestore || []), ...left])]);
    });
    const mutation = unit.length === 1 ? mutationInfo(unit[0], this.store) : unit.map((m) => mutationInfo(m, this.store));
    const err = new ZooSyncError(e.code, `${this.store}: mutation ${unit.map((m) => m.id).join(',')} rejected by the server: ${e.message}`,
      { status: e.status, store: this.store, mutation, details: e.details });
    this.host.reportError(err);
    this.host.refreshPending();
    if (e.code === 'value_too_large') await this.ss.loadDesc().catch(() => {}); // the limit may have been lowered
    await this.restoreKeys().catch(() => {}); // what fails here is tried again at the next push round
  }

  /**
   * Adopts the server's present state of keys that have no pending mutation
   * (a key with one only takes the server's version as its base).
   * @param {string[]} keys
   */
  async refetch(keys) {
    for (const k of keys) {
      /** @type {{value?: any, version?: number, cursor?: string, deleted: boolean}} */
      let state;
      // The store's cursor as the GET leaves: a row whose cursor passed it
      // took a change (the stream, a page) while the GET was on the wire,
      // which may be newer than what the GET read.
      const sent = await this.local.cursor(this.store);
      try {
        const r = await this.ss.gw.request('GET', `/v1/stores/${this.store}/records/${encodeURIComponent(k)}`);
        state = { value: r.json.value, version: r.json.version, cursor: r.json.cursor, deleted: false };
      } catch (e) {
        const err = /** @type {ZooSyncError} */ (e);
        if (err.code !== 'not_found' && err.status !== 404 && err.status !== 403) throw err; // 403: the token may not read it
        state = { deleted: true };
      }
      /** @type {Change|null} */
      const out = await this.local.run([RECORDS, LOG], 'readwrite', async (tx) => {
        const recs = tx.objectStore(RECORDS);
        /** @type {StoredRecord|undefined} */
        const had = await rq(recs.get([this.store, k]));
        const pend = pendingOf(had);
        /** @type {StoredRecord} */
        const rec = had || { s: this.store, k, ver: 0, c: '', e: 0, d: true };
        // Never back: an answer older than the row's state (its cursor is
        // lower), or a 404 for a row that took a change after the GET left.
        if (had && had.c && (state.deleted ? !!sent && had.c > sent : !!state.cursor && state.cursor < had.c)) return null;
        if (pend) {
          if (state.version) {
            rec.ver = state.version;
            putRec(recs, rec);
            // The version moved: the pending mutations' kept bases go (the push reads the row).
            const ids = /** @type {number[]} */ (rec.p);
            const segs = await readSegments(tx, this.store, ...idRange(ids));
            /** @type {Set<import('./schema.js').StoredSegment>} */
            const edited = new Set();
            for (const g of segs) for (const e of g.m) if (e.k === k && e.b !== undefined) { delete e.b; edited.add(g); }
            dropFromLog(tx, segs, new Set(), edited);
          }
          return null;
        }
        const before = JSON.stringify([!!rec.d, rec.d ? null : rec.v]);
        if (state.deleted) { rec.d = true; rec.v = undefined; } else {
          rec.d = false; rec.v = state.value; rec.ver = /** @type {number} */ (state.version);
          if (state.cursor && state.cursor > (rec.c || '')) rec.c = state.cursor;
        }
        if (rec.d) recs.delete([this.store, k]); // nothing pending needs a tombstone
        else putRec(recs, rec);
        return before === JSON.stringify([!!rec.d, rec.d ? null : rec.v]) ? null : { key: k, value: rec.v, deleted: !!rec.d, origin: 'remote' };
      });
      if (out) this.host.deliver(this.store, [out]);
    }
  }

  /**
   * Applies a push response: one IndexedDB transaction, then restores and
   * conflicts. A `rejected` mutation leaves the queue in that transaction, and
   * its key is queued for a restore from the server (meta `restore:<store>`,
   * so a crash or a failed GET does not lose it; a `duplicate`'s key too, for
   * its version); a rejected `tx` group is
   * undone whole, whatever its other members' results say. A result for a
   * mutation no longer queued (settled meanwhile by another tab, or a retried
   * answer) changes nothing.
   * @param {StoredMutation[]} muts what was sent @param {{results?: PushResult[]}} body the answer
   */
  async applyResults(muts, body) {
    const byId = new Map(muts.map((m) => [m.id, m]));
    const results = (body.results || []).filter((r) => byId.has(r.id));
    const mut = (/** @type {PushResult} */ r) => /** @type {StoredMutation} */ (byId.get(r.id));
    const badTx = new Set(results.filter((r) => r.status === 'rejected' && mut(r).tx).map((r) => mut(r).tx));
    const cand = blindCandidates(muts, results, badTx);
    /** @type {{m: StoredMutation, r: PushResult}[]} */
    const conflicts = [];
    /** @type {string[]} */
    const dups = [];
    /** @type {{m: StoredMutation, reason: string, errors?: any[]}[]} */
    let rejected = [];
    /** @type {Set<number>} */
    const gone = new Set();
    await this.local.run([RECORDS, LOG, META], 'readwrite', async (tx) => {
      const recs = tx.objectStore(RECORDS);
      // The rows of the request's keys (they list the ids still pending),
      // the restore list and the cursor, read in one go; the log segments
      // the batch was read from are settled once the results are known
      // (most are deleted without a read). The row of a key whose results
      // are all `applied` is not read when the log's keys show that nothing
      // but the batch wrote it since (blindKeys): it is rebuilt from the
      // batch, and the resync state and the log's keys are read instead.
      const keys = [...new Set(results.map((r) => mut(r).k))];
      const sure = cand.size ? keys.filter((k) => !cand.has(k)) : keys;
      const [got, prevRestore, cursor, resync, logKeys] = await Promise.all([
        getRecords(recs, this.store, sure),
        metaGet(tx, META_KEYS.restore(this.store)),
        metaGet(tx, META_KEYS.cursor(this.store)),
        cand.size ? metaGet(tx, META_KEYS.resync(this.store)) : undefined,
        cand.size ? rq(tx.objectStore(LOG).getAllKeys(logRange(this.store))) : [],
      ]);
      /** @type {Map<string, StoredRecord|undefined>} */
      const byKey = new Map(sure.map((k, i) => [k, got[i]]));
      if (cand.size) {
        const blind = resync && resync.active ? new Set() : await this.blindKeys(tx, logKeys, muts, cand);
        const rest = [...cand.keys()].filter((k) => !blind.has(k));
        const more = await getRecords(recs, this.store, rest);
        rest.forEach((k, i) => byKey.set(k, more[i]));
        for (const k of blind) {
          // The row as it is (blindKeys): the state of the key's last
          // mutation, pending the batch's ids; version and cursor are set
          // from the results below, as for a row read.
          const ms = /** @type {StoredMutation[]} */ (cand.get(k));
          const last = ms[ms.length - 1];
          /** @type {StoredRecord} */
          const rec = { s: this.store, k, d: last.op === 'delete', v: last.op === 'put' ? last.v : undefined, ver: 0, c: '', e: 0, p: ms.map((m) => m.id) };
          byKey.set(k, rec);
        }
      }
      const queued = (/** @type {StoredMutation} */ m) => { const rec = byKey.get(m.k); return !!(rec && rec.p && rec.p.includes(m.id)); };
      gone.clear(); // (a retried transaction starts over)
      /** @type {Set<string>} */
      const dirty = new Set();
      for (const r of results) {
        const m = mut(r);
        if (r.status === 'rejected' || (m.tx && badTx.has(m.tx))) {
          // Only those still queued: a retried request's answer is handled once.
          this.allApplied = false;
          if (queued(m)) { rejected.push({ m, reason: r.status === 'rejected' ? String(r.reason || 'rejected') : 'tx_aborted', errors: r.errors }); gone.add(m.id); dirty.add(m.k); }
          continue;
        }
        if (r.status !== 'applied') this.allApplied = false;
        // Only those still queued: another tab (this one's successor while
        // it was frozen) may have settled them and moved the record since;
        // a late answer must not set its version back, nor ask onConflict
        // about a conflict that tab resolved.
        if (!queued(m)) continue;
        if (r.status === 'conflict') { conflicts.push({ m, r }); continue; }
        gone.add(m.id);
        dirty.add(m.k);
        if (r.status === 'duplicate') { dups.push(m.k); continue; }
        // applied: results apply in order on the in-memory record.
        const rec = byKey.get(m.k);
        if (!rec) continue;
        if (Number.isInteger(r.version)) rec.ver = /** @type {number} */ (r.version);
        else if (m.op === 'delete') rec.ver = rec.ver || 0;
        if (r.cursor && r.cursor > (rec.c || '')) rec.c = r.cursor;
      }
      // Keys to read back from the server, queued durably (a failed GET or a
      // crash leaves them queued): a rejected mutation's, and a duplicate's
      // (its version is learnt from the server).
      if (rejected.length || dups.length) {
        await metaPut(tx, META_KEYS.restore(this.store), [...new Set([...(prevRestore || []), ...rejected.map((x) => x.m.k), ...dups])]);
      }
      for (const k of dirty) {
        const rec = byKey.get(k);
        if (!rec) continue;
        dropPending(rec, gone);
        putRec(recs, rec);
      }
      await settleSegments(tx, this.store, muts, gone);
      if (gone.size) await sweepTombstones(tx, this.store, cursor);
    });
    for (const m of muts) if (!gone.has(m.id) && m.id < this.minLeft) this.minLeft = m.id; // still queued: the next batch starts there
    if (this.acked.size > 100000) this.acked.clear(); // a hint only: a change not found here goes through IndexedDB
    for (const r of results) if (r.status === 'applied' && r.cursor && gone.has(r.id)) this.acked.set(mut(r).k, r.cursor);
    if (rejected.length) {
      this.host.refreshPending();
      await this.restoreKeys().catch((e) => { this.ss.requestPush(); if (e.code !== 'aborted') this.ss.reportError(e); });
      this.reportRejected(rejected);
    } else if (dups.length) await this.restoreKeys().catch(() => this.ss.requestPush()); // tried again before the next push
    if (conflicts.length) await resolveConflicts(this.ss, conflicts);
  }

  /**
   * The keys among `cand` (whose results are all `applied`, blindCandidates)
   * whose record rows the answer's transaction may write without reading
   * them: the row is then known to be the state of the key's last mutation
   * in the batch, with the batch's ids of that key pending, and the answer
   * sets version, cursor and `p` as it would on the row read. A key
   * qualifies when, in this transaction:
   * - each of its mutations in the batch is still queued: the segment it
   *   was read from is there with the same id, time and size (a segment
   *   only ever loses entries, and ids are never reused); and
   * - the log holds no other mutation of the key: every segment of the store
   *   is known (noted by this tab when written or read whole, or read now),
   *   and none holds an entry of the key outside the batch.
   * Why that is the row: a row lists exactly the ids of its key's mutations
   * in the log (every writer changes both in one transaction), so its `p`
   * is the batch's ids of the key. While a row has pending mutations, no
   * writer without a log segment of its own changes its value: the pull
   * skips it (it may set `e`, only during a resync: the caller reads every
   * row then), a refetch moves its version only (set here anyway), and a
   * conflict resolution changes the value only while an earlier mutation
   * of the key is queued: it removes that one, and it may rewrite later
   * members of `tx` groups on the key in place (conflicts.js,
   * applyDecision: same segment id, time and size, which this check cannot
   * see). Neither can concern a key of this batch: a later mutation of a
   * key is sent only once every earlier one has left the log (a batch is a
   * prefix of the queue cut before a key repeats, the floor never passes a
   * queued id, and a read-ahead batch is used only when it shares no key
   * with the batch sent), so the earlier mutation would be in this batch,
   * no longer queued (the key does not qualify). A change to those rules of
   * pushAll must revisit this argument. The value is therefore its
   * last mutation's, as read for the batch. Its cursor is older than the
   * answer's (a pull or an answer set it to a state the server committed
   * before this mutation was sent; cursors grow in commit order), so the
   * answer's cursor is the row's; `e` only counts during a resync, when
   * the rows are read. The record's `o`/`t` follow from key, deletion and
   * cursor.
   * @param {IDBTransaction} tx @param {[string, number, number, number][]} logKeys the store's segments' keys
   * @param {StoredMutation[]} muts the batch @param {Map<string, StoredMutation[]>} cand
   * @returns {Promise<Set<string>>}
   */
  async blindKeys(tx, logKeys, muts, cand) {
    /** @type {Map<number, [string, number, number, number]>} */
    const present = new Map(logKeys.map((k) => [k[1], k]));
    let idx = this.local.segmentIndex(this.store);
    for (const id of idx.keys()) if (!present.has(id)) idx.delete(id); // gone for good
    /** @type {number[]} */
    const unknown = [];
    for (const [id, key] of present) {
      const x = idx.get(id);
      if (!x || x.at !== key[3] || x.n < key[2]) unknown.push(id);
    }
    // A tab that has not seen most of the log (a fresh tab with a large
    // offline backlog) would read it all here, one getAll per segment, in
    // the answer's transaction: reading the batch's rows costs less then.
    if (unknown.length > MAX_MUTATIONS_PER_PUSH) return new Set();
    if (unknown.length) {
      const log = tx.objectStore(LOG);
      this.local.noteSegments((await Promise.all(unknown.map((id) => rq(log.getAll(segmentRange(this.store, id)))))).flat());
      idx = this.local.segmentIndex(this.store); // (a recount meanwhile may have dropped the store's map)
    }
    const ids = new Set(muts.map((m) => m.id));
    /** @type {Set<string>} */
    const others = new Set();
    for (const id of present.keys()) {
      const x = idx.get(id);
      if (!x) return new Set(); // (not noted: cannot happen; read every row)
      for (let i = 0; i < x.ids.length; i++) if (!ids.has(x.ids[i]) && cand.has(x.keys[i])) others.add(x.keys[i]);
    }
    /** @type {Set<string>} */
    const out = new Set();
    for (const [k, ms] of cand) {
      if (others.has(k)) continue;
      if (ms.every((m) => { const key = m.seg === undefined ? undefined : present.get(m.seg); return !!key && key[2] === m.segN && key[3] === m.at; })) out.add(k);
    }
    return out;
  }

  /**
   * Restores the keys of rejected mutations from the server (meta
   * `restore:<store>`), then forgets them.
   * @param {string[]} [known] that list, when the caller just read it
   */
  async restoreKeys(known) {
    const key = META_KEYS.restore(this.store);
    /** @type {string[]|undefined} */
    const keys = known || await this.local.run([META], 'readonly', (tx) => metaGet(tx, key));
    if (!keys || !keys.length) return;
    await this.refetch(keys);
    await this.local.run([META], 'readwrite', async (tx) => {
      /** @type {string[]} */
      const now = (await metaGet(tx, key)) || [];
      const left = now.filter((k) => !keys.includes(k));
      if (left.length) await metaPut(tx, key, left); else metaDelete(tx, key);
    });
  }

  /**
   * One `error` event per rejected mutation with a reason of its own (a group's
   * `tx_aborted` members ride along in `group`); code = the reason.
   * @param {{m: StoredMutation, reason: string, errors?: any[]}[]} list
   */
  reportRejected(list) {
    /** @type {Map<string, {m: StoredMutation, reason: string, errors?: any[]}[]>} */
    const groups = new Map();
    for (const x of list) {
      if (!x.m.tx) continue;
      let g = groups.get(x.m.tx);
      if (!g) { g = []; groups.set(x.m.tx, g); }
      g.push(x);
    }
    const own = list.filter((x) => x.reason !== 'tx_aborted');
    for (const members of groups.values()) if (!members.some((x) => x.reason !== 'tx_aborted')) own.push(members[0]);
    for (const x of own) {
      const members = x.m.tx ? groups.get(x.m.tx) : undefined;
      const group = members ? members.map((y) => mutationInfo(y.m, this.store)) : undefined;
      const err = new ZooSyncError(x.reason, `${this.store}/${x.m.k}: mutation ${x.m.id} rejected by the server (${x.reason})` +
        (group && group.length > 1 ? `; its tx group of ${group.length} is undone` : ''),
      { store: this.store, mutation: mutationInfo(x.m, this.store), errors: Array.isArray(x.errors) ? x.errors : [], group });
      this.host.reportError(err);
    }
  }
}
