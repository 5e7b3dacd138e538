/**
 * A world model whose networks run on a remote inference server that speaks the Open Inference Protocol v2
 * (KServe v2 HTTP/REST): NVIDIA Triton Inference Server, KServe, Seldon MLServer. Serve a model package with
 * `v4s export-triton <package> <repo>` and Triton's container (docs/scaling.md); point the agent at it with
 * `connectRemoteWorldModel`.
 *
 * The sampler and the guidance stay in the SDK: this is `PackageWorldModel`, the same loop as the local ONNX
 * runtime, with a backend that turns each network evaluation into one `infer` request. So each denoising step
 * is ONE request carrying every candidate × guidance branch (and, through `BatchingWorldModel`, every agent's
 * candidates); the encoder, decoder and cached-context networks are separate server models, named after the
 * package (`<prefix><file stem>`, prefix `<manifest name>-`: `v4s-builtin-small-denoiser`, …).
 *
 * At connect it checks `GET /v2/health/ready`, then each model's metadata against the manifest with the same
 * check a local package gets against its ONNX sessions (names, datatypes FP32/INT64, shapes; -1 is variable),
 * failing with E_MODEL_TENSOR naming the remote model and tensor.
 * Usage:
 * ```
 * const wm = await connectRemoteWorldModel({ url: 'http://localhost:8000', manifest: 'models/v4s-builtin-small' });
 * const rollouts = await wm.imagine({ context, candidates, seed: 1 });
 * ```
 */
import path from 'node:path';
import { V4sError } from '../errors.js';
import { MODEL_ROLES, type BackendFeeds, type BackendOutput, type BackendOutputs, type ModelBackend, type ModelRole } from './backend.js';
import { loadManifest, type ModelManifest, type TensorGroup } from './manifest.js';
import { OipClient, type OipClientOptions, type OipClientStats } from './oip/client.js';
import type { OipMetadataTensor, OipModelMetadata, OipTensor } from './oip/types.js';
import { PackageWorldModel, checkModelTensors, type ModelTensorListing } from './onnx-world-model.js';

/** Options of `connectRemoteWorldModel`. */
export interface RemoteWorldModelOptions extends OipClientOptions {
  /** The server's HTTP endpoint, e.g. `http://localhost:8000` (Triton's HTTP port). */
  readonly url: string;
  /** The model package folder (only its manifest.json is read) or a parsed manifest. */
  readonly manifest: string | ModelManifest;
  /** Prefix of the server's model names (default: `<manifest name>-`, as `v4s export-triton` writes them). */
  readonly prefix?: string;
  /** Server model names by role, overriding the prefix rule. */
  readonly models?: Partial<Readonly<Record<ModelRole, string>>>;
  /** Model version to address (`/versions/{v}`); default: the server's policy (Triton: the latest). */
  readonly version?: string;
  /** Use the cached-context split when the package has it (default true), as `loadWorldModel`. */
  readonly contextCache?: boolean;
  /** See `LoadWorldModelOptions.positionPolicy`. */
  readonly positionPolicy?: 'reject' | 'drop-oldest';
  /** Wait up to this long for `GET /v2/health/ready` to say ready, polling every 500 ms (default 0: ask once). */
  readonly waitReadyMs?: number;
}

/** Characters a Triton model name (a folder name, and a URL path segment) keeps; others become `_`. */
export function sanitizeModelName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_');
}

/**
 * The server model name of each network of a package: `<prefix><file stem>` (default prefix `<manifest
 * name>-`), e.g. `v4s-builtin-small-denoiser_step`. `v4s export-triton` and `connectRemoteWorldModel` agree on it.
 */
export function serverModelNames(manifest: ModelManifest, prefix?: string): Partial<Record<ModelRole, string>> {
  const p = prefix ?? `${manifest.name}-`;
  const out: Partial<Record<ModelRole, string>> = {};
  for (const role of MODEL_ROLES) {
    const file = manifest.files[role];
    if (file !== undefined) out[role] = sanitizeModelName(`${p}${path.basename(file).replace(/\.onnx$/i, '')}`);
  }
  return out;
}

