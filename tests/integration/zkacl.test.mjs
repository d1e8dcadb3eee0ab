// ZooKeeper-side safety: with --zk-digest-file every znode the gateway
// creates (root, stores path, store configs, buckets, records, client
// nodes, election nodes) carries "this identity: all; world: read", so a
// ZooKeeper client without the identity can read but change nothing — the
// attacks that worked on open znodes (resetting a client's exactly-once
// state, rewriting a store config, a winning fake election candidate) now
// fail with NoAuth — while a foreign writer WITH the identity keeps
// working. Before this, every znode was created world-writable and each
// attack below succeeded.
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setupEnv, it, startGateway, runGatewayExpectExit, uniq, newRoot, recordZnode, clientZnode, zkIdentity, tmpDir, sleep } from '../lib/harness.mjs';
import { Api, eventually, byKey, getMetrics } from '../lib/http.mjs';
import { zkConnect } from '../lib/zkraw.mjs';

const env = setupEnv();
const NOAUTH = -102;

it('every znode the gateway creates carries the identity ACL; without the identity nothing can be changed', { timeout: 60000 }, async () => {
  await env.ready();
  const root = newRoot();
  const G = await startGateway({ zk: env.zk.connect, root, name: 'acl', args: ['--gc-interval', '1'] });
  const api = new Api(G);
  const s = uniq('acl');
  await api.createStore(s);
  await api.pushOk(s, 'cl', [{ id: 1, key: 'k1', op: 'put', value: 1 }, { id: 2, key: 'k2', op: 'put', value: 2 }]);
  const { cred } = zkIdentity();
  const anon = await zkConnect(env.zk.connect);
  const owner = await zkConnect(env.zk.connect, { auth: cred });
  try {
    const rec = recordZnode(root, s, 'k1');
    const cnode = clientZnode(root, s, 'cl');
    await eventually(async () => (await anon.getAcl(`${root}/gc`)).err === 0, { ms: 10000, what: 'the election folder (first gc round)' });
    const paths = [root, `${root}/stores`, `${root}/stores/${s}`, `${root}/stores/${s}/r`, rec.bucketPath, rec.path, cnode, `${root}/gc`];
    const user = cred.split(':')[0];
    for (const p of paths) {
      const r = await anon.getAcl(p);
      assert.equal(r.err, 0, `getAcl ${p}: ${r.err}`);
      assert.equal(r.acl.length, 2, `${p}: ${JSON.stringify(r.acl)}`);
      assert.deepEqual(r.acl.map((a) => [a.perms, a.scheme]), [[31, 'digest'], [1, 'world']], `${p}: ${JSON.stringify(r.acl)}`);
      assert.ok(r.acl[0].id.startsWith(`${user}:`), `${p}: the digest id is the gateway's`);
    }
    // The attacks, without the identity: all NoAuth.
    assert.equal((await anon.set(cnode, '{"last":0}')).err, NOAUTH, 'reset a client\'s exactly-once state');
    assert.equal((await anon.set(`${root}/stores/${s}`, '{"maxValueBytes":-1,"tombstoneTtlSeconds":-5}')).err, NOAUTH, 'rewrite the store config');
    assert.equal((await anon.create(`${root}/gc/g-0000000000000000-0000000000`, '')).err, NOAUTH, 'a fake election candidate');
    assert.equal((await anon.set(rec.path, '{"evil":1}')).err, NOAUTH, 'overwrite a record');
    assert.equal((await anon.delete(rec.path)).err, NOAUTH, 'delete a record');
    assert.equal((await anon.create(`${rec.bucketPath}/intruder`, '1')).err, NOAUTH, 'create a record');
    assert.equal((await anon.delete(`${root}/stores/${s}/r/000`)).err !== 0, true, 'delete a bucket');
    // Reading stays open (world: read).
    const got = await anon.get(rec.path);
    assert.equal(got.err, 0);
    assert.equal(got.data, '1');
    // The gateway is unharmed: exactly-once still holds, the config is intact.
    const again = await api.pushOk(s, 'cl', [{ id: 2, key: 'k2', op: 'put', value: 2 }, { id: 3, key: 'k3', op: 'put', value: 3 }]);
    assert.deepEqual(again.results.map((r) => r.status), ['duplicate', 'applied']);
    assert.equal((await api.getStore(s)).json.maxValueBytes, 65536);
    // A foreign writer WITH the identity keeps working, and reaches the feed.
    assert.equal((await owner.set(rec.path, '{"by":"owner"}')).err, 0);
    await eventually(async () => {
      const ch = byKey((await api.changesOk(s)).changes);
      return ch.get('k1') && ch.get('k1').value && ch.get('k1').value.by === 'owner';
    }, { what: 'the identity\'s foreign write in the feed' });
  } finally {
    anon.close();
    owner.close();
  }
  await G.stop();
});

