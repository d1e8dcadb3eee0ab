// B3 and B6: a large store.
//
//   B3: 100,000 records of ~100 bytes; the whole changes feed read from the
//       beginning with limit=10000 (each page parsed with JSON.parse, as a
//       client must), records/s. Ceiling: the raw ZooKeeper C client reading
//       the same records straight from ZooKeeper (list the record buckets,
//       async gets), records/s.
//   B6: 1,000,000 records of ~100 bytes; the gateway's load time (spawn to
//       the first GET /v1/stores/bench that reports every record) and its
//       RSS divided by the raw key+value bytes. Ceiling for the load time:
//       the raw C client reading every record with a data watch (what the
//       mirror does), in the same run.
//
// The records are written straight into the store's znode layout by
// `zkbench load` (not through the gateway, which would take minutes for a
// million), after a first gateway created the store; then a fresh gateway
// loads them. Usage: node bench/store.mjs --build DIR --case B3|B6 [--smoke]
import {
  args, emit, log, round, startZk, startGateway, zkbench, agent, request, ensure, machine, rss, sleep, median,
} from './lib.mjs';
import { startProxy } from '../tests/lib/proxy.mjs';

const o = args();
const which = o.case || 'B3';
const N = Number(o.records || (which === 'B3' ? (o.smoke ? 5000 : 100000) : (o.smoke ? 20000 : 1000000)));
const BYTES = 100;
const KEYLEN = 9; // "r" + 8 digits
const name = `store-${which}`;

const zk = startZk(name, { heap: which === 'B6' && !o.smoke ? '3g' : '1g' });
log(`${which}: ZooKeeper at ${zk.connect}`);
{
  const gw0 = await startGateway(o, name, zk, ['--create-store', 'bench']);
  await gw0.stop();
}
log(`${which}: loading ${N} records straight into ZooKeeper`);
const load = await zkbench(o, ['load', '--zk', zk.connect, '--root', '/zoosync', '--store', 'bench', '--count', String(N), '--bytes', String(BYTES)]);
log(`${which}: loaded in ${round(load.seconds, 1)} s`);
ensure(load.raw_bytes === N * (KEYLEN + BYTES), `raw bytes ${load.raw_bytes}`);

const ceil = await zkbench(o, ['read', '--zk', zk.connect, '--root', '/zoosync', '--store', 'bench', ...(which === 'B6' ? ['--watch'] : [])]);
ensure(ceil.records === N, `raw read saw ${ceil.records} records`);
log(`${which}: raw ZooKeeper read of every record: ${round(ceil.seconds, 2)} s (${round(ceil.per_s, 0)} records/s)`);

// A fresh gateway loads the store (--create-store: at start).
const ag = agent(4);
const t0 = performance.now();
const gw = await startGateway(o, name, zk, ['--create-store', 'bench'], { readyTimeoutMs: 300000 });
let desc;
for (;;) {
  const r = await request(ag, 'GET', `${gw.url}/v1/stores/bench`);
  if (r.status === 200) { desc = r.json(); if (desc.records === N) break; }
  else ensure(r.status === 503, `store description: ${r.status} ${r.body}`);
  ensure(performance.now() - t0 < 600000, 'store not loaded in 10 minutes');
  await sleep(50);
}
const loadS = (performance.now() - t0) / 1000;
await sleep(500);
const mem = rss(gw.pid);
log(`${which}: gateway loaded ${N} records in ${round(loadS, 2)} s, RSS ${round(mem.rss / 2 ** 20, 1)} MiB`);

