/**
 * The simulator side of v4s.sim.v1: `SimulatorServer` exposes any in-process `Simulator` over WebSocket (the
 * agent dials in; `v4s sim`), and `dialAgent` connects a simulator to an agent that listens (the reverse
 * direction, as Unity and robots do). Both run a `SimulatorConnection` per socket: it sends `hello`, waits for
 * `welcome`, then answers `reset`/`step`/`oracle` one at a time in arrival order. Nothing thrown by the
 * simulator or caused by the peer's bytes escapes a socket handler: it becomes an `error` reply or a close.
 *
 * Usage:
 *   const server = await SimulatorServer.start(() => new BuiltinSimulator(), { port: 8765 });
 *   // … later
 *   await server.close();
 */
import type { IncomingMessage, Server } from 'node:http';
import { WebSocket, type RawData, type WebSocketServer } from 'ws';
import { V4sError } from '../errors.js';
import type { Action } from '../types.js';
import type { Capabilities, ImageEncoding, Simulator } from './environment.js';
import { decodeAgentMessage, decodeCapabilities } from './protocol/codec.js';
import { encodeObservationMessage, encodeOracleMessage, type FrameEncoding, type ObservationContent } from './protocol/convert.js';
import {
  CLOSE_CODES,
  IMAGE_ENCODINGS,
  PROTOCOL_LIMITS,
  PROTOCOL_VERSION,
  TASK_NAMES,
  type AgentTextMessage,
  type OracleRequestMessage,
  type RequestId,
  type ResetMessage,
  type StepMessage,
} from './protocol/types.js';
import {
  asV4sError,
  bearerToken,
  type CloseInfo,
  checkBindSecurity,
  checkUrl,
  closeWebSocketServer,
  intOption,
  listenWebSocket,
  openSocket,
  peerAddress,
  rawBytes,
  rawText,
  rejectConnection,
  remoteError,
  safeClose,
  safeSend,
  sendError,
  sendText,
  socketCap,
  tokenMatches,
  urlHost,
} from './ws-common.js';

/** Options of one simulator-side connection (shared by SimulatorServer and dialAgent). */
export interface SimulatorSessionOptions {
  /** Serve the `oracle` op (default false). Also needs a simulator that implements `oracle`. */
  readonly oracle?: boolean;
  /** Encoding used unless the agent asks for another in `welcome` (default `raw`). */
  readonly encoding?: ImageEncoding;
  /** Encodings offered in `hello` (default all three). `encoding` is put first. */
  readonly encodings?: readonly ImageEncoding[];
  /** JPEG quality 1…100 (default 90). */
  readonly jpegQuality?: number;
  /** PNG zlib level 0…9 (default 6). */
  readonly pngCompressionLevel?: number;
  /** Time the agent has to answer `hello` with `welcome` (default 10 s); then error E_TIMEOUT and close 1008. */
  readonly handshakeTimeoutMs?: number;
  /**
   * Stream mode: a pushed frame is dropped at the source, not queued, while more than this many bytes wait
   * unsent in the socket (default 1 MiB). A camera that outruns the link then costs no memory and no
   * latency for the replies to `step`; see docs/reliability.md.
   */
  readonly pushHighWaterMarkBytes?: number;
}

/** Default `pushHighWaterMarkBytes`: 1 MiB unsent before pushed frames are dropped at the source. */
export const DEFAULT_PUSH_HIGH_WATER_MARK = 1024 * 1024;

interface ResolvedSessionOptions {
  readonly oracle: boolean;
  readonly encoding: ImageEncoding;
  readonly encodings: readonly ImageEncoding[];
  readonly jpegQuality: number;
  readonly pngCompressionLevel: number;
  readonly handshakeTimeoutMs: number;
  readonly pushHighWaterMarkBytes: number;
}

