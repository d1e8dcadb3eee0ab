// Shared harness of the benchmarks: a standalone ZooKeeper (scripts/zk.sh,
// fsync on) and zoosyncd processes on loopback, each stopped by its pid at
// the end, also when the benchmark fails or is interrupted; JSON-line output;
// small HTTP helpers with keep-alive agents; RSS and percentiles.
//
// Every benchmark script is run as `node bench/bX.mjs --build DIR [--smoke]`
// (bench/run.sh does that) and prints one JSON line per figure on stdout;
// progress goes to stderr.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync, openSync, closeSync } from 'node:fs';
import { tmpdir, cpus, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';

export const BENCH = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(BENCH, '..');
export const ZK_SH = path.join(REPO, 'scripts', 'zk.sh');
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- arguments ---------------------------------------------------------------

export function args() {
  const a = process.argv.slice(2);
  const o = { build: path.join(REPO, 'build'), smoke: false };
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--smoke') o.smoke = true;
    else if (a[i] === '--build') o.build = path.resolve(a[++i]);
    else if (a[i].startsWith('--')) o[a[i].slice(2)] = a[++i];
  }
  o.zoosyncd = path.join(o.build, 'zoosyncd');
  o.zkbench = path.join(o.build, 'bench', 'zkbench');
  o.ssesub = path.join(o.build, 'bench', 'ssesub');
  o.pushgen = path.join(o.build, 'bench', 'pushgen');
  o.ssefloor = path.join(o.build, 'bench', 'ssefloor');
  return o;
}

// ---- output ------------------------------------------------------------------------

const T0 = performance.now();
export function log(...m) { process.stderr.write(`# [${((performance.now() - T0) / 1000).toFixed(1)}s] ${m.join(' ')}\n`); }

/** One figure: {id, figure, value, ceiling?, ratio?, target, pass, ...}. */
export function emit(fig) {
  process.stdout.write(JSON.stringify(fig) + '\n');
}

export function round(x, d = 3) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return x;
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
}

export function machine() {
  return { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: round(totalmem() / 2 ** 30, 1) };
}

// ---- processes ------------------------------------------------------------------

const live = { gateways: new Set(), zks: new Set(), pids: new Set(), groups: new Set() };
let baseTmp = null;

