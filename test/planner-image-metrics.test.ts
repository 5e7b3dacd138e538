import assert from 'node:assert/strict';
import { isV4sError } from '../src/errors.js';
import { colorHistogram, histogramDistance, meanAbsDiff, mse, psnr, ssim } from '../src/planner/image-metrics.js';
import { paint, pattern, solid } from './planner-fixtures.js';

describe('planner image metrics', () => {
  it('identical frames: SSIM 1, MSE 0, PSNR Infinity (or the cap), mean abs diff 0', () => {
    const f = pattern(3, 32, 24);
    assert.equal(ssim(f, f), 1);
    assert.equal(ssim(f, f, { channels: 'rgb' }), 1);
    assert.equal(mse(f, f), 0);
    assert.equal(psnr(f, f), Infinity);
    assert.equal(psnr(f, f, { cap: 60 }), 60);
    assert.equal(meanAbsDiff(f, f), 0);
  });

  it('SSIM of two constant frames is the luminance term (2ab + C1) / (a² + b² + C1)', () => {
    const c1 = (0.01 * 255) ** 2;
    const a = solid([100, 100, 100]);
    const b = solid([150, 150, 150]);
    const expected = (2 * 100 * 150 + c1) / (100 * 100 + 150 * 150 + c1);
    assert.ok(Math.abs(ssim(a, b) - expected) < 1e-4, `${ssim(a, b)} vs ${expected}`);
    assert.ok(expected < 0.93 && expected > 0.9);
  });

  it('a checkerboard against its inverse has negative SSIM; a slightly brightened copy stays near 1', () => {
    const w = 16;
    const board = solid([0, 0, 0], w, w);
    const inverse = solid([255, 255, 255], w, w);
    for (let y = 0; y < w; y++) {
      for (let x = 0; x < w; x++) {
        if ((x + y) % 2 === 0) {
          board.data.set([255, 255, 255], (y * w + x) * 3);
          inverse.data.set([0, 0, 0], (y * w + x) * 3);
        }
      }
    }
    assert.ok(ssim(board, inverse) < -0.9, String(ssim(board, inverse)));
    const f = pattern(9);
    const brighter = { ...f, data: f.data.map((v) => Math.min(255, v + 4)) };
    assert.ok(ssim(f, brighter) > 0.98, String(ssim(f, brighter)));
  });

  it('PSNR of a uniform error of 10 levels is 10·log10(255²/100) ≈ 28.13 dB; black vs white differ by 1', () => {
    const a = solid([0, 0, 0]);
    const b = solid([10, 10, 10]);
    assert.equal(mse(a, b), 100);
    assert.ok(Math.abs(psnr(a, b) - 28.1308) < 1e-3);
    assert.equal(meanAbsDiff(a, solid([255, 255, 255])), 1);
  });

  it('frames of different sizes are refused with E_FRAME_SIZE naming both sizes', () => {
    assert.throws(
      () => ssim(solid([0, 0, 0], 16, 16), solid([0, 0, 0], 8, 8)),
      (e: unknown) => isV4sError(e, 'E_FRAME_SIZE') && /16×16 vs 8×8/.test(e.message),
    );
    assert.throws(() => psnr(solid([0, 0, 0], 4, 4), solid([0, 0, 0], 4, 5)), (e: unknown) => isV4sError(e, 'E_FRAME_SIZE'));
  });

  it('colour histograms: the same colour mix is distance 0, disjoint colours distance 1, half-overlap 0.5', () => {
    const red = solid([250, 0, 0]);
    const blue = solid([0, 0, 250]);
    const half = paint(solid([250, 0, 0]), 0, 16, 0, 8, [0, 0, 250]);
    assert.equal(histogramDistance(colorHistogram(red), colorHistogram(solid([200, 10, 10]))), 0);
    assert.equal(histogramDistance(colorHistogram(red), colorHistogram(blue)), 1);
    assert.ok(Math.abs(histogramDistance(colorHistogram(red), colorHistogram(half)) - 0.5) < 1e-6);
  });
});
