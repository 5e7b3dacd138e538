/**
 * The world-model planner: model-predictive control on imagined rollouts.
 *
 * Each `plan()`:
 * 1. **stop check on the current view** (see `StopThresholds`) — PointNav: distance from the pose to the goal;
 *    ImageNav: similarity of the current frame to the goal image; ObjectNav: the current-view grounding
 *    (`Rollout.currentGrounding`, or the user's detector on the current frame).
 * 2. **imagine**: context from `input.context.select(maxContext, { maxOffset })` (true step indices, never
 *    renumbered; the current observation is always the newest frame), frames resized to the model's
 *    resolution, every candidate in ONE `worldModel.imagine` call (CEM: one call per iteration).
 * 3. **score** each candidate: the task's goal scorer (object grounding, image similarity, or PointNav pose
 *    geometry), the safety scorer (collision risk: imagined views that stop changing under a move), the
 *    exploration scorer (view novelty against the context memory + distance of the dead-reckoned end pose
 *    from visited positions), a `blocked` penalty on forward-first candidates right after a real collision,
 *    and a `revisit` penalty on candidates whose first action returns to a recent pose.
 * 4. **act**: ObjectNav also stops when the goal is near and no candidate beats the current view's goal score.
 *    When the best goal score reaches the task's floor: the best by goal + safety (+ a little novelty),
 *    reason `goal`. Otherwise, once per episode, a look-around (`turn_left` × 360°/turn over several plans,
 *    reason `look-around`) fills the context and scans for the goal; then the best by exploration + safety,
 *    reason `explore`. It executes the first `actionsPerPlan` actions (with `commitTurns`, a leading run of
 *    turns and the move after it) and re-plans at the next call.
 *
 * If `imagine` throws (e.g. `E_MODEL_OUTPUT` on NaN) or returns rollouts of the wrong count or length, the
 * planner never acts on them: it falls back to one `turn_left` (the safe action: a turn cannot collide, and it
 * adds a view to the context), reason `fallback`, with the error in `decision.detail`.
 *
 * PointNav has no world-model signal for a point goal: candidates are scored by pose geometry dead-reckoned
 * from the actions' trained step sizes (from `observation.pose`, or from the executed actions when the
 * observation has no pose), with moves the imagined views show as blocked (and moves into remembered
 * collision points) counting as no progress, plus collision risk.
 *
 * The same class runs the no-imagination ablation (`RepeatLastWorldModel`) and the oracle
 * (`SimulatorWorldModel`): it reads only the `WorldModel` contract and never special-cases them.
 *
 * Usage: `const planner = new WorldModelPlanner(model, { actionsPerPlan: 1, candidates: { kind: 'enumerate' } })`.
 */
import { resizeFrame } from '../agent/frames.js';
import { V4sError, isV4sError } from '../errors.js';
import type { Capabilities, EpisodeGoal, TaskName } from '../sim-adapters/environment.js';
import type { Action, Frame, Instruction, Observation } from '../types.js';
import type { GroundingMap, GuidanceConfig, ImagineContext, Rollout, SamplerConfig, WorldModel, WorldModelActionSpec } from '../worldmodel/world-model.js';
import {
  CrossEntropyMethod,
  actionMotion,
  advancePose,
  createRng,
  deadReckon,
  enumerateCandidates,
  plannableActions,
  sampleCandidates,
  type ActionProbabilities,
  type ActionVocabulary,
  type CemOptions,
  type PlanarPose,
  type Rng,
} from './candidates.js';
import { PLANNER_SPEC_VERSION, type CandidateReport, type Decision, type Plan, type Planner, type PlanningInput } from './planner.js';
import {
  bearingTo,
  collisionRiskScorer,
  composeScorers,
  groundingStats,
  imageGoalScorer,
  imageGoalSimilarity,
  noveltyScorer,
  objectFrameScore,
  objectGoalScorer,
  pointGoalScorer,
  visitationScorer,
  yieldToEventLoop,
  type CandidateScore,
  type GroundingDetector,
  type GroundingStats,
  type Scorer,
  type ScoringContext,
} from './scorers.js';

/** Where candidates come from. */
export type CandidateSource =
  | { readonly kind: 'enumerate'; readonly form?: 'canonical' | 'pruned'; readonly max?: number }
  | { readonly kind: 'sample'; readonly count: number; readonly probabilities?: ActionProbabilities }
  | { readonly kind: 'cem'; readonly options?: Omit<CemOptions, 'seed'> }
  | { readonly kind: 'custom'; readonly generate: (vocab: ActionVocabulary, horizon: number, rng: Rng) => string[][] };

