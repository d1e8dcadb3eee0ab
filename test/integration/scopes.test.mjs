// Prefix scopes: many users in one store (PROTOCOL.md v1.1 "Prefix scopes",
// "Client ids belong to a user", "rejected"). Two gateways sharing one HS256
// secret; tokens with `<store>:read|write:<prefix>` scopes, `{sub}` and
// percent-decoding; records REST, push, client ids, filtered feeds and
// streams (on the second gateway after writes through the first), foreign
// zkCli writes inside and outside a user's prefix.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { setupEnv, it, startGateway, uniq, zkCli, recordZnode, clientZnode, sleep } from '../lib/harness.mjs';
import { Api, expectError, request, eventually } from '../lib/http.mjs';
import { makeSigner } from '../lib/jwt.mjs';
import { openEvents, closeAllEvents } from '../lib/sse.mjs';

const env = setupEnv();
let A, B, signer, adminA, adminB;

before(async () => {
  await env.ready();
  signer = makeSigner('HS256', env.tmp);
  A = await startGateway({ zk: env.zk.connect, root: env.root, args: signer.args, name: 'A' });
  B = await startGateway({ zk: env.zk.connect, root: env.root, args: signer.args, name: 'B' });
  adminA = new Api(A, signer.token('admin'));
  adminB = new Api(B, signer.token('admin'));
});
after(() => closeAllEvents());

/** An Api on gateway gw for a token of `sub` (undefined: no sub claim) with `scope`. */
const as = (gw, sub, scope) => new Api(gw, signer.token(scope, { sub }));
const put = (id, key, value, extra = {}) => ({ id, key, op: 'put', value, ...extra });
const del = (id, key, extra = {}) => ({ id, key, op: 'delete', ...extra });
const outcomes = (r) => r.results.map((x) => (x.status === 'rejected' ? `rejected:${x.reason}` : x.status));
const USER = (s) => `${s}:write:users/{sub}/`;

async function newStore(records = {}) {
  const s = uniq('sc');
  await adminA.createStore(s);
  let id = 0;
  const muts = Object.entries(records).map(([k, v]) => put(++id, k, v));
  if (muts.length) await adminA.pushOk(s, 'seed', muts);
  return s;
}

/** Every change of a filtered pull, page by page (cursors only grow). */
async function pullAll(api, s, { since, prefix, limit } = {}) {
  const out = [];
  let cur = since;
  for (let i = 0; i < 1000; i++) {
    const q = [];
    if (cur !== undefined) q.push(`since=${encodeURIComponent(cur)}`);
    if (prefix !== undefined) q.push(`prefix=${encodeURIComponent(prefix)}`);
    if (limit !== undefined) q.push(`limit=${limit}`);
    const r = await api.req('GET', `/v1/stores/${s}/changes${q.length ? '?' + q.join('&') : ''}`);
    assert.equal(r.status, 200, r.text);
    if (cur !== undefined) assert.ok(r.json.cursor >= cur, 'cursors never go back');
    out.push(...r.json.changes);
    cur = r.json.cursor;
    if (!r.json.more) return { changes: out, cursor: cur };
  }
  assert.fail('never reached more:false');
}
const keysOf = (changes) => changes.map((c) => c.key).sort();

