// GET /v1/stores/{s}/changes: from the beginning, since a cursor, paging,
// ordering, cursors inside one transaction, read-your-writes across gateways.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it, sleep, zkCli, recordZnode } from '../lib/harness.mjs';
import { expectError, byKey, assertCursorOrder } from '../lib/http.mjs';
import { put, del } from '../lib/records.mjs';
import { gatewayPair, freshStore } from '../lib/fixtures.mjs';

const env = setupEnv();
let A, B, a, b;

before(async () => {
  ({ A, B, a, b } = await gatewayPair(env));
});

const newStore = (body) => freshStore(a, { prefix: 'pl', body });

/** Applies a feed to a map key -> {value, version}. */
function apply(map, changes) {
  for (const c of changes) {
    if (c.deleted) map.delete(c.key); else map.set(c.key, { value: c.value, version: c.version });
  }
  return map;
}
const sortedEntries = (m) => [...m.entries()].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));

it('an empty store: no changes, more false, and its cursor does not skip later writes', async () => {
  const s = await newStore();
  const r = await a.changesOk(s);
  assert.deepEqual(r.changes, []);
  assert.equal(r.more, false);
  await a.pushOk(s, 'c', [put(1, 'k', 1)]);
  const r2 = await b.changesOk(s, { since: r.cursor });
  assert.deepEqual(r2.changes.map((c) => c.key), ['k']);
  const r3 = await b.changesOk(s, { since: r2.cursor });
  assert.deepEqual(r3.changes, []);
  assert.ok(r3.cursor >= r2.cursor);
});

it('without since: every live record in its latest state, no deletions', async () => {
  const s = await newStore();
  const muts = [];
  let id = 0;
  for (let i = 0; i < 10; i++) muts.push(put(++id, `k${i}`, { i }));
  muts.push(del(++id, 'k3'), del(++id, 'k4'), put(++id, 'k5', 'five'), del(++id, 'k6'), put(++id, 'k6', 'six-again'));
  await a.pushOk(s, 'c', muts);
  for (const api of [a, b]) {
    for (const limit of [undefined, 3, 1]) {
      const { changes, pages } = await api.changesAll(s, { limit });
      // The first page (the only request without since) carries no deletions;
      // later pages read on from a cursor and may report deletions of keys
      // the reader never saw: applied in order, they give the live state.
      assert.ok(pages[0].changes.every((c) => !c.deleted), 'no deletions without since');
      if (limit === undefined) assert.equal(pages.length, 1);
      const m = apply(new Map(), changes);
      assert.deepEqual([...m.keys()].sort(), ['k0', 'k1', 'k2', 'k5', 'k6', 'k7', 'k8', 'k9']);
      if (limit === undefined) assert.equal(m.size, changes.length, 'each key once');
      assert.deepEqual(m.get('k5'), { value: 'five', version: 2 });
      assert.deepEqual(m.get('k6'), { value: 'six-again', version: 3 });
      assert.deepEqual(m.get('k0'), { value: { i: 0 }, version: 1 });
    }
  }
});

it('with since: changes after it, deletions included, each key once in its latest state', async () => {
  const s = await newStore();
  const r0 = await a.pushOk(s, 'c', [put(1, 'keep', 1), put(2, 'gone', 2), put(3, 'upd', 3), put(4, 'back', 4)]);
  const since = r0.cursor;
  const r1 = await a.pushOk(s, 'c', [
    del(5, 'gone'), put(6, 'upd', 'u1'), put(7, 'upd', 'u2'), del(8, 'back'), put(9, 'back', 'again'), put(10, 'new', 'n'), del(11, 'never'),
  ]);
  for (const api of [a, b]) {
    const ch = await api.changesOk(s, { since });
    const m = byKey(ch.changes);
    assert.deepEqual([...m.keys()].sort(), ['back', 'gone', 'new', 'upd']);
    assert.equal(ch.changes.length, 4);
    assert.deepEqual([m.get('gone').deleted, m.get('gone').version, m.get('gone').cursor], [true, 2, r1.results[0].cursor]);
    assert.deepEqual([m.get('upd').value, m.get('upd').version, m.get('upd').cursor], ['u2', 3, r1.results[2].cursor]);
    assert.ok(!m.get('back').deleted);
    assert.deepEqual([m.get('back').value, m.get('back').version], ['again', 3]);
    assert.deepEqual([m.get('new').value, m.get('new').version], ['n', 1]);
    assert.ok(!m.has('keep'));
  }
  // From the beginning the deleted key is absent.
  assert.ok(!byKey((await a.changesOk(s)).changes).has('gone'));
});

