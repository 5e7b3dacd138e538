/**
 * The built-in simulator: procedural rooms, ray-cast frames with hidden masks, grid geodesics, tasks, seeds,
 * and the dataset writer.
 */
// Simulator
export { BuiltinSimulator, moveAgent, toHabitatPose, wrapAngle } from './simulator.js';
export type { BuiltinSimulatorOptions, BuiltinSimState, MotionResult } from './simulator.js';
// Scenes and rendering
export {
  CAMERA_HEIGHT, CATEGORIES, CATEGORY_STYLES, CELL_SIZE, WALL_HEIGHT, WALL_PATTERNS,
  categoryId, circleHitsObject, circleHitsWall, generateScene, hashSeed, isFreeCircle, mulberry32,
} from './scene.js';
export type { CategoryName, CategoryStyle, RGB, Room, RoomStyle, Scene, SceneObject } from './scene.js';
export { allocateView, renderView, silhouette, wallDistanceAhead } from './render.js';
export type { RenderOptions, RenderedView, ViewPose } from './render.js';
// Geodesics and tasks
export { NAV_SUBDIVISION, buildNavGrid, distanceField, geodesicDistance, navCellAt, navCellCentre } from './geodesic.js';
export type { NavGrid } from './geodesic.js';
export {
  MAX_STEPS, OBJECTNAV_MIN_VISIBLE, START_DISTANCE_RANGE, SUCCESS_DISTANCE, generateEpisode, objectGoalReached, objectViewCells,
} from './tasks.js';
export type { EpisodeSpec } from './tasks.js';
// Seeds
export { DEV_SEEDS, EVAL_SEEDS, HELD_OUT_SEEDS, SPLIT_SEEDS, TRAIN_SEEDS, splitOfSeed, splitSeed } from './seeds.js';
export type { SeedRange, SplitName } from './seeds.js';
// Dataset
export { DATASET_ACTIONS, DATASET_FORMAT, readDatasetIndex, renderTrajectory, writeDataset } from './dataset.js';
export type { DatasetAction, DatasetEpisode, DatasetIndex, DatasetOptions, DatasetProgress, TrajectoryFrame } from './dataset.js';
