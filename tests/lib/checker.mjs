// A consistency checker for fault tests (tests/chaos/, the soak): writers
// that push and retry like a real client, feed readers and event-stream
// followers that watch what the gateways say, and a final check against a
// full read of ZooKeeper.
//
//   const w = startWriter(() => urls[i % 2], store, 'c1', { token });
//   const r = startFeedReader(() => url, store, { token, since });
//   ... faults ...
//   await stopAll([w, r]);
//   const report = await finalCheck({ store, writers: [w], readers: [r], followers: [f], gateways, zk, root, token });
//
// Each push of client C (ids 2n-1, 2n) creates the key `C-n` (base 0) and
// sets `C-ctr` to {n}; it is retried with the same body (the same ids) on
// network errors, timeouts and 503 until it is answered 200 — possibly
// through another gateway (getUrl() is read at every attempt). So exactly
// once means: every `C-n` at version 1 with its value, `C-ctr` at version
// = the number of pushes with value {n: last}, the client's record at the
// last id; in order means: the cursors of `C-1`, `C-2`, ... increase.
// With keySpace K (the soak: a store that does not grow), push n sets
// `C-(n mod K)` to {client, n} instead (no base): exactly once then means
// each such key's version is the number of pushes that set it.
import { request } from './http.mjs';
import { followEvents } from './sse.mjs';
import { zkReadStore, mirrorCheck, readFeed, describeMismatch } from './mirrorcheck.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function startWriter(getUrl, store, client, { token, pace = 20, giveUpMs = 60000, timeout = 5000, keySpace = 0 } = {}) {
  const W = {
    kind: 'writer', client, store, keySpace, n: 0, acked: [], problems: [], statuses: {}, netErrors: 0, s503: [], stop: false, wrong: [],
    ackedAfter: (t) => W.acked.filter((x) => x.at > t).length,
    lastId: () => 2 * W.acked.length,
  };
  W.done = (async () => {
    while (!W.stop) {
      const n = W.n + 1;
      const muts = [
        keySpace ? { id: 2 * n - 1, key: `${client}-${n % keySpace}`, op: 'put', value: { client, n } }
          : { id: 2 * n - 1, key: `${client}-${n}`, op: 'put', value: { client, n }, base: 0 },
        { id: 2 * n, key: `${client}-ctr`, op: 'put', value: { n } },
      ];
      const t0 = Date.now();
      const giveUp = t0 + giveUpMs;
      let attempts = 0;
      for (;;) {
        if (Date.now() > giveUp) { W.problems.push(`push ${n}: no 200 in ${giveUpMs} ms (${attempts} attempts)`); W.stop = true; break; }
        attempts++;
        const url = getUrl(attempts);
        let r;
        try {
          r = await request(url, 'POST', `/v1/stores/${store}/push`, { json: { client, mutations: muts }, token, timeout });
        } catch (e) {
          W.netErrors++;
          await sleep(100);
          continue;
        }
        W.statuses[r.status] = (W.statuses[r.status] || 0) + 1;
        if (r.status === 503) {
          W.s503.push({ at: Date.now(), retryAfter: r.headers['retry-after'], error: r.json && r.json.error });
          await sleep(150);
          continue;
        }
        if (r.status !== 200 || !r.json || !Array.isArray(r.json.results) || r.json.results.length !== 2) {
          W.problems.push(`push ${n} via ${url}: ${r.status} ${r.text.slice(0, 200)}`);
          await sleep(150);
          continue;
        }
        const [a, b] = r.json.results;
        const ok = (x, id) => x.id === id && (x.status === 'applied' || x.status === 'duplicate');
        if (!ok(a, 2 * n - 1) || !ok(b, 2 * n) || a.status !== b.status) W.wrong.push(`push ${n} (attempt ${attempts}) via ${url}: ${JSON.stringify(r.json.results)}`);
        W.acked.push({ n, status: a.status, attempts, at: Date.now(), latency: Date.now() - t0, cursor: a.cursor, url });
        W.n = n;
        break;
      }
      if (pace) await sleep(pace);
    }
  })();
  return W;
}

