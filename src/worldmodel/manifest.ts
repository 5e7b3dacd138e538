/**
 * The model-package manifest `v4s.model.v1` (docs/model-package.md): types, JSON schema (ajv), semantic
 * checks, and the `WorldModelInfo` derived from it. Errors are V4sError E_MODEL_MANIFEST naming the JSON path,
 * E_MODEL_FILE naming the file.
 * Usage: `const manifest = await loadManifest('models/v4s-builtin-small')`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { V4sError } from '../errors.js';
import type { Capabilities } from '../sim-adapters/environment.js';
import type { NoiseSchedule } from './samplers.js';
import { PREDICTIONS_FOR_SCHEDULE, SAMPLER_FOR_SCHEDULE } from './samplers.js';
import type { GroundingStopCalibration, GuidanceConfig, PredictionType, SamplerConfig, WorldModelActionSpec, WorldModelInfo } from './world-model.js';

export const MODEL_FORMAT = 'v4s.model.v1' as const;

/** Element types a manifest may declare. The runtime feeds float32 and int64. */
export type TensorDType = 'float32' | 'float16' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';

/** One tensor: shape with numbers (fixed) and strings (symbolic, e.g. "B"), and element type. */
export interface TensorSpec {
  readonly shape: readonly (number | string)[];
  readonly dtype: TensorDType;
}

/** Inputs and outputs of one ONNX file, by tensor name. */
export interface TensorGroup {
  readonly inputs: Readonly<Record<string, TensorSpec>>;
  readonly outputs: Readonly<Record<string, TensorSpec>>;
}

/** An action token of the model's vocabulary, with the step size it was trained on. */
export interface ManifestAction extends WorldModelActionSpec {
  /** Token id fed in the `actions` input. */
  readonly id: number;
}

/**
 * An auxiliary output: `grounding` (a mask per target frame, `Rollout.grounding`) or `grounding_current`
 * (a mask of the newest context frame, the current view, `Rollout.currentGrounding`).
 */
export interface AuxOutputSpec {
  readonly name: 'grounding' | 'grounding_current';
  readonly kind: 'mask';
  readonly width: number;
  readonly height: number;
  /** `none` (default): the model outputs probabilities; `sigmoid`: it outputs logits. */
  readonly activation?: 'none' | 'sigmoid';
  /** Which frame the mask is about; implied by the name (`targets` / `newest-context`), checked when given. */
  readonly frame?: 'targets' | 'newest-context';
}

/** Training provenance; free-form fields beyond the required ones are kept. */
export interface Provenance {
  readonly dataSeeds: string;
  readonly trainingSteps: number;
  readonly commit: string;
  readonly trainedOn?: string;
  readonly trainingWallClock?: string;
  readonly [key: string]: unknown;
}

/** The parsed, validated manifest.json of a model package. */
export interface ModelManifest {
  readonly format: typeof MODEL_FORMAT;
  readonly name: string;
  readonly description?: string;
  readonly resolution: { readonly width: number; readonly height: number; readonly channels: 3 };
  /** Camera the training frames came from; the agent warns when the simulator's hfov differs. */
  readonly camera?: { readonly hfov: number };
  readonly pixelRange: readonly [number, number];
  readonly latent: { readonly channels: number; readonly height: number; readonly width: number; readonly scale: number };
  readonly prediction: PredictionType;
  readonly schedule: NoiseSchedule;
  readonly instruction: {
    readonly actions: Readonly<Record<string, ManifestAction>>;
    readonly goalCategories: readonly string[];
    readonly text: boolean;
  };
  readonly context: { readonly maxFrames: number; readonly minFrames: number };
  readonly horizon: number;
  readonly positions: { readonly relative: true; readonly scale: number; readonly range: readonly [number, number] };
  readonly auxOutputs: readonly AuxOutputSpec[];
  readonly defaults: { readonly sampler: SamplerConfig; readonly guidance: GuidanceConfig };
  /**
   * `context` + `denoiserStep` together are the optional cached-context split of block-causal models:
   * context.onnx runs once per decision, denoiser_step.onnx at each step (see docs/model-package.md).
   */
  readonly files: {
    readonly denoiser: string;
    readonly encoder?: string;
    readonly decoder?: string;
    readonly context?: string;
    readonly denoiserStep?: string;
  };
  readonly tensors: {
    readonly denoiser: TensorGroup;
    readonly encoder?: TensorGroup;
    readonly decoder?: TensorGroup;
    readonly context?: TensorGroup;
    readonly denoiserStep?: TensorGroup;
  };
  readonly provenance: Provenance;
  /**
   * Calibration of the model's outputs for the planner, measured after training (`scripts/calibrate-stop.ts`):
   * `stop` holds the ObjectNav stop thresholds on `grounding_current` maps; `method` says how they were found.
   */
  readonly calibration?: { readonly stop?: GroundingStopCalibration; readonly method?: string };
}

