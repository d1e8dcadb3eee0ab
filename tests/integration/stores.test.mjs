// Stores: create with defaults, partial update, description, listing filtered
// by the token's scope, delete (records gone), no implicit creation.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it, startGateway, uniq, rid, zkCli } from '../lib/harness.mjs';
import { Api, expectError, CURSOR_RE } from '../lib/http.mjs';
import { openEvents } from '../lib/sse.mjs';
import { makeSigner } from '../lib/jwt.mjs';

const env = setupEnv();
let signer, gw, admin;
const PRE = `pre_${rid(3)}`;

before(async () => {
  await env.ready();
  signer = makeSigner('HS256', env.tmp);
  gw = await startGateway({ zk: env.zk.connect, root: env.root, args: [...signer.args, '--create-store', PRE] });
  admin = new Api(gw, signer.token('admin'));
});

const DEFAULTS = { conflict: 'cas', maxValueBytes: 65536, tombstoneTtlSeconds: 604800 };
function assertDescription(d, name, fields, records = 0) {
  assert.equal(d.name, name);
  assert.equal(d.conflict, fields.conflict);
  assert.equal(d.maxValueBytes, fields.maxValueBytes);
  assert.equal(d.tombstoneTtlSeconds, fields.tombstoneTtlSeconds);
  assert.equal(d.records, records);
  assert.match(d.cursor, CURSOR_RE);
}

it('PUT without a body creates with the defaults (201); GET describes it', async () => {
  const s = uniq('def');
  const r = await admin.putStore(s);
  assert.equal(r.status, 201, r.text);
  assertDescription(r.json, s, DEFAULTS);
  const g = await admin.getStore(s);
  assert.equal(g.status, 200);
  assertDescription(g.json, s, DEFAULTS);
  // An explicit empty object creates with defaults too.
  const s2 = uniq('def');
  const r2 = await admin.putStore(s2, {});
  assert.equal(r2.status, 201, r2.text);
  assertDescription(r2.json, s2, DEFAULTS);
});

it('--create-store creates a store at startup with the defaults', async () => {
  const g = await admin.getStore(PRE);
  assert.equal(g.status, 200, g.text);
  assertDescription(g.json, PRE, DEFAULTS);
});

it('PUT with every field; limits accepted at the edges', async () => {
  const s = uniq('full');
  const want = { conflict: 'lww', maxValueBytes: 1000000, tombstoneTtlSeconds: 1 };
  const r = await admin.putStore(s, want);
  assert.equal(r.status, 201, r.text);
  assertDescription(r.json, s, want);
  assertDescription((await admin.getStore(s)).json, s, want);
  const s2 = uniq('edge');
  const r2 = await admin.putStore(s2, { maxValueBytes: 1 });
  assert.equal(r2.status, 201, r2.text);
  assert.equal(r2.json.maxValueBytes, 1);
});

it('PUT on an existing store changes only the given fields (200); an empty body changes nothing', async () => {
  const s = uniq('upd');
  await admin.createStore(s, { maxValueBytes: 1000, tombstoneTtlSeconds: 100 });
  const r1 = await admin.putStore(s, { conflict: 'lww' });
  assert.equal(r1.status, 200, r1.text);
  assertDescription(r1.json, s, { conflict: 'lww', maxValueBytes: 1000, tombstoneTtlSeconds: 100 });
  const r2 = await admin.putStore(s, { tombstoneTtlSeconds: 5 });
  assert.equal(r2.status, 200);
  assertDescription(r2.json, s, { conflict: 'lww', maxValueBytes: 1000, tombstoneTtlSeconds: 5 });
  const r3 = await admin.putStore(s);
  assert.equal(r3.status, 200, r3.text);
  assertDescription(r3.json, s, { conflict: 'lww', maxValueBytes: 1000, tombstoneTtlSeconds: 5 });
  const r4 = await admin.putStore(s, {});
  assert.equal(r4.status, 200, r4.text);
  assertDescription(r4.json, s, { conflict: 'lww', maxValueBytes: 1000, tombstoneTtlSeconds: 5 });
  // Records survive an update.
  assert.equal((await admin.putRecord(s, 'k', 1)).status, 201);
  const r5 = await admin.putStore(s, { maxValueBytes: 2000 });
  assert.equal(r5.status, 200);
  assert.equal(r5.json.records, 1);
  assert.equal((await admin.getRecord(s, 'k')).status, 200);
});

