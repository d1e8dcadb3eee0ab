// Many users in one store, in the demo (issue 11): alice and bob in two
// browser contexts (two browsers, as far as storage goes) plus a second tab
// of alice's, all signed in by links as scripts/run.sh prints them (a token
// limited to users/{sub}/ in the fragment). Each sees only their own todos,
// live; the server holds both in the store "todos"; each browser keeps a
// copy of its user's keys only. Ends with alice logging out (destroy()) in
// one tab while her other tab is open: both stop, her local database is
// deleted, bob carries on.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { setupEnv, it } from '../lib/harness.mjs';
import { launch, startDemo, dbNames } from './lib/browser.mjs';

const env = setupEnv();
let G, api, browser, signer;
let link, plain; // the demo's address signed in as a user (scope as scripts/run.sh), and without a token

before(async () => {
  await env.ready();
  ({ G, api, signer, link, plain } = await startDemo(env, { args: ['--keepalive-ms', '1000'] }));
  browser = await launch();
});

/** Opens `url` in a new page of ctx; waits for the page to be ready; collects page errors. */
async function open(ctx, url, errors) {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => errors.push(`${url.slice(0, 40)}: ${e.message}`));
  await page.goto(url);
  await page.waitForSelector('body[data-ready="1"]');
  return page;
}
const titles = (page) => page.$$eval('.item .title', (els) => els.map((e) => e.textContent).sort());
const add = async (page, title) => { await page.fill('#title', title); await page.press('#title', 'Enter'); };
const waitTitles = (page, want, what) => page.waitForFunction((w) => JSON.stringify([...document.querySelectorAll('.item .title')].map((e) => e.textContent).sort()) === JSON.stringify(w),
  [...want].sort(), { timeout: 8000 }).catch((e) => { throw new Error(`${what}: ${e.message.split('\n')[0]}`); });
const localKeys = (page) => page.evaluate(async () => (await window.zoosyncDemo.getAll('todos')).map((r) => r.key).sort());

