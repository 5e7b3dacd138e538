/**
 * The performance levers of issue 7, measured one by one at the target configuration (8 candidates, the model's
 * horizon, 8 Euler steps, 4 context frames) against the SDK's defaults:
 *
 * - model-level variants, all loaded at once and measured round-robin (one decision each per round, so drift
 *   of this shared machine hits every variant alike): the context cache off, graph optimisation levels, one
 *   intra-op thread, the model in process instead of a worker thread, guidance ω = 1 (one branch);
 * - context-cache equivalence: sampled latents with and without the cache (max |Δ|) and the chosen candidate
 *   under the planner's scoring, over several seeds;
 * - session-level variants on denoiser_step.onnx alone (raw onnxruntime-node): fresh input tensors per run
 *   versus reused ones, the parallel executor with 2 inter-op threads, and a saved optimised model
 *   (`optimizedModelFilePath`: session creation time and run time).
 *
 * Run: npx tsx bench/levers.ts [modelDir] [--rounds 5]
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';
import { loadWorldModel, type LoadWorldModelOptions } from '../src/worldmodel/onnx-world-model.js';
import type { ImagineRequest } from '../src/worldmodel/world-model.js';
import { actionIdsOf, benchScorer, openModel, timeDecision, type BenchModel, type DecisionSample, type RunMode } from './decision.js';
import { ROOT, SHIPPED_MODEL, benchRequest, median, table } from './util.js';

/** A model-level variant. */
export interface LeverVariant {
  readonly name: string;
  /** Another package folder (default: the bench's model). */
  readonly dir?: string;
  readonly mode: RunMode;
  readonly options: LoadWorldModelOptions;
  readonly guidance?: ImagineRequest['guidance'];
}

export interface LeverRow {
  readonly name: string;
  readonly decisionMs: number;
  /** session.run calls per decision. */
  readonly runs: number;
  readonly imagineMs: number;
  readonly sessionRunMs: number;
  /** Decision time / the baseline's (measured in the same rounds): < 1 is faster. */
  readonly vsBaseline: number;
  readonly samples: number;
}

export interface CacheEquivalence {
  readonly seeds: number;
  readonly maxAbsLatentDiff: number;
  readonly maxAbsFrameDiff: number;
  readonly sameChoice: number;
}

export interface SessionLeverRow {
  readonly name: string;
  readonly runMs: number;
  readonly vsBaseline: number;
  readonly createMs?: number;
}

export interface LeversResult {
  readonly config: { readonly candidates: number; readonly steps: number; readonly context: number; readonly threads: number };
  readonly variants: LeverRow[];
  readonly cacheEquivalence: CacheEquivalence;
  /** The int8 package against the fp32 one, when training/quantize_int8.py could run. */
  readonly int8?: CacheEquivalence;
  readonly session: SessionLeverRow[];
}

export interface LeversOptions {
  readonly rounds?: number;
  readonly threads?: number;
  readonly candidates?: number;
  readonly steps?: number;
  readonly context?: number;
  /** Variant names to leave out. */
  readonly skip?: readonly string[];
  /** Try the int8 variant (needs Debian's python3-onnx; default true). */
  readonly int8?: boolean;
  readonly log?: (line: string) => void;
}

/** The default variant list; the first is the baseline (the SDK's defaults in a worker thread). */
export function defaultVariants(threads: number): LeverVariant[] {
  const base: LoadWorldModelOptions = { threads };
  return [
    { name: 'baseline: worker, cache on, opt all, 2 threads, no spinning', mode: 'worker', options: base },
    { name: 'context cache off', mode: 'worker', options: { ...base, contextCache: false } },
    { name: 'graph optimisation: disabled', mode: 'worker', options: { ...base, graphOptimizationLevel: 'disabled' } },
    { name: 'graph optimisation: basic', mode: 'worker', options: { ...base, graphOptimizationLevel: 'basic' } },
    { name: 'graph optimisation: extended', mode: 'worker', options: { ...base, graphOptimizationLevel: 'extended' } },
    { name: '1 intra-op thread', mode: 'worker', options: { ...base, threads: 1 } },
    { name: 'thread spinning on (onnxruntime default)', mode: 'worker', options: { ...base, threadSpinning: true } },
    { name: 'in process (no worker)', mode: 'in-process', options: base },
    { name: 'guidance ω = 1 (one branch)', mode: 'worker', options: base, guidance: { kind: 'joint', scale: 1 } },
  ];
}