/** Map an OIP datatype to the element-type names of the manifest (and onnxruntime). */
const DATATYPE_TO_DTYPE: Readonly<Record<string, string>> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
};

/** Server metadata in the form `checkModelTensors` reads (variable dims, -1, as the symbol "-1"). */
export function metadataListing(meta: OipModelMetadata): ModelTensorListing {
  const convert = (t: OipModelMetadata['inputs'][number]): ModelTensorListing['inputMetadata'][number] =>
    ({
      name: t.name,
      isTensor: true,
      type: DATATYPE_TO_DTYPE[t.datatype] ?? t.datatype.toLowerCase(),
      shape: t.shape.map((d) => (d < 0 ? '-1' : d)),
    }) as ModelTensorListing['inputMetadata'][number];
  return {
    inputNames: meta.inputs.map((t) => t.name),
    outputNames: meta.outputs.map((t) => t.name),
    inputMetadata: meta.inputs.map(convert),
    outputMetadata: meta.outputs.map(convert),
  };
}

/**
 * Triton cannot declare a batched tensor that is only its batch axis (its `dims` may not be empty): such a
 * tensor (`t`, the masks, `goal`) is served as dims `[1]` with `reshape: { shape: [ ] }`, so the API shape is
 * `[B, 1]` where the model's is `[B]`. This finds those tensors (server rank = manifest rank + 1, last dim 1)
 * and returns the metadata with the unit axis taken off, plus their names (sent with a trailing 1).
 */
export function unitTailTensors(meta: OipModelMetadata, group: TensorGroup): { metadata: OipModelMetadata; names: Set<string> } {
  const names = new Set<string>();
  const strip = (list: readonly OipMetadataTensor[], declared: TensorGroup['inputs']): OipMetadataTensor[] =>
    list.map((t) => {
      const spec = declared[t.name];
      if (spec !== undefined && t.shape.length === spec.shape.length + 1 && t.shape[t.shape.length - 1] === 1) {
        names.add(t.name);
        return { ...t, shape: t.shape.slice(0, -1) };
      }
      return t;
    });
  return { metadata: { ...meta, inputs: strip(meta.inputs, group.inputs), outputs: strip(meta.outputs, group.outputs) }, names };
}

/** A server model in use: its metadata (unit batch-only axes taken off) and the tensors sent with one. */
interface RemoteModel {
  readonly metadata: OipModelMetadata;
  readonly unitTail: ReadonlySet<string>;
}

/** One `infer` request per network evaluation. */
class OipBackend implements ModelBackend {
  readonly #client: OipClient;
  readonly #names: Partial<Record<ModelRole, string>>;
  readonly #metadata: Partial<Record<ModelRole, RemoteModel>>;
  readonly #version: string | undefined;

  constructor(client: OipClient, names: Partial<Record<ModelRole, string>>, metadata: Partial<Record<ModelRole, RemoteModel>>, version: string | undefined) {
    this.#client = client;
    this.#names = names;
    this.#metadata = metadata;
    this.#version = version;
  }

  has(role: ModelRole): boolean {
    return this.#metadata[role] !== undefined;
  }

  describe(role: ModelRole): string {
    return `remote model "${this.#names[role] ?? role}"`;
  }

  inputShape(role: ModelRole, input: string): readonly (number | string)[] | undefined {
    const t = this.#metadata[role]?.metadata.inputs.find((i) => i.name === input);
    return t?.shape.map((d) => (d < 0 ? '-1' : d));
  }

  async run(role: ModelRole, feeds: BackendFeeds, fetches?: readonly string[]): Promise<BackendOutputs> {
    const name = this.#names[role];
    const meta = this.#metadata[role];
    if (name === undefined || meta === undefined) throw new V4sError('E_MODEL_FILE', `no ${role} model on the server for this package`);
    const unit = meta.unitTail;
    const inputs: OipTensor[] = Object.entries(feeds).map(([n, t]) => ({
      name: n,
      datatype: t.type === 'float32' ? 'FP32' : 'INT64',
      shape: unit.has(n) ? [...t.dims, 1] : t.dims,
      data: t.data,
    }));
    const wanted = fetches ?? meta.metadata.outputs.map((o) => o.name);
    const res = await this.#client.infer(name, inputs, wanted, this.#version !== undefined ? { version: this.#version } : {});
    const out: Record<string, BackendOutput> = {};
    for (const t of res.outputs) {
      const dims = unit.has(t.name) && t.shape[t.shape.length - 1] === 1 ? t.shape.slice(0, -1) : t.shape;
      out[t.name] = { type: DATATYPE_TO_DTYPE[t.datatype] ?? t.datatype, data: t.data, dims };
    }
    return out;
  }

