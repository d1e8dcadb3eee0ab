// B9: many users in one store (prefix scopes, issue 11).
//
//   (a) A store of 1,000,000 records of ~100 bytes in 10,000 prefixes of 100
//       (keys u/<i>/n<j>). Figure: a prefix-scoped initial pull of one
//       prefix, GET /v1/stores/big/changes?prefix=u/<i>/ with no since, every
//       page (each parsed with JSON.parse, as a client must), p50 and p99 over
//       1,000 random prefixes. Ceiling, same run and same gateway: the same
//       pull on a store holding only those 100 records (store "small": one
//       prefix of 100 records of the same key and value sizes), the two
//       measured alternately. Target: <= 1.5 x the ceiling (p50 and p99).
//   (b) 10,000 event streams, stream i asking ?prefix=u/<i>/, and one writer
//       at 200 writes/s to random prefixes of the 10,000 (keys u/<p>/w<seq>).
//       Every write must reach exactly the stream of its prefix and no other
//       (u/1/ never sees u/10/...). Figure: ack -> delivery p99 (target
//       <= 50 ms) and the gateway's CPU during the writes, against the same
//       writes (same prefixes, same rate) with 100 streams on the same
//       gateway, same run (target <= 2 x).
//
// The records of (a) are written straight into the stores' znode layout by
// `zkbench load --per-prefix 100` (as B6), after a first gateway created the
// stores; (b) runs first, on its own store, before the load. Authentication
// is off: ?prefix= is the filter (a prefix-limited token's read set is the
// same filter, plus a token check per request).
// Usage: node bench/scopes.mjs --build DIR [--smoke] [--part a|b] [--prefixes N] [--samples N] [--streams N] [--seconds S] [--idle S]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  args, emit, log, round, startZk, startGateway, zkbench, agent, request, value, ensure, machine, sleep, percentile,
  track, cpuSeconds, rss, tmp, cleanupTmpOnSuccess,
} from './lib.mjs';

const o = args();
const PREFIXES = Number(o.prefixes || (o.smoke ? 200 : 10000));
const PER = 100;
const N = PREFIXES * PER;
const SAMPLES = Number(o.samples || (o.smoke ? 50 : 1000));
const WARMUP = Math.min(50, Math.floor(SAMPLES / 5));
const STREAMS = Math.min(PREFIXES, Number(o.streams || (o.smoke ? 200 : 10000)));
const FEW = Math.min(100, STREAMS);
const RATE = 200;
const SECONDS = Number(o.seconds || (o.smoke ? 3 : 20));
const WRITES = RATE * SECONDS;
const IDLE = Number(o.idle || (o.smoke ? 1 : 15)); // seconds of the streams' CPU without writes (a keepalive interval)
const WRITERS = 8; // client ids the writer rotates over (one push in flight each)
const BYTES = 100;
const now = () => Number(process.hrtime.bigint()) / 1e6; // CLOCK_MONOTONIC, as ssesub
const name = 'scopes';
const PART = o.part || 'ab';

/** A small deterministic generator (the same prefixes in both phases of (b)). */
function rng(seed) {
  let s = seed >>> 0;
  return () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32; };
}

async function metric(ag, url, nm) {
  const r = await request(ag, 'GET', `${url}/metrics`);
  const m = r.body.match(new RegExp(`^${nm} (\\d+)`, 'm'));
  return m ? Number(m[1]) : NaN;
}

// ---- (b) streams by prefix ------------------------------------------------------

/** bench/ssesub with stream i on ?prefix=u/<i>/ from the store's present cursor; resolves once every stream is open. */
async function subscribers(url, store, count, label) {
  const u = new URL(url);
  const d = await request(null, 'GET', `${url}/v1/stores/${store}`);
  ensure(d.status === 200, `store description: ${d.status} ${d.body}`);
  const since = d.json().cursor; // without since a stream starts with the whole feed
  const out = path.join(tmp(name), `recv-${label}.f64`);
  const p = spawn(o.ssesub, ['--port', u.port, '--host', u.hostname, '--path', `/v1/stores/${store}/events?since=${since}&prefix=u/%ld/`,
    '--conns', String(count), '--sparse', '1', '--out', out, '--connect-batch', '500'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const untrack = track(p.pid);
  let buf = '', wake = null;
  const lines = [];
  p.stdout.setEncoding('utf8');
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
  ensure(ready[0] === 'ready' && Number(ready[1]) === count, `${label}: streams opened: ${ready.join(' ')}`);
  return {
    async finish() {
      p.stdin.end();
      const stats = JSON.parse(await nextLine());
      await exited;
      let b;
      try { b = readFileSync(out); } catch { b = Buffer.alloc(0); }
      return { stats, recs: new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)) };
    },
  };
}

