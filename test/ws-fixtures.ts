/**
 * Test helpers for the protocol and WebSocket tests.
 *
 * `StandInSimulator` is a TEST STAND-IN, not a simulator: a tiny deterministic `Simulator` whose frames are a
 * pure function of its state, so tests can predict every pixel. The real built-in simulator lives in
 * src/sim-adapters/builtin/ and has its own integration test over a real socket (ws-builtin.test.ts).
 *
 * `RawPeer` is a real `ws` socket driven by hand, to send exactly the bytes a test wants (malformed JSON,
 * truncated binary…) and to read every reply.
 */
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Action, Frame, Pose } from '../src/types.js';
import type {
  Capabilities,
  OracleRequest,
  OracleRollout,
  ResetOptions,
  ResetResult,
  Simulator,
  StepResult,
  TaskName,
} from '../src/sim-adapters/environment.js';

export interface StandInOptions {
  readonly width?: number;
  readonly height?: number;
  readonly maxSteps?: number;
  /** Throw from step() with this message (to test E_SIMULATOR). */
  readonly failStep?: string;
  readonly withOracle?: boolean;
  readonly mode?: 'lockstep' | 'stream';
}

interface State {
  x: number;
  z: number;
  heading: number; // multiples of 30°
  step: number;
  path: number;
  seed: number;
}

/** TEST STAND-IN simulator: deterministic frames from (seed, x, z, heading, step). */
export class StandInSimulator implements Simulator {
  readonly capabilities: Capabilities;
  readonly width: number;
  readonly height: number;
  readonly maxSteps: number;
  resets = 0;
  #state: State = { x: 0, z: 0, heading: 0, step: 0, path: 0, seed: 0 };
  #task: TaskName = 'objectnav';
  #opts: StandInOptions;
  readonly oracle?: (request: OracleRequest) => OracleRollout[];

  constructor(opts: StandInOptions = {}) {
    this.#opts = opts;
    this.width = opts.width ?? 16;
    this.height = opts.height ?? 12;
    this.maxSteps = opts.maxSteps ?? 50;
    this.capabilities = {
      actions: {
        move_forward: { kind: 'move', amount: 0.25 },
        turn_left: { kind: 'turn', amount: 30 },
        turn_right: { kind: 'turn', amount: 30 },
        stop: { kind: 'stop', amount: 0 },
      },
      camera: { width: this.width, height: this.height, hfov: 90 },
      encodings: ['raw'],
      mode: opts.mode ?? 'lockstep',
      ops: [],
      tasks: ['objectnav', 'imagenav', 'pointnav'],
      name: 'stand-in',
    };
    if (opts.withOracle !== false) this.oracle = (r) => this.#oracle(r);
  }

