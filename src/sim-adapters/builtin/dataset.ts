/**
 * Training data from the built-in simulator: per scene one trajectory, a look-around (12 × `turn_left` 30°, a
 * full turn) then random exploration, written as flat little-endian arrays the Python trainer memory-maps.
 *
 * Layout of `<out>/` (format `v4s.dataset.v1`), N = total frames:
 * - `frames.u8`  uint8 [N, H, W, 3] RGB
 * - `masks.u8`   uint8 [N, H, W] category id per pixel (0 none; ids = index in `categories` + 1)
 * - `actions.u8` uint8 [N] id (in `actions`) of the action taken to arrive at the frame (0 = episode start)
 * - `poses.f32`  float32 LE [N, 3] (x, z, yaw radians), Habitat frame (yaw about +Y, turn_left increases it)
 * - `index.json` written last, so a directory without it is an unfinished dataset. A frame's step index within its
 *   episode is `frame − episode.start`.
 *
 * Usage: `writeDataset({ split: 'train', scenes: 100, out: 'data/train' })`.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { V4sError } from '../../errors.js';
import { wallDistanceAhead } from './render.js';
import { CATEGORIES, hashSeed, mulberry32 } from './scene.js';
import { SPLIT_SEEDS, splitSeed, type SplitName } from './seeds.js';
import { BuiltinSimulator } from './simulator.js';

export const DATASET_FORMAT = 'v4s.dataset.v1' as const;
/** Action ids of `actions.u8`. */
export const DATASET_ACTIONS = ['none', 'move_forward', 'turn_left', 'turn_right'] as const;
export type DatasetAction = (typeof DATASET_ACTIONS)[number];

/** One trajectory: its scene seed, first frame and frame count. */
export interface DatasetEpisode {
  readonly seed: number;
  readonly start: number;
  readonly length: number;
}

/** Contents of `index.json`. */
export interface DatasetIndex {
  readonly format: typeof DATASET_FORMAT;
  readonly split: SplitName;
  readonly width: number;
  readonly height: number;
  readonly categories: readonly string[];
  readonly actions: readonly string[];
  readonly forwardStep: number;
  readonly turnAngle: number;
  readonly episodes: readonly DatasetEpisode[];
  readonly totalFrames: number;
}

export interface DatasetProgress {
  readonly scene: number;
  readonly scenes: number;
  readonly frames: number;
  readonly elapsedMs: number;
}

export interface DatasetOptions {
  readonly split: SplitName;
  /** Number of scenes: the first N seeds of the split's range, in order. */
  readonly scenes: number;
  readonly out: string;
  /** Frames per trajectory (default 96), look-around included. */
  readonly steps?: number;
  /** Square frame size (default 64). */
  readonly size?: number;
  /** Called after each scene. */
  readonly onProgress?: (p: DatasetProgress) => void;
}

/** A recorded trajectory step. */
export interface TrajectoryFrame {
  readonly action: DatasetAction;
  readonly frame: Uint8Array;
  readonly mask: Uint8Array;
  readonly pose: readonly [number, number, number];
}

const LOOK_AROUND = 12;

/**
 * Render one trajectory in the scene of `seed`: a full look-around, then exploration (mostly forward, turns in
 * runs of 1–3, turning away from walls and after collisions, sometimes a longer run of turns back towards views
 * seen before). Deterministic in (seed, steps, size). Calls `emit` per frame; buffers are fresh per frame.
 */
export function renderTrajectory(seed: number, steps: number, size: number, emit: (f: TrajectoryFrame) => void): void {
  const sim = new BuiltinSimulator({ width: size, height: size, maxSteps: { objectnav: steps + 1 } });
  const rng = mulberry32(hashSeed(seed, 0xda7a5e7));
  const first = sim.reset({ seed, task: 'objectnav' });
  const record = (action: DatasetAction, rgb: Uint8Array): void => {
    const masks = sim.currentMasks();
    const pose = sim.pose;
    if (!masks || !pose) throw new V4sError('E_NO_EPISODE', 'dataset: simulator has no episode');
    emit({ action, frame: rgb, mask: masks.category, pose: [pose.x, pose.z, pose.yaw] });
  };
  record('none', first.observation.rgb.data);
  const queue: DatasetAction[] = [];
  let collided = false;
  const turnRun = (min: number, max: number): void => {
    const dir: DatasetAction = rng() < 0.5 ? 'turn_left' : 'turn_right';
    const n = min + Math.floor(rng() * (max - min + 1));
    for (let k = 0; k < n; k++) queue.push(dir);
  };
  const turnStep = (30 * Math.PI) / 180;
  const clearance = (k: number): number => {
    const scene = sim.scene;
    const pose = sim.pose;
    return scene && pose ? wallDistanceAhead(scene, { x: pose.x, z: pose.z, yaw: pose.yaw + k * turnStep }) : Infinity;
  };
  // Turn away from an obstacle: towards the more open side, until the view ahead is open (at most 6 turns).
  const turnAway = (): void => {
    const left = Math.max(clearance(2), clearance(3));
    const right = Math.max(clearance(-2), clearance(-3));
    const sign = left === right ? (rng() < 0.5 ? 1 : -1) : left > right ? 1 : -1;
    let k = 1;
    while (k < 6 && clearance(sign * k) < 1.2) k++;
    for (let i = 0; i < k; i++) queue.push(sign > 0 ? 'turn_left' : 'turn_right');
  };
  for (let t = 1; t < steps; t++) {
    let action: DatasetAction;
    if (t <= LOOK_AROUND) {
      action = 'turn_left';
    } else {
      if (collided) {
        queue.length = 0;
        turnAway();
      } else if (queue.length === 0) {
        const r = rng();
        if (r < 0.07) turnRun(3, 6); // turn back towards views seen earlier
        else if (r < 0.27) turnRun(1, 3);
        else for (let k = 1 + Math.floor(rng() * 4); k > 0; k--) queue.push('move_forward');
      }
      if (queue[0] === 'move_forward' && clearance(0) < 0.6) {
        queue.length = 0;
        turnAway();
      }
      action = queue.shift() ?? 'move_forward';
    }
    const res = sim.step({ name: action });
    collided = res.observation.collided === true;
    record(action, res.observation.rgb.data);
  }
}

function checkPositiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new V4sError('E_CONFIG', `dataset option "${name}" must be a positive integer, got ${String(v)}`);
  return v;
}

/** Render a split's first N scenes to `out`, streaming to disk; returns the index written last. */
export function writeDataset(options: DatasetOptions): DatasetIndex {
  const { split, out } = options;
  if (!Object.hasOwn(SPLIT_SEEDS, split)) throw new V4sError('E_CONFIG', `unknown split "${String(split)}" (train, dev, eval)`);
  const scenes = checkPositiveInt('scenes', options.scenes);
  const steps = checkPositiveInt('steps', options.steps ?? 96);
  const size = checkPositiveInt('size', options.size ?? 64);
  if (typeof out !== 'string' || out.length === 0) throw new V4sError('E_PATH', 'dataset: --out must be a directory path');
  if (existsSync(out) && !statSync(out).isDirectory()) throw new V4sError('E_PATH', `dataset: "${out}" exists and is not a directory`);
  splitSeed(split, scenes - 1);
  mkdirSync(out, { recursive: true });
  rmSync(join(out, 'index.json'), { force: true });

  const files = {
    frames: openSync(join(out, 'frames.u8'), 'w'),
    masks: openSync(join(out, 'masks.u8'), 'w'),
    actions: openSync(join(out, 'actions.u8'), 'w'),
    poses: openSync(join(out, 'poses.f32'), 'w'),
  };
  const episodes: DatasetEpisode[] = [];
  let total = 0;
  const t0 = Date.now();
  try {
    const px = size * size;
    const frameBuf = new Uint8Array(steps * px * 3);
    const maskBuf = new Uint8Array(steps * px);
    const actBuf = new Uint8Array(steps);
    const poseBuf = new DataView(new ArrayBuffer(steps * 12));
    for (let s = 0; s < scenes; s++) {
      const seed = splitSeed(split, s);
      let n = 0;
      renderTrajectory(seed, steps, size, (f) => {
        frameBuf.set(f.frame, n * px * 3);
        maskBuf.set(f.mask, n * px);
        actBuf[n] = DATASET_ACTIONS.indexOf(f.action);
        for (let c = 0; c < 3; c++) poseBuf.setFloat32(n * 12 + c * 4, f.pose[c] as number, true);
        n++;
      });
      writeSync(files.frames, frameBuf, 0, n * px * 3);
      writeSync(files.masks, maskBuf, 0, n * px);
      writeSync(files.actions, actBuf, 0, n);
      writeSync(files.poses, new Uint8Array(poseBuf.buffer, 0, n * 12));
      episodes.push({ seed, start: total, length: n });
      total += n;
      options.onProgress?.({ scene: s + 1, scenes, frames: total, elapsedMs: Date.now() - t0 });
    }
  } finally {
    for (const fd of Object.values(files)) closeSync(fd);
  }
  const index: DatasetIndex = {
    format: DATASET_FORMAT,
    split,
    width: size,
    height: size,
    categories: [...CATEGORIES],
    actions: [...DATASET_ACTIONS],
    forwardStep: 0.25,
    turnAngle: 30,
    episodes,
    totalFrames: total,
  };
  writeFileSync(join(out, 'index.json'), `${JSON.stringify(index)}\n`);
  return index;
}

/** Read `<dir>/index.json` and check it against the array files' sizes; errors (E_PATH, E_CONFIG) name the file. */
export function readDatasetIndex(dir: string): DatasetIndex {
  const path = join(dir, 'index.json');
  if (!existsSync(path)) throw new V4sError('E_PATH', `dataset "${dir}": no index.json (unfinished or not a dataset)`);
  let index: DatasetIndex;
  try {
    index = JSON.parse(readFileSync(path, 'utf8')) as DatasetIndex;
  } catch (e) {
    throw new V4sError('E_CONFIG', `dataset "${path}": not valid JSON`, undefined, { cause: e });
  }
  if (index.format !== DATASET_FORMAT) throw new V4sError('E_CONFIG', `dataset "${path}": format "${String(index.format)}", expected ${DATASET_FORMAT}`);
  const n = index.totalFrames;
  const expect: [string, number][] = [
    ['frames.u8', n * index.width * index.height * 3],
    ['masks.u8', n * index.width * index.height],
    ['actions.u8', n],
    ['poses.f32', n * 12],
  ];
  for (const [file, bytes] of expect) {
    const p = join(dir, file);
    const size = existsSync(p) ? statSync(p).size : -1;
    if (size !== bytes) throw new V4sError('E_CONFIG', `dataset "${p}": ${size} bytes, expected ${bytes} for ${n} frames`);
  }
  return index;
}
