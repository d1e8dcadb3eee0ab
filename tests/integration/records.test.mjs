// Plain REST on records: status codes, ETag, If-Match / If-None-Match,
// percent-encoded keys, version continuation after delete.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it, uniq } from '../lib/harness.mjs';
import { request, expectError, CURSOR_RE, byKey } from '../lib/http.mjs';
import { gatewayWithStore } from '../lib/fixtures.mjs';

const env = setupEnv();
let gw, a, S;

before(async () => {
  ({ gw, api: a, store: S } = await gatewayWithStore(env, { prefix: 'rec' }));
});

async function get(key, store = S) {
  const r = await a.getRecord(store, key);
  return r;
}
function assertRecord(r, key, value, version) {
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['content-type'] || '', /^application\/json/i);
  assert.equal(r.json.key, key);
  assert.deepEqual(r.json.value, value);
  assert.equal(r.json.version, version);
  assert.match(r.json.cursor, CURSOR_RE);
  assert.equal(r.headers.etag, `"${version}"`, 'ETag is the quoted version');
}

it('PUT creates (201), replaces (200); GET returns value, version, cursor and ETag', async () => {
  const p1 = await a.putRecord(S, 'doc', { title: 'milk', n: [1, 2, { x: null }] });
  assert.equal(p1.status, 201, p1.text);
  assert.equal(p1.json.key, 'doc');
  assert.equal(p1.json.version, 1);
  assert.match(p1.json.cursor, CURSOR_RE);
  const g1 = await get('doc');
  assertRecord(g1, 'doc', { title: 'milk', n: [1, 2, { x: null }] }, 1);
  assert.equal(g1.json.cursor, p1.json.cursor, 'the record carries the cursor of its change');
  const p2 = await a.putRecord(S, 'doc', 'bread');
  assert.equal(p2.status, 200, p2.text);
  assert.deepEqual({ key: p2.json.key, version: p2.json.version }, { key: 'doc', version: 2 });
  assert.ok(p2.json.cursor > p1.json.cursor);
  assertRecord(await get('doc'), 'doc', 'bread', 2);
});

it('values of every JSON type round-trip', async () => {
  const values = [0, -1.5, 1e21, true, false, null, '', 'text', [], {}, [1, 'a', null, { b: [true] }], { 'é': '日本', nested: { deep: [[[]]] } }];
  for (const [i, v] of values.entries()) {
    const p = await a.putRecord(S, `t${i}`, v);
    assert.equal(p.status, 201, `${JSON.stringify(v)}: ${p.text}`);
    const g = await get(`t${i}`);
    assert.equal(g.status, 200);
    assert.ok('value' in g.json, `value missing for ${JSON.stringify(v)}`);
    assert.deepEqual(g.json.value, v);
  }
});

it('404 not_found for absent and deleted records; DELETE 204 then 404', async () => {
  expectError(await get('nope'), 404, 'not_found');
  expectError(await a.deleteRecord(S, 'nope'), 404, 'not_found');
  assert.equal((await a.putRecord(S, 'gone', 1)).status, 201);
  const d = await a.deleteRecord(S, 'gone');
  assert.equal(d.status, 204, d.text);
  assert.equal(d.text, '', '204 has no body');
  expectError(await get('gone'), 404, 'not_found');
  expectError(await a.deleteRecord(S, 'gone'), 404, 'not_found');
});

