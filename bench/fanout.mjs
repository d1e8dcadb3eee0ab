// B4: 10,000 event-stream subscribers on one gateway (issue 13; 1,000 in
// round 1), one writer at 100 writes/s; latency from the push's acknowledgement (the writer got its 200)
// to the change's arrival at every subscriber, p50 and p99 over all
// (subscriber, write) pairs.
//
// The subscribers are one C process (bench/ssesub.c, epoll), the writer
// is this Node process; both take their times from CLOCK_MONOTONIC. The
// writer keeps 100 writes/s open-loop by rotating over 4 client ids (one
// push in flight per id). Ceiling (the floor, for a latency): the same subscribers and
// writer against bench/ssefloor.c, a storage-less epoll server that acks
// and then broadcasts: what the load generator and loopback cost alone.
// Usage: node bench/fanout.mjs --build DIR [--smoke]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  args, emit, log, round, startZk, startGateway, agent, request, value, ensure, machine, sleep, percentile,
  track, cpuSeconds, rss, tmp,
} from './lib.mjs';

const o = args();
const SUBS = Number(o.subscribers || (o.smoke ? 50 : 10000));
const TARGET = { p50: 10, p99: 100 }; // ms (issue 13, at 10,000 subscribers)
const SOURCES = Math.ceil(SUBS / 20000); // loopback source addresses (ssesub --sources)
const RATE = 100;
const WRITES = Number(o.writes || (o.smoke ? 100 : 1500));
const SKIP = Math.min(100, Math.floor(WRITES / 10)); // warm-up writes left out of the figures
const WRITERS = 4; // client ids the one writer rotates over, so that it can keep 100/s open-loop
const now = () => Number(process.hrtime.bigint()) / 1e6; // CLOCK_MONOTONIC, as ssesub

/** Starts bench/ssesub on url; resolves once every stream is open. */
async function subscribers(url, label) {
  const u = new URL(url);
  const out = path.join(tmp('fanout'), `recv-${label}.f64`);
  const p = spawn(o.ssesub, ['--port', u.port, '--host', u.hostname, '--path', '/v1/stores/bench/events',
    '--conns', String(SUBS), '--writes', String(WRITES), '--out', out, '--connect-batch', '500', '--sources', String(SOURCES)],
  { stdio: ['pipe', 'pipe', 'inherit'] });
  const untrack = track(p.pid);
  let buf = '';
  p.stdout.setEncoding('utf8');
  const lines = [];
  let wake = null;
  p.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); if (wake) wake(); }
  });
  const exited = new Promise((r) => p.on('exit', (c) => { untrack(); r(c); }));
  const nextLine = async () => {
    while (!lines.length) {
      const c = await Promise.race([new Promise((r) => { wake = r; }), exited.then((code) => ({ code }))]);
      if (c && c.code !== undefined && !lines.length) throw new Error(`ssesub exited ${c.code}`);
    }
    return lines.shift();
  };
  const ready = (await nextLine()).split(' ');
  ensure(ready[0] === 'ready' && Number(ready[1]) === SUBS, `${label}: streams opened: ${ready.join(' ')}`);
  return {
    async finish() {
      p.stdin.end();
      const stats = JSON.parse(await nextLine());
      await exited;
      const b = readFileSync(out);
      return { stats, recv: new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)) };
    },
  };
}

