// docs/openapi.yaml: linted with Redocly CLI (its recommended rules; any
// error fails), then used to check real responses of real gateways. Every
// route is exercised, on its happy path and its main errors, and each
// response must have a status the operation describes, the required
// headers (ETag, Retry-After, WWW-Authenticate, Allow, Cache-Control) and
// a body valid against the described schema; a mismatch fails with the
// path and the problem (tests/lib/openapi.mjs).
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { setupEnv, it, startGateway, uniq, zkCli, REPO } from '../lib/harness.mjs';
import { request, enc, eventually } from '../lib/http.mjs';
import { makeSigner, claims, now } from '../lib/jwt.mjs';
import { openEvents, closeAllEvents } from '../lib/sse.mjs';
import { rawExchange } from '../lib/raw.mjs';
import { loadOpenApi, OPENAPI_FILE } from '../lib/openapi.mjs';

const env = setupEnv();
const oa = loadOpenApi();
let signer, gw, noauth, rated, admin;

const S = uniq('oa');          // the main store: cas, records, pushes
const SMALL = uniq('small');   // maxValueBytes 100
const SCH = uniq('schema');    // a schema and quotas
const GC = uniq('gc');         // tombstoneTtlSeconds 1: a horizon to pass
const NOSUCH = uniq('nosuch');

/**
 * Sends a request and checks the response against the description.
 * token: a JWT, or null for none (default: the admin token).
 * expect: the status the test means to produce (checked after the description).
 */
async function call(method, p, { token = admin, json, body, headers, expect, base = gw.url, timeout } = {}) {
  const res = await request(base, method, p, { token: token || undefined, json, body, headers, timeout });
  oa.assertResponse(method, p, res);
  if (expect !== undefined) assert.equal(res.status, expect, `${method} ${p}: expected ${expect}, got ${res.status} ${res.text.slice(0, 300)}`);
  if (json !== undefined && res.status >= 200 && res.status < 300) oa.assertRequestBody(method, p, json);
  return res;
}
const err = async (method, p, status, code, opts = {}) => {
  const r = await call(method, p, { ...opts, expect: status });
  assert.equal(r.json.error, code, `${method} ${p}: ${r.text}`);
  return r;
};

before(async () => {
  await env.ready();
  signer = makeSigner('HS256', env.tmp);
  admin = signer.token('admin');
  // --max-tx-bytes 100000: a tx group of 3 values of 40 KB passes it;
  // --max-body 300000: a body of 400 KB passes that. --gc-interval 1: the
  // horizon moves within seconds for a store with tombstoneTtlSeconds 1.
  gw = await startGateway({
    zk: env.zk.connect, root: env.root, name: 'main',
    args: [...signer.args, '--max-tx-bytes', '100000', '--max-body', '300000', '--gc-interval', '1'],
  });
  // Authentication off (loopback only): the Host check (421) and a cap of
  // one event stream per address (429 with Retry-After: 5).
  noauth = await startGateway({ zk: env.zk.connect, root: env.root, name: 'noauth', args: ['--max-streams-per-ip', '1'] });
  // --rate-limit 1 (burst 2): 429 too_many_requests with Retry-After.
  rated = await startGateway({ zk: env.zk.connect, root: env.root, name: 'rated', args: [...signer.args, '--rate-limit', '1'] });
});
after(() => closeAllEvents());

it('docs/openapi.yaml passes `redocly lint` (recommended rules) without errors', { timeout: 120000 }, async () => {
  const bin = path.join(REPO, 'node_modules', '.bin', 'redocly');
  const r = await new Promise((resolve) => {
    execFile(bin, ['lint', OPENAPI_FILE, '--format', 'stylish'], {
      cwd: REPO, timeout: 110000,
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
    }, (e, stdout, stderr) => resolve({ code: e ? (e.code ?? 1) : 0, out: `${stdout}\n${stderr}` }));
  });
  assert.equal(r.code, 0, `redocly lint docs/openapi.yaml failed:\n${r.out}`);
});

