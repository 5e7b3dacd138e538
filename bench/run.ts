/**
 * `npm run bench`: every section of issue 7 in one run, so that ratios are measured under the same load.
 *
 *  1. built-in simulator frames/s (64×64, 256×256)
 *  2. protocol v4s.sim.v1 over loopback: steps/s, round trip p50/p95, raw and PNG, both sizes
 *  3. a planning decision with the model package: 1/4/8/16 candidates × 2/4/8/16 steps, breakdown, peak RSS
 *  4. the PyTorch eager reference (training/bench_torch.py): same decisions, interleaved with the SDK's, ratio
 *     per configuration
 *  5. FLOPs per decision / measured time against this machine's measured dense-matmul peak
 *  6. event-loop lag in the agent while plans are computed (model in process vs in a worker thread)
 *  7. growth of decision time with context frames and candidates
 *  8. the levers (bench/levers.ts), and the targets at 8 candidates, the model's horizon, 8 steps
 *
 * Writes bench/results.json (after every section, so a failure keeps what was measured) and prints tables.
 * Usage: npm run bench [-- --quick] [--model <dir>] [--threads 2] [--out bench/results.json]
 *                      [--only sim,protocol,decision,torch,flops,event-loop,growth,levers]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { benchProtocol, type ProtocolBenchRow } from './protocol.js';
import { benchSimulator, type SimBenchRow } from './sim.js';
import { actionIdsOf, benchScorer, branchesOf, openModel, printDecisionRows, summarizeDecisions, timeDecision, type DecisionRow, type DecisionSample } from './decision.js';
import { benchEventLoop, type EventLoopRow } from './event-loop.js';
import { archFromManifest, decisionFlops } from './flops.js';
import { benchGrowth, type GrowthRow } from './growth.js';
import { benchLevers, type LeversResult } from './levers.js';
import { benchMatmulPeak, type MatmulPeak } from './matmul-peak.js';
import { TorchSession, torchRow, type TorchInfo, type TorchRow, type TorchSample, type TorchVariant } from './torch-reference.js';
import { ROOT, RssSampler, SHIPPED_MODEL, benchRequest, table } from './util.js';
import { loadManifest } from '../src/worldmodel/manifest.js';

const SECTIONS = ['sim', 'protocol', 'decision', 'torch', 'flops', 'event-loop', 'growth', 'levers'] as const;
type Section = (typeof SECTIONS)[number];

interface Args {
  readonly quick: boolean;
  readonly model: string;
  readonly threads: number;
  readonly out: string;
  readonly only: ReadonlySet<Section>;
}

function parseArgs(argv: readonly string[]): Args {
  const get = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const only = get('--only');
  const sections = only === undefined ? new Set<Section>(SECTIONS) : new Set(only.split(',').filter((s): s is Section => (SECTIONS as readonly string[]).includes(s)));
  return {
    quick: argv.includes('--quick'),
    model: path.resolve(get('--model') ?? SHIPPED_MODEL),
    threads: Number(get('--threads') ?? 2),
    out: path.resolve(get('--out') ?? path.join(ROOT, 'bench', 'results.json')),
    only: sections,
  };
}

/** Targets of issue 7 at 8 candidates, the model's horizon and 8 steps. */
export interface TargetCheck {
  readonly name: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | null;
}

interface Results {
  meta: Record<string, unknown>;
  simulator?: SimBenchRow[];
  protocol?: ProtocolBenchRow[];
  decision?: DecisionRow[];
  torch?: TorchResults;
  flops?: { matmul: MatmulPeak; rows: FlopsRow[]; torchProfilerCrossCheck?: Record<string, number> };
  eventLoop?: EventLoopRow[];
  growth?: GrowthRow[];
  levers?: LeversResult;
  targets?: TargetCheck[];
}

interface TorchResults {
  readonly available: boolean;
  readonly reason?: string;
  readonly info?: TorchInfo;
  readonly rows: TorchRow[];
  readonly ratios?: RatioRow[];
  /** torch.profiler FLOPs of one decision at 8 candidates, 8 steps. */
  readonly flops?: { readonly full: number; readonly cached: number };
  readonly matmul?: readonly { readonly n: number; readonly gflops: number }[];
}

interface RatioRow {
  readonly candidates: number;
  readonly steps: number;
  readonly sdkImagineMs: number;
  readonly sdkDecisionMs: number;
  readonly torchFullMs: number;
  readonly torchCachedMs: number;
  /** torch full / SDK imagine. */
  readonly speedupVsFull: number;
  /** torch cached / SDK imagine (the stronger reference). */
  readonly speedupVsCached: number;
}

