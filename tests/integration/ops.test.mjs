// Operations endpoints (healthz, readyz, metrics) and CORS.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it, startGateway, uniq } from '../lib/harness.mjs';
import { Api, request, expectError } from '../lib/http.mjs';
import { makeSigner } from '../lib/jwt.mjs';
import { gatewayWithStore } from '../lib/fixtures.mjs';

const env = setupEnv();
let signer, gw, admin, S;
const ORIGIN_A = 'http://a.example';
const ORIGIN_B = 'https://b.example:8443';

before(async () => {
  await env.ready();
  signer = makeSigner('HS256', env.tmp);
  ({ gw, api: admin, store: S } = await gatewayWithStore(env, { signer, args: ['--cors-origin', ORIGIN_A, '--cors-origin', ORIGIN_B], prefix: 'ops' }));
});

const list = (h) => (h || '').split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);

it('healthz and readyz: 200 without a token', async () => {
  for (const p of ['/healthz', '/readyz']) {
    const r = await request(gw.url, 'GET', p);
    assert.equal(r.status, 200, `${p}: ${r.text}`);
  }
});

it('metrics: Prometheus text without a token, counting requests', async () => {
  for (let i = 0; i < 3; i++) await admin.getStore(S);
  await admin.pushOk(S, 'cm', [{ id: 1, key: 'k', op: 'put', value: 1 }]);
  const r = await request(gw.url, 'GET', '/metrics');
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['content-type'] || '', /^text\/plain/i);
  assert.match(r.text, /^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped)$/m, 'has TYPE lines');
  const samples = r.text.split('\n').filter((l) => l && !l.startsWith('#'));
  assert.ok(samples.length > 0, 'has samples');
  for (const l of samples) {
    assert.match(l, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? -?([0-9.eE+-]+|NaN|\+Inf|-Inf)( -?[0-9]+)?$/, `bad sample line: ${l}`);
  }
  assert.ok(samples.some((l) => /\s[1-9][0-9.eE+]*$/.test(l)), 'some counter is non-zero after requests');
  // Every TYPE is declared once, before its samples.
  const types = [...r.text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
  assert.equal(new Set(types).size, types.length, `a metric TYPE declared twice: ${types.filter((t, i) => types.indexOf(t) !== i)}`);
});

it('metrics: build info, process metrics, and request-time histograms by route and status class', async () => {
  const { getMetrics } = await import('../lib/http.mjs');
  await admin.pushOk(S, 'cm2', [{ id: 1, key: 'k2', op: 'put', value: 1 }]);
  expectError(await admin.getRecord(S, 'absent'), 404, 'not_found');
  const m = await getMetrics(gw);
  assert.equal(m.samples.filter((x) => x.name === 'zoosync_build_info').length, 1);
  assert.match(m.samples.find((x) => x.name === 'zoosync_build_info').labels.version, /^\d+\.\d+\.\d+$/);
  // The sanitized build keeps glibc's malloc; the release build says jemalloc and its version.
  assert.match(m.samples.find((x) => x.name === 'zoosync_build_info').labels.allocator, /^(jemalloc \d+\.\d+\.\d+\S*|glibc)$/);
  const rss = m.get('process_resident_memory_bytes');
  assert.ok(rss > 1e6 && rss < 1e11, `RSS ${rss}`);
  assert.ok(m.get('process_open_fds') >= 3, 'open fds');
  assert.ok(m.get('process_threads') >= 4, 'threads');
  assert.ok(m.get('process_cpu_seconds_total') > 0, 'CPU');
  const start = m.get('process_start_time_seconds');
  assert.ok(Math.abs(start - Date.now() / 1000) < 3600, `start time ${start}`);
  const pushes = m.get('zoosync_http_request_seconds_count', { route: 'push', code: '2xx' });
  assert.ok(pushes >= 1, `push 2xx observed: ${pushes}`);
  assert.ok(m.get('zoosync_http_request_seconds_count', { route: 'record', code: '4xx' }) >= 1, 'record 4xx observed');
  assert.equal(m.get('zoosync_http_request_seconds_bucket', { route: 'push', code: '2xx', le: '+Inf' }), pushes, '+Inf bucket = count');
  assert.ok(m.get('zoosync_http_request_seconds_sum', { route: 'push', code: '2xx' }) > 0);
});

