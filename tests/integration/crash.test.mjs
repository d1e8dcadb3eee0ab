// Exactly-once under crashes: a client pushes in a loop while the gateway is
// killed with SIGKILL at random moments and restarted (same ZooKeeper, same
// root, new port). The client retries every unanswered request with the same
// ids, following the new URL. At the end every key's version is exactly the
// number of mutations sent for it, its value the last one sent, and no
// mutation ever came back `applied` twice.
import assert from 'node:assert/strict';
import { setupEnv, it, startGateway, uniq, sleep } from '../lib/harness.mjs';
import { Api, request, byKey } from '../lib/http.mjs';

const env = setupEnv();

// Overridable for longer soak runs: CRASH_TOTAL, CRASH_KILLS, CRASH_SEED.
const TOTAL = Number(process.env.CRASH_TOTAL) || 300;
const KEYS = 20;
const KILLS = Number(process.env.CRASH_KILLS) || 8;

// A small deterministic PRNG, seed printed so a failure can be replayed.
function prng(seed) {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 4294967296; };
}

it('SIGKILL at random moments never loses nor doubles a mutation', { timeout: 170000 }, async () => {
  await env.ready();
  const seed = Number(process.env.CRASH_SEED) || (Date.now() & 0x7fffffff);
  const rnd = prng(seed);
  const ri = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
  console.log(`# crash test seed ${seed}`);

  const cur = { url: null };
  let gw = await startGateway({ zk: env.zk.connect, root: env.root, name: 'crash0' });
  cur.url = gw.url;
  const api = new Api(cur);
  const stores = { cas: uniq('crcas'), lww: uniq('crlww') };
  await api.createStore(stores.cas, { conflict: 'cas' });
  await api.createStore(stores.lww, { conflict: 'lww' });

  // Plan the batches: per store its own id sequence for the one client.
  const client = 'crash-client';
  const nextId = { cas: 0, lww: 0 };
  const sent = { cas: new Map(), lww: new Map() };       // key -> {count, last}
  const batches = [];
  let planned = 0;
  while (planned < TOTAL) {
    const which = rnd() < 0.5 ? 'cas' : 'lww';
    const n = Math.min(ri(1, 10), TOTAL - planned);
    const muts = [];
    while (muts.length < n) {
      const grp = rnd() < 0.3 ? Math.min(ri(2, 4), n - muts.length) : 1;
      const tx = grp > 1 ? `tx${nextId[which] + 1}` : undefined;
      for (let g = 0; g < grp; g++) {
        const key = `k${ri(0, KEYS - 1)}`;
        const id = ++nextId[which];
        const m = { id, key, op: 'put', value: { id, key, store: which } };
        if (which === 'lww' && rnd() < 0.5) m.base = ri(0, 50); // ignored in lww
        if (tx && grp > 1) m.tx = tx;
        muts.push(m);
        const s = sent[which].get(key) || { count: 0, last: null };
        s.count++; s.last = m.value;
        sent[which].set(key, s);
      }
    }
    planned += muts.length;
    batches.push({ which, body: { client, mutations: muts } });
  }

  const appliedCount = { cas: new Map(), lww: new Map() };
  const finalStatus = { cas: new Map(), lww: new Map() };
  let clientDone = false;
  let kills = 0;
  let killerError = null;
  let inFlight = false;
  let attempts = 0, netErrors = 0, unavailable = 0, retriedDuplicates = 0;
  const problems = [];

  const clientLoop = (async () => {
    for (const { which, body } of batches) {
      const giveUp = Date.now() + 30000;
      for (let attempt = 0; ; attempt++) {
        if (killerError) throw killerError;
        if (Date.now() > giveUp) throw new Error(`no answer to a push for 30 s (ids ${body.mutations[0].id}..)`);
        attempts++;
        let r;
        try {
          inFlight = true;
          r = await request(cur.url, 'POST', `/v1/stores/${stores[which]}/push`, { json: body, timeout: 5000 });
        } catch (e) {
          netErrors++;
          await sleep(20);
          continue;
        } finally {
          inFlight = false;
        }
        if (r.status === 503) { unavailable++; await sleep(50); continue; }
        if (r.status !== 200) {
          problems.push(`push answered ${r.status} ${r.text.slice(0, 300)}`);
          throw new Error(problems[problems.length - 1]);
        }
        const results = r.json.results;
        assert.equal(results.length, body.mutations.length);
        results.forEach((res, i) => {
          const id = body.mutations[i].id;
          assert.equal(res.id, id);
          if (res.status === 'applied') appliedCount[which].set(id, (appliedCount[which].get(id) || 0) + 1);
          else if (res.status !== 'duplicate') problems.push(`${which} id ${id}: unexpected ${JSON.stringify(res)}`);
          if (res.status === 'duplicate' && attempt > 0 && !finalStatus[which].has(id)) retriedDuplicates++;
          finalStatus[which].set(id, res.status);
        });
        assert.ok(r.json.lastMutationId >= body.mutations[body.mutations.length - 1].id, `lastMutationId ${r.json.lastMutationId}`);
        break;
      }
      // Slow enough that the kills happen while the client pushes.
      await sleep(kills < KILLS ? ri(50, 130) : ri(5, 20));
    }
    clientDone = true;
  })();

  const killerLoop = (async () => {
    while (!clientDone && kills < KILLS) {
      await sleep(ri(100, 600));
      // Every other kill aims at a request in flight (the commit window).
      if (kills % 2 === 1) {
        const until = Date.now() + 300;
        while (!inFlight && !clientDone && Date.now() < until) await sleep(1);
        await sleep(ri(0, 8));
      }
      if (clientDone) break;
      await gw.kill('SIGKILL');
      kills++;
      gw = await startGateway({ zk: env.zk.connect, root: env.root, name: `crash${kills}` });
      cur.url = gw.url;
    }
  })().catch((e) => { killerError = e; throw e; });

  try {
    await clientLoop;
  } finally {
    clientDone = true;
    await killerLoop;
  }
  console.log(`# crash test: ${kills} kills, ${batches.length} requests, ${attempts} attempts, ${netErrors} network errors, ${unavailable} 503s, ${retriedDuplicates} mutations first acknowledged as duplicate on a retry`);
  assert.deepEqual(problems, []);
  assert.ok(kills >= KILLS - 2, `only ${kills} kills happened while the client pushed`);

  for (const which of ['cas', 'lww']) {
    for (const [id, n] of appliedCount[which]) assert.ok(n <= 1, `${which} id ${id} came back applied ${n} times`);
    for (let id = 1; id <= nextId[which]; id++) {
      assert.ok(['applied', 'duplicate'].includes(finalStatus[which].get(id)), `${which} id ${id}: ${finalStatus[which].get(id)}`);
    }
    const s = stores[which];
    const last = await api.pushOk(s, client, []);
    assert.equal(last.lastMutationId, nextId[which], `${which}: lastMutationId`);
    const feed = byKey((await api.changesAll(s)).changes);
    assert.deepEqual([...feed.keys()].sort(), [...sent[which].keys()].sort(), `${which}: keys in the feed`);
    for (const [key, { count, last: value }] of sent[which]) {
      const g = await api.getRecord(s, key);
      assert.equal(g.status, 200, g.text);
      assert.equal(g.json.version, count, `${which} ${key}: version ${g.json.version}, ${count} mutations sent`);
      assert.deepEqual(g.json.value, value, `${which} ${key}: last value`);
      assert.equal(feed.get(key).version, count, `${which} ${key} in the feed`);
      assert.deepEqual(feed.get(key).value, value);
    }
  }
  await gw.stop();
});
