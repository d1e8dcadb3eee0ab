// B7 and B8: Debian's chromium (through playwright-core, never a downloaded
// browser), two persistent profiles (two browser processes, two IndexedDBs),
// one gateway serving the bench page (bench/www) and the client (client/).
//
//   B7: page A writes 10,000 records of ~100 bytes offline, in 20
//       transaction() calls of 500, then goes online; page B is live.
//       Figures: A's local write time (the median of that write and three
//       more, each in a local-only database of its own, run between the
//       raw runs) against raw IndexedDB shaped like
//       the workload (the same 10,000 records in 20 readwrite transactions
//       of 500 puts, one per transaction() call, same durability as the
//       client: strict) in the same browser; the sync time from A going
//       online until B's subscriber has all 10,000. Ceiling of the sync:
//       the same records pushed by page A with fetch (1000 per request, the
//       same tx groups, each answer's records put in IndexedDB in one
//       transaction before the next request) and read by page B on a raw
//       event stream, each event's records put in IndexedDB in one
//       transaction and counted once it committed: the gateway and
//       IndexedDB path without the client library.
//   B8: A and B live on one store; A updates one record 200 times, each time
//       waiting until B's subscriber sees it; latency p50/p99. Ceiling: the
//       same with fetch + a raw event stream, no client library.
//
// Usage: node bench/browser.mjs --build DIR [--case B7|B8|all] [--smoke]
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import {
  BENCH, REPO, args, emit, log, round, startZk, startGateway, ensure, machine, sleep, percentile, trackGroup, tmp, median, withTimeout,
} from './lib.mjs';

const o = args();
const which = o.case || 'all';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
const N7 = Number(o.records || (o.smoke ? 500 : 10000));
const PER7 = Number(o.per || (o.smoke ? 100 : 500));
const N8 = Number(o.updates || (o.smoke ? 20 : 200));
const BYTES = 100;

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  for (const id of ['B7', 'B8']) emit({ id, skipped: 'playwright-core is not installed (npm ci)', pass: null });
  process.exit(0);
}
if (!existsSync(CHROMIUM)) {
  for (const id of ['B7', 'B8']) emit({ id, skipped: `no chromium at ${CHROMIUM}`, pass: null });
  process.exit(0);
}

/** A chromium process on its own persistent profile, reached over CDP. */
async function profile(label) {
  const dir = path.join(tmp('browser'), `profile-${label}`);
  mkdirSync(dir, { recursive: true });
  const proc = spawn(CHROMIUM, ['--headless', '--remote-debugging-port=0', `--user-data-dir=${dir}`, ...FLAGS, 'about:blank'],
    { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  const untrack = trackGroup(proc.pid);
  const exited = new Promise((r) => proc.on('exit', r));
  const ws = await new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`chromium printed no DevTools URL: ${buf.slice(-1000)}`)), 30000);
    proc.stderr.on('data', (d) => {
      buf += d;
      const m = buf.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
    proc.on('exit', (c) => { clearTimeout(t); reject(new Error(`chromium exited ${c}: ${buf.slice(-1000)}`)); });
  });
  proc.stderr.resume();
  const browser = await chromium.connectOverCDP(ws);
  const context = browser.contexts()[0];
  return {
    context,
    async page(url) {
      const p = await context.newPage();
      p.on('pageerror', (e) => log(`page error (${label}): ${e.message}`));
      await p.goto(url);
      await p.waitForFunction(() => window.ready === true);
      return p;
    },
    async close() {
      await browser.close().catch(() => {});
      try { process.kill(-proc.pid, 'SIGTERM'); } catch { /* gone */ }
      const t = setTimeout(() => { try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
      await exited;
      clearTimeout(t);
      untrack();
    },
  };
}

/** CPU profile of a page (V8 sampling profiler over CDP), with --profile. */
async function startProfile(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
  await cdp.send('Profiler.start');
  return cdp;
}
async function stopProfile(cdp, label) {
  const { profile } = await cdp.send('Profiler.stop');
  const dt = new Map(); // node id -> sampled time
  for (let i = 0; i < profile.samples.length; i++) dt.set(profile.samples[i], (dt.get(profile.samples[i]) || 0) + (profile.timeDeltas[i] || 0));
  const self = new Map();
  let total = 0;
  for (const n of profile.nodes) {
    const t = (dt.get(n.id) || 0) / 1000;
    total += t;
    const f = n.callFrame;
    const k = `${f.functionName || '(anonymous)'} ${f.url ? `${f.url.split('/').pop()}:${f.lineNumber + 1}` : ''}`.trim();
    self.set(k, (self.get(k) || 0) + t);
  }
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15);
  log(`profile ${label} (${round(total, 0)} ms sampled, self time):`);
  for (const [k, t] of top) log(`  ${round(t, 1).toString().padStart(8)} ms ${round((100 * t) / total, 1).toString().padStart(5)}%  ${k}`);
  await cdp.detach();
}

