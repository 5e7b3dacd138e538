/**
 * The agent listens, a simulator dials in: the direction Unity scenes and robots behind NAT use. Roles do not
 * change: the simulator that dials still sends `hello` first (with the token), and the agent answers
 * `welcome` or `error`. Each completed handshake yields a `WsEnvironment` through `accept()`.
 *
 * Usage:
 *   const listener = await listenForSimulator({ port: 8766, token: process.env.V4S_TOKEN });
 *   const env = await listener.accept();            // waits for a simulator to dial in
 *   await env.reset({ seed: 1 });
 *   await listener.close();
 */
import type { IncomingMessage, Server } from 'node:http';
import type { WebSocket, WebSocketServer } from 'ws';
import { V4sError } from '../errors.js';
import { CLOSE_CODES, IMAGE_ENCODINGS, PROTOCOL_LIMITS } from './protocol/types.js';
import { WsEnvironment, type AgentSessionOptions } from './ws-client.js';
import {
  checkBindSecurity,
  closeWebSocketServer,
  intOption,
  listenWebSocket,
  peerAddress,
  rejectConnection,
  socketCap,
  urlHost,
} from './ws-common.js';

/** Default port an agent listens on for simulators that dial in. */
export const DEFAULT_AGENT_PORT = 8766;

/** Options of listenForSimulator. */
export interface ListenOptions extends AgentSessionOptions {
  /** TCP port (default 8766; 0 picks a free one, see `listener.port`). */
  readonly port?: number;
  /** Interface to bind (default 127.0.0.1). Anything but loopback requires `token`. */
  readonly host?: string;
  /** Shared token a dialing simulator must send in `hello` (compared in constant time). */
  readonly token?: string;
  /** Simultaneous connections, handshaking or accepted (default 16); more get E_TOO_MANY_CONNECTIONS, close 1013. */
  readonly maxConnections?: number;
}

interface Waiter {
  readonly resolve: (env: WsEnvironment) => void;
  readonly reject: (e: V4sError) => void;
  timer?: NodeJS.Timeout;
}

/** A listening agent endpoint. Get simulators that dialed in with `accept()`. */
export class SimulatorListener {
  readonly host: string;
  readonly port: number;
  /** `ws://host:port`, what a simulator's dialAgent (or a Unity/robot bridge) connects to. */
  readonly url: string;
  #http: Server;
  #wss: WebSocketServer;
  #ready: WsEnvironment[] = [];
  #waiters: Waiter[] = [];
  #active = new Set<WebSocket>();
  #closing: Promise<void> | undefined;
  #rejected = 0;
  #lastRejection: V4sError | undefined;

  private constructor(host: string, port: number, http: Server, wss: WebSocketServer) {
    this.host = host;
    this.port = port;
    this.url = `ws://${urlHost(host)}:${port}`;
    this.#http = http;
    this.#wss = wss;
  }

  /** @internal Use listenForSimulator. */
  static async start(options: ListenOptions = {}): Promise<SimulatorListener> {
    const host = options.host ?? '127.0.0.1';
    checkBindSecurity(host, options.token, 'listenForSimulator');
    const port = intOption(options.port, 'port', 0, 65535, DEFAULT_AGENT_PORT);
    const maxConnections = intOption(options.maxConnections, 'maxConnections', 1, 10_000, PROTOCOL_LIMITS.maxConnections);
    const maxPayload = intOption(options.maxPayload, 'maxPayload', PROTOCOL_LIMITS.minAgentMaxPayload, 2 ** 32, PROTOCOL_LIMITS.agentMaxPayload);
    // Checked now so that a bad option fails here, not on every connection.
    intOption(options.requestTimeoutMs, 'requestTimeoutMs', 1, 86_400_000, PROTOCOL_LIMITS.requestTimeoutMs);
    const handshakeTimeoutMs = intOption(options.handshakeTimeoutMs, 'handshakeTimeoutMs', 1, 600_000, PROTOCOL_LIMITS.handshakeTimeoutMs);
    if (options.encoding !== undefined && !IMAGE_ENCODINGS.includes(options.encoding)) {
      throw new V4sError('E_CONFIG', `option encoding must be one of ${IMAGE_ENCODINGS.join(', ')}`);
    }
    const { http, wss, port: bound } = await listenWebSocket(host, port, maxPayload, 'listenForSimulator', {
      maxSockets: socketCap(maxConnections),
      headersTimeoutMs: handshakeTimeoutMs,
    });
    const listener = new SimulatorListener(host, bound, http, wss);
    wss.on('connection', (socket: WebSocket, req: IncomingMessage) => {
      try {
        listener.#onConnection(socket, req, options, maxConnections, maxPayload);
      } catch (e) {
        rejectConnection(socket, 'E_CONFIG', e instanceof Error ? e.message : String(e), CLOSE_CODES.internalError);
      }
    });
    return listener;
  }

