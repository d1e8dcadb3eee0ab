// sync.js: the leader's network side. A Syncer lives for one leadership:
// a Gateway and, per store, a StoreSync with two loops, push (push.js)
// and pull-then-stream (pull.js), with their backoff and wake-ups.
//
// The sync engine sees its database only through a SyncHost, built by the
// database (db.js): the local store, and a few callbacks for status,
// delivery to subscribers and events. It never touches the database's own
// fields.

import { ZooSyncError, isTransient } from './errors.js';
import { Gateway } from './http.js';
import { StorePush } from './push.js';
import { StorePull } from './pull.js';
import { sleep } from './util.js';

/** @typedef {import('../zoosync.d.ts').SyncDBOptions} SyncDBOptions */
/** @typedef {import('../zoosync.d.ts').Status} Status */
/** @typedef {import('../zoosync.d.ts').Change} Change */
/** @typedef {import('../zoosync.d.ts').ConflictInfo} ConflictInfo */
/** @typedef {import('../zoosync.d.ts').ConflictEvent} ConflictEvent */

/**
 * What the sync engine may use of its database.
 * @typedef {object} SyncHost
 * @property {import('./local.js').LocalStore} local the local store and change log
 * @property {SyncDBOptions} opts the options the database was opened with
 * @property {string[]} urls the gateways, in order
 * @property {string[]} stores the store names
 * @property {(store: string) => string|undefined} prefix the key prefix a store mirrors (partial replication)
 * @property {() => boolean} online the page is online and not paused
 * @property {() => Status['progress']} progress the status' progress now
 * @property {(patch: Partial<Status>, flush?: boolean) => void} setStatus updates the status (`flush`: emit now, not coalesced)
 * @property {(store: string, changes: Change[]) => void} deliver to the subscribers of this tab and the others, after the changes are in IndexedDB
 * @property {(err: ZooSyncError) => void} reportError an `error` event (and the status' error), here and in the other tabs
 * @property {(c: ConflictEvent) => void} reportConflict a `conflict` event, here and in the other tabs
 * @property {() => void} refreshPending recounts the status' pending figures
 * @property {(c: ConflictInfo) => any} onConflict the application's conflict handler
 * @property {() => void} reconfigured another instance opened the database with other prefixes: stop (close 'reconfigured')
 */

/** The leader's network side: one push worker and one pull/stream worker per store. */
export class Syncer {
  /** @param {SyncHost} host */
  constructor(host) {
    this.host = host;
    this.opts = host.opts;
    this.urls = host.urls;
    /** aborted when this leadership ends */
    this.abort = new AbortController();
    this.gw = new Gateway(this.opts, this.urls, this.abort.signal);
    /** @type {Map<string, StoreSync>} */
    this.stores = new Map();
    for (const s of host.stores) this.stores.set(s, new StoreSync(this, s));
    /** @type {ReturnType<typeof setInterval>[]} */
    this.timers = [];
  }

  /** @returns {boolean} the leadership ended */
  get stopped() { return this.abort.signal.aborted; }

  start() {
    if (!this.urls.length) return; // local-only database
    for (const s of this.stores.values()) s.start();
    // Fallback for writes of other tabs whose notice was lost, and status ages.
    const t = setInterval(() => {
      this.host.refreshPending();
      for (const s of this.stores.values()) s.kickPush();
    }, this.opts.checkIntervalMs || 2000);
    this.timers.push(t);
  }

  /** Ends every request and loop at once, without waiting for them. */
  halt() { this.abort.abort(); }

  /** Ends every request and loop; resolves when they have finished. */
  async stop() {
    this.abort.abort();
    for (const t of this.timers) clearInterval(t);
    await Promise.all([...this.stores.values()].map((s) => s.join()));
  }

  /** New local writes: push them. */
  kick() { for (const s of this.stores.values()) s.kickPush(); }

  /** @returns {boolean} */
  online() { return this.host.online(); }

