// Real-browser resilience: tabs of one profile (one leader, one stream,
// hand-over), a browser killed during a burst of writes, and a silent
// gateway (SIGSTOP) detected and left for the next URL.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it, sleep } from '../lib/harness.mjs';
import { request, eventually } from '../lib/http.mjs';
import { launchProfile, tempProfile, openPage, waitIn, dbOptions, gatewaysWithBrowser } from './lib/browser.mjs';
import { freshStore } from '../lib/fixtures.mjs';

const env = setupEnv();
let A, B, apiA, apiB, browser;

before(async () => {
  ({ gws: [A, B], apis: [apiA, apiB], browser } = await gatewaysWithBrowser(env, 2, { args: ['--keepalive-ms', '300'], names: ['A', 'B'] }));
});

const newStore = (body) => freshStore(apiA, { prefix: 'r', body });
const dbOpts = (s, extra) => dbOptions(A.url, s, 600, extra);
const streams = async (gw) => Number(((await request(gw.url, 'GET', '/metrics')).text.match(/^zoosync_event_streams (\d+)/m) || [])[1]);

it('two tabs of one profile: one leader, one event stream; close the leader and the other takes over within a second', async () => {
  const s = await newStore();
  const ctx = await browser.newContext();
  try {
    const o = dbOpts(s);
    const p1 = await openPage(ctx, A), p2 = await openPage(ctx, A);
    const events = [];
    ctx.on('request', (r) => { if (r.url().includes('/events')) events.push({ url: r.url(), page: r.frame().page() === p1 ? 1 : 2 }); });
    await p1.evaluate((o) => T.open(o), o);
    await p2.evaluate((o) => T.open(o), o);
    await waitIn(p1, () => T.db.status.connected, null, { what: 'tab 1 connected' });
    await waitIn(p2, () => T.db.status.connected, null, { what: 'tab 2 sees the leader connected' });
    await sleep(700); // more than twice the keepalive: a second stream would have shown by now
    const leaders = [await p1.evaluate(() => T.db.status.leader), await p2.evaluate(() => T.db.status.leader)];
    assert.deepEqual(leaders, [true, false], 'the first tab leads, the second follows');
    assert.equal(events.length, 1, `one event stream: ${JSON.stringify(events)}`);
    assert.equal(await streams(A), 1, 'the gateway holds one stream');
    // The follower writes through IndexedDB; the leader pushes it.
    await p2.evaluate((s) => T.db.put(s, 'from-tab-2', 2), s);
    await waitIn(p1, (s) => T.events.changes.some((c) => c.key === 'from-tab-2' && c.origin === 'local'), s, { ms: 1000, what: 'tab 1 learns tab 2\'s write' });
    await eventually(async () => (await apiA.getRecord(s, 'from-tab-2')).status === 200, { ms: 3000, what: 'pushed by the leader' });
    assert.equal((await apiA.getRecord(s, 'from-tab-2')).json.value, 2);
    await waitIn(p2, () => T.db.status.pending === 0, null, { ms: 3000, what: 'the follower sees nothing pending' });
    // Remote changes reach the follower through the leader.
    await apiA.putRecord(s, 'remote-1', 'r1');
    await waitIn(p2, () => T.events.changes.some((c) => c.key === 'remote-1' && c.origin === 'remote'), null, { ms: 1000, what: 'follower gets remote changes' });
    // Hand-over.
    const t0 = Date.now();
    await p1.close();
    await waitIn(p2, () => T.db.status.leader && T.db.status.connected, null, { ms: 1000, what: 'tab 2 leads and streams within a second' });
    const took = Date.now() - t0;
    assert.ok(took < 1000, `hand-over took ${took} ms`);
    assert.equal(events.filter((e) => e.page === 2).length, 1, 'tab 2 opened one stream');
    await apiA.putRecord(s, 'remote-2', 'r2');
    await waitIn(p2, () => T.events.changes.some((c) => c.key === 'remote-2' && c.origin === 'remote'), null, { ms: 1000, what: 'the new leader gets live changes' });
    await sleep(300);
    assert.equal(await streams(A), 1, 'still one stream on the gateway');
  } finally {
    await ctx.close();
  }
});

