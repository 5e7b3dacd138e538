/**
 * `v4s export-triton <model-package> <out-dir>`: write a Triton Inference Server model repository for a model
 * package's ONNX files, so the world model can be served by Triton (or any server that reads Triton model
 * repositories) and used through `connectRemoteWorldModel`:
 *
 * ```
 * <out-dir>/<prefix>denoiser/config.pbtxt        platform "onnxruntime_onnx", inputs/outputs, max_batch_size, …
 * <out-dir>/<prefix>denoiser/1/model.onnx
 * <out-dir>/<prefix>encoder/…  decoder/…  context/…  denoiser_step/…   (those the package has)
 * ```
 *
 * Each file is loaded with onnxruntime first and checked against the manifest (as `loadWorldModel` does), and
 * the config's dims are the model's own (a dim fixed in the model or the manifest is written as a number,
 * a symbolic one as -1). A network whose every input and output starts with the same symbolic batch axis
 * (the denoiser `B`, the encoder/decoder `N`) gets `max_batch_size` > 0, dims without that axis and
 * `dynamic_batching { }`, so Triton can also merge requests from several agent processes; a tensor that is
 * only the batch axis (`t`, the masks, `goal`) is written `dims: [ 1 ]` with `reshape: { shape: [ ] }`, as
 * Triton requires (clients send it as [B, 1]; `RemoteWorldModel` does). The cached-context networks carry the
 * batch on another axis (`[L, B, …]`), so they get `max_batch_size: 0` and full dims.
 *
 * Usage: `v4s export-triton models/v4s-builtin-small triton-repo` then
 * `docker run --gpus all -p8000:8000 -v $PWD/triton-repo:/models nvcr.io/nvidia/tritonserver:<ver>-py3 tritonserver --model-repository=/models`.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import * as ort from 'onnxruntime-node';
import { V4sError } from '../errors.js';
import { MODEL_ROLES, type ModelRole } from '../worldmodel/backend.js';
import { BATCH_SYMBOL, loadManifest, type ModelManifest, type TensorDType, type TensorSpec } from '../worldmodel/manifest.js';
import { checkModelTensors } from '../worldmodel/onnx-world-model.js';
import { serverModelNames } from '../worldmodel/remote-world-model.js';
import { EXIT, displayPath, intArg, processIO, resolveOutputPath, type CliIO } from './common.js';

/** Triton's element types (model_config.proto `DataType`) for the manifest's dtypes. */
export const TRITON_DATA_TYPE: Readonly<Record<TensorDType, string>> = {
  float32: 'TYPE_FP32',
  float16: 'TYPE_FP16',
  float64: 'TYPE_FP64',
  int64: 'TYPE_INT64',
  int32: 'TYPE_INT32',
  uint8: 'TYPE_UINT8',
  bool: 'TYPE_BOOL',
};

/** One input or output of a Triton model config. */
export interface TritonTensorConfig {
  readonly name: string;
  readonly dataType: string;
  /** Without the batch axis when the model's `maxBatchSize` > 0; -1 for a variable dim. */
  readonly dims: readonly number[];
  /** `reshape: { shape: [...] }`: the shape the model itself takes (a batch-only tensor: `[]`). */
  readonly reshape?: readonly number[];
}

/** A Triton model config (the fields `v4s export-triton` writes). */
export interface TritonModelConfig {
  readonly name: string;
  readonly platform: 'onnxruntime_onnx';
  readonly maxBatchSize: number;
  readonly inputs: readonly TritonTensorConfig[];
  readonly outputs: readonly TritonTensorConfig[];
  readonly dynamicBatching: boolean;
  readonly instanceKind: 'KIND_GPU' | 'KIND_CPU';
  readonly instanceCount: number;
}

/** Options of `exportTriton`. */
export interface ExportTritonOptions {
  /** Model name prefix (default `<manifest name>-`; `connectRemoteWorldModel` uses the same default). */
  readonly prefix?: string;
  /** `max_batch_size` of the batchable networks (default 1024: rows of one request, e.g. agents × candidates × branches). */
  readonly maxBatchSize?: number;
  /** `instance_group` kind (default `gpu`: KIND_GPU; `cpu` for a CPU-only Triton). */
  readonly instanceKind?: 'gpu' | 'cpu';
  /** Instances of each model (default 1). */
  readonly instances?: number;
  /** Export the cached-context split when the package has it (default true). */
  readonly contextCache?: boolean;
  /** Replace model folders that already exist in the repository (default false: E_PATH). */
  readonly force?: boolean;
  /** Version folder (default 1). */
  readonly version?: number;
}

/** What `exportTriton` wrote. */
export interface ExportTritonResult {
  readonly repository: string;
  readonly manifest: ModelManifest;
  readonly models: readonly { readonly role: ModelRole; readonly config: TritonModelConfig; readonly dir: string }[];
}

type Listing = Pick<ort.InferenceSession, 'inputNames' | 'outputNames' | 'inputMetadata' | 'outputMetadata'>;

