/**
 * World models: the contract, the ONNX model-package runtime (local, or remote over the Open Inference
 * Protocol), batching of many agents, samplers and guidance, the simulator oracle and the "repeat the last
 * frame" ablation.
 */

// The contract
export * from './world-model.js';

// ONNX model packages
export {
  loadWorldModel,
  OnnxWorldModel,
  PackageWorldModel,
  checkModelTensors,
  cudaProviderInstalled,
  type LoadWorldModelOptions,
  type LatentRollout,
  type ModelTensorListing,
  type PackageWorldModelOptions,
  type WorldModelRuntimeStats,
} from './onnx-world-model.js';
// The same package run in a worker thread: planning never blocks the caller's event loop
export { loadWorkerWorldModel, WorkerWorldModel, type WorkerWorldModelOptions } from './worker-world-model.js';
export { MODEL_ROLES, type ModelBackend, type ModelRole, type BackendTensor, type BackendFeeds, type BackendOutput, type BackendOutputs } from './backend.js';

// Remote models (Open Inference Protocol v2: Triton, KServe, MLServer) and many agents sharing one model
export {
  RemoteWorldModel,
  connectRemoteWorldModel,
  serverModelNames,
  sanitizeModelName,
  type RemoteWorldModelOptions,
} from './remote-world-model.js';
export { OipClient, type OipClientOptions, type OipClientStats } from './oip/client.js';
export { encodeInferRequest, decodeInferResponse, type EncodedInferRequest, type DecodedInferResponse } from './oip/codec.js';
export type { OipDatatype, OipNumericDatatype, OipTensor, OipModelMetadata, OipServerMetadata, OipMetadataTensor } from './oip/types.js';
export { BatchingWorldModel, type BatchingWorldModelOptions, type BatchingStats } from './batching-world-model.js';
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