it('If-Match: compare-and-set on PUT and DELETE', async () => {
  assert.equal((await a.putRecord(S, 'cas', 'a')).status, 201);
  expectError(await a.putRecord(S, 'cas', 'b', { 'If-Match': '"2"' }), 412, 'precondition_failed');
  expectError(await a.putRecord(S, 'cas', 'b', { 'If-Match': '"0"' }), 412, 'precondition_failed');
  assertRecord(await get('cas'), 'cas', 'a', 1);
  const ok = await a.putRecord(S, 'cas', 'b', { 'If-Match': '"1"' });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.version, 2);
  // The ETag of a GET is usable as If-Match.
  const etag = (await get('cas')).headers.etag;
  expectError(await a.deleteRecord(S, 'cas', { 'If-Match': '"1"' }), 412, 'precondition_failed');
  assertRecord(await get('cas'), 'cas', 'b', 2);
  const d = await a.deleteRecord(S, 'cas', { 'If-Match': etag });
  assert.equal(d.status, 204, d.text);
  expectError(await get('cas'), 404, 'not_found');
  // If-Match on an absent or deleted record fails.
  expectError(await a.putRecord(S, 'cas', 'c', { 'If-Match': '"3"' }), 412, 'precondition_failed');
  expectError(await a.putRecord(S, 'never-there', 'c', { 'If-Match': '"1"' }), 412, 'precondition_failed');
  expectError(await get('never-there'), 404, 'not_found');
  expectError(await get('cas'), 404, 'not_found');
});

// A GET's ETag comes back in If-None-Match when a browser or an HTTP cache
// revalidates: that was 400 ("only * is supported"). It is a conditional
// GET now: 304 with the ETag and no body when one of the listed tags (weak
// or strong, or *) is the record's current version, 200 otherwise. And a
// DELETE with If-None-Match: * ("only if absent") of a live record is 412,
// not a deletion.
it('conditional GET: If-None-Match with the ETag is 304, another is 200; DELETE with If-None-Match: * of a live record is 412', async () => {
  const k = uniq('cond');
  await a.putRecord(S, k, { n: 1 });
  await a.putRecord(S, k, { n: 2 });
  const g = await get(k);
  assert.equal(g.status, 200);
  const etag = g.headers.etag;
  assert.equal(etag, '"2"');
  for (const inm of [etag, `W/${etag}`, `"1", ${etag}`, '*', `"7",W/"2"`]) {
    const r = await a.req('GET', `/v1/stores/${S}/records/${encodeURIComponent(k)}`, { headers: { 'If-None-Match': inm } });
    assert.equal(r.status, 304, `If-None-Match: ${inm}: ${r.status} ${r.text}`);
    assert.equal(r.text, '', 'no body');
    assert.equal(r.headers.etag, etag, 'the ETag');
  }
  for (const inm of ['"1"', '"1", "3"', 'W/"20"', 'garbage', '""']) {
    const r = await a.req('GET', `/v1/stores/${S}/records/${encodeURIComponent(k)}`, { headers: { 'If-None-Match': inm } });
    assert.equal(r.status, 200, `If-None-Match: ${inm}: ${r.status} ${r.text}`);
    assert.deepEqual(r.json.value, { n: 2 });
  }
  // Absent: 404 whatever the header.
  expectError(await a.req('GET', `/v1/stores/${S}/records/${encodeURIComponent(k + 'x')}`, { headers: { 'If-None-Match': '*' } }), 404, 'not_found');
  expectError(await a.deleteRecord(S, k, { 'If-None-Match': '*' }), 412, 'precondition_failed');
  assert.equal((await get(k)).status, 200, 'not deleted');
  assert.equal((await a.deleteRecord(S, k)).status, 204);
});

it('If-None-Match: * creates only', async () => {
  const p = await a.putRecord(S, 'only', 1, { 'If-None-Match': '*' });
  assert.equal(p.status, 201, p.text);
  expectError(await a.putRecord(S, 'only', 2, { 'If-None-Match': '*' }), 412, 'precondition_failed');
  assertRecord(await get('only'), 'only', 1, 1);
  assert.equal((await a.deleteRecord(S, 'only')).status, 204);
  const p2 = await a.putRecord(S, 'only', 3, { 'If-None-Match': '*' });
  assert.equal(p2.status, 201, `create-only on a deleted key: ${p2.text}`);
  assert.equal(p2.json.version, 3, 'version continues from the tombstone');
});

