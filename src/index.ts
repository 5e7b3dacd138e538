/**
 * v4s-nav: embodied-agent navigation with a context-guided video generator as world model (Video4Spatial
 * design). This entry only re-exports, grouped by the stage of the data flow they belong to:
 *
 *   simulator / robot ──ws──▶ sim-adapters ──▶ agent (ContextBuffer, loop) ──▶ planner ──▶ worldmodel.imagine
 *
 * Test doubles (a scripted environment, recorded frames) are in the `v4s-nav/testing` subpath.
 *
 * Usage:
 * ```ts
 * import { SimulatorServer, BuiltinSimulator, connectSimulator, loadWorldModel, WorldModelPlanner, runEpisode } from 'v4s-nav';
 * const server = await SimulatorServer.start(() => new BuiltinSimulator(), { port: 0 });
 * const env = await connectSimulator(server.url);
 * const planner = new WorldModelPlanner(await loadWorldModel('models/v4s-builtin-small'));
 * const trace = await runEpisode(env, planner, { reset: { seed: 200000, task: 'objectnav' } });
 * ```
 */

// Shared types of the data flow: frames, poses, actions, observations, instructions.
export * from './types.js';

// Errors: V4sError and its stable codes (listed in docs/errors.md).
export { ERROR_CODES, V4sError, isV4sError } from './errors.js';
export type { V4sErrorCode } from './errors.js';

// Agent: context memory, frames in, the RxJS agent loop, episode runner, metrics and JSONL results.
export * from './agent/index.js';

// World models: the contract, ONNX model packages, samplers and guidance, the oracle and the ablation.
export * from './worldmodel/index.js';

// Planner: candidate generators, scorers on imagined views, the world-model planner and the baselines.
export * from './planner/index.js';
// Both `worldmodel` and `planner` export a seeded generator `createRng`/`Rng`: the world model's is the public one.
export { createRng } from './worldmodel/index.js';
export type { Rng } from './worldmodel/index.js';

// Sim-adapters: the Environment contract, the wire protocol v4s.sim.v1, the WebSocket client/server/listener.
export { ENVIRONMENT_SPEC_VERSION } from './sim-adapters/environment.js';
export type {
  ActionSpec,
  Capabilities,
  Environment,
  EpisodeGoal,
  ImageEncoding,
  OracleRequest,
  OracleRollout,
  ResetOptions,
  ResetResult,
  Simulator,
  StepResult,
  TaskName,
} from './sim-adapters/environment.js';
export * from './sim-adapters/protocol/types.js';
export {
  decodeAgentMessage,
  decodeBinaryMessage,
  decodeCapabilities,
  decodeSimulatorMessage,
  encodeBinaryMessage,
  encodeObservationPacket,
  encodeOraclePacket,
  encodeTextMessage,
  errorMessage,
  peekBinaryId,
} from './sim-adapters/protocol/codec.js';
export { decodeFrame, encodeFrame, sniffEncoding } from './sim-adapters/protocol/image.js';
export type { ImageEncodeOptions, ImageShape } from './sim-adapters/protocol/image.js';
export { WsEnvironment, connectSimulator } from './sim-adapters/ws-client.js';
export type { AgentSessionOptions, ConnectOptions, FromSocketOptions, WsEnvironmentStats } from './sim-adapters/ws-client.js';
export { DEFAULT_SIMULATOR_PORT, SimulatorConnection, SimulatorServer, dialAgent } from './sim-adapters/ws-server.js';
export type { CloseInfo, DialAgentOptions, SimulatorServerOptions, SimulatorSessionOptions } from './sim-adapters/ws-server.js';
export { DEFAULT_AGENT_PORT, SimulatorListener, listenForSimulator } from './sim-adapters/ws-listener.js';
export type { ListenOptions } from './sim-adapters/ws-listener.js';
export { RETRYABLE_CODES, backoffDelay, isRetryable, retryWithBackoff } from './sim-adapters/reconnect.js';
export type { ReconnectOptions, RetryInfo } from './sim-adapters/reconnect.js';

// The built-in simulator: procedural scenes, ray-cast rendering, tasks, seed splits, the dataset writer.
// (Its `mulberry32` is the scene generator's; the planner's seeded generator is `createRng`.)
export * from './sim-adapters/builtin/index.js';

// Reports: the per-episode HTML report and its image helpers.
export * from './report/index.js';
