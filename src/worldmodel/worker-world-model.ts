/**
 * A model package run in a worker thread, so that planning never blocks the caller's event loop.
 *
 * onnxruntime-node's `session.run` returns a Promise but runs the network synchronously on the calling thread
 * (its backend wraps the native call in `setImmediate`), so an in-process `OnnxWorldModel` blocks the event loop
 * for every network evaluation of a decision (tens to hundreds of ms): observations, WebSocket pings and
 * timers wait. `loadWorkerWorldModel` loads the same package with `loadWorldModel` inside a `worker_threads`
 * Worker (world-model-worker.ts) and forwards each call as one message: the whole sampling loop (every
 * `session.run`, the guidance and sampler arithmetic, decoding) runs there; requests and rollouts cross the
 * thread boundary once per call (rollout buffers are transferred, not copied). Results are identical to the
 * in-process model's. Measured in docs/performance.md.
 *
 * Usage:
 * ```
 * const wm = await loadWorkerWorldModel('models/v4s-builtin-small', { threads: 2 });
 * const rollouts = await wm.imagine({ context: { frames, positions }, candidates, seed: 1 });
 * await wm.dispose(); // ends the worker
 * ```
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ERROR_CODES, V4sError, type V4sErrorCode } from '../errors.js';
import { manifestToInfo, type ModelManifest } from './manifest.js';
import type { LatentRollout, LoadWorldModelOptions, WorldModelRuntimeStats } from './onnx-world-model.js';
import type { SerializedError, WorkerInit, WorkerReply, WorkerRequest } from './world-model-worker.js';
import { WORLD_MODEL_SPEC_VERSION, type ImagineRequest, type Rollout, type WorldModel, type WorldModelInfo } from './world-model.js';

/** Options of `loadWorkerWorldModel`: those of `loadWorldModel` (`onWarning` is called on this thread). */
export type WorkerWorldModelOptions = LoadWorldModelOptions;

function emptyStats(): WorldModelRuntimeStats {
  return { sessionRuns: 0, sessionRunMs: 0, imagineMs: 0, imagineCalls: 0, denoiseSteps: 0, tensorAllocations: 0, bufferAllocations: 0, outputTensors: 0, maxConcurrentRuns: 0 };
}

function reviveError(e: SerializedError): Error {
  if (e.code !== undefined && Object.hasOwn(ERROR_CODES, e.code)) return new V4sError(e.code as V4sErrorCode, e.message, e.details);
  return new Error(e.message);
}

/**
 * Start the worker. From the compiled package: world-model-worker.js. From TypeScript sources run through tsx
 * (tests, `npm run bench`): a worker does not inherit the parent's module hooks on Node 20, so a small bootstrap
 * registers tsx in the worker and then imports world-model-worker.ts.
 */