it('the browser killed during a burst of writes: after reopening, data and change log agree, every acknowledged write reaches the server once', { timeout: 120000 }, async () => {
  const s = await newStore();
  const dir = tempProfile();
  const o = dbOpts(s);
  const acked = new Set();
  let chrome = await launchProfile(dir);
  try {
    const page = await openPage(chrome.context, A);
    await page.exposeFunction('ack', (i) => { acked.add(i); });
    await page.evaluate((o) => T.open(o), o);
    await waitIn(page, () => T.db.status.connected, null, { what: 'connected' });
    // A burst: writes one after another (each acknowledged when its promise resolves), some in groups.
    page.evaluate(async (s) => {
      for (let i = 0; i < 100000; i++) {
        if (i % 10 === 5) await T.db.transaction(async (tx) => { await tx.put(s, `k${i}`, { i, g: true }); await tx.put(s, `g${i}`, i); });
        else await T.db.put(s, `k${i}`, { i });
        window.ack(i);
      }
    }, s).catch(() => {});
    const end = Date.now() + 30000;
    while (acked.size < 150 && Date.now() < end) await sleep(10);
    assert.ok(acked.size >= 150, `only ${acked.size} writes acknowledged`);
    await chrome.crash(); // SIGKILL to the whole browser, mid-burst
  } finally {
    await chrome.close();
  }
  const ackedMax = Math.max(...acked);
  // Reopen the same profile, first without the network to the gateway.
  chrome = await launchProfile(dir);
  try {
    const ctx = chrome.context;
    await ctx.route('**/v1/**', (r) => r.abort('internetdisconnected'));
    const page = await openPage(ctx, A);
    const raw = await page.evaluate((name) => T.raw(name), o.name);
    const recs = new Map(raw.records.filter((r) => r.s === s).map((r) => [r.k, r]));
    const muts = raw.mutations.filter((m) => m.s === s);
    // Every pending mutation has its record, with the value of the key's last mutation.
    const lastByKey = new Map();
    for (const m of muts) lastByKey.set(m.k, m);
    for (const [k, m] of lastByKey) {
      assert.ok(recs.has(k), `mutation ${m.id} for ${k} without its record`);
      assert.deepEqual(recs.get(k).v, m.v, `record ${k} disagrees with its mutation`);
    }
    // Each row lists exactly its key's mutations in the log (StoredRecord.p), in id order.
    for (const [k, r] of recs) {
      assert.deepEqual(r.p || [], muts.filter((m) => m.k === k).map((m) => m.id), `row ${k} and the log disagree`);
    }
    // Ids strictly increase; groups are whole.
    for (let i = 1; i < muts.length; i++) assert.ok(muts[i].id > muts[i - 1].id);
    const groups = new Map();
    for (const m of muts) if (m.tx) groups.set(m.tx, (groups.get(m.tx) || 0) + 1);
    for (const [tx, n] of groups) assert.equal(n, 2, `group ${tx} has ${n} of its 2 mutations`);
    // Every acknowledged write is here.
    for (const i of acked) {
      assert.ok(recs.has(`k${i}`), `acknowledged write k${i} lost`);
      if (i % 10 === 5) assert.ok(recs.has(`g${i}`), `acknowledged group member g${i} lost`);
    }
    // A record without a pending mutation must already be on the server.
    for (const [k, r] of recs) {
      if (lastByKey.has(k)) continue;
      const sr = await apiA.getRecord(s, k);
      assert.equal(sr.status, 200, `${k} is neither pending nor on the server`);
      assert.deepEqual(sr.json.value, r.v);
    }
    console.error(`# acknowledged ${acked.size} (max ${ackedMax}); after the kill: ${recs.size} records, ${muts.length} pending`);
    // Back online: everything goes out, once.
    await page.evaluate((o) => T.open(o), o);
    await ctx.unroute('**/v1/**');
    await waitIn(page, () => T.db.status.pending === 0, null, { ms: 20000, what: 'all pending pushed' });
    const feed = await apiA.changesAll(s, {});
    const server = new Map(feed.changes.map((c) => [c.key, c]));
    const errors = await page.evaluate(() => T.events.error);
    for (const [k, r] of recs) {
      assert.ok(server.has(k), `${k} never reached the server (pending after the kill: ${muts.map((m) => `${m.id}:${m.k}`).join(' ')}; `
        + `errors in the page: ${JSON.stringify(errors).slice(0, 2000)})`);
      assert.deepEqual(server.get(k).value, r.v);
      assert.equal(server.get(k).version, 1, `${k} applied ${server.get(k).version} times`);
    }
    assert.equal(server.size, recs.size, 'the server has nothing the browser did not keep');
  } finally {
    await chrome.close();
  }
});

it('a stream that goes silent (gateway stopped with SIGSTOP) is detected and reopened against the next URL', async () => {
  const s = await newStore();
  const ctx = await browser.newContext();
  let stopped = false;
  try {
    const page = await openPage(ctx, A);
    const reqs = [];
    ctx.on('request', (r) => { if (r.url().includes('/events')) reqs.push({ url: r.url(), at: Date.now() }); });
    await page.evaluate((o) => T.open(o), dbOpts(s, { url: [A.url, B.url], requestTimeoutMs: 1500 }));
    await waitIn(page, () => T.db.status.connected, null, { what: 'connected' });
    assert.ok(reqs.length === 1 && reqs[0].url.startsWith(A.url));
    process.kill(A.pid, 'SIGSTOP');
    stopped = true;
    const t0 = Date.now();
    const deadline = Date.now() + 5000;
    while (!reqs.some((r) => r.url.startsWith(B.url)) && Date.now() < deadline) await sleep(20);
    const toB = reqs.find((r) => r.url.startsWith(B.url));
    assert.ok(toB, `reopened against ${B.url}: ${JSON.stringify(reqs)}`);
    assert.ok(toB.at - t0 < 3000, `detected in ${toB.at - t0} ms (keepalive 600 ms: dead after 1200 ms)`);
    await waitIn(page, () => T.db.status.connected, null, { ms: 5000, what: 'connected to B' });
    await apiB.putRecord(s, 'via-b', 'live');
    await waitIn(page, () => T.events.changes.some((c) => c.key === 'via-b' && c.origin === 'remote'), null, { ms: 2000, what: 'live through B' });
    await page.evaluate((s) => T.db.put(s, 'pushed', 1), s);
    await eventually(async () => (await apiB.getRecord(s, 'pushed')).status === 200, { ms: 5000, what: 'pushed through B' });
    await waitIn(page, () => T.db.status.pending === 0, null, { ms: 5000, what: 'nothing pending' });
  } finally {
    if (stopped) process.kill(A.pid, 'SIGCONT');
    await ctx.close();
  }
});
