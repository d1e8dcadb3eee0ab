// The local side: change log, id allocation, validation, transactions, tabs.
// No network: these databases have no gateway URL.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { open, closeAll, dbName, openSyncDB, rawRows } from './helpers.mjs';
import { ZooSyncError, zkPath, toJSONText, utf8Length } from '../../client/zoosync.js';

after(closeAll);

/** Reads the raw IndexedDB stores of a database, and the change log its records hold. */
async function raw(name) {
  const out = await rawRows(name, ['records', 'log', 'meta']);
  // The change log is the object store `log` (StoredSegment): as mutation rows, in id order.
  out.mutations = out.log.flatMap((g) => g.m.map((e) => ({ ...e, s: g.s, at: g.at, ...(g.tx ? { tx: g.tx } : {}) }))).sort((a, b) => a.id - b.id);
  return out;
}

test('a write puts the record and its mutation in the change log together', async () => {
  const name = dbName();
  const db = await open({ name, stores: ['todos', 'notes'] });
  assert.equal(await db.clientId(), undefined, 'no client id before the first write');
  await db.put('todos', 'k1', { title: 'milk' });
  await db.put('notes', 'n', 'hello');
  await db.delete('todos', 'k1');
  await db.put('todos', 'k2', [1, 2]);
  assert.equal(await db.get('todos', 'k1'), undefined);
  assert.deepEqual(await db.get('todos', 'k2'), [1, 2]);
  assert.deepEqual(await db.getAll('todos'), [{ key: 'k2', value: [1, 2] }]);
  const cid = await db.clientId();
  assert.match(cid, /^[A-Za-z0-9_-]{1,64}$/);
  const log = await db.pendingMutations();
  assert.deepEqual(log.map((m) => [m.id, m.store, m.key, m.op, m.value]), [
    [1, 'todos', 'k1', 'put', { title: 'milk' }],
    [2, 'notes', 'n', 'put', 'hello'],
    [3, 'todos', 'k1', 'delete', undefined],
    [4, 'todos', 'k2', 'put', [1, 2]],
  ]);
  assert.equal((await db.pendingMutations('notes')).length, 1);
  await db.close();
  // Reopened: same client id, the log and the data are still there, ids go on.
  const db2 = await open({ name, stores: ['todos', 'notes'] });
  assert.equal(await db2.clientId(), cid);
  await db2.put('todos', 'k3', true);
  const ids = (await db2.pendingMutations()).map((m) => m.id);
  assert.deepEqual(ids, [1, 2, 3, 4, 5]);
  const r = await raw(name);
  assert.equal(r.meta.find((m) => m.k === 'nextId').v, 6);
  assert.deepEqual(r.records.map((x) => [x.s, x.k, !!x.d]).sort(), [['notes', 'n', false], ['todos', 'k1', true], ['todos', 'k2', false], ['todos', 'k3', false]]);
  assert.deepEqual(r.mutations.map((m) => m.id), [1, 2, 3, 4, 5], 'the raw change log agrees');
});

test('stored values are copies: later changes to the caller\'s object are not written', async () => {
  const db = await open({ name: dbName(), stores: ['s'] });
  const v = { a: 1, nested: { b: 2 } };
  await db.put('s', 'k', v);
  v.nested.b = 99;
  assert.deepEqual(await db.get('s', 'k'), { a: 1, nested: { b: 2 } });
  const got = await db.get('s', 'k');
  got.a = 5;
  assert.deepEqual(await db.get('s', 'k'), { a: 1, nested: { b: 2 } });
  assert.equal((await db.pendingMutations())[0].value.nested.b, 2);
});

test('invalid calls reject with the protocol\'s code and write nothing', async () => {
  const name = dbName();
  const db = await open({ name, stores: ['s'] });
  const cases = [
    [() => db.put('s', 42, 1), 'bad_request'],
    [() => db.put('s', '', 1), 'invalid_key'],
    [() => db.put('s', 'a\u0000b', 1), 'invalid_key'],
    [() => db.put('s', 'x\ud800', 1), 'invalid_key'],
    [() => db.put('s', 'é'.repeat(513), 1), 'invalid_key'],
    [() => db.put('s', 'k', undefined), 'bad_request'],
    [() => db.put('s', 'k', () => 1), 'bad_request'],
    [() => db.put('s', 'k', NaN), 'bad_request'],
    [() => db.put('s', 'k', { d: new Date() }), 'bad_request'],
    [() => db.put('s', 'k', [1, undefined]), 'bad_request'],
    [() => db.put('s', 'k', 10n), 'bad_request'],
    [() => db.put('s', 'k', 'lone \udc00'), 'bad_request'],
    [() => { const o = {}; o.o = o; return db.put('s', 'k', o); }, 'bad_request'],
    [() => db.put('s', 'k', 'x'.repeat(65535)), 'value_too_large'], // 65537 bytes with the quotes
    [() => db.put('other', 'k', 1), 'store_not_found'],
    [() => db.put('bad name', 'k', 1), 'invalid_store'],
    [() => db.get('other', 'k'), 'store_not_found'],
    [() => db.subscribe('other', () => {}), 'store_not_found'],
  ];
  for (const [fn, code] of cases) {
    await assert.rejects(async () => fn(), (e) => {
      assert.ok(e instanceof ZooSyncError, `${e}`);
      assert.equal(e.code, code, `${fn}: ${e.message}`);
      assert.ok(e.message.length > 0);
      return true;
    });
  }
  // Right at the limit is fine: 65534 x's + 2 quotes = 65536 bytes.
  await db.put('s', 'k', 'x'.repeat(65534));
  await db.put('s', 'é'.repeat(512), null); // 1024 bytes: valid, and null is a value
  assert.equal(await db.get('s', 'é'.repeat(512)), null);
  const r = await raw(name);
  assert.equal(r.mutations.length, 2);
  assert.equal(r.records.length, 2);
});

