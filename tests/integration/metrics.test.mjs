// /metrics scraped and parsed with a Prometheus text-format parser (npm
// parse-prometheus-text-format): per-store gauges, streams per store, auth
// failures by reason and their rate-limited log (issue 12).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before } from 'node:test';
import parsePrometheus from 'parse-prometheus-text-format';
import { setupEnv, it, startGateway, uniq, sleep } from '../lib/harness.mjs';
import { Api, request, eventually } from '../lib/http.mjs';
import { makeSigner, now } from '../lib/jwt.mjs';
import { openEvents } from '../lib/sse.mjs';

const env = setupEnv();
const AUD = 'zoosync-test', ISS = 'https://issuer.example';
let signer, other, gw, admin, A, B;

before(async () => {
  await env.ready();
  signer = makeSigner('HS256', env.tmp);
  other = makeSigner('HS256', env.tmp); // another secret: its tokens fail the signature
  gw = await startGateway({ zk: env.zk.connect, root: env.root, args: [...signer.args, '--jwt-audience', AUD, '--jwt-issuer', ISS] });
  admin = new Api(gw, signer.token('admin', { aud: AUD, iss: ISS }));
  A = uniq('ma');
  B = uniq('mb');
  await admin.createStore(A);
  await admin.createStore(B);
});

/** Scrapes /metrics and parses it; get(name, labels) is the value of the one sample matching (undefined: none). */
async function scrape() {
  const r = await request(gw.url, 'GET', '/metrics', { timeout: 5000 });
  assert.equal(r.status, 200, r.text.slice(0, 300));
  const families = parsePrometheus(r.text);
  const byName = new Map(families.map((f) => [f.name, f]));
  const get = (name, labels = {}) => {
    const f = byName.get(name);
    if (!f) return undefined;
    const hits = f.metrics.filter((m) => Object.entries(labels).every(([k, v]) => (m.labels || {})[k] === v));
    assert.ok(hits.length <= 1, `${name} ${JSON.stringify(labels)}: ${hits.length} samples`);
    return hits.length ? Number(hits[0].value) : undefined;
  };
  return { families, byName, get };
}

const bytesOf = (records) => Object.entries(records).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(JSON.stringify(v)), 0);

it('per-store records and bytes match each store after writes', async () => {
  const a = { k1: 1, k2: 'two', k3: { x: [1, 2, 3] } };
  const b = { p: true, q: null, r: 'rrrrrrrrrr', s: 12345, t: [] };
  await admin.pushOk(A, 'ca', Object.entries(a).map(([key, value], i) => ({ id: i + 1, key, op: 'put', value })));
  await admin.pushOk(B, 'cb', Object.entries(b).map(([key, value], i) => ({ id: i + 1, key, op: 'put', value })));
  await admin.pushOk(B, 'cb', [{ id: 6, key: 'q', op: 'delete' }, { id: 7, key: 's', op: 'put', value: 7 }]);
  delete b.q;
  b.s = 7;
  for (const [S, recs] of [[A, a], [B, b]]) {
    const d = await admin.getStore(S);
    assert.equal(d.status, 200, d.text);
    assert.equal(d.json.records, Object.keys(recs).length, `${S}: description`);
    await eventually(async () => {
      const m = await scrape();
      return m.get('zoosync_store_records', { store: S }) === d.json.records && m.get('zoosync_store_bytes', { store: S }) === bytesOf(recs);
    }, { what: `${S}: zoosync_store_records ${d.json.records} and zoosync_store_bytes ${bytesOf(recs)}` });
  }
  const m = await scrape();
  assert.equal(m.byName.get('zoosync_store_records').type, 'GAUGE');
  assert.equal(m.byName.get('zoosync_store_bytes').type, 'GAUGE');
  // the totals are kept, and hold at least these two stores
  assert.ok(m.get('zoosync_mirror_records') >= 3 + 4, 'zoosync_mirror_records');
  assert.ok(m.get('zoosync_mirror_bytes') >= bytesOf(a) + bytesOf(b), 'zoosync_mirror_bytes');
});