it('versions continue after delete: re-created key is 201 with the next version', async () => {
  const s = uniq('ver');
  await a.createStore(s);
  const c0 = await a.getCursor(s);
  assert.equal((await a.putRecord(s, 'k', 'a')).json.version, 1);
  assert.equal((await a.putRecord(s, 'k', 'b')).json.version, 2);
  const cDel = (await a.getCursor(s));
  assert.equal((await a.deleteRecord(s, 'k')).status, 204);
  const ch = await a.changesOk(s, { since: cDel });
  assert.deepEqual(ch.changes.map((c) => [c.key, c.deleted, c.version]), [['k', true, 3]]);
  const p = await a.putRecord(s, 'k', 'c');
  assert.equal(p.status, 201, 're-creating a deleted key is a creation');
  assert.equal(p.json.version, 4);
  assertRecord(await get('k', s), 'k', 'c', 4);
  const p2 = await a.putRecord(s, 'k', 'd', { 'If-Match': '"4"' });
  assert.equal(p2.json.version, 5);
  const all = await a.changesOk(s, { since: c0 });
  assert.deepEqual(all.changes.map((c) => [c.key, c.version, c.value]), [['k', 5, 'd']]);
});

it('percent-encoded keys: slash, percent, spaces, unicode, reserved characters', async () => {
  const keys = ['a/b', 'a/b/', '/lead', '100%', '%2F', '%', 'with space', '  two  ', 'ünïcødé', '日本語', '🎉 party', 'a?b#c&d=e', 'plus+sign', "quote'\"", '.hidden', '...', 'a/../b', 'tab\there', 'new\nline', '\\back', 'ключ'];
  const c0 = await a.getCursor(S);
  for (const [i, k] of keys.entries()) {
    const p = await a.putRecord(S, k, { i });
    assert.equal(p.status, 201, `PUT ${JSON.stringify(k)}: ${p.text}`);
    assert.equal(p.json.key, k);
  }
  for (const [i, k] of keys.entries()) {
    assertRecord(await get(k), k, { i }, 1);
  }
  // 'a/b' and 'a%2Fb' style confusion: the literal key "%2F" is distinct from "/".
  assert.notEqual((await get('%2F')).json.value.i, (await get('/lead')).json.value.i);
  const ch = byKey((await a.changesAll(S, { since: c0 })).changes);
  for (const [i, k] of keys.entries()) assert.deepEqual(ch.get(k) && ch.get(k).value, { i }, `feed has ${JSON.stringify(k)}`);
  // Lower- and upper-case percent escapes address the same key.
  const r = await a.req('GET', `/v1/stores/${S}/records/%c3%bcn%C3%AFc%c3%b8d%C3%A9`);
  assertRecord(r, 'ünïcødé', { i: keys.indexOf('ünïcødé') }, 1);
  // Delete by encoded key.
  assert.equal((await a.deleteRecord(S, 'a/b')).status, 204);
  expectError(await get('a/b'), 404, 'not_found');
  assertRecord(await get('a/b/'), 'a/b/', { i: 1 }, 1);
});

it('keys written by push are addressable by REST and vice versa; "." and ".." travel through push and feed', async () => {
  const s = uniq('mix');
  await a.createStore(s);
  const r = await a.pushOk(s, 'c1', [
    { id: 1, key: 'x/y z%', op: 'put', value: 1 },
    { id: 2, key: '.', op: 'put', value: 'dot' },
    { id: 3, key: '..', op: 'put', value: 'dotdot' },
    { id: 4, key: 'é'.repeat(512), op: 'put', value: 'long' },
  ]);
  assert.ok(r.results.every((x) => x.status === 'applied'), JSON.stringify(r));
  assertRecord(await get('x/y z%', s), 'x/y z%', 1, 1);
  assertRecord(await get('é'.repeat(512), s), 'é'.repeat(512), 'long', 1);
  const ch = byKey((await a.changesOk(s)).changes);
  assert.equal(ch.get('.').value, 'dot');
  assert.equal(ch.get('..').value, 'dotdot');
  const p = await a.putRecord(s, 'rest/key', 2);
  assert.equal(p.status, 201);
  const r2 = await a.pushOk(s, 'c1', [{ id: 5, key: 'rest/key', op: 'put', value: 3, base: 1 }]);
  assert.equal(r2.results[0].status, 'applied');
  assert.equal(r2.results[0].version, 2);
  assertRecord(await get('rest/key', s), 'rest/key', 3, 2);
});