function resolveSessionOptions(o: SimulatorSessionOptions): ResolvedSessionOptions {
  const encoding = o.encoding ?? 'raw';
  if (!IMAGE_ENCODINGS.includes(encoding)) throw new V4sError('E_CONFIG', `option encoding must be one of ${IMAGE_ENCODINGS.join(', ')}`);
  const offered = o.encodings ?? IMAGE_ENCODINGS;
  for (const e of offered) {
    if (!IMAGE_ENCODINGS.includes(e)) throw new V4sError('E_CONFIG', `option encodings: unknown encoding ${JSON.stringify(e)}`);
  }
  return {
    oracle: o.oracle === true,
    encoding,
    encodings: [encoding, ...offered.filter((e) => e !== encoding)],
    jpegQuality: intOption(o.jpegQuality, 'jpegQuality', 1, 100, 90),
    pngCompressionLevel: intOption(o.pngCompressionLevel, 'pngCompressionLevel', 0, 9, 6),
    handshakeTimeoutMs: intOption(o.handshakeTimeoutMs, 'handshakeTimeoutMs', 1, 600_000, PROTOCOL_LIMITS.handshakeTimeoutMs),
    pushHighWaterMarkBytes: intOption(o.pushHighWaterMarkBytes, 'pushHighWaterMarkBytes', 0, PROTOCOL_LIMITS.maxBufferedBytes, DEFAULT_PUSH_HIGH_WATER_MARK),
  };
}

type State = 'handshake' | 'open' | 'closed';