  /** @param {boolean} online */
  onlineChanged(online) {
    for (const s of this.stores.values()) s.onlineChanged(online);
  }

  /** Pushes everything and pulls. @param {AbortSignal|null} signal stops waiting */
  async syncNow(signal) {
    if (!this.urls.length) return;
    await Promise.all([...this.stores.values()].map((s) => s.syncNow(signal)));
  }
}

/** The sync state machine of one store: its loops, backoff and wake-ups. */
export class StoreSync {
  /** @param {Syncer} sy @param {string} store */
  constructor(sy, store) {
    this.sy = sy;
    this.host = sy.host;
    this.local = sy.host.local;
    this.gw = sy.gw;
    this.opts = sy.opts;
    this.store = store;
    /** @type {string|undefined} partial replication */
    this.prefix = sy.host.prefix(store);
    this.pushWake = new AbortController();
    this.pullWake = new AbortController();
    this.pushWanted = true;
    /** @type {Promise<void>|null} the latest push round, settled (never rejects) */
    this.pushRound = null;
    this.fails = { push: 0, pull: 0 };
    this.notBefore = { push: 0, pull: 0 };
    /** @type {Promise<void>[]} */
    this.workers = [];
    this.push = new StorePush(this);
    this.pull = new StorePull(this);
  }

  /** @returns {boolean} the leadership ended */
  get stopped() { return this.sy.stopped; }

  /** The `prefix=` query parameter of a partially replicated store ('' when whole). */
  pq() { return this.prefix ? 'prefix=' + encodeURIComponent(this.prefix) : ''; }

  start() {
    this.workers.push(this.pushLoop(), this.pullLoop());
  }

  /** Wakes the loops and waits for them to end (after the Syncer was stopped). */
  async join() {
    this.pushWake.abort(); this.pullWake.abort();
    this.pull.abortStream();
    await Promise.allSettled(this.workers);
  }

  /** Asks for a push, now. */
  kickPush() { this.pushWanted = true; this.pushWake.abort(); }

  /** Asks for a push on the loop's next turn. */
  requestPush() { this.pushWanted = true; }

  /** @param {boolean} online */
  onlineChanged(online) {
    this.fails.push = 0; this.fails.pull = 0;
    this.notBefore = { push: 0, pull: 0 };
    if (!online) this.pull.abortStream();
    this.pushWake.abort(); this.pullWake.abort();
  }

  /** The stream is open: the pull side's failures are over. */
  streamOpened() { this.fails.pull = 0; }

  async waitOnline() {
    while (!this.stopped && !this.sy.online()) await this.sleepPull(60000);
  }

  /** @param {number} ms */
  async sleepPush(ms) {
    if (this.pushWake.signal.aborted) this.pushWake = new AbortController();
    await sleep(ms, this.pushWake.signal, this.sy.abort.signal);
    if (this.pushWake.signal.aborted) this.pushWake = new AbortController();
  }

  /** @param {number} ms */
  async sleepPull(ms) {
    if (this.pullWake.signal.aborted) this.pullWake = new AbortController();
    await sleep(ms, this.pullWake.signal, this.sy.abort.signal);
    if (this.pullWake.signal.aborted) this.pullWake = new AbortController();
  }

  /**
   * Sleeps a backoff delay that kicks do not cut short (an online event does).
   * @param {'push'|'pull'} kind @param {ZooSyncError} err
   */
  async backoff(kind, err) {
    const until = Date.now() + this.backoffMs(kind, err);
    this.notBefore[kind] = until;
    while (!this.stopped && this.notBefore[kind] === until && Date.now() < until) {
      if (kind === 'push') await this.sleepPush(until - Date.now()); else await this.sleepPull(until - Date.now());
    }
  }

