// The zoosync CLI (cli/zoosync.c) against a real gateway: every command,
// exit statuses, errors on stderr, values printed exactly as stored.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { before } from 'node:test';
import { setupEnv, it, startGateway, uniq, REPO, sleep } from '../lib/harness.mjs';
import { makeSigner } from '../lib/jwt.mjs';

const CLI = process.env.ZOOSYNC_CLI || path.join(path.dirname(process.env.ZOOSYNCD || path.join(REPO, 'build', 'zoosyncd')), 'zoosync');
const env = setupEnv();
let gw, signer, token;

function cli(args, { input, tok = token } = {}) {
  const r = spawnSync(CLI, args, {
    input, encoding: 'utf8', timeout: 10000,
    env: { ...process.env, ZOOSYNC_URL: gw.url, ZOOSYNC_TOKEN: tok ?? '' },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const lines = (s) => s.split('\n').filter(Boolean).map((l) => JSON.parse(l));

before(async () => {
  await env.ready();
  signer = makeSigner('HS256', env.tmp);
  token = signer.token('admin');
  gw = await startGateway({ zk: env.zk.connect, root: env.root, args: signer.args });
});

it('store, put, get, del, stores: answers on stdout, exit 0', () => {
  const S = uniq('cli');
  let r = cli(['store', S, '--conflict', 'lww', '--ttl', '60']);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual({ ...JSON.parse(r.out), cursor: undefined }, { name: S, conflict: 'lww', maxValueBytes: 65536, tombstoneTtlSeconds: 60, records: 0, cursor: undefined });
  r = cli(['put', S, 'a/b c%', '{"x": 0.1, "big": 123456789012345678901234567890}']);
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).version, 1);
  r = cli(['get', S, 'a/b c%']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /"value":\{"x":0\.1,"big":123456789012345678901234567890\}/, 'value printed exactly as written');
  r = cli(['del', S, 'a/b c%']);
  assert.equal(r.code, 0, r.err);
  r = cli(['get', S, 'a/b c%']);
  assert.equal(r.code, 1);
  assert.match(r.err, /^zoosync: not_found: .*\(HTTP 404\)/);
  r = cli(['stores']);
  assert.equal(r.code, 0, r.err);
  assert.ok(JSON.parse(r.out).stores.some((s) => s.name === S));
});

it('preconditions and errors: exit 1 with the protocol code on stderr, nothing on stdout', () => {
  const S = uniq('cli');
  assert.equal(cli(['store', S]).code, 0);
  assert.equal(cli(['put', S, 'k', '1', '--create']).code, 0);
  let r = cli(['put', S, 'k', '2', '--create']);
  assert.equal(r.code, 1);
  assert.equal(r.out, '');
  assert.match(r.err, /precondition_failed.*HTTP 412/);
  r = cli(['put', S, 'k', '3', '--if-match', '9']);
  assert.equal(r.code, 1);
  assert.match(r.err, /precondition_failed/);
  r = cli(['put', S, 'k', '4', '--if-match', '1']);
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).version, 2);
  r = cli(['put', S, 'k', '{bad']);
  assert.equal(r.code, 1);
  assert.match(r.err, /invalid_json/);
  r = cli(['get', 'no such store!', 'k']);
  assert.equal(r.code, 1);
  assert.match(r.err, /invalid_store/);
  r = cli(['stores'], { tok: 'not-a-token' });
  assert.equal(r.code, 1);
  assert.match(r.err, /unauthorized.*HTTP 401/);
  r = cli(['frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown command/);
  r = cli(['get', S]);
  assert.equal(r.code, 2, 'missing argument is a usage error');
});

it('push from stdin, then changes --all pages through every change, one JSON line each', () => {
  const S = uniq('cli');
  assert.equal(cli(['store', S]).code, 0);
  const mutations = Array.from({ length: 25 }, (_, i) => ({ id: i + 1, key: `k${String(i).padStart(2, '0')}`, op: 'put', value: { n: i, f: 'F' } }));
  // written by hand so that the number's text is ours, not JSON.stringify's
  const body = JSON.stringify({ client: 'cli1', mutations }).replaceAll('"F"', '1.5e300');
  let r = cli(['push', S, '-'], { input: body });
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out);
  assert.ok(res.results.every((x) => x.status === 'applied'));
  r = cli(['changes', S, '--all', '--limit', '7']);
  assert.equal(r.code, 0, r.err);
  const got = lines(r.out);
  assert.equal(got.length, 25);
  assert.deepEqual(got.map((c) => c.key).sort(), mutations.map((m) => m.key).sort());
  assert.match(r.out, /"f":1\.5e300/, 'numbers as written');
  assert.match(r.err, /^cursor [0-9a-f]{40}$/m);
});

it('watch prints live changes as they happen', async () => {
  const S = uniq('cli');
  assert.equal(cli(['store', S]).code, 0);
  const p = spawn(CLI, ['watch', S], { env: { ...process.env, ZOOSYNC_URL: gw.url, ZOOSYNC_TOKEN: token } });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  try {
    await sleep(300);
    assert.equal(cli(['put', S, 'live', '"hello"']).code, 0);
    for (let i = 0; i < 50 && !out.includes('"live"'); i++) await sleep(100);
    const got = lines(out);
    assert.equal(got.length, 1, out);
    assert.equal(got[0].key, 'live');
    assert.equal(got[0].value, 'hello');
  } finally {
    p.kill('SIGTERM');
  }
});
