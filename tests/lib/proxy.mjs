// A fault-injecting TCP proxy for tests, in the manner of Toxiproxy: it
// listens on a loopback port and forwards every connection to a target.
//
//   const p = await startProxy(targetHostPort);   // p.addr = '127.0.0.1:NNNN'
//   p.cut();    // resets every open connection and refuses new ones (a link down)
//   p.heal();   // accepts again
//   p.targets = ['127.0.0.1:2181', ...]  // where new connections go (round robin)
//   p.delayMs = 100;   // every chunk, each way, forwarded that much later (in order): latency
//   await p.close();
//
// With { frames: true } the proxy also reads the client's ZooKeeper frames
// (a length-prefixed ConnectRequest, then requests: length, xid, type) so
// that a test can hold one session's requests at a chosen moment:
//
//   p.holdTypes = new Set([106]);  // a connection that sends an addWatch
//                                  // (type 106) is held from that frame on:
//                                  // nothing more it sends reaches ZooKeeper
//   p.holdSkip = 1;                // let that many such frames pass first
//   p.held                         // frames held so far (all connections)
//   p.release();                   // forwards what was held, in order, and
//                                  // stops holding (holdTypes is cleared)
//
// Frames are forwarded whole; a connection's frames stay in their order.
// A held connection's pings are held too: hold it for well under the
// session timeout (two thirds of it, and the client gives up on the
// connection). A frame with a negative length resets the connection.
//
// startProxy(target, { host }) listens on host (default 127.0.0.1; the
// partition tests use the test's own address on their private bridge).
// Stopped by the test that started it.
import net from 'node:net';

/** Writes to dst, each chunk delayMs() later, in order: { write(d), end() }. */
function delayedWriter(dst, delayMs) {
  const q = [];
  let timer = null;
  const flush = () => {
    timer = null;
    const now = Date.now();
    while (q.length && q[0].due <= now) dst.write(q.shift().d);
    if (q.length) timer = setTimeout(flush, q[0].due - now);
  };
  dst.on('close', () => { if (timer) clearTimeout(timer); q.length = 0; });
  return {
    write(d) {
      const ms = delayMs();
      if (!ms && !q.length) { dst.write(d); return; }
      q.push({ d, due: Date.now() + ms });
      if (!timer) timer = setTimeout(flush, Math.max(0, q[0].due - Date.now()));
    },
    end() { const fin = () => (q.length ? setTimeout(fin, 10) : dst.end()); fin(); },
  };
}

/** Forwards src to dst, each chunk delayMs() later, in order. */
function pipeDelayed(src, dst, delayMs) {
  const w = delayedWriter(dst, delayMs);
  src.on('data', (d) => w.write(d));
  src.on('end', () => w.end());
}

/**
 * Forwards a client's ZooKeeper frames to dst, whole, holding a connection
 * from its first request whose type is in p.holdTypes until p.release().
 * Returns the connection's entry in p's hold list.
 */
function pipeFrames(p, src, dst) {
  const w = delayedWriter(dst, () => p.delayMs);
  const c = { held: null, ended: false, flush: null };
  let buf = Buffer.alloc(0);
  let first = true; // the ConnectRequest has no xid or type
  c.flush = () => {
    const q = c.held;
    c.held = null;
    for (const f of q || []) w.write(f);
    if (c.ended) w.end();
  };
  src.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 4) {
      const len = buf.readInt32BE(0);
      if (len < 0) { src.destroy(); return; } // not ZooKeeper's framing: a link down, not a stall
      if (buf.length < 4 + len) break;
      const f = buf.subarray(0, 4 + len);
      buf = buf.subarray(4 + len);
      const type = !first && len >= 8 ? f.readInt32BE(8) : null;
      first = false;
      if (!c.held && type !== null && p.holdTypes && p.holdTypes.has(type) && !(p.holdSkip > 0 && p.holdSkip--)) c.held = [];
      if (c.held) { c.held.push(f); p.held++; } else w.write(f);
    }
  });
  src.on('end', () => { c.ended = true; if (!c.held) w.end(); });
  return c;
}

export async function startProxy(target, { host = '127.0.0.1', delayMs = 0, frames = false } = {}) {
  const targets = Array.isArray(target) ? target : String(target).split(',');
  const socks = new Set();
  let down = false;
  let next = 0;
  const conns = new Set(); // with frames: each connection's hold state
  const p = {
    targets, addr: null, accepted: 0, refused: 0, delayMs, holdTypes: null, holdSkip: 0, held: 0,
    release() {
      p.holdTypes = null;
      for (const c of conns) if (c.held) c.flush();
    },
    cut() {
      down = true;
      for (const s of socks) s.resetAndDestroy ? s.resetAndDestroy() : s.destroy();
      socks.clear();
    },
    heal() { down = false; },
    isDown: () => down,
    close() {
      p.cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  const server = net.createServer((client) => {
    if (down) { p.refused++; client.destroy(); return; }
    p.accepted++;
    const [host, port] = p.targets[next++ % p.targets.length].split(':');
    const upstream = net.connect({ host, port: Number(port) });
    socks.add(client);
    socks.add(upstream);
    const c = frames ? pipeFrames(p, client, upstream) : null;
    if (c) conns.add(c);
    const done = () => { conns.delete(c); socks.delete(client); socks.delete(upstream); client.destroy(); upstream.destroy(); };
    client.on('error', done);
    upstream.on('error', done);
    client.on('close', done);
    upstream.on('close', done);
    if (!c) pipeDelayed(client, upstream, () => p.delayMs);
    pipeDelayed(upstream, client, () => p.delayMs);
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, host, resolve); });
  p.addr = `${host}:${server.address().port}`;
  return p;
}
