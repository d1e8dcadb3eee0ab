// Issue 16, item 4: request smuggling openings. Each ambiguous framing is
// refused with 400 (501 for a transfer coding the gateway does not
// implement) and the connection is closed, so nothing after it on the same
// connection can be read as another request.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it } from '../lib/harness.mjs';
import { makeSigner } from '../lib/jwt.mjs';
import { rawExchange } from '../lib/raw.mjs';
import { gatewayWithStore } from '../lib/fixtures.mjs';

const env = setupEnv();
let gw, api, S, token;

before(async () => {
  await env.ready();
  const signer = makeSigner('HS256', env.tmp);
  ({ gw, api, token, store: S } = await gatewayWithStore(env, { signer, prefix: 'frm' }));
});

const host = () => `Host: 127.0.0.1:${gw.port}\r\n`;
const auth = () => `Authorization: Bearer ${token}\r\n`;

/** The answer is `status` with a JSON error, and the server closed the connection. */
function refused(r, status, what) {
  assert.equal(r.status, status, `${what}: expected ${status}, got:\n${r.text.slice(0, 600)}`);
  assert.equal((r.data.toString('latin1').match(/HTTP\/1\.1 \d{3} /g) || []).length, 1, `${what}: exactly one response:\n${r.text}`);
  assert.ok(r.closed, `${what}: the connection must be closed`);
}

it('two different Content-Length headers: 400 and close; nothing written', async () => {
  const body = '{"v":1}';
  const smuggled = `GET /v1/stores/${S}/records/cl HTTP/1.1\r\n${host()}${auth()}\r\n`;
  const r = await rawExchange(gw.port,
    `PUT /v1/stores/${S}/records/cl HTTP/1.1\r\n${host()}${auth()}Content-Type: application/json\r\n` +
    `Content-Length: ${body.length}\r\nContent-Length: ${body.length + smuggled.length}\r\n\r\n${body}${smuggled}`);
  refused(r, 400, 'duplicate Content-Length');
  assert.equal((await api.getRecord(S, 'cl')).status, 404);
});

it('Content-Length with Transfer-Encoding: 400 and close', async () => {
  const body = '{"v":1}';
  const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  const r = await rawExchange(gw.port,
    `PUT /v1/stores/${S}/records/te HTTP/1.1\r\n${host()}${auth()}Content-Type: application/json\r\n` +
    `Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`);
  refused(r, 400, 'Content-Length + Transfer-Encoding');
  assert.equal((await api.getRecord(S, 'te')).status, 404);
});

it('Transfer-Encoding: gzip, chunked is 501 at once, and closes', async () => {
  const r = await rawExchange(gw.port,
    `PUT /v1/stores/${S}/records/gz HTTP/1.1\r\n${host()}${auth()}Content-Type: application/json\r\n` +
    `Transfer-Encoding: gzip, chunked\r\n\r\n7\r\n{"v":1}\r\n0\r\n\r\n`, { timeout: 4000 });
  refused(r, 501, 'Transfer-Encoding: gzip, chunked');
  assert.ok(r.ms < 3000, `answered after ${r.ms} ms`);
});

it('HTTP/1.1 without Host: 400 and close', async () => {
  const r = await rawExchange(gw.port, `GET /v1/stores/${S} HTTP/1.1\r\n${auth()}\r\n`);
  refused(r, 400, 'no Host');
});

it('two Authorization headers: 400 and close', async () => {
  const r = await rawExchange(gw.port,
    `GET /v1/stores/${S} HTTP/1.1\r\n${host()}${auth()}Authorization: Bearer x.y.z\r\n\r\n`);
  refused(r, 400, 'two Authorization headers');
});

it('a well-formed request on the same raw path still works (keep-alive)', async () => {
  const one = `GET /v1/stores/${S} HTTP/1.1\r\n${host()}${auth()}\r\n`;
  const r = await rawExchange(gw.port, one + one, { timeout: 1500 });
  assert.equal(r.status, 200, r.text);
  assert.equal((r.data.toString('latin1').match(/HTTP\/1\.1 200/g) || []).length, 2, r.text);
});
