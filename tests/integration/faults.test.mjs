// Faults under write load: a standalone ZooKeeper stopped and started again,
// a 3-node ensemble losing a follower and then its leader, and a gateway
// frozen (SIGSTOP) past its session timeout. Clients push in loops and retry
// with the same ids on errors and 503s; afterwards every acknowledged write
// is present exactly once, and event streams deliver what was written.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after } from 'node:test';
import { setupEnv, it, startGateway, startZk, uniq, sleep, zkCli, recordZnode, newRoot, ZK_SH } from '../lib/harness.mjs';
import { Api, request, byKey, eventually, getMetrics, plainChange, assertSameChanges, statusOf as status } from '../lib/http.mjs';
import { followEvents, closeAllEvents } from '../lib/sse.mjs';
import { ownZkGatewayWithStore } from '../lib/fixtures.mjs';

const env = setupEnv();
after(() => closeAllEvents());



function zkStatus(dir) {
  return new Promise((resolve, reject) => {
    execFile(ZK_SH, ['status', dir], { timeout: 20000 }, (err, stdout) => {
      if (err) { reject(err); return; }
      resolve(stdout.trim().split('\n').filter(Boolean).map((l) => {
        const [i, pid, port, mode] = l.split(/\s+/);
        return { i: Number(i), pid, port, mode: mode || '' };
      }));
    });
  });
}

/**
 * A client pushing in a loop: each request creates one new key (base 0) and
 * is retried with the same body on network errors, timeouts and 503 until it
 * is answered 200. Another status is recorded as a problem. getUrl() is read
 * at each attempt.
 */
function pushLoop(getUrl, store, client, { pace = 5, giveUpMs = 30000 } = {}) {
  const L = {
    client, nextId: 0, sent: [], acked: [], problems: [], statuses: {}, netErrors: 0, s503: [], stop: false,
    ackedAfter: (t) => L.acked.filter((x) => x.at > t).length,
  };
  L.done = (async () => {
    while (!L.stop) {
      const id = ++L.nextId;
      const m = { id, key: `${client}-${id}`, op: 'put', value: { client, id }, base: 0 };
      L.sent.push(m);
      const body = { client, mutations: [m] };
      const giveUp = Date.now() + giveUpMs;
      for (let attempt = 0; ; attempt++) {
        if (Date.now() > giveUp) { L.problems.push(`id ${id}: no 200 answer in ${giveUpMs} ms`); return; }
        const t0 = Date.now();
        let r;
        try {
          r = await request(getUrl(), 'POST', `/v1/stores/${store}/push`, { json: body, timeout: 5000 });
        } catch (e) {
          L.netErrors++;
          await sleep(50);
          continue;
        }
        L.statuses[r.status] = (L.statuses[r.status] || 0) + 1;
        if (r.status === 503) {
          L.s503.push({ t0, at: Date.now(), retryAfter: r.headers['retry-after'], error: r.json && r.json.error });
          await sleep(100);
          continue;
        }
        if (r.status !== 200 || !r.json || !Array.isArray(r.json.results) || r.json.results.length !== 1) {
          L.problems.push(`id ${id}: ${r.status} ${r.text.slice(0, 200)}`);
          await sleep(100);
          continue;
        }
        const res = r.json.results[0];
        if (res.id !== id || !['applied', 'duplicate'].includes(res.status)) L.problems.push(`id ${id} (attempt ${attempt}): ${JSON.stringify(res)}`);
        L.acked.push({ id, key: m.key, value: m.value, status: res.status, cursor: res.cursor, attempt, at: Date.now() });
        break;
      }
      if (pace) await sleep(pace);
    }
  })();
  return L;
}

