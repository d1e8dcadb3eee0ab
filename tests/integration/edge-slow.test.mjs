// Issue 16, item 3: slow clients. Before the fix a connection sending one
// header byte a minute stayed open indefinitely (the 120 s timeout is an
// idle timeout), and 1,100 such connections against a gateway with 1,024
// descriptors made real requests time out. Now: a deadline for the headers
// (--header-timeout, default 10 s) and for the body (--body-timeout), a
// per-address connection limit (--max-conns-per-ip, default 1024), and a
// reserve of descriptors (--fd-reserve) so ZooKeeper and the operational
// routes always get one: past the cap, the oldest connection still waiting
// for its headers makes room for a new one.
//
// Loopback only: the "other addresses" are 127.0.0.2 and up, which Linux
// routes to lo.
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before } from 'node:test';
import { setupEnv, it, startGateway, sleep, runGatewayExpectExit, tmpDir } from '../lib/harness.mjs';
import { holdSocket } from '../lib/raw.mjs';
import { gatewayWithStore } from '../lib/fixtures.mjs';

const env = setupEnv();
let gw, S;

before(async () => {
  ({ gw, store: S } = await gatewayWithStore(env, { name: 'slow', prefix: 'slow' }));
});

/** GET path with a deadline; resolves { status, ms } (status 0: no answer). */
function timedGet(port, path, ms = 3000) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: Date.now() - t0 }));
    });
    req.setTimeout(ms, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, error: e.message, ms: Date.now() - t0 }));
  });
}

it('a client sending one header byte a second is closed by the 10 s header deadline', { timeout: 30000 }, async () => {
  const line = `GET /v1/stores/${S} HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nX-Slow: ${'a'.repeat(200)}`;
  const h = holdSocket(gw.port, line[0]);
  try {
    await h.connected;
    for (let i = 1; i < line.length && !h.closed && Date.now() - h.openedAt < 14000; i++) {
      await sleep(1000);
      await h.write(line[i]);
    }
    assert.ok(h.closed, `still open after ${Date.now() - h.openedAt} ms of one byte a second`);
    const ms = h.closedAt - h.openedAt;
    assert.ok(ms >= 9000 && ms <= 13000, `closed after ${ms} ms (deadline 10 s)`);
  } finally { h.destroy(); }
});

it('every answer announces the idle deadline (Keep-Alive: timeout=N), so a keep-alive client closes first', { timeout: 30000 }, async () => {
  // Without the hint, a client that keeps an idle socket longer than the
  // gateway and reuses it as the gateway closes it at the deadline reads a
  // reset (seen in bench/push.mjs after a 10 s pause). Node's http.Agent
  // takes the hint only below a timeout of its own; undici always does.
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'kahint', args: ['--header-timeout', '3'] });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1, timeout: 60000 });
  const get = (path) => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: G.port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res));
    }).on('error', reject);
  });
  try {
    for (const path of ['/healthz', `/v1/stores/${S}`, '/v1/stores/nope']) {
      const res = await get(path);
      assert.equal(res.headers['keep-alive'], 'timeout=3', `${path}: ${JSON.stringify(res.headers)}`);
    }
    assert.equal(agent.freeSockets[Object.keys(agent.freeSockets)[0]]?.length, 1, 'one idle socket kept');
    const sock = agent.freeSockets[Object.keys(agent.freeSockets)[0]][0];
    // Node (19 and later) closes an idle socket 1 s before the announced timeout.
    if (Number(process.versions.node.split('.')[0]) >= 19) {
      // The client's own timer closes it (not the gateway's FIN, which an
      // early close by the gateway would also make pass the check below).
      let timedOut = false, serverEnd = false;
      sock.once('timeout', () => { timedOut = true; });
      sock.once('end', () => { serverEnd = true; });
      await sleep(2500);
      assert.equal(Object.keys(agent.freeSockets).length, 0, 'the client closed its idle socket before the deadline');
      assert.ok(timedOut && !serverEnd, `closed by the client's timer (timeout ${timedOut}, the gateway's FIN ${serverEnd})`);
    }
    // An answer whose connection closes makes no promise about idling.
    const close = await new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: G.port, path: '/healthz', agent: false, headers: { Connection: 'close' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res));
      }).on('error', reject);
    });
    assert.equal(close.headers['keep-alive'], undefined, JSON.stringify(close.headers));
  } finally { agent.destroy(); await G.stop(); }
});

