/**
 * Transport helpers shared by the WebSocket server, client and listener: loopback and token checks, safe
 * sends and closes that never throw, listening with clear errors, and mapping of `error` messages from the
 * peer to V4sError.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { isIP } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { ERROR_CODES, V4sError, type V4sErrorCode } from '../errors.js';
import { encodeTextMessage, errorMessage } from './protocol/codec.js';
import { PROTOCOL_LIMITS, PROTOCOL_VERSION, type ErrorMessage, type RequestId, type TextMessage } from './protocol/types.js';

/** True for hosts that only this machine can reach: `localhost`, 127.0.0.0/8, `::1`, `::ffff:127.x.x.x`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  const v = isIP(h);
  if (v === 4) return h.startsWith('127.');
  if (v === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

/**
 * Compares a presented token with the expected one in constant time (SHA-256 digests of both, so the lengths
 * are equal and the comparison time reveals nothing about either). False when `given` is undefined.
 */
export function tokenMatches(expected: string, given: string | undefined): boolean {
  const a = createHash('sha256').update(expected, 'utf8').digest();
  const b = createHash('sha256').update(given ?? '', 'utf8').digest();
  return timingSafeEqual(a, b) && given !== undefined;
}

/** Throws E_CONFIG / E_INSECURE_BIND unless `token` is valid and present whenever `host` is not loopback. */
export function checkBindSecurity(host: string, token: string | undefined, what: string): void {
  if (token !== undefined && (typeof token !== 'string' || token.length === 0 || token.length > 1024)) {
    throw new V4sError('E_CONFIG', `${what}: token must be a non-empty string of at most 1024 characters`);
  }
  if (!isLoopbackHost(host) && token === undefined) {
    throw new V4sError(
      'E_INSECURE_BIND',
      `${what}: refusing to listen on ${host} without a token. Anyone who can reach that address could drive ` +
        'the session. Pass a shared token (v4s sim --token …, or { token }) or bind 127.0.0.1 and use an SSH tunnel.',
      { host },
    );
  }
}

/** Checks an integer option, throwing E_CONFIG naming it. */
export function intOption(value: number | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new V4sError('E_CONFIG', `option ${name} must be an integer in ${min}…${max}, got ${String(value)}`);
  }
  return value;
}

/** Bytes of a `ws` message (Buffer, ArrayBuffer or fragments). */
export function rawBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

/** UTF-8 text of a `ws` text message (ws has already checked it is valid UTF-8). */
export function rawText(data: RawData): string {
  return Buffer.from(rawBytes(data)).toString('utf8');
}

/** Sends if the socket is open; never throws (a failed send shows up as a close). */
export function safeSend(socket: WebSocket, data: string | Uint8Array): boolean {
  if (socket.readyState !== WebSocket.OPEN) return false;
  try {
    socket.send(data, () => undefined);
    return true;
  } catch {
    return false;
  }
}

/** Sends a text message; never throws. */
export function sendText(socket: WebSocket, message: TextMessage): boolean {
  try {
    return safeSend(socket, encodeTextMessage(message));
  } catch {
    return false;
  }
}

/** Sends an `error` message; never throws. */
export function sendError(socket: WebSocket, code: string, message: string, id: RequestId | null = null): boolean {
  return sendText(socket, errorMessage(code, message, id));
}

/** A close reason cut to the 123 bytes RFC 6455 allows. */
function closeReason(reason: string): string {
  let r = reason;
  while (Buffer.byteLength(r, 'utf8') > 123) r = r.slice(0, -1);
  return r;
}

