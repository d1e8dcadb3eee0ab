// Per-subject limits (PROTOCOL.md "Rate limits", "Write budgets"):
// --rate-limit counts requests, --write-bytes-per-sec and
// --write-mutations-per-sec what a subject writes; past them 429
// too_many_requests with Retry-After, nothing written; subjects (token
// subs, else client addresses) apart; operational routes never limited.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it, startGateway, uniq, sleep, zkIdentity } from '../lib/harness.mjs';
import { zkConnect } from '../lib/zkraw.mjs';
import { Api, expectError, getMetrics, request } from '../lib/http.mjs';
import { makeSigner } from '../lib/jwt.mjs';
import { put } from '../lib/records.mjs';

const env = setupEnv();
before(async () => { await env.ready(); });

function expect429(r, what) {
  expectError(r, 429, 'too_many_requests');
  const ra = Number(r.headers['retry-after']);
  assert.ok(Number.isInteger(ra) && ra >= 1, `${what}: Retry-After ${r.headers['retry-after']}`);
  return ra;
}

it('--rate-limit N: a burst of 2N requests per sub, then 429 with Retry-After; other subs and /healthz, /readyz, /metrics unaffected', async () => {
  const signer = makeSigner('HS256', env.tmp);
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'rate', args: [...signer.args, '--rate-limit', '5'] });
  const admin = new Api(G, signer.token('admin', { sub: 'admin' }));
  const s = uniq('rl');
  await admin.createStore(s);
  const alice = new Api(G, signer.token(`${s}:write`, { sub: 'alice' }));
  const alice2 = new Api(G, signer.token(`${s}:read`, { sub: 'alice' })); // another token, same sub
  const bob = new Api(G, signer.token(`${s}:write`, { sub: 'bob' }));
  let ok = 0, first429 = null;
  for (let i = 0; i < 14 && !first429; i++) {
    const r = await (i % 2 ? alice2 : alice).getStore(s);
    if (r.status === 200) ok++;
    else first429 = r;
  }
  assert.ok(ok >= 10 && ok <= 11, `a burst of 2N = 10 (plus what refilled meanwhile): ${ok}`);
  assert.ok(first429, 'then refused');
  expect429(first429, 'rate');
  // A refused write changes nothing. (The bucket refills 5 a second: on a
  // loaded machine a request may find a token again; write until one is
  // refused, then check that one.)
  let refused = null;
  for (let i = 0; i < 50 && !refused; i++) {
    const r = await alice.putRecord(s, `k${i}`, 1);
    if (r.status !== 201) refused = { r, key: `k${i}` };
  }
  assert.ok(refused, 'a PUT past the budget is refused');
  expect429(refused.r, 'refused PUT');
  assert.equal((await bob.getRecord(s, refused.key)).status, 404, 'nothing written');
  for (const p of ['/healthz', '/readyz', '/metrics']) {
    for (let i = 0; i < 15; i++) assert.equal((await request(G.url, 'GET', p)).status, 200, `${p} is never limited`);
  }
  assert.equal((await bob.getStore(s)).status, 200, 'another sub has its own budget');
  await sleep(1100);
  assert.equal((await alice.getStore(s)).status, 200, 'refilled after a second');
  assert.ok((await getMetrics(G)).get('zoosync_limited_total', { limit: 'rate' }) >= 2, 'counted');
  await G.stop();
});

