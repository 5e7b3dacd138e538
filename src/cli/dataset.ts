/**
 * `v4s dataset`: write a training/evaluation dataset from the built-in simulator (format v4s.dataset.v1, see
 * src/sim-adapters/builtin/dataset.ts): the first N scene seeds of a split, one trajectory each.
 *
 * Usage: `v4s dataset --split train --scenes 500 --out data/train`
 */
import path from 'node:path';
import { Option, type Command } from 'commander';
import { writeDataset } from '../sim-adapters/builtin/dataset.js';
import { SPLIT_SEEDS, type SplitName } from '../sim-adapters/builtin/seeds.js';
import { EXIT, displayPath, formatDuration, intArg, processIO, resolveOutputPath, type CliIO } from './common.js';

/** Parsed options of `v4s dataset`. */
export interface DatasetCommandOptions {
  readonly split: SplitName;
  readonly scenes: number;
  readonly out: string;
  readonly steps?: number;
  readonly size?: number;
}

/** Write the dataset; prints progress every 10 % of scenes. Resolves with the exit code. */
export async function runDatasetCommand(o: DatasetCommandOptions, io: CliIO = processIO): Promise<number> {
  const out = resolveOutputPath(o.out, '--out', 'dir');
  const range = SPLIT_SEEDS[o.split];
  io.out(`v4s dataset: ${o.scenes} ${o.split} scenes (seeds ${range.start}..${range.start + o.scenes - 1}) → ${displayPath(out)}`);
  const every = Math.max(1, Math.round(o.scenes / 10));
  const index = writeDataset({
    split: o.split,
    scenes: o.scenes,
    out,
    ...(o.steps !== undefined ? { steps: o.steps } : {}),
    ...(o.size !== undefined ? { size: o.size } : {}),
    onProgress: (p) => {
      if (p.scene % every === 0 || p.scene === p.scenes) io.out(`  ${p.scene}/${p.scenes} scenes · ${p.frames} frames · ${formatDuration(p.elapsedMs)}`);
    },
  });
  io.out(`wrote ${index.totalFrames} frames of ${index.episodes.length} trajectories (${index.width}×${index.height}) to ${path.join(displayPath(out), 'index.json')}`);
  return EXIT.ok;
}

/** Register `v4s dataset`. */
export function register(program: Command, io: CliIO = processIO): void {
  program
    .command('dataset')
    .description('write a dataset of built-in simulator trajectories (frames, masks, actions, poses)')
    .addOption(new Option('--split <split>', 'seed split').choices(['train', 'dev', 'eval']).makeOptionMandatory())
    .requiredOption('--scenes <n>', 'scenes (the first N seeds of the split)', intArg(1, 100_000))
    .requiredOption('--out <dir>', 'output folder')
    .option('--steps <n>', 'frames per trajectory (default 96)', intArg(1, 100_000))
    .option('--size <px>', 'square frame size (default 64)', intArg(8, 1024))
    .action(async (opts: DatasetCommandOptions) => {
      process.exitCode = await runDatasetCommand(opts, io);
    });
}
