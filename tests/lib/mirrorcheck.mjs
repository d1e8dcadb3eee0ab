// Mirror self-check: what a gateway's feed says about a store against a full
// read of that store's znodes in ZooKeeper (tests/lib/zkraw.mjs, after a
// `sync`). Meant for a quiet store (no writer running): the feed is
// linearizable, so any difference then is a gateway bug, not a race.
//
//   import { zkReadStore, mirrorCheck } from '../lib/mirrorcheck.mjs';
//   const zk = await zkReadStore('10.0.0.11:2181,...', root, store);
//   // zk.records: Map key -> { key, value | deleted, version, mzxid (hex16), czxid }
//   // zk.clients: Map clientId -> { last, conflicts, aborted }
//   const r = await mirrorCheck({ url: gw.url, token, zk: connect, root, store });
//   // r.ok; r.diffs: ['key k: in ZooKeeper (version 3), missing from the feed', ...]
//
// Compared, for every record znode under <root>/stores/<store>/r/<bbb>/:
//  - the snapshot feed (GET /changes without `since`, every page) holds
//    exactly the live records (non-empty data), each with ZooKeeper's value,
//    version (stat.version + 1) and a cursor whose zxid is the znode's mzxid;
//  - the feed from cursor 0 (when the horizon allows it: else 410 and this
//    part is skipped) also reports every tombstone (empty data) as
//    deleted, with its version and mzxid.
// A foreign hard delete has no znode left, so it cannot be compared (the
// feed may report it; it is not counted as a difference).
import { zkConnect } from './zkraw.mjs';
import { request } from './http.mjs';

const ZERO = '0'.repeat(40);

/** The key of a canonical record znode name (%XX escapes), or null when not canonical. */
export function keyOfName(name) {
  if (name === '%2E') return '.';
  if (name === '%2E%2E') return '..';
  try {
    const bytes = [];
    for (let i = 0; i < name.length; i++) {
      if (name[i] === '%') { bytes.push(parseInt(name.slice(i + 1, i + 3), 16)); i += 2; } else bytes.push(name.charCodeAt(i));
    }
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch { return null; }
}

const hex16 = (z) => BigInt.asUintN(64, z).toString(16).padStart(16, '0');

async function connectAny(connect, auth, timeoutMs = 5000) {
  let last;
  for (const hp of connect.split(',')) {
    try {
      let t;
      const zk = await Promise.race([zkConnect(hp, { auth }),
        new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`zkraw: connect ${hp} timed out`)), timeoutMs); })]).finally(() => clearTimeout(t));
      return zk;
    } catch (e) { last = e; }
  }
  throw new Error(`mirrorcheck: no ZooKeeper server of ${connect} answered: ${last && last.message}`);
}

/** A full read of one store's records and client nodes, after a sync. */
export async function zkReadStore(connect, root, store, { auth } = {}) {
  const zk = await connectAny(connect, auth);
  try {
    const base = `${root}/stores/${store}`;
    const s = await zk.sync(base);
    if (s.err) throw new Error(`sync ${base}: ${s.err}`);
    const cfg = await zk.get(base);
    if (cfg.err) throw new Error(`get ${base}: err ${cfg.err}`);
    const records = new Map();
    const buckets = await zk.children(`${base}/r`);
    if (buckets.err) throw new Error(`children ${base}/r: err ${buckets.err}`);
    const lists = await Promise.all(buckets.children.map((b) => zk.children(`${base}/r/${b}`).then((r) => ({ b, r }))));
    const reads = [];
    for (const { b, r } of lists) {
      if (r.err) continue;   // a bucket gone meanwhile (store deleted)
      for (const name of r.children) reads.push(zk.get(`${base}/r/${b}/${name}`).then((g) => ({ name, g })));
    }
    for (const { name, g } of await Promise.all(reads)) {
      if (g.err) continue;
      const key = keyOfName(name);
      if (key === null) continue;
      const rec = { key, version: g.stat.version + 1, mzxid: hex16(g.stat.mzxid), czxid: hex16(g.stat.czxid) };
      if (!g.data) rec.deleted = true;
      else { try { rec.value = JSON.parse(g.data); } catch { rec.foreign = true; rec.deleted = true; } }
      records.set(key, rec);
    }
    const clients = new Map();
    const cb = await zk.children(`${base}/c`);
    if (!cb.err) {
      const cl = await Promise.all(cb.children.map((b) => zk.children(`${base}/c/${b}`).then((r) => ({ b, r }))));
      const cr = [];
      for (const { b, r } of cl) if (!r.err) for (const n of r.children) cr.push(zk.get(`${base}/c/${b}/${n}`).then((g) => ({ n, g })));
      for (const { n, g } of await Promise.all(cr)) {
        if (g.err || !g.data) continue;
        try { clients.set(keyOfName(n) ?? n, JSON.parse(g.data)); } catch { /* not ours */ }
      }
    }
    return { config: JSON.parse(cfg.data), czxid: hex16(cfg.stat.czxid), records, clients };
  } finally {
    zk.close();
  }
}