it('two users in one store, two contexts and a second tab: each sees only their own todos, live; logout in one tab closes the other', async () => {
  const ctxA = await browser.newContext(), ctxB = await browser.newContext();
  const errors = [];
  try {
    const a1 = await open(ctxA, link('alice'), errors);
    const b1 = await open(ctxB, link('bob'), errors);
    // The second tab: opened without a link, signed in by the token this browser kept.
    const a2 = await open(ctxA, plain(), errors);
    for (const [p, who] of [[a1, 'alice'], [a2, 'alice'], [b1, 'bob']]) {
      assert.equal(await p.textContent('#user-name'), who);
      assert.equal(new URL(p.url()).hash, '', 'no token in the address bar');
      await p.waitForSelector('#st-online.live', { timeout: 8000 });
    }
    assert.equal(await a1.textContent('#prefix'), 'users/alice/');

    await add(a1, 'Alice: buy milk');
    await add(b1, 'Bob: fix the bike');
    await add(a2, 'Alice: call mum');
    await waitTitles(a1, ['Alice: buy milk', 'Alice: call mum'], 'alice tab 1');
    await waitTitles(a2, ['Alice: buy milk', 'Alice: call mum'], 'alice tab 2');
    await waitTitles(b1, ['Bob: fix the bike'], 'bob');
    for (const p of [a1, a2, b1]) await p.waitForFunction(() => document.getElementById('st-pending').textContent === '0', null, { timeout: 8000 });

    // One store on the server holds both users' records, each under its prefix.
    const all = (await api.changesOk('todos')).changes.map((c) => c.key).sort();
    assert.equal(all.length, 3);
    assert.deepEqual(all.map((k) => k.split('/').slice(0, 2).join('/')), ['users/alice', 'users/alice', 'users/bob']);
    // Each browser holds its user's keys only (partial replication).
    assert.deepEqual(await localKeys(a1), all.filter((k) => k.startsWith('users/alice/')));
    assert.deepEqual(await localKeys(b1), all.filter((k) => k.startsWith('users/bob/')));

    // Changes made elsewhere arrive live, at their user only; a done toggle by bob stays bob's.
    await api.putRecord('todos', 'users/bob/from-elsewhere', { title: 'Bob: from elsewhere', done: false, createdAt: Date.now() });
    await api.putRecord('todos', 'users/alice/from-elsewhere', { title: 'Alice: from elsewhere', done: false, createdAt: Date.now() });
    await api.putRecord('todos', 'users/alice2/x', { title: 'Not alice (alice2)', done: false, createdAt: Date.now() });
    await waitTitles(b1, ['Bob: fix the bike', 'Bob: from elsewhere'], 'bob live');
    await waitTitles(a1, ['Alice: buy milk', 'Alice: call mum', 'Alice: from elsewhere'], 'alice tab 1 live');
    await waitTitles(a2, ['Alice: buy milk', 'Alice: call mum', 'Alice: from elsewhere'], 'alice tab 2 live');
    await b1.click('.item:has-text("Bob: fix the bike") input[type=checkbox]');
    await a1.click('.item:has-text("Alice: buy milk") input[type=checkbox]');
    await a2.waitForSelector('.item.done:has-text("Alice: buy milk")', { timeout: 8000 });
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await titles(b1), ['Bob: fix the bike', 'Bob: from elsewhere']);
    assert.equal(await a1.locator('.item:has-text("Bob")').count(), 0);
    assert.equal(await a2.locator('.item.done').count(), 1);

    // The page cannot write outside its prefix: the client refuses it (forbidden) before the server would.
    const outside = await a1.evaluate(async () => { try { await window.zoosyncDemo.put('todos', 'users/bob/sneaky', { title: 'x', done: false }); return 'written'; } catch (e) { return e.code; } });
    assert.equal(outside, 'forbidden');
    assert.equal((await api.getRecord('todos', 'users/bob/sneaky')).status, 404);

    // Alice logs out in tab 2 while tab 1 is open.
    const requests = [];
    ctxA.on('request', (r) => { if (r.url().includes('/v1/')) requests.push(r.url()); });
    const t0 = Date.now();
    await a2.click('#logout');
    await a2.waitForSelector('#signin', { state: 'visible', timeout: 5000 });
    await a1.waitForSelector('#signin', { state: 'visible', timeout: 5000 });
    assert.ok(Date.now() - t0 < 5000, `logout not blocked by the other tab: ${Date.now() - t0} ms`);
    assert.match(await a2.textContent('#signin-why'), /alice logged out: this browser's copy of the todos is deleted/);
    assert.match(await a1.textContent('#signin-why'), /alice logged out in another tab/);
    assert.ok(await a1.isHidden('#app'));
    assert.ok(!(await dbNames(a1)).includes('zoosync-demo-todos-alice'), 'alice\'s IndexedDB database is gone');
    assert.equal(await a1.evaluate(() => localStorage.getItem('zoosync-demo-token:todos')), null, 'the token is forgotten');
    // A new tab is signed out; nothing of alice's syncs any more.
    const a3 = await open(ctxA, plain(), errors);
    assert.ok(await a3.isVisible('#signin'));
    const n = requests.length;
    await api.putRecord('todos', 'users/alice/after-logout', { title: 'Alice: after logout', done: false, createdAt: Date.now() });
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(requests.slice(n), [], 'no request from alice\'s browser after logout');
    // The server keeps alice's todos; bob carries on, live.
    assert.equal((await api.getRecord('todos', all.find((k) => k.startsWith('users/alice/')))).status, 200);
    await add(b1, 'Bob: after alice left');
    await waitTitles(b1, ['Bob: after alice left', 'Bob: fix the bike', 'Bob: from elsewhere'], 'bob after');
    await b1.waitForFunction(() => document.getElementById('st-pending').textContent === '0', null, { timeout: 8000 });
    assert.ok(await b1.isVisible('#st-online.live'));

    // Signing in again: a fresh copy, pulled from the server.
    await a3.goto(link('alice'));
    await a3.waitForFunction(() => document.querySelectorAll('.item').length === 4, null, { timeout: 8000 });
    assert.deepEqual(await titles(a3), ['Alice: after logout', 'Alice: buy milk', 'Alice: call mum', 'Alice: from elsewhere']);
    assert.deepEqual(errors, []);
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});
