/**
 * Diffusion samplers in TypeScript: DDIM with η over DDPM schedules, and flow-matching Euler with a Wan-style
 * timestep shift over rectified-flow schedules. The network is evaluated elsewhere; a sampler only says which
 * `t` to feed at step k and how to move x given the (guided) prediction.
 *
 * Every update is affine in (x, prediction) with per-step scalars, so one step is one fused loop:
 * `x ← cx·x + cp·pred (+ cz·z)`. Usage:
 * ```
 * const s = createSampler({ kind: 'euler', steps: 4, shift: 3 }, { kind: 'flow' }, 'flow');
 * for (let k = 0; k < s.steps; k++) { t = s.modelTime(k); pred = model(x, t); s.step(k, x, pred, 0, x.length, rng); }
 * ```
 */
import type { PredictionType, SamplerConfig } from './world-model.js';
import type { Rng } from './rng.js';

/** Noise schedules a model package declares. */
export type NoiseSchedule =
  | { readonly kind: 'flow' }
  | {
      readonly kind: 'ddpm';
      readonly beta: 'linear' | 'cosine';
      readonly betaStart?: number;
      readonly betaEnd?: number;
      readonly trainSteps: number;
    };

/** Which prediction types each schedule supports (the runtime rejects other pairs when loading). */
export const PREDICTIONS_FOR_SCHEDULE: Readonly<Record<NoiseSchedule['kind'], readonly PredictionType[]>> = {
  flow: ['flow', 'x0'],
  ddpm: ['eps', 'v', 'x0'],
};

/** The sampler kind each schedule is sampled with. */
export const SAMPLER_FOR_SCHEDULE: Readonly<Record<NoiseSchedule['kind'], SamplerConfig['kind']>> = {
  flow: 'euler',
  ddpm: 'ddim',
};

/** ᾱ_t for t = 0..T−1 of a DDPM schedule (linear betas, or the cosine schedule of Nichol & Dhariwal 2021). */
export function ddpmAlphasCumprod(schedule: Extract<NoiseSchedule, { kind: 'ddpm' }>): Float64Array {
  const T = schedule.trainSteps;
  const out = new Float64Array(T);
  if (schedule.beta === 'linear') {
    const b0 = schedule.betaStart ?? 1e-4;
    const b1 = schedule.betaEnd ?? 0.02;
    let prod = 1;
    for (let i = 0; i < T; i++) {
      const beta = T === 1 ? b0 : b0 + ((b1 - b0) * i) / (T - 1);
      prod *= 1 - beta;
      out[i] = prod;
    }
  } else {
    const s = 0.008;
    const f = (t: number): number => Math.cos((((t / T) + s) / (1 + s)) * (Math.PI / 2)) ** 2;
    let prod = 1;
    for (let i = 0; i < T; i++) {
      const beta = Math.min(1 - f(i + 1) / f(i), 0.999);
      prod *= 1 - beta;
      out[i] = prod;
    }
  }
  return out;
}

/**
 * DDIM timesteps, "trailing" spacing (Lin et al. 2024): τ_k = round(T − k·T/N) − 1, k = 0..N−1, so the first
 * step starts at the last training timestep even with very few steps; after the last step ᾱ = 1 (clean).
 */
export function ddimTimesteps(trainSteps: number, steps: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < steps; k++) out.push(Math.max(0, Math.round(trainSteps - (k * trainSteps) / steps) - 1));
  return out;
}

/** Wan-style timestep shift σ' = sσ / (1 + (s−1)σ); s = 1 leaves σ unchanged, s > 1 spends more steps at high noise. */
export function shiftSigma(sigma: number, shift: number): number {
  return (shift * sigma) / (1 + (shift - 1) * sigma);
}

/** The N+1 noise levels of an N-step Euler run: shifted σ from 1 down to 0. */
export function flowSigmas(steps: number, shift: number): Float64Array {
  const out = new Float64Array(steps + 1);
  for (let k = 0; k <= steps; k++) out[k] = shiftSigma(1 - k / steps, shift);
  out[steps] = 0;
  return out;
}

/** A sampler prepared for one run: `steps` evaluations, each followed by an in-place update of x. */
export interface SamplerProgram {
  readonly steps: number;
  /** The value of the model's `t` input at step k (σ for flow, the timestep index for DDPM). */
  modelTime(k: number): number;
  /**
   * Update `x[offset .. offset+length)` in place from the prediction at the same indices. `rng` draws the
   * fresh noise of stochastic steps (DDIM η > 0); give each candidate its own stream.
   */
  step(k: number, x: Float32Array, pred: Float32Array, offset: number, length: number, rng: Rng): void;
  /** Per-step affine coefficients, x ← cx·x + cp·pred + cz·z (exposed for tests and reports). */
  readonly coefficients: readonly { readonly cx: number; readonly cp: number; readonly cz: number }[];
}

/**
 * Prepare a sampler. Throws RangeError when the sampler, schedule and prediction type do not fit together
 * (the runtime turns that into E_MODEL_INPUT).
 */
