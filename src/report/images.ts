/**
 * Images for reports: grounding drawn on frames, frame grids ("what the agent saw"), PNG data: URIs.
 * Usage: `const uri = pngDataUri(drawGrounding(frame, rollout.grounding[0]))`.
 */
import { V4sError } from '../errors.js';
import { assertFrame, frameToPng } from '../agent/frames.js';
import type { Frame } from '../types.js';
import type { GroundingMap } from '../worldmodel/world-model.js';

/** Options of `drawGrounding`. */
export interface GroundingOverlayOptions {
  /** Largest opacity of the red tint, reached where the grounding probability is 1. Default 0.6. */
  readonly maxAlpha?: number;
  /** Cells at or above this probability are boxed. Default 0.25. */
  readonly boxThreshold?: number;
  /** Overlay colour. Default red [255, 40, 40]. */
  readonly color?: readonly [number, number, number];
}

/**
 * The frame with the grounding map drawn on it: each pixel tinted red in proportion to the probability of the
 * grid cell it falls in, and a 1-pixel box around the cells at or above `boxThreshold`. Returns a new frame;
 * the input is not modified. A map of another size than the frame is stretched over it.
 */
export function drawGrounding(frame: Frame, map: GroundingMap, options: GroundingOverlayOptions = {}): Frame {
  assertFrame(frame, 'drawGrounding frame');
  if (!Number.isInteger(map.width) || !Number.isInteger(map.height) || map.width < 1 || map.height < 1 || map.data.length !== map.width * map.height) {
    throw new V4sError('E_FRAME_SIZE', `drawGrounding: grounding map ${map.width}×${map.height} has ${map.data.length} values`);
  }
  const maxAlpha = options.maxAlpha ?? 0.6;
  const threshold = options.boxThreshold ?? 0.25;
  const [cr, cg, cb] = options.color ?? [255, 40, 40];
  const { width: W, height: H } = frame;
  const out = new Uint8Array(frame.data);
  const cellOf = (x: number, y: number): number => {
    const gx = Math.min(map.width - 1, Math.floor((x * map.width) / W));
    const gy = Math.min(map.height - 1, Math.floor((y * map.height) / H));
    return gy * map.width + gx;
  };
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const raw = map.data[cellOf(x, y)] ?? 0;
      const p = Number.isFinite(raw) ? Math.min(1, Math.max(0, raw)) : 0;
      if (p >= threshold) {
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x);
        y1 = Math.max(y1, y);
      }
      const a = maxAlpha * p;
      if (a <= 0) continue;
      const i = (y * W + x) * 3;
      out[i] = Math.round((1 - a) * (out[i] ?? 0) + a * cr);
      out[i + 1] = Math.round((1 - a) * (out[i + 1] ?? 0) + a * cg);
      out[i + 2] = Math.round((1 - a) * (out[i + 2] ?? 0) + a * cb);
    }
  }
  if (x1 >= x0 && y1 >= y0) {
    const paint = (x: number, y: number): void => {
      const i = (y * W + x) * 3;
      out[i] = cr;
      out[i + 1] = cg;
      out[i + 2] = cb;
    };
    for (let x = x0; x <= x1; x++) {
      paint(x, y0);
      paint(x, y1);
    }
    for (let y = y0; y <= y1; y++) {
      paint(x0, y);
      paint(x1, y);
    }
  }
  return { width: W, height: H, data: out };
}

/**
 * Frames laid out in rows of `columns` (row-major), `gap` pixels apart on a dark background; all frames must
 * share one size. For an episode's PNG strip: `frameToPng(frameGrid(frames, 16))`.
 */
export function frameGrid(frames: readonly Frame[], columns: number, gap = 2, background: readonly [number, number, number] = [24, 24, 24]): Frame {
  if (frames.length === 0) throw new V4sError('E_CONFIG', 'frameGrid: no frames');
  if (!Number.isInteger(columns) || columns < 1) throw new V4sError('E_CONFIG', `frameGrid: columns must be a positive integer, got ${String(columns)}`);
  const first = frames[0] as Frame;
  const fw = first.width;
  const fh = first.height;
  for (const [i, f] of frames.entries()) {
    assertFrame(f, `frameGrid frame ${i}`);
    if (f.width !== fw || f.height !== fh) throw new V4sError('E_FRAME_SIZE', `frameGrid: frame ${i} is ${f.width}×${f.height}, frame 0 is ${fw}×${fh}`);
  }
  const cols = Math.min(columns, frames.length);
  const rows = Math.ceil(frames.length / cols);
  const width = cols * fw + (cols - 1) * gap;
  const height = rows * fh + (rows - 1) * gap;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(background, i * 3);
  frames.forEach((f, k) => {
    const ox = (k % cols) * (fw + gap);
    const oy = Math.floor(k / cols) * (fh + gap);
    for (let y = 0; y < fh; y++) data.set(f.data.subarray(y * fw * 3, (y + 1) * fw * 3), ((oy + y) * width + ox) * 3);
  });
  return { width, height, data };
}

/** A frame as a `data:image/png;base64,…` URI (for self-contained HTML). */
export function pngDataUri(frame: Frame): string {
  return `data:image/png;base64,${frameToPng(frame).toString('base64')}`;
}
