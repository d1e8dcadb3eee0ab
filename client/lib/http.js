// http.js: the leader's link to the gateways: the URL list and failover,
// the token, one HTTP exchange with the protocol's errors, and the
// text/event-stream framing.

import { ZooSyncError } from './errors.js';

/** @typedef {import('../zoosync.d.ts').SyncDBOptions} SyncDBOptions */

/**
 * A successful answer: the JSON body (null when none).
 * @typedef {{status: number, json: any, headers: Headers, base: string}} Answer
 */

/**
 * A stream that is open: the response (its body to read), and `close()`,
 * which must be called when done with it.
 * @typedef {{body: ReadableStream<Uint8Array>, base: string, close: () => void}} OpenStream
 */

/**
 * @typedef {object} RequestOptions
 * @property {any} [body] JSON (an object, or a string as is)
 * @property {number} [timeoutMs] default: the requestTimeoutMs option, 15000
 * @property {AbortSignal} [signal] ends the request
 * @property {Record<string, string>} [headers]
 */

/** The gateways of one leadership: requests go to the current one; failures move to the next. */
export class Gateway {
  /**
   * @param {SyncDBOptions} opts @param {string[]} urls
   * @param {AbortSignal} lifetime aborted when the leadership ends: every request ends with code `aborted`
   */
  constructor(opts, urls, lifetime) {
    this.opts = opts;
    this.urls = urls;
    this.urlIndex = 0;
    this.lifetime = lifetime;
    /** @type {typeof fetch} */
    this.fetch = opts.fetch || globalThis.fetch.bind(globalThis);
    /** @type {Promise<string>|undefined} the token being used (a promise of it) */
    this.token = undefined;
    /** @type {Promise<string>|undefined} the last token asked for with refresh: true */
    this.tokenFresh = undefined;
  }

  /** @returns {string} the gateway requests go to now */
  url() { return this.urls[this.urlIndex % this.urls.length]; }

  /** Moves to the next URL, unless another request already did. @param {string} fromUrl */
  failover(fromUrl) {
    if (this.urls.length > 1 && this.url() === fromUrl) this.urlIndex = (this.urlIndex + 1) % this.urls.length;
  }

  /**
   * Makes the next request ask token({refresh: true}) again, unless the token
   * was already renewed since `seen` was current (several streams told at once
   * ask once).
   * @param {Promise<string>|undefined} seen
   */
  refreshToken(seen) {
    const t = this.opts.token;
    if (typeof t !== 'function') return;
    if (this.token !== seen && this.token !== undefined) return;
    this.token = Promise.resolve().then(() => t({ refresh: true }));
    this.tokenFresh = this.token;
    this.token.catch(() => {});
  }

  /** @param {boolean} refresh @returns {Promise<string|undefined>} */
  async getToken(refresh) {
    const t = this.opts.token;
    if (t === undefined || t === null) return undefined;
    if (typeof t === 'string') return t;
    if (this.token === undefined || (refresh && this.tokenFresh !== this.token)) {
      this.token = Promise.resolve().then(() => t({ refresh: !!refresh }));
      this.tokenFresh = refresh ? this.token : undefined;
    }
    try { return await this.token; } catch (e) { this.token = undefined; throw e; }
  }

  /**
   * One HTTP exchange with the current gateway. Resolves the answer (2xx);
   * throws ZooSyncError with the protocol's code (or network/timeout/aborted).
   * @param {string} method @param {string} path @param {RequestOptions} [o]
   * @returns {Promise<Answer>}
   */
  async request(method, path, o = {}) {
    return /** @type {Promise<Answer>} */ (this._exchange(method, path, o, false));
  }

  /**
   * Opens a long response (an event stream): resolves once the headers are
   * in; the timeout covers only that. Errors as request().
   * @param {string} path @param {RequestOptions} [o] @returns {Promise<OpenStream>}
   */
  async stream(path, o = {}) {
    return /** @type {Promise<OpenStream>} */ (this._exchange('GET', path, o, true));
  }