/** Latents, frames and chosen candidate of two packages (or one with the cache on and off), same requests. */
async function compareOutputs(dir: string, other: string | undefined, threads: number, config: { candidates: number; steps: number; context: number }, seeds: number): Promise<CacheEquivalence> {
  const on = await loadWorldModel(dir, { threads });
  const off = other === undefined ? await loadWorldModel(dir, { threads, contextCache: false }) : await loadWorldModel(other, { threads });
  try {
    let maxLat = 0;
    let maxPix = 0;
    let same = 0;
    const scorer = benchScorer();
    for (let s = 1; s <= seeds; s++) {
      const req = benchRequest(on.info, actionIdsOf(on.manifest), { ...config, seed: s });
      const [la, lb] = [await on.sampleLatents(req), await off.sampleLatents(req)];
      la.forEach((r, i) => {
        const o = lb[i]?.latents;
        for (let j = 0; j < r.latents.length; j++) maxLat = Math.max(maxLat, Math.abs((r.latents[j] as number) - (o?.[j] ?? Number.NaN)));
      });
      const [da, db] = [await timeDecision(on, req, scorer), await timeDecision(off, req, scorer)];
      da.rollouts.forEach((r, i) =>
        r.frames.forEach((f, j) => {
          const g = db.rollouts[i]?.frames[j]?.data;
          for (let q = 0; q < f.data.length; q++) maxPix = Math.max(maxPix, Math.abs((f.data[q] as number) - (g?.[q] ?? Number.NaN)));
        }),
      );
      if (da.chosen === db.chosen) same++;
    }
    return { seeds, maxAbsLatentDiff: maxLat, maxAbsFrameDiff: maxPix, sameChoice: same };
  } finally {
    await on.dispose();
    await off.dispose();
  }
}

/** Write an int8 copy of the package with training/quantize_int8.py; undefined (logged) when it cannot run. */
async function quantizeInt8(modelDir: string, tmp: string, log: (l: string) => void): Promise<string | undefined> {
  const python = process.env['V4S_PYTHON'] ?? '/usr/bin/python3';
  const out = path.join(tmp, 'int8');
  try {
    execFileSync(python, [path.join(ROOT, 'training', 'quantize_int8.py'), '--model', modelDir, '--out', out], { stdio: 'pipe' });
    return out;
  } catch (e) {
    log(`int8 variant skipped: ${(e as Error).message.split('\n')[0] ?? ''}`);
    return undefined;
  }
}

