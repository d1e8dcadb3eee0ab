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
// startProxy(target, { host }) listens on host (default 127.0.0.1; the
// partition tests use the test's own address on their private bridge).
// Stopped by the test that started it.
import net from 'node:net';

/** Forwards src to dst, each chunk delayMs() later, in order. */
function pipeDelayed(src, dst, delayMs) {
  const q = [];
  let timer = null;
  const flush = () => {
    timer = null;
    const now = Date.now();
    while (q.length && q[0].due <= now) dst.write(q.shift().d);
    if (q.length) timer = setTimeout(flush, q[0].due - now);
  };
  src.on('data', (d) => {
    const ms = delayMs();
    if (!ms && !q.length) { dst.write(d); return; }
    q.push({ d, due: Date.now() + ms });
    if (!timer) timer = setTimeout(flush, Math.max(0, q[0].due - Date.now()));
  });
  src.on('end', () => { const fin = () => (q.length ? setTimeout(fin, 10) : dst.end()); fin(); });
  dst.on('close', () => { if (timer) clearTimeout(timer); q.length = 0; });
}

export async function startProxy(target, { host = '127.0.0.1', delayMs = 0 } = {}) {
  const targets = Array.isArray(target) ? target : String(target).split(',');
  const socks = new Set();
  let down = false;
  let next = 0;
  const p = {
    targets, addr: null, accepted: 0, refused: 0, delayMs,
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
    const done = () => { socks.delete(client); socks.delete(upstream); client.destroy(); upstream.destroy(); };
    client.on('error', done);
    upstream.on('error', done);
    client.on('close', done);
    upstream.on('close', done);
    pipeDelayed(client, upstream, () => p.delayMs);
    pipeDelayed(upstream, client, () => p.delayMs);
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, host, resolve); });
  p.addr = `${host}:${server.address().port}`;
  return p;
}