it('write budgets: mutations and bytes per second per subject; a refused push writes nothing; one larger than the burst passes from a full bucket', async () => {
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'budget',
    args: ['--write-mutations-per-sec', '2', '--write-bytes-per-sec', '100000'] });
  const a = new Api(G);
  const s = uniq('wb');
  await a.createStore(s);
  // 4 mutations: the whole burst of 2 x 2.
  const r1 = await a.pushOk(s, 'c1', Array.from({ length: 4 }, (_, i) => put(i + 1, `k${i}`, i)));
  assert.equal(r1.lastMutationId, 4);
  const ra = expect429(await a.push(s, 'c1', [put(5, 'over', 1)]), 'mutations budget');
  assert.equal(ra, 1, `one mutation at 2/s: Retry-After ${ra}`);
  assert.equal((await a.getRecord(s, 'over')).status, 404, 'the refused push wrote nothing');
  const empty = await a.pushOk(s, 'c1', []);
  assert.equal(empty.lastMutationId, 4, 'a push without mutations (asking lastMutationId) is never refused');
  await sleep(1000 * ra + 100);
  assert.equal((await a.push(s, 'c1', [put(5, 'over', 1)])).status, 200, 'passes after Retry-After');
  // A push larger than the burst passes once the bucket is full, then leaves a debt.
  await sleep(2100);
  const big = await a.push(s, 'c1', Array.from({ length: 10 }, (_, i) => put(6 + i, `b${i}`, i)));
  assert.equal(big.status, 200, `10 mutations from a full bucket of 4: ${big.status} ${big.text.slice(0, 200)}`);
  const after = expect429(await a.putRecord(s, 'x', 1), 'in debt');
  assert.ok(after >= 3, `a debt of 6 at 2/s: Retry-After ${after}`);
  const m = await getMetrics(G);
  assert.ok(m.get('zoosync_limited_total', { limit: 'write_mutations' }) >= 2);
  await G.stop();

  // Bytes: keys plus values, records PUT included.
  const H = await startGateway({ zk: env.zk.connect, root: env.root, name: 'bytes',
    args: ['--write-bytes-per-sec', '1000', '--write-mutations-per-sec', '0'] });
  const h = new Api(H);
  assert.equal((await h.putRecord(s, 'v1', 'x'.repeat(1500))).status, 201, 'within the burst of 2000 bytes');
  expect429(await h.putRecord(s, 'v2', 'x'.repeat(1500)), 'bytes budget');
  expect429(await h.push(s, 'c2', [put(1, 'v3', 'x'.repeat(1000))]), 'bytes budget, push');
  assert.equal((await h.getRecord(s, 'v2')).status, 404);
  assert.equal((await h.getRecord(s, 'v3')).status, 404);
  assert.ok((await getMetrics(H)).get('zoosync_limited_total', { limit: 'write_bytes' }) >= 2);
  await H.stop();
});

it('budget flags: refused when not numbers; 0 turns a budget off; the defaults follow --zk-heap-mb with authentication, off without (shown in the log)', async () => {
  const { readFileSync } = await import('node:fs');
  const signer = makeSigner('HS256', env.tmp);
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'dflt', args: ['--zk-heap-mb', '512', ...signer.args] });
  assert.match(readFileSync(G.log, 'utf8'), /write budget 2097152 bytes\/s and 2048 mutations\/s/);
  await G.stop();
  const H = await startGateway({ zk: env.zk.connect, root: env.root, name: 'dflt-noauth', args: ['--zk-heap-mb', '512'] });
  assert.match(readFileSync(H.log, 'utf8'), /write budget 0 bytes\/s and 0 mutations\/s/);
  await H.stop();
  const { runGatewayExpectExit } = await import('../lib/harness.mjs');
  for (const bad of [['--rate-limit', 'x'], ['--write-bytes-per-sec', '-1'], ['--write-mutations-per-sec', '1e3']]) {
    const r = await runGatewayExpectExit(['--zk', env.zk.connect, ...bad]);
    assert.equal(r.code, 2, `${bad.join(' ')}: exit ${r.code}`);
  }
});