/** Raw-session levers on denoiser_step.onnx at batch 2·candidates. */
async function sessionLevers(dir: string, threads: number, candidates: number, context: number, runs: number, manifestShape: (n: string) => readonly (number | string)[]): Promise<SessionLeverRow[]> {
  const file = path.join(dir, 'denoiser_step.onnx');
  const B = 2 * candidates;
  const dims = (name: string): number[] =>
    manifestShape(name).map((d) => (typeof d === 'number' ? d : d === 'B' ? B : d === 'H' ? 4 : d === 'KT' ? context * 16 : d === 'K' ? context : 1));
  const fill = (n: number, f: (i: number) => number): Float32Array => Float32Array.from({ length: n }, (_, i) => f(i));
  const make = (): Record<string, ort.Tensor> => {
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of ['x_t', 't', 'context_k', 'context_v', 'context_base', 'target_positions', 'actions', 'goal', 'instruction_mask']) {
      const d = dims(name);
      const n = d.reduce((a, b) => a * b, 1);
      if (name === 'actions' || name === 'goal') feeds[name] = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(1 + (i % 3))), d);
      else if (name === 't') feeds[name] = new ort.Tensor('float32', fill(n, () => 0.5), d);
      else if (name === 'instruction_mask') feeds[name] = new ort.Tensor('float32', fill(n, (i) => (i < n / 2 ? 0 : 1)), d);
      else if (name === 'target_positions') feeds[name] = new ort.Tensor('float32', fill(n, (i) => 1 + (i % 4)), d);
      else feeds[name] = new ort.Tensor('float32', fill(n, (i) => Math.sin(i * 0.37) * 0.8), d);
    }
    return feeds;
  };
  const base: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
    extra: { session: { intra_op: { allow_spinning: '0' } } }, // as the SDK's sessions
  };
  const reused = make();
  const timeRuns = async (s: ort.InferenceSession, fresh: boolean, count: number): Promise<number> => {
    if (count === 0) for (let i = 0; i < 2; i++) await s.run(reused, ['pred']);
    const t: number[] = [];
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      const feeds = fresh ? copyFeeds(reused) : reused;
      await s.run(feeds, ['pred']);
      t.push(performance.now() - t0);
    }
    return median(t);
  };
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'v4s-levers-'));
  try {
    let t0 = performance.now();
    const sBase = await ort.InferenceSession.create(file, base);
    const createBase = performance.now() - t0;
    const sPar = await ort.InferenceSession.create(file, { ...base, executionMode: 'parallel', interOpNumThreads: 2 });
    const optimized = path.join(tmp, 'denoiser_step.opt.onnx');
    const sSave = await ort.InferenceSession.create(file, { ...base, optimizedModelFilePath: optimized, logSeverityLevel: 3 });
    await sSave.release();
    t0 = performance.now();
    const sOpt = await ort.InferenceSession.create(optimized, { ...base, graphOptimizationLevel: 'disabled' });
    const createOpt = performance.now() - t0;
    const rows: { name: string; s: ort.InferenceSession; fresh: boolean; createMs?: number }[] = [
      { name: 'denoiser_step: reused input tensors (SDK)', s: sBase, fresh: false, createMs: createBase },
      { name: 'fresh input tensors every run', s: sBase, fresh: true },
      { name: 'parallel executor, 2 inter-op threads', s: sPar, fresh: false },
      { name: 'saved optimised model (optimizedModelFilePath)', s: sOpt, fresh: false, createMs: createOpt },
    ];
    // one run of each per round, order alternating, `runs` rounds; warm-up first
    for (const r of rows) await timeRuns(r.s, r.fresh, 0);
    const acc = rows.map(() => [] as number[]);
    for (let round = 0; round < runs; round++) {
      const order = round % 2 === 0 ? [...rows.keys()] : [...rows.keys()].reverse();
      for (const i of order) acc[i]?.push(await timeRuns((rows[i] as (typeof rows)[number]).s, (rows[i] as (typeof rows)[number]).fresh, 1));
    }
    const ms = acc.map((a) => median(a));
    for (const s of [sBase, sPar, sOpt]) await s.release();
    return rows.map((r, i) => ({ name: r.name, runMs: ms[i] as number, vsBaseline: (ms[i] as number) / (ms[0] as number), ...(r.createMs !== undefined ? { createMs: r.createMs } : {}) }));
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function copyFeeds(feeds: Record<string, ort.Tensor>): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) {
    out[k] = t.type === 'int64' ? new ort.Tensor('int64', (t.data as BigInt64Array).slice(), t.dims) : new ort.Tensor('float32', (t.data as Float32Array).slice(), t.dims);
  }
  return out;
}

