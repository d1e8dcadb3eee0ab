// HTTP helpers for the zoosync protocol: raw requests over node:http (full
// control of headers and bytes, no connection pooling), a small API client,
// and assertions on the protocol's shapes.
import http from 'node:http';
import assert from 'node:assert/strict';

// ZOOSYNC_OPENAPI_CHECK=1 (`make integration` sets it): every response a
// gateway gives to request() is checked against docs/openapi.yaml (status
// listed for the route and method, required headers, Content-Type, body
// schema: tests/lib/openapi.mjs); a mismatch rejects the request's promise
// with an AssertionError naming the route and the problems. Checked: the
// answers of a zoosyncd (they carry X-Request-Id) to paths under /v1 and
// the operational routes; static files are not part of the API.
const OPENAPI_CHECK = process.env.ZOOSYNC_OPENAPI_CHECK === '1';
let openapiP = null;
const openapi = () => (openapiP ??= import('./openapi.mjs').then((m) => m.loadOpenApi()));
const OPS_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** Whether request() checks this answer against docs/openapi.yaml. */
function describedAnswer(path, res) {
  if (!res.headers['x-request-id']) return false;   // not a gateway (a proxy's, a test server's)
  const p = String(path).split('?')[0];
  return p === '/v1' || p.startsWith('/v1/') || OPS_PATHS.has(p);
}

/**
 * request(base, method, path, { json, body, headers, token, timeout })
 *   json: a value to send as application/json (serialized with JSON.stringify)
 *   body: raw string/Buffer (no Content-Type added)
 *   path: already percent-encoded
 *   chunked: send the body with Transfer-Encoding: chunked (no Content-Length)
 * Resolves { status, headers, text, json } (json null when the body is not JSON).
 * Rejects on network errors (with err.code, e.g. ECONNREFUSED / ECONNRESET).
 */
