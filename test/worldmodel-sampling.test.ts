/**
 * Samplers, guidance and RNG: unit checks of the mathematics, then end-to-end checks through a real ONNX
 * session (the `linear` fixture, pred = A·x_t + B·cm·mean(context) + im·(C·action + G·goal) + D·t) against
 * the closed forms written out here independently of src/ (textbook DDIM and Euler updates, in float64).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { combineGuidance, jointGuidance, planGuidance, twoScaleGuidance } from '../src/worldmodel/guidance.js';
import { loadWorldModel, type OnnxWorldModel } from '../src/worldmodel/onnx-world-model.js';
import { createRng } from '../src/worldmodel/rng.js';
import { ddimTimesteps, ddpmAlphasCumprod, flowSigmas, shiftSigma } from '../src/worldmodel/samplers.js';
import type { Frame, Instruction } from '../src/types.js';
import type { GuidanceConfig, SamplerConfig } from '../src/worldmodel/world-model.js';
import { assertClose, cleanupTemps, fixtureCopy, fixtureDir, makeFrame, setPath, toUnit } from './worldmodel-helpers.js';

describe('worldmodel rng', () => {
  it('is deterministic per (seed, stream) and streams differ', () => {
    const a = new Float32Array(1000);
    const b = new Float32Array(1000);
    const c = new Float32Array(1000);
    createRng(42, 3).fillNormal(a, 0, 1000);
    createRng(42, 3).fillNormal(b, 0, 1000);
    createRng(42, 4).fillNormal(c, 0, 1000);
    assert.deepEqual(a, b);
    let same = 0;
    for (let i = 0; i < 1000; i++) if (a[i] === c[i]) same++;
    assert.equal(same, 0);
    const d = new Float32Array(1000);
    createRng(43, 3).fillNormal(d, 0, 1000);
    assert.notDeepEqual(a, d);
  });

  it('draws standard normals (mean 0, variance 1, uncorrelated streams) and uniforms in [0,1)', () => {
    const n = 200_000;
    const x = new Float32Array(n);
    const y = new Float32Array(n);
    createRng(7, 0).fillNormal(x, 0, n);
    createRng(7, 1).fillNormal(y, 0, n);
    let m = 0;
    let v = 0;
    let xy = 0;
    let tail = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[i] as number;
      m += xi;
      v += xi * xi;
      xy += xi * (y[i] as number);
      if (Math.abs(xi) > 1.96) tail++;
    }
    m /= n;
    v = v / n - m * m;
    assert.ok(Math.abs(m) < 0.01, `mean ${m}`);
    assert.ok(Math.abs(v - 1) < 0.015, `variance ${v}`);
    assert.ok(Math.abs(xy / n) < 0.01, `correlation ${xy / n}`);
    assert.ok(Math.abs(tail / n - 0.05) < 0.003, `P(|z| > 1.96) = ${tail / n}`);
    const r = createRng(1);
    for (let i = 0; i < 10_000; i++) {
      const u = r.nextUniform();
      assert.ok(u >= 0 && u < 1);
    }
  });

  it('rejects bad seeds', () => {
    assert.throws(() => createRng(-1), RangeError);
    assert.throws(() => createRng(1.5), RangeError);
  });
});

describe('worldmodel schedules', () => {
  it('linear DDPM ᾱ matches the known values', () => {
    const ab = ddpmAlphasCumprod({ kind: 'ddpm', beta: 'linear', betaStart: 1e-4, betaEnd: 0.02, trainSteps: 1000 });
    assert.equal(ab.length, 1000);
    assert.ok(Math.abs((ab[0] as number) - 0.9999) < 1e-12);
    assert.ok(Math.abs((ab[999] as number) - 4.0358e-5) < 1e-8, `ᾱ_999 = ${ab[999]}`);
  });

  it('cosine ᾱ decreases from ≈1 to ≈0', () => {
    const ab = ddpmAlphasCumprod({ kind: 'ddpm', beta: 'cosine', trainSteps: 1000 });
    assert.ok((ab[0] as number) > 0.9999 && (ab[999] as number) < 1e-4);
    for (let i = 1; i < 1000; i++) assert.ok((ab[i] as number) < (ab[i - 1] as number));
    // ᾱ(t) = f(t)/f(0), f(t) = cos²((t/T + s)/(1+s)·π/2): at t = 500, ᾱ ≈ 0.4938
    const f = (t: number): number => Math.cos(((t / 1000 + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    assert.ok(Math.abs((ab[499] as number) - f(500) / f(0)) < 1e-9);
  });

  it('DDIM uses trailing timesteps; Euler sigmas carry the Wan shift', () => {
    assert.deepEqual(ddimTimesteps(1000, 4), [999, 749, 499, 249]);
    assert.deepEqual(ddimTimesteps(1000, 1), [999]);
    assert.deepEqual([...flowSigmas(4, 1)], [1, 0.75, 0.5, 0.25, 0]);
    assert.equal(shiftSigma(0.5, 3), 0.75);
    assert.equal(shiftSigma(1, 5), 1);
    assert.ok(Math.abs(shiftSigma(0.25, 3) - (3 * 0.25) / (1 + 2 * 0.25)) < 1e-15);
    const s = flowSigmas(4, 3);
    assert.equal(s[0], 1);
    assert.equal(s[4], 0);
    assert.ok(Math.abs((s[2] as number) - 0.75) < 1e-15);
  });
});

describe('worldmodel guidance', () => {
  it('plans branches and weights', () => {
    assert.deepEqual(jointGuidance(1).branches, [{ contextMask: 1, instructionMask: 1 }]);
    const j = jointGuidance(2.5);
    assert.deepEqual(j.branches, [{ contextMask: 0, instructionMask: 0 }, { contextMask: 1, instructionMask: 1 }]);
    assert.deepEqual(j.weights, [-1.5, 2.5]);
    assert.equal(j.conditional, 1);
    const t = twoScaleGuidance(2, 3);
    assert.deepEqual(t.branches.map((b) => [b.contextMask, b.instructionMask]), [[0, 0], [1, 0], [1, 1]]);
    assert.deepEqual(t.weights, [-1, -1, 3]);
    assert.equal(t.conditional, 2);
    assert.equal(twoScaleGuidance(1, 1).branches.length, 1);
    assert.equal(twoScaleGuidance(2, 2).branches.length, 2);
    assert.equal(planGuidance({ kind: 'none' }).branches.length, 1);
    assert.throws(() => planGuidance({ kind: 'joint', scale: Number.NaN }), RangeError);
  });

  it('combines each candidate with its own rows only (layout [branch][candidate][element])', () => {
    const n = 3;
    const size = 5;
    for (const plan of [jointGuidance(1), jointGuidance(2), twoScaleGuidance(1.5, 4)]) {
      const nb = plan.branches.length;
      const batched = new Float32Array(nb * n * size);
      for (let b = 0; b < nb; b++) for (let c = 0; c < n; c++) for (let j = 0; j < size; j++) batched[(b * n + c) * size + j] = 1000 * (b + 1) + 10 * c + j;
      const out = new Float32Array(n * size);
      combineGuidance(plan, batched, n, size, out);
      for (let c = 0; c < n; c++) {
        for (let j = 0; j < size; j++) {
          let e = 0;
          for (let b = 0; b < nb; b++) e += (plan.weights[b] as number) * (1000 * (b + 1) + 10 * c + j);
          assert.ok(Math.abs((out[c * size + j] as number) - e) < 1e-3, `cand ${c} elem ${j}`);
        }
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Closed forms through the real ONNX `linear` fixture.

interface Coef {
  A: number;
  B: number;
  C: number;
  G: number;
  D: number;
}

const ACTION_IDS: Record<string, number> = { move_forward: 1, turn_left: 2, turn_right: 3 };
const GOAL_IDS: Record<string, number> = { chair: 1, sofa: 2 };

interface RefCase {
  frames: Frame[];
  instruction: Instruction;
  cand: number;
  seed: number;
  /** Effective context / instruction weights of the guided prediction: Σ_b w_b·mask_b. */
  sc: number;
  si: number;
  sampler: SamplerConfig;
  prediction: 'x0' | 'flow' | 'eps' | 'v';
  schedule?: { beta: 'linear' | 'cosine'; T: number };
}