it('records REST: GET outside the read set, PUT/DELETE outside the write set are 403 (after invalid_key, before 404)', async () => {
  const s = await newStore({ 'users/alice/1': 'a1', 'users/bob/1': 'b1', 'shared/x': 'sx' });
  const alice = as(A, 'alice', `${USER(s)} ${s}:read:shared/`);
  assert.equal((await alice.getRecord(s, 'users/alice/1')).json.value, 'a1');
  assert.equal((await alice.getRecord(s, 'shared/x')).json.value, 'sx');
  expectError(await alice.getRecord(s, 'users/bob/1'), 403, 'forbidden');
  expectError(await alice.getRecord(s, 'users/bob/none'), 403, 'forbidden', { messageMatch: /outside/ }); // 403 before 404
  expectError(await alice.getRecord(s, 'users/alice2/1'), 403, 'forbidden'); // the trailing delimiter
  expectError(await alice.getRecord(s, 'users/alice/none'), 404, 'not_found'); // inside: 404 as usual
  expectError(await alice.putRecord(s, 'shared/x', 1), 403, 'forbidden'); // readable, not writable
  expectError(await alice.deleteRecord(s, 'shared/x'), 403, 'forbidden');
  expectError(await alice.putRecord(s, 'users/bob/1', 'mine'), 403, 'forbidden');
  expectError(await alice.deleteRecord(s, 'users/bob/1'), 403, 'forbidden');
  assert.equal((await alice.putRecord(s, 'users/alice/2', 'a2')).status, 201);
  assert.equal((await alice.deleteRecord(s, 'users/alice/2')).status, 204);
  // invalid_key first (a broken percent-encoding, an empty key segment)
  expectError(await alice.req('GET', `/v1/stores/${s}/records/%ZZ`), 400, 'invalid_key');
  // a token with no grant at all in the store: 403 as in v1, even for an unknown store
  expectError(await as(A, 'alice', 'other:write:users/{sub}/').getRecord(s, 'users/alice/1'), 403, 'forbidden');
  expectError(await alice.getRecord(uniq('nostore'), 'users/alice/1'), 403, 'forbidden');
  // the other gateway agrees; Bob's value is untouched
  assert.equal((await adminB.getRecord(s, 'users/bob/1')).json.value, 'b1');
  assert.equal((await adminB.getRecord(s, 'shared/x')).json.value, 'sx');
});

it('push: a mutation outside the write set is rejected (forbidden), remembered on both gateways; a group goes with it', async () => {
  const s = await newStore({ 'users/bob/1': 'b1' });
  const alice = as(A, 'alice', USER(s));
  const muts = [put(1, 'users/alice/1', 'a1'), put(2, 'users/bob/1', 'stolen'), del(3, 'users/bob/1'),
    put(4, 'users/alice/2', 'a2', { tx: 'g' }), put(5, 'shared/x', 1, { tx: 'g' }), put(6, 'users/alice/3', 'a3')];
  const r = await alice.pushOk(s, 'alice-phone', muts);
  assert.deepEqual(outcomes(r), ['applied', 'rejected:forbidden', 'rejected:forbidden', 'rejected:tx_aborted',
    'rejected:forbidden', 'applied']);
  assert.equal(r.lastMutationId, 6);
  for (const api of [alice, as(B, 'alice', USER(s))]) {
    const again = await api.pushOk(s, 'alice-phone', muts);
    assert.deepEqual(outcomes(again), ['duplicate', 'rejected:forbidden', 'rejected:forbidden', 'rejected:tx_aborted',
      'rejected:forbidden', 'duplicate']);
  }
  assert.equal((await adminB.getRecord(s, 'users/bob/1')).json.value, 'b1');
  expectError(await adminB.getRecord(s, 'users/alice/2'), 404, 'not_found');
  expectError(await adminB.getRecord(s, 'shared/x'), 404, 'not_found');
  // a token with no write grant at all in the store: 403 as in v1, nothing applied
  expectError(await as(A, 'alice', `${s}:read:users/{sub}/`).push(s, 'alice-ro', [put(1, 'users/alice/9', 1)]), 403, 'forbidden');
  expectError(await adminA.getRecord(s, 'users/alice/9'), 404, 'not_found');
});

it('push: a conflict on a readable key carries current with its value', async () => {
  const s = await newStore({ 'users/alice/1': 'v1' });
  const alice = as(A, 'alice', USER(s));
  const r = await alice.pushOk(s, 'alice-c', [put(1, 'users/alice/1', 'x', { base: 0 })]);
  assert.deepEqual(outcomes(r), ['conflict']);
  assert.deepEqual(r.results[0].current, { value: 'v1', version: 1 });
});

