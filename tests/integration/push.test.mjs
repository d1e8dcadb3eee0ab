// POST /v1/stores/{s}/push: outcomes per mutation, versions, tx groups,
// exactly-once (also across gateways), rejected requests.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it } from '../lib/harness.mjs';
import { expectError, CURSOR_RE, byKey } from '../lib/http.mjs';
import { put, del } from '../lib/records.mjs';
import { gatewayPair, freshStore } from '../lib/fixtures.mjs';

const env = setupEnv();
let A, B, a, b;

before(async () => {
  ({ A, B, a, b } = await gatewayPair(env));
});

const newStore = (body) => freshStore(a, { prefix: 'p', body });
const statuses = (r) => r.results.map((x) => x.status);

async function record(store, key) {
  const r = await a.getRecord(store, key);
  if (r.status === 404) { expectError(r, 404, 'not_found'); return null; }
  assert.equal(r.status, 200, r.text);
  return r.json;
}

function assertApplied(res, version, { changed = true } = {}) {
  assert.equal(res.status, 'applied', JSON.stringify(res));
  if (version === null) assert.ok(!('version' in res) || res.version === undefined, `no version expected: ${JSON.stringify(res)}`);
  else assert.equal(res.version, version, JSON.stringify(res));
  if (changed) assert.match(res.cursor || '', CURSOR_RE, `applied change without cursor: ${JSON.stringify(res)}`);
  else assert.ok(!('cursor' in res), `no-op delete carries a cursor: ${JSON.stringify(res)}`);
}
function assertConflict(res, current, { txAborted } = {}) {
  assert.equal(res.status, 'conflict', JSON.stringify(res));
  assert.ok('current' in res, `conflict without current: ${JSON.stringify(res)}`);
  if (current !== undefined) assert.deepEqual(res.current, current, `current of ${JSON.stringify(res)}`);
  if (txAborted === true) assert.equal(res.reason, 'tx_aborted', JSON.stringify(res));
  if (txAborted === false) assert.notEqual(res.reason, 'tx_aborted', JSON.stringify(res));
  assert.ok(!('cursor' in res), `conflict carries a cursor: ${JSON.stringify(res)}`);
}

it('applied: create and update, versions, cursors, lastMutationId', async () => {
  const s = await newStore();
  const c0 = await a.getCursor(s);
  const r1 = await a.pushOk(s, 'c1', [put(1, 'k', { n: 1 }, { base: 0 })]);
  assertApplied(r1.results[0], 1);
  assert.equal(r1.lastMutationId, 1);
  assert.ok(r1.cursor >= r1.results[0].cursor, 'push cursor covers its changes');
  assert.ok(r1.results[0].cursor > c0);
  const r2 = await a.pushOk(s, 'c1', [put(2, 'k', { n: 2 }, { base: 1 })]);
  assertApplied(r2.results[0], 2);
  assert.ok(r2.results[0].cursor > r1.results[0].cursor, 'later change, greater cursor');
  assert.equal(r2.lastMutationId, 2);
  const rec = await record(s, 'k');
  assert.deepEqual(rec, { key: 'k', value: { n: 2 }, version: 2, cursor: r2.results[0].cursor });
  const ch = await a.changesOk(s, { since: c0 });
  assert.deepEqual(ch.changes.map((c) => [c.key, c.version, c.cursor]), [['k', 2, r2.results[0].cursor]]);
  assert.deepEqual(ch.changes[0].value, { n: 2 });
});

it('empty mutations: 200, results [], lastMutationId 0 for a new client, then the last id', async () => {
  const s = await newStore();
  const r = await a.pushOk(s, 'fresh', []);
  assert.deepEqual(r.results, []);
  assert.equal(r.lastMutationId, 0);
  await a.pushOk(s, 'fresh', [put(3, 'x', 1), put(7, 'y', 1)]);
  const r2 = await a.pushOk(s, 'fresh', []);
  assert.equal(r2.lastMutationId, 7);
});