it('paging with a small limit never skips nor repeats a change; cursor order holds', async () => {
  const s = await newStore();
  const c0 = await a.getCursor(s);
  let id = 0;
  const expected = new Map();
  for (let p = 0; p < 12; p++) {
    const muts = [];
    for (let i = 0; i < 5; i++) {
      const k = `key-${String(p * 5 + i).padStart(3, '0')}`;
      const m = put(++id, k, { p, i });
      if (p % 3 === 0) m.tx = `t${p}`;
      muts.push(m);
      expected.set(k, { p, i });
    }
    await a.pushOk(s, 'c', muts);
  }
  const full = await a.changesOk(s, { since: c0, limit: 10000 });
  assert.equal(full.changes.length, 60);
  assert.equal(full.more, false);
  for (const [api, limit] of [[a, 7], [b, 7], [a, 1], [b, 60], [a, 59]]) {
    const { changes, pages } = await api.changesAll(s, { since: c0, limit });
    assert.deepEqual(changes.map((c) => c.cursor), full.changes.map((c) => c.cursor), `limit ${limit}: same sequence as one big page`);
    assert.equal(new Set(changes.map((c) => c.key)).size, 60, 'no repeats');
    for (const c of changes) assert.deepEqual(c.value, expected.get(c.key));
    for (const p of pages.slice(0, -1)) {
      assert.equal(p.more, true);
      assert.ok(p.changes.length >= 1 && p.changes.length <= limit, `page of ${p.changes.length} with limit ${limit}`);
    }
    if (limit < 60) assert.ok(pages.length >= Math.ceil(60 / limit), `${pages.length} pages for 60 changes with limit ${limit}`);
  }
  // Paging from the beginning, too.
  const fromStart = await b.changesAll(s, { limit: 8 });
  assert.deepEqual(fromStart.changes.map((c) => c.key).sort(), [...expected.keys()].sort());
});

it('paging while others write: the reader converges to the server state, nothing skipped', async () => {
  const s = await newStore({ conflict: 'lww' });
  let id = 0;
  await a.pushOk(s, 'w', Array.from({ length: 30 }, (_, i) => put(++id, `k${i}`, 0)));
  const first = await b.changesAll(s, { limit: 4 });
  const local = apply(new Map(), first.changes);
  let cursor = first.cursor;
  let done = false;
  const writer = (async () => {
    for (let round = 1; round <= 15; round++) {
      const muts = [];
      for (let j = 0; j < 4; j++) {
        const k = `k${(round * 7 + j * 3) % 40}`;
        muts.push((round + j) % 5 === 0 ? del(++id, k) : put(++id, k, round * 10 + j));
      }
      if (round % 4 === 0) muts.forEach((m) => { m.tx = `g${round}`; });
      await (round % 2 ? a : b).pushOk(s, 'w', muts);
      await sleep(5);
    }
    done = true;
  })();
  let reads = 0;
  while (!done) {
    const page = await b.changesOk(s, { since: cursor, limit: 3 });
    apply(local, page.changes);
    cursor = page.cursor;
    reads++;
  }
  await writer;
  for (;;) {
    const page = await b.changesOk(s, { since: cursor, limit: 3 });
    apply(local, page.changes);
    cursor = page.cursor;
    if (!page.more) break;
  }
  const truth = apply(new Map(), (await a.changesAll(s)).changes);
  assert.ok(reads > 0);
  assert.deepEqual(sortedEntries(local), sortedEntries(truth));
});

