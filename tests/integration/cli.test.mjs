// The zoosync CLI (cli/zoosync.c) against a real gateway: every command,
// exit statuses, errors on stderr, values printed exactly as stored.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before } from 'node:test';
import { setupEnv, it, startGateway, uniq, REPO, sleep, ZOOSYNCD, newRoot } from '../lib/harness.mjs';
import { makeSigner } from '../lib/jwt.mjs';

const CLI = process.env.ZOOSYNC_CLI || path.join(path.dirname(process.env.ZOOSYNCD || path.join(REPO, 'build', 'zoosyncd')), 'zoosync');
const env = setupEnv();
let gw, signer, token;

function cli(args, { input, tok = token, timeout = 10000, url, env: extra = {} } = {}) {
  const r = spawnSync(CLI, args, {
    input, encoding: 'utf8', timeout, maxBuffer: 64 << 20,
    env: { ...process.env, ZOOSYNC_URL: url ?? gw.url, ZOOSYNC_TOKEN: tok ?? '', ...extra },
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

it('watch ends with status 1 and says so when its store is deleted', async () => {
  const S = uniq('cli');
  assert.equal(cli(['store', S]).code, 0);
  assert.equal(cli(['put', S, 'k', '1']).code, 0);
  const p = spawn(CLI, ['watch', S], { env: { ...process.env, ZOOSYNC_URL: gw.url, ZOOSYNC_TOKEN: token } });
  let out = '', err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => p.on('exit', (code) => resolve(code)));
  try {
    for (let i = 0; i < 50 && !out.includes('"k"'); i++) await sleep(100);
    assert.equal(lines(out)[0].key, 'k', out);
    assert.equal(cli(['drop', S]).code, 0);
    const code = await Promise.race([exited, sleep(15000).then(() => 'still running')]);
    assert.equal(code, 1, `watch's exit after the store's deletion (stderr: ${err})`);
    assert.match(err, /store_not_found: \S+ was deleted/);
  } finally {
    p.kill('SIGTERM');
  }
});

// ---- import, export, restore, stats, keys, token (issue 12) ----

const file = (name, text) => { const f = path.join(env.tmp, name); writeFileSync(f, text); return f; };
const jsonl = (recs) => recs.map((r) => JSON.stringify(r)).join('\n') + '\n';
// every live record of a store, key -> {value text, version}, read with the raw feed
function snapshot(S, url) {
  const r = cli(['changes', S, '--all', '--limit', '500'], { url });
  assert.equal(r.code, 0, r.err);
  const m = new Map();
  for (const l of r.out.split('\n').filter(Boolean)) {
    const c = JSON.parse(l);
    if (c.deleted) continue;
    const raw = l.match(/"value":(.*),"version"/) || l.match(/"value":(.*)}$/);
    m.set(c.key, { version: c.version, value: c.value, raw: raw && raw[1] });
  }
  return m;
}

it('version: zoosync --version and zoosyncd --version print the CMake project version', () => {
  const want = readFileSync(path.join(REPO, 'CMakeLists.txt'), 'utf8').match(/project\(zoosync VERSION (\d+\.\d+\.\d+)/)[1];
  const r = cli(['--version']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, `zoosync ${want}\n`);
  const d = spawnSync(ZOOSYNCD, ['--version'], { encoding: 'utf8' });
  assert.equal(d.status, 0, d.stderr);
  assert.equal(d.stdout, `zoosyncd ${want}\n`);
});

it('token mints an HS256 token from the secret file that the gateway accepts, scoped as asked', () => {
  const S = uniq('cli');
  assert.equal(cli(['store', S]).code, 0);
  let r = cli(['token', '--sub', 'alice', '--scope', `${S}:read`, '--ttl', '120', '--secret-file', signer.file]);
  assert.equal(r.code, 0, r.err);
  const tok = r.out.trim();
  const [h, p] = tok.split('.').slice(0, 2).map((x) => JSON.parse(Buffer.from(x, 'base64url')));
  assert.equal(h.alg, 'HS256');
  assert.equal(p.sub, 'alice');
  assert.equal(p.scope, `${S}:read`);
  assert.equal(p.exp - p.iat, 120);
  assert.equal(cli(['get', S, 'nothing'], { tok }).code, 1); // 404, not 401
  assert.match(cli(['get', S, 'nothing'], { tok }).err, /not_found/);
  r = cli(['put', S, 'k', '1'], { tok });
  assert.match(r.err, /forbidden.*HTTP 403/, 'read scope only');
  r = cli(['token', '--scope', 'admin', '--secret-file', file('short.secret', 'short\n')]);
  assert.equal(r.code, 1);
  assert.match(r.err, /at least 32 bytes/);
  assert.equal(cli(['token', '--scope', 'admin']).code, 2, '--secret-file is required');
  assert.equal(cli(['token', '--scope', 'admin', '--ttl', '0', '--secret-file', signer.file]).code, 2);
});

it('import: JSON lines or an array, values exactly as written, a JSON summary when not a terminal', () => {
  const S = uniq('cli');
  assert.equal(cli(['store', S]).code, 0);
  const text = '{"key":"a","value":{"x":0.1,"big":123456789012345678901234567890}}\n\n{"key":"b/c d","value":[1e2,"\\u00e9"]}\n';
  let r = cli(['import', S, file('a.jsonl', text)]);
  assert.equal(r.code, 0, r.err);
  const sum = JSON.parse(r.out);
  assert.equal(sum.records, 2);
  assert.equal(sum.applied, 2);
  assert.equal(sum.complete, true);
  assert.ok(!existsSync(path.join(env.tmp, 'a.jsonl.zoosync-state')), 'state file removed when done');
  r = cli(['get', S, 'a']);
  assert.match(r.out, /"value":\{"x":0\.1,"big":123456789012345678901234567890\}/);
  assert.match(cli(['get', S, 'b/c d']).out, /"value":\[1e2,"é"\]/);
  // an array, from stdin
  r = cli(['import', S, '-', '--json'], { input: JSON.stringify([{ key: 'x', value: 1 }, { key: 'y', value: null }]) });
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).applied, 2);
  assert.equal(snapshot(S).get('y').value, null);
  // errors name the line
  r = cli(['import', S, file('bad.jsonl', '{"key":"a","value":1}\n{"key":1,"value":2}\n')]);
  assert.equal(r.code, 1);
  assert.match(r.err, /line 2: "key" must be a string/);
  r = cli(['import', S, file('bad2.jsonl', '{"key":"a","valeu":1}\n')]);
  assert.match(r.err, /line 1: unknown field "valeu"/);
  r = cli(['import', S, file('bad3.jsonl', '{"key":"a",\n')]);
  assert.match(r.err, /line 1: not valid JSON/);
  assert.equal(cli(['import', S, '-', '--mode', 'upsert'], { input: '[]' }).code, 2);
});