it('conflict: wrong base changes nothing and reports the present record', async () => {
  const s = await newStore();
  const r1 = await a.pushOk(s, 'c1', [put(1, 'k', 'a', { base: 0 })]);
  assertApplied(r1.results[0], 1);
  const r = await a.pushOk(s, 'c1', [
    put(2, 'k', 'b', { base: 5 }),
    put(3, 'k', 'b', { base: 0 }),
    del(4, 'k', { base: 2 }),
    put(5, 'absent', 1, { base: 1 }),
    del(6, 'absent', { base: 3 }),
  ]);
  assertConflict(r.results[0], { value: 'a', version: 1 });
  assertConflict(r.results[1], { value: 'a', version: 1 });
  assertConflict(r.results[2], { value: 'a', version: 1 });
  assertConflict(r.results[3], null);
  assertConflict(r.results[4], null);
  assert.equal(r.lastMutationId, 6);
  assert.deepEqual((await record(s, 'k')).value, 'a');
  assert.equal((await record(s, 'k')).version, 1);
  assert.equal(await record(s, 'absent'), null);
  const ch = await a.changesOk(s, { since: r1.cursor });
  assert.deepEqual(ch.changes, [], 'conflicts left no change in the feed');
});

it('duplicate: a retried request is never applied twice; ids at or below the last are duplicates', async () => {
  const s = await newStore();
  const muts = [put(1, 'k1', 1), put(2, 'k2', 2, { base: 0 })];
  const r1 = await a.pushOk(s, 'c1', muts);
  assert.deepEqual(statuses(r1), ['applied', 'applied']);
  const r2 = await a.pushOk(s, 'c1', muts);
  assert.deepEqual(statuses(r2), ['duplicate', 'duplicate']);
  assert.equal(r2.lastMutationId, 2);
  assert.equal((await record(s, 'k1')).version, 1);
  assert.equal((await record(s, 'k2')).version, 1);
  assert.deepEqual((await a.changesOk(s, { since: r1.cursor })).changes, []);
  // An old id with other content is still a duplicate, and not applied.
  const r3 = await a.pushOk(s, 'c1', [put(1, 'other', 1), put(3, 'k3', 3)]);
  assert.deepEqual(statuses(r3), ['duplicate', 'applied']);
  assert.equal(await record(s, 'other'), null);
  // A gap: ids 4..9 never sent, 10 applied; then 5 is a duplicate.
  await a.pushOk(s, 'c1', [put(10, 'k10', 10)]);
  const r4 = await a.pushOk(s, 'c1', [put(5, 'k5', 5)]);
  assert.deepEqual(statuses(r4), ['duplicate']);
  assert.equal(r4.lastMutationId, 10);
  assert.equal(await record(s, 'k5'), null);
});

it('conflict retried stays a conflict even when its base matches by then, with the present record', async () => {
  const s = await newStore();
  await a.pushOk(s, 'setup', [put(1, 'k', 'a')]);
  const r1 = await a.pushOk(s, 'c1', [put(1, 'k', 'mine', { base: 2 })]);
  assertConflict(r1.results[0], { value: 'a', version: 1 });
  // Someone else moves k to version 2: the retried mutation's base now matches.
  await a.pushOk(s, 'setup', [put(2, 'k', 'b')]);
  const r2 = await a.pushOk(s, 'c1', [put(1, 'k', 'mine', { base: 2 })]);
  assertConflict(r2.results[0], { value: 'b', version: 2 });
  const rec = await record(s, 'k');
  assert.equal(rec.value, 'b');
  assert.equal(rec.version, 2);
  const r3 = await b.pushOk(s, 'c1', [put(1, 'k', 'mine', { base: 2 })]);
  assertConflict(r3.results[0], { value: 'b', version: 2 });
  assert.equal((await record(s, 'k')).value, 'b');
});

