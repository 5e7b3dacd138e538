/**
 * The built-in simulator: procedural scenes (scene.ts), ray-cast RGB with hidden category/instance masks
 * (render.ts), grid geodesics (geodesic.ts) and ObjectNav/ImageNav/PointNav episodes (tasks.ts).
 *
 * Pose convention = Habitat's: metres, +Y up, −Z forward. `pose.position` is [x, 0, z] (the agent's base on the
 * floor; the camera is `CAMERA_HEIGHT` = 1.25 m above it); `pose.rotation` is the quaternion [x, y, z, w] of the
 * yaw θ about +Y, i.e. [0, sin(θ/2), 0, cos(θ/2)]. At yaw θ the camera looks along (−sin θ, 0, −cos θ);
 * `turn_left` increases θ. Yaw is kept in (−π, π].
 *
 * Usage:
 * ```ts
 * const sim = new BuiltinSimulator({ oracle: true });
 * const { observation, goal } = sim.reset({ seed: 200000, task: 'objectnav' });
 * const { observation: next, terminated } = sim.step({ name: 'move_forward' });
 * ```
 */
import { V4sError } from '../../errors.js';
import type { Action, Frame, Observation, Pose } from '../../types.js';
import type {
  Capabilities, EpisodeGoal, OracleRequest, OracleRollout, ResetOptions, ResetResult, Simulator, StepResult, TaskName,
} from '../environment.js';
import { buildNavGrid, geodesicDistance, type NavGrid } from './geodesic.js';
import { renderView, type RenderedView, type ViewPose } from './render.js';
import { CATEGORIES, categoryId, generateScene, isFreeCircle, type Scene } from './scene.js';
import { MAX_STEPS, SUCCESS_DISTANCE, generateEpisode, objectGoalReached, type EpisodeSpec } from './tasks.js';

/** Options of the built-in simulator; every field has a default. */
export interface BuiltinSimulatorOptions {
  /** Camera width in pixels (default 64). */
  readonly width?: number;
  /** Camera height in pixels (default 64). */
  readonly height?: number;
  /** Horizontal field of view in degrees (default 90). */
  readonly hfov?: number;
  /** `move_forward` distance in metres (default 0.25). */
  readonly forwardStep?: number;
  /** `turn_left` / `turn_right` angle in degrees (default 30). */
  readonly turnAngle?: number;
  /** Agent radius in metres (default 0.18). */
  readonly agentRadius?: number;
  /** Step limits per task (default 200 each). */
  readonly maxSteps?: Partial<Record<TaskName, number>>;
  /** Serve the oracle op (true futures); default false. */
  readonly oracle?: boolean;
  /** Task when `reset` names none (default 'objectnav'). */
  readonly task?: TaskName;
}

/** A snapshot of the simulator's episode state: plain data, JSON-serialisable. */
export interface BuiltinSimState {
  readonly seed: number;
  readonly task: TaskName;
  readonly x: number;
  readonly z: number;
  readonly yaw: number;
  readonly step: number;
  readonly pathLength: number;
  readonly collided: boolean;
  readonly done: boolean;
}

/** Result of moving an agent on the floor plane. */
export interface MotionResult {
  readonly pose: ViewPose;
  readonly collided: boolean;
  /** Metres actually travelled. */
  readonly travelled: number;
}

const TASKS: readonly TaskName[] = ['objectnav', 'imagenav', 'pointnav'];
const SUBSTEP = 0.05;

/** Wrap an angle to (−π, π]. */
export function wrapAngle(a: number): number {
  const t = a - 2 * Math.PI * Math.floor((a + Math.PI) / (2 * Math.PI));
  return t === -Math.PI ? Math.PI : t;
}

/** Habitat pose of a floor pose: position [x, 0, z], rotation [0, sin(θ/2), 0, cos(θ/2)]. */
export function toHabitatPose(p: ViewPose): Pose {
  return { position: [p.x, 0, p.z], rotation: [0, Math.sin(p.yaw / 2), 0, Math.cos(p.yaw / 2)] };
}

/**
 * Move an agent of radius `radius` by `distance` metres along its heading, in 5 cm sub-steps; a blocked
 * sub-step slides along x or z when one of them is free (habitat-sim's sliding), else stops there.
 */
