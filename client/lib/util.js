// util.js: small helpers with no knowledge of IndexedDB or the protocol.

/**
 * Waits ms, or less when one of the signals aborts. Whichever comes first
 * removes the timer and every listener this call added, so a long-lived
 * signal (the sync's lifetime) gains nothing per sleep.
 * @param {number} ms @param {...(AbortSignal|undefined)} signals
 * @returns {Promise<void>}
 */
export const sleep = (ms, ...signals) => new Promise((resolve) => {
  const sigs = /** @type {AbortSignal[]} */ (signals.filter(Boolean));
  if (sigs.some((s) => s.aborted)) return resolve(undefined);
  const t = setTimeout(done, ms);
  function done() {
    clearTimeout(t);
    for (const s of sigs) s.removeEventListener('abort', done);
    resolve(undefined);
  }
  for (const s of sigs) s.addEventListener('abort', done, { once: true });
});

/**
 * Random hex (client ids, `tx` group ids), from Web Crypto.
 * @param {number} [bytes] @returns {string}
 */
export function randomId(bytes = 8) {
  const a = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * A deep copy of a JSON value.
 * @template T @param {T} v @returns {T}
 */
export const clone = (v) => (v === undefined ? v : JSON.parse(JSON.stringify(v)));

/** Equal as JSON. @param {any} a @param {any} b @returns {boolean} */
export const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** A tiny event emitter; a throwing listener does not stop the others. */
export class Emitter {
  constructor() { /** @type {Map<string, Set<Function>>} */ this._l = new Map(); }

  /** @param {string} type @param {Function} fn @returns {() => void} */
  on(type, fn) {
    let s = this._l.get(type);
    if (!s) { s = new Set(); this._l.set(type, s); }
    s.add(fn);
    return () => this.off(type, fn);
  }

  /** @param {string} type @param {Function} fn */
  off(type, fn) { const s = this._l.get(type); if (s) s.delete(fn); }

  /** @param {string} type @param {any} arg */
  emit(type, arg) {
    const s = this._l.get(type);
    if (!s) return;
    for (const fn of [...s]) {
      try { fn(arg); } catch (e) { setTimeout(() => { throw e; }); }
    }
  }
}