it('tx: all or none; the aborted group leaves no trace; a failing member reports current', async () => {
  const s = await newStore();
  const setup = await a.pushOk(s, 'setup', [put(1, 'k1', 'one')]);
  const r = await a.pushOk(s, 'c1', [
    put(1, 'a', 1, { base: 0, tx: 'g' }),
    put(2, 'k1', 'two', { base: 9, tx: 'g' }),
    put(3, 'b', 1, { base: 0, tx: 'g' }),
  ]);
  assertConflict(r.results[0], null, { txAborted: true });
  assertConflict(r.results[1], { value: 'one', version: 1 }, { txAborted: false });
  assertConflict(r.results[2], null, { txAborted: true });
  assert.equal(r.lastMutationId, 3);
  assert.equal(await record(s, 'a'), null);
  assert.equal(await record(s, 'b'), null);
  assert.equal((await record(s, 'k1')).version, 1);
  assert.deepEqual((await a.changesOk(s, { since: setup.cursor })).changes, [], 'aborted group in the feed');

  // A group that holds: every member applied, in one go.
  const r2 = await a.pushOk(s, 'c1', [
    put(4, 'a', 1, { base: 0, tx: 'h' }),
    put(5, 'k1', 'two', { base: 1, tx: 'h' }),
    del(6, 'k1', { base: 2, tx: 'h' }),
  ]);
  assertApplied(r2.results[0], 1);
  assertApplied(r2.results[1], 2);
  assertApplied(r2.results[2], 3);
  assert.equal(new Set(r2.results.map((x) => x.cursor)).size, 3, 'distinct cursors inside one transaction');
  const ch = byKey((await a.changesOk(s, { since: setup.cursor })).changes);
  assert.deepEqual([...ch.keys()].sort(), ['a', 'k1']);
  assert.equal(ch.get('k1').deleted, true);
  assert.equal(ch.get('k1').version, 3);
  assert.equal(ch.get('k1').cursor, r2.results[2].cursor);
  assert.equal(ch.get('a').cursor, r2.results[0].cursor);

  // Mutations after an aborted group see the state without it.
  const r3 = await a.pushOk(s, 'c1', [
    put(7, 'z', 'in-tx', { base: 0, tx: 'x' }),
    put(8, 'a', 'bad', { base: 99, tx: 'x' }),
    put(9, 'z', 'after', { base: 0 }),
    put(10, 'z', 'again', { base: 1 }),
  ]);
  assertConflict(r3.results[0], null, { txAborted: true });
  assertConflict(r3.results[1], { value: 1, version: 1 }, { txAborted: false });
  assertApplied(r3.results[2], 1);
  assertApplied(r3.results[3], 2);
  assert.deepEqual((await record(s, 'z')).value, 'again');
  assert.equal((await record(s, 'a')).value, 1);
});

it('several mutations of one key in one request are evaluated in order', async () => {
  const s = await newStore();
  const c0 = await a.getCursor(s);
  const r = await a.pushOk(s, 'c1', [
    put(1, 'k', 'v1', { base: 0 }),
    put(2, 'k', 'v2', { base: 1 }),
    put(3, 'k', 'v3', { base: 1 }),
    del(4, 'k', { base: 2 }),
    put(5, 'k', 'v5', { base: 0 }),
    put(6, 'k', 'v6', { base: 3 }),
  ]);
  assertApplied(r.results[0], 1);
  assertApplied(r.results[1], 2);
  assertConflict(r.results[2], { value: 'v2', version: 2 });
  assertApplied(r.results[3], 3);
  assertApplied(r.results[4], 4);
  assertConflict(r.results[5], { value: 'v5', version: 4 });
  const rec = await record(s, 'k');
  assert.equal(rec.value, 'v5');
  assert.equal(rec.version, 4);
  const ch = await a.changesOk(s, { since: c0 });
  assert.equal(ch.changes.length, 1, 'one entry per key per response');
  assert.deepEqual([ch.changes[0].key, ch.changes[0].value, ch.changes[0].version, ch.changes[0].cursor], ['k', 'v5', 4, r.results[4].cursor]);
});

it('several mutations of one key inside one tx: in order; a conflict reports the state at that point', async () => {
  const s = await newStore();
  const c0 = await a.getCursor(s);
  const r = await a.pushOk(s, 'c1', [put(1, 'k', 'a', { base: 0, tx: 't' }), put(2, 'k', 'b', { base: 1, tx: 't' })]);
  assertApplied(r.results[0], 1);
  assertApplied(r.results[1], 2);
  assert.notEqual(r.results[0].cursor, r.results[1].cursor, 'two changes of one key in one transaction have distinct cursors');
  assert.ok(r.results[0].cursor < r.results[1].cursor, 'and the later version has the greater cursor');
  const ch = await a.changesOk(s, { since: c0 });
  assert.deepEqual(ch.changes.map((c) => [c.key, c.value, c.version, c.cursor]), [['k', 'b', 2, r.results[1].cursor]]);
  // Reading from the first change's cursor yields the second.
  const ch1 = await a.changesOk(s, { since: r.results[0].cursor });
  assert.deepEqual(ch1.changes.map((c) => [c.key, c.version]), [['k', 2]]);

  const r2 = await a.pushOk(s, 'c1', [put(3, 'k', 'c', { base: 2, tx: 'u' }), put(4, 'k', 'd', { base: 2, tx: 'u' })]);
  assertConflict(r2.results[0], undefined, { txAborted: true });
  assertConflict(r2.results[1], { value: 'c', version: 3 }, { txAborted: false });
  const rec = await record(s, 'k');
  assert.equal(rec.value, 'b');
  assert.equal(rec.version, 2);
});

