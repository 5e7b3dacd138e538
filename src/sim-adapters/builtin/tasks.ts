/**
 * Episode definitions of the built-in simulator, generated deterministically from (seed, task).
 *
 * - **ObjectNav**: a target category present in the scene. Goal cells ("view cells") are the nav cells whose
 *   centre lies within 1.0 m (Euclidean) of the footprint edge of an instance of the category;
 *   `distanceToGoal` is the geodesic distance to the nearest view cell. Success: `stop` with the agent within
 *   1.0 m (Euclidean, agent centre to footprint edge) of an instance of the category AND that instance covering
 *   at least 1 % of the current frame's pixels.
 * - **ImageNav**: a goal pose; the goal image is rendered there. Success: `stop` with the geodesic distance to the
 *   goal position ≤ 1.0 m.
 * - **PointNav**: a goal position. Success: `stop` with the geodesic distance to the goal ≤ 0.36 m (2 × the agent
 *   radius, habitat-lab's PointNav challenge threshold).
 *
 * Starts are drawn so that the geodesic start–goal distance is in [2, 8] m (widened only when a scene has no
 * such cell), always in the nav grid's main component, so every goal is reachable.
 */
import { V4sError } from '../../errors.js';
import type { TaskName } from '../environment.js';
import { distanceField, geodesicDistance, navCellCentre, type NavGrid } from './geodesic.js';
import type { ViewPose } from './render.js';
import { hashSeed, mulberry32, type Scene } from './scene.js';

/** Success thresholds in metres, per task. */
export const SUCCESS_DISTANCE: Readonly<Record<TaskName, number>> = { objectnav: 1.0, imagenav: 1.0, pointnav: 0.36 };
/** Fraction of the frame's pixels an ObjectNav target instance must cover to count as in view. */
export const OBJECTNAV_MIN_VISIBLE = 0.01;
/** Step limits per task. */
export const MAX_STEPS: Readonly<Record<TaskName, number>> = { objectnav: 200, imagenav: 200, pointnav: 200 };
/** Range of geodesic start–goal distances, metres. */
export const START_DISTANCE_RANGE: readonly [number, number] = [2, 8];

const TASK_SALT: Readonly<Record<TaskName, number>> = { objectnav: 1, imagenav: 2, pointnav: 3 };

/** A generated episode. */
export interface EpisodeSpec {
  readonly seed: number;
  readonly task: TaskName;
  readonly start: ViewPose;
  /** ObjectNav target category id (1-based). */
  readonly category?: number;
  /** ImageNav/PointNav goal position (x, z) on the floor. */
  readonly goal?: readonly [number, number];
  /** ImageNav goal yaw (radians). */
  readonly goalYaw?: number;
  /** Geodesic start–goal distance (ℓ of SPL), metres. */
  readonly shortestPathLength: number;
  /** Distance field to the goal set (metres per nav cell). */
  readonly field: Float32Array;
}

/** Nav cells of the main component within `range` metres of an instance's footprint edge of a category. */
export function objectViewCells(scene: Scene, nav: NavGrid, category: number, range = SUCCESS_DISTANCE.objectnav): number[] {
  const cells: number[] = [];
  const objs = scene.objects.filter((o) => o.category === category);
  if (objs.length === 0) return cells;
  for (let k = 0; k < nav.free.length; k++) {
    if (nav.component[k] !== nav.mainComponent) continue;
    const [x, z] = navCellCentre(nav, k);
    for (const o of objs) {
      if (Math.hypot(x - o.x, z - o.z) - o.radius <= range) {
        cells.push(k);
        break;
      }
    }
  }
  return cells;
}

function mainCells(nav: NavGrid): number[] {
  const out: number[] = [];
  for (let k = 0; k < nav.free.length; k++) if (nav.component[k] === nav.mainComponent) out.push(k);
  return out;
}

/** Pick a start cell whose field value is in the range, widening it if none is. */
function pickStart(cells: readonly number[], field: Float32Array, rng: () => number): number | undefined {
  const ranges: [number, number][] = [[START_DISTANCE_RANGE[0], START_DISTANCE_RANGE[1]], [1, 12], [0.5, Infinity]];
  for (const [lo, hi] of ranges) {
    const ok = cells.filter((k) => {
      const d = field[k] as number;
      return d >= lo && d <= hi;
    });
    if (ok.length > 0) return ok[Math.floor(rng() * ok.length)];
  }
  return undefined;
}

/** Generate the episode of (seed, task) in a scene. Deterministic. */
export function generateEpisode(scene: Scene, nav: NavGrid, seed: number, task: TaskName): EpisodeSpec {
  const rng = mulberry32(hashSeed(seed, TASK_SALT[task], 0xe915));
  const cells = mainCells(nav);
  if (task === 'objectnav') {
    const present = [...new Set(scene.objects.map((o) => o.category))].sort((a, b) => a - b);
    const options = present.map((c) => ({ c, view: objectViewCells(scene, nav, c) })).filter((e) => e.view.length > 0);
    // Try categories in a seeded order until one has a start.
    for (let tries = 0; options.length > 0 && tries < 6; tries++) {
      const pick = options[Math.floor(rng() * options.length)];
      if (!pick) break;
      const field = distanceField(nav, pick.view);
      const s = pickStart(cells, field, rng);
      if (s === undefined) continue;
      const [x, z] = navCellCentre(nav, s);
      return {
        seed, task, category: pick.c, field,
        start: { x, z, yaw: rng() * 2 * Math.PI },
        shortestPathLength: geodesicDistance(nav, field, x, z),
      };
    }
    throw new V4sError('E_CONFIG', `builtin scene seed ${seed}: no reachable object for an ObjectNav episode`, { seed, task });
  }
  for (let tries = 0; tries < 20; tries++) {
    const g = cells[Math.floor(rng() * cells.length)];
    if (g === undefined) break;
    const field = distanceField(nav, [g]);
    const s = pickStart(cells, field, rng);
    if (s === undefined) continue;
    const [x, z] = navCellCentre(nav, s);
    const goal = navCellCentre(nav, g);
    const yaw = rng() * 2 * Math.PI;
    const goalYaw = rng() * 2 * Math.PI;
    return {
      seed, task, field, goal,
      start: { x, z, yaw },
      ...(task === 'imagenav' ? { goalYaw } : {}),
      shortestPathLength: geodesicDistance(nav, field, x, z),
    };
  }
  throw new V4sError('E_CONFIG', `builtin scene seed ${seed}: no navigable cells for a ${task} episode`, { seed, task });
}

/**
 * Whether an ObjectNav criterion holds at a pose: an instance of `category` within range whose instance-id
 * pixels cover at least `OBJECTNAV_MIN_VISIBLE` of the frame.
 */
export function objectGoalReached(scene: Scene, pose: ViewPose, category: number, instanceMask: Uint16Array): boolean {
  const near = new Set<number>();
  for (const o of scene.objects) {
    if (o.category === category && Math.hypot(pose.x - o.x, pose.z - o.z) - o.radius <= SUCCESS_DISTANCE.objectnav) near.add(o.id);
  }
  if (near.size === 0) return false;
  const counts = new Map<number, number>();
  for (let p = 0; p < instanceMask.length; p++) {
    const id = instanceMask[p] as number;
    if (id !== 0 && near.has(id)) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const min = OBJECTNAV_MIN_VISIBLE * instanceMask.length;
  for (const c of counts.values()) if (c >= min) return true;
  return false;
}
