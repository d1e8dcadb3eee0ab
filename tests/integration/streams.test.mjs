// Many idle event streams on one gateway: 2,000 streams stay open with
// keepalive comments (--keepalive-ms 500), the zoosync_event_streams gauge
// counts them, the gateway's memory stays sane, a change reaches every one,
// and the gauge goes back down when they close. Also: --max-streams.
//
// Open files: the streams are held by forked child processes
// (tests/lib/sse-holder.mjs), 500 each, so the test works whatever this
// process's descriptor limit is (Node raises its soft limit to the hard one
// at start, children inherit it; 500 sockets fit under even a 1024 limit).
// The gateway raises its own soft limit to the hard one; when that is below
// what 2,000 streams need, the test is skipped, saying so.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after } from 'node:test';
import { setupEnv, it, startGateway, uniq, REPO } from '../lib/harness.mjs';
import { Api, expectError, eventually, getMetrics, request } from '../lib/http.mjs';
import { openEvents, closeAllEvents } from '../lib/sse.mjs';

const env = setupEnv();
const HOLDER = path.join(REPO, 'tests', 'lib', 'sse-holder.mjs');
const children = new Set();
after(() => {
  closeAllEvents();
  for (const c of children) { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }
});

const STREAMS = Number(process.env.STREAMS_TOTAL) || 2000;
const PER_CHILD = 500;

function rssKb(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return m ? Number(m[1]) : NaN;
}
function maxOpenFiles(pid) {
  const m = readFileSync(`/proc/${pid}/limits`, 'utf8').match(/^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m);
  return m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : NaN;
}

/** A forked holder of n streams; ask(msg, replyType) sends a message and waits for the reply. */
function holder(url, p, n) {
  const child = fork(HOLDER, [url, p, String(n), '50'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  const waiting = new Map();
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => { children.delete(child); resolve({ code, sig }); }));
  child.on('message', (m) => {
    const w = waiting.get(m.type);
    if (w) { waiting.delete(m.type); w(m); }
  });
  const next = (type, ms = 30000) => new Promise((resolve, reject) => {
    const t = setTimeout(() => { waiting.delete(type); reject(new Error(`holder ${child.pid}: no '${type}' in ${ms} ms`)); }, ms);
    waiting.set(type, (m) => { clearTimeout(t); resolve(m); });
  });
  const opened = next('opened', 60000);
  return {
    child, opened, exited,
    ask: (msg, type, ms) => { const r = next(type, ms); child.send(msg); return r; },
    kill: () => { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } return exited; },
  };
}

