// B10: what a store schema costs a push. B1's workload (16 concurrent
// clients, each push = 100 puts to the client's own 100 keys, with `base`)
// on two stores of one gateway: "typed", with a realistic draft-07 schema
// (10 properties, `required`, an `enum`, two `pattern`s, a nested object,
// `uniqueItems`, `additionalProperties: false`), and "plain", the same store
// without a schema, written with the same values. The ceiling is "plain",
// measured in the same run; target: typed >= 0.9 x plain.
//
// Phases alternate in ABBA order (plain, typed, typed, plain, ...) so that
// noise and drift from other tenants of the machine hit both sides; the
// figure is the ratio of the means. Each phase also reports the gateway's CPU
// per 1,000 mutations, which is where validation shows.
// Usage: node bench/schema.mjs --build DIR [--smoke] [--seconds S] [--rounds R]
import {
  args, emit, log, round, startZk, startGateway, agent, request, ensure, machine, cpuSeconds, sleep,
} from './lib.mjs';

const o = args();
const CLIENTS = 16, PER_PUSH = 100, TARGET = 0.9;
const seconds = Number(o.seconds || (o.smoke ? 1.5 : 8));
const warmup = Number(o.warmup || (o.smoke ? 0.5 : 2));
const rounds = Number(o.rounds || (o.smoke ? 1 : 4)); // even: ABBA balanced

/** A task record as an app would keep it: 10 properties, one of them an object. */
const SCHEMA = {
  type: 'object',
  required: ['id', 'title', 'status', 'priority', 'done', 'owner', 'createdAt', 'updatedAt'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: '^c[0-9]+-k[0-9]+$' },
    title: { type: 'string', minLength: 1, maxLength: 200 },
    status: { enum: ['open', 'in_progress', 'blocked', 'done'] },
    priority: { type: 'integer', minimum: 1, maximum: 5 },
    done: { type: 'boolean' },
    tags: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 32 }, maxItems: 10, uniqueItems: true },
    owner: {
      type: 'object',
      required: ['name', 'email'],
      additionalProperties: false,
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 100 },
        email: { type: 'string', pattern: '^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$' },
      },
    },
    createdAt: { type: 'integer', minimum: 0 },
    updatedAt: { type: 'integer', minimum: 0 },
    seq: { type: 'integer', minimum: 0 },
  },
};
const STATUSES = ['open', 'in_progress', 'blocked', 'done'];
const T0 = 1765000000000;

/** The value of key j of client i at write seq (about 260 bytes; valid for SCHEMA). */
function taskValue(i, j, seq) {
  return JSON.stringify({
    id: `c${i}-k${j}`, title: `Task ${j} of client ${i}: write the quarterly report`, status: STATUSES[(j + seq) % 4],
    priority: 1 + ((j + seq) % 5), done: (j + seq) % 4 === 3, tags: ['work', `team${i % 4}`],
    owner: { name: `Client ${i}`, email: `client${i}@example.com` }, createdAt: T0 + j, updatedAt: T0 + seq * 1000 + j, seq,
  });
}

const zk = startZk('schema-B10');
log(`B10: ZooKeeper at ${zk.connect}`);
const gw = await startGateway(o, 'schema-B10', zk);
log(`B10: gateway pid ${gw.pid} at ${gw.url}`);
const ag = agent(CLIENTS);

for (const [name, body] of [['plain', {}], ['typed', { schema: SCHEMA }]]) {
  const r = await request(ag, 'PUT', `${gw.url}/v1/stores/${name}`, body);
  ensure(r.status === 201, `PUT store ${name}: ${r.status} ${r.body}`);
}
// The schema is in force: a value it refuses is rejected (and nothing else in the run is).
{
  const bad = JSON.parse(taskValue(0, 0, 0));
  bad.status = 'someday';
  const r = await request(ag, 'POST', `${gw.url}/v1/stores/typed/push`,
    { client: 'check', mutations: [{ id: 1, key: 'check', op: 'put', value: bad, base: 0 }] });
  const res = r.json().results[0];
  ensure(res.status === 'rejected' && res.reason === 'invalid_value', `the schema is not in force: ${r.body}`);
}

