/**
 * `v4s-nav/testing`: test doubles so users can test their agents and planners without a simulator.
 *
 * - `ScriptedEnvironment`: an in-process `Environment` with simple 2-D kinematics in Habitat's frame
 *   (move along −Z rotated by yaw, turn about +Y), no walls unless you script them, straight-line distances,
 *   frames from a list or a function of the state, configurable success, fault and latency injection.
 * - `RecordedFrameSource`: recorded frames replayed as an Observable at a given rate (any RxJS scheduler, so
 *   `TestScheduler` works).
 *
 * Usage:
 * ```ts
 * import { ScriptedEnvironment } from 'v4s-nav/testing';
 * const env = new ScriptedEnvironment({ goal: { task: 'pointnav', position: [0, 0, -2] } });
 * const trace = await runEpisode(env, myPlanner);
 * assert.equal(trace.final.info.success, true);
 * ```
 */
import { Observable, Subject, asyncScheduler, interval, map, take, type SchedulerLike, type Subscription } from 'rxjs';
import { V4sError } from '../errors.js';
import {
  ENVIRONMENT_SPEC_VERSION,
  type Capabilities,
  type EpisodeGoal,
  type Environment,
  type ResetOptions,
  type ResetResult,
  type StepResult,
} from '../sim-adapters/environment.js';
import type { Action, EpisodeInfo, Frame, Observation, Pose } from '../types.js';

/** Habitat's benchmark actions, a 64×64 camera with hfov 90°, raw frames, lockstep. */
export const DEFAULT_TEST_CAPABILITIES: Capabilities = {
  actions: {
    move_forward: { kind: 'move', amount: 0.25 },
    turn_left: { kind: 'turn', amount: 30 },
    turn_right: { kind: 'turn', amount: 30 },
    stop: { kind: 'stop', amount: 0 },
  },
  camera: { width: 64, height: 64, hfov: 90 },
  encodings: ['raw'],
  mode: 'lockstep',
  ops: [],
  tasks: ['objectnav', 'imagenav', 'pointnav'],
  name: 'scripted',
};

/** The scripted environment's state, as its hooks see it. */
export interface ScriptedState {
  readonly seed: number | undefined;
  readonly step: number;
  /** Habitat frame, metres; y stays 0. */
  readonly position: readonly [number, number, number];
  /** Rotation about +Y in degrees; 0 looks along −Z, positive turns left. */
  readonly yawDeg: number;
  /** Metres travelled this episode (p in SPL). */
  readonly pathLength: number;
  /** Names of the actions received this episode. */
  readonly actions: readonly string[];
  readonly collided: boolean;
  readonly goal: EpisodeGoal | undefined;
}

export interface ScriptedEnvironmentOptions {
  /** Overrides of `DEFAULT_TEST_CAPABILITIES` (shallow). */
  readonly capabilities?: Partial<Capabilities>;
  /** Frames: a list indexed by step (the last repeats), or a function of the state. Default: `patternFrame`. */
  readonly frames?: readonly Frame[] | ((state: ScriptedState) => Frame);
  /** Override the reported pose. Default: from the kinematic state. Return undefined for no pose. */
  readonly pose?: (state: ScriptedState) => Pose | undefined;
  /** Start pose per reset seed. Default: origin, yaw 0. */
  readonly start?: (seed: number | undefined) => { position: readonly [number, number, number]; yawDeg: number };
  /** The episode goal per seed. With a `position`, distances are reported (straight line). */
  readonly goal?: EpisodeGoal | ((seed: number | undefined) => EpisodeGoal | undefined);
  /** Default success: `stop` within this distance of `goal.position`. Default 1.0 m. */
  readonly successDistance?: number;
  /** Success criterion, evaluated when `stop` is called. */
  readonly success?: (state: ScriptedState) => boolean;
  /** Extra or overriding `info` fields per observation. */
  readonly info?: (state: ScriptedState) => Partial<EpisodeInfo>;
  /** Steps after which `truncated` is set. Default 500 (ObjectNav's limit in Habitat). */
  readonly maxSteps?: number;
  /** A move from `from` to `to` that returns true is blocked (the agent stays, `collided` is set). */
  readonly collides?: (from: readonly [number, number, number], to: readonly [number, number, number]) => boolean;
  /** Fault injection: return an error to make this call reject with it. */
  readonly fail?: (op: 'reset' | 'step', state: ScriptedState, action?: Action) => Error | undefined;
  /** Latency injection: milliseconds (setTimeout) or a promise to wait for before answering. */
  readonly latency?: (op: 'reset' | 'step', state: ScriptedState, action?: Action) => number | Promise<void> | undefined;
  /**
   * Stream mode: each frame of this source is pushed as an observation of the current state (mode becomes
   * `stream`). In stream mode (also when set through `capabilities.mode`), observation steps count frames
   * (reset = 0, then +1 per pushed frame or step result), like a camera clock; `state.step` counts actions.
   */
  readonly stream?: Observable<Frame>;
}

