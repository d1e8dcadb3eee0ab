// Races of the pull, the live stream, restores and the tabs' leadership,
// against a scripted gateway (spyFetch), so that each interleaving is
// exact: no zoosyncd needed. Each test was written by a hostile review and
// failed on the code before its fix.
import assert from 'node:assert/strict';
import { test, after } from 'node:test';
import { open, closeAll, dbName, until, spyFetch, jsonResponse, sleep, collect } from './helpers.mjs';

after(closeAll);

const C = (n) => 'e' + String(n).padStart(39, '0'); // fake cursors, increasing with n

/** A controllable event stream: push(text) sends bytes; end() closes. */
function controlledStream() {
  let ctl;
  const enc = new TextEncoder();
  const body = new ReadableStream({ start(c) { ctl = c; } });
  return {
    response: new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } }),
    send: (t) => ctl.enqueue(enc.encode(t)),
    change: (changes, cursor) => ctl.enqueue(enc.encode(`id: ${cursor}\nevent: change\ndata: ${JSON.stringify({ changes, cursor })}\n\n`)),
    end: () => { try { ctl.close(); } catch { /* closed */ } },
    error: (e) => { try { ctl.error(e); } catch { /* closed */ } },
  };
}

/**
 * A scripted gateway on a spyFetch: description, /changes pages, /events
 * streams (each a controlledStream, handed to onStream), /push via onPush.
 */
function fakeGateway(store, { pages, onPush, onStream }) {
  const f = spyFetch();
  f.intercept = async (url, init) => {
    const u = new URL(url);
    const p = u.pathname;
    if (p === `/v1/stores/${store}`) return jsonResponse(200, { name: store, records: 0, maxValueBytes: 1 << 20 });
    if (p === `/v1/stores/${store}/changes`) return pages(u);
    if (p === `/v1/stores/${store}/events`) {
      const s = controlledStream();
      if (init.signal) init.signal.addEventListener('abort', () => s.error(new Error('aborted (fake fetch)')));
      onStream(s, u, init); return s.response;
    }
    if (p === `/v1/stores/${store}/push`) return onPush(JSON.parse(init.body));
    return jsonResponse(404, { error: 'not_found', message: p });
  };
  return f;
}

test('the owed cursor of skipped own changes is never queued behind a newer event (which it would drop)', async () => {
  const s = 'st';
  const streams = [];
  let gate = null; // holds the push of 'x'
  let ver = 0;
  const pushCursor = { own: C(1), x: C(4) };
  const f = fakeGateway(s, {
    pages: () => jsonResponse(200, { changes: [], cursor: C(0), more: false }),
    onStream: (st) => streams.push(st),
    onPush: async (body) => {
      const keys = body.mutations.map((m) => m.key);
      if (keys.includes('x') && gate) await gate.p;
      return jsonResponse(200, { results: body.mutations.map((m) => ({ id: m.id, status: 'applied', version: ++ver, cursor: pushCursor[m.key] })) });
    },
  });
  const db = await open({ name: dbName('lazy'), url: 'http://127.0.0.1:9', stores: [s], fetch: f });
  await until(() => db.status.connected && streams.length === 1, { what: 'stream open' });
  const S = streams[0];
  S.send(': zoosync events\n\n');
  // 1. This tab's own write, acknowledged; its change comes back on the stream and is skipped (lazy cursor C1).
  await db.put(s, 'own', 1);
  await until(async () => (await db.getMeta(s, 'own')).pending === 0, { what: 'own pushed' });
  S.change([{ key: 'own', value: 1, version: 1, cursor: C(1) }], C(1));
  await sleep(50);
  // 2. A push of 'x' in flight (held), and a change of 'x' on the stream: it waits for the push's answer.
  let release; gate = { p: new Promise((r) => { release = r; }) };
  await db.put(s, 'x', 'mine');
  await until(() => f.calls.some((c) => c.url.endsWith('/push') && c.body.includes('"x"')), { what: 'x push sent' });
  S.change([{ key: 'x', value: 'theirs', version: 1, cursor: C(2) }], C(2));
  await sleep(20);
  // 3. Another client's change of 'y' queues behind it.
  S.change([{ key: 'y', value: 'Y', version: 1, cursor: C(3) }], C(3));
  // 4. The lazy cursor's timer fires meanwhile (500 ms): it queues {[], C1} behind y's event.
  await sleep(800);
  release();
  await until(async () => (await db.getMeta(s, 'x')).pending === 0, { what: 'x pushed' });
  await sleep(100);
  // 5. One more change: the stream moves on.
  S.change([{ key: 'z', value: 'Z', version: 1, cursor: C(5) }], C(5));
  await until(async () => (await db.get(s, 'z')) === 'Z', { what: 'z applied' });
  await until(async () => (await db.cursor(s)) === C(5), { what: 'cursor at C5' });
  assert.equal(await db.cursor(s), C(5));
  assert.equal(await db.get(s, 'y'), 'Y', 'y (cursor C3 < stored C5) was never applied: the stored cursor passed it');
});