it('the description lists every route the gateway serves', () => {
  const ops = oa.operations();
  for (const want of [
    'GET /v1/stores', 'GET /v1/stores/{store}', 'PUT /v1/stores/{store}', 'DELETE /v1/stores/{store}',
    'GET /v1/stores/{store}/records/{key}', 'PUT /v1/stores/{store}/records/{key}', 'DELETE /v1/stores/{store}/records/{key}',
    'POST /v1/stores/{store}/push', 'GET /v1/stores/{store}/changes', 'GET /v1/stores/{store}/events',
    'GET /healthz', 'GET /readyz', 'GET /metrics', 'GET /v1/openapi.json',
  ]) assert.ok(ops.includes(want), `docs/openapi.yaml does not describe ${want}`);
});

it('operations: /healthz, /readyz, /metrics (GET and HEAD), 405 with Allow', async () => {
  for (const p of ['/healthz', '/readyz', '/metrics']) {
    await call('GET', p, { token: null, expect: 200 });
    await call('HEAD', p, { token: null, expect: 200 });
    await call('POST', p, { token: null, expect: 405 });
  }
});

it('GET /v1/openapi.json: this description as JSON, without a token; docs/openapi.json is docs/openapi.yaml', async () => {
  const r = await call('GET', '/v1/openapi.json', { token: null, expect: 200 });
  assert.deepEqual(r.json, oa.doc, 'the served description is docs/openapi.yaml');
  await call('HEAD', '/v1/openapi.json', { token: null, expect: 200 });
  await call('POST', '/v1/openapi.json', { token: null, expect: 405 });
  await call('GET', '/v1/openapi.json', { token: 'not.a.token', expect: 200 });   // a bad token does not matter here
  const check = await new Promise((resolve) => {
    execFile(process.execPath, [path.join(REPO, 'scripts', 'openapi-json.mjs'), '--check'], { cwd: REPO },
      (e, stdout, stderr) => resolve({ code: e ? (e.code ?? 1) : 0, out: stdout + stderr }));
  });
  assert.equal(check.code, 0, `docs/openapi.json is stale: ${check.out}`);
});

it('stores: create, update, describe, list, delete and their errors', async () => {
  await err('GET', '/v1/stores', 401, 'unauthorized', { token: null });
  await err('GET', '/v1/stores', 401, 'unauthorized', { token: 'not.a.jwt' });
  await call('PUT', `/v1/stores/${S}`, { expect: 201 });
  await call('PUT', `/v1/stores/${S}`, { json: { conflict: 'cas', tombstoneTtlSeconds: 3600 }, expect: 200 });
  await call('PUT', `/v1/stores/${SMALL}`, { json: { maxValueBytes: 100 }, expect: 201 });
  await call('PUT', `/v1/stores/${SCH}`, {
    json: {
      conflict: 'lww', maxValueBytes: 1000, maxRecords: 3, maxBytes: 100000,
      schema: { type: 'object', required: ['title'], properties: { title: { type: 'string', maxLength: 20 } } },
    },
    expect: 201,
  });
  await call('PUT', `/v1/stores/${GC}`, { json: { tombstoneTtlSeconds: 1 }, expect: 201 });
  const d = await call('GET', `/v1/stores/${SCH}`, { expect: 200 });
  assert.equal(d.json.maxRecords, 3);
  assert.equal(typeof d.json.schema, 'object');
  const l = await call('GET', '/v1/stores', { expect: 200 });
  assert.ok(l.json.stores.some((s) => s.name === S));
  // A token without scopes gets an empty list.
  const none = await call('GET', '/v1/stores', { token: signer.token(undefined), expect: 200 });
  assert.deepEqual(none.json.stores, []);

  const tmp = uniq('tmp');
  await call('PUT', `/v1/stores/${tmp}`, { json: { maxRecords: 5, schema: true }, expect: 201 });
  await call('PUT', `/v1/stores/${tmp}`, { json: { maxRecords: null, schema: null }, expect: 200 });
  await call('DELETE', `/v1/stores/${tmp}`, { expect: 204 });

  await err('GET', `/v1/stores/${NOSUCH}`, 404, 'store_not_found');
  await err('DELETE', `/v1/stores/${NOSUCH}`, 404, 'store_not_found');
  await err('PUT', `/v1/stores/${S}`, 403, 'forbidden', { token: signer.token(`${S}:write`), json: {} });
  await err('GET', `/v1/stores/${S}`, 403, 'forbidden', { token: signer.token('other:read') });
  await err('PUT', '/v1/stores/bad.name', 400, 'invalid_store');
  await err('GET', `/v1/stores/${'x'.repeat(65)}`, 400, 'invalid_store');
  await err('PUT', `/v1/stores/${S}`, 400, 'bad_request', { json: { bogus: 1 } });
  await err('PUT', `/v1/stores/${S}`, 400, 'bad_request', { json: { maxValueBytes: 2000000 } });
  await err('PUT', `/v1/stores/${S}`, 400, 'bad_request', { json: { schema: { $defs: {} } } });
  await err('PUT', `/v1/stores/${S}`, 400, 'invalid_json', { body: '{"conflict":', headers: { 'Content-Type': 'application/json' } });
  await err('PUT', `/v1/stores/${S}`, 415, 'unsupported_media_type', { body: 'conflict=cas', headers: { 'Content-Type': 'text/plain' } });
  await err('PATCH', `/v1/stores/${S}`, 405, 'method_not_allowed');
  await err('POST', '/v1/stores', 405, 'method_not_allowed');
  await err('GET', '/v1/nope', 404, 'not_found');
});

