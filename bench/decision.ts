/**
 * Bench section 3: one planning decision with a model package: `imagine()` on N candidates (the model's horizon,
 * K context frames) followed by the planner's scoring of the rollouts (object-goal grounding, collision risk,
 * novelty: the WorldModelPlanner's ObjectNav scorers), for each candidate count × sampler step count.
 *
 * Per configuration (median of `repeats` decisions after one warm-up): the decision latency, its breakdown into
 * encode (frames → latents + the context cache), denoise, decode (latents → frames), scoring, and the SDK's
 * overhead = imagine wall time − time inside onnxruntime's `session.run` (every session: encoder, context,
 * denoiser, decoder); and the process's peak resident memory while the configuration ran.
 *
 * Run: npx tsx bench/decision.ts [modelDir] [--in-process] [--quick]
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { composeScorers, collisionRiskScorer, noveltyScorer, objectGoalScorer, type Scorer, type ScoringContext } from '../src/planner/scorers.js';
import type { ModelManifest } from '../src/worldmodel/manifest.js';
import { loadWorldModel, type LoadWorldModelOptions, type WorldModelRuntimeStats } from '../src/worldmodel/onnx-world-model.js';
import { loadWorkerWorldModel } from '../src/worldmodel/worker-world-model.js';
import type { ImagineRequest, Rollout, WorldModel } from '../src/worldmodel/world-model.js';
import { RssSampler, SHIPPED_MODEL, benchRequest, median, table } from './util.js';

/** A loaded model with the counters the bench reads (OnnxWorldModel or WorkerWorldModel). */
export interface BenchModel extends WorldModel {
  readonly manifest: ModelManifest;
  readonly contextCache: boolean;
  stats(): WorldModelRuntimeStats;
  resetStats(): void;
}

/** Where the model runs: `worker` (loadWorkerWorldModel) or `in-process` (loadWorldModel). */
export type RunMode = 'worker' | 'in-process';

export async function openModel(dir: string, mode: RunMode, options: LoadWorldModelOptions = {}): Promise<BenchModel> {
  return mode === 'worker' ? loadWorkerWorldModel(dir, options) : loadWorldModel(dir, options);
}

export function actionIdsOf(m: ModelManifest): Record<string, number> {
  return Object.fromEntries(Object.entries(m.instruction.actions).map(([k, v]) => [k, v.id]));
}

/** The planner's ObjectNav scoring of a decision's rollouts (goal grounding + 0.5 collision risk + 0.5 novelty). */
export function benchScorer(): Scorer {
  return composeScorers([
    { scorer: objectGoalScorer(), weight: 1 },
    { scorer: collisionRiskScorer(), weight: 0.5 },
    { scorer: noveltyScorer(), weight: 0.5 },
  ]);
}

/** Where a decision's time went (ms): the whole decision, imagine() and its stages, scoring, session.run. */
export interface DecisionTimings {
  readonly decisionMs: number;
  readonly imagineMs: number;
  readonly encodeMs: number;
  readonly denoiseMs: number;
  readonly decodeMs: number;
  readonly scoringMs: number;
  readonly sessionRunMs: number;
}

/** One measured decision. */
export interface DecisionSample extends DecisionTimings {
  readonly sessionRuns: number;
  readonly rollouts: Rollout[];
  readonly chosen: number;
}

/** Run one decision (imagine + score) and split its time. */
export async function timeDecision(wm: BenchModel, request: ImagineRequest, scorer: Scorer): Promise<DecisionSample> {
  const before = wm.stats();
  const t0 = performance.now();
  const rollouts = await wm.imagine(request);
  const t1 = performance.now();
  const frames = request.context.frames;
  const current = frames[frames.length - 1];
  if (current === undefined) throw new Error('empty context');
  const goalCategory = request.candidates[0]?.goalCategory;
  const ctx: ScoringContext = { info: wm.info, current, context: frames, ...(goalCategory !== undefined ? { goal: { task: 'objectnav', category: goalCategory } } : {}) };
  const scores = await scorer.score(rollouts, ctx);
  const t2 = performance.now();
  const after = wm.stats();
  const timings = rollouts[0]?.timings;
  let chosen = 0;
  scores.forEach((s, i) => {
    if (s.score > (scores[chosen]?.score ?? -Infinity)) chosen = i;
  });
  return {
    decisionMs: t2 - t0,
    imagineMs: t1 - t0,
    encodeMs: timings?.encodeMs ?? 0,
    denoiseMs: timings?.denoiseMs ?? 0,
    decodeMs: timings?.decodeMs ?? 0,
    scoringMs: t2 - t1,
    sessionRunMs: after.sessionRunMs - before.sessionRunMs,
    sessionRuns: after.sessionRuns - before.sessionRuns,
    rollouts,
    chosen,
  };
}

/** One row of section 3. */
export interface DecisionRow extends DecisionTimings {
  readonly mode: RunMode;
  readonly candidates: number;
  readonly steps: number;
  readonly context: number;
  /** Rows of each denoising `session.run` (candidates × guidance branches). */
  readonly batch: number;
  /** imagine wall time − session.run time (main thread + worker messaging + JS work in the worker). */
  readonly overheadMs: number;
  /** overheadMs / imagineMs, percent (sums over the repeats, not medians). */
  readonly overheadPct: number;
  readonly runsPerDecision: number;
  readonly peakRssMiB: number;
  readonly repeats: number;
}