test('transaction(): all writes in one IndexedDB transaction and one tx group, or none', async () => {
  const name = dbName();
  const db = await open({ name, stores: ['s', 't'] });
  const seen = [];
  db.subscribe('s', (c) => seen.push(c));
  await db.put('s', 'b', 'old');
  const out = await db.transaction(async (tx) => {
    await tx.put('s', 'a', 1);
    assert.equal(await tx.get('s', 'a'), 1, 'a transaction reads its own writes');
    assert.equal(await tx.get('s', 'b'), 'old');
    await tx.delete('s', 'b');
    assert.equal(await tx.get('s', 'b'), undefined);
    await tx.put('s', 'c', { x: 1 });
    return 'done';
  });
  assert.equal(out, 'done');
  const log = await db.pendingMutations();
  const group = log.slice(1);
  assert.equal(group.length, 3);
  assert.ok(group[0].tx && group.every((m) => m.tx === group[0].tx), 'one tx id for the group');
  assert.deepEqual(group.map((m) => m.id), [2, 3, 4]);
  assert.equal(log[0].tx, undefined);
  assert.deepEqual(seen.at(-1).map((c) => [c.key, c.deleted, c.origin]), [['a', false, 'local'], ['b', true, 'local'], ['c', false, 'local']]);

  // A callback that throws writes nothing.
  await assert.rejects(db.transaction(async (tx) => { await tx.put('s', 'z', 1); throw new Error('app failure'); }), /app failure/);
  assert.equal(await db.get('s', 'z'), undefined);
  // An invalid write inside rejects the whole transaction.
  await assert.rejects(db.transaction(async (tx) => { await tx.put('s', 'y', 1); await tx.put('s', 'q', undefined); }), (e) => e.code === 'bad_request');
  assert.equal(await db.get('s', 'y'), undefined);
  // Over the group limit: tx_too_large, nothing written.
  await assert.rejects(db.transaction(async (tx) => {
    for (let i = 0; i < 20; i++) await tx.put('s', `big${i}`, 'x'.repeat(60000));
  }), (e) => e.code === 'tx_too_large');
  await assert.rejects(db.transaction(async (tx) => { for (let i = 0; i < 1001; i++) await tx.put('s', `n${i}`, i); }), (e) => e.code === 'tx_too_large');
  // One group lives in one store.
  await assert.rejects(db.transaction(async (tx) => { await tx.put('s', 'm', 1); await tx.put('t', 'm', 1); }), (e) => e.code === 'bad_request');
  assert.equal((await db.pendingMutations()).length, 4);
  assert.equal((await raw(name)).records.length, 3);
});

test('two instances of one database (two tabs) allocate distinct, increasing ids under concurrency', async () => {
  const name = dbName();
  const a = await open({ name, stores: ['s'] });
  const b = await open({ name, stores: ['s'] });
  const writes = [];
  for (let i = 0; i < 50; i++) {
    writes.push(a.put('s', `a${i}`, i));
    writes.push(b.put('s', `b${i}`, i));
  }
  writes.push(a.transaction(async (tx) => { await tx.put('s', 'ta', 1); await tx.put('s', 'tb', 2); }));
  await Promise.all(writes);
  const log = await a.pendingMutations();
  assert.equal(log.length, 102);
  assert.deepEqual(log.map((m) => m.id), Array.from({ length: 102 }, (_, i) => i + 1), 'ids 1..102, no gap, no repeat');
  const g = log.filter((m) => m.tx);
  assert.equal(g[1].id, g[0].id + 1, 'a group has consecutive ids');
  assert.equal(await a.clientId(), await b.clientId(), 'one client id per database');
  // The other instance learns the local writes through BroadcastChannel.
});

