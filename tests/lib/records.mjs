// Mutations and push outcomes, the shapes docs/PROTOCOL.md gives them, for
// the integration tests that push (one definition instead of one a file).
//
//   import { put, del, outcomes } from '../lib/records.mjs';
//   await api.pushOk(s, 'c', [put(1, 'k', { title: 'milk' }), del(2, 'old', { base: 3 })]);

/**
 * A put mutation: `{ id, key, op: 'put', value, ...extra }`.
 * @param {number} id mutation id (per client, increasing)
 * @param {string} key record key
 * @param {*} value the JSON value
 * @param {object} [extra] more fields, e.g. `{ base: 2 }` or `{ tx: 't1' }`
 */
export const put = (id, key, value, extra = {}) => ({ id, key, op: 'put', value, ...extra });

/**
 * A delete mutation: `{ id, key, op: 'delete', ...extra }`.
 * @param {number} id mutation id
 * @param {string} key record key
 * @param {object} [extra] more fields, e.g. `{ base: 2 }`
 */
export const del = (id, key, extra = {}) => ({ id, key, op: 'delete', ...extra });

/**
 * The outcome of each mutation of a push answer, in order: its status, and
 * for `rejected` its reason too (`'rejected:quota'`).
 * @param {{ results: Array<{ status: string, reason?: string }> }} r a push answer's JSON
 * @returns {string[]}
 */
export const outcomes = (r) => r.results.map((x) => (x.status === 'rejected' ? `rejected:${x.reason}` : x.status));

/**
 * The live records of a store as a map key -> value, read through its whole
 * change feed (every page) on `api`; deleted keys are left out.
 * @param {import('./http.mjs').Api} api
 * @param {string} s store name
 * @returns {Promise<Map<string, *>>}
 */
export async function liveValues(api, s) {
  const all = await api.changesAll(s, {});
  return new Map(all.changes.filter((c) => !c.deleted).map((c) => [c.key, c.value]));
}
