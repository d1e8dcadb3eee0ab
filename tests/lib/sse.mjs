// Server-Sent Events client for the tests: GET /v1/stores/{s}/events over a
// raw node:http request (no pooling, no automatic reconnection), parsed per
// the WHATWG EventSource rules (fields id/event/data, ':' comments, a blank
// line dispatches). Everything received is kept with its arrival time, so a
// test can ask "did X arrive, and when".
//
//   import { openEvents } from '../lib/sse.mjs';
//   const es = openEvents(gw.url, store, { since, lastEventId, token });
//   await es.opened();                  // 200 text/event-stream (else rejects with the JSON error)
//   await es.waitFor((s) => s.changes.some((c) => c.key === 'k'), { ms: 1000, what: 'k on the stream' });
//   es.close();
//
// es.changes is every change of every `change` event, in arrival order, each
// with .frameId (the event's id) and .at (Date.now() on arrival). es.ids is
// the list of event ids; es.lastEventId the last one. es.ended is set when
// the server closed the stream (es.endedAt, es.endReason).
//
// followEvents() reconnects like a browser's EventSource (Last-Event-ID);
// closeAllEvents() in an after() hook stops whatever a failed test left open.
import http from 'node:http';
import { EventEmitter } from 'node:events';

const open = new Set();
const followers = new Set();

/** Stops every follower and closes every stream still open (for after() hooks). */
export function closeAllEvents() {
  for (const f of [...followers]) f.close();
  for (const es of [...open]) es.close();
}

export class EventStream extends EventEmitter {
  constructor(base, store, { since, lastEventId, token, accessToken, headers = {}, path } = {}) {
    super();
    this.setMaxListeners(0);
    this.frames = [];      // { kind: 'event'|'comment', at, ... }
    this.events = [];      // { id, event, data (parsed JSON or null), rawData, at }
    this.comments = [];    // { text, at }
    this.changes = [];     // flattened changes of `change` events (+ frameId, at)
    this.ids = [];
    this.lastEventId = undefined;
    this.status = null;
    this.headers = null;
    this.errorText = '';
    this.errorJson = null;
    this.ended = false;
    this.endedAt = null;
    this.endReason = null;
    this.bytes = 0;
    const q = [];
    if (since !== undefined) q.push(`since=${encodeURIComponent(since)}`);
    if (accessToken !== undefined) q.push(`access_token=${encodeURIComponent(accessToken)}`);
    const p = path || `/v1/stores/${store}/events${q.length ? '?' + q.join('&') : ''}`;
    const h = { Accept: 'text/event-stream', ...headers };
    if (token) h.Authorization = `Bearer ${token}`;
    if (lastEventId !== undefined) h['Last-Event-ID'] = lastEventId;
    const u = new URL(base);
    this._buf = '';
    this._cur = { id: undefined, event: undefined, data: [] };
    this._openedP = new Promise((resolve, reject) => { this._openRes = resolve; this._openRej = reject; });
    this._openedP.catch(() => {});
    this._endP = new Promise((resolve) => { this._endRes = resolve; });
    open.add(this);
    this.req = http.request({ host: u.hostname, port: u.port, method: 'GET', path: p, headers: h, agent: false }, (res) => {
      this.res = res;
      this.status = res.statusCode;
      this.headers = res.headers;
      const ok = res.statusCode === 200 && /^text\/event-stream/i.test(res.headers['content-type'] || '');
      res.setEncoding('utf8');
      if (ok) this._openRes(this);
      res.on('data', (d) => {
        this.bytes += Buffer.byteLength(d);
        if (!ok) { this.errorText += d; return; }
        this._feed(d);
      });
      res.on('end', () => {
        if (!ok) {
          try { this.errorJson = JSON.parse(this.errorText); } catch { this.errorJson = null; }
          const e = new Error(`events: ${res.statusCode} ${res.headers['content-type']} ${this.errorText.slice(0, 300)}`);
          e.status = res.statusCode; e.json = this.errorJson;
          this._openRej(e);
        }
        this._end('server closed the stream');
      });
      res.on('error', (e) => this._end(`response error: ${e.message}`));
      res.on('close', () => this._end('connection closed'));
    });
    this.req.on('error', (e) => { this._openRej(e); this._end(`request error: ${e.code || e.message}`); });
    this.req.end();
  }

  _end(reason) {
    if (this.ended) return;
    this.ended = true;
    this.endedAt = Date.now();
    this.endReason = reason;
    open.delete(this);
    this._endRes(reason);
    this.emit('update');
  }

  _feed(text) {
    this._buf += text;
    for (;;) {
      const i = this._buf.search(/\r\n|\r|\n/);
      if (i < 0) break;
      // A lone \r at the very end might be the first half of \r\n: wait.
      if (this._buf[i] === '\r' && i === this._buf.length - 1) break;
      const line = this._buf.slice(0, i);
      this._buf = this._buf.slice(i + (this._buf.startsWith('\r\n', i) ? 2 : 1));
      this._line(line);
    }
    this.emit('update');
  }

