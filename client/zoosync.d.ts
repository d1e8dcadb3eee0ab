// Types for zoosync.js (the browser client of the zoosync protocol v1, with the Client v1.1 additions).

/** A JSON value, as stored on the server. */
export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

export interface ConflictInfo {
  store: string;
  key: string;
  /** The local value (undefined when the local side deleted the record). */
  local: JSONValue | undefined;
  /** The server's present value (undefined when absent or deleted). */
  remote: JSONValue | undefined;
  localDeleted: boolean;
  remoteDeleted: boolean;
  /** The server's present version (0 when absent). */
  remoteVersion: number;
  /** The mutation that conflicted. */
  mutation: MutationInfo;
  /** 'tx_aborted' for a member of a tx group that failed because of another member. */
  reason?: string;
}

export interface ConflictEvent extends ConflictInfo {
  /** What was written locally (undefined = deleted); absent when unresolved. */
  resolved: JSONValue | undefined;
  /** True when onConflict threw: the conflict is kept in `conflicts()`. */
  unresolved?: boolean;
  error?: string;
}

/** Returns the value to keep (undefined deletes the record). May be async. Throwing leaves the conflict unresolved. */
export type ConflictHandler = (c: ConflictInfo) => JSONValue | undefined | Promise<JSONValue | undefined>;

export interface MutationInfo {
  id: number;
  store: string;
  key: string;
  op: 'put' | 'delete';
  value?: JSONValue;
  tx?: string;
}

export interface PendingMutation extends MutationInfo {
  /** When it was written (ms since the epoch). */
  at: number;
}

export interface Change {
  key: string;
  value: JSONValue | undefined;
  deleted: boolean;
  origin: 'local' | 'remote';
}

export interface Progress {
  /** Records received so far by the initial sync (or resync). */
  received: number;
  /** The store's record count when the sync began (null when unknown). */
  total: number | null;
  done: boolean;
}

export interface ErrorInfo {
  code: string;
  message: string;
  store?: string;
  status?: number;
  mutation?: MutationInfo | MutationInfo[];
  /** A `rejected` push result's validation errors (reason `invalid_value`); [] when the server gave none. */
  errors?: ValidationError[];
  /** A rejected mutation's whole `tx` group (every member is undone). */
  group?: MutationInfo[];
}

/** One validation error of a `rejected` / `invalid_value` result (Protocol v1.1, Schemas). */
export interface ValidationError {
  /** JSON pointer into the value. */
  path: string;
  keyword: string;
  message: string;
}

/** A store to mirror: its name, or {name, prefix} to mirror only the keys starting with prefix (partial replication). */
export type StoreSpec = string | { name: string; prefix?: string };

/**
 * A key range in the server's key order (UTF-8 bytes, which is code-point
 * order): `prefix`, or `start` (inclusive) and `end` (exclusive), or both
 * (their intersection).
 */
export interface RangeQuery {
  prefix?: string;
  start?: string;
  end?: string;
  /** At most this many records (an integer >= 0); for count(), a cap. */
  limit?: number;
  /** From the end of the range (descending key order). */
  reverse?: boolean;
}

export interface CloseEvent {
  /** 'destroyed': destroy() here or in another tab (or the database was deleted); 'versionchange': another connection upgrades it; 'reconfigured': another tab opened it with another prefix for one of this instance's stores (partial replication), and this instance's stores no longer match the database. */
  reason: 'destroyed' | 'versionchange' | 'reconfigured';
}

export interface Status {
  /** The page is online and not paused with setOffline(true). */
  online: boolean;
  /** The leader holds a live event stream (for every store it has reached). */
  connected: boolean;
  /** Mutations waiting to be pushed (the whole database). */
  pending: number;
  /** Age of the oldest pending mutation in ms, null when none. */
  oldestPendingMs: number | null;
  /** When a push, pull or event last succeeded (ms since the epoch). */
  lastSyncAt: number | null;
  /** This tab syncs for the profile. */
  leader: boolean;
  /** Initial sync (or resync) progress per store; null when none runs. */
  progress: Record<string, Progress> | null;
  /** The last error, until a later sync succeeds. */
  error: ErrorInfo | null;
}

export interface SyncDBOptions {
  /** IndexedDB database name. */
  name: string;
  /** One gateway URL or several (failover, in order). Empty: a local-only database. */
  url?: string | string[];
  /** Server stores to mirror locally; {name, prefix} mirrors only the keys starting with prefix. */
  stores: StoreSpec[];
  /** A JWT, or a function returning one; called again (refresh: true) on 401. */
  token?: string | ((o: { refresh: boolean }) => string | Promise<string>);
  /** Default: remote wins. */
  onConflict?: ConflictHandler;
  /** Start paused, as if offline (see setOffline). */
  offline?: boolean;
  /** Records per pull page (1..10000, default 1000). */
  pageSize?: number;
  /** The gateway's keepalive interval (default 15000): a stream silent for twice that is reopened. */
  keepaliveMs?: number;
  /** Timeout of one HTTP request (default 15000). */
  requestTimeoutMs?: number;
  /** Backoff after failures: base and cap in ms (default 250 and 30000), with jitter. */
  backoff?: { baseMs?: number; maxMs?: number };
  /** How often the leader looks for writes of other tabs it was not told about (default 2000). */
  checkIntervalMs?: number;
  /** Poll interval when a gateway has no /events (default 2000). */
  pollMs?: number;
  /** The gateway's --root, for zkPath() and the tx size estimate (default '/zoosync'). */
  root?: string;
  /** The gateway's --max-tx-bytes (default 1000000). */
  maxTxBytes?: number;
  /** Largest push body the client builds (default 1 MiB). */
  maxPushBytes?: number;
  /** Injection points (tests, non-browser hosts). null locks: every instance leads. */
  indexedDB?: IDBFactory;
  fetch?: typeof fetch;
  locks?: LockManager | null;
  /** null: no BroadcastChannel (other tabs then learn only through IndexedDB and versionchange). */
  BroadcastChannel?: typeof BroadcastChannel | null;
}

