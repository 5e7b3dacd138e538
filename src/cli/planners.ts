/**
 * The planners `v4s eval` and `v4s demo` compare, built the same way for both:
 *
 * | name             | planner                                    | world model                                   |
 * | ---------------- | ------------------------------------------ | --------------------------------------------- |
 * | `wm`             | WorldModelPlanner                          | the model package (in a worker thread)        |
 * | `no-imagination` | WorldModelPlanner, same settings           | RepeatLastWorldModel with the model's info    |
 * | `oracle`         | WorldModelPlanner, same settings           | SimulatorWorldModel (the server's oracle op)  |
 * | `random`         | RandomPlanner, seeded with the episode seed | –                                            |
 * | `heuristic`      | HeuristicPlanner (colour blobs, no masks)  | –                                             |
 *
 * The three world-model planners share one scorer and one set of settings (candidates, horizon, actions per
 * plan, context frames, sampler); only the world model differs, so their success rates compare imagination.
 *
 * The model package runs in a worker thread by default (`loadWorkerWorldModel`): planning does not block the
 * event loop that carries observations and WebSocket traffic (docs/performance.md measures the lag). Results
 * are identical to the in-process model's; `modelThread: 'main'` (`--model-thread main`) runs it in-process.
 */
import { Option, type Command } from 'commander';
import { V4sError } from '../errors.js';
import type { EvaluationEpisode } from '../agent/episode-runner.js';
import { HeuristicPlanner } from '../planner/heuristic-planner.js';
import type { Planner } from '../planner/planner.js';
import { RandomPlanner } from '../planner/random-planner.js';
import { WorldModelPlanner, type CandidateSource, type WorldModelPlannerOptions } from '../planner/world-model-planner.js';
import { enumerateCandidates } from '../planner/candidates.js';
import type { Environment } from '../sim-adapters/environment.js';
import { hasModelPackage, httpUrlArg } from './common.js';
import { checkStepSizes, loadManifest, manifestToInfo } from '../worldmodel/manifest.js';
import { loadWorldModel, type LoadWorldModelOptions } from '../worldmodel/onnx-world-model.js';
import { loadWorkerWorldModel } from '../worldmodel/worker-world-model.js';
import { connectRemoteWorldModel } from '../worldmodel/remote-world-model.js';
import { RepeatLastWorldModel, currentViewGrounder } from '../worldmodel/repeat-last-world-model.js';
import { SimulatorWorldModel } from '../worldmodel/simulator-world-model.js';
import type { SamplerConfig, WorldModel, WorldModelInfo } from '../worldmodel/world-model.js';

/** Planner names accepted by `--planner`. */
export const PLANNER_KINDS = ['wm', 'no-imagination', 'oracle', 'random', 'heuristic'] as const;
export type PlannerKind = (typeof PLANNER_KINDS)[number];

/** True for the planners that imagine through a world model. */
export function usesWorldModel(kind: PlannerKind): boolean {
  return kind === 'wm' || kind === 'no-imagination' || kind === 'oracle';
}

/** Settings of the world-model planners (ignored by random and heuristic). */
export interface PlannerSettings {
  /** Model package folder (wm; its manifest gives no-imagination and oracle their resolution and horizon). */
  readonly modelDir: string;
  /** Candidate instructions per decision. */
  readonly candidates: number;
  /** Denoising steps (default: the model's). */
  readonly samplerSteps?: number;
  /** Actions executed per plan before re-planning. */
  readonly actionsPerPlan: number;
  /** onnxruntime intra-op threads (default: onnxruntime's). */
  readonly threads?: number;
  /** Where warnings go. */
  readonly warn?: (message: string) => void;
  /** Where the model package runs: a worker thread (default, never blocks the event loop) or the main thread. */
  readonly modelThread?: 'worker' | 'main';
  /**
   * An Open Inference Protocol v2 server (Triton, KServe) that serves the package's networks, as written by
   * `v4s export-triton`: the model runs there (`connectRemoteWorldModel`), only its manifest is read locally.
   */
  readonly remote?: string;
}

/** Where the model runs, as `v4s eval` and `v4s demo` take it from their flags. */
export type ModelPlacement = Pick<PlannerSettings, 'modelThread' | 'remote'>;

/** Add `--remote` and `--model-thread` (the `ModelPlacement` flags) to a command. */
export function addModelPlacementOptions(command: Command): Command {
  return command
    .option('--remote <url>', 'run the world model on an Open Inference Protocol v2 server (Triton) serving `v4s export-triton`\'s repository; --model gives the manifest', httpUrlArg)
    .addOption(new Option('--model-thread <where>', 'run the world model in a worker thread (planning never blocks the event loop) or on the main thread').choices(['worker', 'main']).default('worker'));
}