it("an open stream raises its store's stream gauge, closing it lowers it", async () => {
  const before0 = await scrape();
  assert.equal(before0.byName.get('zoosync_store_event_streams').type, 'GAUGE');
  assert.equal(before0.get('zoosync_store_event_streams', { store: A }), 0);
  assert.equal(before0.get('zoosync_store_event_streams', { store: B }), 0);
  const es = openEvents(gw.url, A, { token: admin.token });
  try {
    await es.opened();
    await eventually(async () => (await scrape()).get('zoosync_store_event_streams', { store: A }) === 1, { what: 'A: 1 stream' });
    const m = await scrape();
    assert.equal(m.get('zoosync_store_event_streams', { store: B }), 0, 'B: no stream');
    assert.ok(m.get('zoosync_event_streams') >= 1, 'the total is kept');
  } finally {
    es.close();
  }
  await eventually(async () => (await scrape()).get('zoosync_store_event_streams', { store: A }) === 0, { what: 'A: stream closed' });
});

it('auth failures: counted by reason, logged at most 10 lines then one summary, never the token', async () => {
  const REASONS = ['missing', 'malformed', 'signature', 'expired', 'not_yet_valid', 'lifetime', 'audience', 'issuer', 'other'];
  const m0 = await scrape();
  assert.equal(m0.byName.get('zoosync_auth_failures_total').type, 'COUNTER');
  for (const r of REASONS) assert.equal(m0.get('zoosync_auth_failures_total', { reason: r }), 0, `${r} present with 0 from the start`);

  const std = { aud: AUD, iss: ISS };
  const kinds = [
    ['missing', () => null],
    ['malformed', () => 'not.a-jwt'],
    ['signature', () => other.token('admin', std)],
    ['expired', () => signer.token('admin', { ...std, exp: now() - 60, iat: now() - 120 })],
    ['not_yet_valid', () => signer.token('admin', { ...std, nbf: now() + 3600 })],
    ['audience', () => signer.token('admin', { ...std, aud: 'someone-else' })],
    ['issuer', () => signer.token('admin', { ...std, iss: 'https://evil.example' })],
    ['lifetime', () => signer.token('admin', { ...std, exp: now() + 2 * 86400 })], // over --jwt-max-lifetime's default, a day
  ];
  const want = {}, tokens = [];
  const t0 = Date.now();
  for (let i = 0; i < 50; i++) {
    const [reason, make] = kinds[i % kinds.length];
    want[reason] = (want[reason] || 0) + 1;
    const tok = make();
    if (tok) tokens.push(tok);
    const headers = tok ? { Authorization: `Bearer ${tok}` } : {};
    const r = await request(gw.url, 'GET', `/v1/stores/${A}`, { headers });
    assert.equal(r.status, 401, r.text);
  }
  assert.ok(Date.now() - t0 < 9000, 'the burst fits in one window');

  const m1 = await scrape();
  for (const r of REASONS)
    assert.equal(m1.get('zoosync_auth_failures_total', { reason: r }), want[r] || 0, `reason ${r}`);

  const authLines = () => readFileSync(gw.log, 'utf8').split('\n').filter((l) => l.includes('auth failure'));
  const perFailure = /auth failure: (\w+) addr=\S+ route=\/v1\/stores\/\{store\}$/;
  const logged = authLines().filter((l) => perFailure.test(l));
  assert.equal(logged.length, 10, `auth-failure lines:\n${logged.join('\n')}`);
  for (const l of logged) assert.ok(want[l.match(perFailure)[1]], `a reason of the burst: ${l}`);
  assert.ok(logged.every((l) => /\swarn\s+auth failure/.test(l)), `logged at warn:\n${logged[0]}`);

  // After the window, the summary counts what was not logged.
  await sleep(Math.max(0, 10500 - (Date.now() - t0)));
  await scrape();
  const lines = authLines();
  const summary = lines.filter((l) => /auth failure: \d+ more auth failures not logged/.test(l));
  assert.equal(summary.length, 1, lines.join('\n'));
  assert.equal(Number(summary[0].match(/(\d+) more/)[1]), 50 - logged.length, summary[0]);
  assert.equal(lines.length, logged.length + 1, lines.join('\n'));

  const text = readFileSync(gw.log, 'utf8');
  for (const tok of [...tokens, admin.token]) {
    for (const part of tok.split('.').filter((p) => p.length >= 8)) assert.ok(!text.includes(part), `token text in the log: ${part}`);
  }
});