it('an exhausted write budget: empty pushes (asking lastMutationId) with fresh client ids write nothing to ZooKeeper', { timeout: 120000 }, async () => {
  // Found by review: an empty push was exempt from the budgets yet created the client's znode.
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'empty',
    args: ['--write-mutations-per-sec', '1', '--write-bytes-per-sec', '100000'] });
  const a = new Api(G);
  const s = uniq('eb');
  await a.createStore(s);
  await a.pushOk(s, 'c0', [put(1, 'k1', 1), put(2, 'k2', 2)]); // the whole burst of 2
  expect429(await a.push(s, 'c0', [put(3, 'k3', 3)]), 'budget exhausted');
  const owner = await zkConnect(env.zk.connect, { auth: zkIdentity().cred });
  try {
    const kids = async () => {
      let n = 0;
      for (let b = 0; b < 256; b++) {
        const r = await owner.children(`${env.root}/stores/${s}/c/${b.toString(16).padStart(2, '0')}`);
        n += (r.children || []).length;
      }
      return n;
    };
    const before = await kids();
    for (let i = 0; i < 50; i++) {
      const r = await a.pushOk(s, `fresh${i}`, []);
      assert.equal(r.lastMutationId, 0, 'a client never seen has lastMutationId 0');
    }
    assert.equal(await kids(), before, 'no client znode created by empty pushes');
  } finally {
    owner.close();
  }
  await G.stop();
});

it('the bytes budget pays for what ZooKeeper writes: the client node each push rewrites included', { timeout: 120000 }, async () => {
  // Found by review: 999 remembered rejections make a ~60 KB client node that every later
  // one-mutation push rewrites; that push was charged its 3 bytes of key and value.
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'amp',
    args: ['--write-mutations-per-sec', '1000', '--write-bytes-per-sec', '40000'] });
  const a = new Api(G);
  const s = uniq('amp');
  await a.createStore(s, { maxRecords: 1 });
  const base = 9007199254740000 - 2000; // 16-digit ids
  const r = await a.push(s, 'c1', Array.from({ length: 1000 }, (_, i) => put(base + i, `k${i}`, 1)));
  assert.equal(r.status, 200, r.text.slice(0, 200)); // from a full bucket: a debt
  assert.equal(r.json.results.filter((x) => x.status === 'rejected').length, 999);
  await sleep(3000);
  const st = [];
  for (let i = 0; i < 4; i++) st.push((await a.push(s, 'c1', [put(base + 1000 + i, 'k0', i)])).status);
  assert.ok(st.includes(429), `four rewrites of a ~60 KB client node within an 80,000-byte burst: ${st}`);
  await G.stop();
});

it('budgets are per gateway, as documented: a subject held back by one gateway still writes through another, each within its own budget', async () => {
  const signer = makeSigner('HS256', env.tmp);
  const args = [...signer.args, '--write-mutations-per-sec', '2', '--write-bytes-per-sec', '100000'];
  const GA = await startGateway({ zk: env.zk.connect, root: env.root, name: 'pga', args });
  const GB = await startGateway({ zk: env.zk.connect, root: env.root, name: 'pgb', args });
  try {
    const s = uniq('pg');
    await new Api(GA, signer.token('admin', { sub: 'ops' })).createStore(s);
    const tok = signer.token(`${s}:write`, { sub: 'writer' });
    const a = new Api(GA, tok), b = new Api(GB, tok);
    await a.pushOk(s, 'c1', [put(1, 'a1', 1), put(2, 'a2', 2), put(3, 'a3', 3), put(4, 'a4', 4)]); // A's burst
    expect429(await a.push(s, 'c1', [put(5, 'a5', 5)]), 'A holds the subject back');
    const viaB = await b.pushOk(s, 'c1', [put(5, 'a5', 5), put(6, 'a6', 6), put(7, 'a7', 7), put(8, 'a8', 8)]);
    assert.equal(viaB.lastMutationId, 8, 'B has its own budget for the subject');
    expect429(await b.push(s, 'c1', [put(9, 'a9', 9)]), 'and holds it back in turn');
    const feed = (await a.changesAll(s, {})).changes.map((c) => c.key).sort();
    assert.deepEqual(feed, ['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', 'a8'], 'nothing refused was written');
  } finally {
    await GB.stop();
    await GA.stop();
  }
});
