// The zoosync demo: an offline-first todo list on zoosync.js.
import { openSyncDB, zkPath } from '/client/zoosync.js';

const params = new URLSearchParams(location.search);
const STORE = params.get('store') || 'todos';
const ROOT = params.get('root') || '/zoosync';
const $ = (id) => document.getElementById(id);

/** Conflicts: a deletion wins; otherwise keep the local title and "done" if either side finished it. */
function onConflict({ local, remote, localDeleted, remoteDeleted }) {
  if (localDeleted || remoteDeleted) return undefined;
  return { ...remote, ...local, done: !!(local.done || remote.done) };
}

const db = await openSyncDB({
  name: `zoosync-demo-${STORE}`,
  url: location.origin,
  stores: [STORE],
  root: ROOT,
  onConflict,
  offline: localStorage.getItem('zoosync-demo-offline') === '1',
});
window.zoosyncDemo = db; // for the curious (and the tests)

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

async function markPending() {
  const pend = new Set((await db.pendingMutations(STORE)).map((m) => m.key));
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
  const pill = $('st-online');
  const state = !s.online ? 'offline' : s.connected ? 'live' : 'connecting';
  pill.className = `pill ${state}`;
  pill.querySelector('.txt').textContent = state === 'offline' ? 'offline' : state === 'live' ? 'online · live' : 'reconnecting…';
  $('st-pending').textContent = s.pending ? `${s.pending}${s.oldestPendingMs ? ` (oldest ${Math.round(s.oldestPendingMs / 1000)} s)` : ''}` : '0';
  $('st-pending').className = 'v' + (s.pending ? ' warn' : '');
  $('st-last').textContent = fmtAgo(s.lastSyncAt);
  $('st-leader').textContent = s.leader ? 'syncing' : 'follower';
  const cur = await db.cursor(STORE);
  $('st-cursor').textContent = cur || '—';
  $('st-cursor').title = cur ? 'The position of this copy in the changes feed (ZooKeeper zxid, key digest, version)' : '';
  const p = s.progress && s.progress[STORE];
  $('progress').hidden = !p;
  if (p) {
    const pct = p.total ? Math.min(100, Math.round((100 * p.received) / p.total)) : 0;
    $('progress-fill').style.width = `${pct}%`;
    $('progress-txt').textContent = `Initial sync: ${p.received.toLocaleString()}${p.total ? ` of ${p.total.toLocaleString()}` : ''} records`;
  }
  $('offline').checked = !s.online && localStorage.getItem('zoosync-demo-offline') === '1';
  markPending();
}
db.on('status', (s) => renderStatus(s));
setInterval(() => renderStatus(), 1000);

$('offline').addEventListener('change', (e) => {
  const off = e.target.checked;
  localStorage.setItem('zoosync-demo-offline', off ? '1' : '0');
  db.setOffline(off);
});

$('add').addEventListener('submit', async (e) => {
  e.preventDefault();
  const title = $('title').value.trim();
  if (!title) return;
  const key = `todo:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  $('title').value = '';
  try { await db.put(STORE, key, { title, done: false, createdAt: Date.now() }); } catch (err) { notice('error', `${err.code}: ${err.message}`); }
});

// What a buggy or hostile client could send: a title over the schema's 200
// characters (the form's maxlength does not apply here). It shows at once,
// pending; the server answers "rejected" and the client rolls it back.
$('invalid').addEventListener('click', async () => {
  const title = 'This title is far too long for the schema: ' + 'la '.repeat(70).trim() + '.';
  const key = `todo:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  try { await db.put(STORE, key, { title, done: false, createdAt: Date.now() }); } catch (err) { notice('error', `${err.code}: ${err.message}`); }
});

$('clear').addEventListener('click', async () => {
  await db.transaction(async (tx) => {
    for (const [key, t] of todos) if (t.done) await tx.delete(STORE, key);
  });
});

render();
renderStatus();
document.body.dataset.ready = '1';