interface FlopsRow {
  readonly candidates: number;
  readonly steps: number;
  readonly gflop: number;
  readonly imagineMs: number;
  readonly achievedGflops: number;
  readonly pctOfOrtPeak: number;
  readonly pctOfTorchPeak: number;
}

function meta(args: Args): Record<string, unknown> {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    /* not a git checkout */
  }
  const ortVersion = (JSON.parse(readFileSync(path.join(ROOT, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')) as { version: string }).version;
  return {
    startedAt: new Date().toISOString(),
    quick: args.quick,
    model: path.relative(ROOT, args.model) || args.model,
    threads: args.threads,
    node: process.version,
    onnxruntimeNode: ortVersion,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    loadAverageAtStart: os.loadavg(),
    commit,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (l: string): void => console.log(l);
  const q = args.quick;
  const results: Results = { meta: meta(args) };
  const save = async (): Promise<void> => {
    await mkdir(path.dirname(args.out), { recursive: true });
    const tmp = `${args.out}.tmp`;
    await writeFile(tmp, `${JSON.stringify(results, null, 1)}\n`);
    await rename(tmp, args.out);
  };
  const t0 = performance.now();
  const heading = (s: string): void => log(`\n== ${s} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  const hasModel = existsSync(path.join(args.model, 'manifest.json'));
  if (!hasModel) log(`no model package at ${args.model}: sections 3-8 are skipped (pass --model <dir>)`);
  const manifest = hasModel ? await loadManifest(args.model) : undefined;
  if (manifest) results.meta['modelName'] = manifest.name;
  if (manifest) results.meta['modelProvenance'] = manifest.provenance;

  // 4, 8, 16 steps as issue 7 asks, and 2: the shipped model's default (best quality in `v4s eval-model`)
  const grid = { candidates: q ? [1, 8] : [1, 4, 8, 16], steps: q ? [2, 8] : [2, 4, 8, 16], repeats: q ? 2 : 3 };

  if (args.only.has('sim')) {
    heading('1. built-in simulator');
    results.simulator = benchSimulator([64, 256], q ? 0.5 : 1.5);
    table(['size', 'render frames/s', 'step frames/s'], results.simulator.map((r) => [`${r.size}×${r.size}`, r.renderFps, r.stepFps]), log);
    await save();
  }
  if (args.only.has('protocol')) {
    heading('2. protocol over loopback');
    results.protocol = await benchProtocol({ durationMs: q ? 500 : 2000, print: false });
    table(
      ['size', 'encoding', 'steps/s', 'p50 ms', 'p95 ms', 'bytes/obs', 'sim-only step ms'],
      results.protocol.map((r) => [`${r.size}×${r.size}`, r.encoding, r.stepsPerSecond, r.p50Ms, r.p95Ms, r.bytesPerObservation, r.simStepMs]),
      log,
    );
    await save();
  }
  if (!manifest) {
    await save();
    return;
  }
  if (args.only.has('decision')) {
    heading(`3-4. a planning decision (imagine + scoring; model in a worker thread)${args.only.has('torch') ? ', interleaved with the PyTorch eager reference' : ''}`);
    const torch = args.only.has('torch') ? await TorchSession.start(args.model, { threads: args.threads }) : { reason: 'not asked for (--only)' };
    const wm = await openModel(args.model, 'worker', { threads: args.threads });
    const scorer = benchScorer();
    const decision: DecisionRow[] = [];
    const torchRows: TorchRow[] = [];
    try {
      if (torch instanceof TorchSession) {
        log(`torch ${torch.info.torch}, ${torch.info.threads} threads (inter-op ${torch.info.interopThreads}), OMP_WAIT_POLICY=${torch.info.ompWaitPolicy ?? 'unset'}, weights: ${torch.info.weights} (max |torch − parity.json| ${torch.info.parityMaxAbsError ?? 'n/a'})`);
      } else log(`PyTorch reference skipped: ${torch.reason}`);
      for (const candidates of grid.candidates) {
        for (const steps of grid.steps) {
          const config = { candidates, steps, context: 4 };
          const request = benchRequest(wm.info, actionIdsOf(wm.manifest), config);
          const rss = new RssSampler().start();
          await timeDecision(wm, request, scorer); // warm-up
          const sdk: DecisionSample[] = [];
          const ref: Record<TorchVariant, TorchSample[]> = { full: [], cached: [] };
          let batch = 0;
          if (torch instanceof TorchSession) for (const v of ['full', 'cached'] as const) await torch.decision(candidates, steps, v, 0, true);
          for (let r = 0; r < grid.repeats; r++) {
            sdk.push(await timeDecision(wm, request, scorer));
            if (torch instanceof TorchSession) {
              for (const v of ['full', 'cached'] as const) {
                const got = await torch.decision(candidates, steps, v, 1);
                batch = got.batch;
                ref[v].push(...got.samples);
              }
            }
          }
          decision.push(summarizeDecisions(wm, 'worker', config, sdk, rss.stop()));
          if (torch instanceof TorchSession) for (const v of ['full', 'cached'] as const) torchRows.push(torchRow(candidates, steps, v, batch, ref[v]));
        }
      }
      printDecisionRows(decision, log);
      results.decision = decision;
      if (torch instanceof TorchSession) {
        const ratios: RatioRow[] = [];
        for (const d of decision) {
          const full = torchRows.find((r) => r.candidates === d.candidates && r.steps === d.steps && r.variant === 'full');
          const cached = torchRows.find((r) => r.candidates === d.candidates && r.steps === d.steps && r.variant === 'cached');
          if (!full || !cached) continue;
          ratios.push({
            candidates: d.candidates,
            steps: d.steps,
            sdkImagineMs: d.imagineMs,
            sdkDecisionMs: d.decisionMs,
            torchFullMs: full.totalMs,
            torchCachedMs: cached.totalMs,
            speedupVsFull: full.totalMs / d.imagineMs,
            speedupVsCached: cached.totalMs / d.imagineMs,
          });
        }
        log('');
        log('PyTorch eager reference, same decisions (encode + denoise + decode; the SDK column is imagine() alone, scoring apart)');
        table(
          ['cands', 'steps', 'SDK imagine ms', 'SDK +scoring ms', 'torch full ms', 'torch cached ms', 'speed-up vs full', 'vs cached'],
          ratios.map((r) => [r.candidates, r.steps, r.sdkImagineMs, r.sdkDecisionMs, r.torchFullMs, r.torchCachedMs, `${r.speedupVsFull.toFixed(2)}×`, `${r.speedupVsCached.toFixed(2)}×`]),
          log,
        );
        results.torch = { available: true, info: torch.info, rows: torchRows, ratios };
        if (args.only.has('flops')) results.torch = { ...results.torch, flops: await torch.flops(), matmul: await torch.matmul() };
      } else results.torch = { available: false, reason: torch.reason, rows: [] };
    } finally {
      await wm.dispose();
      if (torch instanceof TorchSession) await torch.close();
    }
    await save();
  }
  if (args.only.has('flops')) {
    heading('5. FLOPs per decision vs the measured dense-matmul peak');
    const matmul = await benchMatmulPeak({ threads: args.threads, seconds: q ? 0.5 : 1.5 });
    const arch = archFromManifest(manifest);
    const torchPeak = Math.max(0, ...(results.torch?.matmul ?? []).map((m) => m.gflops));
    const branches = branchesOf(manifest.defaults.guidance);
    const rows: FlopsRow[] = [];
    if (arch) {
      for (const d of results.decision ?? []) {
        const f = decisionFlops(arch, { candidates: d.candidates, branches, steps: d.steps, context: d.context, horizon: manifest.horizon, contextCache: manifest.files.context !== undefined });
        const achieved = f.total / 1e9 / (d.imagineMs / 1000);
        rows.push({
          candidates: d.candidates,
          steps: d.steps,
          gflop: f.total / 1e9,
          imagineMs: d.imagineMs,
          achievedGflops: achieved,
          pctOfOrtPeak: (100 * achieved) / matmul.peakGflops,
          pctOfTorchPeak: torchPeak > 0 ? (100 * achieved) / torchPeak : Number.NaN,
        });
      }
    }
    const cross: Record<string, number> = {};
    if (arch && results.torch?.flops) {
      const base = { candidates: 8, branches, steps: 8, context: 4, horizon: manifest.horizon };
      cross['analyticFullGflop'] = decisionFlops(arch, { ...base, contextCache: false }).total / 1e9;
      cross['torchProfilerFullGflop'] = results.torch.flops.full / 1e9;
      cross['torchProfilerCachedGflop'] = results.torch.flops.cached / 1e9;
    }
    results.flops = { matmul, rows, torchProfilerCrossCheck: cross };
    log(`dense fp32 MatMul through onnxruntime-node, ${matmul.threads} threads: ${matmul.square.map((r) => `${r.m}³ ${r.gflops.toFixed(1)}`).join(', ')} GFLOP/s; peak ${matmul.peakGflops.toFixed(1)}`);
    log(`  at the model's step shapes: ${matmul.modelShapes.map((r) => `[${r.m}×${r.k}]×[${r.k}×${r.n}] ${r.gflops.toFixed(1)}`).join(', ')} GFLOP/s`);
    if (torchPeak > 0) log(`torch.mm fp32: ${(results.torch?.matmul ?? []).map((m) => `${m.n}³ ${m.gflops.toFixed(1)}`).join(', ')} GFLOP/s`);
    if (cross['analyticFullGflop'] !== undefined) log(`FLOP count cross-check (8 cand, 8 steps, full denoiser): analytic ${cross['analyticFullGflop'].toFixed(2)} GFLOP, torch.profiler ${cross['torchProfilerFullGflop']?.toFixed(2)} GFLOP`);
    table(
      ['cands', 'steps', 'GFLOP/decision', 'imagine ms', 'achieved GFLOP/s', '% of ORT peak', '% of torch peak'],
      rows.map((r) => [r.candidates, r.steps, r.gflop, r.imagineMs, r.achievedGflops, r.pctOfOrtPeak, r.pctOfTorchPeak]),
      log,
    );
    await save();
  }
  if (args.only.has('event-loop')) {
    heading('6. event-loop lag while planning');
    results.eventLoop = await benchEventLoop(args.model, { steps: q ? 4 : 12, threads: args.threads, log });
    await save();
  }
  if (args.only.has('growth')) {
    heading('7. growth with context frames and candidates');
    results.growth = await benchGrowth(args.model, q ? { contexts: [1, 6], candidates: [1, 16], repeats: 1, threads: args.threads, log } : { threads: args.threads, log });
    await save();
  }
  if (args.only.has('levers')) {
    heading('8. levers');
    results.levers = await benchLevers(args.model, { rounds: q ? 1 : 8, threads: args.threads, log });
    await save();
  }

  // Targets at 8 candidates, the model's horizon, 8 steps.
  const d8 = results.decision?.find((r) => r.candidates === 8 && r.steps === 8);
  const r8 = results.torch?.ratios?.find((r) => r.candidates === 8 && r.steps === 8);
  const worker = results.eventLoop?.find((r) => r.label === 'worker thread');
  const targets: TargetCheck[] = [
    {
      name: 'SDK vs PyTorch eager',
      target: '≥ 1.5× faster',
      measured: r8 ? `${r8.speedupVsFull.toFixed(2)}× vs torch full forward, ${r8.speedupVsCached.toFixed(2)}× vs torch with the same context cache` : 'not measured',
      met: r8 ? r8.speedupVsCached >= 1.5 : null,
    },
    {
      name: 'SDK overhead outside session.run',
      target: '≤ 5 %',
      measured: d8 ? `${d8.overheadPct.toFixed(2)} % of imagine (${d8.overheadMs.toFixed(1)} ms of ${d8.imagineMs.toFixed(0)} ms)` : 'not measured',
      met: d8 ? d8.overheadPct <= 5 : null,
    },
    {
      name: 'event-loop lag while planning',
      target: '≤ 20 ms',
      measured: worker ? `worker: max ${worker.maxLagMs.toFixed(1)} ms, p99 ${worker.p99LagMs.toFixed(1)} ms` : 'not measured',
      met: worker ? worker.maxLagMs <= 20 : null,
    },
  ];
  results.targets = targets;
  results.meta['loadAverageAtEnd'] = os.loadavg();
  results.meta['wallSeconds'] = (performance.now() - t0) / 1000;
  heading('targets (8 candidates, horizon 4, 8 steps)');
  table(['target', 'wanted', 'measured', 'met'], targets.map((t) => [t.name, t.target, t.measured, t.met === null ? 'n/a' : t.met ? 'yes' : 'NO']), log);
  await save();
  log(`\nwrote ${path.relative(process.cwd(), args.out)} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

let finished = false;
process.on('beforeExit', () => {
  // An await that can never settle empties the event loop and would end the process silently with code 0.
  if (!finished) {
    console.error('bench: the event loop emptied before the run finished (a pending operation lost its handle); partial results are in the output file');
    process.exitCode = 1;
    finished = true;
  }
});
main().then(
  () => {
    finished = true;
  },
  (e: unknown) => {
    finished = true;
    console.error(e);
    process.exitCode = 1;
  },
);
