// Store schemas (PROTOCOL.md "Schemas: the server validates values",
// "`rejected`"): the schema in the store config (compiled at PUT, shown,
// removed with null, distrusted when read back from ZooKeeper), records PUT
// 400 invalid_value, push rejected/invalid_value remembered for
// exactly-once, a group rejected whole, a schema change seen by a second
// gateway, values written by other ZooKeeper clients bypassing the schema.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it, uniq, zkCli } from '../lib/harness.mjs';
import { expectError } from '../lib/http.mjs';
import { put, del, outcomes, liveValues as live } from '../lib/records.mjs';
import { gatewayPair, freshStore } from '../lib/fixtures.mjs';

const env = setupEnv();
let A, B, a, b;

before(async () => {
  ({ A, B, a, b } = await gatewayPair(env));
});

const TODO = {
  type: 'object',
  properties: {
    title: { type: 'string', minLength: 1, maxLength: 200 },
    done: { type: 'boolean' },
    n: { type: 'number', multipleOf: 0.1, maximum: 1e30 },
  },
  required: ['title', 'done'],
  additionalProperties: false,
};

const newStore = (body) => freshStore(a, { prefix: 'sc', body });

it('schema in the store config: set at PUT, shown (numbers as written) by every gateway and in listings, removed with null', async () => {
  const s = await newStore({ schema: TODO });
  let d = (await a.getStore(s)).json;
  assert.deepEqual(d.schema, TODO);
  // The text is kept as written: 0.1 and a 30-digit integer survive (no double in between).
  const s2 = uniq('sc');
  const put = await a.putStore(s2, undefined, { body: '{ "schema": {"maximum": 123456789012345678901234567890, "multipleOf": 0.1} }',
    headers: { 'Content-Type': 'application/json' } });
  assert.equal(put.status, 201, put.text);
  const raw = (await b.getStore(s2)).text;
  assert.match(raw, /"multipleOf":0\.1[,}]/, raw);
  assert.match(raw, /"maximum":123456789012345678901234567890[,}]/, raw);
  const list = (await b.listStores()).json.stores.find((x) => x.name === s);
  assert.deepEqual(list.schema, TODO);
  // Other fields can change without touching the schema.
  assert.equal((await a.putStore(s, { conflict: 'lww' })).status, 200);
  assert.deepEqual((await a.getStore(s)).json.schema, TODO);
  assert.equal((await a.putStore(s, { schema: null })).status, 200);
  d = (await a.getStore(s)).json;
  assert.ok(!('schema' in d), `schema removed: ${JSON.stringify(d)}`);
  assert.equal(d.conflict, 'lww');
  assert.ok(!('schema' in (await a.getStore(await newStore())).json), 'no schema unless set');
  // A boolean schema is a schema.
  assert.equal((await a.putStore(s, { schema: false })).status, 200);
  assert.equal((await a.getStore(s)).json.schema, false);
});

it('a bad schema is 400 bad_request naming the keyword, and the config is unchanged', async () => {
  const s = await newStore({ schema: TODO });
  const bad = [
    [{ type: 'object', $defs: { a: {} } }, /\$defs/],
    [{ prefixItems: [{ type: 'string' }] }, /prefixItems/],
    [{ properties: { a: { unevaluatedProperties: false } } }, /unevaluatedProperties/],
    [{ $ref: 'http://example.com/s.json' }, /\$ref/],
    [{ type: 'strin' }, /type/],
    [{ minLength: -1 }, /minLength/],
    [5, /schema/],
    ['object', /schema/],
    [{ pattern: '(' }, /pattern/],
    [{ $ref: '#' }, /\$ref/],
  ];
  for (const [schema, re] of bad) {
    const e = expectError(await a.putStore(s, { schema }), 400, 'bad_request', { messageMatch: re });
    assert.match(e.message, /schema/, e.message);
  }
  // Creating a store with a bad schema creates nothing.
  const fresh = uniq('sc');
  expectError(await a.putStore(fresh, { schema: { $defs: {} } }), 400, 'bad_request', { messageMatch: /\$defs/ });
  expectError(await a.getStore(fresh), 404, 'store_not_found');
  assert.deepEqual((await b.getStore(s)).json.schema, TODO, 'unchanged after refused PUTs');
});

