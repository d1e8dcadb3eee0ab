// Live changes: foreign ZooKeeper writes (zkCli) reaching the feed and open
// event streams within a second, non-JSON foreign values served as deleted,
// event-stream resume with Last-Event-ID across a gateway restart, pushes
// creating several keys at once reaching streams and pull followers, and two
// gateways under interleaved concurrent writers agreeing on order and state
// (pull pages, pull followers and SSE sequences).
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { setupEnv, it, startGateway, sleep, zkCli, recordZnode } from '../lib/harness.mjs';
import { Api, byKey, assertCursorOrder, getMetrics, CURSOR_RE, plainChange, assertSameChanges } from '../lib/http.mjs';
import { openEvents, closeAllEvents } from '../lib/sse.mjs';
import { put, del } from '../lib/records.mjs';
import { gatewayPair, sharedStore as sharedStoreOn } from '../lib/fixtures.mjs';

const env = setupEnv();
let A, B, a, b;

before(async () => {
  ({ A, B, a, b } = await gatewayPair(env, { parallel: true }));
});
after(() => closeAllEvents());

const sharedStore = (body) => sharedStoreOn(a, b, { prefix: 'lv', body, otherName: 'B' });

/** Every change cursor of a stream strictly increases, and so do the event ids. */
function assertStreamOrder(es, what) {
  assertCursorOrder(es.changes);
  for (let i = 1; i < es.ids.length; i++) assert.ok(es.ids[i - 1] < es.ids[i], `${what}: event ids not increasing: ${es.ids[i - 1]} then ${es.ids[i]}`);
  for (const e of es.events) {
    assert.equal(e.event, 'change', `${what}: unexpected event ${e.event} ${e.rawData}`);
    assert.match(e.id, CURSOR_RE, `${what}: event id`);
    assert.equal(e.data.cursor, e.id, `${what}: data.cursor is the event id`);
    for (const c of e.data.changes) assert.ok(c.cursor <= e.id, `${what}: change ${c.cursor} after its event id ${e.id}`);
  }
}

/**
 * Runs foreign writes (zkCli commands) one after the other while streams on
 * A and B are open since c0. After each: the change is on both streams within
 * 1 s of zkCli exiting (checked before any /changes request could help), then
 * /changes on both gateways, without waiting, has exactly that change, and the
 * streams carry exactly it. Returns the feed's changes.
 */
async function foreignSteps(s, c0, streams, steps, onStep = async () => {}) {
  let since = c0;
  const expected = [];
  for (const st of steps) {
    const r = await zkCli(env.zk.connect, ...st.cmd);
    const doneAt = Date.now();
    assert.ok(r.ok, `zkCli ${st.cmd.join(' ')}: ${r.stderr} ${r.stdout}`);
    for (const [name, es] of Object.entries(streams)) {
      const left = Math.max(1, doneAt + 1000 - Date.now());
      const got = await es.waitFor((x) => x.changes.find((c) => c.key === st.expect.key && c.version === st.expect.version && !!c.deleted === !!st.expect.deleted && c.cursor > since),
        { ms: left, what: `${st.what}: on the stream of ${name} within 1 s of zkCli exiting` });
      assert.ok(got.at - doneAt <= 1000, `${st.what}: arrived on ${name} ${got.at - doneAt} ms after the write`);
    }
    let change;
    for (const api of [a, b]) {
      const ch = await api.changesOk(s, { since });
      assert.equal(ch.changes.length, 1, `${st.what}: one change since ${since}: ${JSON.stringify(ch.changes)}`);
      const { cursor, ...rest } = plainChange(ch.changes[0]);
      assert.deepEqual(rest, st.expect, `${st.what}: the feed`);
      if (change) assert.deepEqual(plainChange(ch.changes[0]), change, `${st.what}: both gateways agree`);
      change = plainChange(ch.changes[0]);
    }
    for (const [name, es] of Object.entries(streams)) {
      const onStream = es.changes.filter((c) => c.cursor > since).map(plainChange);
      assert.deepEqual(onStream, [change], `${st.what}: the stream of ${name} carries exactly the feed's change`);
    }
    await onStep(st, change);
    expected.push(change);
    since = change.cursor;
  }
  for (const [name, es] of Object.entries(streams)) {
    assertStreamOrder(es, name);
    assert.deepEqual(es.changes.map(plainChange), expected, `the stream of ${name}: every step, nothing else`);
    assert.equal(es.ended, false, `the stream of ${name} is still open`);
  }
  return expected;
}