  /** Connections dropped during the handshake (wrong token, bad hello, timeout…). */
  get rejectedCount(): number {
    return this.#rejected;
  }

  /** Why the last handshake failed, if one did. */
  get lastRejection(): V4sError | undefined {
    return this.#lastRejection;
  }

  /** Open connections (handshaking or accepted). */
  get connectionCount(): number {
    return this.#active.size;
  }

  #onConnection(socket: WebSocket, req: IncomingMessage, options: ListenOptions, maxConnections: number, maxPayload: number): void {
    socket.on('error', () => undefined);
    if (this.#closing !== undefined) {
      rejectConnection(socket, 'E_CLOSED', 'the agent is no longer listening', CLOSE_CODES.goingAway);
      return;
    }
    if (this.#active.size >= maxConnections) {
      rejectConnection(socket, 'E_TOO_MANY_CONNECTIONS', `the agent accepts ${maxConnections} connections; try again later`, CLOSE_CODES.tryAgainLater);
      return;
    }
    this.#active.add(socket);
    socket.once('close', () => this.#active.delete(socket));
    const peer = `simulator ${peerAddress(req)} (dialed in to ${this.url})`;
    WsEnvironment.fromSocket(socket, {
      ...options,
      maxPayload,
      peer,
      ...(options.token !== undefined && { expectedToken: options.token }),
    }).then(
      (env) => this.#deliver(env),
      (e: unknown) => {
        this.#rejected++;
        this.#lastRejection = e instanceof V4sError ? e : new V4sError('E_PROTOCOL_FIELD', String(e));
      },
    );
  }

  #deliver(env: WsEnvironment): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      clearTimeout(waiter.timer);
      waiter.resolve(env);
      return;
    }
    this.#ready.push(env);
    // A simulator that hangs up before anyone accepted it is forgotten.
    void env.closed.then(() => {
      const i = this.#ready.indexOf(env);
      if (i >= 0) this.#ready.splice(i, 1);
    });
  }

  /**
   * The next simulator that dialed in and completed the handshake (in arrival order). Waits for one, up to
   * `timeoutMs` when given (then E_TIMEOUT). Rejects with E_CLOSED once the listener is closed.
   */
  accept(options: { readonly timeoutMs?: number } = {}): Promise<WsEnvironment> {
    if (this.#closing !== undefined) return Promise.reject(new V4sError('E_CLOSED', `accept: the listener on ${this.url} is closed`));
    const env = this.#ready.shift();
    if (env !== undefined) return Promise.resolve(env);
    return new Promise<WsEnvironment>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      if (options.timeoutMs !== undefined) {
        const ms = intOption(options.timeoutMs, 'timeoutMs', 1, 86_400_000, 0);
        waiter.timer = setTimeout(() => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(new V4sError('E_TIMEOUT', `accept: no simulator dialed in to ${this.url} within ${ms} ms`));
        }, ms);
      }
      this.#waiters.push(waiter);
    });
  }

  /** Stops listening, rejects waiting accept() calls with E_CLOSED and closes every connection (1001). Idempotent. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      for (const w of this.#waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new V4sError('E_CLOSED', `accept: the listener on ${this.url} was closed`));
      }
      this.#ready = [];
      this.#closing = closeWebSocketServer(this.#http, this.#wss, CLOSE_CODES.goingAway, 'agent stopped listening');
    }
    return this.#closing;
  }
}

/**
 * Listens for simulators that dial in (Unity, robots behind NAT, `dialAgent`). Binds 127.0.0.1 by default;
 * another host requires `token` (else E_INSECURE_BIND). Rejects with E_LISTEN when the port is taken.
 */
export function listenForSimulator(options: ListenOptions = {}): Promise<SimulatorListener> {
  return SimulatorListener.start(options);
}
