/**
 * The ONNX model-package world model: loads `manifest.json` + `denoiser.onnx` (+ `encoder.onnx`/`decoder.onnx`)
 * with onnxruntime-node, validates the manifest against the sessions' own tensors, and imagines rollouts for
 * many candidate instructions with every candidate × guidance branch in ONE `session.run` per denoising step.
 *
 * The sampling loop lives in `PackageWorldModel`, which runs the package's networks through a `ModelBackend`
 * (backend.ts): `OnnxWorldModel` with onnxruntime-node sessions in this process, `RemoteWorldModel`
 * (remote-world-model.ts) with Open Inference Protocol requests to a server such as Triton. Both share every
 * line of validation, batching, guidance, sampling and decoding below.
 *
 * Batch layout of a step (B = branches × candidates rows): `[branch 0: cand 0..N−1, branch 1: cand 0..N−1, …]`,
 * branches as `planGuidance` orders them (joint: [∅∅, ctx+instr]; two-scale: [∅∅, ctx, ctx+instr]).
 * Packages with the cached-context split (`context.onnx` + `denoiser_step.onnx`) run context.onnx once per
 * call, on one row per distinct context mask, tile its outputs over the batch, and run denoiser_step.onnx at
 * each step; the last step runs the full denoiser instead when `grounding_current` is wanted.
 * Usage:
 * ```
 * const wm = await loadWorldModel('models/v4s-builtin-small', { device: 'cpu', threads: 2 });
 * const rollouts = await wm.imagine({ context: { frames, positions }, candidates, seed: 1 });
 * ```
 */
import { existsSync, readdirSync } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { V4sError, isV4sError } from '../errors.js';
import type { Frame, Instruction } from '../types.js';
import type { BackendFeeds, BackendOutput, BackendOutputs, BackendTensor, ModelBackend, ModelRole } from './backend.js';
import { combineGuidance, planGuidance, type GuidancePlan } from './guidance.js';
import { BATCH_SYMBOL, loadManifest, manifestToInfo, type AuxOutputSpec, type ModelManifest, type TensorGroup } from './manifest.js';
import { createRng, type Rng } from './rng.js';
import { createSampler, type SamplerProgram } from './samplers.js';
import {
  WORLD_MODEL_SPEC_VERSION,
  type GroundingMap,
  type ImagineRequest,
  type Rollout,
  type RolloutTimings,
  type SamplerConfig,
  type WorldModel,
  type WorldModelInfo,
} from './world-model.js';

/** Options of `loadWorldModel`. */
export interface LoadWorldModelOptions {
  /** `cuda` falls back to CPU, with one warning per process, when the CUDA provider is not installed. */
  readonly device?: 'cpu' | 'cuda';
  /** Intra-op threads of each session (onnxruntime's default: all cores). */
  readonly threads?: number;
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * What to do with context frames older than the trained position range: `reject` (default) throws
   * E_MODEL_INPUT naming the offset; `drop-oldest` leaves those frames out (the newest frame is always kept).
   */
  readonly positionPolicy?: 'reject' | 'drop-oldest';
  /** Where warnings go (default: `process.emitWarning`). */
  readonly onWarning?: (message: string) => void;
  /**
   * Use the package's cached-context split (context.onnx + denoiser_step.onnx) when it has one (default true).
   * `false` runs the full denoiser at every step and does not load the split's files.
   */
  readonly contextCache?: boolean;
  /**
   * Whether onnxruntime's intra-op threads spin while they wait for work. Default false: they sleep (the
   * counterpart of OMP_WAIT_POLICY=PASSIVE). Spinning threads take CPU from everything else in an agent's
   * process and machine (simulator, scoring, other models); docs/performance.md measures both. `true` is
   * onnxruntime's own default, worth it only on cores that run the model alone.
   */
  readonly threadSpinning?: boolean;
}

/** The sampled latents of one candidate, before decoding (for tests, diagnostics and latent-space metrics). */
export interface LatentRollout {
  readonly instruction: Instruction;
  /** Final x̂0 latents, `[H, C, h, w]` row-major (pixel-space models: the frames in pixelRange × latent.scale). */
  readonly latents: Float32Array;
  readonly shape: readonly [number, number, number, number];
  readonly grounding?: GroundingMap[];
  readonly currentGrounding?: GroundingMap;
  readonly timings: RolloutTimings;
}

/** Counters of the runtime, for the bench and for tests. */
export interface WorldModelRuntimeStats {
  /** `session.run` calls (all sessions). */
  sessionRuns: number;
  /** Wall time spent awaiting `session.run`. */
  sessionRunMs: number;
  /** Wall time of `imagine`/`sampleLatents` calls, from start to result. */
  imagineMs: number;
  imagineCalls: number;
  /** Denoising steps run. */
  denoiseSteps: number;
  /** `ort.Tensor` objects this runtime created (inputs); steps reuse them. */
  tensorAllocations: number;
  /** Typed arrays this runtime allocated for inputs and working state; steps reuse them. */
  bufferAllocations: number;
  /** Output tensors onnxruntime-node returned (it allocates these itself, one per fetched output per run). */
  outputTensors: number;
  /** Highest number of `session.run` calls in flight at once (1: runs never overlap). */
  maxConcurrentRuns: number;
}

const CUDA_INSTALL_FLAG = '--onnxruntime-node-install=cuda12';
let cudaFallbackWarned = false;

/** Forget that the CUDA fallback warning was given (for tests: the warning is once per process). */
export function resetCudaFallbackWarning(): void {
  cudaFallbackWarned = false;
}

/** True when onnxruntime-node's CUDA execution provider library is present next to its native binding. */
export function cudaProviderInstalled(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const binRoot = path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'bin');
    const names = process.platform === 'win32' ? ['onnxruntime_providers_cuda.dll'] : ['libonnxruntime_providers_cuda.so'];
    for (const napi of readdirSync(binRoot)) {
      const dir = path.join(binRoot, napi, process.platform, process.arch);
      if (names.some((n) => existsSync(path.join(dir, n)))) return true;
    }
  } catch {
    return false;
  }
  return false;
}

function cudaFallbackMessage(reason: string): string {
  return (
    `v4s-nav: device "cuda" requested but ${reason}; running on CPU. ` +
    `Install the CUDA 12 provider with \`npm rebuild onnxruntime-node ${CUDA_INSTALL_FLAG}\` ` +
    `(or ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci); it downloads from NuGet and needs CUDA 12 + cuDNN 9. ` +
    `The CUDA path is not tested by this project.`
  );
}

