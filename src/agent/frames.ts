/**
 * Frames in: resize or centre-crop whatever the camera sends to the size the planner / model asks for.
 * Decoding (PNG/JPEG bytes → Frame) lives in `src/sim-adapters/protocol/image.ts`; this file works on
 * decoded RGB frames only.
 *
 * Usage: `const small = resizeFrame(habitatFrame640x480, 64, 64, 'crop')`.
 */
import { PNG } from 'pngjs';
import { V4sError } from '../errors.js';
import type { Frame } from '../types.js';

/** `crop`: centre-crop to the target aspect ratio, then resize. `stretch`: resize, ignoring aspect. */
export type ResizeMode = 'crop' | 'stretch';

/**
 * `area`: box filter with exact fractional coverage (best for downscaling, no aliasing);
 * `bilinear`: half-pixel-centred bilinear interpolation; `auto`: area when shrinking an axis, bilinear when growing.
 */
export type ResizeFilter = 'area' | 'bilinear' | 'auto';

/** Throws `E_FRAME_SIZE` when `data.length !== width * height * 3` or a dimension is not a positive integer. */
export function assertFrame(frame: Frame, what = 'frame'): void {
  const { width, height, data } = frame;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new V4sError('E_FRAME_SIZE', `${what}: invalid size ${String(width)}×${String(height)}`);
  }
  if (data.length !== width * height * 3) {
    throw new V4sError(
      'E_FRAME_SIZE',
      `${what}: ${width}×${height} RGB needs ${width * height * 3} bytes, found ${data.length}`,
    );
  }
}

/**
 * The source window `[x0, x0+w) × [y0, y0+h)` (in pixels, possibly fractional) that `crop` mode reads:
 * the largest centred window with the target's aspect ratio.
 */
export function centreCropWindow(
  srcWidth: number,
  srcHeight: number,
  dstWidth: number,
  dstHeight: number,
): { x0: number; y0: number; width: number; height: number } {
  const srcAspect = srcWidth / srcHeight;
  const dstAspect = dstWidth / dstHeight;
  if (srcAspect > dstAspect) {
    const width = srcHeight * dstAspect;
    return { x0: (srcWidth - width) / 2, y0: 0, width, height: srcHeight };
  }
  const height = srcWidth / dstAspect;
  return { x0: 0, y0: (srcHeight - height) / 2, width: srcWidth, height };
}

/** Per output sample along one axis: source indices and weights (summing to 1). */
interface AxisTaps {
  readonly start: Int32Array;
  readonly count: Int32Array;
  readonly index: Int32Array;
  readonly weight: Float32Array;
}

function areaTaps(srcLen: number, origin: number, span: number, dstLen: number): AxisTaps {
  const scale = span / dstLen;
  const start = new Int32Array(dstLen);
  const count = new Int32Array(dstLen);
  const index: number[] = [];
  const weight: number[] = [];
  for (let o = 0; o < dstLen; o++) {
    const a = origin + o * scale;
    const b = a + scale;
    start[o] = index.length;
    let n = 0;
    const first = Math.floor(a);
    for (let s = first; s < b; s++) {
      const cover = Math.min(b, s + 1) - Math.max(a, s);
      if (cover <= 1e-9) continue;
      index.push(Math.min(srcLen - 1, Math.max(0, s)));
      weight.push(cover / scale);
      n++;
    }
    count[o] = n;
  }
  return { start, count, index: Int32Array.from(index), weight: Float32Array.from(weight) };
}

function bilinearTaps(srcLen: number, origin: number, span: number, dstLen: number): AxisTaps {
  const scale = span / dstLen;
  const start = new Int32Array(dstLen);
  const count = new Int32Array(dstLen).fill(2);
  const index = new Int32Array(dstLen * 2);
  const weight = new Float32Array(dstLen * 2);
  // Clamp to the crop window so no pixel outside it leaks in.
  const lo = Math.max(0, Math.ceil(origin - 1e-9));
  const hi = Math.min(srcLen - 1, Math.floor(origin + span - 1e-9));
  for (let o = 0; o < dstLen; o++) {
    const centre = origin + (o + 0.5) * scale - 0.5;
    const c = Math.min(hi, Math.max(lo, centre));
    const i0 = Math.floor(c);
    const i1 = Math.min(hi, i0 + 1);
    const f = c - i0;
    start[o] = o * 2;
    index[o * 2] = i0;
    index[o * 2 + 1] = i1;
    weight[o * 2] = 1 - f;
    weight[o * 2 + 1] = f;
  }
  return { start, count, index, weight };
}

const tapCache = new Map<string, AxisTaps>();

function taps(filter: 'area' | 'bilinear', srcLen: number, origin: number, span: number, dstLen: number): AxisTaps {
  const key = `${filter}:${srcLen}:${origin}:${span}:${dstLen}`;
  let t = tapCache.get(key);
  if (t === undefined) {
    t = filter === 'area' ? areaTaps(srcLen, origin, span, dstLen) : bilinearTaps(srcLen, origin, span, dstLen);
    // A camera has one or two sizes; bound the cache anyway so odd inputs cannot grow it.
    if (tapCache.size >= 64) tapCache.clear();
    tapCache.set(key, t);
  }
  return t;
}

/**
 * Resize an RGB frame to `width × height`. Pure TypeScript, separable (rows, then columns);
 * 640×480 → 64×64 costs about one pass over the source.
 *
 * @param mode `crop` (default) centre-crops to the target aspect first; `stretch` does not.
 * @param filter `auto` (default): area-average when shrinking, bilinear when growing.
 */
