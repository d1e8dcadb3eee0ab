// Prefix scopes: many users in one store (PROTOCOL.md v1.1 "Prefix scopes",
// "Client ids belong to a user", "rejected"). Two gateways sharing one HS256
// secret; tokens with `<store>:read|write:<prefix>` scopes, `{sub}` and
// percent-decoding; records REST, push, client ids, filtered feeds and
// streams (on the second gateway after writes through the first), foreign
// zkCli writes inside and outside a user's prefix.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { setupEnv, it, startGateway, uniq, zkCli, recordZnode, clientZnode, sleep } from '../lib/harness.mjs';
import { Api, expectError, request, getMetrics } from '../lib/http.mjs';
import { makeSigner } from '../lib/jwt.mjs';
import { openEvents, closeAllEvents } from '../lib/sse.mjs';
import { holdSocket } from '../lib/raw.mjs';
import { put, del, outcomes } from '../lib/records.mjs';
import { gatewayPair, freshStore } from '../lib/fixtures.mjs';

const env = setupEnv();
let A, B, signer, adminA, adminB;

before(async () => {
  await env.ready();
  signer = makeSigner('HS256', env.tmp);
  ({ A, B, a: adminA, b: adminB } = await gatewayPair(env, { signer }));
});
after(() => closeAllEvents());

/** An Api on gateway gw for a token of `sub` (undefined: no sub claim) with `scope`. */
const as = (gw, sub, scope) => new Api(gw, signer.token(scope, { sub }));
const USER = (s) => `${s}:write:users/{sub}/`;

const newStore = (records = {}) => freshStore(adminA, { prefix: 'sc', seed: records });

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

it('/changes: filtered by the read set on the second gateway after writes through the first; cursors stay global', async () => {
  const s = await newStore({ 'users/alice/1': 'a1', 'users/bob/1': 'b1', 'shared/x': 'sx', 'users/alice2/1': 'no' });
  const scope = `${USER(s)} ${s}:read:shared/`;
  const aliceB = as(B, 'alice', scope);
  const snap = await pullAll(aliceB, s);
  assert.deepEqual(keysOf(snap.changes), ['shared/x', 'users/alice/1']);
  // writes through A: Bob's, Alice's, a deletion of each
  await adminA.pushOk(s, 'w', [put(1, 'users/bob/2', 'b2'), put(2, 'users/alice/2', 'a2'), del(3, 'users/bob/1'),
    del(4, 'users/alice/1'), put(5, 'shared/y', 'sy')]);
  const inc = await pullAll(aliceB, s, { since: snap.cursor });
  // (one multi: one zxid, ordered by key digest)
  assert.deepEqual(inc.changes.map((c) => `${c.key}${c.deleted ? ' deleted' : ''}`).sort(),
    ['shared/y', 'users/alice/1 deleted', 'users/alice/2']);
  // the same cursor is valid on A, unfiltered, and shows every change
  const all = await pullAll(adminA, s, { since: snap.cursor });
  assert.equal(all.changes.length, 5);
  assert.equal(all.cursor, inc.cursor, 'the filtered cursor is the global one');
  // a page limit holds; pages continue past what the token cannot see
  const paged = await pullAll(aliceB, s, { limit: 1 });
  // (pages after the first carry deletions after the continuation, as unfiltered ones do)
  assert.deepEqual(keysOf(paged.changes.filter((c) => !c.deleted)), ['shared/x', 'shared/y', 'users/alice/2']);
  // nothing visible after the cursor: an empty page with a cursor that moved on
  await adminA.pushOk(s, 'w', [put(6, 'users/bob/3', 'b3')]);
  const after = await pullAll(aliceB, s, { since: inc.cursor });
  assert.deepEqual(after.changes, []);
  assert.ok(after.cursor > inc.cursor, 'past the invisible change');
});