export function moveAgent(scene: Scene, pose: ViewPose, distance: number, radius: number): MotionResult {
  const n = Math.max(1, Math.ceil(Math.abs(distance) / SUBSTEP));
  const sx = (-Math.sin(pose.yaw) * distance) / n;
  const sz = (-Math.cos(pose.yaw) * distance) / n;
  let x = pose.x;
  let z = pose.z;
  let collided = false;
  let travelled = 0;
  for (let k = 0; k < n; k++) {
    if (isFreeCircle(scene, x + sx, z + sz, radius)) {
      x += sx;
      z += sz;
      travelled += Math.hypot(sx, sz);
      continue;
    }
    collided = true;
    if (sx !== 0 && isFreeCircle(scene, x + sx, z, radius)) {
      x += sx;
      travelled += Math.abs(sx);
    } else if (sz !== 0 && isFreeCircle(scene, x, z + sz, radius)) {
      z += sz;
      travelled += Math.abs(sz);
    }
  }
  return { pose: { x, z, yaw: pose.yaw }, collided, travelled };
}

interface MutableState {
  seed: number;
  task: TaskName;
  pose: ViewPose;
  step: number;
  pathLength: number;
  collided: boolean;
  done: boolean;
}

interface SceneEntry {
  readonly scene: Scene;
  readonly nav: NavGrid;
}

/** The embedded default simulator. Synchronous; implements `Simulator`. */
export class BuiltinSimulator implements Simulator {
  readonly capabilities: Capabilities;
  private readonly width: number;
  private readonly height: number;
  private readonly hfov: number;
  private readonly forwardStep: number;
  private readonly turnAngle: number;
  private readonly agentRadius: number;
  private readonly maxSteps: Readonly<Record<TaskName, number>>;
  private readonly oracleEnabled: boolean;
  private readonly defaultTask: TaskName;
  private readonly scenes = new Map<number, SceneEntry>();
  private readonly episodes = new Map<string, EpisodeSpec>();
  private state: MutableState | undefined;
  private view: RenderedView | undefined;
  private nextSeed = 0;

  constructor(options: BuiltinSimulatorOptions = {}) {
    const positive = (name: string, v: number | undefined, def: number): number => {
      const x = v ?? def;
      if (!Number.isFinite(x) || x <= 0) throw new V4sError('E_CONFIG', `BuiltinSimulator option "${name}" must be a positive number, got ${String(v)}`);
      return x;
    };
    this.width = Math.round(positive('width', options.width, 64));
    this.height = Math.round(positive('height', options.height, 64));
    this.hfov = positive('hfov', options.hfov, 90);
    if (this.hfov >= 180) throw new V4sError('E_CONFIG', `BuiltinSimulator option "hfov" must be below 180, got ${this.hfov}`);
    this.forwardStep = positive('forwardStep', options.forwardStep, 0.25);
    this.turnAngle = positive('turnAngle', options.turnAngle, 30);
    this.agentRadius = positive('agentRadius', options.agentRadius, 0.18);
    const ms = { ...MAX_STEPS };
    for (const t of TASKS) ms[t] = Math.round(positive(`maxSteps.${t}`, options.maxSteps?.[t], MAX_STEPS[t]));
    this.maxSteps = ms;
    this.oracleEnabled = options.oracle ?? false;
    const task = options.task ?? 'objectnav';
    if (!TASKS.includes(task)) throw new V4sError('E_CONFIG', `BuiltinSimulator option "task": unknown task "${String(task)}"`);
    this.defaultTask = task;
    this.capabilities = {
      name: 'builtin',
      actions: {
        move_forward: { kind: 'move', amount: this.forwardStep },
        turn_left: { kind: 'turn', amount: this.turnAngle },
        turn_right: { kind: 'turn', amount: this.turnAngle },
        stop: { kind: 'stop', amount: 0 },
      },
      camera: { width: this.width, height: this.height, hfov: this.hfov },
      encodings: ['raw'],
      mode: 'lockstep',
      ops: this.oracleEnabled ? ['oracle'] : [],
      tasks: TASKS,
    };
  }