it('--body-timeout: a body trickling in is cut at the deadline', { timeout: 30000 }, async () => {
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'bodyto', args: ['--body-timeout', '2'] });
  const h = holdSocket(G.port, `PUT /v1/stores/${S}/records/t HTTP/1.1\r\nHost: 127.0.0.1:${G.port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"`);
  try {
    await h.connected;
    for (let i = 0; i < 10 && !h.closed; i++) { await sleep(500); await h.write('a'); }
    assert.ok(h.closed, 'still open 5 s into a 2 s body deadline');
    assert.ok(h.closedAt - h.openedAt < 4000, `closed after ${h.closedAt - h.openedAt} ms`);
  } finally { h.destroy(); await G.stop(); }
});

it('one address opening 1,100 connections: past 1,024 they are closed at once; others are served', { timeout: 60000 }, async () => {
  const socks = [];
  try {
    for (let i = 0; i < 1100; i++) socks.push(holdSocket(gw.port, 'GET / HTTP/1.1\r\n', { localAddress: '127.0.0.2' }));
    await Promise.all(socks.map((s) => s.connected));
    await sleep(1500);
    const closed = socks.filter((s) => s.closed).length;
    assert.ok(closed >= 76, `only ${closed} of 1,100 connections from one address were refused (limit 1,024)`);
    assert.ok(closed <= 100, `${closed} refused: the limit is per address, 1,024`);
    const r = await timedGet(gw.port, '/readyz');
    assert.equal(r.status, 200, JSON.stringify(r));
  } finally { for (const s of socks) s.destroy(); }
});

it('256 descriptors, 400 slow connections from 8 addresses: /readyz and a store read still answer', { timeout: 60000 }, async () => {
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'fds', nofile: 256 });
  const socks = [];
  try {
    for (let i = 0; i < 400; i++) {
      socks.push(holdSocket(G.port, 'GET / HTTP/1.1\r\n', { localAddress: `127.0.0.${2 + (i % 8)}` }));
      if (i % 50 === 49) await sleep(50);
    }
    await Promise.all(socks.map((s) => s.connected));
    await sleep(1000);
    for (const p of ['/readyz', '/healthz', `/v1/stores/${S}`]) {
      const r = await timedGet(G.port, p, 3000);
      assert.equal(r.status, 200, `${p} with 400 slow connections against 256 descriptors: ${JSON.stringify(r)}`);
    }
  } finally { for (const s of socks) s.destroy(); await G.stop(); }
});

// --http-model connection (the default over plain HTTP): every connection in
// libmicrohttpd is a thread. --http-connections bounds them as the
// descriptors bound connections: past the cap less 16 the oldest connection
// still waiting for its headers makes room, so a flood of slow clients can
// neither exhaust the machine's threads nor keep a real request out.
it('--http-connections 64: 150 slow connections never hold more than 64 connections (80 threads: libmicrohttpd stops at 64 + 16); /readyz and a store read still answer', { timeout: 60000 }, async () => {
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'conncap', args: ['--http-model', 'connection', '--http-connections', '64'] });
  const threads = () => Number(readFileSync(`/proc/${G.pid}/status`, 'utf8').match(/^Threads:\s+(\d+)/m)[1]);
  const base = threads();
  const socks = [];
  let most = 0;
  try {
    for (let i = 0; i < 150; i++) {
      socks.push(holdSocket(G.port, 'GET / HTTP/1.1\r\n', { localAddress: `127.0.0.${2 + (i % 4)}` }));
      if (i % 10 === 9) { await Promise.all(socks.map((s) => s.connected)); most = Math.max(most, threads()); }
    }
    await sleep(500);
    most = Math.max(most, threads());
    const open = socks.filter((s) => !s.closed).length;
    // at most the cap (one less once settled: a new one takes the last thread by evicting)
    assert.ok(open >= 40 && open <= 64, `${open} of 150 slow connections still open at a cap of 64`);
    // the gateway's own threads, plus at most 64 connections and the 16 it may accept past the cap
    assert.ok(most - base <= 64 + 16, `${most - base} threads above the ${base} of an idle gateway`);
    const r = await timedGet(G.port, '/readyz');
    assert.equal(r.status, 200, JSON.stringify(r));
    const rec = await timedGet(G.port, `/v1/stores/${S}`);
    assert.ok(rec.status === 200 || rec.status === 404, JSON.stringify(rec));
  } finally { for (const s of socks) s.destroy(); await G.stop(); }
});

