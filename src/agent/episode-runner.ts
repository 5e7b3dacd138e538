/**
 * Run an evaluation: N episodes (seeds × task) of a planner over an environment, one row per episode
 * appended (with fsync) to a JSONL file as each finishes, resumable without duplicates.
 *
 * Environment failures (a simulator that disappears, a step that times out) abort the episode with status
 * `aborted` and its reason; they are not counted against the agent, and the evaluation goes on with the
 * next episode. Planner failures give status `error` and count as failures. Aborting `signal` stops the
 * evaluation at once and writes no row for the interrupted episode (a resume runs it again).
 *
 * Usage:
 * ```ts
 * const result = await runEvaluation({
 *   environment: () => connectSimulator('ws://127.0.0.1:8765'),
 *   planner: (ep) => new RandomPlanner({ seed: ep.seed }),
 *   plannerName: 'random',
 *   episodes: seedRange(0, 9).map((seed) => ({ seed, task: 'objectnav' })),
 *   out: 'runs/results.jsonl', resume: true,
 * });
 * console.log(formatSummaryTable(result.summaries));
 * ```
 */
import { V4sError, isV4sError } from '../errors.js';
import type { Planner } from '../planner/planner.js';
import type { Environment, ResetOptions, TaskName } from '../sim-adapters/environment.js';
import type { Observation } from '../types.js';
import { runEpisode, type AgentOptions, type EpisodeTrace, type RunEpisodeOptions } from './agent.js';
import { episodeMetrics, groupRows, type EvaluationSummary } from './metrics.js';
import {
  EPISODE_ROW_SCHEMA,
  ResultsWriter,
  completedKeys,
  latestRows,
  readResults,
  type EpisodeRow,
} from './results.js';

/** One episode to run. */
export interface EvaluationEpisode {
  readonly seed?: number;
  readonly task?: TaskName;
  /** An episode id the simulator knows (dataset episodes). */
  readonly episode?: string;
  /** Row key; default `<planner>/<task>/seed-<seed>` (or `episode-<id>`). */
  readonly key?: string;
}

