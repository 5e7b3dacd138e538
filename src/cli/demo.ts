/**
 * `v4s demo` (what `npm start` runs): the whole system end to end, in a few minutes on a laptop CPU.
 *
 * 1. starts the built-in simulator server on a free loopback port, and connects the agent over a real WebSocket;
 * 2. runs a few ObjectNav episodes on evaluation seeds with the world-model planner and the shipped model
 *    (`models/v4s-builtin-small`, found from the package root, not the cwd) — or, when that package is missing,
 *    with the random planner, saying so;
 * 3. prints the metrics table (success rate with its Wilson 95 % interval, SPL, SoftSPL, distance to goal,
 *    steps, decision latency p50/p95) and the total time;
 * 4. writes under `runs/<timestamp>/`: per episode a PNG strip of what the agent saw and a self-contained HTML
 *    report (real frames, every candidate's imagined rollout with its score and the chosen one, grounding drawn
 *    on the frames, metrics); `results.jsonl`; `index.html`.
 *
 * A time budget (`--budget`, seconds for all episodes) keeps the demo short on a slow or busy machine: each
 * episode gets an equal share of what is left, and an episode past its share is truncated (end reason
 * `truncated`, said in its report). Evaluations (`v4s eval`) have no budget.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { Option, type Command } from 'commander';
import type { EvaluationEpisode } from '../agent/episode-runner.js';
import { formatSummaryTable, groupRows } from '../agent/metrics.js';
import { ResultsWriter, readResults, type EpisodeRow } from '../agent/results.js';
import { V4sError } from '../errors.js';
import { frameToPng } from '../agent/frames.js';
import { renderEpisodeReport, renderRunIndex, type RunIndexEntry, type SeenFrame } from '../report/episode-report.js';
import { frameGrid } from '../report/images.js';
import { BuiltinSimulator } from '../sim-adapters/builtin/simulator.js';
import { EVAL_SEEDS, splitOfSeed } from '../sim-adapters/builtin/seeds.js';
import type { Environment, StepResult, TaskName } from '../sim-adapters/environment.js';
import { TASK_NAMES } from '../sim-adapters/protocol/types.js';
import { connectSimulator } from '../sim-adapters/ws-client.js';
import { SimulatorServer } from '../sim-adapters/ws-server.js';
import {
  EXIT,
  SHIPPED_MODEL,
  displayPath,
  formatDuration,
  hasModelPackage,
  intArg,
  interruptSignal,
  processIO,
  resolveOutputPath,
  seedsArg,
  seedsText,
  selectSeeds,
  shippedModelDir,
  timestamp,
  type CliIO,
  type SeedRangeArg,
} from './common.js';
import { runEpisodePool } from './episodes.js';
import { PLANNER_KINDS, addModelPlacementOptions, modelPlacement, preparePlanner, type ModelPlacement, type PlannerKind } from './planners.js';

/**
 * Defaults chosen so that `npm start` finishes within 3 minutes on a 2-core machine: 3 episodes of at most 100
 * steps, 8 candidates × the model's horizon, the manifest's denoising steps (2), one action per plan, 150 s for
 * the episodes (the budget truncates an episode rather than overrun).
 */
export const DEMO_DEFAULTS = {
  planner: 'wm' as PlannerKind,
  task: 'objectnav' as TaskName,
  episodes: 3,
  maxSteps: 100,
  candidates: 8,
  /** Denoising steps: the model manifest's default sampler (2 Euler steps for the shipped model). */
  samplerSteps: undefined as number | undefined,
  actionsPerPlan: 1,
  budgetSeconds: 150,
} as const;

/** Parsed options of `v4s demo`. */
export interface DemoOptions extends ModelPlacement {
  readonly planner: PlannerKind;
  readonly task: TaskName;
  readonly episodes?: number;
  readonly seeds?: SeedRangeArg;
  readonly maxSteps: number;
  readonly candidates: number;
  readonly steps?: number;
  readonly actionsPerPlan: number;
  readonly budget: number;
  readonly model?: string;
  readonly out?: string;
  readonly threads?: number;
}

