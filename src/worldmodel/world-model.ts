/**
 * The world-model seam. Free of ONNX types so that remote models can implement it.
 * Usage: `const rollouts = await wm.imagine({ context, candidates, horizon: 4, seed: 1 })`.
 */
import type { Frame, Instruction } from '../types.js';

export const WORLD_MODEL_SPEC_VERSION = 'v1' as const;

export type PredictionType = 'eps' | 'v' | 'flow' | 'x0';

export type SamplerConfig =
  | { readonly kind: 'ddim'; readonly steps: number; readonly eta?: number }
  | { readonly kind: 'euler'; readonly steps: number; readonly shift?: number };

/**
 * Guidance. `joint` is Video4Spatial's single-scale CFG over context and instruction (2 evaluations a step);
 * `two-scale` is ε∅ + s_c(ε_c − ε∅) + s_i(ε_ci − ε_c) (3 evaluations); `none` is one conditional evaluation.
 */
export type GuidanceConfig =
  | { readonly kind: 'joint'; readonly scale: number }
  | { readonly kind: 'two-scale'; readonly context: number; readonly instruction: number }
  | { readonly kind: 'none' };

/** Context frames with the step indices at which they were observed (absolute, non-contiguous, ascending). */
export interface ImagineContext {
  readonly frames: readonly Frame[];
  readonly positions: readonly number[];
}

export interface ImagineRequest {
  readonly context: ImagineContext;
  readonly candidates: readonly Instruction[];
  /** Target frames per candidate; defaults to the model's horizon. Candidate action lists must be this long. */
  readonly horizon?: number;
  readonly sampler?: SamplerConfig;
  readonly guidance?: GuidanceConfig;
  readonly seed?: number;
}

/** A per-frame grounding map: probability that each cell shows the goal category, row-major. */
export interface GroundingMap {
  readonly width: number;
  readonly height: number;
  readonly data: Float32Array;
}

export interface RolloutTimings {
  readonly encodeMs: number;
  readonly denoiseMs: number;
  readonly decodeMs: number;
  readonly totalMs: number;
}

/** The imagined future of one candidate instruction. */
export interface Rollout {
  readonly instruction: Instruction;
  /** `horizon` predicted RGB frames at the model's resolution. */
  readonly frames: Frame[];
  /** Grounding map per target frame, when a goal category was given and the model has the auxiliary output. */
  readonly grounding?: GroundingMap[];
  /**
   * Grounding of the goal category in the newest context frame (the current view), when the model declares
   * the `grounding_current` auxiliary output (the oracle gives the true mask). The planner stops on it.
   */
  readonly currentGrounding?: GroundingMap;
  readonly timings: RolloutTimings;
}

export interface WorldModelActionSpec {
  readonly kind: 'move' | 'turn' | 'look' | 'stop';
  /** The step size the model was trained on (metres or degrees). */
  readonly amount: number;
}

/** What a world model is and accepts; derived from the manifest for ONNX packages. */
export interface WorldModelInfo {
  readonly name: string;
  readonly resolution: { readonly width: number; readonly height: number };
  readonly actions: Readonly<Record<string, WorldModelActionSpec>>;
  readonly maxContext: number;
  readonly horizon: number;
  /** Range of relative positions (newest context frame = 0) seen in training. */
  readonly positionRange: readonly [number, number];
  readonly goalCategories: readonly string[];
  readonly grounding: boolean;
  readonly defaultSampler: SamplerConfig;
  readonly defaultGuidance: GuidanceConfig;
  /** Horizontal field of view (degrees) of the camera the model was trained on, when known. */
  readonly hfov?: number;
  /**
   * ObjectNav stop thresholds calibrated for this model's `currentGrounding` maps (manifest
   * `calibration.stop`, written by `scripts/calibrate-stop.ts`). The world-model planner uses them in place of
   * its defaults, which were calibrated on true masks; the planner's own `stop` option overrides both.
   */
  readonly stopCalibration?: GroundingStopCalibration;
}

/** ObjectNav stop thresholds on grounding maps (see `StopThresholds` in the planner for their meaning). */
export interface GroundingStopCalibration {
  readonly objectArea?: number;
  readonly objectConfidence?: number;
  readonly objectBottom?: number;
  readonly objectNearArea?: number;
  readonly objectNearBottom?: number;
  readonly consecutive?: number;
}

export interface WorldModel {
  readonly specificationVersion: typeof WORLD_MODEL_SPEC_VERSION;
  readonly info: WorldModelInfo;
  imagine(request: ImagineRequest): Promise<Rollout[]>;
  /**
   * Optional: imagine several independent requests (e.g. several agents' decisions) in one batched call;
   * result i equals what `imagine(requests[i])` gives. `BatchingWorldModel` uses it when present.
   */
  imagineBatch?(requests: readonly ImagineRequest[]): Promise<Rollout[][]>;
  dispose(): Promise<void>;
}
