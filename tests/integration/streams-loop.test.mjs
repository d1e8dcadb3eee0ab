// Event streams served by the gateway's own loop (plain HTTP): once its head
// is decided, a stream's socket leaves libmicrohttpd (docs/ARCHITECTURE.md,
// "Event streams outside libmicrohttpd"). What must hold there as it did
// before: the head (content type, caching, CORS), every change whole and in
// order, a client that closes is forgotten at once, a client that takes
// nothing holds back no other stream and gets everything once it reads
// again, a client that talks on its stream is cut off, and a gateway that
// stops ends every stream cleanly.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { setupEnv, it, startGateway, uniq, sleep, execFileSync, HTTP_MODEL } from '../lib/harness.mjs';
import { Api, eventually, getMetrics } from '../lib/http.mjs';
import { makeSigner } from '../lib/jwt.mjs';
import { openEvents, closeAllEvents } from '../lib/sse.mjs';
import { holdSocket } from '../lib/raw.mjs';

const env = setupEnv();
const ORIGIN = 'https://app.example';
let G, api, S, signer;
after(async () => { closeAllEvents(); if (G) await G.stop(); });

before(async () => {
  await env.ready();
  signer = makeSigner('HS256', env.tmp);
  G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'sloop', args: [...signer.args, '--cors-origin', ORIGIN, '--keepalive-ms', '400'] });
  api = new Api(G, signer.token('admin'));
  S = uniq('sl');
  await api.createStore(S);
});

const port = () => new URL(G.url).port;
const rawStream = (extra = '') => holdSocket(port(), `GET /v1/stores/${S}/events HTTP/1.1\r\nHost: 127.0.0.1:${port()}\r\n` +
  `Authorization: Bearer ${api.token}\r\nAccept: text/event-stream\r\n${extra}\r\n`);
const streams = async () => (await getMetrics(G)).get('zoosync_event_streams');

/** The head of a raw response: { status, headers } (names lower-cased), or null while incomplete. */
function head(buf) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const [line, ...rest] = buf.subarray(0, end).toString('latin1').split('\r\n');
  const headers = {};
  for (const h of rest) { const i = h.indexOf(':'); headers[h.slice(0, i).toLowerCase()] = h.slice(i + 1).trim(); }
  return { status: Number(line.split(' ')[1]), line, headers, body: buf.subarray(end + 4) };
}

/** The `data:` payloads of the change events in an SSE body. */
function changeEvents(body) {
  return body.toString('utf8').split('\n\n').filter((e) => /^event: change$/m.test(e))
    .map((e) => JSON.parse(e.split('\n').find((l) => l.startsWith('data: ')).slice(6)));
}

it('the head: 200 text/event-stream, no-cache, CORS for an allowed origin, the body runs to the close', async () => {
  const h = rawStream(`Origin: ${ORIGIN}\r\n`);
  try {
    assert.ok(await h.connected);
    await eventually(() => head(h.data)?.body.includes(': zoosync events'), { what: 'the stream opened' });
    const r = head(h.data);
    assert.match(r.line, /^HTTP\/1\.1 200 /);
    assert.equal(r.headers['content-type'], 'text/event-stream');
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
    assert.equal(r.headers.vary, 'Origin');
    assert.equal(r.headers.connection, 'close');
    assert.equal(r.headers['transfer-encoding'], undefined, 'frames are written as they are: no chunking');
    assert.equal(r.headers['content-length'], undefined);
    assert.match(r.headers.date, /GMT$/);
    assert.equal(r.body.subarray(0, 18).toString(), ': zoosync events\n\n', 'the body starts with the opening comment, nothing before it');
    await api.pushOk(S, uniq('c'), [{ id: 1, key: 'head-1', op: 'put', value: { n: 1 } }]);
    await eventually(() => changeEvents(head(h.data).body).some((e) => e.changes.some((c) => c.key === 'head-1')), { what: 'the change on the raw stream' });
    await eventually(() => /^: keepalive$/m.test(head(h.data).body.toString()), { ms: 3000, what: 'a keepalive (every 400 ms)' });
  } finally { h.destroy(); }
  const other = rawStream('Origin: https://evil.example\r\n');
  try {
    await eventually(() => head(other.data) !== null, { what: 'the head for another origin' });
    assert.equal(head(other.data).headers['access-control-allow-origin'], undefined, 'no CORS for an origin not allowed');
  } finally { other.destroy(); }
});

it('a client that closes its stream is forgotten within a second', async () => {
  await eventually(async () => (await streams()) === 0, { what: 'no stream open before' });
  const hs = Array.from({ length: 20 }, () => rawStream());
  await eventually(async () => (await streams()) === 20, { what: '20 streams open' });
  for (const h of hs) h.destroy();
  const t0 = Date.now();
  await eventually(async () => (await streams()) === 0, { ms: 3000, every: 50, what: 'every closed stream dropped' });
  assert.ok(Date.now() - t0 < 1500, `dropped after ${Date.now() - t0} ms`);
  const m = await getMetrics(G);
  assert.ok(m.get('zoosync_event_stream_ends_total', { reason: 'client_closed' }) >= 20, 'counted as closed by the client');
});

