// The zoosync demo: an offline-first todo list on zoosync.js, one store
// ("todos") shared by many users. A user signs in with a link printed by
// `make run` (scripts/run.sh), http://127.0.0.1:8080/#token=<JWT>: the token
// is in the fragment, which the browser never sends to a server. The page
// reads it, removes it from the address bar and keeps it in localStorage,
// so that a reload or a second tab of this browser is signed in too (until
// "Log out"), and replicates only the user's keys, users/<sub>/<id> (the
// token's prefix scope; the gateway refuses everything else).
import { openSyncDB, zkPath } from '/client/zoosync.js';

const params = new URLSearchParams(location.search);
const STORE = params.get('store') || 'todos';
const ROOT = params.get('root') || '/zoosync';
const $ = (id) => document.getElementById(id);
const TOKEN_KEY = `zoosync-demo-token:${STORE}`;

/** The token's claims (not verified here: the gateway does that), or null. */
function claimsOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = new TextDecoder().decode(Uint8Array.from(atob(part), (ch) => ch.charCodeAt(0)));
    const c = JSON.parse(json);
    return c && typeof c === 'object' ? c : null;
  } catch { return null; }
}

/**
 * The key prefix the token may write in STORE: its first `STORE:write:<prefix>`
 * (or `*:write:`) scope entry, {sub} replaced and the rest percent-decoded as
 * the gateway does (docs/PROTOCOL.md, "Prefix scopes"); users/<sub>/ when the
 * token may write the whole store.
 */
function prefixOf(c) {
  for (const e of String(c.scope || '').split(/\s+/)) {
    const m = /^([^:]+):write:(.+)$/.exec(e);
    if (!m || (m[1] !== STORE && m[1] !== '*')) continue;
    try { return m[2].split('{sub}').map(decodeURIComponent).join(c.sub); } catch { /* a broken %: grants nothing */ }
  }
  return `users/${c.sub}/`;
}

/** Signed out: the app hidden, the explanation of how to get a link shown. */
function signedOut(why = '') {
  $('app').hidden = true;
  $('side').hidden = true;
  $('signin').hidden = false;
  $('signin-why').textContent = why;
  document.title = 'zoosync todos: sign in';
  document.body.dataset.user = '';
  document.body.dataset.ready = '1';
}

// A link pasted into this tab while it is open changes only the fragment
// (no new page load): load the page again to read it.
addEventListener('hashchange', () => { if (new URLSearchParams(location.hash.slice(1)).has('token')) location.reload(); });

// The token: from the fragment (then out of the address bar), else the one kept earlier.
const frag = new URLSearchParams(location.hash.slice(1));
if (frag.has('token')) {
  localStorage.setItem(TOKEN_KEY, frag.get('token'));
  history.replaceState(null, '', location.pathname + location.search);
}
const TOKEN = localStorage.getItem(TOKEN_KEY);
/** Forgets the token (unless another tab has signed in as someone else since). */
const forget = () => { if (localStorage.getItem(TOKEN_KEY) === TOKEN) localStorage.removeItem(TOKEN_KEY); };
for (const el of document.querySelectorAll('.origin')) el.textContent = location.origin;
const claims = TOKEN ? claimsOf(TOKEN) : null;
let why = '';
if (TOKEN && (!claims || typeof claims.sub !== 'string' || !claims.sub)) why = 'The token in that link could not be read (or names no user). Copy the whole link that make run printed.';
else if (claims && typeof claims.exp === 'number' && claims.exp * 1000 <= Date.now()) {
  why = `The token for ${claims.sub} expired at ${new Date(claims.exp * 1000).toLocaleString()}. Run make run again: it prints fresh links.`;
}
if (!TOKEN || why) {
  forget();
  signedOut(why);
  await new Promise(() => {}); // signed out: nothing below runs (no error thrown to the console)
}
const SUB = claims.sub;
const PREFIX = prefixOf(claims);
const OFFLINE_KEY = `zoosync-demo-offline:${SUB}`;

/** Conflicts: a deletion wins; otherwise keep the local title and "done" if either side finished it. */
function onConflict({ local, remote, localDeleted, remoteDeleted }) {
  if (localDeleted || remoteDeleted) return undefined;
  return { ...remote, ...local, done: !!(local.done || remote.done) };
}

const db = await openSyncDB({
  name: `zoosync-demo-${STORE}-${SUB}`, // one local database per user
  url: location.origin,
  stores: [{ name: STORE, prefix: PREFIX }], // partial replication: only this user's keys
  token: TOKEN,
  root: ROOT,
  onConflict,
  offline: localStorage.getItem(OFFLINE_KEY) === '1',
});
window.zoosyncDemo = db; // for the curious (and the tests)
let closed = false;

$('user-name').textContent = SUB;
$('user').title = `Token scope: ${claims.scope || ''}${claims.exp ? `; valid until ${new Date(claims.exp * 1000).toLocaleString()}` : ''}`;
$('prefix').textContent = PREFIX;
$('side').hidden = false;
$('app').hidden = false;
document.title = `zoosync todos: ${SUB}`;
document.body.dataset.user = SUB;

