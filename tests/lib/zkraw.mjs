// A minimal ZooKeeper client for tests: a foreign writer that is fast (no
// JVM start per command, unlike zkCli). Speaks the documented wire protocol:
// connect, create, setData, delete, getData (with its Stat), getChildren2,
// close. World-open ACL only.
//
//   const zk = await zkConnect('127.0.0.1:2181', { auth: 'user:password' });
//   await zk.create('/a', '{"x":1}'); await zk.set('/a', '{"x":2}'); await zk.delete('/a');
//   zk.close();
// Each call resolves { err, zxid, ... } (err 0 = ok; -101 no node, -110 exists).
import net from 'node:net';

const int = (v) => { const b = Buffer.alloc(4); b.writeInt32BE(v); return b; };
const long = (v) => { const b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(v)); return b; };
const str = (t) => { const b = Buffer.from(t); return Buffer.concat([int(b.length), b]); };
const frame = (...parts) => { const b = Buffer.concat(parts); return Buffer.concat([int(b.length), b]); };
const OPEN_ACL = Buffer.concat([int(1), int(31), str('world'), str('anyone')]);

/** The jute Stat at off: zxids as BigInt, version etc. as numbers. */
function readStat(b, off) {
  return {
    czxid: b.readBigInt64BE(off), mzxid: b.readBigInt64BE(off + 8), ctime: Number(b.readBigInt64BE(off + 16)), mtime: Number(b.readBigInt64BE(off + 24)),
    version: b.readInt32BE(off + 32), cversion: b.readInt32BE(off + 36), aversion: b.readInt32BE(off + 40),
    ephemeralOwner: b.readBigInt64BE(off + 44), dataLength: b.readInt32BE(off + 52), numChildren: b.readInt32BE(off + 56), pzxid: b.readBigInt64BE(off + 60),
  };
}

export function zkConnect(hostPort, { auth } = {}) {
  const [host, port] = hostPort.split(',')[0].split(':');
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port: Number(port) });
    let buf = Buffer.alloc(0);
    let connected = false;
    let xid = 1;
    const pending = new Map();
    s.on('error', (e) => { if (!connected) reject(e); for (const p of pending.values()) p.reject(e); pending.clear(); });
    s.on('close', () => { for (const p of pending.values()) p.reject(new Error('zkraw: connection closed')); pending.clear(); });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const f = buf.subarray(4, 4 + buf.readUInt32BE(0));
        buf = buf.subarray(4 + f.length);
        if (!connected) {
          connected = true;
          if (auth) s.write(frame(int(-4), int(100), int(0), str('digest'), str(auth)));
          resolve(api);
          continue;
        }
        const rx = f.readInt32BE(0);
        if (rx < 0) continue; // pings, notifications
        const p = pending.get(rx);
        if (!p) continue;
        pending.delete(rx);
        p.resolve({ err: f.readInt32BE(12), zxid: f.readBigInt64BE(4), body: f.subarray(16) });
      }
    });
    const call = (type, ...parts) => new Promise((res, rej) => {
      const x = xid++;
      pending.set(x, { resolve: res, reject: rej });
      s.write(frame(int(x), int(type), ...parts));
    });
    const api = {
      create: (p, data = '', acl = OPEN_ACL) => call(1, str(p), str(data), acl, int(0)),
      getAcl: async (p) => {
        const r = await call(6, str(p));
        if (r.err) return r;
        const n = r.body.readInt32BE(0);
        const acl = [];
        let off = 4;
        const rd = () => { const l = r.body.readInt32BE(off); off += 4; const t = r.body.subarray(off, off + l).toString(); off += l; return t; };
        for (let i = 0; i < n; i++) { const perms = r.body.readInt32BE(off); off += 4; acl.push({ perms, scheme: rd(), id: rd() }); }
        return { ...r, acl };
      },
      set: (p, data, version = -1) => call(5, str(p), str(data), int(version)),
      delete: (p, version = -1) => call(2, str(p), int(version)),
      get: async (p) => {
        const r = await call(4, str(p), Buffer.from([0]));
        if (r.err) return r;
        const n = r.body.readInt32BE(0);
        return { ...r, data: n < 0 ? null : r.body.subarray(4, 4 + n).toString(), stat: readStat(r.body, 4 + Math.max(0, n)) };
      },
      /** getChildren2: { err, children: [names], stat } (stat.pzxid: the last child change). */
      children: async (p) => {
        const r = await call(12, str(p), Buffer.from([0]));
        if (r.err) return r;
        const n = r.body.readInt32BE(0);
        const children = [];
        let off = 4;
        for (let i = 0; i < n; i++) { const l = r.body.readInt32BE(off); off += 4; children.push(r.body.subarray(off, off + l).toString()); off += l; }
        return { ...r, children, stat: readStat(r.body, off) };
      },
      /** sync: the server this session is on has applied every write committed before it (then read). */
      sync: (p) => call(9, str(p)),
      close: () => { call(-11).catch(() => {}); setTimeout(() => s.destroy(), 100); },
    };
    s.on('connect', () => s.write(frame(int(0), long(0), int(10000), long(0), int(16), Buffer.alloc(16), Buffer.from([0]))));
  });
}
