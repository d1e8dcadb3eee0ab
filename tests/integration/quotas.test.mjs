// Store quotas (maxRecords, maxBytes) and the `rejected` push outcome they
// produce (PROTOCOL.md "Quotas", "rejected"): remembered for exactly-once on
// every gateway, a group rejected whole, records PUT 413, deletes always
// pass, concurrent pushes on one gateway never overshoot.
import assert from 'node:assert/strict';
import net from 'node:net';
import { before } from 'node:test';
import { setupEnv, it, startGateway, uniq, zkCli, clientZnode, sleep } from '../lib/harness.mjs';
import { Api, expectError, getMetrics } from '../lib/http.mjs';
import { put, del, outcomes, liveValues as live } from '../lib/records.mjs';
import { gatewayPair, freshStore } from '../lib/fixtures.mjs';

const env = setupEnv();
let A, B, a, b;

before(async () => {
  ({ A, B, a, b } = await gatewayPair(env));
});

const newStore = (body) => freshStore(a, { prefix: 'q', body });

it('quotas in the store config: set, shown, removed with null; bad values are 400 and change nothing', async () => {
  const s = await newStore({ maxRecords: 3, maxBytes: 1000 });
  let d = (await a.getStore(s)).json;
  assert.equal(d.maxRecords, 3);
  assert.equal(d.maxBytes, 1000);
  for (const bad of [{ maxRecords: 0 }, { maxRecords: -1 }, { maxRecords: '3' }, { maxRecords: 1.5 }, { maxBytes: 1e16 },
    { maxBytes: true }, { maxBytes: {} }]) {
    expectError(await a.putStore(s, bad), 400, 'bad_request', { messageMatch: /max(Records|Bytes)/ });
  }
  d = (await b.getStore(s)).json;
  assert.equal(d.maxRecords, 3, 'unchanged after refused PUTs');
  assert.equal(d.maxBytes, 1000);
  assert.equal((await a.putStore(s, { maxRecords: null })).status, 200);
  d = (await a.getStore(s)).json;
  assert.ok(!('maxRecords' in d), `maxRecords removed: ${JSON.stringify(d)}`);
  assert.equal(d.maxBytes, 1000, 'the other quota stays');
  const plain = (await a.getStore(await newStore())).json;
  assert.ok(!('maxRecords' in plain) && !('maxBytes' in plain), 'no quota unless set');
});

it('maxRecords: past it a push mutation is rejected (quota_exceeded), lastMutationId moves on, a retry answers the same on either gateway', async () => {
  const s = await newStore({ maxRecords: 3 });
  const muts = [put(1, 'a', 1), put(2, 'b', 2), put(3, 'c', 3), put(4, 'd', 4), put(5, 'a', 10), put(6, 'e', 5)];
  const r = await a.pushOk(s, 'c1', muts);
  assert.deepEqual(outcomes(r), ['applied', 'applied', 'applied', 'rejected:quota_exceeded', 'applied', 'rejected:quota_exceeded'],
    'a new key at the quota is rejected; replacing an existing key passes');
  assert.equal(r.lastMutationId, 6);
  assert.deepEqual([...(await live(a, s))].sort(), [['a', 10], ['b', 2], ['c', 3]]);
  for (const api of [a, b]) {
    const again = await api.pushOk(s, 'c1', muts);
    assert.deepEqual(outcomes(again), ['duplicate', 'duplicate', 'duplicate', 'rejected:quota_exceeded', 'duplicate', 'rejected:quota_exceeded'],
      `retry through ${api === a ? 'A' : 'B'}`);
    assert.equal(again.lastMutationId, 6);
  }
  // The memory is in ZooKeeper's client node, for every gateway.
  const got = await zkCli(env.zk.connect, 'get', clientZnode(env.root, s, 'c1'));
  assert.match(got.stdout, /"rejected":\[\[4,"quota_exceeded"\],\[6,"quota_exceeded"\]\]/, got.stdout);
  // ... and in "aborted" too: a gateway older than rejections (rolling upgrade, rollback) then
  // answers them "conflict", never "duplicate" (which a client would take as applied).
  assert.match(got.stdout, /"aborted":\[4,6\]/, got.stdout);
  // Room made by a delete is usable; a delete always passes.
  const r2 = await a.pushOk(s, 'c1', [del(7, 'b'), put(8, 'd', 4), put(9, 'f', 6), del(10, 'zz')]);
  assert.deepEqual(outcomes(r2), ['applied', 'applied', 'rejected:quota_exceeded', 'applied']);
  assert.deepEqual([...(await live(b, s))].sort(), [['a', 10], ['c', 3], ['d', 4]]);
  assert.equal((await a.getStore(s)).json.records, 3);
});