it('conflict mode may be switched and governs later pushes', async () => {
  const s = uniq('sw');
  await admin.createStore(s);
  await admin.pushOk(s, 'c', [{ id: 1, key: 'k', op: 'put', value: 'a' }]);
  let r = await admin.pushOk(s, 'c', [{ id: 2, key: 'k', op: 'put', value: 'b', base: 7 }]);
  assert.equal(r.results[0].status, 'conflict');
  assert.equal((await admin.putStore(s, { conflict: 'lww' })).status, 200);
  r = await admin.pushOk(s, 'c', [{ id: 3, key: 'k', op: 'put', value: 'c', base: 7 }]);
  assert.equal(r.results[0].status, 'applied', 'lww ignores base');
  assert.equal(r.results[0].version, 2);
  assert.equal((await admin.putStore(s, { conflict: 'cas' })).status, 200);
  r = await admin.pushOk(s, 'c', [{ id: 4, key: 'k', op: 'put', value: 'd', base: 7 }]);
  assert.equal(r.results[0].status, 'conflict');
  assert.deepEqual(r.results[0].current, { value: 'c', version: 2 });
});

it('lowering maxValueBytes applies to later writes', async () => {
  const s = uniq('mvb');
  await admin.createStore(s);
  assert.equal((await admin.putRecord(s, 'k', 'x'.repeat(100))).status, 201);
  assert.equal((await admin.putStore(s, { maxValueBytes: 50 })).status, 200);
  expectError(await admin.putRecord(s, 'k', 'x'.repeat(100)), 413, 'value_too_large');
  expectError(await admin.push(s, 'c', [{ id: 1, key: 'j', op: 'put', value: 'y'.repeat(60) }]), 413, 'value_too_large');
  // Existing records stay readable.
  assert.equal((await admin.getRecord(s, 'k')).json.value, 'x'.repeat(100));
});

it('invalid store bodies: 400 bad_request naming the field; nothing changed', async () => {
  const s = uniq('bad');
  await admin.createStore(s, { conflict: 'lww', maxValueBytes: 300 });
  for (const [body, field] of [
    [{ conflict: 'first' }, 'conflict'], [{ conflict: null }, 'conflict'],
    [{ maxValueBytes: 1000001 }, 'maxValueBytes'], [{ maxValueBytes: 0 }, 'maxValueBytes'], [{ maxValueBytes: 2.5 }, 'maxValueBytes'], [{ maxValueBytes: '100' }, 'maxValueBytes'],
    [{ tombstoneTtlSeconds: 0 }, 'tombstoneTtlSeconds'], [{ tombstoneTtlSeconds: 1.5 }, 'tombstoneTtlSeconds'], [{ tombstoneTtlSeconds: true }, 'tombstoneTtlSeconds'],
    [{ conflict: 'cas', extra: 1 }, null], [{ maxValueBytes: 10, tombstoneTtlSeconds: -1 }, 'tombstoneTtlSeconds'],
  ]) {
    expectError(await admin.putStore(s, body), 400, 'bad_request', { messageMatch: field ? new RegExp(field) : undefined });
  }
  assertDescription((await admin.getStore(s)).json, s, { conflict: 'lww', maxValueBytes: 300, tombstoneTtlSeconds: 604800 });
});

