/**
 * Image similarity on RGB frames: SSIM (Wang et al. 2004), PSNR, mean absolute difference and colour
 * histograms. Pure TypeScript, O(pixels) per comparison (SSIM uses integral images for its box windows).
 * The planner's scorers and the world model's evaluation use these same functions, so their numbers agree.
 *
 * SSIM follows scikit-image's `structural_similarity` defaults for 8-bit data: a 7×7 uniform window, sample
 * covariance (N/(N−1)), K1 = 0.01, K2 = 0.03, L = 255, averaged over the windows that fit inside the image
 * (no padding). By default it runs on luma (BT.601: 0.299 R + 0.587 G + 0.114 B); `channels: 'rgb'` averages
 * the three channels' SSIM instead.
 *
 * Usage: `const s = ssim(imagined, truth); const db = psnr(imagined, truth);`
 */
import { V4sError } from '../errors.js';
import type { Frame } from '../types.js';

/** Options of `ssim`. */
export interface SsimOptions {
  /** Side of the square uniform window, odd, ≥ 3. Default 7 (shrunk to fit frames smaller than it). */
  readonly windowSize?: number;
  /** `luma` (default) compares brightness; `rgb` averages the per-channel SSIM. */
  readonly channels?: 'luma' | 'rgb';
}

function sameSize(a: Frame, b: Frame, what: string): void {
  if (a.width !== b.width || a.height !== b.height) {
    throw new V4sError('E_FRAME_SIZE', `${what}: frames differ in size (${a.width}×${a.height} vs ${b.width}×${b.height})`);
  }
  const n = a.width * a.height * 3;
  if (a.data.length !== n || b.data.length !== n) {
    throw new V4sError('E_FRAME_SIZE', `${what}: ${a.width}×${a.height} RGB needs ${n} bytes, found ${a.data.length} and ${b.data.length}`);
  }
}

/** One plane of a frame as floats in [0, 255]: BT.601 luma, or channel 0/1/2. */
export function framePlane(frame: Frame, channel: 'luma' | 0 | 1 | 2 = 'luma'): Float32Array {
  const n = frame.width * frame.height;
  const out = new Float32Array(n);
  const d = frame.data;
  if (channel === 'luma') {
    for (let i = 0; i < n; i++) {
      out[i] = 0.299 * (d[i * 3] ?? 0) + 0.587 * (d[i * 3 + 1] ?? 0) + 0.114 * (d[i * 3 + 2] ?? 0);
    }
  } else {
    for (let i = 0; i < n; i++) out[i] = d[i * 3 + channel] ?? 0;
  }
  return out;
}

/** A plane with its summed-area tables (of values and of squares), reusable across SSIM comparisons. */
export interface PreparedPlane {
  readonly plane: Float32Array;
  readonly width: number;
  readonly height: number;
  /** (w+1)×(h+1) summed-area tables with a zero first row and column. */
  readonly sum: Float64Array;
  readonly sumSq: Float64Array;
}

/** Summed-area tables of a plane (and of its squares), for comparing one plane against many. */
export function preparePlane(plane: Float32Array, width: number, height: number): PreparedPlane {
  if (plane.length !== width * height) {
    throw new V4sError('E_FRAME_SIZE', `preparePlane: ${plane.length} values for ${width}×${height}`);
  }
  const w1 = width + 1;
  const sum = new Float64Array(w1 * (height + 1));
  const sumSq = new Float64Array(w1 * (height + 1));
  for (let y = 0; y < height; y++) {
    let row = 0;
    let rowSq = 0;
    const src = y * width;
    const up = y * w1;
    const out = (y + 1) * w1;
    for (let x = 0; x < width; x++) {
      const v = plane[src + x] as number;
      row += v;
      rowSq += v * v;
      sum[out + x + 1] = (sum[up + x + 1] as number) + row;
      sumSq[out + x + 1] = (sumSq[up + x + 1] as number) + rowSq;
    }
  }
  return { plane, width, height, sum, sumSq };
}

function boxSum(s: Float64Array, w1: number, x: number, y: number, k: number): number {
  return (s[(y + k) * w1 + x + k] as number) - (s[y * w1 + x + k] as number) - (s[(y + k) * w1 + x] as number) + (s[y * w1 + x] as number);
}

/** Mean SSIM of two prepared planes of the same size (values in [0, 255]); see `ssim`. */
export function ssimPrepared(a: PreparedPlane, b: PreparedPlane, windowSize = 7): number {
  const { width, height } = a;
  if (b.width !== width || b.height !== height) {
    throw new V4sError('E_FRAME_SIZE', `ssim: planes differ in size (${width}×${height} vs ${b.width}×${b.height})`);
  }
  if (!Number.isInteger(windowSize) || windowSize < 3 || windowSize % 2 === 0) {
    throw new V4sError('E_CONFIG', `ssim: windowSize must be an odd integer ≥ 3, got ${String(windowSize)}`);
  }
  // Shrink the window for tiny frames (an odd size that fits), rather than refusing them.
  let k = Math.min(windowSize, width, height);
  if (k % 2 === 0) k -= 1;
  if (k < 1) return 1;
  const c1 = (0.01 * 255) ** 2;
  const c2 = (0.03 * 255) ** 2;
  const w1 = width + 1;
  // The cross term is the only table that depends on both planes.
  const sab = new Float64Array(w1 * (height + 1));
  for (let y = 0; y < height; y++) {
    let row = 0;
    const src = y * width;
    const up = y * w1;
    const out = (y + 1) * w1;
    for (let x = 0; x < width; x++) {
      row += (a.plane[src + x] as number) * (b.plane[src + x] as number);
      sab[out + x + 1] = (sab[up + x + 1] as number) + row;
    }
  }
  const np = k * k;
  const covNorm = np > 1 ? np / (np - 1) : 1;
  let total = 0;
  let count = 0;
  for (let y = 0; y + k <= height; y++) {
    for (let x = 0; x + k <= width; x++) {
      const ma = boxSum(a.sum, w1, x, y, k) / np;
      const mb = boxSum(b.sum, w1, x, y, k) / np;
      const va = covNorm * (boxSum(a.sumSq, w1, x, y, k) / np - ma * ma);
      const vb = covNorm * (boxSum(b.sumSq, w1, x, y, k) / np - mb * mb);
      const cov = covNorm * (boxSum(sab, w1, x, y, k) / np - ma * mb);
      total += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
      count++;
    }
  }
  return total / count;
}

