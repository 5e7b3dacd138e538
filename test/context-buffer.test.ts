import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ContextBuffer, CONTEXT_POLICY_NAMES, type ContextPolicyName } from '../src/agent/context-buffer.js';
import { isV4sError } from '../src/errors.js';
import type { Frame, Pose } from '../src/types.js';

/** A w×h frame whose every byte encodes the step (low byte, high byte, constant), so content proves identity. */
function stepFrame(step: number, w = 2, h = 2): Frame {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    data[i * 3] = step & 0xff;
    data[i * 3 + 1] = (step >> 8) & 0xff;
    data[i * 3 + 2] = 7;
  }
  return { width: w, height: h, data };
}

function decodeStep(f: Frame): number {
  return (f.data[0] ?? 0) + 256 * (f.data[1] ?? 0);
}

function solid(r: number, g: number, b: number, w = 16, h = 16): Frame {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) data.set([r, g, b], i * 3);
  return { width: w, height: h, data };
}

function pose(x: number, z: number, yawDeg = 0): Pose {
  const half = (yawDeg * Math.PI) / 360;
  return { position: [x, 0, z], rotation: [0, Math.sin(half), 0, Math.cos(half)] };
}

describe('ContextBuffer', () => {
  describe('selection invariants (property)', () => {
    it('always holds the newest, ascending true steps, offsets relative to the newest, within maxOffset and capacity', () => {
      fc.assert(
        fc.property(
          fc.record({
            capacity: fc.integer({ min: 1, max: 40 }),
            recentFrac: fc.double({ min: 0, max: 1, noNaN: true }),
            policy: fc.constantFrom(...CONTEXT_POLICY_NAMES),
            maxOffset: fc.option(fc.integer({ min: 0, max: 120 }), { nil: undefined }),
            gaps: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 300 }),
            k: fc.integer({ min: 1, max: 20 }),
            callMaxOffset: fc.option(fc.integer({ min: 0, max: 60 }), { nil: undefined }),
            withPose: fc.boolean(),
          }),
          ({ capacity, recentFrac, policy, maxOffset, gaps, k, callMaxOffset, withPose }) => {
            const recentWindow = Math.max(1, Math.round(recentFrac * capacity));
            const buffer = new ContextBuffer({ capacity, recentWindow, policy, ...(maxOffset !== undefined ? { maxOffset } : {}) });
            const pushed = new Set<number>();
            let step = 0;
            for (const [i, gap] of gaps.entries()) {
              step += i === 0 ? 0 : gap; // gap 0 = the same step again (replaces the newest)
              buffer.push({ step, rgb: stepFrame(step), ...(withPose ? { pose: pose(step * 0.1, (step % 7) * 0.3, step * 11) } : {}) });
              pushed.add(step);
              assert.ok(buffer.size <= capacity);
            }
            const sel = buffer.select(k, callMaxOffset !== undefined ? { maxOffset: callMaxOffset } : {});
            const limit = Math.min(maxOffset ?? Infinity, callMaxOffset ?? Infinity);
            const eligible = buffer.entries().filter((e) => step - e.step <= limit).length;
            assert.equal(sel.positions.length, Math.min(k, eligible));
            assert.equal(sel.frames.length, sel.positions.length);
            assert.equal(sel.poses.length, sel.positions.length);
            assert.equal(sel.positions[sel.positions.length - 1], step, 'newest present and last');
            for (let i = 1; i < sel.positions.length; i++) {
              assert.ok((sel.positions[i] ?? 0) > (sel.positions[i - 1] ?? 0), 'strictly ascending');
            }
            for (const [i, p] of sel.positions.entries()) {
              assert.ok(pushed.has(p), 'a true observed step');
              assert.equal(sel.offsets[i], p - step);
              assert.ok(step - p <= limit, 'within maxOffset');
              const f = sel.frames[i];
              assert.ok(f !== undefined && decodeStep(f) === p % 65536, 'frame is the one observed at that step');
            }
          },
        ),
        { numRuns: 300 },
      );
    });
  });

  describe('recent-exponential', () => {
    it('selects offsets 0, −1, −2, −4, −8, −16 and fills the rest farthest-first on a short history', () => {
      const buffer = new ContextBuffer({ capacity: 64, policy: 'recent-exponential' });
      for (let s = 0; s < 20; s++) buffer.push({ step: s, rgb: stepFrame(s) });
      const sel = buffer.select(8);
      // Targets 19,18,17,15,11,3; then the fill picks 7 (4 from 3 and 11), then 0.
      assert.deepEqual(sel.positions, [0, 3, 7, 11, 15, 17, 18, 19]);
      assert.deepEqual(sel.offsets, [-19, -16, -12, -8, -4, -2, -1, 0]);
    });

    it('keeps geometrically spaced old frames over a long run: each offset within 25 % of its target', () => {
      const buffer = new ContextBuffer({ capacity: 32, recentWindow: 8, policy: 'recent-exponential' });
      for (let s = 0; s < 5000; s++) buffer.push({ step: s, rgb: stepFrame(s) });
      assert.equal(buffer.size, 32);
      const sel = buffer.select(12);
      const targets = [0, -1, -2, -4, -8, -16, -32, -64, -128, -256, -512, -1024];
      assert.equal(sel.offsets.length, 12);
      const got = [...sel.offsets].reverse();
      for (const [i, t] of targets.entries()) {
        const o = got[i] ?? NaN;
        assert.ok(Math.abs(o - t) <= 0.25 * Math.abs(t), `offset ${o} vs target ${t} (all: ${sel.offsets.join(',')})`);
      }
    });
  });

  describe('uniform', () => {
    it('spreads k frames evenly over the history (ties go to the older frame)', () => {
      const buffer = new ContextBuffer({ capacity: 200, policy: 'uniform' });
      for (let s = 0; s < 100; s++) buffer.push({ step: s, rgb: stepFrame(s) });
      // Targets 99, 74.25, 49.5, 24.75, 0.
      assert.deepEqual(buffer.select(5).positions, [0, 25, 49, 74, 99]);
    });

    it('keeps the older frames evenly spaced under eviction: every gap within 2× of the mean', () => {
      const buffer = new ContextBuffer({ capacity: 32, recentWindow: 4, policy: 'uniform' });
      for (let s = 0; s < 3000; s++) buffer.push({ step: s, rgb: stepFrame(s) });
      const sel = buffer.select(9);
      assert.equal(sel.positions[0], 0, 'the first frame of the history is kept');
      const gaps = sel.positions.slice(1).map((p, i) => p - (sel.positions[i] ?? 0));
      const meanGap = 2999 / 8;
      for (const g of gaps) assert.ok(g >= meanGap / 2 && g <= meanGap * 2, `gaps ${gaps.join(',')}`);
    });
  });

  describe('novelty', () => {
    it('with poses: picks one frame per visited place, and old places survive long static stretches', () => {
      const buffer = new ContextBuffer({ capacity: 16, recentWindow: 4, policy: 'novelty' });
      const places = [pose(0, 0), pose(3, 0), pose(3, -3, 90)];
      let step = 0;
      for (const [i, p] of places.entries()) {
        const n = i === 2 ? 300 : 50;
        for (let j = 0; j < n; j++, step++) buffer.push({ step, rgb: stepFrame(step), pose: p });
      }
      const sel = buffer.select(3);
      const placeOf = (s: number): number => (s < 50 ? 0 : s < 100 ? 1 : 2);
      assert.deepEqual(sel.positions.map(placeOf), [0, 1, 2]);
      assert.equal(sel.positions[2], step - 1);
      assert.ok(buffer.size <= 16);
    });

    it('without poses: picks frames by appearance (one red, one green, one blue)', () => {
      const buffer = new ContextBuffer({ capacity: 12, recentWindow: 3, policy: 'novelty' });
      const colours: [number, number, number][] = [
        [220, 20, 20],
        [20, 220, 20],
        [20, 20, 220],
      ];
      let step = 0;
      for (const c of colours) for (let j = 0; j < 40; j++, step++) buffer.push({ step, rgb: solid(c[0], c[1], c[2]) });
      const sel = buffer.select(3);
      const dominant = sel.frames.map((f) => [f.data[0] ?? 0, f.data[1] ?? 0, f.data[2] ?? 0].indexOf(220));
      assert.deepEqual(dominant, [0, 1, 2]);
    });
  });

  describe('maxOffset', () => {
    it('drops frames beyond maxOffset at push and never selects them', () => {
      const buffer = new ContextBuffer({ capacity: 64, maxOffset: 10 });
      for (let s = 0; s < 100; s++) buffer.push({ step: s, rgb: stepFrame(s) });
      assert.equal(buffer.size, 11);
      assert.equal(buffer.entries()[0]?.step, 89);
      const sel = buffer.select(8);
      assert.ok(Math.min(...sel.offsets) >= -10);
    });

    it('a per-call maxOffset tightens the range', () => {
      const buffer = new ContextBuffer({ capacity: 64 });
      for (let s = 0; s < 50; s++) buffer.push({ step: s, rgb: stepFrame(s) });
      const sel = buffer.select(8, { maxOffset: 4 });
      assert.deepEqual(sel.offsets, [-4, -3, -2, -1, 0]);
    });
  });

  describe('push', () => {
    it('replaces the newest on a repeated step, and refuses an older one with E_CONTEXT_ORDER', () => {
      const buffer = new ContextBuffer();
      buffer.push({ step: 3, rgb: stepFrame(3) });
      buffer.push({ step: 3, rgb: stepFrame(300) });
      assert.equal(buffer.size, 1);
      assert.equal(decodeStep(buffer.select(1).frames[0] ?? stepFrame(0)), 300);
      assert.throws(() => buffer.push({ step: 2, rgb: stepFrame(2) }), (e: unknown) => isV4sError(e, 'E_CONTEXT_ORDER'));
      buffer.clear();
      buffer.push({ step: 0, rgb: stepFrame(0) });
      assert.equal(buffer.size, 1);
    });

    it('copies the frame (mutating the caller’s bytes later does not change memory)', () => {
      const buffer = new ContextBuffer();
      const f = stepFrame(5);
      buffer.push({ step: 5, rgb: f });
      f.data.fill(0);
      assert.equal(decodeStep(buffer.select(1).frames[0] ?? f), 5);
    });

    it('downsamples to storedSize (640×480 → 64×64, centre-crop)', () => {
      const buffer = new ContextBuffer({ storedSize: { width: 64, height: 64 } });
      buffer.push({ step: 0, rgb: solid(10, 20, 30, 640, 480) });
      const f = buffer.select(1).frames[0];
      assert.equal(f?.width, 64);
      assert.equal(f?.height, 64);
      assert.deepEqual([...(f?.data.subarray(0, 3) ?? [])], [10, 20, 30]);
    });

    it('rejects a malformed frame with E_FRAME_SIZE and select before push with E_CONTEXT_EMPTY', () => {
      const buffer = new ContextBuffer();
      assert.throws(() => buffer.select(4), (e: unknown) => isV4sError(e, 'E_CONTEXT_EMPTY'));
      assert.throws(
        () => buffer.push({ step: 0, rgb: { width: 4, height: 4, data: new Uint8Array(10) } }),
        (e: unknown) => isV4sError(e, 'E_FRAME_SIZE') && /48 bytes/.test(e.message),
      );
      assert.throws(() => new ContextBuffer({ capacity: 4, recentWindow: 5 }), (e: unknown) => isV4sError(e, 'E_CONFIG'));
      assert.throws(() => new ContextBuffer({ policy: 'nope' as ContextPolicyName }), (e: unknown) => isV4sError(e, 'E_CONFIG'));
    });
  });

  describe('memory', () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    function memory(): number {
      assert.ok(gc !== undefined, 'run mocha with --expose-gc (see .mocharc.json)');
      gc();
      gc();
      const m = process.memoryUsage();
      // Frame bytes live in ArrayBuffers, outside heapUsed: count both.
      return m.heapUsed + m.arrayBuffers;
    }

    for (const policy of CONTEXT_POLICY_NAMES) {
      it(`stays bounded over 10,000 pushed 64×64 frames (${policy}; heap + ArrayBuffers after forced GC)`, () => {
        const capacity = 64;
        const frameBytes = 64 * 64 * 3;
        const before = memory();
        let buffer: ContextBuffer | undefined = new ContextBuffer({ capacity, policy });
        let warm = 0;
        for (let s = 0; s < 10_000; s++) {
          const rgb: Frame = { width: 64, height: 64, data: new Uint8Array(frameBytes).fill(s % 251) };
          buffer.push({ step: s, rgb, pose: pose(Math.sin(s / 50) * 5, Math.cos(s / 70) * 5, s * 7) });
          if (s === 999) warm = memory();
        }
        const after = memory();
        const growth = after - warm;
        const total = after - before;
        // Unbounded storage would grow by 9,000 × 12,288 B ≈ 110 MB between the two measurements.
        assert.ok(growth < 2 * 1024 * 1024, `grew ${(growth / 1e6).toFixed(2)} MB from push 1,000 to 10,000`);
        assert.ok(total < capacity * frameBytes + 4 * 1024 * 1024, `holds ${(total / 1e6).toFixed(2)} MB for ${capacity} frames`);
        assert.equal(buffer.size, capacity);
        buffer = undefined;
      });
    }
  });
});
