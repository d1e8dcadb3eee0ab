// Network namespaces for the partition tests (tests/chaos/): every host of a
// test (ZooKeeper servers, gateways) in a namespace of its own, created by
// the test and deleted by it, even when it fails or is interrupted.
//
//   const net = await createNet(['zk1', 'zk2', 'zk3', 'gw1', 'gw2'], { clientLinks: ['gw1', 'gw2'] });
//   net.ns('zk1')          // its namespace name (for `ip netns exec`)
//   net.addr('zk1')        // its address on the backend bridge (10.A.B.11...)
//   net.clientAddr('gw1')  // the gateway's address on its client link
//   await net.down('zk1')  // its backend link down (cut from everyone); net.up('zk1')
//   await net.clientDown('gw1') / clientUp('gw1')  // the gateway's client link
//   await net.loss('gw1', 20)   // drop 20% of its TCP packets, both ways (nftables in its namespace); loss('gw1', 0) heals
//   await net.destroy()
//
// Topology (nothing is routed off the machine; the host's own interfaces,
// routes and firewall are untouched but for the veths below):
//
//   ns <p>-hub: bridge br0 (no address)
//     each host H: ns <p>-H, eth0 = 10.A.B.(10+i)/24, a veth whose other end is in the hub, on br0
//     the test process (root namespace): <p>o = 10.A.B.1/24, also on br0 ("observer": reads
//       ZooKeeper directly, for the self-checks)
//   each gateway with a client link: a veth pair root namespace <p>cI = 10.A.(B+1).(4I+1)/30
//     <-> cli0 = 10.A.(B+1).(4I+2)/30 in the gateway's namespace: the test's HTTP clients talk
//     to the gateway there, so its backend (ZooKeeper) and client links fail separately.
//
// `tc netem` is not used: this machine's kernel has no sch_netem (probed by
// support()). Loss is an nftables rule (`numgen random mod 100 < N drop`) in
// the host's own namespace; delay, stalls and resets come from the
// test-owned TCP proxy (tests/lib/proxy.mjs).
import { execFile, execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';

const live = new Set();   // nets not destroyed yet (for the exit handlers)

function run(cmd, args, { input, allowFail = false } = {}) {
  return new Promise((resolve, reject) => {
    const c = execFile(cmd, args, { timeout: 20000 }, (err, stdout, stderr) => {
      if (err && !allowFail) { err.message = `${cmd} ${args.join(' ')}: ${err.message} ${stderr}`; reject(err); } else resolve({ ok: !err, stdout, stderr });
    });
    if (input !== undefined) c.stdin.end(input);
  });
}
const ip = (...a) => run('ip', a);

/** { ok, reason }: whether this process can create namespaces, veths and bridges (root, iproute2, kernel). */
export async function support() {
  if (process.platform !== 'linux') return { ok: false, reason: 'not Linux' };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { ok: false, reason: 'not root (network namespaces need CAP_NET_ADMIN)' };
  const probe = `zsprobe${process.pid}`;
  try {
    await ip('netns', 'add', probe);
  } catch (e) {
    return { ok: false, reason: `ip netns add refused: ${e.message.split('\n')[0]}` };
  }
  try {
    await ip('-n', probe, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'a1');
    await ip('-n', probe, 'link', 'add', 'b0', 'type', 'bridge');
  } catch (e) {
    return { ok: false, reason: `veth or bridge refused: ${e.message.split('\n')[0]}` };
  } finally {
    await run('ip', ['netns', 'del', probe], { allowFail: true });
  }
  const nft = await run('nft', ['--version'], { allowFail: true });
  return { ok: true, nft: nft.ok };
}

/** Deletes namespaces and host veths left by earlier runs whose process is gone (names carry the pid). */
export function reapStale() {
  let names = [];
  try { names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]).filter(Boolean); } catch { return; }
  for (const n of names) {
    const m = n.match(/^zs(\d+)x[0-9a-f]+-/);
    if (!m) continue;
    if (alive(Number(m[1]))) continue;
    try { execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' }); } catch { /* gone */ }
  }
}
function alive(pid) { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } }

function pickSubnet() {
  // 10.A.B.0/24 (backend) and 10.A.(B+1).0/24 (client links), not overlapping anything the host routes.
  let used = '';
  try { used = execFileSync('ip', ['-4', 'route', 'show', 'table', 'all'], { encoding: 'utf8' }) + execFileSync('ip', ['-4', 'addr'], { encoding: 'utf8' }); } catch { /* none */ }
  for (let i = 0; i < 50; i++) {
    const a = 64 + randomInt(128), b = 2 * randomInt(120);
    if (!used.includes(`10.${a}.`)) return [a, b];
  }
  throw new Error('netns: no free 10.x subnet');
}