// Found by a clean-clone CI run, root cause read in libmicrohttpd by a
// reviewer (round 2, eleventh session): connections the gateway had shut
// (evicted, refused) still counted against --http-connections until
// libmicrohttpd reaped their threads, so a probe arriving right behind a
// burst was refused ("socket hang up"). Deterministic here: with the
// gateway stopped (SIGSTOP), ten slow connections and a probe wait in the
// listen backlog; on SIGCONT the listener takes them back to back, each
// slow one evicting the oldest, faster than the evicted threads end.
it('--http-connections 64: a probe right behind a burst of slow connections at the cap is answered, not refused by connections already shut', { timeout: 60000 }, async () => {
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'burst', args: ['--http-model', 'connection', '--http-connections', '64'] });
  const threads = () => Number(readFileSync(`/proc/${G.pid}/status`, 'utf8').match(/^Threads:\s+(\d+)/m)[1]);
  const base = threads();
  const socks = [];
  try {
    for (let i = 0; i < 63; i++) socks.push(holdSocket(G.port, 'GET / HTTP/1.1\r\n', { localAddress: `127.0.0.${2 + (i % 4)}` }));
    await Promise.all(socks.map((x) => x.connected));
    for (let i = 0; i < 100 && threads() < base + 62; i++) await sleep(20);
    assert.ok(threads() >= base + 62, `${threads() - base} threads for the 63 slow connections`);
    for (let round = 0; round < 3; round++) {
      process.kill(G.pid, 'SIGSTOP');
      let probe;
      try {
        for (let i = 0; i < 10; i++) socks.push(holdSocket(G.port, 'GET / HTTP/1.1\r\n', { localAddress: `127.0.0.${2 + (i % 4)}` }));
        await Promise.all(socks.slice(-10).map((x) => x.connected)); // handshakes done by the kernel, in the backlog
        probe = timedGet(G.port, '/readyz', 5000);
        await sleep(50);
      } finally { process.kill(G.pid, 'SIGCONT'); }
      const r = await probe;
      assert.equal(r.status, 200, `round ${round}: /readyz behind 10 slow connections at the cap: ${JSON.stringify(r)}`);
      await sleep(300);
    }
    // the live ones still within the cap (a miscount of the shut ones would let more stay)
    const open = socks.filter((x) => !x.closed).length;
    assert.ok(open <= 64, `${open} of ${socks.length} slow connections still open at a cap of 64`);
    assert.ok(threads() - base <= 64 + 16, `${threads() - base} threads above an idle gateway's`);
  } finally { for (const x of socks) x.destroy(); await G.stop(); }
});

it('--http-model: a bad value, or connection over HTTPS, is refused at start with a clear message', async () => {
  const base = ['--listen', '127.0.0.1:0', '--zk', env.zk.connect, '--root', env.root];
  let r = await runGatewayExpectExit([...base, '--http-model', 'threads']);
  assert.equal(r.code, 2, JSON.stringify(r));
  assert.match(r.stderr, /--http-model: 'threads': connection or pool/);
  r = await runGatewayExpectExit([...base, '--http-connections', '10']);
  assert.equal(r.code, 2, JSON.stringify(r));
  assert.match(r.stderr, /--http-connections: '10' is not a number from 64 to 100000/);
  const dir = mkdtempSync(path.join(tmpDir(), 'model-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
    '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')], { stdio: 'ignore' });
  r = await runGatewayExpectExit([...base, '--http-model', 'connection', '--tls-cert', path.join(dir, 'c.pem'), '--tls-key', path.join(dir, 'k.pem')]);
  assert.equal(r.code, 2, JSON.stringify(r));
  assert.match(r.stderr, /--http-model connection is for plain HTTP only/);
});
