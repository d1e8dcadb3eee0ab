// The error table of PROTOCOL.md (Conventions) and the order of checks
// ("Edge cases, decided"), against a real ZooKeeper and real gateways.
// 410 cursor_expired, 429 and 503 belong to a later issue and are not tested here.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it, startGateway, uniq } from '../lib/harness.mjs';
import { Api, request, expectError, enc } from '../lib/http.mjs';
import { makeSigner } from '../lib/jwt.mjs';

const env = setupEnv();
let signer, gw, lim, api, limApi;
const S = uniq('err');      // maxValueBytes 100
const BIG = uniq('big');    // maxValueBytes 1000000
const NOSUCH = uniq('nosuch');

before(async () => {
  await env.ready();
  signer = makeSigner('HS256', env.tmp);
  // --zk-heap-mb 3600: the largest transaction derived from it is 1,000,000 (the ceiling).
  gw = await startGateway({ zk: env.zk.connect, root: env.root, args: [...signer.args, '--zk-heap-mb', '3600'], name: 'main' });
  lim = await startGateway({ zk: env.zk.connect, root: env.root, args: [...signer.args, '--max-body', '50000', '--max-tx-bytes', '45000'], name: 'limits' });
  api = new Api(gw, signer.token('admin'));
  limApi = new Api(lim, signer.token('admin'));
  await api.createStore(S, { maxValueBytes: 100 });
  await api.createStore(BIG, { maxValueBytes: 1000000 });
});

const raw = (a, method, path, opts = {}) => request(a.url, method, path, { token: a.token, ...opts });
const pushRaw = (a, store, body, ct = 'application/json') =>
  raw(a, 'POST', `/v1/stores/${store}/push`, { body, headers: ct ? { 'Content-Type': ct } : {} });

/** The client's exactly-once state is untouched: an empty push reports lastMutationId 0. */
async function assertClientUntouched(a, store, client) {
  const r = await a.pushOk(store, client, []);
  assert.equal(r.lastMutationId, 0, `client ${client} state changed by a rejected request`);
  assert.deepEqual(r.results, []);
}
async function assertAbsent(a, store, key) {
  const r = await a.getRecord(store, key);
  expectError(r, 404, 'not_found');
}

// ---------------------------------------------------------------- invalid_json
it('invalid_json: truncated push body, message says where', async () => {
  const r = await pushRaw(api, S, '{"client": "cj1", "mutations": [{"id": 1, "key": "k", "op": "put", "value": ');
  const e = expectError(r, 400, 'invalid_json');
  assert.match(e.message, /\d/, `message should say where: ${e.message}`);
  await assertClientUntouched(api, S, 'cj1');
});

it('invalid_json: trailing garbage, bare words, invalid UTF-8', async () => {
  expectError(await pushRaw(api, S, '{"client":"cj2","mutations":[]} x'), 400, 'invalid_json');
  expectError(await pushRaw(api, S, "{client:'cj2'}"), 400, 'invalid_json');
  const bad = Buffer.concat([Buffer.from('{"client":"cj2","mutations":[{"id":1,"key":"k'), Buffer.from([0xff, 0xfe]), Buffer.from('","op":"put","value":1}]}')]);
  expectError(await pushRaw(api, S, bad), 400, 'invalid_json');
  const bad2 = Buffer.concat([Buffer.from('{"client":"cj2","mutations":[{"id":1,"key":"k","op":"put","value":"'), Buffer.from([0xc3]), Buffer.from('"}]}')]);
  expectError(await pushRaw(api, S, bad2), 400, 'invalid_json');
  await assertClientUntouched(api, S, 'cj2');
  await assertAbsent(api, S, 'k');
});

it('invalid_json: record PUT and store PUT with malformed bodies', async () => {
  const r1 = await raw(api, 'PUT', `/v1/stores/${S}/records/jk`, { body: '{"a": ', headers: { 'Content-Type': 'application/json' } });
  expectError(r1, 400, 'invalid_json');
  await assertAbsent(api, S, 'jk');
  const st = uniq('js');
  const r2 = await raw(api, 'PUT', `/v1/stores/${st}`, { body: '{"conflict":', headers: { 'Content-Type': 'application/json' } });
  expectError(r2, 400, 'invalid_json');
  expectError(await api.getStore(st), 404, 'store_not_found');
});

