// The demo served by zoosyncd at / (--web web): an offline-first todo list,
// signed in as scripts/run.sh does it: authentication on, a token with the
// prefix scope users/{sub}/ in the URL fragment. Drives it like a person
// would and takes a screenshot (ZOOSYNC_SCREENSHOT=path keeps it).
import assert from 'node:assert/strict';
import { before } from 'node:test';
import path from 'node:path';
import { setupEnv, it, REPO, tmpDir, uniq } from '../lib/harness.mjs';
import { claims, now } from '../lib/jwt.mjs';
import { statSync } from 'node:fs';
import { zkPath } from '../../client/zoosync.js';
import { launch, startDemo, DEMO_SCOPE as SCOPE } from './lib/browser.mjs';

const env = setupEnv();
let G, api, browser, signer;
/** The demo's address for `sub`, signed in by a token in the fragment, as make run prints it. */
let link;

before(async () => {
  await env.ready();
  // As scripts/run.sh does: the todos store gets the demo's schema.
  ({ G, api, signer, link } = await startDemo(env));
  browser = await launch();
});

it('the demo: signed in by the link\'s fragment; add, complete, offline switch with pending writes, live remote changes, conflict notice, znode paths', async () => {
  const ctx = await browser.newContext({ viewport: { width: 900, height: 760 }, deviceScaleFactor: 1 });
  try {
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const v1 = [];
    page.on('request', (r) => { if (r.url().includes('/v1/')) v1.push(r); });
    await page.goto(link('alice'));
    await page.waitForSelector('body[data-ready="1"]');
    assert.equal(new URL(page.url()).hash, '', 'the token is gone from the address bar');
    assert.equal(await page.textContent('#user-name'), 'alice');
    assert.ok(await page.isHidden('#signin'));
    await page.waitForSelector('#st-online.live', { timeout: 5000 });
    for (const t of ['Buy oat milk', 'Renew the TLS certificates', 'Call the plumber']) {
      await page.fill('#title', t);
      await page.press('#title', 'Enter');
    }
    await page.waitForFunction(() => document.querySelectorAll('.item').length === 3);
    await page.click('.item:nth-child(2) input[type=checkbox]');
    await page.waitForFunction(() => document.querySelectorAll('.badge.synced').length === 3, null, { timeout: 5000 });
    const keys = await page.$$eval('.item', (els) => els.map((e) => e.dataset.key));
    for (const k of keys) assert.match(k, /^users\/alice\/[0-9a-z]+$/, 'keys under the user\'s prefix');
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
    await api.putRecord('todos', 'users/alice/zz-remote', { title: 'Water the plants (added elsewhere)', done: false, createdAt: Date.now() });
    await page.waitForFunction(() => [...document.querySelectorAll('.item .title')].some((e) => e.textContent.includes('Water the plants')), null, { timeout: 2000 });
    // Offline switch: writes stay pending; a conflicting remote edit meanwhile.
    await page.click('.switch');
    await page.waitForSelector('#st-online.offline');
    await page.fill('#title', 'Book train tickets');
    await page.press('#title', 'Enter');
    await page.click('.item:nth-child(1) input[type=checkbox]');
    await page.waitForFunction(() => document.querySelectorAll('.badge.pending').length === 2);
    // The pill follows the client's 'status' event, which may come a moment
    // after the badges (a separate event): wait for it rather than race it.
    await page.waitForFunction(() => /^2/.test(document.getElementById('st-pending').textContent), null, { timeout: 3000 });
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
    // Every API request carried the token in its Authorization header, none in its address.
    assert.ok(v1.length > 0);
    for (const r of v1) {
      assert.ok(!r.url().includes('token'), r.url());
      if (r.method() !== 'OPTIONS') assert.match((await r.allHeaders()).authorization || '', /^Bearer ey/, r.url());
    }
    // ZOOSYNC_SCREENSHOT=docs/screenshot.png refreshes the README's picture; otherwise a temp file.
    const shot = process.env.ZOOSYNC_SCREENSHOT ? path.resolve(REPO, process.env.ZOOSYNC_SCREENSHOT) : path.join(tmpDir(), 'demo.png');
    await page.screenshot({ path: shot });
    assert.ok(statSync(shot).size > 10000, 'a real screenshot');
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

it('the demo: a write the schema refuses is rolled back in the page, with the server\'s reason shown above the list', async () => {
  const ctx = await browser.newContext({ viewport: { width: 900, height: 760 }, deviceScaleFactor: 1 });
  try {
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(link(uniq('carol')));
    await page.waitForSelector('body[data-ready="1"]');
    await page.waitForSelector('#st-online.live', { timeout: 5000 });
    const titles = () => page.$$eval('.item .title', (els) => els.map((e) => e.textContent));
    await page.fill('#title', 'Valid: check the schema');
    await page.press('#title', 'Enter');
    await page.waitForFunction(() => [...document.querySelectorAll('.item')].some((e) =>
      e.querySelector('.title')?.textContent === 'Valid: check the schema' && e.querySelector('.badge.synced')), null, { timeout: 5000 });
    const before = await titles();

    // Offline first, so that the refused item is seen in the list, pending.
    await page.click('.switch');
    await page.waitForSelector('#st-online.offline');
    await page.click('#invalid');
    await page.waitForFunction(() => [...document.querySelectorAll('.item .title')].some((e) => e.textContent.startsWith('This title is far too long')));
    const key = await page.$$eval('.item', (els) => els.find((e) => e.querySelector('.title').textContent.startsWith('This title is far too long')).dataset.key);
    await page.waitForFunction((k) => document.querySelector(`.badge[data-key="${k}"]`)?.textContent === 'pending', key);
    assert.equal((await api.getRecord('todos', key)).status, 404, 'nothing reached the server while offline');

    // Online: the server answers "rejected" (invalid_value); the item goes, the reason shows.
    await page.click('.switch');
    await page.waitForSelector('.notice.error', { timeout: 5000 });
    const msg = await page.textContent('.notice.error');
    assert.match(msg, /refused by the server/, msg);
    assert.match(msg, /rolled back/, msg);
    assert.match(msg, /\/title: the string is 253 characters long, longer than 200 \(maxLength\)/, msg);
    assert.ok(await page.isVisible('.notice.error'), 'the error is on screen');
    const placed = await page.evaluate(() => {
      const n = document.querySelector('.notice.error'), l = document.getElementById('list');
      return { above: !!(n.compareDocumentPosition(l) & Node.DOCUMENT_POSITION_FOLLOWING), gap: l.getBoundingClientRect().top - n.getBoundingClientRect().bottom };
    });
    assert.ok(placed.above && placed.gap < 40, `the notice sits just above the list: ${JSON.stringify(placed)}`);
    await page.waitForFunction((k) => !document.querySelector(`.item[data-key="${k}"]`), key, { timeout: 5000 });
    assert.deepEqual(await titles(), before, 'the list is as before the invalid write');
    await page.waitForFunction(() => document.getElementById('st-pending').textContent === '0', null, { timeout: 5000 });
    assert.equal((await api.getRecord('todos', key)).status, 404, 'the server never stored it');

    // An edit the schema refuses: the title goes back to the server's.
    await page.click('button[aria-label="Dismiss"]');
    const valid = await page.$$eval('.item', (els) => els.find((e) => e.querySelector('.title').textContent === 'Valid: check the schema').dataset.key);
    await page.dblclick(`.item[data-key="${valid}"] .title`);
    await page.fill(`.item[data-key="${valid}"] .edit`, 'x'.repeat(201));
    await page.press(`.item[data-key="${valid}"] .edit`, 'Enter');
    await page.waitForSelector('.notice.error', { timeout: 5000 });
    assert.match(await page.textContent('.notice.error'), /longer than 200/);
    await page.waitForFunction((k) => document.querySelector(`.item[data-key="${k}"] .title`)?.textContent === 'Valid: check the schema', valid, { timeout: 5000 });
    assert.equal((await api.getRecord('todos', valid)).json.value.title, 'Valid: check the schema');
    assert.equal(await page.locator('.notice.error').count(), 1, 'one write, one notice');
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

it('the demo without a token explains how to get a link; an expired or unreadable token says so', async () => {
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const v1 = [];
    page.on('request', (r) => { if (r.url().includes('/v1/')) v1.push(r.url()); });
    await page.goto(`${G.url}/?root=${encodeURIComponent(env.root)}`);
    await page.waitForSelector('body[data-ready="1"]');
    assert.ok(await page.isVisible('#signin'));
    assert.ok(await page.isHidden('#app'));
    assert.ok(await page.isHidden('#side'), 'no user, no log out');
    const text = await page.textContent('#signin');
    assert.match(text, /make run/);
    assert.match(text, new RegExp(`${G.url.replace(/[.]/g, '\\.')}/#token=`), 'the link shape, with this page\'s origin');
    assert.equal(await page.textContent('#signin-why'), '');

    const expired = sign(signer, claims(SCOPE, { sub: 'dave', iat: now() - 7200, exp: now() - 3600 }));
    // A link pasted into the open page: only the fragment changes, the page loads again to read it.
    await page.goto(`${G.url}/?root=${encodeURIComponent(env.root)}#token=${expired}`);
    await page.waitForFunction(() => /token for dave expired/.test(document.getElementById('signin-why').textContent), null, { timeout: 5000 });
    assert.equal(new URL(page.url()).hash, '');
    await page.goto('about:blank');
    await page.goto(`${G.url}/?root=${encodeURIComponent(env.root)}#token=not-a-token`);
    await page.waitForSelector('body[data-ready="1"]');
    assert.match(await page.textContent('#signin-why'), /could not be read/);
    await page.reload();
    await page.waitForSelector('body[data-ready="1"]');
    assert.equal(await page.textContent('#signin-why'), '', 'a refused token is not kept');
    assert.deepEqual(v1, [], 'signed out, the page makes no API request');
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

const sign = (s, payload) => s.sign(payload);