/**
 * Polls GET /changes from its cursor. Asserts as it goes: the cursor never
 * goes back, every change is after the cursor asked from, a key's version
 * only grows. state: key -> last change seen.
 */
export function startFeedReader(getUrl, store, { token, since, every = 150, name = 'reader' } = {}) {
  const R = { kind: 'reader', name, store, cursor: since, since0: since, state: new Map(), problems: [], polls: 0, s503: 0, netErrors: 0, changes: 0, stop: false };
  R.done = (async () => {
    while (!R.stop) {
      let page;
      const url = getUrl();
      try {
        page = await readFeed(url, store, { token, since: R.cursor, limit: 500, timeout: 8000 });
      } catch (e) {
        R.netErrors++;
        await sleep(every);
        continue;
      }
      R.polls++;
      if (page.status === 503) { R.s503++; await sleep(every); continue; }
      if (page.status !== 200) { R.problems.push(`GET /changes via ${url} since ${R.cursor}: ${page.status} ${String(page.text).slice(0, 200)}`); await sleep(every); continue; }
      R.absorb(page.changes, page.cursor, url);
      await sleep(every);
    }
  })();
  R.absorb = (changes, cursor, url) => {
    for (const c of changes) {
      if (R.cursor !== undefined && !(c.cursor > R.cursor)) R.problems.push(`${url}: change ${c.key}@${c.cursor} not after the cursor asked from ${R.cursor}`);
      const prev = R.state.get(c.key);
      if (prev && !(c.version > prev.version)) R.problems.push(`${url}: key ${c.key} went from version ${prev.version} to ${c.version}`);
      R.state.set(c.key, c);
      R.changes++;
    }
    if (R.cursor !== undefined && cursor < R.cursor) R.problems.push(`${url}: feed cursor went back from ${R.cursor} to ${cursor}`);
    else R.cursor = cursor;
  };
  /** After the writers stopped: reads from its cursor to the end (503s retried), absorbing as it goes. */
  R.catchUp = async (ms = 20000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const url = getUrl();
      const page = await readFeed(url, store, { token, since: R.cursor, limit: 500, timeout: 8000 }).catch(() => ({ status: 0 }));
      if (page.status === 200) { R.absorb(page.changes, page.cursor, url); return; }
      if (Date.now() > deadline) { R.problems.push(`could not catch up in ${ms} ms: last status ${page.status}`); return; }
      await sleep(200);
    }
  };
  return R;
}

/** An event-stream follower (reconnecting from its last id) whose changes are checked like a reader's. */
export function startFollower(getUrl, store, { token, since, retryMs = 300, name = 'stream' } = {}) {
  const f = followEvents(getUrl, store, { token, since, retryMs });
  return { kind: 'follower', name, f, since, stop: false, done: Promise.resolve(), close: () => f.close() };
}

export async function stopAll(xs) {
  for (const x of xs) { x.stop = true; if (x.close) x.close(); }
  await Promise.all(xs.map((x) => x.done));
}

/** The state a sequence of changes leaves: key -> { key, version, value | deleted }. */
function fold(changes) {
  const m = new Map();
  for (const c of changes) m.set(c.key, c);
  return m;
}
const strip = (c) => (c ? JSON.stringify({ key: c.key, version: c.version, deleted: !!c.deleted, value: c.deleted ? undefined : c.value }) : 'absent');

/**
 * The end of a fault test, on a quiet store: throws (with every finding)
 * unless everything holds. Returns a summary for the run's report.
 *   gateways: [{ url, log, name }]; zk: connect string (reachable from the test); zkAuth: digest
 */
