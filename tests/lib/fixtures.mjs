// Test fixtures built from the harness (tests/lib/harness.mjs) and the API
// client (tests/lib/http.mjs): the gateway set-ups and store helpers that
// many test files (integration, client, browser) start the same way.
//
//   import { setupEnv, it } from '../lib/harness.mjs';
//   import { gatewayPair, freshStore } from '../lib/fixtures.mjs';
//   const env = setupEnv();
//   let A, B, a, b;
//   before(async () => { ({ A, B, a, b } = await gatewayPair(env)); });
//   const newStore = (body) => freshStore(a, { prefix: 'p', body });
import { startGateway, startZk, newRoot, uniq } from './harness.mjs';
import { Api, eventually } from './http.mjs';

/**
 * The ZooKeeper and root a set-up runs on: a setupEnv() env (its ready() is
 * awaited first), or `{ zk, root }` with zk anything with `.connect`.
 * @param {{ zk?: { connect: string }, root: string, ready?: () => Promise<unknown> }} env
 */
async function where(env) {
  if (typeof env.ready === 'function') await env.ready();
  return { zk: env.zk.connect, root: env.root };
}

/**
 * Starts two gateways, named A and B, on env's ZooKeeper and root, each
 * with an Api client.
 * @param {object} env a setupEnv() env (ready() is awaited here) or `{ zk, root }`
 * @param {object} [opts]
 * @param {string[]} [opts.args] gateway flags for both
 * @param {object} [opts.signer] a makeSigner(): its flags go first, and each Api carries `signer.token('admin')`
 * @param {boolean} [opts.parallel] start both at once (default: A, then B)
 * @returns {Promise<{ A: object, B: object, a: Api, b: Api }>}
 */
export async function gatewayPair(env, { args = [], signer, parallel = false } = {}) {
  const { zk, root } = await where(env);
  const gwArgs = signer ? [...signer.args, ...args] : args;
  const start = (name) => startGateway({ zk, root, name, args: gwArgs });
  let A, B;
  if (parallel) {
    [A, B] = await Promise.all([start('A'), start('B')]);
  } else {
    A = await start('A');
    B = await start('B');
  }
  const token = signer ? signer.token('admin') : undefined;
  return { A, B, a: new Api(A, token), b: new Api(B, token) };
}

/**
 * Starts one gateway with an Api client on it.
 * @param {object} env a setupEnv() env (ready() is awaited here) or `{ zk, root }`
 * @param {object} [opts]
 * @param {string} [opts.name] gateway name (in its log's file name)
 * @param {string[]} [opts.args] gateway flags (after the signer's)
 * @param {object} [opts.signer] a makeSigner(): its flags go first; the Api's token is `signer.token('admin')` unless `token` is given
 * @param {string} [opts.token] the Api's token
 * @returns {Promise<{ gw: object, api: Api, token: string|undefined }>}
 */
export async function gatewayWithApi(env, { name, args = [], signer, token } = {}) {
  const { zk, root } = await where(env);
  const gw = await startGateway({ zk, root, name, args: signer ? [...signer.args, ...args] : args });
  const tok = token ?? (signer ? signer.token('admin') : undefined);
  return { gw, api: new Api(gw, tok), token: tok };
}

/**
 * gatewayWithApi(), and a fresh store made through its Api.
 * @param {object} env as gatewayWithApi()'s
 * @param {object} [opts] gatewayWithApi()'s options, and:
 * @param {string} [opts.prefix] the store name's prefix (uniq())
 * @param {object} [opts.body] the store's configuration
 * @returns {Promise<{ gw: object, api: Api, store: string, token: string|undefined }>}
 */
export async function gatewayWithStore(env, { prefix = 's', body, ...opts } = {}) {
  const g = await gatewayWithApi(env, opts);
  return { ...g, store: await freshStore(g.api, { prefix, body }) };
}

/**
 * A standalone ZooKeeper of the test's own (the test stops or restarts it),
 * a new root, and gatewayWithStore() on them.
 * @param {object} env a setupEnv() env: its ready() is awaited first
 * @param {object} [opts] gatewayWithStore()'s options
 * @returns {Promise<{ zk: object, root: string, gw: object, api: Api, store: string, token: string|undefined }>}
 */
export async function ownZkGatewayWithStore(env, opts = {}) {
  await env.ready();
  const zk = await startZk();
  const root = newRoot();
  return { zk, root, ...(await gatewayWithStore({ zk, root }, opts)) };
}

/**
 * Creates a store with a fresh name through `api` (asserting 201) and
 * returns its name.
 * @param {Api} api
 * @param {object} [opts]
 * @param {string} [opts.prefix] the name's prefix (uniq())
 * @param {object} [opts.body] the store's configuration
 * @param {Object<string, *>} [opts.seed] records to push into it at once (client 'seed', ids 1, 2, …)
 * @returns {Promise<string>}
 */
export async function freshStore(api, { prefix = 's', body, seed } = {}) {
  const s = uniq(prefix);
  await api.createStore(s, body);
  if (seed) {
    let id = 0;
    const muts = Object.entries(seed).map(([key, value]) => ({ id: ++id, key, op: 'put', value }));
    if (muts.length) await api.pushOk(s, 'seed', muts);
  }
  return s;
}

/**
 * Creates a fresh store through `api` and waits until `other` (another
 * gateway's Api) describes it too (a 503 while it loads is allowed, briefly).
 * @param {Api} api
 * @param {Api} other
 * @param {object} [opts]
 * @param {string} [opts.prefix] the name's prefix
 * @param {object} [opts.body] the store's configuration
 * @param {string} [opts.otherName] how a timeout names `other`
 * @returns {Promise<string>}
 */
export async function sharedStore(api, other, { prefix = 's', body, otherName = 'the other gateway' } = {}) {
  const s = await freshStore(api, { prefix, body });
  await eventually(async () => (await other.getStore(s)).status === 200, { ms: 5000, what: `store ${s} visible on ${otherName}` });
  return s;
}

/**
 * A record as the server holds it (`{ key, value, version, cursor }`), or
 * null when GET answers anything but 200.
 * @param {Api} api
 * @param {string} s store
 * @param {string} k key
 */
export async function serverRecord(api, s, k) {
  const r = await api.getRecord(s, k);
  return r.status === 200 ? r.json : null;
}