/**
 * When the planner stops, judged on the CURRENT view; all of a rule's conditions must pass.
 *
 * ObjectNav (from `Rollout.currentGrounding`, or the detector on the current frame; 8×8 maps of the fraction
 * of each cell the goal covers, as the oracle gives them). Two rules:
 * - **reached**: area ≥ 0.02, confidence ≥ 0.5 and bottom-row contact ≥ 0.9 (the goal fills the bottom row's
 *   cell: its floor contact is at or below the view's bottom edge, within ≈ 1.25 m for a 1.25 m camera with a
 *   90° FOV). Calibrated on the built-in simulator, dev scenes 100000–100079: on 368 straight approaches to
 *   goal instances, the first view passing was an ObjectNav success in 193 of 198 (97.5 %). Area alone is a
 *   poor signal: a small, low object (a toilet) leaves the bottom of the view when near.
 * - **near, nothing better**: area ≥ 0.02 and bottom ≥ 0.8 (first firing a success in 94.6 % of those
 *   approaches), and no candidate's goal score beats the current
 *   view's frame score by more than `objectNoImprovementMargin` (0.02): the goal is close and no imagined
 *   action gets a better view of it. Set the margin to `-Infinity` to disable the rule.
 *
 * ImageNav: `imageGoalSimilarity` (structure × colour) ≥ 0.65 between the current frame and the goal image
 * (on 5,600 views of built-in dev scenes 100000–100039, about 88 % of views passing were within the 1 m success
 * radius; similarity is an ambiguous signal for ImageNav in look-alike rooms). PointNav: distance ≤ 0.3 m (success is
 * ≤ 0.36 m).
 *
 * A model package may carry its own ObjectNav thresholds, calibrated on dev seeds for its learned maps
 * (`WorldModelInfo.stopCalibration`, manifest `calibration.stop`, `scripts/calibrate-stop.ts`); they replace
 * these defaults, and the `stop` option replaces both.
 */
export interface StopThresholds {
  /** ObjectNav reached: smallest mean grounding probability (≈ fraction of the view the goal covers). Default 0.02. */
  readonly objectArea?: number;
  /** ObjectNav reached: smallest max cell probability. Default 0.5. */
  readonly objectConfidence?: number;
  /** ObjectNav reached: smallest max cell probability on the bottom row (the goal reaches the view's bottom edge). Default 0.9. */
  readonly objectBottom?: number;
  /** ObjectNav near: smallest area. Default 0.02. */
  readonly objectNearArea?: number;
  /** ObjectNav near: smallest bottom-row contact. Default 0.8. */
  readonly objectNearBottom?: number;
  /** ObjectNav near: stop when no candidate's goal score exceeds the current view's by more than this. Default 0.02. */
  readonly objectNoImprovementMargin?: number;
  /** ImageNav: smallest `imageGoalSimilarity` between the current frame and the goal image. Default 0.65. */
  readonly imageSimilarity?: number;
  /** PointNav: largest distance (metres, floor plane) from the pose to the goal. Default 0.3. */
  readonly pointDistance?: number;
  /** Consecutive decisions that must pass before stopping (guards against one noisy view). Default 1. */
  readonly consecutive?: number;
}

/** Options of `WorldModelPlanner`; every field has a default. */
export interface WorldModelPlannerOptions {
  /** Planner name in reports. Default `wm:<model name>`. */
  readonly name?: string;
  /** Actions executed from the chosen candidate before re-planning. Default 1. */
  readonly actionsPerPlan?: number;
  /**
   * When the chosen candidate starts with turns, execute its turns and the move after them in one plan
   * (at least `actionsPerPlan` actions). A turn's value lies in the moves imagined after it; re-planning
   * after the turn alone lets MPC oscillate left-right. Default true.
   */
  readonly commitTurns?: boolean;
  /** Candidate generator. Default `{ kind: 'enumerate', form: 'canonical' }` (9 for H = 4). */
  readonly candidates?: CandidateSource;
  /** Context frames per imagine (≤ the model's maxContext). Default the model's maxContext. */
  readonly contextFrames?: number;
  /** Imagined frames per candidate (≤ the model's horizon). Default the model's horizon. */
  readonly horizon?: number;
  readonly sampler?: SamplerConfig;
  readonly guidance?: GuidanceConfig;
  /** Seed of imagine and of sampling/CEM; each decision uses seed ⊕ step. Default 0. */
  readonly seed?: number;
  /** Goal scorer; default by task: object (grounding), image (SSIM), point (dead reckoning). */
  readonly goalScorer?: Scorer;
  /**
   * Exploration scorer. Default: novelty (weight 0.5, against the context plus `memoryFrames` frames of the
   * context memory) + visitation (weight 1: distance of the dead-reckoned end pose from visited positions).
   */
  readonly exploreScorer?: Scorer;
  /** Safety scorer, added in every mode. Default `collisionRiskScorer()`. */
  readonly safetyScorer?: Scorer;
  /**
   * Weights: safety 0.5, novelty in goal mode 0.05, `blocked` penalty 1 (forward-first candidates right after
   * a real collision), `revisit` penalty 0.15 (candidates whose first action returns to one of the last 8
   * decision poses: breaks MPC's left-right oscillation).
   */
  readonly weights?: { readonly safety?: number; readonly noveltyInGoal?: number; readonly blocked?: number; readonly revisit?: number };
  /**
   * Goal score at or above which the planner acts on the goal; below it, it explores. Default per task:
   * objectnav 0.05, imagenav 0.2, pointnav −Infinity (always goal-directed).
   */
  readonly goalFloor?: number | Partial<Record<TaskName, number>>;
  readonly stop?: StopThresholds;
  /**
   * Look-around when nothing scores: `turns` × `action` (default 360° / the turn's step size, `turn_left`),
   * once per episode; `every` re-arms it after that many steps without a goal decision (default: never).
   */
  readonly lookAround?: { readonly turns?: number; readonly action?: string; readonly every?: number };
  /** Frames of the context memory the novelty scorer compares with (besides the model's context). Default 8. */
  readonly memoryFrames?: number;
  /** Object detector used on imagined frames and on the current view, instead of the model's grounding. */
  readonly detector?: GroundingDetector;
}

