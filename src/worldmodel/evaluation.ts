/**
 * `v4s eval-model`'s logic: is the world model any good? Evaluates any `WorldModel` on a built-in-simulator
 * dataset (format v4s.dataset.v1, evaluation seeds) and reports:
 *
 * 1. imagination quality per horizon step (aggregate PSNR of the mean squared error, median per-sample PSNR,
 *    mean SSIM) against the "repeat the last context frame" baseline, overall and split into turn / forward
 *    steps;
 * 2. spatial memory: clips whose final target view shows an object seen only in an older context frame j;
 *    masked error with j in context versus j swapped for a frame of similar age that does not show it;
 * 3. ablations on the same clips: true (non-contiguous) versus renumbered-contiguous positions, guidance
 *    scales, sampler steps;
 * 4. grounding: IoU of the predicted goal mask in the final imagined frame (and of the current-view grounding)
 *    against the true mask, with the false-positive rate on absent categories.
 *
 * Clips follow the training distribution: the context is the newest frame plus older frames at their true
 * step offsets (chosen by the agent's `ContextBuffer` recent-exponential policy: 0, −1, −2, −4, −8, −16, …),
 * the targets are the next `horizon` consecutive frames with the actions that produced them. Everything is
 * deterministic given the seed. Definitions of every number: docs/model-evaluation.md.
 *
 * Usage:
 * ```ts
 * const data = EvalDataset.open('data/eval');
 * const report = await evaluateWorldModel(await loadWorldModel('models/v4s-builtin-small'), data, { clips: 300 });
 * console.log(formatEvaluation(report));
 * ```
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { ContextBuffer } from '../agent/context-buffer.js';
import { V4sError } from '../errors.js';
import { mse as frameMse, ssim as frameSsim } from '../planner/image-metrics.js';
import { readDatasetIndex, type DatasetIndex } from '../sim-adapters/builtin/dataset.js';
import { splitOfSeed } from '../sim-adapters/builtin/seeds.js';
import type { Frame, Instruction } from '../types.js';
import { createRng } from './rng.js';
import type { GroundingMap, GuidanceConfig, Rollout, SamplerConfig, WorldModel, WorldModelInfo } from './world-model.js';

/** Format tag of the JSON report. */
export const EVAL_REPORT_FORMAT = 'v4s.eval-model.v1' as const;

// ---------------------------------------------------------------------------------------------------------
// Dataset access

/**
 * Random access to a v4s.dataset.v1 folder: frames and masks are read on demand (positional reads), actions
 * and per-frame category pixel counts are held in memory. Call `close()` when done.
 */
export class EvalDataset {
  readonly dir: string;
  readonly index: DatasetIndex;
  /** Action id per frame (into `index.actions`; 0 = episode start). */
  readonly actions: Uint8Array;
  /** Pixels of each category per frame: `counts[frame * (categories + 1) + id]` (id 0 = background). */
  readonly counts: Uint32Array;
  readonly #frames: number;
  readonly #masks: number;
  #closed = false;

  private constructor(dir: string, index: DatasetIndex, frames: number, masks: number, actions: Uint8Array, counts: Uint32Array) {
    this.dir = dir;
    this.index = index;
    this.#frames = frames;
    this.#masks = masks;
    this.actions = actions;
    this.counts = counts;
  }

  /** Open a dataset folder (checks index.json against the array files: E_PATH / E_CONFIG naming the file). */
  static open(dir: string): EvalDataset {
    const index = readDatasetIndex(dir);
    if (index.episodes.length === 0) throw new V4sError('E_CONFIG', `dataset "${dir}": no episodes`);
    const n = index.totalFrames;
    const px = index.width * index.height;
    const cats = index.categories.length + 1;
    const frames = openSync(join(dir, 'frames.u8'), 'r');
    let masks = -1;
    try {
      masks = openSync(join(dir, 'masks.u8'), 'r');
      const actions = new Uint8Array(n);
      const fa = openSync(join(dir, 'actions.u8'), 'r');
      try {
        readFully(fa, actions, 0, join(dir, 'actions.u8'));
      } finally {
        closeSync(fa);
      }
      for (let i = 0; i < n; i++) {
        const a = actions[i] ?? 0;
        if (a >= index.actions.length) throw new V4sError('E_CONFIG', `dataset "${join(dir, 'actions.u8')}": frame ${i} has action id ${a}; index.json lists ${index.actions.length} actions`);
      }
      // Category pixel counts, streamed through the masks file in chunks.
      const counts = new Uint32Array(n * cats);
      const chunk = Math.max(1, Math.floor((8 << 20) / px));
      const buf = new Uint8Array(chunk * px);
      for (let f0 = 0; f0 < n; f0 += chunk) {
        const m = Math.min(chunk, n - f0);
        const view = buf.subarray(0, m * px);
        readFully(masks, view, f0 * px, join(dir, 'masks.u8'));
        for (let f = 0; f < m; f++) {
          const base = (f0 + f) * cats;
          for (let i = f * px, end = (f + 1) * px; i < end; i++) {
            const c = view[i] ?? 0;
            if (c >= cats) throw new V4sError('E_CONFIG', `dataset "${join(dir, 'masks.u8')}": frame ${f0 + f} has category id ${c}; index.json lists ${cats - 1} categories`);
            counts[base + c] = (counts[base + c] ?? 0) + 1;
          }
        }
      }
      return new EvalDataset(dir, index, frames, masks, actions, counts);
    } catch (e) {
      closeSync(frames);
      if (masks >= 0) closeSync(masks);
      throw e;
    }
  }

  /** Number of categories (ids 1..n). */
  get categoryCount(): number {
    return this.index.categories.length;
  }