it('records counts live records, not tombstones; cursor moves with writes', async () => {
  const s = uniq('cnt');
  await admin.createStore(s);
  const d0 = (await admin.getStore(s)).json;
  const r = await admin.pushOk(s, 'c', [
    { id: 1, key: 'a', op: 'put', value: 1 }, { id: 2, key: 'b', op: 'put', value: 2 },
    { id: 3, key: 'c', op: 'put', value: 3 }, { id: 4, key: 'b', op: 'delete' },
  ]);
  const d1 = (await admin.getStore(s)).json;
  assert.equal(d1.records, 2);
  assert.ok(d1.cursor > d0.cursor, 'store cursor advanced');
  assert.ok(d1.cursor >= r.cursor, 'store cursor covers the push');
  assert.deepEqual((await admin.changesOk(s, { since: d1.cursor })).changes, []);
});

it('deleting a store ends its event streams; a reconnect gets 404, or a resync once it is created again', async () => {
  const s = uniq('dels');
  await admin.createStore(s);
  await admin.pushOk(s, 'c', [{ id: 1, key: 'a', op: 'put', value: 1 }]);
  const es = openEvents(gw, s, { token: signer.token('admin') });
  await es.opened();
  await es.waitFor((x) => x.changes.some((c) => c.key === 'a'), { what: 'the record on the stream' });
  const cursor = es.lastEventId;
  assert.equal((await admin.deleteStore(s)).status, 204);
  await es.waitFor((x) => x.ended, { ms: 10000, allowEnd: true, what: 'the stream ends once its store is deleted' });
  assert.ok(es.comments.some((c) => /store deleted/.test(c.text)), `its last words: ${es.describe()}`);
  const again = openEvents(gw, s, { token: signer.token('admin'), since: cursor });
  await assert.rejects(again.opened(), (e) => e.status === 404 && e.json && e.json.error === 'store_not_found', 'a reconnect: 404');
  again.close();
  // Created again: a stream from the old store's cursor is told to resync.
  assert.equal((await admin.putStore(s)).status, 201);
  const back = openEvents(gw, s, { token: signer.token('admin'), since: cursor });
  await back.opened();
  await back.waitFor((x) => x.events.some((e) => e.event === 'resync'), { what: 'resync for a cursor of the deleted store' });
  back.close();
});

it('DELETE removes the store and its records; a later PUT re-creates it empty', async () => {
  const s = uniq('del');
  await admin.createStore(s, { conflict: 'lww' });
  await admin.pushOk(s, 'c', [{ id: 1, key: 'a', op: 'put', value: 1 }, { id: 2, key: 'b', op: 'put', value: 2 }]);
  const d = await admin.deleteStore(s);
  assert.equal(d.status, 204, d.text);
  expectError(await admin.getStore(s), 404, 'store_not_found');
  expectError(await admin.getRecord(s, 'a'), 404, 'store_not_found');
  expectError(await admin.changes(s), 404, 'store_not_found');
  expectError(await admin.push(s, 'c', [{ id: 3, key: 'a', op: 'put', value: 1 }]), 404, 'store_not_found');
  expectError(await admin.deleteStore(s), 404, 'store_not_found');
  assert.ok(!(await admin.listStores()).json.stores.some((x) => x.name === s), 'deleted store still listed');
  const r = await admin.putStore(s);
  assert.equal(r.status, 201, r.text);
  assertDescription(r.json, s, DEFAULTS, 0);
  expectError(await admin.getRecord(s, 'a'), 404, 'not_found');
  assert.deepEqual((await admin.changesOk(s)).changes, []);
  // A new store: the old client's exactly-once state is gone with it.
  const p = await admin.pushOk(s, 'c', [{ id: 1, key: 'a', op: 'put', value: 'new', base: 0 }]);
  assert.equal(p.results[0].status, 'applied');
  assert.equal(p.results[0].version, 1);
});

