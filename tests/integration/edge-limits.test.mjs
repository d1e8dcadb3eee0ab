// Issue 16, item 2: headers and query parameters are never silently
// dropped. Before the fix the server kept the first 64 of each: an If-Match
// sent as the 71st header turned a compare-and-set PUT into a blind
// overwrite, and `since=garbage` after 70 parameters was ignored.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it } from '../lib/harness.mjs';
import { request, expectError } from '../lib/http.mjs';
import { makeSigner } from '../lib/jwt.mjs';
import { gatewayWithStore } from '../lib/fixtures.mjs';

const env = setupEnv();
let gw, api, S;

before(async () => {
  await env.ready();
  const signer = makeSigner('HS256', env.tmp);
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
