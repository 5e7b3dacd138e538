/**
 * The oracle world model: asks the simulator, through the protocol's optional `oracle` op, for the TRUE future
 * of every candidate, and returns it as rollouts in the same format a learned model gives: frames at the model
 * resolution, and the simulator's true target masks downsampled to the grounding grid (fraction of target
 * pixels per cell), exactly the shape of a model's `grounding` output. Evaluation uses it as the ceiling of
 * what a perfect world model would give the planner.
 *
 * The oracle renders from the simulator's CURRENT state: it is valid when the newest context frame is the
 * current observation (as in the agent loop). Context, sampler, guidance and seed are ignored.
 *
 * `currentGrounding` (the true mask of the current view): the oracle op only renders futures, so the
 * current view is probed as the second frame of the sequence [turn_left, turn_right] (equal amounts, so the
 * agent turns back to its current pose; turns never collide). One extra 2-frame sequence per goal category.
 * Usage: `const oracle = new SimulatorWorldModel(env, { resolution: wm.info.resolution, grounding: { width: 8, height: 8 } })`.
 */
import { V4sError } from '../errors.js';
import type { Environment, OracleRollout } from '../sim-adapters/environment.js';
import { PROTOCOL_LIMITS } from '../sim-adapters/protocol/types.js';
import type { Frame, Instruction } from '../types.js';
import {
  WORLD_MODEL_SPEC_VERSION,
  type GroundingMap,
  type ImagineRequest,
  type Rollout,
  type WorldModel,
  type WorldModelActionSpec,
  type WorldModelInfo,
} from './world-model.js';

/** Per-axis area weights: output index o covers source [o·s/d, (o+1)·s/d); weights sum to 1. */
function areaAxis(src: number, dst: number): { readonly index: Int32Array; readonly weight: Float64Array; readonly start: Int32Array } {
  const ratio = src / dst;
  const idx: number[] = [];
  const wts: number[] = [];
  const start = new Int32Array(dst + 1);
  for (let o = 0; o < dst; o++) {
    start[o] = idx.length;
    const a = o * ratio;
    const b = (o + 1) * ratio;
    for (let i = Math.floor(a); i < Math.min(src, Math.ceil(b)); i++) {
      const overlap = Math.min(b, i + 1) - Math.max(a, i);
      if (overlap > 1e-12) {
        idx.push(i);
        wts.push(overlap / ratio);
      }
    }
  }
  start[dst] = idx.length;
  return { index: Int32Array.from(idx), weight: Float64Array.from(wts), start };
}

/** Area-weighted resampling of a row-major image with `channels` interleaved channels (exact for any ratio). */
function resampleArea(src: ArrayLike<number>, sw: number, sh: number, channels: number, dw: number, dh: number): Float64Array {
  const ax = areaAxis(sw, dw);
  const ay = areaAxis(sh, dh);
  const out = new Float64Array(dw * dh * channels);
  for (let oy = 0; oy < dh; oy++) {
    for (let yi = ay.start[oy] as number; yi < (ay.start[oy + 1] as number); yi++) {
      const y = ay.index[yi] as number;
      const wy = ay.weight[yi] as number;
      for (let ox = 0; ox < dw; ox++) {
        const o = (oy * dw + ox) * channels;
        for (let xi = ax.start[ox] as number; xi < (ax.start[ox + 1] as number); xi++) {
          const w = wy * (ax.weight[xi] as number);
          const s = (y * sw + (ax.index[xi] as number)) * channels;
          for (let ch = 0; ch < channels; ch++) out[o + ch] = (out[o + ch] as number) + w * (src[s + ch] as number);
        }
      }
    }
  }
  return out;
}

/**
 * Resize an RGB frame by area averaging (box filter with exact fractional coverage). A frame already at the
 * target size is returned as is.
 */
export function resizeFrameArea(frame: Frame, width: number, height: number): Frame {
  if (frame.width === width && frame.height === height) return frame;
  const f = resampleArea(frame.data, frame.width, frame.height, 3, width, height);
  const data = new Uint8Array(f.length);
  for (let i = 0; i < f.length; i++) data[i] = Math.min(255, Math.max(0, Math.round(f[i] as number)));
  return { width, height, data };
}

/**
 * Downsample a target mask (row-major, non-zero = target) to a grounding grid: each cell holds the fraction of
 * its area covered by target pixels, the format of a model's `grounding` output.
 */
export function maskToGrounding(mask: Uint8Array, width: number, height: number, gridWidth: number, gridHeight: number): GroundingMap {
  if (mask.length !== width * height) throw new RangeError(`mask has ${mask.length} values, expected ${width}x${height}`);
  const binary = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) binary[i] = mask[i] ? 1 : 0;
  const f = resampleArea(binary, width, height, 1, gridWidth, gridHeight);
  return { width: gridWidth, height: gridHeight, data: Float32Array.from(f) };
}

