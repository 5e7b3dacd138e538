/**
 * The worker-thread side of `loadWorkerWorldModel` (worker-world-model.ts): loads the model package with
 * `loadWorldModel` inside a `worker_threads` Worker and serves `imagine`, `imagineBatch`, `sampleLatents` and
 * the runtime counters over the worker's message port. onnxruntime-node's `session.run` is synchronous on the
 * thread that calls it (it only defers the call with `setImmediate`), so running it here keeps the caller's
 * event loop free while a plan is computed. Not meant to be imported; the main side starts it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isV4sError } from '../errors.js';
import { loadWorldModel, type LoadWorldModelOptions, type OnnxWorldModel, type WorldModelRuntimeStats } from './onnx-world-model.js';
import type { ImagineRequest } from './world-model.js';

/** A request from the main thread. */
export type WorkerRequest =
  | { readonly id: number; readonly op: 'imagine' | 'sampleLatents'; readonly request: ImagineRequest }
  | { readonly id: number; readonly op: 'imagineBatch'; readonly requests: readonly ImagineRequest[] }
  | { readonly id: number; readonly op: 'resetStats' | 'dispose' };

/** An error as it crosses the thread boundary. */
export interface SerializedError {
  readonly code?: string;
  readonly message: string;
  readonly details?: Record<string, unknown>;
}

/** What the worker posts back. */
export type WorkerReply =
  | { readonly type: 'ready'; readonly dir: string; readonly device: 'cpu' | 'cuda'; readonly contextCache: boolean; readonly manifest: OnnxWorldModel['manifest'] }
  | { readonly type: 'load-error'; readonly error: SerializedError }
  | { readonly type: 'warning'; readonly message: string }
  | { readonly type: 'result'; readonly id: number; readonly value: unknown; readonly stats: WorldModelRuntimeStats }
  | { readonly type: 'error'; readonly id: number; readonly error: SerializedError; readonly stats: WorldModelRuntimeStats };

/** Start-up data of the worker. */
export interface WorkerInit {
  readonly dir: string;
  readonly options: Omit<LoadWorldModelOptions, 'onWarning'>;
}

function serializeError(e: unknown): SerializedError {
  if (isV4sError(e)) {
    let details: Record<string, unknown> | undefined;
    try {
      details = e.details === undefined ? undefined : structuredClone({ ...e.details });
    } catch {
      details = undefined;
    }
    return { code: e.code, message: e.message, ...(details !== undefined ? { details } : {}) };
  }
  return { message: e instanceof Error ? e.message : String(e) };
}

/** Every ArrayBuffer reachable from plain result objects (frames, maps, latents), to transfer instead of copy. */
function buffersOf(value: unknown, into: Set<ArrayBuffer>): Set<ArrayBuffer> {
  if (ArrayBuffer.isView(value)) {
    if (value.buffer instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength) into.add(value.buffer);
  } else if (Array.isArray(value)) {
    for (const v of value) buffersOf(v, into);
  } else if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) buffersOf(v, into);
  }
  return into;
}

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('world-model-worker.ts must run in a worker thread');
  const init = workerData as WorkerInit;
  let wm: OnnxWorldModel;
  try {
    wm = await loadWorldModel(init.dir, { ...init.options, onWarning: (message) => port.postMessage({ type: 'warning', message } satisfies WorkerReply) });
  } catch (e) {
    port.postMessage({ type: 'load-error', error: serializeError(e) } satisfies WorkerReply);
    return;
  }
  port.postMessage({ type: 'ready', dir: wm.dir, device: wm.device, contextCache: wm.contextCache, manifest: wm.manifest } satisfies WorkerReply);
  // Calls run one after another, in arrival order (counters reset between calls, never inside one).
  let tail: Promise<unknown> = Promise.resolve();
  port.on('message', (msg: WorkerRequest) => {
    const work = async (): Promise<unknown> => {
      switch (msg.op) {
        case 'imagine':
          return wm.imagine(msg.request);
        case 'imagineBatch':
          return wm.imagineBatch(msg.requests);
        case 'sampleLatents':
          return wm.sampleLatents(msg.request);
        case 'resetStats':
          wm.resetStats();
          return undefined;
        case 'dispose':
          await wm.dispose();
          return undefined;
      }
    };
    const run = tail.then(work);
    tail = run.catch(() => undefined);
    run.then(
      (value) => {
        const reply: WorkerReply = { type: 'result', id: msg.id, value, stats: wm.stats() };
        port.postMessage(reply, [...buffersOf(value, new Set())]);
        if (msg.op === 'dispose') port.close();
      },
      (e: unknown) => port.postMessage({ type: 'error', id: msg.id, error: serializeError(e), stats: wm.stats() } satisfies WorkerReply),
    );
  });
}

void main();
