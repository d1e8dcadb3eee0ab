// The ZooKeeper C client's own log lines go through the gateway's logger
// (src/zk/zklog.c): in its format (here --log-format json: every line a JSON
// object), at mapped levels, and rate-limited, so that a ZooKeeper outage
// gives a bounded number of lines (issue 12: it gave 111 ZOO_ERROR lines in
// 18 s, in the library's own format).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before } from 'node:test';
import { setupEnv, it, startGateway, uniq, sleep } from '../lib/harness.mjs';
import { Api, eventually, request } from '../lib/http.mjs';

const env = setupEnv();
before(async () => { await env.ready(); });

it('ZooKeeper stopped for 10 s: only our JSON lines on stderr, the library\'s among them, a bounded count', { timeout: 120000 }, async () => {
  const gw = await startGateway({ zk: env.zk.connect, root: env.root, name: 'zklog', args: ['--log-format', 'json'] });
  const api = new Api(gw);
  const S = uniq('zklog');
  await api.createStore(S);
  await env.zk.stopNode(1);
  await sleep(10000);
  await env.zk.startNode(1);
  await eventually(async () => (await request(gw.url, 'GET', '/readyz')).status === 200, { ms: 60000, every: 250, what: 'ready again' });
  await api.pushOk(S, 'after', [{ id: 1, key: 'k', op: 'put', value: 1 }]);
  await gw.stop();
  const lines = readFileSync(gw.log, 'utf8').split('\n').filter((l) => l && !l.startsWith('# '));
  const objs = lines.map((l) => {
    try { return JSON.parse(l); } catch { assert.fail(`a line of stderr is not JSON: ${l}`); }
    return null;
  });
  for (const o of objs) {
    assert.match(o.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(['error', 'warn', 'info', 'debug'].includes(o.level), JSON.stringify(o));
  }
  const lib = objs.filter((o) => o.msg.startsWith('zookeeper client: '));
  const dump = lines.join('\n');
  // The library did log during the outage (connection refused), through us...
  assert.ok(lib.some((o) => /refused|connect|socket/i.test(o.msg) && o.level === 'error'), `no library error line routed:\n${dump}`);
  // ...and the rate limit engaged: ZKLOG_BURST (5) lines per 30 s, one
  // note when it starts dropping, one count of what it dropped (at exit).
  assert.ok(lib.some((o) => /the rest are counted, not logged/.test(o.msg)), `the rate limit never engaged:\n${dump}`);
  assert.ok(lib.some((o) => /more lines not logged \(rate limit/.test(o.msg)), `the dropped lines were never counted:\n${dump}`);
  console.log(`${lib.length} library lines of ${objs.length}:\n${lib.map((o) => `${o.level} ${o.msg}`).join('\n')}`);
  assert.ok(lib.length <= 14, `${lib.length} library lines in about 15 s:\n${dump}`);
  assert.ok(objs.length <= 60, `${objs.length} lines in all:\n${dump}`);
});