/** Every sent mutation acknowledged once and present exactly once (version 1, its value); nothing else. */
async function checkLoops(api, store, loops, others = []) {
  for (const L of loops) {
    assert.deepEqual(L.problems, [], `client ${L.client}: problems`);
    assert.equal(L.acked.length, L.sent.length, `client ${L.client}: every push answered`);
    const last = await api.pushOk(store, L.client, []);
    assert.equal(last.lastMutationId, L.nextId, `client ${L.client}: lastMutationId`);
  }
  const feed = byKey((await api.changesAll(store, { limit: 500 })).changes);
  const sent = loops.flatMap((L) => L.sent);
  const missing = sent.filter((m) => !feed.has(m.key)).map((m) => m.key);
  assert.deepEqual(missing, [], `acknowledged writes missing from the feed (${missing.length} of ${sent.length})`);
  for (const m of sent) {
    const c = feed.get(m.key);
    assert.equal(c.version, 1, `${m.key}: version ${c.version} (applied more than once?)`);
    assert.deepEqual(c.value, m.value, `${m.key}: value`);
  }
  assert.deepEqual([...feed.keys()].filter((k) => !sent.some((m) => m.key === k)).sort(), [...others].sort(), 'no record that was not sent');
  return feed;
}

it('standalone ZooKeeper stopped and started under write load: 503 + Retry-After meanwhile, every acknowledged write exactly once, the stream resumes', { timeout: 90000 }, async () => {
  const { zk, gw: G, api, store: s } = await ownZkGatewayWithStore(env, { name: 'zkrestart', args: ['--session-timeout', '8000'], prefix: 'zr' });
  await api.pushOk(s, 'pre', [{ id: 1, key: 'pre', op: 'put', value: 0 }]);
  const c0 = await api.getCursor(s);
  const follower = followEvents(G.url, s, { since: c0 });
  const L = pushLoop(() => G.url, s, 'zr');
  let downAt, upAt, readyAgainAt;
  try {
    try {
      await sleep(700);
      assert.ok(L.acked.length > 0, 'pushes go through before the outage');
      await zk.stopNode(1);
      downAt = Date.now();
      await eventually(async () => (await status(G.url, '/readyz')) === 503, { ms: 3000, every: 50, what: '/readyz 503 while ZooKeeper is down' });
      assert.equal(await status(G.url, '/healthz'), 200, '/healthz stays 200');
      const m = await getMetrics(G);
      assert.equal(m.get('zoosync_zk_connected'), 0, 'zoosync_zk_connected 0 while down');
      await sleep(1500);
      const acksDuringOutage = L.ackedAfter(downAt + 500);
      await zk.startNode(1);
      upAt = Date.now();
      assert.equal(acksDuringOutage, 0, 'no push acknowledged while ZooKeeper was down');
      await eventually(async () => (await status(G.url, '/readyz')) === 200, { ms: 15000, every: 100, what: '/readyz 200 after ZooKeeper is back' });
      readyAgainAt = Date.now();
      await eventually(() => L.ackedAfter(readyAgainAt) >= 20, { ms: 10000, every: 50, what: 'pushes acknowledged again after the restart' });
    } finally {
      L.stop = true;
      await L.done;
    }
    console.log(`zk restart: ${L.sent.length} pushes, statuses ${JSON.stringify(L.statuses)}, ${L.netErrors} network errors, ready again ${readyAgainAt - upAt} ms after ZooKeeper, stream reconnects ${follower.reconnects}`);
    // During the outage: 503 with Retry-After and error "unavailable", nothing else.
    const during = L.s503.filter((x) => x.t0 >= downAt + 200 && x.at <= upAt);
    assert.ok(during.length > 0, `pushes during the outage were answered 503 (503s: ${L.s503.length})`);
    for (const x of L.s503) {
      assert.equal(x.error, 'unavailable', `503 error code: ${JSON.stringify(x)}`);
      assert.match(String(x.retryAfter), /^[0-9]+$/, `503 without Retry-After: ${JSON.stringify(x)}`);
    }
    assert.ok(during.every((x) => x.at - x.t0 < 2000), `503s answered at once while ZooKeeper is unreachable (slowest ${Math.max(...during.map((x) => x.at - x.t0))} ms)`);
    assert.deepEqual(Object.keys(L.statuses).sort(), ['200', '503'], `statuses: ${JSON.stringify(L.statuses)}`);
    await checkLoops(api, s, [L], ['pre']);
    // The stream delivers everything since c0, the writes after the restart included, once each.
    const maxCursor = L.acked.reduce((mx, x) => (x.cursor && x.cursor > mx ? x.cursor : mx), '');
    await follower.waitFor((f) => f.lastEventId >= maxCursor, { ms: 8000, what: 'the stream reaches the last write' });
    const feed = (await api.changesAll(s, { since: c0, limit: 500 })).changes.map(plainChange);
    assertSameChanges(follower.changes().map(plainChange), feed, 'the event stream(s) since c0 vs the feed');
  } finally {
    follower.close();
  }
  await G.stop();
  await zk.stop();
});