it('records: GET, PUT, DELETE with ETag, If-Match, If-None-Match and their errors', async () => {
  const k = `/v1/stores/${S}/records/${enc('todo:1')}`;
  const c = await call('PUT', k, { json: { title: 'milk' }, expect: 201 });
  assert.equal(c.headers.etag, '"1"');
  await call('PUT', k, { json: { title: 'eggs' }, headers: { 'If-Match': '"1"' }, expect: 200 });
  await err('PUT', k, 412, 'precondition_failed', { json: 1, headers: { 'If-Match': '"7"' } });
  await err('PUT', k, 412, 'precondition_failed', { json: 1, headers: { 'If-None-Match': '*' } });
  await err('PUT', k, 400, 'bad_request', { json: 1, headers: { 'If-None-Match': '"2"' } });
  await err('DELETE', k, 400, 'bad_request', { headers: { 'If-None-Match': '"2"' } });
  await call('GET', k, { headers: { 'If-None-Match': 'x' }, expect: 200 }); // names no version
  const nm = await call('GET', k, { headers: { 'If-None-Match': 'W/"1", "2"' }, expect: 304 }); // a revalidation
  assert.equal(nm.headers.etag, '"2"');
  const g = await call('GET', k, { expect: 200 });
  assert.deepEqual(g.json.value, { title: 'eggs' });
  await call('PUT', `/v1/stores/${S}/records/a/b%20c`, { json: null, headers: { 'If-None-Match': '*' }, expect: 201 });
  await call('GET', `/v1/stores/${S}/records/a/b%20c`, { token: signer.token(`${S}:read`), expect: 200 });
  await err('DELETE', k, 412, 'precondition_failed', { headers: { 'If-Match': '"1"' } });
  await call('DELETE', k, { headers: { 'If-Match': '"2"' }, expect: 204 });
  await err('DELETE', k, 404, 'not_found');
  await err('GET', k, 404, 'not_found');
  await call('PUT', k, { json: [1, 2], expect: 201 });       // over its tombstone: a creation
  await err('GET', `/v1/stores/${NOSUCH}/records/k`, 404, 'store_not_found');
  await err('PUT', `/v1/stores/${NOSUCH}/records/k`, 404, 'store_not_found', { json: 1 });
  await err('GET', `/v1/stores/${S}/records/%zz`, 400, 'invalid_key');
  await err('PUT', `/v1/stores/${S}/records/${'k'.repeat(1025)}`, 400, 'invalid_key', { json: 1 });
  await err('PUT', '/v1/stores/bad.name/records/k', 400, 'invalid_store', { json: 1 });
  await err('PUT', k, 403, 'forbidden', { token: signer.token(`${S}:read`), json: 1 });
  await err('GET', k, 401, 'unauthorized', { token: null });
  await err('PUT', k, 415, 'unsupported_media_type', { body: '1', headers: { 'Content-Type': 'text/plain' } });
  await err('PUT', k, 400, 'invalid_json', { body: '{"a":1,"a":2}', headers: { 'Content-Type': 'application/json' } });
  await err('PUT', `/v1/stores/${SMALL}/records/big`, 413, 'value_too_large', { json: 'x'.repeat(200) });
  await err('PUT', k, 413, 'body_too_large', { json: 'x'.repeat(400000) });
  await err('POST', k, 405, 'method_not_allowed', { json: 1 });
  // Schema (400 invalid_value with errors) and quotas (413 quota_exceeded).
  const iv = await err('PUT', `/v1/stores/${SCH}/records/bad`, 400, 'invalid_value', { json: { title: 7 } });
  assert.ok(iv.json.errors.length >= 1);
  for (const key of ['q1', 'q2', 'q3']) await call('PUT', `/v1/stores/${SCH}/records/${key}`, { json: { title: key }, expect: 201 });
  const q = await err('PUT', `/v1/stores/${SCH}/records/q4`, 413, 'quota_exceeded', { json: { title: 'q4' } });
  assert.match(q.json.message, /maxRecords \(3\)/);
});