it('?prefix= on /changes and the description: narrows for any token, 403 when wider than the read set, 400 empty or broken', async () => {
  const s = await newStore({ 'users/alice/n/1': 1, 'users/alice/t/1': 2, 'users/bob/n/1': 3, 'a b/é/1': 4, 'a b/x': 5 });
  const q = (p) => `?prefix=${encodeURIComponent(p)}`;
  assert.deepEqual(keysOf((await pullAll(adminB, s, { prefix: 'users/bob/' })).changes), ['users/bob/n/1']);
  assert.deepEqual(keysOf((await pullAll(adminB, s, { prefix: 'a b/é/' })).changes), ['a b/é/1']); // percent-encoded UTF-8
  assert.deepEqual(keysOf((await pullAll(adminB, s, { prefix: 'users/alice/' })).changes), ['users/alice/n/1', 'users/alice/t/1']);
  const alice = as(B, 'alice', USER(s));
  assert.deepEqual(keysOf((await pullAll(alice, s, { prefix: 'users/alice/n/' })).changes), ['users/alice/n/1']);
  assert.deepEqual(keysOf((await pullAll(alice, s, { prefix: 'users/alice/' })).changes), ['users/alice/n/1', 'users/alice/t/1']);
  for (const p of ['users/bob/', 'users/', 'users/alice', 'u', 'zzz']) {
    expectError(await alice.req('GET', `/v1/stores/${s}/changes${q(p)}`), 403, 'forbidden');
    expectError(await alice.req('GET', `/v1/stores/${s}${q(p)}`), 403, 'forbidden');
  }
  for (const raw of ['?prefix=', '?prefix', '?prefix=%zz', '?prefix=%00', '?prefix=%C3']) {
    expectError(await alice.req('GET', `/v1/stores/${s}/changes${raw}`), 400, 'bad_request');
    expectError(await adminA.req('GET', `/v1/stores/${s}/changes${raw}`), 400, 'bad_request');
  }
  // descriptions count what the token sees
  assert.equal((await adminA.getStore(s)).json.records, 5);
  assert.equal((await alice.getStore(s)).json.records, 2);
  assert.equal((await alice.req('GET', `/v1/stores/${s}${q('users/alice/t/')}`)).json.records, 1);
  assert.equal((await adminB.req('GET', `/v1/stores/${s}${q('a b/')}`)).json.records, 2);
  // listings: every store with any grant, counted in the read set
  const other = await newStore({ x: 1 });
  const listed = (await as(A, 'alice', `${USER(s)} ${other}:read:nothing/`).listStores()).json.stores;
  const byName = Object.fromEntries(listed.map((d) => [d.name, d.records]));
  assert.equal(byName[s], 2);
  assert.equal(byName[other], 0);
  assert.equal(listed.length, 2, JSON.stringify(listed));
});

it('/events: a filtered stream on B gets only its keys from writes through A and zkCli, and ?prefix= narrows it', async () => {
  const s = await newStore({ 'users/alice/0': 0, 'users/bob/0': 0 });
  const scope = `${s}:write:{sub}. ${USER(s)}`;
  const alice = openEvents(B, s, { token: signer.token(scope, { sub: 'alice' }) });
  const bob = openEvents(B, s, { token: signer.token(scope, { sub: 'bob' }) });
  const narrow = openEvents(B, s, { path: `/v1/stores/${s}/events?prefix=${encodeURIComponent('users/alice/n/')}`,
    token: signer.token(scope, { sub: 'alice' }) });
  const admin = openEvents(B, s, { token: signer.token('admin') });
  await Promise.all([alice.opened(), bob.opened(), narrow.opened(), admin.opened()]);
  await alice.waitFor((x) => x.changes.some((c) => c.key === 'users/alice/0'), { what: 'alice snapshot' });
  await adminA.pushOk(s, 'w', [put(1, 'users/bob/1', 'b'), put(2, 'users/alice/n/1', 'a'), put(3, 'users/alice/t/1', 'a')]);
  // foreign writes through ZooKeeper: inside Alice's `alice.` prefix and inside Bob's
  assert.ok((await zkCli(env.zk.connect, 'create', recordZnode(env.root, s, 'alice.zk').path, '{"from":"zk"}')).ok);
  assert.ok((await zkCli(env.zk.connect, 'create', recordZnode(env.root, s, 'bob.zk').path, '{"from":"zk"}')).ok);
  await admin.waitFor((x) => ['alice.zk', 'bob.zk', 'users/alice/t/1'].every((k) => x.changes.some((c) => c.key === k)),
    { ms: 10000, what: 'every change on the admin stream' });
  await alice.waitFor((x) => x.changes.some((c) => c.key === 'alice.zk'), { ms: 10000, what: 'alice.zk on alice' });
  await bob.waitFor((x) => x.changes.some((c) => c.key === 'bob.zk'), { ms: 10000, what: 'bob.zk on bob' });
  await narrow.waitFor((x) => x.changes.some((c) => c.key === 'users/alice/n/1'), { what: 'narrow' });
  await sleep(300);
  assert.deepEqual(keysOf(alice.changes), ['alice.zk', 'users/alice/0', 'users/alice/n/1', 'users/alice/t/1']);
  assert.deepEqual(keysOf(bob.changes), ['bob.zk', 'users/bob/0', 'users/bob/1']);
  assert.deepEqual(keysOf(narrow.changes), ['users/alice/n/1']);
  // a stream wider than the read set is refused, an empty prefix too
  expectError(await request(B.url, 'GET', `/v1/stores/${s}/events?prefix=users%2F`, { token: signer.token(scope, { sub: 'alice' }) }),
    403, 'forbidden');
  expectError(await request(B.url, 'GET', `/v1/stores/${s}/events?prefix=`, { token: signer.token('admin') }), 400, 'bad_request');
  for (const es of [alice, bob, narrow, admin]) es.close();
});