it('import --mode create|overwrite|merge: conflicts counted and summarized, never echoed one by one', () => {
  for (const conflict of ['cas', 'lww']) {
    const S = uniq('cli');
    assert.equal(cli(['store', S, '--conflict', conflict]).code, 0);
    const first = Array.from({ length: 1500 }, (_, i) => ({ key: `k${i}`, value: { a: i, keep: true } }));
    let r = cli(['import', S, file(`m-${conflict}-1.jsonl`, jsonl(first))]);
    assert.equal(r.code, 0, r.err);
    const again = Array.from({ length: 1600 }, (_, i) => ({ key: `k${i}`, value: { a: -i, b: 'new' } }));
    const f2 = file(`m-${conflict}-2.jsonl`, jsonl(again));
    r = cli(['import', S, f2, '--mode', 'create']);
    assert.equal(r.code, 3, 'completed with conflicts: exit 3');
    let sum = JSON.parse(r.out);
    assert.equal(sum.conflicts, 1500, conflict);
    assert.equal(sum.applied, 100);
    assert.equal(sum.conflictKeys.length, 10, 'only the first few keys');
    assert.ok(r.out.length < 2000, 'a summary, not an echo');
    let snap = snapshot(S);
    assert.deepEqual(snap.get('k5').value, { a: 5, keep: true }, 'create keeps what was there');
    assert.deepEqual(snap.get('k1550').value, { a: -1550, b: 'new' });
    // the human summary on a terminal-less run with a pretend terminal is text; --json is JSON
    r = cli(['import', S, f2, '--mode', 'merge', '--json']);
    assert.equal(r.code, 0, r.err);
    sum = JSON.parse(r.out);
    assert.equal(sum.applied, 1600);
    snap = snapshot(S);
    assert.deepEqual(snap.get('k5').value, { a: -5, keep: true, b: 'new' }, 'merge: members of both, the file wins');
    r = cli(['import', S, f2, '--mode', 'overwrite']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(snapshot(S).get('k5').value, { a: -5, b: 'new' }, 'overwrite replaces');
  }
});

it('an interrupted import (killed mid-way) resumes with the same client id: no record written twice', async () => {
  const S = uniq('cli');
  assert.equal(cli(['store', S]).code, 0);
  const N = 6000;
  const f = file('big.jsonl', jsonl(Array.from({ length: N }, (_, i) => ({ key: `r${String(i).padStart(5, '0')}`, value: { i } }))));
  const state = `${f}.zoosync-state`;
  const p = spawn(CLI, ['import', S, f], { env: { ...process.env, ZOOSYNC_URL: gw.url, ZOOSYNC_TOKEN: token, ZOOSYNC_IMPORT_PAUSE_MS: '300' } });
  const exited = new Promise((res) => p.on('exit', res));
  try {
    for (let i = 0; i < 100; i++) {
      if (existsSync(state) && JSON.parse(readFileSync(state, 'utf8')).done >= 2000) break;
      await sleep(50);
    }
  } finally {
    p.kill('SIGKILL');
  }
  await exited;
  const st = JSON.parse(readFileSync(state, 'utf8'));
  assert.ok(st.done >= 2000 && st.done < N, `killed mid-way: ${st.done}`);
  assert.match(st.client, /^import-[0-9a-f]{16}$/);
  // a change made meanwhile to a record already imported is not undone by the resume
  assert.equal(cli(['put', S, 'r00000', '"changed"']).code, 0);
  const r = cli(['import', S, f], { timeout: 60000 });
  assert.equal(r.code, 0, r.err);
  const sum = JSON.parse(r.out);
  assert.equal(sum.resumed, true);
  assert.equal(sum.client, st.client, 'the same client id');
  assert.equal(sum.done, N);
  assert.equal(sum.applied + sum.duplicate, N);
  assert.ok(!existsSync(state));
  const snap = snapshot(S);
  assert.equal(snap.size, N);
  assert.equal(snap.get('r00000').value, 'changed');
  for (const [k, v] of snap) if (k !== 'r00000') assert.equal(v.version, 1, `${k} written once`);
  assert.deepEqual(snap.get('r05999').value, { i: 5999 });
  // the state of another import is not taken for this one
  writeFileSync(state, JSON.stringify({ ...st, store: 'other' }));
  const r2 = cli(['import', S, f]);
  assert.equal(r2.code, 2);
  assert.match(r2.err, /state of another import/);
});

it('export -> drop -> restore: identical config, records and values', async () => {
  const S = uniq('cli');
  const schema = { type: 'object', properties: { n: { type: 'number', maximum: 1e300 } } };
  let r = cli(['store', S, '--conflict', 'lww', '--ttl', '3600', '--max-value-bytes', '4096']);
  assert.equal(r.code, 0, r.err);
  const recs = Array.from({ length: 2345 }, (_, i) => ({ key: `e/${i} ${'é'.repeat(i % 3)}`, value: { n: i, s: 'x'.repeat(i % 50) } }));
  let text = jsonl(recs).replace('{"n":7,', '{"n":7.50,"z":123456789012345678901234567890,');
  r = cli(['import', S, file('e.jsonl', text)]);
  assert.equal(r.code, 0, r.err);
  assert.equal(cli(['del', S, recs[3].key]).code, 0);
  const before = snapshot(S);
  const exp = cli(['export', S], { timeout: 30000 });
  assert.equal(exp.code, 0, exp.err);
  const lines_ = exp.out.split('\n').filter(Boolean);
  const header = JSON.parse(lines_[0]);
  assert.equal(header.zoosync, 'export');
  assert.equal(header.store, S);
  assert.deepEqual(header.config, { conflict: 'lww', maxValueBytes: 4096, tombstoneTtlSeconds: 3600 });
  assert.equal(lines_.length, 1 + 2344, 'live records only');
  assert.match(exp.out, /"value":\{"n":7\.50,"z":123456789012345678901234567890,/);
  const f = file('e.export', exp.out);
  assert.equal(cli(['drop', S], { timeout: 60000 }).code, 0);
  r = cli(['restore', S, f], { timeout: 30000 });
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).applied, 2344);
  const after = snapshot(S);
  assert.equal(after.size, before.size);
  for (const [k, v] of before) {
    assert.ok(after.has(k), k);
    assert.equal(after.get(k).raw, v.raw, `${k}: value as written`);
  }
  const desc = JSON.parse(cli(['store', S]).out); // a PUT without fields: the description
  assert.equal(desc.conflict, 'lww');
  assert.equal(desc.maxValueBytes, 4096);
  assert.equal(desc.tombstoneTtlSeconds, 3600);
  // restore refuses a store with records; an export of an export is the same text
  r = cli(['restore', S, f]);
  assert.equal(r.code, 1);
  assert.match(r.err, /holds 2344 records: restore writes into an empty or absent store/);
  const exp2 = cli(['export', S], { timeout: 30000 });
  const body = (s) => s.split('\n').slice(1).map((l) => l.replace(/,"version":\d+}$/, '}')).sort().join('\n');
  assert.equal(body(exp2.out), body(exp.out));
  // the export is an import file too
  const S2 = uniq('cli');
  assert.equal(cli(['store', S2]).code, 0);
  r = cli(['import', S2, f]);
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).applied, 2344);
  // a schema and quotas come back too
  const S3 = uniq('cli');
  assert.equal(cli(['store', S3]).code, 0);
  const put = await fetch(`${gw.url}/v1/stores/${S3}`, {
    method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ schema, maxRecords: 100, maxBytes: 100000 }),
  });
  assert.equal(put.status, 200, await put.text());
  const e3 = cli(['export', S3]);
  assert.equal(cli(['drop', S3]).code, 0);
  assert.equal(cli(['restore', S3, file('s3.export', e3.out)]).code, 0);
  const d3 = JSON.parse(cli(['store', S3]).out);
  assert.deepEqual(d3.schema, schema);
  assert.equal(d3.maxRecords, 100);
  assert.equal(d3.maxBytes, 100000);
  // restore needs an export
  r = cli(['restore', uniq('cli'), file('plain.jsonl', '{"key":"a","value":1}\n')]);
  assert.equal(r.code, 1);
  assert.match(r.err, /not an export/);
});

