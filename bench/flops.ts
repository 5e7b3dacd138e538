/**
 * FLOPs of one planning decision with the shipped model's architecture (training/v4s_train/model.py), counted
 * analytically: 2 FLOPs per multiply-add of every matmul and convolution (the count torch.profiler's
 * `with_flops` gives; elementwise ops, softmax and norms are left out, as there). training/bench_torch.py --flops
 * counts the same decision with the profiler; bench/run.ts prints both.
 *
 * Architecture read from the manifest where it is stated (latent C×h×w, context_k [L, B, heads, KT, hd]) and
 * fixed by model.py where not: 2×2 latent patches (16 tokens a frame), MLP ratio 4, adaLN (6d) on every target
 * token, the grounding heads, the conv autoencoder's layer list.
 */
import type { ModelManifest } from '../src/worldmodel/manifest.js';

/** The denoiser's shape. */
export interface DenoiserArch {
  readonly layers: number;
  readonly d: number;
  readonly heads: number;
  readonly tokensPerFrame: number;
  /** Values of one latent patch (C·p·p). */
  readonly patchDim: number;
  readonly groundCells: number;
}

/** One decision's settings. */
export interface DecisionShape {
  readonly candidates: number;
  /** Guidance branches (2 for joint CFG with ω ≠ 1). */
  readonly branches: number;
  readonly steps: number;
  readonly context: number;
  readonly horizon: number;
  /** The SDK's cached-context split: context stream once per decision, full denoiser only at the last step (for grounding_current). */
  readonly contextCache: boolean;
  /** Distinct context masks among the branches (context.onnx rows). */
  readonly contextRows?: number;
}

export interface DecisionFlops {
  readonly encode: number;
  readonly contextStream: number;
  readonly targetStream: number;
  readonly decode: number;
  readonly total: number;
}

/** The v4s_train denoiser's shape from a manifest, or undefined when the manifest does not look like one. */
export function archFromManifest(m: ModelManifest): DenoiserArch | undefined {
  const k = m.tensors.context?.outputs['context_k']?.shape;
  if (k === undefined || k.length !== 5) return undefined;
  const [layers, , heads, , hd] = k;
  if (typeof layers !== 'number' || typeof heads !== 'number' || typeof hd !== 'number') return undefined;
  const { channels, height, width } = m.latent;
  if (height % 2 !== 0 || width % 2 !== 0) return undefined;
  return { layers, d: heads * hd, heads, tokensPerFrame: (height / 2) * (width / 2), patchDim: channels * 4, groundCells: 4 };
}

/** Context stream of one row: K frames of clean context tokens through every block (model.py context_kv). */
export function contextStreamFlops(a: DenoiserArch, K: number): number {
  const C = K * a.tokensPerFrame;
  const d = a.d;
  const perBlock = 2 * C * d * 3 * d + 4 * C * C * d + 2 * C * d * d + 16 * C * d * d;
  return 2 * C * a.patchDim * d + a.layers * perBlock;
}

/** Target stream of one row at one step (model.py target_stream), attending to K context frames. */
export function targetStreamFlops(a: DenoiserArch, K: number, H: number): number {
  const T = H * a.tokensPerFrame;
  const C = K * a.tokensPerFrame;
  const d = a.d;
  const perBlock = 2 * T * d * 6 * d + 2 * T * d * 3 * d + 4 * T * (C + T) * d + 2 * T * d * d + 16 * T * d * d;
  const tEmbed = 2 * (64 * d + d * d);
  return 2 * T * a.patchDim * d + tEmbed + a.layers * perBlock + 2 * T * d * a.patchDim + 2 * T * d * a.groundCells;
}

/** Current-view grounding head of one row. */
export function currentGroundingFlops(a: DenoiserArch): number {
  return 2 * a.tokensPerFrame * ((a.patchDim + a.d) * a.d + a.d * a.groundCells);
}

/** The conv autoencoder of model.py, per 64×64 frame. */
function convFlops(layers: readonly (readonly [number, number, number, number])[]): number {
  // [cin, cout, kernel, output side]
  return layers.reduce((s, [cin, cout, k, side]) => s + 2 * cin * cout * k * k * side * side, 0);
}
export const ENCODER_FLOPS_PER_FRAME = convFlops([
  [3, 24, 4, 32],
  [24, 48, 4, 16],
  [48, 64, 4, 8],
  [64, 64, 3, 8],
  [64, 8, 1, 8],
]);
export const DECODER_FLOPS_PER_FRAME = convFlops([
  [8, 64, 3, 8],
  [64, 64, 3, 8],
  [64, 48, 3, 16],
  [48, 24, 3, 32],
  [24, 16, 3, 64],
  [16, 3, 3, 64],
]);

/** FLOPs of one decision as the SDK runs it (`contextCache`) or as a plain full-denoiser loop runs it. */
export function decisionFlops(a: DenoiserArch, s: DecisionShape): DecisionFlops {
  const B = s.candidates * s.branches;
  const ctx = contextStreamFlops(a, s.context);
  const tgt = targetStreamFlops(a, s.context, s.horizon);
  const cur = currentGroundingFlops(a);
  let contextStream: number;
  let targetStream: number;
  if (s.contextCache) {
    // context.onnx on the distinct rows once; the last step runs the full denoiser (grounding_current)
    contextStream = (s.contextRows ?? Math.min(2, s.branches)) * ctx + B * ctx;
    targetStream = s.steps * B * tgt + B * cur;
  } else {
    contextStream = s.steps * B * ctx;
    targetStream = s.steps * B * (tgt + cur);
  }
  const encode = s.context * ENCODER_FLOPS_PER_FRAME;
  const decode = s.candidates * s.horizon * DECODER_FLOPS_PER_FRAME;
  return { encode, contextStream, targetStream, decode, total: encode + contextStream + targetStream + decode };
}