function makeClients(store) {
  return Array.from({ length: CLIENTS }, (_, i) => ({
    i, id: `b10${store}c${i}`, next: 1, url: `${gw.url}/v1/stores/${store}/push`,
    keys: Array.from({ length: PER_PUSH }, (_, j) => `c${i}:k${j}`), ver: new Array(PER_PUSH).fill(0),
  }));
}
const sides = { plain: makeClients('plain'), typed: makeClients('typed') };

async function push(cl, seq) {
  let body = `{"client":"${cl.id}","mutations":[`;
  const first = cl.next;
  for (let j = 0; j < PER_PUSH; j++) {
    body += `${j ? ',' : ''}{"id":${cl.next++},"key":"${cl.keys[j]}","op":"put","value":${taskValue(cl.i, j, seq)},"base":${cl.ver[j]}}`;
  }
  body += ']}';
  const r = await request(ag, 'POST', cl.url, body);
  ensure(r.status === 200, `push: ${r.status} ${r.body.slice(0, 300)}`);
  const res = r.json().results;
  for (let j = 0; j < res.length; j++) {
    if (res[j].status !== 'applied') throw new Error(`push: unexpected result ${JSON.stringify(res[j])}`);
    cl.ver[res[j].id - first] = res[j].version;
  }
  return res.length;
}

// Create every key once on both stores (not measured).
await Promise.all([...sides.plain, ...sides.typed].map((cl) => push(cl, 0)));
let seqNext = 1;

async function phase(side) {
  const clients = sides[side];
  const t0 = performance.now();
  const tStart = t0 + warmup * 1000, tEnd = tStart + seconds * 1000;
  let counted = 0, pushes = 0, errors = 0;
  let cpuAtStart = null;
  const timer = setTimeout(() => { cpuAtStart = { gw: cpuSeconds(gw.pid), zk: cpuSeconds(zk.pid) }; }, warmup * 1000);
  await Promise.all(clients.map(async (cl) => {
    for (;;) {
      if (performance.now() >= tEnd) break;
      try {
        const n = await push(cl, seqNext++);
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
  ensure(cpuAtStart, 'the phase ended before its warm-up');
  const gwCpu = cpuSeconds(gw.pid) - cpuAtStart.gw, zkCpu = cpuSeconds(zk.pid) - cpuAtStart.zk;
  return {
    per_s: counted / seconds, pushes, errors,
    cpu: { gateway: round(gwCpu / seconds, 2), zookeeper: round(zkCpu / seconds, 2) },
    gw_cpu_ms_per_1000: counted ? round((gwCpu * 1e6) / counted, 1) : null,
  };
}

const rows = { plain: [], typed: [] };
for (let r = 0; r < rounds; r++) {
  for (const side of r % 2 ? ['typed', 'plain'] : ['plain', 'typed']) {
    const p = await phase(side);
    log(`B10 round ${r}: ${side} ${round(p.per_s, 0)} mutations/s (${p.pushes} pushes), gateway ${p.gw_cpu_ms_per_1000} ms CPU per 1000, cpu ${JSON.stringify(p.cpu)}`);
    rows[side].push(p);
  }
}

const mean = (xs, f) => xs.reduce((s, x) => s + f(x), 0) / xs.length;
const value = mean(rows.typed, (x) => x.per_s), ceiling = mean(rows.plain, (x) => x.per_s);
const ratio = value / ceiling;
emit({
  id: 'B10', figure: 'mutations_per_s', value: round(value, 0), ceiling: round(ceiling, 0), ratio: round(ratio, 3),
  target: `>= ${TARGET}`, pass: ratio >= TARGET,
  clients: CLIENTS, mutations_per_push: PER_PUSH, value_bytes: taskValue(CLIENTS - 1, PER_PUSH - 1, 99999).length, seconds, rounds,
  ceiling_is: 'the same workload and values on a store without a schema, same gateway, alternating phases (ABBA)',
  gw_cpu_ms_per_1000: { typed: round(mean(rows.typed, (x) => x.gw_cpu_ms_per_1000), 1), plain: round(mean(rows.plain, (x) => x.gw_cpu_ms_per_1000), 1) },
  per_round: rows.typed.map((t, r) => ({
    typed: round(t.per_s, 0), plain: round(rows.plain[r].per_s, 0), cpu_typed: t.cpu, cpu_plain: rows.plain[r].cpu,
  })),
  smoke: o.smoke, machine: machine(),
});

ag.destroy();
await gw.stop();
zk.stop();
