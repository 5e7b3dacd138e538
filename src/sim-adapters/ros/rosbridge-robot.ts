/**
 * A real robot as an `Environment`, over rosbridge v2 (the `roslib` package): camera frames in
 * (`sensor_msgs/CompressedImage` JPEG/PNG, or `sensor_msgs/Image` rgb8/bgr8), optional odometry in
 * (`nav_msgs/Odometry`, converted to Habitat's frame), velocity out (`geometry_msgs/Twist` on a configurable
 * cmd_vel). Stream mode: every camera frame is pushed on `observations$`; `step` answers with the first frame
 * after the motion ended.
 *
 * Each discrete action is a velocity profile (a speed for the time the amount takes); `drive()` commands a
 * continuous velocity. Safety comes first:
 * - every velocity is clamped to `limits` before it is published;
 * - a watchdog publishes zero velocity when no command arrives within `watchdogMs` (after the end of the
 *   commanded motion), and zero goes out on `stop`, on `close()`, on any error, and first thing after a reconnect;
 * - nothing is ever queued while the link is down (roslib would send queued commands late, on reconnect);
 * - `emergencyStop()` is synchronous, never throws, and latches until `resume()`.
 * A dead process cannot publish anything: configure the robot's own command timeout as well (twist_mux,
 * docs/integrations.md).
 *
 * Usage:
 *   const robot = await RosbridgeRobot.connect({
 *     url: 'ws://robot.local:9090',
 *     camera: { topic: '/camera/image_raw/compressed', hfov: 69 },
 *     odometry: { topic: '/odom' },
 *     cmdVel: { topic: '/cmd_vel' },
 *     limits: { maxLinear: 0.3, maxAngular: 0.8 },
 *   });
 *   const { observation } = await robot.reset();
 *   await robot.step({ name: 'turn_left' });
 *   await robot.close();
 */
import { Observable, Subject } from 'rxjs';
import sharp from 'sharp';
import { V4sError, isV4sError } from '../../errors.js';
import type { Action, Frame, Observation, Pose } from '../../types.js';
import {
  ENVIRONMENT_SPEC_VERSION,
  type Capabilities,
  type EpisodeGoal,
  type Environment,
  type ResetOptions,
  type ResetResult,
  type StepResult,
} from '../environment.js';
import { decodeFrame, sniffEncoding } from '../protocol/image.js';
import { PROTOCOL_LIMITS } from '../protocol/types.js';
import { roslib, type RosConnection, type RosTopic } from './roslib.js';
import { CommandWatchdog, systemClock, type Clock, type TimerHandle } from './watchdog.js';

/** Camera message types the robot reads. */
export type CameraMessageType = 'sensor_msgs/CompressedImage' | 'sensor_msgs/Image';

/** Where the frames come from. */
export interface RosCameraOptions {
  /** e.g. `/camera/image_raw/compressed` or `/camera/color/image_raw`. */
  readonly topic: string;
  /** Default: CompressedImage when the topic ends with `/compressed`, else Image. */
  readonly type?: CameraMessageType;
  /** Horizontal field of view, degrees (default 90): what the world model's frames should match. */
  readonly hfov?: number;
  /** rosbridge `throttle_rate`: minimum ms between frames (default 0: every frame). */
  readonly throttleMs?: number;
}

/** Where velocity commands go. */
export interface RosCmdVelOptions {
  /** Default `/cmd_vel` (with twist_mux, use one of its input topics, e.g. `/cmd_vel_nav`). */
  readonly topic?: string;
  /** Default `geometry_msgs/Twist`; `TwistStamped` for controllers that expect it (rosbridge fills the header). */
  readonly type?: 'geometry_msgs/Twist' | 'geometry_msgs/TwistStamped';
}

/**
 * How a discrete action moves the robot: `amount` (metres for `move`, degrees for `turn`, as advertised in the
 * capabilities) at `linear` m/s or `angular` rad/s; the sign is the direction (REP 103: +x forward, +z left).
 */
export interface MotionProfile {
  readonly kind: 'move' | 'turn' | 'stop';
  readonly amount: number;
  readonly linear?: number;
  readonly angular?: number;
}

/** Largest speeds ever published, m/s and rad/s. */
export interface VelocityLimits {
  readonly maxLinear: number;
  readonly maxAngular: number;
}

/** A planar velocity command (REP 103): `linear` m/s forward, `angular` rad/s counter-clockwise (left). */
export interface Velocity {
  readonly linear?: number;
  readonly angular?: number;
}

/** The Twist actually published. */
export interface Twist {
  readonly linear: { readonly x: number; readonly y: number; readonly z: number };
  readonly angular: { readonly x: number; readonly y: number; readonly z: number };
}

