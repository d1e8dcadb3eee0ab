// Real-browser tests (Debian chromium + playwright-core) against a real
// zoosyncd and ZooKeeper: live sync between two profiles, offline writes
// across a reload, conflicts, foreign ZooKeeper writes, rejected mutations,
// and a 50,000-record initial sync that resumes after a reload.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it, uniq, zkCli, recordZnode } from '../lib/harness.mjs';
import { openPage, waitIn, dbOptions, gatewaysWithBrowser } from './lib/browser.mjs';
import { freshStore, serverRecord as serverRecordOf } from '../lib/fixtures.mjs';

const env = setupEnv();
let G, api, browser;

before(async () => {
  ({ gws: [G], apis: [api], browser } = await gatewaysWithBrowser(env, 1, { args: ['--keepalive-ms', '500'] }));
});

const newStore = (body) => freshStore(api, { prefix: 'b', body });
const dbOpts = (s, extra) => dbOptions(G.url, s, 1500, extra);
const serverRecord = (s, k) => serverRecordOf(api, s, k);

it('two browser contexts (separate IndexedDB) sync both ways, live, within a second', async () => {
  const s = await newStore();
  const ca = await browser.newContext(), cb = await browser.newContext();
  try {
    const pa = await openPage(ca, G), pb = await openPage(cb, G);
    const name = uniq('db');
    await pa.evaluate((o) => T.open(o), dbOpts(s, { name }));
    await pb.evaluate((o) => T.open(o), dbOpts(s, { name })); // same name, separate profiles
    await waitIn(pa, () => T.db.status.connected, null, { what: 'A connected' });
    await waitIn(pb, () => T.db.status.connected, null, { what: 'B connected' });
    for (const [from, to, key] of [[pa, pb, 'fromA'], [pb, pa, 'fromB']]) {
      const t0 = await from.evaluate(async ([s, key]) => { await T.db.put(s, key, { by: key }); return Date.now(); }, [s, key]);
      const h = await waitIn(to, ([s, key]) => T.events.changes.find((c) => c.store === s && c.key === key && c.origin === 'remote'), [s, key], { ms: 1000, what: `${key} live within a second` });
      const c = await h.jsonValue();
      assert.ok(c.t - t0 < 1000, `${key} took ${c.t - t0} ms`);
      assert.deepEqual(c.value, { by: key });
      assert.deepEqual(await to.evaluate(([s, key]) => T.db.get(s, key), [s, key]), { by: key });
    }
    // A delete goes live too.
    await pa.evaluate((s) => T.db.delete(s, 'fromB'), s);
    await waitIn(pb, (s) => T.events.changes.some((c) => c.key === 'fromB' && c.deleted && c.origin === 'remote'), s, { ms: 1000, what: 'delete live' });
    assert.equal(await serverRecord(s, 'fromB'), null);
    assert.equal((await serverRecord(s, 'fromA')).version, 1);
  } finally {
    await ca.close(); await cb.close();
  }
});

it('writes made offline survive a page reload and reach the server exactly once when back online', async () => {
  const s = await newStore();
  const ctx = await browser.newContext();
  try {
    let page = await openPage(ctx, G);
    const o = dbOpts(s);
    await page.evaluate((o) => T.open(o), o);
    await waitIn(page, () => T.db.status.connected, null, { what: 'connected' });
    await ctx.setOffline(true);
    await waitIn(page, () => T.db.status.online === false && navigator.onLine === false, null, { what: 'status offline' });
    const pushes = [];
    ctx.on('request', (r) => { if (r.url().includes('/push')) pushes.push(r.url()); });
    await page.evaluate(async (s) => {
      await T.db.put(s, 'o1', { title: 'written offline' });
      await T.db.put(s, 'o2', 2);
      await T.db.transaction(async (tx) => { await tx.put(s, 'o3', 3); await tx.put(s, 'o4', 4); });
      await T.db.delete(s, 'o2');
    }, s);
    await waitIn(page, () => T.db.status.pending === 5, null, { what: '5 pending' });
    // Reload: the gateway's API stays unreachable (the page itself must load).
    await ctx.route('**/v1/**', (r) => r.abort('internetdisconnected'));
    await ctx.setOffline(false);
    await page.reload();
    await page.waitForFunction(() => window.ready === true);
    await page.evaluate((o) => T.open(o), o);
    assert.deepEqual(await page.evaluate((s) => T.db.get(s, 'o1'), s), { title: 'written offline' });
    const log = await page.evaluate((s) => T.db.pendingMutations(s), s);
    assert.deepEqual(log.map((m) => [m.key, m.op]), [['o1', 'put'], ['o2', 'put'], ['o3', 'put'], ['o4', 'put'], ['o2', 'delete']]);
    assert.equal(await serverRecord(s, 'o1'), null, 'nothing reached the server yet');
    assert.equal(pushes.filter((u) => u).length >= 0, true);
    await ctx.unroute('**/v1/**');
    await waitIn(page, () => T.db.status.pending === 0, null, { ms: 8000, what: 'pushed after reconnect' });
    assert.deepEqual((await serverRecord(s, 'o1')).value, { title: 'written offline' });
    assert.equal((await serverRecord(s, 'o1')).version, 1, 'applied once');
    assert.equal((await serverRecord(s, 'o3')).version, 1);
    assert.equal(await serverRecord(s, 'o2'), null);
    const feed = await api.changesOk(s);
    assert.deepEqual(feed.changes.map((c) => [c.key, c.version]).sort(), [['o1', 1], ['o3', 1], ['o4', 1]]);
  } finally {
    await ctx.close();
  }
});

