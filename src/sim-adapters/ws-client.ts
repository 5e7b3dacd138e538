/**
 * The agent side of v4s.sim.v1: `WsEnvironment` implements the `Environment` contract over one WebSocket,
 * whoever dialed. `connectSimulator` dials a simulator server (`v4s sim`, the Habitat bridge); the listening
 * direction is in ws-listener.ts. Requests are lockstep: one in flight at a time, a second one fails at once
 * with E_BUSY (queueing would hide a double step in an agent loop).
 *
 * Usage:
 *   const env = await connectSimulator('ws://127.0.0.1:8765');
 *   const { observation, goal } = await env.reset({ seed: 1, task: 'objectnav' });
 *   const { observation: next, terminated } = await env.step({ name: 'move_forward' });
 *   await env.close();
 */
import { Observable, Subject } from 'rxjs';
import { WebSocket, type RawData } from 'ws';
import { V4sError } from '../errors.js';
import type { Action, Observation } from '../types.js';
import {
  ENVIRONMENT_SPEC_VERSION,
  type Capabilities,
  type Environment,
  type ImageEncoding,
  type OracleRequest,
  type OracleRollout,
  type ResetOptions,
  type ResetResult,
  type StepResult,
} from './environment.js';
import { decodeBinaryMessage, decodeSimulatorMessage, peekBinaryId } from './protocol/codec.js';
import { decodeObservationPacket, decodeOraclePacket, type ObservationContent } from './protocol/convert.js';
import {
  CLOSE_CODES,
  PROTOCOL_LIMITS,
  PROTOCOL_VERSION,
  TASK_NAMES,
  isObservationPacket,
  type BinaryPacket,
  type ObservationPacket,
  type OraclePacket,
  type RequestId,
  type RequestMessage,
  type SimulatorTextMessage,
} from './protocol/types.js';
import {
  asV4sError,
  checkUrl,
  intOption,
  openSocket,
  rawBytes,
  rawText,
  rejectConnection,
  remoteError,
  safeClose,
  sendError,
  sendText,
  tokenMatches,
  type CloseInfo,
} from './ws-common.js';
import { resolveReconnectOptions, retryWithBackoff, type ReconnectOptions } from './reconnect.js';

/** Options of the agent side of a connection (connectSimulator, listenForSimulator, WsEnvironment.fromSocket). */
export interface AgentSessionOptions {
  /** Encoding to ask for in `welcome`; must be one the simulator offers (default: the simulator's first). */
  readonly encoding?: ImageEncoding;
  /** Time to wait for each reset/step/oracle reply (default 30 s); then E_TIMEOUT naming the op. */
  readonly requestTimeoutMs?: number;
  /** Time to wait for `hello` after the socket opened (default 10 s). */
  readonly handshakeTimeoutMs?: number;
  /** Largest message accepted from the simulator, bytes (default 64 MiB); announced in `welcome`. */
  readonly maxPayload?: number;
}

/** Options of connectSimulator. */
export interface ConnectOptions extends AgentSessionOptions {
  /** Token of a server started with one; sent as `Authorization: Bearer <token>` in the upgrade request. */
  readonly token?: string;
  /** Time to open the socket (default 10 s). */
  readonly connectTimeoutMs?: number;
  /**
   * Retry a transient failure (unreachable, closed or timed out in the handshake, server full) with jittered
   * exponential back-off (reconnect.ts). Default: one try. An evaluation's environment factory that passes
   * this waits out a simulator restart instead of aborting every following episode.
   */
  readonly reconnect?: ReconnectOptions;
}

/** Options of WsEnvironment.fromSocket. */
export interface FromSocketOptions extends AgentSessionOptions {
  /** Names the peer in messages (a URL or an address). */
  readonly peer?: string;
  /** When set, `hello.token` must match (constant-time), else error E_AUTH and close 1008. */
  readonly expectedToken?: string;
}

/** What settles a pending request: a decoded observation, or an oracle packet (decoded by the caller). */
type Reply = { readonly kind: 'observation'; readonly content: ObservationContent } | { readonly kind: 'oracle'; readonly packet: OraclePacket };

interface Pending {
  readonly id: RequestId;
  readonly op: RequestMessage['op'];
  readonly resolve: (reply: Reply) => void;
  readonly reject: (e: V4sError) => void;
  readonly timer: NodeJS.Timeout;
}

