/**
 * World models: the contract, the ONNX model-package runtime, samplers and guidance, the simulator oracle and
 * the "repeat the last frame" ablation.
 */

// The contract
export * from './world-model.js';

// ONNX model packages
export {
  loadWorldModel,
  OnnxWorldModel,
  cudaProviderInstalled,
  type LoadWorldModelOptions,
  type LatentRollout,
  type WorldModelRuntimeStats,
} from './onnx-world-model.js';
export {
  loadManifest,
  parseManifest,
  manifestToInfo,
  checkStepSizes,
  MANIFEST_SCHEMA,
  MODEL_FORMAT,
  DENOISER_INPUTS,
  DENOISER_OUTPUTS,
  type ModelManifest,
  type ManifestAction,
  type AuxOutputSpec,
  type Provenance,
  type TensorSpec,
  type TensorGroup,
  type TensorDType,
} from './manifest.js';

// Sampling and guidance
export {
  createSampler,
  ddimTimesteps,
  ddpmAlphasCumprod,
  flowSigmas,
  shiftSigma,
  type NoiseSchedule,
  type SamplerProgram,
} from './samplers.js';
export {
  planGuidance,
  jointGuidance,
  twoScaleGuidance,
  combineGuidance,
  type GuidanceBranch,
  type GuidancePlan,
} from './guidance.js';
export { createRng, type Rng } from './rng.js';

// Oracle and ablation
export {
  SimulatorWorldModel,
  resizeFrameArea,
  maskToGrounding,
  type SimulatorWorldModelOptions,
} from './simulator-world-model.js';
export { RepeatLastWorldModel } from './repeat-last-world-model.js';
