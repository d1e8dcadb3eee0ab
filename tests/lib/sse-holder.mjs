// A child process that holds many idle event streams open (forked by a test
// with an IPC channel), so that one test can hold thousands of streams
// without running into its own open-file limit. Each stream is a raw
// node:http GET; the child counts, per stream, the `: keepalive` comments and
// whether a given marker string arrived in a data line.
//
//   fork(holder, [baseUrl, path, count, concurrency])
//   parent -> child: {type: 'report'} | {type: 'mark', marker} | {type: 'close'}
//   child -> parent: {type: 'opened', ok, failed, errors}
//                    {type: 'report', open, ended, minKeepalives, maxKeepalives, marked, keepalivesTotal}
//                    {type: 'closed'}
import http from 'node:http';

const [base, path, countArg, concArg] = process.argv.slice(2);
const count = Number(countArg);
const concurrency = Number(concArg) || 50;
const u = new URL(base);
const streams = [];
let marker = null;

function openOne() {
  return new Promise((resolve) => {
    const st = { ok: false, opened: false, ended: false, keepalives: 0, marked: false, buf: '', req: null, res: null };
    streams.push(st);
    const fail = (why) => { if (!st.opened) { st.opened = true; st.error = why; resolve(st); } };
    st.req = http.request({ host: u.hostname, port: u.port, path, method: 'GET', agent: false, headers: { Accept: 'text/event-stream' } }, (res) => {
      st.res = res;
      res.setEncoding('utf8');
      if (res.statusCode !== 200) { res.resume(); fail(`status ${res.statusCode}`); return; }
      res.on('data', (d) => {
        st.buf += d;
        let i;
        while ((i = st.buf.indexOf('\n')) >= 0) {
          const line = st.buf.slice(0, i).replace(/\r$/, '');
          st.buf = st.buf.slice(i + 1);
          if (line === ': keepalive') st.keepalives++;
          else if (line.startsWith(': ') && !st.opened) { st.ok = true; st.opened = true; resolve(st); }
          else if (marker && line.startsWith('data:') && line.includes(marker)) st.marked = true;
        }
      });
      res.on('end', () => { st.ended = true; });
      res.on('close', () => { st.ended = true; });
      res.on('error', () => { st.ended = true; });
    });
    st.req.on('error', (e) => { st.ended = true; fail(e.code || e.message); });
    st.req.setTimeout(15000, () => { if (!st.opened) st.req.destroy(new Error('open timeout')); });
    st.req.end();
  });
}

async function openAll() {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) { next++; await openOne(); }
  });
  await Promise.all(workers);
  const failed = streams.filter((s) => !s.ok);
  process.send({ type: 'opened', ok: streams.length - failed.length, failed: failed.length, errors: [...new Set(failed.map((s) => s.error))].slice(0, 5) });
}

process.on('message', (m) => {
  if (m.type === 'report') {
    const ks = streams.map((s) => s.keepalives);
    process.send({
      type: 'report',
      open: streams.filter((s) => s.ok && !s.ended).length,
      ended: streams.filter((s) => s.ended).length,
      minKeepalives: Math.min(...ks),
      maxKeepalives: Math.max(...ks),
      keepalivesTotal: ks.reduce((x, y) => x + y, 0),
      marked: streams.filter((s) => s.marked).length,
    });
  } else if (m.type === 'reset') {
    for (const s of streams) s.keepalives = 0;
    process.send({ type: 'reset' });
  } else if (m.type === 'mark') {
    marker = m.marker;
    process.send({ type: 'marking' });
  } else if (m.type === 'close') {
    for (const s of streams) { try { s.req.destroy(); } catch { /* gone */ } }
    process.send({ type: 'closed' }, () => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));

openAll();
