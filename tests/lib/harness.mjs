// Integration-test harness: a real ZooKeeper (scripts/zk.sh) and real
// zoosyncd processes, each stopped by its own pid, even when a test fails.
//
//   import { setupEnv, it, startGateway } from '../lib/harness.mjs';
//   const env = setupEnv();              // before: temp dir + ZooKeeper; after: cleanup
//   before(async () => { await env.ready(); ... });
//   it('does x', async () => { const gw = await startGateway({ zk: env.zk.connect, root: env.root }); ... });
//
// Every test written with `it` marks the file as failed when it throws; the
// temp dir (ZooKeeper data and logs, gateway logs) is then kept and its path
// printed. After the file, every gateway log is scanned for sanitizer reports
// and any gateway that died without being asked to is reported: both fail the
// file.
import { test as nodeTest, before, after } from 'node:test';
import { spawn, execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, closeSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import http from 'node:http';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ZK_SH = path.join(REPO, 'scripts', 'zk.sh');
export const ZOOSYNCD = process.env.ZOOSYNCD || path.join(REPO, 'build', 'zoosyncd');
const READY_TIMEOUT_MS = 15000;

const state = {
  failed: false,
  tmp: null,              // this file's temp dir
  gateways: new Set(),    // live gateway handles
  allGateways: [],        // every gateway ever started (for log scanning)
  zks: [],                // ZooKeeper dirs started
  problems: [],           // unexpected exits etc., reported in after()
  seq: 0,
};

export function markFailed() { state.failed = true; }

/** node:test `test` that remembers a failure (so the temp dir is kept). */
export function it(name, opts, fn) {
  if (typeof opts === 'function') { fn = opts; opts = {}; }
  return nodeTest(name, { timeout: 60000, ...opts }, async (t) => {
    try {
      return await fn(t);
    } catch (e) {
      state.failed = true;
      throw e;
    }
  });
}

export function rid(n = 6) { return randomBytes(n).toString('hex'); }
export function uniq(prefix = 's') { return `${prefix}${++state.seq}_${rid(3)}`; }
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function tmpDir() {
  if (!state.tmp) state.tmp = mkdtempSync(path.join(tmpdir(), 'zoosync-it-'));
  return state.tmp;
}

/**
 * The ZooKeeper digest identity of this test file's gateways: every gateway
 * runs with --zk-digest-file (the secure way is the tested way), and zkCli
 * authenticates as it too unless asked not to. { cred: 'user:password', file }.
 */
export function zkIdentity() {
  if (!state.digest) {
    const cred = `zoosync:${rid(12)}`;
    const file = path.join(tmpDir(), 'zk.digest');
    writeFileSync(file, `${cred}\n`, { mode: 0o600 });
    state.digest = { cred, file };
  }
  return state.digest;
}

function execFileP(cmd, args, { input, ...opts } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 90000, ...opts }, (err, stdout, stderr) => {
      if (err) { err.stdout = stdout; err.stderr = stderr; reject(err); } else resolve({ stdout, stderr });
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

/**
 * Starts a ZooKeeper (standalone, or an ensemble of `nodes`) under a fresh dir.
 * netns/addrs (one per node): run node I in namespace netns[I-1] on addrs[I-1]
 * (scripts/zk.sh, "Network namespaces").
 */
export async function startZk({ nodes = 1, netns, addrs } = {}) {
  const dir = path.join(tmpDir(), `zk${state.zks.length + 1}`);
  state.zks.push(dir);
  const env = netns ? { ...process.env, ZK_NETNS: netns.join(' '), ZK_ADDRS: addrs.join(' ') } : process.env;
  try {
    await execFileP(ZK_SH, ['start', dir, String(nodes)], { env });
  } catch (e) {
    throw new Error(`zk.sh start failed: ${e.message}\n${e.stderr || ''}`);
  }
  const connect = readFileSync(path.join(dir, 'connect'), 'utf8').trim();
  return {
    dir, connect,
    stop: () => execFileP(ZK_SH, ['stop', dir]),
    stopNode: (i, kill9 = false) => execFileP(ZK_SH, ['stop-node', dir, String(i), ...(kill9 ? ['-9'] : [])]),
    startNode: (i) => execFileP(ZK_SH, ['start-node', dir, String(i)]),
  };
}

function httpGetStatus(url, timeoutMs = 2000) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
  });
}