/** Every page of GET /changes (since: undefined = the snapshot). { status, changes } (status 410 etc. when refused). */
export async function readFeed(url, store, { since, token, limit = 1000, timeout = 15000 } = {}) {
  const all = [];
  let cur = since;
  for (let i = 0; i < 100000; i++) {
    const q = [`limit=${limit}`];
    if (cur !== undefined) q.push(`since=${cur}`);
    const r = await request(url, 'GET', `/v1/stores/${store}/changes?${q.join('&')}`, { token, timeout });
    if (r.status !== 200) return { status: r.status, text: r.text, changes: all };
    all.push(...r.json.changes);
    cur = r.json.cursor;
    if (!r.json.more) return { status: 200, changes: all, cursor: cur };
  }
  throw new Error('readFeed: too many pages');
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function compare(feedSnap, feedAll, zkRec) {
  const diffs = [];
  const snap = new Map();
  for (const c of feedSnap) {
    if (snap.has(c.key)) diffs.push(`key ${JSON.stringify(c.key)}: twice in the snapshot feed`);
    snap.set(c.key, c);
  }
  for (const z of zkRec.values()) {
    if (z.deleted) {
      const c = snap.get(z.key);
      if (c) diffs.push(`key ${JSON.stringify(z.key)}: a tombstone in ZooKeeper (version ${z.version}), live in the snapshot feed (version ${c.version})`);
      continue;
    }
    const c = snap.get(z.key);
    if (!c) { diffs.push(`key ${JSON.stringify(z.key)}: in ZooKeeper (version ${z.version}, mzxid ${z.mzxid}), MISSING from the snapshot feed`); continue; }
    if (c.version !== z.version) diffs.push(`key ${JSON.stringify(z.key)}: version ${c.version} in the feed, ${z.version} in ZooKeeper`);
    if (!same(c.value, z.value)) diffs.push(`key ${JSON.stringify(z.key)}: value ${JSON.stringify(c.value).slice(0, 100)} in the feed, ${JSON.stringify(z.value).slice(0, 100)} in ZooKeeper`);
    if (c.cursor.slice(0, 16) !== z.mzxid) diffs.push(`key ${JSON.stringify(z.key)}: cursor ${c.cursor} in the feed, mzxid ${z.mzxid} in ZooKeeper`);
  }
  for (const c of snap.values()) {
    const z = zkRec.get(c.key);
    if (!z) diffs.push(`key ${JSON.stringify(c.key)}: in the snapshot feed (version ${c.version}), no znode in ZooKeeper`);
  }
  if (feedAll) {
    const all = new Map(feedAll.map((c) => [c.key, c]));
    for (const z of zkRec.values()) {
      const c = all.get(z.key);
      if (!c) { diffs.push(`key ${JSON.stringify(z.key)}: in ZooKeeper (${z.deleted ? 'tombstone' : 'live'}, version ${z.version}), MISSING from the feed since 0`); continue; }
      if (!!c.deleted !== !!z.deleted || c.version !== z.version) diffs.push(`key ${JSON.stringify(z.key)}: feed since 0 says ${c.deleted ? 'deleted' : 'live'} v${c.version}, ZooKeeper ${z.deleted ? 'tombstone' : 'live'} v${z.version}`);
    }
    for (const c of all.values()) {
      if (!zkRec.has(c.key) && !c.deleted) diffs.push(`key ${JSON.stringify(c.key)}: live in the feed since 0, no znode in ZooKeeper`);
    }
  }
  return diffs;
}

/**
 * Compares one gateway's feed of `store` with ZooKeeper. When they differ,
 * both are read again after settleMs: r.persistent lists the differences
 * seen both times (a mirror bug), r.transient those that went away.
 * Resolves { ok, diffs, persistent, transient, zkRecords, feedRecords, skippedSince0 }.
 */
export async function mirrorCheck({ url, token, zk, zkAuth, root, store, settleMs = 1500 }) {
  const once = async () => {
    const snap = await readFeed(url, store, { token });
    if (snap.status !== 200) throw new Error(`mirrorcheck: GET /changes on ${url}: ${snap.status} ${snap.text}`);
    const all = await readFeed(url, store, { token, since: ZERO });
    if (all.status !== 200 && all.status !== 410) throw new Error(`mirrorcheck: GET /changes?since=0 on ${url}: ${all.status} ${all.text}`);
    const z = await zkReadStore(zk, root, store, { auth: zkAuth });
    // The feed was read before ZooKeeper: a quiet store has the same state in both.
    return { snap: snap.changes, all: all.status === 200 ? all.changes : null, z, diffs: compare(snap.changes, all.status === 200 ? all.changes : null, z.records) };
  };
  const first = await once();
  let persistent = first.diffs, trans = [];
  if (first.diffs.length) {
    await new Promise((r) => setTimeout(r, settleMs));
    const second = await once();
    persistent = first.diffs.filter((d) => second.diffs.includes(d));
    trans = first.diffs.filter((d) => !second.diffs.includes(d));
  }
  return {
    ok: first.diffs.length === 0, diffs: first.diffs, persistent, transient: trans,
    zkRecords: first.z.records.size, feedRecords: first.snap.length, skippedSince0: first.all === null,
    zk: first.z,
  };
}

/** A message for a failed check: the store, the gateway, the differences (the first 20). */
export function describeMismatch(r, { url, store, log } = {}) {
  return `MIRROR DISAGREES WITH ZOOKEEPER: store ${store} on ${url}${log ? ` (gateway log ${log})` : ''}: ` +
    `${r.diffs.length} differences (${r.persistent.length} persistent after a second read), ` +
    `${r.zkRecords} znodes vs ${r.feedRecords} records in the snapshot feed:\n  ${r.diffs.slice(0, 20).join('\n  ')}`;
}