// ---------------------------------------------------------------- bad_request
it('bad_request: push shapes, message names the field', async () => {
  const cases = [
    [{ client: 'cb1', mutations: 'x' }, /mutations/],
    [{ client: 'cb1' }, /mutations/],
    [{ mutations: [] }, /client/],
    [{ client: 7, mutations: [] }, /client/],
    [{ client: 'bad client!', mutations: [] }, /client/],
    [{ client: 'x'.repeat(65), mutations: [] }, /client/],
    [{ client: 'cb1', mutations: [{ id: '1', key: 'k', op: 'put', value: 1 }] }, /\bid\b/],
    [{ client: 'cb1', mutations: [{ id: 0, key: 'k', op: 'put', value: 1 }] }, /\bid\b/],
    [{ client: 'cb1', mutations: [{ id: 1.5, key: 'k', op: 'put', value: 1 }] }, /\bid\b/],
    [{ client: 'cb1', mutations: [{ key: 'k', op: 'put', value: 1 }] }, /\bid\b/],
    [{ client: 'cb1', mutations: [{ id: 1, key: 'k', op: 'upsert', value: 1 }] }, /\bop\b/],
    [{ client: 'cb1', mutations: [{ id: 1, key: 'k', value: 1 }] }, /\bop\b/],
    [{ client: 'cb1', mutations: [{ id: 1, key: 5, op: 'put', value: 1 }] }, /\bkey\b/],
    [{ client: 'cb1', mutations: [{ id: 1, key: null, op: 'put', value: 1 }] }, /\bkey\b/],
    [{ client: 'cb1', mutations: [{ id: 1, op: 'put', value: 1 }] }, /\bkey\b/],
    [{ client: 'cb1', mutations: [{ id: 1, key: 'k', op: 'put' }] }, /\bvalue\b/],
    [{ client: 'cb1', mutations: [{ id: 1, key: 'k', op: 'put', value: 1, base: -1 }] }, /\bbase\b/],
    [{ client: 'cb1', mutations: [{ id: 1, key: 'k', op: 'put', value: 1, base: '2' }] }, /\bbase\b/],
    [{ client: 'cb1', mutations: [{ id: 1, key: 'k', op: 'put', value: 1, base: 1.5 }] }, /\bbase\b/],
    [{ client: 'cb1', mutations: ['x'] }, null],
  ];
  for (const [body, re] of cases) {
    const r = await api.req('POST', `/v1/stores/${S}/push`, { json: body });
    expectError(r, 400, 'bad_request', { messageMatch: re || undefined });
  }
  expectError(await pushRaw(api, S, '[]'), 400, 'bad_request');
  expectError(await pushRaw(api, S, '{}'), 400, 'bad_request');
  await assertClientUntouched(api, S, 'cb1');
  await assertAbsent(api, S, 'k');
});

it('bad_request, not invalid_json: a well-formed JSON scalar where an object is needed', async () => {
  // RFC 8259: a scalar is a well-formed JSON text; the shape is wrong.
  for (const body of ['"push"', '42', 'null', 'true']) {
    expectError(await pushRaw(api, S, body), 400, 'bad_request');
    expectError(await raw(api, 'PUT', `/v1/stores/${uniq('sc')}`, { body, headers: { 'Content-Type': 'application/json' } }), 400, 'bad_request');
  }
});

