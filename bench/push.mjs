// B1 and B2: push throughput through zoosyncd against the raw ZooKeeper C
// client on the same server, in the same run.
//
//   B1: 16 concurrent clients, each push = 100 puts to distinct keys (the
//       client's own 100 keys, with `base`). Ceiling: zkbench multi, 16
//       threads of synchronous zoo_multi of 100 setData.
//   B2: 64 concurrent clients, each push = 1 put. Ceiling: zkbench aset,
//       64 async setData in flight.
//
// Phases alternate (ceiling, gateway, ceiling, gateway, ...) so that noise
// from other tenants of the machine hits both; the figure is the ratio of
// the means. The gateway's load comes from bench/pushgen (C, one epoll
// loop, as the ceiling's comes from zkbench): fresh client ids and keys per
// round, every key's first push creating it in the warm-up. --gen node
// uses this program's own Node http client instead (the generator before
// the eighth session of round 2: it costs the machine about three times
// as much per push and held B2 near 3,000 pushes/s by itself).
// Usage: node bench/push.mjs --build DIR --case B1|B2 [--smoke]
//   [--seconds S] [--rounds R] [--warm-rounds W (default 1: not counted)]
//   [--workers N (gateway flag)] [--gen c|node]
//   [--perf S: `perf record -g` the gateway for S seconds of the last gateway
//    phase and print the top of `perf report` on stderr; --perf-cg dwarf for
//    call graphs through code built without frame pointers]
import { spawn, execFileSync } from 'node:child_process';
import path from 'node:path';
import {
  args, emit, tmp, log, round, startZk, startGateway, zkbench, agent, request, value, ensure, machine, cpuSeconds, sleep, runJson,
} from './lib.mjs';

const o = args();
const which = o.case || 'B1';
const CASES = {
  // Targets as ratios to the same run's ceiling (issue "watches that scale": B1 >= 0.25, B2 >= 1.0).
  B1: { clients: 16, perPush: 100, target: 0.25, figure: 'mutations_per_s' },
  B2: { clients: 64, perPush: 1, target: 1.0, figure: 'mutations_per_s' },
};
const c = CASES[which];
ensure(c, `unknown case ${which}`);
const seconds = Number(o.seconds || (o.smoke ? 1.5 : 8));
const warmup = Number(o.warmup || (o.smoke ? 0.5 : 2));
const rounds = Number(o.rounds || (o.smoke ? 1 : 2));
const warmRounds = Number(o['warm-rounds'] ?? (o.smoke ? 0 : 1));
const workers = o.workers ? ['--workers', o.workers] : [];
const gen = o.gen || 'c';
ensure(gen === 'c' || gen === 'node', `--gen ${gen}: c or node`);
const BYTES = 100;

const zk = startZk(`push-${which}`);
log(`${which}: ZooKeeper at ${zk.connect}`);
const gw = await startGateway(o, `push-${which}`, zk, ['--create-store', 'bench', ...workers]);
log(`${which}: gateway pid ${gw.pid} at ${gw.url}`);
const ag = agent(c.clients);
const pushUrl = `${gw.url}/v1/stores/bench/push`;

// Client state: its keys, their versions, its next mutation id.
const clients = [];
for (let i = 0; i < c.clients; i++) {
  clients.push({ id: `${which.toLowerCase()}c${i}`, next: 1, keys: Array.from({ length: c.perPush }, (_, j) => `c${i}:k${j}`), ver: new Array(c.perPush).fill(0) });
}

async function push(cl, seq) {
  let body = `{"client":"${cl.id}","mutations":[`;
  const first = cl.next;
  for (let j = 0; j < c.perPush; j++) {
    body += `${j ? ',' : ''}{"id":${cl.next++},"key":"${cl.keys[j]}","op":"put","value":${value(seq, BYTES)},"base":${cl.ver[j]}}`;
  }
  body += ']}';
  const r = await request(ag, 'POST', pushUrl, body);
  ensure(r.status === 200, `push: ${r.status} ${r.body.slice(0, 300)}`);
  const res = r.json().results;
  let applied = 0;
  for (let j = 0; j < res.length; j++) {
    if (res[j].status === 'applied') { applied++; cl.ver[res[j].id - first] = res[j].version; }
    else throw new Error(`push: unexpected result ${JSON.stringify(res[j])}`);
  }
  return applied;
}

// Create every key once (not measured).
if (gen === 'node') await Promise.all(clients.map((cl) => push(cl, 0)));

