/**
 * Many agents, one model: a `WorldModel` that gathers the `imagine` calls of concurrent agents within a short
 * window and runs them as ONE batched call of the wrapped model, then hands each agent its own rollouts.
 *
 * With a model package (local `OnnxWorldModel` or `RemoteWorldModel`), the batch is the wrapped model's
 * `imagineBatch`: every denoising step is one network evaluation (one `session.run`, or one `infer` request)
 * for all agents' candidates × guidance branches, each agent with its own context and its own noise streams,
 * so an agent's result equals its unbatched result for the same seed. Requests that cannot share a step (a
 * different number of context frames, horizon, sampler or guidance) run as separate groups of that call.
 * Models without `imagineBatch` (the simulator oracle) get the calls one by one.
 *
 * Flushing: the window starts when a call arrives at an empty queue; the batch goes when the window ends or
 * when `maxBatch` calls (or `maxCandidates` candidates) are waiting. One batch is in flight at a time: calls
 * that arrive meanwhile form the next one. If a batch fails with an error that one request can cause
 * (E_MODEL_INPUT, E_MODEL_ACTION, E_MODEL_OUTPUT), its calls are retried one by one so only the culprit fails.
 *
 * Usage:
 * ```
 * const shared = new BatchingWorldModel(await loadWorldModel(dir), { windowMs: 5, maxBatch: 16 });
 * // give `shared` to every agent's WorldModelPlanner; they may call imagine() concurrently
 * ```
 */
import { V4sError, isV4sError, type V4sErrorCode } from '../errors.js';
import { WORLD_MODEL_SPEC_VERSION, type ImagineRequest, type Rollout, type WorldModel, type WorldModelInfo } from './world-model.js';

/** Options of `BatchingWorldModel`. */
export interface BatchingWorldModelOptions {
  /** How long the first waiting call waits for others to join, ms (default 2; 0 gathers calls of the same event-loop turn). */
  readonly windowMs?: number;
  /** Most calls in one batch (default 16). */
  readonly maxBatch?: number;
  /**
   * Most candidates, summed over the calls, in one batch (default: no limit). With a remote model keep
   * candidates × guidance branches within the server's `max_batch_size`.
   */
  readonly maxCandidates?: number;
  /** Dispose the wrapped model when this one is disposed (default true). */
  readonly disposeInner?: boolean;
}

/** Counters of a `BatchingWorldModel`. */
export interface BatchingStats {
  /** `imagine` calls received. */
  calls: number;
  /** Batches run (each one call of the wrapped model, or one call per request without `imagineBatch`). */
  batches: number;
  /** The largest batch, in calls. */
  maxBatchSize: number;
  /** Batches whose calls were retried one by one after a request-caused error. */
  isolated: number;
}

interface Pending {
  readonly request: ImagineRequest;
  readonly resolve: (r: Rollout[]) => void;
  readonly reject: (e: unknown) => void;
}

const ISOLATABLE: readonly V4sErrorCode[] = ['E_MODEL_INPUT', 'E_MODEL_ACTION', 'E_MODEL_OUTPUT'];

/** Gathers concurrent `imagine` calls into batched calls of the wrapped world model. */
export class BatchingWorldModel implements WorldModel {
  readonly specificationVersion = WORLD_MODEL_SPEC_VERSION;
  readonly info: WorldModelInfo;
  /** The wrapped model. */
  readonly inner: WorldModel;
  readonly #windowMs: number;
  readonly #maxBatch: number;
  readonly #maxCandidates: number;
  readonly #disposeInner: boolean;
  readonly #queue: Pending[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #windowDone = false;
  #inFlight = false;
  #disposed = false;
  #drained: (() => void) | undefined;
  #stats: BatchingStats = { calls: 0, batches: 0, maxBatchSize: 0, isolated: 0 };