/** Options of RosbridgeRobot.connect. */
export interface RosbridgeRobotOptions {
  /** rosbridge_server's WebSocket, e.g. `ws://robot.local:9090`. */
  readonly url: string;
  readonly camera: RosCameraOptions;
  /** `nav_msgs/Odometry` topic, e.g. `/odom`: gives observations a pose (Habitat frame). */
  readonly odometry?: { readonly topic: string };
  readonly cmdVel?: RosCmdVelOptions;
  /** Action name → profile (default DEFAULT_ROBOT_ACTIONS: 0.25 m at 0.2 m/s, 30° at 0.5 rad/s, stop). */
  readonly actions?: Readonly<Record<string, MotionProfile>>;
  /** Default 0.5 m/s and 1.0 rad/s. Profiles faster than this are slowed down (and take longer). */
  readonly limits?: VelocityLimits;
  /** Zero velocity when no command arrives within this many ms (default 500). */
  readonly watchdogMs?: number;
  /** During a motion, the command is re-published at this rate (default 10 Hz), for robots whose own timeout expects a stream. */
  readonly publishHz?: number;
  /** After a motion ends, wait this long before taking the frame that answers the step (default 200 ms). */
  readonly settleMs?: number;
  /** How long reset/step wait for a camera frame (default 3000 ms), then E_TIMEOUT. */
  readonly frameTimeoutMs?: number;
  /** Time to reach rosbridge (default 10 s), then E_CONNECT. */
  readonly connectTimeoutMs?: number;
  /** Time to wait for the first camera frame at connect (default 10 s), then E_TIMEOUT naming the topic. */
  readonly firstFrameTimeoutMs?: number;
  /** Longest motion one step may command (default 10 s), so a huge amount cannot drive off. */
  readonly maxMotionMs?: number;
  /** After the link drops, dial again every this many ms (default 1000; 0: do not, and the environment closes). */
  readonly reconnectMs?: number;
  /** The goal `reset` reports (a robot has no episode dataset). */
  readonly goal?: EpisodeGoal;
  /** Clock for motion profiles and the watchdog (tests pass a ManualClock). I/O timeouts use real time. */
  readonly clock?: Clock;
}

/** Habitat-like defaults: 0.25 m forward, 30° turns, at gentle speeds. */
export const DEFAULT_ROBOT_ACTIONS: Readonly<Record<string, MotionProfile>> = {
  move_forward: { kind: 'move', amount: 0.25, linear: 0.2 },
  turn_left: { kind: 'turn', amount: 30, angular: 0.5 },
  turn_right: { kind: 'turn', amount: 30, angular: -0.5 },
  stop: { kind: 'stop', amount: 0 },
};

/** Counters (for reports and tests). */
export interface RobotStats {
  /** Camera frames decoded. */
  frames: number;
  /** Frames dropped because decoding fell behind. */
  droppedFrames: number;
  /** Zero-velocity commands published, by reason. */
  zeros: Record<string, number>;
  /** Velocity commands refused because the link was down (never queued). */
  unsentCommands: number;
  /** Real reconnections to rosbridge after a drop. */
  reconnects: number;
  /**
   * `close` events ignored because the socket was still open (`ros.isConnected`): roslib emits every incoming
   * message as an event named by its `topic` or `id`, so a message on a topic named `close` fires roslib's own
   * `close` event. Not a drop: no abort, no reconnect (docs/security.md).
   */
  spuriousCloses: number;
}

const ZERO: Twist = { linear: { x: 0, y: 0, z: 0 }, angular: { x: 0, y: 0, z: 0 } };
const DEG = Math.PI / 180;
/** Frames waiting to be decoded before new ones are dropped (the newest frame matters, not the backlog). */
const MAX_PENDING_DECODES = 2;

type RosMessage = Record<string, unknown>;

interface FrameWaiter {
  readonly after: number;
  readonly resolve: (o: Observation) => void;
  readonly reject: (e: V4sError) => void;
  readonly timer: NodeJS.Timeout;
}

interface Motion {
  readonly twist: Twist;
  repeat?: TimerHandle;
  end?: TimerHandle;
  readonly done: (error?: V4sError) => void;
}

function isObj(v: unknown): v is RosMessage {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** `uint8[]` from rosbridge: base64 in JSON (or a number list, or bytes with CBOR). */
export function rosBytes(v: unknown, what: string): Uint8Array {
  if (typeof v === 'string') return new Uint8Array(Buffer.from(v, 'base64'));
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v) && v.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) return Uint8Array.from(v as number[]);
  throw new V4sError('E_FRAME_DECODE', `${what}: "data" is neither base64 nor a byte list`);
}