  /** Start an episode. `episode` may be an id `builtin:<task>:<seed>` as reported in `info.episode`. */
  reset(options: ResetOptions = {}): ResetResult {
    let seed = options.seed;
    let task = options.task ?? this.defaultTask;
    if (options.episode !== undefined) {
      const m = /^builtin:(objectnav|imagenav|pointnav):(\d+)$/.exec(options.episode);
      if (!m) throw new V4sError('E_CONFIG', `unknown episode id "${options.episode}" (expected builtin:<task>:<seed>)`);
      task = m[1] as TaskName;
      seed = Number(m[2]);
    }
    if (!TASKS.includes(task)) throw new V4sError('E_CONFIG', `unknown task "${String(task)}"`);
    seed ??= this.nextSeed++;
    if (!Number.isSafeInteger(seed) || seed < 0) throw new V4sError('E_CONFIG', `seed must be a non-negative integer, got ${String(seed)}`);
    const ep = this.episodeOf(seed, task);
    this.state = { seed, task, pose: ep.start, step: 0, pathLength: 0, collided: false, done: false };
    const observation = this.observe(false);
    const { scene } = this.sceneOf(seed);
    let goal: EpisodeGoal;
    if (task === 'objectnav') {
      goal = { task, category: CATEGORIES[(ep.category ?? 1) - 1] as string };
    } else if (task === 'imagenav') {
      const [gx, gz] = ep.goal ?? [0, 0];
      const image = renderView(scene, { x: gx, z: gz, yaw: ep.goalYaw ?? 0 }, this.width, this.height, { hfov: this.hfov }).frame;
      goal = { task, image };
    } else {
      const [gx, gz] = ep.goal ?? [0, 0];
      goal = { task, position: [gx, 0, gz] };
    }
    return { observation, goal };
  }

  /** Apply one action. Throws E_NO_EPISODE before reset or after the episode ended, E_UNKNOWN_ACTION for unknown names. */
  step(action: Action): StepResult {
    const st = this.state;
    if (!st) throw new V4sError('E_NO_EPISODE', 'step() before reset()');
    if (st.done) throw new V4sError('E_NO_EPISODE', `step("${action.name}") after the episode ended; call reset()`);
    const { scene } = this.sceneOf(st.seed);
    const r = this.applyAction(scene, st.pose, action);
    st.pose = r.pose;
    st.collided = r.collided;
    st.pathLength += r.travelled;
    st.step += 1;
    const stopped = action.name === 'stop';
    const truncated = !stopped && st.step >= this.maxSteps[st.task];
    st.done = stopped || truncated;
    return { observation: this.observe(stopped), terminated: stopped, truncated };
  }

  /** True futures of each action sequence from the current state, without advancing it (only with `oracle: true`). */
  oracle(request: OracleRequest): OracleRollout[] {
    if (!this.oracleEnabled) throw new V4sError('E_ORACLE_DISABLED', 'oracle op asked for, but the simulator was constructed without oracle: true');
    const st = this.state;
    if (!st) throw new V4sError('E_NO_EPISODE', 'oracle() before reset()');
    let cat = this.episodeOf(st.seed, st.task).category ?? 0;
    if (request.category !== undefined) {
      cat = categoryId(request.category);
      if (cat === 0) throw new V4sError('E_CONFIG', `oracle: unknown category "${request.category}" (known: ${CATEGORIES.join(', ')})`);
    }
    for (const seq of request.sequences) for (const name of seq) this.actionSpec(name);
    const { scene } = this.sceneOf(st.seed);
    return request.sequences.map((seq) => {
      let pose = st.pose;
      const frames: Frame[] = [];
      const masks: Uint8Array[] = [];
      const poses: Pose[] = [];
      for (const name of seq) {
        pose = this.applyAction(scene, pose, { name }).pose;
        const v = renderView(scene, pose, this.width, this.height, { hfov: this.hfov });
        const mask = new Uint8Array(v.category.length);
        // Without a category (no ObjectNav goal and none asked), the mask marks every object.
        for (let p = 0; p < mask.length; p++) mask[p] = (cat === 0 ? v.category[p] !== 0 : v.category[p] === cat) ? 1 : 0;
        frames.push(v.frame);
        masks.push(mask);
        poses.push(toHabitatPose(pose));
      }
      return { frames, masks, poses };
    });
  }

  /** Snapshot of the current episode state (plain data). */
  cloneState(): BuiltinSimState {
    const st = this.state;
    if (!st) throw new V4sError('E_NO_EPISODE', 'cloneState() before reset()');
    return { seed: st.seed, task: st.task, x: st.pose.x, z: st.pose.z, yaw: st.pose.yaw, step: st.step, pathLength: st.pathLength, collided: st.collided, done: st.done };
  }