/** Counters a WsEnvironment keeps (for reports and tests). */
export interface WsEnvironmentStats {
  /** Replies whose id matched no pending request (late replies after a timeout): dropped. */
  staleReplies: number;
  /** Pushed (id null) observations received. */
  pushes: number;
  /** Pushed observations dropped because too many were still waiting to be decoded. */
  droppedPushes: number;
  /** Malformed messages received from the peer (each answered with an `error`). */
  protocolErrors: number;
}

/** Pushes waiting to be decoded before further pushes are dropped (replies are never dropped). */
const MAX_PENDING_PUSHES = 4;

/**
 * The agent's Environment over a v4s.sim.v1 WebSocket. `observations$` emits every observation: replies to
 * reset and step, and frames a streaming peer pushes. `oracle` is present only when the peer advertises it.
 */
export class WsEnvironment implements Environment {
  readonly specificationVersion = ENVIRONMENT_SPEC_VERSION;
  readonly capabilities: Capabilities;
  /** The image encoding agreed in the handshake. */
  readonly encoding: ImageEncoding;
  /** Who the peer is (URL or address), as used in error messages. */
  readonly peer: string;
  /** Every observation as it arrives; completes when the connection closes. Hot: subscribe before reset. */
  readonly observations$: Observable<Observation>;
  /** Errors that belong to no request: malformed messages, `error` messages with no pending request. */
  readonly errors$: Observable<V4sError>;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<CloseInfo>;
  /** Present when the peer serves the oracle op. */
  readonly oracle?: (request: OracleRequest) => Promise<OracleRollout[]>;
  readonly stats: WsEnvironmentStats = { staleReplies: 0, pushes: 0, droppedPushes: 0, protocolErrors: 0 };

  #socket: WebSocket;
  #observations = new Subject<Observation>();
  #errors = new Subject<V4sError>();
  #pending: Pending | undefined;
  #nextId = 1;
  #isClosed = false;
  #closeInfo: CloseInfo | undefined;
  #requestTimeoutMs: number;
  #decodeChain: Promise<void> = Promise.resolve();
  #pendingPushes = 0;

  /**
   * Wraps a socket whose handshake is done (use `fromSocket`, `connectSimulator` or `listenForSimulator`).
   * Attaches its listeners synchronously, so no message after `hello` is missed.
   */
  private constructor(socket: WebSocket, capabilities: Capabilities, encoding: ImageEncoding, peer: string, requestTimeoutMs: number) {
    this.#socket = socket;
    this.capabilities = capabilities;
    this.encoding = encoding;
    this.peer = peer;
    this.#requestTimeoutMs = requestTimeoutMs;
    this.observations$ = this.#observations.asObservable();
    this.errors$ = this.#errors.asObservable();
    if (capabilities.ops.includes('oracle')) this.oracle = (request) => this.#oracle(request);
    this.closed = new Promise<CloseInfo>((resolve) => {
      socket.on('close', (code: number, reason: Buffer) => {
        const info = { code, reason: reason.toString('utf8') };
        this.#isClosed = true;
        this.#closeInfo = info;
        const p = this.#pending;
        if (p !== undefined) {
          this.#settle(p);
          p.reject(
            new V4sError('E_CLOSED', `connection to ${peer} closed (code ${code}${info.reason ? `: ${info.reason}` : ''}) while ${p.op} (id ${p.id}) was pending`, {
              code,
              id: p.id,
            }),
          );
        }
        this.#observations.complete();
        this.#errors.complete();
        resolve(info);
      });
    });
    socket.on('error', () => undefined); // 'close' follows every error
    socket.on('message', (data: RawData, isBinary: boolean) => {
      try {
        if (isBinary) this.#onBinary(rawBytes(data));
        else this.#onText(rawText(data));
      } catch (e) {
        this.#protocolError(asV4sError(e, 'E_PROTOCOL_FIELD', 'message'), null);
      }
    });
  }

