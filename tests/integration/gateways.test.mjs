// Two gateways on one ZooKeeper and root: what one writes the other reads
// (records and changes), cursors are portable, CAS holds across gateways.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it, startGateway } from '../lib/harness.mjs';
import { Api, expectError, byKey, eventually } from '../lib/http.mjs';
import { gatewayPair, sharedStore as sharedStoreOn } from '../lib/fixtures.mjs';

const env = setupEnv();
let A, B, a, b;

before(async () => {
  ({ A, B, a, b } = await gatewayPair(env, { parallel: true }));
});

/** Creates a store on A and waits until B knows it (503 while loading is allowed, briefly). */
const sharedStore = (body) => sharedStoreOn(a, b, { prefix: 'gw', body, otherName: 'B' });

it('a store created on one gateway is described the same by the other', async () => {
  const s = await sharedStore({ conflict: 'lww', maxValueBytes: 1234, tombstoneTtlSeconds: 99 });
  const da = (await a.getStore(s)).json;
  const db = (await b.getStore(s)).json;
  assert.deepEqual({ ...db, cursor: undefined }, { ...da, cursor: undefined });
  assert.equal(db.conflict, 'lww');
  assert.equal(db.maxValueBytes, 1234);
  // Configuration changes made through A govern pushes through B.
  assert.equal((await a.putStore(s, { conflict: 'cas', maxValueBytes: 20 })).status, 200);
  await eventually(async () => (await b.getStore(s)).json.conflict === 'cas', { what: 'B sees the new conflict mode' });
  await a.pushOk(s, 'c', [{ id: 1, key: 'k', op: 'put', value: 1 }]);
  const r = await b.pushOk(s, 'c2', [{ id: 1, key: 'k', op: 'put', value: 2, base: 5 }]);
  assert.equal(r.results[0].status, 'conflict', 'cas set on A applies on B');
  await eventually(async () => (await b.getStore(s)).json.maxValueBytes === 20, { what: 'B sees the new maxValueBytes' });
  expectError(await b.push(s, 'c2', [{ id: 2, key: 'k', op: 'put', value: 'x'.repeat(30) }]), 413, 'value_too_large');
});

it('a push through A is read through B: changes at once, records GET', async () => {
  const s = await sharedStore();
  const c0 = await b.getCursor(s);
  const r = await a.pushOk(s, 'c', [
    { id: 1, key: 'x', op: 'put', value: { v: 1 } },
    { id: 2, key: 'y/z', op: 'put', value: [1, 2], tx: 't' },
    { id: 3, key: 'w', op: 'put', value: 'w', tx: 't' },
  ]);
  // Linearizable pulls: no waiting allowed.
  const ch = byKey((await b.changesOk(s, { since: c0 })).changes);
  assert.deepEqual([...ch.keys()].sort(), ['w', 'x', 'y/z']);
  r.results.forEach((res, i) => assert.equal(ch.get(['x', 'y/z', 'w'][i]).cursor, res.cursor));
  assert.deepEqual((await b.changesOk(s, { since: r.cursor })).changes, []);
  const g = await eventually(async () => { const x = await b.getRecord(s, 'y/z'); return x.status === 200 && x; }, { what: 'record on B' });
  assert.deepEqual(g.json, { key: 'y/z', value: [1, 2], version: 1, cursor: r.results[1].cursor });
  assert.equal(g.headers.etag, '"1"');
});

it('REST writes through B are read through A; If-Match with a version learned from A', async () => {
  const s = await sharedStore();
  const p = await b.putRecord(s, 'doc', 'first');
  assert.equal(p.status, 201);
  const ga = await eventually(async () => { const x = await a.getRecord(s, 'doc'); return x.status === 200 && x; }, { what: 'record on A' });
  assert.equal(ga.json.version, 1);
  const p2 = await b.putRecord(s, 'doc', 'second', { 'If-Match': ga.headers.etag });
  assert.equal(p2.status, 200, p2.text);
  expectError(await a.putRecord(s, 'doc', 'third', { 'If-Match': ga.headers.etag }), 412, 'precondition_failed');
  assert.equal((await a.deleteRecord(s, 'doc', { 'If-Match': '"2"' })).status, 204);
  const ch = await b.changesOk(s, { since: p2.json.cursor });
  assert.deepEqual(ch.changes.map((c) => [c.key, c.deleted, c.version]), [['doc', true, 3]]);
  await eventually(async () => (await b.getRecord(s, 'doc')).status === 404, { what: 'delete visible on B' });
  expectError(await b.getRecord(s, 'doc'), 404, 'not_found');
});

it('cursors from one gateway work on the other, in both directions', async () => {
  const s = await sharedStore();
  const r1 = await a.pushOk(s, 'c', [{ id: 1, key: 'a', op: 'put', value: 1 }, { id: 2, key: 'b', op: 'put', value: 2 }]);
  const r2 = await b.pushOk(s, 'c', [{ id: 3, key: 'c', op: 'put', value: 3 }, { id: 4, key: 'a', op: 'delete' }]);
  for (const [x, y] of [[a, b], [b, a]]) {
    const page = await x.changesOk(s, { since: r1.results[0].cursor });
    const same = await y.changesOk(s, { since: r1.results[0].cursor });
    assert.deepEqual(same, page);
    assert.deepEqual(page.changes.map((c) => c.key).sort(), ['a', 'b', 'c']);
    assert.deepEqual((await y.changesOk(s, { since: page.cursor })).changes, []);
    assert.deepEqual((await y.changesOk(s, { since: r2.cursor })).changes, []);
    assert.deepEqual((await y.changesOk(s, { since: r1.cursor })).changes.map((c) => c.key).sort(), ['a', 'c']);
  }
});