it('bad_request: ids not strictly increasing, tx not consecutive, over 1000 mutations; nothing applied', async () => {
  const c = 'cb2';
  const ok = { id: 1, key: 'b2-first', op: 'put', value: 1 };
  for (const muts of [
    [ok, { id: 1, key: 'b2-x', op: 'put', value: 2 }],
    [{ ...ok, id: 5 }, { id: 4, key: 'b2-x', op: 'put', value: 2 }],
    [ok, { id: 2, key: 'b2-x', op: 'put', value: 1, tx: 't' }, { id: 3, key: 'b2-y', op: 'put', value: 1 }, { id: 4, key: 'b2-z', op: 'put', value: 1, tx: 't' }],
  ]) {
    expectError(await api.push(S, c, muts), 400, 'bad_request');
  }
  const many = Array.from({ length: 1001 }, (_, i) => ({ id: i + 1, key: `b2-m${i % 10}`, op: 'put', value: i }));
  expectError(await api.push(BIG, c, many), 400, 'bad_request');
  await assertClientUntouched(api, S, c);
  await assertClientUntouched(api, BIG, c);
  for (const k of ['b2-first', 'b2-x', 'b2-y', 'b2-z']) await assertAbsent(api, S, k);
  await assertAbsent(api, BIG, 'b2-m0');
  // Exactly 1000 is allowed.
  const thousand = many.slice(0, 1000);
  const r = await api.pushOk(BIG, c, thousand);
  assert.ok(r.results.every((x) => x.status === 'applied'), 'all 1000 applied');
  assert.equal(r.lastMutationId, 1000);
  const rec = await api.getRecord(BIG, 'b2-m0');
  assert.equal(rec.status, 200);
  assert.equal(rec.json.version, 100, '100 puts to b2-m0');
  assert.equal(rec.json.value, 990);
});

it('bad_request: store PUT with bad fields names the field and changes nothing', async () => {
  const st = uniq('sb');
  const cases = [
    [{ conflict: 'x' }, /conflict/], [{ conflict: 1 }, /conflict/],
    [{ maxValueBytes: 0 }, /maxValueBytes/], [{ maxValueBytes: 1000001 }, /maxValueBytes/],
    [{ maxValueBytes: '10' }, /maxValueBytes/], [{ maxValueBytes: 1.5 }, /maxValueBytes/],
    [{ tombstoneTtlSeconds: 0 }, /tombstoneTtlSeconds/], [{ tombstoneTtlSeconds: -5 }, /tombstoneTtlSeconds/],
    [{ tombstoneTtlSeconds: 'x' }, /tombstoneTtlSeconds/],
    [{ color: 'blue' }, null], [[1, 2], null],
  ];
  for (const [body, re] of cases) {
    expectError(await api.putStore(st, body), 400, 'bad_request', { messageMatch: re || undefined });
  }
  expectError(await api.getStore(st), 404, 'store_not_found');
  // On an existing store too.
  await api.createStore(st, { maxValueBytes: 500 });
  for (const [body, re] of cases) {
    expectError(await api.putStore(st, body), 400, 'bad_request', { messageMatch: re || undefined });
  }
  const d = (await api.getStore(st)).json;
  assert.equal(d.conflict, 'cas');
  assert.equal(d.maxValueBytes, 500);
  assert.equal(d.tombstoneTtlSeconds, 604800);
});

it('bad_request: changes limit out of range or not an integer', async () => {
  for (const l of ['0', '10001', '-1', '1.5', 'abc', '1e3', '']) {
    expectError(await api.changes(S, { limit: l }), 400, 'bad_request', { messageMatch: /limit/ });
  }
  for (const l of ['1', '10000']) assert.equal((await api.changes(S, { limit: l })).status, 200, `limit=${l}`);
});

// ---------------------------------------------------------------- invalid_store
it('invalid_store: bad store names on every route', async () => {
  for (const name of ['bad!name', 'a.b', 'x'.repeat(65), 'with%20space', '%C3%A9']) {
    expectError(await api.getStore(name), 400, 'invalid_store');
    expectError(await api.putStore(name), 400, 'invalid_store');
    expectError(await api.deleteStore(name), 400, 'invalid_store');
    expectError(await api.getRecord(name, 'k'), 400, 'invalid_store');
    expectError(await api.changes(name), 400, 'invalid_store');
    expectError(await api.push(name, 'c', []), 400, 'invalid_store');
  }
  // 64 characters is fine.
  const ok = 'A-_9'.repeat(16);
  assert.equal(ok.length, 64);
  assert.equal((await api.putStore(ok)).status, 201);
});