async function phase(label, url, pid) {
  const subs = await subscribers(url, label);
  log(`B4 ${label}: ${SUBS} streams open`);
  await sleep(500);

  const ag = agent(WRITERS + 1);
  const ack = new Float64Array(WRITES).fill(NaN), sent = new Float64Array(WRITES).fill(NaN);
  const cursors = new Array(WRITES);
  const tag = Math.random().toString(36).slice(2, 8);
  const writers = Array.from({ length: WRITERS }, (_, i) => ({ id: `w${tag}${i}`, next: 1, busy: Promise.resolve() }));
  const cpu0 = pid ? cpuSeconds(pid) : 0;
  const t0 = now();
  let late = 0;
  for (let seq = 0; seq < WRITES; seq++) {
    const due = t0 + seq * (1000 / RATE);
    const wait = due - now();
    if (wait > 1) await sleep(wait);
    const w = writers[seq % WRITERS];
    const before = now();
    await w.busy; // at most one push in flight per client id (ids must arrive in order)
    if (now() - before > 1) late++;
    const id = w.next++;
    w.busy = (async () => {
      sent[seq] = now();
      const body = `{"client":"${w.id}","mutations":[{"id":${id},"key":"w${seq}","op":"put","value":${value(seq, 100)},"base":0}]}`;
      const r = await request(ag, 'POST', `${url}/v1/stores/bench/push`, body);
      ack[seq] = now();
      ensure(r.status === 200, `push: ${r.status} ${r.body}`);
      const res = r.json().results[0];
      ensure(res.status === 'applied', `push of w${seq}: ${JSON.stringify(res)}`);
      cursors[seq] = res.cursor;
    })();
  }
  await Promise.all(writers.map((w) => w.busy));
  const elapsed = (now() - t0) / 1000;
  const gwCpu = pid ? (cpuSeconds(pid) - cpu0) / elapsed : null;
  const gwRss = pid ? rss(pid).rss : null;
  await sleep(o.smoke ? 1000 : 2000); // let the last changes arrive
  const { stats, recv } = await subs.finish();
  ag.destroy();
  const lat = [], fromSend = [];
  let missing = 0, early = 0;
  const missedBy = new Map(); // seq -> how many subscribers never got it
  for (let i = 0; i < SUBS; i++) {
    for (let seq = SKIP; seq < WRITES; seq++) {
      const t = recv[i * WRITES + seq];
      if (Number.isNaN(t)) { missing++; missedBy.set(seq, (missedBy.get(seq) || 0) + 1); continue; }
      const d = t - ack[seq];
      if (d < 0) early++;
      lat.push(d);
      fromSend.push(t - sent[seq]);
    }
  }
  lat.sort((a, b) => a - b);
  fromSend.sort((a, b) => a - b);
  // Writes some subscriber never got: are they in the changes feed?
  const missed = [...missedBy.entries()].sort((a, b) => a[0] - b[0]);
  let inFeed = null;
  if (missed.length && pid) {
    const keys = new Set();
    let since = null;
    for (;;) {
      const r = await request(null, 'GET', `${url}/v1/stores/bench/changes?limit=10000${since ? `&since=${since}` : ''}`);
      const page = r.json();
      for (const c of page.changes) keys.add(c.key);
      since = page.cursor;
      if (!page.more) break;
    }
    inFeed = missed.filter(([seq]) => keys.has(`w${seq}`)).length;
    log(`B4 ${label}: ${missed.length} writes missed by some subscriber (${inFeed} of them are in the changes feed): ` +
      missed.slice(0, 20).map(([seq, k]) => `w${seq}(${k} subs, cursor ${cursors[seq]})`).join(' '));
  }
  const out = {
    missed_writes: missed.length, missed_writes_in_feed: inFeed,
    samples: lat.length, missing, delivered_before_ack: early, ended: stats.ended,
    p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1],
    send_p50: percentile(fromSend, 50), send_p99: percentile(fromSend, 99),
    writes_per_s: WRITES / elapsed, late_writes: late, gateway_cpu: gwCpu, gateway_rss: gwRss,
  };
  log(`B4 ${label}: ack->delivery p50 ${round(out.p50, 2)} ms p99 ${round(out.p99, 2)} ms; missing ${missing}; ${round(out.writes_per_s, 1)} writes/s`);
  return out;
}

// Floor: the storage-less Node server.
const floor = spawn(o.ssefloor, [], { stdio: ['ignore', 'pipe', 'inherit'] });
const untrack = track(floor.pid);
const floorUrl = await new Promise((resolve, reject) => {
  let buf = '';
  floor.stdout.setEncoding('utf8');
  floor.stdout.on('data', (d) => { buf += d; const m = buf.match(/listening on (\S+)/); if (m) resolve(m[1]); });
  floor.on('exit', (c) => reject(new Error(`sse-floor exited ${c}`)));
});
const f = await phase('floor', floorUrl, null);
floor.kill('SIGTERM');
untrack();

const zk = startZk('fanout');
const gw = await startGateway(o, 'fanout', zk, ['--create-store', 'bench', '--max-streams', String(SUBS + 100),
  ...(o['http-threads'] ? ['--http-threads', o['http-threads']] : [])]);
log(`B4: gateway pid ${gw.pid}`);
const g = await phase('gateway', gw.url, gw.pid);

const pass = g.p50 <= TARGET.p50 && g.p99 <= TARGET.p99 && g.missing === 0;
emit({
  id: 'B4', figure: 'ack_to_delivery_ms', value: { p50: round(g.p50, 2), p99: round(g.p99, 2) },
  ceiling: { p50: round(f.p50, 2), p99: round(f.p99, 2) }, ratio: null,
  target: `p50 <= ${TARGET.p50} ms, p99 <= ${TARGET.p99} ms`, pass,
  subscribers: SUBS, writes: WRITES, warmup_writes_excluded: SKIP, writes_per_s: round(g.writes_per_s, 1),
  samples: g.samples, missing: g.missing, missed_writes: g.missed_writes, missed_writes_in_feed: g.missed_writes_in_feed,
  delivered_before_ack: g.delivered_before_ack, max_ms: round(g.max, 1),
  send_to_delivery_ms: { p50: round(g.send_p50, 2), p99: round(g.send_p99, 2) },
  floor_send_to_delivery_ms: { p50: round(f.send_p50, 2), p99: round(f.send_p99, 2) },
  gateway_cpu_cores: round(g.gateway_cpu, 2), gateway_rss_MiB: round(g.gateway_rss / 2 ** 20, 1),
  late_writes: g.late_writes,
  ceiling_is: 'the floor: same subscribers and writer against bench/ssefloor (C epoll server, no storage: ack, then broadcast); no ratio, a floor near 0 makes one meaningless',
  pass_needs: 'p50 and p99 within target and every write delivered to every subscriber',
  smoke: o.smoke, machine: machine(),
});
await gw.stop();
zk.stop();