it('exactly-once state is shared: a client may switch gateways between pushes', async () => {
  const s = await sharedStore();
  const r1 = await a.pushOk(s, 'roam', [{ id: 1, key: 'k', op: 'put', value: 1 }]);
  assert.equal(r1.results[0].status, 'applied');
  const r2 = await b.pushOk(s, 'roam', [{ id: 1, key: 'k', op: 'put', value: 1 }, { id: 2, key: 'k', op: 'put', value: 2 }]);
  assert.deepEqual(r2.results.map((x) => x.status), ['duplicate', 'applied']);
  assert.equal(r2.results[1].version, 2);
  const r3 = await a.pushOk(s, 'roam', []);
  assert.equal(r3.lastMutationId, 2);
});

it('concurrent create-only pushes on two gateways: exactly one wins', async () => {
  const s = await sharedStore();
  for (let round = 0; round < 10; round++) {
    const key = `race${round}`;
    const [ra, rb] = await Promise.all([
      a.pushOk(s, `ca${round}`, [{ id: 1, key, op: 'put', value: 'A', base: 0 }]),
      b.pushOk(s, `cb${round}`, [{ id: 1, key, op: 'put', value: 'B', base: 0 }]),
    ]);
    const st = [ra.results[0].status, rb.results[0].status].sort();
    assert.deepEqual(st, ['applied', 'conflict'], `round ${round}: ${JSON.stringify([ra, rb])}`);
    const winner = ra.results[0].status === 'applied' ? 'A' : 'B';
    const loser = winner === 'A' ? rb : ra;
    assert.deepEqual(loser.results[0].current, { value: winner, version: 1 });
    const ch = byKey((await a.changesOk(s)).changes);
    assert.equal(ch.get(key).value, winner);
    assert.equal(ch.get(key).version, 1);
  }
});

it('concurrent unconditional pushes on two gateways: every one counted once', async () => {
  const s = await sharedStore({ conflict: 'lww' });
  const N = 20;
  await Promise.all([a, b].map(async (api, w) => {
    for (let i = 1; i <= N; i++) {
      const muts = [{ id: 3 * i, key: 'hot', op: 'put', value: `${w}-${i}` }];
      if (i % 2 === 0) {
        muts.push({ id: 3 * i + 1, key: `own${w}`, op: 'put', value: i, tx: 't' }, { id: 3 * i + 2, key: 'hot', op: 'put', value: `${w}-${i}-tx`, tx: 't' });
      }
      const r = await api.pushOk(s, `w${w}`, muts);
      assert.ok(r.results.every((x) => x.status === 'applied'), JSON.stringify(r));
    }
  }));
  const hot = (await a.changesOk(s)).changes.find((c) => c.key === 'hot');
  assert.equal(hot.version, 2 * N + N, 'each of the 3N puts to "hot" counted exactly once');
  const onB = byKey((await b.changesOk(s)).changes);
  assert.equal(onB.get('hot').version, 3 * N);
  for (const w of [0, 1]) assert.equal(onB.get(`own${w}`).version, N / 2);
});

it('a store deleted through A is gone on B', async () => {
  const s = await sharedStore();
  await b.pushOk(s, 'c', [{ id: 1, key: 'k', op: 'put', value: 1 }]);
  assert.equal((await a.deleteStore(s)).status, 204);
  await eventually(async () => (await b.getStore(s)).status === 404, { what: 'B forgets the store' });
  expectError(await b.getStore(s), 404, 'store_not_found');
  expectError(await b.push(s, 'c', [{ id: 2, key: 'k', op: 'put', value: 2 }]), 404, 'store_not_found');
  expectError(await b.changes(s), 404, 'store_not_found');
});

it('SIGTERM stops a gateway gracefully (exit 0); the other keeps serving', async () => {
  const C = await startGateway({ zk: env.zk.connect, root: env.root, name: 'C' });
  const s = await sharedStore();
  const c = new Api(C);
  await c.pushOk(s, 'cc', [{ id: 1, key: 'k', op: 'put', value: 'c' }]);
  const r = await C.stop();
  assert.equal(r.termTimedOut, false, 'did not exit within 5 s of SIGTERM');
  assert.equal(r.signal, null, `killed by ${r.signal}`);
  assert.equal(r.code, 0, `exit code ${r.code} (see ${C.log})`);
  const g = await eventually(async () => { const x = await a.getRecord(s, 'k'); return x.status === 200 && x; }, { what: 'record on A' });
  assert.equal(g.json.value, 'c');
  assert.equal((await b.pushOk(s, 'cc', [{ id: 2, key: 'k', op: 'put', value: 'b' }])).results[0].version, 2);
});