const dim = { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'string', minLength: 1 }] };
const tensorSpec = {
  type: 'object',
  required: ['shape', 'dtype'],
  additionalProperties: false,
  properties: {
    shape: { type: 'array', items: dim },
    dtype: { enum: ['float32', 'float16', 'float64', 'int64', 'int32', 'uint8', 'bool'] },
  },
};
const tensorGroup = {
  type: 'object',
  required: ['inputs', 'outputs'],
  additionalProperties: false,
  properties: {
    inputs: { type: 'object', minProperties: 1, additionalProperties: tensorSpec },
    outputs: { type: 'object', minProperties: 1, additionalProperties: tensorSpec },
  },
};
const positiveInt = { type: 'integer', minimum: 1 };
const samplerSchema = {
  type: 'object',
  required: ['kind', 'steps'],
  discriminator: { propertyName: 'kind' },
  oneOf: [
    {
      properties: { kind: { const: 'ddim' }, steps: { type: 'integer', minimum: 1, maximum: 1000 }, eta: { type: 'number', minimum: 0 } },
      additionalProperties: false,
    },
    {
      properties: { kind: { const: 'euler' }, steps: { type: 'integer', minimum: 1, maximum: 1000 }, shift: { type: 'number', exclusiveMinimum: 0 } },
      additionalProperties: false,
    },
  ],
};
const guidanceSchema = {
  type: 'object',
  required: ['kind'],
  discriminator: { propertyName: 'kind' },
  oneOf: [
    { properties: { kind: { const: 'joint' }, scale: { type: 'number' } }, required: ['scale'], additionalProperties: false },
    {
      properties: { kind: { const: 'two-scale' }, context: { type: 'number' }, instruction: { type: 'number' } },
      required: ['context', 'instruction'],
      additionalProperties: false,
    },
    { properties: { kind: { const: 'none' } }, additionalProperties: false },
  ],
};
const fileName = { type: 'string', minLength: 1 };