it('maxBytes counts keys plus compact values: growth past it is rejected, same-size and smaller replacements pass', async () => {
  const s = await newStore({ maxBytes: 40 });
  // 'k1' + '"0123456789"' = 2 + 12 = 14 bytes; spaces in the request do not count (compact).
  const r = await a.pushOk(s, 'c1', [put(1, 'k1', '0123456789'), put(2, 'k2', '0123456789')]);
  assert.deepEqual(outcomes(r), ['applied', 'applied']); // 28
  const r2 = await a.pushOk(s, 'c1', [
    put(3, 'k3', '0123456789'),          // 42 > 40: rejected
    put(4, 'k1', 'abcdefghij'),          // same size: passes
    put(5, 'k2', 'abcdefghijklmn'),      // +4 = 32: passes
    put(6, 'k1', 'abcdefghijklmnopqrs'), // +9 = 41: rejected
    put(7, 'k1', 'x'),                   // smaller: passes (23)
    put(8, 'k3', { a: [1, 2] }),         // 'k3' + '{"a":[1,2]}' = 13 -> 36: passes
  ]);
  assert.deepEqual(outcomes(r2), ['rejected:quota_exceeded', 'applied', 'applied', 'rejected:quota_exceeded', 'applied', 'applied']);
  assert.deepEqual(Object.fromEntries(await live(a, s)), { k1: 'x', k2: 'abcdefghijklmn', k3: { a: [1, 2] } });
});

it('a tx group with a member past a quota is rejected whole: that member quota_exceeded, the others tx_aborted, nothing written', async () => {
  const s = await newStore({ maxRecords: 2 });
  await a.pushOk(s, 'c1', [put(1, 'x', 1)]);
  const c0 = (await a.changesOk(s, {})).cursor;
  const r = await a.pushOk(s, 'c1', [
    put(2, 'g1', 1, { tx: 't' }), put(3, 'g2', 2, { tx: 't' }), put(4, 'x', 5, { tx: 't' }),
    put(5, 'y', 1),
  ]);
  assert.deepEqual(outcomes(r), ['rejected:tx_aborted', 'rejected:quota_exceeded', 'rejected:tx_aborted', 'applied'],
    'the group goes whole; the mutation after it sees the store without it');
  assert.deepEqual((await a.changesOk(s, { since: c0 })).changes.map((c) => c.key), ['y']);
  // A group that both conflicts and passes a quota is rejected (rejection outranks the conflict).
  const r2 = await a.pushOk(s, 'c1', [put(6, 'x', 9, { tx: 'u', base: 7 }), put(7, 'z', 1, { tx: 'u' })]);
  assert.deepEqual(outcomes(r2), ['rejected:tx_aborted', 'rejected:quota_exceeded']);
  // ... and retried through B, the same.
  const again = await b.pushOk(s, 'c1', [put(2, 'g1', 1, { tx: 't' }), put(3, 'g2', 2, { tx: 't' }), put(4, 'x', 5, { tx: 't' }),
    put(5, 'y', 1), put(6, 'x', 9, { tx: 'u', base: 7 }), put(7, 'z', 1, { tx: 'u' })]);
  assert.deepEqual(outcomes(again), ['rejected:tx_aborted', 'rejected:quota_exceeded', 'rejected:tx_aborted', 'duplicate',
    'rejected:tx_aborted', 'rejected:quota_exceeded']);
  // A group that only conflicts still conflicts.
  const r3 = await a.pushOk(s, 'c1', [put(8, 'x', 9, { tx: 'v', base: 7 }), put(9, 'y', 2, { tx: 'v' })]);
  assert.deepEqual(outcomes(r3), ['conflict', 'conflict']);
  assert.equal(r3.results[1].reason, 'tx_aborted');
});

