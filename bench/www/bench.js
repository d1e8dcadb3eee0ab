// In-page side of B7 and B8 (bench/browser.mjs): the zoosync client, and
// the raw baselines (IndexedDB alone; fetch + an event stream without the
// client). Times are wall-clock ms with sub-ms resolution
// (performance.timeOrigin + performance.now()), comparable across the two
// browser processes of one machine.
import { openSyncDB } from '/client/zoosync.js';

const now = () => performance.timeOrigin + performance.now();
const value = (i, n) => {
  const head = `{"i":${i},"p":"`;
  return JSON.parse(head + 'x'.repeat(Math.max(0, n - head.length - 2)) + '"}');
};

const B = {
  db: null,
  seen: new Map(),      // key -> { value, t } of remote changes
  count: 0,             // distinct keys seen remotely
  countWaiters: [],     // [n, resolve]
  keyWaiters: [],       // [key, i, resolve]

  zeroAt: null,         // when status.pending first became 0 after armZero()
  armed: false,
  armZero() { B.armed = true; B.zeroAt = null; },
  async open(opts) {
    B.db = await openSyncDB(opts);
    B.db.on('status', (st) => { if (B.armed && st.pending === 0) { B.armed = false; B.zeroAt = now(); } });
    for (const s of opts.stores) {
      B.db.subscribe(s, (changes) => {
        const t = now();
        for (const c of changes) {
          if (c.origin !== 'remote') continue;
          if (!B.seen.has(c.key)) B.count++;
          B.seen.set(c.key, { value: c.value, t });
        }
        B.wake(t);
      });
    }
    return true;
  },
  wake(t) {
    B.countWaiters = B.countWaiters.filter(([n, resolve]) => (B.count >= n ? (resolve(t), false) : true));
    B.keyWaiters = B.keyWaiters.filter(([key, i, resolve]) => {
      const s = B.seen.get(key);
      if (s && s.value && s.value.i === i) { resolve(s.t); return false; }
      return true;
    });
  },
  /** Resolves with the time B had seen n distinct remote keys. */
  waitCount(n) { return new Promise((resolve) => { B.countWaiters.push([n, resolve]); B.wake(now()); }); },
  /** Resolves with the time B saw key with value.i === i. */
  waitValue(key, i) { return new Promise((resolve) => { B.keyWaiters.push([key, i, resolve]); B.wake(now()); }); },
  status() { return B.db.status; },

  /** B7: n records in transactions of `per` puts; returns the elapsed ms. */
  async writeMany(store, n, per, bytes, prefix) {
    const t0 = now();
    for (let i = 0; i < n; i += per) {
      await B.db.transaction(async (tx) => {
        for (let j = i; j < Math.min(n, i + per); j++) await tx.put(store, `${prefix}${j}`, value(j, bytes));
      });
    }
    return now() - t0;
  },
  /** B7: the same local write in a database of its own (local-only, then
   *  deleted), to take more samples of the client between raw ones. */
  async sideWriteMany(n, per, bytes) {
    const name = `side-${Math.random().toString(36).slice(2)}`;
    const db = await openSyncDB({ name, stores: ['w'] });
    db.subscribe('w', () => {}); // as page A's main database: one subscriber
    const main = B.db;
    B.db = db;
    try { return await B.writeMany('w', n, per, bytes, 'k'); } finally {
      B.db = main;
      await db.destroy({ force: true });
    }
  },
  /** B8: one put; returns the time just before it. */
  async putOne(store, key, i, bytes) {
    const t = now();
    await B.db.put(store, key, value(i, bytes));
    return t;
  },

  /** Raw IndexedDB shaped like the client's writes: transactions of `per`, each put
   *  written to a records store and appended to a log store. */
  async rawIDBShaped(n, per, bytes, durability) {
    const name = `raws-${Math.random().toString(36).slice(2)}`;
    const idb = await new Promise((resolve, reject) => {
      const r = indexedDB.open(name, 1);
      r.onupgradeneeded = () => { r.result.createObjectStore('records'); r.result.createObjectStore('log', { autoIncrement: true }); };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const t0 = now();
    for (let i = 0; i < n; i += per) {
      await new Promise((resolve, reject) => {
        const tx = idb.transaction(['records', 'log'], 'readwrite', { durability });
        const rs = tx.objectStore('records'), ls = tx.objectStore('log');
        for (let j = i; j < Math.min(n, i + per); j++) {
          const v = value(j, bytes);
          rs.put({ key: `r${j}`, value: v, version: 0 }, `r${j}`);
          ls.put({ id: j, key: `r${j}`, op: 'put', value: v });
        }
        tx.oncomplete = resolve;
        tx.onerror = () => reject(tx.error);
      });
    }
    const ms = now() - t0;
    idb.close();
    indexedDB.deleteDatabase(name);
    return ms;
  },
  /** Raw IndexedDB shaped like the workload (the B7 local-write ceiling): n puts
   *  in transactions of `per` (one IndexedDB transaction per transaction() call
   *  of the client), one object store, one put per record. */
  async rawIDBTx(n, per, bytes, durability) {
    const name = `rawt-${Math.random().toString(36).slice(2)}`;
    const idb = await B.rawOpen(name);
    const t0 = now();
    for (let i = 0; i < n; i += per) {
      await new Promise((resolve, reject) => {
        const tx = idb.transaction('records', 'readwrite', { durability });
        const os = tx.objectStore('records');
        for (let j = i; j < Math.min(n, i + per); j++) os.put({ key: `r${j}`, value: value(j, bytes) }, `r${j}`);
        tx.oncomplete = resolve;
        tx.onerror = () => reject(tx.error);
      });
    }
    const ms = now() - t0;
    idb.close();
    indexedDB.deleteDatabase(name);
    return ms;
  },
  /** A fresh raw database with one object store `records` (out-of-line keys). */
  rawOpen(name) {
    return new Promise((resolve, reject) => {
      const r = indexedDB.open(name, 1);
      r.onupgradeneeded = () => r.result.createObjectStore('records');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  },
  /** Raw: puts rows ({key, ...}) in one readwrite transaction (strict); resolves on commit. */
  rawWrite(idb, rows) {
    return new Promise((resolve, reject) => {
      const tx = idb.transaction('records', 'readwrite', { durability: 'strict' });
      const os = tx.objectStore('records');
      for (const r of rows) os.put(r, r.key);
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
    });
  },
  /** Raw IndexedDB: n puts in one readwrite transaction (same durability as the client). */
  async rawIDB(n, bytes, durability) {
    const name = `raw-${Math.random().toString(36).slice(2)}`;
    const idb = await new Promise((resolve, reject) => {
      const r = indexedDB.open(name, 1);
      r.onupgradeneeded = () => r.result.createObjectStore('records');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const t0 = now();
    await new Promise((resolve, reject) => {
      const tx = idb.transaction('records', 'readwrite', { durability });
      const os = tx.objectStore('records');
      for (let j = 0; j < n; j++) os.put({ key: `r${j}`, value: value(j, bytes) }, `r${j}`);
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
    });
    const ms = now() - t0;
    idb.close();
    indexedDB.deleteDatabase(name);
    return ms;
  },

  // ---- raw gateway path, no client library (the B7/B8 ceilings) ----------
  raw: { seen: new Map(), count: 0, countWaiters: [], keyWaiters: [], abort: null, idb: null, wake: (t) => B.rawWake(t) },
  /** Opens a fetch-read event stream on store and parses its change events.
   *  With `write`, each event's records are put in a raw IndexedDB database
   *  in one transaction (strict) and counted once it committed (the B7
   *  ceiling: the records end up in IndexedDB, as the client's do). */
  async rawListen(store, write = false) {
    const R = B.raw;
    R.abort = new AbortController();
    R.idb = write ? await B.rawOpen(`rawl-${Math.random().toString(36).slice(2)}`) : null;
    const res = await fetch(`/v1/stores/${store}/events`, { headers: { accept: 'text/event-stream' }, signal: R.abort.signal });
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let opened;
    const ready = new Promise((r) => { opened = r; });
    (async () => {
      for (;;) {
        let chunk;
        try { chunk = await reader.read(); } catch { return; }
        if (chunk.done) return;
        opened();
        buf += dec.decode(chunk.value, { stream: true });
        let k;
        while ((k = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, k);
          buf = buf.slice(k + 2);
          const data = frame.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (!data) continue;
          const changes = JSON.parse(data).changes || [];
          const seen = () => {
            const t = now();
            for (const c of changes) {
              if (!R.seen.has(c.key)) R.count++;
              R.seen.set(c.key, { value: c.value, t });
            }
            R.wake(t);
          };
          if (R.idb) B.rawWrite(R.idb, changes).then(seen); else seen();
        }
      }
    })();
    await ready;
    return true;
  },
  rawWake(t) {
    const R = B.raw;
    R.countWaiters = R.countWaiters.filter(([n, resolve]) => (R.count >= n ? (resolve(t), false) : true));
    R.keyWaiters = R.keyWaiters.filter(([key, i, resolve]) => {
      const s = R.seen.get(key);
      if (s && s.value && s.value.i === i) { resolve(s.t); return false; }
      return true;
    });
  },
  rawWaitCount(n) { const R = B.raw; return new Promise((resolve) => { if (R.count >= n) resolve(now()); else R.countWaiters.push([n, resolve]); }); },
  rawWaitValue(key, i) { const R = B.raw; return new Promise((resolve) => { const s = R.seen.get(key); if (s && s.value && s.value.i === i) resolve(s.t); else R.keyWaiters.push([key, i, resolve]); }); },
  rawClient: `raw${Math.random().toString(36).slice(2, 8)}`,
  rawNext: 1,
  /** Pushes mutations as the client would, without it; returns the time before the first request.
   *  With `idb`, each answer's records (with their new versions) are put in
   *  that raw database in one transaction (strict), committed before the next
   *  request, as a sync loop that records what the server acknowledged does. */
  async rawPush(store, muts, idb = null) {
    const t = now();
    for (let i = 0; i < muts.length; i += 1000) {
      const batch = muts.slice(i, i + 1000).map((m) => ({ id: B.rawNext++, ...m }));
      const body = { client: B.rawClient, mutations: batch };
      const r = await fetch(`/v1/stores/${store}/push`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (r.status !== 200) throw new Error(`push: ${r.status} ${await r.text()}`);
      const res = await r.json();
      if (idb) {
        const ver = new Map((res.results || []).map((x) => [x.id, x]));
        await B.rawWrite(idb, batch.map((m) => ({ key: m.key, value: m.value, version: (ver.get(m.id) || {}).version, cursor: (ver.get(m.id) || {}).cursor })));
      }
    }
    return t;
  },
  /** B7 ceiling: n records as tx groups of `per`, pushed 1000 per request;
   *  with `write`, each answer recorded in a raw IndexedDB database. */
  async rawPushMany(store, n, per, bytes, prefix, write = false) {
    const muts = [];
    for (let j = 0; j < n; j++) muts.push({ key: `${prefix}${j}`, op: 'put', value: value(j, bytes), base: 0, tx: `t${Math.floor(j / per)}` });
    const idb = write ? await B.rawOpen(`rawp-${Math.random().toString(36).slice(2)}`) : null;
    return B.rawPush(store, muts, idb);
  },
  rawVersion: 0,
  async rawPutOne(store, key, i, bytes) {
    const t = now();
    const body = { client: B.rawClient, mutations: [{ id: B.rawNext++, key, op: 'put', value: value(i, bytes) }] };
    const r = await fetch(`/v1/stores/${store}/push`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (r.status !== 200) throw new Error(`push: ${r.status}`);
    await r.json();
    return t;
  },
};
window.B = B;
window.ready = true;