// ---------------------------------------------------------------- invalid_key
it('invalid_key: push keys empty, too long, with U+0000, lone surrogate; nothing applied', async () => {
  const c = 'ck1';
  const first = { id: 1, key: 'k-first', op: 'put', value: 1 };
  for (const key of ['', 'x'.repeat(1025), 'é'.repeat(512) + 'a', 'a\u0000b']) {
    expectError(await api.push(S, c, [first, { id: 2, key, op: 'put', value: 1 }]), 400, 'invalid_key');
  }
  const lone = await pushRaw(api, S, '{"client":"ck1","mutations":[{"id":1,"key":"k-first","op":"put","value":1},{"id":2,"key":"a\\ud800b","op":"put","value":1}]}');
  assert.equal(lone.status, 400, lone.text);
  assert.ok(['invalid_key', 'invalid_json'].includes(lone.json && lone.json.error), lone.text);
  await assertClientUntouched(api, S, c);
  await assertAbsent(api, S, 'k-first');
  // 1024 bytes is fine.
  const r = await api.pushOk(S, c, [{ id: 1, key: 'é'.repeat(512), op: 'put', value: 1 }]);
  assert.equal(r.results[0].status, 'applied');
});

it('invalid_key: REST keys with bad UTF-8, NUL, over 1024 bytes', async () => {
  for (const k of ['%FF', '%C3', '%ED%A0%80', '%C0%AF', 'a%00b', 'x'.repeat(1025), '%C3%A9'.repeat(512) + 'a']) {
    expectError(await api.req('GET', `/v1/stores/${S}/records/${k}`), 400, 'invalid_key');
    expectError(await api.req('PUT', `/v1/stores/${S}/records/${k}`, { json: 1 }), 400, 'invalid_key');
    expectError(await api.req('DELETE', `/v1/stores/${S}/records/${k}`), 400, 'invalid_key');
  }
});

// ---------------------------------------------------------------- invalid_cursor
it('invalid_cursor: wrong length, non-hex, uppercase, beyond anything issued', async () => {
  await api.pushOk(S, 'ccur', [{ id: 1, key: 'cur-a', op: 'put', value: 1 }, { id: 2, key: 'cur-b', op: 'put', value: 2 }]);
  const all = await api.changesOk(S);
  const withLetter = [...all.changes.map((c) => c.cursor), all.cursor].find((c) => /[a-f]/.test(c));
  assert.ok(withLetter, 'some issued cursor contains a-f');
  assert.equal((await api.changes(S, { since: withLetter })).status, 200);
  for (const bad of ['abc', all.cursor.slice(0, 39), all.cursor + '0', 'g'.repeat(40), 'z' + all.cursor.slice(1),
    withLetter.toUpperCase(), 'f'.repeat(40), ' '.repeat(40)]) {
    expectError(await api.changes(S, { since: bad }), 400, 'invalid_cursor');
  }
});

// ---------------------------------------------------------------- unauthorized / forbidden
it('unauthorized: no token, garbage, wrong signature, expired', async () => {
  const anon = api.withToken(undefined);
  expectError(await anon.getStore(S), 401, 'unauthorized');
  expectError(await anon.listStores(), 401, 'unauthorized');
  expectError(await api.withToken('garbage').getStore(S), 401, 'unauthorized');
  const other = makeSigner('HS256', env.tmp);
  expectError(await api.withToken(other.token('admin')).getStore(S), 401, 'unauthorized');
  expectError(await api.withToken(signer.token('admin', { exp: Math.floor(Date.now() / 1000) - 60 })).getStore(S), 401, 'unauthorized');
});

it('forbidden: valid token without the needed scope', async () => {
  const ro = api.withToken(signer.token(`${S}:read`));
  expectError(await ro.push(S, 'cf1', [{ id: 1, key: 'f', op: 'put', value: 1 }]), 403, 'forbidden');
  expectError(await api.withToken(signer.token('other:read')).getStore(S), 403, 'forbidden');
  expectError(await api.withToken(signer.token('*:write')).putStore(uniq('f')), 403, 'forbidden');
  await assertAbsent(api, S, 'f');
});

