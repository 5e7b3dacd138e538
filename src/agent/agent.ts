/**
 * The agent loop: observations flow through RxJS into the context buffer; the planner runs on the latest
 * context; the plan's actions are sent in order; the loop ends on `stop`, when the episode ends, or at
 * `maxSteps`.
 *
 * Back-pressure (coalescing policy, "latest wins"): at most one decision (plan + its actions) runs at a time.
 * Frames that arrive meanwhile still go into the buffer at once (so memory and context stay current), but
 * they do not queue decisions: when the decision finishes, one new decision starts if any frame arrived,
 * and it plans on the newest observation. Intermediate frames never trigger a plan of their own. Memory
 * stays bounded by the buffer's capacity however fast frames arrive (see `exhaustMapLatest`).
 *
 * Failures never escape as unhandled rejections: planner errors, invalid plans, hook errors and environment
 * errors all end the stream with an error (or reject `runEpisode`). Environment errors are wrapped in a
 * `V4sError('E_ABORTED')` whose `cause` is the original, so an evaluator can tell them from agent failures.
 *
 * Usage:
 * ```ts
 * const trace = await runEpisode(env, new RandomPlanner({ seed: 1 }), { reset: { seed: 7 }, maxSteps: 500 });
 * console.log(trace.endReason, trace.final.info.success);
 * ```
 */
import {
  Observable,
  Subject,
  defer,
  from,
  merge,
  of,
  switchMap,
  catchError,
  filter,
  takeWhile,
  throwError,
  type ObservableInput,
  type OperatorFunction,
} from 'rxjs';
import { V4sError, isV4sError } from '../errors.js';
import type { Planner, Plan, Decision } from '../planner/planner.js';
import type { EpisodeGoal, Environment, ResetOptions, StepResult } from '../sim-adapters/environment.js';
import type { Action, Frame, Observation } from '../types.js';
import { ContextBuffer, type ContextBufferOptions } from './context-buffer.js';
import { resizeFrame } from './frames.js';

/**
 * Like `exhaustMap`, but with a trailing "latest wins" slot: while the inner observable of one value runs,
 * later values overwrite a single pending slot instead of being dropped or queued; when the inner completes,
 * the pending value (if any) is projected next. So a slow consumer never builds a queue, and the newest
 * value is never lost. Errors of the source, the projection or an inner end the output with that error.
 *
 * Usage: `frames$.pipe(exhaustMapLatest((frame) => plan(frame)))`.
 */
export function exhaustMapLatest<T, R>(project: (value: T, index: number) => ObservableInput<R>): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      let busy = false;
      let pending: { readonly value: T } | undefined;
      let sourceDone = false;
      let index = 0;

      const start = (value: T): void => {
        busy = true;
        let input: ObservableInput<R>;
        try {
          input = project(value, index++);
        } catch (e) {
          subscriber.error(e);
          return;
        }
        const inner = from(input).subscribe({
          next: (r) => subscriber.next(r),
          error: (e: unknown) => subscriber.error(e),
          complete: () => {
            busy = false;
            drain();
          },
        });
        subscriber.add(inner);
      };

      const drain = (): void => {
        if (busy || subscriber.closed) return;
        if (pending !== undefined) {
          const { value } = pending;
          pending = undefined;
          start(value);
          return;
        }
        if (sourceDone) subscriber.complete();
      };

      const outer = source.subscribe({
        next: (value) => {
          if (busy) pending = { value };
          else start(value);
        },
        error: (e: unknown) => subscriber.error(e),
        complete: () => {
          sourceDone = true;
          drain();
        },
      });
      return () => outer.unsubscribe();
    });
}

/** Why an episode ended. */
export type EndReason = 'stop' | 'terminated' | 'truncated' | 'max-steps';

/** One planner call, as recorded for reports. */
export interface DecisionRecord {
  /** 0-based decision number within the episode. */
  readonly index: number;
  /** Step of the observation planned on. */
  readonly step: number;
  /** Steps taken before this decision. */
  readonly stepsTaken: number;
  /** Wall time of `planner.plan`, milliseconds (measured by the loop). */
  readonly latencyMs: number;
  /** Actions of the plan (before the `actionsPerPlan` cap). */
  readonly actions: readonly Action[];
  /** Frames in the buffer when planning started. */
  readonly contextSize: number;
  /** The planner's own diagnostics, when it gives them. */
  readonly decision?: Decision;
}