  /**
   * Runs the agent side of the handshake on a socket, open or still connecting (either direction; this is the
   * seam for custom transports and tests): waits for `hello`, checks its
   * version, token (when `expectedToken` is set) and capabilities, answers `welcome`, and resolves with the
   * environment. Rejects with E_PROTOCOL_*, E_AUTH, E_TIMEOUT, E_CONFIG, or the code the simulator sent.
   */
  static fromSocket(socket: WebSocket, options: FromSocketOptions = {}): Promise<WsEnvironment> {
    // Accepts an open or a still-connecting socket; the handshake timeout starts when it is open.
    const peer = options.peer ?? 'simulator';
    const requestTimeoutMs = intOption(options.requestTimeoutMs, 'requestTimeoutMs', 1, 86_400_000, PROTOCOL_LIMITS.requestTimeoutMs);
    const handshakeTimeoutMs = intOption(options.handshakeTimeoutMs, 'handshakeTimeoutMs', 1, 600_000, PROTOCOL_LIMITS.handshakeTimeoutMs);
    const maxPayload = intOption(options.maxPayload, 'maxPayload', PROTOCOL_LIMITS.minAgentMaxPayload, 2 ** 32, PROTOCOL_LIMITS.agentMaxPayload);
    return new Promise<WsEnvironment>((resolve, reject) => {
      let done = false;
      const finish = (e: V4sError | undefined, env?: WsEnvironment): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.off('message', onMessage);
        socket.off('close', onClose);
        if (env !== undefined) resolve(env);
        else reject(e);
      };
      const refuse = (code: V4sError['code'], message: string, closeCode: number): void => {
        rejectConnection(socket, code, message, closeCode);
        finish(new V4sError(code, `${peer}: ${message}`));
      };
      let timer: NodeJS.Timeout | undefined;
      const startTimer = (): void => {
        if (done) return;
        timer = setTimeout(
          () => refuse('E_TIMEOUT', `no hello within ${handshakeTimeoutMs} ms after the connection opened`, CLOSE_CODES.policyViolation),
          handshakeTimeoutMs,
        );
        timer.unref();
      };
      const onClose = (code: number, reason: Buffer): void => {
        const r = reason.toString('utf8');
        finish(new V4sError('E_CLOSED', `${peer} closed the connection (code ${code}${r ? `: ${r}` : ''}) before hello`, { code }));
      };
      const onMessage = (data: RawData, isBinary: boolean): void => {
        if (isBinary) {
          refuse('E_PROTOCOL_BINARY', 'expected hello (a text message), got a binary message', CLOSE_CODES.protocolError);
          return;
        }
        let msg: SimulatorTextMessage;
        try {
          msg = decodeSimulatorMessage(rawText(data));
        } catch (e) {
          const err = asV4sError(e, 'E_PROTOCOL_FIELD', 'hello');
          refuse(err.code, `expected hello: ${err.message}`, CLOSE_CODES.protocolError);
          return;
        }
        if (msg.op === 'error') {
          // The simulator refused us (token, connection limit…) and closes the socket.
          safeClose(socket, CLOSE_CODES.normal, 'refused by the simulator');
          finish(remoteError(msg, `${peer} refused the connection`));
          return;
        }
        if (options.expectedToken !== undefined && !tokenMatches(options.expectedToken, msg.token)) {
          refuse('E_AUTH', msg.token === undefined ? 'a token is required in hello' : 'wrong token', CLOSE_CODES.policyViolation);
          return;
        }
        const caps = msg.capabilities;
        if (options.encoding !== undefined && !caps.encodings.includes(options.encoding)) {
          refuse('E_CONFIG', `encoding "${options.encoding}" was asked for but the simulator offers ${caps.encodings.join(', ')}`, CLOSE_CODES.normal);
          return;
        }
        const encoding = options.encoding ?? caps.encodings[0] ?? 'raw';
        const env = new WsEnvironment(socket, caps, encoding, peer, requestTimeoutMs);
        sendText(socket, {
          op: 'welcome',
          protocol: PROTOCOL_VERSION,
          maxPayload,
          ...(options.encoding !== undefined && { encoding: options.encoding }),
        });
        finish(undefined, env);
      };
      if (socket.readyState !== WebSocket.OPEN && socket.readyState !== WebSocket.CONNECTING) {
        finish(new V4sError('E_CLOSED', `${peer}: the socket is closed`));
        return;
      }
      // Listen at once, even while CONNECTING: hello can arrive in the same TCP segment as the upgrade
      // response, and ws emits it synchronously right after 'open'.
      socket.on('message', onMessage);
      socket.on('close', onClose);
      if (socket.readyState === WebSocket.OPEN) startTimer();
      else socket.once('open', startTimer);
    });
  }

  /** True once the socket has closed. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Starts an episode. Resolves with the first observation and the goal; rejects with the simulator's code. */
  async reset(options: ResetOptions = {}): Promise<ResetResult> {
    const { seed, task, episode } = options;
    if (seed !== undefined && (!Number.isSafeInteger(seed) || seed < 0)) throw new V4sError('E_CONFIG', `reset: seed must be an integer ≥ 0, got ${seed}`);
    if (task !== undefined && !TASK_NAMES.includes(task)) throw new V4sError('E_CONFIG', `reset: unknown task ${JSON.stringify(task)}`);
    if (episode !== undefined && (typeof episode !== 'string' || episode.length === 0 || episode.length > PROTOCOL_LIMITS.maxNameLength)) {
      throw new V4sError('E_CONFIG', 'reset: episode must be a non-empty string of at most 256 characters');
    }
    const id = this.#takeId();
    const reply = await this.#request(
      { op: 'reset', id, ...(seed !== undefined && { seed }), ...(task !== undefined && { task }), ...(episode !== undefined && { episode }) },
    );
    const content = observationOf(reply);
    return content.goal === undefined ? { observation: content.observation } : { observation: content.observation, goal: content.goal };
  }

  /** Executes one action. Rejects with E_UNKNOWN_ACTION before sending when the action is not in the capabilities. */
  async step(action: Action): Promise<StepResult> {
    if (typeof action?.name !== 'string' || !Object.hasOwn(this.capabilities.actions, action.name)) {
      throw new V4sError(
        'E_UNKNOWN_ACTION',
        `step: unknown action ${JSON.stringify(action?.name)} (actions: ${Object.keys(this.capabilities.actions).join(', ')})`,
      );
    }
    if (action.amount !== undefined && !Number.isFinite(action.amount)) {
      throw new V4sError('E_CONFIG', `step: amount of ${action.name} must be a finite number`);
    }
    const id = this.#takeId();
    const wire = action.amount === undefined ? { name: action.name } : { name: action.name, amount: action.amount };
    const reply = await this.#request({ op: 'step', id, action: wire });
    const { observation, terminated, truncated } = observationOf(reply);
    return { observation, terminated, truncated };
  }

  async #oracle(request: OracleRequest): Promise<OracleRollout[]> {
    const seqs = request.sequences;
    if (!Array.isArray(seqs) || seqs.length === 0 || seqs.length > PROTOCOL_LIMITS.maxOracleSequences) {
      throw new V4sError('E_CONFIG', `oracle: 1…${PROTOCOL_LIMITS.maxOracleSequences} sequences required`);
    }
    let total = 0;
    for (const s of seqs) {
      if (!Array.isArray(s) || s.length === 0 || s.length > PROTOCOL_LIMITS.maxOracleSequenceLength) {
        throw new V4sError('E_CONFIG', `oracle: each sequence needs 1…${PROTOCOL_LIMITS.maxOracleSequenceLength} actions`);
      }
      total += s.length;
      for (const a of s) {
        if (!Object.hasOwn(this.capabilities.actions, a)) throw new V4sError('E_UNKNOWN_ACTION', `oracle: unknown action ${JSON.stringify(a)}`);
      }
    }
    if (total > PROTOCOL_LIMITS.maxOracleFrames) throw new V4sError('E_CONFIG', `oracle: at most ${PROTOCOL_LIMITS.maxOracleFrames} actions in all`);
    const id = this.#takeId();
    const sequences = seqs.map((s) => [...s]);
    const reply = await this.#request(request.category === undefined ? { op: 'oracle', id, sequences } : { op: 'oracle', id, sequences, category: request.category });
    if (reply.kind !== 'oracle') throw new V4sError('E_PROTOCOL_OP', `oracle (id ${id}) was answered with an observation`);
    try {
      return await decodeOraclePacket(reply.packet, this.capabilities.poseFrame);
    } catch (e) {
      const err = asV4sError(e, 'E_FRAME_DECODE', `oracle (id ${id})`);
      sendError(this.#socket, err.code, err.message, id);
      throw err;
    }
  }

  /**
   * Ends the session: sends `close`, closes the socket with 1000 and waits for it to close (the simulator
   * side ends the episode; a robot stops). Idempotent.
   */
  async close(): Promise<void> {
    if (!this.#isClosed) {
      sendText(this.#socket, { op: 'close' });
      safeClose(this.#socket, CLOSE_CODES.normal, 'agent closed the session');
    }
    await this.closed;
  }

  #takeId(): RequestId {
    const id = this.#nextId;
    this.#nextId = id >= PROTOCOL_LIMITS.maxRequestId ? 1 : id + 1;
    return id;
  }

  #request(msg: RequestMessage): Promise<Reply> {
    const where = `${msg.op} (id ${msg.id})`;
    if (this.#isClosed) {
      const c = this.#closeInfo;
      return Promise.reject(new V4sError('E_CLOSED', `${where}: the connection to ${this.peer} is closed${c ? ` (code ${c.code})` : ''}`));
    }
    const busy = this.#pending;
    if (busy !== undefined) {
      return Promise.reject(
        new V4sError('E_BUSY', `${where}: ${busy.op} (id ${busy.id}) is still pending; v4s.sim.v1 is lockstep, await each request before the next`),
      );
    }
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#pending?.id !== msg.id) return;
        this.#pending = undefined;
        reject(
          new V4sError('E_TIMEOUT', `${where} got no reply from ${this.peer} within ${this.#requestTimeoutMs} ms; is the simulator hung or overloaded? (requestTimeoutMs)`, {
            op: msg.op,
            id: msg.id,
          }),
        );
      }, this.#requestTimeoutMs);
      this.#pending = { id: msg.id, op: msg.op, resolve, reject, timer };
      if (!sendText(this.#socket, msg)) {
        this.#settle(this.#pending);
        reject(new V4sError('E_CLOSED', `${where}: could not send to ${this.peer}; the connection is closing`));
      }
    });
  }

  /** Clears the pending request and its timer (the caller resolves or rejects it). */
  #settle(p: Pending): void {
    clearTimeout(p.timer);
    if (this.#pending === p) this.#pending = undefined;
  }

  #onText(text: string): void {
    let msg: SimulatorTextMessage;
    try {
      msg = decodeSimulatorMessage(text);
    } catch (e) {
      const err = asV4sError(e, 'E_PROTOCOL_FIELD', 'message');
      const id = typeof err.details?.id === 'number' ? err.details.id : null;
      this.#protocolError(err, id);
      return;
    }
    if (msg.op === 'hello') {
      this.#protocolError(new V4sError('E_PROTOCOL_OP', `${this.peer} sent hello again after the handshake`), null);
      return;
    }
    const p = this.#pending;
    if (p !== undefined && (msg.id === p.id || msg.id === null)) {
      this.#settle(p);
      p.reject(remoteError(msg, `${p.op} (id ${p.id}) failed on ${this.peer}`));
      return;
    }
    if (msg.id !== null) this.stats.staleReplies++;
    this.#errors.next(remoteError(msg, `${this.peer} reported`));
  }

  #onBinary(bytes: Uint8Array): void {
    let packet: BinaryPacket;
    try {
      packet = decodeBinaryMessage(bytes);
    } catch (e) {
      this.#protocolError(asV4sError(e, 'E_PROTOCOL_BINARY', 'binary message'), peekBinaryId(bytes));
      return;
    }
    const id = packet.header.id;
    if (id === null) {
      this.stats.pushes++;
      if (this.#pendingPushes >= MAX_PENDING_PUSHES) {
        this.stats.droppedPushes++;
        return;
      }
      this.#pendingPushes++;
      if (isObservationPacket(packet)) this.#enqueueDecode(packet, undefined);
      else this.#pendingPushes--;
      return;
    }
    const p = this.#pending;
    if (p === undefined || p.id !== id) {
      this.stats.staleReplies++;
      return;
    }
    const wantOracle = p.op === 'oracle';
    if (wantOracle !== (packet.header.op === 'oracle')) {
      this.#settle(p);
      const err = new V4sError('E_PROTOCOL_OP', `${p.op} (id ${p.id}) was answered with a binary ${packet.header.op} message`);
      sendError(this.#socket, err.code, err.message, p.id);
      p.reject(err);
      return;
    }
    if (!isObservationPacket(packet)) {
      this.#settle(p);
      p.resolve({ kind: 'oracle', packet });
      return;
    }
    this.#enqueueDecode(packet, p);
  }

  /** Decodes observation images in arrival order (sharp is async), emits, then settles the request. */
  #enqueueDecode(packet: ObservationPacket, p: Pending | undefined): void {
    this.#decodeChain = this.#decodeChain.then(async () => {
      if (p === undefined) this.#pendingPushes--;
      let content: ObservationContent;
      try {
        content = await decodeObservationPacket(packet, this.capabilities.poseFrame);
      } catch (e) {
        const err = asV4sError(e, 'E_FRAME_DECODE', 'observation');
        if (p !== undefined && this.#pending === p) {
          this.#settle(p);
          sendError(this.#socket, err.code, err.message, p.id);
          this.stats.protocolErrors++;
          p.reject(err);
        } else {
          this.#protocolError(err, packet.header.id);
        }
        return;
      }
      if (p !== undefined && this.#pending !== p) return; // timed out or closed while decoding: drop
      this.#observations.next(content.observation);
      if (p !== undefined) {
        this.#settle(p);
        p.resolve({ kind: 'observation', content });
      }
    });
  }

  /** A malformed message from the peer: tell it, report it, and fail the pending request it most likely answered. */
  #protocolError(err: V4sError, id: RequestId | null): void {
    this.stats.protocolErrors++;
    sendError(this.#socket, err.code, err.message, id);
    const p = this.#pending;
    if (p !== undefined && (id === null || id === p.id)) {
      this.#settle(p);
      p.reject(err);
      return;
    }
    this.#errors.next(err);
  }
}