export function request(base, method, path, { json, body, headers = {}, token, timeout = 15000, chunked = false } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    const h = { ...headers };
    let payload = null;
    const hasCT = Object.keys(h).some((k) => k.toLowerCase() === 'content-type');
    if (json !== undefined) {
      payload = Buffer.from(JSON.stringify(json), 'utf8');
      if (!hasCT) h['Content-Type'] = 'application/json';
    } else if (body !== undefined && body !== null) {
      payload = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
    }
    if (token) h.Authorization = `Bearer ${token}`;
    if (payload && !chunked) h['Content-Length'] = String(payload.length);
    if (payload && chunked) h['Transfer-Encoding'] = 'chunked';
    const req = http.request({ host: u.hostname, port: u.port, method, path, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed = null;
        if (text.length) { try { parsed = JSON.parse(text); } catch { parsed = null; } }
        const out = { status: res.statusCode, headers: res.headers, text, json: parsed };
        if (!OPENAPI_CHECK || !describedAnswer(path, out)) { resolve(out); return; }
        openapi().then((oa) => { oa.assertResponse(method, path, out); resolve(out); }, reject).catch(reject);
      });
    });
    req.setTimeout(timeout, () => req.destroy(Object.assign(new Error(`timeout after ${timeout} ms: ${method} ${path}`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    if (payload && chunked) {
      // Several chunks, no declared length.
      const step = Math.max(1, Math.ceil(payload.length / 7));
      for (let i = 0; i < payload.length; i += step) req.write(payload.subarray(i, i + step));
      req.end();
    } else {
      req.end(payload || undefined);
    }
  });
}

export const enc = (key) => encodeURIComponent(key);

/**
 * The HTTP status of GET `path` on `url`, or 0 when no answer comes within
 * `timeout` ms (refused, reset, timed out): for polling /readyz and /healthz.
 * @param {string} url
 * @param {string} path
 * @param {number} [timeout]
 * @returns {Promise<number>}
 */
export function statusOf(url, path, timeout = 2000) {
  return request(url, 'GET', path, { timeout }).then((r) => r.status, () => 0);
}

export const CURSOR_RE = /^[0-9a-f]{40}$/;

/** A small client for one gateway (gw: anything with .url, or a URL string). */
export class Api {
  constructor(gw, token) { this.gw = gw; this.token = token; }
  get url() { return typeof this.gw === 'string' ? this.gw : this.gw.url; }
  withToken(token) { return new Api(this.gw, token); }
  req(method, path, opts = {}) { return request(this.url, method, path, { token: this.token, ...opts }); }

  putStore(name, body, opts = {}) { return this.req('PUT', `/v1/stores/${name}`, body === undefined ? opts : { json: body, ...opts }); }
  getStore(name) { return this.req('GET', `/v1/stores/${name}`); }
  deleteStore(name) { return this.req('DELETE', `/v1/stores/${name}`); }
  listStores() { return this.req('GET', '/v1/stores'); }
  getRecord(store, key) { return this.req('GET', `/v1/stores/${store}/records/${enc(key)}`); }
  putRecord(store, key, value, headers = {}) { return this.req('PUT', `/v1/stores/${store}/records/${enc(key)}`, { json: value, headers }); }
  deleteRecord(store, key, headers = {}) { return this.req('DELETE', `/v1/stores/${store}/records/${enc(key)}`, { headers }); }
  push(store, client, mutations, opts = {}) { return this.req('POST', `/v1/stores/${store}/push`, { json: { client, mutations }, ...opts }); }
  changes(store, { since, limit } = {}) {
    const q = [];
    if (since !== undefined) q.push(`since=${encodeURIComponent(since)}`);
    if (limit !== undefined) q.push(`limit=${encodeURIComponent(limit)}`);
    return this.req('GET', `/v1/stores/${store}/changes${q.length ? '?' + q.join('&') : ''}`);
  }

  // Asserting variants.
  async createStore(name, body) {
    const r = await this.putStore(name, body);
    assert.equal(r.status, 201, `PUT store ${name}: ${r.status} ${r.text}`);
    return r.json;
  }
  async pushOk(store, client, mutations) {
    const r = await this.push(store, client, mutations);
    assert.equal(r.status, 200, `push to ${store}: ${r.status} ${r.text}`);
    checkPushResponse(r.json, mutations);
    return r.json;
  }
  // pushOk for a bulk loader: a 429 (the subject's write budget) is waited
  // out for its Retry-After and the same push sent again, as a client would;
  // any other answer is asserted as pushOk does.
  async pushPaced(store, client, mutations, { tries = 60 } = {}) {
    let r;
    for (let t = 0; t < tries; t++) {
      r = await this.push(store, client, mutations);
      if (r.status !== 429) break;
      await new Promise((res) => setTimeout(res, 1000 * Number(r.headers?.['retry-after'] || r.json?.retry_after || 1)));
    }
    assert.equal(r.status, 200, `push to ${store}: ${r.status} ${r.text}`);
    checkPushResponse(r.json, mutations);
    return r.json;
  }
  async changesOk(store, opts = {}) {
    const r = await this.changes(store, opts);
    assert.equal(r.status, 200, `changes ${store} ${JSON.stringify(opts)}: ${r.status} ${r.text}`);
    checkChangesResponse(r.json, opts);
    return r.json;
  }
  /** Reads every page from `since` on; asserts page sizes and cursor order. */
  async changesAll(store, { since, limit, maxPages = 100000 } = {}) {
    const all = [];
    const pages = [];
    let cur = since;
    for (let i = 0; i < maxPages; i++) {
      const page = await this.changesOk(store, { since: cur, limit });
      pages.push(page);
      all.push(...page.changes);
      if (cur !== undefined) assert.ok(page.cursor >= cur, `page cursor ${page.cursor} went back from ${cur}`);
      cur = page.cursor;
      if (!page.more) break;
      assert.ok(page.changes.length > 0, 'more:true with an empty page');
    }
    assert.equal(pages[pages.length - 1].more, false, 'never reached more:false');
    assertCursorOrder(all);
    return { changes: all, pages, cursor: cur };
  }
  async getCursor(store) {
    const r = await this.getStore(store);
    assert.equal(r.status, 200, `GET store ${store}: ${r.status} ${r.text}`);
    assert.match(r.json.cursor, CURSOR_RE);
    return r.json.cursor;
  }
}

/** Asserts a JSON error response: status, {error: code, message: non-empty string}. */
export function expectError(res, status, code, { messageMatch } = {}) {
  const ctx = `expected ${status} ${code}, got ${res.status} ${res.text.slice(0, 500)}`;
  assert.equal(res.status, status, ctx);
  assert.ok(res.json && typeof res.json === 'object' && !Array.isArray(res.json), `error body is not a JSON object: ${ctx}`);
  assert.equal(res.json.error, code, ctx);
  assert.equal(typeof res.json.message, 'string', `error message missing: ${ctx}`);
  assert.ok(res.json.message.length > 0, `error message empty: ${ctx}`);
  const ct = res.headers['content-type'] || '';
  assert.match(ct, /^application\/json/i, `error Content-Type is ${ct}`);
  if (messageMatch) assert.match(res.json.message, messageMatch, `message should match ${messageMatch}: ${res.json.message}`);
  return res.json;
}

export function checkPushResponse(body, mutations) {
  assert.ok(body && Array.isArray(body.results), `push response without results: ${JSON.stringify(body)}`);
  assert.equal(body.results.length, mutations.length, `one result per mutation: ${JSON.stringify(body)}`);
  body.results.forEach((r, i) => {
    assert.equal(r.id, mutations[i].id, `result ${i} id`);
    assert.ok(['applied', 'conflict', 'duplicate', 'rejected'].includes(r.status), `result status ${r.status}`);
    if (r.status === 'rejected') {
      assert.ok(['forbidden', 'invalid_value', 'quota_exceeded', 'tx_aborted'].includes(r.reason), `rejected reason: ${JSON.stringify(r)}`);
      assert.ok(!('cursor' in r) && !('version' in r) && !('current' in r), `rejected with a position or a state: ${JSON.stringify(r)}`);
    }
    if (r.cursor !== undefined) assert.match(r.cursor, CURSOR_RE);
    if (r.version !== undefined) assert.ok(Number.isInteger(r.version) && r.version >= 1, `version ${r.version}`);
    if (r.status === 'conflict') assert.ok('current' in r, `conflict without current: ${JSON.stringify(r)}`);
  });
  assert.ok(Number.isInteger(body.lastMutationId), `lastMutationId: ${JSON.stringify(body)}`);
  assert.match(body.cursor, CURSOR_RE, `push cursor: ${JSON.stringify(body)}`);
}

export function checkChangesResponse(body, { since, limit } = {}) {
  assert.ok(body && Array.isArray(body.changes), `changes response: ${JSON.stringify(body)}`);
  assert.match(body.cursor, CURSOR_RE, 'changes cursor');
  assert.equal(typeof body.more, 'boolean', 'more');
  const lim = limit === undefined ? 1000 : Number(limit);
  assert.ok(body.changes.length <= lim, `page of ${body.changes.length} over limit ${lim}`);
  const seen = new Set();
  for (const c of body.changes) {
    assert.equal(typeof c.key, 'string');
    assert.ok(!seen.has(c.key), `key ${JSON.stringify(c.key)} twice in one response`);
    seen.add(c.key);
    assert.match(c.cursor, CURSOR_RE, `change cursor ${JSON.stringify(c)}`);
    assert.ok(Number.isInteger(c.version) && c.version >= 1, `change version ${JSON.stringify(c)}`);
    if (since !== undefined) assert.ok(c.cursor > since, `change ${JSON.stringify(c)} not after since ${since}`);
    if (c.deleted === true) {
      if (since === undefined) assert.fail(`deletion in a from-the-beginning read: ${JSON.stringify(c)}`);
    } else {
      assert.ok('value' in c, `live change without value: ${JSON.stringify(c)}`);
    }
    assert.ok(body.cursor >= c.cursor, `response cursor ${body.cursor} below change cursor ${c.cursor}`);
  }
  assertCursorOrder(body.changes);
}

export function assertCursorOrder(changes) {
  for (let i = 1; i < changes.length; i++) {
    assert.ok(changes[i - 1].cursor < changes[i].cursor,
      `changes out of cursor order at ${i}: ${changes[i - 1].cursor} !< ${changes[i].cursor}`);
  }
}

/** Map key -> change (the last one for that key). */
export function byKey(changes) {
  const m = new Map();
  for (const c of changes) m.set(c.key, c);
  return m;
}

/** Polls fn until it returns truthy (or a non-throwing result), up to ms. */
export async function eventually(fn, { ms = 5000, every = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = new Error(`${what}: still false`);
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`${what} not reached in ${ms} ms: ${last && last.message}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/**
 * GET /metrics and parse the Prometheus text: resolves { text, samples, get(name, labels) }.
 * get() returns the value of the sample with that name whose labels include
 * `labels` (all given labels equal), summed over every matching sample, or
 * undefined when none matches.
 */
export async function getMetrics(gw) {
  const base = typeof gw === 'string' ? gw : gw.url;
  const r = await request(base, 'GET', '/metrics', { timeout: 5000 });
  assert.equal(r.status, 200, `/metrics: ${r.status} ${r.text.slice(0, 300)}`);
  const samples = [];
  for (const line of r.text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const lm of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  const get = (name, want = {}) => {
    let sum, found = false;
    for (const s of samples) {
      if (s.name !== name) continue;
      if (!Object.entries(want).every(([k, v]) => s.labels[k] === String(v))) continue;
      sum = (found ? sum : 0) + s.value;
      found = true;
    }
    return found ? sum : undefined;
  };
  return { text: r.text, samples, get };
}

/** A change as the feed states it: { key, value | deleted, version, cursor } (drops any test bookkeeping). */
export function plainChange(c) {
  const o = { key: c.key };
  if (c.deleted) o.deleted = true; else o.value = c.value;
  o.version = c.version;
  o.cursor = c.cursor;
  return o;
}

/**
 * Asserts two change sequences are equal; first names (briefly) the changes
 * missing, extra or repeated by cursor, so that a long diff is not the message.
 */
export function assertSameChanges(actual, expected, what) {
  const ac = new Set(actual.map((c) => c.cursor));
  const ec = new Set(expected.map((c) => c.cursor));
  const missing = expected.filter((c) => !ac.has(c.cursor)).map((c) => `${c.key}@${c.cursor}`);
  const extra = actual.filter((c) => !ec.has(c.cursor)).map((c) => `${c.key}@${c.cursor}`);
  const dups = actual.length - ac.size;
  assert.ok(missing.length === 0 && extra.length === 0 && dups === 0,
    `${what}: ${missing.length} of ${expected.length} changes missing [${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', ...' : ''}], ` +
    `${extra.length} extra [${extra.slice(0, 8).join(', ')}${extra.length > 8 ? ', ...' : ''}], ${dups} repeated`);
  assert.deepEqual(actual, expected, what);
}