it('--zk-acl-world-read no: nothing readable without the identity, and the gateway (both sessions) still works', { timeout: 60000 }, async () => {
  await env.ready();
  const root = newRoot();
  const G = await startGateway({ zk: env.zk.connect, root, name: 'noread', args: ['--zk-acl-world-read', 'no'] });
  const api = new Api(G);
  const s = uniq('nr');
  await api.createStore(s);
  await api.pushOk(s, 'c', [{ id: 1, key: 'a', op: 'put', value: 'x' }]);
  const anon = await zkConnect(env.zk.connect);
  const owner = await zkConnect(env.zk.connect, { auth: zkIdentity().cred });
  try {
    const rec = recordZnode(root, s, 'a');
    assert.equal((await anon.get(rec.path)).err, NOAUTH, 'read without the identity');
    assert.equal((await owner.getAcl(rec.path)).acl.length, 1, 'only the identity in the ACL');
    // The mirror's session authenticates: a foreign write by the identity reaches the feed.
    assert.equal((await owner.set(rec.path, '"y"')).err, 0);
    await eventually(async () => byKey((await api.changesOk(s)).changes).get('a').value === 'y', { what: 'the write in the feed' });
  } finally {
    anon.close();
    owner.close();
  }
  await G.stop();
});

it('--zk-apply-acl puts the ACL on a tree created open before', { timeout: 60000 }, async () => {
  await env.ready();
  const root = newRoot();
  const G0 = await startGateway({ zk: env.zk.connect, root, name: 'open', digest: false });
  const s = uniq('ap');
  await new Api(G0).createStore(s);
  await new Api(G0).pushOk(s, 'c', [{ id: 1, key: 'old', op: 'put', value: 1 }]);
  await G0.stop();
  const rec = recordZnode(root, s, 'old');
  const anon = await zkConnect(env.zk.connect);
  try {
    assert.equal((await anon.getAcl(rec.path)).acl[0].scheme, 'world', 'created open');
    // With the identity but without --zk-apply-acl: a warning that says what to do.
    const Gw = await startGateway({ zk: env.zk.connect, root, name: 'warn' });
    await Gw.stop();
    assert.match(readFileSync(Gw.log, 'utf8'), /created without the identity's ACL.*--zk-apply-acl/, 'warned about the open tree');
    const G = await startGateway({ zk: env.zk.connect, root, name: 'apply', args: ['--zk-apply-acl'] });
    assert.equal((await anon.set(rec.path, '2')).err, NOAUTH, 'no longer writable without the identity');
    assert.equal((await anon.getAcl(`${root}/stores/${s}`)).acl[0].scheme, 'digest');
    await new Api(G).pushOk(s, 'c', [{ id: 2, key: 'old', op: 'put', value: 2 }]);
    await G.stop();
  } finally {
    anon.close();
  }
});

it('a bad digest file or a flag without it stops the gateway at start with a clear error', async () => {
  await env.ready();
  const dir = tmpDir();
  const cases = [
    ['empty', '', /empty/],
    ['nocolon', 'justauser\n', /user:password/],
    ['twolines', 'a:b\nc:d\n', /one line/],
  ];
  for (const [name, content, re] of cases) {
    const f = path.join(dir, `bad-${name}.digest`);
    writeFileSync(f, content);
    const r = await runGatewayExpectExit(['--listen', '127.0.0.1:0', '--zk', env.zk.connect, '--root', newRoot(), '--zk-digest-file', f]);
    assert.equal(r.code, 2, `${name}: exit ${r.code} ${r.stderr}`);
    assert.match(r.stderr, re, name);
  }
  const r = await runGatewayExpectExit(['--listen', '127.0.0.1:0', '--zk', env.zk.connect, '--zk-apply-acl']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /need --zk-digest-file/);
  await sleep(10);
});

it('what is read from ZooKeeper is distrusted: a corrupt exactly-once record, store config or election node (written with the identity) never turns into wrong behaviour', { timeout: 90000 }, async () => {
  await env.ready();
  const root = newRoot();
  const G = await startGateway({ zk: env.zk.connect, root, name: 'distrust', args: ['--gc-interval', '1'] });
  const api = new Api(G);
  const s = uniq('ds');
  await api.createStore(s, { tombstoneTtlSeconds: 1 });
  await api.pushOk(s, 'cl', [{ id: 1, key: 'k', op: 'put', value: 1 }]);
  const owner = await zkConnect(env.zk.connect, { auth: zkIdentity().cred });
  const metric = async (kind) => (await getMetrics(G)).get('zoosync_zk_invalid_data_total', { kind });
  try {
    // 1. The client's exactly-once record made unreadable: fail closed (503), never "apply again".
    const cnode = clientZnode(root, s, 'cl');
    assert.equal((await owner.set(cnode, '{"last":"abc"}')).err, 0);
    const r = await api.push(s, 'cl', [{ id: 1, key: 'k', op: 'put', value: 1 }]);
    assert.equal(r.status, 503, `push with a corrupt client record: ${r.status} ${r.text}`);
    assert.match(r.json.message, /not valid/);
    assert.equal(byKey((await api.changesOk(s)).changes).get('k').version, 1, 'nothing applied again');
    assert.ok(await metric('client') >= 1, 'counted');
    // ... and so does a memory of outcomes that could not have been written: an unknown
    // rejection reason, an id past last (a later push would append before it), an id twice.
    for (const bad of ['{"last":1,"rejected":[[1,"nope"]]}', '{"last":1,"rejected":[[2,"quota_exceeded"]]}',
      '{"last":1,"conflicts":[1],"rejected":[[1,"forbidden"]]}', '{"last":1,"rejected":[1]}', '{"last":1,"aborted":[0]}']) {
      assert.equal((await owner.set(cnode, bad)).err, 0);
      const rb = await api.push(s, 'cl', [{ id: 1, key: 'k', op: 'put', value: 1 }, { id: 2, key: 'k', op: 'put', value: 2 }]);
      assert.equal(rb.status, 503, `push with client record ${bad}: ${rb.status} ${rb.text}`);
    }
    assert.equal(byKey((await api.changesOk(s)).changes).get('k').version, 1, 'nothing applied');
    assert.equal((await owner.set(cnode, '{"last":1}')).err, 0);
    const again = await api.pushOk(s, 'cl', [{ id: 1, key: 'k', op: 'put', value: 1 }]);
    assert.equal(again.results[0].status, 'duplicate', 'with the record repaired, id 1 is a duplicate');

    // 2. A store config with invalid fields, or a horizon beyond its own write: the store is unavailable, not served as it is.
    const spath = `${root}/stores/${s}`;
    const good = (await owner.get(spath)).data;
    for (const bad of ['{"conflict":"cas","maxValueBytes":-1,"tombstoneTtlSeconds":1}', '{"conflict":"cas","maxValueBytes":65536,"tombstoneTtlSeconds":-5}',
      `{"conflict":"cas","maxValueBytes":65536,"tombstoneTtlSeconds":1,"horizon":"${'f'.repeat(40)}"}`]) {
      assert.equal((await owner.set(spath, bad)).err, 0);
      await eventually(async () => {
        const c = await api.changes(s);
        return c.status === 503 && /invalid configuration/.test(c.json.message);
      }, { what: `503 for config ${bad}` });
      const p = await api.push(s, 'cl', [{ id: 2, key: 'k2', op: 'put', value: 2 }]);
      assert.equal(p.status, 503, 'no push against an invalid config');
    }
    assert.ok(await metric('config') >= 1, 'invalid configs counted');
    assert.equal((await owner.set(spath, good)).err, 0);
    await eventually(async () => (await api.changes(s)).status === 200, { what: 'the store back with a valid config' });
    // Not even a config (duplicate keys, not JSON): still the store, unavailable (not 404), and an admin PUT repairs it
    // with a horizon at the broken config's write (older cursors expire rather than miss a collected deletion).
    const before = await api.getCursor(s);
    for (const bad of ['{"conflict":"cas","conflict":"lww"}', 'not json']) {
      assert.equal((await owner.set(spath, bad)).err, 0);
      await eventually(async () => { const c = await api.changes(s); return c.status === 503 && /invalid configuration/.test(c.json.message); },
        { what: `503 (not 404) for ${bad}` });
    }
    const fixed = await api.putStore(s, { tombstoneTtlSeconds: 1 });
    assert.equal(fixed.status, 200, `admin PUT repairs: ${fixed.status} ${fixed.text}`);
    await eventually(async () => (await api.changes(s, { since: before })).status === 410, { what: 'cursors from before the repair expire' });

    // 3. A persistent election node that would win every election: ignored; tombstones are still collected.
    await eventually(async () => (await owner.getAcl(`${root}/gc`)).err === 0, { ms: 10000, what: 'the election folder (first gc round)' });
    assert.equal((await owner.create(`${root}/gc/g-0000000000000000-0000000000`, '')).err, 0);
    const d = await api.pushOk(s, 'cl', [{ id: 2, key: 'gone', op: 'put', value: 1 }, { id: 3, key: 'gone', op: 'delete' }]);
    void d;
    await eventually(async () => (await getMetrics(G)).get('zoosync_gc_tombstones_collected_total') >= 1,
      { ms: 20000, every: 250, what: 'a tombstone collected despite the planted node' });
    assert.ok(await metric('election') >= 1, 'the planted node counted');
  } finally {
    owner.close();
  }
  await G.stop();
});