/** One phase of (b): `count` streams, WRITES writes at RATE/s to `prefixes` (seq offset `base`). */
async function phase(gw, store, count, prefixes, base, label) {
  const ag = agent(WRITERS + 2);
  const subs = await subscribers(gw.url, store, count, label);
  log(`B9b ${label}: ${count} streams open; gateway RSS ${round(rss(gw.pid).rss / 2 ** 20, 1)} MiB`);
  await sleep(o.smoke ? 500 : 3000); // the opening burst settles
  // The streams alone, no writes: what holding them costs (keepalives, the ticker, close detection).
  const idle0 = cpuSeconds(gw.pid), i0 = now();
  await sleep(IDLE * 1000);
  const idleCpu = (cpuSeconds(gw.pid) - idle0) / ((now() - i0) / 1000);
  const ack = new Float64Array(WRITES).fill(NaN);
  const tag = Math.random().toString(36).slice(2, 8);
  const writers = Array.from({ length: WRITERS }, (_, i) => ({ id: `b9${label}${tag}${i}`, next: 1, busy: Promise.resolve() }));
  const wakes0 = await metric(ag, gw.url, 'zoosync_event_stream_wakes_total');
  const cpu0 = cpuSeconds(gw.pid);
  const t0 = now();
  let late = 0;
  for (let k = 0; k < WRITES; k++) {
    const due = t0 + k * (1000 / RATE);
    const wait = due - now();
    if (wait > 1) await sleep(wait);
    const w = writers[k % WRITERS];
    const before = now();
    await w.busy;
    if (now() - before > 1) late++;
    const id = w.next++;
    const seq = base + k;
    w.busy = (async () => {
      const body = `{"client":"${w.id}","mutations":[{"id":${id},"key":"u/${prefixes[k]}/w${seq}","op":"put","value":${value(seq, BYTES)},"base":0}]}`;
      const r = await request(ag, 'POST', `${gw.url}/v1/stores/${store}/push`, body);
      ack[k] = now();
      ensure(r.status === 200, `push: ${r.status} ${r.body}`);
      const res = r.json().results[0];
      ensure(res.status === 'applied', `push of w${seq}: ${JSON.stringify(res)}`);
    })();
  }
  await Promise.all(writers.map((w) => w.busy));
  const elapsed = (now() - t0) / 1000;
  const cpu = (cpuSeconds(gw.pid) - cpu0) / elapsed;
  const wakes = (await metric(ag, gw.url, 'zoosync_event_stream_wakes_total')) - wakes0;
  const mem = rss(gw.pid).rss;
  await sleep(o.smoke ? 1000 : 2000); // the last deliveries
  const { stats, recs } = await subs.finish();
  ag.destroy();

  // Sightings: stream, prefix, seq, time. Stream i must see exactly the writes to u/<i>/.
  const first = new Map(); // seq -> [stream, time]
  let wrong = 0, dup = 0;
  const wrongEx = [];
  for (let r = 0; r < recs.length; r += 4) {
    const ci = recs[r], p = recs[r + 1], seq = recs[r + 2], t = recs[r + 3];
    const k = seq - base;
    if (k < 0 || k >= WRITES || p !== prefixes[k] || ci !== p) { wrong++; if (wrongEx.length < 5) wrongEx.push({ stream: ci, key: `u/${p}/w${seq}` }); continue; }
    if (first.has(seq)) { dup++; continue; }
    first.set(seq, t);
  }
  const lat = [];
  let expected = 0, missing = 0;
  const skip = Math.min(RATE, Math.floor(WRITES / 10)); // the first second: warm-up, left out of the latency
  for (let k = 0; k < WRITES; k++) {
    if (prefixes[k] >= count) continue;
    expected++;
    const t = first.get(base + k);
    if (t === undefined) { missing++; continue; }
    if (k >= skip) lat.push(t - ack[k]);
  }
  lat.sort((a, b) => a - b);
  const out = {
    streams: count, writes: WRITES, writes_per_s: WRITES / elapsed, late_writes: late,
    expected_deliveries: expected, delivered: expected - missing, missing, wrong_deliveries: wrong, wrong_examples: wrongEx,
    repeated_sightings: dup, ended: stats.ended, failed: stats.failed,
    p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1], samples: lat.length,
    cpu, idle_cpu: idleCpu, wakes, rss: mem,
  };
  log(`B9b ${label}: ${count} streams: ${expected - missing}/${expected} delivered, ${wrong} wrong; ack->delivery p50 ${round(out.p50, 2)} p99 ${round(out.p99, 2)} ms; ` +
    `gateway CPU ${round(cpu, 3)} cores (${round(idleCpu, 3)} without writes), ${wakes} wakes, ${round(out.writes_per_s, 1)} writes/s`);
  return out;
}

