/**
 * A hand-written baseline planner that reads only what a robot would have: the RGB frame, the pose (or its
 * own dead reckoning), the collision flag and the goal. It never reads the simulator's hidden masks.
 *
 * - **ObjectNav**: finds blobs of the goal category's reference colours in the current frame (default: the
 *   built-in simulator's `CATEGORY_STYLES` colours, matched up to the renderer's distance shading, below the
 *   horizon band), turns toward the largest blob until it is within half a turn of the centre, walks to it,
 *   and stops when the blob's bottom edge puts it within `stopRange` metres (floor-contact geometry: an
 *   object standing on the floor whose lowest pixel is row y is at depth cameraHeight · f / (y − horizon)).
 *   Without a blob it explores: a look-around at the start (and every `lookAroundEvery` steps), forward until
 *   a move collides, then a seeded random turn of 60–120°.
 * - **ImageNav**: scans a full turn recording the similarity to the goal image, turns to the most similar heading, walks
 *   forward while the similarity holds, and re-scans; stops when it reaches `imageStopSimilarity`.
 * - **PointNav**: turns toward the goal (pose or dead reckoning) and walks; on a collision it side-steps
 *   (90° turn, two moves) before heading for the goal again; stops within `pointStopDistance`.
 *
 * Usage: `const planner = new HeuristicPlanner({ seed: 1 })`.
 */
import { resizeFrame } from '../agent/frames.js';
import { V4sError } from '../errors.js';
import { CATEGORY_STYLES } from '../sim-adapters/builtin/scene.js';
import type { Capabilities, EpisodeGoal } from '../sim-adapters/environment.js';
import type { Action, Frame } from '../types.js';
import type { WorldModelActionSpec } from '../worldmodel/world-model.js';
import { actionMotion, advancePose, createRng, type ActionVocabulary, type PlanarPose, type Rng } from './candidates.js';
import { PLANNER_SPEC_VERSION, type Decision, type Plan, type Planner, type PlanningInput } from './planner.js';
import { bearingTo, imageGoalSimilarity, matchColorMask, type ColorMatchOptions, type Rgb } from './scorers.js';

/**
 * The built-in simulator's category colours (its `CATEGORY_STYLES`), the heuristic's default reference, with
 * each category's most distinctive colour first (the bed's red, not its white, which toilets share).
 */
export const BUILTIN_CATEGORY_COLORS: Readonly<Record<string, readonly Rgb[]>> = Object.fromEntries(
  CATEGORY_STYLES.map((s) => {
    const colors = s.colors.map((c): Rgb => [c[0], c[1], c[2]]);
    if (s.name === 'bed' && colors.length > 1) colors.unshift(...colors.splice(1, 1));
    return [s.name, colors];
  }),
);

/** Options of `HeuristicPlanner`; every field has a default. */
export interface HeuristicPlannerOptions {
  readonly name?: string;
  /** Reference colours per category, the first being the primary (body) colour. Default `BUILTIN_CATEGORY_COLORS`. */
  readonly categoryColors?: Readonly<Record<string, readonly Rgb[]>>;
  /** Physical sizes per category, for the plausibility check. Default `BUILTIN_CATEGORY_SIZES`. */
  readonly categorySizes?: Readonly<Record<string, CategorySize>>;
  /** Smallest fraction of a blob's pixels in the primary colour (floors match the secondary colours). Default 0.25. */
  readonly minPrimary?: number;
  /** Colour matching (tolerance 8, minScale 0.2, rows [0.5, 1]). */
  readonly colorMatch?: ColorMatchOptions;
  /** Smallest blob, as a fraction of the frame. Default 0.003. */
  readonly minBlobArea?: number;
  /** Smallest blob height, as a fraction of the frame height (rejects baseboard lines). Default 0.04. */
  readonly minBlobHeight?: number;
  /** Camera height above the floor, metres (the built-in simulator's 1.25). */
  readonly cameraHeight?: number;
  /**
   * Stop when the blob's depth is at most this (metres). Default 1.15: with a 1.25 m camera and a 90° FOV,
   * floor contact leaves the view below 1.25 m, so nearer depths come from the top edge of objects shorter
   * than the camera; taller ones are approached until a move is blocked.
   */
  readonly stopRange?: number;
  /** ImageNav: stop at this `imageGoalSimilarity` to the goal image. Default 0.65 (as `WorldModelPlanner`). */
  readonly imageStopSimilarity?: number;
  /** ImageNav: forward steps per approach before re-scanning. Default 6. */
  readonly imageApproachSteps?: number;
  /** PointNav: stop within this distance (metres). Default 0.3. */
  readonly pointStopDistance?: number;
  /** ObjectNav: repeat the look-around after this many steps without a blob. Default 36 (0 = never). */
  readonly lookAroundEvery?: number;
  /** Seed of the exploration turns. Default 0. */
  readonly seed?: number;
}

