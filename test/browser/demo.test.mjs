// The demo served by zoosyncd at / (--web web): an offline-first todo list.
// Drives it like a person would and takes a screenshot (ZOOSYNC_SCREENSHOT=path keeps it).
import assert from 'node:assert/strict';
import { before } from 'node:test';
import path from 'node:path';
import { setupEnv, it, REPO, tmpDir } from '../lib/harness.mjs';
import { statSync } from 'node:fs';
import { Api } from '../lib/http.mjs';
import { zkPath } from '../../client/zoosync.js';
import { startGateways, launch, WEB_DIR } from './lib/browser.mjs';

const env = setupEnv();
let G, api, browser;

before(async () => {
  await env.ready();
  [G] = await startGateways(env, 1, { web: WEB_DIR, args: ['--create-store', 'todos'] });
  api = new Api(G);
  browser = await launch();
});

it('the demo: add, complete, offline switch with pending writes, live remote changes, conflict notice, znode paths', async () => {
  const ctx = await browser.newContext({ viewport: { width: 900, height: 760 }, deviceScaleFactor: 1 });
  try {
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${G.url}/?root=${encodeURIComponent(env.root)}`);
    await page.waitForSelector('body[data-ready="1"]');
    await page.waitForSelector('#st-online.live', { timeout: 5000 });
    for (const t of ['Buy oat milk', 'Renew the TLS certificates', 'Call the plumber']) {
      await page.fill('#title', t);
      await page.press('#title', 'Enter');
    }
    await page.waitForFunction(() => document.querySelectorAll('.item').length === 3);
    await page.click('.item:nth-child(2) input[type=checkbox]');
    await page.waitForFunction(() => document.querySelectorAll('.badge.synced').length === 3, null, { timeout: 5000 });
    const keys = await page.$$eval('.item', (els) => els.map((e) => e.dataset.key));
    const paths = await page.$$eval('.item .path', (els) => els.map((e) => e.textContent));
    assert.deepEqual(paths, keys.map((k) => zkPath(env.root, 'todos', k)), 'each record shows its ZooKeeper path');
    // The toggle is a second write: the badges may show "synced" for the
    // first one before it is queued, so wait for the server to have it.
    let rec;
    for (let i = 0; i < 50; i++) {
      rec = await api.getRecord('todos', keys[1]);
      if (rec.json?.value?.done === true) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(rec.json.value.title, 'Renew the TLS certificates');
    assert.equal(rec.json.value.done, true, 'the toggle reached the server within 5 s');
    // A remote change shows up live.
    const feed = await api.changesOk('todos');
    assert.equal(feed.changes.length, 3);
    await api.putRecord('todos', 'todo:zz-remote', { title: 'Water the plants (added elsewhere)', done: false, createdAt: Date.now() });
    await page.waitForFunction(() => [...document.querySelectorAll('.item .title')].some((e) => e.textContent.includes('Water the plants')), null, { timeout: 2000 });
    // Offline switch: writes stay pending; a conflicting remote edit meanwhile.
    await page.click('.switch');
    await page.waitForSelector('#st-online.offline');
    await page.fill('#title', 'Book train tickets');
    await page.press('#title', 'Enter');
    await page.click('.item:nth-child(1) input[type=checkbox]');
    await page.waitForFunction(() => document.querySelectorAll('.badge.pending').length === 2);
    assert.match(await page.textContent('#st-pending'), /^2/);
    const cur = (await api.getRecord('todos', keys[0])).json;
    await api.putRecord('todos', keys[0], { ...cur.value, title: 'Buy oat milk and bread' }, { 'If-Match': `"${cur.version}"` });
    await page.click('.switch');
    await page.waitForSelector('.notice.conflict', { timeout: 5000 });
    await page.waitForFunction(() => document.querySelectorAll('.badge.pending').length === 0, null, { timeout: 5000 });
    const merged = (await api.getRecord('todos', keys[0])).json.value;
    assert.equal(merged.done, true, 'the merge keeps "done" from this side');
    assert.equal(merged.title, 'Buy oat milk', 'and the local title (the demo\'s policy)');
    assert.match(await page.textContent('#st-cursor'), /^[0-9a-f]{40}$/);
    await page.waitForSelector('#st-online.live');
    // ZOOSYNC_SCREENSHOT=docs/screenshot.png refreshes the README's picture; otherwise a temp file.
    const shot = process.env.ZOOSYNC_SCREENSHOT ? path.resolve(REPO, process.env.ZOOSYNC_SCREENSHOT) : path.join(tmpDir(), 'demo.png');
    await page.screenshot({ path: shot });
    assert.ok(statSync(shot).size > 10000, 'a real screenshot');
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});