it('3-node ensemble: a follower killed, then the leader, under write load through two gateways: no acknowledged write lost', { timeout: 120000 }, async () => {
  await env.ready();
  const zk = await startZk({ nodes: 3 });
  const root = newRoot();
  const [G1, G2] = await Promise.all([
    startGateway({ zk: zk.connect, root, name: 'ens1' }),
    startGateway({ zk: zk.connect, root, name: 'ens2' }),
  ]);
  const a = new Api(G1);
  const s = uniq('en');
  await a.createStore(s);
  await eventually(async () => (await new Api(G2).getStore(s)).status === 200, { what: 'store on G2' });
  const loops = [pushLoop(() => G1.url, s, 'e1'), pushLoop(() => G2.url, s, 'e2')];
  const phases = [];
  try {
    const st0 = await zkStatus(zk.dir);
    const leader = st0.find((n) => n.mode === 'leader');
    const follower = st0.find((n) => n.mode === 'follower');
    assert.ok(leader && follower, `a leader and followers: ${JSON.stringify(st0)}`);
    await sleep(700);

    await zk.stopNode(follower.i, true);
    let t = Date.now();
    phases.push(`follower ${follower.i} killed`);
    await eventually(() => loops.every((L) => L.ackedAfter(t) >= 10), { ms: 10000, what: 'writes go on without a follower' });
    await zk.startNode(follower.i);
    await eventually(async () => (await zkStatus(zk.dir)).find((n) => n.i === follower.i).mode === 'follower', { ms: 15000, what: 'the follower is back' });
    phases.push(`follower ${follower.i} back`);
    await sleep(500);

    await zk.stopNode(leader.i, true);
    t = Date.now();
    phases.push(`leader ${leader.i} killed`);
    const st1 = await eventually(async () => {
      const st = await zkStatus(zk.dir);
      return st.some((n) => n.i !== leader.i && n.mode === 'leader') && st;
    }, { ms: 20000, every: 200, what: 'a new leader' });
    phases.push(`new leader ${st1.find((n) => n.mode === 'leader').i} after ${Date.now() - t} ms`);
    await eventually(async () => (await status(G1.url, '/readyz')) === 200 && (await status(G2.url, '/readyz')) === 200, { ms: 20000, what: 'both gateways ready' });
    await eventually(() => loops.every((L) => L.ackedAfter(Date.now() - 1000) >= 10 && L.ackedAfter(t) >= 20), { ms: 15000, what: 'writes go on with the new leader' });
  } finally {
    for (const L of loops) L.stop = true;
    await Promise.all(loops.map((L) => L.done));
  }
  console.log(`ensemble: ${phases.join('; ')}; ${loops.map((L) => `${L.client}: ${L.sent.length} pushes, statuses ${JSON.stringify(L.statuses)}, ${L.netErrors} network errors`).join('; ')}`);
  for (const L of loops) {
    const bad = Object.keys(L.statuses).filter((x) => x !== '200' && x !== '503');
    assert.deepEqual(bad, [], `statuses other than 200 and 503: ${JSON.stringify(L.statuses)}`);
  }
  await checkLoops(a, s, loops);
  // The other gateway agrees.
  const b = new Api(G2);
  const fa = (await a.changesAll(s, { limit: 500 })).changes;
  const fb = (await b.changesAll(s, { limit: 500 })).changes;
  assert.deepEqual(fb, fa, 'both gateways serve the same feed');
  await Promise.all([G1.stop(), G2.stop()]);
  await zk.stop();
});