it('a client that takes nothing holds back no other stream, and gets every change in order once it reads', { timeout: 60000 }, async () => {
  const since = await api.getCursor(S);
  const slow = holdSocket(port(), `GET /v1/stores/${S}/events?since=${since} HTTP/1.1\r\nHost: 127.0.0.1:${port()}\r\n` +
    `Authorization: Bearer ${api.token}\r\n\r\n`);
  assert.ok(await slow.connected);
  await eventually(() => head(slow.data) !== null, { what: 'the slow stream opened' });
  slow.sock.pause(); // the kernel buffers fill; the gateway's send waits
  const fast = openEvents(G.url, S, { token: api.token, since });
  await fast.opened();
  const N = 60, big = 'x'.repeat(50000); // 3 MB: far past both sockets' buffers
  const c = uniq('big');
  try {
    for (let i = 1; i <= N; i++) await api.pushOk(S, c, [{ id: i, key: `big-${String(i).padStart(3, '0')}`, op: 'put', value: { i, big } }]);
    await fast.waitFor(() => fast.changes.filter((x) => x.key.startsWith('big-')).length === N, { ms: 20000, what: `all ${N} changes on the reading stream` });
    assert.ok(!slow.closed, 'the slow stream is still open (it stalls for 120 s before it is ended)');
    const r = await api.getRecord(S, 'big-001');
    assert.equal(r.status, 200, 'the gateway answers meanwhile');
    slow.sock.resume();
    await eventually(() => changeEvents(head(slow.data).body).flatMap((e) => e.changes).filter((x) => x.key.startsWith('big-')).length === N,
      { ms: 30000, every: 200, what: `all ${N} changes on the stream that read late` });
    const got = changeEvents(head(slow.data).body).flatMap((e) => e.changes).filter((x) => x.key.startsWith('big-'));
    assert.deepEqual(got.map((x) => x.value.i), Array.from({ length: N }, (_, i) => i + 1), 'in order, none twice');
    assert.ok(got.every((x) => x.value.big === big), 'every value whole');
  } finally { slow.destroy(); fast.close(); }
});

it('a client that talks on its stream: a few bytes are ignored, past 64 KiB the stream is ended', async () => {
  const h = rawStream();
  try {
    await eventually(() => head(h.data) !== null, { what: 'the stream opened' });
    await h.write('hello\r\n');
    await api.pushOk(S, uniq('t'), [{ id: 1, key: 'talk-1', op: 'put', value: 1 }]);
    await eventually(() => changeEvents(head(h.data).body).some((e) => e.changes.some((c) => c.key === 'talk-1')), { what: 'the change after a few bytes from the client' });
    assert.ok(!h.closed);
    for (let i = 0; i < 20 && !h.closed; i++) { await h.write('z'.repeat(8192)); await sleep(20); }
    await eventually(() => h.closed, { what: 'the stream ended after 160 KiB from the client' });
    assert.equal((await getMetrics(G)).get('zoosync_event_stream_ends_total', { reason: 'client_sent' }), 1, 'counted by its reason');
  } finally { h.destroy(); }
});

it('an HTTP/1.0 client and one sending Expect: 100-continue get the same stream', async () => {
  const old = holdSocket(port(), `GET /v1/stores/${S}/events HTTP/1.0\r\nHost: 127.0.0.1:${port()}\r\n` +
    `Authorization: Bearer ${api.token}\r\n\r\n`);
  const cont = rawStream('Expect: 100-continue\r\n');
  // libmicrohttpd answers the Expect with a whole interim 100 before the handler runs; the stream's head follows it
  const CONT = 'HTTP/1.1 100 Continue\r\n\r\n';
  const after100 = (buf) => (buf.subarray(0, CONT.length).toString('latin1') === CONT ? buf.subarray(CONT.length) : buf);
  const streamOf = (h) => head(after100(h.data));
  try {
    for (const h of [old, cont]) await eventually(() => streamOf(h)?.body.includes(': zoosync events'), { what: 'the stream opened' });
    await api.pushOk(S, uniq('v'), [{ id: 1, key: 'v10-1', op: 'put', value: 1 }]);
    for (const h of [old, cont]) {
      await eventually(() => changeEvents(streamOf(h).body).some((e) => e.changes.some((c) => c.key === 'v10-1')), { what: 'the change' });
      assert.equal(streamOf(h).status, 200);
      assert.equal(streamOf(h).headers['transfer-encoding'], undefined);
      assert.equal(streamOf(h).body.subarray(0, 18).toString(), ': zoosync events\n\n');
    }
  } finally { old.destroy(); cont.destroy(); }
});