it('limits: schema text over 256 KiB, or over 10,000 compiled subschemas, is 400; a large valid one is stored', async () => {
  const s = await newStore();
  const big = { type: 'object', properties: {} };
  for (let i = 0; i < 3000; i++) big.properties[`p${i}`] = { type: 'string', maxLength: 10 + i };
  assert.ok(JSON.stringify(big).length > 100000);
  assert.equal((await a.putStore(s, { schema: big })).status, 200);
  assert.equal(Object.keys((await b.getStore(s)).json.schema.properties).length, 3000);
  const huge = { description: 'x'.repeat(270 * 1024) };
  expectError(await a.putStore(s, { schema: huge }), 400, 'bad_request', { messageMatch: /256 KiB|262144|text|bytes/ });
  const many = { anyOf: [] };
  for (let i = 0; i < 12000; i++) many.anyOf.push({ const: i });
  expectError(await a.putStore(s, { schema: many }), 400, 'bad_request', { messageMatch: /subschemas|nodes|10000|10,000/ });
  assert.equal(Object.keys((await a.getStore(s)).json.schema.properties).length, 3000, 'unchanged');
});

it('a stored schema that does not compile (written by another ZooKeeper client) makes the store 503 until an admin PUT', async () => {
  const s = await newStore({ schema: TODO });
  const path = `${env.root}/stores/${s}`;
  const r = await zkCli(env.zk.connect, 'set', path, '{"conflict":"cas","maxValueBytes":65536,"tombstoneTtlSeconds":604800,"schema":{"$defs":{}}}');
  assert.ok(r.ok, r.stderr + r.stdout);
  for (const api of [a, b]) {
    let res;
    for (let i = 0; i < 50; i++) {
      res = await api.getStore(s);
      if (res.status === 503) break;
      await new Promise((ok) => setTimeout(ok, 100));
    }
    expectError(res, 503, 'unavailable', { messageMatch: /schema/ });
    expectError(await api.push(s, 'c1', [{ id: 1, key: 'k', op: 'put', value: { title: 't', done: true } }]), 503, 'unavailable');
  }
  assert.equal((await a.putStore(s, { schema: TODO })).status, 200);
  assert.deepEqual((await b.getStore(s)).json.schema, TODO);
});

function checkErrors(errors, max = 10) {
  assert.ok(Array.isArray(errors) && errors.length >= 1 && errors.length <= max, JSON.stringify(errors));
  for (const e of errors) {
    assert.equal(typeof e.path, 'string');
    assert.equal(typeof e.keyword, 'string');
    assert.equal(typeof e.message, 'string');
  }
}

it('records PUT: an invalid value is 400 invalid_value with errors (path, keyword, message), nothing written; a valid one is 201', async () => {
  const s = await newStore({ schema: TODO });
  const r = await a.putRecord(s, 'k', { title: '', done: 'no', extra: 1 });
  const e = expectError(r, 400, 'invalid_value');
  checkErrors(e.errors);
  const kw = e.errors.map((x) => `${x.path} ${x.keyword}`).sort();
  assert.deepEqual(kw, ['/done type', '/extra additionalProperties', '/title minLength'], JSON.stringify(e.errors));
  expectError(await a.getRecord(s, 'k'), 404, 'not_found');
  // Errors are capped at 10.
  const many = { type: 'array', items: { type: 'string' } };
  const s2 = await newStore({ schema: many });
  const e2 = expectError(await a.putRecord(s2, 'k', Array.from({ length: 30 }, (_, i) => i)), 400, 'invalid_value');
  assert.equal(e2.errors.length, 10);
  assert.equal(e2.errors[0].path, '/0');
  // Exact numbers: 0.3 is a multiple of 0.1.
  const ok = await a.putRecord(s, 'k', { title: 'x', done: false, n: 0.3 });
  assert.equal(ok.status, 201, ok.text);
  assert.equal((await b.putRecord(s, 'k', { title: 'y', done: true })).status, 200);
  // Deletes are not validated.
  assert.equal((await a.deleteRecord(s, 'k')).status, 204);
});

it('push: an invalid put is rejected/invalid_value with errors; lastMutationId moves on; a retry answers rejected again (no errors); deletes pass', async () => {
  const s = await newStore({ schema: TODO });
  const muts = [put(1, 'a', { title: 'a', done: false }), put(2, 'b', { title: 7, done: false }), put(3, 'c', { title: 'c', done: true }), del(4, 'zz')];
  const r = await a.pushOk(s, 'c1', muts);
  assert.deepEqual(outcomes(r), ['applied', 'rejected:invalid_value', 'applied', 'applied']);
  assert.equal(r.lastMutationId, 4);
  checkErrors(r.results[1].errors);
  assert.equal(r.results[1].errors[0].path, '/title');
  assert.equal(r.results[1].errors[0].keyword, 'type');
  assert.deepEqual([...(await live(a, s))].sort(), [['a', { title: 'a', done: false }], ['c', { title: 'c', done: true }]]);
  for (const api of [a, b]) {
    const again = await api.pushOk(s, 'c1', muts);
    assert.deepEqual(outcomes(again), ['duplicate', 'rejected:invalid_value', 'duplicate', 'duplicate']);
    assert.ok(!('errors' in again.results[1]) || Array.isArray(again.results[1].errors));
  }
});

