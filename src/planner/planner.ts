/**
 * The planner seam: given the current observation and context memory, choose the next action(s).
 * Usage: `const { actions } = await planner.plan({ observation, context, goal, capabilities })`.
 */
import type { Capabilities, EpisodeGoal } from '../sim-adapters/environment.js';
import type { Action, ContextSource, Instruction, Observation } from '../types.js';
import type { Rollout } from '../worldmodel/world-model.js';

export const PLANNER_SPEC_VERSION = 'v1' as const;

export interface PlanningInput {
  readonly observation: Observation;
  readonly context: ContextSource;
  readonly goal?: EpisodeGoal;
  readonly capabilities: Capabilities;
  /** Steps taken so far in this episode. */
  readonly stepsTaken: number;
}

/** One candidate considered in a decision, with its score broken into terms (for reports). */
export interface CandidateReport {
  readonly instruction: Instruction;
  readonly score: number;
  readonly terms: Readonly<Record<string, number>>;
  readonly rollout?: Rollout;
}

/** Why the planner did what it did. */
export interface Decision {
  readonly candidates: CandidateReport[];
  /** Index into candidates, or -1 when no candidate was used (stop, look-around, fallback). */
  readonly chosen: number;
  readonly reason: string;
  readonly latencyMs: number;
  /** A human-readable note for reports, e.g. the current-view score behind a stop or the error behind a fallback. */
  readonly detail?: string;
}

export interface Plan {
  /** Actions to execute in order before re-planning (at least one). */
  readonly actions: Action[];
  readonly decision?: Decision;
}

export interface Planner {
  readonly specificationVersion: typeof PLANNER_SPEC_VERSION;
  readonly name: string;
  /** Called at the start of each episode. */
  reset?(goal: EpisodeGoal | undefined): void;
  plan(input: PlanningInput, signal?: AbortSignal): Promise<Plan>;
}