  constructor(inner: WorldModel, options: BatchingWorldModelOptions = {}) {
    const windowMs = options.windowMs ?? 2;
    const maxBatch = options.maxBatch ?? 16;
    const maxCandidates = options.maxCandidates ?? Number.POSITIVE_INFINITY;
    if (!Number.isFinite(windowMs) || windowMs < 0) throw new V4sError('E_CONFIG', `BatchingWorldModel windowMs must be a non-negative number, got ${windowMs}`);
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) throw new V4sError('E_CONFIG', `BatchingWorldModel maxBatch must be an integer ≥ 1, got ${maxBatch}`);
    if (!(maxCandidates >= 1)) throw new V4sError('E_CONFIG', `BatchingWorldModel maxCandidates must be ≥ 1, got ${maxCandidates}`);
    this.inner = inner;
    this.info = inner.info;
    this.#windowMs = windowMs;
    this.#maxBatch = maxBatch;
    this.#maxCandidates = maxCandidates;
    this.#disposeInner = options.disposeInner ?? true;
  }

  /** Queue one agent's request; resolves with its own rollouts once its batch has run. */
  imagine(request: ImagineRequest): Promise<Rollout[]> {
    if (this.#disposed) return Promise.reject(new V4sError('E_MODEL_INPUT', `world model "${this.info.name}" (batching) was disposed`));
    this.#stats.calls++;
    return new Promise<Rollout[]>((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      this.#pump();
    });
  }

  /** Queue several requests at once (they join the current batch like separate calls). */
  imagineBatch(requests: readonly ImagineRequest[]): Promise<Rollout[][]> {
    return Promise.all(requests.map((r) => this.imagine(r)));
  }

  /** A copy of the counters. */
  stats(): BatchingStats {
    return { ...this.#stats };
  }

  /** Run what is queued, refuse new calls (E_MODEL_INPUT), then dispose the wrapped model (unless `disposeInner: false`). */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#windowDone = true;
    if (this.#inFlight || this.#queue.length > 0) {
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
        this.#pump();
      });
    }
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#disposeInner) await this.inner.dispose();
  }

  #full(): boolean {
    if (this.#queue.length >= this.#maxBatch) return true;
    let n = 0;
    for (const p of this.#queue) n += p.request.candidates.length;
    return n >= this.#maxCandidates;
  }

  #pump(): void {
    if (this.#queue.length === 0) {
      if (!this.#inFlight && this.#drained) {
        const done = this.#drained;
        this.#drained = undefined;
        done();
      }
      return;
    }
    if (this.#timer === undefined && !this.#windowDone) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#windowDone = true;
        this.#pump();
      }, this.#windowMs);
    }
    if (this.#inFlight) return;
    if (this.#windowDone || this.#full()) void this.#dispatch();
  }

  /** Take the calls of the next batch: in arrival order, within maxBatch and maxCandidates (at least one). */
  #take(): Pending[] {
    const batch: Pending[] = [];
    let candidates = 0;
    while (this.#queue.length > 0 && batch.length < this.#maxBatch) {
      const next = this.#queue[0] as Pending;
      const n = next.request.candidates.length;
      if (batch.length > 0 && candidates + n > this.#maxCandidates) break;
      batch.push(next);
      this.#queue.shift();
      candidates += n;
    }
    return batch;
  }

  async #dispatch(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#windowDone = this.#disposed; // a disposing model flushes without waiting
    const batch = this.#take();
    this.#inFlight = true;
    if (this.#queue.length > 0) this.#pump(); // the calls left over start their window now
    this.#stats.batches++;
    this.#stats.maxBatchSize = Math.max(this.#stats.maxBatchSize, batch.length);
    try {
      await this.#run(batch);
    } finally {
      this.#inFlight = false;
      this.#pump();
    }
  }

  async #run(batch: readonly Pending[]): Promise<void> {
    const inner = this.inner;
    if (batch.length === 1 || inner.imagineBatch === undefined) {
      const settled = await Promise.allSettled(batch.map((p) => inner.imagine(p.request)));
      settled.forEach((s, i) => (s.status === 'fulfilled' ? batch[i]?.resolve(s.value) : batch[i]?.reject(s.reason)));
      return;
    }
    try {
      const results = await inner.imagineBatch(batch.map((p) => p.request));
      if (results.length !== batch.length) throw new V4sError('E_MODEL_OUTPUT', `${this.info.name}: imagineBatch returned ${results.length} results for ${batch.length} requests`);
      batch.forEach((p, i) => p.resolve(results[i] ?? []));
    } catch (e) {
      if (!ISOLATABLE.some((code) => isV4sError(e, code))) {
        for (const p of batch) p.reject(e);
        return;
      }
      // One request may be the culprit: run each alone so the others still get their results.
      this.#stats.isolated++;
      for (const p of batch) {
        try {
          p.resolve(await inner.imagine(p.request));
        } catch (err) {
          p.reject(err);
        }
      }
    }
  }
}