export function createSampler(config: SamplerConfig, schedule: NoiseSchedule, prediction: PredictionType): SamplerProgram {
  if (!Number.isInteger(config.steps) || config.steps < 1) throw new RangeError(`sampler.steps must be an integer ≥ 1, got ${config.steps}`);
  if (!PREDICTIONS_FOR_SCHEDULE[schedule.kind].includes(prediction)) {
    throw new RangeError(`prediction "${prediction}" is not supported with a ${schedule.kind} schedule`);
  }
  if (config.kind !== SAMPLER_FOR_SCHEDULE[schedule.kind]) {
    throw new RangeError(`sampler "${config.kind}" needs a ${config.kind === 'ddim' ? 'ddpm' : 'flow'} schedule; this model has a ${schedule.kind} schedule (use "${SAMPLER_FOR_SCHEDULE[schedule.kind]}")`);
  }
  if (config.kind === 'ddim' && schedule.kind === 'ddpm') return ddimProgram(config.steps, config.eta ?? 0, schedule, prediction);
  if (config.kind === 'euler') return eulerProgram(config.steps, config.shift ?? 1, prediction);
  throw new RangeError(`unsupported sampler "${config.kind}"`);
}

function ddimProgram(
  steps: number,
  eta: number,
  schedule: Extract<NoiseSchedule, { kind: 'ddpm' }>,
  prediction: PredictionType,
): SamplerProgram {
  if (!(eta >= 0) || !Number.isFinite(eta)) throw new RangeError(`sampler.eta must be ≥ 0, got ${eta}`);
  if (steps > schedule.trainSteps) throw new RangeError(`sampler.steps ${steps} exceeds the schedule's ${schedule.trainSteps} training steps`);
  const ab = ddpmAlphasCumprod(schedule);
  const ts = ddimTimesteps(schedule.trainSteps, steps);
  const coefficients = ts.map((tau, k) => {
    const a = ab[tau] ?? 1;
    const next = ts[k + 1];
    const aPrev = next === undefined ? 1 : (ab[next] ?? 1);
    const s0 = Math.sqrt(a);
    const s1 = Math.sqrt(1 - a);
    const sigma = eta * Math.sqrt((1 - aPrev) / (1 - a)) * Math.sqrt(1 - a / aPrev);
    const c = Math.sqrt(Math.max(0, 1 - aPrev - sigma * sigma));
    const q = Math.sqrt(aPrev);
    // x' = √ᾱ_prev·x̂0 + √(1−ᾱ_prev−σ²)·ε̂ + σz, with (ε̂, x̂0) affine in (x, pred):
    switch (prediction) {
      case 'eps': // x̂0 = (x − s1·p)/s0, ε̂ = p
        return { cx: q / s0, cp: c - (q * s1) / s0, cz: sigma };
      case 'v': // x̂0 = s0·x − s1·p, ε̂ = s1·x + s0·p
        return { cx: q * s0 + c * s1, cp: -q * s1 + c * s0, cz: sigma };
      default: // x0: x̂0 = p, ε̂ = (x − s0·p)/s1
        return { cx: c / s1, cp: q - (c * s0) / s1, cz: sigma };
    }
  });
  return {
    steps,
    coefficients,
    modelTime: (k) => ts[k] ?? 0,
    step: (k, x, pred, offset, length, rng) => affineStep(coefficients[k], x, pred, offset, length, rng),
  };
}

function eulerProgram(steps: number, shift: number, prediction: PredictionType): SamplerProgram {
  if (!(shift > 0) || !Number.isFinite(shift)) throw new RangeError(`sampler.shift must be > 0, got ${shift}`);
  const sigmas = flowSigmas(steps, shift);
  const coefficients: { cx: number; cp: number; cz: number }[] = [];
  for (let k = 0; k < steps; k++) {
    const s = sigmas[k] ?? 1;
    const dt = (sigmas[k + 1] ?? 0) - s;
    // x' = x + dt·v; v = pred for `flow`, v = (x − x̂0)/σ for `x0`.
    coefficients.push(prediction === 'flow' ? { cx: 1, cp: dt, cz: 0 } : { cx: 1 + dt / s, cp: -dt / s, cz: 0 });
  }
  return {
    steps,
    coefficients,
    modelTime: (k) => sigmas[k] ?? 0,
    step: (k, x, pred, offset, length, rng) => affineStep(coefficients[k], x, pred, offset, length, rng),
  };
}

function affineStep(
  co: { readonly cx: number; readonly cp: number; readonly cz: number } | undefined,
  x: Float32Array,
  pred: Float32Array,
  offset: number,
  length: number,
  rng: Rng,
): void {
  if (co === undefined) throw new RangeError('sampler step index out of range');
  const { cx, cp, cz } = co;
  const end = offset + length;
  if (cz === 0) {
    for (let i = offset; i < end; i++) x[i] = cx * (x[i] as number) + cp * (pred[i] as number);
  } else {
    for (let i = offset; i < end; i++) x[i] = cx * (x[i] as number) + cp * (pred[i] as number) + cz * rng.nextNormal();
  }
}