  async release(): Promise<void> {
    this.#client.close();
  }
}

/** A world model served by an Open Inference Protocol v2 server. Create with `connectRemoteWorldModel`. */
export class RemoteWorldModel extends PackageWorldModel {
  /** The server's base URL. */
  readonly url: string;
  /** The server model name of each network in use. */
  readonly models: Readonly<Partial<Record<ModelRole, string>>>;
  readonly #client: OipClient;

  /** @internal use `connectRemoteWorldModel`. */
  constructor(manifest: ModelManifest, client: OipClient, names: Partial<Record<ModelRole, string>>, metadata: Partial<Record<ModelRole, RemoteModel>>, options: RemoteWorldModelOptions) {
    super(manifest, new OipBackend(client, names, metadata, options.version), options.positionPolicy !== undefined ? { positionPolicy: options.positionPolicy } : {});
    this.url = client.url;
    const used: Partial<Record<ModelRole, string>> = {};
    for (const role of MODEL_ROLES) if (metadata[role] !== undefined && names[role] !== undefined) used[role] = names[role];
    this.models = used;
    this.#client = client;
  }

  /** HTTP counters: requests (retries included), retries, bytes each way, sockets opened. */
  requestStats(): OipClientStats {
    return this.#client.stats();
  }
}

/**
 * Connect to a model package served over the Open Inference Protocol v2. Checks, in order: the server is
 * ready (E_REMOTE, or E_CONNECT / E_TIMEOUT), each network's metadata is there (E_REMOTE with the server's
 * error) and matches the manifest (E_MODEL_TENSOR naming the remote model and tensor).
 */
export async function connectRemoteWorldModel(options: RemoteWorldModelOptions): Promise<RemoteWorldModel> {
  const manifest = typeof options.manifest === 'string' ? await loadManifest(options.manifest) : options.manifest;
  const names = { ...serverModelNames(manifest, options.prefix), ...options.models };
  const roles: ModelRole[] = ['denoiser'];
  if (manifest.files.encoder !== undefined && manifest.files.decoder !== undefined) roles.push('encoder', 'decoder');
  if (options.contextCache !== false && manifest.files.context !== undefined && manifest.files.denoiserStep !== undefined) roles.push('context', 'denoiserStep');
  const client = new OipClient(options.url, options);
  try {
    const deadline = Date.now() + (options.waitReadyMs ?? 0);
    for (;;) {
      if (await client.serverReady()) break;
      if (Date.now() >= deadline) throw new V4sError('E_REMOTE', `GET ${client.url}/v2/health/ready: the server is not ready${options.waitReadyMs ? ` after ${options.waitReadyMs} ms` : ''} (models still loading, or one failed to load: see the server's log)`, { url: client.url });
      await new Promise((r) => setTimeout(r, 500));
    }
    const metadata: Partial<Record<ModelRole, RemoteModel>> = {};
    for (const role of roles) {
      const name = names[role];
      const group = manifest.tensors[role];
      if (name === undefined || group === undefined) continue;
      const meta = await client.modelMetadata(name, options.version);
      if (meta.name !== name) throw new V4sError('E_REMOTE', `GET ${client.url}/v2/models/${name}: metadata names model "${meta.name}"`, { model: name });
      const { metadata: stripped, names: unitTail } = unitTailTensors(meta, group);
      checkModelTensors(`remote model "${name}" (${client.url})`, metadataListing(stripped), group);
      metadata[role] = { metadata: stripped, unitTail };
    }
    return new RemoteWorldModel(manifest, client, names, metadata, options);
  } catch (e) {
    client.close();
    throw e;
  }
}