// ---------------------------------------------------------------- 404s
it('store_not_found on every store route of an unknown store', async () => {
  expectError(await api.getStore(NOSUCH), 404, 'store_not_found');
  expectError(await api.deleteStore(NOSUCH), 404, 'store_not_found');
  expectError(await api.getRecord(NOSUCH, 'k'), 404, 'store_not_found');
  expectError(await api.putRecord(NOSUCH, 'k', 1), 404, 'store_not_found');
  expectError(await api.deleteRecord(NOSUCH, 'k'), 404, 'store_not_found');
  expectError(await api.changes(NOSUCH), 404, 'store_not_found');
  expectError(await api.push(NOSUCH, 'c', [{ id: 1, key: 'k', op: 'put', value: 1 }]), 404, 'store_not_found');
  expectError(await api.getStore(NOSUCH), 404, 'store_not_found'); // still not created implicitly
});

it('not_found: unknown routes and absent records', async () => {
  for (const p of ['/nope', '/v1/nope', '/v2/stores', `/v1/stores/${S}/nope`, `/v1/stores/${S}/records`, '/v1']) {
    expectError(await api.req('GET', p), 404, 'not_found');
  }
  expectError(await api.getRecord(S, 'never-written'), 404, 'not_found');
  expectError(await api.deleteRecord(S, 'never-written'), 404, 'not_found');
});

// ---------------------------------------------------------------- 405
function allowSet(res) {
  const a = res.headers.allow;
  assert.ok(a, `405 without Allow header: ${JSON.stringify(res.headers)}`);
  return new Set(a.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean));
}
it('method_not_allowed with an Allow header', async () => {
  const cases = [
    ['POST', `/v1/stores/${S}`, ['GET', 'PUT', 'DELETE']],
    ['PATCH', `/v1/stores/${S}/records/k`, ['GET', 'PUT', 'DELETE']],
    ['POST', `/v1/stores/${S}/records/k`, ['GET', 'PUT', 'DELETE']],
    ['GET', `/v1/stores/${S}/push`, ['POST']],
    ['PUT', `/v1/stores/${S}/push`, ['POST']],
    ['POST', `/v1/stores/${S}/changes`, ['GET']],
    ['DELETE', '/v1/stores', ['GET']],
  ];
  for (const [m, p, allowed] of cases) {
    const r = await api.req(m, p);
    expectError(r, 405, 'method_not_allowed');
    const set = allowSet(r);
    for (const a of allowed) assert.ok(set.has(a), `${m} ${p}: Allow ${r.headers.allow} lacks ${a}`);
    assert.ok(!set.has(m), `${m} ${p}: Allow ${r.headers.allow} lists the refused method`);
  }
});

it('method_not_allowed on the operations routes too', async () => {
  for (const p of ['/healthz', '/readyz', '/metrics']) {
    for (const m of ['POST', 'DELETE']) {
      const r = await request(gw.url, m, p);
      expectError(r, 405, 'method_not_allowed');
      assert.ok(allowSet(r).has('GET'), `${m} ${p}: Allow ${r.headers.allow}`);
    }
  }
});

// ---------------------------------------------------------------- 412
it('precondition_failed: If-Match and If-None-Match', async () => {
  const r = await api.putRecord(S, 'pf', 1);
  assert.equal(r.status, 201, r.text);
  expectError(await api.putRecord(S, 'pf', 2, { 'If-Match': '"99"' }), 412, 'precondition_failed');
  expectError(await api.putRecord(S, 'pf', 2, { 'If-None-Match': '*' }), 412, 'precondition_failed');
  expectError(await api.deleteRecord(S, 'pf', { 'If-Match': '"2"' }), 412, 'precondition_failed');
  expectError(await api.putRecord(S, 'pf-absent', 2, { 'If-Match': '"1"' }), 412, 'precondition_failed');
  const g = await api.getRecord(S, 'pf');
  assert.equal(g.json.version, 1);
  assert.equal(g.json.value, 1);
  await assertAbsent(api, S, 'pf-absent');
});