/** What the demo wrote. */
export interface DemoResult {
  readonly exitCode: number;
  readonly dir: string;
  readonly rows: EpisodeRow[];
  readonly files: string[];
}

/** The environment, with `step` reporting `truncated` once `deadline` (performance.now ms) has passed. */
function withDeadline(env: Environment, deadline: number, onCut: (step: number) => void): Environment {
  const oracle = env.oracle;
  return {
    specificationVersion: env.specificationVersion,
    capabilities: env.capabilities,
    observations$: env.observations$,
    reset: (options) => env.reset(options),
    step: async (action): Promise<StepResult> => {
      const r = await env.step(action);
      if (!r.terminated && !r.truncated && performance.now() > deadline) {
        onCut(r.observation.step);
        return { ...r, truncated: true };
      }
      return r;
    },
    close: () => env.close(),
    ...(oracle !== undefined ? { oracle: oracle.bind(env) } : {}),
  };
}

/** Progress: a bar on a terminal, plain lines otherwise. */
interface Progress {
  step(episode: number, stepsTaken: number): void;
  line(text: string): void;
  stop(): void;
}

function createProgress(io: CliIO, episodes: number, maxSteps: number): Progress {
  if (!io.isTTY) {
    return { step: () => undefined, line: (t) => io.out(t), stop: () => undefined };
  }
  const multi = new MultiBar(
    {
      format: ' episode {episode}/{episodes} [{bar}] {percentage}% · step {step}/{maxSteps} · ETA {eta_formatted}',
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 20,
    },
    Presets.shades_classic,
  );
  const bar: SingleBar = multi.create(episodes * maxSteps, 0, { episode: 1, episodes, step: 0, maxSteps });
  return {
    step: (episode, stepsTaken) => bar.update(episode * maxSteps + Math.min(stepsTaken, maxSteps), { episode: episode + 1, episodes, step: stepsTaken, maxSteps }),
    line: (t) => {
      multi.log(`${t}\n`);
      multi.update(); // flush now: the log buffer is otherwise written only on the next redraw
    },
    stop: () => multi.stop(),
  };
}

function fileStem(index: number, spec: EvaluationEpisode): string {
  return `episode-${index + 1}${spec.seed !== undefined ? `-seed-${spec.seed}` : ''}`;
}

