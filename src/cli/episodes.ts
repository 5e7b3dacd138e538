/**
 * Runs episodes for `v4s eval` and `v4s demo` over N simulator connections at once: each worker holds its
 * own connection (and so its own simulator and episode on the server) and pulls the next episode from a
 * shared queue. Rows are appended to one results file as they finish (`ResultsWriter` serialises appends).
 *
 * Per episode it builds a fresh planner (seeded by the episode seed, so a resumed run reproduces a full run).
 * An `aborted` episode (the environment failed) closes its worker's connection; the next episode reconnects.
 * Configuration errors (a model trained on other step sizes, a server without the oracle op) stop all workers.
 */
import { V4sError } from '../errors.js';
import { episodeKey, runEpisodeRow, type EpisodeOutcome, type EpisodeRunOptions, type EvaluationEpisode } from '../agent/episode-runner.js';
import { EPISODE_ROW_SCHEMA, type EpisodeRow, type ResultsWriter } from '../agent/results.js';
import type { Planner } from '../planner/planner.js';
import type { Environment } from '../sim-adapters/environment.js';
import type { PlannerSetup } from './planners.js';

/** Options of `runEpisodePool`. */
export interface EpisodePoolOptions {
  readonly setup: PlannerSetup;
  /** Opens one connection (called per worker, and again after an aborted episode). */
  readonly connect: () => Promise<Environment>;
  readonly episodes: readonly EvaluationEpisode[];
  /** Connections (workers) at once. Default 1. */
  readonly parallel?: number;
  readonly maxSteps?: number;
  readonly signal?: AbortSignal;
  /** Rows are appended here as episodes finish. */
  readonly writer?: ResultsWriter;
  /** Per-episode run options (hooks) and the environment the episode runs on (e.g. a wrapper). */
  readonly prepare?: (spec: EvaluationEpisode, env: Environment) => { readonly options?: Partial<EpisodeRunOptions>; readonly env?: Environment };
  /** After each episode's row is on disk. */
  readonly onEpisode?: (outcome: EpisodeOutcome, spec: EvaluationEpisode, done: number, total: number) => void | Promise<void>;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A row for an episode whose connection could not be opened (environment failure: `aborted`). */
function connectFailedRow(planner: string, key: string, spec: EvaluationEpisode, e: unknown): EpisodeRow {
  return {
    schema: EPISODE_ROW_SCHEMA,
    key,
    planner,
    ...(spec.task !== undefined ? { task: spec.task } : {}),
    ...(spec.seed !== undefined ? { seed: spec.seed } : {}),
    ...(spec.episode !== undefined ? { episode: spec.episode } : {}),
    status: 'aborted',
    reason: `environment could not be created: ${describe(e)}`,
    ...(e instanceof V4sError ? { errorCode: e.code } : {}),
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

/**
 * Run `episodes` on `parallel` connections; resolves with the rows in finishing order. Rejects with the
 * signal's reason when aborted (finished rows are on disk), or with a configuration error.
 */
export async function runEpisodePool(options: EpisodePoolOptions): Promise<EpisodeRow[]> {
  const { setup, episodes } = options;
  const parallel = Math.max(1, Math.min(options.parallel ?? 1, episodes.length || 1));
  const stop = new AbortController();
  const forward = (): void => stop.abort(options.signal?.reason);
  if (options.signal?.aborted === true) forward();
  else options.signal?.addEventListener('abort', forward, { once: true });
  const signal = stop.signal;
  const rows: EpisodeRow[] = [];
  let next = 0;
  let done = 0;

  const worker = async (): Promise<void> => {
    let env: Environment | undefined;
    let plannerFor: ((spec: EvaluationEpisode) => Planner) | undefined;
    const close = async (): Promise<void> => {
      const e = env;
      env = undefined;
      plannerFor = undefined;
      if (e !== undefined) await e.close().catch(() => undefined);
    };
    try {
      while (next < episodes.length) {
        signal.throwIfAborted();
        const spec = episodes[next++] as EvaluationEpisode;
        const key = episodeKey(setup.name, spec);
        let outcome: EpisodeOutcome | undefined;
        if (env === undefined) {
          try {
            env = await options.connect();
          } catch (e) {
            signal.throwIfAborted();
            outcome = { row: connectFailedRow(setup.name, key, spec, e) };
          }
        }
        if (outcome === undefined && env !== undefined) {
          plannerFor ??= setup.forEnvironment(env); // configuration errors (step sizes, oracle) escape: fatal
          const planner = plannerFor(spec);
          const prepared = options.prepare?.(spec, env);
          outcome = await runEpisodeRow(prepared?.env ?? env, planner, spec, {
            ...prepared?.options,
            ...(options.maxSteps !== undefined ? { maxSteps: options.maxSteps } : {}),
            signal,
            key,
          });
          if (outcome.row.status === 'aborted') await close();
        }
        if (outcome === undefined) throw new V4sError('E_CONFIG', 'episode pool: no outcome'); // unreachable
        await options.writer?.append(outcome.row);
        rows.push(outcome.row);
        done++;
        await options.onEpisode?.(outcome, spec, done, episodes.length);
      }
    } catch (e) {
      if (!signal.aborted) stop.abort(e);
      throw e;
    } finally {
      await close();
    }
  };

  try {
    const results = await Promise.allSettled(Array.from({ length: parallel }, worker));
    // A failing worker aborts the others with its error, so the signal's reason is the first failure.
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw signal.aborted ? signal.reason : failed.reason;
  } finally {
    options.signal?.removeEventListener('abort', forward);
  }
  return rows;
}