// ---------------------------------------------------------------- 413
it('body_too_large: over --max-body, nothing applied', async () => {
  const c = 'cbody';
  const muts = [{ id: 1, key: 'body-a', op: 'put', value: 'x' }, { id: 2, key: 'body-b', op: 'put', value: 'y'.repeat(60000) }];
  const r = await limApi.push(BIG, c, muts);
  expectError(r, 413, 'body_too_large');
  await assertClientUntouched(limApi, BIG, c);
  await assertAbsent(limApi, BIG, 'body-a');
  expectError(await limApi.putRecord(BIG, 'body-c', 'z'.repeat(60000)), 413, 'body_too_large');
  await assertAbsent(limApi, BIG, 'body-c');
  // Just under the limit is fine.
  const ok = await limApi.pushOk(BIG, c, [{ id: 1, key: 'body-a', op: 'put', value: 'w'.repeat(40000) }]);
  assert.equal(ok.results[0].status, 'applied');
});

it('chunked request bodies: counted against --max-body without a declared length', async () => {
  const c = 'cchunk';
  const ok = await limApi.req('POST', `/v1/stores/${BIG}/push`, { json: { client: c, mutations: [{ id: 1, key: 'chunk-a', op: 'put', value: 'v'.repeat(30000) }] }, chunked: true });
  assert.equal(ok.status, 200, `chunked push: ${ok.status} ${ok.text}`);
  assert.equal(ok.json.results[0].status, 'applied');
  const big = await limApi.req('POST', `/v1/stores/${BIG}/push`, { json: { client: c, mutations: [{ id: 2, key: 'chunk-b', op: 'put', value: 'w'.repeat(70000) }] }, chunked: true });
  expectError(big, 413, 'body_too_large');
  await assertAbsent(limApi, BIG, 'chunk-b');
  const rec = await limApi.req('PUT', `/v1/stores/${BIG}/records/chunk-c`, { json: 'z'.repeat(70000), chunked: true });
  expectError(rec, 413, 'body_too_large');
  await assertAbsent(limApi, BIG, 'chunk-c');
  assert.equal((await limApi.pushOk(BIG, c, [])).lastMutationId, 1);
});

it('value_too_large: compact serialized size against maxValueBytes (REST)', async () => {
  // "x"*98 serializes to exactly 100 bytes.
  assert.equal((await api.putRecord(S, 'v100', 'x'.repeat(98))).status, 201);
  expectError(await api.putRecord(S, 'v101', 'x'.repeat(99)), 413, 'value_too_large');
  await assertAbsent(api, S, 'v101');
  // Insignificant whitespace does not count.
  const spaced = '{ "a" :   ' + ' '.repeat(300) + ' "' + 'x'.repeat(80) + '"   }';
  const r = await raw(api, 'PUT', `/v1/stores/${S}/records/vspace`, { body: spaced, headers: { 'Content-Type': 'application/json' } });
  assert.equal(r.status, 201, `whitespace counted: ${r.text}`);
  // Non-ASCII is not escaped: "é"*49 is 98 bytes + 2 quotes = 100 bytes, even when sent as \u00e9 escapes.
  const esc = '"' + '\\u00e9'.repeat(49) + '"';
  const r2 = await raw(api, 'PUT', `/v1/stores/${S}/records/vesc`, { body: esc, headers: { 'Content-Type': 'application/json' } });
  assert.equal(r2.status, 201, `escaped non-ASCII measured escaped: ${r2.text}`);
  assert.equal((await api.getRecord(S, 'vesc')).json.value, 'é'.repeat(49));
  expectError(await api.putRecord(S, 'vesc2', 'é'.repeat(50)), 413, 'value_too_large');
});

it('value_too_large: push values measured compactly, non-ASCII unescaped', async () => {
  const c = 'cval2';
  const body = `{"client":"${c}","mutations":[{"id":1,"key":"val-esc","op":"put","value":"${'\\u00e9'.repeat(49)}"},{"id":2,"key":"val-sp","op":"put","value":[ 1,   2,   3 ${' '.repeat(200)}]}]}`;
  const r = await pushRaw(api, S, body);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.results.map((x) => x.status), ['applied', 'applied']);
  expectError(await api.push(S, c, [{ id: 3, key: 'val-e2', op: 'put', value: 'é'.repeat(50) }]), 413, 'value_too_large');
});