/** The linear fixture's guided prediction and the sampler, written out from the textbook formulas. */
function reference(coef: Coef, rc: RefCase): Float64Array {
  const H = rc.instruction.actions.length;
  const L = 48; // 3 x 4 x 4
  const S = H * L;
  const ctxMean = new Float64Array(L);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < 16; p++) {
      let s = 0;
      for (const f of rc.frames) s += toUnit(f.data[p * 3 + c] as number);
      ctxMean[c * 16 + p] = s / rc.frames.length;
    }
  }
  const goal = rc.instruction.goalCategory ? (GOAL_IDS[rc.instruction.goalCategory] ?? 0) : 0;
  const Q = new Float64Array(S);
  for (let h = 0; h < H; h++) {
    const act = ACTION_IDS[rc.instruction.actions[h] ?? ''] ?? 0;
    for (let i = 0; i < L; i++) Q[h * L + i] = coef.B * rc.sc * (ctxMean[i] as number) + rc.si * (coef.C * act + coef.G * goal);
  }
  const rng = createRng(rc.seed, rc.cand);
  const init = new Float32Array(S);
  rng.fillNormal(init, 0, S);
  const x = Float64Array.from(init);
  const model = (i: number, t: number): number => coef.A * (x[i] as number) + (Q[i] as number) + coef.D * t;
  if (rc.sampler.kind === 'euler') {
    const N = rc.sampler.steps;
    const s = rc.sampler.shift ?? 1;
    const sig = (k: number): number => (k === N ? 0 : (s * (1 - k / N)) / (1 + (s - 1) * (1 - k / N)));
    for (let k = 0; k < N; k++) {
      const sk = sig(k);
      const dt = sig(k + 1) - sk;
      for (let i = 0; i < S; i++) {
        const p = model(i, sk);
        const v = rc.prediction === 'flow' ? p : ((x[i] as number) - p) / sk;
        x[i] = (x[i] as number) + dt * v;
      }
    }
    return x;
  }
  // DDIM
  const T = rc.schedule?.T ?? 1000;
  const ab: number[] = [];
  let prod = 1;
  for (let i = 0; i < T; i++) {
    let beta: number;
    if (rc.schedule?.beta === 'cosine') {
      const f = (t: number): number => Math.cos(((t / T + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
      beta = Math.min(1 - f(i + 1) / f(i), 0.999);
    } else {
      beta = 1e-4 + ((0.02 - 1e-4) * i) / (T - 1);
    }
    prod *= 1 - beta;
    ab.push(prod);
  }
  const N = rc.sampler.steps;
  const eta = rc.sampler.kind === 'ddim' ? (rc.sampler.eta ?? 0) : 0;
  const taus = Array.from({ length: N }, (_, k) => Math.round(T - (k * T) / N) - 1);
  for (let k = 0; k < N; k++) {
    const tau = taus[k] as number;
    const a = ab[tau] as number;
    const aPrev = k + 1 < N ? (ab[taus[k + 1] as number] as number) : 1;
    const sigma = eta * Math.sqrt((1 - aPrev) / (1 - a)) * Math.sqrt(1 - a / aPrev);
    for (let i = 0; i < S; i++) {
      const p = model(i, tau);
      const xi = x[i] as number;
      let eps: number;
      let x0: number;
      if (rc.prediction === 'eps') {
        eps = p;
        x0 = (xi - Math.sqrt(1 - a) * eps) / Math.sqrt(a);
      } else if (rc.prediction === 'v') {
        x0 = Math.sqrt(a) * xi - Math.sqrt(1 - a) * p;
        eps = Math.sqrt(1 - a) * xi + Math.sqrt(a) * p;
      } else {
        x0 = p;
        eps = (xi - Math.sqrt(a) * x0) / Math.sqrt(1 - a);
      }
      const z = sigma > 0 ? rng.nextNormal() : 0;
      x[i] = Math.sqrt(aPrev) * x0 + Math.sqrt(1 - aPrev - sigma * sigma) * eps + sigma * z;
    }
  }
  return x;
}

function effectiveScales(g: GuidanceConfig): { sc: number; si: number } {
  if (g.kind === 'none') return { sc: 1, si: 1 };
  if (g.kind === 'joint') return { sc: g.scale, si: g.scale };
  return { sc: g.context, si: g.instruction };
}

describe('worldmodel samplers end to end (linear fixture, real ONNX session)', function () {
  this.timeout(20_000);
  let coef: Coef;
  const models: OnnxWorldModel[] = [];
  const frames = [0, 1, 2].map((k) => makeFrame(4, 4, (x, y, c) => (37 * k + 11 * x + 23 * y + 71 * c) % 256));
  const candidates: Instruction[] = [
    { actions: ['move_forward', 'turn_left', 'turn_right'], goalCategory: 'sofa' },
    { actions: ['turn_right', 'turn_right', 'move_forward'] },
    { actions: ['turn_left', 'move_forward', 'move_forward'], goalCategory: 'chair' },
  ];

  before(async () => {
    const m = JSON.parse(await readFile(path.join(fixtureDir('linear'), 'manifest.json'), 'utf8')) as { provenance: { fixture: Coef } };
    coef = m.provenance.fixture;
  });
  after(async () => {
    await Promise.all(models.map((m) => m.dispose()));
    await cleanupTemps();
  });

  async function load(prediction: RefCase['prediction'], schedule?: RefCase['schedule']): Promise<OnnxWorldModel> {
    const dir = await fixtureCopy('linear', (j) => {
      setPath(j, ['prediction'], prediction);
      if (schedule) {
        setPath(j, ['schedule'], { kind: 'ddpm', beta: schedule.beta, betaStart: 1e-4, betaEnd: 0.02, trainSteps: schedule.T });
        setPath(j, ['defaults', 'sampler'], { kind: 'ddim', steps: 4, eta: 0 });
      }
    });
    const wm = await loadWorldModel(dir, { threads: 1 });
    models.push(wm);
    return wm;
  }

  const cases: { name: string; prediction: RefCase['prediction']; schedule?: RefCase['schedule']; sampler: SamplerConfig; guidance: GuidanceConfig }[] = [
    { name: 'Euler, x0 prediction, shift 3, no guidance', prediction: 'x0', sampler: { kind: 'euler', steps: 4, shift: 3 }, guidance: { kind: 'none' } },
    { name: 'Euler, flow (velocity) prediction, joint CFG ω = 2.5', prediction: 'flow', sampler: { kind: 'euler', steps: 3, shift: 1 }, guidance: { kind: 'joint', scale: 2.5 } },
    { name: 'Euler, x0 prediction, shift 5, two-scale CFG (1.5, 3)', prediction: 'x0', sampler: { kind: 'euler', steps: 5, shift: 5 }, guidance: { kind: 'two-scale', context: 1.5, instruction: 3 } },
    { name: 'DDIM η = 0, eps prediction, joint CFG ω = 1.5', prediction: 'eps', schedule: { beta: 'linear', T: 1000 }, sampler: { kind: 'ddim', steps: 4, eta: 0 }, guidance: { kind: 'joint', scale: 1.5 } },
    { name: 'DDIM η = 0.7, v prediction, two-scale CFG (2, 0.5)', prediction: 'v', schedule: { beta: 'linear', T: 1000 }, sampler: { kind: 'ddim', steps: 5, eta: 0.7 }, guidance: { kind: 'two-scale', context: 2, instruction: 0.5 } },
    { name: 'DDIM η = 1, x0 prediction, cosine schedule, joint CFG ω = 3', prediction: 'x0', schedule: { beta: 'cosine', T: 100 }, sampler: { kind: 'ddim', steps: 3, eta: 1 }, guidance: { kind: 'joint', scale: 3 } },
  ];

  for (const tc of cases) {
    it(`${tc.name}: every candidate equals its closed form, one session.run per step`, async () => {
      const wm = await load(tc.prediction, tc.schedule);
      wm.resetStats();
      const seed = 1234;
      const res = await wm.sampleLatents({ context: { frames, positions: [2, 9, 10] }, candidates, horizon: 3, sampler: tc.sampler, guidance: tc.guidance, seed });
      assert.equal(res.length, candidates.length);
      const { sc, si } = effectiveScales(tc.guidance);
      res.forEach((r, cand) => {
        assert.equal(r.instruction, candidates[cand]);
        assert.deepEqual(r.shape, [3, 3, 4, 4]);
        const expected = reference(coef, { frames, instruction: candidates[cand] as Instruction, cand, seed, sc, si, sampler: tc.sampler, prediction: tc.prediction, ...(tc.schedule ? { schedule: tc.schedule } : {}) });
        assertClose(r.latents, expected, 1e-3, 1e-4, `candidate ${cand}`);
      });
      const st = wm.stats();
      assert.equal(st.sessionRuns, tc.sampler.steps, 'one session.run per denoising step');
      assert.equal(st.denoiseSteps, tc.sampler.steps);
    });
  }

  it('a shorter horizon than the manifest allows (H symbolic) samples H frames, against the closed form', async () => {
    const wm = await load('x0');
    const short: Instruction[] = [{ actions: ['turn_left', 'move_forward'], goalCategory: 'chair' }, { actions: ['turn_right', 'turn_left'] }];
    const sampler = { kind: 'euler', steps: 3, shift: 2 } as const;
    const res = await wm.sampleLatents({ context: { frames, positions: [2, 9, 10] }, candidates: short, horizon: 2, sampler, guidance: { kind: 'joint', scale: 2 }, seed: 9 });
    res.forEach((r, cand) => {
      assert.deepEqual(r.shape, [2, 3, 4, 4]);
      const expected = reference(coef, { frames, instruction: short[cand] as Instruction, cand, seed: 9, sc: 2, si: 2, sampler, prediction: 'x0' });
      assertClose(r.latents, expected, 1e-3, 1e-4, `candidate ${cand}`);
    });
  });

  it('is deterministic for a seed, differs across seeds, and a candidate does not depend on its batch mates', async () => {
    const wm = await load('x0');
    const req = { context: { frames, positions: [2, 9, 10] }, candidates, horizon: 3, sampler: { kind: 'euler', steps: 3, shift: 2 } as const, seed: 5 };
    const a = await wm.sampleLatents(req);
    const b = await wm.sampleLatents(req);
    const c = await wm.sampleLatents({ ...req, seed: 6 });
    const alone = await wm.sampleLatents({ ...req, candidates: [candidates[0] as Instruction] });
    assert.deepEqual(a[1]?.latents, b[1]?.latents);
    assert.notDeepEqual(a[1]?.latents, c[1]?.latents);
    assert.deepEqual(alone[0]?.latents, a[0]?.latents);
  });
});
