/**
 * `v4s eval-model`: is the world model any good? Imagination quality per horizon step against the
 * "repeat the last frame" baseline, the spatial-memory test, ablations (positions, guidance, sampler steps)
 * and grounding, on evaluation scenes never used in training. Prints the tables, writes the JSON report
 * (atomically: a temp file renamed into place, after the quality phase and at the end), shows progress with
 * an ETA on stderr. What every number means: docs/model-evaluation.md.
 *
 * Usage: `v4s eval-model --model models/v4s-builtin-small --data data/eval --clips 300 --out results/eval-model.json`
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { EvalDataset, evaluateWorldModel, formatEvaluation, guidanceForScale, type EvalProgress, type ModelEvaluation } from '../worldmodel/evaluation.js';
import { loadWorldModel } from '../worldmodel/onnx-world-model.js';
import type { GuidanceConfig, SamplerConfig } from '../worldmodel/world-model.js';
import { EXIT, SHIPPED_MODEL, displayPath, formatDuration, intArg, processIO, resolveOutputPath, type CliIO } from './common.js';

/** Parsed options of `v4s eval-model`. */
export interface EvalModelCommandOptions {
  readonly model: string;
  readonly data: string;
  readonly clips: number;
  readonly seed: number;
  /** Sampler steps of the main run (default: the model's). */
  readonly steps?: number;
  /** Joint guidance scale ω of the main run (default: the model's guidance). */
  readonly cfg?: number;
  readonly out: string;
  readonly memoryClips: number;
  readonly ablationClips: number;
  readonly stepsSweep: readonly number[];
  readonly cfgSweep: readonly number[];
  readonly threads?: number;
}

/** Parser of a non-negative number. */
function numberArg(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number ≥ 0.');
  return n;
}

/** Parser of a comma-separated list (`2,4,8`); `none` or empty gives []. */
function listArg(item: (v: string) => number): (value: string) => number[] {
  return (value: string): number[] => {
    const v = value.trim();
    if (v === '' || v === 'none') return [];
    return v.split(',').map((s) => item(s.trim()));
  };
}

/** Write JSON atomically: a temp file beside the target, then rename. */
function writeJsonAtomic(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, file);
}

/** A progress line on stderr: rewritten in place on a terminal, else one line per 10 % (and per phase). */
function progressReporter(io: CliIO, stderrTTY: boolean): (p: EvalProgress) => void {
  let lastDecile = -1;
  let lastPhase = '';
  let lastDraw = 0;
  return (p) => {
    const pct = Math.floor(p.fraction * 100);
    const eta = p.etaMs !== undefined ? formatDuration(p.etaMs) : '…';
    const text = `[eval-model] ${p.phase} ${p.clipsDone}/${p.clipsTotal} clips · ${pct} % · elapsed ${formatDuration(p.elapsedMs)} · ETA ${eta}`;
    if (stderrTTY) {
      const now = Date.now();
      const done = p.clipsDone === p.clipsTotal;
      if (now - lastDraw < 200 && !done) return;
      lastDraw = now;
      process.stderr.write(`\r${text}\u001b[K${done ? '\n' : ''}`);
      return;
    }
    const decile = Math.floor(pct / 10);
    if (decile !== lastDecile || p.phase !== lastPhase || p.clipsDone === p.clipsTotal) {
      lastDecile = decile;
      lastPhase = p.phase;
      io.err(text);
    }
  };
}

/** Run the evaluation and print/write the report. Resolves with the exit code and the report. */
export async function runEvalModelCommand(o: EvalModelCommandOptions, io: CliIO = processIO): Promise<{ code: number; report: ModelEvaluation }> {
  const t0 = Date.now();
  const out = resolveOutputPath(o.out, '--out', 'file');
  const data = EvalDataset.open(o.data);
  try {
    const model = await loadWorldModel(o.model, o.threads !== undefined ? { threads: o.threads } : {});
    try {
      const info = model.info;
      let sampler: SamplerConfig = info.defaultSampler;
      if (o.steps !== undefined) sampler = { ...sampler, steps: o.steps };
      const guidance: GuidanceConfig = o.cfg !== undefined ? guidanceForScale(o.cfg) : info.defaultGuidance;
      io.err(`[eval-model] model ${info.name} (${displayPath(o.model)}), data ${displayPath(o.data)}: ${data.index.episodes.length} scenes, ${data.index.totalFrames} frames`);
      if (data.index.split !== 'eval') io.err(`[eval-model] WARNING: ${displayPath(o.data)} is the "${data.index.split}" split; report numbers from the eval split (npx tsx scripts/dataset.ts --split eval --scenes 200 --out data/eval)`);
      const report = await evaluateWorldModel(model, data, {
        clips: o.clips,
        seed: o.seed,
        sampler,
        guidance,
        memoryClips: o.memoryClips,
        ablationClips: o.ablationClips,
        stepsSweep: o.stepsSweep,
        cfgSweep: o.cfgSweep,
        onProgress: progressReporter(io, process.stderr.isTTY === true && io === processIO),
        onPartial: (partial) => writeJsonAtomic(out, partial),
      });
      writeJsonAtomic(out, report);
      io.out(formatEvaluation(report));
      io.out(`\nwrote ${displayPath(out)} · total ${formatDuration(Date.now() - t0)}`);
      return { code: EXIT.ok, report };
    } finally {
      await model.dispose();
    }
  } finally {
    data.close();
  }
}

/** Register `v4s eval-model`. */
export function register(program: Command, io: CliIO = processIO): void {
  program
    .command('eval-model')
    .description('evaluate a world-model package: imagination quality vs repeat-last, spatial memory, ablations, grounding')
    .option('--model <dir>', 'model package folder', SHIPPED_MODEL)
    .option('--data <dir>', 'dataset folder (v4s.dataset.v1, eval split)', 'data/eval')
    .option('--clips <n>', 'quality clips', intArg(1, 1_000_000), 300)
    .option('--seed <n>', 'seed of clip sampling, goals and sampler noise', intArg(0, 2 ** 31 - 1), 0)
    .option('--steps <n>', "sampler steps of the main run (default: the model's)", intArg(1, 1000))
    .option('--cfg <omega>', "joint guidance scale ω of the main run (default: the model's guidance; 1 = none)", numberArg)
    .option('--out <file>', 'JSON report', 'results/eval-model.json')
    .option('--memory-clips <n>', 'spatial-memory clips (0 skips the test)', intArg(0, 1_000_000), 200)
    .option('--ablation-clips <n>', 'quality clips that also run the ablations (0 skips them)', intArg(0, 1_000_000), 100)
    .option('--steps-sweep <list>', 'sampler steps of the steps table, comma-separated', listArg(intArg(1, 1000)), [2, 4, 8])
    .option('--cfg-sweep <list>', 'guidance scales ω compared with the default, comma-separated', listArg(numberArg), [1])
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', intArg(1, 256))
    .action(async (opts: EvalModelCommandOptions) => {
      const { code } = await runEvalModelCommand(opts, io);
      process.exitCode = code;
    });
}