export interface Transaction {
  put(store: string, key: string, value: JSONValue): Promise<void>;
  delete(store: string, key: string): Promise<void>;
  /** Sees the transaction's own writes. */
  get(store: string, key: string): Promise<JSONValue | undefined>;
}

export interface RecordMeta {
  key: string;
  /** The server version the local state is based on (0: none). */
  version: number;
  /** The feed cursor of that server state. */
  cursor: string | null;
  deleted: boolean;
  /** Pending local mutations of this key. */
  pending: number;
}

export interface UnresolvedConflict {
  store: string;
  key: string;
  local: JSONValue | undefined;
  localDeleted: boolean;
  remote: JSONValue | undefined;
  remoteDeleted: boolean;
  remoteVersion: number;
  at: number;
  error: string;
}

export declare class ZooSyncError extends Error {
  constructor(code: string, message: string, extra?: { status?: number; store?: string; retryAfter?: number; details?: unknown; mutation?: unknown; errors?: ValidationError[]; group?: MutationInfo[] });
  /**
   * The protocol's error code (invalid_key, value_too_large, store_not_found, tx_too_large, forbidden, ...),
   * a `rejected` reason (forbidden, invalid_value, quota_exceeded, tx_aborted),
   * or the client's own: network, timeout, closed, pending, conflict_unresolved.
   */
  code: string;
  status?: number;
  store?: string;
  retryAfter?: number;
  /** e.g. {pending: n} for `timeout` and `pending`. */
  details?: any;
  mutation?: MutationInfo | MutationInfo[];
  errors?: ValidationError[];
  group?: MutationInfo[];
}

export declare class SyncDB {
  readonly name: string;
  readonly stores: string[];
  get(store: string, key: string): Promise<JSONValue | undefined>;
  /** Live records in the server's key order, by IndexedDB key range (never a scan of the whole store). */
  getAll(store: string, range?: RangeQuery): Promise<{ key: string; value: JSONValue }[]>;
  /** How many live records the range holds (one IndexedDB count). */
  count(store: string, range?: RangeQuery): Promise<number>;
  getMeta(store: string, key: string): Promise<RecordMeta | undefined>;
  put(store: string, key: string, value: JSONValue): Promise<void>;
  delete(store: string, key: string): Promise<void>;
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  subscribe(store: string, fn: (changes: Change[]) => void): () => void;
  on(type: 'status', fn: (s: Status) => void): () => void;
  on(type: 'conflict', fn: (c: ConflictEvent) => void): () => void;
  on(type: 'error', fn: (e: ZooSyncError) => void): () => void;
  /** This instance was closed by destroy() (here or in another tab) or by another connection's upgrade. */
  on(type: 'close', fn: (e: CloseEvent) => void): () => void;
  off(type: 'status' | 'conflict' | 'error' | 'close', fn: (...args: any[]) => void): void;
  readonly status: Status;
  clientId(): Promise<string | undefined>;
  cursor(store: string): Promise<string | undefined>;
  pendingMutations(store?: string): Promise<PendingMutation[]>;
  conflicts(store?: string): Promise<UnresolvedConflict[]>;
  resolveConflict(store: string, key: string, value?: JSONValue | undefined): Promise<void>;
  /** Resolves when nothing is pending; with timeoutMs, rejects with code 'timeout' (details.pending) if mutations remain at the deadline. */
  sync(opts?: { timeoutMs?: number }): Promise<void>;
  setOffline(offline: boolean): void;
  close(): Promise<void>;
  /**
   * Log out: every tab of this database stops syncing and closes; then the
   * IndexedDB database is deleted. Rejects with code 'pending' while mutations
   * are queued, unless force.
   */
  destroy(opts?: { force?: boolean }): Promise<void>;
}

export declare function openSyncDB(opts: SyncDBOptions): Promise<SyncDB>;
/** The znode of a record: <root>/stores/<store>/r/<bb>/<name>. */
export declare function zkPath(root: string, store: string, key: string): string;
export declare function checkKey(key: unknown): void;
export declare function toJSONText(value: unknown): string;
export declare function fnv1a64(s: string): bigint;
export declare function utf8Length(s: string): number;
/** Compares keys as the server does (UTF-8 bytes): negative, 0 or positive. */
export declare function compareKeys(a: string, b: string): number;
/** A string whose UTF-16 code-unit order is the UTF-8 byte order of s (the by_order index key). */
export declare function orderKey(s: string): string;