/** Run the demo with parsed options. */
export async function runDemo(o: DemoOptions, io: CliIO = processIO, signal?: AbortSignal): Promise<DemoResult> {
  const t0 = performance.now();
  const dir = resolveOutputPath(o.out ?? path.join('runs', timestamp()), '--out', 'dir');
  const seeds = selectSeeds({ ...(o.episodes !== undefined ? { episodes: o.episodes } : {}), ...(o.seeds !== undefined ? { seeds: o.seeds } : {}) }, EVAL_SEEDS.start, DEMO_DEFAULTS.episodes);
  const modelDir = o.model !== undefined ? path.resolve(o.model) : shippedModelDir();
  const resultsPath = path.join(dir, 'results.jsonl');
  if ((await readResults(resultsPath)).length > 0) {
    throw new V4sError('E_PATH', `--out ${displayPath(dir)} already holds a run (results.jsonl); choose another folder`, { flag: '--out', path: dir });
  }
  const notes: string[] = [];

  let kind = o.planner;
  if (kind === 'wm' && !hasModelPackage(modelDir)) {
    const where = o.model !== undefined ? displayPath(modelDir) : `${SHIPPED_MODEL} (in ${path.dirname(path.dirname(modelDir))})`;
    const msg = `No world-model package at ${where}: running the RANDOM planner instead of the world-model planner. Train one (training/README.md) or pass --model <dir>.`;
    io.err(msg);
    notes.push(msg);
    kind = 'random';
  }
  const setup = await preparePlanner(kind, {
    modelDir,
    candidates: o.candidates,
    ...(o.steps !== undefined ? { samplerSteps: o.steps } : {}),
    actionsPerPlan: o.actionsPerPlan,
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    ...modelPlacement(o),
    warn: (m) => io.err(`warning: ${m}`),
  });
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  const rows: EpisodeRow[] = [];
  const entries: RunIndexEntry[] = [];
  let server: SimulatorServer | undefined;
  let progress: Progress | undefined;
  try {
    const oracle = setup.needsOracle;
    server = await SimulatorServer.start(() => new BuiltinSimulator({ oracle, maxSteps: { [o.task]: o.maxSteps } }), { port: 0, oracle });
    const url = server.url;
    io.out(`v4s demo: ${setup.description}`);
    io.out(`simulator: built-in, served at ${url} (the agent connects over a real WebSocket)`);
    io.out(`${seeds.length} ${o.task} episode(s) on seeds ${seedsText(seeds)} (${splitOfSeed(seeds[0] ?? 0) ?? 'no'} split) · at most ${o.maxSteps} steps each · time budget ${o.budget} s`);
    io.out(`output: ${displayPath(dir)}/`);

    const writer = await ResultsWriter.open(resultsPath);
    files.push(writer.path);
    const episodes: EvaluationEpisode[] = seeds.map((seed) => ({ seed, task: o.task }));
    const budgetEnd = performance.now() + o.budget * 1000;
    const seen = new Map<EvaluationEpisode, SeenFrame[]>();
    const cuts = new Map<EvaluationEpisode, number>();
    const order = new Map<EvaluationEpisode, number>(episodes.map((e, i) => [e, i]));
    let started = 0;
    progress = createProgress(io, episodes.length, o.maxSteps);
    const bar = progress;

    await runEpisodePool({
      setup,
      connect: () => connectSimulator(url),
      episodes,
      parallel: 1,
      maxSteps: o.maxSteps,
      writer,
      ...(signal !== undefined ? { signal } : {}),
      prepare: (spec, env) => {
        const index = order.get(spec) ?? started;
        const now = performance.now();
        const deadline = now + Math.max(0, budgetEnd - now) / Math.max(1, episodes.length - started);
        started++;
        const frames: SeenFrame[] = [];
        seen.set(spec, frames);
        if (!io.isTTY) io.out(`episode ${index + 1}/${episodes.length}: seed ${spec.seed ?? '–'} …`);
        return {
          env: withDeadline(env, deadline, (step) => cuts.set(spec, step)),
          options: {
            onObservation: (obs) => frames.push({ step: obs.step, rgb: { width: obs.rgb.width, height: obs.rgb.height, data: new Uint8Array(obs.rgb.data) } }),
            onStep: (ev) => bar.step(index, ev.stepsTaken),
          },
        };
      },
      onEpisode: async (outcome, spec, done, total) => {
        const index = order.get(spec) ?? done - 1;
        const row = outcome.row;
        rows.push(row);
        const stem = fileStem(index, spec);
        const frames = seen.get(spec) ?? [];
        const episodeNotes = [...notes];
        const cut = cuts.get(spec);
        if (cut !== undefined) episodeNotes.push(`Truncated at step ${cut} by the demo's time budget (--budget ${o.budget} s for all episodes).`);
        let strip: string | undefined;
        if (frames.length > 0) {
          strip = `${stem}.png`;
          await writeFile(path.join(dir, strip), frameToPng(frameGrid(frames.map((f) => f.rgb), 20)));
          files.push(path.join(dir, strip));
        }
        const html = renderEpisodeReport({
          row,
          ...(outcome.trace?.goal !== undefined ? { goal: outcome.trace.goal } : {}),
          observations: frames,
          decisions: outcome.trace?.decisions ?? [],
          notes: episodeNotes,
          settings: {
            planner: setup.description,
            simulator: `built-in over ${url}`,
            'step limit': o.maxSteps,
            ...(setup.info !== undefined ? { 'world model': setup.info.name } : {}),
          },
        });
        await writeFile(path.join(dir, `${stem}.html`), html);
        files.push(path.join(dir, `${stem}.html`));
        entries.push({ href: `${stem}.html`, ...(strip !== undefined ? { strip } : {}), row, ...(outcome.trace?.goal !== undefined ? { goal: outcome.trace.goal } : {}) });
        bar.step(index, o.maxSteps);
        const goal = outcome.trace?.goal?.category;
        const result = row.status !== 'ok' ? `${row.status}: ${row.reason ?? ''}` : row.success ? 'success' : 'failure';
        const spl = row.spl === null ? '–' : row.spl.toFixed(3);
        bar.line(
          `episode ${done}/${total}: seed ${row.seed ?? '–'}${goal !== undefined ? ` (find a ${goal})` : ''} → ${result} · SPL ${spl} · ${row.steps} steps (${row.endReason ?? '–'}${cut !== undefined ? ', time budget' : ''}) · ${formatDuration(row.durationMs)} · report ${displayPath(path.join(dir, `${stem}.html`))}`,
        );
      },
    });
  } catch (e) {
    progress?.stop();
    if (signal?.aborted === true && e === signal.reason) {
      io.err(`interrupted: ${rows.length} episode(s) written under ${displayPath(dir)}/`);
      return { exitCode: EXIT.interrupted, dir, rows, files };
    }
    throw e;
  } finally {
    progress?.stop();
    await server?.close();
    await setup.dispose();
  }
  const table = formatSummaryTable(groupRows(rows));
  const indexPath = path.join(dir, 'index.html');
  await writeFile(indexPath, renderRunIndex(`v4s demo · ${setup.description}`, table, entries, notes));
  files.push(indexPath);
  io.out('');
  io.out(table);
  io.out('');
  io.out(`reports: ${displayPath(indexPath)} (one HTML page and one PNG strip per episode in ${displayPath(dir)}/)`);
  io.out(`total time ${formatDuration(performance.now() - t0)}`);
  return { exitCode: EXIT.ok, dir, rows, files };
}