it('CORS: an allowed origin gets Access-Control-Allow-Origin, on success and on errors', async () => {
  for (const origin of [ORIGIN_A, ORIGIN_B]) {
    const r = await request(gw.url, 'GET', `/v1/stores/${S}`, { token: admin.token, headers: { Origin: origin } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], origin);
    const e = await request(gw.url, 'GET', `/v1/stores/${S}`, { headers: { Origin: origin } });
    expectError(e, 401, 'unauthorized');
    assert.equal(e.headers['access-control-allow-origin'], origin, 'a browser client must be able to read a 401');
    const p = await request(gw.url, 'POST', `/v1/stores/${S}/push`, { token: admin.token, headers: { Origin: origin }, json: { client: 'cors', mutations: [] } });
    assert.equal(p.status, 200);
    assert.equal(p.headers['access-control-allow-origin'], origin);
  }
});

it('CORS: preflight is 204 with methods and headers, and needs no token', async () => {
  const r = await request(gw.url, 'OPTIONS', `/v1/stores/${S}/push`, {
    headers: { Origin: ORIGIN_A, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, content-type' },
  });
  assert.equal(r.status, 204, r.text);
  assert.equal(r.headers['access-control-allow-origin'], ORIGIN_A);
  assert.ok(list(r.headers['access-control-allow-methods']).includes('post'), `methods: ${r.headers['access-control-allow-methods']}`);
  const hdrs = list(r.headers['access-control-allow-headers']);
  assert.ok(hdrs.includes('authorization') && hdrs.includes('content-type'), `headers: ${r.headers['access-control-allow-headers']}`);
  const r2 = await request(gw.url, 'OPTIONS', `/v1/stores/${S}/records/a%2Fb`, {
    headers: { Origin: ORIGIN_B, 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'authorization, content-type, if-match' },
  });
  assert.equal(r2.status, 204, r2.text);
  assert.equal(r2.headers['access-control-allow-origin'], ORIGIN_B);
  assert.ok(list(r2.headers['access-control-allow-methods']).includes('put'));
  assert.ok(list(r2.headers['access-control-allow-headers']).includes('if-match'));
});

it('CORS: other origins get no Access-Control-Allow-Origin', async () => {
  for (const origin of ['http://evil.example', 'http://a.example:8080', 'https://a.example', 'http://a.example.evil', 'null']) {
    const r = await request(gw.url, 'GET', `/v1/stores/${S}`, { token: admin.token, headers: { Origin: origin } });
    assert.equal(r.headers['access-control-allow-origin'], undefined, `${origin} got ${r.headers['access-control-allow-origin']}`);
    const p = await request(gw.url, 'OPTIONS', `/v1/stores/${S}/push`, { headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' } });
    assert.equal(p.headers['access-control-allow-origin'], undefined, `preflight from ${origin}`);
  }
  const r = await request(gw.url, 'GET', `/v1/stores/${S}`, { token: admin.token });
  assert.equal(r.headers['access-control-allow-origin'], undefined, 'no Origin, no ACAO');
  assert.notEqual(r.headers['access-control-allow-origin'], '*');
});

it('access log: one line per request at info with the route template, never the key or the token; X-Request-Id ties the answer to it', async () => {
  const { readFileSync } = await import('node:fs');
  const secretKey = 'secret-key-9f3a';
  const tok = signer.token('admin', { sub: 'logger' });
  const r = await new Api(gw, tok).getRecord(S, secretKey);
  assert.equal(r.status, 404);
  const rid = r.headers['x-request-id'];
  assert.match(rid || '', /^[0-9a-f]{16}$/, 'a request id');
  const { eventually } = await import('../lib/http.mjs');
  let line;
  await eventually(async () => { line = readFileSync(gw.log, 'utf8').split('\n').find((l) => l.includes(`rid=${rid}`)); return !!line; }, { what: 'the access-log line' });
  assert.match(line, / info  http GET \/v1\/stores\/\{store\}\/records\/\{key\} store=\S+ status=404 ms=[0-9.]+ bytes=\d+ sub=logger addr=127\.0\.0\.1 rid=/);
  const log = readFileSync(gw.log, 'utf8');
  assert.ok(!log.includes(secretKey), 'the key never reaches the log');
  assert.ok(!log.includes(tok.split('.')[2]), 'nor the token');
});

it('--log-format json: every line of the gateway\'s own log is a JSON object with ts, level and msg', async () => {
  const { readFileSync } = await import('node:fs');
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'jsonlog', args: ['--log-format', 'json'] });
  await new Api(G).getStore(S);
  await G.stop();
  const ours = readFileSync(G.log, 'utf8').split('\n').filter((l) => l.startsWith('{'));
  assert.ok(ours.length >= 3, `JSON lines: ${ours.length}`);
  for (const l of ours) {
    const o = JSON.parse(l);
    assert.match(o.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(['error', 'warn', 'info', 'debug'].includes(o.level));
    assert.equal(typeof o.msg, 'string');
  }
  assert.ok(ours.some((l) => JSON.parse(l).msg === 'ready'));
  assert.ok(ours.some((l) => /^http GET \/v1\/stores\/\{store\} /.test(JSON.parse(l).msg)), 'the access log too');
});

// Every path the gateway builds starts with --root, and some go into
// fixed buffers and ZooKeeper requests with a size limit (the collector's
// election read a truncated path for a root of about 480 bytes: every
// candidate looked dead, so every gateway led). The root is bounded.
it('--root longer than 256 bytes, or not a plain path, is refused at start', async () => {
  const { runGatewayExpectExit } = await import('../lib/harness.mjs');
  for (const [root, re] of [[`/${'r'.repeat(256)}`, /--root: at most 256 bytes/], ['/a//b', /--root: /], ['/a/./b', /--root: /], ['/a/../b', /--root: /]]) {
    const r = await runGatewayExpectExit(['--listen', '127.0.0.1:0', '--zk', env.zk.connect, '--root', root]);
    assert.equal(r.code, 2, `--root ${root.slice(0, 20)}...: exit ${r.code} ${r.stderr}`);
    assert.match(r.stderr, re, r.stderr);
  }
});

it('--config FILE: settings as "name = value" lines, flags on the command line override them; a bad line is refused naming it', async () => {
  const { writeFileSync, readFileSync } = await import('node:fs');
  const path = (await import('node:path')).default;
  const { tmpDir, runGatewayExpectExit } = await import('../lib/harness.mjs');
  const dir = tmpDir();
  const store = uniq('cfgfile');
  const f = path.join(dir, 'zoosyncd.conf');
  writeFileSync(f, `# zoosyncd settings\n\nlog-level = debug\ncreate-store = ${store}\n  keepalive-ms = 500  \n`);
  // The harness passes --log-level info after --config: the command line wins.
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'cfgfile', args: ['--config', f] });
  try {
    assert.equal((await new Api(G).getStore(store)).status, 200, 'create-store from the file');
    assert.ok(!/ debug /.test(readFileSync(G.log, 'utf8')), 'log-level from the command line (info), not the file (debug)');
  } finally {
    await G.stop();
  }
  for (const [text, re] of [['zk = 127.0.0.1:1\nbogus = 1\n', /zoosyncd\.conf:2: unknown setting 'bogus'/],
    ['listen =\n', /:1: 'listen' needs a value/], ['zk-apply-acl = yes\n', /:1: 'zk-apply-acl' takes no value/],
    ['config = other\n', /:1: unknown setting 'config'/], ['max-body = lots\n', /--max-body: 'lots' is not a number/]]) {
    writeFileSync(f, text);
    const r = await runGatewayExpectExit(['--config', f]);
    assert.equal(r.code, 2, `${JSON.stringify(text)}: exit ${r.code} ${r.stderr}`);
    assert.match(r.stderr, re, r.stderr);
  }
  const missing = await runGatewayExpectExit(['--config', path.join(dir, 'nope.conf')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--config .*nope\.conf: No such file/);
});
