// zoosync.js: offline-first sync between IndexedDB and Apache ZooKeeper
// through the zoosyncd gateway (protocol v1, with the Client v1.1
// additions). ES modules, no build step: this entry re-exports the public
// API from lib/, which a browser loads as it is.
//
//   import { openSyncDB } from '/client/zoosync.js';
//   const db = await openSyncDB({ name: 'todo-app', url: 'https://gw.example', stores: ['todos'] });
//
// zoosync.d.ts is the contract (the types); README.md explains the choices
// this implementation made and the modules in lib/:
//
//   lib/db.js         the public API: openSyncDB, SyncDB
//   lib/local.js      the local store and change log (IndexedDB)
//   lib/schema.js     the IndexedDB format: object stores, indexes, stored fields
//   lib/sync.js       the leader's sync engine: loops, backoff, wake-ups
//   lib/push.js       push: batches, results, rejected mutations
//   lib/conflicts.js  conflict resolution
//   lib/pull.js       pull and the live event stream
//   lib/http.js       the gateways: requests, token, failover, event-stream framing
//   lib/tabs.js       tabs and leadership
//   lib/protocol.js   keys, values, sizes, key order, znode paths
//   lib/errors.js     ZooSyncError
//   lib/util.js       small helpers

export { openSyncDB, SyncDB } from './lib/db.js';
export { ZooSyncError } from './lib/errors.js';
export { zkPath, checkKey, toJSONText, fnv1a64, utf8Length, compareKeys, orderKey } from './lib/protocol.js';

// Every module, named here too so that a browser finds the whole graph in
// this file and fetches it in one round trip rather than one per level.
import './lib/local.js';
import './lib/schema.js';
import './lib/sync.js';
import './lib/push.js';
import './lib/conflicts.js';
import './lib/pull.js';
import './lib/http.js';
import './lib/tabs.js';
import './lib/util.js';