test('a sync() page fetched before a resync is dropped: it neither finishes the resync nor deletes records the server has', async () => {
  const s = 'st';
  const rec = (i) => ({ key: 'r' + i, value: i, version: 1, cursor: C(i + 1) });
  const all = [...Array(10).keys()].map(rec); // r0..r9 at C1..C10
  const r10 = { key: 'r10', value: 10, version: 1, cursor: C(11) };
  const streams = [];
  let resynced = false;
  const gate = (o = {}) => { o.p = new Promise((r) => { o.open = r; }); return o; };
  const stale = gate(), page2 = gate();
  const seen = [];
  const f = fakeGateway(s, {
    pages: async (u) => {
      const since = u.searchParams.get('since');
      seen.push(since);
      if (!since && !resynced) return jsonResponse(200, { changes: all, cursor: C(10), more: false });
      if (since === C(10)) { await stale.p; return jsonResponse(200, { changes: [r10], cursor: C(11), more: false }); }
      if (!since) return jsonResponse(200, { changes: all.slice(0, 4), cursor: C(4), more: true });
      if (since === C(4)) { await page2.p; return jsonResponse(200, { changes: all.slice(4, 8), cursor: C(8), more: true }); }
      if (since === C(8)) return jsonResponse(200, { changes: [...all.slice(8), r10], cursor: C(11), more: false });
      return jsonResponse(200, { changes: [], cursor: since, more: false });
    },
    onStream: (st) => { streams.push(st); st.send(': zoosync events\n\n'); },
    onPush: async () => jsonResponse(500, { error: 'unavailable' }),
  });
  const db = await open({ name: dbName('stale'), url: 'http://127.0.0.1:9', stores: [s], fetch: f, pageSize: 4 });
  await until(() => db.status.connected && streams.length === 1, { what: 'stream open' });
  assert.equal((await db.getAll(s)).length, 10);
  // sync(): its pull asks for the changes since C10; the answer is slow.
  const syncing = db.sync();
  await until(() => seen.includes(C(10)), { what: 'sync pull sent' });
  // The stream asks for a resync; the resync's first page is applied.
  resynced = true;
  streams[0].send('event: resync\ndata: {"error":"cursor_expired"}\n\n');
  streams[0].end();
  await until(async () => (await db.cursor(s)) === C(4), { what: 'resync page 1 applied' });
  // The sync()'s page (fetched before the resync) lands now, then the resync goes on.
  stale.open();
  await syncing;
  page2.open();
  await until(() => streams.length === 2, { what: 'stream reopened after the resync' });
  await sleep(200);
  const keys = (await db.getAll(s)).map((r) => r.key).sort();
  assert.deepEqual(keys, [...all.map((r) => r.key), 'r10'].sort(), 'every record the server has is kept');
});

test('a restore (GET /records) answered after a newer stream change does not roll the record back', async () => {
  const s = 'st';
  const streams = [];
  let gets = 0;
  const hold = {}; hold.p = new Promise((r) => { hold.open = r; });
  const f = fakeGateway(s, {
    pages: () => jsonResponse(200, { changes: [], cursor: C(0), more: false }),
    onStream: (st) => { streams.push(st); st.send(': zoosync events\n\n'); },
    onPush: async (body) => jsonResponse(200, { results: body.mutations.map((m) => ({ id: m.id, status: 'rejected', reason: 'validation_failed' })) }),
  });
  const inner = f.intercept;
  f.intercept = async (url, init) => {
    if (url.includes('/records/')) {
      gets++;
      if (gets === 1) return jsonResponse(503, { error: 'unavailable', message: 'test' }); // the first restore fails: the key stays queued
      await hold.p; // the second (at the next push round) answers the state it read before the change below
      return jsonResponse(200, { key: 'k', value: 'old', version: 1, cursor: C(2) });
    }
    return inner(url, init);
  };
  const db = await open({ name: dbName('restore'), url: 'http://127.0.0.1:9', stores: [s], fetch: f });
  await until(() => db.status.connected && streams.length === 1, { what: 'stream open' });
  await db.put(s, 'k', 'mine');
  await until(() => gets >= 2, { what: 'second restore GET sent', ms: 8000 });
  // Another client writes k; the stream delivers it while the GET is on the wire.
  streams[0].change([{ key: 'k', value: 'new', version: 2, cursor: C(5) }], C(5));
  await until(async () => (await db.get(s, 'k')) === 'new', { what: 'stream change applied' });
  hold.open();
  await until(async () => !(await db._local.run(['meta'], 'readonly', (tx) => new Promise((r) => { const q = tx.objectStore('meta').get('restore:' + s); q.onsuccess = () => r(q.result); }))), { what: 'restore done' });
  await sleep(100);
  assert.deepEqual(await db.getMeta(s, 'k'), { key: 'k', version: 2, cursor: C(5), deleted: false, pending: 0 });
  assert.equal(await db.get(s, 'k'), 'new', 'the newer state (C5) is kept');
});