const DEFAULT_STOP: Required<StopThresholds> = {
  objectArea: 0.02,
  objectConfidence: 0.5,
  objectBottom: 0.9,
  objectNearArea: 0.02,
  objectNearBottom: 0.8,
  objectNoImprovementMargin: 0.02,
  imageSimilarity: 0.65,
  pointDistance: 0.3,
  consecutive: 1,
};
const DEFAULT_FLOOR: Readonly<Record<TaskName, number>> = { objectnav: 0.05, imagenav: 0.2, pointnav: -Infinity };

interface EpisodeState {
  lastStep: number;
  lastActions: readonly string[];
  lookAroundLeft: number;
  lookAroundDone: boolean;
  stepsSinceGoal: number;
  stopStreak: number;
  pose: PlanarPose | undefined;
  visited: PlanarPose[];
  obstacles: { x: number; z: number }[];
  recent: PlanarPose[];
}

function freshState(): EpisodeState {
  return { lastStep: -1, lastActions: [], lookAroundLeft: -1, lookAroundDone: false, stepsSinceGoal: 0, stopStreak: 0, pose: undefined, visited: [], obstacles: [], recent: [] };
}

/** Index of the largest finite value; ties go to the lower index; -1 when none is finite. */
function argmax(values: readonly number[]): number {
  let best = -1;
  let bestV = -Infinity;
  for (const [i, v] of values.entries()) {
    if (Number.isFinite(v) && (best < 0 || v > bestV)) {
      best = i;
      bestV = v;
    }
  }
  return best;
}