it('records PUT past a quota is 413 quota_exceeded naming it; replacing within it passes; nothing changes on refusal', async () => {
  const s = await newStore({ maxRecords: 1, maxBytes: 30 });
  assert.equal((await a.putRecord(s, 'one', 'v')).status, 201);
  expectError(await a.putRecord(s, 'two', 'v'), 413, 'quota_exceeded', { messageMatch: /maxRecords \(1\)/ });
  assert.equal((await a.getRecord(s, 'two')).status, 404);
  assert.equal((await a.putRecord(s, 'one', 'w')).status, 200, 'replacing at the record quota passes');
  expectError(await a.putRecord(s, 'one', 'x'.repeat(40)), 413, 'quota_exceeded', { messageMatch: /maxBytes \(30\)/ });
  assert.equal((await a.getRecord(s, 'one')).json.value, 'w');
  assert.equal((await a.deleteRecord(s, 'one')).status, 204);
  assert.equal((await a.putRecord(s, 'two', 'v')).status, 201, 'room after a delete');
  // Through B too (its own mirror).
  expectError(await b.putRecord(s, 'three', 'v'), 413, 'quota_exceeded');
});

it('concurrent pushes through one gateway never take the store past maxRecords', { timeout: 60000 }, async () => {
  const N = 25;
  const s = await newStore({ maxRecords: N });
  const clients = 10, per = 8;
  const rs = await Promise.all(Array.from({ length: clients }, (_, c) =>
    a.pushOk(s, `cc${c}`, Array.from({ length: per }, (_, i) => put(i + 1, `c${c}-${i}`, i)))));
  const applied = rs.flatMap((r) => r.results).filter((x) => x.status === 'applied').length;
  const rejected = rs.flatMap((r) => r.results).filter((x) => x.status === 'rejected').length;
  assert.equal(applied, N, `exactly the quota applied (${applied} applied, ${rejected} rejected)`);
  assert.equal(applied + rejected, clients * per);
  assert.equal((await live(a, s)).size, N);
  const m = await getMetrics(A);
  assert.ok(m.get('zoosync_push_mutations_total', { outcome: 'rejected' }) >= rejected, 'rejections counted in the metrics');
});

it('through two gateways at once a store passes maxRecords by at most one multi of the other gateway', { timeout: 60000 }, async () => {
  const N = 20, per = 5;
  const s = await newStore({ maxRecords: N });
  const rs = await Promise.all(Array.from({ length: 8 }, (_, c) =>
    (c % 2 ? a : b).pushOk(s, `cc${c}`, Array.from({ length: per }, (_, i) => put(i + 1, `c${c}-${i}`, i)))));
  const applied = rs.flatMap((r) => r.results).filter((x) => x.status === 'applied').length;
  const n = (await live(a, s)).size;
  assert.equal(n, applied);
  assert.ok(n >= N && n <= N + per, `${n} live records for a quota of ${N}`);
});

// A TCP proxy to ZooKeeper that can hold back server->client bytes of the
// connection that sent an addWatch (the gateway's mirror session).
function zkProxy(target) {
  const [host, port] = target.split(',')[0].split(':');
  const conns = [];
  const server = net.createServer((c) => {
    const up = net.connect(Number(port), host);
    const st = { c, up, mirror: false, held: [], hold: false, inbuf: Buffer.alloc(0), first: true };
    conns.push(st);
    c.on('data', (d) => {
      up.write(d);
      st.inbuf = Buffer.concat([st.inbuf, d]);
      while (st.inbuf.length >= 4) {
        const len = st.inbuf.readInt32BE(0);
        if (st.inbuf.length < 4 + len) break;
        if (!st.first && len >= 8 && st.inbuf.readInt32BE(8) === 106) st.mirror = true;
        st.first = false;
        st.inbuf = st.inbuf.subarray(4 + len);
      }
    });
    up.on('data', (d) => { if (st.hold && st.mirror) st.held.push(d); else c.write(d); });
    const end = () => { c.destroy(); up.destroy(); };
    c.on('error', end); up.on('error', end); c.on('close', end); up.on('close', end);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    connect: `127.0.0.1:${server.address().port}`,
    hold() { for (const s of conns) s.hold = true; },
    release() { for (const s of conns) { s.hold = false; for (const d of s.held) s.c.write(d); s.held = []; } },
    mirrors() { return conns.filter((s) => s.mirror && !s.c.destroyed).length; },
    close() { for (const s of conns) { s.c.destroy(); s.up.destroy(); } server.close(); },
  })));
}