const zk = startZk(name, { heap: o.smoke ? '1g' : '3g' });
log(`B9: ZooKeeper at ${zk.connect}`);
if (PART.includes('b')) {
  // --http-threads N: the gateway's flag, to compare thread counts (the walk of suspended connections, below).
  const gw = await startGateway(o, name, zk, ['--create-store', 'live', ...(o['http-threads'] ? ['--http-threads', o['http-threads']] : [])]);
  log(`B9b: gateway pid ${gw.pid}; ${STREAMS} and ${FEW} streams, ${WRITES} writes at ${RATE}/s to ${PREFIXES} prefixes`);
  const r = rng(9);
  const prefixes = Int32Array.from({ length: WRITES }, () => Math.floor(r() * PREFIXES));
  // The smaller phase first, then the large one, with the same writes (new keys: seqs from WRITES).
  const few = await phase(gw, 'live', FEW, prefixes, 0, 'few');
  const many = await phase(gw, 'live', STREAMS, prefixes, WRITES, 'many');
  await gw.stop();
  const exact = many.missing === 0 && many.wrong_deliveries === 0 && few.missing === 0 && few.wrong_deliveries === 0;
  const cpuRatio = many.cpu / few.cpu;
  emit({
    id: 'B9', figure: 'prefix_streams_ack_to_delivery_ms', value: { p50: round(many.p50, 2), p99: round(many.p99, 2) },
    ceiling: null, ratio: null, target: 'p99 <= 50 ms, every write to exactly its prefix\'s stream', pass: many.p99 <= 50 && exact,
    streams: STREAMS, prefixes: PREFIXES, writes: WRITES, writes_per_s: round(many.writes_per_s, 1), late_writes: many.late_writes,
    expected_deliveries: many.expected_deliveries, delivered: many.delivered, missing: many.missing,
    wrong_deliveries: many.wrong_deliveries, wrong_examples: many.wrong_examples, max_ms: round(many.max, 1), samples: many.samples,
    with_100_streams: { p50: round(few.p50, 2), p99: round(few.p99, 2), expected_deliveries: few.expected_deliveries, missing: few.missing, wrong_deliveries: few.wrong_deliveries },
    smoke: o.smoke, machine: machine(),
  });
  emit({
    id: 'B9', figure: 'prefix_streams_gateway_cpu_cores', value: round(many.cpu, 3), ceiling: round(few.cpu, 3), ratio: round(cpuRatio, 2),
    target: `<= 2 x the same writes with ${FEW} streams`, pass: cpuRatio <= 2,
    streams: STREAMS, ceiling_streams: FEW, wakes: many.wakes, ceiling_wakes: few.wakes,
    // The same cores split: holding the streams (measured without writes
    // just before) and what the writes add on top.
    idle_cores: round(many.idle_cpu, 3), ceiling_idle_cores: round(few.idle_cpu, 3),
    writes_cores: round(many.cpu - many.idle_cpu, 3), ceiling_writes_cores: round(few.cpu - few.idle_cpu, 3),
    writes_ratio: round((many.cpu - many.idle_cpu) / (few.cpu - few.idle_cpu), 2),
    gateway_rss_MiB: round(many.rss / 2 ** 20, 1), ceiling_gateway_rss_MiB: round(few.rss / 2 ** 20, 1),
    ceiling_is: `the same gateway, the same ${WRITES} writes (same prefixes, ${RATE}/s) with ${FEW} streams (u/0/ .. u/${FEW - 1}/)`,
    smoke: o.smoke, machine: machine(),
  });
}

// ---- (a) prefix pulls in a large store ---------------------------------------------------
if (!PART.includes('a')) { zk.stop(); cleanupTmpOnSuccess(); process.exit(0); }

{
  const gw0 = await startGateway(o, name, zk, ['--create-store', 'big', '--create-store', 'small']);
  await gw0.stop();
}
log(`B9a: loading ${N} records (${PREFIXES} prefixes of ${PER}) straight into ZooKeeper`);
const load = await zkbench(o, ['load', '--zk', zk.connect, '--root', '/zoosync', '--store', 'big', '--count', String(N),
  '--bytes', String(BYTES), '--prefix', 'u/', '--per-prefix', String(PER)]);