/** `sensor_msgs/Image` (rgb8 or bgr8, any row step) → Frame. */
export function rosImageToFrame(msg: RosMessage, what = 'sensor_msgs/Image'): Frame {
  const { width, height, encoding, step } = msg;
  if (!Number.isInteger(width) || !Number.isInteger(height) || !Number.isInteger(step)) {
    throw new V4sError('E_FRAME_DECODE', `${what}: width, height and step must be integers`);
  }
  const w = width as number;
  const h = height as number;
  const rowStep = step as number;
  if (w < 1 || h < 1 || w > PROTOCOL_LIMITS.maxImageSide || h > PROTOCOL_LIMITS.maxImageSide || w * h > PROTOCOL_LIMITS.maxImagePixels) {
    throw new V4sError('E_FRAME_SIZE', `${what}: ${w}×${h} is outside 1…8192 per side / 16 Mpixel`);
  }
  if (encoding !== 'rgb8' && encoding !== 'bgr8') {
    throw new V4sError('E_FRAME_DECODE', `${what}: encoding ${JSON.stringify(encoding)} is not supported (rgb8, bgr8; or use a CompressedImage topic)`);
  }
  const data = rosBytes(msg.data, what);
  if (rowStep < w * 3 || data.byteLength < rowStep * (h - 1) + w * 3) {
    throw new V4sError('E_FRAME_SIZE', `${what}: ${data.byteLength} bytes with step ${rowStep} cannot hold ${w}×${h} ${encoding}`);
  }
  const out = new Uint8Array(w * h * 3);
  const bgr = encoding === 'bgr8';
  for (let y = 0; y < h; y++) {
    const src = y * rowStep;
    const dst = y * w * 3;
    if (!bgr) {
      out.set(data.subarray(src, src + w * 3), dst);
      continue;
    }
    for (let x = 0; x < w; x++) {
      const s = src + x * 3;
      const d = dst + x * 3;
      out[d] = data[s + 2] ?? 0;
      out[d + 1] = data[s + 1] ?? 0;
      out[d + 2] = data[s] ?? 0;
    }
  }
  return { width: w, height: h, data: out };
}

/** Size of JPEG/PNG bytes (header only), refusing anything else or anything over the protocol's pixel limit. */
async function compressedSize(bytes: Uint8Array, what: string): Promise<{ width: number; height: number; encoding: 'png' | 'jpeg' }> {
  const encoding = sniffEncoding(bytes);
  if (encoding === undefined) throw new V4sError('E_FRAME_DECODE', `${what}: bytes are neither JPEG nor PNG`);
  const meta = await sharp(bytes)
    .metadata()
    .catch((e: unknown) => {
      throw new V4sError('E_FRAME_DECODE', `${what}: ${e instanceof Error ? e.message : String(e)}`, undefined, { cause: e });
    });
  const { width, height } = meta;
  if (width === undefined || height === undefined || width > PROTOCOL_LIMITS.maxImageSide || height > PROTOCOL_LIMITS.maxImageSide || width * height > PROTOCOL_LIMITS.maxImagePixels) {
    throw new V4sError('E_FRAME_SIZE', `${what}: image size ${String(width)}×${String(height)} is missing or too large`);
  }
  return { width, height, encoding };
}

/**
 * A robot over rosbridge v2 as an `Environment` (stream mode). Create it with `RosbridgeRobot.connect`.
 */
export class RosbridgeRobot implements Environment {
  readonly specificationVersion = ENVIRONMENT_SPEC_VERSION;
  readonly capabilities: Capabilities;
  /** Every decoded camera frame, as an Observation (step = the current step index). Completes on close. */
  readonly observations$: Observable<Observation>;
  /** Failures that belong to no call: undecodable frames, link drops, watchdog trips. */
  readonly errors$: Observable<V4sError>;
  readonly stats: RobotStats = { frames: 0, droppedFrames: 0, zeros: {}, unsentCommands: 0, reconnects: 0, spuriousCloses: 0 };
  /** The watchdog guarding velocity commands. */
  readonly watchdog: CommandWatchdog;

  #opts: RosbridgeRobotOptions;
  #ros: RosConnection;
  #cmd: RosTopic<RosMessage>;
  #camera: RosTopic<RosMessage>;
  #odom: RosTopic<RosMessage> | undefined;
  #clock: Clock;
  #actions: Readonly<Record<string, MotionProfile>>;
  #limits: VelocityLimits;
  #observations = new Subject<Observation>();
  #errors = new Subject<V4sError>();
  #connected = false;
  #closing = false;
  #closed = false;
  #estopped = false;
  #step = 0;
  #motion: Motion | undefined;
  #lastCommand: Twist = ZERO;
  #pose: Pose | undefined;
  #toHabitat: ((p: Pose) => Pose) | undefined;
  #frameShape: { width: number; height: number } | undefined;
  #latest: { observation: Observation; at: number } | undefined;
  #waiters: FrameWaiter[] = [];
  #decodeChain: Promise<void> = Promise.resolve();
  #pendingDecodes = 0;
  #busy = false;
  #reconnectTimer: NodeJS.Timeout | undefined;