/** The JSON schema of manifest.json (draft-07, ajv with discriminators). */
export const MANIFEST_SCHEMA = {
  $id: 'https://v4s-nav/schemas/model-manifest-v1.json',
  type: 'object',
  additionalProperties: false,
  required: [
    'format', 'name', 'resolution', 'pixelRange', 'latent', 'prediction', 'schedule', 'instruction', 'context',
    'horizon', 'positions', 'auxOutputs', 'defaults', 'files', 'tensors', 'provenance',
  ],
  properties: {
    format: { const: MODEL_FORMAT },
    name: { type: 'string', minLength: 1 },
    description: { type: 'string' },
    resolution: {
      type: 'object',
      required: ['width', 'height', 'channels'],
      additionalProperties: false,
      properties: { width: positiveInt, height: positiveInt, channels: { const: 3 } },
    },
    camera: {
      type: 'object',
      required: ['hfov'],
      additionalProperties: false,
      properties: { hfov: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 360 } },
    },
    pixelRange: { type: 'array', minItems: 2, maxItems: 2, items: { type: 'number' } },
    latent: {
      type: 'object',
      required: ['channels', 'height', 'width', 'scale'],
      additionalProperties: false,
      properties: { channels: positiveInt, height: positiveInt, width: positiveInt, scale: { type: 'number', exclusiveMinimum: 0 } },
    },
    prediction: { enum: ['eps', 'v', 'flow', 'x0'] },
    schedule: {
      type: 'object',
      required: ['kind'],
      discriminator: { propertyName: 'kind' },
      oneOf: [
        { properties: { kind: { const: 'flow' } }, additionalProperties: false },
        {
          properties: {
            kind: { const: 'ddpm' },
            beta: { enum: ['linear', 'cosine'] },
            betaStart: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
            betaEnd: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
            trainSteps: { type: 'integer', minimum: 1, maximum: 100000 },
          },
          required: ['beta', 'trainSteps'],
          additionalProperties: false,
        },
      ],
    },
    instruction: {
      type: 'object',
      required: ['actions', 'goalCategories', 'text'],
      additionalProperties: false,
      properties: {
        actions: {
          type: 'object',
          minProperties: 1,
          additionalProperties: {
            type: 'object',
            required: ['id', 'kind', 'amount'],
            additionalProperties: false,
            properties: {
              id: { type: 'integer', minimum: 0 },
              kind: { enum: ['move', 'turn', 'look', 'stop'] },
              amount: { type: 'number', minimum: 0 },
            },
          },
        },
        goalCategories: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
        text: { type: 'boolean' },
      },
    },
    context: {
      type: 'object',
      required: ['maxFrames', 'minFrames'],
      additionalProperties: false,
      properties: { maxFrames: positiveInt, minFrames: positiveInt },
    },
    horizon: positiveInt,
    positions: {
      type: 'object',
      required: ['relative', 'scale', 'range'],
      additionalProperties: false,
      properties: {
        relative: { const: true },
        scale: { type: 'number', exclusiveMinimum: 0 },
        range: { type: 'array', minItems: 2, maxItems: 2, items: { type: 'integer' } },
      },
    },
    auxOutputs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'kind', 'width', 'height'],
        additionalProperties: false,
        properties: {
          name: { enum: ['grounding', 'grounding_current'] },
          kind: { const: 'mask' },
          width: positiveInt,
          height: positiveInt,
          activation: { enum: ['none', 'sigmoid'] },
          frame: { enum: ['targets', 'newest-context'] },
        },
      },
    },
    defaults: {
      type: 'object',
      required: ['sampler', 'guidance'],
      additionalProperties: false,
      properties: { sampler: samplerSchema, guidance: guidanceSchema },
    },
    files: {
      type: 'object',
      required: ['denoiser'],
      additionalProperties: false,
      properties: { denoiser: fileName, encoder: fileName, decoder: fileName, context: fileName, denoiserStep: fileName },
    },
    tensors: {
      type: 'object',
      required: ['denoiser'],
      additionalProperties: false,
      properties: { denoiser: tensorGroup, encoder: tensorGroup, decoder: tensorGroup, context: tensorGroup, denoiserStep: tensorGroup },
    },
    calibration: {
      type: 'object',
      additionalProperties: false,
      properties: {
        method: { type: 'string' },
        stop: {
          type: 'object',
          additionalProperties: false,
          properties: {
            objectArea: { type: 'number', minimum: 0, maximum: 1 },
            objectConfidence: { type: 'number', minimum: 0, maximum: 1 },
            objectBottom: { type: 'number', minimum: 0, maximum: 1 },
            objectNearArea: { type: 'number', minimum: 0, maximum: 1 },
            objectNearBottom: { type: 'number', minimum: 0, maximum: 1 },
            consecutive: { type: 'integer', minimum: 1 },
          },
        },
      },
    },
    provenance: {
      type: 'object',
      required: ['dataSeeds', 'trainingSteps', 'commit'],
      properties: {
        dataSeeds: { type: 'string' },
        trainingSteps: { type: 'integer', minimum: 0 },
        commit: { type: 'string' },
        trainedOn: { type: 'string' },
        trainingWallClock: { type: 'string' },
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: true, discriminator: true, strict: true, strictRequired: false });
const validateSchema = ajv.compile<ModelManifest>(MANIFEST_SCHEMA);

function describeAjvError(e: ErrorObject): string {
  const where = e.instancePath === '' ? '(root)' : e.instancePath;
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'additionalProperties') return `${where}: unknown field "${String(p['additionalProperty'])}"`;
  if (e.keyword === 'required') return `${where}: missing field "${String(p['missingProperty'])}"`;
  if (e.keyword === 'enum') return `${where} ${e.message ?? 'is invalid'}: ${JSON.stringify(p['allowedValues'])}`;
  if (e.keyword === 'const') return `${where} must be ${JSON.stringify(p['allowedValue'])}`;
  return `${where} ${e.message ?? 'is invalid'}`;
}

