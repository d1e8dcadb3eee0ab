// HTTPS (PROTOCOL.md v1.1 "Transport"): --tls-cert/--tls-key serve HTTPS
// only, TLS 1.2 and 1.3; certificates from a CA this test makes with the
// openssl command; bad or mismatched files are refused at start, naming them.
import assert from 'node:assert/strict';
import https from 'node:https';
import http from 'node:http';
import tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before } from 'node:test';
import { setupEnv, it, startGateway, uniq, runGatewayExpectExit, tmpDir, sleep } from '../lib/harness.mjs';
import { eventually } from '../lib/http.mjs';
import { makeSigner } from '../lib/jwt.mjs';

const env = setupEnv();
let dir, ca, G, signer, admin;

function openssl(...args) { return execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }); }

/** A CA and a certificate for 127.0.0.1 / localhost signed by it (P-256). */
function makeCerts(name) {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}-ca.key`,
    '-out', `${name}-ca.pem`, '-days', '2', '-subj', `/CN=zoosync test CA ${name}`);
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`,
    '-out', `${name}.csr`, '-subj', '/CN=localhost');
  writeFileSync(path.join(dir, `${name}.ext`), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${name}-ca.pem`, '-CAkey', `${name}-ca.key`, '-CAcreateserial',
    '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  return { ca: readFileSync(path.join(dir, `${name}-ca.pem`)), cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`),
    caPem: path.join(dir, `${name}-ca.pem`), caKey: path.join(dir, `${name}-ca.key`) };
}

/**
 * A certificate for 127.0.0.1 signed by ca (from makeCerts) with `openssl ca`,
 * which can date it: opts.start/opts.end (YYYYMMDDHHMMSSZ), opts.ext (extension lines).
 */