test('writes whose guesses go wrong (two tabs, the same keys again) keep every record and its log entries', async () => {
  // A write guesses the next id and that its keys are new (local.js, write);
  // here the guesses fail: two instances alternate, on keys that exist.
  const name = dbName();
  const a = await open({ name, stores: ['s'] });
  const b = await open({ name, stores: ['s'] });
  const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
  const writes = [];
  for (let r = 0; r < 6; r++) {
    const db = r % 2 ? b : a;
    writes.push(db.transaction(async (tx) => { for (const k of keys) await tx.put('s', k, { r, k }); }));
    writes.push(db.put('s', `single${r % 3}`, r));
  }
  await Promise.all(writes);
  const log = await a.pendingMutations();
  assert.equal(log.length, 6 * 41);
  assert.deepEqual(log.map((m) => m.id), Array.from({ length: 6 * 41 }, (_, i) => i + 1), 'ids 1..246, no gap, no repeat');
  const r = await raw(name);
  for (const k of keys) {
    const rec = r.records.find((x) => x.k === k);
    assert.equal(rec.p.length, 6, `${k}: six pending mutation ids in its row`);
    const mine = r.mutations.filter((m) => m.k === k);
    assert.deepEqual(rec.p, mine.map((m) => m.id), `${k}: the row lists its key's mutations in the log`);
    assert.deepEqual(rec.v, mine[5].v, `${k}: the value is its last mutation's`);
    assert.equal(rec.q, undefined, `${k}: no index entries of version 3`);
  }
  assert.deepEqual((await a.getMeta('s', 'single0')).pending, 2);
  // A key's first pending mutation keeps its base (the record's version, 0 here); the later ones do not.
  for (const k of [...keys, 'single0']) {
    const mine = r.mutations.filter((m) => m.k === k);
    assert.deepEqual(mine.map((m) => m.b), [0, ...mine.slice(1).map(() => undefined)], `${k}: the base is kept on its first mutation only`);
  }
  await a.put('s', 'k0', 'again'); // a guess that holds again: ids go on
  assert.equal((await a.pendingMutations()).at(-1).id, 6 * 41 + 1);
  assert.equal(await b.get('s', 'k0'), 'again');
});

test('subscribers of other instances learn local writes (BroadcastChannel)', async () => {
  const name = dbName();
  const a = await open({ name, stores: ['s'] });
  const b = await open({ name, stores: ['s'] });
  const got = [];
  b.subscribe('s', (c) => got.push(...c));
  await a.put('s', 'k', { v: 1 });
  const end = Date.now() + 2000;
  while (!got.length && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got, [{ key: 'k', value: { v: 1 }, deleted: false, origin: 'local' }]);
});

test('status counts pending mutations and their age', async () => {
  const db = await open({ name: dbName(), stores: ['s'] });
  const statuses = [];
  db.on('status', (s) => statuses.push(s));
  await db.put('s', 'a', 1);
  await new Promise((r) => setTimeout(r, 60));
  await db.put('s', 'b', 1);
  const end = Date.now() + 2000;
  while (db.status.pending !== 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  const s = db.status;
  assert.equal(s.pending, 2);
  assert.ok(s.oldestPendingMs >= 50, `oldestPendingMs ${s.oldestPendingMs}`);
  assert.equal(s.leader, true);
  for (const k of ['online', 'connected', 'pending', 'oldestPendingMs', 'lastSyncAt', 'leader', 'progress', 'error']) assert.ok(k in s, k);
  assert.ok(statuses.length >= 1);
});

test('a reopened database reports its pending mutations as soon as openSyncDB resolves', async () => {
  // A browser test once waited for `status.pending === 0` right after a
  // reopen and went on before anything was pushed: the count was read from
  // IndexedDB after openSyncDB had resolved, and until then it said 0.
  const name = dbName();
  const a = await open({ name, stores: ['s'], offline: true });
  await a.put('s', 'a', 1);
  await a.transaction((t) => { t.put('s', 'b', 2); t.put('s', 'c', 3); });
  await a.close();
  const b = await open({ name, stores: ['s'], offline: true });
  assert.equal(b.status.pending, 3, 'pending right after the open');
  assert.ok(b.status.oldestPendingMs !== null);
});

test('zkPath follows the gateway layout; sizes follow compact JSON', () => {
  // FNV-1a-64 of "todo:1" ends in 0x2dc (see the README tour's cursor ...b60c68723b7972dc...): bucket 2dc of 4096.
  assert.equal(zkPath('/zoosync', 'todos', 'todo:1'), '/zoosync/stores/todos/r/2dc/todo:1');
  assert.match(zkPath('/r', 's', 'a b/%'), /^\/r\/stores\/s\/r\/[0-9a-f]{3}\/a%20b%2F%25$/);
  assert.match(zkPath('/r', 's', '..'), /\/%2E%2E$/);
  assert.match(zkPath('/r', 's', 'é'), /\/%C3%A9$/);
  assert.equal(toJSONText({ a: [1, 'é'], b: null }), '{"a":[1,"é"],"b":null}');
  assert.equal(utf8Length('é😀'), 6);
});

test('openSyncDB validates its options', async () => {
  await assert.rejects(openSyncDB({ stores: ['s'] }), (e) => e.code === 'bad_request');
  await assert.rejects(openSyncDB({ name: dbName(), stores: [] }), (e) => e.code === 'bad_request');
  await assert.rejects(openSyncDB({ name: dbName(), stores: ['a/b'] }), (e) => e.code === 'invalid_store');
});
