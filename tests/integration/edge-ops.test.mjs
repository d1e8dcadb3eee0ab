// Issue 16, item 8: /healthz, /readyz and /metrics never wait behind
// ZooKeeper-bound requests. ZooKeeper is frozen (SIGSTOP: the session still
// looks connected, so every /changes blocks in its sync), the few workers
// are all busy, and the operational routes must still answer at once.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setupEnv, it, sleep } from '../lib/harness.mjs';
import { request } from '../lib/http.mjs';
import { gatewayWithStore } from '../lib/fixtures.mjs';

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