/** The placement fields that are set, ready to spread into `PlannerSettings`. */
export function modelPlacement(o: ModelPlacement): ModelPlacement {
  return { ...(o.modelThread !== undefined ? { modelThread: o.modelThread } : {}), ...(o.remote !== undefined ? { remote: o.remote } : {}) };
}

/** Load the package on the thread the settings ask for. */
function loadPackage(s: PlannerSettings, warn: (message: string) => void): Promise<WorldModel> {
  if (s.remote !== undefined) return connectRemoteWorldModel({ url: s.remote, manifest: s.modelDir, waitReadyMs: 10_000 });
  const options: LoadWorldModelOptions = { ...(s.threads !== undefined ? { threads: s.threads } : {}), onWarning: warn };
  return s.modelThread === 'main' ? loadWorldModel(s.modelDir, options) : loadWorkerWorldModel(s.modelDir, options);
}

/** A prepared planner kind: builds one planner per episode, on a given connection. */
export interface PlannerSetup {
  readonly kind: PlannerKind;
  /** The planner name in result rows and row keys. */
  readonly name: string;
  /** The simulator must serve the oracle op. */
  readonly needsOracle: boolean;
  /** One line saying what runs, for the console. */
  readonly description: string;
  /** The world model's info (world-model planners), e.g. for the report. */
  readonly info?: WorldModelInfo;
  /** Check a connection (step sizes, oracle) and return the per-episode planner factory for it. */
  forEnvironment(env: Environment): (episode: EvaluationEpisode) => Planner;
  /** Release the model's sessions. */
  dispose(): Promise<void>;
}

/** Default oracle/ablation info when there is no model package: the built-in simulator's 64×64, H = 4, 8×8 grounding. */
const FALLBACK_GRID = { width: 8, height: 8 } as const;

/**
 * Candidate generator for `n` candidates: the canonical enumeration (turn k times, then go forward; 2H + 1
 * sequences for two turns) cut to a well-spread subset of `n` when `n` is smaller, else the pruned
 * enumeration cut to `n`.
 */
export function candidateSource(info: Pick<WorldModelInfo, 'actions'>, horizon: number, n: number): CandidateSource {
  const canonical = enumerateCandidates(info.actions, horizon, { form: 'canonical' }).length;
  return n <= canonical ? { kind: 'enumerate', form: 'canonical', max: n } : { kind: 'enumerate', form: 'pruned', max: n };
}

function samplerWith(defaults: SamplerConfig, steps: number | undefined): SamplerConfig {
  return steps === undefined ? defaults : { ...defaults, steps };
}

function plannerOptions(kind: PlannerKind, info: WorldModelInfo, s: PlannerSettings, seed: number | undefined): WorldModelPlannerOptions {
  const sampler = samplerWith(info.defaultSampler, s.samplerSteps);
  return {
    name: kind,
    actionsPerPlan: s.actionsPerPlan,
    candidates: candidateSource(info, info.horizon, s.candidates),
    sampler,
    seed: seed ?? 0,
  };
}

/** Info of the model package for the ablation and the oracle, when the package is there. */
async function packageInfo(dir: string): Promise<{ info: WorldModelInfo; grid: { width: number; height: number } } | undefined> {
  try {
    const manifest = await loadManifest(dir);
    const aux = manifest.auxOutputs.find((a) => a.name === 'grounding');
    return { info: manifestToInfo(manifest), grid: aux !== undefined ? { width: aux.width, height: aux.height } : FALLBACK_GRID };
  } catch (e) {
    if (e instanceof V4sError && e.code === 'E_MODEL_FILE') return undefined;
    throw e;
  }
}

function checkSettings(s: PlannerSettings): void {
  if (!Number.isInteger(s.candidates) || s.candidates < 1) throw new V4sError('E_CONFIG', `--candidates must be a positive integer, got ${String(s.candidates)}`);
  if (!Number.isInteger(s.actionsPerPlan) || s.actionsPerPlan < 1) {
    throw new V4sError('E_CONFIG', `--actions-per-plan must be a positive integer, got ${String(s.actionsPerPlan)}`);
  }
  if (s.samplerSteps !== undefined && (!Number.isInteger(s.samplerSteps) || s.samplerSteps < 1)) {
    throw new V4sError('E_CONFIG', `--steps must be a positive integer, got ${String(s.samplerSteps)}`);
  }
}

/** Per-connection check that the model's trained step sizes are the simulator's (E_MODEL_STEP_SIZE otherwise). */
function checkEnv(info: WorldModelInfo, env: Environment): void {
  checkStepSizes(info, env.capabilities);
}

/**
 * Prepare a planner kind: loads the model for `wm` (E_MODEL_* errors name the file), reads the manifest for
 * `no-imagination` and `oracle`. Nothing here talks to a simulator yet.
 */