/** The denoiser's fixed tensor interface: name → [dtype, rank, required]. */
export const DENOISER_INPUTS: Readonly<Record<string, readonly [TensorDType, number, boolean]>> = {
  x_t: ['float32', 5, true],
  t: ['float32', 1, true],
  context: ['float32', 5, true],
  context_positions: ['float32', 2, true],
  target_positions: ['float32', 2, true],
  actions: ['int64', 2, true],
  goal: ['int64', 1, false],
  context_mask: ['float32', 1, true],
  instruction_mask: ['float32', 1, true],
};
export const DENOISER_OUTPUTS: Readonly<Record<string, readonly [TensorDType, number, boolean]>> = {
  pred: ['float32', 5, true],
  grounding: ['float32', 4, false],
  grounding_current: ['float32', 3, false],
};
/** Denoiser inputs that the cached-context split moves into context.onnx. */
export const CONTEXT_INPUTS: readonly string[] = ['context', 'context_positions', 'context_mask'];
/** The batch symbol cached context tensors must use, so the runtime can tile them over the batch. */
export const BATCH_SYMBOL = 'B';

function fail(source: string, where: string, message: string): never {
  throw new V4sError('E_MODEL_MANIFEST', `${source}: ${where}: ${message}`, { source, path: where });
}

function shapeStr(shape: readonly (number | string)[]): string {
  return `[${shape.join(',')}]`;
}

/** Check a fixed dim against an expected number; symbolic dims pass. */
function checkDim(source: string, where: string, shape: readonly (number | string)[], i: number, expected: number, what: string): void {
  const d = shape[i];
  if (typeof d === 'number' && d !== expected) fail(source, where, `dimension ${i} (${what}) is ${d}, expected ${expected} (shape ${shapeStr(shape)})`);
}

function checkGroupNames(
  source: string,
  where: string,
  group: Readonly<Record<string, TensorSpec>>,
  spec: Readonly<Record<string, readonly [TensorDType, number, boolean]>>,
  mustHave: readonly string[],
): void {
  for (const [name, [dtype, rank, required]] of Object.entries(spec)) {
    const t = group[name];
    if (t === undefined) {
      if (required || mustHave.includes(name)) fail(source, `${where}/${name}`, `missing (required by ${MODEL_FORMAT})`);
      continue;
    }
    if (t.dtype !== dtype) fail(source, `${where}/${name}/dtype`, `is ${t.dtype}, ${MODEL_FORMAT} requires ${dtype}`);
    if (t.shape.length !== rank) fail(source, `${where}/${name}/shape`, `has rank ${t.shape.length}, ${MODEL_FORMAT} requires rank ${rank}`);
  }
  for (const name of Object.keys(group)) {
    if (spec[name] === undefined) fail(source, `${where}/${name}`, `is not part of the ${MODEL_FORMAT} interface (allowed: ${Object.keys(spec).join(', ')})`);
  }
}