function tail(file, n = 30) {
  try { return readFileSync(file, 'utf8').split('\n').slice(-n).join('\n'); } catch { return ''; }
}

/** How the gateways of this run serve plain HTTP (`--http-model`): 'connection' (the default) or 'pool'. */
export const HTTP_MODEL = process.env.ZOOSYNC_HTTP_MODEL || 'connection';

/**
 * Spawns zoosyncd, waits for its listening line and /readyz 200.
 * Returns { url, port, pid, proc, log, args, stop(), kill(sig), exited }.
 * logLevel: false leaves --log-level out (e.g. for a --config file to set it).
 */
export async function startGateway({ zk, root, args = [], listen = '127.0.0.1:0', env = {}, waitReady = true, name, digest = true, nofile, netns, logLevel = true } = {}) {
  const idx = state.allGateways.length + 1;
  const log = path.join(tmpDir(), `gateway${idx}${name ? '-' + name : ''}.log`);
  const fullArgs = ['--listen', listen];
  if (zk) fullArgs.push('--zk', zk);
  if (root) fullArgs.push('--root', root);
  if (digest && !args.includes('--zk-digest-file')) fullArgs.push('--zk-digest-file', zkIdentity().file);
  fullArgs.push(...args);
  // ZOOSYNC_HTTP_MODEL=pool: make test runs the edge, stream, push and ops
  // suites (Makefile, INTEGRATION_POOL) a second time with the other way of
  // serving connections (not over TLS, whose default is already pool).
  if (process.env.ZOOSYNC_HTTP_MODEL && !args.includes('--http-model') && !args.includes('--tls-cert')) {
    fullArgs.push('--http-model', process.env.ZOOSYNC_HTTP_MODEL);
  }
  if (logLevel && !args.includes('--log-level')) fullArgs.push('--log-level', process.env.ZOOSYNC_LOG_LEVEL || 'info');
  writeFileSync(log, `# ${ZOOSYNCD} ${fullArgs.join(' ')}\n`);
  const errFd = openSync(log, 'a');
  let proc;
  try {
    // nofile: run under `prlimit --nofile=N:N`; netns: under `ip netns exec NS`
    // (both exec: the pid is the gateway's).
    let cmd = nofile ? 'prlimit' : ZOOSYNCD;
    let cmdArgs = nofile ? [`--nofile=${nofile}:${nofile}`, '--', ZOOSYNCD, ...fullArgs] : fullArgs;
    if (netns) { cmdArgs = ['netns', 'exec', netns, cmd, ...cmdArgs]; cmd = 'ip'; }
    proc = spawn(cmd, cmdArgs, {
      stdio: ['ignore', 'pipe', errFd],
      env: { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0', ...env },
    });
  } finally {
    closeSync(errFd);
  }
  const gw = {
    idx, log, proc, args: fullArgs, url: null, port: null, pid: proc.pid,
    exited: null, expectedExit: false, stdout: '',
  };
  const exitP = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      gw.exited = { code, signal };
      state.gateways.delete(gw);
      if (!gw.expectedExit) state.problems.push(`gateway ${idx} (pid ${gw.pid}) exited unexpectedly: code=${code} signal=${signal} (log ${log})`);
      resolve(gw.exited);
    });
    proc.on('error', (e) => { gw.exited = { code: -1, signal: null, error: e }; resolve(gw.exited); });
  });
  gw.exitPromise = exitP;
  state.gateways.add(gw);
  state.allGateways.push(gw);

  gw.kill = (sig = 'SIGKILL') => {
    gw.expectedExit = true;
    if (!gw.exited) { try { process.kill(gw.pid, sig); } catch { /* gone */ } }
    return exitP;
  };
  gw.stop = async (graceMs = 5000) => {
    gw.expectedExit = true;
    if (gw.exited) return gw.exited;
    try { process.kill(gw.pid, 'SIGTERM'); } catch { /* gone */ }
    const t = setTimeout(() => { if (!gw.exited) { gw.termTimedOut = true; try { process.kill(gw.pid, 'SIGKILL'); } catch { /* gone */ } } }, graceMs);
    const r = await exitP;
    clearTimeout(t);
    return { ...r, termTimedOut: !!gw.termTimedOut };
  };

  // Listening line.
  const listening = new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`gateway ${idx} printed no listening line in ${READY_TIMEOUT_MS} ms (log ${log}):\n${tail(log)}`)), READY_TIMEOUT_MS);
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d) => {
      gw.stdout += d;
      if (gw.url) return;
      buf += d;
      const m = buf.match(/^zoosyncd: listening on (https?:\/\/[^\s]+)\r?\n/m);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    exitP.then((r) => { clearTimeout(timer); if (!gw.url) reject(new Error(`gateway ${idx} exited before listening: ${JSON.stringify(r)} (log ${log}):\n${tail(log)}`)); });
  });
  try {
    gw.url = await listening;
    gw.url = gw.url.replace(/\/+$/, '');
    gw.port = Number(new URL(gw.url).port);
    if (waitReady) {
      const deadline = Date.now() + READY_TIMEOUT_MS;
      for (;;) {
        if (gw.exited) throw new Error(`gateway ${idx} exited while waiting for /readyz: ${JSON.stringify(gw.exited)}\n${tail(log)}`);
        if ((await httpGetStatus(gw.url + '/readyz')) === 200) break;
        if (Date.now() > deadline) throw new Error(`gateway ${idx} not ready in ${READY_TIMEOUT_MS} ms (log ${log}):\n${tail(log)}`);
        await sleep(50);
      }
    }
  } catch (e) {
    await gw.kill('SIGKILL');
    throw e;
  }
  return gw;
}