function signWith(ca, name, { start, end, ext = '' } = {}) {
  const d = path.join(dir, `ca-${name}`);
  execFileSync('mkdir', ['-p', d]);
  writeFileSync(path.join(d, 'index.txt'), '');
  writeFileSync(path.join(d, 'serial'), '1000\n');
  writeFileSync(path.join(d, 'ca.cnf'), `[ca]\ndefault_ca = d\n[d]\ndir = ${d}\ndatabase = ${d}/index.txt\n`
    + `new_certs_dir = ${d}\nserial = ${d}/serial\npolicy = p\ndefault_md = sha256\nunique_subject = no\n`
    + `x509_extensions = x\n[p]\ncommonName = supplied\n[x]\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n${ext}`);
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${d}/leaf.key`,
    '-out', `${d}/leaf.csr`, '-subj', '/CN=localhost');
  openssl('ca', '-batch', '-config', `${d}/ca.cnf`, '-cert', ca.caPem, '-keyfile', ca.caKey, '-in', `${d}/leaf.csr`,
    '-out', `${d}/leaf.pem`, '-notext', ...(start ? ['-startdate', start] : []), ...(end ? ['-enddate', end] : ['-days', '2']));
  return { cert: `${d}/leaf.pem`, key: `${d}/leaf.key` };
}

function req(url, { method = 'GET', token, body, ...opts } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const r = https.request({ hostname: u.hostname, port: u.port, path: u.pathname + u.search, method, ca, ...opts,
      headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) } }, (res) => {
      let t = '';
      const proto = res.socket && res.socket.getProtocol ? res.socket.getProtocol() : null;
      res.on('data', (d) => { t += d; });
      res.on('end', () => resolve({ status: res.statusCode, text: t, json: (() => { try { return JSON.parse(t); } catch { return null; } })(), proto }));
    });
    r.on('error', reject);
    r.setTimeout(10000, () => r.destroy(new Error('timeout')));
    if (body) r.write(JSON.stringify(body));
    r.end();
  });
}

before(async () => {
  await env.ready();
  dir = tmpDir();
  const c = makeCerts('a');
  ca = c.ca;
  signer = makeSigner('HS256', env.tmp);
  G = await startGateway({ zk: env.zk.connect, root: env.root, name: 'tls', waitReady: false,
    args: [...signer.args, '--tls-cert', c.cert, '--tls-key', c.key] });
  admin = signer.token('admin');
  for (let i = 0; i < 600; i++) { // up to a minute on a loaded machine
    const r = await req(`${G.url}/readyz`).catch(() => null);
    if (r && r.status === 200) break;
    await sleep(100);
  }
});

it('serves HTTPS with the given certificate: the API, a push and an event stream work over TLS', async () => {
  assert.match(G.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const s = uniq('tls');
  assert.equal((await req(`${G.url}/v1/stores/${s}`, { method: 'PUT', token: admin, body: {} })).status, 201);
  const p = await req(`${G.url}/v1/stores/${s}/push`, { method: 'POST', token: admin, body: { client: 'c', mutations: [{ id: 1, key: 'k', op: 'put', value: 1 }] } });
  assert.equal(p.status, 200, p.text);
  assert.equal(p.json.results[0].status, 'applied');
  const proto = p.proto;
  assert.ok(proto === 'TLSv1.3' || proto === 'TLSv1.2', proto);
  // An event stream over TLS delivers the change.
  const got = await new Promise((resolve, reject) => {
    const u = new URL(`${G.url}/v1/stores/${s}/events`);
    const r = https.get({ hostname: u.hostname, port: u.port, path: u.pathname, ca, headers: { Authorization: `Bearer ${admin}` } }, (res) => {
      // over TLS the stream stays libmicrohttpd's (chunked); plain HTTP's own loop writes to the close
      assert.equal(res.headers['transfer-encoding'], 'chunked');
      let t = '';
      res.on('data', (d) => { t += d; if (t.includes('"key":"k"')) { r.destroy(); resolve(t); } });
    });
    r.on('error', (e) => { if (!String(e).includes('socket hang up')) reject(e); });
    setTimeout(() => { r.destroy(); reject(new Error('no event in 5 s')); }, 5000);
  });
  assert.match(got, /event: change/);
});

it('HTTPS only: plain HTTP on the port gets no answer; TLS 1.1 and an unknown CA are refused', async () => {
  const u = new URL(G.url);
  const plain = await new Promise((resolve) => {
    const r = http.get({ hostname: u.hostname, port: u.port, path: '/healthz' }, (res) => resolve(`status ${res.statusCode}`));
    r.on('error', (e) => resolve(`error ${e.code || e.message}`));
    r.setTimeout(5000, () => { r.destroy(); resolve('timeout'); });
  });
  assert.doesNotMatch(plain, /^status 200/, `plain HTTP: ${plain}`);
  const old = await new Promise((resolve) => {
    const sock = tls.connect({ host: u.hostname, port: Number(u.port), ca, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' },
      () => { resolve(`connected ${sock.getProtocol()}`); sock.destroy(); });
    sock.on('error', (e) => resolve(`error ${e.code || e.message}`));
  });
  assert.match(old, /^error/, `TLS 1.1: ${old}`);
  const other = makeCerts('b');
  const wrong = await req(`${G.url}/healthz`, { ca: other.ca }).then((r) => `status ${r.status}`, (e) => `error ${e.code}`);
  assert.match(wrong, /^error/, 'a client that trusts another CA refuses the server');
});

it('refused at start with a clear message: one of the two flags, an unreadable file, a key that is not the certificate\'s', async () => {
  const a = makeCerts('c'), b = makeCerts('d');
  const cases = [
    [['--tls-cert', a.cert], /--tls-cert and --tls-key go together/],
    [['--tls-cert', a.cert, '--tls-key', path.join(dir, 'missing.key')], /--tls-key .*missing\.key/],
    [['--tls-cert', a.cert, '--tls-key', b.key], /--tls-cert .* \/ --tls-key .*:/],
    [['--tls-cert', a.key, '--tls-key', a.key], /--tls-cert .* \/ --tls-key .*:/],
  ];
  // Pairs no handshake could use: expired, not valid yet, a key usage that cannot sign.
  const expired = signWith(a, 'expired', { start: '20200101000000Z', end: '20200102000000Z' });
  const future = signWith(a, 'future', { start: '20990101000000Z', end: '20990102000000Z' });
  const noSign = signWith(a, 'nosign', { ext: 'keyUsage = critical, keyEncipherment\n' });
  cases.push([['--tls-cert', expired.cert, '--tls-key', expired.key], /the certificate has expired/],
    [['--tls-cert', future.cert, '--tls-key', future.key], /the certificate is not valid yet/],
    [['--tls-cert', noSign.cert, '--tls-key', noSign.key], /key usage lacks digitalSignature/]);
  for (const [args, re] of cases) {
    const r = await runGatewayExpectExit(['--zk', env.zk.connect, ...signer.args, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}`);
    assert.match(r.stderr, re, `${args.join(' ')}: ${r.stderr}`);
  }
});

/** The PEM certificate a TLS handshake with G's port presents (null when refused). */
function presented(port, trust) {
  return new Promise((resolve) => {
    const sock = tls.connect({ host: '127.0.0.1', port, ca: trust, servername: 'localhost' }, () => {
      const c = sock.getPeerCertificate();
      resolve(c && c.issuer ? c.issuer.CN : null);
      sock.destroy();
    });
    sock.on('error', () => resolve(null));
    sock.setTimeout(5000, () => { sock.destroy(); resolve(null); });
  });
}