/** The cached-context split: context.onnx + denoiser_step.onnx, consistent with the denoiser's interface. */
function checkContextSplit(m: ModelManifest, source: string): void {
  const hasCtx = m.files.context !== undefined;
  const hasStep = m.files.denoiserStep !== undefined;
  if (hasCtx !== hasStep) fail(source, '/files', 'context and denoiserStep come together (the cached-context split needs both)');
  for (const role of ['context', 'denoiserStep'] as const) {
    if ((m.files[role] !== undefined) !== (m.tensors[role] !== undefined)) {
      fail(source, `/tensors/${role}`, m.files[role] !== undefined ? `missing (files.${role} is set)` : `declared but files.${role} is not set`);
    }
  }
  const ctx = m.tensors.context;
  const step = m.tensors.denoiserStep;
  if (ctx === undefined || step === undefined) return;
  const den = m.tensors.denoiser;
  if (ctx.inputs['context'] === undefined) fail(source, '/tensors/context/inputs/context', 'missing (context.onnx takes the context latents)');
  for (const [name, t] of Object.entries(ctx.inputs)) {
    const d = den.inputs[name];
    if (!CONTEXT_INPUTS.includes(name) || d === undefined) fail(source, `/tensors/context/inputs/${name}`, `context.onnx inputs must be among the denoiser's ${CONTEXT_INPUTS.join(', ')}`);
    if (t.dtype !== d.dtype || t.shape.length !== d.shape.length) fail(source, `/tensors/context/inputs/${name}`, `must match the denoiser's ${name} (${d.dtype} rank ${d.shape.length})`);
  }
  for (const [name, t] of Object.entries(ctx.outputs)) {
    const where = `/tensors/context/outputs/${name}`;
    if (t.dtype !== 'float32') fail(source, `${where}/dtype`, `is ${t.dtype}, cached context tensors are float32`);
    if (t.shape.filter((d) => d === BATCH_SYMBOL).length !== 1) fail(source, `${where}/shape`, `needs exactly one batch dimension named "${BATCH_SYMBOL}" (got ${shapeStr(t.shape)})`);
    const s = step.inputs[name];
    if (s === undefined) fail(source, `/tensors/denoiserStep/inputs/${name}`, 'missing (every context.onnx output is a denoiser_step.onnx input)');
    if (s.dtype !== t.dtype || shapeStr(s.shape) !== shapeStr(t.shape)) fail(source, `/tensors/denoiserStep/inputs/${name}`, `must equal context.onnx output ${name} ${shapeStr(t.shape)} ${t.dtype}`);
  }
  for (const [name, t] of Object.entries(step.inputs)) {
    if (ctx.outputs[name] !== undefined) continue;
    const d = den.inputs[name];
    if (d === undefined || CONTEXT_INPUTS.includes(name)) {
      fail(source, `/tensors/denoiserStep/inputs/${name}`, `is neither a context.onnx output nor a denoiser input outside ${CONTEXT_INPUTS.join(', ')}`);
    }
    if (t.dtype !== d.dtype || shapeStr(t.shape) !== shapeStr(d.shape)) fail(source, `/tensors/denoiserStep/inputs/${name}`, `must equal the denoiser's ${name} ${shapeStr(d.shape)} ${d.dtype}`);
  }
  for (const name of ['x_t', 't']) {
    if (step.inputs[name] === undefined) fail(source, `/tensors/denoiserStep/inputs/${name}`, 'missing');
  }
  for (const [name, t] of Object.entries(step.outputs)) {
    const d = den.outputs[name];
    if (d === undefined || name === 'grounding_current') fail(source, `/tensors/denoiserStep/outputs/${name}`, 'denoiser_step.onnx outputs are pred and (optionally) grounding');
    if (t.dtype !== d.dtype || shapeStr(t.shape) !== shapeStr(d.shape)) fail(source, `/tensors/denoiserStep/outputs/${name}`, `must equal the denoiser's ${name} ${shapeStr(d.shape)} ${d.dtype}`);
  }
  if (step.outputs['pred'] === undefined) fail(source, '/tensors/denoiserStep/outputs/pred', 'missing');
  if (den.outputs['grounding'] !== undefined && step.outputs['grounding'] === undefined) fail(source, '/tensors/denoiserStep/outputs/grounding', 'missing (the denoiser has it)');
}