// A record's znode name is its key with every byte outside printable ASCII
// written %XX: a 1,024-byte key of two-byte characters is a 3,072-byte
// name. Deleting the store used to send up to 500 of them in one multi (the
// records of 500 buckets: about 430 here, 1.3 MB), past ZooKeeper's
// jute.maxbuffer (1 MiB): the server dropped the connection and the store
// could be neither deleted nor created again.
it('DELETE of a store whose keys are long escaped names: its multis stay under jute.maxbuffer', { timeout: 120000 }, async () => {
  const s = uniq('dellong');
  await admin.createStore(s);
  const N = 3500;
  const key = (i) => `${String(i).padStart(4, '0')}${'é'.repeat(510)}`; // 1,024 bytes, a 3,072-byte name
  for (let i = 0; i < N; i += 100) {
    const muts = [];
    for (let j = i; j < i + 100; j++) muts.push({ id: j + 1, key: key(j), op: 'put', value: j });
    await admin.pushPaced(s, 'c', muts);
  }
  assert.equal((await admin.getStore(s)).json.records, N);
  const d = await admin.deleteStore(s);
  assert.equal(d.status, 204, d.text);
  expectError(await admin.getStore(s), 404, 'store_not_found');
  const r = await admin.putStore(s);
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.records, 0);
  assert.equal((await admin.deleteStore(s)).status, 204);
});

// A DELETE of a big store takes a while; a PUT of the same name on another
// gateway meanwhile finishes that deletion itself and creates the store
// again. The first deleter must then stop: it used to go on from its own
// listing and delete the new store's buckets and records, and at last its
// config. The proxy holds gateway D's write session at the deletion's
// second multi (its first batch of 500 empty buckets, after the read of
// the fence went through), so the PUT lands exactly there: only the check
// inside that multi can tell it now deletes another store's buckets.
it('a DELETE overtaken by a PUT that re-creates the store does not delete the new store', { timeout: 120000 }, async () => {
  const { startProxy } = await import('../lib/proxy.mjs');
  const { eventually } = await import('../lib/http.mjs');
  const proxy = await startProxy(env.zk.connect, { frames: true });
  const D = await startGateway({ zk: proxy.addr, root: env.root, args: [...signer.args, '--session-timeout', '30000'], name: 'slowdel' });
  const d = new Api(D, signer.token('admin'));
  try {
    const s = uniq('overtaken');
    await admin.createStore(s, { conflict: 'lww' }); // empty: D's first bucket batch would succeed
    proxy.holdSkip = 1; // D's first multi ([r, c]: not empty) passes
    proxy.holdTypes = new Set([14]);
    const del = d.deleteStore(s);
    try {
      await eventually(() => proxy.held > 0, { ms: 10000, what: "D's deletion held at its first multi" });
      const r = await admin.putStore(s); // sees the store being deleted: finishes that, creates it anew
      assert.equal(r.status, 201, r.text);
    } finally {
      proxy.release();
    }
    assert.equal((await del).status, 204, 'the store D was deleting is gone');
    // D's held batch named 500 of the old store's buckets, all of which the
    // new store has too, empty: they must all still be there.
    for (const [dir, n] of [['r', 4096], ['c', 256]]) {
      const st = await zkCli(env.zk.connect, 'stat', `${env.root}/stores/${s}/${dir}`);
      assert.match(st.stdout, new RegExp(`numChildren = ${n}\\b`), `the new store's ${dir}/ has its ${n} buckets: ${st.stdout} ${st.stderr}`);
    }
    await admin.pushOk(s, 'c2', [{ id: 1, key: 'fresh', op: 'put', value: 'new' }]);
    const desc = await admin.getStore(s);
    assert.equal(desc.status, 200, `the new store survives D's deletion: ${desc.text}`);
    assert.equal(desc.json.conflict, 'cas', 'the new store, with its own (default) config');
    assert.equal((await admin.getRecord(s, 'fresh')).status, 200, 'its record survives');
    const all = await admin.changesAll(s, { limit: 10 });
    assert.deepEqual(all.changes.map((c) => c.key), ['fresh']);
    await admin.pushOk(s, 'c2', [{ id: 2, key: 'later', op: 'put', value: 'x' }]); // its buckets are all there
    assert.equal((await admin.deleteStore(s)).status, 204);
  } finally {
    proxy.release();
    await D.stop();
    await proxy.close();
  }
});