it('push: applied, conflict, duplicate, rejected, and the request errors', async () => {
  const p = `/v1/stores/${S}/push`;
  const body = {
    client: 'oa-c1',
    mutations: [
      { id: 1, key: 'p:1', op: 'put', value: { n: 1 }, base: 0 },
      { id: 2, key: 'p:never', op: 'delete' },                       // applied, nothing changed
      { id: 3, key: 'p:1', op: 'put', value: { n: 2 }, base: 9 },    // conflict
      { id: 4, key: 'p:2', op: 'put', value: 2, tx: 't1' },
      { id: 5, key: 'p:1', op: 'delete', base: 5, tx: 't1' },        // conflict: the group aborts
    ],
  };
  const r = await call('POST', p, { json: body, expect: 200 });
  assert.deepEqual(r.json.results.map((x) => x.status), ['applied', 'applied', 'conflict', 'conflict', 'conflict']);
  assert.equal(r.json.results[3].reason, 'tx_aborted');
  const again = await call('POST', p, { json: body, expect: 200 });
  assert.equal(again.json.results[0].status, 'duplicate');
  const empty = await call('POST', p, { json: { client: 'oa-new', mutations: [] }, expect: 200 });
  assert.equal(empty.json.lastMutationId, 0);
  // rejected: invalid_value (with errors) and quota_exceeded (SCH holds its maxRecords).
  const rj = await call('POST', `/v1/stores/${SCH}/push`, {
    json: { client: 'oa-c2', mutations: [{ id: 1, key: 'q1', op: 'put', value: { title: 1 } }, { id: 2, key: 'new', op: 'put', value: { title: 'n' } }] },
    expect: 200,
  });
  assert.deepEqual(rj.json.results.map((x) => [x.status, x.reason]), [['rejected', 'invalid_value'], ['rejected', 'quota_exceeded']]);
  assert.ok(rj.json.results[0].errors.length >= 1);

  const raw = (b) => ({ body: b, headers: { 'Content-Type': 'application/json' } });
  await err('POST', p, 400, 'invalid_json', raw('{"client":"c","mutations":['));
  await err('POST', p, 400, 'bad_request', { json: { client: 'c', mutations: [], extra: 1 } });
  await err('POST', p, 400, 'bad_request', { json: { client: 'bad client', mutations: [] } });
  await err('POST', p, 400, 'bad_request', { json: { client: 'c', mutations: [{ id: 2, key: 'a', op: 'delete' }, { id: 1, key: 'b', op: 'delete' }] } });
  await err('POST', p, 400, 'invalid_key', { json: { client: 'c', mutations: [{ id: 1, key: '', op: 'delete' }] } });
  await err('POST', p, 415, 'unsupported_media_type', { body: '{}', headers: { 'Content-Type': 'text/plain' } });
  await err('POST', p, 403, 'forbidden', { token: signer.token(`${S}:read`), json: { client: 'c', mutations: [] } });
  await err('POST', p, 401, 'unauthorized', { token: null, json: { client: 'c', mutations: [] } });
  await err('POST', `/v1/stores/${NOSUCH}/push`, 404, 'store_not_found', { json: { client: 'c', mutations: [] } });
  await err('POST', `/v1/stores/${SMALL}/push`, 413, 'value_too_large', { json: { client: 'c', mutations: [{ id: 1, key: 'k', op: 'put', value: 'x'.repeat(200) }] } });
  const big = 'y'.repeat(40000);
  await err('POST', p, 413, 'tx_too_large', {
    json: { client: 'c', mutations: [1, 2, 3].map((id) => ({ id, key: `big${id}`, op: 'put', value: big, tx: 'g' })) },
  });
  await err('POST', p, 413, 'body_too_large', { json: { client: 'c', mutations: [{ id: 1, key: 'k', op: 'put', value: 'z'.repeat(400000) }] } });
  await err('GET', p, 405, 'method_not_allowed');
});

