// errors.js: the client's error type, and its plain form for other tabs.

/** @typedef {import('../zoosync.d.ts').ErrorInfo} ErrorInfo */

/**
 * An error with the protocol's error code (`invalid_key`, `value_too_large`,
 * `store_not_found`, `tx_too_large`, ...) or one of the client's own:
 * `network`, `timeout`, `closed`, `conflict_unresolved`.
 */
export class ZooSyncError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{status?: number, store?: string, retryAfter?: number, details?: any, mutation?: any, errors?: any[], group?: any[]}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'ZooSyncError';
    /** @type {string} */ this.code = code;
    /** @type {number|undefined} */ this.status = extra.status;
    /** @type {string|undefined} */ this.store = extra.store;
    /** @type {number|undefined} */ this.retryAfter = extra.retryAfter;
    if (extra.details !== undefined) /** @type {any} */ this.details = extra.details;
    if (extra.mutation !== undefined) /** @type {any} */ this.mutation = extra.mutation;
    if (extra.errors !== undefined) /** @type {any[]} */ this.errors = extra.errors;
    if (extra.group !== undefined) /** @type {any[]} */ this.group = extra.group;
  }
}

/**
 * Worth retrying on the same terms: the network, a timeout, a silent stream,
 * 429 or a 5xx.
 * @param {ZooSyncError} e
 * @returns {boolean}
 */
export const isTransient = (e) => ['network', 'timeout', 'stream_dead'].includes(e.code) || e.status === 429 || (e.status !== undefined && e.status >= 500);

/**
 * The plain form of an error (status, `error` events sent to other tabs).
 * @param {any} err a ZooSyncError (or anything thrown)
 * @returns {ErrorInfo}
 */
export function errorInfo(err) {
  /** @type {ErrorInfo} */
  // (an IndexedDB DOMException has a numeric legacy code: its name says more)
  const code = typeof err.code === 'string' && err.code ? err.code : (err && typeof err.name === 'string' && err.name) || 'error';
  const info = { code, message: err.message || String(err) };
  if (err.store) info.store = err.store;
  if (err.status) info.status = err.status;
  if (err.mutation) info.mutation = err.mutation;
  if (err.errors) info.errors = err.errors;
  if (err.group) info.group = err.group;
  return info;
}

/**
 * The ZooSyncError of an ErrorInfo (an `error` event from another tab).
 * @param {ErrorInfo} info
 * @returns {ZooSyncError}
 */
export function errorFromInfo(info) {
  return new ZooSyncError(info.code, info.message, { store: info.store, status: info.status, mutation: info.mutation, errors: info.errors, group: info.group });
}
