// tabs.js: the tabs of one database. One leader (Web Locks) talks to the
// network; the tabs tell each other over BroadcastChannel. The page's
// lifecycle hands leadership over: the lock is released on pagehide and
// freeze and asked for again on pageshow and resume.

/** @typedef {import('../zoosync.d.ts').Status} Status */
/** @typedef {import('../zoosync.d.ts').Change} Change */
/** @typedef {import('../zoosync.d.ts').ConflictEvent} ConflictEvent */
/** @typedef {import('../zoosync.d.ts').ErrorInfo} ErrorInfo */

/**
 * A message between the tabs of one database (channel `zoosync:<name>`).
 * Tabs running different versions of the client may share a database: the
 * names stay as they are.
 * @typedef {{t: 'hello'}
 *   | {t: 'kick'}
 *   | {t: 'sync'}
 *   | {t: 'destroy'}
 *   | {t: 'reconfigured'}
 *   | {t: 'changes', store: string, changes: Change[]}
 *   | {t: 'status', status: Status, from?: string}
 *   | {t: 'leader', status: Status, from?: string}
 *   | {t: 'conflict', c: ConflictEvent}
 *   | {t: 'error', e: ErrorInfo}} TabMessage
 * hello: a tab opened (the leader answers with its status); kick: new local
 * writes; sync: sync() was called; destroy: the database is being deleted;
 * reconfigured: a tab opened it with another prefix for a store (a tab
 * whose stores no longer match closes);
 * changes: what a tab wrote or received; status, leader: the leader's
 * status, and a new leader's (from: the sending tab's id, so that a late
 * status of a former leader is not taken for the new one's; older clients
 * send none); conflict, error: the leader's events. A message of any other
 * shape (another version, a script of the same origin) is dropped
 * (validMessage).
 */

/** @param {unknown} x @returns {x is Record<string, any>} */
const isObj = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);

/**
 * Whether msg has a TabMessage's shape: whatever else comes over the channel
 * is dropped before it reaches the database.
 * @param {unknown} msg @returns {msg is TabMessage}
 */
export function validMessage(msg) {
  if (!isObj(msg) || typeof msg.t !== 'string') return false;
  const from = msg.from === undefined || typeof msg.from === 'string';
  switch (msg.t) {
    case 'hello': case 'kick': case 'sync': case 'destroy': case 'reconfigured': return true;
    case 'changes': return typeof msg.store === 'string' && Array.isArray(msg.changes) &&
      msg.changes.every((c) => isObj(c) && typeof c.key === 'string');
    case 'status': return isObj(msg.status) && from;
    case 'leader': return (msg.status === undefined || msg.status === null || isObj(msg.status)) && from;
    case 'conflict': return isObj(msg.c);
    case 'error': return isObj(msg.e) && ['string', 'number'].includes(typeof msg.e.code); // numeric: an older client's DOMException
    default: return false;
  }
}

/** The BroadcastChannel of one database (none without BroadcastChannel). */
export class TabChannel {
  /**
   * @param {typeof BroadcastChannel|null|undefined} BC
   * @param {string} name the database name
   * @param {(msg: TabMessage) => void} onMessage
   */
  constructor(BC, name, onMessage) {
    /** @private @type {BroadcastChannel|null} */
    this._bc = null;
    if (BC) {
      this._bc = new BC('zoosync:' + name);
      this._bc.onmessage = (ev) => { if (validMessage(ev.data)) onMessage(ev.data); };
    }
  }

  /** @param {TabMessage} msg */
  post(msg) {
    if (!this._bc) return;
    try { this._bc.postMessage(msg); } catch { /* closed */ }
  }

  close() {
    if (this._bc) { try { this._bc.close(); } catch { /* closed */ } }
  }
}

/**
 * Leadership of one database among its tabs: the Web Lock
 * `zoosync-leader:<name>`, held while leading. Without Web Locks every
 * instance leads.
 */
export class Leadership {
  /**
   * @param {object} o
   * @param {string} o.name the database name
   * @param {LockManager|null|undefined} o.locks
   * @param {() => boolean} o.closed the database is closed (or the page hidden): do not lead
   * @param {() => void} o.onLead called when this tab becomes the leader
   */
  constructor({ name, locks, closed, onLead }) {
    this.name = name;
    this.locks = locks;
    this.closed = closed;
    this.onLead = onLead;
    /** this tab leads */
    this.leader = false;
    /** @private */ this._campaigning = false;
    /** @private @type {((v: undefined) => void)|null} releases the lock */
    this._resign = null;
    /** @private @type {AbortController|null} */
    this._lockAbort = null;
  }

  /** Asks for leadership (the lock), unless leading or asking already. */
  campaign() {
    if (this.closed() || this.leader || this._campaigning) return;
    const locks = this.locks;
    this._campaigning = true;
    if (!locks) { this._campaigning = false; this._lead(); return; }
    const ctl = new AbortController();
    this._lockAbort = ctl;
    locks.request('zoosync-leader:' + this.name, { signal: ctl.signal }, () => {
      this._campaigning = false;
      if (this.closed()) return undefined;
      return new Promise((release) => {
        this._resign = release;
        this._lead();
      });
    }).catch(() => { if (this._lockAbort === ctl) this._campaigning = false; });
  }

  /** @private */
  _lead() {
    this.leader = true;
    this.onLead();
  }

  /**
   * Gives leadership up (releases the lock; the caller has stopped syncing).
   * @returns {boolean} this tab was the leader
   */
  resign() {
    const was = this.leader;
    this.leader = false;
    if (this._resign) { const r = this._resign; this._resign = null; r(undefined); }
    return was;
  }

  /** Withdraws a queued request for the lock (closing). */
  close() { if (this._lockAbort) this._lockAbort.abort(); }

  /** Withdraws a queued request for the lock, unless leading (a hidden page: campaign() again when shown). */
  withdraw() {
    if (this.leader || !this._campaigning || !this._lockAbort) return;
    this._lockAbort.abort();
    this._lockAbort = null;
    this._campaigning = false;
  }
}

/**
 * The page events the client follows (in a browser; none elsewhere).
 * @typedef {object} PageHandlers
 * @property {() => void} online `online` and `offline`
 * @property {() => void} hide `pagehide` and `freeze`: give leadership up
 * @property {() => void} show `pageshow` from the back/forward cache, and `resume`
 */

/**
 * Follows the page's events; returns the function that stops it.
 * @param {PageHandlers} h @returns {() => void}
 */
export function listenPage(h) {
  /** @type {[EventTarget, string, EventListener][]} */
  const added = [];
  const win = globalThis.window && typeof globalThis.addEventListener === 'function' ? globalThis : null;
  if (win) {
    /** @param {EventTarget} target @param {string} t @param {EventListener} fn */
    const on = (target, t, fn) => { target.addEventListener(t, fn); added.push([target, t, fn]); };
    on(win, 'online', () => h.online());
    on(win, 'offline', () => h.online());
    on(win, 'pagehide', () => h.hide());
    on(win, 'pageshow', (e) => { if (/** @type {PageTransitionEvent} */ (e).persisted) h.show(); });
    if (globalThis.document) {
      const d = globalThis.document;
      on(d, 'freeze', () => h.hide());
      on(d, 'resume', () => h.show());
    }
  }
  return () => { for (const [t, type, fn] of added) t.removeEventListener(type, fn); added.length = 0; };
}
