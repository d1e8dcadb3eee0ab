// Tombstone collection with a short TTL: old cursors expire (410 on
// /changes, a `resync` event on /events), the horizon's own cursor and later
// ones stay valid, collected tombstones are gone from ZooKeeper, and one
// gateway at a time is the collector (zoosync_gc_leader), with takeover when
// it stops or dies.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, after } from 'node:test';
import { setupEnv, it, startGateway, uniq, sleep, zkCli, recordZnode } from '../lib/harness.mjs';
import { Api, expectError, byKey, eventually, getMetrics } from '../lib/http.mjs';
import { openEvents, closeAllEvents } from '../lib/sse.mjs';
import { put, del } from '../lib/records.mjs';
import { gatewayPair, sharedStore as sharedStoreOn } from '../lib/fixtures.mjs';

const env = setupEnv();
// Short session timeout so that a killed collector's election znode goes quickly.
const GW_ARGS = ['--gc-interval', '1', '--session-timeout', '2000'];
let A, B, a, b;

before(async () => {
  ({ A, B, a, b } = await gatewayPair(env, { args: GW_ARGS, parallel: true }));
});
after(() => closeAllEvents());

const sharedStore = (api, other, body) => sharedStoreOn(api, other, { prefix: 'gc', body });

async function gcState(gw) {
  const m = await getMetrics(gw);
  return { leader: m.get('zoosync_gc_leader'), runs: m.get('zoosync_gc_runs_total'), collected: m.get('zoosync_gc_tombstones_collected_total') };
}

/** Opens a stream expected to answer with one `resync` event and then close. */
async function expectResync(gw, s, opts, what) {
  const es = openEvents(gw, s, opts);
  try {
    await es.opened().catch((e) => assert.fail(`${what}: the stream did not open as 200 text/event-stream: ${e.message}`));
    await es.closed(5000).catch(() => assert.fail(`${what}: the server did not close the stream after resync: ${es.describe()}`));
    const evs = es.events;
    assert.equal(evs.length, 1, `${what}: exactly one event: ${es.describe()}`);
    assert.equal(evs[0].event, 'resync', `${what}: ${es.describe()}`);
    assert.deepEqual(evs[0].data, { error: 'cursor_expired' }, `${what}: resync data`);
    assert.equal(es.changes.length, 0, `${what}: no changes before the resync`);
  } finally {
    es.close();
  }
}