test('a pull page waits for the push in flight of its key: the newer change is applied after the answer, not skipped for good', async () => {
  const s = 'st';
  const streams = [];
  const hold = {}; hold.p = new Promise((r) => { hold.open = r; });
  let pushed = false;
  const f = fakeGateway(s, {
    // The page is read after the push was applied (C2) and another client wrote k again (C3).
    pages: (u) => jsonResponse(200, u.searchParams.get('since')
      ? { changes: [], cursor: u.searchParams.get('since'), more: false }
      : { changes: [{ key: 'k', value: 'theirs', version: 2, cursor: C(3) }], cursor: C(3), more: false }),
    onStream: (st) => { streams.push(st); st.send(': zoosync events\n\n'); },
    onPush: async (body) => { pushed = true; await hold.p; return jsonResponse(200, { results: body.mutations.map((m) => ({ id: m.id, status: 'applied', version: 1, cursor: C(2) })) }); },
  });
  const db = await open({ name: dbName('inflight'), url: 'http://127.0.0.1:9', stores: [s], fetch: f, offline: true });
  await db.put(s, 'k', 'mine'); // written offline
  db.setOffline(false); // back online: the push of k and the pull start together
  await until(() => pushed, { what: 'push in flight' });
  await sleep(200); // the page (k at C3) waits for the push's answer
  hold.open(); // the push's answer (applied at C2) arrives now
  await until(async () => (await db.getMeta(s, 'k')).pending === 0, { what: 'push answered' });
  await until(async () => (await db.get(s, 'k')) === 'theirs', { what: 'the server state "theirs" (C3 > C2) applied' });
  assert.equal(await db.cursor(s), C(3));
});

/** A minimal Web Locks LockManager (exclusive locks, FIFO, signal). */
class FakeLocks {
  constructor() { this.held = new Map(); this.queues = new Map(); }
  request(name, opts, cb) {
    return new Promise((resolve, reject) => {
      let q = this.queues.get(name); if (!q) { q = []; this.queues.set(name, q); }
      const e = { cb, resolve, reject };
      if (opts && opts.signal) opts.signal.addEventListener('abort', () => { const i = q.indexOf(e); if (i >= 0) { q.splice(i, 1); reject(new Error('AbortError')); } });
      q.push(e);
      this.pump(name);
    });
  }
  pump(name) {
    if (this.held.get(name)) return;
    const q = this.queues.get(name); if (!q || !q.length) return;
    const e = q.shift();
    this.held.set(name, true);
    Promise.resolve().then(() => e.cb({ name })).then(
      (v) => { this.held.set(name, false); e.resolve(v); this.pump(name); },
      (err) => { this.held.set(name, false); e.reject(err); this.pump(name); });
  }
}

/** Page events for listenPage (window + document), removed by the returned function. */
function fakePage() {
  const win = new EventTarget();
  const saved = { window: globalThis.window, add: globalThis.addEventListener, rem: globalThis.removeEventListener, document: globalThis.document };
  globalThis.window = globalThis;
  globalThis.addEventListener = win.addEventListener.bind(win);
  globalThis.removeEventListener = win.removeEventListener.bind(win);
  globalThis.document = new EventTarget();
  return {
    win, doc: globalThis.document,
    restore: () => { globalThis.window = saved.window; globalThis.addEventListener = saved.add; globalThis.removeEventListener = saved.rem; globalThis.document = saved.document; },
  };
}

