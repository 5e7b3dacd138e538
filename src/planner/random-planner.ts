/**
 * The baseline planner: one action a decision, uniform over the environment's non-stop actions, from a
 * seeded generator (deterministic for a seed; no `Math.random`).
 *
 * It never calls `stop` by default (`stopProbability` 0), so its episodes end at the simulator's step limit
 * (or `maxSteps`) and it succeeds only where a simulator counts success without `stop`. With
 * `stopProbability` p > 0 it stops with probability p at each decision instead.
 *
 * Usage: `await runEpisode(env, new RandomPlanner({ seed: 1 }))`; for per-episode reproducibility (e.g. with
 * `--resume`), build one per episode: `planner: (episode) => new RandomPlanner({ seed: episode.seed })`.
 */
import { V4sError } from '../errors.js';
import type { EpisodeGoal } from '../sim-adapters/environment.js';
import { PLANNER_SPEC_VERSION, type Plan, type Planner, type PlanningInput } from './planner.js';
import { mulberry32 } from '../rng.js';

export { mulberry32 };

export interface RandomPlannerOptions {
  /** Generator seed. Default 0. */
  readonly seed?: number;
  /** Probability of choosing `stop` at each decision. Default 0 (never). */
  readonly stopProbability?: number;
  /** Restrict the choice to these action names (each must be offered by the environment). Default: all non-stop actions. */
  readonly actions?: readonly string[];
}

/** Uniform random actions; see the module comment for its `stop` policy. */
export class RandomPlanner implements Planner {
  readonly specificationVersion = PLANNER_SPEC_VERSION;
  readonly name = 'random';
  readonly #random: () => number;
  readonly #stopProbability: number;
  readonly #actions: readonly string[] | undefined;

  constructor(options: RandomPlannerOptions = {}) {
    const seed = options.seed ?? 0;
    if (!Number.isInteger(seed)) throw new V4sError('E_CONFIG', `RandomPlanner: seed must be an integer, got ${String(seed)}`);
    const p = options.stopProbability ?? 0;
    if (!(p >= 0 && p <= 1)) throw new V4sError('E_CONFIG', `RandomPlanner: stopProbability must be in [0, 1], got ${String(p)}`);
    this.#random = mulberry32(seed);
    this.#stopProbability = p;
    this.#actions = options.actions;
  }

  reset(_goal: EpisodeGoal | undefined): void {
    // Stateless across steps; the generator continues (build one planner per episode for per-episode seeds).
  }

  async plan(input: PlanningInput, signal?: AbortSignal): Promise<Plan> {
    signal?.throwIfAborted();
    const t0 = performance.now();
    const offered = input.capabilities.actions;
    const names = Object.keys(offered);
    const stopName = names.find((n) => offered[n]?.kind === 'stop');
    let choices: readonly string[];
    if (this.#actions !== undefined) {
      const missing = this.#actions.filter((n) => offered[n] === undefined);
      if (missing.length > 0) {
        throw new V4sError('E_UNKNOWN_ACTION', `RandomPlanner: actions ${missing.join(', ')} are not offered (${names.join(', ')})`);
      }
      choices = this.#actions;
    } else {
      choices = names.filter((n) => offered[n]?.kind !== 'stop');
    }
    const r = this.#random();
    const pStop = stopName !== undefined ? this.#stopProbability : 0;
    let name: string | undefined;
    let reason: string;
    if (r < pStop) {
      name = stopName;
      reason = `stop drawn (p=${pStop})`;
    } else {
      // Rescale the rest of [p, 1) to [0, 1) so one draw decides both (r < 1, so p < 1 here).
      const u = pStop > 0 ? (r - pStop) / (1 - pStop) : r;
      name = choices[Math.min(choices.length - 1, Math.floor(u * choices.length))];
      reason = `uniform over ${choices.length} actions`;
    }
    if (name === undefined) {
      throw new V4sError('E_UNKNOWN_ACTION', `RandomPlanner: the environment offers no non-stop action (${names.join(', ')})`);
    }
    return {
      actions: [{ name }],
      decision: { candidates: [], chosen: -1, reason, latencyMs: performance.now() - t0 },
    };
  }
}