  /**
   * @private
   * @param {string} method @param {string} path @param {RequestOptions} o @param {boolean} stream
   * @returns {Promise<Answer|OpenStream>}
   */
  async _exchange(method, path, o, stream) {
    let refreshed = false;
    for (;;) {
      const base = this.url();
      const ctl = new AbortController();
      const onAbort = () => ctl.abort();
      this.lifetime.addEventListener('abort', onAbort);
      if (o.signal) o.signal.addEventListener('abort', onAbort);
      const timeoutMs = o.timeoutMs || this.opts.requestTimeoutMs || 15000;
      let timedOut = false;
      const timer = setTimeout(() => { timedOut = true; ctl.abort(); }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.lifetime.removeEventListener('abort', onAbort);
        if (o.signal) o.signal.removeEventListener('abort', onAbort);
      };
      /** @type {Record<string, string>} */
      const headers = { ...(o.headers || {}) };
      let token;
      try { token = await this.getToken(refreshed); } catch (e) { cleanup(); throw new ZooSyncError('unauthorized', `token: ${e && /** @type {any} */ (e).message}`); }
      if (token) headers.Authorization = 'Bearer ' + token;
      let body;
      if (o.body !== undefined) { headers['Content-Type'] = 'application/json'; body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body); }
      let res;
      try {
        res = await this.fetch(base + path, { method, headers, body, signal: ctl.signal, cache: 'no-store' });
      } catch (e) {
        cleanup();
        if (this.lifetime.aborted || (o.signal && o.signal.aborted)) throw new ZooSyncError('aborted', 'stopped');
        this.failover(base);
        throw new ZooSyncError(timedOut ? 'timeout' : 'network', `${method} ${base}${path}: ${timedOut ? `no answer in ${timeoutMs} ms` : (e && /** @type {any} */ (e).message) || e}`, { details: { url: base } });
      }
      if (stream && res.ok) {
        clearTimeout(timer);
        return { body: /** @type {ReadableStream<Uint8Array>} */ (res.body), base, close: cleanup };
      }
      let text;
      try { text = await res.text(); } catch (e) {
        cleanup();
        if (this.lifetime.aborted) throw new ZooSyncError('aborted', 'stopped');
        this.failover(base);
        throw new ZooSyncError(timedOut ? 'timeout' : 'network', `${method} ${base}${path}: body: ${(e && /** @type {any} */ (e).message) || e}`);
      }
      cleanup();
      let json = null;
      if (text) { try { json = JSON.parse(text); } catch { json = null; } }
      if (res.ok) return { status: res.status, json, headers: res.headers, base };
      const ra = Number(res.headers.get('Retry-After'));
      const code = (json && json.error) || (res.status >= 500 ? 'unavailable' : `http_${res.status}`);
      const err = new ZooSyncError(code, (json && json.message) || `${method} ${path}: HTTP ${res.status}`, {
        status: res.status, retryAfter: Number.isFinite(ra) && ra > 0 ? ra : undefined, details: json,
      });
      if (res.status === 401 && !refreshed && typeof this.opts.token === 'function') { refreshed = true; continue; }
      if (res.status >= 500) this.failover(base);
      throw err;
    }
  }
}

/**
 * One event of a text/event-stream.
 * @typedef {{event: string, data: string, id: string}} SSEvent
 */

/**
 * Reads a text/event-stream body: calls onBytes for every chunk (comments
 * included, for the keepalive watchdog) and onEvent for every event.
 * @param {ReadableStream<Uint8Array>} body @param {() => void} onBytes
 * @param {(ev: SSEvent) => Promise<void>} onEvent
 */
const NL = /\r\n|\r|\n/g;
export async function readSSE(body, onBytes, onEvent) {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  /** @type {{event: string, data: string[], id: string}} */
  let ev = { event: '', data: [], id: '' };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      onBytes();
      buf += dec.decode(value, { stream: true });
      // Lines are cut from buf by position; what is left is kept once per
      // chunk (not copied again after every line of a large event).
      let pos = 0;
      for (;;) {
        NL.lastIndex = pos;
        const m = NL.exec(buf);
        if (!m) break;
        const line = buf.slice(pos, m.index);
        pos = m.index + m[0].length;
        if (line === '') {
          if (ev.data.length) await onEvent({ event: ev.event || 'message', data: ev.data.join('\n'), id: ev.id });
          ev = { event: '', data: [], id: ev.id };
          continue;
        }
        if (line[0] === ':') continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        let v = i < 0 ? '' : line.slice(i + 1);
        if (v[0] === ' ') v = v.slice(1);
        if (field === 'event') ev.event = v;
        else if (field === 'data') ev.data.push(v);
        else if (field === 'id') ev.id = v;
      }
      buf = pos ? buf.slice(pos) : buf;
    }
  } finally {
    try { reader.cancel().catch(() => {}); } catch { /* released */ }
  }
}
