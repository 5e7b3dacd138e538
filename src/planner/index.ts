/**
 * The planner: candidate generators, scorers on imagined views, the world-model MPC planner and the baselines.
 * Usage: `import { WorldModelPlanner, HeuristicPlanner, enumerateCandidates } from './planner/index.js'`.
 */
// Contract
export { PLANNER_SPEC_VERSION } from './planner.js';
export type { CandidateReport, Decision, Plan, Planner, PlanningInput } from './planner.js';
// Candidate generators and pose geometry
export {
  CrossEntropyMethod,
  actionMotion,
  advancePose,
  createRng,
  deadReckon,
  enumerateCandidates,
  planarPose,
  plannableActions,
  sampleCandidates,
} from './candidates.js';
export type {
  ActionMotion,
  ActionProbabilities,
  ActionVocabulary,
  BatchScorer,
  CemEvaluation,
  CemOptions,
  CemResult,
  EnumerateOptions,
  PlanarPose,
  Rng,
} from './candidates.js';
// Image metrics (shared with the model evaluation)
export { colorHistogram, framePlane, histogramDistance, meanAbsDiff, mse, preparePlane, psnr, ssim, ssimPlanes, ssimPrepared } from './image-metrics.js';
export type { PreparedPlane, SsimOptions } from './image-metrics.js';
// Scorers
export {
  bearingTo,
  collisionRiskScorer,
  colorGroundingDetector,
  composeScorers,
  discountWeights,
  goalAtResolution,
  groundingStats,
  imageGoalScorer,
  imageGoalSimilarity,
  imaginedStall,
  maskToGroundingGrid,
  matchColorMask,
  noveltyScorer,
  objectFrameScore,
  objectGoalScorer,
  pointGoalScorer,
  reckonAroundObstacles,
  visitationScorer,
  yieldToEventLoop,
} from './scorers.js';
export type {
  CandidateScore,
  CollisionRiskOptions,
  ColorMatchOptions,
  GroundingDetector,
  GroundingStats,
  ImageGoalScorerOptions,
  ImageSimilarityMetric,
  NoveltyScorerOptions,
  ObjectGoalScorerOptions,
  PointGoalScorerOptions,
  Rgb,
  Scorer,
  ScoringContext,
  VisitationScorerOptions,
  WeightedScorer,
} from './scorers.js';
// Planners
export {
  DEFAULT_GOAL_FLOORS,
  DEFAULT_STOP_THRESHOLDS,
  WorldModelPlanner,
  currentGroundingOf,
  defaultExploreScorer,
  defaultGoalScorer,
} from './world-model-planner.js';
export type { CandidateSource, StopThresholds, WorldModelPlannerOptions } from './world-model-planner.js';
export { BUILTIN_CATEGORY_COLORS, BUILTIN_CATEGORY_SIZES, HeuristicPlanner, findBlobs, floorDepth, focalPixels, largestBlob } from './heuristic-planner.js';
export type { CategorySize, ColorBlob, HeuristicPlannerOptions } from './heuristic-planner.js';
export { RandomPlanner } from './random-planner.js';
export type { RandomPlannerOptions } from './random-planner.js';