it('lww: base is ignored, every mutation applied in id order, versions still count', async () => {
  const s = await newStore({ conflict: 'lww' });
  const r = await a.pushOk(s, 'c1', [
    put(1, 'k', 'a', { base: 5 }), put(2, 'k', 'b', { base: 0 }), del(3, 'k', { base: 42 }), put(4, 'k', 'c', { base: 1 }),
    put(5, 'n', 'x', { base: 3, tx: 'g' }), put(6, 'n', 'y', { base: 3, tx: 'g' }),
  ]);
  assert.deepEqual(statuses(r), ['applied', 'applied', 'applied', 'applied', 'applied', 'applied']);
  assert.deepEqual(r.results.map((x) => x.version), [1, 2, 3, 4, 1, 2]);
  const rec = await record(s, 'k');
  assert.equal(rec.value, 'c');
  assert.equal(rec.version, 4);
  assert.equal((await record(s, 'n')).value, 'y');
});

it('unconditional puts and deletes in a cas store', async () => {
  const s = await newStore();
  const r = await a.pushOk(s, 'c1', [put(1, 'k', 1), put(2, 'k', 2), del(3, 'k'), del(4, 'k'), del(5, 'never'), put(6, 'k', 6)]);
  assertApplied(r.results[0], 1);
  assertApplied(r.results[1], 2);
  assertApplied(r.results[2], 3);
  assertApplied(r.results[3], 3, { changed: false });
  assertApplied(r.results[4], null, { changed: false });
  assertApplied(r.results[5], 4);
  assert.equal((await record(s, 'k')).version, 4);
  assert.equal(await record(s, 'never'), null);
});

it('base on deleted keys: 0 and the tombstone version match; no-op deletes change nothing', async () => {
  const s = await newStore();
  const r1 = await a.pushOk(s, 'c1', [put(1, 'k', 'a', { base: 0 }), del(2, 'k', { base: 1 })]);
  assertApplied(r1.results[1], 2);
  const after = r1.cursor;
  const r2 = await a.pushOk(s, 'c1', [
    del(3, 'k', { base: 0 }), del(4, 'k', { base: 2 }), del(5, 'k', { base: 1 }), del(6, 'never', { base: 0 }), del(7, 'never', { base: 1 }),
  ]);
  assertApplied(r2.results[0], 2, { changed: false });
  assertApplied(r2.results[1], 2, { changed: false });
  assertConflict(r2.results[2], null);
  assertApplied(r2.results[3], null, { changed: false });
  assertConflict(r2.results[4], null);
  assert.deepEqual((await a.changesOk(s, { since: after })).changes, [], 'no-op deletes are not changes');
  const r3 = await a.pushOk(s, 'c1', [put(8, 'k', 'b', { base: 2 }), del(9, 'k', { base: 3 }), put(10, 'k', 'c', { base: 0 })]);
  assertApplied(r3.results[0], 3);
  assertApplied(r3.results[1], 4);
  assertApplied(r3.results[2], 5);
  const rec = await record(s, 'k');
  assert.equal(rec.value, 'c');
  assert.equal(rec.version, 5);
});

it('"value": null is stored as JSON null', async () => {
  const s = await newStore();
  const r = await a.pushOk(s, 'c1', [put(1, 'n', null)]);
  assertApplied(r.results[0], 1);
  const rec = await record(s, 'n');
  assert.ok('value' in rec);
  assert.equal(rec.value, null);
  const ch = await a.changesOk(s);
  assert.equal(ch.changes.length, 1);
  assert.ok('value' in ch.changes[0] && ch.changes[0].value === null && !ch.changes[0].deleted);
});