const waitFor = (page, fn, arg, ms, what) => page.waitForFunction(fn, arg, { timeout: ms, polling: 20 })
  .catch((e) => { throw new Error(`${what}: not reached in ${ms} ms (${e.message.split('\n')[0]})`); });

const zk = startZk('browser');
const gw = await startGateway(o, 'browser', zk, ['--create-store', 'b7', '--create-store', 'b8', '--create-store', 'raw7',
  '--create-store', 'raw8', '--web', path.join(BENCH, 'www'), '--client-dir', path.join(REPO, 'client')]);
log(`browser: gateway pid ${gw.pid} at ${gw.url}`);
const A = await profile('A'), Bp = await profile('B');
const pa = await A.page(`${gw.url}/`), pb = await Bp.page(`${gw.url}/`);

async function openBoth(store, name) {
  const opts = { name, url: [gw.url], stores: [store] };
  await pa.evaluate((x) => B.open(x), opts);
  await pb.evaluate((x) => B.open(x), opts);
  await waitFor(pa, () => B.status().connected, null, 15000, 'A connected');
  await waitFor(pb, () => B.status().connected, null, 15000, 'B connected');
}

if (which === 'all' || which === 'B7') {
  // Raw IndexedDB in the same browser, several times (the median). The
  // ceiling: one raw transaction per transaction() call (N7 / PER7 of PER7
  // puts); the others are shown for reference. Between the raw runs, the
  // client writes the same records in a local-only database of its own
  // (samples of the local write besides the one before the sync below).
  const raws = [], one = [], relaxed = [], shaped = [], sides = [];
  for (let i = 0; i < 3; i++) {
    raws.push(await pa.evaluate(([n, per, b]) => B.rawIDBTx(n, per, b, 'strict'), [N7, PER7, BYTES]));
    sides.push(await pa.evaluate(([n, per, b]) => B.sideWriteMany(n, per, b), [N7, PER7, BYTES]));
    one.push(await pa.evaluate(([n, b]) => B.rawIDB(n, b, 'strict'), [N7, BYTES]));
    relaxed.push(await pa.evaluate(([n, b]) => B.rawIDB(n, b, 'relaxed'), [N7, BYTES]));
    shaped.push(await pa.evaluate(([n, per, b]) => B.rawIDBShaped(n, per, b, 'strict'), [N7, PER7, BYTES]));
  }
  const raw = median(raws);
  log(`B7: raw IndexedDB, ${N7} puts in ${N7 / PER7} transactions of ${PER7} (the ceiling): ${round(raw, 1)} ms (${raws.map((x) => round(x, 0)).join(' ')})`);
  log(`B7: client local write between them (a database of its own): ${sides.map((x) => round(x, 0)).join(' ')} ms`);
  log(`B7: raw IndexedDB, 2 puts per record (record + log entry) in ${N7 / PER7} transactions: ${round(median(shaped), 1)} ms`);
  log(`B7: raw IndexedDB, ${N7} puts in one transaction: ${round(median(one), 1)} ms (strict), ${round(median(relaxed), 1)} ms (relaxed)`);

  // Ceiling of the sync: the gateway and IndexedDB path without the client.
  await pb.evaluate(() => B.rawListen('raw7', true));
  const rt0 = await pa.evaluate(([n, per, b]) => B.rawPushMany('raw7', n, per, b, 'k', true), [N7, PER7, BYTES]);
  const rt1 = await pb.evaluate((n) => B.rawWaitCount(n), N7);
  const rawSync = rt1 - rt0;
  log(`B7: raw push + raw event stream of ${N7} records, both sides writing IndexedDB: ${round(rawSync, 0)} ms`);

  await openBoth('b7', 'bench7');
  await A.context.setOffline(true);
  await waitFor(pa, () => B.status().online === false, null, 10000, 'A offline');
  const profA = o.profile ? await startProfile(pa) : null;
  const main = await pa.evaluate(([n, per, b]) => B.writeMany('b7', n, per, b, 'k'), [N7, PER7, BYTES]);
  if (profA) await stopProfile(profA, 'B7 local write, page A');
  await waitFor(pa, (n) => B.status().pending === n, N7, 10000, `A has ${N7} pending mutations`);
  const locals = [...sides, main];
  const local = median(locals);
  log(`B7: local write of ${N7} records in ${N7 / PER7} transactions: ${round(main, 0)} ms (before the sync); median of ${locals.length}: ${round(local, 0)} ms`);
  await sleep(500);
  ensure((await pb.evaluate(() => B.count)) === 0, 'B saw records before A went online');
  const done = pb.evaluate((n) => B.waitCount(n), N7);
  await pa.evaluate(() => B.armZero());
  const pushes = []; // [start, end] of A's push requests (wall-clock ms)
  const onPush = (r) => { if (r.url().includes('/push')) { const t = r.timing(); pushes.push([t.startTime, t.startTime + t.responseEnd]); } };
  pa.on('requestfinished', onPush);
  const profs = o.profile ? [await startProfile(pa), await startProfile(pb)] : null;
  const t0 = Date.now();
  await A.context.setOffline(false);
  const tB = await withTimeout(done, 120000, 'B7: B did not get every record in 120 s');
  const sync = tB - t0;
  await waitFor(pa, () => B.status().pending === 0 && B.zeroAt, null, 60000, 'A pushed everything');
  const pushed = (await pa.evaluate(() => B.zeroAt)) - t0;
  if (profs) { await stopProfile(profs[0], 'B7 sync, page A'); await stopProfile(profs[1], 'B7 sync, page B'); }
  pa.off('requestfinished', onPush);
  pushes.sort((x, y) => x[0] - y[0]);
  const inHttp = pushes.reduce((a, [s0, e0]) => a + (e0 - s0), 0);
  log(`B7: A had pushed everything ${round(pushed, 0)} ms after going online: ${pushes.length} pushes, ${round(inHttp, 0)} ms in push requests` +
    ` (${pushes.map(([s0, e0]) => round(e0 - s0, 0)).join(' ')}), first one ${pushes.length ? round(pushes[0][0] - t0, 0) : '-'} ms after going online`);
  log(`B7: sync of ${N7} records A -> B: ${round(sync, 0)} ms`);
  emit({
    id: 'B7', figure: 'local_write_ms', value: round(local, 0), ceiling: round(raw, 0), ratio: round(local / raw, 2),
    target: '<= 1.5x raw IndexedDB', pass: local <= 1.5 * raw, records: N7, per_transaction: PER7, value_bytes: BYTES,
    runs_ms: locals.map((x) => round(x, 0)), raw_runs_ms: raws.map((x) => round(x, 0)), raw_one_tx_ms: round(median(one), 0), raw_one_tx_relaxed_ms: round(median(relaxed), 0),
    raw_two_puts_per_record_ms: round(median(shaped), 0),
    ceiling_is: `raw IndexedDB: ${N7} puts in ${N7 / PER7} readwrite transactions of ${PER7} (one per transaction() call), durability strict (as the client), same browser`,
    smoke: o.smoke, machine: machine(),
  });
  emit({
    id: 'B7', figure: 'sync_ms', value: round(sync, 0), ceiling: round(rawSync, 0), ratio: round(sync / rawSync, 2),
    target: '<= 1.3x the raw sync path', pass: sync <= 1.3 * rawSync, records: N7, a_pushed_all_ms: round(pushed, 0),
    a_pushes: pushes.length, a_ms_in_push_requests: round(inHttp, 0),
    ceiling_is: 'page A pushes the same records with fetch (1000 per request, same tx groups) and puts each answer\'s records in IndexedDB (one strict transaction, before the next request); page B reads them on a raw event stream and puts each event\'s records in IndexedDB (one strict transaction), counted once committed',
    smoke: o.smoke, machine: machine(),
  });
}