it('record PUT with a non-compact body stores the value; sizes and 413 per store', async () => {
  const s = uniq('sz');
  await a.createStore(s, { maxValueBytes: 50 });
  const r = await request(a.url, 'PUT', `/v1/stores/${s}/records/k`, { body: '{\n  "a" : [ 1 , 2 ]\n}\n', headers: { 'Content-Type': 'application/json' } });
  assert.equal(r.status, 201, r.text);
  assertRecord(await get('k', s), 'k', { a: [1, 2] }, 1);
  expectError(await a.putRecord(s, 'k', 'x'.repeat(49)), 413, 'value_too_large');
  assertRecord(await get('k', s), 'k', { a: [1, 2] }, 1);
  assert.equal((await a.putRecord(s, 'k', 'x'.repeat(48))).status, 200);
});

it('records of an unknown store: 404 store_not_found', async () => {
  const s = uniq('none');
  expectError(await a.getRecord(s, 'k'), 404, 'store_not_found');
  expectError(await a.putRecord(s, 'k', 1), 404, 'store_not_found');
  expectError(await a.deleteRecord(s, 'k'), 404, 'store_not_found');
  expectError(await a.getStore(s), 404, 'store_not_found');
});

it('the store description counts live records', async () => {
  const s = uniq('cnt');
  await a.createStore(s);
  for (const k of ['a', 'b', 'c']) assert.equal((await a.putRecord(s, k, 1)).status, 201);
  assert.equal((await a.deleteRecord(s, 'b')).status, 204);
  const d = await a.getStore(s);
  assert.equal(d.json.records, 2);
});

it('any JSON value: escapes, U+0000 inside strings, emoji, nesting, numbers', async () => {
  const cases = [
    ['esc', '"quote \\" backslash \\\\ slash \\/ \\b\\f\\n\\r\\t \\u2028 \\u00e9 \\ud83c\\udf89"', 'quote " backslash \\ slash / \b\f\n\r\t \u2028 é 🎉'],
    ['nul', '{"s":"a\\u0000b"}', { s: 'a\u0000b' }],
    ['nest', '['.repeat(64) + '1' + ']'.repeat(64), JSON.parse('['.repeat(64) + '1' + ']'.repeat(64))],
    ['nums', '[0, 0.1, -1.5e-7, 1.7976931348623157e308, 9007199254740993, -9223372036854775808, 1E3]', [0, 0.1, -1.5e-7, 1.7976931348623157e308, 9007199254740993, -9223372036854775808, 1000]],
    ['utf8', '"\u65e5\u672c\ud83c\udf89"', '日本🎉'],
  ];
  const failures = [];
  for (const [key, body, want] of cases) {
    const p = await request(a.url, 'PUT', `/v1/stores/${S}/records/any-${key}`, { body, headers: { 'Content-Type': 'application/json' } });
    if (p.status !== 201) { failures.push(`${key}: PUT ${body.slice(0, 60)} -> ${p.status} ${p.text}`); continue; }
    const g = await get(`any-${key}`);
    try { assert.deepEqual(g.json.value, want); } catch { failures.push(`${key}: stored ${JSON.stringify(g.json.value)}, sent ${body.slice(0, 60)}`); }
  }
  assert.deepEqual(failures, []);
});

it('an integer beyond 64 bits is well-formed JSON: stored, not invalid_json', async () => {
  const p = await request(a.url, 'PUT', `/v1/stores/${S}/records/bigint`, { body: '{"id": 12345678901234567890}', headers: { 'Content-Type': 'application/json' } });
  assert.equal(p.status, 201, `PUT {"id": 12345678901234567890}: ${p.status} ${p.text}`);
  const g = await get('bigint');
  assert.equal(g.json.value.id, 12345678901234567890);
});