it('tombstones past the TTL are collected: older cursors expire (410, resync), the horizon and later cursors stay valid', async () => {
  const s = await sharedStore(a, b, { tombstoneTtlSeconds: 1 });
  await a.pushOk(s, 'c', [put(1, 'k1', 1), put(2, 'k2', 2), put(3, 'k3', 3), put(4, 'k4', 4)]);
  const cBefore = await a.getCursor(s);
  // A stream that follows along from before the deletions: it must never be told to resync.
  const live = openEvents(B, s, { since: cBefore });
  try {
    await live.opened();
    const collected0 = (await gcState(A)).collected + (await gcState(B)).collected;
    const d1 = (await a.pushOk(s, 'c', [del(5, 'k1')])).results[0].cursor;
    const d2 = (await b.pushOk(s, 'c2', [del(1, 'k2')])).results[0].cursor;
    const p5 = (await a.pushOk(s, 'c', [put(6, 'k5', 5)])).results[0].cursor;
    assert.ok(cBefore < d1 && d1 < d2 && d2 < p5, 'cursor order');
    // Before collection (within the TTL) the deletions are in the feed.
    const early = await b.changesOk(s, { since: cBefore });
    assert.deepEqual(early.changes.map((c) => [c.key, !!c.deleted, c.version]), [['k1', true, 2], ['k2', true, 2], ['k5', false, 1]]);
    await live.waitFor((x) => x.lastEventId >= p5, { ms: 3000, what: 'the deletions on the open stream' });

    // Both tombstones collected: then the horizon is d2 (the newest collected deletion).
    await eventually(async () => (await a.changes(s, { since: d1 })).status === 410, { ms: 10000, every: 200, what: 'a cursor before the last collected deletion expires' });
    for (const api of [a, b]) {
      expectError(await api.changes(s, { since: cBefore }), 410, 'cursor_expired');
      expectError(await api.changes(s, { since: d1 }), 410, 'cursor_expired');
      // The horizon's own cursor and later ones stay valid.
      const atH = await api.changesOk(s, { since: d2 });
      assert.deepEqual(atH.changes.map((c) => c.key), ['k5'], 'reading from the horizon');
      assert.deepEqual((await api.changesOk(s, { since: p5 })).changes, []);
      // From the beginning: the live records only, the deleted keys nowhere.
      const full = byKey((await api.changesAll(s)).changes);
      assert.deepEqual([...full.keys()].sort(), ['k3', 'k4', 'k5']);
    }
    const collected1 = (await gcState(A)).collected + (await gcState(B)).collected;
    assert.ok(collected1 >= collected0 + 2, `zoosync_gc_tombstones_collected_total grew from ${collected0} to ${collected1}`);
    // The tombstone znodes are gone from ZooKeeper.
    for (const k of ['k1', 'k2']) {
      const st = await zkCli(env.zk.connect, 'stat', recordZnode(env.root, s, k).path);
      assert.match(st.stdout + st.stderr, /does not exist|NoNode/i, `tombstone of ${k} still in ZooKeeper: ${st.stdout}`);
    }

    // Event streams from an expired cursor: one resync event, then closed.
    await expectResync(A, s, { since: cBefore }, 'events since a cursor before the horizon on A');
    await expectResync(B, s, { since: d1 }, 'events since a cursor just before the horizon on B');
    await expectResync(A, s, { since: p5, lastEventId: d1 }, 'events with an expired Last-Event-ID (it wins over a valid since)');
    // From the horizon: an ordinary stream.
    const fromH = openEvents(A, s, { since: d2 });
    try {
      await fromH.opened();
      await fromH.waitFor((x) => x.changes.some((c) => c.key === 'k5'), { ms: 3000, what: 'k5 on a stream from the horizon' });
      await sleep(300);
      assert.equal(fromH.ended, false);
      assert.ok(fromH.events.every((e) => e.event === 'change'), fromH.describe());
    } finally {
      fromH.close();
    }

    // A collected key starts over: its version restarts at 1.
    const re = await a.pushOk(s, 'c', [put(7, 'k1', 'again', { base: 0 })]);
    assert.deepEqual([re.results[0].status, re.results[0].version], ['applied', 1]);
    // The stream that was open all along kept going, without a resync.
    await live.waitFor((x) => x.changes.some((c) => c.key === 'k1' && c.value === 'again'), { ms: 3000, what: 'a write after the collection on the open stream' });
    assert.ok(live.events.every((e) => e.event === 'change'), `the open stream got: ${live.describe()}`);
    assert.deepEqual(live.changes.map((c) => [c.key, !!c.deleted, c.version]), [['k1', true, 2], ['k2', true, 2], ['k5', false, 1], ['k1', false, 1]]);
  } finally {
    live.close();
  }
});

// The collector holds at most one round of tombstones in memory (1,000,
// about 3 KB each), whatever the store holds: before, it listed every
// collectable record of the store at once (a million tombstones, 3 GB).
// Rounds walk the feed in order from where the last one stopped, each
// moving the horizon first: here 2,500 tombstones among 500 live records
// take three, and every tombstone goes, every live record stays.
it('2,500 tombstones among live records are collected in rounds of at most 1,000: all of them, nothing else', { timeout: 120000 }, async () => {
  // A TTL of an hour while writing, then of one second: every tombstone
  // becomes collectable in the same collector pass.
  const s = await sharedStore(a, b, { tombstoneTtlSeconds: 3600 });
  const N = 3000;
  const key = (i) => `r${String(i).padStart(4, '0')}`;
  for (let i = 0; i < N; i += 500) {
    const muts = [];
    for (let j = i; j < i + 500; j++) muts.push(put(j + 1, key(j), j));
    await a.pushPaced(s, 'c', muts);
  }
  const c0 = await a.getCursor(s);
  const gone = [];
  for (let i = 0; i < N; i++) if (i % 6 !== 0) gone.push(key(i)); // 2,500 deleted, every sixth kept
  for (let i = 0; i < gone.length; i += 500) await a.pushPaced(s, 'c', gone.slice(i, i + 500).map((k, j) => del(N + i + j + 1, k)));
  const last = await a.getCursor(s);
  const collected0 = (await gcState(A)).collected + (await gcState(B)).collected;
  await sleep(1100);
  assert.equal((await a.putStore(s, { tombstoneTtlSeconds: 1 })).status, 200);
  await eventually(async () => (await gcState(A)).collected + (await gcState(B)).collected >= collected0 + gone.length,
    { ms: 30000, every: 200, what: `${gone.length} tombstones collected` });
  // Rounds: each moved the horizon and is logged with at most 1,000.
  const rounds = [A, B].flatMap((g) => [...readFileSync(g.log, 'utf8').matchAll(new RegExp(`gc ${s}: collected (\\d+) tombstones`, 'g'))].map((x) => Number(x[1])));
  // All collectable in one pass: its rounds take them in feed order, 1,000
  // at a time, none skipped (a later pass would otherwise show up here).
  assert.deepEqual(rounds, [1000, 1000, 500], 'the rounds of one pass');
  for (const api of [a, b]) {
    expectError(await api.changes(s, { since: c0 }), 410, 'cursor_expired');
    assert.deepEqual((await api.changesOk(s, { since: last })).changes, [], 'the last cursor stays valid');
    const full = byKey((await api.changesAll(s, { limit: 1000 })).changes);
    const live = [];
    for (let i = 0; i < N; i += 6) live.push(key(i));
    assert.deepEqual([...full.keys()].sort(), live, 'the live records, and no tombstone, from the start');
  }
  const ls = await zkCli(env.zk.connect, 'stat', recordZnode(env.root, s, key(1)).path);
  assert.match(ls.stdout + ls.stderr, /does not exist|NoNode/i, 'a collected tombstone is gone from ZooKeeper');
  for (const g of [A, B]) assert.equal((await getMetrics(g)).get('zoosync_gc_errors_total'), 0, 'no store left uncollected for a failure');
});

