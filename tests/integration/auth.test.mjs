// Authentication (HS256, RS256, ES256 gateways) and scopes.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it, startGateway, runGatewayExpectExit, uniq, tmpDir } from '../lib/harness.mjs';
import { Api, request, expectError } from '../lib/http.mjs';
import { makeSigner, sign, claims, b64u, now } from '../lib/jwt.mjs';

const env = setupEnv();
const ALGS = ['HS256', 'RS256', 'ES256'];
const G = {}; // alg -> { signer, gw, admin, store }

before(async () => {
  await env.ready();
  await Promise.all(ALGS.map(async (alg) => {
    const signer = makeSigner(alg, env.tmp);
    const gw = await startGateway({ zk: env.zk.connect, root: env.root, args: signer.args, name: alg });
    G[alg] = { signer, gw, admin: new Api(gw, signer.token('admin')), store: uniq(alg.toLowerCase()) };
  }));
  for (const alg of ALGS) await G[alg].admin.createStore(G[alg].store);
});

for (const alg of ALGS) {
  it(`${alg}: a valid token is accepted (create, push, read)`, async () => {
    const { admin, store, signer } = G[alg];
    const r = await admin.pushOk(store, 'c1', [{ id: 1, key: 'k', op: 'put', value: alg }]);
    assert.equal(r.results[0].status, 'applied');
    const g = await admin.withToken(signer.token(`${store}:read`)).getRecord(store, 'k');
    assert.equal(g.status, 200, g.text);
    assert.equal(g.json.value, alg);
    // nbf in the past is fine; extra claims are ignored.
    const t = signer.sign(claims('admin', { nbf: now() - 60, aud: 'x', jti: 'y' }));
    assert.equal((await admin.withToken(t).getStore(store)).status, 200);
  });

  it(`${alg}: 401 for missing, malformed, wrongly signed, expired, exp-less, future nbf, alg none`, async () => {
    const { admin, store, signer, gw } = G[alg];
    const other = makeSigner(alg, tmpDir());
    const good = signer.token('admin');
    const [h, p, s] = good.split('.');
    const tampered = `${h}.${b64u(claims('admin', { sub: 'mallory' }))}.${s}`;
    const flipped = `${h}.${p}.${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
    const tokens = {
      garbage: 'not-a-jwt',
      twoParts: `${h}.${p}`,
      fourParts: `${good}.x`,
      badBase64: `${h}.%%%.${s}`,
      otherKey: other.token('admin'),
      tampered,
      flipped,
      expired: signer.sign(claims('admin', { exp: now() - 120 })),
      noExp: signer.sign(claims('admin', { exp: undefined })),
      futureNbf: signer.sign(claims('admin', { nbf: now() + 3600 })),
      algNone: sign('none', null, claims('admin')),
      algNoneLower: `${b64u({ alg: 'None', typ: 'JWT' })}.${b64u(claims('admin'))}.`,
      emptySig: `${h}.${p}.`,
    };
    if (alg !== 'HS256') {
      // Algorithm confusion: HS256 keyed with the public key PEM.
      tokens.hsWithPublicKey = sign('HS256', signer.publicPem, claims('admin'));
    } else {
      tokens.wrongAlgHeader = sign('HS256', signer.secret, claims('admin'), { alg: 'HS512' });
    }
    for (const [what, tok] of Object.entries(tokens)) {
      const r = await request(gw.url, 'GET', `/v1/stores/${store}`, { token: tok });
      assert.equal(r.status, 401, `${alg} token "${what}": ${r.status} ${r.text}`);
      expectError(r, 401, 'unauthorized');
    }
    // No Authorization header, and headers that are not Bearer.
    expectError(await request(gw.url, 'GET', `/v1/stores/${store}`), 401, 'unauthorized');
    for (const hv of [`Token ${good}`, `Basic ${Buffer.from('a:b').toString('base64')}`, 'Bearer', 'Bearer ', good]) {
      expectError(await request(gw.url, 'GET', `/v1/stores/${store}`, { headers: { Authorization: hv } }), 401, 'unauthorized');
    }
    // A rejected token applies nothing.
    expectError(await request(gw.url, 'POST', `/v1/stores/${store}/push`, { token: tokens.expired, json: { client: 'c401', mutations: [{ id: 1, key: 'x401', op: 'put', value: 1 }] } }), 401, 'unauthorized');
    expectError(await admin.getRecord(store, 'x401'), 404, 'not_found');
  });

  it(`${alg}: healthz, readyz and metrics need no token`, async () => {
    const { gw } = G[alg];
    for (const p of ['/healthz', '/readyz', '/metrics']) {
      const r = await request(gw.url, 'GET', p);
      assert.equal(r.status, 200, `${p}: ${r.status} ${r.text}`);
    }
  });
}

it('a token for one algorithm is refused by a gateway of another', async () => {
  const { store } = G.HS256;
  for (const [from, to] of [['RS256', 'ES256'], ['ES256', 'RS256'], ['RS256', 'HS256'], ['HS256', 'RS256']]) {
    expectError(await request(G[to].gw.url, 'GET', `/v1/stores/${store}`, { token: G[from].signer.token('admin') }), 401, 'unauthorized');
  }
});

it('read-only scope: GET store, records and changes; no push, PUT, DELETE', async () => {
  const { admin, store, signer } = G.HS256;
  await admin.pushOk(store, 'setup', [{ id: 1, key: 'ro', op: 'put', value: 1 }]);
  for (const scope of [`${store}:read`, '*:read']) {
    const ro = admin.withToken(signer.token(scope));
    assert.equal((await ro.getStore(store)).status, 200, scope);
    assert.equal((await ro.getRecord(store, 'ro')).status, 200, scope);
    expectError(await ro.getRecord(store, 'absent-ro'), 404, 'not_found');
    assert.equal((await ro.changes(store)).status, 200, scope);
    expectError(await ro.push(store, 'cro', [{ id: 1, key: 'ro2', op: 'put', value: 1 }]), 403, 'forbidden');
    expectError(await ro.push(store, 'cro', []), 403, 'forbidden');
    expectError(await ro.putRecord(store, 'ro2', 1), 403, 'forbidden');
    expectError(await ro.putRecord(store, 'ro', 2), 403, 'forbidden');
    expectError(await ro.deleteRecord(store, 'ro'), 403, 'forbidden');
    expectError(await ro.putStore(store, {}), 403, 'forbidden');
    expectError(await ro.deleteStore(store), 403, 'forbidden');
  }
  expectError(await admin.getRecord(store, 'ro2'), 404, 'not_found');
  const g = await admin.getRecord(store, 'ro');
  assert.equal(g.json.version, 1);
  assert.equal((await admin.pushOk(store, 'cro', [])).lastMutationId, 0);
});

it('store-scoped tokens: write implies read; no access to other stores', async () => {
  const { admin, signer } = G.HS256;
  const s1 = uniq('sc');
  const s2 = uniq('sc');
  await admin.createStore(s1);
  await admin.createStore(s2);
  await admin.pushOk(s2, 'setup', [{ id: 1, key: 'k', op: 'put', value: 'secret' }]);
  const w1 = admin.withToken(signer.token(`${s1}:write`));
  assert.equal((await w1.pushOk(s1, 'c', [{ id: 1, key: 'k', op: 'put', value: 1 }])).results[0].status, 'applied');
  assert.equal((await w1.putRecord(s1, 'j', 2)).status, 201);
  assert.equal((await w1.deleteRecord(s1, 'j')).status, 204);
  assert.equal((await w1.getRecord(s1, 'k')).status, 200);
  assert.equal((await w1.changes(s1)).status, 200);
  assert.equal((await w1.getStore(s1)).status, 200);
  for (const t of [w1, admin.withToken(signer.token(`${s1}:read`))]) {
    expectError(await t.getRecord(s2, 'k'), 403, 'forbidden');
    expectError(await t.changes(s2), 403, 'forbidden');
    expectError(await t.getStore(s2), 403, 'forbidden');
    expectError(await t.push(s2, 'c', [{ id: 1, key: 'k', op: 'put', value: 'x' }]), 403, 'forbidden');
    expectError(await t.putRecord(s2, 'k', 'x'), 403, 'forbidden');
  }
  // Names that merely look alike do not match.
  for (const scope of [`${s1}x:write`, `${s1.slice(0, -1)}:write`, `${s1}:readwrite`, `${s1}:Write`, `${s1.toUpperCase()}:write`, `${s1}`, `:write`, `*${s1}:write`]) {
    expectError(await admin.withToken(signer.token(scope)).push(s1, 'c9', []), 403, 'forbidden');
  }
  // Several scopes in one claim.
  const multi = admin.withToken(signer.token(`other:read ${s2}:read  ${s1}:write`));
  assert.equal((await multi.getRecord(s2, 'k')).status, 200);
  expectError(await multi.push(s2, 'c', []), 403, 'forbidden');
  assert.equal((await multi.push(s1, 'c', [])).status, 200);
  assert.equal((await admin.getRecord(s2, 'k')).json.value, 'secret');
});

it('*:write can push to any store, but not manage stores', async () => {
  const { admin, signer } = G.RS256;
  const s1 = uniq('w');
  const s2 = uniq('w');
  await admin.createStore(s1);
  await admin.createStore(s2);
  const w = admin.withToken(signer.token('*:write'));
  for (const s of [s1, s2]) {
    assert.equal((await w.pushOk(s, 'c', [{ id: 1, key: 'k', op: 'put', value: s }])).results[0].status, 'applied');
    assert.equal((await w.getRecord(s, 'k')).json.value, s);
    assert.equal((await w.putRecord(s, 'j', 1)).status, 201);
  }
  expectError(await w.putStore(s1, { conflict: 'lww' }), 403, 'forbidden');
  expectError(await w.deleteStore(s1), 403, 'forbidden');
  expectError(await w.putStore(uniq('nw')), 403, 'forbidden');
});

it('a token without scope is valid but may do nothing with stores', async () => {
  const { admin, signer, store } = G.ES256;
  const none = admin.withToken(signer.sign(claims(undefined)));
  expectError(await none.getStore(store), 403, 'forbidden');
  expectError(await none.changes(store), 403, 'forbidden');
  expectError(await none.push(store, 'c', []), 403, 'forbidden');
  const l = await none.listStores();
  assert.equal(l.status, 200, l.text);
  assert.deepEqual(l.json.stores, []);
});

it('only admin may PUT and DELETE stores (ES256 gateway)', async () => {
  const { admin, signer } = G.ES256;
  const s = uniq('only');
  for (const scope of ['*:write', '*:read', `${s}:write`]) {
    expectError(await admin.withToken(signer.token(scope)).putStore(s), 403, 'forbidden');
  }
  expectError(await admin.getStore(s), 404, 'store_not_found');
  assert.equal((await admin.putStore(s)).status, 201);
  expectError(await admin.withToken(signer.token(`${s}:write`)).deleteStore(s), 403, 'forbidden');
  assert.equal((await admin.deleteStore(s)).status, 204);
});

it('without a key the gateway refuses to listen on a non-loopback address', async () => {
  const r = await runGatewayExpectExit(['--listen', '0.0.0.0:0', '--zk', env.zk.connect, '--root', env.root]);
  assert.equal(r.timedOut, false, `still running after 10 s; stdout: ${r.stdout}`);
  assert.notEqual(r.code, 0, `exit code ${r.code}`);
  assert.ok(!/listening on/.test(r.stdout), `it listened: ${r.stdout}`);
  assert.ok(r.stderr.trim().length > 0, 'says why on stderr');
});

it('with a key the gateway may listen on 0.0.0.0', async () => {
  const signer = makeSigner('HS256', env.tmp);
  const gw = await startGateway({ zk: env.zk.connect, root: env.root, listen: '0.0.0.0:0', args: signer.args, name: 'any' });
  try {
    const port = new URL(gw.url).port;
    const r = await request(`http://127.0.0.1:${port}`, 'GET', '/v1/stores', { token: signer.token('admin') });
    assert.equal(r.status, 200, r.text);
    expectError(await request(`http://127.0.0.1:${port}`, 'GET', '/v1/stores'), 401, 'unauthorized');
  } finally {
    await gw.stop();
  }
});

it('the Bearer scheme name is case-insensitive (RFC 7235)', async () => {
  const { gw, store, signer } = G.HS256;
  for (const scheme of ['bearer', 'BEARER']) {
    const r = await request(gw.url, 'GET', `/v1/stores/${store}`, { headers: { Authorization: `${scheme} ${signer.token('admin')}` } });
    assert.equal(r.status, 200, `${scheme}: ${r.status} ${r.text}`);
  }
});