/**
 * A deterministic test pattern encoding the state: red = step mod 256, green = yaw (0–359° → 0–255),
 * blue varies across columns; every pixel of a column is equal. Distinct for distinct steps < 256.
 */
export function patternFrame(width: number, height: number, step: number, yawDeg = 0): Frame {
  const data = new Uint8Array(width * height * 3);
  const r = step % 256;
  const g = Math.floor((((yawDeg % 360) + 360) % 360) * (255 / 359));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = r;
      data[i + 1] = g;
      data[i + 2] = width > 1 ? Math.round((x * 255) / (width - 1)) : 0;
    }
  }
  return { width, height, data };
}

/** Quaternion [x, y, z, w] of a rotation about +Y by `yawDeg`. */
export function yawQuaternion(yawDeg: number): [number, number, number, number] {
  const h = (yawDeg * Math.PI) / 360;
  return [0, Math.sin(h), 0, Math.cos(h)];
}

interface MutableState {
  seed: number | undefined;
  step: number;
  position: [number, number, number];
  yawDeg: number;
  pathLength: number;
  actions: string[];
  collided: boolean;
  goal: EpisodeGoal | undefined;
}

/** One call the environment received, for assertions. */
export interface ScriptedCall {
  readonly op: 'reset' | 'step';
  readonly action?: Action;
  readonly options?: ResetOptions;
}

/** An in-process `Environment` driven by a script; see the module comment. */
export class ScriptedEnvironment implements Environment {
  readonly specificationVersion = ENVIRONMENT_SPEC_VERSION;
  readonly capabilities: Capabilities;
  /** Every reset/step received, in order. */
  readonly calls: ScriptedCall[] = [];
  readonly #options: ScriptedEnvironmentOptions;
  readonly #observations = new Subject<Observation>();
  readonly observations$: Observable<Observation> = this.#observations.asObservable();
  #state: MutableState | undefined;
  #ended = false;
  #closed = false;
  #initialDistance: number | undefined;
  #streamSub: Subscription | undefined;
  /** Stream mode: observations are numbered on the camera's clock (one per frame pushed), not per action. */
  #frameCount = 0;

  constructor(options: ScriptedEnvironmentOptions = {}) {
    this.#options = options;
    this.capabilities = {
      ...DEFAULT_TEST_CAPABILITIES,
      ...(options.stream !== undefined ? { mode: 'stream' as const } : {}),
      ...options.capabilities,
    };
  }

  /** The current state (undefined before the first reset). */
  get state(): ScriptedState | undefined {
    return this.#state;
  }