/** Events of one episode, in order, as `agentEpisode$` emits them. */
export type AgentEvent =
  | { readonly type: 'episode-start'; readonly observation: Observation; readonly goal?: EpisodeGoal }
  | { readonly type: 'observation'; readonly observation: Observation }
  | { readonly type: 'decision'; readonly record: DecisionRecord; readonly plan: Plan }
  | {
      readonly type: 'step';
      /** Steps taken so far, this one included. */
      readonly stepsTaken: number;
      readonly action: Action;
      readonly result: StepResult;
    }
  | {
      readonly type: 'episode-end';
      readonly reason: EndReason;
      readonly stepsTaken: number;
      readonly observation: Observation;
    };

export interface AgentOptions {
  /** A buffer to use (cleared at the episode start) or options for a fresh one. */
  readonly context?: ContextBuffer | ContextBufferOptions;
  /** Options passed to `env.reset`. */
  readonly reset?: ResetOptions;
  /** Most `env.step` calls (the simulator's own step limit usually ends the episode first). Default: no limit. */
  readonly maxSteps?: number;
  /** Execute at most this many actions of each plan before re-planning. Default: all of them. */
  readonly actionsPerPlan?: number;
  /** Fail the episode with `E_TIMEOUT` when the planner takes longer (the planner's signal is aborted). */
  readonly planTimeoutMs?: number;
  /** Aborting ends the loop at once: the planner's signal aborts, the stream errors with `signal.reason`. */
  readonly signal?: AbortSignal;
  /** Called for every observation the agent takes in (errors thrown end the episode). */
  readonly onObservation?: (observation: Observation) => void;
  /** Called after every planner decision. */
  readonly onDecision?: (record: DecisionRecord, plan: Plan) => void;
  /** Called after every environment step. */
  readonly onStep?: (event: Extract<AgentEvent, { type: 'step' }>) => void;
}

/** What `runEpisode` returns. */
export interface EpisodeTrace {
  readonly goal?: EpisodeGoal;
  /** The observation returned by `reset`. */
  readonly initial: Observation;
  /** The last observation (its `info` carries the episode's success and distances). */
  readonly final: Observation;
  readonly stepsTaken: number;
  readonly endReason: EndReason;
  readonly decisions: DecisionRecord[];
  /** Steps whose observation reported a collision. */
  readonly collisions: number;
  /** Names of the actions sent, in order. */
  readonly actions: string[];
  /** What the agent saw, one frame per observation taken in, when `recordFrames` was asked for. */
  readonly frames?: Frame[];
}

export interface RunEpisodeOptions extends AgentOptions {
  /** Keep the observed frames in the trace (`true`), or downsampled to a size (centre-cropped). Default false. */
  readonly recordFrames?: boolean | { readonly width: number; readonly height: number };
}

function checkCount(name: string, v: number | undefined): void {
  if (v === undefined || v === Infinity) return;
  if (!Number.isInteger(v) || v < 1) throw new V4sError('E_CONFIG', `agent: ${name} must be a positive integer, got ${String(v)}`);
}

