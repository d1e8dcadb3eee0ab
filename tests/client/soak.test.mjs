// Client soak: one database of four stores driven through SOAK_CYCLES
// (default 10,000) cycles against a real gateway, the four stores' cycles
// running side by side, each in lockstep. One cycle of a store: one local
// write and its push, and, at the same time, one cut of the store's event
// stream followed by the client's reconnect (store description, a pull of
// /changes, a new /events); the store's next cycle starts when all three were
// answered. Even cycles end the stream cleanly (the client reconnects at
// once), odd ones break it with a network error (the client backs off
// first), so the push and the pull loops sleep and wake on every cycle, and
// the four stores share the one lifetime signal of the sync (Syncer.abort).
//
// Asserted, with the tolerances below:
//  - abort listeners on the sync's lifetime signal stay at or under
//    MAX_LIFETIME_LISTENERS, and on each store's push and pull wake signals
//    at or under MAX_LISTENERS, at every checkpoint, warm-up included (a
//    leak adds one or two per cycle);
//  - live timers (process.getActiveResourcesInfo) never exceed the first
//    checkpoint after WARMUP cycles by more than TIMER_SLACK;
//  - heap after a full GC grows by at most HEAP_SLACK_BYTES from the first
//    checkpoint after WARMUP cycles to the last;
//  - no MaxListenersExceededWarning is emitted.
// The workload is fixed (keys, values, order of cuts); only the timing varies.
import '../lib/webcrypto.mjs';
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { getEventListeners } from 'node:events';
import v8 from 'node:v8';
import vm from 'node:vm';
import { setupEnv, it, uniq } from '../lib/harness.mjs';
import { open, closeAll, dbName } from './helpers.mjs';
import { gatewayWithApi } from '../lib/fixtures.mjs';

const CYCLES = Number(process.env.SOAK_CYCLES || 10000);
const WARMUP = Math.min(2000, Math.floor(CYCLES / 5));
const CHECK_EVERY = Math.max(1, Math.floor(CYCLES / 20));
const STORES = 4;                           // one database, four stores: cycles run 4 at a time
const KEYS = 64;                            // per store, the record set stays this size
const MAX_LISTENERS = 4;                    // per wake signal (one store's), at any checkpoint
const MAX_LIFETIME_LISTENERS = 4 * STORES;  // on the lifetime signal: a sleep or request per loop and store
const TIMER_SLACK = 2 * STORES;             // live timers over the first checkpoint's
const HEAP_SLACK_BYTES = 3 * 1024 * 1024;   // heap growth after warm-up
const CYCLE_TIMEOUT_MS = 10000;

/** A full GC: --expose-gc when given, else turned on at run time (Node 18 and 20). */
const gc = globalThis.gc || (() => { v8.setFlagsFromString('--expose-gc'); return vm.runInNewContext('gc'); })();
function heapUsed() { gc(); gc(); return process.memoryUsage().heapUsed; }
const liveTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
const abortListeners = (signal) => getEventListeners(signal, 'abort').length;

const env = setupEnv();
let G, api;

before(async () => {
  ({ gw: G, api } = await gatewayWithApi(env, { name: 'soak' }));
});
after(closeAll);

/**
 * A fetch that counts the client's requests per store and hands each /events
 * body through a stream the test can end (close) or break (error).
 */
function soakFetch() {
  /** @type {Map<string, {push: number, changes: number, events: number, desc: number, stream: any}>} */
  const per = new Map();
  const of = (s) => { if (!per.has(s)) per.set(s, { push: 0, changes: 0, events: 0, desc: 0, stream: null }); return per.get(s); };
  const waiters = new Set();
  const notify = () => { for (const w of [...waiters]) if (w.pred()) { waiters.delete(w); w.resolve(); } };
  const f = async (url, init = {}) => {
    const u = new URL(String(url));
    const m = u.pathname.match(/^\/v1\/stores\/([^/]+)(\/[a-z]+)?$/);
    const res = await fetch(url, init);
    if (!m) return res;
    const c = of(m[1]);
    if (m[2] === '/push' && res.ok) c.push++;
    else if (m[2] === '/changes') c.changes++;
    else if (!m[2]) c.desc++;
    if (m[2] !== '/events' || !res.ok) { notify(); return res; }
    const reader = res.body.getReader();
    let ctrl, ended = false;
    const end = (how) => {
      if (ended) return;
      ended = true;
      try { if (how === 'error') ctrl.error(new TypeError('terminated (soak cut)')); else ctrl.close(); } catch { /* already ended */ }
      reader.cancel().catch(() => {});
    };
    const body = new ReadableStream({
      start(k) { ctrl = k; },
      async pull(k) {
        try {
          const { value, done } = await reader.read();
          if (ended) return;
          if (done) { ended = true; k.close(); } else k.enqueue(value);
        } catch (e) { if (!ended) { ended = true; k.error(e); } }
      },
      cancel() { ended = true; return reader.cancel().catch(() => {}); },
    });
    c.stream = { close: () => end('close'), error: () => end('error') };
    c.events++;
    notify();
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  f.counts = (s) => of(s);
  f.total = () => { const t = { push: 0, changes: 0, events: 0, desc: 0 }; for (const c of per.values()) for (const k in t) t[k] += c[k]; return t; };
  /** Ends (close) or breaks (error) the open /events body of store s. */
  f.cut = (s, how) => { const c = of(s); const st = c.stream; c.stream = null; if (st) st[how](); };
  /** Resolves when pred() holds (checked after every request), or rejects after ms. */
  f.until = (pred, what, ms = CYCLE_TIMEOUT_MS) => {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: () => { clearTimeout(t); resolve(); } };
      const t = setTimeout(() => { waiters.delete(w); reject(new Error(`${what}: not reached in ${ms} ms (${JSON.stringify(f.total())})`)); }, ms);
      waiters.add(w);
    });
  };
  return f;
}