async function openBoth(s, since) {
  const streams = { A: openEvents(A, s, { since }), B: openEvents(B, s, { since }) };
  for (const es of Object.values(streams)) {
    await es.opened();
    await es.waitFor((x) => x.comments.length > 0, { ms: 3000, what: 'the opening comment' });
  }
  return streams;
}

it('foreign writes through zkCli (create, set, hard delete, delete+recreate) reach /changes and open streams within 1 s', async () => {
  const s = await sharedStore();
  // A key written through the gateway first (version 3), to hard-delete and re-create from outside.
  await a.pushOk(s, 'c', [put(1, 'g1', 'v1'), put(2, 'g1', 'v2'), put(3, 'g1', 'v3')]);
  const c0 = await a.getCursor(s);
  const streams = await openBoth(s, c0);
  try {
    const f1 = recordZnode(env.root, s, 'f1');
    const g1 = recordZnode(env.root, s, 'g1');
    await foreignSteps(s, c0, streams, [
      { what: 'create of a new key (pretty-printed JSON)', cmd: ['create', f1.path, '{ "n" : 1 ,  "s" : "a b" }'], expect: { key: 'f1', value: { n: 1, s: 'a b' }, version: 1 } },
      { what: 'set of that key', cmd: ['set', f1.path, '[1, 2, 3]'], expect: { key: 'f1', value: [1, 2, 3], version: 2 } },
      { what: 'hard delete of the foreign key', cmd: ['delete', f1.path], expect: { key: 'f1', deleted: true, version: 2 } },
      { what: 'hard delete of a gateway-written key (version 3)', cmd: ['delete', g1.path], expect: { key: 'g1', deleted: true, version: 3 } },
      { what: 're-create after the hard delete (the version restarts)', cmd: ['create', g1.path, '{"again":true}'], expect: { key: 'g1', value: { again: true }, version: 1 } },
      { what: 'set after the re-create', cmd: ['set', g1.path, '"x"'], expect: { key: 'g1', value: 'x', version: 2 } },
    ]);
    const live = byKey((await b.changesAll(s)).changes);
    assert.deepEqual([...live.keys()].sort(), ['g1']);
    // The gateways act on the foreign state.
    const p = await b.pushOk(s, 'c', [put(4, 'g1', 'mine', { base: 2 }), put(5, 'f1', 'back', { base: 0 })]);
    assert.deepEqual(p.results.map((x) => [x.status, x.version]), [['applied', 3], ['applied', 1]], JSON.stringify(p.results));
  } finally {
    for (const es of Object.values(streams)) es.close();
  }
});

it('a foreign value that is not JSON is served as deleted and counted in zoosync_foreign_values_rejected_total', async () => {
  const s = await sharedStore();
  await a.pushOk(s, 'c', [put(1, 'g2', { keep: 1 })]);
  const c0 = await a.getCursor(s);
  const streams = await openBoth(s, c0);
  try {
    const rejected = {};
    for (const [name, gw] of [['A', A], ['B', B]]) {
      rejected[name] = (await getMetrics(gw)).get('zoosync_foreign_values_rejected_total');
      assert.equal(typeof rejected[name], 'number', `zoosync_foreign_values_rejected_total is exported by ${name}`);
    }
    const g2 = recordZnode(env.root, s, 'g2');
    const f3 = recordZnode(env.root, s, 'f3');
    await foreignSteps(s, c0, streams, [
      { what: 'set of a gateway-written key to a non-JSON value', cmd: ['set', g2.path, 'not json {'], expect: { key: 'g2', deleted: true, version: 2 }, rejects: true },
      { what: 'the value made JSON again', cmd: ['set', g2.path, '"fixed"'], expect: { key: 'g2', value: 'fixed', version: 3 } },
      { what: 'create of a new key with a non-JSON value', cmd: ['create', f3.path, 'hello world'], expect: { key: 'f3', deleted: true, version: 1 }, rejects: true },
    ], async (st) => {
      if (!st.rejects) return;
      for (const [name, gw] of [['A', A], ['B', B]]) {
        const m = (await getMetrics(gw)).get('zoosync_foreign_values_rejected_total');
        assert.ok(m > rejected[name], `${st.what}: zoosync_foreign_values_rejected_total on ${name} went from ${rejected[name]} to ${m}`);
        rejected[name] = m;
      }
      const live = byKey((await a.changesAll(s)).changes);
      assert.ok(!live.has(st.expect.key), `${st.what}: not a live record from the beginning`);
    });
    // Deleted as far as clients can tell: GET is 404, base 0 matches it, and every response stays JSON.
    for (const api of [a, b]) {
      const g = await api.getRecord(s, 'f3');
      assert.equal(g.status, 404, `GET of the non-JSON record: ${g.status} ${g.text}`);
      assert.ok(g.json, `the GET response is JSON: ${g.text}`);
      const g2r = await api.getRecord(s, 'g2');
      assert.deepEqual([g2r.status, g2r.json && g2r.json.value, g2r.json && g2r.json.version], [200, 'fixed', 3], g2r.text);
    }
    const p = await b.push(s, 'c', [put(2, 'f3', 'json now', { base: 0 })]);
    assert.equal(p.status, 200, p.text);
    assert.ok(p.json, `the push response is JSON: ${p.text}`);
    assert.deepEqual(p.json.results.map((x) => [x.status, x.version]), [['applied', 2]], p.text);
  } finally {
    for (const es of Object.values(streams)) es.close();
  }
});

