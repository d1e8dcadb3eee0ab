// B5: 50,000 idle event streams on one gateway: the RSS each costs it, and
// whether every stream got its keepalives on time.
//
// The gateway gets a hard open-file limit above the streams (prlimit; it
// lifts its soft limit itself) and --max-streams to match; the streams come
// from several loopback source addresses (ssesub --sources), one address
// having only ~28,000 ephemeral ports towards the gateway's port.
//
// The gateway runs with --keepalive-ms 3000 (the default is 15000; a
// shorter interval makes the run short and the ticker's work five times
// larger). The streams are one C process (bench/ssesub.c, epoll) that
// notes, per stream, the longest silence between two reads once all
// streams are open; the streams are held for HOLD seconds (several
// keepalive intervals). A stream is late when a silence exceeded the
// interval by more than 1 s. Ceiling: none (an absolute target). The
// figure is the RSS per stream: the peak RSS while the streams are held
// minus the idle gateway's RSS before them, divided by the streams.
// Usage: node bench/idle.mjs --build DIR [--smoke]
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  args, emit, log, round, startZk, startGateway, ensure, machine, sleep, rss, track, tmp, cpuSeconds, percentile,
} from './lib.mjs';

const o = args();
const WANTED = Number(o.streams || (o.smoke ? 300 : 50000));
const PER_STREAM_KIB = 12; // target: at most this much RSS per stream
// The hard open-file limit this process may give its children: raised with
// prlimit when allowed (CAP_SYS_RESOURCE), else the one it has. Without
// enough descriptors the run holds fewer streams and says so (`capped_by`).
const hardNofile = () => Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()) || 0;
const canRaise = (n) => { try { execFileSync('prlimit', [`--nofile=${n}:${n}`, '--', 'true']); return true; } catch { return false; } };
const WANT_NOFILE = WANTED + 4096;
const HARD = hardNofile();
const NOFILE = HARD >= WANT_NOFILE || canRaise(WANT_NOFILE) ? Math.max(WANT_NOFILE, HARD) : HARD;
// the gateway keeps about 1,600 descriptors from connections (--fd-reserve, lingering sockets)
const STREAMS = Math.min(WANTED, NOFILE - 3000);
const CAPPED = STREAMS < WANTED ? `the hard open-file limit ${NOFILE} (raising it needs CAP_SYS_RESOURCE)` : null;
if (CAPPED) log(`B5: ${STREAMS} streams instead of ${WANTED}: ${CAPPED}`);
const SOURCES = Math.ceil(STREAMS / 20000);
const KEEPALIVE = Number(o.keepalive || (o.smoke ? 1000 : 3000));
const HOLD = Number(o.hold || (o.smoke ? 3.5 : 16)); // seconds, after every stream is open
const TOLERANCE = 1000; // ms over the interval before a silence counts as late

const zk = startZk('idle');
const gw = await startGateway(o, 'idle', zk, ['--create-store', 'bench', '--keepalive-ms', String(KEEPALIVE),
  '--max-streams', String(STREAMS + 100), ...(o['http-threads'] ? ['--http-threads', String(o['http-threads'])] : [])],
{ nofile: NOFILE });
log(`B5: gateway pid ${gw.pid}`);
await sleep(500);
const before = rss(gw.pid).rss;

const u = new URL(gw.url);
const out = path.join(tmp('idle'), 'idle.f64');
const t0 = performance.now();
const p = spawn('prlimit', [`--nofile=${NOFILE}:${NOFILE}`, '--', o.ssesub, '--port', u.port, '--host', u.hostname,
  '--path', '/v1/stores/bench/events', '--conns', String(STREAMS), '--writes', '0', '--out', out,
  '--connect-batch', '500', '--sources', String(SOURCES)], { stdio: ['pipe', 'pipe', 'inherit'] });
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
const perStreamKiB = (peak - before) / STREAMS / 1024;
const opened = Number(ready[1]);
const pass = perStreamKiB <= PER_STREAM_KIB && late === 0 && opened === STREAMS && stats.ended === 0 && !CAPPED;
emit({
  id: 'B5', figure: 'rss_KiB_per_stream', value: round(perStreamKiB, 2), ceiling: null, ratio: null,
  target: `<= ${PER_STREAM_KIB} KiB per stream, keepalives on time`, pass,
  streams: STREAMS, streams_wanted: WANTED, capped_by: CAPPED, opened, ended_early: stats.ended, keepalive_ms: KEEPALIVE, held_s: HOLD, sources: SOURCES,
  gateway_rss_MiB: round(rssMiB, 1), idle_gateway_rss_MiB: round(before / 2 ** 20, 1),
  bytes_per_stream: round((peak - before) / STREAMS, 0),
  longest_silence_ms: { p50: round(percentile(live, 50), 0), p99: round(percentile(live, 99), 0), max: round(stats.max_gap_ms, 0) },
  late_streams: late, late_means: `a silence over ${KEEPALIVE + TOLERANCE} ms`,
  gateway_cpu_cores_idle_streams: round(cpu, 3), open_seconds: round(openS, 1),
  ceiling_is: 'none: absolute target', smoke: o.smoke, machine: machine(),
});
await gw.stop();
zk.stop();