it('a retried mixed request (applied, conflict, aborted tx) gives the same outcome, also on another gateway', async () => {
  const s = await newStore();
  await a.pushOk(s, 'setup', [put(1, 'kc', 'orig')]);
  const muts = [
    put(1, 'm1', 'one', { base: 0 }),
    put(2, 'kc', 'x', { base: 5 }),
    put(3, 't1', 'in-tx', { base: 0, tx: 'g' }),
    put(4, 'kc', 'y', { base: 9, tx: 'g' }),
    del(5, 'm1', { base: 1 }),
    put(6, 'm2', 'two'),
  ];
  const r1 = await a.pushOk(s, 'cm', muts);
  assert.deepEqual(statuses(r1), ['applied', 'conflict', 'conflict', 'conflict', 'applied', 'applied']);
  assert.equal(r1.results[2].reason, 'tx_aborted');
  const check = (r, who) => {
    assert.deepEqual(statuses(r), ['duplicate', 'conflict', 'conflict', 'conflict', 'duplicate', 'duplicate'], `${who}: ${JSON.stringify(r)}`);
    assert.deepEqual(r.results[1].current, { value: 'orig', version: 1 }, who);
    assert.deepEqual(r.results[3].current, { value: 'orig', version: 1 }, who);
    assert.equal(r.lastMutationId, 6, who);
  };
  check(await a.pushOk(s, 'cm', muts), 'retry on A');
  check(await b.pushOk(s, 'cm', muts), 'retry on B');
  check(await a.pushOk(s, 'cm', muts), 'second retry on A');
  assert.deepEqual((await a.changesOk(s, { since: r1.cursor })).changes, [], 'retries changed nothing');
  assert.deepEqual((await b.changesOk(s, { since: r1.cursor })).changes, [], 'retries changed nothing (B)');
  assert.equal(await record(s, 'm1'), null);
  assert.equal(await record(s, 't1'), null);
  assert.equal((await record(s, 'm2')).version, 1);
  assert.equal((await record(s, 'kc')).version, 1);
});

it('a retry sent to a second gateway after the first applied is a duplicate', async () => {
  const s = await newStore();
  const muts = [put(1, 'k', 1), put(2, 'k', 2, { tx: 'g' }), put(3, 'j', 3, { tx: 'g' })];
  const r1 = await a.pushOk(s, 'c2', muts);
  assert.deepEqual(statuses(r1), ['applied', 'applied', 'applied']);
  const r2 = await b.pushOk(s, 'c2', muts);
  assert.deepEqual(statuses(r2), ['duplicate', 'duplicate', 'duplicate']);
  assert.equal(r2.lastMutationId, 3);
  const r3 = await b.pushOk(s, 'c2', [...muts, put(4, 'k', 4)]);
  assert.deepEqual(statuses(r3), ['duplicate', 'duplicate', 'duplicate', 'applied']);
  assert.equal(r3.results[3].version, 3);
  assert.equal((await record(s, 'k')).version, 3);
  assert.equal((await record(s, 'j')).version, 1);
});

it('rejected requests apply nothing and consume no ids', async () => {
  const s = await newStore({ maxValueBytes: 100 });
  const c = 'crej';
  const first = put(1, 'r-first', 'ok');
  const rejects = [
    [[first, put(1, 'r-x', 1)], 400, 'bad_request'],
    [[first, put(2, 'r-x', 1, { tx: 't' }), put(3, 'r-y', 1), put(4, 'r-z', 1, { tx: 't' })], 400, 'bad_request'],
    [[first, { id: 2, key: 'r-x', op: 'put' }], 400, 'bad_request'],
    [[first, { id: 2, key: 'r-x', op: 'merge', value: 1 }], 400, 'bad_request'],
    [[first, { id: 2, key: 7, op: 'put', value: 1 }], 400, 'bad_request'],
    [[first, put(2, '', 1)], 400, 'invalid_key'],
    [[first, put(2, 'r-x', 'x'.repeat(200))], 413, 'value_too_large'],
    [Array.from({ length: 1001 }, (_, i) => put(i + 1, `r-${i}`, i)), 400, 'bad_request'],
  ];
  for (const [muts, status, code] of rejects) expectError(await a.push(s, c, muts), status, code);
  expectError(await a.push(s, 'bad client!', [first]), 400, 'bad_request');
  const r = await a.pushOk(s, c, []);
  assert.equal(r.lastMutationId, 0);
  assert.deepEqual((await a.changesOk(s)).changes, [], 'nothing in the store');
  const ok = await a.pushOk(s, c, [first, put(2, 'r-x', 1)]);
  assert.deepEqual(statuses(ok), ['applied', 'applied']);
});

