// protocol.js: what the protocol says about store names, keys, values and
// sizes (docs/PROTOCOL.md), and the server's key order. No IndexedDB here.

import { ZooSyncError } from './errors.js';

/** A store's maxValueBytes until its description says otherwise. */
export const DEFAULT_MAX_VALUE_BYTES = 65536;
/** A key's longest UTF-8 form. */
export const MAX_KEY_BYTES = 1024;
/** Mutations in one push request, and writes in one `tx` group. */
export const MAX_MUTATIONS_PER_PUSH = 1000;
/** Deepest nesting of a value. */
export const MAX_JSON_DEPTH = 2048;
/** The gateway's per-operation overhead in a ZooKeeper multi (docs/PROTOCOL.md). */
export const PUSH_OP_OVERHEAD = 64;
/** The gateway's --max-tx-bytes default. */
export const DEFAULT_MAX_TX_BYTES = 1000000;
/** The gateway's --root default. */
export const DEFAULT_ROOT = '/zoosync';
/** A valid store name. */
export const STORE_RE = /^[A-Za-z0-9_-]{1,64}$/;

const enc = new TextEncoder();

/** @param {string} s */
export function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++; }
    else n += 3;
  }
  return n;
}

/** @param {string} s @returns {boolean} true when s has an unpaired surrogate */
export function hasLoneSurrogate(s) {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if ((d & 0xfc00) !== 0xdc00) return true;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return true;
  }
  return false;
}

/** Throws the protocol's error for a key that is not valid. @param {unknown} key */
export function checkKey(key) {
  if (typeof key !== 'string') throw new ZooSyncError('bad_request', `key: must be a string, got ${key === null ? 'null' : typeof key}`);
  if (key.length === 0) throw new ZooSyncError('invalid_key', 'key: must not be empty');
  if (key.includes('\u0000')) throw new ZooSyncError('invalid_key', 'key: must not contain U+0000');
  if (hasLoneSurrogate(key)) throw new ZooSyncError('invalid_key', 'key: contains a lone surrogate (not valid UTF-8)');
  if (utf8Length(key) > MAX_KEY_BYTES) throw new ZooSyncError('invalid_key', `key: over ${MAX_KEY_BYTES} UTF-8 bytes`);
}

/**
 * Checks that value is a JSON value and returns its compact serialization
 * (the gateway measures sizes on the same form). Throws `bad_request` for
 * anything JSON cannot carry unchanged.
 * @param {unknown} value
 * @returns {string}
 */
export function toJSONText(value) {
  const seen = new Set();
  /** @param {any} v @param {string} at @param {number} depth */
  const walk = (v, at, depth) => {
    if (depth > MAX_JSON_DEPTH) throw new ZooSyncError('bad_request', `value: nested deeper than ${MAX_JSON_DEPTH} levels`);
    if (v === null || typeof v === 'boolean') return;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new ZooSyncError('bad_request', `value${at}: ${v} is not a JSON number`);
      return;
    }
    if (typeof v === 'string') {
      if (hasLoneSurrogate(v)) throw new ZooSyncError('bad_request', `value${at}: string with a lone surrogate is not valid UTF-8`);
      return;
    }
    if (typeof v !== 'object') throw new ZooSyncError('bad_request', `value${at}: a ${typeof v} is not a JSON value`);
    if (seen.has(v)) throw new ZooSyncError('bad_request', `value${at}: circular reference`);
    seen.add(v);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        if (!(i in v) || v[i] === undefined) throw new ZooSyncError('bad_request', `value${at}[${i}]: undefined is not a JSON value`);
        walk(v[i], `${at}[${i}]`, depth + 1);
      }
    } else {
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        throw new ZooSyncError('bad_request', `value${at}: a ${(v.constructor && v.constructor.name) || 'non-plain object'} is not a JSON value`);
      }
      for (const k of Object.keys(v)) {
        if (k.includes('\u0000') || hasLoneSurrogate(k)) throw new ZooSyncError('bad_request', `value${at}: member name ${JSON.stringify(k)} is not allowed`);
        if (v[k] === undefined) continue; // dropped, as JSON.stringify does
        walk(v[k], `${at}.${k}`, depth + 1);
      }
    }
    seen.delete(v);
  };
  if (value === undefined) throw new ZooSyncError('bad_request', 'value: undefined is not a JSON value (use delete)');
  walk(value, '', 0);
  return JSON.stringify(value);
}