/** A connected component of pixels matching a category's colours. */
export interface ColorBlob {
  /** Fraction of the frame's pixels. */
  readonly area: number;
  /** Centroid, normalised to [0, 1] (x left→right, y top→bottom). */
  readonly cx: number;
  readonly cy: number;
  /** Rows (inclusive) and columns (inclusive) it spans, in pixels. */
  readonly top: number;
  readonly bottom: number;
  readonly left: number;
  readonly right: number;
  /** Fraction of its pixels matching the category's first (primary) colour. */
  readonly primary: number;
  /** Size of the frame it was found in. */
  readonly width: number;
  readonly height: number;
}

/**
 * The 4-connected components of `mask` (0 = none, k = matched reference colour k − 1), largest first.
 */
export function findBlobs(mask: Uint8Array, width: number, height: number): ColorBlob[] {
  const seen = new Uint8Array(width * height);
  const stack: number[] = [];
  const blobs: { blob: ColorBlob; count: number }[] = [];
  for (let start = 0; start < mask.length; start++) {
    if ((mask[start] ?? 0) === 0 || seen[start] === 1) continue;
    seen[start] = 1;
    stack.push(start);
    let count = 0;
    let primary = 0;
    let sx = 0;
    let sy = 0;
    let top = height;
    let bottom = -1;
    let left = width;
    let right = -1;
    while (stack.length > 0) {
      const p = stack.pop() as number;
      const x = p % width;
      const y = (p - x) / width;
      count++;
      if (mask[p] === 1) primary++;
      sx += x;
      sy += y;
      if (y < top) top = y;
      if (y > bottom) bottom = y;
      if (x < left) left = x;
      if (x > right) right = x;
      const nb = [x > 0 ? p - 1 : -1, x < width - 1 ? p + 1 : -1, y > 0 ? p - width : -1, y < height - 1 ? p + width : -1];
      for (const q of nb) {
        if (q >= 0 && (mask[q] ?? 0) > 0 && seen[q] === 0) {
          seen[q] = 1;
          stack.push(q);
        }
      }
    }
    blobs.push({
      count,
      blob: { area: count / (width * height), cx: (sx / count + 0.5) / width, cy: (sy / count + 0.5) / height, top, bottom, left, right, primary: primary / count, width, height },
    });
  }
  return blobs.sort((a, b) => b.count - a.count).map((b) => b.blob);
}

/** The largest blob of `mask` at least `minHeight` rows tall, or undefined (see `findBlobs`). */
export function largestBlob(mask: Uint8Array, width: number, height: number, minHeight = 1): ColorBlob | undefined {
  return findBlobs(mask, width, height).find((b) => b.bottom - b.top + 1 >= minHeight);
}

/** Physical size of a category (metres), for rejecting blobs that cannot be it. */
export interface CategorySize {
  readonly width: number;
  readonly height: number;
}

/** The built-in simulator's category sizes (its `CATEGORY_STYLES`). */
export const BUILTIN_CATEGORY_SIZES: Readonly<Record<string, CategorySize>> = Object.fromEntries(
  CATEGORY_STYLES.map((s) => [s.name, { width: s.width, height: s.height }]),
);

/** Focal length in pixels of a pinhole camera `width` pixels wide with horizontal FOV `hfovDeg`. */
export function focalPixels(width: number, hfovDeg: number): number {
  return width / 2 / Math.tan((hfovDeg * Math.PI) / 360);
}

/**
 * Depth (metres) of a floor point seen at pixel row `row` (its lower edge at row + 1), camera at
 * `cameraHeight` looking level; Infinity at or above the horizon. A blob touching the bottom row gives an
 * upper bound (the contact point is below the frame).
 */
export function floorDepth(row: number, height: number, focal: number, cameraHeight: number): number {
  const below = row + 1 - height / 2;
  return below <= 0 ? Infinity : (cameraHeight * focal) / below;
}

type Phase = 'scan' | 'approach' | 'idle';

interface HeuristicState {
  lastStep: number;
  lastActions: string[];
  queue: { name: string; reason: string }[];
  pose: PlanarPose | undefined;
  lookAroundLeft: number;
  stepsSinceLook: number;
  phase: Phase;
  scan: number[];
  approachLeft: number;
  approachBest: number;
}