  async reset(options: ResetOptions = {}): Promise<ResetResult> {
    this.#assertOpen();
    this.calls.push({ op: 'reset', options });
    const seed = options.seed;
    const start = this.#options.start?.(seed) ?? { position: [0, 0, 0] as const, yawDeg: 0 };
    const g = this.#options.goal;
    const goal = typeof g === 'function' ? g(seed) : g;
    const state: MutableState = {
      seed,
      step: 0,
      position: [...start.position],
      yawDeg: start.yawDeg,
      pathLength: 0,
      actions: [],
      collided: false,
      goal,
    };
    await this.#before('reset', state);
    this.#state = state;
    this.#ended = false;
    this.#frameCount = 0;
    this.#initialDistance = this.#distance(state);
    const observation = this.#observe(state, { reset: true });
    this.#observations.next(observation);
    this.#startStream();
    return { observation, ...(goal !== undefined ? { goal } : {}) };
  }

  async step(action: Action): Promise<StepResult> {
    this.#assertOpen();
    this.calls.push({ op: 'step', action });
    const state = this.#state;
    if (state === undefined || this.#ended) {
      throw new V4sError('E_NO_EPISODE', state === undefined ? 'step before reset' : 'step after the episode ended; reset first');
    }
    const spec = this.capabilities.actions[action.name];
    if (spec === undefined) {
      throw new V4sError('E_UNKNOWN_ACTION', `unknown action "${action.name}" (${Object.keys(this.capabilities.actions).join(', ')})`);
    }
    await this.#before('step', state, action);
    this.#assertOpen();
    const amount = action.amount ?? spec.amount;
    state.collided = false;
    if (spec.kind === 'move') {
      const rad = (state.yawDeg * Math.PI) / 180;
      const to: [number, number, number] = [
        state.position[0] - Math.sin(rad) * amount,
        state.position[1],
        state.position[2] - Math.cos(rad) * amount,
      ];
      if (this.#options.collides?.(state.position, to) === true) {
        state.collided = true;
      } else {
        state.position = to;
        state.pathLength += Math.abs(amount);
      }
    } else if (spec.kind === 'turn') {
      state.yawDeg += action.name.includes('right') ? -amount : amount;
    }
    state.step++;
    state.actions.push(action.name);
    const terminated = spec.kind === 'stop';
    const truncated = !terminated && state.step >= (this.#options.maxSteps ?? 500);
    this.#ended = terminated || truncated;
    const observation = this.#observe(state, { stopped: terminated });
    this.#observations.next(observation);
    return { observation, terminated, truncated };
  }

  /** Push an observation of the current state without acting (a camera frame in stream mode). */
  emitFrame(frame?: Frame): Observation {
    this.#assertOpen();
    const state = this.#state;
    if (state === undefined) throw new V4sError('E_NO_EPISODE', 'emitFrame before reset');
    const observation = this.#observe(state, frame !== undefined ? { frame } : {});
    this.#observations.next(observation);
    return observation;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#streamSub?.unsubscribe();
    this.#observations.complete();
  }

  #assertOpen(): void {
    if (this.#closed) throw new V4sError('E_CLOSED', 'the scripted environment is closed');
  }

  async #before(op: 'reset' | 'step', state: ScriptedState, action?: Action): Promise<void> {
    const wait = this.#options.latency?.(op, state, action);
    if (typeof wait === 'number') await new Promise<void>((resolve) => setTimeout(resolve, wait));
    else if (wait !== undefined) await wait;
    const error = this.#options.fail?.(op, state, action);
    if (error !== undefined) throw error;
  }

