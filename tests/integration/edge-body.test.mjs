// Issue 16, item 1: memory exhaustion without a token. Before the fix the
// gateway buffered every body (up to --max-body, 4 MiB) before it looked at
// the token: 300 connections without a token, each sending 4 MiB - 1 and
// idling, took the release build from 11 MB to 1.22 GB. Now the token (and
// the route's scope) is checked as soon as the headers are complete and
// 401/403 is answered before a byte of body is read; a global budget of
// body bytes in flight (--max-body-inflight) bounds what valid tokens can
// hold; and an answer sent before the body is read reaches the client
// (lingering close), not a reset.
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { before } from 'node:test';
import { setupEnv, it, startGateway, sleep } from '../lib/harness.mjs';
import { makeSigner } from '../lib/jwt.mjs';
import { holdSocket } from '../lib/raw.mjs';
import { gatewayWithStore } from '../lib/fixtures.mjs';

const env = setupEnv();
let gw, api, signer, S;
const BODY = 4 * 1024 * 1024 - 1;

before(async () => {
  await env.ready();
  signer = makeSigner('HS256', env.tmp);
  ({ gw, api, store: S } = await gatewayWithStore(env, { signer, name: 'body', prefix: 'body' }));
});

function rssMb(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return Number(m[1]) / 1024;
}

const head = (method, path, len, extra = '') =>
  `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nContent-Type: application/json\r\nContent-Length: ${len}\r\n${extra}\r\n`;

async function until(fn, ms, every = 50) {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v || Date.now() > end) return v;
    await sleep(every);
  }
}

it('no token: 401 as soon as the headers are complete, before any body byte is sent', async () => {
  const h = holdSocket(gw.port, head('PUT', `/v1/stores/${S}/records/k`, 1000000));
  try {
    await until(() => h.response().status, 2000);
    const r = h.response();
    assert.equal(r.status, 401, `expected an early 401, got:\n${r.text.slice(0, 300)}`);
    assert.equal(r.headers.connection, 'close');
    assert.equal(JSON.parse(r.body.toString()).error, 'unauthorized');
  } finally { h.destroy(); }
});

it('a token without the store\'s write scope: 403 before the body', async () => {
  const tok = signer.token(`${S}:read`);
  const h = holdSocket(gw.port, head('POST', `/v1/stores/${S}/push`, 1000000, `Authorization: Bearer ${tok}\r\n`));
  try {
    await until(() => h.response().status, 2000);
    assert.equal(h.response().status, 403, h.response().text.slice(0, 300));
  } finally { h.destroy(); }
});

it('100 connections without a token sending 4 MiB - 1 each: RSS grows by less than 64 MB, each reads its 401', { timeout: 90000 }, async () => {
  const N = 100;
  const body = Buffer.alloc(BODY, 0x20);
  const rss0 = rssMb(gw.pid);
  const socks = [];
  try {
    for (let i = 0; i < N; i++) socks.push(holdSocket(gw.port, head('PUT', `/v1/stores/${S}/records/m${i}`, BODY)));
    await Promise.all(socks.map((s) => s.connected));
    // Send every body in full (the writes may end early once the gateway has answered and closed).
    await Promise.all(socks.map((s) => s.write(body)));
    await until(() => socks.every((s) => s.response().status), 10000);
    await sleep(500);
    const grown = rssMb(gw.pid) - rss0;
    const statuses = socks.map((s) => s.response().status);
    assert.ok(grown < 64, `the gateway's RSS grew by ${grown.toFixed(0)} MB for ${N} unauthenticated bodies (bound: 64 MB)`);
    assert.deepEqual([...new Set(statuses)], [401], `every connection must read a 401: ${JSON.stringify(statuses.slice(0, 10))}`);
  } finally { for (const s of socks) s.destroy(); }
});

/** node:http PUT of `len` bytes; resolves { status, error }. */
function putBig(path, len, token) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: gw.port, path, method: 'PUT', agent: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': len, ...(token ? { Authorization: `Bearer ${token}` } : {}) } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode }));
      res.on('error', (e) => resolve({ status: res.statusCode, error: e.code }));
    });
    req.on('error', (e) => resolve({ status: 0, error: e.code || e.message }));
    req.end(Buffer.alloc(len, 0x20));
  });
}

it('413 for an oversized body reaches the client (no EPIPE or reset), 20 times in parallel', async () => {
  const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => putBig(`/v1/stores/${S}/records/big${i}`, 6 * 1024 * 1024, api.token)));
  const bad = rs.filter((r) => r.status !== 413);
  assert.equal(bad.length, 0, `every client must read 413: ${JSON.stringify(bad.slice(0, 5))}`);
});

it('--max-body-inflight: a body past the global budget is 503 with Retry-After, before it is read', async () => {
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'budget', args: [...signer.args, '--max-body-inflight', String(6 * 1024 * 1024)] });
  const tok = signer.token('admin');
  const a = holdSocket(G.port, `PUT /v1/stores/${S}/records/ba HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\nContent-Type: application/json\r\nContent-Length: ${BODY}\r\n\r\n"`);
  try {
    await a.connected;
    await sleep(300);
    const b = holdSocket(G.port, `PUT /v1/stores/${S}/records/bb HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\nContent-Type: application/json\r\nContent-Length: ${BODY}\r\n\r\n`);
    await until(() => b.response().status, 3000);
    assert.equal(b.response().status, 503, b.response().text.slice(0, 300));
    assert.match(String(b.response().headers['retry-after']), /^[0-9]+$/);
    b.destroy();
    // a finishes its body: it is served (413 value_too_large: over the store's maxValueBytes).
    await a.write(Buffer.alloc(BODY - 2, 0x61));
    await a.write('"');
    await until(() => a.response().status, 10000);
    assert.equal(a.response().status, 413, a.response().text.slice(0, 300));
    // The budget is free again.
    const c = await putBig(`/v1/stores/${S}/records/bc`, 3 * 1024 * 1024, tok);
    assert.notEqual(c.status, 503, JSON.stringify(c));
  } finally { a.destroy(); await G.stop(); }
});