// A record PUT that read the store just before its deletion: its create
// finds no bucket (a deletion marks the config, removes the buckets, then
// the config). It used to take that for a lost race and try again, 25
// times, then answer 503 "no node"; the store is gone (or being deleted),
// so it is 404. A bucket removed by hand from a store that is not being
// deleted is 503, saying so. Each case holds D's create at a proxy while
// the state is made, then lets it go.
it('a record PUT whose store is deleted under it answers 404, not 503; a bucket removed by hand is 503', { timeout: 120000 }, async () => {
  const { zkConnect } = await import('../lib/zkraw.mjs');
  const { zkIdentity, recordZnode } = await import('../lib/harness.mjs');
  const { startProxy } = await import('../lib/proxy.mjs');
  const { eventually } = await import('../lib/http.mjs');
  const proxy = await startProxy(env.zk.connect, { frames: true });
  const D = await startGateway({ zk: proxy.addr, root: env.root, args: [...signer.args, '--session-timeout', '30000'], name: 'putgone' });
  const d = new Api(D, signer.token('admin'));
  const zk = await zkConnect(env.zk.connect, { auth: zkIdentity().cred });
  try {
    for (const how of ['deleted', 'being deleted', 'bucket removed']) {
      const s = uniq('putgone');
      await admin.createStore(s);
      const held0 = proxy.held;
      proxy.holdTypes = new Set([1, 15]); // create, create2: D's record create
      const put = d.putRecord(s, 'k', { v: 1 });
      try {
        await eventually(() => proxy.held > held0, { ms: 10000, what: "D's record create held" });
        if (how === 'deleted') {
          assert.equal((await admin.deleteStore(s)).status, 204);
        } else {
          const cfgPath = `${env.root}/stores/${s}`;
          if (how === 'being deleted') { // the state a deletion is in while it removes buckets
            const c = await zk.get(cfgPath);
            assert.equal(c.err, 0);
            assert.equal((await zk.set(cfgPath, JSON.stringify({ ...JSON.parse(c.data), deleting: true }))).err, 0);
          }
          const bucket = recordZnode(env.root, s, 'k').path.replace(/\/[^/]*$/, '');
          assert.equal((await zk.delete(bucket)).err, 0, `delete ${bucket}`);
        }
      } finally {
        proxy.release();
      }
      if (how === 'bucket removed') {
        expectError(await put, 503, 'unavailable', { messageMatch: /bucket znode .* is missing/ });
        assert.equal((await admin.getStore(s)).status, 200, 'the store is still there');
      } else {
        expectError(await put, 404, 'store_not_found');
        expectError(await admin.getStore(s), 404, 'store_not_found');
      }
      await admin.deleteStore(s); // (finishes the marked one)
    }
  } finally {
    zk.close();
    proxy.release();
    await D.stop();
    await proxy.close();
  }
});

it('no store is created implicitly: push, record PUT and changes on an unknown store are 404', async () => {
  const s = uniq('ghost');
  expectError(await admin.push(s, 'c', [{ id: 1, key: 'k', op: 'put', value: 1 }]), 404, 'store_not_found');
  expectError(await admin.putRecord(s, 'k', 1), 404, 'store_not_found');
  expectError(await admin.changes(s), 404, 'store_not_found');
  expectError(await admin.getStore(s), 404, 'store_not_found');
});