it('a deletion newer than the TTL is kept while older ones are collected', async () => {
  const s = await sharedStore(b, a, { tombstoneTtlSeconds: 3 });
  await b.pushOk(s, 'c', [put(1, 'old', 1), put(2, 'young', 2), put(3, 'keep', 3)]);
  const c0 = await b.getCursor(s);
  const dOld = (await b.pushOk(s, 'c', [del(4, 'old')])).results[0].cursor;
  await sleep(2000);
  const dYoung = (await a.pushOk(s, 'c', [del(5, 'young')])).results[0].cursor;
  // The old one goes about 3 s after its deletion; the young one only 2 s later.
  await eventually(async () => (await a.changes(s, { since: c0 })).status === 410, { ms: 8000, every: 100, what: 'the old tombstone collected' });
  for (const api of [a, b]) {
    const r = await api.changes(s, { since: dOld });
    if (r.status === 410) assert.fail('the young deletion was collected before its TTL');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.changes.map((c) => [c.key, !!c.deleted]), [['young', true]], 'the young deletion is still reported');
  }
  assert.ok(dYoung > dOld);
});

it('one collector at a time; when it stops the other takes over, and a newcomer does not take over', async () => {
  // Settle: after a few rounds exactly one is the leader.
  await eventually(async () => {
    const [x, y] = await Promise.all([gcState(A), gcState(B)]);
    return x.leader + y.leader === 1;
  }, { ms: 8000, every: 200, what: 'exactly one collector' });
  // Watch for ~2 s: never two, and only the leader runs rounds.
  const first = await Promise.all([gcState(A), gcState(B)]);
  for (let i = 0; i < 9; i++) {
    const [x, y] = await Promise.all([gcState(A), gcState(B)]);
    assert.ok(x.leader + y.leader <= 1, `two collectors at once: A ${JSON.stringify(x)} B ${JSON.stringify(y)}`);
    await sleep(200);
  }
  const last = await Promise.all([gcState(A), gcState(B)]);
  const li = last[0].leader === 1 ? 0 : 1;
  assert.equal(last[li].leader, 1, 'a collector after the watch');
  assert.equal(last[1 - li].runs, first[1 - li].runs, `the non-collector ran rounds: ${JSON.stringify(first)} -> ${JSON.stringify(last)}`);
  assert.ok(last[li].runs >= first[li].runs + 1, `the collector ran rounds (every 1 s): ${JSON.stringify(first)} -> ${JSON.stringify(last)}`);
  const [L, F] = li === 0 ? [A, B] : [B, A];
  const f = new Api(F);

  // The collector stops (SIGTERM): the other becomes the collector and collects.
  const stopped = await L.stop();
  assert.equal(stopped.code, 0, JSON.stringify(stopped));
  await eventually(async () => (await gcState(F)).leader === 1, { ms: 6000, every: 100, what: 'takeover after SIGTERM' });
  const s = uniq('gc');
  await f.createStore(s, { tombstoneTtlSeconds: 1 });
  await f.pushOk(s, 'c', [put(1, 'x', 1), put(2, 'y', 2)]);
  const c0 = await f.getCursor(s);
  const before = (await gcState(F)).collected;
  await f.pushOk(s, 'c', [del(3, 'x')]);
  await eventually(async () => (await f.changes(s, { since: c0 })).status === 410, { ms: 8000, every: 200, what: 'the new collector collects' });
  assert.ok((await gcState(F)).collected >= before + 1, 'the new collector counted the tombstone');

  // A newcomer joins behind the collector and does not take over.
  const N = await startGateway({ zk: env.zk.connect, root: env.root, name: 'newcomer', args: GW_ARGS });
  for (let i = 0; i < 7; i++) {
    const [fs, ns] = await Promise.all([gcState(F), gcState(N)]);
    assert.equal(ns.leader, 0, 'the newcomer took over');
    assert.equal(ns.runs, 0, 'the newcomer ran collection rounds');
    assert.equal(fs.leader, 1, 'the collector stepped down with a newcomer around');
    await sleep(250);
  }

  // The collector dies (SIGKILL): the newcomer takes over once the dead one's session expires (2 s).
  await F.kill('SIGKILL');
  const killedAt = Date.now();
  await eventually(async () => (await gcState(N)).leader === 1, { ms: 10000, every: 200, what: 'takeover after SIGKILL' });
  const n = new Api(N);
  const cy = await n.getCursor(s);
  await n.pushOk(s, 'c', [del(4, 'y')]);
  await eventually(async () => (await n.changes(s, { since: cy })).status === 410, { ms: 8000, every: 200, what: 'the newcomer collects' });
  assert.ok((await gcState(N)).collected >= 1, 'the newcomer counted the tombstone');
  console.log(`takeover after SIGKILL took ${Date.now() - killedAt} ms (session timeout 2000 ms)`);
});

