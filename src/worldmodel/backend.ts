/**
 * The seam between the sampling loop and where a model package's networks run.
 *
 * `PackageWorldModel` (onnx-world-model.ts) owns validation, batching, guidance, the samplers and decoding; it
 * asks a `ModelBackend` to evaluate one network (a *role*: the denoiser, the latent encoder/decoder, or the
 * cached-context pair) on a batch of feeds. Two backends exist: onnxruntime-node sessions in this process
 * (`OnnxWorldModel`), and Open Inference Protocol v2 requests to a server such as Triton (`RemoteWorldModel`),
 * one request per evaluation. Free of onnxruntime types, so other backends can implement it.
 * Usage: `const out = await backend.run('denoiser', feeds, ['pred'])`.
 */

/** The networks of a model package, named as in the manifest's `files` and `tensors`. */
export type ModelRole = 'denoiser' | 'encoder' | 'decoder' | 'context' | 'denoiserStep';

/** Every role, in the order packages list their files. */
export const MODEL_ROLES: readonly ModelRole[] = ['denoiser', 'encoder', 'decoder', 'context', 'denoiserStep'];

/** An input tensor: row-major data, element type and dims. The runtime reuses these across steps. */
export type BackendTensor =
  | { readonly type: 'float32'; readonly data: Float32Array; readonly dims: readonly number[] }
  | { readonly type: 'int64'; readonly data: BigInt64Array; readonly dims: readonly number[] };

/** Inputs of one evaluation, by tensor name. */
export type BackendFeeds = Record<string, BackendTensor>;

/** An output tensor as a backend returns it; the runtime checks its type before reading it. */
export interface BackendOutput {
  readonly type: string;
  readonly data: unknown;
  readonly dims: readonly number[];
}

/** Outputs of one evaluation, by tensor name. */
export type BackendOutputs = Readonly<Record<string, BackendOutput>>;

/** Where a package's networks are evaluated. */
export interface ModelBackend {
  /** Whether the backend has this network (the denoiser always). */
  has(role: ModelRole): boolean;
  /** How errors name the network: its file (`denoiser.onnx`) or its remote model. */
  describe(role: ModelRole): string;
  /** The network's own shape of an input (numbers fixed, strings symbolic), when it states one. */
  inputShape(role: ModelRole, input: string): readonly (number | string)[] | undefined;
  /**
   * Evaluate the network on `feeds`, returning `fetches` (all outputs when omitted). Failures are V4sErrors
   * (a backend may also throw plain errors, which the runtime wraps as E_MODEL_TENSOR naming the network).
   */
  run(role: ModelRole, feeds: BackendFeeds, fetches?: readonly string[]): Promise<BackendOutputs>;
  /** Release sessions or connections. */
  release(): Promise<void>;
}