it('{sub} and percent-decoding end to end: a sub with UTF-8 and a slash-free prefix; an encoded {sub} is literal; no sub grants nothing', async () => {
  const s = await newStore();
  const zoe = as(A, 'zoë', `${s}:write:u%2F{sub}%2F`); // u/zoë/
  assert.equal((await zoe.putRecord(s, 'u/zoë/1', 1)).status, 201);
  expectError(await zoe.putRecord(s, 'u/zoe/1', 1), 403, 'forbidden');
  expectError(await zoe.putRecord(s, 'u%2Fzoë%2F1', 1), 403, 'forbidden');
  const lit = as(B, 'alice', `${s}:write:%7Bsub%7D/`); // the literal "{sub}/"
  assert.equal((await lit.putRecord(s, '{sub}/1', 1)).status, 201);
  expectError(await lit.putRecord(s, 'alice/1', 1), 403, 'forbidden');
  const twice = as(A, 'bob', `${s}:write:{sub}/{sub}/`);
  assert.equal((await twice.putRecord(s, 'bob/bob/1', 1)).status, 201);
  expectError(await twice.putRecord(s, 'bob/1', 1), 403, 'forbidden');
  // a token without sub: its {sub} grant grants nothing (403: no grant at all in the store)
  expectError(await as(A, undefined, `${s}:write:users/{sub}/`).putRecord(s, 'users//1', 1), 403, 'forbidden');
  // a broken prefix grants nothing, the other grants stay
  const broken = as(A, 'carl', `${s}:write:%zz ${s}:read:pub/`);
  expectError(await broken.putRecord(s, '%zz', 1), 403, 'forbidden');
  expectError(await broken.push(s, 'carl-1', [put(1, 'pub/1', 1)]), 403, 'forbidden'); // no write grant left
  assert.equal((await broken.getStore(s)).json.records, 0);
});