it(`a client through ${CYCLES} push/pull/stream-reconnect cycles keeps listeners, timers and heap flat`, { timeout: 300000 }, async () => {
  const warnings = [];
  const onWarning = (w) => { if (w.name === 'MaxListenersExceededWarning') warnings.push(w.message); };
  process.on('warning', onWarning);
  try {
    const stores = [];
    for (let k = 0; k < STORES; k++) { const s = uniq('soak'); await api.createStore(s); stores.push(s); }
    const f = soakFetch();
    const db = await open({
      name: dbName('soak'), url: G.url, stores, root: env.root, fetch: f,
      checkIntervalMs: 200, backoff: { baseMs: 1, maxMs: 2 },
    });
    const errors = [];
    db.on('error', (e) => errors.push(`${e.code}: ${e.message}`));
    await f.until(() => stores.every((s) => f.counts(s).events >= 1), 'first streams');
    const sy = db._syncer;
    const syncs = stores.map((s) => sy.stores.get(s));
    const samples = [];
    const t0 = Date.now();
    const pad = 'x'.repeat(200);
    let done = 0;
    const checkpoint = () => {
      const x = {
        cycle: done, ms: Date.now() - t0,
        lifetime: abortListeners(sy.abort.signal),
        pushWake: Math.max(...syncs.map((ss) => abortListeners(ss.pushWake.signal))),
        pullWake: Math.max(...syncs.map((ss) => abortListeners(ss.pullWake.signal))),
        timers: liveTimers(), heap: heapUsed(),
      };
      samples.push(x);
      if (process.env.SOAK_VERBOSE) console.log(`# soak ${JSON.stringify(x)}`);
      // Listener bounds hold from the start: a leak fails here, early.
      assert.ok(x.lifetime <= MAX_LIFETIME_LISTENERS, `after ${x.cycle} cycles: ${x.lifetime} abort listeners on the sync's lifetime signal (at most ${MAX_LIFETIME_LISTENERS}); ${JSON.stringify(x)}`);
      assert.ok(x.pushWake <= MAX_LISTENERS && x.pullWake <= MAX_LISTENERS, `after ${x.cycle} cycles: abort listeners on a store's push wake signal ${x.pushWake}, pull wake signal ${x.pullWake} (at most ${MAX_LISTENERS}); ${JSON.stringify(x)}`);
    };
    // One cycle of store s: a write and its push, with a stream cut and the
    // reconnect (description, pull, new stream) at the same time.
    const cycle = async (s, i) => {
      const c = f.counts(s);
      const pushes = c.push, streams = c.events, pulls = c.changes;
      await db.put(s, `k${i % KEYS}`, { i, pad });
      f.cut(s, i % 2 ? 'error' : 'close');
      await f.until(() => c.push > pushes && c.events > streams && c.changes > pulls, `${s} cycle ${i}: push, pull and reconnect`);
      done++;
    };
    // Rounds of CHECK_EVERY cycles (CHECK_EVERY / STORES per store); a
    // checkpoint after each, when every store is between two cycles.
    const perRound = Math.ceil(CHECK_EVERY / STORES);
    const perStore = perRound * Math.ceil(CYCLES / (perRound * STORES));
    for (let first = 1; first <= perStore; first += perRound) {
      await Promise.all(stores.map(async (s) => { for (let i = first; i < first + perRound; i++) await cycle(s, i); }));
      checkpoint();
    }
    assert.equal(db._syncer, sy, 'one leadership throughout');
    const after = samples.filter((x) => x.cycle > WARMUP);
    const first = after[0], last = after[after.length - 1];
    const mb = (b) => (b / 1048576).toFixed(2);
    const total = f.total();
    const report = `${done} cycles (${STORES} stores) in ${Date.now() - t0} ms; requests ${JSON.stringify(total)}; ` +
      `after warm-up: heap ${mb(first.heap)} -> ${mb(last.heap)} MB (max ${mb(Math.max(...after.map((x) => x.heap)))}), ` +
      `timers ${first.timers} -> max ${Math.max(...after.map((x) => x.timers))}, ` +
      `lifetime-signal listeners max ${Math.max(...samples.map((x) => x.lifetime))}, ` +
      `push wake max ${Math.max(...samples.map((x) => x.pushWake))}, pull wake max ${Math.max(...samples.map((x) => x.pullWake))}`;
    console.log(`# soak: ${report}`);
    assert.ok(done >= CYCLES && total.push >= CYCLES && total.changes >= CYCLES && total.events >= CYCLES, report);
    for (const x of after) assert.ok(x.timers <= first.timers + TIMER_SLACK, `cycle ${x.cycle}: ${x.timers} live timers, ${first.timers} after warm-up; ${report}`);
    assert.ok(last.heap - first.heap <= HEAP_SLACK_BYTES, `heap grew ${mb(last.heap - first.heap)} MB after warm-up (at most ${mb(HEAP_SLACK_BYTES)}); ${report}`);
    assert.deepEqual(warnings, [], 'no MaxListenersExceededWarning');
    assert.deepEqual(errors, [], 'no error events');
    // Still a working client: the last write of every key is on the server.
    for (const s of stores) {
      for (let i = perStore - KEYS + 1; i <= perStore; i++) {
        const r = await api.getRecord(s, `k${i % KEYS}`);
        assert.equal(r.json.value.i, i, `${s}/k${i % KEYS} on the server`);
      }
    }
    assert.equal((await db.pendingMutations()).length, 0);
  } finally {
    process.off('warning', onWarning);
  }
});