it('an event stream resumes with Last-Event-ID across a gateway restart: no gap, no duplicate', async () => {
  const s = await sharedStore();
  await a.pushOk(s, 'c', [put(1, 'old0', 'o'), put(2, 'old1', 'o')]);
  const c0 = await a.getCursor(s);
  let es2 = null;
  const es1 = openEvents(A, s, { since: c0 });
  try {
    await es1.opened();
    // (One new key per push here: this test is about resuming; several
    // creations in one transaction have their own test below.)
    const rs = [];
    for (const [id, key] of [[3, 'k1'], [4, 'k2'], [5, 'k3']]) rs.push(await a.pushOk(s, 'c', [put(id, key, id - 2)]));
    await es1.waitFor((x) => x.lastEventId >= rs[2].cursor, { ms: 2000, what: 'k1..k3 on the first stream' });
    const lastId = es1.lastEventId;
    assert.deepEqual(es1.changes.map((c) => c.cursor), rs.map((r) => r.results[0].cursor), 'the first stream carried k1..k3');

    // Stop A: its stream is closed cleanly.
    const port = A.port;
    const st = await A.stop();
    assert.equal(st.code, 0, `A exit: ${JSON.stringify(st)}`);
    await es1.closed(3000);
    assert.equal(es1.endReason, 'server closed the stream', 'the stream ends with a clean end of the response');

    // Meanwhile: writes through B and directly through ZooKeeper.
    await b.pushOk(s, 'c', [put(6, 'k4', 4), del(7, 'old0')]);
    await b.pushOk(s, 'c2', [put(1, 'k5', 5, { tx: 't' }), put(2, 'k6', 6, { tx: 't' })]);
    const z = recordZnode(env.root, s, 'k7');
    const r = await zkCli(env.zk.connect, 'create', z.path, '{"from":"zkCli"}');
    assert.ok(r.ok, `zkCli: ${r.stderr}`);

    // A again, same address; reconnect with the last id. `since` (older) must lose to Last-Event-ID.
    A = await startGateway({ zk: env.zk.connect, root: env.root, name: 'A2', listen: `127.0.0.1:${port}` });
    a = new Api(A);
    es2 = openEvents(A, s, { since: c0, lastEventId: lastId });
    await es2.opened();
    const pending = await b.changesOk(s, { since: lastId });
    assert.equal(pending.changes.length, 5, `five changes were made while A was down: ${JSON.stringify(pending.changes)}`);
    await es2.waitFor((x) => pending.changes.every((p) => x.changes.some((c) => c.cursor === p.cursor)), { ms: 3000, what: 'the backlog after the restart' });
    const r3 = await a.pushOk(s, 'c', [put(8, 'k8', 8)]);
    await es2.waitFor((x) => x.lastEventId >= r3.cursor, { ms: 2000, what: 'a live change after the restart' });
    await sleep(200); // anything extra (a duplicate) would show up now

    assertStreamOrder(es1, 'before the restart');
    assertStreamOrder(es2, 'after the restart');
    assert.ok(es2.changes[0].cursor > lastId, `the resumed stream starts after the last id ${lastId}: ${es2.changes[0].cursor}`);
    const seen = [...es1.changes, ...es2.changes].map(plainChange);
    const feed = (await b.changesAll(s, { since: c0 })).changes.map(plainChange);
    assertSameChanges(seen, feed, 'both streams together are exactly the feed since c0');
    assert.deepEqual(feed.map((c) => c.key).sort(), ['k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'old0']);
    assert.deepEqual(byKey(feed).get('old0').deleted, true);
    assert.equal(es2.ended, false);
  } finally {
    es1.close();
    if (es2) es2.close();
  }
});

it('pushes creating several keys at once: every change reaches an open stream and a /changes follower', async () => {
  const s = await sharedStore();
  const c0 = await a.getCursor(s);
  const es = openEvents(A, s, { since: c0 });
  try {
    await es.opened();
    let writing = true;
    const follower = (async () => {
      let cur = c0;
      const seen = [];
      for (let last = false; ; ) {
        const r = await b.changesOk(s, { since: cur });
        seen.push(...r.changes);
        cur = r.cursor;
        if (last && !r.more) break;
        if (!writing) last = true;
      }
      return seen;
    })();
    const cursors = [];
    try {
      for (let i = 0; i < 20; i++) {
        const r = await a.pushOk(s, 'c', [put(3 * i + 1, `x${i}`, i), put(3 * i + 2, `y${i}`, i), put(3 * i + 3, `z${i}`, i)]);
        cursors.push(...r.results.map((x) => x.cursor));
      }
    } finally {
      writing = false;
    }
    const seen = await follower;
    const max = cursors.reduce((m, x) => (x > m ? x : m), '');
    await es.waitFor((x) => x.lastEventId >= max, { ms: 3000, what: 'the stream reaches the last push' });
    const feed = (await a.changesAll(s, { since: c0 })).changes.map(plainChange);
    assert.equal(feed.length, 60);
    const streamed = es.changes.map(plainChange);
    const followed = seen.map(plainChange);
    console.log(`three-key pushes: of 60 creations, the stream missed ${feed.filter((c) => !streamed.some((x) => x.cursor === c.cursor)).length}, the follower ${feed.filter((c) => !followed.some((x) => x.cursor === c.cursor)).length}`);
    assertSameChanges(streamed, feed, 'the stream since c0');
    assertSameChanges(followed, feed, 'a /changes follower since c0');
  } finally {
    es.close();
  }
});

it('two gateways with concurrent pushers on each: same order and same state in pulls and event streams', async () => {
  const s = await sharedStore({ conflict: 'lww' });
  await a.pushOk(s, 'pre', [put(1, 'h0', 'pre'), put(2, 'pre1', 'x')]);
  const c0 = await b.getCursor(s);
  const streams = { A: openEvents(A, s, { since: c0 }), B: openEvents(B, s, { since: c0 }) };
  try {
    await Promise.all(Object.values(streams).map((es) => es.opened()));
    // A client on each gateway following the feed with /changes while the writers run.
    let writing = true;
    const followers = [a, b].map(async (api) => {
      let cur = c0;
      const seen = [];
      for (let last = false; ; ) {
        const r = await api.changesOk(s, { since: cur, limit: 50 });
        seen.push(...r.changes);
        cur = r.cursor;
        if (last && !r.more) break;
        if (!writing) last = true;
      }
      return seen;
    });
    const PUSHERS = 4, ROUNDS = 12, HOT = 3;
    const applied = [];      // { key, value, version, cursor } of every applied put
    let midCursor = null;
    let done = 0;
    try {
      await Promise.all([[a, 'A'], [b, 'B']].flatMap(([api, g]) => Array.from({ length: PUSHERS }, async (_, p) => {
        const client = `w${g}${p}`;
        let id = 0;
        for (let i = 0; i < ROUNDS; i++) {
          const muts = [put(++id, `u-${g}${p}-${i}`, { g, p, i })];
          if ((i + p) % 2 === 0) muts.push(put(++id, `h${(i + p) % HOT}`, `${g}${p}-${i}`));
          if (i % 3 === 1) muts.push(put(++id, `t-${g}${p}-${i}a`, i, { tx: `t${i}` }), put(++id, `h${i % HOT}`, `${g}${p}-${i}-tx`, { tx: `t${i}` }));
          const r = await api.pushOk(s, client, muts);
          r.results.forEach((res, j) => {
            assert.equal(res.status, 'applied', JSON.stringify(res));
            applied.push({ key: muts[j].key, value: muts[j].value, version: res.version, cursor: res.cursor });
          });
          if (++done === PUSHERS * ROUNDS) midCursor = r.cursor; // half of all pushes
        }
      })));
    } finally {
      writing = false;
    }
    const followed = await Promise.all(followers);
    assert.ok(midCursor, 'a cursor from the middle of the run');
    const maxCursor = applied.reduce((m, x) => (x.cursor > m ? x.cursor : m), '');
    for (const [name, es] of Object.entries(streams)) {
      await es.waitFor((x) => x.lastEventId >= maxCursor, { ms: 5000, what: `the stream of ${name} reaches the last push` });
    }

    // Pulls: from the beginning (small pages), from c0, from the middle: identical on both.
    const fullA = await a.changesAll(s, { limit: 13 });
    const fullB = await b.changesAll(s, { limit: 13 });
    assert.deepEqual(fullB.pages.map((p) => p.changes), fullA.pages.map((p) => p.changes), 'full pull, page by page');
    for (const since of [c0, midCursor]) {
      const pa = await a.changesAll(s, { since, limit: 17 });
      const pb = await b.changesAll(s, { since, limit: 17 });
      assertSameChanges(pb.changes, pa.changes, `pull since ${since}: B vs A`);
    }
    // The final state is what was pushed: every put counted, the last one (by cursor) wins.
    const expect = new Map([['h0', { value: 'pre', version: 1 }], ['pre1', { value: 'x', version: 1 }]]);
    for (const x of [...applied].sort((p, q) => (p.cursor < q.cursor ? -1 : 1))) {
      const prev = expect.get(x.key);
      assert.equal(x.version, (prev ? prev.version : 0) + 1, `${x.key}: versions follow the cursor order (${x.cursor})`);
      expect.set(x.key, { value: x.value, version: x.version });
    }
    const state = new Map(fullA.changes.map((c) => [c.key, { value: c.value, version: c.version }]));
    assert.deepEqual([...state.entries()].sort(), [...expect.entries()].sort(), 'final state');

    // Followers and event streams: in order; the keys written once are the
    // same sequence everywhere; every change they carry is one that happened
    // (a key written several times may be coalesced to a later state, on
    // each in its own way), and each ends in the final state.
    const sinceC0 = (await a.changesAll(s, { since: c0 })).changes.map(plainChange);
    const byCursor = new Map(applied.map((x) => [x.cursor, x]));
    const once = (c) => !c.key.startsWith('h');
    const readers = [['stream A', streams.A.changes.map(plainChange)], ['stream B', streams.B.changes.map(plainChange)],
      ['follower A', followed[0].map(plainChange)], ['follower B', followed[1].map(plainChange)]];
    const lost = readers.map(([name, seq]) => {
      const got = new Set(seq.map((c) => c.cursor));
      return `${name}: ${sinceC0.filter((c) => once(c) && !got.has(c.cursor)).length}`;
    });
    console.log(`changes of keys written once (of ${sinceC0.filter(once).length}) that never reached each reader: ${lost.join(', ')}`);
    for (const [name, seq] of readers) {
      assertCursorOrder(seq);
      assertSameChanges(seq.filter(once), sinceC0.filter(once), `${name}: the keys written once, in feed order`);
      for (const c of seq) {
        const x = byCursor.get(c.cursor);
        assert.ok(x, `${name}: change ${JSON.stringify(c)} is not one of the applied pushes`);
        assert.deepEqual({ key: c.key, value: c.value, version: c.version }, { key: x.key, value: x.value, version: x.version }, `${name}: change at ${c.cursor}`);
      }
      const last = byKey(seq);
      for (const [k, v] of expect) if (k.startsWith('h')) assert.deepEqual({ value: last.get(k).value, version: last.get(k).version }, v, `${name}: last state of ${k}`);
      for (const c of sinceC0) assert.ok(seq.some((x) => x.cursor === c.cursor), `${name}: the feed's change ${c.cursor} (${c.key}) was delivered`);
    }
    for (const [name, es] of Object.entries(streams)) assertStreamOrder(es, name);
  } finally {
    for (const es of Object.values(streams)) es.close();
  }
});