function modelShape(listing: Listing, side: 'input' | 'output', name: string): readonly (number | string)[] | undefined {
  const meta = (side === 'input' ? listing.inputMetadata : listing.outputMetadata).find((m) => m.name === name);
  return meta?.isTensor && meta.shape.length > 0 ? meta.shape : undefined;
}

/** A dim for the config: fixed in the model, else fixed in the manifest, else -1. */
function resolveDim(declared: number | string, fromModel: number | string | undefined): number {
  if (typeof fromModel === 'number' && fromModel > 0) return fromModel;
  return typeof declared === 'number' ? declared : -1;
}

/**
 * The Triton config of one network, from its manifest tensor group and the model's own shapes.
 * Batchable when every tensor's first dim is the same symbol in the manifest and symbolic in the model.
 */
export function tritonConfig(
  name: string,
  manifest: ModelManifest,
  role: ModelRole,
  listing: Listing | undefined,
  options: Pick<ExportTritonOptions, 'maxBatchSize' | 'instanceKind' | 'instances'> = {},
): TritonModelConfig {
  const group = manifest.tensors[role];
  if (group === undefined) throw new V4sError('E_MODEL_MANIFEST', `manifest.json declares no tensors for ${role}`);
  const all: [('input' | 'output'), string, TensorSpec][] = [
    ...Object.entries(group.inputs).map(([n, t]): ['input', string, TensorSpec] => ['input', n, t]),
    ...Object.entries(group.outputs).map(([n, t]): ['output', string, TensorSpec] => ['output', n, t]),
  ];
  const first = all[0]?.[2].shape[0];
  const maxBatch = options.maxBatchSize ?? 1024;
  const batchable =
    maxBatch > 0 &&
    typeof first === 'string' &&
    all.every(([side, n, t]) => {
      const m = listing ? modelShape(listing, side, n)?.[0] : undefined;
      return t.shape[0] === first && !(typeof m === 'number' && m > 0);
    });
  const tensor = ([side, n, t]: ['input' | 'output', string, TensorSpec]): TritonTensorConfig => {
    const own = listing ? modelShape(listing, side, n) : undefined;
    const dims = t.shape.map((d, i) => resolveDim(d, own?.[i]));
    const dataType = TRITON_DATA_TYPE[t.dtype];
    if (!batchable) return { name: n, dataType, dims };
    if (dims.length === 1) return { name: n, dataType, dims: [1], reshape: [] };
    return { name: n, dataType, dims: dims.slice(1) };
  };
  return {
    name,
    platform: 'onnxruntime_onnx',
    maxBatchSize: batchable ? maxBatch : 0,
    inputs: all.filter(([s]) => s === 'input').map(tensor),
    outputs: all.filter(([s]) => s === 'output').map(tensor),
    dynamicBatching: batchable,
    instanceKind: options.instanceKind === 'cpu' ? 'KIND_CPU' : 'KIND_GPU',
    instanceCount: options.instances ?? 1,
  };
}

/** Render a config in protobuf text format (config.pbtxt). */
export function renderConfigPbtxt(c: TritonModelConfig): string {
  const list = (values: readonly number[]): string => (values.length > 0 ? `[ ${values.join(', ')} ]` : '[ ]');
  const tensors = (items: readonly TritonTensorConfig[]): string =>
    items
      .map((t) => {
        const lines = ['  {', `    name: ${JSON.stringify(t.name)}`, `    data_type: ${t.dataType}`, `    dims: ${list(t.dims)}`];
        if (t.reshape !== undefined) lines.push(`    reshape: { shape: ${list(t.reshape)} }`);
        lines.push('  }');
        return lines.join('\n');
      })
      .join(',\n');
  const parts = [
    `name: ${JSON.stringify(c.name)}`,
    `platform: ${JSON.stringify(c.platform)}`,
    `max_batch_size: ${c.maxBatchSize}`,
    `input [\n${tensors(c.inputs)}\n]`,
    `output [\n${tensors(c.outputs)}\n]`,
  ];
  if (c.dynamicBatching) parts.push('dynamic_batching { }');
  parts.push(`instance_group [\n  {\n    count: ${c.instanceCount}\n    kind: ${c.instanceKind}\n  }\n]`);
  return `# Written by v4s export-triton from a v4s.model.v1 package; see docs/scaling.md.\n${parts.join('\n')}\n`;
}

/**
 * Write a Triton model repository for a package: per network a folder `<name>/config.pbtxt` and
 * `<name>/<version>/model.onnx`. Validates the package first (E_MODEL_MANIFEST, E_MODEL_FILE, E_MODEL_TENSOR);
 * refuses to replace existing model folders unless `force` (E_PATH).
 */