function observationOf(reply: Reply): ObservationContent {
  if (reply.kind !== 'observation') throw new V4sError('E_PROTOCOL_OP', 'an oracle reply where an observation was expected');
  return reply.content;
}

/**
 * Dials a simulator server (`v4s sim`, the Habitat bridge) and completes the handshake. Rejects with
 * E_CONNECT (unreachable: the message names the URL and what to check), E_AUTH (token refused),
 * E_TOO_MANY_CONNECTIONS, E_PROTOCOL_VERSION, E_TIMEOUT or E_CONFIG. With `reconnect`, transient failures
 * are retried with back-off first (the final error says how many tries were made).
 *
 * Usage: `const env = await connectSimulator('ws://127.0.0.1:8765', { token, encoding: 'png', reconnect: { tries: 10 } })`.
 */
export async function connectSimulator(url: string, options: ConnectOptions = {}): Promise<WsEnvironment> {
  if (options.reconnect === undefined) return connectOnce(url, options);
  checkUrl(url);
  resolveReconnectOptions(options.reconnect); // a bad option fails now, not after the first failed try
  return retryWithBackoff(() => connectOnce(url, options), options.reconnect);
}

async function connectOnce(url: string, options: ConnectOptions): Promise<WsEnvironment> {
  const target = checkUrl(url);
  const maxPayload = intOption(options.maxPayload, 'maxPayload', PROTOCOL_LIMITS.minAgentMaxPayload, 2 ** 32, PROTOCOL_LIMITS.agentMaxPayload);
  const connectTimeoutMs = intOption(options.connectTimeoutMs, 'connectTimeoutMs', 1, 600_000, PROTOCOL_LIMITS.handshakeTimeoutMs);
  if (options.token !== undefined && (typeof options.token !== 'string' || options.token.length === 0 || /[\r\n]/.test(options.token))) {
    throw new V4sError('E_CONFIG', 'token must be a non-empty string without line breaks');
  }
  const socket = new WebSocket(target, {
    maxPayload,
    perMessageDeflate: false,
    handshakeTimeout: connectTimeoutMs,
    ...(options.token !== undefined && { headers: { authorization: `Bearer ${options.token}` } }),
  });
  const opened = openSocket(
    socket,
    url,
    'simulator',
    'Check that `v4s sim` (or your simulator bridge) is running and listening on that host and port ' +
      '(v4s sim uses 127.0.0.1:8765 unless --host/--port say otherwise), and that the token matches if the server requires one',
  );
  // Start the handshake listener before the socket opens, so a hello (or error) sent at once is not missed.
  const session = WsEnvironment.fromSocket(socket, { ...options, maxPayload, peer: url });
  session.catch(() => undefined); // when the connection fails, `opened` carries the error (E_CONNECT)
  await opened;
  return session;
}
