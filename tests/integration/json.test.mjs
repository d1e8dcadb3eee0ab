// JSON at the edges: what is well-formed (RFC 8259) must be accepted and mean
// what it says (escapes, whitespace, field order); what is not must be
// invalid_json and change nothing. Values round-trip; sizes are measured on
// the compact serialization.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it, uniq } from '../lib/harness.mjs';
import { request, expectError, byKey } from '../lib/http.mjs';
import { gatewayWithStore } from '../lib/fixtures.mjs';

const env = setupEnv();
let gw, a, S;

before(async () => {
  ({ gw, api: a, store: S } = await gatewayWithStore(env, { prefix: 'json' }));
});

const putRaw = (store, key, body) => request(a.url, 'PUT', `/v1/stores/${store}/records/${encodeURIComponent(key)}`, { body, headers: { 'Content-Type': 'application/json' } });
const pushRaw = (store, body) => request(a.url, 'POST', `/v1/stores/${store}/push`, { body, headers: { 'Content-Type': 'application/json' } });

it('malformed JSON values are invalid_json and store nothing', async () => {
  const bad = [
    ' ', '01', '-01', '1.', '.5', '-', '+1', '1e', '1e+', '0x10', 'NaN', 'Infinity', '-Infinity', 'undefined',
    'tru', 'nul', 'True', '[1,]', '[,1]', '[1 2]', '{"a":1,}', '{"a" 1}', '{a:1}', "{'a':1}", '{"a":1', '[1', '"abc', '"a\\x"',
    '"\\u12"', '"\\u12G4"', '"\\"', '"tab\there"', '"nl\nhere"', '"\u0001"', '// c\n1', '/* c */ 1', '1 2', '{"a":1}{"b":2}', '[]]',
    '"\\ud800"', '"\\udc00x"',
  ];
  const failures = [];
  for (const body of bad) {
    const r = await putRaw(S, 'bad', body);
    if (r.status !== 400 || !r.json || r.json.error !== 'invalid_json') failures.push(`${JSON.stringify(body)} -> ${r.status} ${r.text.slice(0, 120)}`);
  }
  assert.deepEqual(failures, []);
  expectError(await a.getRecord(S, 'bad'), 404, 'not_found');
});

it('malformed UTF-8 in a body is invalid_json', async () => {
  const seqs = [[0xff], [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc3], [0xe2, 0x82], [0x80]];
  const failures = [];
  for (const seq of seqs) {
    const body = Buffer.concat([Buffer.from('"a'), Buffer.from(seq), Buffer.from('b"')]);
    const r = await putRaw(S, 'badutf8', body);
    if (r.status !== 400 || r.json?.error !== 'invalid_json') failures.push(`${Buffer.from(seq).toString('hex')} -> ${r.status} ${r.text.slice(0, 100)}`);
    const body2 = Buffer.concat([Buffer.from('"ab'), Buffer.from(seq)]);
    const r2 = await putRaw(S, 'badutf8', body2);
    if (r2.status !== 400 || r2.json?.error !== 'invalid_json') failures.push(`truncated ${Buffer.from(seq).toString('hex')} -> ${r2.status}`);
  }
  assert.deepEqual(failures, []);
  expectError(await a.getRecord(S, 'badutf8'), 404, 'not_found');
});

