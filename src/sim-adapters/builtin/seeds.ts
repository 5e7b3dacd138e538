/**
 * The one place that fixes which scene seeds each use may draw on. Ranges are disjoint and half-open.
 *
 * - TRAIN    [0, 100000): world-model training data.
 * - DEV      [100000, 200000): tuning (hyper-parameters, planner settings, thresholds).
 * - EVAL     [200000, 300000): the reported evaluation numbers; never trained or tuned on.
 * - HELD_OUT [1000000, …): reserved for independent held-out evaluation (DESIGN.md §4): never train or tune on it.
 *
 * `scripts/dataset.ts --split S --scenes N` uses the first N seeds of split S, in order.
 */
import { V4sError } from '../../errors.js';

/** A half-open seed range [start, end). */
export interface SeedRange {
  readonly start: number;
  readonly end: number;
}

/** Training scenes. */
export const TRAIN_SEEDS: SeedRange = { start: 0, end: 100_000 };
/** Development scenes, used for tuning. */
export const DEV_SEEDS: SeedRange = { start: 100_000, end: 200_000 };
/** Evaluation scenes: the reported numbers. */
export const EVAL_SEEDS: SeedRange = { start: 200_000, end: 300_000 };
/** Reserved for independent held-out evaluation; never train or tune on these. */
export const HELD_OUT_SEEDS: SeedRange = { start: 1_000_000, end: Number.MAX_SAFE_INTEGER };

export type SplitName = 'train' | 'dev' | 'eval';

/** The seed range of a split. */
export const SPLIT_SEEDS: Readonly<Record<SplitName, SeedRange>> = { train: TRAIN_SEEDS, dev: DEV_SEEDS, eval: EVAL_SEEDS };

/** The i-th seed of a split (i from 0). Throws E_CONFIG when the split has fewer seeds. */
export function splitSeed(split: SplitName, i: number): number {
  const r = SPLIT_SEEDS[split];
  if (!Number.isSafeInteger(i) || i < 0 || r.start + i >= r.end) {
    throw new V4sError('E_CONFIG', `seed index ${i} is outside the ${split} range [${r.start}, ${r.end})`);
  }
  return r.start + i;
}

/** Which range a seed belongs to, or undefined when it is in none. */
export function splitOfSeed(seed: number): SplitName | 'held-out' | undefined {
  for (const s of ['train', 'dev', 'eval'] as const) {
    const r = SPLIT_SEEDS[s];
    if (seed >= r.start && seed < r.end) return s;
  }
  return seed >= HELD_OUT_SEEDS.start ? 'held-out' : undefined;
}
