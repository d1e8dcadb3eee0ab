// pull.js: the pull side of one store: feed pages (GET /changes) until
// `more` is false, then the live event stream (GET /events), or polling
// where a gateway has none. Each page or event is applied in one IndexedDB
// transaction together with the new cursor (and the initial-sync progress).

import { ZooSyncError } from './errors.js';
import { readSSE } from './http.js';
import { RECORDS, META, META_KEYS, pendingOf } from './schema.js';
import { rq, metaGet, metaPut, metaSet, metaDelete, getRecords, putRec, sweepTombstones, sweepRows, tombstonesUpTo, storeRange } from './local.js';

/** @typedef {import('./schema.js').StoredRecord} StoredRecord */
/** @typedef {import('./schema.js').StoredProgress} StoredProgress */
/** @typedef {import('./sync.js').StoreSync} StoreSync */
/** @typedef {import('../zoosync.d.ts').Change} Change */

/**
 * One change of the feed (docs/PROTOCOL.md, Pull).
 * @typedef {{key: string, value?: any, version: number, cursor: string, deleted?: boolean}} FeedChange
 */

/** Changes the event stream may have queued before it waits for IndexedDB. */
const MAX_QUEUED_CHANGES = 5000;
/** How long the cursor of skipped own changes may wait for a write of its own. */
const LAZY_CURSOR_MS = 500;

/** The pull side of one store. */
export class StorePull {
  /** @param {StoreSync} ss */
  constructor(ss) {
    this.ss = ss;
    this.store = ss.store;
    this.local = ss.local;
    this.host = ss.host;
    /** @type {AbortController|null} the open event stream */
    this.streamCtl = null;
    /** @type {Promise<void>} applyRemote runs one at a time */
    this.applyLock = Promise.resolve();
  }

  /** Closes the event stream, if one is open. */
  abortStream() { if (this.streamCtl) this.streamCtl.abort(); }

  /** Starts the store over: a resync from the beginning of the feed. */
  async startResync() {
    await this.local.run([META], 'readwrite', async (tx) => {
      const r = await metaGet(tx, META_KEYS.resync(this.store));
      const epoch = ((r && r.epoch) || 0) + 1;
      await metaPut(tx, META_KEYS.resync(this.store), { epoch, active: true });
      metaDelete(tx, META_KEYS.cursor(this.store));
      metaDelete(tx, META_KEYS.initial(this.store));
    });
  }

  /**
   * Pulls pages until `more` is false; each page in its own IndexedDB transaction.
   * @param {boolean|'one'} once 'one': a single page
   */
  async pullAll(once) {
    const store = this.store;
    const limit = this.ss.opts.pageSize || 1000;
    const st = await this.local.run([META], 'readonly', async (tx) => ({
      cursor: await metaGet(tx, META_KEYS.cursor(store)),
      /** @type {StoredProgress|undefined} */
      initial: await metaGet(tx, META_KEYS.initial(store)),
      /** @type {{epoch: number, active: boolean}|undefined} */
      resync: await metaGet(tx, META_KEYS.resync(store)),
    }));
    // The resync this pull runs in (null: none). A resync that starts
    // while this pull's pages are on the wire makes them pages of another
    // era: they are dropped and this pull ends (the resync pulls anew).
    const era = st.resync && st.resync.active ? st.resync.epoch : null;
    /** @type {StoredProgress|null} */
    let initial = st.initial || null;
    if (!st.cursor || (initial && !initial.done)) {
      const d = this.local.description(store);
      initial = { received: (initial && initial.received) || 0, total: d ? d.records : null, done: false };
      this.setProgress(initial);
    }
    let cursor = st.cursor;
    const fetchPage = (/** @type {string|undefined} */ since) => {
      const q = `limit=${limit}` + (this.ss.prefix ? '&' + this.ss.pq() : '') + (since ? `&since=${encodeURIComponent(since)}` : '');
      const p = this.ss.gw.request('GET', `/v1/stores/${store}/changes?${q}`);
      p.catch(() => {}); // awaited below, unless an earlier page failed to apply
      return p;
    };
    // The next page is fetched while this one is written to IndexedDB.
    let next = fetchPage(cursor);
    for (;;) {
      const r = await next;
      const page = r.json;
      const isLast = !page.more;
      if (!isLast && once !== 'one') next = fetchPage(page.cursor);
      if (initial && !initial.done) {
        initial = { ...initial, received: initial.received + page.changes.length, done: isLast };
        if (initial.total !== null && initial.received > initial.total) initial.total = initial.received;
      }
      if (!(await this.applyRemote(page.changes, page.cursor, { initial, finishResync: isLast, era }))) break;
      cursor = page.cursor;
      if (initial) this.setProgress(initial);
      this.host.setStatus({ lastSyncAt: Date.now() });
      if (isLast) break;
      if (once === 'one') break;
    }
    if (initial && initial.done) this.setProgress(null);
  }