  /** The frame the stand-in renders for a state: every pixel predictable. */
  static render(width: number, height: number, s: { seed: number; x: number; z: number; heading: number; step: number }): Frame {
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 3;
        data[i] = (x * 9 + s.seed * 31 + Math.round(s.x * 40)) & 255;
        data[i + 1] = (y * 11 + s.heading * 23 + Math.round(s.z * 40)) & 255;
        data[i + 2] = (x * y + s.step * 5) & 255;
      }
    }
    return { width, height, data };
  }

  frameOf(s: State): Frame {
    return StandInSimulator.render(this.width, this.height, s);
  }

  #pose(s: State): Pose {
    const a = (s.heading * 30 * Math.PI) / 180;
    return { position: [s.x, 0, s.z], rotation: [0, Math.sin(a / 2), 0, Math.cos(a / 2)] };
  }

  #apply(s: State, name: string, amount?: number): State {
    const n = { ...s, step: s.step + 1 };
    if (name === 'move_forward') {
      const d = amount ?? 0.25;
      const a = (s.heading * 30 * Math.PI) / 180;
      n.x = s.x - Math.sin(a) * d;
      n.z = s.z - Math.cos(a) * d;
      n.path = s.path + d;
    } else if (name === 'turn_left') n.heading = (s.heading + 1) % 12;
    else if (name === 'turn_right') n.heading = (s.heading + 11) % 12;
    return n;
  }

  #info(s: State) {
    const d = Math.hypot(s.x - 1, s.z + 2);
    return { distanceToGoal: d, success: d < 1, shortestPathLength: Math.hypot(1, 2), pathLength: s.path, unreachable: false };
  }

  reset(options: ResetOptions): ResetResult {
    this.resets++;
    const seed = options.seed ?? 0;
    this.#task = options.task ?? 'objectnav';
    this.#state = { x: 0, z: 0, heading: seed % 12, step: 0, path: 0, seed };
    const s = this.#state;
    const observation = { step: 0, rgb: this.frameOf(s), pose: this.#pose(s), collided: false, info: this.#info(s) };
    const goal =
      this.#task === 'imagenav'
        ? { task: this.#task, image: StandInSimulator.render(this.width, this.height, { seed: seed + 1, x: 1, z: -2, heading: 0, step: 0 }) }
        : this.#task === 'pointnav'
          ? { task: this.#task, position: [1, 0, -2] as const }
          : { task: this.#task, category: 'chair' };
    return { observation, goal };
  }

  step(action: Action): StepResult {
    if (this.#opts.failStep !== undefined) throw new Error(this.#opts.failStep);
    this.#state = this.#apply(this.#state, action.name, action.amount);
    const s = this.#state;
    return {
      observation: { step: s.step, rgb: this.frameOf(s), pose: this.#pose(s), collided: false, info: this.#info(s) },
      terminated: action.name === 'stop',
      truncated: action.name !== 'stop' && s.step >= this.maxSteps,
    };
  }

  #oracle(request: OracleRequest): OracleRollout[] {
    return request.sequences.map((seq) => {
      let s = this.#state; // never mutated: #apply returns a new state
      const frames: Frame[] = [];
      const masks: Uint8Array[] = [];
      const poses: Pose[] = [];
      for (const a of seq) {
        s = this.#apply(s, a);
        frames.push(this.frameOf(s));
        const mask = new Uint8Array(this.width * this.height);
        for (let i = 0; i < mask.length; i++) mask[i] = (i + s.step) % 3 === 0 ? 1 : 0;
        masks.push(mask);
        poses.push(this.#pose(s));
      }
      return { frames, masks, poses };
    });
  }
}

/** A message received by a RawPeer. */
export type RawMessage = { readonly kind: 'text'; readonly text: string; readonly json: unknown } | { readonly kind: 'binary'; readonly bytes: Uint8Array };

/** A hand-driven real socket: send anything, read every message, see how it closed. */
export class RawPeer {
  readonly messages: RawMessage[] = [];
  #waiters: ((m: RawMessage) => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly socket: WebSocket) {
    socket.on('error', () => undefined);
    socket.on('message', (data: RawData, isBinary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      let m: RawMessage;
      if (isBinary) m = { kind: 'binary', bytes: new Uint8Array(buf) };
      else {
        const text = buf.toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        m = { kind: 'text', text, json };
      }
      const w = this.#waiters.shift();
      if (w) w(m);
      else this.messages.push(m);
    });
    this.closed = new Promise((resolve) => socket.on('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
  }

  static async connect(url: string, headers?: Record<string, string>): Promise<RawPeer> {
    const socket = new WebSocket(url, { headers, perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
    const peer = new RawPeer(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return peer;
  }

  /** The next message (waits up to `ms`). */
  next(ms = 5000): Promise<RawMessage> {
    const m = this.messages.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`RawPeer: no message within ${ms} ms`)), ms);
      this.#waiters.push((msg) => {
        clearTimeout(t);
        resolve(msg);
      });
    });
  }

  /** The next message, which must be JSON text. */
  async nextJson(ms?: number): Promise<Record<string, unknown>> {
    const m = await this.next(ms);
    if (m.kind !== 'text' || typeof m.json !== 'object' || m.json === null) throw new Error(`expected JSON text, got ${m.kind}`);
    return m.json as Record<string, unknown>;
  }

  /** The next message, which must be binary. */
  async nextBinary(ms?: number): Promise<Uint8Array> {
    const m = await this.next(ms);
    if (m.kind !== 'binary') throw new Error(`expected binary, got text ${m.text}`);
    return m.bytes;
  }

  send(data: string | Uint8Array | object): void {
    this.socket.send(typeof data === 'string' || data instanceof Uint8Array ? data : JSON.stringify(data));
  }
}

/** A raw `ws` server on a free loopback port that hands each connection to `onPeer`. For hand-written peers. */
export async function rawServer(onPeer: (peer: RawPeer) => void): Promise<{ url: string; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  wss.on('connection', (socket) => onPeer(new RawPeer(socket)));
  const addr = wss.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return {
    url: `ws://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

/** The capabilities a hand-written simulator peer puts in hello. */
export const RAW_CAPABILITIES: Capabilities = {
  actions: { move_forward: { kind: 'move', amount: 0.25 }, stop: { kind: 'stop', amount: 0 } },
  camera: { width: 4, height: 2, hfov: 90 },
  encodings: ['raw', 'png', 'jpeg'],
  mode: 'lockstep',
  ops: [],
};

/** A smooth test image (JPEG-friendly) of the given size. */
export function gradientFrame(width: number, height: number, phase = 0): Frame {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = Math.round((255 * x) / Math.max(1, width - 1));
      data[i + 1] = Math.round((255 * y) / Math.max(1, height - 1));
      data[i + 2] = (96 + phase * 16) & 255;
    }
  }
  return { width, height, data };
}

/** Mean and max absolute difference between two frames' bytes. */
export function frameDiff(a: Frame, b: Frame): { mean: number; max: number } {
  if (a.data.length !== b.data.length) throw new Error('frameDiff: sizes differ');
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs((a.data[i] ?? 0) - (b.data[i] ?? 0));
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.data.length, max };
}

/** Resolves with the V4sError-like rejection of a promise; fails if it resolves. */
export async function rejectionOf(p: Promise<unknown>): Promise<Error & { code?: string; details?: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof Error) return e;
    throw new Error(`rejected with a non-Error: ${String(e)}`);
  }
  throw new Error('expected a rejection, but the promise resolved');
}

/** Polls `cond` every 5 ms until it holds; fails after `ms`. For effects that land on the other end of a socket. */
export async function waitFor(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`waitFor: ${what} did not hold within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