/**
 * Runs zoosyncd expecting it to exit by itself (e.g. a refused configuration).
 * Returns { code, signal, stdout, stderr, timedOut }.
 */
export async function runGatewayExpectExit(args, timeoutMs = 10000) {
  return new Promise((resolve) => {
    const proc = spawn(ZOOSYNCD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '', timedOut = false;
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { timedOut = true; try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    proc.on('exit', (code, signal) => { clearTimeout(timer); setTimeout(() => resolve({ code, signal, stdout, stderr, timedOut }), 50); });
    proc.on('error', (e) => { clearTimeout(timer); resolve({ code: -1, signal: null, stdout, stderr: String(e), timedOut }); });
  });
}

const SANITIZER_RE = /(ERROR: (Address|Leak|Thread|Memory|UndefinedBehavior)Sanitizer|SUMMARY: \w+Sanitizer|runtime error: )/;

async function cleanup() {
  const errors = [];
  await Promise.all([...state.gateways].map((g) => g.stop().catch(() => {})));
  for (const dir of state.zks) {
    try { await execFileP(ZK_SH, ['stop', dir]); } catch (e) { errors.push(`zk.sh stop ${dir}: ${e.message}`); }
  }
  for (const g of state.allGateways) {
    let text = '';
    try { text = readFileSync(g.log, 'utf8'); } catch { continue; }
    const m = text.match(SANITIZER_RE);
    if (m) {
      const at = text.indexOf(m[0]);
      errors.push(`sanitizer report in gateway ${g.idx} log ${g.log}:\n${text.slice(Math.max(0, at - 200), at + 3000)}`);
    }
  }
  errors.push(...state.problems);
  if (errors.length) state.failed = true;
  if (state.tmp) {
    if (state.failed) {
      console.error(`# zoosync integration: a test failed; logs kept in ${state.tmp}`);
    } else {
      rmSync(state.tmp, { recursive: true, force: true });
    }
  }
  if (errors.length) throw new Error(errors.join('\n\n'));
}

// Last-resort cleanup if the process exits without running `after`.
process.on('exit', () => {
  for (const g of state.gateways) { try { process.kill(g.pid, 'SIGKILL'); } catch { /* gone */ } }
  for (const dir of state.zks) {
    try {
      if (!existsSync(dir)) continue;
      for (const n of readdirSync(dir)) {
        const pidf = path.join(dir, n, 'pid');
        if (existsSync(pidf)) { try { process.kill(Number(readFileSync(pidf, 'utf8').trim()), 'SIGKILL'); } catch { /* gone */ } }
      }
    } catch { /* ignore */ }
  }
});

/**
 * Registers before/after hooks for one test file: a temp dir and a standalone
 * ZooKeeper (env.zk = { dir, connect, stop }), a random root (env.root), and
 * full cleanup afterwards. A file's own before() must `await env.ready()` first.
 */
export function setupEnv({ zkNodes = 1 } = {}) {
  const env = { zk: null, root: `/t${rid(6)}`, tmp: null };
  let ready = null;
  // Node 20 does not serialize several top-level before() hooks, so every
  // file's own before() starts with `await env.ready()` (memoized).
  env.ready = () => {
    if (!ready) {
      ready = (async () => {
        env.tmp = tmpDir();
        if (zkNodes > 0) env.zk = await startZk({ nodes: zkNodes });   // 0: the file starts its own
        return env;
      })().catch((e) => { state.failed = true; throw e; });
    }
    return ready;
  };
  before(() => env.ready(), { timeout: 120000 });
  after(async () => { await cleanup(); }, { timeout: 120000 });
  return env;
}

/** A fresh root name (`/t<random>`), for a group of tests that wants its own. */
export function newRoot() { return `/t${rid(6)}`; }

/**
 * Runs one zkCli command (a foreign ZooKeeper client, Java) against
 * `connect`, authenticated as the gateways' digest identity (zkIdentity())
 * so that it may write what they created; zkCliAnon runs it without.
 * Resolves { ok, stdout, stderr }; never rejects on a ZooKeeper error.
 */
export function zkCli(connect, ...cmd) { return zkCliAs(zkIdentity().cred, connect, cmd); }
export function zkCliAnon(connect, ...cmd) { return zkCliAs(null, connect, cmd); }

function quoteArg(a) { return /^[^\s'"]+$/.test(a) ? a : `'${a.replace(/'/g, "\\'")}'`; }

async function zkCliAs(cred, connect, cmd) {
  const cp = '/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar';
  // Commands on standard input: addauth first (zkCli takes one command on
  // its command line, and addauth would be lost with its session).
  const script = `${cred ? `addauth digest ${cred}\n` : ''}${cmd.map(quoteArg).join(' ')}\nquit\n`;
  try {
    const r = await execFileP(process.env.JAVA || 'java', ['-Xmx128m', '-XX:TieredStopAtLevel=1', '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
      '-cp', cp, 'org.apache.zookeeper.ZooKeeperMain', '-server', connect], { timeout: 30000, input: script });
    // (quit makes the client log an exception while closing: not a failure)
    const out = (r.stderr + r.stdout).split('\n').filter((l) => !/closing send thread|EndOfStreamException|EventThread shut down|Session: .* closed/.test(l)).join('\n');
    const bad = /Node does not exist|NodeExists|Node already exists|KeeperErrorCode|Insufficient permission|NoAuth|AuthFailed|Exception/.test(out);
    return { ok: !bad, ...r };
  } catch (e) {
    return { ok: false, stdout: e.stdout || '', stderr: (e.stderr || '') + e.message };
  }
}

/** The znode of a record, as src/zk/layout.h documents it (ASCII-safe keys only). */
export function recordZnode(root, store, key) {
  let h = 14695981039346656037n;
  for (const b of Buffer.from(key, 'utf8')) { h ^= BigInt(b); h = (h * 1099511628211n) & 0xffffffffffffffffn; }
  const bucket = (h & 0xfffn).toString(16).padStart(3, '0');
  if (!/^[\x21-\x7e]+$/.test(key) || /[/%]/.test(key) || key === '.' || key === '..') throw new Error('recordZnode: plain keys only');
  return { bucketPath: `${root}/stores/${store}/r/${bucket}`, path: `${root}/stores/${store}/r/${bucket}/${key}` };
}

/** The znode of a client's exactly-once record, as src/zk/layout.h documents it. */
export function clientZnode(root, store, client) {
  let h = 14695981039346656037n;
  for (const b of Buffer.from(client, 'utf8')) { h ^= BigInt(b); h = (h * 1099511628211n) & 0xffffffffffffffffn; }
  return `${root}/stores/${store}/c/${(h & 0xffn).toString(16).padStart(2, '0')}/${client}`;
}

export { execFileSync };