/** Seeds `a..b` inclusive, e.g. for `--seeds 0..9`. */
export function seedRange(first: number, last: number): number[] {
  if (!Number.isInteger(first) || !Number.isInteger(last) || last < first) {
    throw new V4sError('E_CONFIG', `seed range ${String(first)}..${String(last)} is not an ascending integer range`);
  }
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

/** The default row key of an episode. */
export function episodeKey(plannerName: string, spec: EvaluationEpisode): string {
  if (spec.key !== undefined) return spec.key;
  const id = spec.seed !== undefined ? `seed-${spec.seed}` : spec.episode !== undefined ? `episode-${spec.episode}` : 'default';
  return `${plannerName}/${spec.task ?? 'default'}/${id}`;
}

export interface EpisodeRunOptions extends Omit<RunEpisodeOptions, 'reset'> {
  /** Row key override (else `episodeKey`). */
  readonly key?: string;
}

/** A row and, when the episode ran to its end, its trace. */
export interface EpisodeOutcome {
  readonly row: EpisodeRow;
  readonly trace?: EpisodeTrace;
}

function isAbortOf(signal: AbortSignal | undefined, e: unknown): boolean {
  return signal?.aborted === true && e === signal.reason;
}

/**
 * Run one episode and turn it into a row. Resolves for `ok`, `aborted` and `error` alike; rejects only when
 * `options.signal` aborts (with its reason).
 */
export async function runEpisodeRow(env: Environment, planner: Planner, spec: EvaluationEpisode, options: EpisodeRunOptions = {}): Promise<EpisodeOutcome> {
  const startedAt = new Date();
  const t0 = performance.now();
  const latencies: number[] = [];
  let initial: Observation | undefined;
  let last: Observation | undefined;
  let steps = 0;
  let collisions = 0;
  const reset: ResetOptions = {
    ...(spec.seed !== undefined ? { seed: spec.seed } : {}),
    ...(spec.task !== undefined ? { task: spec.task } : {}),
    ...(spec.episode !== undefined ? { episode: spec.episode } : {}),
  };
  // Track progress through the hooks so that an aborted episode's row still has its steps and latencies.
  const agentOptions: RunEpisodeOptions = {
    ...options,
    reset,
    onObservation: (o) => {
      initial ??= o;
      last = o;
      options.onObservation?.(o);
    },
    onDecision: (record, plan) => {
      latencies.push(record.latencyMs);
      options.onDecision?.(record, plan);
    },
    onStep: (event) => {
      steps = event.stepsTaken;
      if (event.result.observation.collided === true) collisions++;
      options.onStep?.(event);
    },
  };
  const base = {
    schema: EPISODE_ROW_SCHEMA,
    key: options.key ?? episodeKey(planner.name, spec),
    planner: planner.name,
    ...(spec.task !== undefined ? { task: spec.task } : {}),
    ...(spec.seed !== undefined ? { seed: spec.seed } : {}),
    ...(spec.episode !== undefined ? { episode: spec.episode } : {}),
    startedAt: startedAt.toISOString(),
  };
  try {
    const trace = await runEpisode(env, planner, agentOptions);
    const m = episodeMetrics(trace);
    const row: EpisodeRow = {
      ...base,
      status: 'ok',
      ...m,
      endReason: trace.endReason,
      durationMs: performance.now() - t0,
    };
    return { row, trace };
  } catch (e) {
    if (isAbortOf(options.signal, e)) throw e;
    const aborted = isV4sError(e, 'E_ABORTED');
    const code = aborted ? (typeof e.details?.['code'] === 'string' ? e.details['code'] : e.code) : isV4sError(e) ? e.code : undefined;
    const reason = e instanceof Error ? e.message : String(e);
    const dT = last?.info.distanceToGoal;
    const d0 = initial?.info.distanceToGoal;
    const row: EpisodeRow = {
      ...base,
      status: aborted ? 'aborted' : 'error',
      reason,
      ...(code !== undefined ? { errorCode: code } : {}),
      success: false,
      spl: aborted ? null : 0,
      softSpl: aborted ? null : 0,
      distanceToGoal: typeof dT === 'number' && Number.isFinite(dT) ? dT : null,
      initialDistanceToGoal: typeof d0 === 'number' && Number.isFinite(d0) ? d0 : null,
      shortestPathLength: null,
      pathLength: null,
      steps,
      collisions,
      endReason: null,
      decisionLatenciesMs: latencies,
      durationMs: performance.now() - t0,
    };
    return { row };
  }
}

export interface EvaluationOptions extends Omit<AgentOptions, 'reset'> {
  /** An environment, or a factory called for the first episode and again after an aborted one. */
  readonly environment: Environment | (() => Promise<Environment>);
  /** A planner, or a factory called per episode (e.g. to seed a random planner per episode). */
  readonly planner: Planner | ((episode: EvaluationEpisode) => Planner);
  /** Planner name for row keys without building a planner (give it when the factory is expensive). */
  readonly plannerName?: string;
  readonly episodes: readonly EvaluationEpisode[];
  /** JSONL results file; rows are appended with fsync as each episode finishes. */
  readonly out?: string;
  /** Skip episodes whose key is already in `out` (without it, a non-empty `out` is refused). */
  readonly resume?: boolean;
  /** With `resume`, run aborted episodes again. */
  readonly retryAborted?: boolean;
  /** Keep frames in each trace (for strips/GIFs, via `onEpisode`). */
  readonly recordFrames?: RunEpisodeOptions['recordFrames'];
  /** Called after each episode's row is on disk (progress bars, reports). */
  readonly onEpisode?: (outcome: EpisodeOutcome, done: number, total: number) => void | Promise<void>;
}

export interface EvaluationResult {
  /** Rows written by this run, in order. */
  readonly rows: EpisodeRow[];
  /** Keys skipped because `out` already had them. */
  readonly skipped: string[];
  /** This run's rows plus, with `out`, the file's earlier rows (the newest row per key). */
  readonly allRows: EpisodeRow[];
  /** `allRows` aggregated per planner × task. */
  readonly summaries: EvaluationSummary[];
}

/**
 * Run the episodes in order; see the module comment. Rejects with `signal.reason` when aborted, with
 * `E_PATH` for an unusable `out`, or with the error of a user callback (`onEpisode`).
 */
export async function runEvaluation(options: EvaluationOptions): Promise<EvaluationResult> {
  const { out, signal } = options;
  signal?.throwIfAborted();
  let done = new Set<string>();
  let writer: ResultsWriter | undefined;
  if (out !== undefined) {
    writer = await ResultsWriter.open(out);
    if (options.resume === true) {
      done = await completedKeys(out, { retryAborted: options.retryAborted === true });
    } else {
      const existing = await readResults(out);
      if (existing.length > 0) {
        throw new V4sError('E_PATH', `results file ${out} already holds ${existing.length} rows: resume it, or write elsewhere`);
      }
    }
  }
  const plannerFor = (spec: EvaluationEpisode): Planner => (typeof options.planner === 'function' ? options.planner(spec) : options.planner);
  const fixedName = options.plannerName ?? (typeof options.planner === 'function' ? undefined : options.planner.name);

  const factory = typeof options.environment === 'function' ? options.environment : undefined;
  let env: Environment | undefined = typeof options.environment === 'function' ? undefined : options.environment;
  const closeOwned = async (): Promise<void> => {
    if (factory !== undefined && env !== undefined) {
      const e = env;
      env = undefined;
      await e.close().catch(() => undefined);
    }
  };

  const agentOptions: EpisodeRunOptions = {
    ...(options.context !== undefined ? { context: options.context } : {}),
    ...(options.maxSteps !== undefined ? { maxSteps: options.maxSteps } : {}),
    ...(options.actionsPerPlan !== undefined ? { actionsPerPlan: options.actionsPerPlan } : {}),
    ...(options.planTimeoutMs !== undefined ? { planTimeoutMs: options.planTimeoutMs } : {}),
    ...(options.recordFrames !== undefined ? { recordFrames: options.recordFrames } : {}),
    ...(options.onObservation !== undefined ? { onObservation: options.onObservation } : {}),
    ...(options.onDecision !== undefined ? { onDecision: options.onDecision } : {}),
    ...(options.onStep !== undefined ? { onStep: options.onStep } : {}),
    ...(signal !== undefined ? { signal } : {}),
  };
  const rows: EpisodeRow[] = [];
  const skipped: string[] = [];
  const total = options.episodes.length;
  let finished = 0;
  try {
    for (const spec of options.episodes) {
      signal?.throwIfAborted();
      let planner: Planner | undefined;
      const name = fixedName ?? (planner = plannerFor(spec)).name;
      const key = episodeKey(name, spec);
      if (done.has(key)) {
        skipped.push(key);
        finished++;
        continue;
      }
      planner ??= plannerFor(spec);
      let result: EpisodeOutcome | undefined;
      if (env === undefined && factory !== undefined) {
        try {
          env = await factory();
        } catch (e) {
          if (isAbortOf(signal, e)) throw e;
          result = { row: abortedBeforeStart(name, key, spec, e) };
        }
      }
      if (result === undefined && env !== undefined) {
        result = await runEpisodeRow(env, planner, spec, { ...agentOptions, key });
        if (result.row.status === 'aborted') await closeOwned();
      }
      if (result === undefined) throw new V4sError('E_CONFIG', 'runEvaluation: no environment'); // unreachable
      if (writer !== undefined) await writer.append(result.row);
      rows.push(result.row);
      done.add(key);
      finished++;
      await options.onEpisode?.(result, finished, total);
    }
  } finally {
    await closeOwned();
  }
  const allRows = out !== undefined ? latestRows(await readResults(out)) : rows;
  return { rows, skipped, allRows, summaries: groupRows(allRows) };
}

function abortedBeforeStart(planner: string, key: string, spec: EvaluationEpisode, e: unknown): EpisodeRow {
  return {
    schema: EPISODE_ROW_SCHEMA,
    key,
    planner,
    ...(spec.task !== undefined ? { task: spec.task } : {}),
    ...(spec.seed !== undefined ? { seed: spec.seed } : {}),
    ...(spec.episode !== undefined ? { episode: spec.episode } : {}),
    status: 'aborted',
    reason: `environment could not be created: ${e instanceof Error ? e.message : String(e)}`,
    ...(isV4sError(e) ? { errorCode: e.code } : {}),
    success: false,
    spl: null,
    softSpl: null,
    distanceToGoal: null,
    initialDistanceToGoal: null,
    shortestPathLength: null,
    pathLength: null,
    steps: 0,
    collisions: 0,
    endReason: null,
    decisionLatenciesMs: [],
    startedAt: new Date().toISOString(),
    durationMs: 0,
  };
}
