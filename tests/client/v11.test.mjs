// Client v1.1 against a real zoosyncd and ZooKeeper: local tombstones that
// do not pile up, partial replication (?prefix=), `rejected` push results,
// `reauth` on event streams, destroy() of a syncing database.
import assert from 'node:assert/strict';
import { before, after, test } from 'node:test';
import { setupEnv, it } from '../lib/harness.mjs';
import { open, closeAll, dbName, until, collect, spyFetch, rawRows, answerFirstEvents, sseResponse } from './helpers.mjs';
import { gatewayWithApi, freshStore, serverRecord as serverRecordOf } from '../lib/fixtures.mjs';

const env = setupEnv();
let G, api;

before(async () => {
  ({ gw: G, api } = await gatewayWithApi(env, { name: 'v11' }));
});
after(closeAll);

const newStore = (body) => freshStore(api, { prefix: 'v', body });
/** A test of a gateway feature not built yet: marked todo, and its failure keeps no logs (harness `it` would). */
const todoIt = (name, todo, fn) => test(name, { todo, timeout: 60000 }, fn);
const serverRecord = (s, k) => serverRecordOf(api, s, k);

/** The raw rows of the records object store of one IndexedDB store. */
async function rawRecords(name, store) {
  return (await rawRows(name, ['records'])).records.filter((r) => r.s === store);
}

// ------------------------------------------------------------ tombstones

it('1,000 creates and deletes, synced, leave no rows in IndexedDB; a later create goes with base 0', async () => {
  const s = await newStore();
  const name = dbName('tb');
  const f = spyFetch();
  const a = await open({ name, url: G.url, stores: [s], fetch: f });
  const b = await open({ name: dbName('tb2'), url: G.url, stores: [s] });
  const N = 1000;
  await a.transaction(async (tx) => { for (let i = 0; i < N; i++) await tx.put(s, `k${i}`, i); });
  await a.sync();
  await b.sync();
  assert.equal(await b.count(s), N);
  for (let i = 0; i < N; i += 250) await a.transaction(async (tx) => { for (let j = i; j < i + 250; j++) await tx.delete(s, `k${j}`); });
  await a.sync();
  await until(async () => (await rawRecords(name, s)).length === 0, { ms: 10000, what: 'no rows left in the writer' });
  assert.equal(await a.count(s), 0);
  // The other database learns the deletions from the feed and keeps no tombstone either.
  await b.sync();
  await until(async () => (await rawRecords(b.name, s)).length === 0, { ms: 10000, what: 'no rows left in the reader' });
  assert.equal((await api.getStore(s)).json.records, 0);
  // Re-created: pushed with base 0, which matches the deleted key on the server.
  await a.put(s, 'k7', 'again');
  await a.sync();
  const push = f.calls.filter((c) => c.url.includes('/push')).map((c) => JSON.parse(c.body)).at(-1);
  assert.deepEqual(push.mutations.map((m) => [m.key, m.base]), [['k7', 0]]);
  const rec = await serverRecord(s, 'k7');
  assert.equal(rec.value, 'again');
  assert.equal(rec.version, 3, 'created, deleted, created again: version 3');
});

it('a tombstone stays while a pending mutation needs it, and the echo of a delete does not bring the record back', async () => {
  const s = await newStore();
  const name = dbName('tp');
  const a = await open({ name, url: G.url, stores: [s] });
  await a.put(s, 'x', 1);
  await a.sync();
  a.setOffline(true);
  await a.delete(s, 'x');
  assert.equal((await rawRecords(name, s)).length, 1, 'the pending delete keeps its row');
  assert.equal(await a.get(s, 'x'), undefined);
  assert.equal(await a.count(s), 0);
  a.setOffline(false);
  await a.sync();
  await until(async () => (await rawRecords(name, s)).length === 0, { what: 'row gone once pushed and seen in the feed' });
  await api.putRecord(s, 'y', 'live');
  await until(async () => (await a.get(s, 'y')) === 'live', { what: 'live again' });
  assert.equal(await a.get(s, 'x'), undefined);
  assert.equal(await serverRecord(s, 'x'), null);
});