export interface DecisionBenchOptions {
  readonly mode?: RunMode;
  readonly candidates?: readonly number[];
  readonly steps?: readonly number[];
  readonly context?: number;
  readonly repeats?: number;
  readonly threads?: number;
  readonly guidance?: ImagineRequest['guidance'];
  readonly log?: (line: string) => void;
}

/** Measure one configuration on an open model. */
export async function measureDecision(
  wm: BenchModel,
  mode: RunMode,
  config: { readonly candidates: number; readonly steps: number; readonly context: number; readonly repeats: number; readonly guidance?: ImagineRequest['guidance'] },
  scorer: Scorer = benchScorer(),
): Promise<DecisionRow> {
  const request = benchRequest(wm.info, actionIdsOf(wm.manifest), config);
  const rss = new RssSampler().start();
  await timeDecision(wm, request, scorer); // warm-up (workspace allocation, ORT's first-run costs)
  const samples: DecisionSample[] = [];
  for (let r = 0; r < config.repeats; r++) samples.push(await timeDecision(wm, request, scorer));
  const peakRssMiB = rss.stop();
  return summarizeDecisions(wm, mode, config, samples, peakRssMiB);
}

/** Guidance branches of a request's plan (1 for ω = 1 or none, 3 for two-scale with distinct scales). */
export function branchesOf(guidance: NonNullable<ImagineRequest['guidance']>): number {
  if (guidance.kind === 'none' || (guidance.kind === 'joint' && guidance.scale === 1)) return 1;
  if (guidance.kind === 'two-scale' && guidance.context === guidance.instruction) return guidance.context === 1 ? 1 : 2;
  return guidance.kind === 'two-scale' ? 3 : 2;
}

/** A row from measured decisions of one configuration (medians; overhead % from sums). */
export function summarizeDecisions(
  wm: BenchModel,
  mode: RunMode,
  config: { readonly candidates: number; readonly steps: number; readonly context: number; readonly guidance?: ImagineRequest['guidance'] },
  samples: readonly DecisionSample[],
  peakRssMiB: number,
): DecisionRow {
  const sum = (f: (s: DecisionSample) => number): number => samples.reduce((a, s) => a + f(s), 0);
  return {
    mode,
    candidates: config.candidates,
    steps: config.steps,
    context: config.context,
    batch: config.candidates * branchesOf(config.guidance ?? wm.info.defaultGuidance),
    decisionMs: median(samples.map((s) => s.decisionMs)),
    imagineMs: median(samples.map((s) => s.imagineMs)),
    encodeMs: median(samples.map((s) => s.encodeMs)),
    denoiseMs: median(samples.map((s) => s.denoiseMs)),
    decodeMs: median(samples.map((s) => s.decodeMs)),
    scoringMs: median(samples.map((s) => s.scoringMs)),
    sessionRunMs: median(samples.map((s) => s.sessionRunMs)),
    overheadMs: median(samples.map((s) => s.imagineMs - s.sessionRunMs)),
    overheadPct: (100 * sum((s) => s.imagineMs - s.sessionRunMs)) / sum((s) => s.imagineMs),
    runsPerDecision: median(samples.map((s) => s.sessionRuns)),
    peakRssMiB,
    repeats: samples.length,
  };
}

/** Section 3: every candidate count × step count. */
export async function benchDecisions(modelDir: string = SHIPPED_MODEL, options: DecisionBenchOptions = {}): Promise<DecisionRow[]> {
  const mode = options.mode ?? 'worker';
  const log = options.log ?? ((l: string) => console.log(l));
  const wm = await openModel(modelDir, mode, options.threads !== undefined ? { threads: options.threads } : {});
  const rows: DecisionRow[] = [];
  try {
    const scorer = benchScorer();
    for (const candidates of options.candidates ?? [1, 4, 8, 16]) {
      for (const steps of options.steps ?? [4, 8, 16]) {
        rows.push(
          await measureDecision(
            wm,
            mode,
            { candidates, steps, context: options.context ?? 4, repeats: options.repeats ?? 3, ...(options.guidance !== undefined ? { guidance: options.guidance } : {}) },
            scorer,
          ),
        );
      }
    }
  } finally {
    await wm.dispose();
  }
  printDecisionRows(rows, log);
  return rows;
}

export function printDecisionRows(rows: readonly DecisionRow[], log: (line: string) => void = console.log): void {
  table(
    ['mode', 'cands', 'steps', 'K', 'batch', 'decision ms', 'encode', 'denoise', 'decode', 'scoring', 'in run', 'overhead ms', 'overhead %', 'runs', 'peak RSS MiB'],
    rows.map((r) => [
      r.mode,
      r.candidates,
      r.steps,
      r.context,
      r.batch,
      r.decisionMs,
      r.encodeMs,
      r.denoiseMs,
      r.decodeMs,
      r.scoringMs,
      r.sessionRunMs,
      r.overheadMs,
      r.overheadPct,
      r.runsPerDecision,
      r.peakRssMiB,
    ]),
    log,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const dir = args.find((a) => !a.startsWith('--'));
  const quick = args.includes('--quick');
  benchDecisions(dir === undefined ? SHIPPED_MODEL : path.resolve(dir), {
    mode: args.includes('--in-process') ? 'in-process' : 'worker',
    ...(quick ? { candidates: [1, 8], steps: [4, 8], repeats: 2 } : {}),
  }).catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
