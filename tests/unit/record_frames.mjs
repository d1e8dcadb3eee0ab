// Records real ZooKeeper frames for tests/unit/test_zkw.c: connects to a
// running server, speaks the wire protocol, and prints each frame the
// server sent as a C string literal. Not run by the tests (the frames are
// pasted into the test); run it again when the protocol code changes:
//
//   scripts/zk.sh start /tmp/rec && node tests/unit/record_frames.mjs "$(cat /tmp/rec/connect)"
//   scripts/zk.sh stop /tmp/rec
import net from 'node:net';

const [host, port] = (process.argv[2] || '127.0.0.1:2181').split(':');
const s = net.connect({ host, port: Number(port) });
let buf = Buffer.alloc(0);
const frames = [];
const waiters = [];
s.on('data', (d) => {
  buf = Buffer.concat([buf, d]);
  while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
    const n = buf.readUInt32BE(0);
    frames.push(buf.subarray(4, 4 + n));
    buf = buf.subarray(4 + n);
    while (waiters.length && frames.length) waiters.shift()(frames.shift());
  }
});
const next = () => new Promise((r) => (frames.length ? r(frames.shift()) : waiters.push(r)));
const int = (v) => { const b = Buffer.alloc(4); b.writeInt32BE(v); return b; };
const long = (v) => { const b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(v)); return b; };
const str = (t) => Buffer.concat([int(Buffer.byteLength(t)), Buffer.from(t)]);
const bool = (v) => Buffer.from([v ? 1 : 0]);
const frame = (...parts) => { const b = Buffer.concat(parts); return Buffer.concat([int(b.length), b]); };
const show = (name, b) => console.log(`/* ${name} */\nstatic const char ${name}[] = "${[...b].map((x) => '\\x' + x.toString(16).padStart(2, '0')).join('')}";\n`);

const root = `/rec${process.pid}`;
const empty = Buffer.alloc(0);
s.write(frame(int(0), long(0), int(10000), long(0), int(16), Buffer.alloc(16), bool(false)));
show('connect_response', await next());
// create root and a child with data {"a":1} (create: type 1; ACL world:anyone all; flags 0)
const acl = Buffer.concat([int(1), int(31), str('world'), str('anyone')]);
s.write(frame(int(1), int(1), str(root), int(0), acl, int(0)));
await next();
s.write(frame(int(2), int(1), str(`${root}/x`), int(7), Buffer.from('{"a":1}'), acl, int(0)));
await next();
// addWatch(root, recursive)
s.write(frame(int(3), int(106), str(root), int(1)));
show('add_watch_reply', await next());
// multiRead: getData(root/x), getChildren(root), getData(root/missing)
s.write(frame(int(4), int(22),
  int(4), bool(false), int(-1), str(`${root}/x`), bool(false),
  int(8), bool(false), int(-1), str(root), bool(false),
  int(4), bool(false), int(-1), str(`${root}/missing`), bool(false),
  int(-1), bool(true), int(-1)));
show('multi_read_reply', await next());
// setData(root/x) -> a notification, then the reply
s.write(frame(int(5), int(5), str(`${root}/x`), int(7), Buffer.from('{"a":2}'), int(-1)));
show('notification_changed', await next());
show('set_data_reply', await next());
// sync
s.write(frame(int(6), int(9), str('/')));
show('sync_reply', await next());
// SetWatches2 with relativeZxid 0: a data watch on root/x (changed since 0 -> event at once)
s.write(frame(int(-8), int(105), long(0), int(1), str(`${root}/x`), int(0), int(0), int(0), int(0)));
show('set_watches_event', await next());
show('set_watches_reply', await next());
// clean up: delete root/x, root; close
s.write(frame(int(7), int(2), str(`${root}/x`), int(-1)));
await next(); await next(); // the recursive watch reports the delete, then the reply
s.write(frame(int(8), int(2), str(root), int(-1)));
await next(); await next();
s.write(frame(int(9), int(-11)));
await next();
s.end();
void empty;