it('changes: pages, since, limit, and their errors (410 cursor_expired past the horizon)', async () => {
  const c = `/v1/stores/${S}/changes`;
  const all = await call('GET', c, { expect: 200 });
  assert.ok(all.json.changes.length >= 3);
  const page = await call('GET', `${c}?limit=1`, { expect: 200 });
  assert.equal(page.json.more, true);
  await call('GET', `${c}?since=${page.json.cursor}&limit=10000`, { expect: 200 });
  // A deletion in the feed (ChangeDeleted).
  const before = (await call('GET', `/v1/stores/${S}`, { expect: 200 })).json.cursor;
  await call('DELETE', `/v1/stores/${S}/records/${enc('todo:1')}`, { expect: 204 });
  const del = await call('GET', `${c}?since=${before}`, { expect: 200 });
  assert.ok(del.json.changes.some((x) => x.deleted === true));
  await call('GET', c, { token: signer.token('*:read'), expect: 200 });

  await err('GET', `${c}?since=xyz`, 400, 'invalid_cursor');
  await err('GET', `${c}?since=${'f'.repeat(40)}`, 400, 'invalid_cursor');
  await err('GET', `${c}?limit=0`, 400, 'bad_request');
  await err('GET', `${c}?limit=10001`, 400, 'bad_request');
  await err('GET', `${c}?since=${before}&since=${before}`, 400, 'bad_request');
  await err('GET', `/v1/stores/${NOSUCH}/changes`, 404, 'store_not_found');
  await err('GET', c, 403, 'forbidden', { token: signer.token('other:write') });
  await err('GET', c, 401, 'unauthorized', { token: null });
  await err('POST', c, 405, 'method_not_allowed', { json: {} });

  // 410: a deletion collected (tombstoneTtlSeconds 1, --gc-interval 1).
  const g = `/v1/stores/${GC}`;
  const old = (await call('GET', g, { expect: 200 })).json.cursor;
  await call('PUT', `${g}/records/gone`, { json: 1, expect: 201 });
  await call('DELETE', `${g}/records/gone`, { expect: 204 });
  await eventually(async () => (await request(gw.url, 'GET', `${g}/changes?since=${old}`, { token: admin })).status === 410,
    { ms: 20000, every: 500, what: 'the horizon passing the old cursor' });
  await err('GET', `${g}/changes?since=${old}`, 410, 'cursor_expired');
  // The stream form of the same: a 200 stream with one resync event, then the end.
  const es = openEvents(gw.url, GC, { since: old, token: admin });
  await es.opened();
  await es.closed(10000);
  const last = es.events[es.events.length - 1];
  assert.equal(last.event, 'resync', es.describe());
  oa.assertSchema('StreamEndData', last.data, 'the resync event data');
  assert.equal(last.data.error, 'cursor_expired');
});

/** Checks an open stream's response head against the description, and every event's data. */
function checkStream(es, p) {
  oa.assertResponse('GET', p, { status: es.status, headers: es.headers, text: '' });
  for (const ev of es.events) {
    if (ev.event === 'change') {
      oa.assertSchema('ChangeEventData', ev.data, `change event ${ev.id}`);
      assert.equal(ev.id, ev.data.cursor, 'a change event id is the cursor of its data');
    } else {
      assert.ok(['resync', 'reauth'].includes(ev.event), `an event the description does not list: ${ev.event}`);
      oa.assertSchema('StreamEndData', ev.data, `${ev.event} event`);
    }
  }
}