function fresh(): HeuristicState {
  return { lastStep: -1, lastActions: [], queue: [], pose: undefined, lookAroundLeft: -1, stepsSinceLook: 0, phase: 'idle', scan: [], approachLeft: 0, approachBest: -Infinity };
}

/** The hand-written baseline (see the module comment). */
export class HeuristicPlanner implements Planner {
  readonly specificationVersion = PLANNER_SPEC_VERSION;
  readonly name: string;
  readonly #o: HeuristicPlannerOptions;
  readonly #colors: Readonly<Record<string, readonly Rgb[]>>;
  #rng: Rng;
  #goal: EpisodeGoal | undefined;
  #st: HeuristicState = fresh();

  constructor(options: HeuristicPlannerOptions = {}) {
    this.#o = options;
    this.name = options.name ?? 'heuristic';
    this.#colors = options.categoryColors ?? BUILTIN_CATEGORY_COLORS;
    const seed = options.seed ?? 0;
    if (!Number.isInteger(seed)) throw new V4sError('E_CONFIG', `HeuristicPlanner: seed must be an integer, got ${String(seed)}`);
    this.#rng = createRng(seed);
  }

  reset(goal: EpisodeGoal | undefined): void {
    this.#goal = goal;
    this.#st = fresh();
    this.#rng = createRng(this.#o.seed ?? 0);
  }