/** Options of the oracle world model. */
export interface SimulatorWorldModelOptions {
  /** Resolution of the returned frames (the learned model's, so planners score both alike). */
  readonly resolution: { readonly width: number; readonly height: number };
  /** Grid of the grounding output (the learned model's `auxOutputs` grounding width/height). */
  readonly grounding: { readonly width: number; readonly height: number };
  readonly name?: string;
  /** Default horizon (default 4). */
  readonly horizon?: number;
  /** Reported maximum context (default 64; the oracle does not use context). */
  readonly maxContext?: number;
  /** Goal categories reported in `info` (default: none listed; any category is passed to the simulator). */
  readonly goalCategories?: readonly string[];
  /** Most sequences per oracle request (default: the protocol's limit, 64); larger batches are split. */
  readonly maxSequencesPerRequest?: number;
  /** Most actions over all sequences of one oracle request (default: the protocol's limit, 256). */
  readonly maxFramesPerRequest?: number;
  /**
   * Give `Rollout.currentGrounding` by the turn-back probe (default true; needs turn_left and turn_right of
   * equal amounts in the capabilities, otherwise no current grounding is given).
   */
  readonly currentGrounding?: boolean;
}

/** A world model whose imagination is the simulator's truth. */
export class SimulatorWorldModel implements WorldModel {
  readonly specificationVersion = WORLD_MODEL_SPEC_VERSION;
  readonly info: WorldModelInfo;
  readonly #oracle: NonNullable<Environment['oracle']>;
  readonly #grid: { readonly width: number; readonly height: number };
  readonly #maxSequences: number;
  readonly #maxFrames: number;
  readonly #turnBack: readonly string[] | undefined;
  #tail: Promise<unknown> = Promise.resolve();

  /** Throws E_ORACLE_DISABLED when the environment does not serve the oracle op. */
  constructor(env: Environment, options: SimulatorWorldModelOptions) {
    const oracle = env.oracle;
    if (oracle === undefined || !env.capabilities.ops.includes('oracle')) {
      throw new V4sError('E_ORACLE_DISABLED', `environment "${env.capabilities.name ?? 'unnamed'}" does not serve the oracle op (start the simulator server with the oracle enabled)`);
    }
    this.#oracle = oracle.bind(env);
    this.#grid = options.grounding;
    this.#maxSequences = options.maxSequencesPerRequest ?? PROTOCOL_LIMITS.maxOracleSequences;
    this.#maxFrames = options.maxFramesPerRequest ?? PROTOCOL_LIMITS.maxOracleFrames;
    const left = env.capabilities.actions['turn_left'];
    const right = env.capabilities.actions['turn_right'];
    const canTurnBack = left?.kind === 'turn' && right?.kind === 'turn' && left.amount === right.amount && left.amount > 0;
    this.#turnBack = options.currentGrounding !== false && canTurnBack ? ['turn_left', 'turn_right'] : undefined;
    const horizon = options.horizon ?? 4;
    const actions: Record<string, WorldModelActionSpec> = {};
    for (const [name, a] of Object.entries(env.capabilities.actions)) actions[name] = { kind: a.kind, amount: a.amount };
    this.info = {
      name: options.name ?? 'simulator-oracle',
      resolution: { width: options.resolution.width, height: options.resolution.height },
      actions,
      maxContext: options.maxContext ?? 64,
      horizon,
      positionRange: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
      goalCategories: [...(options.goalCategories ?? [])],
      grounding: true,
      defaultSampler: { kind: 'euler', steps: 1 },
      defaultGuidance: { kind: 'none' },
      hfov: env.capabilities.camera.hfov,
    };
  }