it('client ids belong to a user: the first push binds the sub; another sub is 403 on either gateway and changes nothing', async () => {
  const s = await newStore();
  const scope = `${USER(s)} ${s}:write:shared/`;
  const alice = as(A, 'alice', scope), bobA = as(A, 'bob', scope), bobB = as(B, 'bob', scope);
  const r = await alice.pushOk(s, 'dev1', [put(1, 'users/alice/1', 'a'), put(2, 'shared/1', 'x')]);
  assert.deepEqual(outcomes(r), ['applied', 'applied']);
  const node = await zkCli(env.zk.connect, 'get', clientZnode(env.root, s, 'dev1'));
  assert.match(node.stdout, /"sub":"alice"/, node.stdout);
  // Bob spending Alice's ids (the hijack of issue 11): refused, through both gateways, with ids above and below hers
  for (const bob of [bobA, bobB]) {
    expectError(await bob.push(s, 'dev1', [put(3, 'users/bob/1', 'b')]), 403, 'forbidden', { messageMatch: /another user/ });
    expectError(await bob.push(s, 'dev1', [put(1, 'shared/1', 'y')]), 403, 'forbidden');
    expectError(await bob.push(s, 'dev1', []), 403, 'forbidden'); // not even lastMutationId
  }
  expectError(await adminA.getRecord(s, 'users/bob/1'), 404, 'not_found');
  assert.equal((await adminB.getRecord(s, 'shared/1')).json.value, 'x');
  // Alice's next real write is applied, not "duplicate"
  const r2 = await as(B, 'alice', scope).pushOk(s, 'dev1', [put(3, 'users/alice/2', 'a2')]);
  assert.deepEqual(outcomes(r2), ['applied']);
  assert.equal(r2.lastMutationId, 3);
  // a token without sub is another user too; admin tokens are exempt and keep the binding
  expectError(await as(A, undefined, `${s}:write`).push(s, 'dev1', [put(4, 'shared/2', 1)]), 403, 'forbidden');
  assert.deepEqual(outcomes(await adminB.pushOk(s, 'dev1', [put(4, 'shared/2', 1)])), ['applied']);
  assert.match((await zkCli(env.zk.connect, 'get', clientZnode(env.root, s, 'dev1'))).stdout, /"sub":"alice"/);
  assert.deepEqual(outcomes(await alice.pushOk(s, 'dev1', [put(5, 'users/alice/3', 1)])), ['applied']);
  // an id first used by an admin token binds nobody: the first user to push gets it
  assert.deepEqual(outcomes(await adminA.pushOk(s, 'shared-dev', [put(1, 'shared/3', 1)])), ['applied']);
  assert.doesNotMatch((await zkCli(env.zk.connect, 'get', clientZnode(env.root, s, 'shared-dev'))).stdout, /"sub"/);
  assert.deepEqual(outcomes(await bobB.pushOk(s, 'shared-dev', [put(2, 'users/bob/1', 1)])), ['applied']);
  expectError(await alice.push(s, 'shared-dev', [put(3, 'users/alice/9', 1)]), 403, 'forbidden');
});

it('client ids: a client node whose "sub" is not a string is distrusted (503, nothing applied)', async () => {
  const s = await newStore();
  const alice = as(A, 'alice', USER(s));
  await alice.pushOk(s, 'dev2', [put(1, 'users/alice/1', 1)]);
  const path = clientZnode(env.root, s, 'dev2');
  assert.ok((await zkCli(env.zk.connect, 'set', path, '{"last":1,"sub":7,"conflicts":[],"aborted":[]}')).ok);
  const r = await as(B, 'alice', USER(s)).push(s, 'dev2', [put(2, 'users/alice/2', 2)]);
  assert.equal(r.status, 503, r.text);
  expectError(await adminA.getRecord(s, 'users/alice/2'), 404, 'not_found');
});

it('push: a remembered conflict retried with a token that may no longer read the key shows only the version', async () => {
  const s = await newStore({ 'users/alice/1': 'v1' });
  const r = await as(A, 'alice', USER(s)).pushOk(s, 'dev3', [put(1, 'users/alice/1', 'x', { base: 0 })]);
  assert.deepEqual(outcomes(r), ['conflict']);
  // the same user with narrower rights now (write users/alice/notes/ only)
  const narrow = as(B, 'alice', `${s}:write:users/{sub}/notes/`);
  const again = await narrow.pushOk(s, 'dev3', [put(1, 'users/alice/1', 'x', { base: 0 })]);
  assert.deepEqual(outcomes(again), ['conflict']);
  assert.deepEqual(again.results[0].current, { version: 1 });
});