/** Semantic checks the schema cannot express. */
function checkSemantics(m: ModelManifest, source: string): void {
  const allowed = PREDICTIONS_FOR_SCHEDULE[m.schedule.kind];
  if (!allowed.includes(m.prediction)) {
    fail(source, '/prediction', `"${m.prediction}" is not supported with a ${m.schedule.kind} schedule (allowed: ${allowed.join(', ')})`);
  }
  if (m.defaults.sampler.kind !== SAMPLER_FOR_SCHEDULE[m.schedule.kind]) {
    fail(source, '/defaults/sampler/kind', `"${m.defaults.sampler.kind}" does not sample a ${m.schedule.kind} schedule (use "${SAMPLER_FOR_SCHEDULE[m.schedule.kind]}")`);
  }
  if (m.schedule.kind === 'ddpm' && m.defaults.sampler.steps > m.schedule.trainSteps) {
    fail(source, '/defaults/sampler/steps', `${m.defaults.sampler.steps} exceeds schedule.trainSteps ${m.schedule.trainSteps}`);
  }
  const [lo, hi] = m.pixelRange;
  if (!(lo < hi)) fail(source, '/pixelRange', `must be [low, high] with low < high, got [${lo}, ${hi}]`);
  if (m.context.minFrames > m.context.maxFrames) fail(source, '/context', `minFrames ${m.context.minFrames} > maxFrames ${m.context.maxFrames}`);
  const [pLo, pHi] = m.positions.range;
  if (pLo > 0) fail(source, '/positions/range', `lower bound ${pLo} must be ≤ 0 (the newest context frame is at 0)`);
  if (pHi < m.horizon) fail(source, '/positions/range', `upper bound ${pHi} must be ≥ horizon ${m.horizon} (targets are at 1..H)`);
  const ids = new Map<number, string>();
  for (const [name, a] of Object.entries(m.instruction.actions)) {
    const other = ids.get(a.id);
    if (other !== undefined) fail(source, `/instruction/actions/${name}/id`, `id ${a.id} is also used by "${other}"`);
    ids.set(a.id, name);
  }
  if (m.instruction.text) fail(source, '/instruction/text', 'text instructions are not supported by this runtime (v1 takes action tokens)');
  const fileList = Object.values(m.files).filter((f): f is string => typeof f === 'string');
  if (new Set(fileList).size !== fileList.length) fail(source, '/files', 'two roles name the same file');
  for (const [key, file] of Object.entries(m.files)) {
    if (typeof file !== 'string') continue;
    if (path.isAbsolute(file) || file.split(/[\\/]/).includes('..')) fail(source, `/files/${key}`, `"${file}" must be a path inside the package folder`);
  }
  const hasEnc = m.files.encoder !== undefined;
  const hasDec = m.files.decoder !== undefined;
  if (hasEnc !== hasDec) fail(source, '/files', 'encoder and decoder come together (a latent model needs both)');
  if (hasEnc && m.tensors.encoder === undefined) fail(source, '/tensors/encoder', 'missing (files.encoder is set)');
  if (hasDec && m.tensors.decoder === undefined) fail(source, '/tensors/decoder', 'missing (files.decoder is set)');
  if (!hasEnc && m.tensors.encoder !== undefined) fail(source, '/tensors/encoder', 'declared but files.encoder is not set');
  if (!hasDec && m.tensors.decoder !== undefined) fail(source, '/tensors/decoder', 'declared but files.decoder is not set');
  const { channels: C, height: h, width: w } = m.latent;
  if (!hasEnc && (C !== 3 || h !== m.resolution.height || w !== m.resolution.width)) {
    fail(source, '/latent', `a pixel-space model (no encoder/decoder) needs latent = 3 x ${m.resolution.height} x ${m.resolution.width}, got ${C} x ${h} x ${w}`);
  }
  const aux = m.auxOutputs.find((a) => a.name === 'grounding');
  const auxCur = m.auxOutputs.find((a) => a.name === 'grounding_current');
  m.auxOutputs.forEach((a, i) => {
    if (m.auxOutputs.findIndex((b) => b.name === a.name) !== i) fail(source, `/auxOutputs/${i}/name`, `"${a.name}" is declared twice`);
    const frame = a.name === 'grounding' ? 'targets' : 'newest-context';
    if (a.frame !== undefined && a.frame !== frame) fail(source, `/auxOutputs/${i}/frame`, `"${a.name}" is about ${frame}, not "${a.frame}"`);
  });

  // Denoiser tensors.
  const den = m.tensors.denoiser;
  const goalNeeded = m.instruction.goalCategories.length > 0 ? ['goal'] : [];
  checkGroupNames(source, '/tensors/denoiser/inputs', den.inputs, DENOISER_INPUTS, goalNeeded);
  checkGroupNames(source, '/tensors/denoiser/outputs', den.outputs, DENOISER_OUTPUTS, m.auxOutputs.map((a) => a.name));
  for (const name of ['grounding', 'grounding_current'] as const) {
    if (den.outputs[name] !== undefined && !m.auxOutputs.some((a) => a.name === name)) {
      fail(source, `/tensors/denoiser/outputs/${name}`, `declared but auxOutputs has no "${name}"`);
    }
  }
  if (m.auxOutputs.length > 0 && m.instruction.goalCategories.length === 0) fail(source, '/instruction/goalCategories', 'a grounding output needs goal categories');
  if (m.auxOutputs.length > 0 && den.inputs['goal'] === undefined) fail(source, '/tensors/denoiser/inputs/goal', 'missing (a grounding output needs the goal input)');
  for (const [group, tensors] of [['inputs', den.inputs], ['outputs', den.outputs]] as const) {
    for (const [name, t] of Object.entries(tensors)) {
      if (typeof t.shape[0] === 'number') fail(source, `/tensors/denoiser/${group}/${name}/shape`, `dimension 0 must be the symbolic batch (e.g. "B"), got ${t.shape[0]}`);
    }
  }
  const xt = den.inputs['x_t'];
  const ctx = den.inputs['context'];
  const pred = den.outputs['pred'];
  if (xt !== undefined && ctx !== undefined && pred !== undefined) {
    for (const [where, s] of [['/tensors/denoiser/inputs/x_t/shape', xt.shape], ['/tensors/denoiser/inputs/context/shape', ctx.shape], ['/tensors/denoiser/outputs/pred/shape', pred.shape]] as const) {
      checkDim(source, where, s, 2, C, 'latent channels');
      checkDim(source, where, s, 3, h, 'latent height');
      checkDim(source, where, s, 4, w, 'latent width');
    }
    checkDim(source, '/tensors/denoiser/inputs/x_t/shape', xt.shape, 1, m.horizon, 'horizon');
    checkDim(source, '/tensors/denoiser/outputs/pred/shape', pred.shape, 1, m.horizon, 'horizon');
    const k = ctx.shape[1];
    if (typeof k === 'number' && (k < m.context.minFrames || k > m.context.maxFrames)) {
      fail(source, '/tensors/denoiser/inputs/context/shape', `fixed context length ${k} is outside context.minFrames..maxFrames`);
    }
  }
  const gr = den.outputs['grounding'];
  if (aux && gr !== undefined) {
    checkDim(source, '/tensors/denoiser/outputs/grounding/shape', gr.shape, 1, m.horizon, 'horizon');
    checkDim(source, '/tensors/denoiser/outputs/grounding/shape', gr.shape, 2, aux.height, 'grounding height');
    checkDim(source, '/tensors/denoiser/outputs/grounding/shape', gr.shape, 3, aux.width, 'grounding width');
  }
  const gc = den.outputs['grounding_current'];
  if (auxCur && gc !== undefined) {
    checkDim(source, '/tensors/denoiser/outputs/grounding_current/shape', gc.shape, 1, auxCur.height, 'grounding height');
    checkDim(source, '/tensors/denoiser/outputs/grounding_current/shape', gc.shape, 2, auxCur.width, 'grounding width');
  }
  checkContextSplit(m, source);
  // Encoder / decoder tensors.
  const { width: W, height: H } = m.resolution;
  const codec: [string, TensorGroup | undefined, string, string, readonly number[], readonly number[]][] = [
    ['encoder', m.tensors.encoder, 'frames', 'latents', [3, H, W], [C, h, w]],
    ['decoder', m.tensors.decoder, 'latents', 'frames', [C, h, w], [3, H, W]],
  ];
  for (const [role, group, inName, outName, inDims, outDims] of codec) {
    if (group === undefined) continue;
    const check = (io: 'inputs' | 'outputs', name: string, dims: readonly number[]): void => {
      const names = Object.keys(group[io]);
      const t = group[io][name];
      if (t === undefined || names.length !== 1) fail(source, `/tensors/${role}/${io}`, `must be exactly { "${name}" } (found ${names.join(', ')})`);
      const where = `/tensors/${role}/${io}/${name}`;
      if (t.dtype !== 'float32') fail(source, `${where}/dtype`, `is ${t.dtype}, ${MODEL_FORMAT} requires float32`);
      if (t.shape.length !== 4) fail(source, `${where}/shape`, `has rank ${t.shape.length}, ${MODEL_FORMAT} requires rank 4`);
      if (typeof t.shape[0] === 'number') fail(source, `${where}/shape`, `dimension 0 must be symbolic (e.g. "N"), got ${t.shape[0]}`);
      dims.forEach((d, i) => checkDim(source, `${where}/shape`, t.shape, i + 1, d, 'size'));
    };
    check('inputs', inName, inDims);
    check('outputs', outName, outDims);
  }
}