it('streams count against the connection cap: at 256 descriptors the gateway refuses what does not fit, never runs out, and serves again once they close', { timeout: 60000 }, async () => {
  const G3 = await startGateway({ zk: env.zk.connect, root: env.root, name: 'sloop-cap', nofile: 256 });
  const S3 = uniq('cap');
  const admin = new Api(G3);
  await admin.createStore(S3);
  const p = new URL(G3.url).port;
  const hs = [];
  try {
    for (let i = 0; i < 200; i++) {
      hs.push(holdSocket(p, `GET /v1/stores/${S3}/events HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\n\r\n`, { localAddress: `127.0.0.${2 + (i % 8)}` }));
      if (i % 20 === 19) await sleep(100);
    }
    await eventually(() => hs.every((h) => h.closed || head(h.data) !== null), { ms: 15000, what: 'every stream answered or refused' });
    const open = hs.filter((h) => !h.closed && head(h.data)?.status === 200).length;
    const refused = hs.filter((h) => h.closed && head(h.data) === null).length;
    // 256 - 64 reserved - 32 lingering = 160, less 10 per accepting thread
    // (4 in the pool model, 1 with a thread per connection) = 120 or 150
    const cap = 160 - 10 * (HTTP_MODEL === 'pool' ? 4 : 1);
    assert.ok(open >= cap - 20 && open <= cap, `${open} streams open at a cap of ${cap} connections`);
    assert.equal(open + refused, 200, `${open} open, ${refused} refused, ${200 - open - refused} neither`);
    const fds = execFileSync('ls', [`/proc/${G3.pid}/fd`]).toString().trim().split('\n').length;
    assert.ok(fds <= 256 - 32, `${fds} descriptors in use: the reserve for ZooKeeper is taken`);
    assert.ok(!G3.exited, 'the gateway is still running');
    for (const h of hs) h.destroy();
    await eventually(async () => (await getMetrics(G3)).get('zoosync_event_streams') === 0, { ms: 5000, what: 'every stream dropped' });
    const again = holdSocket(p, `GET /v1/stores/${S3}/events HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\n\r\n`);
    await eventually(() => head(again.data)?.status === 200, { what: 'a new stream once the others closed' });
    again.destroy();
  } finally { for (const h of hs) h.destroy(); await G3.stop(); }
});

it('churn: 1,000 streams opened and dropped (some mid-frame) while writes flow; the count returns to 0 and the gateway exits cleanly', { timeout: 90000 }, async () => {
  const G4 = await startGateway({ zk: env.zk.connect, root: env.root, name: 'sloop-churn', args: signer.args });
  const S4 = uniq('ch');
  const adm = new Api(G4, signer.token('admin'));
  await adm.createStore(S4);
  const p = new URL(G4.url).port;
  const tok = signer.token('admin');
  let writing = true, n = 0;
  const writer = (async () => { while (writing) await adm.pushOk(S4, 'w', [{ id: ++n, key: `c${n % 50}`, op: 'put', value: { n, pad: 'p'.repeat(2000) } }]); })();
  try {
    for (let round = 0; round < 10; round++) {
      const hs = Array.from({ length: 100 }, () => holdSocket(p, `GET /v1/stores/${S4}/events HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\n` +
        `Authorization: Bearer ${tok}\r\n\r\n`));
      await sleep(30 + 20 * (round % 3));
      hs.forEach((h, i) => { if (i % 2) h.sock.resetAndDestroy(); else h.destroy(); }); // half with a reset
    }
    writing = false;
    await writer;
    await eventually(async () => (await getMetrics(G4)).get('zoosync_event_streams') === 0, { ms: 10000, what: 'every stream gone' });
    const m = await getMetrics(G4);
    assert.equal(m.get('zoosync_event_stream_ends_total'), m.get('zoosync_event_stream_ends_total', { reason: 'client_closed' }) + m.get('zoosync_event_stream_ends_total', { reason: 'send_failed' }), 'ended by the clients only');
    const one = holdSocket(p, `GET /v1/stores/${S4}/events HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\nAuthorization: Bearer ${tok}\r\n\r\n`);
    await eventually(() => head(one.data)?.status === 200, { what: 'a stream after the churn' });
    one.destroy();
  } finally {
    writing = false;
    await writer.catch(() => {});
  }
  const r = await G4.stop();
  assert.equal(r.code, 0, `exit ${JSON.stringify(r)} (under ASan a leak fails the exit)`);
});

it('a gateway that stops ends its streams (each client sees the close) and exits cleanly', async () => {
  const G2 = await startGateway({ zk: env.zk.connect, root: env.root, name: 'sloop-stop', args: signer.args });
  const S2 = uniq('st');
  await new Api(G2, signer.token('admin')).createStore(S2);
  const p = new URL(G2.url).port;
  const hs = Array.from({ length: 30 }, () => holdSocket(p, `GET /v1/stores/${S2}/events HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\n` +
    `Authorization: Bearer ${signer.token('admin')}\r\n\r\n`));
  try {
    await eventually(() => hs.every((h) => head(h.data) !== null), { what: '30 streams opened' });
    const r = await G2.stop();
    assert.equal(r.termTimedOut, false, 'stopped within its grace');
    assert.equal(r.code, 0, `exit ${JSON.stringify(r)} (under ASan a leak fails the exit)`);
    await eventually(() => hs.every((h) => h.closed), { ms: 3000, what: 'every client saw its stream end' });
  } finally { for (const h of hs) h.destroy(); }
});