/** Measure every lever. */
export async function benchLevers(modelDir: string = SHIPPED_MODEL, options: LeversOptions = {}): Promise<LeversResult> {
  const log = options.log ?? ((l: string) => console.log(l));
  const threads = options.threads ?? 2;
  const config = { candidates: options.candidates ?? 8, steps: options.steps ?? 8, context: options.context ?? 4 };
  const rounds = options.rounds ?? 4;
  const variants = defaultVariants(threads).filter((v, i) => i === 0 || !(options.skip ?? []).includes(v.name));
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'v4s-int8-'));
  const int8Dir = options.int8 === false ? undefined : await quantizeInt8(modelDir, tmp, log);
  if (int8Dir !== undefined) variants.push({ name: 'int8 weights (DynamicQuantizeMatMul)', dir: int8Dir, mode: 'worker', options: { threads } });
  const int8 = int8Dir === undefined ? undefined : await compareOutputs(modelDir, int8Dir, threads, config, 3);
  const models: BenchModel[] = [];
  const samples: DecisionSample[][] = variants.map(() => []);
  try {
    for (const v of variants) models.push(await openModel(v.dir ?? modelDir, v.mode, v.options));
    const scorer = benchScorer();
    const requests = variants.map((v, i) => benchRequest((models[i] as BenchModel).info, actionIdsOf((models[i] as BenchModel).manifest), { ...config, ...(v.guidance ? { guidance: v.guidance } : {}) }));
    for (const [i, m] of models.entries()) await timeDecision(m, requests[i] as ImagineRequest, scorer); // warm-up
    for (let r = 0; r < rounds; r++) {
      // alternate the order every round, so no variant always follows the same neighbour
      const order = r % 2 === 0 ? [...models.keys()] : [...models.keys()].reverse();
      for (const i of order) samples[i]?.push(await timeDecision(models[i] as BenchModel, requests[i] as ImagineRequest, scorer));
    }
  } finally {
    for (const m of models) await m.dispose();
    await rm(tmp, { recursive: true, force: true });
  }
  const baseMs = median((samples[0] ?? []).map((s) => s.decisionMs));
  const rows: LeverRow[] = variants.map((v, i) => {
    const s = samples[i] ?? [];
    const decisionMs = median(s.map((x) => x.decisionMs));
    return { name: v.name, decisionMs, runs: median(s.map((x) => x.sessionRuns)), imagineMs: median(s.map((x) => x.imagineMs)), sessionRunMs: median(s.map((x) => x.sessionRunMs)), vsBaseline: decisionMs / baseMs, samples: s.length };
  });
  log(`levers at ${config.candidates} candidates, ${config.steps} steps, ${config.context} context frames (median of ${rounds} rounds, round-robin)`);
  table(['variant', 'decision ms', 'imagine ms', 'in run ms', 'runs', 'time vs baseline'], rows.map((r) => [r.name, r.decisionMs, r.imagineMs, r.sessionRunMs, r.runs, r.vsBaseline]), log);
  if (int8 !== undefined) log(`int8: max |Δ latent| vs fp32 ${int8.maxAbsLatentDiff.toExponential(2)} (same seed and request), same chosen candidate ${int8.sameChoice}/${int8.seeds}`);

  const eq = await compareOutputs(modelDir, undefined, threads, config, 5);
  log(`context cache on vs off over ${eq.seeds} seeds: max |Δ latent| ${eq.maxAbsLatentDiff.toExponential(2)}, max |Δ pixel| ${eq.maxAbsFrameDiff}, same chosen candidate ${eq.sameChoice}/${eq.seeds}`);

  const probe = await openModel(modelDir, 'in-process', { threads });
  const shapes = probe.manifest.tensors.denoiserStep?.inputs;
  await probe.dispose();
  let session: SessionLeverRow[] = [];
  if (shapes !== undefined) {
    session = await sessionLevers(modelDir, threads, config.candidates, config.context, 24, (n) => shapes[n]?.shape ?? []);
    table(
      ['session variant (denoiser_step.onnx alone)', 'run ms', 'vs reused', 'create ms'],
      session.map((r) => [r.name, r.runMs, r.vsBaseline, r.createMs ?? '']),
      log,
    );
  }
  return { config: { ...config, threads }, variants: rows, cacheEquivalence: eq, ...(int8 ? { int8 } : {}), session };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const dir = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--rounds');
  const i = args.indexOf('--rounds');
  benchLevers(dir === undefined ? SHIPPED_MODEL : path.resolve(dir), i >= 0 ? { rounds: Number(args[i + 1]) } : {}).catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