it(`${STREAMS} idle event streams stay open with keepalives; the gauge counts them and goes back down`, { timeout: 120000 }, async (t) => {
  await env.ready();
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'streams',
    // every stream comes from 127.0.0.1: lift the per-address caps (issue 16, item 3 and 7)
    args: ['--keepalive-ms', '500', '--max-conns-per-ip', '0', '--max-streams-per-ip', '0'] });
  const limit = maxOpenFiles(G.pid);
  if (!(limit >= STREAMS + 100)) {
    t.skip(`the gateway's open-file limit is ${limit}, below ${STREAMS} streams plus headroom (raise the hard limit: ulimit -Hn)`);
    await G.stop();
    return;
  }
  const api = new Api(G);
  const s = uniq('st');
  await api.createStore(s);
  await api.pushOk(s, 'c', [{ id: 1, key: 'k', op: 'put', value: 'x'.repeat(100) }]);
  const c0 = await api.getCursor(s);
  const rss0 = rssKb(G.pid);
  const holders = [];
  try {
    // Streams from the present cursor: idle, nothing but comments until the ping below.
    for (let left = STREAMS; left > 0; left -= PER_CHILD) holders.push(holder(G.url, `/v1/stores/${s}/events?since=${c0}`, Math.min(PER_CHILD, left)));
    const opened = await Promise.all(holders.map((h) => h.opened));
    const ok = opened.reduce((x, o) => x + o.ok, 0);
    assert.equal(ok, STREAMS, `streams opened: ${JSON.stringify(opened)}`);
    const gauge = await eventually(async () => {
      const v = (await getMetrics(G)).get('zoosync_event_streams');
      return v === STREAMS && v;
    }, { ms: 5000, what: `zoosync_event_streams == ${STREAMS}` });
    assert.equal(gauge, STREAMS);

    // Keepalives: every stream gets at least two within a few seconds.
    await Promise.all(holders.map((h) => h.ask({ type: 'reset' }, 'reset')));
    const resetAt = Date.now();
    let reports;
    await eventually(async () => {
      reports = await Promise.all(holders.map((h) => h.ask({ type: 'report' }, 'report')));
      return reports.every((r) => r.minKeepalives >= 2);
    }, { ms: 4000, every: 250, what: 'at least two keepalives on every stream' }).catch((e) => {
      throw new Error(`${e.message}; reports ${JSON.stringify(reports)}`);
    });
    const tookMs = Date.now() - resetAt;
    assert.ok(reports.every((r) => r.open === PER_CHILD || r.open === STREAMS % PER_CHILD), `streams still open: ${JSON.stringify(reports)}`);
    assert.ok(reports.every((r) => r.ended === 0), `streams ended: ${JSON.stringify(reports)}`);

    // The gateway still answers promptly, and its memory is sane.
    const t0 = Date.now();
    const health = await request(G.url, 'GET', '/healthz', { timeout: 3000 });
    assert.equal(health.status, 200);
    const rss1 = rssKb(G.pid);
    const perStreamKb = (rss1 - rss0) / STREAMS;
    console.log(`${STREAMS} streams: RSS ${rss0} kB -> ${rss1} kB (${perStreamKb.toFixed(1)} kB per stream), two keepalives each within ${tookMs} ms, /healthz in ${Date.now() - t0} ms`);
    assert.ok(perStreamKb < 128, `RSS grew ${rss1 - rss0} kB for ${STREAMS} streams (${perStreamKb.toFixed(1)} kB each)`);
    assert.ok(rss1 < 1024 * 1024, `RSS ${rss1} kB`);

    // A change reaches every stream.
    const marker = `ping-${Date.now()}`;
    await Promise.all(holders.map((h) => h.ask({ type: 'mark', marker }, 'marking')));
    await api.pushOk(s, 'c', [{ id: 2, key: 'ping', op: 'put', value: marker }]);
    await eventually(async () => {
      reports = await Promise.all(holders.map((h) => h.ask({ type: 'report' }, 'report')));
      return reports.reduce((x, r) => x + r.marked, 0) === STREAMS;
    }, { ms: 5000, every: 200, what: 'the change on every stream' }).catch((e) => {
      throw new Error(`${e.message}; reports ${JSON.stringify(reports)}`);
    });

    // Closing them brings the gauge back down.
    await Promise.all(holders.map((h) => h.ask({ type: 'close' }, 'closed')));
    await Promise.all(holders.map((h) => h.exited));
    await eventually(async () => (await getMetrics(G)).get('zoosync_event_streams') === 0, { ms: 5000, every: 100, what: 'zoosync_event_streams back to 0' });
  } finally {
    await Promise.all(holders.map((h) => h.kill()));
  }
  await G.stop();
});

it('--max-streams: one more stream is 429 too_many_requests with Retry-After, until one closes', async () => {
  await env.ready();
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'max3', args: ['--max-streams', '3', '--keepalive-ms', '500'] });
  const api = new Api(G);
  const s = uniq('mx');
  await api.createStore(s);
  const open = [];
  try {
    for (let i = 0; i < 3; i++) { const es = openEvents(G, s); open.push(es); await es.opened(); }
    const r = await request(G.url, 'GET', `/v1/stores/${s}/events`, { headers: { Accept: 'text/event-stream' }, timeout: 3000 });
    expectError(r, 429, 'too_many_requests');
    assert.match(String(r.headers['retry-after']), /^[0-9]+$/, 'Retry-After');
    assert.equal((await getMetrics(G)).get('zoosync_event_streams'), 3);
    open[0].close();
    const es = await eventually(async () => {
      const x = openEvents(G, s);
      try { await x.opened(); return x; } catch { x.close(); return false; }
    }, { ms: 5000, every: 200, what: 'a stream opens once one closed' });
    open.push(es);
  } finally {
    for (const es of open) es.close();
  }
  await G.stop();
});