it('a tombstone the new cursor passes is swept, but not when the same page brings its key back', async () => {
  // x's delete is acknowledged (its row stays a tombstone at the delete's
  // cursor) while the feed is held; another writer creates x again; the
  // page that then arrives passes the tombstone's cursor AND brings x back:
  // the apply sweeps tombstones read before its own writes, and must judge
  // x by what it just wrote.
  const s = await newStore();
  const name = dbName('tr');
  const f = spyFetch();
  let hold = false;
  f.intercept = (u) => (hold && /\/(changes|events)/.test(u) ? Promise.reject(new TypeError('held by the test')) : undefined);
  const a = await open({ name, url: G.url, stores: [s], fetch: f, backoff: { baseMs: 50, maxMs: 200 } });
  await a.put(s, 'x', 1);
  await a.put(s, 'y', 1);
  await a.sync();
  hold = true;
  a.setOffline(true); // ends the open stream; reconnecting is held from now on
  a.setOffline(false);
  await a.delete(s, 'x');
  await a.delete(s, 'y');
  await until(async () => (await a.pendingMutations(s)).length === 0, { what: 'the deletes acknowledged' });
  assert.deepEqual((await rawRecords(name, s)).map((r) => [r.k, !!r.d]).sort(), [['x', true], ['y', true]], 'two tombstones, nothing pending');
  await api.putRecord(s, 'x', 'again');
  hold = false;
  await until(async () => (await a.get(s, 'x')) === 'again', { ms: 15000, what: 'x back from the feed' });
  await a.sync();
  assert.equal(await a.get(s, 'x'), 'again', 'x stays');
  assert.deepEqual((await rawRecords(name, s)).map((r) => [r.k, !!r.d]), [['x', false]], "y's tombstone swept, x live");
});

// ------------------------------------------------------------ partial replication

it('partial replication: pulls, streams and the description ask with ?prefix=; only the prefix is stored', async () => {
  const s = await newStore();
  await api.putRecord(s, 'users/alice/1', 'a1');
  await api.putRecord(s, 'users/bob/1', 'b1');
  await api.putRecord(s, 'users/alice 2/x', 'other prefix');
  const prefix = 'users/alice/';
  const f = spyFetch();
  const a = await open({ name: dbName('pa'), url: G.url, stores: [{ name: s, prefix }], fetch: f, pollMs: 60000 });
  await until(() => a.status.connected, { what: 'connected' });
  await until(async () => (await a.get(s, 'users/alice/1')) === 'a1', { what: 'pulled' });
  const enc = 'prefix=users%2Falice%2F';
  for (const kind of ['/changes?', '/events']) {
    const calls = f.calls.filter((c) => c.url.includes(kind));
    assert.ok(calls.length > 0 && calls.every((c) => c.url.includes(enc)), `${kind} with ${enc}: ${calls.map((c) => c.url)}`);
  }
  assert.ok(f.calls.some((c) => c.url.endsWith(`/v1/stores/${s}?${enc}`)), 'the description too');
  // Live: a write inside the prefix arrives; one outside never lands locally.
  await api.putRecord(s, 'users/bob/2', 'b2');
  await api.putRecord(s, 'users/alice/2', 'a2');
  await until(async () => (await a.get(s, 'users/alice/2')) === 'a2', { what: 'live inside the prefix' });
  assert.deepEqual((await a.getAll(s)).map((r) => r.key), ['users/alice/1', 'users/alice/2']);
  assert.equal(await a.get(s, 'users/bob/1'), undefined);
  // Own writes inside the prefix sync; outside they are refused locally.
  await a.put(s, 'users/alice/3', 'a3');
  await assert.rejects(a.put(s, 'users/bob/3', 'x'), (e) => e.code === 'forbidden');
  await a.sync();
  assert.equal((await serverRecord(s, 'users/alice/3')).value, 'a3');
  assert.equal(await serverRecord(s, 'users/bob/3'), null);
});

it('partial replication: the gateway sends only the prefix\'s changes (?prefix= on /changes and /events)', async () => {
  const s = await newStore();
  await api.putRecord(s, 'users/alice/1', 'a1');
  await api.putRecord(s, 'users/bob/1', 'b1');
  // What the gateway itself answers (the client filters as well, so look at the wire).
  const seen = [];
  const f = spyFetch();
  f.intercept = async (url, init, real) => {
    const r = await real();
    if (url.includes('/changes?')) { const body = await r.clone().json(); for (const c of body.changes) seen.push(c.key); }
    return r;
  };
  const a = await open({ name: dbName('pg'), url: G.url, stores: [{ name: s, prefix: 'users/alice/' }], fetch: f });
  await a.sync();
  // (the opening pull and sync() may both read from the beginning: a key may be seen twice)
  assert.deepEqual([...new Set(seen)], ['users/alice/1']);
  const d = await api.req('GET', `/v1/stores/${s}?prefix=users%2Falice%2F`);
  assert.equal(d.json.records, 1, 'the description counts the prefix only');
});