function errorText(e: unknown): string {
  if (isV4sError(e)) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

/** The world-model MPC planner (see the module comment). */
export class WorldModelPlanner implements Planner {
  readonly specificationVersion = PLANNER_SPEC_VERSION;
  readonly name: string;
  readonly #wm: WorldModel;
  readonly #opts: WorldModelPlannerOptions;
  readonly #stop: Required<StopThresholds>;
  readonly #actionsPerPlan: number;
  #goal: EpisodeGoal | undefined;
  #state: EpisodeState = freshState();

  constructor(worldModel: WorldModel, options: WorldModelPlannerOptions = {}) {
    this.#wm = worldModel;
    this.#opts = options;
    this.name = options.name ?? `wm:${worldModel.info.name}`;
    // Defaults (calibrated on true masks) < the model's own calibration of its grounding < the caller's.
    this.#stop = { ...DEFAULT_STOP, ...worldModel.info.stopCalibration, ...options.stop };
    this.#actionsPerPlan = options.actionsPerPlan ?? 1;
    if (!Number.isInteger(this.#actionsPerPlan) || this.#actionsPerPlan < 1) {
      throw new V4sError('E_CONFIG', `WorldModelPlanner: actionsPerPlan must be a positive integer, got ${String(options.actionsPerPlan)}`);
    }
    const info = worldModel.info;
    const horizon = options.horizon ?? info.horizon;
    if (!Number.isInteger(horizon) || horizon < 1 || horizon > info.horizon) {
      throw new V4sError('E_CONFIG', `WorldModelPlanner: horizon must be an integer in [1, ${info.horizon}], got ${String(options.horizon)}`);
    }
    const k = options.contextFrames ?? info.maxContext;
    if (!Number.isInteger(k) || k < 1) {
      throw new V4sError('E_CONFIG', `WorldModelPlanner: contextFrames must be a positive integer, got ${String(options.contextFrames)}`);
    }
    if (!Number.isInteger(options.stop?.consecutive ?? 1) || (options.stop?.consecutive ?? 1) < 1) {
      throw new V4sError('E_CONFIG', `WorldModelPlanner: stop.consecutive must be a positive integer, got ${String(options.stop?.consecutive)}`);
    }
    if (plannableActions(info.actions).length === 0) {
      throw new V4sError('E_MODEL_ACTION', `WorldModelPlanner: model "${info.name}" has no plannable action`);
    }
  }

  /** The world model this planner imagines with. */
  get worldModel(): WorldModel {
    return this.#wm;
  }

  reset(goal: EpisodeGoal | undefined): void {
    this.#goal = goal;
    this.#state = freshState();
  }

  async plan(input: PlanningInput, signal?: AbortSignal): Promise<Plan> {
    signal?.throwIfAborted();
    const t0 = performance.now();
    const goal = input.goal ?? this.#goal;
    const task: TaskName | undefined = goal?.task;
    const obs = input.observation;
    const info = this.#wm.info;
    const { width: W, height: H } = info.resolution;
    const st = this.#advanceState(obs, input.capabilities);
    const vocab = this.#vocabulary(input.capabilities);
    const lookAction = this.#lookAroundAction(vocab);
    const current = obs.rgb.width === W && obs.rgb.height === H ? obs.rgb : resizeFrame(obs.rgb, W, H, 'crop');
    const pose = st.pose;

    const finish = (actions: string[], decision: Omit<Decision, 'latencyMs'>): Plan => {
      st.lastActions = actions;
      st.lastStep = obs.step;
      return { actions: actions.map((name): Action => ({ name })), decision: { ...decision, latencyMs: performance.now() - t0 } };
    };
    const stopName = this.#stopName(input.capabilities);

    // 1. Stop checks that need no imagination.
    if (task === 'pointnav' && goal?.position !== undefined && pose !== undefined) {
      const { distance } = bearingTo(pose, goal.position[0], goal.position[2]);
      if (this.#passes(distance <= this.#stop.pointDistance)) {
        return finish([stopName], { candidates: [], chosen: -1, reason: 'stop', detail: `distance to goal ${distance.toFixed(3)} m ≤ ${this.#stop.pointDistance} m` });
      }
    }
    if (task === 'imagenav' && goal?.image !== undefined) {
      const s = imageGoalSimilarity(current, goal.image);
      if (this.#passes(s >= this.#stop.imageSimilarity)) {
        return finish([stopName], { candidates: [], chosen: -1, reason: 'stop', detail: `current-view similarity to the goal image ${s.toFixed(3)} ≥ ${this.#stop.imageSimilarity}` });
      }
    }
    let currentStats: GroundingStats | undefined;
    // ObjectNav counts one stop vote per decision (for `stop.consecutive`), whichever rule gives it.
    let voted = false;
    if (task === 'objectnav' && goal?.category !== undefined && this.#opts.detector !== undefined) {
      currentStats = groundingStats(await this.#opts.detector(current, goal.category));
      if (this.#objectReached(currentStats)) {
        voted = true;
        if (this.#passes(true)) return finish([stopName], { candidates: [], chosen: -1, reason: 'stop', detail: objectDetail(currentStats, 'detector') });
      }
    }

    // 2. Imagine.
    const horizon = this.#opts.horizon ?? info.horizon;
    const context = this.#context(input, current);
    const seed = ((this.#opts.seed ?? 0) * 1_000_003 + obs.step) >>> 0;
    const category = task === 'objectnav' && goal?.category !== undefined && (info.goalCategories.length === 0 || info.goalCategories.includes(goal.category)) ? goal.category : undefined;
    const instruction = (actions: readonly string[]): Instruction => (category !== undefined ? { actions, goalCategory: category } : { actions });
    const scoring: ScoringContext = {
      info: { ...info, actions: vocab },
      current,
      context: context.frames,
      ...(goal !== undefined ? { goal } : {}),
      ...(pose !== undefined ? { pose } : {}),
      ...(signal !== undefined ? { signal } : {}),
      visited: st.visited,
      obstacles: st.obstacles,
      memory: this.#memory(input),
    };
    const fallback = (detail: string): Plan => {
      st.stopStreak = 0;
      return finish([lookAction], { candidates: [], chosen: -1, reason: 'fallback', detail });
    };
    const imagine = async (seqs: string[][], s: number): Promise<Rollout[]> => {
      const request = {
        context,
        candidates: seqs.map(instruction),
        horizon,
        seed: s,
        ...(this.#opts.sampler !== undefined ? { sampler: this.#opts.sampler } : {}),
        ...(this.#opts.guidance !== undefined ? { guidance: this.#opts.guidance } : {}),
      };
      const rollouts = await this.#wm.imagine(request);
      signal?.throwIfAborted();
      if (rollouts.length !== seqs.length) {
        throw new V4sError('E_MODEL_OUTPUT', `imagine() returned ${rollouts.length} rollouts for ${seqs.length} candidates`);
      }
      for (const [i, r] of rollouts.entries()) {
        if (r.frames.length !== horizon) throw new V4sError('E_MODEL_OUTPUT', `rollout ${i} has ${r.frames.length} frames, expected ${horizon}`);
      }
      return rollouts;
    };

    const blockedFirst = obs.collided === true && st.lastActions.length > 0 && this.#isMove(st.lastActions[st.lastActions.length - 1], vocab);
    const w = {
      safety: this.#opts.weights?.safety ?? 0.5,
      noveltyInGoal: this.#opts.weights?.noveltyInGoal ?? 0.05,
      blocked: this.#opts.weights?.blocked ?? 1,
      revisit: this.#opts.weights?.revisit ?? 0.15,
    };
    // Poses the first action of each candidate leads to, against the recent decision poses (not the current one).
    const revisits = (actions: readonly string[]): number => {
      if (pose === undefined || st.recent.length < 2) return 0;
      const first = actions[0];
      if (first === undefined) return 0;
      const [p] = deadReckon(pose, [first], vocab, blockedFirst ? [1] : undefined);
      if (p === undefined) return 0;
      const older = st.recent.slice(0, -1);
      return older.some((q) => Math.hypot(q.x - p.x, q.z - p.z) < 0.1 && Math.abs(Math.atan2(Math.sin(q.yaw - p.yaw), Math.cos(q.yaw - p.yaw))) < (15 * Math.PI) / 180) ? 1 : 0;
    };
    const goalScorer = this.#opts.goalScorer ?? defaultGoalScorer(task, this.#opts.detector);
    const exploreScorer = this.#opts.exploreScorer ?? defaultExploreScorer();
    const safetyScorer = this.#opts.safetyScorer ?? collisionRiskScorer();

    interface Scored {
      readonly rollout: Rollout;
      readonly goal: CandidateScore;
      readonly explore: CandidateScore;
      readonly safety: CandidateScore;
      readonly blocked: number;
      readonly revisit: number;
    }
    const scoreBatch = async (rollouts: Rollout[]): Promise<Scored[]> => {
      const g = await goalScorer.score(rollouts, scoring);
      await yieldToEventLoop();
      const e = await exploreScorer.score(rollouts, scoring);
      await yieldToEventLoop();
      const s = await safetyScorer.score(rollouts, scoring);
      signal?.throwIfAborted();
      return rollouts.map((rollout, i) => ({
        rollout,
        goal: g[i] ?? { score: NaN, terms: {} },
        explore: e[i] ?? { score: NaN, terms: {} },
        safety: s[i] ?? { score: NaN, terms: {} },
        blocked: blockedFirst && this.#isMove(rollout.instruction.actions[0], vocab) ? 1 : 0,
        revisit: revisits(rollout.instruction.actions),
      }));
    };
    const penalty = (c: Scored): number => w.blocked * c.blocked + w.revisit * c.revisit;
    const goalTotal = (c: Scored): number => c.goal.score + w.safety * c.safety.score + w.noveltyInGoal * c.explore.score - penalty(c);
    const exploreTotal = (c: Scored): number => c.explore.score + w.safety * c.safety.score - penalty(c);

    const source = this.#opts.candidates ?? { kind: 'enumerate', form: 'canonical' };
    let scored: Scored[];
    try {
      if (source.kind === 'cem') {
        const byKey = new Map<string, Scored>();
        const cem = new CrossEntropyMethod(vocab, horizon, { ...source.options, seed });
        await cem.optimise(async (seqs, it) => {
          const batch = await scoreBatch(await imagine(seqs, (seed + it * 7919) >>> 0));
          for (const c of batch) byKey.set(c.rollout.instruction.actions.join('\u0000'), c);
          return batch.map(goalTotal);
        }, signal);
        scored = [...byKey.values()];
      } else {
        const seqs = this.#generate(source, vocab, horizon, seed);
        if (seqs.length === 0) throw new V4sError('E_CONFIG', 'WorldModelPlanner: the candidate generator produced no candidates');
        scored = await scoreBatch(await imagine(seqs, seed));
      }
    } catch (e) {
      if (signal?.aborted === true) throw e;
      if (isV4sError(e, 'E_CONFIG')) throw e;
      return fallback(`imagine/score failed, not acting on it: ${errorText(e)}`);
    }

    const goalScores = scored.map((c) => c.goal.score);
    const bestGoal = Math.max(...goalScores.filter(Number.isFinite));

    // 3. ObjectNav: stop on the current view's grounding (the model's `currentGrounding`, or the detector's).
    if (task === 'objectnav' && !voted) {
      currentStats ??= groundingStats0(scored.find((c) => c.rollout.currentGrounding !== undefined)?.rollout.currentGrounding);
      if (currentStats === undefined) {
        st.stopStreak = 0;
      } else {
        const reached = this.#objectReached(currentStats);
        // Near the goal and no imagined action gets a better view of it: MPC's "stop" candidate wins.
        const here = objectFrameScore(currentStats);
        const near =
          currentStats.area >= this.#stop.objectNearArea &&
          currentStats.bottom >= this.#stop.objectNearBottom &&
          bestGoal <= here + this.#stop.objectNoImprovementMargin;
        if (this.#passes(reached || near)) {
          const why = reached
            ? objectDetail(currentStats, 'current view')
            : `${objectDetail(currentStats, 'current view')}; near, and the best candidate's goal score ${bestGoal.toFixed(3)} ≤ the current view's ${here.toFixed(3)} + ${this.#stop.objectNoImprovementMargin}`;
          return finish([stopName], { candidates: this.#reports(scored, goalTotal), chosen: -1, reason: 'stop', detail: why });
        }
      }
    }

    // 4. Decide.
    const floor = this.#floor(task);
    const detailParts: string[] = [];
    if (currentStats !== undefined) detailParts.push(objectDetail(currentStats, 'current view'));
    if (blockedFirst) detailParts.push('last move collided: forward-first candidates penalised');
    if (goal === undefined || bestGoal >= floor) {
      const totals = scored.map(goalTotal);
      const chosen = argmax(totals);
      if (chosen < 0) return fallback('no candidate has a finite score');
      st.stepsSinceGoal = 0;
      const actions = this.#executed((scored[chosen] as Scored).rollout.instruction.actions, vocab);
      detailParts.push(`best goal score ${bestGoal.toFixed(3)} ≥ floor ${floor}`);
      return finish([...actions], { candidates: this.#reports(scored, goalTotal), chosen, reason: 'goal', detail: detailParts.join('; ') });
    }

    const every = this.#opts.lookAround?.every;
    if (every !== undefined && st.lookAroundDone && st.stepsSinceGoal >= every) {
      st.lookAroundDone = false;
      st.lookAroundLeft = -1;
    }
    if (!st.lookAroundDone) {
      if (st.lookAroundLeft < 0) st.lookAroundLeft = this.#lookAroundTurns(vocab, lookAction);
      if (st.lookAroundLeft > 0) {
        const n = Math.min(this.#actionsPerPlan, st.lookAroundLeft);
        st.lookAroundLeft -= n;
        if (st.lookAroundLeft === 0) st.lookAroundDone = true;
        st.stepsSinceGoal += n;
        detailParts.push(`best goal score ${bestGoal.toFixed(3)} < floor ${floor}; look-around, ${st.lookAroundLeft} turns left`);
        return finish(Array.from({ length: n }, () => lookAction), { candidates: this.#reports(scored, goalTotal), chosen: -1, reason: 'look-around', detail: detailParts.join('; ') });
      }
      st.lookAroundDone = true;
    }
    const totals = scored.map(exploreTotal);
    const chosen = argmax(totals);
    if (chosen < 0) return fallback('no candidate has a finite exploration score');
    const actions = this.#executed((scored[chosen] as Scored).rollout.instruction.actions, vocab);
    st.stepsSinceGoal += actions.length;
    detailParts.push(`best goal score ${bestGoal.toFixed(3)} < floor ${floor}; exploring by novelty`);
    return finish([...actions], { candidates: this.#reports(scored, exploreTotal), chosen, reason: 'explore', detail: detailParts.join('; ') });
  }

  #reports<T extends { rollout: Rollout; goal: CandidateScore; explore: CandidateScore; safety: CandidateScore; blocked: number; revisit: number }>(
    scored: readonly T[],
    total: (c: T) => number,
  ): CandidateReport[] {
    return scored.map((c) => {
      const terms: Record<string, number> = { goal: c.goal.score, explore: c.explore.score, safety: c.safety.score, blocked: c.blocked, revisit: c.revisit };
      for (const [prefix, s] of [['goal', c.goal], ['explore', c.explore], ['safety', c.safety]] as const) {
        for (const [k, v] of Object.entries(s.terms)) terms[`${prefix}.${k}`] = v;
      }
      return { instruction: c.rollout.instruction, score: total(c), terms, rollout: c.rollout };
    });
  }

  /** Update the episode state from the new observation: new episode detection, executed actions, pose. */
  #advanceState(obs: Observation, capabilities: Capabilities): EpisodeState {
    let st = this.#state;
    if (obs.step < st.lastStep || (obs.step === 0 && st.lastStep > 0)) {
      st = freshState();
      this.#state = st;
    }
    // Lockstep: one observation step per executed action; the rest of the last plan was not executed.
    const executed = st.lastStep >= 0 ? st.lastActions.slice(0, Math.max(0, obs.step - st.lastStep)) : [];
    st.pose = advancePose(st.pose, executed, obs, this.#vocabulary(capabilities));
    const vocab = this.#vocabulary(capabilities);
    const lastExecuted = executed[executed.length - 1];
    if (obs.collided === true && lastExecuted !== undefined && this.#isMove(lastExecuted, vocab)) {
      // Remember where the move was blocked: just ahead of the agent, along its heading.
      const spec = vocab[lastExecuted];
      const ahead = Math.min(0.3, Math.abs(spec?.amount ?? 0.25) + 0.05);
      st.obstacles.push({ x: st.pose.x - Math.sin(st.pose.yaw) * ahead, z: st.pose.z - Math.cos(st.pose.yaw) * ahead });
    }
    const last = st.visited[st.visited.length - 1];
    if (last === undefined || Math.hypot(last.x - st.pose.x, last.z - st.pose.z) > 0.05) st.visited.push(st.pose);
    st.recent.push(st.pose);
    if (st.recent.length > 8) st.recent.shift();
    return st;
  }

  #passes(condition: boolean): boolean {
    if (!condition) {
      this.#state.stopStreak = 0;
      return false;
    }
    this.#state.stopStreak++;
    return this.#state.stopStreak >= this.#stop.consecutive;
  }

  #objectReached(s: GroundingStats): boolean {
    return s.area >= this.#stop.objectArea && s.confidence >= this.#stop.objectConfidence && s.bottom >= this.#stop.objectBottom;
  }

  #floor(task: TaskName | undefined): number {
    const f = this.#opts.goalFloor;
    if (typeof f === 'number') return f;
    if (task === undefined) return -Infinity;
    return f?.[task] ?? DEFAULT_FLOOR[task];
  }

  /** The model's vocabulary restricted to actions the environment offers (when it lists them). */
  #vocabulary(capabilities: Capabilities): ActionVocabulary {
    const offered = capabilities.actions;
    const out: Record<string, WorldModelActionSpec> = {};
    for (const [name, spec] of Object.entries(this.#wm.info.actions)) {
      if (Object.keys(offered).length === 0 || offered[name] !== undefined) out[name] = spec;
    }
    if (plannableActions(out).length === 0) {
      throw new V4sError(
        'E_UNKNOWN_ACTION',
        `WorldModelPlanner: none of the model's actions (${Object.keys(this.#wm.info.actions).join(', ')}) is offered by the environment (${Object.keys(offered).join(', ')})`,
      );
    }
    return out;
  }

  #stopName(capabilities: Capabilities): string {
    const byKind = Object.entries(capabilities.actions).find(([, s]) => s.kind === 'stop');
    return byKind?.[0] ?? 'stop';
  }

  #isMove(name: string | undefined, vocab: ActionVocabulary): boolean {
    if (name === undefined) return false;
    const spec = vocab[name];
    return spec !== undefined && actionMotion(name, spec).forward !== 0;
  }

  #lookAroundAction(vocab: ActionVocabulary): string {
    const wanted = this.#opts.lookAround?.action;
    if (wanted !== undefined) {
      if (vocab[wanted] === undefined) throw new V4sError('E_CONFIG', `WorldModelPlanner: lookAround.action "${wanted}" is not a plannable action`);
      return wanted;
    }
    const turns = plannableActions(vocab).filter((a) => a.kind === 'turn');
    const left = turns.find((a) => a.direction > 0) ?? turns[0];
    // Without any turn, the safest fallback is the first plannable action.
    return (left ?? plannableActions(vocab)[0])?.name ?? 'turn_left';
  }

  #lookAroundTurns(vocab: ActionVocabulary, action: string): number {
    if (this.#opts.lookAround?.turns !== undefined) return Math.max(0, Math.floor(this.#opts.lookAround.turns));
    const spec = vocab[action];
    const deg = spec === undefined ? 0 : Math.abs(actionMotion(action, spec).yawDeg);
    return deg > 0 ? Math.round(360 / deg) : 0;
  }

  #generate(source: Exclude<CandidateSource, { kind: 'cem' }>, vocab: ActionVocabulary, horizon: number, seed: number): string[][] {
    switch (source.kind) {
      case 'enumerate':
        return enumerateCandidates(vocab, horizon, { ...(source.form !== undefined ? { form: source.form } : {}), ...(source.max !== undefined ? { max: source.max } : {}) });
      case 'sample':
        return sampleCandidates(vocab, horizon, source.count, createRng(seed), source.probabilities);
      case 'custom': {
        const seqs = source.generate(vocab, horizon, createRng(seed));
        for (const s of seqs) {
          if (s.length !== horizon) throw new V4sError('E_CONFIG', `WorldModelPlanner: custom candidate [${s.join(', ')}] has ${s.length} actions, horizon is ${horizon}`);
          for (const a of s) {
            const spec = vocab[a];
            if (spec === undefined || spec.kind === 'stop') throw new V4sError('E_CONFIG', `WorldModelPlanner: custom candidate action "${a}" is not plannable`);
          }
        }
        return seqs;
      }
    }
  }

  /** The actions of a chosen candidate to execute now (see `commitTurns`). */
  #executed(actions: readonly string[], vocab: ActionVocabulary): string[] {
    let n = this.#actionsPerPlan;
    if (this.#opts.commitTurns ?? true) {
      let k = 0;
      while (k < actions.length && vocab[actions[k] ?? ''] !== undefined && (vocab[actions[k] ?? '']?.kind === 'turn')) k++;
      if (k > 0) n = Math.max(n, Math.min(actions.length, k + 1));
    }
    return actions.slice(0, n);
  }

  /** Older frames from the context memory for novelty, at the model's resolution. */
  #memory(input: PlanningInput): Frame[] {
    const k = this.#opts.memoryFrames ?? 8;
    if (k <= 0 || input.context.size === 0) return [];
    const { width: W, height: H } = this.#wm.info.resolution;
    return input.context.select(k).frames.map((f) => (f.width === W && f.height === H ? f : resizeFrame(f, W, H, 'crop')));
  }

  /** Context for imagine: the buffer's selection with true step indices; the current view is the newest. */
  #context(input: PlanningInput, current: Frame): ImagineContext {
    const info = this.#wm.info;
    const k = Math.max(1, Math.min(this.#opts.contextFrames ?? info.maxContext, info.maxContext));
    const maxOffset = Math.max(0, -info.positionRange[0]);
    const step = input.observation.step;
    const { width: W, height: H } = info.resolution;
    let frames: Frame[] = [];
    let positions: number[] = [];
    if (input.context.size > 0) {
      const sel = input.context.select(k, { maxOffset });
      frames = sel.frames.map((f) => (f.width === W && f.height === H ? f : resizeFrame(f, W, H, 'crop')));
      positions = [...sel.positions];
    }
    const newest = positions[positions.length - 1];
    if (newest === undefined || newest < step) {
      frames.push(current);
      positions.push(step);
    } else if (newest === step) {
      frames[frames.length - 1] = current;
    }
    // Keep the model's trained range and size: drop the oldest beyond it.
    const last = positions[positions.length - 1] ?? step;
    while (positions.length > 1 && (positions.length > k || last - (positions[0] ?? last) > maxOffset)) {
      positions.shift();
      frames.shift();
    }
    return { frames, positions };
  }
}

function groundingStats0(map: GroundingMap | undefined): GroundingStats | undefined {
  return map === undefined ? undefined : groundingStats(map);
}

function objectDetail(s: GroundingStats, source: string): string {
  return `${source}: area ${s.area.toFixed(3)}, confidence ${s.confidence.toFixed(3)}, bottom ${s.bottom.toFixed(3)}, centrality ${s.centrality.toFixed(3)}`;
}

/** The default exploration scorer: novelty (0.5) + visitation (1). */
export function defaultExploreScorer(): Scorer {
  return composeScorers(
    [
      { scorer: noveltyScorer(), weight: 0.5 },
      { scorer: visitationScorer(), weight: 1 },
    ],
    'explore',
  );
}

/** The default goal scorer of a task. */
export function defaultGoalScorer(task: TaskName | undefined, detector?: GroundingDetector): Scorer {
  switch (task) {
    case 'imagenav':
      return imageGoalScorer();
    case 'pointnav':
      return pointGoalScorer();
    case 'objectnav':
      return objectGoalScorer(detector !== undefined ? { detector } : {});
    default:
      return { name: 'none', score: (rollouts) => Promise.resolve(rollouts.map(() => ({ score: 0, terms: {} }))) };
  }
}

/** The stop thresholds used when none are given (documented on `StopThresholds`). */
export const DEFAULT_STOP_THRESHOLDS: Readonly<Required<StopThresholds>> = DEFAULT_STOP;
/** The goal floors used when none are given (documented on `WorldModelPlannerOptions.goalFloor`). */
export const DEFAULT_GOAL_FLOORS: Readonly<Record<TaskName, number>> = DEFAULT_FLOOR;

/** Grounding of the current view from rollouts, when any rollout carries it. */
export function currentGroundingOf(rollouts: readonly Rollout[]): GroundingMap | undefined {
  return rollouts.find((r) => r.currentGrounding !== undefined)?.currentGrounding;
}