/**
 * Validate a parsed manifest.json value: schema, then semantics. `source` names the file in errors.
 * Throws V4sError E_MODEL_MANIFEST naming the JSON path of the first problem(s).
 */
export function parseManifest(value: unknown, source = 'manifest.json'): ModelManifest {
  if (!validateSchema(value)) {
    const errors = validateSchema.errors ?? [];
    const lines = errors.slice(0, 5).map(describeAjvError);
    const more = errors.length > 5 ? ` (+${errors.length - 5} more)` : '';
    const first = errors[0];
    throw new V4sError('E_MODEL_MANIFEST', `${source} fails its schema: ${lines.join('; ')}${more}`, {
      source,
      path: first?.instancePath ?? '',
      errors: lines,
    });
  }
  checkSemantics(value, source);
  return value;
}

/** Read and validate `<dir>/manifest.json`. E_MODEL_FILE when missing or unreadable, E_MODEL_MANIFEST when invalid. */
export async function loadManifest(dir: string): Promise<ModelManifest> {
  const file = path.join(dir, 'manifest.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new V4sError('E_MODEL_FILE', `cannot read ${file}: ${(e as Error).message}`, { path: file }, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new V4sError('E_MODEL_MANIFEST', `${file} is not valid JSON: ${(e as Error).message}`, { source: file, path: '' }, { cause: e });
  }
  return parseManifest(json, file);
}

