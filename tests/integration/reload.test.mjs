// SIGHUP reads the flags and the --config file again (docs/PROTOCOL.md,
// "Operations"): log level and format, CORS origins and --rate-limit change
// live and are logged; any other changed setting is named as needing a
// restart and does not change; an invalid file changes nothing.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before } from 'node:test';
import { setupEnv, it, startGateway, tmpDir } from '../lib/harness.mjs';
import { eventually } from '../lib/http.mjs';

const env = setupEnv();
let dir, G, conf;

const logText = () => readFileSync(G.log, 'utf8');
const count = (re) => (logText().match(re) || []).length;

/** Sends SIGHUP and waits for one more line matching marker. */
async function hup(marker) {
  const re = new RegExp(marker.source, 'g');
  const before = count(re);
  process.kill(G.pid, 'SIGHUP');
  await eventually(async () => count(re) > before, { ms: 10000, what: `the reload logged (${marker})` });
}

async function get(p, headers = {}) {
  const r = await fetch(`${G.url}${p}`, { headers });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

before(async () => {
  await env.ready();
  dir = tmpDir();
  conf = path.join(dir, 'zoosyncd.conf');
  writeFileSync(conf, '# start\nlog-level = warn\nworkers = 8\n');
  G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'reload', logLevel: false, args: ['--config', conf] });
});

it('log level and format, CORS origins and the rate limit change on SIGHUP, and the log says so', async () => {
  // warn: no access log lines yet
  await get('/v1/stores');
  assert.equal(count(/http GET \/v1\/stores /g), 0, 'no access log at warn');
  assert.equal((await get('/v1/stores', { Origin: 'https://app.example' })).headers.get('access-control-allow-origin'), null);
  writeFileSync(conf, 'log-level = info\nlog-format = json\nworkers = 8\ncors-origin = https://app.example\nrate-limit = 2\n');
  await hup(/settings changed live:.*log-level warn -> info.*log-format json.*rate-limit 0 -> 2.*cors-origin now 1 origin/);
  assert.doesNotMatch(logText(), /need a restart/);
  // json lines from now on, access log at info
  await get('/v1/stores');
  await eventually(async () => logText().split('\n').some((l) => { try { return JSON.parse(l).msg.includes('GET /v1/stores'); } catch { return false; } }),
    { ms: 5000, what: 'a JSON access log line' });
  const r = await get('/v1/stores', { Origin: 'https://app.example' });
  assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example');
  assert.equal((await get('/v1/stores', { Origin: 'https://evil.example' })).headers.get('access-control-allow-origin'), null);
  // rate limit 2/s, burst 4: a quick burst of 10 meets 429 with Retry-After
  const codes = [];
  for (let i = 0; i < 10; i++) codes.push((await get('/v1/stores')).status);
  assert.ok(codes.includes(429), `no 429 in ${codes}`);
  const limited = await get('/v1/stores');
  if (limited.status === 429) assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  // off again: no 429
  writeFileSync(conf, 'log-level = info\nlog-format = json\nworkers = 8\nrate-limit = 0\n');
  await hup(/rate-limit 2 -> 0/);
  const after = [];
  for (let i = 0; i < 20; i++) after.push((await get('/v1/stores')).status);
  assert.ok(after.every((c) => c === 200), `statuses after turning it off: ${after}`);
  assert.equal((await get('/v1/stores', { Origin: 'https://app.example' })).headers.get('access-control-allow-origin'), null,
    'the origin is no longer allowed');
});

it('a setting that needs a restart is named and keeps its value; an invalid file changes nothing', async () => {
  writeFileSync(conf, 'log-level = info\nlog-format = json\nworkers = 9\nrate-limit = 0\nmax-body = 2048\n');
  await hup(/need a restart to take effect: max-body workers"/); // (JSON log lines by now)
  // --max-body is still the old one: a 3,000-byte body is not refused as too large
  const big = JSON.stringify({ client: 'c', mutations: [{ id: 1, key: 'k', op: 'put', value: 'x'.repeat(3000) }] });
  const r = await fetch(`${G.url}/v1/stores/nosuch/push`, { method: 'POST', body: big, headers: { 'Content-Type': 'application/json' } });
  assert.notEqual(r.status, 413);
  await r.text();
  writeFileSync(conf, 'log-level = verbose\nrate-limit = 5\n');
  await hup(/settings NOT reloaded/);
  assert.match(logText(), /log-level/);
  // still json and info (the invalid file changed nothing): a request is logged as JSON
  const n = count(/"GET \/v1\/stores /g);
  await get('/v1/stores');
  await eventually(async () => count(/"GET \/v1\/stores /g) > n || logText().split('\n').filter((l) => l.includes('GET /v1/stores')).length > n,
    { ms: 5000, what: 'still logging at info' });
  const codes = [];
  for (let i = 0; i < 15; i++) codes.push((await get('/v1/stores')).status);
  assert.ok(codes.every((c) => c === 200), `the invalid file's rate limit was not applied: ${codes}`);
  assert.ok(!G.exited, 'the gateway lives on');
});
