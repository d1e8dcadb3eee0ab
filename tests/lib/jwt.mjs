// JWTs made by hand with node:crypto: HS256, RS256, ES256 (and broken ones).
import crypto from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export const b64u = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
export const now = () => Math.floor(Date.now() / 1000);

/** Standard claims: sub, scope, exp one hour ahead; extra overrides (undefined deletes). */
export function claims(scope, extra = {}) {
  const c = { sub: 'tester', exp: now() + 3600, iat: now() - 5 };
  if (scope !== undefined) c.scope = scope;
  for (const [k, v] of Object.entries(extra)) { if (v === undefined) delete c[k]; else c[k] = v; }
  return c;
}

/** Signs `payload` with alg HS256 | RS256 | ES256 | none. key: secret (HS) or private KeyObject. */
export function sign(alg, key, payload, headerExtra = {}) {
  const header = { alg, typ: 'JWT', ...headerExtra };
  const input = `${b64u(header)}.${b64u(payload)}`;
  let sig;
  switch (alg) {
    case 'HS256': sig = crypto.createHmac('sha256', key).update(input).digest(); break;
    case 'RS256': sig = crypto.sign('sha256', Buffer.from(input), key); break;
    case 'ES256': sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }); break;
    case 'none': sig = Buffer.alloc(0); break;
    default: throw new Error(`alg ${alg}`);
  }
  return `${input}.${sig.toString('base64url')}`;
}

/**
 * A signing identity for one gateway.
 *   kind 'HS256': writes the secret file (with a trailing newline, which the gateway strips)
 *   kind 'RS256' / 'ES256': generates a key pair, writes the public key PEM (spki)
 * Returns { alg, args (gateway flags), token(scope, extra), sign(payload), file, publicPem, secret|privateKey }.
 */
export function makeSigner(kind, dir) {
  const file = path.join(dir, `key-${kind}-${crypto.randomBytes(4).toString('hex')}${kind === 'HS256' ? '.secret' : '.pem'}`);
  let key, args, extra = {};
  if (kind === 'HS256') {
    const secret = crypto.randomBytes(32).toString('hex');
    writeFileSync(file, secret + '\n');
    key = secret; args = ['--jwt-secret-file', file]; extra = { secret };
  } else if (kind === 'RS256') {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' });
    writeFileSync(file, pem);
    key = privateKey; args = ['--jwt-public-key', file]; extra = { privateKey, publicPem: pem };
  } else if (kind === 'ES256') {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' });
    writeFileSync(file, pem);
    key = privateKey; args = ['--jwt-public-key', file]; extra = { privateKey, publicPem: pem };
  } else throw new Error(kind);
  return {
    alg: kind, file, args, key, ...extra,
    sign: (payload, headerExtra) => sign(kind, key, payload, headerExtra),
    token: (scope, extraClaims) => sign(kind, key, claims(scope, extraClaims)),
  };
}