export async function finalCheck({ store, writers = [], readers = [], followers = [], gateways, zk, zkAuth, root, token, extraKeys = [] }) {
  const problems = [];
  for (const W of writers) {
    for (const p of W.problems) problems.push(`writer ${W.client}: ${p}`);
    for (const p of W.wrong) problems.push(`writer ${W.client}: WRONG ANSWER ${p}`);
    const bad = Object.keys(W.statuses).filter((s) => s !== '200' && s !== '503');
    if (bad.length) problems.push(`writer ${W.client}: statuses other than 200/503: ${JSON.stringify(W.statuses)}`);
    for (const x of W.s503) if (x.error !== 'unavailable' || !/^[0-9]+$/.test(String(x.retryAfter))) { problems.push(`writer ${W.client}: a 503 without error "unavailable" and Retry-After: ${JSON.stringify(x)}`); break; }
  }
  // ZooKeeper itself: exactly once, in order, nothing lost.
  const z = await zkReadStore(zk, root, store, { auth: zkAuth });
  const expected = new Set(extraKeys);
  for (const W of writers) {
    const last = W.acked.length;
    const rec = z.clients.get(W.client);
    if (last > 0 && (!rec || rec.last !== 2 * last)) problems.push(`writer ${W.client}: client record last=${rec && rec.last}, expected ${2 * last}`);
    let prevCur = '';
    if (W.keySpace) {
      // pushes 1..applied (the one left unacknowledged by the stop may have been applied)
      const ctr = z.records.get(`${W.client}-ctr`);
      const applied = ctr ? ctr.version : 0;
      if (applied !== last && applied !== last + 1) problems.push(`${W.client}-ctr: version ${applied}, ${last} pushes acknowledged (exactly once: one version per push)`);
      for (let k = 0; k < W.keySpace; k++) {
        const key = `${W.client}-${k}`;
        const count = Math.floor((applied - k) / W.keySpace) + (k === 0 ? 0 : 1);
        const r = z.records.get(key);
        if (count <= 0) continue;
        expected.add(key);
        const lastN = k + (count - (k === 0 ? 0 : 1)) * W.keySpace;
        if (!r) problems.push(`ACKNOWLEDGED WRITE LOST: ${key} not in ZooKeeper`);
        else if (r.version !== count || JSON.stringify(r.value) !== JSON.stringify({ client: W.client, n: lastN })) problems.push(`${key}: version ${r.version} value ${JSON.stringify(r.value)}, expected version ${count} value n=${lastN}`);
      }
      if (applied) expected.add(`${W.client}-ctr`);
      continue;
    }
    for (let n = 1; n <= last; n++) {
      const k = `${W.client}-${n}`;
      expected.add(k);
      const r = z.records.get(k);
      if (!r) { problems.push(`ACKNOWLEDGED WRITE LOST: ${k} not in ZooKeeper`); continue; }
      if (r.version !== 1 || r.deleted || JSON.stringify(r.value) !== JSON.stringify({ client: W.client, n })) problems.push(`${k}: version ${r.version} value ${JSON.stringify(r.value)} (applied more than once?)`);
      if (!(r.mzxid > prevCur)) problems.push(`${k}: zxid ${r.mzxid} not after the previous push's ${prevCur}: out of order`);
      prevCur = r.mzxid;
    }
    // (a push left unacknowledged by a stop may or may not have been applied: it is the next n)
    const pending = z.records.get(`${W.client}-${last + 1}`);
    if (pending) expected.add(`${W.client}-${last + 1}`);
    const ctr = z.records.get(`${W.client}-ctr`);
    if (last > 0) {
      expected.add(`${W.client}-ctr`);
      const applied = last + (pending ? 1 : 0);
      if (!ctr || ctr.version !== applied) problems.push(`${W.client}-ctr: version ${ctr && ctr.version}, expected ${applied} (one per push applied: exactly once)`);
      else if (ctr.value.n !== applied) problems.push(`${W.client}-ctr: value ${JSON.stringify(ctr.value)}, expected {n:${applied}}`);
    }
  }
  for (const k of z.records.keys()) if (!expected.has(k)) problems.push(`unexpected key in ZooKeeper: ${k}`);
  // Every gateway's mirror against ZooKeeper, and the gateways against each other.
  const mirrors = [];
  let first = null;
  for (const g of gateways) {
    const m = await mirrorCheck({ url: g.url, token, zk, zkAuth, root, store });
    mirrors.push({ gateway: g.name || g.url, ok: m.ok, records: m.feedRecords, diffs: m.diffs.length });
    if (!m.ok) problems.push(describeMismatch(m, { url: g.url, store, log: g.log }));
    const snap = await readFeed(g.url, store, { token });
    if (first === null) first = snap;
    else if (JSON.stringify(snap.changes) !== JSON.stringify(first.changes)) problems.push(`gateways ${gateways[0].url} and ${g.url} serve different snapshot feeds (${first.changes.length} vs ${snap.changes.length} records)`);
  }
  // Readers and streams: what they accumulated equals the feed since where they started.
  const feedFrom = async (since) => {   // since undefined: the snapshot
    const r = await readFeed(gateways[0].url, store, { token, since });
    if (r.status !== 200) throw new Error(`finalCheck: feed since ${since}: ${r.status}`);
    return fold(r.changes);
  };
  for (const R of readers) {
    await R.catchUp();
    for (const p of R.problems) problems.push(`reader ${R.name}: ${p}`);
    const want = await feedFrom(R.since0);
    const got = R.state;
    const miss = [...want.keys()].filter((k) => strip(got.get(k)) !== strip(want.get(k)));
    if (miss.length) problems.push(`reader ${R.name}: ${miss.length} keys differ from the feed after catching up, e.g. ${miss.slice(0, 5).map((k) => `${k}: ${strip(got.get(k))} vs ${strip(want.get(k))}`).join('; ')}`);
  }
  for (const F of followers) {
    const ch = F.f.changes();
    const ids = F.f.events().filter((e) => e.event === 'change').map((e) => e.id);
    for (let i = 1; i < ids.length; i++) if (ids[i] < ids[i - 1]) { problems.push(`stream ${F.name}: event id went back from ${ids[i - 1]} to ${ids[i]}`); break; }
    const seen = new Map();
    for (const c of ch) {
      const p = seen.get(c.key);
      if (p && !(c.version > p.version)) { problems.push(`stream ${F.name}: key ${c.key} version ${p.version} then ${c.version} (repeated or back)`); break; }
      seen.set(c.key, c);
    }
    const want = await feedFrom(F.since);
    const miss = [...want.keys()].filter((k) => strip(seen.get(k)) !== strip(want.get(k)));
    if (miss.length) problems.push(`stream ${F.name}: ${miss.length} keys differ from the feed (events lost?), e.g. ${miss.slice(0, 5).map((k) => `${k}: ${strip(seen.get(k))} vs ${strip(want.get(k))}`).join('; ')}`);
  }
  const summary = {
    store, zkRecords: z.records.size, mirrors,
    writers: writers.map((W) => ({ client: W.client, pushes: W.acked.length, statuses: W.statuses, netErrors: W.netErrors, duplicates: W.acked.filter((a) => a.status === 'duplicate').length, maxLatencyMs: Math.max(0, ...W.acked.map((a) => a.latency)) })),
    readers: readers.map((R) => ({ name: R.name, polls: R.polls, changes: R.changes, s503: R.s503, netErrors: R.netErrors })),
    followers: followers.map((F) => ({ name: F.name, connections: F.f.segments.length, reconnects: F.f.reconnects, changes: F.f.changes().length })),
  };
  if (problems.length) {
    const e = new Error(`consistency check of store ${store} failed:\n- ${problems.slice(0, 40).join('\n- ')}${problems.length > 40 ? `\n... ${problems.length - 40} more` : ''}`);
    e.problems = problems; e.summary = summary;
    throw e;
  }
  return summary;
}
