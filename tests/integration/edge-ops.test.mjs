// Issue 16, item 8: /healthz, /readyz and /metrics never wait behind
// ZooKeeper-bound requests. ZooKeeper is frozen (SIGSTOP: the session still
// looks connected, so every /changes blocks in its sync), the few workers
// are all busy, and the operational routes must still answer at once.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setupEnv, it, sleep, HTTP_MODEL } from '../lib/harness.mjs';
import { request } from '../lib/http.mjs';
import { gatewayWithStore, gatewayWithApi } from '../lib/fixtures.mjs';

const env = setupEnv();
let gw, api, S;

before(async () => {
  ({ gw, api, store: S } = await gatewayWithStore(env, { args: ['--workers', '2'], prefix: 'ops' }));
});

async function timed(p) {
  const t0 = Date.now();
  const r = await request(gw.url, 'GET', p, { timeout: 20000 });
  return { ...r, ms: Date.now() - t0 };
}

it('with ZooKeeper frozen and every worker busy, /healthz, /readyz and /metrics answer within 1 s', { timeout: 120000 }, async () => {
  const zkPid = Number(readFileSync(path.join(env.zk.dir, 'node1', 'pid'), 'utf8').trim());
  process.kill(zkPid, 'SIGSTOP');
  let waiting = [];
  try {
    waiting = Array.from({ length: 20 }, () => request(gw.url, 'GET', `/v1/stores/${S}/changes`, { timeout: 60000 }).catch((e) => e));
    await sleep(300); // the workers are now inside their ZooKeeper syncs
    const results = [];
    for (const p of ['/healthz', '/readyz', '/metrics']) results.push([p, await timed(p)]);
    for (const [p, r] of results) {
      assert.ok(r.status === 200 || (p === '/readyz' && r.status === 503), `${p}: ${r.status} ${r.text.slice(0, 200)}`);
      assert.ok(r.ms < 1000, `${p} took ${r.ms} ms behind ZooKeeper-bound requests`);
    }
  } finally {
    process.kill(zkPid, 'SIGCONT');
    await Promise.all(waiting);
  }
});

it('the operational routes still refuse other methods (405 with Allow)', async () => {
  for (const p of ['/healthz', '/readyz', '/metrics']) {
    const r = await request(gw.url, 'POST', p);
    assert.equal(r.status, 405, `${p}: ${r.text}`);
    assert.equal(r.headers.allow, 'GET, HEAD');
  }
  const h = await request(gw.url, 'HEAD', '/healthz');
  assert.equal(h.status, 200);
});

// A thread per connection (--http-model connection, the default): a request
// waiting on ZooKeeper holds its connection's thread and cannot be evicted,
// so at most --http-connections less 16 are admitted and the rest answered
// 503 at once; the threads left keep the probes answering. (Found by a
// review: before, 64 requests waiting on a frozen ZooKeeper left /healthz
// refused.) In the pool model (make integration-pool) the requests queue for
// the workers and the probes answer as above.
it('--http-connections 64, 90 requests waiting on a frozen ZooKeeper and 20 clients retrying: /healthz still answers at once', { timeout: 120000 }, async () => {
  const { gw: G, store: S2 } = await gatewayWithStore(env, { args: ['--http-connections', '64'], prefix: 'opscap' });
  const zkPid = Number(readFileSync(path.join(env.zk.dir, 'node1', 'pid'), 'utf8').trim());
  process.kill(zkPid, 'SIGSTOP');
  let waiting = [];
  try {
    for (let i = 0; i < 90; i++) {
      waiting.push(request(G.url, 'GET', `/v1/stores/${S2}/changes`, { timeout: 60000 }).catch((e) => ({ status: 0, text: String(e) })));
      await sleep(10);
    }
    await sleep(500);
    // and 20 clients retrying 100 ms after each answer meanwhile, each on a
    // new connection (a second review: probes were evicted by them)
    let storming = true;
    const retries = {};
    const storm = Array.from({ length: 20 }, async () => {
      while (storming) {
        const r = await request(G.url, 'GET', `/v1/stores/${S2}/changes`, { timeout: 60000 }).catch((e) => ({ status: 0, text: String(e) }));
        retries[r.status] = (retries[r.status] || 0) + 1;
        await sleep(100);
      }
    });
    await sleep(500);
    try {
      for (let i = 0; i < 10; i++) {
        const t0 = Date.now();
        const r = await request(G.url, 'GET', '/healthz', { timeout: 5000 }).catch((e) => ({ status: 0, text: String(e) }));
        assert.equal(r.status, 200, `/healthz ${i}: ${r.status} ${r.text} (retrying clients got ${JSON.stringify(retries)})`);
        assert.ok(Date.now() - t0 < 1000, `/healthz ${i} took ${Date.now() - t0} ms`);
        await sleep(100);
      }
    } finally {
      storming = false;
      process.kill(zkPid, 'SIGCONT');
      await Promise.all(storm);
    }
    // (at the cap a new connection may still evict a retrying client's, not
    // yet read: a few resets; eviction from 16 below the cap made them most)
    if (HTTP_MODEL === 'connection') {
      assert.ok((retries[503] || 0) >= 10 * (retries[0] || 0) && retries[503] > 0, `retrying clients got ${JSON.stringify(retries)}`);
    }
  } finally {
    process.kill(zkPid, 'SIGCONT');
    waiting = await Promise.all(waiting);
    await G.stop();
  }
  const by = waiting.reduce((m, r) => ((m[r.status] = (m[r.status] || 0) + 1), m), {});
  if (HTTP_MODEL === 'connection') {
    assert.ok((by[503] || 0) >= 90 - 48 - 5 && (by[200] || 0) >= 40, `answers by status: ${JSON.stringify(by)}`);
    const refused = waiting.find((r) => r.status === 503);
    assert.match(refused.text, /--http-connections/);
  } else {
    assert.equal(by[200], 90, `answers by status: ${JSON.stringify(by)}`);
  }
});

// Shutdown answers what it admitted: a push waiting on ZooKeeper when
// SIGTERM comes is applied AND answered, however long past the 3 s grace
// ZooKeeper takes. (Found by a review: with a thread per connection the
// grace ran out, the socket was shut, and the push was applied unanswered.)
it('a push in flight at SIGTERM, ZooKeeper frozen 5 s: answered 200 before the gateway exits, and applied', { timeout: 120000 }, async () => {
  const { gw: G, api: A, store: S2 } = await gatewayWithStore(env, { args: ['--session-timeout', '30000'], prefix: 'opsstop' });
  const zkPid = Number(readFileSync(path.join(env.zk.dir, 'node1', 'pid'), 'utf8').trim());
  process.kill(zkPid, 'SIGSTOP');
  let r;
  try {
    const p = A.push(S2, 'c1', [{ id: 1, key: 'k', op: 'put', value: 1 }], { timeout: 60000 }).catch((e) => ({ status: 0, text: String(e) }));
    await sleep(500);
    const stopped = G.stop(60000);
    await sleep(5000);
    process.kill(zkPid, 'SIGCONT');
    r = await p;
    await stopped;
  } finally { process.kill(zkPid, 'SIGCONT'); }
  assert.equal(r.status, 200, `the push in flight: ${r.status} ${r.text}`);
  assert.equal(r.json.results[0].status, 'applied', r.text);
  const g2 = await gatewayWithApi(env, {});
  try {
    const rec = await g2.api.getRecord(S2, 'k');
    assert.equal(rec.status, 200, rec.text);
  } finally { await g2.gw.stop(); }
});