  #startStream(): void {
    const source = this.#options.stream;
    if (source === undefined || this.#streamSub !== undefined) return;
    this.#streamSub = source.subscribe({
      next: (frame) => {
        if (!this.#closed && this.#state !== undefined) this.emitFrame(frame);
      },
      // A failing camera is a failing environment: surface it on observations$.
      error: (e: unknown) => this.#observations.error(e),
    });
  }

  #distance(state: ScriptedState): number | undefined {
    const p = state.goal?.position;
    if (p === undefined) return undefined;
    return Math.hypot(p[0] - state.position[0], p[2] - state.position[2]);
  }

  #observe(state: MutableState, how: { stopped?: boolean; frame?: Frame; reset?: boolean } = {}): Observation {
    const { stopped = false, frame } = how;
    const cam = this.capabilities.camera;
    const f = this.#options.frames;
    const rgb =
      frame ??
      (typeof f === 'function'
        ? f(state)
        : f !== undefined && f.length > 0
          ? (f[Math.min(state.step, f.length - 1)] ?? patternFrame(cam.width, cam.height, state.step, state.yawDeg))
          : patternFrame(cam.width, cam.height, state.step, state.yawDeg));
    const d = this.#distance(state);
    let success = false;
    if (stopped) {
      success =
        this.#options.success !== undefined
          ? this.#options.success(state)
          : d !== undefined && d <= (this.#options.successDistance ?? 1.0);
    }
    const info: EpisodeInfo = {
      ...(d !== undefined ? { distanceToGoal: d } : {}),
      ...(this.#initialDistance !== undefined ? { shortestPathLength: this.#initialDistance } : {}),
      pathLength: state.pathLength,
      success,
      ...this.#options.info?.(state),
    };
    const pose = this.#options.pose !== undefined ? this.#options.pose(state) : { position: [...state.position] as [number, number, number], rotation: yawQuaternion(state.yawDeg) };
    // Stream mode numbers observations on the camera's clock (every frame pushed, step results included).
    const streaming = this.capabilities.mode === 'stream';
    const step = streaming ? (how.reset === true ? 0 : ++this.#frameCount) : state.step;
    return {
      step,
      rgb,
      ...(pose !== undefined ? { pose } : {}),
      collided: state.collided,
      info,
    };
  }
}

export interface RecordedFrameSourceOptions {
  /** Frames per second. Default 30. */
  readonly fps?: number;
  /** Replay forever. Default false (complete after the last frame). */
  readonly loop?: boolean;
  /** Scheduler for the clock (a `TestScheduler` in marble tests). Default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
  /** `step` of the first observation. Default 0. */
  readonly firstStep?: number;
}

/**
 * Recorded frames replayed at a fixed rate. `frames$` emits the frames; `observations$` wraps them as
 * observations with consecutive steps (and the recorded poses, when given).
 *
 * Usage: `new RecordedFrameSource(frames, { fps: 10 }).observations$.subscribe((o) => buffer.push(o))`.
 */
export class RecordedFrameSource {
  readonly frames: readonly Frame[];
  readonly poses: readonly (Pose | undefined)[] | undefined;
  readonly #options: RecordedFrameSourceOptions;

  constructor(frames: readonly Frame[], options: RecordedFrameSourceOptions & { poses?: readonly (Pose | undefined)[] } = {}) {
    if (frames.length === 0) throw new V4sError('E_CONFIG', 'RecordedFrameSource: no frames');
    const fps = options.fps ?? 30;
    if (!(fps > 0 && Number.isFinite(fps))) throw new V4sError('E_CONFIG', `RecordedFrameSource: fps must be > 0, got ${String(fps)}`);
    this.frames = frames;
    this.poses = options.poses;
    this.#options = options;
  }

  /** Emission index → frame, at 1000/fps ms intervals (the first after one interval). */
  get frames$(): Observable<Frame> {
    return this.#ticks().pipe(map((i) => this.#frameAt(i)));
  }

  /** Observations with steps `firstStep + i`. */
  get observations$(): Observable<Observation> {
    const first = this.#options.firstStep ?? 0;
    return this.#ticks().pipe(
      map((i) => {
        const pose = this.poses?.[i % this.frames.length];
        return { step: first + i, rgb: this.#frameAt(i), ...(pose !== undefined ? { pose } : {}), info: {} };
      }),
    );
  }

  #ticks(): Observable<number> {
    const period = 1000 / (this.#options.fps ?? 30);
    const ticks = interval(period, this.#options.scheduler ?? asyncScheduler);
    return this.#options.loop === true ? ticks : ticks.pipe(take(this.frames.length));
  }

  #frameAt(i: number): Frame {
    const f = this.frames[i % this.frames.length];
    if (f === undefined) throw new V4sError('E_CONFIG', `RecordedFrameSource: no frame ${i}`);
    return f;
  }
}