it('a gateway frozen (SIGSTOP) past its session timeout recovers by itself: ready again, correct data, push works', { timeout: 90000 }, async () => {
  await env.ready();
  const root = newRoot();
  const G = await startGateway({ zk: env.zk.connect, root, name: 'frozen', args: ['--session-timeout', '2000'] });
  const H = await startGateway({ zk: env.zk.connect, root, name: 'other' });
  const g = new Api(G), h = new Api(H);
  const s = uniq('fz');
  await h.createStore(s);
  await eventually(async () => (await g.getStore(s)).status === 200, { what: 'store on G' });
  await h.pushOk(s, 'pre', [{ id: 1, key: 'gone', op: 'put', value: 1 }, { id: 2, key: 'stays', op: 'put', value: 2 }]);
  const c0 = await g.getCursor(s);
  const follower = followEvents(G.url, s, { since: c0 });
  let frozen = false;
  try {
    await follower.waitFor((f) => f.segments[0].comments.length > 0, { what: 'stream open' });
    process.kill(G.pid, 'SIGSTOP');
    frozen = true;
    const stoppedAt = Date.now();
    // Meanwhile: writes through the other gateway and through zkCli.
    for (let i = 1; i <= 5; i++) await h.pushOk(s, 'h', [{ id: i, key: `h${i}`, op: 'put', value: i }]);
    await h.pushOk(s, 'pre', [{ id: 3, key: 'gone', op: 'delete' }]);
    const z = recordZnode(root, s, 'zk1');
    const r = await zkCli(env.zk.connect, 'create', z.path, '{"by":"zkCli"}');
    assert.ok(r.ok, `zkCli: ${r.stderr}`);
    await sleep(Math.max(0, 6000 - (Date.now() - stoppedAt)));
    process.kill(G.pid, 'SIGCONT');
    frozen = false;
    const contAt = Date.now();

    // Ready again within a few seconds, by itself.
    await eventually(async () => (await status(G.url, '/readyz', 3000)) === 200, { ms: 10000, every: 100, what: '/readyz 200 after SIGCONT' });
    // It did lose its session (else this test tests nothing) and it serves the writes made meanwhile.
    const expected = (await h.changesAll(s, { since: c0 })).changes;
    assert.deepEqual(expected.map((c) => c.key).sort(), ['gone', 'h1', 'h2', 'h3', 'h4', 'h5', 'zk1']);
    const got = await eventually(async () => {
      const x = await g.changes(s, { since: c0 });
      if (x.status === 503) return false;
      assert.equal(x.status, 200, x.text);
      return x.json;
    }, { ms: 10000, every: 100, what: '/changes on G after SIGCONT' });
    const recoveredAt = Date.now();
    assertSameChanges(got.changes.map(plainChange), expected.map(plainChange), 'G serves what was written while it was frozen');
    const full = byKey((await g.changesAll(s)).changes);
    assert.deepEqual([...full.keys()].sort(), ['h1', 'h2', 'h3', 'h4', 'h5', 'stays', 'zk1']);
    const log = (await import('node:fs')).readFileSync(G.log, 'utf8');
    assert.match(log, /session expired/i, `the gateway's ZooKeeper session did not expire (see ${G.log}): the scenario was not exercised`);

    // Push through G works and is read through H at once.
    const p = await g.pushOk(s, 'g', [{ id: 1, key: 'after', op: 'put', value: 'thaw' }]);
    assert.equal(p.results[0].status, 'applied');
    const onH = await h.changesOk(s, { since: got.cursor });
    assert.deepEqual(onH.changes.map((c) => [c.key, c.value]), [['after', 'thaw']]);
    const m = await getMetrics(G);
    assert.equal(m.get('zoosync_zk_connected'), 1);

    // The stream opened before the freeze delivers it all, once each.
    await follower.waitFor((f) => f.lastEventId >= p.cursor, { ms: 8000, what: 'the stream on G catches up after SIGCONT' });
    const feed = (await g.changesAll(s, { since: c0 })).changes.map(plainChange);
    assertSameChanges(follower.changes().map(plainChange), feed, 'the event stream(s) on G since c0 vs the feed');
    console.log(`SIGSTOP: ready and serving ${recoveredAt - contAt} ms after SIGCONT; stream reconnects ${follower.reconnects}`);
  } finally {
    if (frozen) { try { process.kill(G.pid, 'SIGCONT'); } catch { /* gone */ } }
    follower.close();
  }
});