// ------------------------------------------------------------ rejected

/**
 * Failure injection standing in for a gateway's `rejected` outcome: the named
 * mutations are taken out of the real push (so the real gateway never applies
 * them) and answered `rejected` with the given reason; every other mutation
 * is pushed to and answered by the real gateway.
 */
function rejecting(f, pick) {
  f.intercept = async (url, init, real) => {
    if (!url.includes('/push')) return undefined;
    const body = JSON.parse(init.body);
    const out = new Map();
    for (const m of body.mutations) { const reason = pick(m); if (reason) out.set(m.id, reason); }
    if (!out.size) return undefined;
    // A group with a rejected member is rejected whole (tx_aborted for the rest).
    const badTx = new Set(body.mutations.filter((m) => out.has(m.id) && m.tx).map((m) => m.tx));
    for (const m of body.mutations) if (m.tx && badTx.has(m.tx) && !out.has(m.id)) out.set(m.id, 'tx_aborted');
    const keep = body.mutations.filter((m) => !out.has(m.id));
    let res = { results: [], lastMutationId: 0 };
    if (keep.length) res = await (await real(url, { ...init, body: JSON.stringify({ ...body, mutations: keep }) })).json();
    const results = body.mutations.map((m) => (out.has(m.id)
      ? { id: m.id, status: 'rejected', reason: out.get(m.id), ...(out.get(m.id) === 'invalid_value' ? { errors: [{ path: '/title', keyword: 'type', message: 'must be a string' }] } : {}) }
      : res.results.find((r) => r.id === m.id)));
    const last = Math.max(res.lastMutationId || 0, ...body.mutations.map((m) => m.id));
    return new Response(JSON.stringify({ ...res, results, lastMutationId: last }), { status: 200, headers: { 'Content-Type': 'application/json' } });
  };
}

it('rejected (injected answer): leaves the queue at once, the key is restored from the server, subscribers and error told, nothing waits', async () => {
  const s = await newStore();
  await api.putRecord(s, 'exists', { title: 'server' });
  const f = spyFetch();
  const a = await open({ name: dbName('rj'), url: G.url, stores: [s], fetch: f, offline: true });
  await a.sync({ timeoutMs: 0 }).catch(() => {});
  const errs = collect(a, 'error');
  const seen = [];
  a.subscribe(s, (c) => seen.push(...c));
  rejecting(f, (m) => (m.key === 'exists' || m.key === 'new' ? 'invalid_value' : null));
  await a.put(s, 'before', 1);
  await a.put(s, 'exists', { title: 42 });  // rejected: back to the server's value
  await a.put(s, 'new', { title: 42 });     // rejected: the server has none, removed
  await a.put(s, 'after', 2);
  a.setOffline(false);
  await a.sync();
  assert.equal(a.status.pending, 0);
  assert.deepEqual(await a.pendingMutations(), []);
  assert.deepEqual(await a.get(s, 'exists'), { title: 'server' }, 'restored from the server');
  assert.equal(await a.get(s, 'new'), undefined, 'removed: the server has no such record');
  assert.equal((await serverRecord(s, 'before')).value, 1);
  assert.equal((await serverRecord(s, 'after')).value, 2, 'the mutations behind it went on');
  assert.ok(seen.some((c) => c.key === 'exists' && c.origin === 'remote' && c.value.title === 'server'));
  assert.ok(seen.some((c) => c.key === 'new' && c.origin === 'remote' && c.deleted));
  const e = errs.filter((x) => x.code === 'invalid_value');
  assert.equal(e.length, 2, `${JSON.stringify(errs.map((x) => x.code))}`);
  const ex = e.find((x) => x.mutation.key === 'exists');
  assert.equal(ex.store, s);
  assert.equal(ex.mutation.op, 'put');
  assert.deepEqual(ex.mutation.value, { title: 42 });
  assert.deepEqual(ex.errors, [{ path: '/title', keyword: 'type', message: 'must be a string' }]);
  // A later write of the key goes out on the server's version.
  f.intercept = null;
  await a.put(s, 'exists', { title: 'fixed' });
  await a.sync();
  assert.deepEqual((await serverRecord(s, 'exists')).value, { title: 'fixed' });
  assert.equal(errs.filter((x) => x.code === 'invalid_value').length, 2, 'each rejection reported once');
});