  /** @param {'push'|'pull'} kind @param {ZooSyncError} [err] @returns {number} */
  backoffMs(kind, err) {
    const n = this.fails[kind]++;
    const base = (this.opts.backoff && this.opts.backoff.baseMs) || 250;
    const max = (this.opts.backoff && this.opts.backoff.maxMs) || 30000;
    let ms;
    if (err && isTransient(err) && n < this.sy.urls.length - 1 && err.status !== 429) ms = 20; // try the next URL at once
    else {
      const d = Math.min(max, base * 2 ** Math.min(n, 20));
      ms = d / 2 + Math.random() * d / 2; // jitter
    }
    if (err && err.retryAfter) ms = Math.max(ms, err.retryAfter * 1000);
    if (err && !isTransient(err)) ms = Math.max(ms, Math.min(max, 5000));
    return ms;
  }

  /**
   * Fetches the store's description and keeps it (maxValueBytes, record
   * count); on an error other than a transient one or store_not_found, the
   * last one kept.
   */
  async loadDesc() {
    try {
      const r = await this.gw.request('GET', `/v1/stores/${this.store}` + (this.prefix ? '?' + this.pq() : ''));
      const d = r.json;
      await this.local.saveDescription(this.store, d);
      return d;
    } catch (e) {
      const err = /** @type {ZooSyncError} */ (e);
      if (err.code === 'store_not_found') throw Object.assign(err, { store: this.store });
      if (isTransient(err) || err.code === 'aborted') throw err;
      return this.local.description(this.store);
    }
  }

  /** An `error` event, unless the leadership ended. @param {ZooSyncError} e */
  reportError(e) {
    // 'closed': the database closed or is being destroyed under the sync (no user error)
    if (e.code === 'aborted' || e.code === 'closed' || this.stopped) return;
    if (!e.store) e.store = this.store;
    this.host.reportError(e);
  }

  async pushLoop() {
    while (!this.stopped) {
      await this.waitOnline();
      if (this.stopped) break;
      if (!this.pushWanted) { await this.sleepPush(this.opts.checkIntervalMs || 2000); continue; }
      this.pushWanted = false;
      const round = this.push.pushAll();
      // what syncNow waits for: a round's last answer handled (a rejected
      // mutation's key restored), not only the queue empty
      this.pushRound = round.then(() => {}, () => {});
      try {
        await round;
        this.fails.push = 0;
        this.host.setStatus({ error: null, lastSyncAt: Date.now() });
      } catch (e) {
        const err = /** @type {ZooSyncError} */ (e);
        if (this.stopped || err.code === 'aborted' || err.code === 'closed') break;
        this.pushWanted = true;
        if (!isTransient(err) || this.fails.push > 2) this.reportError(err);
        await this.backoff('push', err);
      }
    }
  }

  async pullLoop() {
    while (!this.stopped) {
      await this.waitOnline();
      if (this.stopped) break;
      try {
        await this.loadDesc();
        await this.pull.pullAll(false);
        this.fails.pull = 0;
        await this.pull.live();
      } catch (e) {
        const err = /** @type {ZooSyncError} */ (e);
        this.host.setStatus({ connected: false });
        if (this.stopped || err.code === 'aborted') { if (this.stopped) break; continue; }
        if (err.code === 'cursor_expired' || err.code === 'invalid_cursor') {
          await this.pull.startResync();
          continue;
        }
        if (!isTransient(err) || this.fails.pull > 2) this.reportError(err);
        await this.backoff('pull', err);
      }
    }
  }

  /** Waits until the store has nothing pending, then pulls. @param {AbortSignal|null} signal stops waiting */
  async syncNow(signal) {
    this.kickPush();
    for (;;) {
      if (this.stopped) throw new ZooSyncError('closed', 'leadership ended');
      if (signal && signal.aborted) return;
      const n = await this.local.countPending(this.store);
      if (n === 0) break;
      await sleep(50, signal || undefined);
    }
    if (this.pushRound) await this.pushRound; // the round that emptied the queue has finished with its answers
    if (signal && signal.aborted) return;
    await this.pull.pullAll(true).catch((e) => { if (e.code === 'cursor_expired' || e.code === 'invalid_cursor') this.pullWake.abort(); else throw e; });
  }
}