function describe(e: unknown): string {
  if (isV4sError(e)) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

/** Wrap an environment failure as `E_ABORTED` (not the agent's fault), keeping the original as `cause`. */
export function environmentFailure(op: string, e: unknown): V4sError {
  if (isV4sError(e, 'E_ABORTED')) return e;
  const details: Record<string, unknown> = { op };
  if (isV4sError(e)) details['code'] = e.code;
  return new V4sError('E_ABORTED', `environment failed during ${op}: ${describe(e)}`, details, { cause: e });
}

/** Settle with `promise`, or reject as soon as `signal` aborts. The losing promise's rejection is handled. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      promise.then(undefined, () => undefined);
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function abortError(message: string): Error {
  return new DOMException(message, 'AbortError');
}

/**
 * One episode as a cold Observable of `AgentEvent`s: subscribing resets the environment and starts the loop;
 * it completes after `episode-end`. Unsubscribing stops it (the planner's signal aborts; no further steps).
 */
export function agentEpisode$(env: Environment, planner: Planner, options: AgentOptions = {}): Observable<AgentEvent> {
  checkCount('maxSteps', options.maxSteps);
  checkCount('actionsPerPlan', options.actionsPerPlan);
  const timeout = options.planTimeoutMs;
  if (timeout !== undefined && !(timeout > 0 && Number.isFinite(timeout))) {
    throw new V4sError('E_CONFIG', `agent: planTimeoutMs must be a positive number, got ${String(timeout)}`);
  }
  return new Observable<AgentEvent>((subscriber) => {
    const controller = new AbortController();
    const signal = controller.signal;
    const buffer = options.context instanceof ContextBuffer ? options.context : new ContextBuffer(options.context);
    buffer.clear();
    const maxSteps = options.maxSteps ?? Infinity;
    const perPlan = options.actionsPerPlan ?? Infinity;
    const caps = env.capabilities;
    const stepped = new Subject<Observation>();
    let latest: Observation | undefined;
    let goal: EpisodeGoal | undefined;
    let stepsTaken = 0;
    let decisions = 0;

    const emit = (event: AgentEvent): void => {
      if (event.type === 'observation') options.onObservation?.(event.observation);
      else if (event.type === 'decision') options.onDecision?.(event.record, event.plan);
      else if (event.type === 'step') options.onStep?.(event);
      subscriber.next(event);
    };

    /** Into the buffer; a malformed frame is the environment's failure, not the agent's. */
    const remember = (o: Observation): void => {
      try {
        buffer.push(o);
      } catch (e) {
        throw environmentFailure(`observation ${String(o.step)}`, e);
      }
      latest = o;
    };

    /** Take an observation in; true when it should trigger a decision (a newer step). */
    const ingest = (o: Observation): boolean => {
      if (latest !== undefined && o.step < latest.step) return false; // stale (e.g. a previous episode's frame)
      if (latest !== undefined && o.step === latest.step) {
        // Same step delivered again (lockstep echo) or a fresher frame of it (stream): latest wins, no event.
        if (o !== latest) remember(o);
        return false;
      }
      remember(o);
      emit({ type: 'observation', observation: o });
      return true;
    };

    const end = (reason: EndReason, observation: Observation): true => {
      emit({ type: 'episode-end', reason, stepsTaken, observation });
      return true;
    };

    const plan = async (observation: Observation): Promise<Plan> => {
      // A per-decision signal linked by hand (not AbortSignal.any, whose dependants pile up on a long-lived
      // parent signal over thousands of decisions).
      const local = new AbortController();
      const planSignal = local.signal;
      const forward = (): void => local.abort(signal.reason);
      if (signal.aborted) forward();
      else signal.addEventListener('abort', forward, { once: true });
      let timer: NodeJS.Timeout | undefined;
      if (options.planTimeoutMs !== undefined) {
        const ms = options.planTimeoutMs;
        timer = setTimeout(
          () => local.abort(new V4sError('E_TIMEOUT', `planner "${planner.name}" gave no plan within ${ms} ms`, { timeoutMs: ms })),
          ms,
        );
      }
      try {
        const p = (async () =>
          planner.plan({ observation, context: buffer, capabilities: caps, stepsTaken, ...(goal !== undefined ? { goal } : {}) }, planSignal))();
        return await raceAbort(p, planSignal);
      } finally {
        signal.removeEventListener('abort', forward);
        if (timer !== undefined) clearTimeout(timer);
      }
    };

    /** One decision: plan on the latest observation, then send its actions. Resolves true when the episode ended. */
    const decide = async (): Promise<boolean> => {
      const observation = latest;
      if (observation === undefined) throw new V4sError('E_CONTEXT_EMPTY', 'agent: no observation to plan on');
      if (stepsTaken >= maxSteps) return end('max-steps', observation);
      const contextSize = buffer.size;
      const t0 = performance.now();
      const result = await plan(observation);
      const latencyMs = performance.now() - t0;
      if (!Array.isArray(result.actions) || result.actions.length === 0) {
        throw new V4sError('E_PLAN', `planner "${planner.name}" returned a plan with no actions`);
      }
      for (const a of result.actions) {
        if (caps.actions[a.name] === undefined) {
          throw new V4sError(
            'E_UNKNOWN_ACTION',
            `planner "${planner.name}" chose action "${a.name}", which the environment does not offer (${Object.keys(caps.actions).join(', ')})`,
          );
        }
      }
      const record: DecisionRecord = {
        index: decisions++,
        step: observation.step,
        stepsTaken,
        latencyMs,
        actions: result.actions,
        contextSize,
        ...(result.decision !== undefined ? { decision: result.decision } : {}),
      };
      emit({ type: 'decision', record, plan: result });
      const n = Math.min(result.actions.length, perPlan);
      for (let i = 0; i < n; i++) {
        const action = result.actions[i];
        if (action === undefined) break;
        if (signal.aborted) throw signal.reason;
        let step: StepResult;
        try {
          step = await raceAbort(env.step(action), signal);
        } catch (e) {
          if (signal.aborted && e === signal.reason) throw e;
          throw environmentFailure(`step(${action.name})`, e);
        }
        stepsTaken++;
        stepped.next(step.observation);
        emit({ type: 'step', stepsTaken, action, result: step });
        const isStop = action.name === 'stop' || caps.actions[action.name]?.kind === 'stop';
        if (isStop) return end('stop', step.observation);
        if (step.terminated) return end('terminated', step.observation);
        if (step.truncated) return end('truncated', step.observation);
        if (stepsTaken >= maxSteps) return end('max-steps', step.observation);
      }
      return false;
    };

    const fail = (e: unknown): void => {
      if (!signal.aborted) controller.abort(e);
      subscriber.error(e);
    };

    const onExternalAbort = (): void => fail(options.signal?.reason ?? abortError('the episode was aborted'));
    if (options.signal?.aborted === true) {
      onExternalAbort();
      return undefined;
    }
    options.signal?.addEventListener('abort', onExternalAbort, { once: true });

    const loop = defer(() => raceAbort(env.reset(options.reset), signal)).pipe(
      catchError((e: unknown) => throwError(() => (signal.aborted && e === signal.reason ? e : environmentFailure('reset', e)))),
      switchMap((reset) => {
        goal = reset.goal;
        planner.reset?.(goal);
        emit({ type: 'episode-start', observation: reset.observation, ...(goal !== undefined ? { goal } : {}) });
        const pushed = env.observations$.pipe(catchError((e: unknown) => throwError(() => environmentFailure('observations$', e))));
        return merge(of(reset.observation), pushed, stepped).pipe(
          filter(ingest),
          exhaustMapLatest(() => defer(decide)),
          takeWhile((done) => !done),
        );
      }),
    );
    const sub = loop.subscribe({ error: fail, complete: () => subscriber.complete() });

    return () => {
      options.signal?.removeEventListener('abort', onExternalAbort);
      if (!signal.aborted) controller.abort(abortError('the episode stream was unsubscribed'));
      sub.unsubscribe();
      stepped.complete();
    };
  });
}

/**
 * Run one episode to its end and collect a trace. Rejects (never throws synchronously, never leaves an
 * unhandled rejection) with `E_ABORTED` for environment failures, the planner's error for planner failures,
 * `E_TIMEOUT` for a planner past `planTimeoutMs`, or `signal.reason` when aborted.
 */
export function runEpisode(env: Environment, planner: Planner, options: RunEpisodeOptions = {}): Promise<EpisodeTrace> {
  return new Promise<EpisodeTrace>((resolve, reject) => {
    const record = options.recordFrames ?? false;
    const frames: Frame[] = [];
    const decisions: DecisionRecord[] = [];
    const actions: string[] = [];
    let initial: Observation | undefined;
    let goal: EpisodeGoal | undefined;
    let collisions = 0;
    let ended: Extract<AgentEvent, { type: 'episode-end' }> | undefined;
    let stream: Observable<AgentEvent>;
    try {
      stream = agentEpisode$(env, planner, options);
    } catch (e) {
      reject(e);
      return;
    }
    stream.subscribe({
      next: (event) => {
        switch (event.type) {
          case 'episode-start':
            initial = event.observation;
            goal = event.goal;
            break;
          case 'observation':
            if (record === true) {
              const { width, height, data } = event.observation.rgb;
              frames.push({ width, height, data: new Uint8Array(data) }); // a copy: never retain a socket buffer
            }
            else if (record !== false) frames.push(resizeFrame(event.observation.rgb, record.width, record.height, 'crop'));
            break;
          case 'decision':
            decisions.push(event.record);
            break;
          case 'step':
            actions.push(event.action.name);
            if (event.result.observation.collided === true) collisions++;
            break;
          case 'episode-end':
            ended = event;
            break;
        }
      },
      error: reject,
      complete: () => {
        if (ended === undefined || initial === undefined) {
          reject(new V4sError('E_ABORTED', 'agent: the episode stream completed without an end'));
          return;
        }
        resolve({
          ...(goal !== undefined ? { goal } : {}),
          initial,
          final: ended.observation,
          stepsTaken: ended.stepsTaken,
          endReason: ended.reason,
          decisions,
          collisions,
          actions,
          ...(record !== false ? { frames } : {}),
        });
      },
    });
  });
}