it('a conflict in a cas store calls onConflict, emits conflict, and the resolved value wins everywhere', async () => {
  const s = await newStore({ conflict: 'cas' });
  const ca = await browser.newContext(), cb = await browser.newContext();
  try {
    const pa = await openPage(ca, G), pb = await openPage(cb, G);
    await pa.evaluate((o) => T.open(o), dbOpts(s));
    await pb.evaluate((o) => T.open(o, 'merge'), dbOpts(s, { offline: true }));
    await pa.evaluate(async (s) => { await T.db.put(s, 'list', { items: ['from A'] }); await T.db.sync(); }, s);
    await pb.evaluate(async (s) => { await T.db.put(s, 'list', { items: ['from B'] }); T.db.setOffline(false); await T.db.sync(); }, s);
    const calls = await pb.evaluate(() => T.conflictCalls);
    assert.equal(calls.length, 1);
    assert.deepEqual([calls[0].local, calls[0].remote], [{ items: ['from B'] }, { items: ['from A'] }]);
    const ev = await pb.evaluate(() => T.events.conflict);
    assert.equal(ev.length, 1);
    assert.deepEqual(ev[0].resolved, { items: ['from A', 'from B'] });
    assert.equal(ev[0].key, 'list');
    const want = { items: ['from A', 'from B'] };
    assert.deepEqual((await serverRecord(s, 'list')).value, want);
    await waitIn(pa, ([s, w]) => T.db && JSON.stringify(T.events.changes.filter((c) => c.key === 'list').at(-1)?.value) === w, [s, JSON.stringify(want)], { ms: 2000, what: 'A gets the resolution' });
    assert.deepEqual(await pa.evaluate((s) => T.db.get(s, 'list'), s), want);
    assert.deepEqual(await pb.evaluate((s) => T.db.get(s, 'list'), s), want);
  } finally {
    await ca.close(); await cb.close();
  }
});

it('a write made directly in ZooKeeper by another client appears in the page', async () => {
  const s = await newStore();
  const ctx = await browser.newContext();
  try {
    const page = await openPage(ctx, G);
    await page.evaluate((o) => T.open(o), dbOpts(s));
    await page.evaluate(async (s) => { await T.db.put(s, 'zk1', { v: 'from the page' }); await T.db.sync(); }, s);
    await waitIn(page, () => T.db.status.connected, null, { what: 'connected' });
    const z1 = recordZnode(env.root, s, 'zk1');
    const z2 = recordZnode(env.root, s, 'zk2');
    await zkCli(env.zk.connect, 'create', z2.bucketPath, '');
    const r1 = await zkCli(env.zk.connect, 'set', z1.path, '{"v":"from zkCli"}');
    assert.ok(r1.ok, r1.stderr);
    const r2 = await zkCli(env.zk.connect, 'create', z2.path, '[1,2,3]');
    assert.ok(r2.ok, r2.stderr);
    await waitIn(page, (s) => T.events.changes.some((c) => c.key === 'zk2' && c.origin === 'remote'), s, { ms: 3000, what: 'foreign create in the page' });
    await waitIn(page, (s) => T.events.changes.some((c) => c.key === 'zk1' && c.origin === 'remote' && c.value.v === 'from zkCli'), s, { ms: 3000, what: 'foreign set in the page' });
    assert.deepEqual(await page.evaluate((s) => T.db.get(s, 'zk2'), s), [1, 2, 3]);
    const meta = await page.evaluate((s) => T.db.getMeta(s, 'zk1'), s);
    assert.equal(meta.version, 2, 'the foreign write is version 2 (stat.version + 1)');
    // The page's next write is based on it: no conflict.
    await page.evaluate(async (s) => { await T.db.put(s, 'zk1', { v: 'page again' }); await T.db.sync(); }, s);
    assert.equal((await serverRecord(s, 'zk1')).version, 3);
    assert.deepEqual(await page.evaluate(() => T.events.conflict), []);
  } finally {
    await ctx.close();
  }
});