it('a broad filter (more than 8,192 keys under it) pages through the feed tree and gives the same answer', { timeout: 180000 }, async () => {
  const s = await newStore();
  // 9,000 keys under big/ interleaved with 900 under small/ and 900 under other/
  let id = 0;
  for (let c = 0; c < 9; c++) {
    const muts = [];
    for (let i = 0; i < 1000; i++) {
      muts.push(put(++id, `big/${c}/${i}`, i));
      if (i % 10 === 0) muts.push(put(++id, `small/${c}/${i}`, i), put(++id, `other/${c}/${i}`, i));
    }
    for (let k = 0; k < muts.length; k += 1000) await adminA.pushPaced(s, 'bulk', muts.slice(k, k + 1000)); // 10,800 puts: past the default budget's burst
  }
  const cur0 = await adminA.getCursor(s);
  const big = await pullAll(adminB, s, { prefix: 'big/', limit: 2000 });
  assert.equal(big.changes.length, 9000);
  assert.ok(big.changes.every((c) => c.key.startsWith('big/')));
  assert.equal(new Set(big.changes.map((c) => c.key)).size, 9000);
  const tok = as(B, 'u', `${s}:read:big/ ${s}:read:small/`);
  const both = await pullAll(tok, s, { limit: 5000 });
  assert.equal(both.changes.length, 9900);
  assert.equal((await tok.getStore(s)).json.records, 9900);
  // incremental, through the broad path: only the matching changes after the cursor
  await adminA.pushOk(s, 'bulk', [put(++id, 'big/0/0', 'x'), put(++id, 'other/0/0', 'x'), del(++id, 'small/0/0')]);
  const inc = await pullAll(tok, s, { since: cur0 });
  assert.deepEqual(inc.changes.map((c) => `${c.key}${c.deleted ? ' deleted' : ''}`).sort(), ['big/0/0', 'small/0/0 deleted']);
});

it("streams are registered by prefix: writes to one user's prefix wake that user's stream, not the others", { timeout: 60000 }, async () => {
  const C = await startGateway({ zk: env.zk.connect, root: env.root, args: signer.args, name: 'C' });
  try {
    const s = await newStore({ 'users/alice/0': 0, 'users/bob/0': 0, 'users/carl/0': 0, 'users/dora/0': 0 });
    const open = (sub) => openEvents(C, s, { token: signer.token(USER(s), { sub }) });
    const [alice, ...others] = ['alice', 'bob', 'carl', 'dora'].map(open);
    for (const es of [alice, ...others]) {
      await es.opened();
      await es.waitFor((x) => x.changes.length === 1, { what: 'the snapshot' });
    }
    const wakes = async () => (await getMetrics(C)).get('zoosync_event_stream_wakes_total');
    const w0 = await wakes();
    assert.equal(typeof w0, 'number');
    for (let i = 1; i <= 20; i++) await adminA.pushOk(s, 'w', [put(i, `users/alice/${i}`, i)]);
    await alice.waitFor((x) => x.changes.length === 21, { ms: 10000, what: "alice's 20 changes" });
    await sleep(200);
    const spent = (await wakes()) - w0;
    console.log(`# 20 changes of one user, 4 filtered streams open: ${spent} stream wakes (80 if every stream were woken)`);
    // each change wakes alice's stream once; waking every stream would be 80
    assert.ok(spent >= 1 && spent <= 24, `wakes for 20 changes of one user with 4 streams open: ${spent}`);
    for (const es of others) assert.equal(es.changes.length, 1, 'nothing sent to the others');
    await adminA.pushOk(s, 'w', [put(21, 'users/bob/1', 1)]);
    await others[0].waitFor((x) => x.changes.length === 2, { ms: 10000, what: "bob's change" });
    for (const es of [alice, ...others]) es.close();
  } finally {
    await C.stop();
  }
});

it('a record PUT outside the write set is 403 before its body is read', async () => {
  const s = await newStore();
  const tok = signer.token(USER(s), { sub: 'alice' });
  const head = (key) => `PUT /v1/stores/${s}/records/${encodeURIComponent(key)} HTTP/1.1\r\nHost: 127.0.0.1:${A.port}\r\n` +
    `Content-Type: application/json\r\nContent-Length: 1000000\r\nAuthorization: Bearer ${tok}\r\n\r\n`;
  const h = holdSocket(A.port, head('users/bob/1'));
  try {
    for (let i = 0; i < 40 && !h.response().status; i++) await sleep(50);
    assert.equal(h.response().status, 403, h.response().text.slice(0, 300));
  } finally { h.destroy(); }
  // inside the write set the gateway waits for the body (no early answer)
  const h2 = holdSocket(A.port, head('users/alice/1'));
  try {
    await sleep(500);
    assert.ok(!h2.response().status, h2.response().text.slice(0, 300));
  } finally { h2.destroy(); }
});