it('a mirror that lags: a push to a store with a quota first catches it up, so the other gateway\'s committed writes count', { timeout: 120000 }, async () => {
  // Found by review: B's mirror held back for 2 s let B apply 10 records past a quota of 10 that A had filled.
  const proxy = await zkProxy(env.zk.connect);
  const A2 = await startGateway({ zk: env.zk.connect, root: env.root, name: 'qa' });
  const B2 = await startGateway({ zk: proxy.connect, root: env.root, name: 'qb' });
  try {
    const a2 = new Api(A2), b2 = new Api(B2);
    const s = uniq('lag');
    await a2.createStore(s, { maxRecords: 10 });
    assert.equal((await b2.getStore(s)).status, 200); // B's mirror loaded
    await b2.pushOk(s, 'warm', []);
    assert.ok(proxy.mirrors() >= 1, 'found the mirror connection');
    proxy.hold(); // B's mirror stops hearing from ZooKeeper (well within the session timeout)
    for (let i = 0; i < 10; i++) assert.equal(outcomes(await a2.pushOk(s, 'ca', [put(i + 1, `a${i}`, i)]))[0], 'applied');
    const pending = Array.from({ length: 3 }, (_, i) => b2.push(s, `cb${i}`, [put(1, `b${i}`, i)]));
    await sleep(1500);
    proxy.release();
    const rs = [];
    for (const p of pending) rs.push(await p);
    for (const r of rs) assert.ok(r.status === 200 || r.status === 503, `${r.status} ${r.text.slice(0, 200)}`);
    await sleep(300);
    const n = (await a2.getStore(s)).json.records;
    assert.equal(n, 10, `maxRecords 10 filled by A, then B: ${n} live records (${rs.map((r) => r.text).join(' ')})`);
  } finally {
    proxy.release();
    await B2.stop();
    await A2.stop();
    proxy.close();
  }
});

it('a push judged under a config its gateway has not seen change yet is judged again under the new one (every multi checks the config version)', { timeout: 120000 }, async () => {
  // B's mirror is held back while A gives the store a schema: B's push is judged first under
  // the old config (no schema); its multi fails on the config's version, and B judges it again.
  const proxy = await zkProxy(env.zk.connect);
  const A2 = await startGateway({ zk: env.zk.connect, root: env.root, name: 'cfa' });
  const B2 = await startGateway({ zk: proxy.connect, root: env.root, name: 'cfb' });
  try {
    const a2 = new Api(A2), b2 = new Api(B2);
    const s = uniq('cfg');
    await a2.createStore(s);
    assert.equal((await b2.getStore(s)).status, 200);
    await b2.pushOk(s, 'warm', []);
    assert.ok(proxy.mirrors() >= 1, 'found the mirror connection');
    proxy.hold();
    const put2 = await a2.putStore(s, { schema: { type: 'object', required: ['title'] } });
    assert.equal(put2.status, 200, put2.text);
    const r = await b2.pushOk(s, 'cb', [put(1, 'bad', { nope: 1 }), put(2, 'good', { title: 'x' })]);
    proxy.release();
    assert.deepEqual(outcomes(r), ['rejected:invalid_value', 'applied'], JSON.stringify(r));
    assert.equal((await a2.getRecord(s, 'bad')).status, 404, 'the invalid value was never written');
  } finally {
    proxy.release();
    await B2.stop();
    await A2.stop();
    proxy.close();
  }
});
