// Client v1.1 in a real browser (Debian chromium + playwright-core), real
// zoosyncd and ZooKeeper: destroy() (log out) in one tab while a second tab
// of the same database is open and syncing; range reads in Chromium's own
// IndexedDB key order.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it, uniq } from '../lib/harness.mjs';
import { openPage, waitIn, dbOptions, dbNames, gatewaysWithBrowser } from './lib/browser.mjs';
import { serverRecord as serverRecordOf } from '../lib/fixtures.mjs';

/** Polls an async condition (page functions that return promises cannot go through waitForFunction). */
async function until(fn, { ms = 8000, what = 'condition' } = {}) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`${what}: not reached in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const env = setupEnv();
let G, api, browser;

before(async () => {
  ({ gws: [G], apis: [api], browser } = await gatewaysWithBrowser(env, 1, { args: ['--keepalive-ms', '500'] }));
});

const dbOpts = (s, extra) => dbOptions(G.url, s, 1500, extra);
const serverRecord = (s, k) => serverRecordOf(api, s, k);

it('destroy() in one tab while a second tab is open: both stop syncing, the database is deleted, nothing blocks', async () => {
  const s = uniq('bd');
  await api.createStore(s);
  const ctx = await browser.newContext();
  try {
    const p1 = await openPage(ctx, G), p2 = await openPage(ctx, G);
    const o = dbOpts(s);
    await p1.evaluate((o) => T.open(o), o);
    await p2.evaluate((o) => T.open(o), o);
    await waitIn(p1, () => T.db.status.connected || T.db.status.leader === false, null, { what: 'tab 1 up' });
    // Whichever tab leads, a write in tab 2 is pushed.
    await p2.evaluate((s) => T.db.put(s, 'k', 'from tab 2'), s);
    await p2.evaluate(() => T.db.sync({ timeoutMs: 5000 }));
    assert.equal((await serverRecord(s, 'k')).value, 'from tab 2');
    // Pending mutations: refused, nothing changes.
    await p1.evaluate(() => T.db.setOffline(true));
    await p2.evaluate(() => T.db.setOffline(true));
    await p1.evaluate((s) => T.db.put(s, 'unsent', 1), s);
    const refused = await p2.evaluate(async () => { try { await T.db.destroy(); return null; } catch (e) { return { code: e.code, pending: e.details && e.details.pending }; } });
    assert.deepEqual(refused, { code: 'pending', pending: 1 });
    assert.equal(await p2.evaluate((s) => T.db.get(s, 'unsent'), s), 1);
    await p1.evaluate(() => T.db.setOffline(false));
    await p2.evaluate(() => T.db.setOffline(false));
    await p1.evaluate(() => T.db.sync({ timeoutMs: 5000 }));
    // Log out in tab 2 while tab 1 stays open.
    const requests = [];
    ctx.on('request', (r) => { if (r.url().includes('/v1/')) requests.push(r.url()); });
    const t0 = Date.now();
    await p2.evaluate(() => T.db.destroy());
    assert.ok(Date.now() - t0 < 3000, `not blocked by the other tab: ${Date.now() - t0} ms`);
    await waitIn(p1, () => T.events.close.length === 1, null, { what: 'tab 1 closed' });
    assert.deepEqual(await p1.evaluate(() => T.events.close.map((e) => e.reason)), ['destroyed']);
    assert.deepEqual(await p2.evaluate(() => T.events.close.map((e) => e.reason)), ['destroyed']);
    assert.equal(await p1.evaluate(async (s) => { try { await T.db.get(s, 'k'); return 'open'; } catch (e) { return e.code; } }, s), 'closed');
    assert.ok(!(await dbNames(p1)).includes(o.name), 'the IndexedDB database is gone');
    // No tab syncs any more: a server write brings no request.
    const n = requests.length;
    await api.putRecord(s, 'later', 1);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(requests.length, n, `no request after destroy: ${requests.slice(n)}`);
    assert.equal((await serverRecord(s, 'unsent')).value, 1, 'the server keeps its records');
    // Tab 1 can log in again: a fresh, empty database that syncs from the beginning.
    await p1.evaluate((o) => T.open(o), o);
    await until(() => p1.evaluate(async (s) => (await T.db.get(s, 'later')) === 1, s), { what: 'synced again after logging in' });
    assert.equal(await p1.evaluate(() => T.db.pendingMutations().then((m) => m.length)), 0);
  } finally {
    await ctx.close();
  }
});

it('range reads in Chromium\'s IndexedDB follow the server\'s byte order (characters above U+FFFF)', async () => {
  const s = uniq('br');
  await api.createStore(s);
  const keys = ['a', 'a/1', 'a\ue000', 'a\uffff', 'a\u{10000}', 'a\u{1f600}x', 'b', '\uff01', '\u{1f600}', 'z\u{10ffff}', 'z\ufffd'];
  for (const k of keys) await api.putRecord(s, k, k);
  const ctx = await browser.newContext();
  try {
    const p = await openPage(ctx, G);
    await p.evaluate((o) => T.open(o), dbOpts(s));
    await until(() => p.evaluate(async (n) => (await T.db.count(T.db.stores[0])) === n, keys.length), { what: 'pulled' });
    const utf8 = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    const got = await p.evaluate(async (s) => ({
      all: (await T.db.getAll(s)).map((r) => r.key),
      a: (await T.db.getAll(s, { prefix: 'a', reverse: true, limit: 3 })).map((r) => r.key),
      mid: (await T.db.getAll(s, { start: 'a\ue000', end: 'a\u{1f600}' })).map((r) => r.key),
      n: await T.db.count(s, { start: 'a\uffff', end: 'b' }),
    }), s);
    assert.deepEqual(got.all, utf8);
    assert.deepEqual(got.a, utf8.filter((k) => k.startsWith('a')).reverse().slice(0, 3));
    assert.deepEqual(got.mid, ['a\ue000', 'a\uffff', 'a\u{10000}']);
    assert.equal(got.n, 3);
  } finally {
    await ctx.close();
  }
});

it('a version-3 database is upgraded in Chromium: its pending mutations become log segments and are pushed once', async () => {
  const s = uniq('bu');
  await api.createStore(s);
  const ctx = await browser.newContext();
  try {
    const p = await openPage(ctx, G);
    const o = dbOpts(s);
    // The database as the version-3 client left it: the log in the records (p entries, q for by_pending).
    await p.evaluate(({ name, s }) => new Promise((resolve, reject) => {
      const r = indexedDB.open(name, 3);
      r.onupgradeneeded = () => {
        const d = r.result;
        const recs = d.createObjectStore('records', { keyPath: ['s', 'k'] });
        recs.createIndex('by_pending', 'q', { multiEntry: true });
        recs.createIndex('by_order', ['s', 'o']);
        recs.createIndex('by_tomb', ['s', 't']);
        const meta = d.createObjectStore('meta', { keyPath: 'k' });
        d.createObjectStore('conflicts', { keyPath: ['s', 'k'] });
        recs.put({ s, k: 'a', v: 'a2', ver: 0, c: '', e: 0, o: 'a',
          p: [{ id: 1, op: 'put', v: 'a1', at: 1000 }, { id: 4, op: 'put', v: 'a2', at: 1003 }], q: [[s, 1], [s, 4]] });
        recs.put({ s, k: 'g1', v: 1, ver: 0, c: '', e: 0, o: 'g1', p: [{ id: 2, op: 'put', v: 1, tx: 't-up', at: 1001 }], q: [[s, 2]] });
        recs.put({ s, k: 'g2', v: 2, ver: 0, c: '', e: 0, o: 'g2', p: [{ id: 3, op: 'put', v: 2, tx: 't-up', at: 1001 }], q: [[s, 3]] });
        meta.put({ k: 'client', v: 'c-upgraded3' });
        meta.put({ k: 'nextId', v: 5 });
      };
      r.onsuccess = () => { r.result.close(); resolve(); };
      r.onerror = () => reject(r.error);
    }), { name: o.name, s });
    await p.evaluate((o) => T.open({ ...o, offline: true }), o);
    assert.deepEqual(await p.evaluate(() => T.db.pendingMutations().then((l) => l.map((m) => [m.id, m.key, m.value, m.tx || null]))),
      [[1, 'a', 'a1', null], [2, 'g1', 1, 't-up'], [3, 'g2', 2, 't-up'], [4, 'a', 'a2', null]]);
    const raw = await p.evaluate((name) => T.raw(name), o.name);
    assert.deepEqual(raw.log.map((g) => g.m.map((e) => e.id)), [[1], [2, 3], [4]], 'one segment per group, one per other mutation');
    assert.deepEqual(raw.records.find((r) => r.k === 'a').p, [1, 4]);
    await p.evaluate(() => T.db.setOffline(false));
    await p.evaluate(() => T.db.sync({ timeoutMs: 10000 }));
    assert.equal((await serverRecord(s, 'a')).value, 'a2');
    assert.equal((await serverRecord(s, 'a')).version, 2, 'each of a\'s two mutations applied once');
    assert.equal((await serverRecord(s, 'g2')).value, 2);
    assert.equal(await p.evaluate(() => T.db.pendingMutations().then((l) => l.length)), 0);
    assert.deepEqual((await p.evaluate((name) => T.raw(name), o.name)).log, [], 'the log is empty');
  } finally {
    await ctx.close();
  }
});