/** @type {Map<string, any>} */
const todos = new Map();
for (const { key, value } of await db.getAll(STORE)) todos.set(key, value);

function fmtAgo(t) {
  if (!t) return 'never';
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return new Date(t).toLocaleTimeString();
}

function render() {
  const list = $('list');
  const items = [...todos.entries()].sort((a, b) => (a[1].createdAt || 0) - (b[1].createdAt || 0));
  list.replaceChildren(...items.map(([key, t]) => {
    const li = document.createElement('li');
    li.className = 'item' + (t.done ? ' done' : '');
    li.dataset.key = key;
    const cb = document.createElement('input');
    cb.type = 'checkbox';
    cb.checked = !!t.done;
    cb.setAttribute('aria-label', `Done: ${t.title}`);
    cb.addEventListener('change', () => db.put(STORE, key, { ...t, done: cb.checked }));
    const body = document.createElement('div');
    body.className = 'body';
    const title = document.createElement('span');
    title.className = 'title';
    title.textContent = t.title;
    title.title = 'Double-click to edit';
    title.addEventListener('dblclick', () => edit(key, t, title));
    const path = document.createElement('code');
    path.className = 'path';
    path.textContent = zkPath(ROOT, STORE, key);
    body.append(title, path);
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.dataset.key = key;
    const del = document.createElement('button');
    del.className = 'del';
    del.type = 'button';
    del.textContent = '×';
    del.setAttribute('aria-label', `Delete ${t.title}`);
    del.addEventListener('click', () => db.delete(STORE, key));
    li.append(cb, body, badge, del);
    return li;
  }));
  $('empty').hidden = items.length > 0;
  const open = items.filter(([, t]) => !t.done).length;
  $('counts').textContent = `${open} open · ${items.length - open} done`;
  $('clear').hidden = items.length === open;
  markPending();
}

function edit(key, t, el) {
  const input = document.createElement('input');
  input.className = 'edit';
  input.value = t.title;
  el.replaceWith(input);
  input.focus();
  let finished = false; // Enter, then the blur of the removed input: one write
  const done = (save) => {
    if (finished) return;
    finished = true;
    const v = input.value.trim();
    if (save && v && v !== t.title) db.put(STORE, key, { ...t, title: v });
    else render();
  };
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') done(true); if (e.key === 'Escape') done(false); });
  input.addEventListener('blur', () => done(true));
}

/** A new todo's key: under the user's prefix, users/<sub>/<time><random>. */
function newKey() {
  return `${PREFIX}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

async function markPending() {
  if (closed) return;
  let pend;
  try {
    pend = new Set((await db.pendingMutations(STORE)).map((m) => m.key));
  } catch (e) {
    if (closed || loggingOut || (e && e.code === 'closed')) return; // closing (log out): the 'close' handler says it
    throw e;
  }
  for (const b of document.querySelectorAll('.badge')) {
    const p = pend.has(b.dataset.key);
    b.textContent = p ? 'pending' : 'synced';
    b.className = 'badge ' + (p ? 'pending' : 'synced');
  }
}

db.subscribe(STORE, (changes) => {
  for (const c of changes) { if (c.deleted) todos.delete(c.key); else todos.set(c.key, c.value); }
  render();
});

/** A notice above the list: text, or [text, list of lines] (kept 15 s). */
function notice(kind, text) {
  const n = document.createElement('div');
  n.className = `notice ${kind}`;
  const body = document.createElement('div');
  if (Array.isArray(text)) {
    body.textContent = text[0];
    const ul = document.createElement('ul');
    ul.append(...text[1].map((line) => Object.assign(document.createElement('li'), { textContent: line })));
    body.append(ul);
  } else body.textContent = text;
  n.append(body);
  const x = document.createElement('button');
  x.type = 'button';
  x.textContent = '×';
  x.setAttribute('aria-label', 'Dismiss');
  x.addEventListener('click', () => n.remove());
  n.append(x);
  $('notices').prepend(n);
  setTimeout(() => n.remove(), 15000);
}

db.on('conflict', (c) => {
  const name = (c.local && c.local.title) || (c.remote && c.remote.title) || c.key;
  const how = c.unresolved ? 'left unresolved' : c.resolved === undefined ? 'deleted (a delete wins)' : 'merged';
  notice('conflict', `Conflict on “${name}”: changed here and elsewhere at once — ${how}.`);
});
/** A short quote of a title for a message. */
const quote = (t) => `“${String(t).length > 40 ? `${String(t).slice(0, 40)}…` : t}”`;

db.on('error', (e) => {
  if (e.code === 'network' || e.code === 'timeout') return; // shown by the status pill
  if (e.code === 'unauthorized') {
    notice('error', `The gateway refused ${SUB}'s token (expired, or signed with another secret, e.g. after .run/ was deleted). Run make run again and open the link it prints for ${SUB}.`);
    return;
  }
  if (e.mutation) {
    // The server refused a write for good (e.g. invalid_value: the store's
    // schema): the client has already dropped it and put back the server's
    // state of the key (the item is gone, or shows its old value again).
    const m = e.mutation;
    const what = m.op === 'delete' ? `Deleting ${m.key}` : m.value && m.value.title !== undefined ? `The write of ${quote(m.value.title)}` : `The write of ${m.key}`;
    const why = e.code === 'invalid_value' ? 'the value does not match the store\'s schema' : e.code;
    const lines = (e.errors || []).map((x) => `${x.path || '(the value)'}: ${x.message} (${x.keyword})`);
    notice('error', [`${what} was refused by the server (${why}) and rolled back.`, lines]);
    return;
  }
  notice('error', `${e.code}: ${e.message}`);
});

