// Issue 16, item 9: a NUL in a store segment, error messages cut inside a
// UTF-8 character, and static files reached through symlinks or dotfiles.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { mkdirSync, writeFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { setupEnv, it } from '../lib/harness.mjs';
import { request, expectError } from '../lib/http.mjs';
import { makeSigner } from '../lib/jwt.mjs';
import { rawExchange, isUtf8 } from '../lib/raw.mjs';
import { gatewayWithStore } from '../lib/fixtures.mjs';

const env = setupEnv();
let gw, web, api, token, S;

before(async () => {
  await env.ready();
  const signer = makeSigner('HS256', env.tmp);
  token = signer.token('admin');
  const dir = path.join(env.tmp, 'www');
  mkdirSync(path.join(dir, 'sub'), { recursive: true });
  mkdirSync(path.join(dir, '.git'), { recursive: true });
  writeFileSync(path.join(dir, 'index.html'), '<p>hi</p>');
  writeFileSync(path.join(dir, 'sub', 'a.txt'), 'inside');
  writeFileSync(path.join(dir, '.env'), 'SECRET=1');
  writeFileSync(path.join(dir, '.git', 'config'), '[core]');
  writeFileSync(path.join(env.tmp, 'outside.txt'), 'outside the web root');
  symlinkSync(path.join(env.tmp, 'outside.txt'), path.join(dir, 'out.txt'));
  symlinkSync(env.tmp, path.join(dir, 'updir'));
  symlinkSync(path.join(dir, 'sub', 'a.txt'), path.join(dir, 'in.txt'));
  ({ gw, api, store: S } = await gatewayWithStore(env, { signer, token, args: ['--web', dir], prefix: 'todos' }));
});

it('PUT /v1/stores/<s>%00other/records/x is 400 invalid_store, nothing written', async () => {
  const r = await api.req('PUT', `/v1/stores/${S}%00other/records/x`, { json: { v: 1 } });
  expectError(r, 400, 'invalid_store');
  expectError(await api.getRecord(S, 'x'), 404, 'not_found');
  expectError(await api.req('GET', `/v1/stores/${S}%00`), 400, 'invalid_store');
  expectError(await api.req('GET', `/v1/stores/${S}%zz`), 400, 'invalid_store');
});

it('error messages stay valid UTF-8 when cut', async () => {
  for (let pad = 0; pad < 3; pad++) {
    const target = '/v1/' + 'a'.repeat(pad) + 'é'.repeat(150);
    const r = await rawExchange(gw.port, Buffer.from(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`, 'utf8'));
    assert.equal(r.status, 404, r.text.slice(0, 300));
    assert.ok(isUtf8(r.body), `pad ${pad}: the body is not valid UTF-8: ${r.body.toString('latin1').slice(-40)}`);
    assert.equal(JSON.parse(r.body.toString('utf8')).error, 'not_found');
  }
});

it('static files: served from inside the directory, symlinks within it too', async () => {
  assert.equal((await request(gw.url, 'GET', '/')).status, 200);
  assert.equal((await request(gw.url, 'GET', '/sub/a.txt')).text, 'inside');
  assert.equal((await request(gw.url, 'GET', '/in.txt')).text, 'inside');
});

it('static files: no symlink out of the directory, no dotfiles (404)', async () => {
  for (const p of ['/out.txt', '/updir/outside.txt', '/.env', '/.git/config', '/%2eenv', '/sub/../.env']) {
    const r = await request(gw.url, 'GET', p);
    assert.equal(r.status, 404, `${p}: ${r.status} ${r.text.slice(0, 80)}`);
  }
});
