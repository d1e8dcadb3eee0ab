// Client v1.1, the local side (no network): range reads and count in the
// server's key order, tombstones left out, partial replication's local
// rule (writes outside the prefix are forbidden), the v1 → v2 IndexedDB
// upgrade, sync({timeoutMs}) and destroy() between two instances.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { open, closeAll, dbName, openSyncDB, collect, until, rawRows, sleep } from './helpers.mjs';
import { compareKeys, orderKey } from '../../client/zoosync.js';

after(closeAll);

const utf8Order = (a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
const keysOf = (rows) => rows.map((r) => r.key);

/** Records every key range the by_order index is asked for (the proof that no read scans the store). */
function spyIndex() {
  const calls = [];
  const proto = globalThis.IDBIndex.prototype;
  const saved = {};
  for (const m of ['getAll', 'count', 'openCursor']) {
    saved[m] = proto[m];
    proto[m] = function (range, ...rest) { if (this.name === 'by_order') calls.push({ m, range }); return saved[m].call(this, range, ...rest); };
  }
  calls.restore = () => { for (const m of Object.keys(saved)) proto[m] = saved[m]; };
  return calls;
}

// Keys where UTF-16 code-unit order (IndexedDB's) and UTF-8 byte order (the server's) disagree:
// U+E000..U+FFFF sort after U+10000.. in UTF-16, before them in UTF-8.
const TRICKY = ['a', 'a/1', 'a/2', 'ab', 'a\ue000', 'a\uffff', 'a\u{10000}', 'a\u{1f600}x', 'a\u{1f600}\uffff', 'a\uffff\u{10000}',
  'b', 'z\u{10ffff}', 'z\ufffd', '\u{1f600}', '\uff01', 'é', 'e'];

test('getAll and count follow the server\'s byte order, by key range, without tombstones', async () => {
  const db = await open({ name: dbName('rg'), stores: ['s', 't'] });
  for (const k of TRICKY) await db.put('s', k, k);
  await db.put('t', 'a/9', 'other store');
  await db.put('s', 'gone', 1);
  await db.delete('s', 'gone');           // a tombstone (its delete is pending)
  await db.put('s', 'a/3', 1);
  await db.delete('s', 'a/3');
  const sorted = [...TRICKY].sort(utf8Order);
  assert.deepEqual(keysOf(await db.getAll('s')), sorted, 'the whole store, in UTF-8 byte order');
  assert.deepEqual([...TRICKY].sort(compareKeys), sorted, 'compareKeys is the byte order');
  assert.equal(await db.count('s'), TRICKY.length, 'tombstones are not counted');
  // Prefixes.
  const pre = (p) => sorted.filter((k) => k.startsWith(p));
  for (const p of ['a', 'a/', 'a\u{1f600}', 'a\uffff', 'z', '\u{1f600}', 'nothing', 'a\ue000']) {
    assert.deepEqual(keysOf(await db.getAll('s', { prefix: p })), pre(p), `prefix ${JSON.stringify(p)}`);
    assert.equal(await db.count('s', { prefix: p }), pre(p).length, `count prefix ${JSON.stringify(p)}`);
    assert.deepEqual(keysOf(await db.getAll('s', { prefix: p, reverse: true })), pre(p).reverse(), `reverse prefix ${JSON.stringify(p)}`);
  }
  assert.deepEqual(keysOf(await db.getAll('s', { prefix: 'a/' })), ['a/1', 'a/2'], 'the tombstone a/3 is not returned');
  // [start, end) in byte order, across the region where the orders differ.
  const between = (s, e) => sorted.filter((k) => (s === undefined || utf8Order(k, s) >= 0) && (e === undefined || utf8Order(k, e) < 0));
  const bounds = [['a', 'b'], ['a\ue000', 'a\u{10000}'], ['a\uffff', 'a\u{1f600}'], ['a\u{10000}', undefined], [undefined, 'a\uffff'],
    ['z', '\u{10ffff}'], ['b', 'a'], ['\uff01', '\u{1f600}'], ['a\u{1f600}', 'a\u{1f601}']];
  for (const [s, e] of bounds) {
    const q = { ...(s !== undefined ? { start: s } : {}), ...(e !== undefined ? { end: e } : {}) };
    assert.deepEqual(keysOf(await db.getAll('s', q)), between(s, e), `range ${JSON.stringify(q)}`);
    assert.equal(await db.count('s', q), between(s, e).length, `count ${JSON.stringify(q)}`);
  }
  // limit and reverse pick the first / last ones in byte order.
  assert.deepEqual(keysOf(await db.getAll('s', { prefix: 'a', limit: 3, reverse: true })), pre('a').reverse().slice(0, 3));
  assert.deepEqual(keysOf(await db.getAll('s', { prefix: 'a\u{1f600}', limit: 1 })), ['a\u{1f600}x']);
  assert.deepEqual(keysOf(await db.getAll('s', { start: 'a\ue000', limit: 2 })), ['a\ue000', 'a\uffff']);
  assert.deepEqual(await db.getAll('s', { limit: 0 }), []);
  assert.equal(await db.count('s', { prefix: 'a', limit: 2 }), 2);
  // prefix and start/end together: their intersection.
  assert.deepEqual(keysOf(await db.getAll('s', { prefix: 'a', start: 'a\uffff', end: 'a\u{1f600}\uffff' })), between('a\uffff', 'a\u{1f600}\uffff'));
  // Values come back; other stores never.
  assert.deepEqual(await db.getAll('s', { prefix: 'a/' }), [{ key: 'a/1', value: 'a/1' }, { key: 'a/2', value: 'a/2' }]);
  assert.deepEqual(await db.getAll('t'), [{ key: 'a/9', value: 'other store' }]);
});

test('range reads go through one key range of the index, never the whole store', async () => {
  const db = await open({ name: dbName('rk'), stores: ['s'] });
  for (let i = 0; i < 50; i++) await db.put('s', `u/${i % 5}/n${i}`, i);
  const calls = spyIndex();
  try {
    assert.equal((await db.getAll('s', { prefix: 'u/3/' })).length, 10);
    assert.equal(await db.count('s', { prefix: 'u/3/' }), 10);
    assert.equal((await db.getAll('s', { prefix: 'u/3/', reverse: true, limit: 2 })).length, 2);
  } finally { calls.restore(); }
  assert.equal(calls.length, 3);
  for (const c of calls) {
    assert.ok(c.range, `${c.m} has a key range`);
    assert.deepEqual(c.range.lower, ['s', 'u/3/']);
    assert.deepEqual(c.range.upper, ['s', 'u/30']);
    assert.equal(c.range.upperOpen, true);
  }
});

test('range queries are validated', async () => {
  const db = await open({ name: dbName('rv'), stores: ['s'] });
  for (const q of [{ limit: -1 }, { limit: 1.5 }, { prefix: 3 }, { start: 'x\ud800' }, { reverse: 'yes' }, { bogus: 1 }, null]) {
    await assert.rejects(db.getAll('s', q), (e) => e.code === 'bad_request', JSON.stringify(q));
    await assert.rejects(db.count('s', q), (e) => e.code === 'bad_request', JSON.stringify(q));
  }
  await assert.rejects(db.getAll('nope', {}), (e) => e.code === 'store_not_found');
});

test('orderKey is a bijection that keeps prefixes and sorts as UTF-8', () => {
  const ks = [...TRICKY, '\ud7ff', '\ue000', '\u{10000}', '\u{10ffff}', '\uffff'];
  const byOrder = [...ks].sort((a, b) => (orderKey(a) < orderKey(b) ? -1 : orderKey(a) > orderKey(b) ? 1 : 0));
  assert.deepEqual(byOrder, [...ks].sort(utf8Order));
  assert.equal(new Set(ks.map(orderKey)).size, ks.length);
  for (const a of ks) for (const b of ks) assert.equal(a.startsWith(b), orderKey(a).startsWith(orderKey(b)));
  assert.equal(orderKey('plain ascii/é'), 'plain ascii/é');
});

test('partial replication: a local write outside the prefix rejects with forbidden and writes nothing', async () => {
  const name = dbName('pr');
  const db = await open({ name, stores: ['todos', { name: 'notes', prefix: 'users/alice/' }] });
  assert.deepEqual(db.stores, ['todos', 'notes']);
  await db.put('notes', 'users/alice/1', 'mine');
  await db.put('todos', 'anything', 1); // a whole store
  for (const fn of [
    () => db.put('notes', 'users/bob/1', 'x'),
    () => db.put('notes', 'users/alice', 'x'), // the prefix itself is not inside it
    () => db.delete('notes', 'users/bob/1'),
    () => db.transaction(async (tx) => { await tx.put('notes', 'users/alice/2', 1); await tx.put('notes', 'other', 1); }),
    () => db.transaction(async (tx) => { await tx.delete('notes', 'x'); }),
  ]) {
    await assert.rejects(fn, (e) => { assert.equal(e.code, 'forbidden', e.message); assert.equal(e.store, 'notes'); return true; });
  }
  assert.deepEqual((await db.pendingMutations()).map((m) => m.key), ['users/alice/1', 'anything'], 'nothing else written');
  assert.equal(await db.get('notes', 'users/alice/2'), undefined, 'the group wrote nothing');
  // Options are checked.
  for (const stores of [[{ name: 'n', prefix: '' }], [{ name: 'n', prefix: 5 }], [{ name: 'n', prefix: 'a', extra: 1 }], ['n', { name: 'n' }], [{ name: 'bad name' }]]) {
    await assert.rejects(openSyncDB({ name: dbName(), stores }), (e) => ['bad_request', 'invalid_store', 'invalid_key'].includes(e.code), JSON.stringify(stores));
  }
});

test('a version-1 database is upgraded in place: range reads see its records, tombstones stay out', async () => {
  const name = dbName('up');
  // A database as the v1 client left it.
  await new Promise((resolve, reject) => {
    const r = indexedDB.open(name, 1);
    r.onupgradeneeded = () => {
      const d = r.result;
      const recs = d.createObjectStore('records', { keyPath: ['s', 'k'] });
      const m = d.createObjectStore('mutations', { keyPath: 'id' });
      m.createIndex('by_store', ['s', 'id']); m.createIndex('by_key', ['s', 'k']);
      const meta = d.createObjectStore('meta', { keyPath: 'k' });
      d.createObjectStore('conflicts', { keyPath: ['s', 'k'] });
      recs.put({ s: 's', k: 'b', v: 2, ver: 1, c: '', e: 0 });
      recs.put({ s: 's', k: 'a\u{10000}', v: 3, ver: 1, c: '', e: 0 });
      recs.put({ s: 's', k: 'a\uffff', v: 4, ver: 1, c: '', e: 0 });
      recs.put({ s: 's', k: 'dead', d: true, ver: 2, c: '', e: 0 });
      m.put({ id: 1, s: 's', k: 'b', op: 'put', v: 2, at: 1000 });
      meta.put({ k: 'nextId', v: 2 });
    };
    r.onsuccess = () => { r.result.close(); resolve(); };
    r.onerror = () => reject(r.error);
  });
  const db = await open({ name, stores: ['s'] });
  assert.deepEqual(keysOf(await db.getAll('s')), ['a\uffff', 'a\u{10000}', 'b']);
  assert.equal(await db.count('s'), 3);
  assert.deepEqual((await db.pendingMutations()).map((x) => [x.id, x.key, x.op, x.value]), [[1, 'b', 'put', 2]], 'the change log moved into the records');
  await db.put('s', 'c', 5);
  assert.deepEqual(keysOf(await db.getAll('s', { start: 'b' })), ['b', 'c']);
  assert.deepEqual((await db.pendingMutations()).map((x) => x.id), [1, 2]);
});

test('a version-2 database is upgraded in place: its change log moves into the records, nothing pending is lost', async () => {
  const name = dbName('up2');
  // A database as the version-2 client left it: records with o / t, the log in `mutations`.
  await new Promise((resolve, reject) => {
    const r = indexedDB.open(name, 2);
    r.onupgradeneeded = () => {
      const d = r.result;
      const recs = d.createObjectStore('records', { keyPath: ['s', 'k'] });
      recs.createIndex('by_order', ['s', 'o']);
      recs.createIndex('by_tomb', ['s', 't']);
      const m = d.createObjectStore('mutations', { keyPath: 'id' });
      m.createIndex('by_store', ['s', 'id']); m.createIndex('by_key', ['s', 'k']);
      const meta = d.createObjectStore('meta', { keyPath: 'k' });
      d.createObjectStore('conflicts', { keyPath: ['s', 'k'] });
      recs.put({ s: 's', k: 'a', v: 'a2', ver: 3, c: 'c1', e: 0, o: 'a' });
      recs.put({ s: 's', k: 'b', d: true, ver: 5, c: 'c2', e: 0, t: 'c2' });
      recs.put({ s: 's', k: 'c', v: 'synced', ver: 1, c: 'c3', e: 0, o: 'c' });
      recs.put({ s: 't', k: 'x', v: 1, ver: 0, c: '', e: 0, o: 'x' });
      m.put({ id: 1, s: 's', k: 'a', op: 'put', v: 'a1', at: 1000 });
      m.put({ id: 2, s: 's', k: 'b', op: 'delete', tx: 't-g', at: 1001 });
      m.put({ id: 3, s: 't', k: 'x', op: 'put', v: 1, tx: 't-g2', at: 1002 });
      m.put({ id: 4, s: 's', k: 'a', op: 'put', v: 'a2', at: 1003 });
      meta.put({ k: 'client', v: 'c-upgraded' });
      meta.put({ k: 'nextId', v: 5 });
    };
    r.onsuccess = () => { r.result.close(); resolve(); };
    r.onerror = () => reject(r.error);
  });
  const db = await open({ name, stores: ['s', 't'] });
  assert.deepEqual((await db.pendingMutations()).map((x) => [x.id, x.store, x.key, x.op, x.value, x.tx, x.at]), [
    [1, 's', 'a', 'put', 'a1', undefined, 1000],
    [2, 's', 'b', 'delete', undefined, 't-g', 1001],
    [3, 't', 'x', 'put', 1, 't-g2', 1002],
    [4, 's', 'a', 'put', 'a2', undefined, 1003],
  ]);
  assert.deepEqual((await db.pendingMutations('t')).map((x) => x.id), [3]);
  assert.equal(await db.get('s', 'a'), 'a2');
  assert.equal(await db.get('s', 'b'), undefined);
  assert.deepEqual(keysOf(await db.getAll('s')), ['a', 'c']);
  assert.deepEqual(await db.getMeta('s', 'a'), { key: 'a', version: 3, cursor: 'c1', deleted: false, pending: 2 });
  assert.deepEqual(await db.getMeta('s', 'b'), { key: 'b', version: 5, cursor: 'c2', deleted: true, pending: 1 });
  assert.equal((await db.getMeta('s', 'c')).pending, 0);
  assert.equal(await db.clientId(), 'c-upgraded');
  await db.put('s', 'c', 'new');
  assert.deepEqual((await db.pendingMutations()).map((x) => x.id), [1, 2, 3, 4, 5], 'ids go on');
  await db.close();
  const idb = await new Promise((res, rej) => { const r = indexedDB.open(name); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  assert.equal(idb.version, 4);
  assert.ok(!idb.objectStoreNames.contains('mutations'), 'the old log store is gone');
  idb.close();
});

test('a version-3 database is upgraded in place: the pending entries of its records become log segments, nothing pending is lost', async () => {
  const name = dbName('up3');
  // A database as the version-3 client left it: the log in the records (p entries, q for by_pending).
  await new Promise((resolve, reject) => {
    const r = indexedDB.open(name, 3);
    r.onupgradeneeded = () => {
      const d = r.result;
      const recs = d.createObjectStore('records', { keyPath: ['s', 'k'] });
      recs.createIndex('by_pending', 'q', { multiEntry: true });
      recs.createIndex('by_order', ['s', 'o']);
      recs.createIndex('by_tomb', ['s', 't']);
      const meta = d.createObjectStore('meta', { keyPath: 'k' });
      d.createObjectStore('conflicts', { keyPath: ['s', 'k'] });
      recs.put({ s: 's', k: 'a', v: 'a2', ver: 3, c: 'c1', e: 0, o: 'a',
        p: [{ id: 1, op: 'put', v: 'a1', at: 1000 }, { id: 4, op: 'put', v: 'a2', at: 1003 }], q: [['s', 1], ['s', 4]] });
      recs.put({ s: 's', k: 'b', d: true, ver: 5, c: 'c2', e: 0, t: 'c2', p: [{ id: 2, op: 'delete', tx: 't-g', at: 1001 }], q: [['s', 2]] });
      recs.put({ s: 's', k: 'b2', v: 7, ver: 0, c: '', e: 0, o: 'b2', p: [{ id: 3, op: 'put', v: 7, tx: 't-g', at: 1001 }], q: [['s', 3]] });
      recs.put({ s: 's', k: 'c', v: 'synced', ver: 1, c: 'c3', e: 0, o: 'c' });
      recs.put({ s: 't', k: 'x', v: 1, ver: 0, c: '', e: 0, o: 'x', p: [{ id: 5, op: 'put', v: 1, tx: 't-g2', at: 1004 }], q: [['t', 5]] });
      meta.put({ k: 'client', v: 'c-upgraded' });
      meta.put({ k: 'nextId', v: 6 });
    };
    r.onsuccess = () => { r.result.close(); resolve(); };
    r.onerror = () => reject(r.error);
  });
  const db = await open({ name, stores: ['s', 't'] });
  assert.deepEqual((await db.pendingMutations()).map((x) => [x.id, x.store, x.key, x.op, x.value, x.tx, x.at]), [
    [1, 's', 'a', 'put', 'a1', undefined, 1000],
    [2, 's', 'b', 'delete', undefined, 't-g', 1001],
    [3, 's', 'b2', 'put', 7, 't-g', 1001],
    [4, 's', 'a', 'put', 'a2', undefined, 1003],
    [5, 't', 'x', 'put', 1, 't-g2', 1004],
  ]);
  assert.deepEqual((await db.pendingMutations('t')).map((x) => x.id), [5]);
  assert.equal(db.status.pending, 5);
  assert.deepEqual(await db.getMeta('s', 'a'), { key: 'a', version: 3, cursor: 'c1', deleted: false, pending: 2 });
  assert.deepEqual(await db.getMeta('s', 'b'), { key: 'b', version: 5, cursor: 'c2', deleted: true, pending: 1 });
  assert.equal((await db.getMeta('s', 'c')).pending, 0);
  assert.deepEqual(keysOf(await db.getAll('s')), ['a', 'b2', 'c']);
  assert.equal(await db.clientId(), 'c-upgraded');
  await db.put('s', 'c', 'new');
  assert.deepEqual((await db.pendingMutations()).map((x) => x.id), [1, 2, 3, 4, 5, 6], 'ids go on');
  await db.close();
  const { records, log } = await rawRows(name, ['records', 'log']);
  assert.deepEqual(log.map((g) => [g.s, g.m.map((e) => e.id), g.tx]), [
    ['s', [1], undefined], ['s', [2, 3], 't-g'], ['s', [4], undefined], ['s', [6], undefined], ['t', [5], 't-g2'],
  ], 'one segment per group, one per other mutation');
  assert.deepEqual(records.find((x) => x.k === 'a').p, [1, 4]);
  assert.ok(records.every((x) => x.q === undefined), 'no by_pending fields left');
  const idb = await new Promise((res, rej) => { const r = indexedDB.open(name); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  assert.equal(idb.version, 4);
  assert.ok(!idb.transaction('records').objectStore('records').indexNames.contains('by_pending'), 'by_pending is gone');
  idb.close();
});

test('sync({timeoutMs}) rejects with timeout while mutations stay pending; without pending it resolves', async () => {
  // A gateway URL that never answers: the push cannot complete.
  const net = await import('node:net');
  const socks = new Set();
  const silent = net.createServer((c) => { socks.add(c); c.on('error', () => {}); });
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  try {
    const db = await open({ name: dbName('to'), url: `http://127.0.0.1:${silent.address().port}`, stores: ['s'], requestTimeoutMs: 60000 });
    await db.sync({ timeoutMs: 50 }); // nothing pending: resolves (the pull may still be waiting)
    await db.put('s', 'k', 1);
    const t0 = Date.now();
    await assert.rejects(db.sync({ timeoutMs: 300 }), (e) => { assert.equal(e.code, 'timeout'); assert.equal(e.details.pending, 1); return true; });
    const took = Date.now() - t0;
    assert.ok(took >= 290 && took < 2000, `rejected at the deadline: ${took} ms`);
    assert.equal((await db.pendingMutations()).length, 1, 'the mutation stays queued');
    await assert.rejects(db.sync({ timeoutMs: -1 }), (e) => e.code === 'bad_request');
    // Another instance (not the one syncing) times out the same way.
    const offline = await open({ name: dbName('to2'), stores: ['s'], url: 'http://127.0.0.1:9', offline: true });
    await offline.put('s', 'k', 1);
    await assert.rejects(offline.sync({ timeoutMs: 100 }), (e) => e.code === 'timeout');
  } finally {
    for (const c of socks) c.destroy();
    silent.close();
  }
});

test('destroy(): refuses with pending unless forced; stops every instance of the database and deletes it', async () => {
  const name = dbName('ds');
  const a = await open({ name, stores: ['s'] });
  const b = await open({ name, stores: ['s'] });
  const closedB = collect(b, 'close');
  const closedA = collect(a, 'close');
  await a.put('s', 'k', 1);
  await assert.rejects(a.destroy(), (e) => { assert.equal(e.code, 'pending'); assert.equal(e.details.pending, 1); return true; });
  assert.equal(await a.get('s', 'k'), 1, 'a refused destroy changes nothing');
  assert.equal(await b.get('s', 'k'), 1);
  await a.destroy({ force: true });
  assert.deepEqual(closedA, [{ reason: 'destroyed' }]);
  await until(() => closedB.length === 1, { what: 'the other instance closed' });
  assert.deepEqual(closedB, [{ reason: 'destroyed' }]);
  await assert.rejects(b.get('s', 'k'), (e) => e.code === 'closed');
  await assert.rejects(b.put('s', 'k', 2), (e) => e.code === 'closed');
  await assert.rejects(a.get('s', 'k'), (e) => e.code === 'closed');
  const dbs = await indexedDB.databases();
  assert.ok(!dbs.some((d) => d.name === name), 'the IndexedDB database is gone');
  // Opened again: empty, with a new client id.
  const c = await open({ name, stores: ['s'] });
  assert.equal(await c.get('s', 'k'), undefined);
  assert.deepEqual(await c.pendingMutations(), []);
  assert.equal(await c.clientId(), undefined);
});

// Found in review: destroy() counted the pending mutations, then deleted the
// database; a write another instance made in between was acknowledged and
// then deleted with it. The count and the deletion's start are now one
// IndexedDB transaction against every write: a write either lands before
// (destroy refuses with 'pending') or is refused ('closed'). Never both ok.
test('destroy() racing a write of another instance: the write is refused, or destroy is; an acknowledged write is never deleted', async () => {
  let refusedWrites = 0, refusedDestroys = 0;
  for (let delay = 0; delay < 12; delay++) {
    const name = dbName('dr');
    const a = await open({ name, stores: ['s'] });
    const b = await open({ name, stores: ['s'] });
    const d = a.destroy().then(() => 'ok', (e) => e.code);
    for (let i = 0; i < delay; i++) await Promise.resolve();
    const w = b.put('s', `k${delay}`, delay).then(() => 'ok', (e) => e.code);
    const [dr, wr] = await Promise.all([d, w]);
    assert.ok(!(dr === 'ok' && wr === 'ok'), `delay ${delay}: the write was acknowledged and the database destroyed under it`);
    assert.ok(['ok', 'pending'].includes(dr), `delay ${delay}: destroy ${dr}`);
    assert.ok(['ok', 'closed'].includes(wr), `delay ${delay}: write ${wr}`);
    if (dr === 'pending') {
      refusedDestroys++;
      assert.equal(await a.get('s', `k${delay}`), delay, 'a refused destroy keeps the write');
      await a.destroy({ force: true });
    } else {
      refusedWrites++;
      assert.ok(!(await indexedDB.databases()).some((x) => x.name === name), 'destroyed');
    }
    await b.close().catch(() => {});
  }
  assert.ok(refusedWrites > 0, 'some writes came after destroy began');
});

test('destroy() interrupted after it began (the page closed): writes are refused meanwhile, and the next open finishes the deletion', async () => {
  const name = dbName('di');
  const a = await open({ name, stores: ['s'], BroadcastChannel: null });
  const other = await open({ name, stores: ['s'], BroadcastChannel: null }); // never told: the page closed first
  const otherClosed = collect(other, 'close');
  await a.put('s', 'old', 1);
  assert.equal(await a._local.beginDestroy(false), 1, 'not forced, with a pending write: refused, nothing marked');
  await a.put('s', 'old2', 1);
  assert.equal(await a._local.beginDestroy(true), 0); // what destroy({force}) does first; the page "closes" before the deletion
  await assert.rejects(a.put('s', 'late', 2), (e) => e.code === 'closed', 'a write after destroy began is refused');
  await assert.rejects(a.pendingMutations(), (e) => e.code === 'closed', 'and the instance is closed');
  await assert.rejects(other.put('s', 'late2', 2), (e) => e.code === 'closed', 'in every instance');
  await until(() => otherClosed.length === 1, { what: 'the instance that learns it so closes, rather than refuse every write for ever' });
  assert.deepEqual(otherClosed, [{ reason: 'destroyed' }]);
  await a.close();
  const b = await open({ name, stores: ['s'], BroadcastChannel: null });
  assert.equal(await b.get('s', 'old'), undefined, 'the data of the interrupted destroy is gone');
  assert.equal(await b.clientId(), undefined, 'a new database: no client id yet');
  await b.put('s', 'new', 3); // and it is writable again
  assert.equal(await b.get('s', 'new'), 3);
});

test('destroy(): versionchange alone (no BroadcastChannel) closes the other instance so the deletion is not blocked', async () => {
  const name = dbName('dv');
  const a = await open({ name, stores: ['s'], BroadcastChannel: null });
  const b = await open({ name, stores: ['s'], BroadcastChannel: null });
  const closedB = collect(b, 'close');
  await a.put('s', 'k', 1);
  await a.destroy({ force: true });
  assert.deepEqual(closedB, [{ reason: 'destroyed' }]);
  assert.ok(!(await indexedDB.databases()).some((d) => d.name === name));
  // And without pending mutations no force is needed.
  const c = await open({ name: dbName('dn'), stores: ['s'] });
  await c.destroy();
});

// Found in review: an instance opened with another prefix for a store (a
// new version of the app, say) started the database over for its prefix,
// while an instance still open with the old prefix went on syncing into it.
test('a second instance opened with another prefix for a store: the first one closes (reconfigured); the same stores close nothing', async () => {
  const name = dbName('rc');
  const a = await open({ name, stores: [{ name: 's', prefix: 'u/a/' }, 't'] });
  const closedA = collect(a, 'close');
  const same = await open({ name, stores: [{ name: 's', prefix: 'u/a/' }, 't'] });
  const closedSame = collect(same, 'close');
  const other = await open({ name, stores: ['t'] }); // does not mirror s: changes nothing of s
  await sleep(100);
  assert.deepEqual(closedA, [], 'same stores, or a subset: nothing closes');
  await a.put('s', 'u/a/1', 1);
  const b = await open({ name, stores: ['s'] }); // the whole of s now
  await until(() => closedA.length === 1 && closedSame.length === 1, { what: 'the instances with the old prefix closed' });
  assert.deepEqual(closedA, [{ reason: 'reconfigured' }]);
  await assert.rejects(a.put('s', 'u/a/2', 2), (e) => e.code === 'closed');
  assert.equal(await b.get('s', 'u/a/1'), 1, 'the pending write is kept');
  await b.put('s', 'elsewhere', 3); // b mirrors the whole store
  assert.equal(await other.get('t', 'x'), undefined, 'the instance of the other store stays open');
});