export async function exportTriton(packageDir: string, outDir: string, options: ExportTritonOptions = {}): Promise<ExportTritonResult> {
  const manifest = await loadManifest(packageDir);
  const names = serverModelNames(manifest, options.prefix);
  const version = options.version ?? 1;
  const roles = MODEL_ROLES.filter((r) => manifest.files[r] !== undefined && (options.contextCache !== false || (r !== 'context' && r !== 'denoiserStep')));
  const planned: { role: ModelRole; file: string; config: TritonModelConfig; dir: string }[] = [];
  for (const role of roles) {
    const fileName = manifest.files[role] as string;
    const name = names[role] as string;
    const file = path.join(packageDir, fileName);
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (e) {
      throw new V4sError('E_MODEL_FILE', `model file missing: ${file} (named by manifest.json files): ${(e as Error).message}`, { path: file });
    }
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], graphOptimizationLevel: 'disabled', intraOpNumThreads: 1 });
    } catch (e) {
      throw new V4sError('E_MODEL_FILE', `${file} is not a loadable ONNX model: ${(e as Error).message}`, { path: file }, { cause: e });
    }
    try {
      const group = manifest.tensors[role];
      if (group !== undefined) checkModelTensors(file, session, group);
      planned.push({ role, file, config: tritonConfig(name, manifest, role, session, options), dir: path.join(outDir, name) });
    } finally {
      await session.release();
    }
  }
  for (const p of planned) {
    if (existsSync(p.dir) && !options.force) throw new V4sError('E_PATH', `${p.dir} already exists; remove it or pass --force to replace it`, { path: p.dir });
  }
  await mkdir(outDir, { recursive: true });
  for (const p of planned) {
    if (options.force) await rm(p.dir, { recursive: true, force: true });
    await mkdir(path.join(p.dir, String(version)), { recursive: true });
    await writeFile(path.join(p.dir, 'config.pbtxt'), renderConfigPbtxt(p.config));
    await copyFile(p.file, path.join(p.dir, String(version), 'model.onnx'));
  }
  return { repository: outDir, manifest, models: planned.map(({ role, config, dir }) => ({ role, config, dir })) };
}

/** Parsed options of `v4s export-triton`. */
export interface ExportTritonCommandOptions {
  readonly prefix?: string;
  readonly maxBatchSize?: number;
  readonly instanceKind?: 'gpu' | 'cpu';
  readonly instances?: number;
  readonly contextCache?: boolean;
  readonly force?: boolean;
}

/** Run `v4s export-triton`; prints what it wrote and how to serve it. Resolves with the exit code. */
export async function runExportTritonCommand(pkg: string, out: string, o: ExportTritonCommandOptions, io: CliIO = processIO): Promise<number> {
  const outDir = resolveOutputPath(out, '<out-dir>', 'dir');
  const res = await exportTriton(path.resolve(pkg), outDir, {
    ...(o.prefix !== undefined ? { prefix: o.prefix } : {}),
    ...(o.maxBatchSize !== undefined ? { maxBatchSize: o.maxBatchSize } : {}),
    ...(o.instanceKind !== undefined ? { instanceKind: o.instanceKind } : {}),
    ...(o.instances !== undefined ? { instances: o.instances } : {}),
    ...(o.contextCache === false ? { contextCache: false } : {}),
    ...(o.force ? { force: true } : {}),
  });
  io.out(`v4s export-triton: model "${res.manifest.name}" → Triton model repository ${displayPath(outDir)}`);
  for (const m of res.models) {
    io.out(`  ${m.config.name.padEnd(36)} ${m.role.padEnd(12)} max_batch_size ${m.config.maxBatchSize}${m.config.dynamicBatching ? ', dynamic batching' : ''}`);
  }
  io.out('Serve it (docs/scaling.md):');
  io.out(`  docker run --gpus all --rm -p8000:8000 -v ${outDir}:/models nvcr.io/nvidia/tritonserver:<ver>-py3 tritonserver --model-repository=/models`);
  io.out(`then connectRemoteWorldModel({ url: 'http://localhost:8000', manifest: '${pkg}'${o.prefix !== undefined ? `, prefix: '${o.prefix}'` : ''} }).`);
  return EXIT.ok;
}

/** Register `v4s export-triton`. */
export function register(program: Command, io: CliIO = processIO): void {
  program
    .command('export-triton')
    .description('write a Triton Inference Server model repository (config.pbtxt + model.onnx per network) for a model package')
    .argument('<model-package>', 'model package folder (manifest.json + ONNX files)')
    .argument('<out-dir>', 'model repository folder to write (created if missing)')
    .option('--prefix <p>', 'model name prefix (default: "<manifest name>-")', (v: string) => {
      if (!/^[A-Za-z0-9_.-]*$/.test(v)) throw new InvalidArgumentError('use letters, digits, "_", "." and "-" only.');
      return v;
    })
    .option('--max-batch-size <n>', 'max_batch_size of the batchable networks (default 1024)', intArg(1, 1 << 20))
    .addOption(new Option('--instance-kind <kind>', 'instance_group kind').choices(['gpu', 'cpu']).default('gpu'))
    .option('--instances <n>', 'instances per model (default 1)', intArg(1, 64))
    .option('--no-context-cache', 'leave out the cached-context split (context + denoiser_step)')
    .option('--force', 'replace model folders that already exist')
    .action(async (pkg: string, out: string, opts: ExportTritonCommandOptions) => {
      process.exitCode = await runExportTritonCommand(pkg, out, opts, io);
    });
}