it('SIGHUP loads the certificate files again: new handshakes get the new one, open connections keep theirs, a bad pair keeps the old', async () => {
  const a = makeCerts('ra'), b = makeCerts('rb');
  const certFile = path.join(dir, 'live.pem'), keyFile = path.join(dir, 'live.key');
  copyFileSync(a.cert, certFile);
  copyFileSync(a.key, keyFile);
  const g = await startGateway({ zk: env.zk.connect, root: env.root, name: 'tls-reload', waitReady: false,
    args: [...signer.args, '--tls-cert', certFile, '--tls-key', keyFile] });
  try {
    const port = Number(new URL(g.url).port);
    assert.equal(await presented(port, a.ca), 'zoosync test CA ra');
    // A kept-alive connection opened before the reload.
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const before1 = await req(`${g.url}/healthz`, { ca: a.ca, agent });
    assert.equal(before1.status, 200);
    copyFileSync(b.cert, certFile);
    copyFileSync(b.key, keyFile);
    process.kill(g.pid, 'SIGHUP');
    await eventually(async () => /TLS certificate reloaded/.test(readFileSync(g.log, 'utf8')), { ms: 5000, what: 'the reload logged' });
    assert.equal(await presented(port, b.ca), 'zoosync test CA rb', 'a new handshake gets the new certificate');
    assert.equal(await presented(port, a.ca), null, 'the old CA no longer verifies the server');
    const after1 = await req(`${g.url}/healthz`, { ca: a.ca, agent });
    assert.equal(after1.status, 200, 'the connection opened before the reload keeps working');
    agent.destroy();
    // A key that is not the certificate's: refused, logged, the current pair stays.
    copyFileSync(a.key, keyFile);
    process.kill(g.pid, 'SIGHUP');
    await eventually(async () => /TLS certificate NOT reloaded.*live\.key/.test(readFileSync(g.log, 'utf8')),
      { ms: 5000, what: 'the refusal logged' });
    assert.equal(await presented(port, b.ca), 'zoosync test CA rb', 'the previous pair still serves');
    writeFileSync(certFile, 'not a certificate');
    process.kill(g.pid, 'SIGHUP');
    await eventually(async () => (readFileSync(g.log, 'utf8').match(/TLS certificate NOT reloaded/g) || []).length >= 2,
      { ms: 5000, what: 'the second refusal logged' });
    assert.equal(await presented(port, b.ca), 'zoosync test CA rb');
    // An expired pair (it parses, and the key is the certificate's) is refused too.
    const old = signWith(a, 'old', { start: '20200101000000Z', end: '20200102000000Z' });
    copyFileSync(old.cert, certFile);
    copyFileSync(old.key, keyFile);
    process.kill(g.pid, 'SIGHUP');
    await eventually(async () => /TLS certificate NOT reloaded.*has expired/.test(readFileSync(g.log, 'utf8')),
      { ms: 5000, what: 'the expired pair refused' });
    assert.equal(await presented(port, b.ca), 'zoosync test CA rb');
    assert.ok(!g.exited, 'the gateway lives on');
  } finally {
    await g.stop();
  }
});

it('a certificate chain is served leaf first, each certificate followed by its issuer, whatever the file\'s order', async () => {
  // root -> intermediate -> leaf; the file holds leaf, root, intermediate.
  const root = makeCerts('chainroot');
  const d = path.join(dir, 'chain');
  execFileSync('mkdir', ['-p', d]);
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${d}/int.key`, '-out', `${d}/int.csr`,
    '-subj', '/CN=zoosync test intermediate');
  writeFileSync(`${d}/int.ext`, 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  openssl('x509', '-req', '-in', `${d}/int.csr`, '-CA', root.caPem, '-CAkey', root.caKey, '-CAcreateserial', '-out', `${d}/int.pem`,
    '-days', '2', '-extfile', `${d}/int.ext`);
  const leaf = signWith({ caPem: `${d}/int.pem`, caKey: `${d}/int.key` }, 'chainleaf');
  const chain = path.join(d, 'chain.pem');
  writeFileSync(chain, [leaf.cert, root.caPem, `${d}/int.pem`].map((f) => readFileSync(f, 'utf8')).join(''));
  const g = await startGateway({ zk: env.zk.connect, root: env.root, name: 'tls-chain', waitReady: false,
    args: [...signer.args, '--tls-cert', chain, '--tls-key', leaf.key] });
  try {
    const port = new URL(g.url).port;
    const out = execFileSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-showcerts', '-CAfile', root.caPem],
      { input: '', stdio: ['pipe', 'pipe', 'pipe'], timeout: 10000 }).toString();
    const subjects = [...out.matchAll(/^ *(\d+) s:(.*)$/gm)].map((m) => m[2].trim());
    assert.deepEqual(subjects.map((x) => x.replace(/^.*CN ?= ?/, '')), ['localhost', 'zoosync test intermediate', 'zoosync test CA chainroot'],
      out.slice(0, 2000));
    assert.match(out, /Verify return code: 0 \(ok\)/);
  } finally {
    await g.stop();
  }
});