it('rejected (injected answer): a tx group with one rejected member is undone whole', async () => {
  const s = await newStore();
  await api.putRecord(s, 'g1', 'server g1');
  const f = spyFetch();
  const a = await open({ name: dbName('rg'), url: G.url, stores: [s], fetch: f });
  await a.sync();
  const errs = collect(a, 'error');
  rejecting(f, (m) => (m.key === 'g3' ? 'quota_exceeded' : null));
  await a.transaction(async (tx) => { await tx.put(s, 'g1', 'mine'); await tx.put(s, 'g2', 'mine'); await tx.put(s, 'g3', 'mine'); });
  await a.put(s, 'solo', 'ok');
  await a.sync();
  assert.equal(await a.get(s, 'g1'), 'server g1');
  assert.equal(await a.get(s, 'g2'), undefined);
  assert.equal(await a.get(s, 'g3'), undefined);
  assert.equal((await serverRecord(s, 'solo')).value, 'ok');
  assert.equal(await serverRecord(s, 'g2'), null);
  const e = errs.filter((x) => x.code === 'quota_exceeded');
  assert.equal(e.length, 1, 'one error for the group');
  assert.equal(e[0].mutation.key, 'g3');
  assert.deepEqual(e[0].group.map((m) => m.key), ['g1', 'g2', 'g3']);
  assert.equal(errs.filter((x) => x.code === 'tx_aborted').length, 0);
});

it('rejected by the gateway: quota_exceeded at maxRecords, the key removed, nothing behind it waits; a group undone whole', async () => {
  const s = await newStore();
  const r = await api.putStore(s, { maxRecords: 2 });
  assert.equal(r.status, 200);
  const a = await open({ name: dbName('rq'), url: G.url, stores: [s], offline: true });
  const errs = collect(a, 'error');
  await a.put(s, 'q1', 1);
  await a.put(s, 'q2', 2);
  await a.put(s, 'q3', 3);
  await a.put(s, 'q1', 'replaced'); // same key, no new record: passes
  await a.delete(s, 'q2');          // deletes always pass
  const seen = [];
  a.subscribe(s, (c) => seen.push(...c));
  a.setOffline(false);
  await a.sync();
  assert.equal(a.status.pending, 0);
  assert.equal(await serverRecord(s, 'q2'), null, 'the delete behind the rejected ones went through');
  assert.ok(seen.some((c) => c.key === 'q3' && c.deleted && c.origin === 'remote'), 'subscribers told');
  assert.equal(await a.get(s, 'q3'), undefined, 'removed: the server never had it');
  assert.equal(await serverRecord(s, 'q3'), null);
  assert.equal((await serverRecord(s, 'q1')).value, 'replaced');
  const e = errs.find((x) => x.code === 'quota_exceeded');
  assert.ok(e, JSON.stringify(errs.map((x) => x.code)));
  assert.equal(e.mutation.key, 'q3');
  assert.equal(e.store, s);
  assert.ok(Array.isArray(e.errors));
  // A group with an over-quota member is undone whole (q2's place was freed: q5 fits, q4 does not).
  await a.transaction(async (tx) => { await tx.put(s, 'q1', 'group'); await tx.put(s, 'q5', 5); await tx.put(s, 'q4', 4); });
  assert.equal(await a.get(s, 'q1'), 'group');
  await a.sync();
  assert.equal(a.status.pending, 0);
  assert.equal(await a.get(s, 'q1'), 'replaced', 'restored from the server');
  assert.equal(await a.get(s, 'q4'), undefined);
  assert.equal(await a.get(s, 'q5'), undefined);
  assert.equal((await serverRecord(s, 'q1')).value, 'replaced');
  assert.equal(await serverRecord(s, 'q5'), null, 'nothing of the group applied');
  const g = errs.filter((x) => x.code === 'quota_exceeded' && x.group);
  assert.equal(g.length, 1, JSON.stringify(errs.map((x) => [x.code, x.mutation && x.mutation.key])));
  assert.deepEqual(g[0].group.map((m) => m.key), ['q1', 'q5', 'q4']);
  assert.equal((await api.getStore(s)).json.records, 1);
});