  private constructor(options: RosbridgeRobotOptions, ros: RosConnection, shape: { width: number; height: number }, toHabitat: ((p: Pose) => Pose) | undefined) {
    this.#opts = options;
    this.#ros = ros;
    this.#clock = options.clock ?? systemClock;
    this.#actions = options.actions ?? DEFAULT_ROBOT_ACTIONS;
    this.#limits = options.limits ?? { maxLinear: 0.5, maxAngular: 1.0 };
    this.#toHabitat = toHabitat;
    this.#frameShape = shape;
    const actions: Record<string, { kind: 'move' | 'turn' | 'stop'; amount: number }> = {};
    for (const [name, p] of Object.entries(this.#actions)) actions[name] = { kind: p.kind, amount: p.amount };
    this.capabilities = {
      actions,
      camera: { width: shape.width, height: shape.height, hfov: options.camera.hfov ?? 90 },
      encodings: ['raw'],
      mode: 'stream',
      ops: [],
      name: 'rosbridge',
    };
    this.observations$ = this.#observations.asObservable();
    this.errors$ = this.#errors.asObservable();
    this.watchdog = new CommandWatchdog({
      timeoutMs: options.watchdogMs ?? 500,
      clock: this.#clock,
      onTimeout: () => {
        const err = new V4sError('E_TIMEOUT', `watchdog: no velocity command within ${options.watchdogMs ?? 500} ms; zero velocity sent`);
        this.#endMotion(err);
        this.#publishZero('watchdog');
        this.#errors.next(err);
      },
    });
    const { Topic } = roslib();
    const cmdType = options.cmdVel?.type ?? 'geometry_msgs/Twist';
    this.#cmd = new Topic<RosMessage>({ ros, name: options.cmdVel?.topic ?? '/cmd_vel', messageType: cmdType, queue_size: 1 });
    const camType = RosbridgeRobot.cameraType(options.camera);
    this.#camera = new Topic<RosMessage>({ ros, name: options.camera.topic, messageType: camType, throttle_rate: options.camera.throttleMs ?? 0, queue_length: 1 });
    if (options.odometry !== undefined) {
      this.#odom = new Topic<RosMessage>({ ros, name: options.odometry.topic, messageType: 'nav_msgs/Odometry', throttle_rate: 0, queue_length: 1 });
    }
  }

  static cameraType(camera: RosCameraOptions): CameraMessageType {
    return camera.type ?? (camera.topic.endsWith('/compressed') ? 'sensor_msgs/CompressedImage' : 'sensor_msgs/Image');
  }

  /**
   * Connects to rosbridge, advertises cmd_vel and publishes zero velocity, subscribes to the camera (and
   * odometry), and waits for the first frame (its size becomes `capabilities.camera`). Rejects with E_CONFIG
   * (bad options), E_CONNECT (rosbridge unreachable) or E_TIMEOUT (no frame on the camera topic).
   */
  static async connect(options: RosbridgeRobotOptions): Promise<RosbridgeRobot> {
    checkOptions(options);
    const toHabitat = options.odometry !== undefined ? (await import('../pose-frames.js')).rosToHabitatPose : undefined;
    const { Ros } = roslib();
    const ros = new Ros({});
    const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    await new Promise<void>((resolve, reject) => {
      const fail = (why: string): void => {
        cleanup();
        ros.close();
        reject(
          new V4sError(
            'E_CONNECT',
            `cannot connect to rosbridge at ${options.url}: ${why}. Is rosbridge_server running on the robot ` +
              '(ros2 launch rosbridge_server rosbridge_websocket_launch.xml) and the port (default 9090) reachable?',
            { url: options.url },
          ),
        );
      };
      const onConnection = (): void => {
        cleanup();
        resolve();
      };
      const onError = (e: unknown): void => fail(describeEvent(e) ?? 'connection error');
      const onClose = (): void => fail('the connection closed');
      const timer = setTimeout(() => fail(`no connection within ${connectTimeoutMs} ms`), connectTimeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        ros.off('connection', onConnection);
        ros.off('error', onError);
        ros.off('close', onClose);
      };
      ros.on('connection', onConnection);
      ros.on('error', onError);
      ros.on('close', onClose);
      ros.connect(options.url).catch((e: unknown) => fail(e instanceof Error ? e.message : String(e)));
    });
    // The first frame tells the camera's size; the robot is built around it.
    const pre = new FirstFrame(ros, options);
    let shape: { width: number; height: number };
    try {
      shape = await pre.wait(options.firstFrameTimeoutMs ?? 10_000);
    } catch (e) {
      ros.close();
      throw e;
    }
    const robot = new RosbridgeRobot(options, ros, shape, toHabitat);
    robot.#start();
    return robot;
  }

  #start(): void {
    this.#connected = true;
    this.#ros.on('close', () => {
      // roslib sets isConnected to false before it re-emits its transport's close; a `close` while the socket is
      // still open is an incoming message on a topic (or id) named "close", not a drop (docs/security.md).
      if (this.#ros.isConnected) {
        this.stats.spuriousCloses++;
        // roslib's own topics take it for a drop too: they re-send their subscribe/advertise at once (harmless on
        // a live socket) and latch `waitForReconnect` until the next `connection`, so after a REAL drop they would
        // not re-subscribe. Their listeners run after this one (registered later): undo the latch once they have.
        queueMicrotask(() => {
          for (const t of [this.#cmd, this.#camera, this.#odom]) if (t !== undefined) t.waitForReconnect = false;
        });
        return;
      }
      this.#onDisconnect();
    });
    this.#ros.on('error', (e: unknown) => {
      if (this.#connected) this.#fail(new V4sError('E_SIMULATOR', `rosbridge error: ${describeEvent(e) ?? 'unknown'}`));
    });
    this.#ros.on('connection', () => {
      if (this.#closing) return;
      this.#connected = true;
      this.stats.reconnects++;
      // After the topics' own re-advertise/re-subscribe (registered earlier, emitted in the same turn): zero first.
      queueMicrotask(() => this.#publishZero('reconnected'));
    });
    this.#cmd.advertise();
    this.#publishZero('connected');
    this.#camera.subscribe((msg) => this.#onCameraMessage(msg));
    this.#odom?.subscribe((msg) => this.#onOdometry(msg));
  }