for (const gapMs of [null, 300]) {
  test(`freeze then resume ${gapMs === null ? 'before the hand-over finished' : `after ${gapMs} ms (control)`}: the only tab leads again`, async () => {
    const s = 'st';
    const page = fakePage();
    try {
      const f = fakeGateway(s, {
        pages: () => jsonResponse(200, { changes: [], cursor: C(0), more: false }),
        onStream: (st) => st.send(': zoosync events\n\n'),
        onPush: async (body) => jsonResponse(200, { results: body.mutations.map((m, i) => ({ id: m.id, status: 'applied', version: 1, cursor: C(100 + i) })) }),
      });
      const db = await open({ name: dbName('freeze'), url: 'http://127.0.0.1:9', stores: [s], fetch: f, locks: new FakeLocks() });
      await until(() => db.status.leader && db.status.connected, { what: 'leads' });
      page.doc.dispatchEvent(new Event('freeze'));
      if (gapMs !== null) await sleep(gapMs);
      page.doc.dispatchEvent(new Event('resume'));
      await sleep(1000);
      await db.put(s, 'k', 1);
      await sleep(1000);
            assert.equal(db.status.leader, true, 'the only tab leads again after resume');
      assert.equal(db.status.pending, 0, 'and its writes are pushed');
      // Closed while the page's events are still the test's (closeAll runs after restore()).
      await Promise.race([db.close(), sleep(5000).then(() => { throw new Error('close() hangs'); })]);
    } finally { page.restore(); }
  });
}

/** A gateway with nothing to pull, an open stream and every push applied. */
const quietGateway = (s) => fakeGateway(s, {
  pages: () => jsonResponse(200, { changes: [], cursor: C(0), more: false }),
  onStream: (st) => st.send(': zoosync events\n\n'),
  onPush: async (body) => jsonResponse(200, { results: body.mutations.map((m) => ({ id: m.id, status: 'applied', version: 1, cursor: C(100) })) }),
});

test('a follower frozen while queued for the lock withdraws its request', async () => {
  const s = 'st';
  const locks = new FakeLocks();
  const gw = () => quietGateway(s);
  const name = dbName('frozen');
  const a = await open({ name, url: 'http://127.0.0.1:9', stores: [s], fetch: gw(), locks });
  await until(() => a.status.leader, { what: 'a leads' });
  const page = fakePage(); // b's page
  try {
    const b = await open({ name, url: 'http://127.0.0.1:9', stores: [s], fetch: gw(), locks });
    await sleep(50);
    assert.equal(locks.queues.get('zoosync-leader:' + name).length, 1, 'b waits for the lock');
    page.doc.dispatchEvent(new Event('freeze')); // b's page is frozen
    await sleep(50);
    assert.equal(locks.queues.get('zoosync-leader:' + name).length, 0, 'a frozen tab withdraws its request for the lock');
    await Promise.race([Promise.all([a.close(), b.close()]), sleep(5000).then(() => { throw new Error('close() hangs'); })]);
  } finally { page.restore(); }
});


// Found in review: a message of another shape on the database's channel (a
// different client version, any script of the origin) threw in the
// handler, and a late 'status' of a former leader overwrote the followers'
// view of the current one.
test('the tabs channel: messages of another shape are dropped; a status from a tab that is not the leader is ignored', async () => {
  const s = 'st';
  const locks = new FakeLocks();
  const gw = () => quietGateway(s);
  const name = dbName('chan');
  const thrown = [];
  const onErr = (e) => thrown.push(e);
  process.on('uncaughtException', onErr);
  const bc = new BroadcastChannel('zoosync:' + name);
  try {
    const a = await open({ name, url: 'http://127.0.0.1:9', stores: [s], fetch: gw(), locks });
    await until(() => a.status.leader && a.status.connected, { what: 'a leads' });
    const b = await open({ name, url: 'http://127.0.0.1:9', stores: [s], fetch: gw(), locks });
    await until(() => !b.status.leader && b.status.connected, { what: 'b follows, with the leader\'s status' });
    const seen = [];
    const errors = collect(b, 'error');
    const conflicts = collect(b, 'conflict');
    b.subscribe(s, (cs) => seen.push(...cs));
    for (const junk of [null, 'x', 7, [], { t: 'changes', store: s, changes: 5 }, { t: 'changes', store: s, changes: [null] },
      { t: 'changes', store: s }, { t: 'error', e: null }, { t: 'error' }, { t: 'conflict' }, { t: 'status', status: 3 },
      { t: 'leader', status: 'x' }, { t: 'status', status: {}, from: 5 }, { t: 'nope' }]) bc.postMessage(junk);
    // a status from a tab that is not the leader (a former leader's, late)
    bc.postMessage({ t: 'status', from: 't-former', status: { connected: false, pending: 99, lastSyncAt: 1, progress: null, error: null, oldestPendingMs: null } });
    await sleep(200);
    assert.deepEqual(thrown, [], 'nothing thrown');
    assert.deepEqual(seen, [], 'no change delivered');
    assert.deepEqual(errors, []);
    assert.deepEqual(conflicts, []);
    assert.equal(b.status.pending, 0, 'the former leader\'s status is not taken');
    assert.equal(b.status.connected, true);
    // the channel still works: a's write reaches b
    await a.put(s, 'k', 1);
    await until(() => seen.some((c) => c.key === 'k'), { what: 'a real change after the junk' });
    await Promise.race([Promise.all([a.close(), b.close()]), sleep(5000).then(() => { throw new Error('close() hangs'); })]);
  } finally { bc.close(); process.off('uncaughtException', onErr); }
});

