/**
 * Bench section 7: how decision time grows with the number of context frames (1 … the model's maxContext) and
 * with the number of candidates (1 … 32), at the target's 8 Euler steps, next to the analytic FLOPs
 * (bench/flops.ts), so that measured growth can be read against the work's growth.
 * Run: npx tsx bench/growth.ts [modelDir] [--quick]
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { archFromManifest, decisionFlops } from './flops.js';
import { benchScorer, branchesOf, measureDecision, openModel, type DecisionRow, type RunMode } from './decision.js';
import { SHIPPED_MODEL, table } from './util.js';

export interface GrowthRow {
  readonly axis: 'context' | 'candidates';
  readonly context: number;
  readonly candidates: number;
  readonly decisionMs: number;
  readonly imagineMs: number;
  /** Decision time relative to the axis's first row. */
  readonly relTime: number;
  /** Analytic GFLOP of the decision (NaN for an unknown architecture). */
  readonly gflop: number;
  readonly relFlops: number;
}

export interface GrowthOptions {
  readonly mode?: RunMode;
  readonly contexts?: readonly number[];
  readonly candidates?: readonly number[];
  readonly steps?: number;
  readonly repeats?: number;
  readonly threads?: number;
  readonly log?: (line: string) => void;
}

export async function benchGrowth(modelDir: string = SHIPPED_MODEL, options: GrowthOptions = {}): Promise<GrowthRow[]> {
  const mode = options.mode ?? 'worker';
  const log = options.log ?? ((l: string) => console.log(l));
  const wm = await openModel(modelDir, mode, options.threads !== undefined ? { threads: options.threads } : {});
  const steps = options.steps ?? 8;
  const repeats = options.repeats ?? 2;
  const rows: GrowthRow[] = [];
  try {
    const arch = archFromManifest(wm.manifest);
    const branches = branchesOf(wm.info.defaultGuidance);
    const scorer = benchScorer();
    const axis = async (name: GrowthRow['axis'], configs: readonly { context: number; candidates: number }[]): Promise<void> => {
      const measured: DecisionRow[] = [];
      for (const c of configs) measured.push(await measureDecision(wm, mode, { ...c, steps, repeats }, scorer));
      const flops = configs.map((c) =>
        arch ? decisionFlops(arch, { candidates: c.candidates, branches, steps, context: c.context, horizon: wm.info.horizon, contextCache: wm.contextCache }).total / 1e9 : Number.NaN,
      );
      measured.forEach((m, i) =>
        rows.push({
          axis: name,
          context: m.context,
          candidates: m.candidates,
          decisionMs: m.decisionMs,
          imagineMs: m.imagineMs,
          relTime: m.decisionMs / (measured[0]?.decisionMs ?? 1),
          gflop: flops[i] ?? Number.NaN,
          relFlops: (flops[i] ?? Number.NaN) / (flops[0] ?? Number.NaN),
        }),
      );
    };
    const maxK = wm.info.maxContext;
    const contexts = (options.contexts ?? Array.from({ length: maxK }, (_, i) => i + 1)).filter((k) => k <= maxK);
    await axis('context', contexts.map((context) => ({ context, candidates: 8 })));
    await axis('candidates', (options.candidates ?? [1, 2, 4, 8, 16, 32]).map((candidates) => ({ context: Math.min(4, maxK), candidates })));
  } finally {
    await wm.dispose();
  }
  log(`growth of decision time (${steps} steps, model in ${mode === 'worker' ? 'a worker thread' : 'process'}); rel = relative to the first row of each axis`);
  table(
    ['axis', 'K', 'cands', 'decision ms', 'rel time', 'GFLOP', 'rel FLOPs'],
    rows.map((r) => [r.axis, r.context, r.candidates, r.decisionMs, r.relTime, r.gflop, r.relFlops]),
    log,
  );
  return rows;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const dir = args.find((a) => !a.startsWith('--'));
  const quick = args.includes('--quick');
  benchGrowth(dir === undefined ? SHIPPED_MODEL : path.resolve(dir), quick ? { contexts: [1, 6], candidates: [1, 16], repeats: 1 } : {}).catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