export function resizeFrame(
  frame: Frame,
  width: number,
  height: number,
  mode: ResizeMode = 'crop',
  filter: ResizeFilter = 'auto',
): Frame {
  assertFrame(frame, 'resizeFrame input');
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new V4sError('E_CONFIG', `resizeFrame: target size must be positive integers, got ${width}×${height}`);
  }
  const win =
    mode === 'crop'
      ? centreCropWindow(frame.width, frame.height, width, height)
      : { x0: 0, y0: 0, width: frame.width, height: frame.height };
  if (win.x0 === 0 && win.y0 === 0 && win.width === width && win.height === height) {
    return { width, height, data: new Uint8Array(frame.data) };
  }
  const fx = filter === 'auto' ? (win.width >= width ? 'area' : 'bilinear') : filter;
  const fy = filter === 'auto' ? (win.height >= height ? 'area' : 'bilinear') : filter;
  const tx = taps(fx, frame.width, win.x0, win.width, width);
  const ty = taps(fy, frame.height, win.y0, win.height, height);

  // Horizontal pass over only the source rows the vertical pass reads.
  let rowMin = frame.height;
  let rowMax = -1;
  for (let i = 0; i < ty.index.length; i++) {
    const r = ty.index[i] ?? 0;
    if (r < rowMin) rowMin = r;
    if (r > rowMax) rowMax = r;
  }
  const rows = rowMax - rowMin + 1;
  const src = frame.data;
  const srcStride = frame.width * 3;
  const tmp = new Float32Array(rows * width * 3);
  for (let r = 0; r < rows; r++) {
    const srcRow = (r + rowMin) * srcStride;
    const tmpRow = r * width * 3;
    for (let o = 0; o < width; o++) {
      const s = tx.start[o] ?? 0;
      const n = tx.count[o] ?? 0;
      let acc0 = 0;
      let acc1 = 0;
      let acc2 = 0;
      for (let t = s; t < s + n; t++) {
        const w = tx.weight[t] ?? 0;
        const p = srcRow + (tx.index[t] ?? 0) * 3;
        acc0 += (src[p] ?? 0) * w;
        acc1 += (src[p + 1] ?? 0) * w;
        acc2 += (src[p + 2] ?? 0) * w;
      }
      const q = tmpRow + o * 3;
      tmp[q] = acc0;
      tmp[q + 1] = acc1;
      tmp[q + 2] = acc2;
    }
  }

  const out = new Uint8Array(width * height * 3);
  const rowLen = width * 3;
  for (let o = 0; o < height; o++) {
    const s = ty.start[o] ?? 0;
    const n = ty.count[o] ?? 0;
    const dst = o * rowLen;
    for (let c = 0; c < rowLen; c++) {
      let acc = 0;
      for (let t = s; t < s + n; t++) {
        acc += (tmp[((ty.index[t] ?? 0) - rowMin) * rowLen + c] ?? 0) * (ty.weight[t] ?? 0);
      }
      // Round half up; clamp guards float drift above 255.
      out[dst + c] = Math.min(255, Math.max(0, Math.round(acc)));
    }
  }
  return { width, height, data: out };
}

/** Encode a frame as PNG bytes (pngjs). For reports and debugging, not the hot path. */
export function frameToPng(frame: Frame): Buffer {
  assertFrame(frame, 'frameToPng input');
  const png = new PNG({ width: frame.width, height: frame.height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}

/**
 * Place frames side by side (a "strip" of what the agent saw). All frames must have the same height.
 * Usage: `writeFileSync('episode.png', frameToPng(hstackFrames(trace.frames)))`.
 */
export function hstackFrames(frames: readonly Frame[], gap = 0): Frame {
  if (frames.length === 0) throw new V4sError('E_CONFIG', 'hstackFrames: no frames');
  const height = frames[0]?.height ?? 0;
  let width = 0;
  for (const [i, f] of frames.entries()) {
    assertFrame(f, `hstackFrames frame ${i}`);
    if (f.height !== height) {
      throw new V4sError('E_FRAME_SIZE', `hstackFrames: frame ${i} is ${f.height} px high, frame 0 is ${height}`);
    }
    width += f.width + (i > 0 ? gap : 0);
  }
  const data = new Uint8Array(width * height * 3);
  let x = 0;
  for (const f of frames) {
    for (let y = 0; y < height; y++) {
      data.set(f.data.subarray(y * f.width * 3, (y + 1) * f.width * 3), (y * width + x) * 3);
    }
    x += f.width + gap;
  }
  return { width, height, data };
}

const warnedHfov = new Set<string>();

/**
 * Warn once per (camera, model) pair when the camera's horizontal field of view differs from the one the
 * model was trained on by more than `toleranceDeg`: imagined views will then be mis-scaled. Returns true
 * on a mismatch (every call), and warns only the first time.
 *
 * Usage: `warnOnHfovMismatch(env.capabilities.camera.hfov, 90)`.
 */
export function warnOnHfovMismatch(
  cameraHfovDeg: number,
  modelHfovDeg: number,
  options: { toleranceDeg?: number; warn?: (message: string) => void } = {},
): boolean {
  const tolerance = options.toleranceDeg ?? 0.5;
  if (Math.abs(cameraHfovDeg - modelHfovDeg) <= tolerance) return false;
  const key = `${cameraHfovDeg}|${modelHfovDeg}`;
  if (!warnedHfov.has(key)) {
    warnedHfov.add(key);
    const message =
      `camera hfov ${cameraHfovDeg}° differs from the world model's ${modelHfovDeg}°: ` +
      'imagined views will be mis-scaled; crop/resize cannot fix a different field of view';
    if (options.warn !== undefined) options.warn(message);
    else process.emitWarning(message, { code: 'V4S_HFOV_MISMATCH' });
  }
  return true;
}
