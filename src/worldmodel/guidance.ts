/**
 * Classifier-free guidance as a set of branches (which conditions each batch block keeps) and a linear
 * combination of their predictions. Null conditions are expressed only through the `context_mask` and
 * `instruction_mask` inputs; the model replaces what is dropped, as it was trained to.
 *
 * - joint (Video4Spatial): ε = ε(∅instr, ∅ctx) + ω·(ε(instr, ctx) − ε(∅instr, ∅ctx)) → branches [∅∅, ctx+instr]
 * - two-scale: ε∅ + s_c·(ε_c − ε∅) + s_i·(ε_ci − ε_c) → branches [∅∅, ctx only, ctx+instr]
 * - none: the conditional branch alone.
 *
 * The combination is applied in the model's own prediction space; it is valid for eps, v, flow and x0 alike
 * because each converts to ε (or velocity) by an affine map that is the same for every branch.
 * Degenerate settings drop branches that would get weight 0: joint with ω = 1 and two-scale (1, 1) are one
 * evaluation; two-scale with s_c = s_i = ω is the joint form (two evaluations).
 * Usage: `const plan = planGuidance({ kind: 'joint', scale: 2 }); combineGuidance(plan, out, n, size, guided)`.
 */
import type { GuidanceConfig } from './world-model.js';

/** The conditions one batch block keeps: 1 keep, 0 drop (fed as `context_mask` / `instruction_mask`). */
export interface GuidanceBranch {
  readonly contextMask: 0 | 1;
  readonly instructionMask: 0 | 1;
}

/** Branches in batch order and the weight of each in the combined prediction. */
export interface GuidancePlan {
  readonly branches: readonly GuidanceBranch[];
  readonly weights: readonly number[];
  /** Index of the fully conditional branch (context + instruction): auxiliary outputs are read from it. */
  readonly conditional: number;
}

const NULL: GuidanceBranch = { contextMask: 0, instructionMask: 0 };
const CONTEXT_ONLY: GuidanceBranch = { contextMask: 1, instructionMask: 0 };
const FULL: GuidanceBranch = { contextMask: 1, instructionMask: 1 };

/** Joint CFG with scale ω (Video4Spatial). ω = 1 needs no unconditional branch. */
export function jointGuidance(scale: number): GuidancePlan {
  if (scale === 1) return { branches: [FULL], weights: [1], conditional: 0 };
  return { branches: [NULL, FULL], weights: [1 - scale, scale], conditional: 1 };
}

/** Two-scale CFG (InstructPix2Pix-style) over context and instruction. */
export function twoScaleGuidance(contextScale: number, instructionScale: number): GuidancePlan {
  if (contextScale === instructionScale) return jointGuidance(contextScale);
  return {
    branches: [NULL, CONTEXT_ONLY, FULL],
    weights: [1 - contextScale, contextScale - instructionScale, instructionScale],
    conditional: 2,
  };
}

/** The plan for a guidance config. Throws RangeError on a non-finite scale. */
export function planGuidance(config: GuidanceConfig): GuidancePlan {
  switch (config.kind) {
    case 'none':
      return jointGuidance(1);
    case 'joint':
      if (!Number.isFinite(config.scale)) throw new RangeError(`guidance.scale must be finite, got ${config.scale}`);
      return jointGuidance(config.scale);
    case 'two-scale':
      if (!Number.isFinite(config.context) || !Number.isFinite(config.instruction)) {
        throw new RangeError(`guidance.context and guidance.instruction must be finite, got ${config.context}, ${config.instruction}`);
      }
      return twoScaleGuidance(config.context, config.instruction);
  }
}

/**
 * Combine the model's batched output into one prediction per candidate.
 * Batch layout: `[branch 0: cand 0..n−1, branch 1: cand 0..n−1, …]`, each row `perCandidate` floats, so
 * `batched[(b·n + c)·perCandidate + j]` and `out[c·perCandidate + j] = Σ_b w_b · batched[…]`.
 */
export function combineGuidance(
  plan: GuidancePlan,
  batched: Float32Array,
  candidates: number,
  perCandidate: number,
  out: Float32Array,
): void {
  const block = candidates * perCandidate;
  if (batched.length < plan.branches.length * block || out.length < block) {
    throw new RangeError(`guidance buffers too small: ${batched.length} batched, ${out.length} out, need ${plan.branches.length * block}, ${block}`);
  }
  const w = plan.weights;
  if (w.length === 1) {
    out.set(batched.subarray(0, block));
    return;
  }
  const w0 = w[0] ?? 0;
  const w1 = w[1] ?? 0;
  if (w.length === 2) {
    for (let i = 0; i < block; i++) out[i] = w0 * (batched[i] as number) + w1 * (batched[block + i] as number);
    return;
  }
  const w2 = w[2] ?? 0;
  const b2 = 2 * block;
  for (let i = 0; i < block; i++) {
    out[i] = w0 * (batched[i] as number) + w1 * (batched[block + i] as number) + w2 * (batched[b2 + i] as number);
  }
}