it('push: a tx group with one invalid member is rejected whole (others tx_aborted), nothing written; a group and a conflict together are rejected', async () => {
  const s = await newStore({ schema: TODO });
  const r = await a.pushOk(s, 'c1', [
    put(1, 'x', { title: 'x', done: true }, { tx: 'g' }),
    put(2, 'y', { title: 'y', done: 'maybe' }, { tx: 'g' }),
    del(3, 'z', { tx: 'g' }),
    put(4, 'w', { title: 'w', done: false }),
  ]);
  assert.deepEqual(outcomes(r), ['rejected:tx_aborted', 'rejected:invalid_value', 'rejected:tx_aborted', 'applied']);
  checkErrors(r.results[1].errors);
  assert.deepEqual([...(await live(b, s))], [['w', { title: 'w', done: false }]]);
  // A group with a conflicting member and an invalid one: rejected.
  const r2 = await a.pushOk(s, 'c2', [
    put(1, 'w', { title: 'w2', done: false }, { tx: 'h', base: 99 }),
    put(2, 'v', { title: '', done: false }, { tx: 'h' }),
  ]);
  assert.deepEqual(outcomes(r2), ['rejected:tx_aborted', 'rejected:invalid_value']);
});

it('a schema change is seen by the second gateway through its config watch: set via A, push via B rejected; null via A, B accepts', async () => {
  const s = await newStore();
  // B has the store loaded (its mirror watches the config).
  assert.equal((await b.pushOk(s, 'c1', [put(1, 'a', { anything: 1 })])).results[0].status, 'applied');
  assert.equal((await a.putStore(s, { schema: TODO })).status, 200);
  let r;
  for (let i = 1; i <= 50; i++) {
    r = await b.pushOk(s, 'c1', [put(1 + i, 'b', { anything: 2 })]);
    if (r.results[0].status === 'rejected') break;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  assert.deepEqual(outcomes(r), ['rejected:invalid_value']);
  assert.equal((await a.putStore(s, { schema: null })).status, 200);
  let id = r.results[0].id;
  for (let i = 0; i < 50; i++) {
    r = await b.pushOk(s, 'c1', [put(++id, 'b', { anything: 3 })]);
    if (r.results[0].status === 'applied') break;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  assert.deepEqual(outcomes(r), ['applied']);
  // Changing a schema does not re-validate stored records.
  assert.equal((await a.putStore(s, { schema: TODO })).status, 200);
  assert.deepEqual((await a.getRecord(s, 'a')).json.value, { anything: 1 });
});

it('a value written by another ZooKeeper client bypasses the schema and shows in the feed', async () => {
  const s = await newStore({ schema: TODO });
  assert.equal((await a.putRecord(s, 'k', { title: 't', done: true })).status, 201);
  const { recordZnode } = await import('../lib/harness.mjs');
  const z = recordZnode(env.root, s, 'k');
  const r = await zkCli(env.zk.connect, 'set', z.path, '{"by":"zkCli"}');
  assert.ok(r.ok, r.stderr + r.stdout);
  let m;
  for (let i = 0; i < 50; i++) {
    m = await live(b, s);
    if (m.get('k')?.by === 'zkCli') break;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  assert.deepEqual(m.get('k'), { by: 'zkCli' });
});

it('a valid but costly schema: validation stops at its step budget and the value is refused (keyword budget), never accepted', async () => {
  // Every element passes, but 40,000 elements x 100 subschemas is past the
  // 2,000,000 steps a value may cost.
  const costly = { type: 'array', items: { allOf: Array.from({ length: 100 }, (_, i) => ({ type: 'object', maxProperties: i + 1 })) } };
  const s = await newStore({ schema: costly, maxValueBytes: 1000000 });
  assert.equal((await a.putRecord(s, 'small', [{}, {}])).status, 201, 'an ordinary value passes');
  const value = Array.from({ length: 40000 }, () => ({}));
  const t0 = Date.now();
  const e = expectError(await a.putRecord(s, 'k', value), 400, 'invalid_value');
  assert.ok(Date.now() - t0 < 10000, `took ${Date.now() - t0} ms`);
  assert.ok(e.errors.some((x) => x.keyword === 'budget'), JSON.stringify(e.errors));
  const r = await a.pushOk(s, 'c1', [put(1, 'k', value)]);
  assert.deepEqual(outcomes(r), ['rejected:invalid_value']);
  assert.equal(r.results[0].errors[0].keyword, 'budget');
});
