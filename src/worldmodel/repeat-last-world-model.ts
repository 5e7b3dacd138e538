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

/** A world model that predicts no change. */
export class RepeatLastWorldModel implements WorldModel {
  readonly specificationVersion = WORLD_MODEL_SPEC_VERSION;
  readonly info: WorldModelInfo;

  /** `base`: the info to mirror (usually the learned model's); `grounding` is always false, the name gets a suffix. */
  constructor(base: Partial<WorldModelInfo> = {}) {
    const merged = { ...DEFAULT_INFO, ...base };
    this.info = { ...merged, name: base.name ? `${base.name}+repeat-last` : DEFAULT_INFO.name, grounding: false };
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
    const rollouts = request.candidates.map((instruction) => ({ instruction, frames: Array.from({ length: horizon }, copy) }));
    const totalMs = performance.now() - t0;
    const timings = { encodeMs: 0, denoiseMs: 0, decodeMs: totalMs, totalMs };
    return rollouts.map((r) => ({ ...r, timings }));
  }

  /** Nothing to release. */
  async dispose(): Promise<void> {}
}