if (which === 'B6') {
  const raw = load.raw_bytes;
  emit({
    id: 'B6', figure: 'load_seconds', value: round(loadS, 2), ceiling: round(ceil.seconds, 2), ratio: round(loadS / ceil.seconds, 2),
    target: '<= 60', pass: loadS <= 60, records: N, value_bytes: BYTES,
    ceiling_is: 'raw C client: list the record buckets, zoo_awget every record (data watch, as the mirror)',
    smoke: o.smoke, machine: machine(),
  });
  emit({
    id: 'B6', figure: 'rss_per_raw_byte', value: round(mem.rss / raw, 2), ceiling: null, ratio: round(mem.rss / raw, 2),
    target: '<= 3', pass: mem.rss / raw <= 3, rss_MiB: round(mem.rss / 2 ** 20, 1), peak_rss_MiB: round(mem.hwm / 2 ** 20, 1),
    raw_key_value_MiB: round(raw / 2 ** 20, 1), bytes_per_record: round(mem.rss / N, 0), records: N,
    smoke: o.smoke, machine: machine(),
  });
} else {
  // Read the whole feed several times; the figure is the median.
  const reps = Number(o.reps || (o.smoke ? 2 : 5));
  const runs = [];
  for (let rep = 0; rep < reps; rep++) {
    let since = null, count = 0, pages = 0, bytes = 0, parseMs = 0;
    const t = performance.now();
    for (;;) {
      const url = `${gw.url}/v1/stores/bench/changes?limit=10000${since ? `&since=${since}` : ''}`;
      const r = await request(ag, 'GET', url);
      ensure(r.status === 200, `changes: ${r.status} ${r.body.slice(0, 200)}`);
      const p0 = performance.now();
      const page = r.json();
      parseMs += performance.now() - p0;
      count += page.changes.length;
      bytes += r.body.length;
      pages++;
      since = page.cursor;
      if (!page.more) break;
    }
    const s = (performance.now() - t) / 1000;
    ensure(count === N, `feed returned ${count} records, expected ${N}`);
    runs.push({ seconds: s, per_s: N / s, pages, MiB: bytes / 2 ** 20, parse_s: parseMs / 1000 });
    log(`${which}: feed read ${rep}: ${round(s, 3)} s, ${round(N / s, 0)} records/s (${pages} pages, JSON.parse ${round(parseMs, 0)} ms)`);
  }
  const v = median(runs.map((x) => x.per_s));
  emit({
    id: 'B3', figure: 'records_per_s', value: round(v, 0), ceiling: round(ceil.per_s, 0), ratio: round(v / ceil.per_s, 2),
    target: '>= 300000', pass: v >= 300000, records: N, value_bytes: BYTES, limit: 10000,
    best: round(Math.max(...runs.map((x) => x.per_s)), 0), runs: runs.map((x) => ({ s: round(x.seconds, 3), pages: x.pages, MiB: round(x.MiB, 1), parse_s: round(x.parse_s, 3) })),
    ceiling_is: 'raw C client: list the record buckets, zoo_aget every record',
    gateway_load_seconds: round(loadS, 2), gateway_rss_MiB: round(mem.rss / 2 ** 20, 1),
    smoke: o.smoke, machine: machine(),
  });
}

ag.destroy();
await gw.stop();

if (which === 'B6') {
  // Recovery at a million records (docs/ARCHITECTURE.md, "Disconnects"):
  // a gateway reaching ZooKeeper through a proxy this benchmark owns sees
  // (1) ZooKeeper restarted, (2) a 5 s link cut while another client
  // creates 1,000 records. Figure: from ZooKeeper reachable again to
  // /readyz 200 (and the new records counted). Target: <= 10 s.
  const proxy = await startProxy(zk.connect);
  const ag2 = agent(2);
  const gw2 = await startGateway(o, name, { connect: proxy.addr }, ['--create-store', 'bench', '--session-timeout', '15000'], { readyTimeoutMs: 300000 });
  // A request may meet a kept-alive connection the gateway closed while this
  // process was blocked in zk.restart (execFileSync; idle connections are
  // closed after --header-timeout, 10 s): that is "not yet", asked again.
  const get = (url) => request(ag2, 'GET', url).catch((e) => ({ status: 0, error: e.code || e.message }));
  const readyAfter = async (t, want) => {
    for (;;) {
      const r = await get(`${gw2.url}/readyz`);
      if (r.status === 200) {
        const d = await get(`${gw2.url}/v1/stores/bench`);
        if (d.status === 200 && d.json().records === want) return (performance.now() - t) / 1000;
      }
      ensure(performance.now() - t < 120000, 'not ready in 2 minutes');
      await sleep(50);
    }
  };
  await readyAfter(performance.now(), N);
  await zk.restart(1000);
  const restartS = await readyAfter(performance.now(), N);
  log(`B6: ready ${round(restartS, 2)} s after ZooKeeper restarted with ${N} records`);
  proxy.cut();
  const cutAt = performance.now();
  await zkbench(o, ['load', '--zk', zk.connect, '--root', '/zoosync', '--store', 'bench', '--count', '1000', '--first', String(N), '--bytes', String(BYTES)]);
  await sleep(Math.max(0, 5000 - (performance.now() - cutAt)));
  proxy.heal();
  const cutS = await readyAfter(performance.now(), N + 1000);
  log(`B6: ready ${round(cutS, 2)} s after a 5 s link cut (1,000 records created meanwhile)`);
  const worst = Math.max(restartS, cutS);
  emit({
    id: 'B6', figure: 'recovery_seconds', value: round(worst, 2), ceiling: null, ratio: null, target: '<= 10', pass: worst <= 10,
    after_zk_restart_s: round(restartS, 2), after_5s_cut_s: round(cutS, 2), records: N,
    smoke: o.smoke, machine: machine(),
  });
  ag2.destroy();
  await gw2.stop();
  await proxy.close();
}
zk.stop();