log(`B9a: loaded in ${round(load.seconds, 1)} s`);
const SMALL = Math.floor(PREFIXES / 2); // the small store holds u/<SMALL>/n0..n99: keys as long as most of big's
await zkbench(o, ['load', '--zk', zk.connect, '--root', '/zoosync', '--store', 'small', '--count', String(PER),
  '--first', String(SMALL * PER), '--bytes', String(BYTES), '--prefix', 'u/', '--per-prefix', String(PER)]);

const ag = agent(2);
const t0 = performance.now();
const gw = await startGateway(o, name, zk, ['--create-store', 'big', '--create-store', 'small'], { readyTimeoutMs: 300000 });
for (;;) {
  const r = await request(ag, 'GET', `${gw.url}/v1/stores/big`);
  if (r.status === 200 && r.json().records === N) break;
  ensure(r.status === 200 || r.status === 503, `store description: ${r.status} ${r.body}`);
  ensure(performance.now() - t0 < 600000, 'store not loaded in 10 minutes');
  await sleep(100);
}
log(`B9a: gateway loaded ${N} records in ${round((performance.now() - t0) / 1000, 1)} s, RSS ${round(rss(gw.pid).rss / 2 ** 20, 1)} MiB`);

/** Every page of ?prefix=u/<i>/ from the beginning; ms (request to last page parsed). */
async function pull(store, i) {
  const pfx = `u/${i}/`;
  let since = null, count = 0;
  const t = performance.now();
  for (;;) {
    const r = await request(ag, 'GET', `${gw.url}/v1/stores/${store}/changes?prefix=${encodeURIComponent(pfx)}${since ? `&since=${since}` : ''}`);
    ensure(r.status === 200, `changes: ${r.status} ${r.body.slice(0, 200)}`);
    const page = r.json();
    for (const c of page.changes) { ensure(c.key.startsWith(pfx), `${c.key} outside ${pfx}`); count++; }
    since = page.cursor;
    if (!page.more) break;
  }
  const ms = performance.now() - t;
  ensure(count === PER, `${store} ?prefix=${pfx}: ${count} records, expected ${PER}`);
  return ms;
}

const r = rng(1);
const big = [], small = [];
for (let k = 0; k < WARMUP + SAMPLES; k++) {
  const i = Math.floor(r() * PREFIXES);
  // Alternate the order, so that neither side always follows the other.
  let b, s;
  if (k % 2) { b = await pull('big', i); s = await pull('small', SMALL); } else { s = await pull('small', SMALL); b = await pull('big', i); }
  if (k >= WARMUP) { big.push(b); small.push(s); }
}
big.sort((a, b) => a - b);
small.sort((a, b) => a - b);
const v = { p50: percentile(big, 50), p99: percentile(big, 99) };
const c = { p50: percentile(small, 50), p99: percentile(small, 99) };
const ratio = { p50: v.p50 / c.p50, p99: v.p99 / c.p99 };
log(`B9a: ?prefix= pull of ${PER} of ${N}: p50 ${round(v.p50, 3)} ms p99 ${round(v.p99, 3)} ms; of ${PER} of ${PER}: p50 ${round(c.p50, 3)} p99 ${round(c.p99, 3)} ms`);
emit({
  id: 'B9', figure: 'prefix_pull_ms', value: { p50: round(v.p50, 3), p99: round(v.p99, 3) },
  ceiling: { p50: round(c.p50, 3), p99: round(c.p99, 3) }, ratio: { p50: round(ratio.p50, 2), p99: round(ratio.p99, 2) },
  target: '<= 1.5 x (p50 and p99)', pass: ratio.p50 <= 1.5 && ratio.p99 <= 1.5,
  records: N, prefixes: PREFIXES, per_prefix: PER, value_bytes: BYTES, samples: SAMPLES, warmup_excluded: WARMUP,
  max_ms: round(big[big.length - 1], 3), ceiling_max_ms: round(small[small.length - 1], 3),
  gateway_rss_MiB: round(rss(gw.pid).rss / 2 ** 20, 1), load_seconds: round(load.seconds, 1),
  ceiling_is: `the same pull (?prefix=u/${SMALL}/, every page, JSON.parse) on a store holding only those ${PER} records, same gateway, alternated with the figure's pulls`,
  smoke: o.smoke, machine: machine(),
});
ag.destroy();
await gw.stop();
zk.stop();
cleanupTmpOnSuccess(); // run alone (no bench/run.sh): its ZooKeeper data, 180 MB at full size
