// Helpers for the client unit tests (Node, fake-indexeddb, real gateways).
import '../lib/webcrypto.mjs'; // Node 18: globalThis.crypto
import 'fake-indexeddb/auto';
import { openSyncDB } from '../../client/zoosync.js';
import { randomBytes } from 'node:crypto';

export { openSyncDB };
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const dbName = (p = 'db') => `${p}-${randomBytes(4).toString('hex')}`;

/** Every database opened by a test, closed in after(). */
export const opened = [];
export async function open(opts) {
  const db = await openSyncDB({ pollMs: 200, checkIntervalMs: 300, backoff: { baseMs: 50, maxMs: 500 }, ...opts });
  opened.push(db);
  return db;
}
export async function closeAll() {
  await Promise.all(opened.splice(0).map((d) => d.close().catch(() => {})));
}

/** Polls fn until it is truthy. */
export async function until(fn, { ms = 5000, every = 30, what = 'condition' } = {}) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`${what}: not reached in ${ms} ms${last ? ` (${last.message})` : ''}`);
    await sleep(every);
  }
}

/**
 * Every row of some object stores of the IndexedDB database `name`, read
 * as they are (no client in between), one store after another.
 * @param {string} name database name
 * @param {string[]} objectStores e.g. ['records', 'meta']
 * @returns {Promise<Object<string, object[]>>} object store name -> rows
 */
export async function rawRows(name, objectStores) {
  const idb = await new Promise((res, rej) => { const r = indexedDB.open(name); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  const all = (s) => new Promise((res, rej) => { const r = idb.transaction(s).objectStore(s).getAll(); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  const out = {};
  for (const s of objectStores) out[s] = await all(s);
  idb.close();
  return out;
}

/** Collects the events of one kind. */
export function collect(db, type) {
  const list = [];
  db.on(type, (e) => list.push(e));
  return list;
}

/**
 * A fetch that records every request and lets a test intercept some:
 *   const f = spyFetch(); f.intercept = async (url, init, real) => ... (return a Response, throw, or undefined to pass)
 */
export function spyFetch() {
  const f = async (url, init = {}) => {
    const u = String(url);
    f.calls.push({ url: u, method: init.method || 'GET', body: init.body, at: Date.now() });
    if (f.intercept) {
      const r = await f.intercept(u, init, (x = u, y = init) => fetch(x, y));
      if (r !== undefined) return r;
    }
    return fetch(u, init);
  };
  f.calls = [];
  f.intercept = null;
  return f;
}

/** A 200 text/event-stream Response whose body is `text` (the stream ends after it). */
export const sseResponse = (text) => new Response(text, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });

/**
 * Makes spyFetch() `f` answer its first /events request with the event
 * stream `text` (sseResponse()), and pass every other request on.
 * @param {Function} f a spyFetch()
 * @param {string} text e.g. 'event: resync\ndata: {"error":"cursor_expired"}\n\n'
 * @returns {{ count: number }} live: how many /events requests f has seen
 */
export function answerFirstEvents(f, text) {
  const events = { count: 0 };
  f.intercept = async (url) => (url.includes('/events') && !events.count++ ? sseResponse(text) : undefined);
  return events;
}

export const jsonResponse = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
