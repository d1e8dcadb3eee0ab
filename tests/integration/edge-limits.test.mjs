// Issue 16, item 2: headers and query parameters are never silently
// dropped. Before the fix the server kept the first 64 of each: an If-Match
// sent as the 71st header turned a compare-and-set PUT into a blind
// overwrite, and `since=garbage` after 70 parameters was ignored.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { setupEnv, it } from '../lib/harness.mjs';
import { request, expectError, eventually } from '../lib/http.mjs';
import { makeSigner } from '../lib/jwt.mjs';
import { gatewayWithApi, gatewayWithStore } from '../lib/fixtures.mjs';
import { openEvents, closeAllEvents } from '../lib/sse.mjs';
import { holdSocket, rawExchange } from '../lib/raw.mjs';

const env = setupEnv();
let gw, api, S, signer;
after(() => closeAllEvents());

before(async () => {
  await env.ready();
  signer = makeSigner('HS256', env.tmp);
  ({ gw, api, store: S } = await gatewayWithStore(env, { signer, prefix: 'lim' }));
});

const pads = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`X-Pad-${i}`, 'p']));

it('an If-Match after 70 other headers is honoured (412), not dropped', async () => {
  const put = await api.putRecord(S, 'cas', { v: 1 });
  assert.equal(put.status, 201, put.text);
  const r = await request(gw.url, 'PUT', `/v1/stores/${S}/records/cas`, {
    json: { v: 2 }, headers: { Authorization: `Bearer ${api.token}`, "Content-Type": "application/json", ...pads(70), 'If-Match': '"99"' },
  });
  expectError(r, 412, 'precondition_failed');
  const g = await api.getRecord(S, 'cas');
  assert.deepEqual(g.json.value, { v: 1 }, 'the record must be unchanged');
});

it('past the header limit (100): 431 with a JSON body, nothing changed', async () => {
  const r = await request(gw.url, 'PUT', `/v1/stores/${S}/records/many`, {
    json: { v: 1 }, headers: { Authorization: `Bearer ${api.token}`, "Content-Type": "application/json", ...pads(120), 'If-None-Match': '*' },
  });
  expectError(r, 431, 'headers_too_large');
  expectError(await api.getRecord(S, 'many'), 404, 'not_found');
});

it('since=garbage after 70 other query parameters is 400 invalid_cursor', async () => {
  const q = Array.from({ length: 70 }, (_, i) => `p${i}=1`).join('&');
  const r = await api.req('GET', `/v1/stores/${S}/changes?${q}&since=garbage`);
  expectError(r, 400, 'invalid_cursor');
});

it('past the query-parameter limit: 414, and a repeated since is 400', async () => {
  const q = Array.from({ length: 150 }, (_, i) => `p${i}=1`).join('&');
  const r = await api.req('GET', `/v1/stores/${S}/changes?${q}`);
  expectError(r, 414, 'uri_too_long');
  const d = await api.req('GET', `/v1/stores/${S}/changes?since=${'0'.repeat(40)}&since=garbage`);
  expectError(d, 400, 'bad_request');
});

// --max-header-bytes (default 11264) is each connection's buffer: the request
// line and headers must fit, and every event stream holds one (B5).
const withPad = (n) => ({ Authorization: `Bearer ${api.token}`, 'Content-Type': 'application/json', 'X-Pad': 'p'.repeat(n) });

it('a request head within --max-header-bytes is served; past it 431 and nothing changed; a gateway with more serves it', async () => {
  const small = await request(gw.url, 'PUT', `/v1/stores/${S}/records/hb-small`, { json: { v: 1 }, headers: withPad(6 * 1024) });
  assert.equal(small.status, 201, small.text);
  const big = await request(gw.url, 'PUT', `/v1/stores/${S}/records/hb-big`, { json: { v: 1 }, headers: withPad(12 * 1024) });
  assert.equal(big.status, 431, big.text);
  expectError(await api.getRecord(S, 'hb-big'), 404, 'not_found');
  const { gw: roomy } = await gatewayWithApi(env, { signer, args: ['--max-header-bytes', '32768'] });
  try {
    const ok = await request(roomy.url, 'PUT', `/v1/stores/${S}/records/hb-big`, { json: { v: 2 }, headers: withPad(12 * 1024) });
    assert.equal(ok.status, 201, ok.text);
  } finally {
    await roomy.stop();
  }
});