function startWorker(workerData: WorkerInit): Worker {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return new Worker(new URL('./world-model-worker.js', self), { workerData });
  // tsx's ESM API (import.meta.resolve is missing where this module was loaded through require, as under mocha:
  // then the package's `import` file sits next to the `require` one)
  const tsxApi =
    typeof import.meta.resolve === 'function' ? import.meta.resolve('tsx/esm/api') : pathToFileURL(createRequire(self).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const entry = new URL('./world-model-worker.ts', self).href;
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/** A request without its id (the id is assigned when it is sent). */
type WorkerCall<T = WorkerRequest> = T extends unknown ? Omit<T, 'id'> : never;

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (e: Error) => void;
}

/**
 * Load a model package in a worker thread. Validation is the same as `loadWorldModel`'s (same errors, same
 * codes); a worker that cannot start or dies later fails pending and later calls with E_MODEL_WORKER.
 */
export async function loadWorkerWorldModel(dir: string, options: WorkerWorldModelOptions = {}): Promise<WorkerWorldModel> {
  const { onWarning, ...rest } = options;
  const init: WorkerInit = { dir, options: rest };
  const worker = startWorker(init);
  const warn = (message: string): void => {
    if (onWarning) onWarning(message);
    else process.emitWarning(message, { code: 'V4S_CUDA_FALLBACK' });
  };
  const ready = await new Promise<Extract<WorkerReply, { type: 'ready' }>>((resolve, reject) => {
    const onMessage = (msg: WorkerReply): void => {
      if (msg.type === 'warning') warn(msg.message);
      else if (msg.type === 'ready') done(() => resolve(msg));
      else if (msg.type === 'load-error') done(() => reject(reviveError(msg.error)));
    };
    const onError = (e: Error): void => done(() => reject(new V4sError('E_MODEL_WORKER', `world-model worker failed to start for ${dir}: ${e.message}`, { dir }, { cause: e })));
    const onExit = (code: number): void => done(() => reject(new V4sError('E_MODEL_WORKER', `world-model worker exited (code ${code}) while loading ${dir}`, { dir, exitCode: code })));
    const done = (settle: () => void): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      settle();
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  }).catch(async (e: unknown) => {
    await worker.terminate();
    throw e;
  });
  return new WorkerWorldModel(worker, ready.dir, ready.manifest, ready.device, ready.contextCache, warn);
}

/**
 * The `WorldModel` face of a model package running in a worker thread (create with `loadWorkerWorldModel`).
 * Same methods and results as `OnnxWorldModel`; `stats()` is the worker's counters as of the last reply.
 */
export class WorkerWorldModel implements WorldModel {
  readonly specificationVersion = WORLD_MODEL_SPEC_VERSION;
  readonly info: WorldModelInfo;
  /** The validated manifest. */
  readonly manifest: ModelManifest;
  /** The package folder. */
  readonly dir: string;
  /** The execution provider the worker's sessions use. */
  readonly device: 'cpu' | 'cuda';
  /** Whether the cached-context split is in use. */
  readonly contextCache: boolean;

  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #stats: WorldModelRuntimeStats = emptyStats();
  #dead: V4sError | undefined;
  #disposed = false;

  /** @internal use `loadWorkerWorldModel`. */
  constructor(worker: Worker, dir: string, manifest: ModelManifest, device: 'cpu' | 'cuda', contextCache: boolean, warn: (m: string) => void) {
    this.#worker = worker;
    this.dir = dir;
    this.manifest = manifest;
    this.info = manifestToInfo(manifest);
    this.device = device;
    this.contextCache = contextCache;
    worker.on('message', (msg: WorkerReply) => {
      if (msg.type === 'warning') return warn(msg.message);
      if (msg.type !== 'result' && msg.type !== 'error') return;
      this.#stats = msg.stats;
      const p = this.#pending.get(msg.id);
      if (p === undefined) return;
      this.#pending.delete(msg.id);
      if (this.#pending.size === 0) worker.unref();
      if (msg.type === 'result') p.resolve(msg.value);
      else p.reject(reviveError(msg.error));
    });
    const fail = (e: V4sError): void => {
      this.#dead ??= e;
      for (const p of this.#pending.values()) p.reject(this.#dead);
      this.#pending.clear();
    };
    worker.on('error', (e: Error) => fail(new V4sError('E_MODEL_WORKER', `world-model worker for ${dir} failed: ${e.message}`, { dir }, { cause: e })));
    worker.on('exit', (code) => fail(new V4sError('E_MODEL_WORKER', this.#disposed ? `world model "${this.info.name}" was disposed` : `world-model worker for ${dir} exited (code ${code})`, { dir, exitCode: code })));
    worker.unref(); // an idle model does not keep the process alive (an in-process one does not either)
  }

  #call<T>(message: WorkerCall): Promise<T> {
    if (this.#disposed) return Promise.reject(new V4sError('E_MODEL_INPUT', `world model "${this.info.name}" was disposed`));
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      if (this.#pending.size === 1) this.#worker.ref();
      try {
        this.#worker.postMessage({ ...message, id });
      } catch (e) {
        this.#pending.delete(id);
        if (this.#pending.size === 0) this.#worker.unref();
        reject(new V4sError('E_MODEL_INPUT', `imagine(): the request cannot be sent to the worker: ${(e as Error).message}`, undefined, { cause: e }));
      }
    });
  }

  /** Imagine `horizon` frames for every candidate (see `ImagineRequest`). Calls are serialized in the worker. */
  imagine(request: ImagineRequest): Promise<Rollout[]> {
    return this.#call({ op: 'imagine', request });
  }

  /** Several requests in one batched sampling (see `PackageWorldModel.imagineBatch`). */
  imagineBatch(requests: readonly ImagineRequest[]): Promise<Rollout[][]> {
    return this.#call({ op: 'imagineBatch', requests });
  }

  /** Like `imagine` but returns the sampled latents without decoding them. */
  sampleLatents(request: ImagineRequest): Promise<LatentRollout[]> {
    return this.#call({ op: 'sampleLatents', request });
  }

  /** The worker's runtime counters as of its last reply. */
  stats(): WorldModelRuntimeStats {
    return { ...this.#stats };
  }

  /** Zero the runtime counters (here at once, in the worker before its next call). */
  resetStats(): void {
    this.#stats = emptyStats();
    if (!this.#disposed && !this.#dead) void this.#call({ op: 'resetStats' }).catch(() => undefined);
  }

  /** Release the sessions after pending calls finish and end the worker. Later calls fail with E_MODEL_INPUT. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    if (!this.#dead) await this.#call({ op: 'dispose' }).catch(() => undefined);
    this.#disposed = true;
    await this.#worker.terminate();
  }
}