/** Register `v4s demo`. */
export function register(program: Command, io: CliIO = processIO): void {
  addModelPlacementOptions(
    program
      .command('demo')
      .description('run a few ObjectNav episodes with the world-model planner over a real WebSocket and write HTML reports (npm start)')
      .addOption(new Option('--planner <name>', 'planner').choices(PLANNER_KINDS).default(DEMO_DEFAULTS.planner))
      .addOption(new Option('--task <task>', 'task').choices(TASK_NAMES).default(DEMO_DEFAULTS.task))
      .option('--episodes <n>', `episodes (default ${DEMO_DEFAULTS.episodes})`, intArg(1, 1000))
      .option('--seeds <A..B>', `inclusive seed range (default: eval seeds from ${EVAL_SEEDS.start})`, seedsArg)
      .option('--max-steps <n>', 'step limit per episode', intArg(1, 10_000), DEMO_DEFAULTS.maxSteps)
      .option('--candidates <n>', 'candidate instructions per decision', intArg(1, 256), DEMO_DEFAULTS.candidates)
      .option('--steps <n>', "denoising (sampler) steps (default: the model manifest's)", intArg(1, 1000))
      .option('--actions-per-plan <n>', 'actions executed per plan before re-planning', intArg(1, 64), DEMO_DEFAULTS.actionsPerPlan)
      .option('--budget <seconds>', 'time budget for all episodes; an episode past its share is truncated', intArg(1, 86_400), DEMO_DEFAULTS.budgetSeconds)
      .option('--model <dir>', `world-model package (default: the shipped ${SHIPPED_MODEL})`)
      .option('--out <dir>', 'output folder (default runs/<timestamp>)')
      .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', intArg(1, 256)),
  )
    .action(async (opts: DemoOptions) => {
      const interrupt = interruptSignal(io);
      try {
        process.exitCode = (await runDemo(opts, io, interrupt.signal)).exitCode;
      } finally {
        interrupt.dispose();
      }
    });
}