it('cursors inside one transaction: 50 keys in one tx group read with limit 7', async () => {
  const s = await newStore();
  const c0 = await a.getCursor(s);
  const keys = Array.from({ length: 50 }, (_, i) => `tx-${i}`);
  const r = await a.pushOk(s, 'c', keys.map((k, i) => put(i + 1, k, i, { base: 0, tx: 'big' })));
  assert.ok(r.results.every((x) => x.status === 'applied'));
  assert.equal(new Set(r.results.map((x) => x.cursor)).size, 50, 'distinct cursors in one transaction');
  const { changes, pages } = await a.changesAll(s, { since: c0, limit: 7 });
  // limit is honoured in the middle of the transaction (checked on every page by changesAll).
  assert.ok(pages.length >= 8, `at least 8 pages of at most 7: ${pages.map((p) => p.changes.length)}`);
  assert.ok(pages.every((p) => p.changes.length <= 7));
  assert.equal(changes.length, 50);
  assert.deepEqual(changes.map((c) => c.key).sort(), [...keys].sort());
  const resultCursor = new Map(r.results.map((x, i) => [keys[i], x.cursor]));
  for (const c of changes) assert.equal(c.cursor, resultCursor.get(c.key), `feed cursor of ${c.key} is its result's`);
  // The same on the other gateway.
  const onB = await b.changesAll(s, { since: c0, limit: 7 });
  assert.deepEqual(onB.changes.map((c) => c.cursor), changes.map((c) => c.cursor), 'same order and cursors on every gateway');
  // From a change's cursor: exactly the changes after it.
  for (const i of [0, 6, 7, 23, 48, 49]) {
    const rest = await b.changesAll(s, { since: changes[i].cursor, limit: 7 });
    assert.deepEqual(rest.changes.map((c) => c.key), changes.slice(i + 1).map((c) => c.key), `after change ${i}`);
  }
  // Later writes to some keys of the transaction leave the others' cursors unchanged.
  const moved = [changes[10].key, changes[30].key];
  const r2 = await a.pushOk(s, 'c', [put(51, moved[0], 'later'), del(52, moved[1])]);
  const after = await b.changesAll(s, { since: c0, limit: 7 });
  const stay = changes.filter((c) => !moved.includes(c.key));
  assert.deepEqual(after.changes.slice(0, 48).map((c) => [c.key, c.cursor]), stay.map((c) => [c.key, c.cursor]));
  assert.deepEqual(after.changes.slice(48).map((c) => c.key).sort(), [...moved].sort());
  const fromMid = await a.changesAll(s, { since: changes[20].cursor, limit: 5 });
  assert.deepEqual(fromMid.changes.map((c) => c.key),
    [...changes.slice(21).filter((c) => !moved.includes(c.key)).map((c) => c.key), ...after.changes.slice(48).map((c) => c.key)]);
  assert.ok(r2.cursor >= after.changes[49].cursor);
});

it('a cursor from one gateway works on another and gives the same answer', async () => {
  const s = await newStore();
  await a.pushOk(s, 'c', [put(1, 'x', 1), put(2, 'y', 2)]);
  const fromA = await a.changesOk(s);
  await b.pushOk(s, 'c', [put(3, 'z', 3), put(4, 'x', 4)]);
  const viaB = await b.changesOk(s, { since: fromA.cursor });
  const viaA = await a.changesOk(s, { since: fromA.cursor });
  assert.deepEqual(viaB, viaA);
  assert.deepEqual(viaB.changes.map((c) => c.key).sort(), ['x', 'z']);
  for (const c of fromA.changes) {
    assert.deepEqual(await b.changesOk(s, { since: c.cursor }), await a.changesOk(s, { since: c.cursor }), `since ${c.key}'s cursor`);
  }
  const desc = await b.getCursor(s);
  assert.deepEqual((await a.changesOk(s, { since: desc })).changes, []);
});

it('read-your-writes through the push cursor across gateways (tight loop)', async () => {
  const s = await newStore({ conflict: 'lww' });
  const c0 = await a.getCursor(s);
  let prev = c0;
  const written = new Map();
  for (let i = 1; i <= 25; i++) {
    const [w, r] = i % 2 ? [a, b] : [b, a];
    const key = `k${i % 6}`;
    const res = await w.pushOk(s, 'rw', [put(i, key, i)]);
    written.set(key, i);
    const after = await r.changesOk(s, { since: res.cursor });
    assert.deepEqual(after.changes, [], `iteration ${i}: nothing after the push cursor`);
    const fromPrev = await r.changesOk(s, { since: prev });
    assert.deepEqual(fromPrev.changes.map((c) => [c.key, c.value]), [[key, i]], `iteration ${i}: the write is there (read on the other gateway)`);
    assert.equal(fromPrev.changes[0].cursor, res.results[0].cursor);
    const fromStart = byKey((await r.changesOk(s, { since: c0 })).changes);
    for (const [k, v] of written) assert.equal(fromStart.get(k).value, v, `iteration ${i}: ${k} from an older cursor`);
    prev = res.cursor;
  }
});