it('events: the stream (header or access_token), its events, reauth at exp, and the errors', async () => {
  const p = `/v1/stores/${S}/events`;
  const es = openEvents(gw.url, S, { accessToken: signer.token(`${S}:read`) });
  await es.opened();
  assert.match(es.headers['content-type'], /^text\/event-stream/);
  await es.waitFor((s) => s.changes.length >= 2, { ms: 5000, what: 'the backlog' });
  await call('PUT', `/v1/stores/${S}/records/live`, { json: { live: true }, expect: 201 });
  await es.waitFor((s) => s.changes.some((x) => x.key === 'live'), { ms: 5000, what: 'a live change' });
  assert.equal(es.comments[0]?.text, 'zoosync events');
  checkStream(es, p);
  es.close();

  // Last-Event-ID takes precedence; reauth when the token expires.
  const cur = (await call('GET', `/v1/stores/${S}`, { expect: 200 })).json.cursor;
  const short = signer.sign(claims(`${S}:read`, { exp: now() + 2 }));
  const es2 = openEvents(gw.url, S, { token: short, lastEventId: cur, since: 'ignored' });
  await es2.opened();
  await es2.closed(8000);
  checkStream(es2, p);
  assert.equal(es2.events[es2.events.length - 1]?.event, 'reauth', es2.describe());

  const errs = [
    [`${p}?since=xyz`, 400, 'invalid_cursor', {}],
    [p, 400, 'invalid_cursor', { headers: { 'Last-Event-ID': 'nope' } }],
    [`/v1/stores/${NOSUCH}/events`, 404, 'store_not_found', {}],
    ['/v1/stores/bad.name/events', 400, 'invalid_store', {}],
    [p, 403, 'forbidden', { token: signer.token('other:read') }],
    [p, 401, 'unauthorized', { token: null }],
    [`${p}?access_token=bad`, 401, 'unauthorized', { token: null }],
  ];
  for (const [q, status, code, opts] of errs) await err('GET', q, status, code, { ...opts, headers: { Accept: 'text/event-stream', ...(opts.headers || {}) } });
  await err('DELETE', p, 405, 'method_not_allowed');
});

it('429 too_many_requests with Retry-After: --rate-limit, and the stream cap per address', async () => {
  let limited = null;
  for (let i = 0; i < 6 && !limited; i++) {
    const r = await call('GET', '/v1/stores', { base: rated.url });
    if (r.status === 429) limited = r;
  }
  assert.ok(limited, 'six requests at once never passed --rate-limit 1');
  assert.equal(limited.json.error, 'too_many_requests');

  const st = uniq('cap');
  await call('PUT', `/v1/stores/${st}`, { base: noauth.url, token: null, expect: 201 });
  const es = openEvents(noauth.url, st, {});
  await es.opened();
  const r = await err('GET', `/v1/stores/${st}/events`, 429, 'too_many_requests', { base: noauth.url, token: null });
  assert.equal(r.headers['retry-after'], '5');
  checkStream(es, `/v1/stores/${st}/events`);
  es.close();
});

it('framing and host errors: 400, 414, 421, 431, 501 (every route answers them as described)', async () => {
  const many = (n, f) => Object.fromEntries(Array.from({ length: n }, (_, i) => f(i)));
  await err('GET', `/v1/stores?${Array.from({ length: 101 }, (_, i) => `q${i}=1`).join('&')}`, 414, 'uri_too_long');
  await err('GET', `/v1/stores/${S}`, 431, 'headers_too_large', { headers: many(101, (i) => [`X-H${i}`, '1']) });
  await err('GET', '/healthz', 421, 'misdirected_request', { base: noauth.url, token: null, headers: { Host: `evil.example:${noauth.port}` } });
  await err('GET', `/v1/stores/${S}`, 421, 'misdirected_request', { base: noauth.url, token: null, headers: { Host: 'evil.example' } });
  // What node:http will not send: a raw request, its answer checked the same way.
  const rawCheck = async (method, p, head, status, code) => {
    const r = await rawExchange(gw.port, `${method} ${p} HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nAuthorization: Bearer ${admin}\r\n${head}\r\n`);
    const text = r.body.toString('utf8');
    let json = null;
    try { json = JSON.parse(text); } catch { /* checked below */ }
    oa.assertResponse(method, p, { status: r.status, headers: r.headers, text, json });
    assert.equal(r.status, status, r.text.slice(0, 300));
    assert.equal(json?.error, code, text);
  };
  await rawCheck('PUT', `/v1/stores/${S}/records/k`, 'Content-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n', 501, 'not_implemented');
  await rawCheck('GET', `/v1/stores/${S}/records/k`, 'If-Match: "1"\r\nIf-Match: "1"\r\n', 400, 'bad_request');
  await rawCheck('DELETE', `/v1/stores/${NOSUCH}`, 'Content-Length: 1\r\nTransfer-Encoding: chunked\r\n', 400, 'bad_request');
});