  /**
   * The largest plausible blob of `category` in `frame` (downsampled to ≤ 128 px wide first), or undefined.
   * Plausible: big enough, at least `minPrimary` of it in the primary colour, and — with the floor-contact
   * depth (or, when its bottom is cut off, the depth its top edge implies for the category's height) — no
   * wider or taller than the category could be, and not much shorter either (a floor tile).
   */
  detect(frame: Frame, category: string, hfovDeg = 90): (ColorBlob & { readonly depth: number }) | undefined {
    const colors = this.#colors[category];
    if (colors === undefined) return undefined;
    const f = frame.width > 128 ? resizeFrame(frame, 128, Math.max(1, Math.round((frame.height * 128) / frame.width)), 'stretch') : frame;
    const mask = matchColorMask(f, colors, { rows: [0.5, 1], ...this.#o.colorMatch });
    const minH = Math.max(1, Math.round((this.#o.minBlobHeight ?? 0.04) * f.height));
    const size = (this.#o.categorySizes ?? BUILTIN_CATEGORY_SIZES)[category];
    const camH = this.#o.cameraHeight ?? 1.25;
    const focal = focalPixels(f.width, hfovDeg);
    const horizon = f.height / 2;
    for (const b of findBlobs(mask, f.width, f.height)) {
      if (b.area < (this.#o.minBlobArea ?? 0.003)) break;
      if (b.bottom - b.top + 1 < minH || b.primary < (this.#o.minPrimary ?? 0.25)) continue;
      const clipped = b.bottom >= f.height - 1;
      let depth = floorDepth(b.bottom, f.height, focal, camH);
      if (!Number.isFinite(depth)) continue;
      if (clipped && size !== undefined && size.height < camH && b.top + 0.5 > horizon) {
        depth = Math.min(depth, ((camH - size.height) * focal) / (b.top + 0.5 - horizon));
      }
      if (size !== undefined) {
        const w = ((b.right - b.left + 1) * depth) / focal;
        const h = ((b.bottom - b.top + 1) * depth) / focal;
        if (w > size.width * 1.5 + 0.15) continue;
        if (!clipped && (h > Math.min(size.height, camH) * 1.5 + 0.15 || h < Math.min(size.height, camH) * 0.5)) continue;
      }
      return { ...b, depth };
    }
    return undefined;
  }

  plan(input: PlanningInput, signal?: AbortSignal): Promise<Plan> {
    signal?.throwIfAborted();
    const t0 = performance.now();
    const obs = input.observation;
    const goal = input.goal ?? this.#goal;
    let st = this.#st;
    if (obs.step < st.lastStep || (obs.step === 0 && st.lastStep > 0)) {
      st = fresh();
      this.#st = st;
      this.#rng = createRng(this.#o.seed ?? 0);
    }
    const vocab = vocabulary(input.capabilities);
    const executed = st.lastStep >= 0 ? st.lastActions.slice(0, Math.max(0, obs.step - st.lastStep)) : [];
    st.pose = advancePose(st.pose, executed, obs, vocab);
    const names = actionNames(input.capabilities);
    const lastMoveCollided = obs.collided === true && executed.length > 0 && names.forward === executed[executed.length - 1];

    let choice: { name: string; reason: string; detail?: string };
    try {
      switch (goal?.task) {
        case 'objectnav':
          choice = this.#objectNav(input, goal.category ?? '', names, lastMoveCollided);
          break;
        case 'imagenav':
          choice = goal.image !== undefined ? this.#imageNav(obs.rgb, goal.image, names, lastMoveCollided) : this.#explore(names, lastMoveCollided);
          break;
        case 'pointnav':
          choice = goal.position !== undefined ? this.#pointNav(st.pose, goal.position, names, lastMoveCollided) : this.#explore(names, lastMoveCollided);
          break;
        default:
          choice = this.#explore(names, lastMoveCollided);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    st.lastActions = [choice.name];
    st.lastStep = obs.step;
    const decision: Decision = {
      candidates: [],
      chosen: -1,
      reason: choice.reason,
      latencyMs: performance.now() - t0,
      ...(choice.detail !== undefined ? { detail: choice.detail } : {}),
    };
    return Promise.resolve({ actions: [{ name: choice.name } satisfies Action], decision });
  }

  #objectNav(input: PlanningInput, category: string, names: ActionNames, collided: boolean): { name: string; reason: string; detail?: string } {
    const st = this.#st;
    const frame = input.observation.rgb;
    const hfov = input.capabilities.camera.hfov;
    const blob = this.detect(frame, category, hfov);
    if (blob === undefined) {
      const every = this.#o.lookAroundEvery ?? 36;
      if (st.lookAroundLeft < 0 || (every > 0 && st.stepsSinceLook >= every && st.queue.length === 0)) {
        st.lookAroundLeft = names.turnsPerCircle;
        st.stepsSinceLook = 0;
      }
      if (st.lookAroundLeft > 0) {
        st.lookAroundLeft--;
        st.stepsSinceLook++;
        return { name: names.left, reason: 'look-around', detail: `no ${category} blob; ${st.lookAroundLeft} look-around turns left` };
      }
      st.stepsSinceLook++;
      return this.#explore(names, collided);
    }
    // A blob: look-around and queued exploration are abandoned.
    st.queue = [];
    st.lookAroundLeft = 0;
    st.stepsSinceLook = 0;
    const w = Math.min(frame.width, 128);
    const band = Math.tan((names.turnDeg * Math.PI) / 360) / (2 * Math.tan((hfov * Math.PI) / 360));
    const offset = blob.cx - 0.5;
    const depth = blob.depth;
    const detail = `${category} blob: area ${blob.area.toFixed(4)}, offset ${offset.toFixed(3)} (band ±${band.toFixed(3)}), depth ≤ ${depth.toFixed(2)} m (${w} px)`;
    const stopRange = this.#o.stopRange ?? 1.15;
    const want = offset < 0 ? names.left : names.right;
    const last = st.lastActions[st.lastActions.length - 1];
    // Turning back right after turning toward the blob overshot it by less than a turn: approach instead.
    const reversal = (last === names.left && want === names.right) || (last === names.right && want === names.left);
    if (Math.abs(offset) > band && !(reversal && Math.abs(offset) < 2.5 * band)) return { name: want, reason: 'turn-to-blob', detail };
    if (depth <= stopRange) return { name: names.stop, reason: 'stop', detail };
    if (collided) {
      // Blocked on the way: near enough counts, otherwise go around.
      if (depth <= stopRange + 0.5) return { name: names.stop, reason: 'stop', detail: `${detail}; blocked while approaching` };
      return this.#explore(names, true);
    }
    return { name: names.forward, reason: 'approach', detail };
  }

  #explore(names: ActionNames, collided: boolean): { name: string; reason: string; detail?: string } {
    const st = this.#st;
    if (collided) {
      // 60–120° in a seeded random direction.
      const turns = Math.max(1, Math.round((60 + this.#rng() * 60) / names.turnDeg));
      const dir = this.#rng() < 0.5 ? names.left : names.right;
      st.queue = Array.from({ length: turns }, () => ({ name: dir, reason: 'explore-turn' }));
    }
    const q = st.queue.shift();
    if (q !== undefined) return q;
    return { name: names.forward, reason: 'explore-forward' };
  }

  #imageNav(frame: Frame, goalImage: Frame, names: ActionNames, collided: boolean): { name: string; reason: string; detail?: string } {
    const st = this.#st;
    const s = imageGoalSimilarity(frame, goalImage);
    const detail = `similarity to the goal image ${s.toFixed(3)}`;
    if (s >= (this.#o.imageStopSimilarity ?? 0.65)) return { name: names.stop, reason: 'stop', detail };
    const q = st.queue.shift();
    if (q !== undefined) return { ...q, detail };
    if (st.phase === 'approach') {
      st.approachBest = Math.max(st.approachBest, s);
      if (!collided && st.approachLeft > 0 && s >= st.approachBest - 0.05) {
        st.approachLeft--;
        return { name: names.forward, reason: 'approach', detail };
      }
      st.phase = 'idle';
    }
    if (st.phase === 'idle') {
      st.phase = 'scan';
      st.scan = [];
    }
    // Scan: record this heading; turn left until a full circle has been seen.
    st.scan.push(s);
    if (st.scan.length < names.turnsPerCircle) return { name: names.left, reason: 'scan', detail };
    let best = 0;
    for (const [i, v] of st.scan.entries()) if (v > (st.scan[best] ?? -Infinity)) best = i;
    const n = names.turnsPerCircle;
    const here = n - 1;
    const leftTurns = (((best - here) % n) + n) % n;
    const turns = leftTurns <= n / 2 ? Array.from({ length: leftTurns }, () => names.left) : Array.from({ length: n - leftTurns }, () => names.right);
    st.queue = turns.map((name) => ({ name, reason: 'face-best' }));
    st.phase = 'approach';
    st.approachLeft = this.#o.imageApproachSteps ?? 6;
    st.approachBest = -Infinity;
    const first = st.queue.shift();
    if (first !== undefined) return { ...first, detail: `${detail}; best heading ${best} of ${n} (similarity ${(st.scan[best] ?? 0).toFixed(3)})` };
    st.approachLeft--;
    return { name: names.forward, reason: 'approach', detail };
  }

  #pointNav(pose: PlanarPose | undefined, goal: readonly [number, number, number], names: ActionNames, collided: boolean): { name: string; reason: string; detail?: string } {
    const st = this.#st;
    if (pose === undefined) return this.#explore(names, collided);
    const { distance, bearing } = bearingTo(pose, goal[0], goal[2]);
    const detail = `distance ${distance.toFixed(3)} m, bearing ${((bearing * 180) / Math.PI).toFixed(1)}°`;
    if (distance <= (this.#o.pointStopDistance ?? 0.3)) return { name: names.stop, reason: 'stop', detail };
    if (collided) {
      // Side-step: turn 90° away from the goal side's obstacle, two moves, then head for the goal again.
      const k = Math.max(1, Math.round(90 / names.turnDeg));
      const dir = bearing >= 0 ? names.right : names.left;
      st.queue = [...Array.from({ length: k }, () => ({ name: dir, reason: 'sidestep' })), { name: names.forward, reason: 'sidestep' }, { name: names.forward, reason: 'sidestep' }];
    }
    const q = st.queue.shift();
    if (q !== undefined) return { ...q, detail };
    const half = (names.turnDeg * Math.PI) / 360;
    if (bearing > half) return { name: names.left, reason: 'turn-to-goal', detail };
    if (bearing < -half) return { name: names.right, reason: 'turn-to-goal', detail };
    return { name: names.forward, reason: 'approach', detail };
  }
}

interface ActionNames {
  readonly forward: string;
  readonly left: string;
  readonly right: string;
  readonly stop: string;
  readonly turnDeg: number;
  readonly turnsPerCircle: number;
}

function vocabulary(capabilities: Capabilities): ActionVocabulary {
  const out: Record<string, WorldModelActionSpec> = {};
  for (const [n, s] of Object.entries(capabilities.actions)) out[n] = { kind: s.kind, amount: s.amount };
  return out;
}

/** The forward / left / right / stop actions of the environment (by kind and name). */
function actionNames(capabilities: Capabilities): ActionNames {
  let forward: string | undefined;
  let left: string | undefined;
  let right: string | undefined;
  let stop: string | undefined;
  let turnDeg = 30;
  for (const [name, spec] of Object.entries(capabilities.actions)) {
    const m = actionMotion(name, { kind: spec.kind, amount: spec.amount });
    if (spec.kind === 'stop') stop ??= name;
    else if (m.forward > 0) forward ??= name;
    else if (m.kind === 'turn' && m.direction > 0 && left === undefined) {
      left = name;
      turnDeg = spec.amount;
    } else if (m.kind === 'turn' && m.direction < 0) right ??= name;
  }
  if (forward === undefined || left === undefined || right === undefined) {
    throw new V4sError(
      'E_UNKNOWN_ACTION',
      `HeuristicPlanner needs a forward move and left and right turns; the environment offers ${Object.keys(capabilities.actions).join(', ')}`,
    );
  }
  return { forward, left, right, stop: stop ?? 'stop', turnDeg, turnsPerCircle: Math.max(1, Math.round(360 / Math.max(1e-6, turnDeg))) };
}