function cleanupSync() {
  for (const gw of live.gateways) { try { process.kill(gw.pid, 'SIGKILL'); } catch { /* gone */ } }
  for (const pid of live.pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  for (const pid of live.groups) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
  for (const dir of live.zks) { try { execFileSync(ZK_SH, ['stop', dir], { stdio: 'ignore', timeout: 20000 }); } catch { /* best effort */ } }
  live.gateways.clear(); live.zks.clear(); live.pids.clear(); live.groups.clear();
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { log(`${sig}: stopping`); process.exit(130); });
process.on('unhandledRejection', (e) => { log(`error: ${e?.stack || e}`); process.exit(1); });

/** Remembers a child pid to SIGKILL at exit (for load-generator children). */
export function track(pid) { live.pids.add(pid); return () => live.pids.delete(pid); }
/** Remembers a process group (a detached child and its children) to SIGKILL at exit. */
export function trackGroup(pid) { live.groups.add(pid); return () => live.groups.delete(pid); }

/** The benchmark's temp dir: under $BENCH_TMP (bench/run.sh) or a fresh one. */
export function tmp(name) {
  if (!baseTmp) {
    if (process.env.BENCH_TMP) { baseTmp = path.join(process.env.BENCH_TMP, name); mkdirSync(baseTmp, { recursive: true }); }
    else baseTmp = mkdtempSync(path.join(tmpdir(), `zoosync-bench-${name}-`));
  }
  return baseTmp;
}

/** Starts a standalone ZooKeeper (fsync on) with the benchmark JVM settings. */
export function startZk(name, { heap = '1g', nodes = 1, tickMs } = {}) {
  const dir = path.join(tmp(name), `zk${live.zks.size + 1}`);
  live.zks.add(dir);
  const env = { ...process.env, JAVA: path.join(BENCH, 'zk-java.sh'), BENCH_ZK_HEAP: heap, ...(tickMs ? { ZK_TICK_MS: String(tickMs) } : {}) };
  execFileSync(ZK_SH, ['start', dir, String(nodes)], { env, stdio: ['ignore', 'ignore', 'inherit'], timeout: 180000 });
  const connect = readFileSync(path.join(dir, 'connect'), 'utf8').trim();
  const pid = Number(readFileSync(path.join(dir, 'node1', 'pid'), 'utf8'));
  return {
    dir, connect, pid,
    stop() { execFileSync(ZK_SH, ['stop', dir], { stdio: 'ignore', timeout: 30000 }); live.zks.delete(dir); },
    /** [{ i, pid, port, mode }] of every node (mode: leader, follower, standalone, down). */
    status() {
      return execFileSync(ZK_SH, ['status', dir], { timeout: 30000 }).toString().trim().split('\n')
        .map((l) => { const [i, pid, port, mode] = l.split(/\s+/); return { i: Number(i), pid: Number(pid), port: Number(port), mode }; });
    },
    stopNode(i) { execFileSync(ZK_SH, ['stop-node', dir, String(i)], { stdio: 'ignore', timeout: 60000 }); },
    startNode(i) {
      execFileSync(ZK_SH, ['start-node', dir, String(i)], { env: { ...env, ZK_START_TIMEOUT: '280' }, stdio: 'ignore', timeout: 300000 });
    },
    /** Stops the (first) server and starts it again with the same heap; returns when it serves. */
    async restart(downMs = 1000) {
      execFileSync(ZK_SH, ['stop-node', dir, '1'], { stdio: 'ignore', timeout: 60000 });
      await new Promise((r) => setTimeout(r, downMs));
      execFileSync(ZK_SH, ['start-node', dir, '1'], { env: { ...env, ZK_START_TIMEOUT: '280' }, stdio: 'ignore', timeout: 300000 });
    },
  };
}

function getStatus(url, timeoutMs = 2000) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, body: '' }));
  });
}

/** Starts zoosyncd; resolves once it listens and /readyz is 200. budgets: keep the
 * write budgets at their defaults (every other benchmark turns them off). */
export async function startGateway(o, name, zk, extra = [], { readyTimeoutMs = 30000, budgets = false, nofile = 0 } = {}) {
  const dir = tmp(name);
  const idx = live.gateways.size + 1;
  const logf = path.join(dir, `gateway${idx}.log`);
  const argv = ['--listen', '127.0.0.1:0', '--zk', zk.connect, '--root', '/zoosync', '--log-level', 'warn',
    // every load comes from 127.0.0.1: no per-address caps, no write budgets
    '--max-conns-per-ip', '0', '--max-streams-per-ip', '0', '--max-streams-per-sub', '0',
    ...(budgets ? [] : ['--write-bytes-per-sec', '0', '--write-mutations-per-sec', '0']), ...extra];
  writeFileSync(logf, `# ${o.zoosyncd} ${argv.join(' ')}\n`);
  const fd = openSync(logf, 'a');
  const t0 = performance.now();
  // nofile: the hard open-file limit to give the gateway (it lifts its soft
  // limit to the hard one itself); prlimit sets it and execs, same pid.
  const proc = nofile
    ? spawn('prlimit', [`--nofile=${nofile}:${nofile}`, '--', o.zoosyncd, ...argv], { stdio: ['ignore', 'pipe', fd] })
    : spawn(o.zoosyncd, argv, { stdio: ['ignore', 'pipe', fd] });
  closeSync(fd);
  const gw = { proc, pid: proc.pid, log: logf, url: null, t0, exited: null };
  live.gateways.add(gw);
  writeFileSync(path.join(dir, `gateway${idx}.pid`), `${proc.pid}\n`); // for bench/run.sh's trap
  gw.exitP = new Promise((r) => proc.on('exit', (code, sig) => { gw.exited = { code, sig }; live.gateways.delete(gw); r(gw.exited); }));
  gw.url = await new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`gateway printed no listening line (log ${logf})`)), readyTimeoutMs);
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/^zoosyncd: listening on (http:\/\/\S+?)\/?\r?\n/m);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
    gw.exitP.then((e) => { clearTimeout(t); reject(new Error(`gateway exited ${JSON.stringify(e)} (log ${logf})`)); });
  });
  const deadline = Date.now() + readyTimeoutMs;
  while ((await getStatus(gw.url + '/readyz')).status !== 200) {
    if (gw.exited) throw new Error(`gateway exited (log ${logf})`);
    if (Date.now() > deadline) throw new Error(`gateway not ready (log ${logf})`);
    await sleep(20);
  }
  gw.stop = async (graceMs = 5000) => {
    if (gw.exited) return gw.exited;
    try { process.kill(gw.pid, 'SIGTERM'); } catch { /* gone */ }
    const t = setTimeout(() => { try { process.kill(gw.pid, 'SIGKILL'); } catch { /* gone */ } }, graceMs);
    const r = await gw.exitP;
    clearTimeout(t);
    return r;
  };
  return gw;
}

