// Store schemas (PROTOCOL.md "Schemas: the server validates values",
// "`rejected`"): the schema in the store config (compiled at PUT, shown,
// removed with null, distrusted when read back from ZooKeeper), records PUT
// 400 invalid_value, push rejected/invalid_value remembered for
// exactly-once, a group rejected whole, a schema change seen by a second
// gateway, values written by other ZooKeeper clients bypassing the schema.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it, startGateway, uniq, zkCli } from '../lib/harness.mjs';
import { Api, expectError } from '../lib/http.mjs';

const env = setupEnv();
let A, B, a, b;

before(async () => {
  await env.ready();
  A = await startGateway({ zk: env.zk.connect, root: env.root, name: 'A' });
  B = await startGateway({ zk: env.zk.connect, root: env.root, name: 'B' });
  a = new Api(A);
  b = new Api(B);
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

async function newStore(body) {
  const name = uniq('sc');
  await a.createStore(name, body);
  return name;
}

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