  /**
   * True futures of every candidate: one oracle request per distinct goal category (split to stay within the
   * protocol's per-request limits). Calls are serialized.
   */
  imagine(request: ImagineRequest): Promise<Rollout[]> {
    const run = this.#tail.then(() => this.#imagine(request), () => this.#imagine(request));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #imagine(request: ImagineRequest): Promise<Rollout[]> {
    const t0 = performance.now();
    const horizon = request.horizon ?? this.info.horizon;
    if (request.candidates.length === 0) throw new V4sError('E_MODEL_INPUT', 'imagine(): no candidates');
    request.candidates.forEach((c, ci) => {
      if (c.actions.length !== horizon) {
        throw new V4sError('E_MODEL_INPUT', `imagine(): candidates[${ci}] has ${c.actions.length} actions; horizon is ${horizon}`);
      }
      c.actions.forEach((a, ai) => {
        if (this.info.actions[a] === undefined) {
          throw new V4sError('E_MODEL_ACTION', `imagine(): candidates[${ci}].actions[${ai}] "${a}" is not an action of the simulator (${Object.keys(this.info.actions).join(', ')})`, { action: a });
        }
      });
    });
    // Group candidates by goal category: the oracle op returns masks for one category per request.
    const groups = new Map<string | undefined, number[]>();
    request.candidates.forEach((c, i) => {
      const list = groups.get(c.goalCategory) ?? [];
      list.push(i);
      groups.set(c.goalCategory, list);
    });
    const truth: (OracleRollout | undefined)[] = new Array<OracleRollout | undefined>(request.candidates.length);
    const current = new Map<string, GroundingMap>();
    const tOracle = performance.now();
    for (const [category, all] of groups) {
      // Sequences of this category, plus the turn-back probe of the current view; packed into requests that
      // respect the protocol's limits on sequences and frames per request.
      const jobs: { readonly candidate: number; readonly actions: readonly string[] }[] = all.map((i) => ({ candidate: i, actions: (request.candidates[i] as Instruction).actions }));
      if (category !== undefined && this.#turnBack) jobs.push({ candidate: -1, actions: this.#turnBack });
      let start = 0;
      while (start < jobs.length) {
        let end = start;
        let frames = 0;
        while (end < jobs.length && end - start < this.#maxSequences && (end === start || frames + (jobs[end]?.actions.length ?? 0) <= this.#maxFrames)) {
          frames += jobs[end]?.actions.length ?? 0;
          end++;
        }
        const batch = jobs.slice(start, end);
        const sequences = batch.map((j) => j.actions);
        const reply = await this.#oracle(category === undefined ? { sequences } : { sequences, category });
        if (reply.length !== sequences.length) {
          throw new V4sError('E_PROTOCOL_FIELD', `oracle returned ${reply.length} rollouts for ${sequences.length} sequences`);
        }
        batch.forEach((job, j) => {
          const r = reply[j];
          if (job.candidate >= 0) truth[job.candidate] = r;
          else if (category !== undefined) {
            const f = r?.frames[1];
            const m = r?.masks[1];
            if (f === undefined || m === undefined || m.length !== f.width * f.height) {
              throw new V4sError('E_PROTOCOL_FIELD', 'oracle turn-back probe of the current view lacks its second frame or mask');
            }
            current.set(category, maskToGrounding(m, f.width, f.height, this.#grid.width, this.#grid.height));
          }
        });
        start = end;
      }
    }
    const oracleMs = performance.now() - tOracle;
    const tConv = performance.now();
    const { width: W, height: H } = this.info.resolution;
    const out = request.candidates.map((instruction, ci) => {
      const r = truth[ci];
      if (r === undefined || r.frames.length !== horizon) {
        throw new V4sError('E_PROTOCOL_FIELD', `oracle rollout ${ci} has ${r?.frames.length ?? 0} frames, expected ${horizon}`);
      }
      const frames = r.frames.map((f) => resizeFrameArea(f, W, H));
      let grounding: GroundingMap[] | undefined;
      if (instruction.goalCategory !== undefined) {
        if (r.masks.length !== horizon) throw new V4sError('E_PROTOCOL_FIELD', `oracle rollout ${ci} has ${r.masks.length} masks, expected ${horizon}`);
        grounding = r.masks.map((m, j) => {
          const f = r.frames[j] as Frame;
          if (m.length !== f.width * f.height) {
            throw new V4sError('E_PROTOCOL_FIELD', `oracle rollout ${ci} mask ${j} has ${m.length} values, frame is ${f.width}x${f.height}`);
          }
          return maskToGrounding(m, f.width, f.height, this.#grid.width, this.#grid.height);
        });
      }
      const cur = instruction.goalCategory !== undefined ? current.get(instruction.goalCategory) : undefined;
      return { instruction, frames, grounding, cur };
    });
    const decodeMs = performance.now() - tConv;
    const timings = { encodeMs: 0, denoiseMs: oracleMs, decodeMs, totalMs: performance.now() - t0 };
    return out.map((r) => ({
      instruction: r.instruction,
      frames: r.frames,
      ...(r.grounding ? { grounding: r.grounding } : {}),
      // a copy per rollout, so that one consumer cannot alter another's map
      ...(r.cur ? { currentGrounding: { width: r.cur.width, height: r.cur.height, data: r.cur.data.slice() } } : {}),
      timings,
    }));
  }

  /** Nothing to release: the environment belongs to the caller. */
  async dispose(): Promise<void> {
    await this.#tail;
  }
}