  _line(line) {
    const at = Date.now();
    if (line === '') {
      const c = this._cur;
      this._cur = { id: undefined, event: undefined, data: [] };
      if (c.id !== undefined) this.lastEventId = c.id;
      if (c.data.length === 0) return;
      const rawData = c.data.join('\n');
      let data = null;
      try { data = JSON.parse(rawData); } catch { data = null; }
      const ev = { id: c.id, event: c.event || 'message', data, rawData, at };
      this.events.push(ev);
      this.frames.push({ kind: 'event', ...ev });
      if (c.id !== undefined) this.ids.push(c.id);
      if (ev.event === 'change' && data && Array.isArray(data.changes)) {
        for (const ch of data.changes) this.changes.push({ ...ch, frameId: c.id, at });
      }
      return;
    }
    if (line.startsWith(':')) {
      const text = line.slice(1).replace(/^ /, '');
      this.comments.push({ text, at });
      this.frames.push({ kind: 'comment', text, at });
      return;
    }
    const k = line.indexOf(':');
    const field = k < 0 ? line : line.slice(0, k);
    const value = k < 0 ? '' : line.slice(k + 1).replace(/^ /, '');
    if (field === 'id') { if (!value.includes('\0')) this._cur.id = value; } else if (field === 'event') this._cur.event = value;
    else if (field === 'data') this._cur.data.push(value);
  }

  /** Resolves once the response is 200 text/event-stream; rejects (err.status, err.json) otherwise. */
  opened(ms = 10000) {
    return withTimeout(this._openedP, ms, 'event stream did not open');
  }

  /** Resolves with the end reason once the server (or the network) closed the stream. */
  closed(ms = 10000) {
    return withTimeout(this._endP, ms, `event stream not closed in ${ms} ms (${this.describe()})`);
  }

  /** Resolves with the end reason when the stream ends, however long that takes. */
  whenEnded() {
    return this._endP;
  }

  /** Waits until pred(this) is truthy; rejects after ms, or when the stream ends first (unless allowEnd). */
  waitFor(pred, { ms = 5000, what = 'condition', allowEnd = false } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        let v;
        try { v = pred(this); } catch (e) { done(); reject(e); return; }
        if (v) { done(); resolve(v); return; }
        if (this.ended && !allowEnd) { done(); reject(new Error(`${what}: stream ended (${this.endReason}) first; ${this.describe()}`)); }
      };
      const timer = setTimeout(() => { done(); reject(new Error(`${what}: not reached in ${ms} ms; ${this.describe()}`)); }, ms);
      const done = () => { clearTimeout(timer); this.off('update', check); };
      this.on('update', check);
      check();
    });
  }

  /** A short description for failure messages. */
  describe() {
    const last = this.frames.slice(-3).map((f) => (f.kind === 'comment' ? `: ${f.text}` : `${f.event} id=${f.id} ${String(f.rawData).slice(0, 200)}`));
    return `status ${this.status}, ${this.events.length} events, ${this.comments.length} comments, ${this.changes.length} changes, ended=${this.ended}${this.ended ? ` (${this.endReason})` : ''}, last: ${JSON.stringify(last)}`;
  }

  close() {
    open.delete(this);
    try { this.req.destroy(); } catch { /* gone */ }
    if (this.res) { try { this.res.destroy(); } catch { /* gone */ } }
    this._end('closed by the client');
  }
}

export function openEvents(base, store, opts = {}) {
  return new EventStream(typeof base === 'string' ? base : base.url, store, opts);
}

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(what)), ms); })]).finally(() => clearTimeout(t));
}

/**
 * An event-stream reader that reconnects like a browser's EventSource: when
 * a stream ends (or cannot be opened, e.g. 503), it opens a new one after
 * retryMs with Last-Event-ID set to the last id received (or `since` before
 * any). f.changes() is every change received over all connections, in
 * arrival order; f.reconnects counts the reconnections; f.lastEventId is the
 * newest id; f.waitFor(pred) polls pred(f). f.close() stops it.
 */
export function followEvents(getBase, store, { since, retryMs = 200, ...opts } = {}) {
  const f = {
    segments: [], reconnects: 0, failedOpens: 0, stopped: false, lastEventId: since,
    changes: () => f.segments.flatMap((es) => es.changes),
    events: () => f.segments.flatMap((es) => es.events),
    close: () => { f.stopped = true; followers.delete(f); for (const es of f.segments) es.close(); },
    waitFor: async (pred, { ms = 5000, what = 'condition', every = 50 } = {}) => {
      const deadline = Date.now() + ms;
      for (;;) {
        const v = pred(f);
        if (v) return v;
        if (Date.now() > deadline) {
          const cur = f.segments[f.segments.length - 1];
          throw new Error(`${what}: not reached in ${ms} ms (${f.segments.length} connections, ${f.reconnects} reconnects, ${f.changes().length} changes, last id ${f.lastEventId}; current: ${cur ? cur.describe() : 'none'})`);
        }
        await new Promise((r) => setTimeout(r, every));
      }
    },
  };
  const connect = () => {
    if (f.stopped) return;
    const base = typeof getBase === 'function' ? getBase() : getBase;
    const o = { ...opts };
    if (f.lastEventId !== undefined) {
      if (f.segments.length === 0) o.since = f.lastEventId; else o.lastEventId = f.lastEventId;
    }
    const es = openEvents(base, store, o);
    f.segments.push(es);
    es.on('update', () => { if (es.lastEventId !== undefined) f.lastEventId = es.lastEventId; });
    es.opened().catch(() => { f.failedOpens++; });
    es.whenEnded().then(() => {
      if (f.stopped) return;
      f.reconnects++;
      setTimeout(connect, retryMs);
    });
  };
  followers.add(f);
  connect();
  return f;
}
