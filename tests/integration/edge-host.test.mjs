// Issue 16, item 6: DNS rebinding with authentication off. A page whose
// name rebinds to 127.0.0.1 sends its own name in Host; with authentication
// off only loopback names with the listening port are served, others 421.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it, startGateway, uniq } from '../lib/harness.mjs';
import { request, expectError } from '../lib/http.mjs';
import { makeSigner } from '../lib/jwt.mjs';
import { rawExchange } from '../lib/raw.mjs';

const env = setupEnv();
let open, authed, token, S;

before(async () => {
  await env.ready();
  open = await startGateway({ zk: env.zk.connect, root: env.root, name: 'noauth' });
  const signer = makeSigner('HS256', env.tmp);
  authed = await startGateway({ zk: env.zk.connect, root: env.root, args: [...signer.args], name: 'auth' });
  token = signer.token('admin');
  S = uniq('host');
  const r = await request(open.url, 'PUT', `/v1/stores/${S}`);
  assert.equal(r.status, 201, r.text);
});

const withHost = (gw, method, path, host, opts = {}) => request(gw.url, method, path, { ...opts, headers: { ...(opts.headers || {}), Host: host } });

it('auth off: a foreign Host (rebinding) gets 421, nothing deleted', async () => {
  for (const h of ['evil.example', `evil.example:${open.port}`, `127.0.0.1.evil.example:${open.port}`, `localhost.:${open.port}`]) {
    const r = await withHost(open, 'DELETE', `/v1/stores/${S}`, h);
    expectError(r, 421, 'misdirected_request');
  }
  const g = await request(open.url, 'GET', `/v1/stores/${S}`);
  assert.equal(g.status, 200, 'the store must still exist');
});

it('auth off: a loopback name with another port gets 421', async () => {
  const other = open.port === 1 ? 2 : open.port - 1;
  for (const h of [`127.0.0.1:${other}`, `localhost:${other}`, '127.0.0.1', 'localhost']) {
    expectError(await withHost(open, 'GET', `/v1/stores/${S}`, h), 421, 'misdirected_request');
  }
});

it('auth off: loopback names with the listening port are served', async () => {
  for (const h of [`127.0.0.1:${open.port}`, `localhost:${open.port}`, `LocalHost:${open.port}`, `[::1]:${open.port}`]) {
    const r = await withHost(open, 'GET', `/v1/stores/${S}`, h);
    assert.equal(r.status, 200, `${h}: ${r.text}`);
  }
});

it('auth off: HTTP/1.0 without Host is refused too (421)', async () => {
  const r = await rawExchange(open.port, `GET /v1/stores/${S} HTTP/1.0\r\n\r\n`);
  assert.equal(r.status, 421, r.text);
});

it('auth on: any Host is served (the token is the defence)', async () => {
  const r = await withHost(authed, 'GET', `/v1/stores/${S}`, 'zoosync.example.com', { token });
  assert.equal(r.status, 200, r.text);
});