  /** The store's entry in the status' progress (null: none). @param {StoredProgress|null} p */
  setProgress(p) {
    /** @type {Record<string, import('../zoosync.d.ts').Progress>} */
    const prog = { ...(this.host.progress() || {}) };
    if (p) prog[this.store] = { received: p.received, total: p.total, done: !!p.done };
    else delete prog[this.store];
    this.host.setStatus({ progress: Object.keys(prog).length ? prog : null }, true);
  }

  /**
   * Waits until no push in flight holds a key of changes (its answer is
   * written). A change of such a key that is newer than the push would
   * otherwise be skipped as pending, and the answer would then leave the
   * record at the push's older state while the cursor is past the change.
   * @param {FeedChange[]} changes
   */
  async waitForPushes(changes) {
    const kw = this.ss.push.keyWait;
    if (!kw.size) return;
    const waits = new Set();
    for (const c of changes) { const w = kw.get(c.key); if (w) waits.add(w); }
    if (waits.size) await Promise.all(waits);
  }

  /**
   * Applies changes from the feed in one transaction, with the new cursor.
   * A change never rolls a record back (its cursor must be greater) and never
   * overwrites a record with pending local mutations.
   * @param {FeedChange[]} changes @param {string|undefined} cursor
   * @param {{initial?: StoredProgress|null, finishResync?: boolean, era?: number|null}} [o] era: the
   *   resync a page was pulled in (pullAll); a page of another era is dropped
   * @returns {Promise<boolean>} false when the page was dropped for its era
   */
  async applyRemote(changes, cursor, { initial = null, finishResync = false, era } = {}) {
    const store = this.store;
    const prefix = this.ss.prefix;
    // Partial replication: a gateway that ignored ?prefix= sends more; keep only the prefix.
    if (prefix) changes = changes.filter((c) => typeof c.key === 'string' && c.key.startsWith(prefix));
    await this.waitForPushes(changes);
    let applied = true;
    const run = async () => {
      /** @type {Change[]} */
      const out = [];
      await this.local.run([RECORDS, META], 'readwrite', async (tx) => {
        const recs = tx.objectStore(RECORDS);
        // Every read at once: the cursor, the resync state, the rows of the
        // changes' keys (a row carries its pending mutations) and the
        // tombstones the new cursor passes (swept below).
        const [old, rs, prevs, scope, tombs] = await Promise.all([
          metaGet(tx, META_KEYS.cursor(store)), metaGet(tx, META_KEYS.resync(store)),
          getRecords(recs, store, changes.map((c) => c.key)), metaGet(tx, META_KEYS.scope(store)),
          cursor ? tombstonesUpTo(tx, store, cursor) : undefined,
        ]);
        // Another instance opened the database with another prefix for this
        // store and started it over: what this one pulled is not for it.
        if (scope !== undefined && scope !== (prefix || '')) { applied = false; this.host.reconfigured(); return; }
        /** @type {number|null} */
        const epoch = rs && rs.active ? rs.epoch : null;
        if (era !== undefined && era !== epoch) { applied = false; return; } // pulled before a resync began (or ended)
        if (old && cursor && cursor < old && !epoch) return; // an older page than what we have: nothing new
        /** @type {Map<string, StoredRecord|null>} each key's row as this transaction leaves it (null: deleted) */
        const cur = new Map();
        /** @type {Set<string>} keys to put at the end */
        const dirty = new Set();
        changes.forEach((c, i) => {
          const prev = cur.has(c.key) ? cur.get(c.key) : prevs[i];
          if (prev && prev.c && c.cursor <= prev.c) { if (epoch !== null && prev.e !== epoch) { prev.e = epoch; cur.set(c.key, prev); dirty.add(c.key); } return; }
          if (pendingOf(prev)) { if (prev && epoch !== null) { prev.e = epoch; cur.set(c.key, prev); dirty.add(c.key); } return; }
          if (c.deleted) {
            // Nothing pending: the row goes (no tombstone; see sweepTombstones).
            if (prev) { cur.set(c.key, null); dirty.add(c.key); }
            if (prev && !prev.d) out.push({ key: c.key, value: undefined, deleted: true, origin: 'remote' });
            return;
          }
          /** @type {StoredRecord} */
          const rec = { s: store, k: c.key, d: false, v: c.value, ver: c.version, c: c.cursor, e: epoch !== null ? epoch : (prev ? prev.e : 0) };
          cur.set(c.key, rec);
          dirty.add(c.key);
          out.push({ key: c.key, value: rec.v, deleted: false, origin: 'remote' });
        });
        for (const k of dirty) {
          const r = cur.get(k);
          if (r) putRec(recs, r); else recs.delete([store, k]);
        }
        if (cursor && (!old || cursor > old || epoch !== null)) metaSet(tx, META_KEYS.cursor(store), cursor);
        if (initial) metaSet(tx, META_KEYS.initial(store), initial);
        const now = cursor && old && cursor < old && epoch === null ? old : (cursor || old);
        // (read before this transaction's writes: cur holds what they changed)
        if (tombs && now === cursor) sweepRows(recs, tombs, cur, now);
        else if (now) await sweepTombstones(tx, store, now);
        if (epoch !== null && finishResync) {
          // Drop what the server no longer has (unless pending locally or newer than the snapshot).
          /** @type {StoredRecord[]} */
          const all = await rq(recs.getAll(storeRange(store)));
          for (const r of all) {
            if (r.e === epoch || (r.c && cursor && r.c > cursor) || pendingOf(r)) continue;
            recs.delete([store, r.k]);
            if (!r.d) out.push({ key: r.k, value: undefined, deleted: true, origin: 'remote' });
          }
          metaSet(tx, META_KEYS.resync(store), { epoch, active: false });
        }
      });
      if (out.length) this.host.deliver(store, out);
    };
    const p = this.applyLock.then(run);
    this.applyLock = p.catch(() => {});
    await p;
    return applied;
  }

