// Web Crypto for code under test in Node 18, where `globalThis.crypto` does
// not exist (Node 19+ and browsers have it). The browser client calls
// `crypto.getRandomValues` for its client, mutation-group and tx ids; this
// gives it Node's own implementation of the same API. Import it before
// anything that uses the client. A no-op on Node 19+.
import { webcrypto } from 'node:crypto';

if (!globalThis.crypto || typeof globalThis.crypto.getRandomValues !== 'function') {
  Object.defineProperty(globalThis, 'crypto', { value: webcrypto, writable: true, configurable: true, enumerable: false });
}
