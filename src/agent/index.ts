/**
 * The agent core: context memory, frames in, the RxJS agent loop, the episode runner, metrics and results.
 * Usage: `import { ContextBuffer, runEpisode, runEvaluation, formatTable } from './agent/index.js'`.
 */
// Context memory
export {
  CONTEXT_POLICY_NAMES,
  ContextBuffer,
  createContextPolicy,
  noveltyPolicy,
  recentExponentialPolicy,
  uniformPolicy,
} from './context-buffer.js';
export type { ContextBufferOptions, ContextEntry, ContextPolicy, ContextPolicyName, PolicyView } from './context-buffer.js';
// Frames in
export { assertFrame, centreCropWindow, frameToPng, hstackFrames, resizeFrame, warnOnHfovMismatch } from './frames.js';
export type { ResizeFilter, ResizeMode } from './frames.js';
// The agent loop
export { agentEpisode$, environmentFailure, exhaustMapLatest, runEpisode } from './agent.js';
export type { AgentEvent, AgentOptions, DecisionRecord, EndReason, EpisodeTrace, RunEpisodeOptions } from './agent.js';
// Evaluation
export { episodeKey, runEpisodeRow, runEvaluation, seedRange } from './episode-runner.js';
export type { EpisodeOutcome, EpisodeRunOptions, EvaluationEpisode, EvaluationOptions, EvaluationResult } from './episode-runner.js';
export {
  Z_95,
  aggregate,
  episodeMetrics,
  formatSummaryTable,
  formatTable,
  groupRows,
  percentile,
  renderTable,
  softSpl,
  spl,
  wilsonInterval,
} from './metrics.js';
export type { EpisodeMetrics, EvaluationSummary } from './metrics.js';
export { EPISODE_ROW_SCHEMA, ResultsWriter, appendResult, completedKeys, latestRows, readResults, repairResults } from './results.js';
export type { EpisodeRow, EpisodeStatus } from './results.js';
// Output paths (checked before anything is written)
export { MAX_PATH_LENGTH, resolveOutputPath } from './paths.js';
export type { OutputPathOptions } from './paths.js';
// Robot safety (zero velocity the moment an episode on a robot fails)
export { ROBOT_PLAN_TIMEOUT_MS, runRobotEpisode, safetyStop } from './robot-safety.js';
export type { EmergencyStoppable, RobotEpisodeOptions, SafetyStopEvent } from './robot-safety.js';