it('well-formed JSON values of every kind round-trip exactly', async () => {
  const good = [
    ['ws', ' \t\r\n{ "a" :\t[ 1 ,\n2 ] , "b"\r\n: { } }\n ', { a: [1, 2], b: {} }],
    ['nums', '[0,-1.0,1E+2,1e-2,0e0,-1.5E-300,123456789012,1e400]', [0, -1, 100, 0.01, 0, -1.5e-300, 123456789012, Infinity]],
    ['strs', '["", " ", "  two  spaces  ", "a\\\\", "\\\\", "\\"", "x\\"y", "\\/", "\\u0041", "\\u00e9", "\\ud83c\\udf89", "\\b\\f\\n\\r\\t", "\\u001f", "\u007f", "\u2028\u2029"]',
      ['', ' ', '  two  spaces  ', 'a\\', '\\', '"', 'x"y', '/', 'A', 'é', '🎉', '\b\f\n\r\t', '\u001f', '\u007f', '\u2028\u2029']],
    ['tricky', '{"k\\"ey": "v, }]", "sp ace": " , : [ ] { } ", "esc\\\\": "\\\\ ", "": ""}', { 'k"ey': 'v, }]', 'sp ace': ' , : [ ] { } ', 'esc\\': '\\ ', '': '' }],
    ['deep', '['.repeat(500) + ']'.repeat(500), JSON.parse('['.repeat(500) + ']'.repeat(500))],
    ['empty', '{}', {}],
    ['emptyarr', '[]', []],
    ['str', '"just a string"', 'just a string'],
    ['zero', '0', 0],
    ['false', 'false', false],
    ['null', 'null', null],
  ];
  const failures = [];
  for (const [key, body, want] of good) {
    const p = await putRaw(S, `good-${key}`, body);
    if (p.status !== 201) { failures.push(`${key}: PUT -> ${p.status} ${p.text.slice(0, 150)}`); continue; }
    const g = await a.getRecord(S, `good-${key}`);
    if (g.status !== 200) { failures.push(`${key}: GET -> ${g.status}`); continue; }
    try { assert.deepEqual(g.json.value, want); } catch { failures.push(`${key}: got ${JSON.stringify(g.json.value).slice(0, 200)}`); }
    const ch = byKey((await a.changesOk(S)).changes).get(`good-${key}`);
    try { assert.deepEqual(ch.value, want); } catch { failures.push(`${key}: feed has ${JSON.stringify(ch && ch.value).slice(0, 200)}`); }
  }
  assert.deepEqual(failures, []);
});

it('sizes count escapes as the compact serialization writes them', async () => {
  const s = uniq('jsz');
  await a.createStore(s, { maxValueBytes: 100 });
  // "\n" stays escaped: 49 of them are 98 bytes + 2 quotes = 100.
  assert.equal((await a.putRecord(s, 'nl49', '\n'.repeat(49))).status, 201);
  expectError(await a.putRecord(s, 'nl50', '\n'.repeat(50)), 413, 'value_too_large');
  // "\/" and "\u0041" need no escape: 98 of them are 98 bytes + 2 quotes.
  assert.equal((await putRaw(s, 'sl98', '"' + '\\/'.repeat(98) + '"')).status, 201);
  expectError(await putRaw(s, 'sl99', '"' + '\\/'.repeat(99) + '"'), 413, 'value_too_large');
  assert.equal((await putRaw(s, 'A98', '"' + '\\u0041'.repeat(98) + '"')).status, 201);
  assert.equal((await a.getRecord(s, 'sl98')).json.value, '/'.repeat(98));
  assert.equal((await a.getRecord(s, 'A98')).json.value, 'A'.repeat(98));
});