it('exactly-once state is per (store, client)', async () => {
  const s1 = await newStore();
  const s2 = await newStore();
  const r1 = await a.pushOk(s1, 'same', [put(1, 'k', 's1')]);
  assert.deepEqual(statuses(r1), ['applied']);
  const r2 = await a.pushOk(s2, 'same', [put(1, 'k', 's2')]);
  assert.deepEqual(statuses(r2), ['applied'], 'same client id in another store is independent');
  assert.equal(r2.lastMutationId, 1);
  const r3 = await a.pushOk(s1, 'other', [put(1, 'k', 'o')]);
  assert.deepEqual(statuses(r3), ['applied'], 'another client in the same store is independent');
  assert.deepEqual(statuses(await a.pushOk(s1, 'same', [put(1, 'k', 'again')])), ['duplicate']);
  assert.deepEqual(statuses(await b.pushOk(s2, 'same', [put(1, 'k', 'again')])), ['duplicate']);
  assert.equal((await record(s1, 'k')).version, 2);
  assert.equal((await record(s2, 'k')).version, 1);
  assert.equal((await record(s2, 'k')).value, 's2');
});

it('push cursor: reading from it returns nothing older; from before the push, exactly the pushed keys', async () => {
  const s = await newStore();
  await a.pushOk(s, 'setup', [put(1, 'old', 1)]);
  const c0 = await a.getCursor(s);
  const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
  const r = await a.pushOk(s, 'c1', [...keys.map((k, i) => put(i + 1, k, i)), put(13, 'k0', 'last', { tx: 'g' }), put(14, 'k1', 'last', { tx: 'g' })]);
  assert.ok(r.results.every((x) => x.status === 'applied'));
  for (const api of [a, b]) {
    assert.deepEqual((await api.changesOk(s, { since: r.cursor })).changes, [], 'nothing after the push cursor');
    const ch = await api.changesOk(s, { since: c0 });
    assert.deepEqual(ch.changes.map((c) => c.key).sort(), [...keys].sort());
    const last = new Map();
    r.results.forEach((x, i) => last.set([...keys.map((k) => k), 'k0', 'k1'][i], x.cursor));
    for (const c of ch.changes) assert.equal(c.cursor, last.get(c.key), `cursor of ${c.key} is its last applied result's`);
    assert.equal(byKey(ch.changes).get('k0').value, 'last');
    assert.ok(r.cursor >= ch.changes[ch.changes.length - 1].cursor);
  }
});

it('concurrent clients (group commit) do not affect each other (conflicts and aborted groups stay theirs)', async () => {
  const s = await newStore();
  const N = 30;
  for (let round = 0; round < 3; round++) {
    const base = round * 10;
    const outs = await Promise.all(Array.from({ length: N }, (_, i) => (i % 2 ? a : b).pushOk(s, `cc${i}`, [
      put(base + 1, `own${i}`, `r${round}`, { base: round }),          // applied (version round+1)
      put(base + 2, `own${i}`, 'bad', { base: 99 }),                     // conflict
      put(base + 3, `grp${i}-${round}`, 1, { base: 0, tx: 'g' }),       // aborted with the next
      put(base + 4, `own${i}`, 'bad', { base: 0, tx: 'g' }),             // conflict
      put(base + 5, `tx${i}`, round, { tx: 'h' }),                       // applied group
      put(base + 6, `tx${i}-b`, round, { tx: 'h' }),
    ])));
    outs.forEach((r, i) => {
      assert.deepEqual(statuses(r), ['applied', 'conflict', 'conflict', 'conflict', 'applied', 'applied'], `client ${i} round ${round}: ${JSON.stringify(r)}`);
      assert.equal(r.results[0].version, round + 1);
      assert.deepEqual(r.results[1].current, { value: `r${round}`, version: round + 1 });
      assert.equal(r.results[2].reason, 'tx_aborted');
      assert.deepEqual(r.results[3].current, { value: `r${round}`, version: round + 1 });
      assert.equal(r.results[4].version, round + 1);
      assert.equal(r.lastMutationId, base + 6);
    });
  }
  const live = byKey((await a.changesAll(s)).changes);
  assert.equal(live.size, 3 * N, 'own, tx and tx-b per client; no aborted group member');
  for (let i = 0; i < N; i++) {
    assert.deepEqual([live.get(`own${i}`).value, live.get(`own${i}`).version], ['r2', 3]);
    assert.equal(live.get(`tx${i}`).version, 3);
  }
});