/** Resident set size of a process, in bytes (VmRSS), and its peak (VmHWM). */
export function rss(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [])[1] || NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** CPU seconds (user+system) a process used so far. */
export function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/**
 * Runs one of the benchmark's C programs (tracked: stopped with the rest on
 * failure); resolves with the JSON of its last line on stdout.
 */
export function runJson(bin, argv, name = path.basename(bin)) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    const untrack = track(p.pid);
    let out = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d) => { out += d; });
    // 'close', not 'exit': stdout may still hold the line when the process has exited
    p.on('close', (code) => {
      untrack();
      if (code !== 0) return reject(new Error(`${name} exited ${code}: ${out}`));
      try { resolve(JSON.parse(out.trim().split('\n').pop())); } catch { reject(new Error(`${name} output: ${out}`)); }
    });
  });
}

/** Runs bench/zkbench; resolves with its JSON output. */
export function zkbench(o, argv) {
  return runJson(o.zkbench, argv, `zkbench ${argv[0]}`);
}

// ---- HTTP ------------------------------------------------------------------------------

export function agent(maxSockets) {
  // A timeout of its own, so that the agent takes the gateway's Keep-Alive
  // hint (it closes idle sockets after --header-timeout) and closes an idle
  // socket first: without one it kept them for ever and B2's first request
  // after its 10 s ceiling phase could meet the gateway's close (a reset).
  return new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, timeout: 120000 });
}

/** One request; resolves {status, body, json()}. */
export function request(ag, method, url, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
    const h = { ...headers };
    if (data !== undefined) { h['content-type'] = 'application/json'; h['content-length'] = Buffer.byteLength(data); }
    const req = http.request(url, { method, agent: ag, headers: h }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode, headers: res.headers, body: text, json: () => JSON.parse(text) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/** A compact JSON value of about n bytes, like zkbench's: {"i":N,"p":"xxx"}. */
export function value(i, n = 100) {
  const head = `{"i":${i},"p":"`;
  return head + 'x'.repeat(Math.max(0, n - head.length - 2)) + '"}';
}

export function ensure(cond, msg) { if (!cond) throw new Error(msg); }

/** p, or an error after ms (the timer does not outlive p). */
export function withTimeout(p, ms, msg) {
  let t;
  return Promise.race([p, new Promise((_, reject) => { t = setTimeout(() => reject(new Error(msg)), ms); })])
    .finally(() => clearTimeout(t));
}

export function cleanupTmpOnSuccess() {
  if (!process.env.BENCH_TMP && baseTmp && existsSync(baseTmp)) rmSync(baseTmp, { recursive: true, force: true });
}
