// --jwt-jwks: a JSON Web Key Set (RSA, EC P-256, oct), keys chosen by the
// token's kid, read again on SIGHUP (rotation without a restart; a bad file
// keeps the keys in use); bad sets refused at start naming the key.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before } from 'node:test';
import { setupEnv, it, startGateway, uniq, runGatewayExpectExit, tmpDir } from '../lib/harness.mjs';
import { Api, expectError, eventually } from '../lib/http.mjs';
import { sign, claims } from '../lib/jwt.mjs';

const env = setupEnv();
let dir, G, S;
const keys = {};

function rsa() { return crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }); }
function ec(namedCurve = 'P-256') { return crypto.generateKeyPairSync('ec', { namedCurve }); }
const jwk = (pub, extra) => ({ ...pub.export({ format: 'jwk' }), ...extra });
const b64u = (b) => Buffer.from(b).toString('base64url');
function writeSet(file, list) { writeFileSync(file, JSON.stringify({ keys: list })); }

before(async () => {
  await env.ready();
  dir = tmpDir();
  keys.r1 = rsa();
  keys.e1 = ec();
  keys.h1 = crypto.randomBytes(32);
  keys.r2 = rsa();
  writeSet(path.join(dir, 'set.json'), [
    jwk(keys.r1.publicKey, { kid: 'r1', use: 'sig', alg: 'RS256' }),
    jwk(keys.e1.publicKey, { kid: 'e1' }),
    { kty: 'oct', kid: 'h1', k: b64u(keys.h1) },
  ]);
  G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'jwks', args: ['--jwt-jwks', path.join(dir, 'set.json')] });
  S = uniq('jw');
  await new Api(G, sign('RS256', keys.r1.privateKey, claims('admin'), { kid: 'r1' })).createStore(S);
});

const get = (tok) => new Api(G, tok).getStore(S);

it('each key of the set verifies the tokens that name it by kid; a wrong, missing or mismatched kid is 401', async () => {
  assert.equal((await get(sign('RS256', keys.r1.privateKey, claims('admin'), { kid: 'r1' }))).status, 200);
  assert.equal((await get(sign('ES256', keys.e1.privateKey, claims('admin'), { kid: 'e1' }))).status, 200);
  assert.equal((await get(sign('HS256', keys.h1, claims('admin'), { kid: 'h1' }))).status, 200);
  expectError(await get(sign('RS256', keys.r1.privateKey, claims('admin'), { kid: 'nope' })), 401, 'unauthorized', { messageMatch: /kid.*nope/ });
  expectError(await get(sign('RS256', keys.r1.privateKey, claims('admin'))), 401, 'unauthorized', { messageMatch: /no "kid"/ });
  // r1's signature under e1's kid, and an HS256 token made with the RSA public key as secret (algorithm confusion).
  expectError(await get(sign('RS256', keys.r1.privateKey, claims('admin'), { kid: 'e1' })), 401, 'unauthorized');
  const pem = keys.r1.publicKey.export({ type: 'spki', format: 'pem' });
  expectError(await get(sign('HS256', pem, claims('admin'), { kid: 'r1' })), 401, 'unauthorized');
  expectError(await get(sign('HS256', keys.h1, claims('admin'), { kid: 7 })), 401, 'unauthorized');
});

it('SIGHUP reads the set again: a new key works, a removed one is refused; a broken file keeps the keys in use', async () => {
  const file = path.join(dir, 'set.json');
  writeSet(file, [jwk(keys.r2.publicKey, { kid: 'r2' }), jwk(keys.e1.publicKey, { kid: 'e1' })]);
  process.kill(G.pid, 'SIGHUP');
  await eventually(async () => (await get(sign('RS256', keys.r2.privateKey, claims('admin'), { kid: 'r2' }))).status === 200,
    { ms: 5000, what: 'the new key r2 accepted' });
  expectError(await get(sign('RS256', keys.r1.privateKey, claims('admin'), { kid: 'r1' })), 401, 'unauthorized');
  assert.match(readFileSync(G.log, 'utf8'), /token keys reloaded: 2 keys \(RS256 r2, ES256 e1\)/);
  writeFileSync(file, '{"keys": [ not json');
  process.kill(G.pid, 'SIGHUP');
  await eventually(async () => /token keys NOT reloaded/.test(readFileSync(G.log, 'utf8')), { ms: 5000, what: 'the refusal logged' });
  assert.equal((await get(sign('RS256', keys.r2.privateKey, claims('admin'), { kid: 'r2' }))).status, 200, 'r2 still works');
  assert.equal((await get(sign('ES256', keys.e1.privateKey, claims('admin'), { kid: 'e1' }))).status, 200);
  assert.ok(!G.exited, 'the gateway lives on');
});

it('a bad key set is refused at start, naming the key and the rule', async () => {
  const small = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 });
  const p384 = ec('P-384');
  const good = jwk(keys.e1.publicKey, { kid: 'e1' });
  const cases = [
    [[good, jwk(keys.r1.publicKey, { kid: 'e1' })], /keys\[1\].*"kid" used twice/],
    [[good, jwk(keys.r1.publicKey)], /keys\[1\].*needs a "kid"/],
    [[jwk(small.publicKey, { kid: 's' })], /1024 bits/],
    [[jwk(p384.publicKey, { kid: 'p' })], /P-256/],
    [[{ kty: 'oct', kid: 'h', k: b64u(crypto.randomBytes(16)) }], /16 bytes.*at least 32/],
    [[jwk(keys.r1.publicKey, { kid: 'r', use: 'enc' })], /"use" must be "sig"/],
    [[jwk(keys.r1.publicKey, { kid: 'r', alg: 'ES256' })], /"alg" must be "RS256"/],
    [[{ ...good, x: b64u(Buffer.alloc(32, 1)) }], /not on the curve/],
    [[], /1 to 64/],
  ];
  for (const [list, re] of cases) {
    const f = path.join(dir, `bad-${crypto.randomBytes(3).toString('hex')}.json`);
    writeSet(f, list);
    const r = await runGatewayExpectExit(['--zk', env.zk.connect, '--jwt-jwks', f]);
    assert.equal(r.code, 2, `${JSON.stringify(list).slice(0, 80)}: exit ${r.code}`);
    assert.match(r.stderr, re, r.stderr);
  }
  const both = await runGatewayExpectExit(['--zk', env.zk.connect, '--jwt-jwks', path.join(dir, 'set.json'), '--jwt-public-key', 'x']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /one of --jwt-secret-file, --jwt-public-key and --jwt-jwks/);
});