function warnOnce(onWarning: ((m: string) => void) | undefined, message: string): void {
  if (cudaFallbackWarned) return;
  cudaFallbackWarned = true;
  if (onWarning) onWarning(message);
  else process.emitWarning(message, { code: 'V4S_CUDA_FALLBACK' });
}

type Feeds = BackendFeeds;

/** Create one session; a corrupt or unreadable file is E_MODEL_FILE naming the path and ORT's message. */
async function createSession(
  file: string,
  options: LoadWorldModelOptions,
  device: { current: 'cpu' | 'cuda' },
): Promise<ort.InferenceSession> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new V4sError('E_MODEL_FILE', `cannot read ${file}: ${(e as Error).message}`, { path: file }, { cause: e });
  }
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    interOpNumThreads: 1,
    ...(options.threadSpinning === true ? {} : { extra: { session: { intra_op: { allow_spinning: '0' } } } }),
    ...(options.threads !== undefined ? { intraOpNumThreads: options.threads } : {}),
  };
  if (device.current === 'cuda') {
    try {
      return await ort.InferenceSession.create(bytes, { ...base, executionProviders: ['cuda', 'cpu'] });
    } catch (e) {
      const msg = (e as Error).message;
      if (!/cuda|shared library|provider/i.test(msg)) throw fileError(file, e);
      warnOnce(options.onWarning, cudaFallbackMessage(`the CUDA execution provider failed to load (${msg})`));
      device.current = 'cpu';
    }
  }
  try {
    return await ort.InferenceSession.create(bytes, { ...base, executionProviders: ['cpu'] });
  } catch (e) {
    throw fileError(file, e);
  }
}

function fileError(file: string, e: unknown): V4sError {
  return new V4sError('E_MODEL_FILE', `${file} is not a loadable ONNX model: ${(e as Error).message}`, { path: file }, { cause: e });
}

function fmtShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(',')}]`;
}

/**
 * A network's own list of tensors: an onnxruntime session, or a remote server's model metadata put in the same
 * form (symbolic dims as strings), so that both are checked against the manifest by `checkModelTensors`.
 */
export interface ModelTensorListing {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  readonly outputMetadata: readonly ort.InferenceSession.ValueMetadata[];
}

/**
 * Compare a manifest tensor group with a network's own names, dtypes and shapes (E_MODEL_TENSOR naming `file`
 * and the tensor). Ranks must agree and fixed dims be equal; a symbolic dim on either side matches.
 */
export function checkModelTensors(file: string, session: ModelTensorListing, group: TensorGroup): void {
  const sides = [
    ['input', group.inputs, session.inputNames, session.inputMetadata],
    ['output', group.outputs, session.outputNames, session.outputMetadata],
  ] as const;
  for (const [side, declared, names, metadata] of sides) {
    for (const name of Object.keys(declared)) {
      if (!names.includes(name)) {
        throw new V4sError('E_MODEL_TENSOR', `${file}: ${side} "${name}": declared in manifest.json, not found in the model (model ${side}s: ${names.join(', ')})`, { file, tensor: name });
      }
    }
    for (const name of names) {
      if (declared[name] === undefined) {
        throw new V4sError('E_MODEL_TENSOR', `${file}: ${side} "${name}": found in the model, not declared in manifest.json (declared: ${Object.keys(declared).join(', ')})`, { file, tensor: name });
      }
    }
    for (const meta of metadata) {
      const spec = declared[meta.name];
      if (spec === undefined) continue;
      if (!meta.isTensor) {
        throw new V4sError('E_MODEL_TENSOR', `${file}: ${side} "${meta.name}": expected a ${spec.dtype} tensor, found a non-tensor value`, { file, tensor: meta.name });
      }
      if (meta.type !== spec.dtype) {
        throw new V4sError('E_MODEL_TENSOR', `${file}: ${side} "${meta.name}": expected dtype ${spec.dtype}, found ${meta.type}`, { file, tensor: meta.name, expected: spec.dtype, found: meta.type });
      }
      if (meta.shape.length === 0) continue; // the model does not state a shape
      const mismatch =
        meta.shape.length !== spec.shape.length ||
        spec.shape.some((d, i) => {
          const m = meta.shape[i];
          // Fixed dims must be equal. A symbolic dim on either side matches (exporters fix some axes the
          // manifest leaves symbolic, e.g. H; the runtime then takes the model's value as a constraint).
          // Symbol names are exporter-specific and not compared.
          return typeof d === 'number' && typeof m === 'number' && m !== d;
        });
      if (mismatch) {
        throw new V4sError('E_MODEL_TENSOR', `${file}: ${side} "${meta.name}": expected shape ${fmtShape(spec.shape)}, found ${fmtShape(meta.shape)}`, {
          file,
          tensor: meta.name,
          expected: spec.shape,
          found: meta.shape,
        });
      }
    }
  }
}

type Role = ModelRole;

/**
 * Load a model package folder. Checks, in order: manifest schema and semantics (E_MODEL_MANIFEST), files
 * present (E_MODEL_FILE), loadable ONNX (E_MODEL_FILE with ORT's message), declared tensors vs each session's
 * inputs/outputs, dtypes and shapes (E_MODEL_TENSOR). One session per file, created once.
 */
export async function loadWorldModel(dir: string, options: LoadWorldModelOptions = {}): Promise<OnnxWorldModel> {
  const manifest = await loadManifest(dir);
  const roles: Role[] = ['denoiser', 'encoder', 'decoder'];
  if (options.contextCache !== false) roles.push('context', 'denoiserStep');
  const files: [Role, string][] = [];
  for (const role of roles) {
    const name = manifest.files[role];
    if (name !== undefined) files.push([role, path.join(dir, name)]);
  }
  for (const [, file] of files) {
    try {
      await access(file);
    } catch {
      throw new V4sError('E_MODEL_FILE', `model file missing: ${file} (named by manifest.json files)`, { path: file });
    }
  }
  const device = { current: options.device ?? 'cpu' };
  if (device.current === 'cuda' && !cudaProviderInstalled()) {
    warnOnce(options.onWarning, cudaFallbackMessage('the CUDA execution provider is not installed in this onnxruntime-node build'));
    device.current = 'cpu';
  }
  const sessions: Partial<Record<Role, ort.InferenceSession>> = {};
  try {
    for (const [role, file] of files) {
      const session = await createSession(file, options, device);
      sessions[role] = session;
      const group = manifest.tensors[role];
      if (group !== undefined) checkModelTensors(file, session, group);
    }
  } catch (e) {
    await Promise.all(Object.values(sessions).map((s) => s.release().catch(() => undefined)));
    throw e;
  }
  return new OnnxWorldModel(dir, manifest, new OrtBackend(manifest, sessions), device.current, options);
}

/**
 * The in-process backend: one onnxruntime-node session per file. Each `BackendTensor` is wrapped in an
 * `ort.Tensor` once (over the same buffer, no copy) and the wrapper reused on every later run.
 */
class OrtBackend implements ModelBackend {
  readonly #manifest: ModelManifest;
  readonly #sessions: Partial<Record<Role, ort.InferenceSession>>;
  readonly #wrapped = new WeakMap<BackendTensor, ort.Tensor>();

  constructor(manifest: ModelManifest, sessions: Partial<Record<Role, ort.InferenceSession>>) {
    this.#manifest = manifest;
    this.#sessions = sessions;
  }

  has(role: Role): boolean {
    return this.#sessions[role] !== undefined;
  }

  describe(role: Role): string {
    return this.#manifest.files[role] ?? `${role}.onnx`;
  }

  inputShape(role: Role, input: string): readonly (number | string)[] | undefined {
    const meta = this.#sessions[role]?.inputMetadata.find((m) => m.name === input);
    return meta?.isTensor ? meta.shape : undefined;
  }

  async run(role: Role, feeds: BackendFeeds, fetches?: readonly string[]): Promise<BackendOutputs> {
    const session = this.#sessions[role];
    if (session === undefined) throw new V4sError('E_MODEL_FILE', `no ${this.describe(role)} session in this package`);
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      let w = this.#wrapped.get(t);
      if (w === undefined) {
        w = t.type === 'float32' ? new ort.Tensor('float32', t.data, t.dims) : new ort.Tensor('int64', t.data, t.dims);
        this.#wrapped.set(t, w);
      }
      ortFeeds[name] = w;
    }
    return fetches ? await session.run(ortFeeds, fetches) : await session.run(ortFeeds);
  }

  async release(): Promise<void> {
    for (const s of Object.values(this.#sessions)) await s.release();
  }
}

/** A cached context tensor tiled over the batch: its buffer and the step-feed tensor wrapping it. */
interface CachedTensor {
  readonly dims: readonly number[];
  readonly data: Float32Array;
  readonly tensor: BackendTensor;
}

/** Inputs of one context.onnx run (one row per distinct context mask). */
interface ContextRun {
  readonly context: Float32Array;
  readonly positions: Float32Array;
  readonly mask: Float32Array;
  readonly feeds: Feeds;
}

/** Preallocated buffers and input tensors for one batch shape, reused across steps and calls. */
interface Workspace {
  readonly x: Float32Array;
  readonly guided: Float32Array;
  readonly xt: Float32Array;
  readonly t: Float32Array;
  readonly context: Float32Array;
  readonly contextPositions: Float32Array;
  readonly targetPositions: Float32Array;
  readonly actions: BigInt64Array;
  readonly goal: BigInt64Array;
  readonly contextMask: Float32Array;
  readonly instructionMask: Float32Array;
  readonly contextLatents: Float32Array;
  readonly feeds: Feeds;
  readonly encoderFeeds?: Feeds;
  readonly encoderFrames?: Float32Array;
  readonly decoderFeeds?: Feeds;
  /** denoiser_step.onnx feeds: the shared tensors above plus the cached context tensors (filled lazily). */
  readonly stepFeeds: Feeds;
  readonly cached: Map<string, CachedTensor>;
  readonly contextRuns: Map<number, ContextRun>;
}

interface PreparedRequest {
  readonly horizon: number;
  readonly frames: readonly Frame[];
  readonly offsets: readonly number[];
  readonly candidates: readonly Instruction[];
  readonly actionIds: readonly (readonly number[])[];
  readonly goalIds: readonly number[];
  readonly sampler: SamplerProgram;
  readonly plan: GuidancePlan;
  readonly seed: number;
  /** Requests with equal keys (context length, horizon, sampler, guidance) can share one batched sampling. */
  readonly groupKey: string;
}

interface SampleResult {
  readonly instruction: Instruction;
  readonly horizon: number;
  readonly latents: Float32Array;
  readonly frames?: Frame[];
  readonly grounding?: GroundingMap[];
  readonly currentGrounding?: GroundingMap;
  readonly timings: RolloutTimings;
}

const MAX_WORKSPACES = 4;

/** A fixed dim of a tensor: the model's own value first, then the manifest's; undefined when symbolic in both. */
function fixedDim(backend: ModelBackend, declared: TensorGroup, input: string, axis: number): number | undefined {
  const fromModel = backend.inputShape('denoiser', input)?.[axis];
  if (typeof fromModel === 'number' && fromModel > 0) return fromModel;
  const fromManifest = declared.inputs[input]?.shape[axis];
  return typeof fromManifest === 'number' ? fromManifest : undefined;
}

function samplerKey(config: SamplerConfig): string {
  return config.kind === 'ddim' ? `ddim:${config.steps}:${config.eta ?? ''}` : `euler:${config.steps}:${config.shift ?? ''}`;
}

/** Options of the shared runtime (a subset of `LoadWorldModelOptions`). */
export interface PackageWorldModelOptions {
  /** See `LoadWorldModelOptions.positionPolicy`. */
  readonly positionPolicy?: 'reject' | 'drop-oldest';
}

/**
 * A world model that runs a v4s model package (manifest + networks) through a `ModelBackend`: request
 * validation, positions, the batch of every candidate × guidance branch, the context cache, the samplers,
 * guidance, NaN checks, grounding and decoding. `OnnxWorldModel` and `RemoteWorldModel` are its two
 * backends' faces; create them with `loadWorldModel` / `connectRemoteWorldModel`.
 */
export class PackageWorldModel implements WorldModel {
  readonly specificationVersion = WORLD_MODEL_SPEC_VERSION;
  readonly info: WorldModelInfo;
  /** The validated manifest. */
  readonly manifest: ModelManifest;
  /** Whether the cached-context split (context.onnx + denoiser_step.onnx) is in use. */
  readonly contextCache: boolean;

  readonly #backend: ModelBackend;
  readonly #hasEncoder: boolean;
  readonly #positionPolicy: 'reject' | 'drop-oldest';
  readonly #workspaces = new Map<string, Workspace>();
  readonly #hasGoalInput: boolean;
  readonly #fixedH: number | undefined;
  readonly #fixedK: number | undefined;
  readonly #latentSize: number;
  readonly #pixelLut: Float32Array;
  #tail: Promise<unknown> = Promise.resolve();
  #disposed = false;
  #running = 0;
  #stats: WorldModelRuntimeStats = emptyStats();

  /** @internal use `loadWorldModel` or `connectRemoteWorldModel`. */
  constructor(manifest: ModelManifest, backend: ModelBackend, options: PackageWorldModelOptions = {}) {
    if (!backend.has('denoiser')) throw new V4sError('E_MODEL_FILE', `no denoiser for model "${manifest.name}"`);
    this.manifest = manifest;
    this.info = manifestToInfo(manifest);
    this.#backend = backend;
    this.#hasEncoder = backend.has('encoder') && backend.has('decoder');
    this.contextCache = backend.has('context') && backend.has('denoiserStep');
    this.#positionPolicy = options.positionPolicy ?? 'reject';
    const declared = manifest.tensors.denoiser;
    this.#hasGoalInput = declared.inputs['goal'] !== undefined;
    this.#fixedH = fixedDim(backend, declared, 'x_t', 1);
    this.#fixedK = fixedDim(backend, declared, 'context', 1);
    const { channels, height, width } = manifest.latent;
    this.#latentSize = channels * height * width;
    const [lo, hi] = manifest.pixelRange;
    const scale = manifest.files.encoder === undefined ? manifest.latent.scale : 1;
    this.#pixelLut = new Float32Array(256);
    for (let u = 0; u < 256; u++) this.#pixelLut[u] = (lo + ((hi - lo) * u) / 255) * scale;
  }

  /** Imagine `horizon` frames for every candidate (see `ImagineRequest`). Calls are serialized. */
  imagine(request: ImagineRequest): Promise<Rollout[]> {
    return this.#serialize(async () => {
      const [res] = await this.#sampleMany([request], true);
      return toRollouts(res ?? []);
    });
  }

  /**
   * Imagine several requests (e.g. several agents' decisions) in one batched sampling: requests with the same
   * context length, horizon, sampler and guidance share every network evaluation (one per denoising step for
   * all their candidates × branches, each request with its own context); others run as separate groups.
   * Each request's result equals what `imagine(request)` gives (same seeds, same noise streams). The first
   * invalid request rejects the whole call (`BatchingWorldModel` isolates it).
   */
  imagineBatch(requests: readonly ImagineRequest[]): Promise<Rollout[][]> {
    return this.#serialize(async () => (await this.#sampleMany(requests, true)).map(toRollouts));
  }

  /** Like `imagine` but returns the sampled latents without decoding them. */
  sampleLatents(request: ImagineRequest): Promise<LatentRollout[]> {
    return this.#serialize(async () => {
      const [res] = await this.#sampleMany([request], false);
      const { channels, height, width } = this.manifest.latent;
      return (res ?? []).map((r) => ({
        instruction: r.instruction,
        latents: r.latents,
        shape: [r.horizon, channels, height, width] as const,
        ...(r.grounding ? { grounding: r.grounding } : {}),
        ...(r.currentGrounding ? { currentGrounding: r.currentGrounding } : {}),
        timings: r.timings,
      }));
    });
  }

  /** A copy of the runtime counters since load (or the last `resetStats`). */
  stats(): WorldModelRuntimeStats {
    return { ...this.#stats };
  }

  /** Zero the runtime counters. */
  resetStats(): void {
    this.#stats = emptyStats();
  }

  /** Release the sessions (or connections) after pending calls finish. Later calls fail with E_MODEL_INPUT. */
  async dispose(): Promise<void> {
    await this.#serialize(async () => {
      if (this.#disposed) return;
      this.#disposed = true;
      this.#workspaces.clear();
      await this.#backend.release();
    });
  }

  #serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn, fn);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #run(role: Role, feeds: Feeds, fetches?: readonly string[]): Promise<BackendOutputs> {
    this.#running++;
    if (this.#running > this.#stats.maxConcurrentRuns) this.#stats.maxConcurrentRuns = this.#running;
    const t0 = performance.now();
    try {
      const out = await this.#backend.run(role, feeds, fetches);
      this.#stats.outputTensors += Object.keys(out).length;
      return out;
    } catch (e) {
      if (isV4sError(e)) throw e;
      const file = this.#backend.describe(role);
      throw new V4sError('E_MODEL_TENSOR', `${file}: session.run failed: ${(e as Error).message}`, { file }, { cause: e });
    } finally {
      this.#stats.sessionRunMs += performance.now() - t0;
      this.#stats.sessionRuns++;
      this.#running--;
    }
  }

  #prepare(request: ImagineRequest): PreparedRequest {
    const m = this.manifest;
    const bad = (message: string, details?: Record<string, unknown>): never => {
      throw new V4sError('E_MODEL_INPUT', `imagine(): ${message}`, details);
    };
    const { frames, positions } = request.context;
    if (frames.length !== positions.length) bad(`context has ${frames.length} frames but ${positions.length} positions`);
    if (frames.length === 0) bad('context is empty (the newest frame must be in it)');
    for (let i = 0; i < positions.length; i++) {
      const p = positions[i] as number;
      if (!Number.isFinite(p)) bad(`context.positions[${i}] is ${p}`);
      if (i > 0 && !(p > (positions[i - 1] as number))) bad(`context.positions must be strictly ascending (oldest first), got ${positions[i - 1]} then ${p} at index ${i}`);
    }
    const { width: W, height: H } = m.resolution;
    frames.forEach((f, i) => {
      if (f.width !== W || f.height !== H) bad(`context.frames[${i}] is ${f.width}x${f.height}; the model takes ${W}x${H} (resize before imagine)`);
      if (f.data.length !== W * H * 3) bad(`context.frames[${i}] has ${f.data.length} bytes, expected ${W * H * 3} (RGB)`);
    });
    const newest = positions[positions.length - 1] as number;
    let keep = positions.map((_, i) => i);
    const [lo] = m.positions.range;
    const outside = keep.filter((i) => (positions[i] as number) - newest < lo);
    if (outside.length > 0) {
      if (this.#positionPolicy === 'reject') {
        const i = outside[0] as number;
        const offset = (positions[i] as number) - newest;
        bad(`context position ${positions[i]} is at offset ${offset} from the newest frame; the model was trained on offsets ≥ ${lo} (positions.range); select newer frames or load with positionPolicy 'drop-oldest'`, { offset });
      }
      keep = keep.filter((i) => (positions[i] as number) - newest >= lo);
    }
    if (keep.length > m.context.maxFrames) bad(`context has ${keep.length} frames; the model takes at most ${m.context.maxFrames}`);
    if (keep.length < m.context.minFrames) bad(`context has ${keep.length} frames (within the trained position range); the model needs at least ${m.context.minFrames}`);
    if (this.#fixedK !== undefined && keep.length !== this.#fixedK) bad(`context has ${keep.length} frames; this model's context input is fixed at ${this.#fixedK}`);
    const horizon = request.horizon ?? m.horizon;
    if (!Number.isInteger(horizon) || horizon < 1 || horizon > m.horizon) bad(`horizon ${horizon} is outside 1..${m.horizon}`);
    if (this.#fixedH !== undefined && horizon !== this.#fixedH) bad(`horizon ${horizon}: this model's target input is fixed at ${this.#fixedH} frames`);
    if (request.candidates.length === 0) bad('no candidates');
    const vocab = m.instruction.actions;
    const cats = m.instruction.goalCategories;
    const actionIds: number[][] = [];
    const goalIds: number[] = [];
    request.candidates.forEach((c, ci) => {
      if (c.actions.length !== horizon) bad(`candidates[${ci}] has ${c.actions.length} actions; horizon is ${horizon} (one action per target frame)`);
      if (c.text !== undefined) bad(`candidates[${ci}] has text; model "${m.name}" takes action tokens only`);
      actionIds.push(
        c.actions.map((a, ai) => {
          const spec = vocab[a];
          if (spec === undefined) {
            throw new V4sError('E_MODEL_ACTION', `imagine(): candidates[${ci}].actions[${ai}] "${a}" is not in the vocabulary of model "${m.name}" (${Object.keys(vocab).join(', ')})`, { action: a });
          }
          return spec.id;
        }),
      );
      let goal = 0;
      if (c.goalCategory !== undefined && cats.length > 0) {
        const gi = cats.indexOf(c.goalCategory);
        if (gi < 0) bad(`candidates[${ci}].goalCategory "${c.goalCategory}" is not one of the model's categories (${cats.join(', ')})`);
        goal = gi + 1;
      }
      goalIds.push(goal);
    });
    const seed = request.seed ?? 0;
    if (!Number.isSafeInteger(seed) || seed < 0) bad(`seed must be a non-negative integer, got ${seed}`);
    let sampler: SamplerProgram;
    let plan: GuidancePlan;
    const samplerConfig = request.sampler ?? m.defaults.sampler;
    try {
      sampler = createSampler(samplerConfig, m.schedule, m.prediction);
      plan = planGuidance(request.guidance ?? m.defaults.guidance);
    } catch (e) {
      return bad((e as Error).message);
    }
    const scale = m.positions.scale;
    const planKey = plan.branches.map((b) => `${b.contextMask}${b.instructionMask}`).join(',') + `@${plan.weights.join(',')}`;
    return {
      horizon,
      frames: keep.map((i) => frames[i] as Frame),
      offsets: keep.map((i) => ((positions[i] as number) - newest) * scale),
      candidates: request.candidates,
      actionIds,
      goalIds,
      sampler,
      plan,
      seed,
      groupKey: `${keep.length}|${horizon}|${samplerKey(samplerConfig)}|${planKey}`,
    };
  }

  #f32(len: number): Float32Array {
    this.#stats.bufferAllocations++;
    return new Float32Array(len);
  }

  #tensor(type: 'float32', data: Float32Array, dims: readonly number[]): BackendTensor;
  #tensor(type: 'int64', data: BigInt64Array, dims: readonly number[]): BackendTensor;
  #tensor(type: 'float32' | 'int64', data: Float32Array | BigInt64Array, dims: readonly number[]): BackendTensor {
    this.#stats.tensorAllocations++;
    return data instanceof Float32Array ? { type: 'float32', data, dims: [...dims] } : { type: 'int64', data, dims: [...dims] };
  }

  /** Buffers for `r` requests of `k` context frames with `n` candidates in all, `branches` guidance branches. */
  #workspace(r: number, n: number, branches: number, k: number, h: number): Workspace {
    const key = `${r}:${n}:${branches}:${k}:${h}`;
    const hit = this.#workspaces.get(key);
    if (hit) {
      this.#workspaces.delete(key);
      this.#workspaces.set(key, hit); // most recently used last
      return hit;
    }
    const m = this.manifest;
    const L = this.#latentSize;
    const S = h * L;
    const B = n * branches;
    const { channels: C, height: lh, width: lw } = m.latent;
    const i64 = (len: number): BigInt64Array => {
      this.#stats.bufferAllocations++;
      return new BigInt64Array(len);
    };
    const buffers = {
      x: this.#f32(n * S),
      guided: this.#f32(n * S),
      xt: this.#f32(B * S),
      t: this.#f32(B),
      context: this.#f32(B * k * L),
      contextPositions: this.#f32(B * k),
      targetPositions: this.#f32(B * h),
      actions: i64(B * h),
      goal: i64(B),
      contextMask: this.#f32(B),
      instructionMask: this.#f32(B),
      contextLatents: this.#f32(r * k * L),
    };
    const feeds: Feeds = {
      x_t: this.#tensor('float32', buffers.xt, [B, h, C, lh, lw]),
      t: this.#tensor('float32', buffers.t, [B]),
      context: this.#tensor('float32', buffers.context, [B, k, C, lh, lw]),
      context_positions: this.#tensor('float32', buffers.contextPositions, [B, k]),
      target_positions: this.#tensor('float32', buffers.targetPositions, [B, h]),
      actions: this.#tensor('int64', buffers.actions, [B, h]),
      context_mask: this.#tensor('float32', buffers.contextMask, [B]),
      instruction_mask: this.#tensor('float32', buffers.instructionMask, [B]),
    };
    if (this.#hasGoalInput) feeds['goal'] = this.#tensor('int64', buffers.goal, [B]);
    const stepFeeds: Feeds = {};
    for (const name of Object.keys(m.tensors.denoiserStep?.inputs ?? {})) {
      const shared = feeds[name];
      if (shared !== undefined) stepFeeds[name] = shared;
    }
    let codec: Pick<Workspace, 'encoderFeeds' | 'encoderFrames' | 'decoderFeeds'> = {};
    if (this.#hasEncoder) {
      const { width: W, height: Hp } = m.resolution;
      const encoderFrames = this.#f32(r * k * 3 * Hp * W);
      codec = {
        encoderFrames,
        encoderFeeds: { frames: this.#tensor('float32', encoderFrames, [r * k, 3, Hp, W]) },
        decoderFeeds: { latents: this.#tensor('float32', buffers.x, [n * h, C, lh, lw]) },
      };
    }
    const ws: Workspace = { ...buffers, feeds, stepFeeds, cached: new Map(), contextRuns: new Map(), ...codec };
    this.#workspaces.set(key, ws);
    while (this.#workspaces.size > MAX_WORKSPACES) {
      const oldest = this.#workspaces.keys().next().value;
      if (oldest === undefined) break;
      this.#workspaces.delete(oldest);
    }
    return ws;
  }

  /**
   * Run context.onnx once on one row per (request, distinct context mask), and tile each output over the batch
   * rows into the step feeds (row b·n + g takes the row of candidate g's request and branch b's mask).
   */
  async #cacheContext(ws: Workspace, group: readonly PreparedRequest[], reqOf: Int32Array, n: number, K: number): Promise<void> {
    const spec = this.manifest.tensors.context;
    const first = group[0];
    if (!this.contextCache || spec === undefined || first === undefined) return;
    const file = this.#backend.describe('context');
    const plan = first.plan;
    const masks = [...new Set(plan.branches.map((b) => b.contextMask))];
    const M = masks.length;
    const rows = group.length * M;
    const L = this.#latentSize;
    let run = ws.contextRuns.get(rows);
    if (run === undefined) {
      const { channels: C, height: lh, width: lw } = this.manifest.latent;
      const context = this.#f32(rows * K * L);
      const positions = this.#f32(rows * K);
      const mask = this.#f32(rows);
      const all: Feeds = {
        context: this.#tensor('float32', context, [rows, K, C, lh, lw]),
        context_positions: this.#tensor('float32', positions, [rows, K]),
        context_mask: this.#tensor('float32', mask, [rows]),
      };
      const feeds: Feeds = {};
      for (const name of Object.keys(spec.inputs)) {
        const t = all[name];
        if (t !== undefined) feeds[name] = t;
      }
      run = { context, positions, mask, feeds };
      ws.contextRuns.set(rows, run);
    }
    group.forEach((p, q) => {
      for (let s = 0; s < M; s++) {
        const row = q * M + s;
        run.context.set(ws.contextLatents.subarray(q * K * L, (q + 1) * K * L), row * K * L);
        for (let j = 0; j < K; j++) run.positions[row * K + j] = p.offsets[j] as number;
        run.mask[row] = masks[s] ?? 1;
      }
    });
    const out = await this.#run('context', run.feeds);
    const B = n * plan.branches.length;
    const srcRow = new Int32Array(B);
    for (let r = 0; r < B; r++) srcRow[r] = (reqOf[r % n] as number) * M + masks.indexOf(plan.branches[Math.floor(r / n)]?.contextMask ?? 1);
    for (const [name, tspec] of Object.entries(spec.outputs)) {
      const t = out[name];
      const data = outputData(out, name, file);
      assertFinite(data, `${file} output "${name}"`);
      const axis = tspec.shape.indexOf(BATCH_SYMBOL);
      const dims = (t as BackendOutput).dims;
      if (dims[axis] !== rows) throw new V4sError('E_MODEL_TENSOR', `${file}: output "${name}" has ${dims[axis]} rows on its batch axis ${axis}, expected ${rows}`, { tensor: name });
      const outDims = dims.map((d, i) => (i === axis ? B : d));
      let cached = ws.cached.get(name);
      if (cached === undefined || cached.dims.some((d, i) => d !== outDims[i])) {
        const buf = this.#f32(outDims.reduce((a, b) => a * b, 1));
        cached = { dims: outDims, data: buf, tensor: this.#tensor('float32', buf, outDims) };
        ws.cached.set(name, cached);
        ws.stepFeeds[name] = cached.tensor;
      }
      const pre = dims.slice(0, axis).reduce((a, b) => a * b, 1);
      const post = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
      for (let o = 0; o < pre; o++) {
        for (let r = 0; r < B; r++) {
          const src = (o * rows + (srcRow[r] as number)) * post;
          cached.data.set(data.subarray(src, src + post), (o * B + r) * post);
        }
      }
    }
  }

  /** Validate every request, group compatible ones, sample each group in one batch; results in request order. */
  async #sampleMany(requests: readonly ImagineRequest[], decode: boolean): Promise<SampleResult[][]> {
    if (this.#disposed) throw new V4sError('E_MODEL_INPUT', `world model "${this.info.name}" was disposed`);
    const prepared = requests.map((r) => this.#prepare(r));
    const groups = new Map<string, number[]>();
    prepared.forEach((p, i) => {
      const g = groups.get(p.groupKey);
      if (g) g.push(i);
      else groups.set(p.groupKey, [i]);
    });
    const results: SampleResult[][] = new Array<SampleResult[]>(requests.length);
    for (const indices of groups.values()) {
      const out = await this.#sample(indices.map((i) => prepared[i] as PreparedRequest), decode);
      indices.forEach((i, q) => {
        results[i] = out[q] ?? [];
      });
    }
    return results;
  }

  /**
   * Sample a group of compatible requests (same K, horizon, sampler, guidance) in one batch. Rows of a step:
   * `[branch 0: candidates of request 0, of request 1, …; branch 1: …]`; one request alone is the layout of
   * docs/model-package.md. Candidate c of a request draws its noise from stream (seed, c) of its own request.
   */
  async #sample(group: readonly PreparedRequest[], decode: boolean): Promise<SampleResult[][]> {
    const tStart = performance.now();
    const p0 = group[0];
    if (p0 === undefined) return [];
    const m = this.manifest;
    const R = group.length;
    const reqOfCand: number[] = [];
    const local: number[] = [];
    group.forEach((p, q) => p.candidates.forEach((_, c) => (reqOfCand.push(q), local.push(c))));
    const reqOf = Int32Array.from(reqOfCand);
    const n = reqOf.length;
    const plan = p0.plan;
    const sampler = p0.sampler;
    const nb = plan.branches.length;
    const B = n * nb;
    const K = p0.frames.length;
    const Hh = p0.horizon;
    const L = this.#latentSize;
    const S = Hh * L;
    const ws = this.#workspace(R, n, nb, K, Hh);
    const actionIds = group.flatMap((p) => p.actionIds);
    const goalIds = group.flatMap((p) => p.goalIds);

    // Encode each request's context once per call (all requests' frames in one encoder run).
    const tEnc = performance.now();
    const allFrames = group.flatMap((p) => p.frames);
    if (this.#hasEncoder && ws.encoderFeeds && ws.encoderFrames) {
      this.#framesToChw(allFrames, ws.encoderFrames);
      const file = this.#backend.describe('encoder');
      const lat = outputData(await this.#run('encoder', ws.encoderFeeds), 'latents', file);
      assertFinite(lat, `${file} output "latents"`);
      if (lat.length < R * K * L) throw new V4sError('E_MODEL_TENSOR', `${file}: output "latents" has ${lat.length} values, expected ${R * K * L}`, { tensor: 'latents' });
      ws.contextLatents.set(lat.subarray(0, R * K * L));
    } else {
      this.#framesToChw(allFrames, ws.contextLatents);
    }

    // Conditioning rows: the request's context, the candidate's instruction, the branch's masks.
    const scale = m.positions.scale;
    for (let b = 0; b < nb; b++) {
      const branch = plan.branches[b];
      for (let g = 0; g < n; g++) {
        const r = b * n + g;
        const q = reqOf[g] as number;
        const offsets = (group[q] as PreparedRequest).offsets;
        ws.context.set(ws.contextLatents.subarray(q * K * L, (q + 1) * K * L), r * K * L);
        for (let j = 0; j < K; j++) ws.contextPositions[r * K + j] = offsets[j] as number;
        const ids = actionIds[g] ?? [];
        for (let j = 0; j < Hh; j++) {
          ws.targetPositions[r * Hh + j] = (j + 1) * scale;
          ws.actions[r * Hh + j] = BigInt(ids[j] ?? 0);
        }
        ws.goal[r] = BigInt(goalIds[g] ?? 0);
        ws.contextMask[r] = branch?.contextMask ?? 1;
        ws.instructionMask[r] = branch?.instructionMask ?? 1;
      }
    }
    if (this.contextCache) await this.#cacheContext(ws, group, reqOf, n, K);
    const encodeMs = performance.now() - tEnc;

    // Initial noise: one RNG stream per candidate of each request, so a candidate's noise is independent of
    // the batch (its mates, and the other requests sharing it).
    const rngs: Rng[] = [];
    for (let g = 0; g < n; g++) {
      const rng = createRng((group[reqOf[g] as number] as PreparedRequest).seed, local[g] as number);
      rng.fillNormal(ws.x, g * S, S);
      rngs.push(rng);
    }

    const anyGoal = goalIds.some((gi) => gi > 0);
    const auxSpec = anyGoal ? m.auxOutputs.find((a) => a.name === 'grounding') : undefined;
    const curSpec = anyGoal ? m.auxOutputs.find((a) => a.name === 'grounding_current') : undefined;
    const groundingRows: (Float32Array | undefined)[] = new Array<Float32Array | undefined>(n);
    const currentRows: (Float32Array | undefined)[] = new Array<Float32Array | undefined>(n);
    const fetchPred = ['pred'];
    const fetchLast = ['pred', ...(auxSpec ? ['grounding'] : []), ...(curSpec ? ['grounding_current'] : [])];

    const tDen = performance.now();
    const steps = sampler.steps;
    for (let k = 0; k < steps; k++) {
      const last = k === steps - 1;
      // The cached split lacks grounding_current: the last step runs the full denoiser when it is wanted.
      const full = !this.contextCache || (last && curSpec !== undefined);
      const role: Role = full ? 'denoiser' : 'denoiserStep';
      const file = this.#backend.describe(role);
      ws.t.fill(sampler.modelTime(k));
      for (let b = 0; b < nb; b++) ws.xt.set(ws.x, b * n * S);
      const out = await this.#run(role, full ? ws.feeds : ws.stepFeeds, last ? fetchLast : fetchPred);
      const pred = outputData(out, 'pred', file);
      if (pred.length !== B * S) {
        throw new V4sError('E_MODEL_TENSOR', `${file}: output "pred" has ${pred.length} values, expected ${B * S} ([${B},${Hh},${m.latent.channels},${m.latent.height},${m.latent.width}])`, { tensor: 'pred' });
      }
      combineGuidance(plan, pred, n, S, ws.guided);
      if (!allFinite(ws.guided)) throw nonFinite(pred, S, n, plan, `${file} output "pred"`, `step ${k + 1}/${steps}`);
      for (let g = 0; g < n; g++) sampler.step(k, ws.x, ws.guided, g * S, S, rngs[g] as Rng);
      if (last) {
        // Auxiliary outputs come from the fully conditional branch of the final step, never combined.
        const take = (name: string, size: number, spec: AuxOutputSpec, into: (Float32Array | undefined)[]): void => {
          const gr = outputData(out, name, file);
          for (let g = 0; g < n; g++) {
            if ((goalIds[g] ?? 0) === 0) continue;
            const row = plan.conditional * n + g;
            const copy = gr.slice(row * size, (row + 1) * size);
            if (!allFinite(copy)) throw nonFinite(gr, size, n, plan, `${file} output "${name}"`, `step ${k + 1}/${steps}`, row);
            if (spec.activation === 'sigmoid') for (let i = 0; i < copy.length; i++) copy[i] = 1 / (1 + Math.exp(-(copy[i] as number)));
            into[g] = copy;
          }
        };
        if (auxSpec) take('grounding', Hh * auxSpec.width * auxSpec.height, auxSpec, groundingRows);
        if (curSpec) take('grounding_current', curSpec.width * curSpec.height, curSpec, currentRows);
      }
    }
    this.#stats.denoiseSteps += steps;
    const denoiseMs = performance.now() - tDen;

    // Decode.
    const tDec = performance.now();
    let frames: Frame[][] | undefined;
    if (decode) {
      let pixels: Float32Array = ws.x;
      let pixelScale = m.latent.scale;
      if (this.#hasEncoder && ws.decoderFeeds) {
        const file = this.#backend.describe('decoder');
        pixels = outputData(await this.#run('decoder', ws.decoderFeeds), 'frames', file);
        pixelScale = 1;
      }
      frames = [];
      const { width: W, height: Hp } = m.resolution;
      if (pixels.length < n * Hh * 3 * W * Hp) {
        throw new V4sError('E_MODEL_TENSOR', `${this.#backend.describe('decoder')}: output "frames" has ${pixels.length} values, expected ${n * Hh * 3 * W * Hp}`, { tensor: 'frames' });
      }
      for (let g = 0; g < n; g++) {
        const list: Frame[] = [];
        for (let j = 0; j < Hh; j++) {
          const frame = this.#chwToFrame(pixels, (g * Hh + j) * 3 * W * Hp, pixelScale);
          if (frame === undefined) {
            assertFinite(pixels, this.#hasEncoder ? `${this.#backend.describe('decoder')} output "frames"` : 'sampled frames');
            throw new V4sError('E_MODEL_OUTPUT', 'decoded frames contain NaN or Inf');
          }
          list.push(frame);
        }
        frames.push(list);
      }
    }
    const decodeMs = performance.now() - tDec;
    const totalMs = performance.now() - tStart;
    this.#stats.imagineMs += totalMs;
    this.#stats.imagineCalls++;
    const timings: RolloutTimings = { encodeMs, denoiseMs, decodeMs, totalMs };
    const out: SampleResult[][] = group.map(() => []);
    for (let g = 0; g < n; g++) {
      const q = reqOf[g] as number;
      const instruction = (group[q] as PreparedRequest).candidates[local[g] as number] as Instruction;
      const gr = groundingRows[g];
      const cur = currentRows[g];
      (out[q] as SampleResult[]).push({
        instruction,
        horizon: Hh,
        latents: ws.x.slice(g * S, (g + 1) * S),
        ...(frames ? { frames: frames[g] ?? [] } : {}),
        ...(gr && auxSpec ? { grounding: splitGrounding(gr, Hh, auxSpec.width, auxSpec.height) } : {}),
        ...(cur && curSpec ? { currentGrounding: { width: curSpec.width, height: curSpec.height, data: cur } } : {}),
        timings,
      });
    }
    return out;
  }

  /** uint8 HWC frames → float CHW in pixelRange (× latent.scale for pixel-space models), frame after frame. */
  #framesToChw(frames: readonly Frame[], out: Float32Array): void {
    const lut = this.#pixelLut;
    const { width: W, height: H } = this.manifest.resolution;
    const plane = W * H;
    frames.forEach((f, fi) => {
      const base = fi * 3 * plane;
      const d = f.data;
      for (let i = 0; i < plane; i++) {
        out[base + i] = lut[d[3 * i] as number] as number;
        out[base + plane + i] = lut[d[3 * i + 1] as number] as number;
        out[base + 2 * plane + i] = lut[d[3 * i + 2] as number] as number;
      }
    });
  }

  /**
   * Float CHW in pixelRange (× scale) → uint8 HWC frame, rounded and clamped (by a Uint8ClampedArray view).
   * Returns undefined when the source holds NaN/Inf (checked in the same pass).
   */
  #chwToFrame(src: Float32Array, offset: number, scale: number): Frame | undefined {
    const { width: W, height: H } = this.manifest.resolution;
    const [lo, hi] = this.manifest.pixelRange;
    const plane = W * H;
    const data = new Uint8Array(plane * 3);
    const out = new Uint8ClampedArray(data.buffer);
    const mul = 255 / ((hi - lo) * scale);
    const add = (-lo * 255) / (hi - lo);
    let probe = 0; // stays 0 unless some value is NaN or ±Inf (x·0 is NaN for those)
    for (let ch = 0; ch < 3; ch++) {
      const base = offset + ch * plane;
      for (let i = 0; i < plane; i++) {
        const v = src[base + i] as number;
        probe += v * 0;
        out[3 * i + ch] = v * mul + add;
      }
    }
    return probe === 0 ? { width: W, height: H, data } : undefined;
  }
}

/** A world model backed by an ONNX model package run by onnxruntime-node in this process. Create with `loadWorldModel`. */
export class OnnxWorldModel extends PackageWorldModel {
  /** The package folder. */
  readonly dir: string;
  /** The execution provider actually used (`cpu` after a CUDA fallback). */
  readonly device: 'cpu' | 'cuda';

  /** @internal use `loadWorldModel`. */
  constructor(dir: string, manifest: ModelManifest, backend: ModelBackend, device: 'cpu' | 'cuda', options: LoadWorldModelOptions) {
    super(manifest, backend, options.positionPolicy !== undefined ? { positionPolicy: options.positionPolicy } : {});
    this.dir = dir;
    this.device = device;
  }
}

function toRollouts(res: readonly SampleResult[]): Rollout[] {
  return res.map((r) => ({
    instruction: r.instruction,
    frames: r.frames ?? [],
    ...(r.grounding ? { grounding: r.grounding } : {}),
    ...(r.currentGrounding ? { currentGrounding: r.currentGrounding } : {}),
    timings: r.timings,
  }));
}

function emptyStats(): WorldModelRuntimeStats {
  return {
    sessionRuns: 0,
    sessionRunMs: 0,
    imagineMs: 0,
    imagineCalls: 0,
    denoiseSteps: 0,
    tensorAllocations: 0,
    bufferAllocations: 0,
    outputTensors: 0,
    maxConcurrentRuns: 0,
  };
}

function outputData(out: BackendOutputs, name: string, file: string): Float32Array {
  const t = out[name];
  if (t === undefined) throw new V4sError('E_MODEL_TENSOR', `${file}: output "${name}" missing from the run result`, { tensor: name });
  const d = t.data;
  if (!(d instanceof Float32Array)) throw new V4sError('E_MODEL_TENSOR', `${file}: output "${name}": expected float32 data, found ${t.type}`, { tensor: name });
  return d;
}

function allFinite(a: Float32Array): boolean {
  // x·0 is NaN for NaN and ±Inf and 0 otherwise, so the sum stays 0 exactly when every value is finite.
  let probe = 0;
  for (let i = 0; i < a.length; i++) probe += (a[i] as number) * 0;
  return probe === 0;
}

function assertFinite(a: Float32Array, what: string): void {
  if (allFinite(a)) return;
  for (let i = 0; i < a.length; i++) {
    const v = a[i] as number;
    if (v - v !== 0) throw new V4sError('E_MODEL_OUTPUT', `${what} contains ${Number.isNaN(v) ? 'NaN' : 'Inf'} at index ${i}`, { tensor: what, index: i });
  }
}

const BRANCH_NAMES = (plan: GuidancePlan, b: number): string => {
  const br = plan.branches[b];
  if (!br) return `branch ${b}`;
  const name = br.contextMask && br.instructionMask ? 'context+instruction' : br.contextMask ? 'context only' : br.instructionMask ? 'instruction only' : 'null';
  return `branch ${b} (${name})`;
};

/** Locate the first NaN/Inf in a batched output and name the tensor, step, branch and candidate. */
function nonFinite(raw: Float32Array, rowSize: number, n: number, plan: GuidancePlan, what: string, when: string, rowHint?: number): V4sError {
  let row = rowHint ?? -1;
  let value = NaN;
  if (rowHint === undefined) {
    for (let i = 0; i < raw.length; i++) {
      const v = raw[i] as number;
      if (v - v !== 0) {
        row = Math.floor(i / rowSize);
        value = v;
        break;
      }
    }
  } else {
    for (let i = row * rowSize; i < (row + 1) * rowSize; i++) {
      const v = raw[i] as number;
      if (v - v !== 0) {
        value = v;
        break;
      }
    }
  }
  const kind = Number.isNaN(value) ? 'NaN' : 'Inf';
  const where = row >= 0 ? ` (batch row ${row}: ${BRANCH_NAMES(plan, Math.floor(row / n))}, candidate ${row % n})` : ' (after guidance)';
  return new V4sError('E_MODEL_OUTPUT', `${what} contains ${kind} at ${when}${where}`, { tensor: what, row });
}

function splitGrounding(g: Float32Array, horizon: number, width: number, height: number): GroundingMap[] {
  const size = width * height;
  const maps: GroundingMap[] = [];
  for (let j = 0; j < horizon; j++) maps.push({ width, height, data: g.slice(j * size, (j + 1) * size) });
  return maps;
}