if (which === 'all' || which === 'B8') {
  // Ceiling: fetch + raw event stream.
  await pb.evaluate(() => B.rawListen('raw8'));
  const rawLat = [];
  for (let i = 1; i <= N8; i++) {
    const pB = pb.evaluate(([k, v]) => B.rawWaitValue(k, v), ['hot', i]);
    const tA = await pa.evaluate(([k, v, b]) => B.rawPutOne('raw8', k, v, b), ['hot', i, BYTES]);
    rawLat.push((await pB) - tA);
  }
  rawLat.sort((a, b) => a - b);
  log(`B8: raw fetch + event stream: p50 ${round(percentile(rawLat, 50), 1)} ms p99 ${round(percentile(rawLat, 99), 1)} ms`);

  await openBoth('b8', 'bench8');
  // One update first (creates the key on both sides), not measured.
  {
    const pB = pb.evaluate(([k, v]) => B.waitValue(k, v), ['hot', 0]);
    await pa.evaluate(([k, v, b]) => B.putOne('b8', k, v, b), ['hot', 0, BYTES]);
    await pB;
  }
  const lat = [];
  for (let i = 1; i <= N8; i++) {
    const pB = pb.evaluate(([k, v]) => B.waitValue(k, v), ['hot', i]);
    const tA = await pa.evaluate(([k, v, b]) => B.putOne('b8', k, v, b), ['hot', i, BYTES]);
    const tB = await withTimeout(pB, 30000, `B8: update ${i} not seen in 30 s`);
    lat.push(tB - tA);
  }
  lat.sort((a, b) => a - b);
  const p50 = percentile(lat, 50), p99 = percentile(lat, 99);
  log(`B8: browser to browser: p50 ${round(p50, 1)} ms p99 ${round(p99, 1)} ms`);
  emit({
    id: 'B8', figure: 'browser_to_browser_ms', value: { p50: round(p50, 1), p99: round(p99, 1) },
    ceiling: { p50: round(percentile(rawLat, 50), 1), p99: round(percentile(rawLat, 99), 1) },
    ratio: { p50: round(p50 / percentile(rawLat, 50), 2), p99: round(p99 / percentile(rawLat, 99), 2) },
    target: 'p50 <= 8 ms, p99 <= 100 ms (issue 13)', pass: p50 <= 8 && p99 <= 100, updates: N8, max_ms: round(lat[lat.length - 1], 1),
    ceiling_is: 'page A: fetch POST /push; page B: fetch-read event stream; no client library',
    smoke: o.smoke, machine: machine(),
  });
}

log('closing the browsers');
await A.close();
await Bp.close();
log('stopping the gateway');
await gw.stop();
zk.stop();
log('done');