/** A promise with its settle functions (settling twice is a no-op, as for any promise). */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: V4sError) => void } {
  let resolve: () => void = () => undefined;
  let reject: (e: V4sError) => void = () => undefined;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * The simulator side of one WebSocket connection. Created by SimulatorServer (one per client, each with its own
 * Simulator instance) and by dialAgent. `ready` resolves when the agent has answered `welcome`.
 */
export class SimulatorConnection {
  /** Resolves once the agent sent `welcome`; rejects when it refused (e.g. E_AUTH) or the socket closed first. */
  readonly ready: Promise<void>;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<CloseInfo>;
  /** The capabilities sent in `hello` (the simulator's, with this connection's encodings and ops). */
  readonly capabilities: Capabilities;
  /** Who the peer is, for messages. */
  readonly peer: string;

  #socket: WebSocket;
  #simulator: Simulator;
  #opts: ResolvedSessionOptions;
  #state: State = 'handshake';
  #encoding: ImageEncoding;
  #agentMaxPayload: number = PROTOCOL_LIMITS.agentMaxPayload;
  #oracle: boolean;
  #episodeActive = false;
  #queue: Promise<void> = Promise.resolve();
  #queued = 0;
  #handshakeTimer: NodeJS.Timeout | undefined;
  #settleReady: { resolve: () => void; reject: (e: V4sError) => void };
  #refusal: V4sError | undefined;
  #droppedPushes = 0;

  /**
   * Serves `simulator` on an open socket and sends `hello` at once. `helloToken` goes into `hello` (for
   * dialAgent, when the listening agent requires a token). Throws E_PROTOCOL_FIELD when the simulator's
   * capabilities are invalid (nothing is sent then).
   */
  constructor(socket: WebSocket, simulator: Simulator, options: SimulatorSessionOptions = {}, peer = 'agent', helloToken?: string) {
    this.#socket = socket;
    this.#simulator = simulator;
    this.#opts = resolveSessionOptions(options);
    this.peer = peer;
    this.#oracle = this.#opts.oracle && typeof simulator.oracle === 'function';
    const own = simulator.capabilities;
    const ops = own.ops.filter((op) => op !== 'oracle');
    if (this.#oracle) ops.push('oracle');
    // Round trip through JSON and the agent's own validation, so we never send a hello an agent would refuse.
    this.capabilities = decodeCapabilities(
      JSON.parse(JSON.stringify({ ...own, encodings: this.#opts.encodings, ops })),
      'simulator capabilities',
    );
    this.#encoding = this.#opts.encoding;

    const ready = deferred();
    this.ready = ready.promise;
    this.ready.catch(() => undefined); // observed through `closed` when nobody awaits `ready`
    this.#settleReady = ready;
    this.closed = new Promise<CloseInfo>((resolve) => {
      socket.on('close', (code: number, reason: Buffer) => {
        this.#state = 'closed';
        clearTimeout(this.#handshakeTimer);
        const info = { code, reason: reason.toString('utf8') };
        this.#settleReady.reject(
          this.#refusal ??
            new V4sError('E_CLOSED', `${peer} closed the connection (code ${code}${info.reason ? `: ${info.reason}` : ''}) before welcome`),
        );
        resolve(info);
      });
    });
    socket.on('error', () => undefined); // ws closes the socket after an error (e.g. 1009); 'close' follows
    socket.on('message', (data: RawData, isBinary: boolean) => {
      try {
        this.#onMessage(data, isBinary);
      } catch (e) {
        // Defensive: #onMessage handles its own errors; nothing may escape a socket handler.
        sendError(socket, 'E_SIMULATOR', asV4sError(e, 'E_SIMULATOR', 'internal').message);
      }
    });

    const begin = (): void => {
      this.#handshakeTimer = setTimeout(() => {
        rejectConnection(socket, 'E_TIMEOUT', `no welcome within ${this.#opts.handshakeTimeoutMs} ms after hello`, CLOSE_CODES.policyViolation);
      }, this.#opts.handshakeTimeoutMs);
      this.#handshakeTimer.unref();
      sendText(socket, {
        op: 'hello',
        protocol: PROTOCOL_VERSION,
        capabilities: this.capabilities,
        ...(helloToken !== undefined && { token: helloToken }),
      });
    };
    // A dialing simulator is constructed while its socket is still CONNECTING, so that a message the agent
    // sends at once (an error: too many connections) is not missed; hello goes out on 'open'.
    if (socket.readyState === WebSocket.OPEN) begin();
    else socket.once('open', begin);
  }

  /** The encoding agreed in the handshake (the agent's choice, or the default). */
  get encoding(): ImageEncoding {
    return this.#encoding;
  }

  /** True until the socket closed. */
  get isOpen(): boolean {
    return this.#state !== 'closed';
  }

  /**
   * Pushes an observation the agent did not ask for (`id` null): a streaming camera's frame. Queued behind any
   * reply being sent, so the agent sees frames in order. Resolves true when sent, false when dropped because
   * more than `pushHighWaterMarkBytes` were still unsent (the agent or the link is slower than the camera;
   * the next frame is newer anyway). Rejects with E_CLOSED when the session is not open.
   */
  async push(content: { readonly observation: ObservationContent['observation']; readonly terminated?: boolean; readonly truncated?: boolean }): Promise<boolean> {
    if (this.#state !== 'open') throw new V4sError('E_CLOSED', `push: the session with ${this.peer} is not open`);
    const full: ObservationContent = { observation: content.observation, terminated: content.terminated ?? false, truncated: content.truncated ?? false };
    let failure: unknown;
    let sent = false;
    await this.#enqueue(async () => {
      // A frame that marks the episode's end is never dropped; a live frame is, while the socket is backed up.
      if (!full.terminated && !full.truncated && this.#socket.bufferedAmount > this.#opts.pushHighWaterMarkBytes) {
        this.#droppedPushes++;
        return;
      }
      try {
        await this.#sendBinary(await encodeObservationMessage(null, full, this.#frameEncoding()), null);
        sent = true;
      } catch (e) {
        failure = e;
      }
    });
    if (failure !== undefined) throw asV4sError(failure, 'E_SIMULATOR', 'push');
    return sent;
  }

  /** Pushed frames dropped at the source because the socket was backed up (see `pushHighWaterMarkBytes`). */
  get droppedPushes(): number {
    return this.#droppedPushes;
  }

  /** Ends the session: closes the socket (1000 by default) and waits for it. */
  async close(code: number = CLOSE_CODES.normal, reason = 'simulator closed the session'): Promise<CloseInfo> {
    safeClose(this.#socket, code, reason);
    return this.closed;
  }

  #frameEncoding(): FrameEncoding {
    return { encoding: this.#encoding, jpegQuality: this.#opts.jpegQuality, pngCompressionLevel: this.#opts.pngCompressionLevel };
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    this.#queued++;
    const run = this.#queue.then(task).catch(() => undefined).finally(() => {
      this.#queued--;
    });
    this.#queue = run;
    return run;
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#state === 'closed') return;
    const socket = this.#socket;
    if (this.#state === 'handshake') {
      this.#onHandshakeMessage(data, isBinary);
      return;
    }
    if (isBinary) {
      const n = rawBytes(data).byteLength;
      sendError(socket, 'E_PROTOCOL_BINARY', `the agent sent a ${n}-byte binary message; in ${PROTOCOL_VERSION} agents send only text`);
      return;
    }
    let msg: AgentTextMessage;
    try {
      msg = decodeAgentMessage(rawText(data));
    } catch (e) {
      const err = asV4sError(e, 'E_PROTOCOL_FIELD', 'message');
      const id = typeof err.details?.id === 'number' ? err.details.id : null;
      sendError(socket, err.code, err.message, id);
      return;
    }
    switch (msg.op) {
      case 'close':
        // Also the robot's cue to stop; the Simulator contract has no separate hook, so the close is all.
        safeClose(socket, CLOSE_CODES.normal, 'agent closed the session');
        return;
      case 'error':
        return; // informational: the agent reports a problem with something we sent; never answered
      case 'welcome':
        sendError(socket, 'E_PROTOCOL_OP', 'welcome: the handshake is already complete');
        return;
      default:
        break;
    }
    const request = msg;
    if (this.#queued >= PROTOCOL_LIMITS.maxQueuedRequests) {
      sendError(socket, 'E_BUSY', `${request.op} (id ${request.id}): ${this.#queued} requests already queued; send one at a time`, request.id);
      return;
    }
    void this.#enqueue(() => this.#serve(request));
  }

  #onHandshakeMessage(data: RawData, isBinary: boolean): void {
    const socket = this.#socket;
    if (isBinary) {
      rejectConnection(socket, 'E_PROTOCOL_BINARY', 'expected welcome (a text message), got a binary message', CLOSE_CODES.protocolError);
      return;
    }
    let msg: AgentTextMessage;
    try {
      msg = decodeAgentMessage(rawText(data));
    } catch (e) {
      const err = asV4sError(e, 'E_PROTOCOL_FIELD', 'welcome');
      rejectConnection(socket, err.code, `expected welcome: ${err.message}`, CLOSE_CODES.protocolError);
      return;
    }
    if (msg.op === 'error') {
      // The agent refused us (wrong token, version…); it closes the socket.
      this.#refusal = remoteError(msg, `${this.peer} refused the connection`);
      safeClose(socket, CLOSE_CODES.normal, 'refused by the agent');
      return;
    }
    if (msg.op !== 'welcome') {
      rejectConnection(socket, 'E_PROTOCOL_OP', `expected welcome, got ${msg.op}`, CLOSE_CODES.protocolError);
      return;
    }
    if (msg.encoding !== undefined) {
      if (!this.capabilities.encodings.includes(msg.encoding)) {
        rejectConnection(
          socket,
          'E_PROTOCOL_FIELD',
          `welcome: encoding "${msg.encoding}" is not offered (offered: ${this.capabilities.encodings.join(', ')})`,
          CLOSE_CODES.protocolError,
        );
        return;
      }
      this.#encoding = msg.encoding;
    }
    if (msg.maxPayload !== undefined) this.#agentMaxPayload = msg.maxPayload;
    clearTimeout(this.#handshakeTimer);
    this.#state = 'open';
    this.#settleReady.resolve();
  }

  async #serve(msg: ResetMessage | StepMessage | OracleRequestMessage): Promise<void> {
    if (this.#state !== 'open') return;
    try {
      let bytes: Uint8Array;
      if (msg.op === 'reset') bytes = await this.#reset(msg);
      else if (msg.op === 'step') bytes = await this.#step(msg);
      else bytes = await this.#oracleOp(msg);
      await this.#sendBinary(bytes, msg.id);
    } catch (e) {
      const err = asV4sError(e, 'E_SIMULATOR', `${msg.op} (id ${msg.id}) failed in the simulator`);
      sendError(this.#socket, err.code, err.message, msg.id);
    }
  }

  async #reset(msg: ResetMessage): Promise<Uint8Array> {
    const tasks = this.capabilities.tasks ?? TASK_NAMES;
    if (msg.task !== undefined && !tasks.includes(msg.task)) {
      throw new V4sError('E_PROTOCOL_FIELD', `reset (id ${msg.id}): task "${msg.task}" is not served (tasks: ${tasks.join(', ')})`);
    }
    const result = this.#simulator.reset({
      ...(msg.seed !== undefined && { seed: msg.seed }),
      ...(msg.task !== undefined && { task: msg.task }),
      ...(msg.episode !== undefined && { episode: msg.episode }),
    });
    this.#episodeActive = true;
    const content: ObservationContent = { observation: result.observation, terminated: false, truncated: false, ...(result.goal !== undefined && { goal: result.goal }) };
    return encodeObservationMessage(msg.id, content, this.#frameEncoding());
  }

  #checkAction(name: string, where: string): void {
    if (!Object.hasOwn(this.capabilities.actions, name)) {
      throw new V4sError(
        'E_UNKNOWN_ACTION',
        `${where}: unknown action "${name.slice(0, 64)}" (actions: ${Object.keys(this.capabilities.actions).join(', ')})`,
      );
    }
  }

  async #step(msg: StepMessage): Promise<Uint8Array> {
    const where = `step (id ${msg.id})`;
    this.#checkAction(msg.action.name, where);
    if (!this.#episodeActive) throw new V4sError('E_NO_EPISODE', `${where}: no episode is running; send reset first`);
    const action: Action = msg.action.amount === undefined ? { name: msg.action.name } : { name: msg.action.name, amount: msg.action.amount };
    const result = this.#simulator.step(action);
    if (result.terminated || result.truncated) this.#episodeActive = false;
    return encodeObservationMessage(msg.id, result, this.#frameEncoding());
  }

  async #oracleOp(msg: OracleRequestMessage): Promise<Uint8Array> {
    const where = `oracle (id ${msg.id})`;
    const oracle = this.#simulator.oracle?.bind(this.#simulator);
    if (!this.#oracle || oracle === undefined) {
      throw new V4sError('E_ORACLE_DISABLED', `${where}: this simulator server was not started with the oracle enabled`);
    }
    for (const seq of msg.sequences) for (const a of seq) this.#checkAction(a, where);
    if (!this.#episodeActive) throw new V4sError('E_NO_EPISODE', `${where}: no episode is running; send reset first`);
    const rollouts = oracle(msg.category === undefined ? { sequences: msg.sequences } : { sequences: msg.sequences, category: msg.category });
    if (rollouts.length !== msg.sequences.length) {
      throw new V4sError('E_SIMULATOR', `${where}: the simulator returned ${rollouts.length} rollouts for ${msg.sequences.length} sequences`);
    }
    rollouts.forEach((r, i) => {
      const n = msg.sequences[i]?.length ?? 0;
      if (r.frames.length !== n) throw new V4sError('E_SIMULATOR', `${where}: rollout ${i} has ${r.frames.length} frames for ${n} actions`);
    });
    return encodeOracleMessage(msg.id, rollouts, this.#frameEncoding());
  }

  async #sendBinary(bytes: Uint8Array, id: RequestId | null): Promise<void> {
    const socket = this.#socket;
    if (bytes.byteLength > this.#agentMaxPayload) {
      throw new V4sError(
        'E_PROTOCOL_TOO_LARGE',
        `${id === null ? 'pushed observation' : `reply to id ${id}`} is ${bytes.byteLength} bytes, over the agent's maxPayload ${this.#agentMaxPayload}`,
      );
    }
    if (socket.bufferedAmount > PROTOCOL_LIMITS.maxBufferedBytes) {
      rejectConnection(socket, 'E_BUSY', `the agent left ${socket.bufferedAmount} bytes unread`, CLOSE_CODES.policyViolation);
      return;
    }
    safeSend(socket, bytes);
  }
}

// ---------------------------------------------------------------------------------------------------------

/** Options of SimulatorServer.start. */
export interface SimulatorServerOptions extends SimulatorSessionOptions {
  /** TCP port (default 8765; 0 picks a free one, see `server.port`). */
  readonly port?: number;
  /** Interface to bind (default 127.0.0.1). Anything but loopback requires `token`. */
  readonly host?: string;
  /** Shared token the agent must present as `Authorization: Bearer <token>` in the upgrade request. */
  readonly token?: string;
  /** Largest message accepted from an agent, bytes (default 1 MiB: agents send only JSON). Larger: close 1009. */
  readonly maxPayload?: number;
  /** Simultaneous connections (default 16); one more gets error E_TOO_MANY_CONNECTIONS and close 1013. */
  readonly maxConnections?: number;
}

/** Default port of `v4s sim`. */
export const DEFAULT_SIMULATOR_PORT = 8765;

/**
 * Exposes a Simulator over v4s.sim.v1. Every connection gets its own Simulator from `factory`, so several
 * agents each run their own episodes.
 */
export class SimulatorServer {
  readonly host: string;
  readonly port: number;
  /** `ws://host:port`, what connectSimulator takes. */
  readonly url: string;
  #http: Server;
  #wss: WebSocketServer;
  #connections = new Set<SimulatorConnection>();
  #closing: Promise<void> | undefined;

  private constructor(host: string, port: number, http: Server, wss: WebSocketServer) {
    this.host = host;
    this.port = port;
    this.url = `ws://${urlHost(host)}:${port}`;
    this.#http = http;
    this.#wss = wss;
  }

  /**
   * Starts listening. Rejects with E_INSECURE_BIND (non-loopback host without token), E_CONFIG (bad option)
   * or E_LISTEN (port in use…).
   */
  static async start(factory: () => Simulator, options: SimulatorServerOptions = {}): Promise<SimulatorServer> {
    const host = options.host ?? '127.0.0.1';
    checkBindSecurity(host, options.token, 'SimulatorServer');
    const port = intOption(options.port, 'port', 0, 65535, DEFAULT_SIMULATOR_PORT);
    const maxPayload = intOption(options.maxPayload, 'maxPayload', 1024, 2 ** 31, PROTOCOL_LIMITS.simulatorMaxPayload);
    const maxConnections = intOption(options.maxConnections, 'maxConnections', 1, 10_000, PROTOCOL_LIMITS.maxConnections);
    const { handshakeTimeoutMs } = resolveSessionOptions(options); // fail now, not on the first connection
    const { http, wss, port: bound } = await listenWebSocket(host, port, maxPayload, 'SimulatorServer', {
      maxSockets: socketCap(maxConnections),
      headersTimeoutMs: handshakeTimeoutMs,
    });
    const server = new SimulatorServer(host, bound, http, wss);
    wss.on('connection', (socket: WebSocket, req: IncomingMessage) => {
      try {
        server.#accept(socket, req, factory, options, maxConnections);
      } catch (e) {
        rejectConnection(socket, 'E_SIMULATOR', asV4sError(e, 'E_SIMULATOR', 'connection').message, CLOSE_CODES.internalError);
      }
    });
    return server;
  }

  /** Connections that have not closed yet. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  #accept(socket: WebSocket, req: IncomingMessage, factory: () => Simulator, options: SimulatorServerOptions, maxConnections: number): void {
    socket.on('error', () => undefined);
    const peer = `agent ${peerAddress(req)}`;
    if (this.#closing !== undefined) {
      rejectConnection(socket, 'E_CLOSED', 'the server is shutting down', CLOSE_CODES.goingAway);
      return;
    }
    if (this.#connections.size >= maxConnections) {
      rejectConnection(socket, 'E_TOO_MANY_CONNECTIONS', `the server accepts ${maxConnections} connections; try again later`, CLOSE_CODES.tryAgainLater);
      return;
    }
    if (options.token !== undefined) {
      const given = bearerToken(req);
      if (!tokenMatches(options.token, given)) {
        const why = given === undefined ? 'a token is required: send "Authorization: Bearer <token>" in the WebSocket upgrade request' : 'wrong token';
        rejectConnection(socket, 'E_AUTH', why, CLOSE_CODES.policyViolation);
        return;
      }
    }
    let simulator: Simulator;
    let connection: SimulatorConnection;
    try {
      simulator = factory();
      connection = new SimulatorConnection(socket, simulator, options, peer);
    } catch (e) {
      rejectConnection(socket, 'E_SIMULATOR', asV4sError(e, 'E_SIMULATOR', 'could not create the simulator').message, CLOSE_CODES.internalError);
      return;
    }
    this.#connections.add(connection);
    void connection.closed.then(() => this.#connections.delete(connection));
  }

  /** Stops listening and closes every connection with 1001 (going away). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= closeWebSocketServer(this.#http, this.#wss, CLOSE_CODES.goingAway, 'simulator server shutting down');
    return this.#closing;
  }
}

// ---------------------------------------------------------------------------------------------------------

/** Options of dialAgent. */
export interface DialAgentOptions extends SimulatorSessionOptions {
  /** Token the listening agent requires; sent in `hello`. */
  readonly token?: string;
  /** Largest message accepted from the agent (default 1 MiB). */
  readonly maxPayload?: number;
  /** Time to open the socket (default 10 s). */
  readonly connectTimeoutMs?: number;
}

/**
 * Connects a simulator to a listening agent (`listenForSimulator`): the reverse direction, for simulators and
 * robots that must dial out. Resolves once the agent answered `welcome`. Rejects with E_CONNECT (unreachable;
 * the message names the URL), E_AUTH (token refused) or another code the agent sent.
 *
 * Usage: `const conn = await dialAgent('ws://127.0.0.1:8766', () => new BuiltinSimulator(), { token })`.
 */
export async function dialAgent(url: string, factory: () => Simulator, options: DialAgentOptions = {}): Promise<SimulatorConnection> {
  const target = checkUrl(url);
  const maxPayload = intOption(options.maxPayload, 'maxPayload', 1024, 2 ** 31, PROTOCOL_LIMITS.simulatorMaxPayload);
  const connectTimeoutMs = intOption(options.connectTimeoutMs, 'connectTimeoutMs', 1, 600_000, PROTOCOL_LIMITS.handshakeTimeoutMs);
  resolveSessionOptions(options);
  const simulator = factory();
  const socket = new WebSocket(target, { maxPayload, perMessageDeflate: false, handshakeTimeout: connectTimeoutMs });
  const opened = openSocket(socket, url, 'agent', 'Check that the agent is listening (listenForSimulator) on that host and port');
  let connection: SimulatorConnection;
  try {
    connection = new SimulatorConnection(socket, simulator, options, `agent at ${url}`, options.token);
  } catch (e) {
    opened.catch(() => undefined);
    socket.terminate();
    throw asV4sError(e, 'E_SIMULATOR', 'could not create the simulator');
  }
  await opened;
  await connection.ready;
  return connection;
}

export type { CloseInfo } from './ws-common.js';