it('a mutation the server rejects for good is reported through error, leaves the queue, and the ones behind it sync', async () => {
  const s = await newStore();
  const ctx = await browser.newContext();
  try {
    const page = await openPage(ctx, G);
    await page.evaluate((o) => T.open(o), dbOpts(s));
    await waitIn(page, () => T.db.status.connected, null, { what: 'connected' });
    await ctx.setOffline(true);
    await page.evaluate(async (s) => {
      await T.db.put(s, 'a', 'small');
      await T.db.put(s, 'big', 'x'.repeat(500));
      await T.db.put(s, 'c', 'small too');
    }, s);
    const r = await api.putStore(s, { maxValueBytes: 100 });
    assert.equal(r.status, 200, r.text);
    await ctx.setOffline(false);
    await waitIn(page, () => T.db.status.pending === 0, null, { ms: 8000, what: 'queue drained' });
    const errs = await page.evaluate(() => T.events.error);
    const e = errs.find((x) => x.code === 'value_too_large');
    assert.ok(e, JSON.stringify(errs));
    assert.equal(e.store, s);
    assert.equal(e.mutation.key, 'big');
    assert.equal((await serverRecord(s, 'a')).value, 'small');
    assert.equal((await serverRecord(s, 'c')).value, 'small too');
    assert.equal(await serverRecord(s, 'big'), null);
    assert.equal(await page.evaluate((s) => T.db.get(s, 'big'), s), undefined);
    const st = await page.evaluate(() => T.events.status.filter((x) => x.error).map((x) => x.error.code));
    assert.ok(st.includes('value_too_large'), `status carried the error: ${st}`);
  } finally {
    await ctx.close();
  }
});

it('an initial sync of 50,000 records arrives page by page with progress, and resumes after a reload', { timeout: 180000 }, async () => {
  const s = await newStore();
  const N = 50000;
  const t0 = Date.now();
  // Fill the store (1000 mutations per push, a few pushes at a time).
  const batches = [];
  for (let i = 0; i < N; i += 1000) batches.push(i);
  for (let k = 0; k < batches.length; k += 4) {
    await Promise.all(batches.slice(k, k + 4).map((i) => {
      const muts = [];
      for (let j = i; j < i + 1000; j++) muts.push({ id: j + 1, key: `rec${String(j).padStart(6, '0')}`, op: 'put', value: { n: j, title: `record ${j}` } });
      return api.pushOk(s, `loader${i}`, muts);
    }));
  }
  console.error(`# filled ${N} records in ${Date.now() - t0} ms`);
  const ctx = await browser.newContext();
  try {
    const page = await openPage(ctx, G);
    const o = dbOpts(s, { pageSize: 1000 });
    const changesUrls = [];
    ctx.on('request', (r) => { if (r.url().includes('/changes')) changesUrls.push(r.url()); });
    const t1 = Date.now();
    await page.evaluate((o) => T.open(o), o);
    // Reload mid-way.
    await waitIn(page, (s) => T.db.status.progress && T.db.status.progress[s] && T.db.status.progress[s].received >= 10000, s, { ms: 60000, what: '10,000 received' });
    const mid = await page.evaluate((s) => ({ st: T.db.status.progress[s], statuses: T.events.status.filter((x) => x.progress && x.progress[s]).map((x) => x.progress[s]) }), s);
    assert.equal(mid.st.total, N);
    assert.ok(mid.statuses.length >= 3, 'progress reported per page');
    for (let i = 1; i < mid.statuses.length; i++) assert.ok(mid.statuses[i].received >= mid.statuses[i - 1].received);
    assert.ok(mid.statuses.every((p) => p.received % 1000 === 0), 'each page is one step');
    await page.reload();
    await page.waitForFunction(() => window.ready === true);
    const storedCursor = await page.evaluate(async (name) => (await T.raw(name)).meta.find((m) => m.k.startsWith('cursor:'))?.v, o.name);
    const haveBefore = await page.evaluate(async (name) => (await T.raw(name)).records.length, o.name);
    assert.ok(haveBefore >= 10000 && haveBefore < N, `kept ${haveBefore} records across the reload`);
    const nBefore = changesUrls.length;
    await page.evaluate((o) => T.open(o), o);
    await waitIn(page, (s) => T.events.status.some((x) => x.progress && x.progress[s] && x.progress[s].done) && T.db.status.progress === null, s, { ms: 120000, what: 'initial sync done' });
    const after = changesUrls.slice(nBefore);
    assert.ok(after[0].includes(`since=${storedCursor}`), `resumed from the stored cursor: ${after[0]}`);
    assert.ok(after.every((u) => u.includes('since=')), 'never restarted from the beginning');
    const pagesAfter = after.length;
    assert.ok(pagesAfter <= 45 && pagesAfter >= Math.ceil((N - haveBefore) / 1000), `pages after the reload: ${pagesAfter}`);
    const count = await page.evaluate(async (s) => (await T.db.getAll(s)).length, s);
    assert.equal(count, N);
    const st2 = await page.evaluate((s) => T.events.status.filter((x) => x.progress && x.progress[s]).map((x) => x.progress[s]), s);
    assert.ok(st2[0].received >= haveBefore - 1000, `progress resumes near ${haveBefore}: ${JSON.stringify(st2[0])}`);
    assert.deepEqual(await page.evaluate((s) => T.db.get(s, 'rec049999'), s), { n: 49999, title: 'record 49999' });
    console.error(`# initial sync of ${N} in the browser: ${Date.now() - t1} ms`);
  } finally {
    await ctx.close();
  }
});