it('stats and keys --prefix', () => {
  const S = uniq('cli');
  assert.equal(cli(['store', S]).code, 0);
  assert.equal(cli(['import', S, '-'], { input: jsonl([{ key: 'a/1', value: 'xx' }, { key: 'a/2', value: 1 }, { key: 'b/1', value: [] }, { key: 'line\nbreak', value: {} }]) }).code, 0);
  assert.equal(cli(['del', S, 'a/2']).code, 0);
  let r = cli(['stats', S]);
  assert.equal(r.code, 0, r.err);
  const st = JSON.parse(r.out);
  assert.equal(st.records, 3);
  assert.equal(st.keyBytes, 3 + 3 + 10);
  assert.equal(st.valueBytes, 4 + 2 + 2);
  assert.equal(st.bytes, 24);
  assert.equal(st.largestValueBytes, 4);
  assert.equal(st.config.conflict, 'cas');
  r = cli(['keys', S, '--prefix', 'a/']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, 'a/1\n');
  r = cli(['keys', S, '--json']);
  assert.deepEqual(lines(r.out).sort(), ['a/1', 'b/1', 'line\nbreak']);
  assert.match(cli(['stats', 'nostore']).err, /not_found/);
});

it('watch --since now prints only what happens from now on; --since CURSOR from there', async () => {
  const S = uniq('cli');
  assert.equal(cli(['store', S]).code, 0);
  assert.equal(cli(['put', S, 'old', '1']).code, 0);
  const cursor = JSON.parse(cli(['put', S, 'mid', '2']).out).cursor;
  const follow = async (since, key) => {
    const p = spawn(CLI, ['watch', S, '--since', since], { env: { ...process.env, ZOOSYNC_URL: gw.url, ZOOSYNC_TOKEN: token } });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    try {
      await sleep(400);
      assert.equal(cli(['put', S, key, '"x"']).code, 0);
      for (let i = 0; i < 50 && !out.includes(`"${key}"`); i++) await sleep(100);
      return lines(out).map((c) => c.key);
    } finally {
      p.kill('SIGTERM');
    }
  };
  assert.deepEqual(await follow('now', 'live1'), ['live1']);
  assert.deepEqual(await follow(cursor, 'live2'), ['live1', 'live2']);
});