/** 64-bit FNV-1a of the UTF-8 bytes of s, as a BigInt. @param {string} s */
export function fnv1a64(s) {
  let h = 0xcbf29ce484222325n;
  for (const b of enc.encode(s)) { h ^= BigInt(b); h = (h * 0x100000001b3n) & 0xffffffffffffffffn; }
  return h;
}

/** The low 32 bits of fnv1a64(s), without BigInt (a product's low bits depend only on its factors' low bits). @param {string} s */
function fnv1a64Low32(s) {
  let h = 0x84222325;
  for (const b of enc.encode(s)) h = Math.imul(h ^ b, 0x1b3) >>> 0;
  return h;
}

/**
 * The znode that holds a record (docs/PROTOCOL.md, "ZooKeeper layout").
 * @param {string} root e.g. '/zoosync' @param {string} store @param {string} key
 */
export function zkPath(root, store, key) {
  const bb = (fnv1a64Low32(key) & 0xfff).toString(16).padStart(3, '0');
  const dots = key === '.' || key === '..';
  let name = '';
  for (const b of enc.encode(key)) {
    if (dots || b < 0x21 || b > 0x7e || b === 0x2f || b === 0x25) name += '%' + b.toString(16).toUpperCase().padStart(2, '0');
    else name += String.fromCharCode(b);
  }
  return `${root.replace(/\/+$/, '')}/stores/${store}/r/${bb}/${name}`;
}

/**
 * A string whose UTF-16 code-unit order (IndexedDB's) is the code-point order
 * of s, which is the UTF-8 byte order the server uses. The two orders differ
 * only where one string has a surrogate (a character above U+FFFF) and the
 * other a code unit in U+E000..U+FFFF at the first difference: code units
 * U+D800..U+DFFF move up by 0x2000 and U+E000..U+FFFF down by 0x800, so
 * surrogates sort last. A bijection, so it keeps prefixes: k starts with p
 * exactly when orderKey(k) starts with orderKey(p). Identity for keys with no
 * code unit at or above U+D800.
 * @param {string} s
 */
export function orderKey(s) {
  if (!/[\ud800-\uffff]/.test(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += String.fromCharCode(c < 0xd800 ? c : c < 0xe000 ? c + 0x2000 : c - 0x800);
  }
  return out;
}

/** The least string greater (in code-unit order) than every string that starts with p; null when none. @param {string} p */
export function prefixEnd(p) {
  let i = p.length;
  while (i > 0 && p.charCodeAt(i - 1) === 0xffff) i--;
  if (i === 0) return null;
  return p.slice(0, i - 1) + String.fromCharCode(p.charCodeAt(i - 1) + 1);
}

/** Compares two keys as the server does (UTF-8 bytes, that is code points). @param {string} a @param {string} b */
export function compareKeys(a, b) {
  const x = orderKey(a), y = orderKey(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Throws unless p is a valid key prefix (partial replication).
 * @param {string} store @param {unknown} p
 */
export function checkPrefix(store, p) {
  if (typeof p !== 'string' || p === '') throw new ZooSyncError('bad_request', `stores: ${store}: prefix must be a non-empty string`);
  if (p.includes('\u0000') || hasLoneSurrogate(p) || utf8Length(p) > MAX_KEY_BYTES) throw new ZooSyncError('invalid_key', `stores: ${store}: prefix is not a valid key prefix`);
}

/**
 * The gateway's estimate of a `tx` group's size in one ZooKeeper multi:
 * `64 + znode path + value` per write. With `limit`, a figure over the exact
 * one may be returned as long as it is within limit (only the comparison matters then).
 * @param {string} root @param {{store: string, key: string, text?: string}[]} ops @param {number} [limit]
 * @returns {number}
 */
export function txBytes(root, ops, limit = Infinity) {
  // An upper bound first, from lengths alone: a UTF-16 unit is at most 3
  // UTF-8 bytes, and the znode name escapes a byte as at most 3 (%XX). When
  // even that fits, the exact figure (a hash and an encoding per key) is
  // not needed.
  if (limit !== Infinity) {
    const dir = root.length + 16; // '/stores/' + '/r/' + 3 hex digits + '/'
    let hi = 0;
    for (const o of ops) hi += PUSH_OP_OVERHEAD + dir + 3 * o.store.length + 9 * o.key.length + (o.text ? 3 * o.text.length : 0);
    if (hi <= limit) return hi;
  }
  let bytes = 0;
  for (const o of ops) bytes += PUSH_OP_OVERHEAD + utf8Length(zkPath(root, o.store, o.key)) + (o.text ? utf8Length(o.text) : 0);
  return bytes;
}