it('value_too_large: one value over maxValueBytes rejects the whole push', async () => {
  const c = 'cval';
  const muts = [{ id: 1, key: 'val-a', op: 'put', value: 1 }, { id: 2, key: 'val-b', op: 'put', value: 'x'.repeat(99) }];
  expectError(await api.push(S, c, muts), 413, 'value_too_large');
  await assertClientUntouched(api, S, c);
  await assertAbsent(api, S, 'val-a');
  await assertAbsent(api, S, 'val-b');
});

it('tx_too_large: a tx group over --max-tx-bytes (default and configured), nothing applied', async () => {
  // Default 1000000: two values of 600000 bytes in one group.
  const c = 'ctx1';
  const big = 'x'.repeat(600000);
  const grp = [{ id: 1, key: 'tx-pre', op: 'put', value: 1 },
    { id: 2, key: 'tx-a', op: 'put', value: big, tx: 'g' }, { id: 3, key: 'tx-b', op: 'put', value: big, tx: 'g' }];
  expectError(await api.push(BIG, c, grp), 413, 'tx_too_large');
  await assertClientUntouched(api, BIG, c);
  for (const k of ['tx-pre', 'tx-a', 'tx-b']) await assertAbsent(api, BIG, k);
  // The same mutations outside a tx group are independent and fine.
  const r = await api.pushOk(BIG, c, grp.map(({ tx, ...m }) => m));
  assert.deepEqual(r.results.map((x) => x.status), ['applied', 'applied', 'applied']);

  // Configured 45000 on the limits gateway.
  const c2 = 'ctx2';
  const mid = 'y'.repeat(16000);
  const grp2 = [0, 1, 2].map((i) => ({ id: i + 1, key: `tx2-${i}`, op: 'put', value: mid, tx: 't' }));
  expectError(await limApi.push(BIG, c2, grp2), 413, 'tx_too_large');
  await assertClientUntouched(limApi, BIG, c2);
  for (const i of [0, 1, 2]) await assertAbsent(limApi, BIG, `tx2-${i}`);
  const r2 = await limApi.pushOk(BIG, c2, grp2.map(({ tx, ...m }) => m));
  assert.deepEqual(r2.results.map((x) => x.status), ['applied', 'applied', 'applied']);
  // One value that alone passes what one transaction may carry: value_too_large, naming the flag.
  const one = await limApi.push(BIG, 'ctx3', [{ id: 1, key: 'tx3', op: 'put', value: 'z'.repeat(44000) }]);
  expectError(one, 413, 'value_too_large');
  assert.match(one.json.message, /--max-tx-bytes 45000/);
  await assertAbsent(limApi, BIG, 'tx3');
  expectError(await limApi.putRecord(BIG, 'tx3', 'z'.repeat(44000)), 413, 'value_too_large');
});

// ---------------------------------------------------------------- 415
it('unsupported_media_type: bodies that are not application/json', async () => {
  const body = JSON.stringify({ client: 'cmt', mutations: [{ id: 1, key: 'mt', op: 'put', value: 1 }] });
  for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
    expectError(await pushRaw(api, S, body, ct), 415, 'unsupported_media_type');
    expectError(await raw(api, 'PUT', `/v1/stores/${S}/records/mt`, { body: '1', headers: { 'Content-Type': ct } }), 415, 'unsupported_media_type');
    expectError(await raw(api, 'PUT', `/v1/stores/${uniq('mt')}`, { body: '{}', headers: { 'Content-Type': ct } }), 415, 'unsupported_media_type');
  }
  await assertClientUntouched(api, S, 'cmt');
  await assertAbsent(api, S, 'mt');
  // A charset parameter is fine.
  const ok = await pushRaw(api, S, body, 'application/json; charset=utf-8');
  assert.equal(ok.status, 200, ok.text);
});

