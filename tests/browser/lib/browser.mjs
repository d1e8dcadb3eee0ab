// Browser-test helpers: Debian's chromium driven by playwright-core, a real
// ZooKeeper and real zoosyncd gateways (tests/lib/harness.mjs). Every browser
// process is stopped by its pid, profiles are temp dirs removed afterwards.
import { after } from 'node:test';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startGateway, REPO, tmpDir, uniq } from '../../lib/harness.mjs';
import { Api } from '../../lib/http.mjs';
import { makeSigner } from '../../lib/jwt.mjs';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
export const WWW = path.join(path.dirname(fileURLToPath(import.meta.url)), 'www');
export const CLIENT_DIR = path.join(REPO, 'client');
export const WEB_DIR = path.join(REPO, 'web');

const browsers = new Set();   // playwright Browser objects we launched
const procs = new Set();      // chromium processes we spawned ourselves
const dirs = new Set();

after(async () => {
  for (const b of browsers) await b.close().catch(() => {});
  for (const p of procs) p.kill();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
process.on('exit', () => { for (const p of procs) { try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ } } });

/** A free loopback port (for gateways that must know each other's origin before they start). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

/**
 * Starts n gateways on known ports, each allowing the others' origins (CORS),
 * serving the test page (or `web`) and the client.
 */
export async function startGateways(env, n = 1, { web = WWW, args = [], names = [] } = {}) {
  const ports = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  const origins = ports.map((p) => `http://127.0.0.1:${p}`);
  const gws = [];
  for (let i = 0; i < n; i++) {
    const cors = origins.filter((_, j) => j !== i).flatMap((o) => ['--cors-origin', o]);
    gws.push(await startGateway({
      zk: env.zk.connect, root: env.root, listen: `127.0.0.1:${ports[i]}`, name: names[i],
      args: ['--web', web, '--client-dir', CLIENT_DIR, ...cors, ...args],
    }));
  }
  return gws;
}

/** A headless chromium through playwright (closed in after()). */
export async function launch() {
  const b = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  browsers.add(b);
  return b;
}

export function tempProfile() {
  const d = mkdtempSync(path.join(tmpdir(), 'zoosync-profile-'));
  dirs.add(d);
  return d;
}

/**
 * Our own chromium process on a persistent profile dir, reached over CDP, so
 * that a test can kill it (SIGKILL to its process group) like a crash.
 * Returns { browser, context, pid, kill(), close() }.
 */
export async function launchProfile(dir) {
  const proc = spawn(CHROMIUM, ['--headless', '--remote-debugging-port=0', `--user-data-dir=${dir}`, ...FLAGS, 'about:blank'], {
    detached: true, stdio: ['ignore', 'ignore', 'pipe'],
  });
  const handle = {
    pid: proc.pid, exited: false,
    kill() {
      if (handle.exited) return;
      try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ }
    },
  };
  proc.on('exit', () => { handle.exited = true; });
  procs.add(handle);
  const ws = await new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`chromium printed no DevTools URL: ${buf.slice(-2000)}`)), 20000);
    proc.stderr.on('data', (d) => {
      buf += d;
      const m = buf.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
    proc.on('exit', (c) => { clearTimeout(t); reject(new Error(`chromium exited (${c}): ${buf.slice(-2000)}`)); });
  });
  proc.stderr.resume();
  const browser = await chromium.connectOverCDP(ws);
  handle.browser = browser;
  handle.context = browser.contexts()[0];
  handle.exitPromise = new Promise((r) => { if (handle.exited) r(); else proc.on('exit', () => r()); });
  handle.close = async () => {
    await browser.close().catch(() => {});
    handle.kill();
    await handle.exitPromise;
    procs.delete(handle);
  };
  handle.crash = async () => {
    handle.kill();
    await handle.exitPromise;
    procs.delete(handle);
  };
  return handle;
}

/** Opens the test page of gateway `gw` in a new page of `context`; returns the page. */
export async function openPage(context, gw, pathname = '/') {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`# page error: ${e.message}`));
  await page.goto(gw.url + pathname);
  await page.waitForFunction(() => window.ready === true);
  return page;
}

/** Polls a page function until truthy. */
export async function waitIn(page, fn, arg, { ms = 5000, what = 'condition' } = {}) {
  try {
    return await page.waitForFunction(fn, arg, { timeout: ms, polling: 25 });
  } catch (e) {
    throw new Error(`${what}: not reached in ${ms} ms (${e.message.split('\n')[0]})`);
  }
}

/**
 * startGateways() on a setupEnv() env (its ready() awaited first), an Api
 * without a token on each gateway, then a headless chromium (launch()).
 * @param {object} env
 * @param {number} n how many gateways
 * @param {object} [opts] startGateways()'s options
 * @returns {Promise<{ gws: object[], apis: Api[], browser: object }>}
 */
export async function gatewaysWithBrowser(env, n, opts) {
  await env.ready();
  const gws = await startGateways(env, n, opts);
  const apis = gws.map((g) => new Api(g));
  return { gws, apis, browser: await launch() };
}

/** The scope scripts/run.sh gives each demo user. */
export const DEMO_SCOPE = 'todos:read:users/{sub}/ todos:write:users/{sub}/';

/**
 * The demo as scripts/run.sh serves it: one gateway with authentication on
 * (a new HS256 signer), serving web/ (WEB_DIR), the store `todos` created
 * at start and given the demo's schema (asserted 200).
 * @param {object} env a setupEnv() env, ready
 * @param {object} [opts]
 * @param {string[]} [opts.args] more gateway flags (before the signer's)
 * @returns {Promise<{ G: object, api: Api, signer: object, link: (sub: string, extra?: object) => string, plain: () => string }>}
 *   api: an admin Api on G; link(sub, extra): the demo's address signed in
 *   as `sub` by a token (claims `extra` added) in the fragment, as make run
 *   prints it; plain(): the address without a token.
 */
export async function startDemo(env, { args = [] } = {}) {
  const signer = makeSigner('HS256', tmpDir());
  const [G] = await startGateways(env, 1, { web: WEB_DIR, args: ['--create-store', 'todos', ...args, ...signer.args] });
  const api = new Api(G, signer.token('admin'));
  const schema = JSON.parse(readFileSync(path.join(WEB_DIR, 'todos.schema.json'), 'utf8'));
  const put = await api.putStore('todos', { schema });
  assert.equal(put.status, 200, put.text);
  const plain = () => `${G.url}/?root=${encodeURIComponent(env.root)}`;
  const link = (sub, extra) => `${plain()}#token=${signer.token(DEMO_SCOPE, { sub, ...extra })}`;
  return { G, api, signer, link, plain };
}

/**
 * Options for T.open() on the test page: a fresh database name, gateway
 * `url`, one store, the given keepalive and a short backoff.
 * @param {string} url gateway URL
 * @param {string} s store
 * @param {number} keepaliveMs
 * @param {object} [extra] more options (override the above)
 */
export const dbOptions = (url, s, keepaliveMs, extra = {}) => ({ name: uniq('db'), url: [url], stores: [s], keepaliveMs, backoff: { baseMs: 100, maxMs: 1000 }, ...extra });

/** The names of the IndexedDB databases of a page's origin. */
export const dbNames = (page) => page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