  /** Restore a snapshot from `cloneState()` (of this or another simulator with the same options). */
  restoreState(s: BuiltinSimState): void {
    if (!TASKS.includes(s.task) || !Number.isSafeInteger(s.seed) || ![s.x, s.z, s.yaw, s.pathLength].every(Number.isFinite)) {
      throw new V4sError('E_CONFIG', 'restoreState(): not a BuiltinSimState');
    }
    this.episodeOf(s.seed, s.task);
    this.state = { seed: s.seed, task: s.task, pose: { x: s.x, z: s.z, yaw: s.yaw }, step: s.step, pathLength: s.pathLength, collided: s.collided, done: s.done };
    this.view = renderView(this.sceneOf(s.seed).scene, this.state.pose, this.width, this.height, { hfov: this.hfov });
  }

  /** Hidden per-pixel masks of the latest observation (training labels / evaluation; never sent to agents). */
  currentMasks(): { readonly category: Uint8Array; readonly instance: Uint16Array } | undefined {
    return this.view ? { category: this.view.category, instance: this.view.instance } : undefined;
  }

  /** The current scene, or undefined before reset. */
  get scene(): Scene | undefined {
    return this.state ? this.sceneOf(this.state.seed).scene : undefined;
  }

  /** The current episode definition, or undefined before reset. */
  get episode(): EpisodeSpec | undefined {
    return this.state ? this.episodeOf(this.state.seed, this.state.task) : undefined;
  }

  /** Current floor pose, or undefined before reset. */
  get pose(): ViewPose | undefined {
    return this.state?.pose;
  }

  private actionSpec(name: string): { kind: 'move' | 'turn' | 'look' | 'stop'; amount: number } {
    const spec = Object.hasOwn(this.capabilities.actions, name) ? this.capabilities.actions[name] : undefined;
    if (!spec) {
      throw new V4sError('E_UNKNOWN_ACTION', `unknown action "${name}" (known: ${Object.keys(this.capabilities.actions).join(', ')})`, { action: name });
    }
    return spec;
  }

  private applyAction(scene: Scene, pose: ViewPose, action: Action): MotionResult {
    const spec = this.actionSpec(action.name);
    const amount = action.amount ?? spec.amount;
    if (!Number.isFinite(amount)) throw new V4sError('E_CONFIG', `action "${action.name}": amount must be a finite number, got ${String(action.amount)}`);
    if (spec.kind === 'move') return moveAgent(scene, pose, amount, this.agentRadius);
    if (spec.kind === 'turn') {
      const sign = action.name === 'turn_right' ? -1 : 1;
      return { pose: { x: pose.x, z: pose.z, yaw: wrapAngle(pose.yaw + (sign * amount * Math.PI) / 180) }, collided: false, travelled: 0 };
    }
    return { pose, collided: false, travelled: 0 };
  }

  private observe(stopped: boolean): Observation {
    const st = this.state;
    if (!st) throw new V4sError('E_NO_EPISODE', 'no episode');
    const { scene, nav } = this.sceneOf(st.seed);
    const ep = this.episodeOf(st.seed, st.task);
    const view = renderView(scene, st.pose, this.width, this.height, { hfov: this.hfov });
    this.view = view;
    const distanceToGoal = geodesicDistance(nav, ep.field, st.pose.x, st.pose.z);
    let success = false;
    if (stopped) {
      success = st.task === 'objectnav'
        ? objectGoalReached(scene, st.pose, ep.category ?? 0, view.instance)
        : distanceToGoal <= SUCCESS_DISTANCE[st.task];
    }
    return {
      step: st.step,
      rgb: view.frame,
      pose: toHabitatPose(st.pose),
      collided: st.collided,
      info: {
        distanceToGoal,
        success,
        shortestPathLength: ep.shortestPathLength,
        pathLength: st.pathLength,
        episode: `builtin:${st.task}:${st.seed}`,
      },
    };
  }

  private sceneOf(seed: number): SceneEntry {
    let e = this.scenes.get(seed);
    if (!e) {
      const scene = generateScene(seed);
      e = { scene, nav: buildNavGrid(scene, this.agentRadius) };
      if (this.scenes.size >= 8) {
        const first = this.scenes.keys().next();
        if (!first.done) this.scenes.delete(first.value);
      }
      this.scenes.set(seed, e);
    }
    return e;
  }

  private episodeOf(seed: number, task: TaskName): EpisodeSpec {
    const key = `${task}:${seed}`;
    let ep = this.episodes.get(key);
    if (!ep) {
      const { scene, nav } = this.sceneOf(seed);
      ep = generateEpisode(scene, nav, seed, task);
      if (this.episodes.size >= 16) {
        const first = this.episodes.keys().next();
        if (!first.done) this.episodes.delete(first.value);
      }
      this.episodes.set(key, ep);
    }
    return ep;
  }
}
