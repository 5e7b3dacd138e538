/**
 * The "no imagination" ablation: every candidate's future is the newest context frame, repeated; no grounding.
 * Give it the real model's `info` so the same planner runs unchanged, with imagination taken away.
 * Usage: `const ablation = new RepeatLastWorldModel(model.info)`.
 */
import { V4sError } from '../errors.js';
import type { Frame } from '../types.js';
import { resizeFrameArea } from './simulator-world-model.js';
import {
  WORLD_MODEL_SPEC_VERSION,
  type GroundingMap,
  type ImagineRequest,
  type Rollout,
  type WorldModel,
  type WorldModelInfo,
} from './world-model.js';

const DEFAULT_INFO: WorldModelInfo = {
  name: 'repeat-last',
  resolution: { width: 64, height: 64 },
  actions: {
    move_forward: { kind: 'move', amount: 0.25 },
    turn_left: { kind: 'turn', amount: 30 },
    turn_right: { kind: 'turn', amount: 30 },
  },
  maxContext: 1,
  horizon: 4,
  positionRange: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  goalCategories: [],
  grounding: false,
  defaultSampler: { kind: 'euler', steps: 1 },
  defaultGuidance: { kind: 'none' },
};

/**
 * Perception without imagination: the goal category's grounding map of one real frame. Give the ablation the
 * learned model's current-view grounding (see `currentViewGrounder`) so that it perceives and stops exactly as
 * the world-model planner does, and only the imagined futures are taken away.
 */
export type FrameGrounder = (frame: Frame, category: string) => Promise<GroundingMap | undefined>;

/**
 * A grounder from any world model that reports `Rollout.currentGrounding` (the shipped model's
 * `grounding_current` head): one candidate, one sampler step, no guidance, the frame as the only context.
 */
export function currentViewGrounder(model: WorldModel): FrameGrounder {
  const forward = Object.entries(model.info.actions).find(([, a]) => a.kind === 'move')?.[0] ?? Object.keys(model.info.actions)[0];
  return async (frame, category) => {
    if (forward === undefined || !model.info.goalCategories.includes(category)) return undefined;
    const [r] = await model.imagine({
      context: { frames: [frame], positions: [0] },
      candidates: [{ actions: Array.from({ length: model.info.horizon }, () => forward), goalCategory: category }],
      sampler: { kind: 'euler', steps: 1 },
      guidance: { kind: 'none' },
      seed: 0,
    });
    return r?.currentGrounding;
  };
}

/** A world model that predicts no change. */
export class RepeatLastWorldModel implements WorldModel {
  readonly specificationVersion = WORLD_MODEL_SPEC_VERSION;
  readonly info: WorldModelInfo;
  private readonly grounder: FrameGrounder | undefined;

  /**
   * `base`: the info to mirror (usually the learned model's); the name gets a suffix. `grounder`: optional
   * perception of the current frame; without it `grounding` is false and rollouts carry no grounding.
   */
  constructor(base: Partial<WorldModelInfo> = {}, options: { grounder?: FrameGrounder } = {}) {
    const merged = { ...DEFAULT_INFO, ...base };
    this.grounder = options.grounder;
    this.info = { ...merged, name: base.name ? `${base.name}+repeat-last` : DEFAULT_INFO.name, grounding: options.grounder !== undefined && merged.grounding };
  }

  /** The newest context frame (resized to `info.resolution` if needed), `horizon` times per candidate. */
  async imagine(request: ImagineRequest): Promise<Rollout[]> {
    const t0 = performance.now();
    const frames = request.context.frames;
    const newest = frames[frames.length - 1];
    if (newest === undefined) throw new V4sError('E_MODEL_INPUT', 'imagine(): context is empty (the newest frame must be in it)');
    if (request.context.positions.length !== frames.length) {
      throw new V4sError('E_MODEL_INPUT', `imagine(): context has ${frames.length} frames but ${request.context.positions.length} positions`);
    }
    if (request.candidates.length === 0) throw new V4sError('E_MODEL_INPUT', 'imagine(): no candidates');
    const horizon = request.horizon ?? this.info.horizon;
    request.candidates.forEach((c, ci) => {
      if (c.actions.length !== horizon) throw new V4sError('E_MODEL_INPUT', `imagine(): candidates[${ci}] has ${c.actions.length} actions; horizon is ${horizon}`);
      c.actions.forEach((a, ai) => {
        if (this.info.actions[a] === undefined) {
          throw new V4sError('E_MODEL_ACTION', `imagine(): candidates[${ci}].actions[${ai}] "${a}" is not in the vocabulary (${Object.keys(this.info.actions).join(', ')})`, { action: a });
        }
      });
    });
    const { width, height } = this.info.resolution;
    const last = resizeFrameArea(newest, width, height);
    const copy = (): Frame => ({ width: last.width, height: last.height, data: last.data.slice() });
    // The current view's grounding (one per goal category), repeated over the horizon: the future looks like now.
    const grounded = new Map<string, GroundingMap | undefined>();
    if (this.grounder !== undefined) {
      for (const c of request.candidates) {
        const cat = c.goalCategory;
        if (cat !== undefined && !grounded.has(cat)) grounded.set(cat, await this.grounder(newest, cat));
      }
    }
    const totalMs = performance.now() - t0;
    const timings = { encodeMs: 0, denoiseMs: 0, decodeMs: totalMs, totalMs };
    return request.candidates.map((instruction) => {
      const g = instruction.goalCategory === undefined ? undefined : grounded.get(instruction.goalCategory);
      const frames = Array.from({ length: horizon }, copy);
      if (g === undefined) return { instruction, frames, timings };
      return { instruction, frames, grounding: Array.from({ length: horizon }, () => g), currentGrounding: g, timings };
    });
  }

  /** Nothing to release. */
  async dispose(): Promise<void> {}
}