export async function createNet(hosts, { clientLinks = [] } = {}) {
  reapStale();
  const tag = `zs${process.pid}x${randomInt(0x10000).toString(16)}`;   // ns prefix
  const short = `z${randomInt(0x100000).toString(16)}`;                  // host-side interface prefix (IFNAMSIZ 15)
  const [A, B] = pickSubnet();
  const hub = `${tag}-hub`;
  const idx = new Map(hosts.map((h, i) => [h, i + 1]));
  const net = {
    tag, hub, hosts, subnet: `10.${A}.${B}.0/24`, log: [], destroyed: false,
    ns: (h) => { if (!idx.has(h)) throw new Error(`netns: no host ${h}`); return `${tag}-${h}`; },
    addr: (h) => `10.${A}.${B}.${10 + idx.get(h)}`,
    observerAddr: `10.${A}.${B}.1`,
    clientAddr: (h) => { const i = clientLinks.indexOf(h); if (i < 0) throw new Error(`netns: ${h} has no client link`); return `10.${A}.${B + 1}.${4 * i + 2}`; },
    event(what) { net.log.push({ at: Date.now(), what }); },
  };
  live.add(net);
  const created = [];   // namespaces, for destroy
  const hostIfs = [];
  net.destroy = async () => {
    if (net.destroyed) return;
    net.destroyed = true;
    for (const n of created.reverse()) await run('ip', ['netns', 'del', n], { allowFail: true });
    for (const i of hostIfs) await run('ip', ['link', 'del', i], { allowFail: true });  // normally gone with their peers
    live.delete(net);
  };
  try {
    await ip('netns', 'add', hub); created.push(hub);
    await ip('-n', hub, 'link', 'set', 'lo', 'up');
    await ip('-n', hub, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', hub, 'link', 'set', 'br0', 'up');
    for (const h of hosts) {
      const ns = net.ns(h), i = idx.get(h);
      await ip('netns', 'add', ns); created.push(ns);
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
      await ip('-n', hub, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      await ip('-n', hub, 'link', 'set', `p${i}`, 'master', 'br0');
      await ip('-n', hub, 'link', 'set', `p${i}`, 'up');
      await ip('-n', ns, 'addr', 'add', `${net.addr(h)}/24`, 'dev', 'eth0');
      await ip('-n', ns, 'link', 'set', 'eth0', 'up');
    }
    // The observer: the test process's own leg on the bridge.
    const obs = `${short}o`;
    await ip('link', 'add', obs, 'type', 'veth', 'peer', 'name', 'obs', 'netns', hub); hostIfs.push(obs);
    await ip('-n', hub, 'link', 'set', 'obs', 'master', 'br0');
    await ip('-n', hub, 'link', 'set', 'obs', 'up');
    await ip('addr', 'add', `${net.observerAddr}/24`, 'dev', obs);
    await ip('link', 'set', obs, 'up');
    for (const [k, h] of clientLinks.entries()) {
      const hi = `${short}c${k}`;
      await ip('link', 'add', hi, 'type', 'veth', 'peer', 'name', 'cli0', 'netns', net.ns(h)); hostIfs.push(hi);
      await ip('addr', 'add', `10.${A}.${B + 1}.${4 * k + 1}/30`, 'dev', hi);
      await ip('link', 'set', hi, 'up');
      await ip('-n', net.ns(h), 'addr', 'add', `${net.clientAddr(h)}/30`, 'dev', 'cli0');
      await ip('-n', net.ns(h), 'link', 'set', 'cli0', 'up');
    }
  } catch (e) {
    await net.destroy();
    throw e;
  }
  const setLink = async (h, dev, state) => { await ip('-n', net.ns(h), 'link', 'set', dev, state); net.event(`${h} ${dev} ${state}`); };
  net.down = (h) => setLink(h, 'eth0', 'down');
  net.up = (h) => setLink(h, 'eth0', 'up');
  net.clientDown = (h) => setLink(h, 'cli0', 'down');
  net.clientUp = (h) => setLink(h, 'cli0', 'up');
  /** Drops pct% of the TCP packets the host sends and receives (0: none). nftables, in its namespace only. */
  net.loss = async (h, pct) => {
    const ns = net.ns(h);
    await run('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'zschaos'], { allowFail: true });
    if (pct > 0) {
      const rules = `table inet zschaos {
  chain out { type filter hook output priority 0; policy accept;
    oifname != "lo" meta l4proto tcp numgen random mod 100 < ${pct} drop
  }
  chain in { type filter hook input priority 0; policy accept;
    iifname != "lo" meta l4proto tcp numgen random mod 100 < ${pct} drop
  }
}
`;
      await run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: rules });
    }
    net.event(`${h} loss ${pct}%`);
  };
  /** `ip netns exec` prefix for spawning a command in h's namespace. */
  net.exec = (h, cmd, args = []) => ({ cmd: 'ip', args: ['netns', 'exec', net.ns(h), cmd, ...args] });
  return net;
}

// Interrupted or crashed runs still delete what they created.
function destroyAllSync() {
  for (const net of live) {
    for (const h of [...net.hosts, 'hub']) { try { execFileSync('ip', ['netns', 'del', `${net.tag}-${h}`], { stdio: 'ignore' }); } catch { /* gone */ } }
    live.delete(net);
  }
}
process.on('exit', destroyAllSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => { destroyAllSync(); process.kill(process.pid, sig); });
}