/** What the rest of the SDK needs to know about a model, from its manifest. */
export function manifestToInfo(m: ModelManifest): WorldModelInfo {
  const actions: Record<string, WorldModelActionSpec> = {};
  for (const [name, a] of Object.entries(m.instruction.actions)) actions[name] = { kind: a.kind, amount: a.amount };
  return {
    name: m.name,
    resolution: { width: m.resolution.width, height: m.resolution.height },
    actions,
    maxContext: m.context.maxFrames,
    horizon: m.horizon,
    positionRange: [m.positions.range[0], m.positions.range[1]],
    goalCategories: [...m.instruction.goalCategories],
    grounding: m.auxOutputs.some((a) => a.name === 'grounding'),
    defaultSampler: m.defaults.sampler,
    defaultGuidance: m.defaults.guidance,
    ...(m.camera !== undefined ? { hfov: m.camera.hfov } : {}),
    ...(m.calibration?.stop !== undefined ? { stopCalibration: { ...m.calibration.stop } } : {}),
  };
}

/**
 * Refuse to plan with a model whose trained step sizes differ from the simulator's action amounts.
 * Throws E_MODEL_STEP_SIZE listing every action whose kind or amount differs (relative tolerance `tolerance`),
 * or E_UNKNOWN_ACTION when the model's vocabulary has actions the simulator lacks. `stop` amounts are ignored.
 * Usage: `checkStepSizes(model.info, env.capabilities)`.
 */
export function checkStepSizes(info: Pick<WorldModelInfo, 'name' | 'actions'>, capabilities: Pick<Capabilities, 'actions'>, tolerance = 1e-6): void {
  const differ: string[] = [];
  const missing: string[] = [];
  for (const [name, a] of Object.entries(info.actions)) {
    const s = capabilities.actions[name];
    if (s === undefined) {
      missing.push(name);
      continue;
    }
    if (s.kind !== a.kind) {
      differ.push(`${name}: model ${a.kind}, simulator ${s.kind}`);
      continue;
    }
    if (a.kind === 'stop') continue;
    if (Math.abs(s.amount - a.amount) > tolerance * Math.max(1, Math.abs(a.amount))) {
      differ.push(`${name}: model trained on ${a.amount}${unit(a.kind)}, simulator does ${s.amount}${unit(s.kind)}`);
    }
  }
  if (differ.length > 0) {
    throw new V4sError('E_MODEL_STEP_SIZE', `world model "${info.name}" was trained on other step sizes than the simulator's: ${differ.join('; ')}`, { actions: differ });
  }
  if (missing.length > 0) {
    throw new V4sError('E_UNKNOWN_ACTION', `world model "${info.name}" has actions the simulator does not offer: ${missing.join(', ')}`, { actions: missing });
  }
}

function unit(kind: WorldModelActionSpec['kind']): string {
  return kind === 'move' ? ' m' : kind === 'stop' ? '' : '°';
}