it('GET /v1/stores lists only the stores the token may read', async () => {
  const s1 = uniq('ls');
  const s2 = uniq('ls');
  const s3 = uniq('ls');
  for (const s of [s1, s2, s3]) await admin.createStore(s);
  const names = async (scope) => {
    const r = await admin.withToken(signer.token(scope)).listStores();
    assert.equal(r.status, 200, `${scope}: ${r.text}`);
    assert.ok(Array.isArray(r.json.stores));
    for (const d of r.json.stores) assert.ok(typeof d.name === 'string' && 'conflict' in d && 'records' in d && 'cursor' in d, `description ${JSON.stringify(d)}`);
    return r.json.stores.map((d) => d.name).sort();
  };
  const all = await names('admin');
  for (const s of [s1, s2, s3, PRE]) assert.ok(all.includes(s), `admin sees ${s}`);
  assert.deepEqual(await names(`${s1}:read`), [s1]);
  assert.deepEqual(await names(`${s1}:write ${s2}:read`), [s1, s2].sort());
  assert.deepEqual(await names('*:read'), all);
  assert.deepEqual(await names('*:write'), all);
  assert.deepEqual(await names('nosuchstore:read'), []);
  expectError(await admin.withToken(undefined).listStores(), 401, 'unauthorized');
});

it('only admin may PUT or DELETE stores', async () => {
  const s = uniq('adm');
  await admin.createStore(s);
  for (const scope of [`${s}:write`, `${s}:read`, '*:write', '*:read']) {
    const t = admin.withToken(signer.token(scope));
    expectError(await t.putStore(s, { conflict: 'lww' }), 403, 'forbidden');
    expectError(await t.putStore(uniq('adm2')), 403, 'forbidden');
    expectError(await t.deleteStore(s), 403, 'forbidden');
  }
  assert.equal((await admin.getStore(s)).json.conflict, 'cas');
  assert.equal((await admin.withToken(signer.token(`${s}:read`)).getStore(s)).status, 200);
});

it('a deleted store gives its memory back: the mirror drops its entries and bucket tables, on every gateway', { timeout: 120000 }, async () => {
  const { getMetrics, eventually } = await import('../lib/http.mjs');
  const other = await startGateway({ zk: env.zk.connect, root: env.root, args: signer.args, name: 'second' });
  const admin2 = new Api(other, signer.token('admin'));
  try {
    const gauges = async (g) => {
      const m = await getMetrics(g);
      return { entries: m.get('zoosync_mirror_entries'), tables: m.get('zoosync_mirror_bucket_tables') };
    };
    const s = uniq('mem');
    await admin.createStore(s);
    const before = [await gauges(gw), await gauges(other)];
    for (let c = 0; c < 3; c++) {
      const muts = Array.from({ length: 1000 }, (_, i) => ({ id: i + 1, key: `r${c}-${i}`, op: 'put', value: { i } }));
      await admin.pushOk(s, `w${c}`, muts);
    }
    await admin.pushOk(s, 'w9', [{ id: 1, key: 'r0-0', op: 'delete' }]); // a tombstone too
    assert.equal((await admin2.changesOk(s, { limit: 10 })).changes.length, 10); // the second gateway loads it
    const during = [await gauges(gw), await gauges(other)];
    for (let g = 0; g < 2; g++) {
      assert.ok(during[g].entries - before[g].entries >= 3000, `gateway ${g}: ${JSON.stringify(during[g])} vs ${JSON.stringify(before[g])}`);
      assert.ok(during[g].tables - before[g].tables > 500, `gateway ${g}: bucket tables made as keys arrive`);
    }
    assert.equal((await admin.deleteStore(s)).status, 204);
    for (const [g, gwx] of [[0, gw], [1, other]]) {
      await eventually(async () => {
        const now = await gauges(gwx);
        return now.entries <= before[g].entries && now.tables <= before[g].tables;
      }, { ms: 20000, what: `gateway ${g} drops the deleted store's entries and tables` });
    }
    // A deleted store is not "loading": both gateways stay ready (a soak caught /readyz stuck at 503).
    const { request } = await import('../lib/http.mjs');
    for (const gwx of [gw, other]) {
      const r = await request(gwx.url, 'GET', '/readyz');
      assert.equal(r.status, 200, `/readyz after the deletion: ${r.status} ${r.text}`);
    }
    // Created again under the same name: a fresh, empty store.
    await admin.createStore(s);
    assert.deepEqual((await admin2.changesOk(s)).changes, []);
  } finally {
    await other.stop();
  }
});