/**
 * Mean SSIM of two planes of the same size (values in [0, 255]). Callers comparing one frame against many
 * can prepare each plane once (`preparePlane`) and call `ssimPrepared`.
 */
export function ssimPlanes(a: Float32Array, b: Float32Array, width: number, height: number, windowSize = 7): number {
  if (a.length !== width * height || b.length !== width * height) {
    throw new V4sError('E_FRAME_SIZE', `ssimPlanes: planes of ${a.length} and ${b.length} values for ${width}×${height}`);
  }
  return ssimPrepared(preparePlane(a, width, height), preparePlane(b, width, height), windowSize);
}

/**
 * Mean structural similarity of two frames of the same size, in [−1, 1] (1 = identical).
 * Throws `E_FRAME_SIZE` when the sizes differ (resize first, e.g. with `resizeFrame`).
 */
export function ssim(a: Frame, b: Frame, options: SsimOptions = {}): number {
  sameSize(a, b, 'ssim');
  const win = options.windowSize ?? 7;
  if ((options.channels ?? 'luma') === 'luma') {
    return ssimPlanes(framePlane(a), framePlane(b), a.width, a.height, win);
  }
  let s = 0;
  for (const c of [0, 1, 2] as const) s += ssimPlanes(framePlane(a, c), framePlane(b, c), a.width, a.height, win);
  return s / 3;
}

/** Mean squared error over all RGB values (0–255 scale). */
export function mse(a: Frame, b: Frame): number {
  sameSize(a, b, 'mse');
  let s = 0;
  const n = a.data.length;
  for (let i = 0; i < n; i++) {
    const d = (a.data[i] ?? 0) - (b.data[i] ?? 0);
    s += d * d;
  }
  return s / n;
}

/**
 * Peak signal-to-noise ratio in dB over all RGB values, peak 255. Identical frames give `Infinity`
 * unless `cap` is given (e.g. 60), which bounds the result so averages stay finite.
 */
export function psnr(a: Frame, b: Frame, options: { readonly cap?: number } = {}): number {
  const e = mse(a, b);
  const db = e === 0 ? Infinity : 10 * Math.log10((255 * 255) / e);
  return options.cap !== undefined ? Math.min(options.cap, db) : db;
}

/** Mean absolute difference over all RGB values, in [0, 1] (0 = identical, 1 = black vs white). */
export function meanAbsDiff(a: Frame, b: Frame): number {
  sameSize(a, b, 'meanAbsDiff');
  let s = 0;
  const n = a.data.length;
  for (let i = 0; i < n; i++) s += Math.abs((a.data[i] ?? 0) - (b.data[i] ?? 0));
  return s / (n * 255);
}

/**
 * Joint RGB histogram with `bins` levels per channel (bins³ cells), normalised to sum 1.
 * Any frame size: histograms of frames of different sizes are comparable.
 */
export function colorHistogram(frame: Frame, bins = 4): Float32Array {
  if (!Number.isInteger(bins) || bins < 1 || bins > 16) {
    throw new V4sError('E_CONFIG', `colorHistogram: bins must be an integer in [1, 16], got ${String(bins)}`);
  }
  const h = new Float32Array(bins * bins * bins);
  const d = frame.data;
  const n = frame.width * frame.height;
  if (n === 0) return h;
  for (let i = 0; i < n; i++) {
    const r = Math.min(bins - 1, Math.floor(((d[i * 3] ?? 0) * bins) / 256));
    const g = Math.min(bins - 1, Math.floor(((d[i * 3 + 1] ?? 0) * bins) / 256));
    const b = Math.min(bins - 1, Math.floor(((d[i * 3 + 2] ?? 0) * bins) / 256));
    const j = (r * bins + g) * bins + b;
    h[j] = (h[j] ?? 0) + 1 / n;
  }
  return h;
}

/** Total-variation distance between two normalised histograms: ½ Σ|p − q|, in [0, 1]. */
export function histogramDistance(p: Float32Array, q: Float32Array): number {
  if (p.length !== q.length) {
    throw new V4sError('E_CONFIG', `histogramDistance: histograms differ in length (${p.length} vs ${q.length})`);
  }
  let s = 0;
  for (let i = 0; i < p.length; i++) s += Math.abs((p[i] ?? 0) - (q[i] ?? 0));
  return s / 2;
}