/** Closes with a code and reason; falls back to terminate() if the peer does not finish the close handshake. */
export function safeClose(socket: WebSocket, code: number, reason: string, graceMs = 2000): void {
  try {
    if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
      socket.close(code, closeReason(reason));
    }
  } catch {
    socket.terminate();
    return;
  }
  const timer = setTimeout(() => socket.terminate(), graceMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/** Sends an `error` message, then closes with `closeCode`. */
export function rejectConnection(socket: WebSocket, code: V4sErrorCode, message: string, closeCode: number, id: RequestId | null = null): void {
  sendError(socket, code, message, id);
  safeClose(socket, closeCode, `${code}: ${message}`);
}

/** True for a code this SDK knows (listed in src/errors.ts). */
export function isErrorCode(code: string): code is V4sErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

/** The V4sError for an `error` message received from the peer; unknown codes become E_SIMULATOR. */
export function remoteError(msg: ErrorMessage, prefix: string): V4sError {
  const code: V4sErrorCode = isErrorCode(msg.code) ? msg.code : 'E_SIMULATOR';
  return new V4sError(code, `${prefix}: ${msg.code}: ${msg.message}`, { remoteCode: msg.code, id: msg.id });
}

/** The error of a value caught from a simulator or a codec: V4sError kept, anything else wrapped as `code`. */
export function asV4sError(e: unknown, code: V4sErrorCode, prefix: string): V4sError {
  if (e instanceof V4sError) return e;
  const reason = e instanceof Error ? e.message : String(e);
  return new V4sError(code, `${prefix}: ${reason}`, undefined, { cause: e });
}

/** Token from an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h.trim());
  return m?.[1];
}

/** Where a peer connected from, for messages. */
export function peerAddress(req: IncomingMessage): string {
  const s = req.socket;
  return `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`;
}

/** A URL host part (IPv6 in brackets). */
export function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** Limits on the TCP/HTTP level, before a connection becomes a WebSocket (docs/security.md). */
export interface SocketLimits {
  /**
   * Most TCP connections at once, upgraded or not; beyond it the kernel-accepted socket is destroyed at once.
   * Set above the WebSocket `maxConnections` so a well-behaved extra client still gets E_TOO_MANY_CONNECTIONS.
   */
  readonly maxSockets?: number;
  /** Time a connection has to send complete HTTP upgrade headers (default 10 s); then it is closed. */
  readonly headersTimeoutMs?: number;
}

/** The TCP connection cap for a WebSocket connection limit: room for refusals and closing sockets, still bounded. */
export function socketCap(maxConnections: number): number {
  return 2 * maxConnections + 8;
}

/** Listens with an HTTP server carrying a WebSocketServer; rejects with E_LISTEN naming host and port. */
export async function listenWebSocket(
  host: string,
  port: number,
  maxPayload: number,
  what: string,
  limits: SocketLimits = {},
): Promise<{ http: Server; wss: WebSocketServer; port: number }> {
  // A peer that opens TCP connections and never finishes the upgrade (slowloris) holds neither a slot nor a
  // file descriptor for long: headers must come within headersTimeoutMs, and the sockets are capped.
  const headersTimeout = limits.headersTimeoutMs ?? PROTOCOL_LIMITS.handshakeTimeoutMs;
  const serverOptions = {
    headersTimeout,
    requestTimeout: headersTimeout,
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
  };
  const http = createServer(serverOptions, (_req, res) => {
    // Plain HTTP requests get a short answer instead of hanging until a timeout.
    res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
    res.end(`${what}: a ${PROTOCOL_VERSION} WebSocket endpoint; connect with a WebSocket client.\n`);
  });
  // headersTimeout only starts with the first byte; an idle socket that never speaks is closed by the
  // inactivity timeout instead (ws clears it on upgrade, so open WebSockets are not affected).
  http.timeout = headersTimeout;
  if (limits.maxSockets !== undefined) http.maxConnections = limits.maxSockets;
  const wss = new WebSocketServer({ server: http, maxPayload, perMessageDeflate: false, clientTracking: true });
  wss.on('error', () => undefined); // re-emitted http errors are handled below
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      reject(
        new V4sError('E_LISTEN', `${what}: cannot listen on ${host}:${port} (${e.code ?? e.message})${e.code === 'EADDRINUSE' ? ': the port is in use; pick another with --port, or 0 for a free one' : ''}`, {
          host,
          port,
        }, { cause: e }),
      );
    };
    http.once('error', onError);
    http.listen(port, host, () => {
      http.off('error', onError);
      http.on('error', () => undefined);
      resolve();
    });
  });
  const address = http.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  return { http, wss, port: bound };
}

/** Closes a listening HTTP+WebSocket server after every client socket has been closed with `code`. */
export async function closeWebSocketServer(http: Server, wss: WebSocketServer, code: number, reason: string): Promise<void> {
  const sockets = [...wss.clients];
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.readyState === WebSocket.CLOSED) return resolve();
          s.once('close', () => resolve());
          safeClose(s, code, reason, 1000);
        }),
    ),
  );
  await new Promise<void>((resolve) => wss.close(() => resolve()));
  await new Promise<void>((resolve) => http.close(() => resolve()));
}

/** How a connection ended. */
export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

/** Parses a ws:// or wss:// URL; E_CONFIG otherwise. */
export function checkUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new V4sError('E_CONFIG', `not a URL: ${JSON.stringify(url)} (expected ws://host:port)`);
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new V4sError('E_CONFIG', `${url}: expected a ws:// or wss:// URL`);
  }
  return u.toString();
}

/**
 * Waits for a client socket to open; rejects with E_CONNECT naming the URL, the reason and what to check.
 * On failure the socket is terminated.
 */
export function openSocket(socket: WebSocket, url: string, peerKind: string, hint: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const fail = (reason: string, cause?: unknown): void => {
      cleanup();
      socket.on('error', () => undefined);
      socket.terminate();
      reject(new V4sError('E_CONNECT', `cannot connect to ${peerKind} at ${url}: ${reason}. ${hint}`, { url }, cause === undefined ? undefined : { cause }));
    };
    const onOpen = (): void => {
      cleanup();
      resolve();
    };
    const onError = (e: Error): void => {
      const code = (e as NodeJS.ErrnoException).code;
      fail(code !== undefined ? `${code} (${e.message})` : e.message, e);
    };
    const onResponse = (_req: unknown, res: IncomingMessage): void => {
      fail(`HTTP ${res.statusCode ?? '?'} instead of a WebSocket upgrade (is this a v4s endpoint?)`);
    };
    const cleanup = (): void => {
      socket.off('open', onOpen);
      socket.off('error', onError);
      socket.off('unexpected-response', onResponse);
    };
    socket.on('open', onOpen);
    socket.on('error', onError);
    socket.on('unexpected-response', onResponse);
  });
}