/** A fresh pair of gateways (the tests above stop some of theirs). */
async function pair(tag) {
  const [X, Y] = await Promise.all([
    startGateway({ zk: env.zk.connect, root: env.root, name: `${tag}1`, args: GW_ARGS }),
    startGateway({ zk: env.zk.connect, root: env.root, name: `${tag}2`, args: GW_ARGS }),
  ]);
  return { X, Y, x: new Api(X), y: new Api(Y) };
}

it('a snapshot (no since) pages through untouched records older than the horizon: no 410 loop, nothing skipped', async () => {
  const { X: A, x: a, y: b } = await pair('snap');
  const s = await sharedStore(a, b, { tombstoneTtlSeconds: 1 });
  const keys = Array.from({ length: 9 }, (_, i) => `old${i}`);
  await a.pushOk(s, 'snap', keys.map((k, i) => put(i + 1, k, i)));
  await a.pushOk(s, 'snap', [put(20, 'gone', 1), del(21, 'gone')]);
  // Wait until the tombstone is collected: the horizon is then above every old record.
  const c0 = (await a.changesOk(s)).changes; // a cursor from before the deletion's collection
  assert.ok(c0.length > 0);
  await eventually(async () => (await a.changes(s, { since: c0[0].cursor })).status === 410, { ms: 10000, what: 'tombstone collected' });
  for (const api of [a, b]) {
    const seen = [];
    let since;
    for (let page = 0; page < 20; page++) {
      const r = await api.changes(s, { since, limit: 2 });
      assert.equal(r.status, 200, `page ${page}: ${r.text}`);
      seen.push(...r.json.changes.map((c) => c.key));
      since = r.json.cursor;
      if (!r.json.more) break;
    }
    assert.deepEqual(seen.sort(), keys, 'every live record once, the deleted one not at all');
  }
  // The event stream's backlog pages the same way (frames of 200 hold these in one).
  const es = openEvents(A, s, {});
  try {
    await eventually(() => es.changes.length >= keys.length, { ms: 5000, what: 'backlog' });
    assert.ok(!es.events.some((e) => e.event === 'resync'), es.describe());
  } finally {
    es.close();
  }
});

it('a cursor of a deleted and re-created store is expired (no ghost records)', async () => {
  const { x: a, y: b } = await pair('ghost');
  const s = await sharedStore(a, b, {});
  await a.pushOk(s, 'ghost', [put(1, 'ghost', 1)]);
  const old = (await a.changesOk(s)).cursor;
  assert.equal((await a.deleteStore(s)).status, 204);
  assert.equal((await a.putStore(s, {})).status, 201);
  await a.pushOk(s, 'ghost2', [put(1, 'new', 1)]);
  for (const api of [a, b]) {
    await eventually(async () => (await api.changes(s, { since: old })).status === 410, { ms: 5000, what: 'old cursor expired' });
    expectError(await api.changes(s, { since: old }), 410, 'cursor_expired');
    const fresh = await api.changesOk(s);
    assert.deepEqual(fresh.changes.map((c) => c.key), ['new']);
  }
});
