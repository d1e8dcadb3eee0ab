// A fault-injecting TCP proxy for tests, in the manner of Toxiproxy: it
// listens on a loopback port and forwards every connection to a target.
//
//   const p = await startProxy(targetHostPort);   // p.addr = '127.0.0.1:NNNN'
//   p.cut();    // resets every open connection and refuses new ones (a link down)
//   p.heal();   // accepts again
//   p.targets = ['127.0.0.1:2181', ...]  // where new connections go (round robin)
//   await p.close();
//
// Only loopback addresses; stopped by the test that started it.
import net from 'node:net';

export async function startProxy(target) {
  const targets = Array.isArray(target) ? target : String(target).split(',');
  const socks = new Set();
  let down = false;
  let next = 0;
  const p = {
    targets, addr: null, accepted: 0, refused: 0,
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
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  p.addr = `127.0.0.1:${server.address().port}`;
  return p;
}