async function renderStatus(s = db.status) {
  if (closed) return;
  const pill = $('st-online');
  const state = !s.online ? 'offline' : s.connected ? 'live' : 'connecting';
  pill.className = `pill ${state}`;
  pill.querySelector('.txt').textContent = state === 'offline' ? 'offline' : state === 'live' ? 'online · live' : 'reconnecting…';
  $('st-pending').textContent = s.pending ? `${s.pending}${s.oldestPendingMs ? ` (oldest ${Math.round(s.oldestPendingMs / 1000)} s)` : ''}` : '0';
  $('st-pending').className = 'v' + (s.pending ? ' warn' : '');
  $('st-last').textContent = fmtAgo(s.lastSyncAt);
  $('st-leader').textContent = s.leader ? 'syncing' : 'follower';
  let cur;
  try {
    cur = await db.cursor(STORE);
  } catch (e) {
    if (closed || loggingOut || (e && e.code === 'closed')) return; // closing (log out): the 'close' handler says it
    throw e;
  }
  $('st-cursor').textContent = cur || '—';
  $('st-cursor').title = cur ? 'The position of this copy in the changes feed (ZooKeeper zxid, key digest, version)' : '';
  const p = s.progress && s.progress[STORE];
  $('progress').hidden = !p;
  if (p) {
    const pct = p.total ? Math.min(100, Math.round((100 * p.received) / p.total)) : 0;
    $('progress-fill').style.width = `${pct}%`;
    $('progress-txt').textContent = `Initial sync: ${p.received.toLocaleString()}${p.total ? ` of ${p.total.toLocaleString()}` : ''} records`;
  }
  $('offline').checked = !s.online && localStorage.getItem(OFFLINE_KEY) === '1';
  markPending();
}
db.on('status', (s) => renderStatus(s));
let loggingOut = false;
const ticker = setInterval(() => renderStatus(), 1000);

$('offline').addEventListener('change', (e) => {
  const off = e.target.checked;
  localStorage.setItem(OFFLINE_KEY, off ? '1' : '0');
  db.setOffline(off);
});

$('add').addEventListener('submit', async (e) => {
  e.preventDefault();
  const title = $('title').value.trim();
  if (!title) return;
  const key = newKey();
  $('title').value = '';
  try { await db.put(STORE, key, { title, done: false, createdAt: Date.now() }); } catch (err) { notice('error', `${err.code}: ${err.message}`); }
});

// What a buggy or hostile client could send: a title over the schema's 200
// characters (the form's maxlength does not apply here). It shows at once,
// pending; the server answers "rejected" and the client rolls it back.
$('invalid').addEventListener('click', async () => {
  const title = 'This title is far too long for the schema: ' + 'la '.repeat(70).trim() + '.';
  const key = newKey();
  try { await db.put(STORE, key, { title, done: false, createdAt: Date.now() }); } catch (err) { notice('error', `${err.code}: ${err.message}`); }
});

$('clear').addEventListener('click', async () => {
  await db.transaction(async (tx) => {
    for (const [key, t] of todos) if (t.done) await tx.delete(STORE, key);
  });
});

// Log out: every tab of this user stops syncing and this browser's copy is
// deleted (destroy()). With writes not yet pushed it asks first.
$('logout').addEventListener('click', async () => {
  loggingOut = true;
  try {
    try {
      await db.destroy();
    } catch (e) {
      if (e.code !== 'pending') throw e;
      const n = e.details && e.details.pending;
      if (!confirm(`${n} change(s) of ${SUB} have not reached the server yet (offline?). Log out anyway and lose them?`)) return;
      await db.destroy({ force: true });
    }
    forget();
    signedOut(`${SUB} logged out: this browser's copy of the todos is deleted (the server keeps them). Open a link from make run to sign in again.`);
  } catch (e) {
    notice('error', `Log out: ${e.code || ''} ${e.message}`);
  } finally {
    loggingOut = false;
  }
});

// Closed from elsewhere: logged out in another tab (destroy), or the database deleted.
db.on('close', ({ reason }) => {
  closed = true;
  clearInterval(ticker);
  if (loggingOut) return; // this tab's own log out says it
  forget();
  signedOut(reason === 'destroyed'
    ? `${SUB} logged out in another tab: this browser's copy of the todos is deleted. Open a link from make run to sign in again.`
    : `This tab stopped syncing (${reason}). Reload the page.`);
});

render();
renderStatus();
document.body.dataset.ready = '1';