export async function preparePlanner(kind: PlannerKind, settings: PlannerSettings): Promise<PlannerSetup> {
  checkSettings(settings);
  const warn = settings.warn ?? ((m: string) => process.emitWarning(m));
  switch (kind) {
    case 'random':
      return {
        kind,
        name: kind,
        needsOracle: false,
        description: 'random planner (uniform over move_forward/turn_left/turn_right, seeded by the episode seed; never stops)',
        forEnvironment: () => (ep) => new RandomPlanner({ seed: ep.seed ?? 0 }),
        dispose: async () => undefined,
      };
    case 'heuristic':
      return {
        kind,
        name: kind,
        needsOracle: false,
        description: 'heuristic planner (turns toward and approaches colour blobs of the goal category; never reads the hidden masks)',
        forEnvironment: () => (ep) => new HeuristicPlanner({ seed: ep.seed ?? 0 }),
        dispose: async () => undefined,
      };
    case 'wm': {
      if (!hasModelPackage(settings.modelDir)) {
        throw new V4sError('E_MODEL_FILE', `no world-model package at ${settings.modelDir} (no manifest.json): pass --model <dir>, or train one (training/README.md)`, {
          path: settings.modelDir,
        });
      }
      const model = await loadPackage(settings, warn);
      const where = settings.remote !== undefined ? `served at ${settings.remote}` : settings.modelThread === 'main' ? 'main thread' : 'worker thread';
      return worldModelSetup(kind, model.info, settings, `world-model planner with ${model.info.name} (${settings.modelDir}, ${where})`, () => model, () => model.dispose());
    }
    case 'no-imagination': {
      // Same perception as `wm` (the learned model's current-view grounding head), no imagination.
      if (!hasModelPackage(settings.modelDir)) {
        warn(`no model package at ${settings.modelDir}: the no-imagination ablation uses the default 64×64, horizon-4 info and has no grounding`);
        const bare = new RepeatLastWorldModel();
        return worldModelSetup(kind, bare.info, settings, 'world-model planner, imagination replaced by "repeat the last frame"', () => bare, () => bare.dispose());
      }
      const perception = await loadPackage(settings, warn);
      const model = new RepeatLastWorldModel(perception.info, { grounder: currentViewGrounder(perception) });
      return worldModelSetup(kind, model.info, settings, `world-model planner, imagination replaced by "repeat the last frame", perception from ${perception.info.name}'s current-view grounding`, () => model, () => perception.dispose());
    }
    case 'oracle': {
      const pkg = await packageInfo(settings.modelDir);
      if (pkg === undefined) warn(`no model package at ${settings.modelDir}: the oracle uses the default 64×64 frames, horizon 4 and an 8×8 grounding grid`);
      const resolution = pkg?.info.resolution ?? { width: 64, height: 64 };
      const horizon = pkg?.info.horizon ?? 4;
      const grid = pkg?.grid ?? FALLBACK_GRID;
      const goalCategories = pkg?.info.goalCategories ?? [];
      // Describes the oracle before any connection exists (checks, reports); the SimulatorWorldModel built per
      // connection reports the simulator's own actions.
      const info: WorldModelInfo = {
        name: 'simulator-oracle',
        resolution,
        actions: pkg?.info.actions ?? new RepeatLastWorldModel().info.actions,
        maxContext: pkg?.info.maxContext ?? 64,
        horizon,
        positionRange: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
        goalCategories,
        grounding: true,
        defaultSampler: { kind: 'euler', steps: 1 },
        defaultGuidance: { kind: 'none' },
      };
      const setup = worldModelSetup(kind, info, settings, 'world-model planner with the simulator oracle as world model (true futures and masks: the ceiling)', undefined, async () => undefined);
      return {
        ...setup,
        needsOracle: true,
        forEnvironment: (env) => {
          checkEnv(info, env);
          const oracle = new SimulatorWorldModel(env, { resolution, grounding: grid, horizon, goalCategories });
          return (ep) => new WorldModelPlanner(oracle, plannerOptions(kind, info, settings, ep.seed));
        },
      };
    }
  }
}

function worldModelSetup(
  kind: PlannerKind,
  info: WorldModelInfo,
  settings: PlannerSettings,
  description: string,
  model: (() => WorldModel) | undefined,
  dispose: () => Promise<void>,
): PlannerSetup {
  const sampler = samplerWith(info.defaultSampler, settings.samplerSteps);
  const samplerText = kind === 'wm' ? `, ${sampler.kind} ${sampler.steps} steps` : '';
  return {
    kind,
    name: kind,
    needsOracle: false,
    description: `${description}; ${settings.candidates} candidates × horizon ${info.horizon}${samplerText}, ${settings.actionsPerPlan} action(s) per plan`,
    info,
    forEnvironment: (env) => {
      checkEnv(info, env);
      const wm = model?.();
      if (wm === undefined) throw new V4sError('E_CONFIG', `planner ${kind}: no world model`);
      return (ep) => new WorldModelPlanner(wm, plannerOptions(kind, info, settings, ep.seed));
    },
    dispose,
  };
}
