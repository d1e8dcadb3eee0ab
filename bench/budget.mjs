// B11: the largest write rate one token reaches, with the write budgets at
// their defaults (docs/PROTOCOL.md, "Rate limits and write budgets"). One
// ZooKeeper with the heap the tests use (256 MiB) and gateways started with
// `--zk-heap-mb 256` and authentication on, so their budgets are the
// documented defaults for that heap: B = 256 MiB / 256 = 1 MiB/s and
// M = 256 x 4 = 1,024 mutations/s per subject, bursts of two seconds' worth.
// One token (one `sub`) writes flat out, 4 requests in flight:
//
//   bytes      the round-1 attack that killed ZooKeeper (pushes of 15 x 60 KB
//              values): the figure is the bytes per second applied
//   mutations  pushes of 100 mutations of 100-byte values: mutations/s
//   two        the `mutations` load spread over two gateways: budgets are
//              per gateway, so one token reaches twice as much
//
// The ceiling of each is what the budget allows over the run: rate x (T + 2)
// / T (the burst is two seconds' worth). A run passes when the rate applied
// is at most that (the budget holds) and at least 80 % of the budget (it is
// not under-admitting), every refusal is 429 with Retry-After, and ZooKeeper
// is alive afterwards with every applied write readable.
// Usage: node bench/budget.mjs --build DIR [--smoke] [--seconds S]
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import {
  args, emit, log, round, startZk, startGateway, agent, request, ensure, machine, tmp, sleep,
} from './lib.mjs';
import { sign, claims } from '../tests/lib/jwt.mjs';

const o = args();
const seconds = Number(o.seconds || (o.smoke ? 3 : 20));
const HEAP_MB = 256, BURST_S = 2, INFLIGHT = 4;
const BUDGET_BYTES = HEAP_MB * 1048576 / 256, BUDGET_MUTATIONS = HEAP_MB * 4;

const dir = tmp('budget-B11');
const secretFile = path.join(dir, 'jwt.secret');
const secret = crypto.randomBytes(32).toString('hex');
writeFileSync(secretFile, secret);
const tok = (sub, scope) => `Bearer ${sign('HS256', secret, claims(scope, { sub }))}`;
const admin = { authorization: tok('operator', 'admin') };

const zk = startZk('budget-B11', { heap: `${HEAP_MB}m` });
log(`B11: ZooKeeper (heap ${HEAP_MB} MiB) at ${zk.connect}`);
const gwArgs = ['--zk-heap-mb', String(HEAP_MB), '--jwt-secret-file', secretFile];
const gws = [await startGateway(o, 'budget-B11', zk, gwArgs, { budgets: true }),
  await startGateway(o, 'budget-B11', zk, gwArgs, { budgets: true })];
log(`B11: gateways ${gws.map((g) => `${g.pid} at ${g.url}`).join(', ')}`);
const ag = agent(2 * INFLIGHT + 2);

const r0 = await request(ag, 'PUT', `${gws[0].url}/v1/stores/b11`, {}, admin);
ensure(r0.status === 201, `PUT store: ${r0.status} ${r0.body}`);

/**
 * One token pushing flat out for `seconds` through the given gateways.
 * perPush mutations of valueBytes each; keys are fresh (creates).
 */
