import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { centreCropWindow, frameToPng, hstackFrames, resizeFrame, warnOnHfovMismatch } from '../src/agent/frames.js';
import { isV4sError } from '../src/errors.js';
import type { Frame } from '../src/types.js';

function grey(width: number, height: number, value: (x: number, y: number) => number): Frame {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.fill(value(x, y), (y * width + x) * 3, (y * width + x) * 3 + 3);
  return { width, height, data };
}

/** The red channel as rows of numbers. */
function red(f: Frame): number[][] {
  return Array.from({ length: f.height }, (_, y) => Array.from({ length: f.width }, (_, x) => f.data[(y * f.width + x) * 3] ?? -1));
}

describe('frames', () => {
  describe('resizeFrame', () => {
    // value = 10·column + 50·row on a 6×4 frame.
    const pattern = grey(6, 4, (x, y) => 10 * x + 50 * y);

    it('crop: centre-crops 6×4 to the square [1,5)×[0,4), then area-averages 2×2 blocks', () => {
      // (15 + 25), (35 + 25), (15 + 125), (35 + 125)
      assert.deepEqual(red(resizeFrame(pattern, 2, 2, 'crop')), [
        [40, 60],
        [140, 160],
      ]);
    });

    it('stretch: area-averages 2×2 blocks over the whole frame', () => {
      assert.deepEqual(red(resizeFrame(pattern, 3, 2, 'stretch')), [
        [30, 50, 70],
        [130, 150, 170],
      ]);
    });

    it('area weights fractional coverage exactly: [0, 90, 180] → [30, 150]', () => {
      const f = grey(3, 1, (x) => 90 * x);
      // (0 + 0.5·90)/1.5 = 30 and (0.5·90 + 180)/1.5 = 150
      assert.deepEqual(red(resizeFrame(f, 2, 1, 'stretch')), [[30, 150]]);
    });

    it('bilinear upscaling uses half-pixel centres and clamps at the edges: [0, 100] → [0, 25, 75, 100]', () => {
      const f = grey(2, 1, (x) => 100 * x);
      assert.deepEqual(red(resizeFrame(f, 4, 1, 'stretch')), [[0, 25, 75, 100]]);
      assert.deepEqual(red(resizeFrame(f, 4, 1, 'stretch', 'bilinear')), [[0, 25, 75, 100]]);
    });

    it('640×480 → 64×64 crop drops the 80-px side bands and keeps the centre', () => {
      const f = grey(640, 480, (x) => (x < 80 || x >= 560 ? 255 : 40));
      const out = resizeFrame(f, 64, 64, 'crop');
      assert.equal(out.data.length, 64 * 64 * 3);
      assert.ok(out.data.every((v) => v === 40));
      assert.deepEqual(centreCropWindow(640, 480, 64, 64), { x0: 80, y0: 0, width: 480, height: 480 });
      assert.deepEqual(centreCropWindow(480, 640, 64, 32), { x0: 0, y0: 200, width: 480, height: 240 });
    });

    it('area downscaling preserves the mean of the cropped region (within rounding)', () => {
      let seed = 12345;
      const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % 256;
      const f = grey(320, 240, () => rand());
      const out = resizeFrame(f, 64, 64, 'crop');
      let inSum = 0;
      for (let y = 0; y < 240; y++) for (let x = 40; x < 280; x++) inSum += f.data[(y * 320 + x) * 3] ?? 0;
      const inMean = inSum / (240 * 240);
      const outMean = out.data.reduce((a, v) => a + v, 0) / out.data.length;
      assert.ok(Math.abs(inMean - outMean) < 0.5, `${inMean} vs ${outMean}`);
    });

    it('keeps channels apart', () => {
      const data = new Uint8Array(4 * 4 * 3);
      for (let i = 0; i < 16; i++) data.set([200, 100, 50], i * 3);
      const out = resizeFrame({ width: 4, height: 4, data }, 2, 2);
      assert.deepEqual([...out.data], [200, 100, 50, 200, 100, 50, 200, 100, 50, 200, 100, 50]);
    });

    it('rejects a frame whose data does not match its size, naming the sizes', () => {
      assert.throws(
        () => resizeFrame({ width: 4, height: 4, data: new Uint8Array(47) }, 2, 2),
        (e: unknown) => isV4sError(e, 'E_FRAME_SIZE') && /4×4 RGB needs 48 bytes, found 47/.test(e.message),
      );
      assert.throws(() => resizeFrame(pattern, 0, 2), (e: unknown) => isV4sError(e, 'E_CONFIG'));
    });
  });

  describe('frameToPng / hstackFrames', () => {
    it('encodes real PNG bytes that decode back to the same pixels', () => {
      const f = grey(5, 3, (x, y) => x * 40 + y);
      const png = PNG.sync.read(frameToPng(f));
      assert.equal(png.width, 5);
      assert.equal(png.height, 3);
      for (let i = 0; i < 15; i++) {
        assert.deepEqual([png.data[i * 4], png.data[i * 4 + 1], png.data[i * 4 + 2]], [...f.data.subarray(i * 3, i * 3 + 3)]);
      }
    });

    it('places frames side by side with a gap', () => {
      const a = grey(2, 2, () => 10);
      const b = grey(1, 2, () => 20);
      const s = hstackFrames([a, b], 1);
      assert.equal(s.width, 4);
      assert.deepEqual(red(s), [
        [10, 10, 0, 20],
        [10, 10, 0, 20],
      ]);
      assert.throws(() => hstackFrames([a, grey(1, 3, () => 0)]), (e: unknown) => isV4sError(e, 'E_FRAME_SIZE'));
    });
  });

  describe('warnOnHfovMismatch', () => {
    it('warns once per camera/model pair and reports every mismatch', () => {
      const messages: string[] = [];
      const warn = (m: string): void => {
        messages.push(m);
      };
      assert.equal(warnOnHfovMismatch(79, 90, { warn }), true);
      assert.equal(warnOnHfovMismatch(79, 90, { warn }), true);
      assert.equal(warnOnHfovMismatch(90.3, 90, { warn }), false);
      assert.equal(warnOnHfovMismatch(120, 90, { warn }), true);
      assert.equal(messages.length, 2);
      assert.match(messages[0] ?? '', /camera hfov 79° differs from the world model's 90°/);
    });
  });
});