// ---------------------------------------------------------------- robustness
it('deeply nested JSON is refused with a 4xx and the gateway keeps serving', async () => {
  const depth = 100000;
  const value = '['.repeat(depth) + ']'.repeat(depth);
  const r = await raw(api, 'PUT', `/v1/stores/${BIG}/records/deep`, { body: value, headers: { 'Content-Type': 'application/json' } });
  assert.ok(r.status >= 400 && r.status < 500, `deep nesting: ${r.status} ${r.text.slice(0, 200)}`);
  assert.ok(r.json && typeof r.json.error === 'string', r.text.slice(0, 200));
  const r2 = await pushRaw(api, BIG, `{"client":"cdeep","mutations":[{"id":1,"key":"deep","op":"put","value":${value}}]}`);
  assert.ok(r2.status >= 400 && r2.status < 500, `deep nesting in push: ${r2.status}`);
  assert.equal((await request(gw.url, 'GET', '/healthz')).status, 200);
});

// ---------------------------------------------------------------- order of checks
it('order: 401 before anything (invalid store, unknown store, bad body)', async () => {
  const anon = api.withToken(undefined);
  expectError(await anon.getStore('bad!name'), 401, 'unauthorized');
  expectError(await api.withToken('x.y.z').getStore('bad!name'), 401, 'unauthorized');
  expectError(await anon.changes(NOSUCH, { since: 'zz' }), 401, 'unauthorized');
  expectError(await pushRaw(anon, NOSUCH, '{oops', 'text/plain'), 401, 'unauthorized');
  expectError(await anon.req('GET', `/v1/stores/${S}/records/%FF`), 401, 'unauthorized');
});

it('order: 403 for the store in the path, whether or not it exists or is valid', async () => {
  const otherRead = api.withToken(signer.token('other:read'));
  expectError(await otherRead.getStore('badname!'), 403, 'forbidden');
  expectError(await otherRead.getStore(NOSUCH), 403, 'forbidden');
  expectError(await otherRead.changes(NOSUCH, { since: 'zz', limit: 0 }), 403, 'forbidden');
  const ro = api.withToken(signer.token(`${S}:read ${NOSUCH}:read`));
  expectError(await ro.push(NOSUCH, 'c', []), 403, 'forbidden');
  expectError(await pushRaw(ro, S, '{oops', 'text/plain'), 403, 'forbidden');
  expectError(await ro.req('PUT', `/v1/stores/${S}/records/%FF`, { body: 'x', headers: { 'Content-Type': 'text/plain' } }), 403, 'forbidden');
});

it('order: 400 on path and query before 404', async () => {
  const anyRead = api.withToken(signer.token('*:read'));
  expectError(await anyRead.getStore('badname!'), 400, 'invalid_store');
  expectError(await anyRead.changes(NOSUCH, { since: 'zz' }), 400, 'invalid_cursor');
  expectError(await anyRead.changes(NOSUCH, { limit: 0 }), 400, 'bad_request');
  expectError(await anyRead.req('GET', `/v1/stores/${NOSUCH}/records/%FF`), 400, 'invalid_key');
  expectError(await api.req('PUT', `/v1/stores/${NOSUCH}/records/${'x'.repeat(1025)}`, { json: 1 }), 400, 'invalid_key');
});

it('order: 404 before 415 and body errors; 415 before body errors', async () => {
  const w = api.withToken(signer.token('*:write'));
  expectError(await pushRaw(w, NOSUCH, '{oops', 'text/plain'), 404, 'store_not_found');
  expectError(await pushRaw(w, NOSUCH, '{oops'), 404, 'store_not_found');
  expectError(await w.push(NOSUCH, 'bad client!', 'x'), 404, 'store_not_found');
  expectError(await w.req('PUT', `/v1/stores/${NOSUCH}/records/k`, { body: '{oops', headers: { 'Content-Type': 'text/plain', 'If-Match': '"3"' } }), 404, 'store_not_found');
  expectError(await pushRaw(w, S, '{oops', 'text/plain'), 415, 'unsupported_media_type');
  expectError(await w.req('PUT', `/v1/stores/${S}/records/k`, { body: '{oops', headers: { 'Content-Type': 'text/plain' } }), 415, 'unsupported_media_type');
  expectError(await pushRaw(w, S, '{oops'), 400, 'invalid_json');
  expectError(await w.push(S, 'bad client!', []), 400, 'bad_request');
});