async function flood(name, urls, perPush, valueBytes) {
  const who = { authorization: tok(`mallory-${name}`, 'b11:write') };
  const pad = 'x'.repeat(valueBytes - 10);
  let next = 1, applied = 0, appliedBytes = 0, refused = 0, badRefusals = 0, errors = 0;
  const errorSamples = [];
  const keys = [];
  const t0 = performance.now(), tEnd = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: INFLIGHT * urls.length }, async (_, w) => {
    const url = `${urls[w % urls.length]}/v1/stores/b11/push`;
    const client = `${name}-w${w}`;
    let id = 1, muts = null; // muts: the push to send (again, after a refusal or an error: exactly once)
    while (performance.now() < tEnd) {
      if (!muts) {
        muts = [];
        for (let j = 0; j < perPush; j++) muts.push({ id: id++, key: `${name}/${next++}`, op: 'put', value: { p: pad } });
      }
      const r = await request(ag, 'POST', url, { client, mutations: muts }, who);
      if (r.status === 200) {
        const res = r.json().results;
        for (let j = 0; j < res.length; j++) {
          // duplicate: an earlier attempt that answered an error was applied
          if (res[j].status !== 'applied' && res[j].status !== 'duplicate') throw new Error(`${name}: ${JSON.stringify(res[j])}`);
          applied++;
          appliedBytes += muts[j].key.length + JSON.stringify(muts[j].value).length;
          if (keys.length < 50 || (applied % 97) === 0) keys.push(muts[j].key);
        }
        muts = null;
      } else if (r.status === 429) {
        refused++;
        const ra = Number(r.headers['retry-after']);
        if (!(ra >= 1) || r.json().error !== 'too_many_requests') badRefusals++;
        await sleep(Math.min(1000, ra * 1000) / 4); // a hostile client retries sooner than told
      } else {
        errors++;
        if (errorSamples.length < 5) errorSamples.push(`${r.status} ${r.body.slice(0, 200)}`);
        if (errors > 20) throw new Error(`${name}: ${r.status} ${r.body.slice(0, 200)}`);
        await sleep(100);
      }
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  return { applied, appliedBytes, refused, badRefusals, errors, errorSamples, elapsed, keys };
}

/** Every sampled key is readable through the other gateway (ZooKeeper alive, writes kept). */
async function checkKept(keys) {
  for (const k of keys) {
    const r = await request(ag, 'GET', `${gws[1].url}/v1/stores/b11/records/${encodeURIComponent(k)}`, undefined, admin);
    ensure(r.status === 200, `record ${k} after the run: ${r.status} ${r.body.slice(0, 200)}`);
  }
}

const rows = [];
const cases = [
  ['bytes', [gws[0].url], 15, 60000, 'bytes_per_s', BUDGET_BYTES, (x) => x.appliedBytes],
  ['mutations', [gws[0].url], 100, 100, 'mutations_per_s', BUDGET_MUTATIONS, (x) => x.applied],
  ['two', gws.map((g) => g.url), 100, 100, 'mutations_per_s', 2 * BUDGET_MUTATIONS, (x) => x.applied],
];
for (const [name, urls, perPush, valueBytes, figure, budget, amount] of cases) {
  const x = await flood(name, urls, perPush, valueBytes);
  await checkKept(x.keys);
  const ready = await Promise.all(gws.map((g) => request(ag, 'GET', `${g.url}/readyz`)));
  ensure(ready.every((r) => r.status === 200), `a gateway is not ready after ${name}: ${ready.map((r) => r.status)}`);
  const rate = amount(x) / x.elapsed;
  const ceiling = (budget * (x.elapsed + BURST_S)) / x.elapsed;
  // errors (503 while ZooKeeper is slow) are retried as a client would; they do not fail the run
  const pass = rate <= ceiling && rate >= 0.8 * budget && x.badRefusals === 0;
  log(`B11 ${name}: ${round(rate, 0)} ${figure} applied (budget ${budget}, ceiling ${round(ceiling, 0)}), ${x.refused} refused with 429, ${x.errors} errors`);
  rows.push({ name, figure, value: round(rate, 0), budget, ceiling: round(ceiling, 0), ratio: round(rate / budget, 3), refused: x.refused,
    bad_refusals: x.badRefusals, errors: x.errors, error_samples: x.errorSamples, applied_mutations: x.applied, applied_bytes: x.appliedBytes,
    seconds: round(x.elapsed, 1), per_push: perPush, value_bytes: valueBytes, gateways: urls.length, pass });
}

const main = rows[0];
emit({
  id: 'B11', figure: 'bytes_per_s_one_token', value: main.value, ceiling: main.ceiling, ratio: main.ratio,
  target: `<= ceiling (budget x (T+${BURST_S})/T) and >= 0.8 x budget`, pass: rows.every((r) => r.pass),
  ceiling_is: `the default write budget at --zk-heap-mb ${HEAP_MB} (${BUDGET_BYTES} bytes/s, ${BUDGET_MUTATIONS} mutations/s per subject and gateway) over the run, burst included`,
  cases: rows, inflight: INFLIGHT, zk_heap_mb: HEAP_MB, smoke: o.smoke, machine: machine(),
});

ag.destroy();
for (const g of gws) await g.stop();
zk.stop();