/** The gateway's ZooKeeper call counts by operation, from /metrics. */
async function zkOps() {
  const r = await request(ag, 'GET', `${gw.url}/metrics`);
  const out = {};
  for (const m of r.body.matchAll(/^zoosync_zk_op_seconds_count\{op="([^"]+)"\} (\d+)$/gm)) out[m[1]] = Number(m[2]);
  for (const m of r.body.matchAll(/^zoosync_(watch_events|zk_reads|mirror_read_batches)_total (\d+)$/gm)) out[`mirror_${m[1]}`] = Number(m[2]);
  return out;
}

/** bench/pushgen for one phase (client ids and keys of their own: `r`); resolves with its JSON line. */
function pushgen(r) {
  return runJson(o.pushgen, ['--port', new URL(gw.url).port, '--store', 'bench', '--clients', String(c.clients),
    '--per-push', String(c.perPush), '--bytes', String(BYTES), '--seconds', String(seconds), '--warmup', String(warmup),
    '--id', `${which.toLowerCase()}r${r}`]);
}

async function gatewayPhase(r) {
  const ops0 = await zkOps();
  if (gen === 'c') {
    const cpu0 = { gw: cpuSeconds(gw.pid), zk: cpuSeconds(zk.pid) };
    let cpuAtStart = null;
    const timer = setTimeout(() => { cpuAtStart = { gw: cpuSeconds(gw.pid), zk: cpuSeconds(zk.pid) }; }, warmup * 1000);
    const t0 = performance.now();
    const g = await pushgen(r);
    clearTimeout(timer);
    const cpuEnd = { gw: cpuSeconds(gw.pid), zk: cpuSeconds(zk.pid) };
    const base = cpuAtStart || cpu0;
    const span = cpuAtStart ? (performance.now() - t0) / 1000 - warmup : (performance.now() - t0) / 1000;
    const ops1 = await zkOps();
    const zkCalls = Object.fromEntries(Object.keys(ops1).map((k) => [k, ops1[k] - (ops0[k] || 0)]).filter(([, v]) => v > 0));
    return {
      mutations: g.mutations, per_s: g.per_s, pushes: g.pushes, errors: g.errors, latency_ms: { p50: g.p50_ms, p99: g.p99_ms },
      zk_calls: zkCalls, pushes_per_multi: zkCalls.multi ? round(g.pushes / zkCalls.multi, 1) : null,
      cpu: { gateway: round((cpuEnd.gw - base.gw) / span, 2), zookeeper: round((cpuEnd.zk - base.zk) / span, 2), loadgen: round(g.cpu_cores, 2) },
    };
  }
  const t0 = performance.now();
  const tStart = t0 + warmup * 1000, tEnd = tStart + seconds * 1000;
  let counted = 0, pushes = 0, errors = 0;
  const cpu0 = { gw: cpuSeconds(gw.pid), zk: cpuSeconds(zk.pid), me: process.cpuUsage() };
  let cpuAtStart = null;
  const timer = setTimeout(() => { cpuAtStart = { gw: cpuSeconds(gw.pid), zk: cpuSeconds(zk.pid), me: process.cpuUsage() }; }, warmup * 1000);
  await Promise.all(clients.map(async (cl) => {
    let seq = 1;
    for (;;) {
      const now = performance.now();
      if (now >= tEnd) break;
      try {
        const n = await push(cl, seq++);
        const t = performance.now();
        pushes++;
        if (t >= tStart && t < tEnd) counted += n;
      } catch (e) {
        errors++;
        if (errors > 10) throw e;
        log(`push error: ${e.message}`);
        await sleep(100);
      }
    }
  }));
  clearTimeout(timer);
  const cpuEnd = { gw: cpuSeconds(gw.pid), zk: cpuSeconds(zk.pid), me: process.cpuUsage(cpuAtStart?.me || cpu0.me) };
  const base = cpuAtStart || cpu0;
  const ops1 = await zkOps();
  const zkCalls = Object.fromEntries(Object.keys(ops1).map((k) => [k, ops1[k] - (ops0[k] || 0)]).filter(([, v]) => v > 0));
  const span = cpuAtStart ? seconds : (performance.now() - t0) / 1000;
  return {
    mutations: counted, per_s: counted / seconds, pushes, errors,
    // ZooKeeper calls of the whole phase (warm-up included) and pushes per multi: the group commit's batch.
    zk_calls: zkCalls, pushes_per_multi: zkCalls.multi ? round(pushes / zkCalls.multi, 1) : null,
    cpu: { gateway: round((cpuEnd.gw - base.gw) / span, 2), zookeeper: round((cpuEnd.zk - base.zk) / span, 2),
      loadgen: round((cpuEnd.me.user + cpuEnd.me.system) / 1e6 / span, 2) },
  };
}

async function ceilingPhase(r) {
  const zk0 = cpuSeconds(zk.pid);
  const t0 = performance.now();
  const common = ['--zk', zk.connect, '--bytes', String(BYTES), '--seconds', String(seconds), '--warmup', String(warmup)];
  const out = which === 'B1'
    ? await zkbench(o, ['multi', ...common, '--path', `/raw-${r}`, '--threads', String(c.clients), '--ops', String(c.perPush)])
    : await zkbench(o, ['aset', ...common, '--path', `/raw-${r}`, '--inflight', String(c.clients), '--keys', String(c.clients)]);
  out.cpu = { zookeeper: round((cpuSeconds(zk.pid) - zk0) / ((performance.now() - t0) / 1000), 2) };
  return out;
}

/** perf record -g of the gateway for o.perf seconds, starting after the warm-up. */
async function perfGateway() {
  await sleep(warmup * 1000);
  const out = path.join(tmp(`push-${which}`), 'perf.data');
  const p = spawn('perf', ['record', ...(o['perf-cg'] ? ['--call-graph', o['perf-cg']] : ['-g']), '-o', out, '-p', String(gw.pid), '--', 'sleep', String(o.perf)], { stdio: 'ignore' });
  await new Promise((r) => p.on('exit', r));
  try {
    const rep = execFileSync('perf', ['report', '-i', out, '--children', '--sort', 'sym', '--stdio', '-g', 'none', '--percent-limit', '2'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 26 });
    log(`perf report of the gateway (pid ${gw.pid}), ${o.perf} s of the ${which} gateway phase (children, self, symbol):`);
    for (const l of rep.split('\n').filter((x) => /%/.test(x) && !x.startsWith('#')).slice(0, 40)) log(`  ${l.trim()}`);
    log(`perf data: ${out}`);
  } catch (e) { log(`perf report failed: ${e.message}`); }
}

// A warm-up round first, measured and thrown away: a fresh ZooKeeper's JVM
// is still compiling its hot paths during the first phase (round 0's
// ceiling came out 10-25 % below later rounds' in every run, which made the
// gateway's first phase look that much better: docs/PERFORMANCE.md,
// "Round 2, thirteenth session").
for (let r = 0; r < warmRounds; r++) {
  const ceil = await ceilingPhase(`w${r}`);
  const g = await gatewayPhase(`w${r}`);
  log(`${which} warm-up round ${r} (not counted): raw ZooKeeper ${round(ceil.per_s, 0)}, zoosyncd ${round(g.per_s, 0)} mutations/s`);
}

const rows = [];
for (let r = 0; r < rounds; r++) {
  const ceil = await ceilingPhase(r);
  log(`${which} round ${r}: raw ZooKeeper ${round(ceil.per_s, 0)} mutations/s`);
  const perfP = o.perf && r === rounds - 1 ? perfGateway() : null;
  const g = await gatewayPhase(r);
  if (perfP) await perfP;
  log(`${which} round ${r}: zoosyncd ${round(g.per_s, 0)} mutations/s (${g.pushes} pushes) cpu ${JSON.stringify(g.cpu)} pushes/multi ${g.pushes_per_multi} zk calls ${JSON.stringify(g.zk_calls)}`);
  rows.push({ ceiling: ceil, gateway: g });
}

const value_ = rows.reduce((s, x) => s + x.gateway.per_s, 0) / rows.length;
const ceiling = rows.reduce((s, x) => s + x.ceiling.per_s, 0) / rows.length;
const ratio = value_ / ceiling;
emit({
  id: which, figure: c.figure, value: round(value_, 0), ceiling: round(ceiling, 0), ratio: round(ratio, 3),
  target: `>= ${c.target}`, pass: ratio >= c.target,
  clients: c.clients, mutations_per_push: c.perPush, value_bytes: BYTES, seconds, rounds, warm_rounds: warmRounds,
  ceiling_is: which === 'B1' ? `raw C client, ${c.clients} threads of synchronous zoo_multi of ${c.perPush} setData`
    : `raw C client, zoo_aset with ${c.clients} in flight`,
  per_round: rows.map((x) => ({ gateway: round(x.gateway.per_s, 0), ceiling: round(x.ceiling.per_s, 0), cpu: x.gateway.cpu, pushes_per_multi: x.gateway.pushes_per_multi, zk_cpu_ceiling: x.ceiling.cpu.zookeeper, latency_ms: x.gateway.latency_ms })),
  gateway_flags: workers.join(' ') || 'defaults', generator: gen === 'c' ? 'bench/pushgen (C)' : 'Node http client',
  smoke: o.smoke, machine: machine(),
});

ag.destroy();
await gw.stop();
zk.stop();