  /** Holds the event stream until it ends; applies each event. */
  async live() {
    const store = this.store;
    const gw = this.ss.gw;
    // The controller first: a stop (abortStream) during the cursor's read
    // below must reach this stream too, or it stays open until the server
    // ends it (seen with Node 18: close() waited a minute).
    const ctl = new AbortController();
    this.streamCtl = ctl;
    const cursor = await this.local.cursor(store);
    if (this.ss.stopped || ctl.signal.aborted) { this.streamCtl = null; throw new ZooSyncError('aborted', 'stopped'); }
    const keepalive = this.ss.opts.keepaliveMs || 15000;
    /** @type {import('./http.js').OpenStream} */
    let res;
    try {
      const q = [this.ss.pq(), cursor ? `since=${encodeURIComponent(cursor)}` : ''].filter(Boolean).join('&');
      res = await gw.stream(`/v1/stores/${store}/events` + (q ? '?' + q : ''), {
        signal: ctl.signal, headers: { Accept: 'text/event-stream', ...(cursor ? { 'Last-Event-ID': cursor } : {}) },
        timeoutMs: Math.max(2 * keepalive, 2000),
      });
    } catch (e) {
      this.streamCtl = null;
      const err = /** @type {ZooSyncError} */ (e);
      if (err.status === 404 && err.code === 'not_found') return this.poll(); // a gateway without /events
      throw err;
    }
    const base = res.base;
    const tokenAtOpen = gw.token; // the token this stream was opened with
    this.host.setStatus({ connected: true, lastSyncAt: Date.now() });
    this.ss.streamOpened();
    let dead = false;
    // Events wait in a queue while IndexedDB writes the previous ones; each
    // turn applies everything queued in one transaction (in order, with the
    // last event's cursor), so a burst costs a few transactions, not one each.
    /** @type {{changes: FeedChange[], cursor: string}[]} */
    let queue = [];
    let queued = 0;
    let applying = false;
    /** @type {Promise<void>} */
    let draining = Promise.resolve();
    /** @type {any} */
    let failed = null;
    // This tab's own pushed writes come back on the stream. A change whose
    // key is in the push in flight waits for its answer; then a change that
    // is exactly an acknowledged write of this tab (same key and cursor;
    // its record's cursor is already at least that, so applyRemote would
    // skip it) is dropped here. When nothing is left, no transaction runs:
    // only the cursor is owed, written with the next change or after
    // LAZY_CURSOR_MS (a crash before that replays skipped changes only).
    const push = this.ss.push;
    /** @type {string|null} */
    let lazyCursor = null;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    let lazyTimer;
    const drain = async () => {
      applying = true;
      try {
        while (queue.length) {
          const batch = queue;
          queue = []; queued = 0;
          let changes = batch.length === 1 ? batch[0].changes : batch.flatMap((b) => b.changes);
          const cursor = batch.reduce((a, b) => (b.cursor > a ? b.cursor : a), batch[0].cursor); // the highest
          await this.waitForPushes(changes);
          if (changes.length && push.acked.size) {
            changes = changes.filter((c) => {
              if (push.acked.get(c.key) !== c.cursor) return true;
              push.acked.delete(c.key);
              return false;
            });
            if (!changes.length) {
              lazyCursor = cursor;
              clearTimeout(lazyTimer);
              lazyTimer = setTimeout(() => {
                // Owed only while nothing newer is queued or being applied:
                // that writes a later cursor (and behind it, this one would
                // be an older page, dropping what came with it).
                if (lazyCursor === null || failed || applying || queue.length) return;
                queue.push({ changes: [], cursor: lazyCursor });
                if (!applying) draining = drain().catch((e) => { failed = e; });
              }, LAZY_CURSOR_MS);
              continue;
            }
          }
          await this.applyRemote(changes, cursor);
          lazyCursor = null;
          this.host.setStatus({ lastSyncAt: Date.now() });
        }
      } finally { applying = false; }
    };
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    let timer;
    const arm = () => { clearTimeout(timer); timer = setTimeout(() => { dead = true; ctl.abort(); }, 2 * keepalive); };
    arm();
    try {
      await readSSE(res.body, arm, async (ev) => {
        if (ev.event === 'resync') throw new ZooSyncError('cursor_expired', 'the event stream asks for a resync');
        if (ev.event === 'reauth') throw new ZooSyncError('reauth', `the event stream asks for a fresh token: ${ev.data}`);
        if (ev.event !== 'change' && ev.event !== 'message') return;
        if (failed) throw failed;
        const data = JSON.parse(ev.data);
        const changes = data.changes || [];
        queue.push({ changes, cursor: data.cursor || ev.id });
        queued += changes.length;
        if (!applying) draining = drain().catch((e) => { failed = e; });
        if (queued >= MAX_QUEUED_CHANGES) await draining; // the stream waits for IndexedDB
      });
      await draining;
      if (failed) throw failed;
    } catch (e) {
      if (e instanceof ZooSyncError && e.code === 'cursor_expired') throw e;
      if (e instanceof ZooSyncError && e.code === 'reauth') {
        // The token expired (or was revoked): ask token() again, then reopen from the cursor at once.
        gw.refreshToken(tokenAtOpen);
        return;
      }
      if (this.ss.stopped) throw new ZooSyncError('aborted', 'stopped');
      if (dead) { gw.failover(base); throw new ZooSyncError('stream_dead', `event stream from ${base}: silent for ${2 * keepalive} ms`); }
      if (!this.host.online()) throw new ZooSyncError('aborted', 'offline');
      gw.failover(base);
      throw new ZooSyncError('network', `event stream from ${base}: ${e && /** @type {any} */ (e).message}`);
    } finally {
      clearTimeout(timer);
      clearTimeout(lazyTimer);
      await draining; // what was received is applied (never rejects)
      if (lazyCursor !== null && !failed) await this.applyRemote([], lazyCursor).catch(() => {});
      res.close();
      this.streamCtl = null;
      this.host.setStatus({ connected: false });
    }
    // Closed by the server (shutting down): reconnect, preferably elsewhere.
    gw.failover(base);
  }

  /** Without /events: pull now and then. */
  async poll() {
    this.host.setStatus({ connected: true });
    await this.ss.sleepPull(this.ss.opts.pollMs || 2000);
    this.host.setStatus({ connected: false });
  }
}