it('push bodies: field order is free, escapes in keys, ops and client ids mean the same', async () => {
  const s = uniq('jpush');
  await a.createStore(s);
  const body = `{"mutations":[
     {"value":{"v":1},"op":"put","key":"k\\u0031","id":1},
     {"key":"caf\\u00e9","id":2,"value":"e","op":"p\\u0075t"},
     {"id":3,"key":"a\\/b","op":"put","value":"slash"},
     {"id":4,"key":"q\\"uote","op":"put","value":"q"},
     {"id":5,"key":"\\ud83c\\udf89","op":"put","value":"party"}
   ], "client":"c\\u002d1"}`;
  const r = await pushRaw(s, body);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.results.map((x) => x.status), ['applied', 'applied', 'applied', 'applied', 'applied']);
  for (const [key, value] of [['k1', { v: 1 }], ['café', 'e'], ['a/b', 'slash'], ['q"uote', 'q'], ['🎉', 'party']]) {
    const g = await a.getRecord(s, key);
    assert.equal(g.status, 200, `${key}: ${g.text}`);
    assert.equal(g.json.key, key);
    assert.deepEqual(g.json.value, value);
  }
  // The escaped client id "c\u002d1" is the client "c-1": its ids are taken.
  const again = await a.pushOk(s, 'c-1', [{ id: 5, key: 'k1', op: 'put', value: 'dup' }]);
  assert.equal(again.results[0].status, 'duplicate');
  assert.equal(again.lastMutationId, 5);
  // A key spelled with escapes is the same key.
  const r2 = await pushRaw(s, '{"client":"c-1","mutations":[{"id":6,"key":"\\u006b1","op":"put","value":2,"base":1}]}');
  assert.equal(r2.status, 200, r2.text);
  assert.equal(r2.json.results[0].status, 'applied');
  assert.equal(r2.json.results[0].version, 2);
  const live = byKey((await a.changesOk(s)).changes);
  assert.equal(live.size, 5, `keys: ${[...live.keys()]}`);
});

it('push: malformed bodies are invalid_json and apply nothing', async () => {
  const s = uniq('jbad');
  await a.createStore(s);
  for (const body of [
    '{"client":"c","mutations":[{"id":1,"key":"k","op":"put","value":01}]}',
    '{"client":"c","mutations":[{"id":1,"key":"k","op":"put","value":[1,]}]}',
    '{"client":"c","mutations":[{"id":1,"key":"k","op":"put","value":"a\tb"}]}',
    '{"client":"c","mutations":[{"id":1,"key":"k","op":"put","value":1}],}',
    '{"client":"c","mutations":[{"id":1,"key":"k","op":"put","value":1}]} []',
    '{"client":"c","mutations":[{"id":1,"key":"k","op":"put","value":NaN}]}',
  ]) {
    expectError(await pushRaw(s, body), 400, 'invalid_json');
  }
  assert.deepEqual((await a.changesOk(s)).changes, []);
  assert.equal((await a.pushOk(s, 'c', [])).lastMutationId, 0);
});

it('duplicate object names are refused with 400 (never silently resolved) and apply nothing', async () => {
  // The contract is silent; docs/PROTOCOL.md says invalid_json. RFC 8259 calls
  // such a text well-formed (names SHOULD be unique), so bad_request is accepted too.
  const s = uniq('jdup');
  await a.createStore(s);
  const refused = (r, what) => {
    assert.equal(r.status, 400, `${what}: ${r.status} ${r.text}`);
    assert.ok(['invalid_json', 'bad_request'].includes(r.json && r.json.error), `${what}: ${r.text}`);
  };
  refused(await pushRaw(s, '{"client":"a","client":"b","mutations":[]}'), 'repeated client');
  refused(await pushRaw(s, '{"client":"a","mutations":[{"id":1,"key":"k","op":"put","value":1}],"mutations":[]}'), 'repeated mutations');
  refused(await pushRaw(s, '{"client":"a","mutations":[{"id":1,"id":2,"key":"k","op":"put","value":1}]}'), 'repeated id');
  refused(await pushRaw(s, '{"client":"a","mutations":[{"id":1,"key":"k","key":"j","op":"put","value":1}]}'), 'repeated key');
  refused(await pushRaw(s, '{"client":"a","mutations":[{"id":1,"key":"k","op":"put","value":{"x":1,"x":2}}]}'), 'repeated name in a value');
  refused(await putRaw(s, 'k', '{"a":1,"a":2}'), 'record value');
  refused(await putRaw(s, 'k', '{"a":{"b":1,"b":1}}'), 'nested record value');
  assert.deepEqual((await a.changesOk(s)).changes, []);
  assert.equal((await a.pushOk(s, 'a', [])).lastMutationId, 0);
  assert.equal((await putRaw(s, 'k', '{"a":{"b":1},"b":{"a":1}}')).status, 201, 'same names at different levels are fine');
});