it('the store description cursor and the response cursor are positions to read on from', async () => {
  const s = await newStore();
  const r = await a.pushOk(s, 'c', [put(1, 'a', 1)]);
  const d = await b.getCursor(s);
  assert.ok(d >= r.results[0].cursor);
  const e = await b.changesOk(s, { since: d });
  assert.deepEqual(e.changes, []);
  assert.ok(e.cursor >= d);
  const again = await b.changesOk(s, { since: e.cursor });
  assert.deepEqual(again.changes, []);
  await a.pushOk(s, 'c', [put(2, 'b', 2)]);
  assert.deepEqual((await b.changesOk(s, { since: e.cursor })).changes.map((c) => c.key), ['b']);
});

it('limit edges and invalid cursors', async () => {
  const s = await newStore();
  await a.pushOk(s, 'c', Array.from({ length: 5 }, (_, i) => put(i + 1, `k${i}`, i)));
  const one = await a.changesOk(s, { limit: 1 });
  assert.equal(one.changes.length, 1);
  assert.equal(one.more, true);
  const max = await a.changesOk(s, { limit: 10000 });
  assert.equal(max.changes.length, 5);
  assert.equal(max.more, false);
  const dflt = await a.changesOk(s);
  assert.deepEqual(dflt, max);
  for (const l of ['0', '10001', 'x', '2.5', '-3']) expectError(await a.changes(s, { limit: l }), 400, 'bad_request');
  for (const c of ['', 'x', '0'.repeat(39), 'f'.repeat(40), max.cursor.toUpperCase() === max.cursor ? 'G'.repeat(40) : max.cursor.toUpperCase()]) {
    if (c === '') continue;
    expectError(await b.changes(s, { since: c }), 400, 'invalid_cursor');
  }
  assertCursorOrder(max.changes);
});

it('changes made by another ZooKeeper client appear in the feed at once, on every gateway', async () => {
  const s = await newStore();
  const r0 = await a.pushOk(s, 'c', [put(1, 'k1', 'a'), put(2, 'k2', 'b'), put(3, 'k4', 'd')]);
  const c0 = r0.cursor;
  const z1 = recordZnode(env.root, s, 'k1');
  const set = await zkCli(env.zk.connect, 'set', z1.path, '{"x":1}');
  assert.ok(set.ok, `zkCli set: ${set.stderr}`);
  for (const api of [b, a]) {
    const ch = await api.changesOk(s, { since: c0 });
    assert.deepEqual(ch.changes.map((c) => [c.key, c.value, c.version]), [['k1', { x: 1 }, 2]], 'a foreign set is a change (no waiting allowed)');
  }
  const c1 = (await a.changesOk(s, { since: c0 })).cursor;
  const z2 = recordZnode(env.root, s, 'k2');
  const rm = await zkCli(env.zk.connect, 'delete', z2.path);
  assert.ok(rm.ok, `zkCli delete: ${rm.stderr}`);
  for (const api of [a, b]) {
    const ch = await api.changesOk(s, { since: c1 });
    assert.deepEqual(ch.changes.map((c) => [c.key, c.deleted, c.version]), [['k2', true, 1]], 'a foreign hard delete is a deletion with the last known version');
  }
  const c2 = (await b.changesOk(s, { since: c1 })).cursor;
  const z3 = recordZnode(env.root, s, 'k3');
  await zkCli(env.zk.connect, 'create', z3.bucketPath, ''); // may exist already
  const mk = await zkCli(env.zk.connect, 'create', z3.path, '{"n":3}');
  assert.ok(mk.ok, `zkCli create: ${mk.stderr}`);
  for (const api of [b, a]) {
    const ch = await api.changesOk(s, { since: c2 });
    assert.deepEqual(ch.changes.map((c) => [c.key, c.value, c.version]), [['k3', { n: 3 }, 1]], 'a foreign create is a change');
  }
  // The gateways act on the foreign state.
  const p = await b.pushOk(s, 'c', [put(4, 'k1', 'mine', { base: 2 }), put(5, 'k3', 'mine', { base: 1 }), put(6, 'k2', 'again', { base: 0 })]);
  assert.deepEqual(p.results.map((x) => [x.status, x.version]), [['applied', 3], ['applied', 2], ['applied', 1]]);
  const live = apply(new Map(), (await a.changesAll(s)).changes);
  assert.deepEqual(sortedEntries(live), [['k1', { value: 'mine', version: 3 }], ['k2', { value: 'again', version: 1 }], ['k3', { value: 'mine', version: 2 }], ['k4', { value: 'd', version: 1 }]]);
});