it('the same request racing on two gateways is applied once', async () => {
  const s = await newStore();
  await a.pushOk(s, 'setup', [put(1, 'k', 0)]);
  let version = 1;
  for (let i = 1; i <= 10; i++) {
    const muts = [put(2 * i, 'k', i, { base: version }), put(2 * i + 1, `j${i}`, i, { base: 0, tx: 't' })];
    const [ra, rb] = await Promise.all([a.pushOk(s, 'racer', muts), b.pushOk(s, 'racer', muts)]);
    for (let m = 0; m < muts.length; m++) {
      const pair = [ra.results[m].status, rb.results[m].status];
      assert.ok(pair.every((x) => x === 'applied' || x === 'duplicate'), `round ${i} mutation ${m}: ${pair}`);
      assert.equal(pair.filter((x) => x === 'applied').length, 1, `round ${i} mutation ${m} applied exactly once: ${pair}`);
    }
    version++;
    const rec = await record(s, 'k');
    assert.equal(rec.version, version);
    assert.equal(rec.value, i);
  }
  assert.equal((await record(s, 'j10')).version, 1);
});

it('a tx group of 1000 mutations is all or none', async () => {
  const s = await newStore({ maxValueBytes: 1000 });
  const c0 = await a.getCursor(s);
  const muts = Array.from({ length: 1000 }, (_, i) => put(i + 1, `t${i}`, i, { base: 0, tx: 'huge' }));
  muts[999] = put(1000, 't0', 'clash', { base: 0, tx: 'huge' });   // t0 was created earlier in the group
  const r = await a.pushOk(s, 'big', muts);
  assert.equal(r.results.filter((x) => x.status === 'conflict').length, 1000);
  assert.deepEqual(r.results[999].current, { value: 0, version: 1 }, 'the state at that point');
  assert.deepEqual((await a.changesOk(s, { since: c0 })).changes, []);
  const ok = muts.map((m, i) => ({ ...m, id: 1000 + i + 1, ...(i === 999 ? { key: 't999', value: 999 } : {}) }));
  const r2 = await a.pushOk(s, 'big', ok);
  assert.ok(r2.results.every((x) => x.status === 'applied' && x.version === 1));
  const all = await b.changesAll(s, { since: c0, limit: 10000 });
  assert.equal(all.changes.length, 1000);
});

// Every size of push from 1 to 70 mutations, and around 128 and 256: the
// operations buffer grows by doubling, and the client node's and the config
// check's operations come last. A chunk whose evaluation ended one short of
// the buffer's size once wrote the last of them past its end (heap overflow
// under the sanitizers, with 63 puts when the buffer started at 64).
it('pushes of every size up to 70 mutations (and 127, 128, 255, 256) are all applied', async () => {
  const s = await newStore();
  const sizes = [...Array.from({ length: 70 }, (_, i) => i + 1), 127, 128, 255, 256];
  for (const n of sizes) {
    const muts = Array.from({ length: n }, (_, i) => put(i + 1, `n${n}:k${i}`, { i }, { base: 0 }));
    const r = await a.pushOk(s, `sizes${n}`, muts);
    assert.equal(r.results.length, n);
    for (const x of r.results) assertApplied(x, 1);
    assert.equal(r.lastMutationId, n);
  }
  const all = await a.changesOk(s, { limit: 10000 });
  assert.equal(all.changes.length, sizes.reduce((x, y) => x + y, 0));
});