it('progress on a terminal: records and rate on stderr, a human summary', (t) => {
  const hasScript = spawnSync('script', ['--version']).status === 0;
  if (!hasScript) { t.skip('util-linux script(1) not installed'); return; }
  const S = uniq('cli');
  assert.equal(cli(['store', S]).code, 0);
  const f = file('tty.jsonl', jsonl(Array.from({ length: 2500 }, (_, i) => ({ key: `t${i}`, value: i }))));
  const q = (s) => `'${s.replace(/'/g, "'\\''")}'`;
  const r = spawnSync('script', ['-qec', `${q(CLI)} import ${q(S)} ${q(f)}`, '/dev/null'], {
    encoding: 'utf8', timeout: 30000, env: { ...process.env, ZOOSYNC_URL: gw.url, ZOOSYNC_TOKEN: token },
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /imported 2500\/2500 records .* records\/s/);
  assert.match(r.stdout, /2500 of 2500 records: 2500 written/);
});

it('backup FILE -> every store dropped -> restore --all: the same stores, configs and values; again: nothing written', { timeout: 180000 }, async () => {
  // A gateway on a root of its own: the backup holds exactly these stores.
  const G = await startGateway({ zk: env.zk.connect, root: newRoot(), name: 'backup', args: signer.args });
  const url = G.url;
  try {
    const A = uniq('bka'), B = uniq('bkb'), E = uniq('bke');
    assert.equal(cli(['store', A, '--conflict', 'lww', '--ttl', '120'], { url }).code, 0);
    assert.equal(cli(['store', B, '--max-value-bytes', '2048'], { url }).code, 0);
    assert.equal(cli(['store', E], { url }).code, 0);   // an empty store comes back too
    const recs = Array.from({ length: 1500 }, (_, i) => ({ key: `k/${i}`, value: { n: i, f: 1.50 } }));
    assert.equal(cli(['import', A, file('bka.jsonl', jsonl(recs))], { url, timeout: 60000 }).code, 0);
    assert.equal(cli(['import', B, file('bkb.jsonl', jsonl(recs.slice(0, 10)))], { url }).code, 0);
    const before = { [A]: snapshot(A, url), [B]: snapshot(B, url) };
    const f = path.join(env.tmp, 'all.backup');
    let r = cli(['backup', f], { url, timeout: 60000 });
    assert.equal(r.code, 0, r.err);
    const sum = JSON.parse(r.out);
    assert.deepEqual({ ...sum, seconds: 0, bytes: 0 }, { backup: f, stores: 3, records: 1510, seconds: 0, bytes: 0 });
    const text = readFileSync(f, 'utf8').split('\n').filter(Boolean);
    assert.equal(JSON.parse(text[0]).zoosync, 'backup');
    const headers = text.map((l) => JSON.parse(l)).filter((o) => o.zoosync === 'export');
    assert.deepEqual(headers.map((h) => h.store), [A, B, E].sort(), 'one section per store, in name order');
    assert.deepEqual(headers.find((h) => h.store === A).config, { conflict: 'lww', maxValueBytes: 65536, tombstoneTtlSeconds: 120 });
    assert.ok(!existsSync(`${f}.tmp`));
    for (const S of [A, B, E]) assert.equal(cli(['drop', S], { url, timeout: 60000 }).code, 0);
    r = cli(['restore', '--all', f], { url, timeout: 60000 });
    assert.equal(r.code, 0, r.err);
    const got = Object.fromEntries(lines(r.out).map((o) => [o.store, o]));
    assert.deepEqual(Object.keys(got).sort(), [A, B, E].sort());
    assert.equal(got[A].store_action, 'created');
    assert.equal(got[A].config, 'set');
    assert.equal(got[A].written, 1500);
    assert.equal(got[B].written, 10);
    assert.equal(got[E].written, 0);
    for (const S of [A, B]) {
      const now = snapshot(S, url);
      assert.equal(now.size, before[S].size);
      for (const [k, v] of before[S]) assert.equal(now.get(k)?.raw, v.raw, `${S} ${k}: the value as written`);
    }
    const dA = JSON.parse(cli(['store', A], { url }).out);
    assert.deepEqual([dA.conflict, dA.tombstoneTtlSeconds], ['lww', 120]);
    assert.equal(JSON.parse(cli(['store', B], { url }).out).maxValueBytes, 2048);
    // Again: idempotent, nothing written, every record already there.
    r = cli(['restore', '--all', f], { url, timeout: 60000 });
    assert.equal(r.code, 0, r.err);
    const again = Object.fromEntries(lines(r.out).map((o) => [o.store, o]));
    assert.deepEqual([again[A].store_action, again[A].config, again[A].written, again[A].alreadyThere], ['existed', 'unchanged', 0, 1500]);
    assert.equal(snapshot(A, url).get('k/1').version, before[A].get('k/1').version, 'no record written again');
    // A changed value and config, an extra record: the value is a conflict
    // (left as is, exit 3), the config is set back, the extra record kept.
    assert.equal(cli(['put', B, 'k/3', '"changed"'], { url }).code, 0);
    assert.equal(cli(['put', B, 'extra', '1'], { url }).code, 0);
    assert.equal(cli(['store', B, '--max-value-bytes', '999'], { url }).code, 0);
    assert.equal(cli(['del', A, 'k/7'], { url }).code, 0);
    r = cli(['restore', '--all', f], { url, timeout: 60000 });
    assert.equal(r.code, 3, r.err);
    const third = Object.fromEntries(lines(r.out).map((o) => [o.store, o]));
    assert.deepEqual([third[B].config, third[B].written, third[B].alreadyThere, third[B].conflicts, third[B].otherRecordsKept],
      ['updated', 0, 9, 1, 1]);
    assert.deepEqual(third[B].conflictKeys, ['k/3']);
    assert.deepEqual([third[A].written, third[A].alreadyThere], [1, 1499], 'the deleted record written again');
    assert.equal(snapshot(B, url).get('k/3').value, 'changed', 'never overwritten');
    assert.equal(JSON.parse(cli(['store', B], { url }).out).maxValueBytes, 2048);
    // Human output on a non-JSON run says it in words; a backup on stdout.
    const out = cli(['backup', '-'], { url, timeout: 60000 });
    assert.equal(out.code, 0, out.err);
    assert.equal(JSON.parse(out.out.split('\n')[0]).stores, 3);
    assert.match(out.err, /^\{"backup":"-","stores":3,/, 'the summary on stderr when the backup is on stdout');
    // Not a backup.
    r = cli(['restore', '--all', file('nb.jsonl', '{"key":"a","value":1}\n')], { url });
    assert.equal(r.code, 1);
    assert.match(r.err, /before any export header/);
  } finally {
    await G.stop();
  }
});

it('drop: progress while the gateway deletes a store (20,000 records), then a summary', { timeout: 180000 }, () => {
  const S = uniq('drop');
  assert.equal(cli(['store', S]).code, 0);
  const recs = Array.from({ length: 20000 }, (_, i) => ({ key: `d${i}`, value: i }));
  assert.equal(cli(['import', S, file('drop.jsonl', jsonl(recs))], { timeout: 120000 }).code, 0);
  const r = cli(['drop', S, '--json'], { timeout: 120000, env: { ZOOSYNC_PROGRESS_MS: '200' } });
  assert.equal(r.code, 0, r.err);
  const sum = JSON.parse(r.out);
  assert.deepEqual([sum.store, sum.dropped, sum.records], [S, true, 20000]);
  const prog = lines(r.err);
  assert.ok(prog.length >= 2, `progress lines: ${r.err}`);
  for (const p of prog) assert.deepEqual([p.store, p.deleting, p.buckets], [S, true, 4096], JSON.stringify(p));
  assert.ok(prog.some((p) => p.bucketsLeft > 0 && p.bucketsLeft < 4096), `a line in the middle of the deletion: ${r.err}`);
  for (let i = 1; i < prog.length; i++) assert.ok(prog[i].bucketsLeft <= prog[i - 1].bucketsLeft, `progress went back: ${r.err}`);
  for (let i = 1; i < prog.length; i++) assert.ok(prog[i].done >= prog[i - 1].done);
  assert.equal(cli(['get', S, 'd1']).code, 1);
});