// From the review of the 'reconfigured' fix: the old-prefix leader's stream
// went on applying events into the store another instance had started over
// (and set its cursor), when the message did not reach it (no
// BroadcastChannel here; in a browser, a tab whose channel did not exist yet).
// The store's prefix is now checked in the apply's own transaction.
test('a leader whose store prefix another instance changed applies nothing more and closes (reconfigured), with no channel to tell it', async () => {
  const s = 'st';
  const streams = [];
  const f = fakeGateway(s, {
    pages: () => jsonResponse(200, { changes: [], cursor: C(0), more: false }),
    onStream: (st) => streams.push(st),
    onPush: async (body) => jsonResponse(200, { results: body.mutations.map((m) => ({ id: m.id, status: 'applied', version: 1, cursor: C(50) })) }),
  });
  const name = dbName('rcs');
  const x = await open({ name, url: 'http://127.0.0.1:9', stores: [{ name: s, prefix: 'u/a/' }], fetch: f, BroadcastChannel: null });
  const closed = collect(x, 'close');
  await until(() => x.status.connected && streams.length === 1, { what: 'x streams' });
  streams[0].send(': zoosync events\n\n');
  streams[0].change([{ key: 'u/a/1', value: 1, version: 1, cursor: C(1) }], C(1));
  await until(async () => (await x.get(s, 'u/a/1')) === 1, { what: 'x applies its prefix' });
  // y: the whole store, offline (no url): it starts the store over
  const y = await open({ name, stores: [s], BroadcastChannel: null });
  streams[0].change([{ key: 'u/a/2', value: 2, version: 1, cursor: C(2) }], C(2));
  await until(() => closed.length === 1, { what: 'x closed' });
  assert.deepEqual(closed, [{ reason: 'reconfigured' }]);
  assert.equal(await y.get(s, 'u/a/2'), undefined, 'the event pulled for the old prefix was not applied');
  assert.equal(await y.cursor(s), undefined, 'and the store\'s cursor was not set by it: y pulls from the beginning');
  await y.close();
});

test('an error event of another tab from an IndexedDB DOMException (a numeric legacy code) is not dropped', async () => {
  const { validMessage } = await import('../../client/lib/tabs.js');
  const { errorInfo } = await import('../../client/lib/errors.js');
  for (const name of ['QuotaExceededError', 'InvalidStateError', 'AbortError', 'NotFoundError']) {
    const e = errorInfo(new DOMException('x', name));
    assert.equal(e.code, name, 'the name, not the numeric code');
    assert.ok(validMessage({ t: 'error', e }), name);
  }
  assert.ok(validMessage({ t: 'error', e: { code: 22, message: 'an older client\'s' } }));
});

// Seen on Debian's Node 18 (the bare-Debian check): a close() while the
// live stream was starting (reading its cursor) did not reach the stream,
// which was opened after the stop and held close() until the server ended
// it (a minute). The stream's controller now exists before that read.
test('close() while the live stream reads its cursor: the stream is never opened, close() returns at once', async () => {
  const s = 'st';
  const f = quietGateway(s);
  const db = await open({ name: dbName('lvstop'), url: 'http://127.0.0.1:9', stores: [s], fetch: f, BroadcastChannel: null });
  const local = db._local;
  const real = local.cursor.bind(local);
  let release, blocked = false;
  const gate = new Promise((r) => { release = r; });
  local.cursor = async (store) => { blocked = true; await gate; return real(store); };
  await until(() => blocked, { what: 'live() reads its cursor' });
  const streamsBefore = f.calls.filter((c) => c.url.includes('/events')).length;
  const closing = db.close();
  await sleep(20);
  release();
  await Promise.race([closing, sleep(3000).then(() => { throw new Error('close() hangs on a stream opened after the stop'); })]);
  assert.equal(f.calls.filter((c) => c.url.includes('/events')).length, streamsBefore, 'no stream opened after the stop');
});