  /** The Twist most recently published (ZERO after any stop). */
  get lastCommand(): Twist {
    return this.#lastCommand;
  }

  /** True while the link to rosbridge is up. */
  get isConnected(): boolean {
    return this.#connected;
  }

  /** True after emergencyStop() until resume(). */
  get isEmergencyStopped(): boolean {
    return this.#estopped;
  }

  // -- safety ---------------------------------------------------------------------------------------------

  /**
   * Stops the robot now: cancels any motion, publishes zero velocity, and latches: every motion command is
   * refused (E_EMERGENCY_STOP) until `resume()`. Synchronous, never throws. Returns whether the zero command
   * went out (false while the link is down: then the robot's own timeout must act, and zero goes out on reconnect).
   */
  emergencyStop(): boolean {
    this.#estopped = true;
    try {
      this.#endMotion(new V4sError('E_EMERGENCY_STOP', 'emergencyStop() was called during the motion'));
      return this.#publishZero('emergencyStop');
    } catch {
      return false;
    }
  }

  /** Releases the emergency-stop latch (the robot stays still until the next command). */
  resume(): void {
    this.#estopped = false;
  }

  /** Clamps a velocity to `limits` (non-finite components become 0). */
  clamp(v: Velocity): Twist {
    const c = (x: number | undefined, max: number): number => (x === undefined || !Number.isFinite(x) ? 0 : Math.max(-max, Math.min(max, x)));
    return { linear: { x: c(v.linear, this.#limits.maxLinear), y: 0, z: 0 }, angular: { x: 0, y: 0, z: c(v.angular, this.#limits.maxAngular) } };
  }

  /**
   * Commands a continuous velocity (clamped). Without `durationMs` it lasts until the next command, or until
   * the watchdog stops it `watchdogMs` after this call: call it again faster than that to keep moving. With
   * `durationMs`, the robot stops by itself after that long. Returns the Twist published. Throws E_CLOSED,
   * E_EMERGENCY_STOP, E_BUSY (a step is running), E_CONFIG.
   */
  drive(velocity: Velocity, options: { readonly durationMs?: number } = {}): Twist {
    this.#checkMotionAllowed('drive');
    if (this.#busy) throw new V4sError('E_BUSY', 'drive: a step is in progress; await it first');
    const d = options.durationMs;
    if (d !== undefined && (!Number.isFinite(d) || d <= 0 || d > (this.#opts.maxMotionMs ?? 10_000))) {
      throw new V4sError('E_CONFIG', `drive: durationMs must be in (0, ${this.#opts.maxMotionMs ?? 10_000}]`);
    }
    const twist = this.clamp(velocity);
    void this.#runMotion(twist, d).catch(() => undefined);
    return twist;
  }

  #checkMotionAllowed(what: string): void {
    if (this.#closed || this.#closing) throw new V4sError('E_CLOSED', `${what}: the robot connection is closed`);
    if (this.#estopped) throw new V4sError('E_EMERGENCY_STOP', `${what}: the robot is emergency-stopped; call resume() first`);
    if (!this.#connected) {
      throw new V4sError('E_CLOSED', `${what}: the link to rosbridge at ${this.#opts.url} is down${(this.#opts.reconnectMs ?? 1000) > 0 ? ' (reconnecting)' : ''}`);
    }
  }

  // -- Environment --------------------------------------------------------------------------------------

  /** Stops the robot and starts counting steps from 0; resolves with the next frame (and the configured goal). */
  async reset(_options: ResetOptions = {}): Promise<ResetResult> {
    if (this.#closed || this.#closing) throw new V4sError('E_CLOSED', 'reset: the robot connection is closed');
    if (this.#busy) throw new V4sError('E_BUSY', 'reset: a step is in progress; await it first');
    this.#endMotion(new V4sError('E_ABORTED', 'reset during a motion'));
    this.#publishZero('reset');
    this.#step = 0;
    const observation = await this.#nextFrame(performance.now() + (this.#opts.settleMs ?? 200), 'reset');
    return this.#opts.goal === undefined ? { observation } : { observation, goal: this.#opts.goal };
  }

  /**
   * Executes one action: its velocity profile, then zero, then the first frame `settleMs` later. `stop`
   * publishes zero and ends the episode. Rejects with E_UNKNOWN_ACTION, E_EMERGENCY_STOP, E_CLOSED (link down
   * or lost during the motion), E_BUSY, E_CONFIG (amount), E_TIMEOUT (no frame).
   */
  async step(action: Action): Promise<StepResult> {
    if (this.#closed || this.#closing) throw new V4sError('E_CLOSED', 'step: the robot connection is closed');
    const name = action?.name;
    if (typeof name !== 'string' || !Object.hasOwn(this.#actions, name)) {
      throw new V4sError('E_UNKNOWN_ACTION', `step: unknown action ${JSON.stringify(name)} (actions: ${Object.keys(this.#actions).join(', ')})`);
    }
    const profile = this.#actions[name] as MotionProfile;
    if (this.#busy) throw new V4sError('E_BUSY', `step ${name}: the previous step is still running; await it first`);
    if (action.amount !== undefined && !Number.isFinite(action.amount)) throw new V4sError('E_CONFIG', `step ${name}: amount must be a finite number`);
    this.#busy = true;
    try {
      if (profile.kind === 'stop') {
        this.#endMotion(new V4sError('E_ABORTED', 'stop during a motion'));
        this.#publishZero('stop');
        const observation = await this.#nextFrame(performance.now() + (this.#opts.settleMs ?? 200), `step ${name}`);
        return { observation, terminated: true, truncated: false };
      }
      this.#checkMotionAllowed(`step ${name}`);
      const { twist, durationMs } = this.#profileMotion(name, profile, action.amount);
      this.#step++;
      if (durationMs > 0) await this.#runMotion(twist, durationMs);
      const observation = await this.#nextFrame(performance.now() + (this.#opts.settleMs ?? 200), `step ${name}`);
      return { observation, terminated: false, truncated: false };
    } catch (e) {
      // Whatever went wrong, the robot is told to stand still.
      this.#publishZero('error');
      throw e;
    } finally {
      this.#busy = false;
    }
  }

  /** The Twist and duration of a profile for an amount (clamped speeds make it last longer, never go further). */
  #profileMotion(name: string, p: MotionProfile, amountOverride: number | undefined): { twist: Twist; durationMs: number } {
    const amount = amountOverride ?? p.amount;
    const speed = p.kind === 'move' ? p.linear ?? 0 : p.angular ?? 0;
    const twist = this.clamp(p.kind === 'move' ? { linear: Math.sign(amount) * speed } : { angular: Math.sign(amount) * speed });
    const v = p.kind === 'move' ? Math.abs(twist.linear.x) : Math.abs(twist.angular.z);
    const distance = p.kind === 'move' ? Math.abs(amount) : Math.abs(amount) * DEG;
    if (distance === 0) return { twist: ZERO, durationMs: 0 };
    if (v === 0) throw new V4sError('E_CONFIG', `action ${name}: its profile has no ${p.kind === 'move' ? 'linear' : 'angular'} speed`);
    const durationMs = (distance / v) * 1000;
    const max = this.#opts.maxMotionMs ?? 10_000;
    if (durationMs > max) {
      throw new V4sError('E_CONFIG', `step ${name}: amount ${amount} would take ${Math.round(durationMs)} ms at ${v.toFixed(3)}/s, over maxMotionMs ${max}`);
    }
    return { twist, durationMs };
  }

  /** Publishes `twist` now and at publishHz; zero after `durationMs` (if given). Resolves at the end; rejects when cut short. */
  #runMotion(twist: Twist, durationMs: number | undefined): Promise<void> {
    this.#endMotion(new V4sError('E_ABORTED', 'superseded by a newer command'));
    return new Promise<void>((resolve, reject) => {
      const motion: Motion = {
        twist,
        done: (error) => {
          this.#clock.clearTimeout(motion.repeat);
          this.#clock.clearTimeout(motion.end);
          if (this.#motion === motion) this.#motion = undefined;
          if (error === undefined) resolve();
          else reject(error);
        },
      };
      this.#motion = motion;
      if (!this.#publish(twist)) {
        motion.done(new V4sError('E_CLOSED', `the link to rosbridge at ${this.#opts.url} is down; nothing was sent`));
        return;
      }
      this.watchdog.feed(durationMs ?? 0);
      const period = 1000 / (this.#opts.publishHz ?? 10);
      const repeat = (): void => {
        if (this.#motion !== motion) return;
        this.#publish(twist);
        motion.repeat = this.#clock.setTimeout(repeat, period);
      };
      motion.repeat = this.#clock.setTimeout(repeat, period);
      if (durationMs !== undefined) {
        motion.end = this.#clock.setTimeout(() => {
          if (this.#motion !== motion) return;
          this.watchdog.disarm();
          this.#publishZero('motion end');
          motion.done();
        }, durationMs);
      }
    });
  }

  /** Cancels the running motion (its promise rejects with `why`). Publishes nothing by itself. */
  #endMotion(why: V4sError): void {
    const m = this.#motion;
    this.#motion = undefined;
    this.watchdog.disarm();
    m?.done(why);
  }

  #publish(twist: Twist): boolean {
    if (!this.#connected || !this.#ros.isConnected) {
      // Never hand roslib a command while the link is down: it would queue it and send it late, on reconnect.
      this.stats.unsentCommands++;
      return false;
    }
    const msg: RosMessage = (this.#opts.cmdVel?.type ?? 'geometry_msgs/Twist') === 'geometry_msgs/TwistStamped' ? { twist } : { ...twist };
    try {
      this.#cmd.publish(msg);
    } catch {
      this.stats.unsentCommands++;
      return false;
    }
    this.#lastCommand = twist;
    return true;
  }

  #publishZero(reason: string): boolean {
    const sent = this.#publish(ZERO);
    if (sent) this.stats.zeros[reason] = (this.stats.zeros[reason] ?? 0) + 1;
    return sent;
  }

  /** Any error: stop the robot, fail what is pending, report it. */
  #fail(err: V4sError): void {
    this.#endMotion(err);
    this.#publishZero('error');
    this.#errors.next(err);
  }

  #onDisconnect(): void {
    if (this.#closing || this.#closed) return;
    const wasConnected = this.#connected;
    this.#connected = false;
    const err = new V4sError(
      'E_CLOSED',
      `lost the link to rosbridge at ${this.#opts.url}; no zero velocity could be sent, so the robot keeps its last ` +
        'command until its own timeout (twist_mux) stops it',
    );
    this.#endMotion(err);
    for (const w of this.#waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    if (wasConnected) this.#errors.next(err);
    const every = this.#opts.reconnectMs ?? 1000;
    if (every <= 0) {
      void this.close();
      return;
    }
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#closing || this.#connected) return;
      // A failed attempt emits 'close' again, which schedules the next one.
      this.#ros.connect(this.#opts.url).catch(() => this.#onDisconnect());
    }, every);
  }

  // -- frames -------------------------------------------------------------------------------------------

  #onCameraMessage(msg: RosMessage): void {
    if (this.#closed) return;
    const at = performance.now();
    if (this.#pendingDecodes >= MAX_PENDING_DECODES) {
      this.stats.droppedFrames++;
      return;
    }
    this.#pendingDecodes++;
    this.#decodeChain = this.#decodeChain.then(async () => {
      this.#pendingDecodes--;
      let rgb: Frame;
      try {
        rgb = await this.#decode(msg);
      } catch (e) {
        this.#fail(isV4sError(e) ? e : new V4sError('E_FRAME_DECODE', `camera ${this.#opts.camera.topic}: ${String(e)}`));
        return;
      }
      this.stats.frames++;
      const observation: Observation = this.#pose === undefined ? { step: this.#step, rgb, info: {} } : { step: this.#step, rgb, pose: this.#pose, info: {} };
      this.#latest = { observation, at };
      this.#observations.next(observation);
      for (const w of [...this.#waiters]) {
        if (at >= w.after) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          clearTimeout(w.timer);
          w.resolve(observation);
        }
      }
    });
  }

  async #decode(msg: RosMessage): Promise<Frame> {
    const topic = this.#opts.camera.topic;
    if (RosbridgeRobot.cameraType(this.#opts.camera) === 'sensor_msgs/Image') return rosImageToFrame(msg, `camera ${topic}`);
    const what = `camera ${topic} (format ${JSON.stringify(msg.format)})`;
    const bytes = rosBytes(msg.data, what);
    const encoding = sniffEncoding(bytes);
    if (encoding === undefined) throw new V4sError('E_FRAME_DECODE', `${what}: bytes are neither JPEG nor PNG`);
    const shape = this.#frameShape ?? (await compressedSize(bytes, what));
    return decodeFrame(bytes, { width: shape.width, height: shape.height, encoding }, what);
  }

  #onOdometry(msg: RosMessage): void {
    const pose = isObj(msg.pose) && isObj(msg.pose.pose) ? msg.pose.pose : undefined;
    const p = pose !== undefined && isObj(pose.position) ? pose.position : undefined;
    const q = pose !== undefined && isObj(pose.orientation) ? pose.orientation : undefined;
    if (p === undefined || q === undefined || ![p.x, p.y, p.z, q.x, q.y, q.z, q.w].every(finite) || this.#toHabitat === undefined) {
      this.#errors.next(new V4sError('E_PROTOCOL_FIELD', `odometry ${this.#opts.odometry?.topic ?? ''}: pose.pose.position/orientation must be finite numbers`));
      return;
    }
    try {
      this.#pose = this.#toHabitat({
        position: [p.x as number, p.y as number, p.z as number],
        rotation: [q.x as number, q.y as number, q.z as number, q.w as number],
      });
    } catch (e) {
      this.#errors.next(isV4sError(e) ? e : new V4sError('E_PROTOCOL_FIELD', String(e)));
    }
  }

  /** The first frame that arrives at or after `after` (performance.now() time), re-stamped with the current step. */
  #nextFrame(after: number, what: string): Promise<Observation> {
    const ms = this.#opts.frameTimeoutMs ?? 3000;
    return new Promise<Observation>((resolve, reject) => {
      const waiter: FrameWaiter = {
        after,
        resolve: (o) => resolve({ ...o, step: this.#step }),
        reject,
        timer: setTimeout(() => {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          reject(new V4sError('E_TIMEOUT', `${what}: no camera frame on ${this.#opts.camera.topic} within ${ms} ms`));
        }, ms + Math.max(0, after - performance.now())),
      };
      this.#waiters.push(waiter);
    });
  }

  /** The newest frame received (undefined before the first). */
  get latestObservation(): Observation | undefined {
    return this.#latest?.observation;
  }

  /** Publishes zero velocity, unsubscribes, unadvertises and closes the link. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (!this.#closing) {
      this.#endMotion(new V4sError('E_CLOSED', 'the robot connection was closed during the motion'));
      this.#publishZero('close');
      this.#closing = true;
      clearTimeout(this.#reconnectTimer);
      for (const w of this.#waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new V4sError('E_CLOSED', 'the robot connection was closed'));
      }
      if (this.#connected) {
        this.#camera.unsubscribe();
        this.#odom?.unsubscribe();
        this.#cmd.unadvertise();
      }
      this.#connected = false;
      await this.#decodeChain;
      this.#ros.close();
      this.#closed = true;
      this.#observations.complete();
      this.#errors.complete();
    }
  }
}

/** Waits for the first camera message at connect, to learn the frame size. */
class FirstFrame {
  readonly #ros: RosConnection;
  readonly #options: RosbridgeRobotOptions;

  constructor(ros: RosConnection, options: RosbridgeRobotOptions) {
    this.#ros = ros;
    this.#options = options;
  }

  wait(ms: number): Promise<{ width: number; height: number }> {
    const cam = this.#options.camera;
    const type = RosbridgeRobot.cameraType(cam);
    const { Topic } = roslib();
    const topic = new Topic<RosMessage>({ ros: this.#ros, name: cam.topic, messageType: type, queue_length: 1, reconnect_on_close: false });
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err: V4sError | undefined, shape?: { width: number; height: number }): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        topic.unsubscribe(onMessage);
        if (shape !== undefined) resolve(shape);
        else reject(err);
      };
      const onMessage = (msg: RosMessage): void => {
        void (async () => {
          const what = `camera ${cam.topic}`;
          try {
            if (type === 'sensor_msgs/Image') {
              const f = rosImageToFrame(msg, what);
              finish(undefined, { width: f.width, height: f.height });
            } else {
              const s = await compressedSize(rosBytes(msg.data, what), what);
              finish(undefined, { width: s.width, height: s.height });
            }
          } catch (e) {
            finish(isV4sError(e) ? e : new V4sError('E_FRAME_DECODE', `${what}: ${String(e)}`));
          }
        })();
      };
      const timer = setTimeout(
        () =>
          finish(
            new V4sError(
              'E_TIMEOUT',
              `no ${type} message on ${cam.topic} within ${ms} ms after connecting to ${this.#options.url}; check the topic name and type ` +
                `(ros2 topic list -t; ros2 topic hz ${cam.topic})`,
            ),
          ),
        ms,
      );
      topic.subscribe(onMessage);
    });
  }
}

function describeEvent(e: unknown): string | undefined {
  if (e instanceof Error) return e.message;
  if (isObj(e)) {
    const m = e.message ?? (isObj(e.error) ? e.error.message : undefined);
    if (typeof m === 'string' && m.length > 0) return m;
  }
  return typeof e === 'string' ? e : undefined;
}

function checkOptions(o: RosbridgeRobotOptions): void {
  const bad = (what: string): never => {
    throw new V4sError('E_CONFIG', `RosbridgeRobot: ${what}`);
  };
  let url: URL | undefined;
  try {
    url = new URL(o.url);
  } catch {
    bad(`url ${JSON.stringify(o.url)} is not a URL (expected ws://host:9090)`);
  }
  if (url !== undefined && url.protocol !== 'ws:' && url.protocol !== 'wss:') bad(`url ${o.url} must be ws:// or wss://`);
  if (typeof o.camera?.topic !== 'string' || !o.camera.topic.startsWith('/')) bad('camera.topic must be a topic name starting with "/"');
  if (o.camera.hfov !== undefined && !(o.camera.hfov > 0 && o.camera.hfov < 360)) bad('camera.hfov must be in (0, 360) degrees');
  const lim = o.limits;
  if (lim !== undefined && !(lim.maxLinear >= 0 && Number.isFinite(lim.maxLinear) && lim.maxAngular >= 0 && Number.isFinite(lim.maxAngular))) {
    bad('limits.maxLinear and limits.maxAngular must be finite numbers ≥ 0');
  }
  for (const [k, v] of Object.entries({ watchdogMs: o.watchdogMs, publishHz: o.publishHz, frameTimeoutMs: o.frameTimeoutMs })) {
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) bad(`${k} must be a number > 0`);
  }
  for (const [name, p] of Object.entries(o.actions ?? {})) {
    if (!['move', 'turn', 'stop'].includes(p.kind)) bad(`actions.${name}.kind must be move, turn or stop`);
    if (!(Number.isFinite(p.amount) && p.amount >= 0)) bad(`actions.${name}.amount must be a number ≥ 0`);
    for (const s of [p.linear, p.angular]) if (s !== undefined && !Number.isFinite(s)) bad(`actions.${name}: speeds must be finite`);
  }
}
