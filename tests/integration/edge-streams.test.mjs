// Issue 16, item 7: fairness of event-stream slots. Before the fix one
// token could take every slot (3,000 of 3,000), and a stream closed by its
// client held its slot until the next keepalive write failed (24 of 50
// reopened at once got 429). Now: --max-streams-per-sub (default 256) and
// --max-streams-per-ip (default 512) answer 429 with Retry-After, and a
// closed socket is noticed within a fraction of a second.
import assert from 'node:assert/strict';
import http from 'node:http';
import { before, after } from 'node:test';
import { setupEnv, it, startGateway, uniq, sleep } from '../lib/harness.mjs';
import { Api } from '../lib/http.mjs';
import { makeSigner } from '../lib/jwt.mjs';

const env = setupEnv();
let signer, S;
const live = new Set();
after(() => { for (const r of live) r.destroy(); });

before(async () => {
  await env.ready();
  signer = makeSigner('HS256', env.tmp);
});

/** Opens a stream; resolves { status, retryAfter, req } once the first bytes (or an error) arrive. */
function open(port, store, { token, localAddress } = {}) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: `/v1/stores/${store}/events`, agent: false, localAddress,
      headers: { Accept: 'text/event-stream', ...(token ? { Authorization: `Bearer ${token}` } : {}) } }, (res) => {
      if (res.statusCode === 200) { live.add(req); res.once('data', () => resolve({ status: 200, req })); res.on('error', () => {}); return; }
      res.resume();
      resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'], req });
    });
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, error: e.message, req }));
    req.end();
  });
}

async function openMany(n, port, store, optsOf, conc = 50) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < n) { const i = next++; out[i] = await open(port, store, optsOf(i)); }
  }));
  return out;
}
const count = (rs, st) => rs.filter((r) => r.status === st).length;
const closeAll = (rs) => { for (const r of rs) { r.req.destroy(); live.delete(r.req); } };

it('one token cannot take every slot: past 256 streams it gets 429, another token still gets in', { timeout: 60000 }, async () => {
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'persub', args: [...signer.args, '--max-streams', '300'] });
  S = uniq('fair');
  await new Api(G, signer.token('admin')).createStore(S);
  const a = signer.token(`${S}:read`, { sub: 'alice' });
  const b = signer.token(`${S}:read`, { sub: 'bob' });
  const rs = await openMany(300, G.port, S, () => ({ token: a }));
  try {
    assert.equal(count(rs, 200), 256, `alice: ${count(rs, 200)} streams open, ${count(rs, 429)} refused`);
    const refused = rs.find((r) => r.status === 429);
    assert.match(String(refused.retryAfter), /^[0-9]+$/);
    const rb = await open(G.port, S, { token: b });
    assert.equal(rb.status, 200, 'bob must still get a stream');
  } finally { closeAll(rs); await G.stop(); }
});

it('one address cannot take every slot: past 512 streams it gets 429, another address still gets in', { timeout: 60000 }, async () => {
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'perip', args: [...signer.args, '--max-streams', '600'] });
  const s = uniq('fairip');
  await new Api(G, signer.token('admin')).createStore(s);
  const toks = Array.from({ length: 4 }, (_, i) => signer.token(`${s}:read`, { sub: `u${i}` }));
  const rs = await openMany(530, G.port, s, (i) => ({ token: toks[i % 4], localAddress: '127.0.0.3' }));
  try {
    assert.equal(count(rs, 200), 512, `127.0.0.3: ${count(rs, 200)} open, ${count(rs, 429)} refused`);
    const other = await open(G.port, s, { token: toks[0], localAddress: '127.0.0.4' });
    assert.equal(other.status, 200, 'another address must still get a stream');
  } finally { closeAll(rs); await G.stop(); }
});

it('50 streams closed by their clients free their slots at once: 50 reopened at once all get in', { timeout: 60000 }, async () => {
  const G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'reopen', args: ['--max-streams', '50'] });
  const s = uniq('reopen');
  await new Api(G).createStore(s);
  const first = await openMany(50, G.port, s, () => ({}));
  assert.equal(count(first, 200), 50);
  closeAll(first);
  await sleep(1000); // well under the 15 s keepalive
  const again = await openMany(50, G.port, s, () => ({}));
  try {
    assert.equal(count(again, 200), 50, `${count(again, 429)} of 50 reopened streams got 429 one second after the others closed`);
  } finally { closeAll(again); await G.stop(); }
});