  /** The RGB frame at a global frame index. */
  frame(i: number): Frame {
    this.#check(i);
    const { width, height } = this.index;
    const data = new Uint8Array(width * height * 3);
    readFully(this.#frames, data, i * data.length, join(this.dir, 'frames.u8'));
    return { width, height, data };
  }

  /** The category mask (one id per pixel) at a global frame index. */
  mask(i: number): Uint8Array {
    this.#check(i);
    const data = new Uint8Array(this.index.width * this.index.height);
    readFully(this.#masks, data, i * data.length, join(this.dir, 'masks.u8'));
    return data;
  }

  /** Pixels of category `id` in global frame `i`. */
  pixels(i: number, id: number): number {
    return this.counts[i * (this.categoryCount + 1) + id] ?? 0;
  }

  /** Release the file handles. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.#frames);
    closeSync(this.#masks);
  }

  #check(i: number): void {
    if (this.#closed) throw new V4sError('E_CONFIG', `dataset "${this.dir}" was closed`);
    if (!Number.isInteger(i) || i < 0 || i >= this.index.totalFrames) {
      throw new V4sError('E_CONFIG', `dataset "${this.dir}": frame ${i} outside 0..${this.index.totalFrames - 1}`);
    }
  }
}

function readFully(fd: number, into: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n <= 0) throw new V4sError('E_CONFIG', `dataset "${file}": unexpected end of file at byte ${position + done}`);
    done += n;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Clips

/** One evaluation clip: context steps (true positions) and the next `horizon` frames of one episode. */
export interface EvalClip {
  /** Index into `dataset.index.episodes`. */
  readonly episode: number;
  /** The episode's scene seed. */
  readonly sceneSeed: number;
  /** Context step indices within the episode, ascending; the last is the newest. */
  readonly context: readonly number[];
  /** Target step indices: newest + 1 … newest + horizon. */
  readonly targets: readonly number[];
  /** The action that produced each target frame. */
  readonly actions: readonly string[];
}

const DOT: Frame = { width: 1, height: 1, data: new Uint8Array(3) };
const contextCache = new Map<string, readonly number[]>();

/**
 * The context the agent's `ContextBuffer` (recent-exponential policy) would select at step `newest` with
 * every earlier frame of the episode available: `k` steps within `maxOffset` of the newest, ascending, the
 * newest last (offsets 0, −1, −2, −4, −8, −16, … snapped to existing frames).
 */
export function recentExponentialContext(newest: number, k: number, maxOffset: number): number[] {
  if (!Number.isInteger(newest) || newest < 0) throw new V4sError('E_CONFIG', `recentExponentialContext: newest must be an integer ≥ 0, got ${newest}`);
  if (!Number.isInteger(k) || k < 1) throw new V4sError('E_CONFIG', `recentExponentialContext: k must be an integer ≥ 1, got ${k}`);
  const first = Math.max(0, newest - Math.max(0, Math.floor(maxOffset)));
  const avail = newest - first;
  // The selection depends only on how many older frames are available, so it is cached by that count.
  const key = `${avail}:${k}`;
  let rel = contextCache.get(key);
  if (rel === undefined) {
    const buffer = new ContextBuffer({ capacity: avail + 2, recentWindow: 1, policy: 'recent-exponential', maxOffset: avail });
    for (let s = 0; s <= avail; s++) buffer.push({ step: s, rgb: DOT });
    rel = buffer.select(k).positions.map((p) => p - avail);
    contextCache.set(key, rel);
  }
  return rel.map((o) => newest + o);
}

/** The action names of the clip's targets, checked against the model's vocabulary. */
function clipActions(data: EvalDataset, start: number, targets: readonly number[]): string[] {
  return targets.map((t) => data.index.actions[data.actions[start + t] ?? 0] ?? 'none');
}

/** Options of `sampleQualityClips`. */
export interface ClipSamplingOptions {
  readonly count: number;
  readonly seed: number;
  readonly horizon: number;
  readonly maxContext: number;
  /** Largest |offset| of a context frame (the model's trained position range). */
  readonly maxOffset: number;
}

/**
 * Sample `count` distinct clips uniformly over (episode, first target step), as training does: the first
 * target step is uniform in [1, length − horizon], the newest context frame is the step before it.
 * Deterministic in the options. Throws E_CONFIG when the dataset has fewer clips than asked for.
 */
export function sampleQualityClips(data: EvalDataset, options: ClipSamplingOptions): EvalClip[] {
  const { count, seed, horizon, maxContext, maxOffset } = options;
  const eps = data.index.episodes;
  const perEpisode = eps.map((e) => Math.max(0, e.length - horizon));
  const total = perEpisode.reduce((a, b) => a + b, 0);
  if (count > total) throw new V4sError('E_CONFIG', `the dataset "${data.dir}" has ${total} clips of horizon ${horizon}; asked for ${count} (render more scenes)`);
  const rng = createRng(seed, 0x5eed01);
  const seen = new Set<number>();
  const clips: EvalClip[] = [];
  // Uniform over all (episode, t0) pairs: draw a global clip number, without replacement.
  const cumulative: number[] = [];
  let acc = 0;
  for (const n of perEpisode) {
    acc += n;
    cumulative.push(acc);
  }
  while (clips.length < count) {
    const g = Math.floor(rng.nextUniform() * total);
    if (seen.has(g)) continue;
    seen.add(g);
    let e = 0;
    while ((cumulative[e] ?? 0) <= g) e++;
    const ep = eps[e];
    if (ep === undefined) continue;
    const t0 = 1 + g - ((cumulative[e] ?? 0) - (perEpisode[e] ?? 0));
    const newest = t0 - 1;
    const context = recentExponentialContext(newest, maxContext, maxOffset);
    const targets = Array.from({ length: horizon }, (_, h) => t0 + h);
    clips.push({ episode: e, sceneSeed: ep.seed, context, targets, actions: clipActions(data, ep.start, targets) });
  }
  return clips;
}

/** A spatial-memory clip: `memoryStep` shows `category`, the final target shows it, no other context frame does. */
export interface MemoryClip extends EvalClip {
  /** Dataset category id and name of the object. */
  readonly categoryId: number;
  readonly category: string;
  /** The older context frame j that shows the object (a member of `context`). */
  readonly memoryStep: number;
  /** The frame j′ of similar age (|j′ − j| ≤ swapRadius) that replaces j in the swapped condition. */
  readonly swapStep: number;
  /** `context` with j replaced by j′, ascending. */
  readonly swappedContext: readonly number[];
  /** Object pixels in the final target frame and in frame j. */
  readonly targetPixels: number;
  readonly memoryPixels: number;
}

/** Options of `findMemoryClips`. */
export interface MemorySearchOptions {
  readonly horizon: number;
  readonly maxContext: number;
  readonly maxOffset: number;
  /** A category is visible in a frame from this fraction of its pixels on (default 0.01). */
  readonly visibleFraction?: number;
  /** j must be at least this many steps older than the newest frame (default 6). */
  readonly minMemoryOffset?: number;
  /** |j′ − j| ≤ this (default 4). */
  readonly swapRadius?: number;
}

/**
 * Search every (episode, newest step) of the dataset for spatial-memory clips. The context is the
 * recent-exponential selection with the older slot nearest in age to j replaced by j (so the context keeps
 * its size and shape); the object (a category with ≥ visibleFraction of the final target frame's pixels)
 * must have ≥ visibleFraction of frame j's pixels and none in any other context frame, and j′ (nearest to
 * j, not in the context) must show none of it. One clip per (episode, newest): the category with the most
 * pixels in the final target frame among those that qualify, and for it the j with the most object pixels.
 */
export function findMemoryClips(data: EvalDataset, options: MemorySearchOptions): MemoryClip[] {
  const { horizon, maxContext, maxOffset } = options;
  const visible = Math.max(1, Math.ceil((options.visibleFraction ?? 0.01) * data.index.width * data.index.height));
  const minOffset = options.minMemoryOffset ?? 6;
  const radius = options.swapRadius ?? 4;
  const cats = data.categoryCount;
  const out: MemoryClip[] = [];
  if (maxContext < 2) return out;
  data.index.episodes.forEach((ep, e) => {
    const px = (step: number, c: number): number => data.pixels(ep.start + step, c);
    for (let t0 = 1; t0 + horizon <= ep.length; t0++) {
      const newest = t0 - 1;
      const last = t0 + horizon - 1;
      const base = recentExponentialContext(newest, maxContext, maxOffset);
      const older = base.filter((s) => newest - s >= minOffset);
      if (older.length === 0) continue;
      const first = Math.max(0, newest - Math.floor(maxOffset));
      let best: MemoryClip | undefined;
      for (let c = 1; c <= cats; c++) {
        const tp = px(last, c);
        if (tp < visible || (best !== undefined && tp <= best.targetPixels)) continue;
        if (base.some((s) => newest - s < minOffset && px(s, c) > 0)) continue;
        // Candidate j, most object pixels first (ties: the more recent).
        const js: number[] = [];
        for (let j = first; j <= newest - minOffset; j++) if (px(j, c) >= visible) js.push(j);
        js.sort((a, b) => px(b, c) - px(a, c) || b - a);
        for (const j of js) {
          let slot = older[0] as number;
          for (const s of older) if (Math.abs(s - j) < Math.abs(slot - j)) slot = s;
          const ctx = base.map((s) => (s === slot ? j : s)).sort((a, b) => a - b);
          if (new Set(ctx).size !== ctx.length) continue;
          if (ctx.some((s) => s !== j && px(s, c) > 0)) continue;
          let swap = -1;
          for (let d = 1; d <= radius && swap < 0; d++) {
            for (const cand of [j - d, j + d]) {
              if (cand < first || cand >= newest || ctx.includes(cand) || px(cand, c) > 0) continue;
              swap = cand;
              break;
            }
          }
          if (swap < 0) continue;
          const swappedContext = ctx.map((s) => (s === j ? swap : s)).sort((a, b) => a - b);
          const targets = Array.from({ length: horizon }, (_, h) => t0 + h);
          best = {
            episode: e,
            sceneSeed: ep.seed,
            context: ctx,
            targets,
            actions: clipActions(data, ep.start, targets),
            categoryId: c,
            category: data.index.categories[c - 1] ?? `category ${c}`,
            memoryStep: j,
            swapStep: swap,
            swappedContext,
            targetPixels: tp,
            memoryPixels: px(j, c),
          };
          break;
        }
      }
      if (best !== undefined) out.push(best);
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Metrics

/** Default cap of a per-sample PSNR (identical frames would be +∞), in dB. */
export const PSNR_CAP = 100;

/** PSNR (peak 255) of a mean squared error, capped at `cap` dB (an exact match gives `cap`). */
export function psnrFromMse(mse: number, cap = PSNR_CAP): number {
  if (!(mse > 0)) return cap;
  return Math.min(cap, 10 * Math.log10((255 * 255) / mse));
}

/** Median of a list (mean of the middle two for an even count); NaN for an empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** Sum and count of squared RGB errors over the pixels where `mask === id` (0–255 scale). */
export function maskedSquaredError(a: Frame, b: Frame, mask: Uint8Array, id: number): { sum: number; count: number } {
  if (a.width !== b.width || a.height !== b.height || mask.length !== a.width * a.height) {
    throw new V4sError('E_FRAME_SIZE', `maskedSquaredError: frames ${a.width}×${a.height} and ${b.width}×${b.height}, mask of ${mask.length} pixels`);
  }
  let sum = 0;
  let count = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] !== id) continue;
    for (let ch = 0; ch < 3; ch++) {
      const d = (a.data[i * 3 + ch] ?? 0) - (b.data[i * 3 + ch] ?? 0);
      sum += d * d;
    }
    count += 3;
  }
  return { sum, count };
}

/**
 * Fraction of each grid cell's pixels that belong to category `id` (the grounding head's training target):
 * a `gw × gh` row-major map. Cells are the pixel blocks [⌊x·W/gw⌋, ⌊(x+1)·W/gw⌋).
 */
export function maskToCellFractions(mask: Uint8Array, width: number, height: number, id: number, gw: number, gh: number): Float32Array {
  if (mask.length !== width * height) throw new V4sError('E_FRAME_SIZE', `maskToCellFractions: mask of ${mask.length} pixels for ${width}×${height}`);
  if (gw < 1 || gh < 1 || gw > width || gh > height) throw new V4sError('E_CONFIG', `maskToCellFractions: grid ${gw}×${gh} does not fit ${width}×${height}`);
  const out = new Float32Array(gw * gh);
  for (let gy = 0; gy < gh; gy++) {
    const y0 = Math.floor((gy * height) / gh);
    const y1 = Math.floor(((gy + 1) * height) / gh);
    for (let gx = 0; gx < gw; gx++) {
      const x0 = Math.floor((gx * width) / gw);
      const x1 = Math.floor(((gx + 1) * width) / gw);
      let hit = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (mask[y * width + x] === id) hit++;
      out[gy * gw + gx] = hit / ((y1 - y0) * (x1 - x0));
    }
  }
  return out;
}

/**
 * Hard IoU of a predicted grounding map (cells ≥ `threshold`) against true cell fractions (cells ≥
 * `truthThreshold`); `undefined` when both sets are empty.
 */
export function groundingIoU(pred: ArrayLike<number>, truth: ArrayLike<number>, threshold = 0.5, truthThreshold = 0.5): number | undefined {
  if (pred.length !== truth.length) throw new V4sError('E_CONFIG', `groundingIoU: ${pred.length} predicted cells vs ${truth.length} true cells`);
  let inter = 0;
  let union = 0;
  for (let i = 0; i < pred.length; i++) {
    const p = (pred[i] as number) >= threshold;
    const t = (truth[i] as number) >= truthThreshold;
    if (p && t) inter++;
    if (p || t) union++;
  }
  return union === 0 ? undefined : inter / union;
}

/** Soft IoU Σ min(p, t) / Σ max(p, t) of a probability map against true cell fractions (1 when both are all 0). */
export function softIoU(pred: ArrayLike<number>, truth: ArrayLike<number>): number {
  if (pred.length !== truth.length) throw new V4sError('E_CONFIG', `softIoU: ${pred.length} predicted cells vs ${truth.length} true cells`);
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < pred.length; i++) {
    const p = Math.min(1, Math.max(0, pred[i] as number));
    const t = truth[i] as number;
    lo += Math.min(p, t);
    hi += Math.max(p, t);
  }
  return hi === 0 ? 1 : lo / hi;
}

/**
 * Two-sided exact sign test: the probability, under "each non-tied pair is a fair coin", of a split at least
 * as uneven as `wins` : `losses`. 1 when there are no non-tied pairs.
 */
export function signTestPValue(wins: number, losses: number): number {
  const n = wins + losses;
  if (n === 0) return 1;
  const k = Math.min(wins, losses);
  // log P(X = i) for X ~ Binomial(n, 1/2), summed in log space (n may be large).
  let logC = 0;
  const terms: number[] = [];
  for (let i = 0; i <= k; i++) {
    if (i > 0) logC += Math.log((n - i + 1) / i);
    terms.push(logC - n * Math.LN2);
  }
  const mx = Math.max(...terms);
  let s = 0;
  for (const t of terms) s += Math.exp(t - mx);
  return Math.min(1, 2 * Math.exp(mx + Math.log(s)));
}

/** Result of `pairedBootstrap`. */
export interface BootstrapResult {
  readonly meanDiff: number;
  /** 95 % percentile interval of the mean difference. */
  readonly ci95: readonly [number, number];
  /** One-sided: the fraction of resampled means ≤ 0 (small when the difference is reliably positive). */
  readonly pOneSided: number;
  readonly resamples: number;
}

/** Paired bootstrap of the mean of `diffs` (e.g. swapped − memory error), deterministic in `seed`. */
export function pairedBootstrap(diffs: readonly number[], seed: number, resamples = 2000): BootstrapResult {
  const n = diffs.length;
  if (n === 0) return { meanDiff: NaN, ci95: [NaN, NaN], pOneSided: NaN, resamples };
  const rng = createRng(seed, 0xb0075);
  const means = new Float64Array(resamples);
  let notPositive = 0;
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += diffs[Math.floor(rng.nextUniform() * n)] as number;
    const m = s / n;
    means[r] = m;
    if (m <= 0) notPositive++;
  }
  means.sort();
  const q = (p: number): number => means[Math.min(resamples - 1, Math.max(0, Math.floor(p * resamples)))] as number;
  return { meanDiff: mean(diffs), ci95: [q(0.025), q(0.975)], pOneSided: notPositive / resamples, resamples };
}

/** Area under the ROC curve of `positive` scores against `negative` ones (ties count ½); NaN if either is empty. */
export function rocAuc(positive: readonly number[], negative: readonly number[]): number {
  if (positive.length === 0 || negative.length === 0) return NaN;
  let s = 0;
  for (const p of positive) for (const q of negative) s += p > q ? 1 : p === q ? 0.5 : 0;
  return s / (positive.length * negative.length);
}

// ---------------------------------------------------------------------------------------------------------
// Accumulators

/** Per-frame scores of one imagined frame against the truth. */
interface FrameScore {
  readonly step: number;
  readonly turn: boolean;
  readonly mse: number;
  readonly psnr: number;
  readonly ssim: number;
}

/** Summary of frame scores: PSNR of the mean MSE, median per-sample PSNR, mean SSIM. `null`: no samples. */
export interface FrameStats {
  readonly n: number;
  readonly mseMean: number | null;
  /** PSNR of the mean squared error over the set (capped like per-sample values). */
  readonly psnrAggregate: number | null;
  readonly psnrMedian: number | null;
  readonly ssimMean: number | null;
}

function summarize(scores: readonly FrameScore[], cap: number): FrameStats {
  if (scores.length === 0) return { n: 0, mseMean: null, psnrAggregate: null, psnrMedian: null, ssimMean: null };
  const m = mean(scores.map((s) => s.mse));
  return {
    n: scores.length,
    mseMean: m,
    psnrAggregate: psnrFromMse(m, cap),
    psnrMedian: median(scores.map((s) => s.psnr)),
    ssimMean: mean(scores.map((s) => s.ssim)),
  };
}

/** Which target steps a row covers. */
export type ActionGroup = 'all' | 'turn' | 'forward';

/** Model and baseline at one horizon step (or over all steps, `step: 'all'`), for one action group. */
export interface QualityRow {
  readonly step: number | 'all';
  readonly actions: ActionGroup;
  readonly model: FrameStats;
  readonly baseline: FrameStats;
}

/** A variant of the ablation tables: the same clips, one setting changed. */
export interface VariantRow {
  readonly name: string;
  readonly sampler: SamplerConfig;
  readonly guidance: GuidanceConfig;
  readonly positions: 'true' | 'contiguous';
  /** Per horizon step 1..H, all actions. */
  readonly steps: FrameStats[];
  readonly overall: FrameStats;
  /** Mean wall time of one `imagine()` call (one clip). */
  readonly meanImagineMs: number;
}

/** Grounding metrics over one set of queries (see docs/model-evaluation.md). */
export interface GroundingStats {
  /** Queries whose category covers ≥ visibleFraction of the frame. */
  readonly presentQueries: number;
  /** Queries whose category has no pixel in the frame. */
  readonly absentQueries: number;
  /** Queries in between (a few pixels): only in `softIoUMean`. */
  readonly partialQueries: number;
  /** Mean hard IoU over present queries with at least one true cell (cell fraction ≥ truthThreshold). */
  readonly iouMean: number | null;
  readonly iouQueries: number;
  /** Mean soft IoU over present and partial queries. */
  readonly softIoUMean: number | null;
  /** Present queries with at least one predicted cell ≥ threshold. */
  readonly detectionRate: number | null;
  /** Absent queries with at least one predicted cell ≥ threshold. */
  readonly falsePositiveRate: number | null;
  /** AUC of the map's maximum as a present-vs-absent score. */
  readonly presenceAuc: number | null;
}

interface GroundingQuery {
  readonly pred: Float32Array;
  readonly truth: Float32Array;
  readonly pixels: number;
}

function groundingStats(queries: readonly GroundingQuery[], visiblePx: number, threshold: number, truthThreshold: number): GroundingStats {
  const ious: number[] = [];
  const soft: number[] = [];
  let present = 0;
  let absent = 0;
  let partial = 0;
  let detected = 0;
  let falsePos = 0;
  const presentMax: number[] = [];
  const absentMax: number[] = [];
  for (const q of queries) {
    let mx = -Infinity;
    for (const v of q.pred) mx = Math.max(mx, v);
    const fires = mx >= threshold;
    if (q.pixels === 0) {
      absent++;
      if (fires) falsePos++;
      absentMax.push(mx);
      continue;
    }
    soft.push(softIoU(q.pred, q.truth));
    if (q.pixels < visiblePx) {
      partial++;
      continue;
    }
    present++;
    presentMax.push(mx);
    if (fires) detected++;
    let anyTrue = false;
    for (const t of q.truth) if (t >= truthThreshold) anyTrue = true;
    if (anyTrue) ious.push(groundingIoU(q.pred, q.truth, threshold, truthThreshold) ?? 0);
  }
  const orNull = (v: number): number | null => (Number.isFinite(v) ? v : null);
  return {
    presentQueries: present,
    absentQueries: absent,
    partialQueries: partial,
    iouMean: orNull(mean(ious)),
    iouQueries: ious.length,
    softIoUMean: orNull(mean(soft)),
    detectionRate: present > 0 ? detected / present : null,
    falsePositiveRate: absent > 0 ? falsePos / absent : null,
    presenceAuc: orNull(rocAuc(presentMax, absentMax)),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The report

/** Paired comparison of a masked error with the memory frame in context versus swapped out. */
export interface MemoryComparison {
  /** Mean masked MSE and the PSNR of that mean, per condition. */
  readonly withMemory: { readonly mseMean: number | null; readonly psnr: number | null };
  readonly swapped: { readonly mseMean: number | null; readonly psnr: number | null };
  /** "Repeat the last context frame" (the same in both conditions), for scale. */
  readonly baseline: { readonly mseMean: number | null; readonly psnr: number | null };
  /** Clips where the error with memory is strictly lower. */
  readonly wins: number;
  readonly losses: number;
  readonly ties: number;
  /** wins / clips. */
  readonly memoryWinRate: number | null;
  readonly signTestP: number;
  /** Bootstrap of the mean of (swapped − with memory): positive means memory helps. */
  readonly bootstrap: BootstrapResult;
}

/** One memory clip's identity and errors, for reproduction. */
export interface MemoryClipResult {
  readonly sceneSeed: number;
  readonly newest: number;
  readonly context: readonly number[];
  readonly memoryStep: number;
  readonly swapStep: number;
  readonly category: string;
  readonly targetPixels: number;
  /** Masked MSE in the final target frame: with memory, swapped, baseline. */
  readonly finalMse: readonly [number, number, number];
  /** Masked MSE over all target frames' object pixels: with memory, swapped, baseline. */
  readonly allMse: readonly [number, number, number];
}

/** The spatial-memory test. */
export interface MemoryReport {
  /** Qualifying clips in the whole dataset (one per episode and newest step). */
  readonly found: number;
  readonly requested: number;
  readonly used: number;
  /** Distinct (episode, category) events among the clips used. */
  readonly distinctEvents: number;
  readonly visibleFraction: number;
  readonly minMemoryOffset: number;
  readonly swapRadius: number;
  /** Error on the object's pixels in the final imagined frame. */
  readonly finalFrame: MemoryComparison | null;
  /** Error on the object's pixels over all imagined frames (pixels pooled per clip). */
  readonly allFrames: MemoryComparison | null;
  /** Grounding of the object in the final imagined frame, per condition (when the model grounds). */
  readonly grounding: { readonly withMemory: GroundingStats; readonly swapped: GroundingStats } | null;
  readonly clips: MemoryClipResult[];
}

/** Everything `v4s eval-model` reports (written as JSON). */
export interface ModelEvaluation {
  readonly format: typeof EVAL_REPORT_FORMAT;
  /** false while phases are still running (partial reports written along the way). */
  readonly complete: boolean;
  readonly model: {
    readonly name: string;
    readonly horizon: number;
    readonly maxContext: number;
    readonly positionRange: readonly [number, number];
    readonly grounding: boolean;
  };
  readonly data: {
    readonly dir: string;
    readonly split: string;
    readonly episodes: number;
    readonly frames: number;
    readonly seedRange: readonly [number, number];
    /** Seeds outside the EVAL range (should be 0 for reported numbers). */
    readonly nonEvalSeeds: number;
  };
  readonly settings: {
    readonly clips: number;
    readonly seed: number;
    readonly sampler: SamplerConfig;
    readonly guidance: GuidanceConfig;
    readonly ablationClips: number;
    readonly stepsSweep: readonly number[];
    readonly cfgSweep: readonly number[];
    readonly memoryClips: number;
    readonly visibleFraction: number;
    readonly groundingThreshold: number;
    readonly truthCellThreshold: number;
    readonly psnrCap: number;
  };
  readonly quality: { readonly clips: number; readonly rows: QualityRow[] } | null;
  readonly ablations: {
    readonly clips: number;
    readonly positions: VariantRow[];
    readonly guidance: VariantRow[];
    readonly samplerSteps: VariantRow[];
  } | null;
  readonly grounding:
    | {
        readonly available: true;
        readonly queries: number;
        /** Final imagined frame vs the true final target frame. */
        readonly target: GroundingStats;
        /** `currentGrounding` vs the newest context frame (null when the model lacks it). */
        readonly current: GroundingStats | null;
      }
    | { readonly available: false; readonly reason: string };
  readonly memory: MemoryReport | null;
  readonly timing: {
    readonly wallMs: number;
    readonly imagineCalls: number;
    readonly meanImagineMs: number;
    readonly phases: Readonly<Record<string, number>>;
  };
}

/** Progress of `evaluateWorldModel` (for a progress bar / ETA). */
export interface EvalProgress {
  readonly phase: 'quality' | 'memory-search' | 'memory';
  readonly clipsDone: number;
  readonly clipsTotal: number;
  /** Fraction of the whole run's estimated work done, in [0, 1]. */
  readonly fraction: number;
  readonly elapsedMs: number;
  /** Estimated time left (ms); undefined before the first call finished. */
  readonly etaMs?: number;
}

/** Options of `evaluateWorldModel`. */
export interface EvaluationOptions {
  /** Quality clips (default 300). */
  readonly clips?: number;
  /** Seed of clip sampling, goal choice and the sampler noise (default 0). */
  readonly seed?: number;
  /** Sampler and guidance of the main run (default: the model's defaults). */
  readonly sampler?: SamplerConfig;
  readonly guidance?: GuidanceConfig;
  /** The first N quality clips also run the ablations (default 100; 0 skips them). */
  readonly ablationClips?: number;
  /** Sampler step counts of the steps table (default [2, 4, 8]; the main run's count is reused). */
  readonly stepsSweep?: readonly number[];
  /** Joint guidance scales ω of the guidance table besides the default (default [1]; ω = 1 is the conditional branch alone). */
  readonly cfgSweep?: readonly number[];
  /** Memory clips to run (default 200; 0 skips the test). */
  readonly memoryClips?: number;
  /** A category is "visible" from this fraction of a frame's pixels on (default 0.01). */
  readonly visibleFraction?: number;
  /** The memory frame j is at least this many steps older than the newest context frame (default 6). */
  readonly minMemoryOffset?: number;
  /** The swapped-in frame j′ is at most this many steps from j (default 4). */
  readonly swapRadius?: number;
  /** Grounding cells ≥ this are predicted positive (default 0.5). */
  readonly groundingThreshold?: number;
  /** True cells with at least this fraction of goal pixels are positive (default 0.5). */
  readonly truthCellThreshold?: number;
  /** Bootstrap resamples (default 2000). */
  readonly bootstrap?: number;
  /** Cap of per-sample PSNR in dB (default 100). */
  readonly psnrCap?: number;
  readonly onProgress?: (p: EvalProgress) => void;
  /** Called with a partial report after the quality phase (for incremental writes). */
  readonly onPartial?: (report: ModelEvaluation) => void;
}

function samplerCost(s: SamplerConfig, g: GuidanceConfig): number {
  const branches = g.kind === 'joint' ? 2 : g.kind === 'two-scale' ? 3 : 1;
  return Math.max(1, s.steps) * branches;
}

function sameGuidance(a: GuidanceConfig, b: GuidanceConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function isTurn(action: string): boolean {
  return action !== 'move_forward';
}

/** The guidance config of a joint scale: ω = 1 is the conditional branch alone (one evaluation a step). */
export function guidanceForScale(scale: number): GuidanceConfig {
  return scale === 1 ? { kind: 'none' } : { kind: 'joint', scale };
}

/**
 * Draw `n` memory clips (seeded), spread over distinct events: consecutive newest steps of one episode often
 * show the same object from the same memory frame, and such near-duplicates are not independent samples. The
 * first pass takes at most one clip per (episode, category), the second one per (episode, memory frame), the
 * last fills up with the rest.
 */
export function selectMemoryClips(all: readonly MemoryClip[], n: number, seed: number): MemoryClip[] {
  const rng = createRng(seed, 0x3e3041);
  const pool = [...all];
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(rng.nextUniform() * (i + 1));
    const a = pool[i] as MemoryClip;
    pool[i] = pool[j] as MemoryClip;
    pool[j] = a;
  }
  const chosen = new Set<MemoryClip>();
  const passes: ((c: MemoryClip) => string)[] = [(c) => `${c.episode}:${c.categoryId}`, (c) => `${c.episode}:${c.memoryStep}`, (c) => `${c.episode}:${c.context.at(-1) ?? 0}`];
  for (const key of passes) {
    const seen = new Set([...chosen].map(key));
    for (const c of pool) {
      if (chosen.size >= n) break;
      if (chosen.has(c) || seen.has(key(c))) continue;
      seen.add(key(c));
      chosen.add(c);
    }
  }
  return pool.filter((c) => chosen.has(c));
}

/**
 * The dataset must match the model: same resolution, its actions in the vocabulary with the same step sizes
 * (E_CONFIG, E_MODEL_ACTION, E_MODEL_STEP_SIZE naming the mismatch).
 */
export function checkCompatibility(info: WorldModelInfo, data: EvalDataset): void {
  const idx = data.index;
  const { width: W, height: Hp } = info.resolution;
  if (idx.width !== W || idx.height !== Hp) {
    throw new V4sError('E_CONFIG', `dataset "${data.dir}" has ${idx.width}×${idx.height} frames; model "${info.name}" takes ${W}×${Hp} (render the data with --size ${W})`);
  }
  // The dataset's actions must be in the model's vocabulary with the same step sizes.
  const amounts: Record<string, { kind: string; amount: number }> = {
    move_forward: { kind: 'move', amount: idx.forwardStep },
    turn_left: { kind: 'turn', amount: idx.turnAngle },
    turn_right: { kind: 'turn', amount: idx.turnAngle },
  };
  for (const name of idx.actions) {
    if (name === 'none') continue;
    const spec = info.actions[name];
    if (spec === undefined) throw new V4sError('E_MODEL_ACTION', `dataset action "${name}" is not in the vocabulary of model "${info.name}" (${Object.keys(info.actions).join(', ')})`, { action: name });
    const want = amounts[name];
    if (want !== undefined && (spec.kind !== want.kind || Math.abs(spec.amount - want.amount) > 1e-6 * Math.max(1, want.amount))) {
      throw new V4sError('E_MODEL_STEP_SIZE', `model "${info.name}" was trained on ${name} = ${spec.amount} (${spec.kind}); the dataset's is ${want.amount} (${want.kind})`, { action: name });
    }
  }
}

/**
 * Paired comparison of per-clip (with memory, swapped, baseline) errors: means, wins, sign test, bootstrap of
 * swapped − with memory. `null` for no clips.
 */
export function compareConditions(errors: readonly (readonly [number, number, number])[], seed: number, resamples: number, cap = PSNR_CAP): MemoryComparison | null {
  if (errors.length === 0) return null;
  const m = errors.map((e) => e[0]);
  const s = errors.map((e) => e[1]);
  const b = errors.map((e) => e[2]);
  let wins = 0;
  let losses = 0;
  for (let i = 0; i < m.length; i++) {
    if ((m[i] as number) < (s[i] as number)) wins++;
    else if ((m[i] as number) > (s[i] as number)) losses++;
  }
  const cond = (v: number[]): { mseMean: number; psnr: number } => ({ mseMean: mean(v), psnr: psnrFromMse(mean(v), cap) });
  return {
    withMemory: cond(m),
    swapped: cond(s),
    baseline: cond(b),
    wins,
    losses,
    ties: m.length - wins - losses,
    memoryWinRate: wins / m.length,
    signTestP: signTestPValue(wins, losses),
    bootstrap: pairedBootstrap(s.map((v, i) => v - (m[i] as number)), seed, resamples),
  };
}

/**
 * Evaluate a world model on a dataset (see the module comment). One `imagine()` call per clip and variant,
 * with the clip's true action sequence as the only candidate. Never closes the dataset or the model.
 */
export async function evaluateWorldModel(model: WorldModel, data: EvalDataset, options: EvaluationOptions = {}): Promise<ModelEvaluation> {
  const t0 = performance.now();
  const info = model.info;
  const idx = data.index;
  const H = info.horizon;
  const { width: W, height: Hp } = info.resolution;
  checkCompatibility(info, data);

  const clipsN = options.clips ?? 300;
  const seed = options.seed ?? 0;
  const checkInt = (name: string, v: number, min: number): void => {
    if (!Number.isSafeInteger(v) || v < min) throw new V4sError('E_CONFIG', `eval-model: ${name} must be an integer ≥ ${min}, got ${String(v)}`);
  };
  checkInt('clips', clipsN, 1);
  checkInt('seed', seed, 0);
  const sampler = options.sampler ?? info.defaultSampler;
  const guidance = options.guidance ?? info.defaultGuidance;
  const ablationN = Math.min(clipsN, options.ablationClips ?? 100);
  checkInt('ablationClips', ablationN, 0);
  const stepsSweep = [...new Set(options.stepsSweep ?? [2, 4, 8])].sort((a, b) => a - b);
  for (const s of stepsSweep) checkInt('sampler steps', s, 1);
  const cfgSweep = [...new Set(options.cfgSweep ?? [1])];
  for (const w of cfgSweep) if (!(Number.isFinite(w) && w >= 0)) throw new V4sError('E_CONFIG', `eval-model: guidance scale must be ≥ 0, got ${w}`);
  const memoryN = options.memoryClips ?? 200;
  checkInt('memoryClips', memoryN, 0);
  const visibleFraction = options.visibleFraction ?? 0.01;
  if (!(visibleFraction > 0 && visibleFraction <= 1)) throw new V4sError('E_CONFIG', `eval-model: visibleFraction must be in (0, 1], got ${visibleFraction}`);
  const threshold = options.groundingThreshold ?? 0.5;
  const truthThreshold = options.truthCellThreshold ?? 0.5;
  const bootstrapN = options.bootstrap ?? 2000;
  const cap = options.psnrCap ?? PSNR_CAP;
  const visiblePx = Math.max(1, Math.ceil(visibleFraction * W * Hp));
  const maxOffset = Math.min(-info.positionRange[0], Number.MAX_SAFE_INTEGER);
  const maxContext = info.maxContext;

  // Goal categories the model knows that the dataset has (dataset ids).
  const goalIds: number[] = [];
  idx.categories.forEach((name, i) => {
    if (info.goalCategories.includes(name)) goalIds.push(i + 1);
  });
  const grounds = info.grounding && goalIds.length > 0;

  const seeds = idx.episodes.map((e) => e.seed);
  const nonEval = seeds.filter((s) => splitOfSeed(s) !== 'eval').length;

  // Variants of the ablation tables (beyond the main run).
  const mainSteps = sampler.steps;
  const stepVariants = stepsSweep.filter((s) => s !== mainSteps).map((s) => ({ ...sampler, steps: s }) as SamplerConfig);
  const cfgVariants = cfgSweep.map(guidanceForScale).filter((g) => !sameGuidance(g, guidance));
  const mainCost = samplerCost(sampler, guidance);
  let ablationCost = 0;
  if (ablationN > 0) {
    ablationCost += mainCost; // contiguous positions
    for (const g of cfgVariants) ablationCost += samplerCost(sampler, g);
    for (const s of stepVariants) ablationCost += samplerCost(s, guidance);
  }

  // Clips.
  const clips = sampleQualityClips(data, { count: clipsN, seed, horizon: H, maxContext, maxOffset });
  const tSearch = performance.now();
  const minMemoryOffset = options.minMemoryOffset ?? 6;
  const swapRadius = options.swapRadius ?? 4;
  checkInt('minMemoryOffset', minMemoryOffset, 1);
  checkInt('swapRadius', swapRadius, 1);
  const allMemory = memoryN > 0 ? findMemoryClips(data, { horizon: H, maxContext, maxOffset, visibleFraction, minMemoryOffset, swapRadius }) : [];
  const searchMs = performance.now() - tSearch;
  const memClips = selectMemoryClips(allMemory, memoryN, seed);

  const totalWork = clipsN * mainCost + ablationN * ablationCost + memClips.length * 2 * mainCost;
  let doneWork = 0;
  let calls = 0;
  let imagineMs = 0;
  const progress = (phase: EvalProgress['phase'], clipsDone: number, clipsTotal: number): void => {
    if (!options.onProgress) return;
    const elapsedMs = performance.now() - t0;
    const fraction = totalWork > 0 ? doneWork / totalWork : 1;
    options.onProgress({ phase, clipsDone, clipsTotal, fraction, elapsedMs, ...(doneWork > 0 ? { etaMs: (elapsedMs * (totalWork - doneWork)) / doneWork } : {}) });
  };

  const imagine = async (
    context: readonly Frame[],
    positions: readonly number[],
    candidates: Instruction[],
    s: SamplerConfig,
    g: GuidanceConfig,
    imagineSeed: number,
  ): Promise<{ rollouts: Rollout[]; ms: number }> => {
    const tc = performance.now();
    const rollouts = await model.imagine({ context: { frames: context, positions }, candidates, horizon: H, sampler: s, guidance: g, seed: imagineSeed });
    const ms = performance.now() - tc;
    calls++;
    imagineMs += ms;
    doneWork += samplerCost(s, g);
    if (rollouts.length !== candidates.length) throw new V4sError('E_MODEL_OUTPUT', `model "${info.name}" returned ${rollouts.length} rollouts for ${candidates.length} candidates`);
    for (const r of rollouts) {
      if (r.frames.length !== H) throw new V4sError('E_MODEL_OUTPUT', `model "${info.name}" returned ${r.frames.length} frames; horizon is ${H}`);
    }
    return { rollouts, ms };
  };

  const scoreFrames = (pred: readonly Frame[], truth: readonly Frame[], actions: readonly string[]): FrameScore[] =>
    truth.map((t, h) => {
      const p = pred[h] as Frame;
      const e = frameMse(p, t);
      return { step: h + 1, turn: isTurn(actions[h] ?? ''), mse: e, psnr: psnrFromMse(e, cap), ssim: frameSsim(p, t) };
    });

  // ------------------------------------------------------------------ phase 1: quality (+ ablations, grounding)
  const tQuality = performance.now();
  const modelScores: FrameScore[] = [];
  const baseScores: FrameScore[] = [];
  const variantScores = new Map<string, { scores: FrameScore[]; ms: number[] }>();
  const addVariant = (key: string, scores: FrameScore[], ms: number): void => {
    let v = variantScores.get(key);
    if (v === undefined) {
      v = { scores: [], ms: [] };
      variantScores.set(key, v);
    }
    v.scores.push(...scores);
    v.ms.push(ms);
  };
  const targetQueries: GroundingQuery[] = [];
  const currentQueries: GroundingQuery[] = [];
  let hasCurrent = false;

  for (let ci = 0; ci < clips.length; ci++) {
    const clip = clips[ci] as EvalClip;
    const start = idx.episodes[clip.episode]?.start ?? 0;
    const ctxFrames = clip.context.map((s) => data.frame(start + s));
    const truth = clip.targets.map((s) => data.frame(start + s));
    const last = start + (clip.targets[H - 1] as number);
    const newestGlobal = start + (clip.context[clip.context.length - 1] as number);
    // Goal (training gives one on every sample): a category visible in the final target frame when there is one,
    // else one absent from every target frame (the false-positive queries), else any.
    let goal: number | undefined;
    if (goalIds.length > 0) {
      const grng = createRng(seed, 0x90a1 + ci);
      const present = goalIds.filter((c) => data.pixels(last, c) >= visiblePx);
      const absent = goalIds.filter((c) => clip.targets.every((s) => data.pixels(start + s, c) === 0));
      const pick = (list: readonly number[]): number => list[Math.floor(grng.nextUniform() * list.length)] as number;
      goal = present.length > 0 ? pick(present) : absent.length > 0 ? pick(absent) : pick(goalIds);
    }
    const goalName = goal !== undefined ? idx.categories[goal - 1] : undefined;
    const instruction: Instruction = { actions: clip.actions, ...(goalName !== undefined ? { goalCategory: goalName } : {}) };
    const imagineSeed = seed * 1_000_000 + ci;
    const positions = clip.context;
    const main = await imagine(ctxFrames, positions, [instruction], sampler, guidance, imagineSeed);
    const rollout = main.rollouts[0] as Rollout;
    const scores = scoreFrames(rollout.frames, truth, clip.actions);
    modelScores.push(...scores);
    const newestFrame = ctxFrames[ctxFrames.length - 1] as Frame;
    baseScores.push(...scoreFrames(truth.map(() => newestFrame), truth, clip.actions));
    if (ci < ablationN) {
      addVariant('main', scores, main.ms);
      const newest = positions[positions.length - 1] as number;
      const contiguous = positions.map((_, k) => newest - (positions.length - 1 - k));
      const c = await imagine(ctxFrames, contiguous, [instruction], sampler, guidance, imagineSeed);
      addVariant('contiguous', scoreFrames((c.rollouts[0] as Rollout).frames, truth, clip.actions), c.ms);
      for (const g of cfgVariants) {
        const r = await imagine(ctxFrames, positions, [instruction], sampler, g, imagineSeed);
        addVariant(`guidance:${JSON.stringify(g)}`, scoreFrames((r.rollouts[0] as Rollout).frames, truth, clip.actions), r.ms);
      }
      for (const s of stepVariants) {
        const r = await imagine(ctxFrames, positions, [instruction], s, guidance, imagineSeed);
        addVariant(`steps:${s.steps}`, scoreFrames((r.rollouts[0] as Rollout).frames, truth, clip.actions), r.ms);
      }
    }
    if (goal !== undefined && grounds) {
      const g = rollout.grounding?.[H - 1];
      if (g !== undefined) targetQueries.push(groundingQuery(g, data.mask(last), W, Hp, goal, data.pixels(last, goal)));
      const cur = rollout.currentGrounding;
      if (cur !== undefined) {
        hasCurrent = true;
        currentQueries.push(groundingQuery(cur, data.mask(newestGlobal), W, Hp, goal, data.pixels(newestGlobal, goal)));
      }
    }
    progress('quality', ci + 1, clips.length);
  }
  const qualityMs = performance.now() - tQuality;

  const rows: QualityRow[] = [];
  const steps: (number | 'all')[] = [...Array.from({ length: H }, (_, h) => h + 1), 'all'];
  for (const step of steps) {
    for (const group of ['all', 'turn', 'forward'] as const) {
      const keep = (s: FrameScore): boolean => (step === 'all' || s.step === step) && (group === 'all' || (group === 'turn') === s.turn);
      rows.push({ step, actions: group, model: summarize(modelScores.filter(keep), cap), baseline: summarize(baseScores.filter(keep), cap) });
    }
  }
  const variantRow = (key: string, name: string, s: SamplerConfig, g: GuidanceConfig, positions: 'true' | 'contiguous'): VariantRow => {
    const v = variantScores.get(key) ?? { scores: [], ms: [] };
    return {
      name,
      sampler: s,
      guidance: g,
      positions,
      steps: Array.from({ length: H }, (_, h) => summarize(v.scores.filter((x) => x.step === h + 1), cap)),
      overall: summarize(v.scores, cap),
      meanImagineMs: mean(v.ms),
    };
  };
  const describeG = (g: GuidanceConfig): string =>
    g.kind === 'joint' ? `ω = ${g.scale}` : g.kind === 'none' ? 'ω = 1 (no guidance)' : `two-scale (context ${g.context}, instruction ${g.instruction})`;
  const ablations =
    ablationN > 0
      ? {
          clips: ablationN,
          positions: [
            variantRow('main', 'true positions (non-contiguous)', sampler, guidance, 'true'),
            variantRow('contiguous', 'renumbered contiguous', sampler, guidance, 'contiguous'),
          ],
          guidance: [
            variantRow('main', `${describeG(guidance)} (default)`, sampler, guidance, 'true'),
            ...cfgVariants.map((g) => variantRow(`guidance:${JSON.stringify(g)}`, describeG(g), sampler, g, 'true')),
          ],
          samplerSteps: stepsSweep
            .map((st) =>
              st === mainSteps
                ? variantRow('main', `${st} steps (default)`, sampler, guidance, 'true')
                : variantRow(`steps:${st}`, `${st} steps`, { ...sampler, steps: st } as SamplerConfig, guidance, 'true'),
            ),
        }
      : null;

  const groundingSection: ModelEvaluation['grounding'] = !info.grounding
    ? { available: false, reason: `model "${info.name}" declares no grounding output` }
    : goalIds.length === 0
      ? { available: false, reason: `none of the model's goal categories (${info.goalCategories.join(', ')}) is in the dataset` }
      : targetQueries.length === 0
        ? { available: false, reason: 'the model returned no grounding maps' }
        : {
            available: true,
            queries: targetQueries.length,
            target: groundingStats(targetQueries, visiblePx, threshold, truthThreshold),
            current: hasCurrent ? groundingStats(currentQueries, visiblePx, threshold, truthThreshold) : null,
          };

  const settings: ModelEvaluation['settings'] = {
    clips: clipsN,
    seed,
    sampler,
    guidance,
    ablationClips: ablationN,
    stepsSweep,
    cfgSweep,
    memoryClips: memoryN,
    visibleFraction,
    groundingThreshold: threshold,
    truthCellThreshold: truthThreshold,
    psnrCap: cap,
  };
  const base = {
    format: EVAL_REPORT_FORMAT,
    model: { name: info.name, horizon: H, maxContext, positionRange: info.positionRange, grounding: info.grounding },
    data: {
      dir: data.dir,
      split: idx.split,
      episodes: idx.episodes.length,
      frames: idx.totalFrames,
      seedRange: [Math.min(...seeds), Math.max(...seeds)] as const,
      nonEvalSeeds: nonEval,
    },
    settings,
    quality: { clips: clips.length, rows },
    ablations,
    grounding: groundingSection,
  };
  const timing = (phases: Record<string, number>): ModelEvaluation['timing'] => ({
    wallMs: performance.now() - t0,
    imagineCalls: calls,
    meanImagineMs: calls > 0 ? imagineMs / calls : 0,
    phases,
  });
  options.onPartial?.({ ...base, complete: false, memory: null, timing: timing({ quality: qualityMs, memorySearch: searchMs }) });

  // ------------------------------------------------------------------ phase 2: spatial memory
  const tMemory = performance.now();
  let memory: MemoryReport | null = null;
  if (memoryN > 0) {
    const results: MemoryClipResult[] = [];
    const gMem: GroundingQuery[] = [];
    const gSwap: GroundingQuery[] = [];
    for (let mi = 0; mi < memClips.length; mi++) {
      const clip = memClips[mi] as MemoryClip;
      const start = idx.episodes[clip.episode]?.start ?? 0;
      const truth = clip.targets.map((s) => data.frame(start + s));
      const masks = clip.targets.map((s) => data.mask(start + s));
      const goalName = grounds && goalIds.includes(clip.categoryId) ? clip.category : undefined;
      const instruction: Instruction = { actions: clip.actions, ...(goalName !== undefined ? { goalCategory: goalName } : {}) };
      const imagineSeed = seed * 1_000_000 + 500_000 + mi;
      const withMem = await imagine(clip.context.map((s) => data.frame(start + s)), clip.context, [instruction], sampler, guidance, imagineSeed);
      const swapped = await imagine(clip.swappedContext.map((s) => data.frame(start + s)), clip.swappedContext, [instruction], sampler, guidance, imagineSeed);
      const newestFrame = data.frame(start + (clip.context[clip.context.length - 1] as number));
      const errors = (frames: readonly Frame[]): [number, number] => {
        let sum = 0;
        let count = 0;
        let finalMse = 0;
        frames.forEach((f, h) => {
          const e = maskedSquaredError(f, truth[h] as Frame, masks[h] as Uint8Array, clip.categoryId);
          sum += e.sum;
          count += e.count;
          if (h === H - 1) finalMse = e.count > 0 ? e.sum / e.count : 0;
        });
        return [finalMse, count > 0 ? sum / count : 0];
      };
      const [fm, am] = errors((withMem.rollouts[0] as Rollout).frames);
      const [fs, as] = errors((swapped.rollouts[0] as Rollout).frames);
      const [fb, ab] = errors(truth.map(() => newestFrame));
      results.push({
        sceneSeed: clip.sceneSeed,
        newest: clip.context[clip.context.length - 1] as number,
        context: clip.context,
        memoryStep: clip.memoryStep,
        swapStep: clip.swapStep,
        category: clip.category,
        targetPixels: clip.targetPixels,
        finalMse: [fm, fs, fb],
        allMse: [am, as, ab],
      });
      if (goalName !== undefined) {
        const lastMask = masks[H - 1] as Uint8Array;
        const gm = (withMem.rollouts[0] as Rollout).grounding?.[H - 1];
        const gs = (swapped.rollouts[0] as Rollout).grounding?.[H - 1];
        if (gm !== undefined && gs !== undefined) {
          gMem.push(groundingQuery(gm, lastMask, W, Hp, clip.categoryId, clip.targetPixels));
          gSwap.push(groundingQuery(gs, lastMask, W, Hp, clip.categoryId, clip.targetPixels));
        }
      }
      progress('memory', mi + 1, memClips.length);
    }
    const compare = (pick: (r: MemoryClipResult) => readonly [number, number, number], stream: number): MemoryComparison | null =>
      compareConditions(results.map(pick), seed + stream, bootstrapN, cap);
    memory = {
      found: allMemory.length,
      requested: memoryN,
      used: memClips.length,
      distinctEvents: new Set(memClips.map((c) => `${c.episode}:${c.categoryId}`)).size,
      visibleFraction,
      minMemoryOffset,
      swapRadius,
      finalFrame: compare((r) => r.finalMse, 1),
      allFrames: compare((r) => r.allMse, 2),
      grounding:
        gMem.length > 0
          ? { withMemory: groundingStats(gMem, visiblePx, threshold, truthThreshold), swapped: groundingStats(gSwap, visiblePx, threshold, truthThreshold) }
          : null,
      clips: results,
    };
  }
  const memoryMs = performance.now() - tMemory;
  return { ...base, complete: true, memory, timing: timing({ quality: qualityMs, memorySearch: searchMs, memory: memoryMs }) };
}

function groundingQuery(map: GroundingMap, mask: Uint8Array, width: number, height: number, id: number, pixels: number): GroundingQuery {
  return { pred: map.data, truth: maskToCellFractions(mask, width, height, id, map.width, map.height), pixels };
}

// ---------------------------------------------------------------------------------------------------------
// Tables

function fmt(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits);
}

function signed(v: number | null | undefined, digits = 2): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`;
}

function pValue(p: number): string {
  if (!Number.isFinite(p)) return '—';
  return p < 1e-4 ? p.toExponential(1) : p.toFixed(4);
}

/** Render rows as a plain-text table with aligned columns (first column left-aligned, the rest right). */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function variantTable(rows: readonly VariantRow[], horizon: number): string {
  const header = ['variant', ...Array.from({ length: horizon }, (_, h) => `PSNR@${h + 1}`), 'PSNR all', 'median', 'SSIM all', 'ms/call'];
  return textTable(
    header,
    rows.map((r) => [
      r.name,
      ...r.steps.map((s) => fmt(s.psnrAggregate)),
      fmt(r.overall.psnrAggregate),
      fmt(r.overall.psnrMedian),
      fmt(r.overall.ssimMean, 3),
      fmt(r.meanImagineMs, 0),
    ]),
  );
}

function groundingRows(label: string, g: GroundingStats): string[] {
  return [
    label,
    String(g.presentQueries),
    `${fmt(g.iouMean, 3)} (${g.iouQueries})`,
    fmt(g.softIoUMean, 3),
    fmt(g.detectionRate, 3),
    String(g.absentQueries),
    fmt(g.falsePositiveRate, 3),
    fmt(g.presenceAuc, 3),
  ];
}

const GROUNDING_HEADER = ['map', 'present', 'IoU (n)', 'soft IoU', 'detected', 'absent', 'false pos.', 'AUC'];

/** The human-readable tables of a report (what `v4s eval-model` prints). */
export function formatEvaluation(r: ModelEvaluation): string {
  const out: string[] = [];
  const H = r.model.horizon;
  const s = r.settings;
  const samplerText = `${s.sampler.kind} ${s.sampler.steps} steps`;
  const guidanceText = s.guidance.kind === 'joint' ? `joint CFG ω = ${s.guidance.scale}` : s.guidance.kind === 'none' ? 'no guidance' : `two-scale CFG (${s.guidance.context}, ${s.guidance.instruction})`;
  out.push(`Model ${r.model.name} on ${r.data.dir} (${r.data.split}, ${r.data.episodes} scenes, seeds ${r.data.seedRange[0]}..${r.data.seedRange[1]}); ${samplerText}, ${guidanceText}, seed ${s.seed}`);
  if (r.data.nonEvalSeeds > 0) out.push(`WARNING: ${r.data.nonEvalSeeds} scenes are outside the EVAL seed range; these numbers are not evaluation numbers.`);
  if (r.quality) {
    out.push('', `1. Imagination quality (${r.quality.clips} clips; PSNR dB of the mean squared error over the set, median per-sample PSNR, mean SSIM; model vs repeat-last-frame baseline)`);
    out.push(
      textTable(
        ['step', 'actions', 'n', 'PSNR model', 'PSNR base', 'Δ', 'median model', 'median base', 'SSIM model', 'SSIM base', 'Δ SSIM'],
        r.quality.rows.map((q) => [
          String(q.step),
          q.actions,
          String(q.model.n),
          fmt(q.model.psnrAggregate),
          fmt(q.baseline.psnrAggregate),
          signed(q.model.psnrAggregate !== null && q.baseline.psnrAggregate !== null ? q.model.psnrAggregate - q.baseline.psnrAggregate : null),
          fmt(q.model.psnrMedian),
          fmt(q.baseline.psnrMedian),
          fmt(q.model.ssimMean, 3),
          fmt(q.baseline.ssimMean, 3),
          signed(q.model.ssimMean !== null && q.baseline.ssimMean !== null ? q.model.ssimMean - q.baseline.ssimMean : null, 3),
        ]),
      ),
    );
  }
  const m = r.memory;
  if (m) {
    out.push('', `2. Spatial memory (${m.used} clips of ${m.found} found, ${m.distinctEvents} distinct scene/object events; object seen only in a context frame ≥ ${m.minMemoryOffset} steps old, swapped for a frame ≤ ${m.swapRadius} steps away that does not show it)`);
    if (m.used < m.requested) out.push(`WARNING: only ${m.found} qualifying clips in the dataset (asked for ${m.requested}); render more evaluation scenes.`);
    const rowsM: string[][] = [];
    for (const [label, c] of [['final frame', m.finalFrame], ['all frames', m.allFrames]] as const) {
      if (!c) continue;
      rowsM.push([
        label,
        `${fmt(c.withMemory.mseMean, 1)} (${fmt(c.withMemory.psnr)} dB)`,
        `${fmt(c.swapped.mseMean, 1)} (${fmt(c.swapped.psnr)} dB)`,
        `${fmt(c.baseline.mseMean, 1)} (${fmt(c.baseline.psnr)} dB)`,
        `${fmt(c.memoryWinRate === null ? null : c.memoryWinRate * 100, 1)} %`,
        `${c.wins}/${c.losses}/${c.ties}`,
        pValue(c.signTestP),
        `${signed(c.bootstrap.meanDiff, 1)} [${fmt(c.bootstrap.ci95[0], 1)}, ${fmt(c.bootstrap.ci95[1], 1)}]`,
        pValue(c.bootstrap.pOneSided),
      ]);
    }
    out.push(textTable(['masked MSE', 'with memory', 'swapped', 'baseline', 'memory wins', 'W/L/T', 'sign p', 'Δ (swap − mem) 95 % CI', 'boot p'], rowsM));
    if (m.grounding) {
      out.push('Grounding of the object in the final imagined frame:');
      out.push(textTable(GROUNDING_HEADER, [groundingRows('with memory', m.grounding.withMemory), groundingRows('swapped', m.grounding.swapped)]));
    }
  }
  const a = r.ablations;
  if (a) {
    out.push('', `3. Ablations (the first ${a.clips} clips; aggregate PSNR per horizon step, all actions)`);
    out.push('Positions:', variantTable(a.positions, H));
    out.push('Guidance:', variantTable(a.guidance, H));
    out.push('Sampler steps:', variantTable(a.samplerSteps, H));
  }
  out.push('', '4. Grounding');
  const g = r.grounding;
  if (!g.available) {
    out.push(`not evaluated: ${g.reason}`);
  } else {
    out.push(`${g.queries} queries; predicted cell positive at ≥ ${s.groundingThreshold}, true cell positive at ≥ ${s.truthCellThreshold} goal pixels; present = ≥ ${(s.visibleFraction * 100).toFixed(1)} % of the frame, absent = no pixel`);
    const rowsG = [groundingRows(`final imagined frame (step ${H})`, g.target)];
    if (g.current) rowsG.push(groundingRows('current view', g.current));
    out.push(textTable(GROUNDING_HEADER, rowsG));
  }
  const t = r.timing;
  out.push('', `Wall time ${(t.wallMs / 1000).toFixed(1)} s; ${t.imagineCalls} imagine() calls, ${t.meanImagineMs.toFixed(0)} ms each on average.`);
  return out.join('\n');
}
