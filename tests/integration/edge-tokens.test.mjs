// Issue 16, item 5 (the parts in auth/): audience and issuer checks, a
// maximum token lifetime, sane NumericDates, and no short HS256 secrets.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setupEnv, it, startGateway, uniq, runGatewayExpectExit } from '../lib/harness.mjs';
import { Api, expectError } from '../lib/http.mjs';
import { makeSigner, claims, now } from '../lib/jwt.mjs';

const env = setupEnv();
let signer, plain, strict, S;
const AUD = 'zoosync-api';
const ISS = 'https://idp.example';

before(async () => {
  await env.ready();
  signer = makeSigner('HS256', env.tmp);
  plain = await startGateway({ zk: env.zk.connect, root: env.root, args: [...signer.args], name: 'plain' });
  strict = await startGateway({
    zk: env.zk.connect, root: env.root, name: 'strict',
    args: [...signer.args, '--jwt-audience', AUD, '--jwt-issuer', ISS, '--jwt-max-lifetime', '3600'],
  });
  S = uniq('tok');
  await new Api(plain, signer.token('admin')).createStore(S);
});

const get = (gw, tok) => new Api(gw, tok).getStore(S);
const good = (extra = {}) => signer.sign(claims('admin', { aud: AUD, iss: ISS, exp: now() + 600, ...extra }));

it('exp: 1e300, a fractional or a string exp is 401 (even without other checks)', async () => {
  for (const exp of [1e300, now() + 600.5, String(now() + 600)]) {
    expectError(await get(plain, signer.sign(claims('admin', { exp }))), 401, 'unauthorized');
  }
  assert.equal((await get(plain, signer.token('admin'))).status, 200);
});

it('--jwt-audience: aud must name us (a string or an array)', async () => {
  assert.equal((await get(strict, good())).status, 200);
  assert.equal((await get(strict, good({ aud: ['other', AUD] }))).status, 200);
  for (const aud of [undefined, 'other-service', ['other'], [], 7]) {
    const r = await get(strict, good({ aud }));
    expectError(r, 401, 'unauthorized');
    assert.match(r.json.message, /aud/);
  }
});

it('--jwt-issuer: iss must match exactly', async () => {
  for (const iss of [undefined, 'https://evil.example', `${ISS}/`, 5]) {
    const r = await get(strict, good({ iss }));
    expectError(r, 401, 'unauthorized');
    assert.match(r.json.message, /iss/);
  }
});

it('--jwt-max-lifetime: exp - iat above the limit is 401; without iat exp - now counts', async () => {
  const t = now();
  assert.equal((await get(strict, good({ iat: t - 10, exp: t + 3000 }))).status, 200);
  expectError(await get(strict, good({ iat: t - 10, exp: t + 7200 })), 401, 'unauthorized');
  expectError(await get(strict, good({ iat: t - 1000, exp: t + 3000 })), 401, 'unauthorized');
  expectError(await get(strict, good({ iat: undefined, exp: t + 7200 })), 401, 'unauthorized');
  assert.equal((await get(strict, good({ iat: undefined, exp: t + 600 }))).status, 200);
});

it('an HS256 secret under 32 bytes is refused at start, with a clear error', async () => {
  const f = path.join(env.tmp, 'short.secret');
  writeFileSync(f, 'x'.repeat(31) + '\n');
  const r = await runGatewayExpectExit(['--listen', '127.0.0.1:0', '--zk', env.zk.connect, '--root', env.root, '--jwt-secret-file', f]);
  assert.equal(r.code, 2, `exit ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, /32 bytes/);
});

it('bad flag values are refused at start', async () => {
  for (const args of [['--jwt-max-lifetime', '0'], ['--jwt-max-lifetime', 'x'], ['--jwt-audience', '']]) {
    const r = await runGatewayExpectExit(['--listen', '127.0.0.1:0', '--zk', env.zk.connect, ...signer.args, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  }
});

it('an event stream lives no longer than its token: at exp, event reauth {"error":"token_expired"}, then the stream ends; changes before exp arrive', { timeout: 30000 }, async () => {
  const { openEvents } = await import('../lib/sse.mjs');
  const admin = new Api(plain, signer.token('admin'));
  const exp = now() + 3;
  const es = openEvents(plain.url, S, { token: signer.sign(claims(`${S}:read`, { exp })) });
  try {
    await es.opened();
    await admin.putRecord(S, 'before-exp', 1);
    await es.waitFor((s) => s.changes.some((c) => c.key === 'before-exp'), { ms: 2000, what: 'a change before exp' });
    await es.waitFor((s) => s.ended, { ms: 6000, what: 'the stream ends at exp' });
    const last = es.events[es.events.length - 1];
    assert.equal(last.event, 'reauth', JSON.stringify(es.events.map((e) => e.event)));
    assert.deepEqual(last.data, { error: 'token_expired' });
    const lateBy = last.at - exp * 1000;
    assert.ok(lateBy >= -50 && lateBy < 1500, `reauth ${lateBy} ms after exp`);
    // With a fresh token the client resumes from its cursor and misses nothing.
    await admin.putRecord(S, 'after-exp', 2);
    const es2 = openEvents(plain.url, S, { token: signer.token(`${S}:read`), since: es.lastEventId });
    try {
      await es2.opened();
      await es2.waitFor((s) => s.changes.some((c) => c.key === 'after-exp'), { ms: 2000, what: 'resumed from the cursor' });
      assert.ok(!es2.changes.some((c) => c.key === 'before-exp'), 'nothing repeated');
    } finally {
      es2.close();
    }
  } finally {
    es.close();
  }
});
