// B5: 10,000 idle event streams on one gateway: its RSS, and whether every
// stream got its keepalives on time.
//
// The gateway runs with --keepalive-ms 3000 (the default is 15000; a
// shorter interval makes the run short and the ticker's work five times
// larger). The streams are one C process (bench/ssesub.c, epoll) that
// notes, per stream, the longest silence between two reads once all
// streams are open; the streams are held for HOLD seconds (several
// keepalive intervals). A stream is late when a silence exceeded the
// interval by more than 1 s. Ceiling: none (an absolute target); the idle
// gateway's RSS before the streams is reported for the per-stream cost.
// Usage: node bench/idle.mjs --build DIR [--smoke]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  args, emit, log, round, startZk, startGateway, ensure, machine, sleep, rss, track, tmp, cpuSeconds, percentile,
} from './lib.mjs';

const o = args();
const STREAMS = Number(o.streams || (o.smoke ? 300 : 10000));
const KEEPALIVE = Number(o.keepalive || (o.smoke ? 1000 : 3000));
const HOLD = Number(o.hold || (o.smoke ? 3.5 : 16)); // seconds, after every stream is open
const TOLERANCE = 1000; // ms over the interval before a silence counts as late

const zk = startZk('idle');
const gw = await startGateway(o, 'idle', zk, ['--create-store', 'bench', '--keepalive-ms', String(KEEPALIVE)]);
log(`B5: gateway pid ${gw.pid}`);
await sleep(500);
const before = rss(gw.pid).rss;

const u = new URL(gw.url);
const out = path.join(tmp('idle'), 'idle.f64');
const t0 = performance.now();
const p = spawn(o.ssesub, ['--port', u.port, '--host', u.hostname, '--path', '/v1/stores/bench/events',
  '--conns', String(STREAMS), '--writes', '0', '--out', out, '--connect-batch', '500'], { stdio: ['pipe', 'pipe', 'inherit'] });
const untrack = track(p.pid);
const lines = [];
let buf = '', wake = null;
p.stdout.setEncoding('utf8');
p.stdout.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); if (wake) wake(); }
});
const exited = new Promise((r) => p.on('exit', (c) => { untrack(); r(c); }));
async function nextLine() {
  while (!lines.length) {
    const r = await Promise.race([new Promise((res) => { wake = res; }), exited.then((code) => ({ code }))]);
    if (r && r.code !== undefined && !lines.length) throw new Error(`ssesub exited ${r.code}`);
  }
  return lines.shift();
}
const ready = (await nextLine()).split(' ');
const openS = (performance.now() - t0) / 1000;
ensure(ready[0] === 'ready', `ssesub: ${ready.join(' ')}`);
log(`B5: ${ready[1]} streams open (${ready[2]} failed) in ${round(openS, 1)} s`);

let peak = 0;
const cpu0 = cpuSeconds(gw.pid);
const tHold = performance.now();
while (performance.now() - tHold < HOLD * 1000) {
  await sleep(500);
  peak = Math.max(peak, rss(gw.pid).rss);
}
const cpu = (cpuSeconds(gw.pid) - cpu0) / ((performance.now() - tHold) / 1000);
const mem = rss(gw.pid);
p.stdin.end();
const stats = JSON.parse(await nextLine());
await exited;
const gb = readFileSync(`${out}.gaps`);
const gaps = new Float64Array(gb.buffer.slice(gb.byteOffset, gb.byteOffset + gb.length));
const live = [...gaps].filter((g) => !Number.isNaN(g)).sort((a, b) => a - b);
const late = live.filter((g) => g > KEEPALIVE + TOLERANCE).length;
log(`B5: RSS ${round(mem.rss / 2 ** 20, 1)} MiB (idle ${round(before / 2 ** 20, 1)} MiB), longest silence ${round(stats.max_gap_ms, 0)} ms, late streams ${late}, ended ${stats.ended}`);

const rssMiB = peak / 2 ** 20;
const opened = Number(ready[1]);
const pass = rssMiB <= 300 && late === 0 && opened === STREAMS && stats.ended === 0;
emit({
  id: 'B5', figure: 'gateway_rss_MiB', value: round(rssMiB, 1), ceiling: null, ratio: null,
  target: '<= 300 MB, keepalives on time', pass,
  streams: STREAMS, opened, ended_early: stats.ended, keepalive_ms: KEEPALIVE, held_s: HOLD,
  idle_gateway_rss_MiB: round(before / 2 ** 20, 1), bytes_per_stream: round((peak - before) / STREAMS, 0),
  longest_silence_ms: { p50: round(percentile(live, 50), 0), p99: round(percentile(live, 99), 0), max: round(stats.max_gap_ms, 0) },
  late_streams: late, late_means: `a silence over ${KEEPALIVE + TOLERANCE} ms`,
  gateway_cpu_cores_idle_streams: round(cpu, 3), open_seconds: round(openS, 1),
  ceiling_is: 'none: absolute target', smoke: o.smoke, machine: machine(),
});
await gw.stop();
zk.stop();
