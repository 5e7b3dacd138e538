/**
 * World-model runtime overhead: `imagine` with the model's default sampler and guidance for 1, 4, 8 and 16
 * candidates, splitting each call's wall time into time inside `session.run` and time outside it (tensor
 * packing, guidance arithmetic, RNG, sampler updates, frame conversion), and counting allocations per step.
 * Target: outside ≤ 5 % of the total at 8 candidates.
 * Run: npx tsx bench/imagine.ts [modelDir]   (default: the bench fixture, test/fixtures/models/bench;
 *      the shipped model: npx tsx bench/imagine.ts models/v4s-builtin-small)
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadWorldModel } from '../src/worldmodel/onnx-world-model.js';
import type { Frame, Instruction } from '../src/types.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const BENCH_FIXTURE = path.join(HERE, '..', 'test', 'fixtures', 'models', 'bench');

export interface ImagineBenchRow {
  readonly model: string;
  readonly candidates: number;
  /** Guidance branches × candidates: the batch of each denoising `session.run`. */
  readonly batch: number;
  readonly steps: number;
  /** Median wall time of one `imagine` call. */
  readonly totalMs: number;
  /** Median time inside `session.run` (all sessions: encoder, context, denoiser, decoder) per call. */
  readonly runMs: number;
  /** Median time outside `session.run` per call. */
  readonly outsideMs: number;
  /** outside / total over all measured calls, percent. */
  readonly outsidePct: number;
  /** `session.run` calls per `imagine` call. */
  readonly runsPerCall: number;
  /** Input tensors + typed arrays this runtime allocated per denoising step in steady state (target 0). */
  readonly allocationsPerStep: number;
  /** Input tensors + typed arrays allocated by the first call of this batch shape (the reusable workspace). */
  readonly firstCallAllocations: number;
  /** Output tensors onnxruntime-node allocated per denoising step (its own; not avoidable from Node). */
  readonly ortOutputsPerStep: number;
}

export interface ImagineBenchOptions {
  readonly counts?: readonly number[];
  readonly repeats?: number;
  readonly threads?: number;
  readonly log?: (line: string) => void;
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Measure the runtime's overhead on a model package (default: the bench fixture). */
export async function benchImagine(modelDir: string = BENCH_FIXTURE, options: ImagineBenchOptions = {}): Promise<ImagineBenchRow[]> {
  const counts = options.counts ?? [1, 4, 8, 16];
  const repeats = options.repeats ?? 7;
  const log = options.log ?? ((l: string) => console.log(l));
  const wm = await loadWorldModel(modelDir, options.threads !== undefined ? { threads: options.threads } : {});
  try {
    const { width, height } = wm.info.resolution;
    const K = Math.min(4, wm.info.maxContext);
    const frames: Frame[] = Array.from({ length: K }, (_, k) => {
      const data = new Uint8Array(width * height * 3);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + k * 41) % 256;
      return { width, height, data };
    });
    const positions = [0, 5, 9, 12].slice(4 - K);
    const names = Object.keys(wm.info.actions);
    const goal = wm.info.goalCategories[0];
    const H = wm.info.horizon;
    const plan = wm.info.defaultGuidance;
    const branches = plan.kind === 'none' || (plan.kind === 'joint' && plan.scale === 1) ? 1 : plan.kind === 'two-scale' && plan.context !== plan.instruction ? 3 : 2;
    const rows: ImagineBenchRow[] = [];
    for (const n of counts) {
      const candidates: Instruction[] = Array.from({ length: n }, (_, c) => ({
        actions: Array.from({ length: H }, (_, j) => names[(c + j * (c + 1)) % names.length] as string),
        ...(goal !== undefined ? { goalCategory: goal } : {}),
      }));
      const request = { context: { frames, positions }, candidates, seed: 1 };
      wm.resetStats();
      await wm.imagine(request);
      const first = wm.stats();
      await wm.imagine(request); // warm
      const totals: number[] = [];
      const runs: number[] = [];
      let sumTotal = 0;
      let sumRun = 0;
      wm.resetStats();
      let prev = wm.stats();
      for (let r = 0; r < repeats; r++) {
        await wm.imagine(request);
        const s = wm.stats();
        totals.push(s.imagineMs - prev.imagineMs);
        runs.push(s.sessionRunMs - prev.sessionRunMs);
        prev = s;
      }
      const st = wm.stats();
      sumTotal = st.imagineMs;
      sumRun = st.sessionRunMs;
      const steps = st.denoiseSteps / repeats;
      const row: ImagineBenchRow = {
        model: wm.info.name,
        candidates: n,
        batch: n * branches,
        steps,
        totalMs: median(totals),
        runMs: median(runs),
        outsideMs: median(totals.map((t, i) => t - (runs[i] as number))),
        outsidePct: (100 * (sumTotal - sumRun)) / sumTotal,
        runsPerCall: st.sessionRuns / repeats,
        allocationsPerStep: (st.tensorAllocations + st.bufferAllocations) / st.denoiseSteps,
        firstCallAllocations: first.tensorAllocations + first.bufferAllocations,
        ortOutputsPerStep: st.outputTensors / st.denoiseSteps,
      };
      rows.push(row);
    }
    log(`imagine on ${wm.info.name} (${modelDir}), default sampler ${JSON.stringify(wm.info.defaultSampler)}, guidance ${JSON.stringify(plan)}, ${K} context frames, horizon ${H}, device ${wm.device}, median of ${repeats}`);
    log('cands  batch  runs/call  total ms  in run ms  outside ms  outside %  allocs/step  first-call allocs  ORT outputs/step');
    for (const r of rows) {
      log(
        `${String(r.candidates).padStart(5)}  ${String(r.batch).padStart(5)}  ${r.runsPerCall.toFixed(0).padStart(9)}  ${r.totalMs.toFixed(2).padStart(8)}  ${r.runMs.toFixed(2).padStart(9)}  ${r.outsideMs.toFixed(3).padStart(10)}  ${r.outsidePct.toFixed(2).padStart(9)}  ${r.allocationsPerStep.toFixed(0).padStart(11)}  ${String(r.firstCallAllocations).padStart(17)}  ${r.ortOutputsPerStep.toFixed(1).padStart(16)}`,
      );
    }
    return rows;
  } finally {
    await wm.dispose();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dir = process.argv[2];
  benchImagine(dir === undefined ? BENCH_FIXTURE : path.resolve(dir)).catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