it('503 unavailable with Retry-After: a store whose configuration in ZooKeeper is invalid', { timeout: 90000 }, async () => {
  const bad = uniq('broken');
  await call('PUT', `/v1/stores/${bad}`, { expect: 201 });
  const r = await zkCli(env.zk.connect, 'set', `${env.root}/stores/${bad}`, '{"conflict":"maybe"}');
  assert.ok(r.ok, `zkCli set: ${r.stderr}`);
  await eventually(async () => (await request(gw.url, 'GET', `/v1/stores/${bad}`, { token: admin })).status === 503,
    { ms: 10000, what: 'the invalid config seen' });
  await err('GET', `/v1/stores/${bad}`, 503, 'unavailable');
  await err('GET', `/v1/stores/${bad}/changes`, 503, 'unavailable');
  await call('PUT', `/v1/stores/${bad}`, { json: {}, expect: 200 });   // an admin PUT repairs it
});

it('coverage: every operation was checked on a 2xx and an error', () => {
  const missing = [];
  for (const op of oa.operations()) {
    const s = [...(oa.seen.get(op) || [])];
    if (op.startsWith('HEAD ')) { if (!s.length) missing.push(`${op}: never`); continue; }
    if (!s.some((x) => x < 300)) missing.push(`${op}: no 2xx`);
    if (!op.includes('/healthz') && !op.includes('/metrics') && !op.includes('/readyz') && !op.includes('/openapi.json') && !s.some((x) => x >= 400)) missing.push(`${op}: no error`);
  }
  assert.deepEqual(missing, [], `operations not exercised against docs/openapi.yaml:\n${missing.join('\n')}`);
  const lines = oa.operations().map((op) => `${op}: ${[...(oa.seen.get(op) || [])].sort().join(' ')}`);
  console.log(`# statuses checked against docs/openapi.yaml:\n# ${lines.join('\n# ')}`);
});

it('404 with "deleting" while a store is being deleted (an interrupted deletion: the mark left in ZooKeeper)', { timeout: 90000 }, async () => {
  const s = uniq('halfgone');
  await call('PUT', `/v1/stores/${s}`, { expect: 201 });
  await call('PUT', `/v1/stores/${s}/records/a`, { json: 1, expect: 201 });
  // What a gateway that died mid-DELETE leaves: the config marked, a bucket gone.
  let r = await zkCli(env.zk.connect, 'set', `${env.root}/stores/${s}`, '{"conflict":"cas","maxValueBytes":65536,"tombstoneTtlSeconds":604800,"deleting":true}');
  assert.ok(r.ok, `zkCli set: ${r.stderr}`);
  r = await zkCli(env.zk.connect, 'delete', `${env.root}/stores/${s}/r/000`);
  assert.ok(r.ok, `zkCli delete: ${r.stderr}`);
  const g = await err('GET', `/v1/stores/${s}`, 404, 'store_not_found');
  assert.deepEqual(g.json.deleting, { bucketsLeft: 4095, buckets: 4096 });
  await call('DELETE', `/v1/stores/${s}`, { expect: 404 });   // finishes the removal
  const gone = await err('GET', `/v1/stores/${s}`, 404, 'store_not_found');
  assert.equal(gone.json.deleting, undefined, 'no "deleting" once it is gone');
  const never = await err('GET', `/v1/stores/${NOSUCH}`, 404, 'store_not_found');
  assert.equal(never.json.deleting, undefined);
});
