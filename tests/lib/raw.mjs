// Raw HTTP/1.1 over node:net, for requests node:http refuses to send
// (duplicate or conflicting framing headers, no Host, raw bytes in the
// target) and to see whether the server closes the connection.
import net from 'node:net';

/**
 * rawExchange(port, bytes, { timeout, host })
 * Writes bytes (string or Buffer) and reads until the server closes or
 * `timeout` ms pass. Resolves { data (Buffer), text, status, headers, body,
 * closed (the server closed within the timeout), ms }.
 * status/headers/body describe the FIRST response in data (0/{}/'' if none).
 */
export function rawExchange(port, bytes, { timeout = 5000, host = '127.0.0.1' } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const chunks = [];
    let closed = false;
    let done = false;
    const sock = net.connect({ port, host });
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const data = Buffer.concat(chunks);
      resolve({ data, ...parseFirst(data), closed, ms: Date.now() - t0 });
    };
    const timer = setTimeout(finish, timeout);
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (d) => chunks.push(d));
    sock.on('end', () => { closed = true; finish(); });
    sock.on('close', () => { closed = true; finish(); });
    sock.on('error', () => { closed = true; finish(); });
  });
}

/** Parses the first response in data: { text, status, headers, body (Buffer) }. */
export function parseFirst(data) {
  const text = data.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return { text, status: 0, headers: {}, body: Buffer.alloc(0) };
  const lines = text.slice(0, end).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = data.subarray(end + 4);
  if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']));
  return { text, status: m ? Number(m[1]) : 0, headers, body };
}

/** Is buf valid UTF-8? */
export function isUtf8(buf) {
  try { new TextDecoder('utf-8', { fatal: true }).decode(buf); return true; } catch { return false; }
}

/**
 * holdSocket(port, bytes, { host, localAddress })
 * Opens a connection, writes bytes (if any) and keeps it open. Returns
 * { sock, connected (promise), data (Buffer so far), closed, closedAt,
 *   error, response() (the first response parsed from data), write(b),
 *   destroy() }. Nothing is read away: every byte received is kept.
 */
export function holdSocket(port, bytes, { host = '127.0.0.1', localAddress } = {}) {
  const h = { chunks: [], closed: false, closedAt: 0, error: null, openedAt: Date.now() };
  const sock = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) });
  h.sock = sock;
  h.connected = new Promise((resolve) => {
    sock.on('connect', () => { if (bytes && bytes.length) sock.write(bytes); resolve(true); });
    sock.on('error', () => resolve(false));
  });
  sock.on('data', (d) => h.chunks.push(d));
  sock.on('error', (e) => { h.error = h.error || e.code || e.message; });
  sock.on('close', () => { h.closed = true; h.closedAt = Date.now(); });
  Object.defineProperty(h, 'data', { get: () => Buffer.concat(h.chunks) });
  h.response = () => parseFirst(Buffer.concat(h.chunks));
  h.write = (b) => new Promise((resolve) => { if (h.closed) { resolve(false); return; } sock.write(b, (e) => resolve(!e)); });
  h.destroy = () => sock.destroy();
  return h;
}