it('a change far larger than the connection buffer reaches an HTTP/1.1 and an HTTP/1.0 event stream whole', async () => {
  const value = { big: 'v'.repeat(60000), tail: 'end' };
  const es = openEvents(gw.url, S, { token: api.token, since: await api.getCursor(S) });
  await es.opened();
  const port = new URL(gw.url).port;
  const old = holdSocket(port, `GET /v1/stores/${S}/events HTTP/1.0\r\nHost: 127.0.0.1:${port}\r\n` +
    `Authorization: Bearer ${api.token}\r\nAccept: text/event-stream\r\n\r\n`);
  try {
    assert.ok(await old.connected);
    await eventually(() => old.data.includes(': zoosync events'), { what: 'the HTTP/1.0 stream opened' });
    await api.pushOk(S, 'big1', [{ id: 1, key: 'hb-huge', op: 'put', value }]);
    await es.waitFor(() => es.changes.some((c) => c.key === 'hb-huge'), { what: 'the large change on HTTP/1.1' });
    const c = es.changes.find((x) => x.key === 'hb-huge');
    assert.deepEqual(c.value, value);
    await eventually(() => old.data.includes('"tail":"end"'), { what: 'the large change on HTTP/1.0' });
    const r = old.response();
    assert.equal(r.status, 200);
    assert.equal(r.headers['transfer-encoding'], undefined, 'HTTP/1.0: not chunked');
    const line = r.body.toString('utf8').split('\n').find((l) => l.startsWith('data:') && l.includes('hb-huge'));
    assert.ok(line, 'one data line holds the change');
    const got = JSON.parse(line.slice(5));
    assert.deepEqual(got.changes.find((x) => x.key === 'hb-huge').value, value);
  } finally {
    es.close();
    old.destroy();
  }
});

// Before the fix, a head just short of the buffer's end was served (a PUT
// applied) and then the answer did not fit: the connection closed with
// nothing sent (a PUT with 10,340-10,520 bytes of padding at the default).
// Now a head that leaves less than 2 KiB of the buffer is refused before
// anything runs: 431 in JSON while the answer fits. libmicrohttpd 0.9.75
// still closes without an answer in a narrow band where the head fits its
// buffer but no answer does (docs/PROTOCOL.md); there nothing is done.
it('every request-head size near the buffer: served, or refused with nothing done; never applied unanswered', { timeout: 180000 }, async () => {
  const port = new URL(gw.url).port;
  const head = (method, p, pad, extra = '') => `${method} ${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
    `Authorization: Bearer ${api.token}\r\nX-Pad: ${'p'.repeat(pad)}\r\n${extra}Connection: close\r\n`;
  const seen = { 201: 0, 431: 0, json431: 0, closed: 0 };
  let closedFrom = Infinity, closedTo = -1;
  for (let pad = 7000; pad <= 12000; pad += 16) {
    const key = `near-${pad}`;
    const body = JSON.stringify({ value: { pad } });
    const put = await rawExchange(port, head('PUT', `/v1/stores/${S}/records/${key}`, pad,
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n`) + `\r\n${body}`);
    assert.ok([201, 431, 0].includes(put.status), `PUT with ${pad} bytes of padding: status ${put.status} (${put.text.slice(0, 80)})`);
    const got = await api.getRecord(S, key);
    assert.equal(got.status, put.status === 201 ? 200 : 404,
      `PUT with ${pad} bytes of padding answered ${put.status || 'nothing'}: the record must ${put.status === 201 ? '' : 'not '}exist`);
    if (put.status === 0) { seen.closed++; closedFrom = Math.min(closedFrom, pad); closedTo = Math.max(closedTo, pad); } else seen[put.status]++;
    if (put.status === 431 && /"headers_too_large"/.test(put.text)) seen.json431++;
    // the same near the limit with space the gateway does not see in the values (after the
    // colon), and with trailer fields after a chunked body (read after the head was measured)
    const odd = [
      ['spaces', head('PUT', `/v1/stores/${S}/records/${key}-ws`, pad - 2500,
        `X-WS:${' '.repeat(2500)}w\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n`) + `\r\n${body}`],
      ['trailer', head('PUT', `/v1/stores/${S}/records/${key}-tr`, pad - 1900,
        'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n') +
        `\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\nX-Trailer: ${'t'.repeat(1900)}\r\n\r\n`],
    ];
    for (const [what, bytes] of odd) {
      const r = await rawExchange(port, bytes);
      const k = `${key}-${what === 'spaces' ? 'ws' : 'tr'}`;
      const g = await api.getRecord(S, k);
      if (what === 'trailer') assert.notEqual(r.status, 201, `a PUT with trailer fields (${pad}) must not be served`);
      assert.equal(g.status, r.status === 201 ? 200 : 404,
        `PUT with ${what} (${pad}) answered ${r.status || 'nothing'}: the record must ${r.status === 201 ? '' : 'not '}exist`);
    }
    const ch = await rawExchange(port, head('GET', `/v1/stores/${S}/changes?limit=1`, pad) + '\r\n');
    assert.ok([200, 431, 0].includes(ch.status), `GET /changes with ${pad} bytes of padding: status ${ch.status}`);
    const ev = await rawExchange(port, head('GET', `/v1/stores/${S}/events`, pad, 'Accept: text/event-stream\r\n') + '\r\n', { timeout: 300 });
    assert.ok([200, 431, 0].includes(ev.status), `event stream with ${pad} bytes of padding: status ${ev.status}`);
    if (ev.status === 200) assert.match(ev.body.toString(), /zoosync events/);
  }
  assert.ok(seen[201] > 0 && seen.json431 > 0, `the range must cross the gateway's own limit: ${JSON.stringify(seen)}`);
  // the band without an answer is libmicrohttpd's, narrow, and above the gateway's own 431s
  assert.ok(closedTo - closedFrom <= 512, `no answer for ${closedFrom}..${closedTo} bytes of padding: ${JSON.stringify(seen)}`);
});