it('rejected by the gateway, answer lost: the retry answers rejected again and is handled once', async () => {
  const s = await newStore();
  assert.equal((await api.putStore(s, { maxRecords: 1 })).status, 200);
  await api.putRecord(s, 'full', 1);
  const f = spyFetch();
  let lost = 0;
  f.intercept = async (url, init, real) => {
    if (url.includes('/push') && !lost++) { const r = await real(); await r.text(); throw new TypeError('fetch failed (response lost)'); }
    return undefined;
  };
  const a = await open({ name: dbName('rl'), url: G.url, stores: [s], fetch: f });
  const errs = collect(a, 'error');
  await a.put(s, 'over', 1);
  await a.sync();
  assert.ok(f.calls.filter((c) => c.url.includes('/push')).length >= 2, 'retried');
  assert.equal(await a.get(s, 'over'), undefined);
  assert.equal(errs.filter((x) => x.code === 'quota_exceeded').length, 1);
  assert.equal(await serverRecord(s, 'over'), null);
});

// ------------------------------------------------------------ reauth

it('reauth on the event stream: token() is asked again and the stream reopens from its cursor', async () => {
  const s = await newStore();
  await api.putRecord(s, 'a', 1);
  const f = spyFetch();
  // What a gateway sends at the token's exp (Protocol v1.1, "Token lifetime on streams").
  const events = answerFirstEvents(f, 'event: reauth\ndata: {"error":"token_expired"}\n\n');
  const asked = [];
  const a = await open({ name: dbName('ra'), url: G.url, stores: [s], fetch: f, token: async (o) => { asked.push(o); return `tok-${asked.length}`; } });
  const errs = collect(a, 'error');
  await until(() => a.status.connected && events.count >= 2, { what: 'stream reopened' });
  assert.ok(asked.some((o) => o.refresh === true), `token() asked again: ${JSON.stringify(asked)}`);
  const streams = f.calls.filter((c) => c.url.includes('/events'));
  const cursor = await a.cursor(s);
  assert.ok(streams[1].url.includes(`since=${cursor}`), `reopened from the cursor: ${streams[1].url}`);
  assert.equal(f.calls.filter((c) => c.url.includes('/changes') && !c.url.includes('since=')).length, 1, 'no resync');
  assert.equal(errs.length, 0, `no error: ${errs.map((e) => e.message)}`);
  await api.putRecord(s, 'b', 2);
  await until(async () => (await a.get(s, 'b')) === 2, { what: 'live after the reauth' });
});

it('reauth: the reopened stream carries the fresh token (Authorization)', async () => {
  const s = await newStore();
  const f = spyFetch();
  const auths = [];
  let sent = 0;
  f.intercept = async (url, init) => {
    if (url.includes('/events')) {
      auths.push(init.headers.Authorization);
      if (!sent++) return sseResponse('event: reauth\ndata: {"error":"token_expired"}\n\n');
    }
    return undefined;
  };
  let n = 0;
  const a = await open({ name: dbName('rb'), url: G.url, stores: [s], fetch: f, token: async () => `tok-${++n}` });
  await until(() => a.status.connected && auths.length >= 2, { what: 'reopened' });
  assert.equal(auths[0], 'Bearer tok-1');
  assert.equal(auths[1], 'Bearer tok-2');
});

// ------------------------------------------------------------ destroy

it('destroy() while syncing: both instances stop (no request after), the data is gone, the server keeps its records', async () => {
  const s = await newStore();
  const name = dbName('dd');
  const fa = spyFetch(), fb = spyFetch();
  const a = await open({ name, url: G.url, stores: [s], fetch: fa });
  const b = await open({ name, url: G.url, stores: [s], fetch: fb });
  const closed = collect(b, 'close');
  await a.put(s, 'k', 1);
  await a.sync({ timeoutMs: 5000 });
  await until(() => a.status.connected && b.status.connected, { what: 'both streaming' });
  await a.destroy();
  await until(() => closed.length === 1, { what: 'b closed' });
  const n = fa.calls.length + fb.calls.length;
  await api.putRecord(s, 'later', 1);
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(fa.calls.length + fb.calls.length, n, 'no request after destroy');
  assert.ok(!(await indexedDB.databases()).some((d) => d.name === name));
  assert.equal((await serverRecord(s, 'k')).value, 1);
});
