/**
 * `v4s eval`: run a planner over N episodes against the built-in simulator (served in-process over a real
 * WebSocket on a free loopback port) or an external simulator (`--url`), append one JSONL row per episode as
 * it finishes, and print the aggregate table. `--resume` continues an interrupted run; `--parallel N` runs N
 * connections at once.
 *
 * Usage: `v4s eval --planner wm --task objectnav --seeds 200000..200099 --out runs/wm.jsonl --resume`
 */
import path from 'node:path';
import { Option, type Command } from 'commander';
import { episodeKey, type EvaluationEpisode } from '../agent/episode-runner.js';
import { formatSummaryTable, groupRows } from '../agent/metrics.js';
import { ResultsWriter, completedKeys, latestRows, readResults, type EpisodeRow } from '../agent/results.js';
import { V4sError } from '../errors.js';
import { BuiltinSimulator } from '../sim-adapters/builtin/simulator.js';
import { EVAL_SEEDS, splitOfSeed } from '../sim-adapters/builtin/seeds.js';
import { MAX_STEPS } from '../sim-adapters/builtin/tasks.js';
import type { ImageEncoding, TaskName } from '../sim-adapters/environment.js';
import { IMAGE_ENCODINGS, TASK_NAMES } from '../sim-adapters/protocol/types.js';
import { connectSimulator } from '../sim-adapters/ws-client.js';
import { SimulatorServer } from '../sim-adapters/ws-server.js';
import {
  EXIT,
  displayPath,
  formatDuration,
  intArg,
  interruptSignal,
  processIO,
  resolveOutputPath,
  seedsArg,
  seedsText,
  selectSeeds,
  shippedModelDir,
  timestamp,
  urlArg,
  type CliIO,
  type SeedRangeArg,
} from './common.js';
import { runEpisodePool } from './episodes.js';
import { PLANNER_KINDS, addModelPlacementOptions, modelPlacement, preparePlanner, type ModelPlacement, type PlannerKind } from './planners.js';

/** Fixed evaluation settings (documented in docs/cli.md). */
export const EVAL_DEFAULTS = {
  planner: 'wm' as PlannerKind,
  task: 'objectnav' as TaskName,
  episodes: 10,
  candidates: 8,
  /** Denoising steps: the model manifest's default sampler (2 Euler steps for the shipped model). */
  samplerSteps: undefined as number | undefined,
  actionsPerPlan: 1,
  parallel: 1,
} as const;

/** Parsed options of `v4s eval`. */
export interface EvalOptions extends ModelPlacement {
  readonly planner: PlannerKind;
  readonly task: TaskName;
  readonly episodes?: number;
  readonly seeds?: SeedRangeArg;
  readonly out?: string;
  readonly resume?: boolean;
  readonly retryAborted?: boolean;
  readonly parallel: number;
  readonly model?: string;
  readonly candidates: number;
  readonly steps?: number;
  readonly actionsPerPlan: number;
  readonly maxSteps?: number;
  readonly url?: string;
  readonly token?: string;
  /**
   * Tries per simulator connection, with back-off (src/sim-adapters/reconnect.ts): after an episode is aborted
   * because the simulator went away, the next episode waits this long for it to come back. Default 5; 1: no retry.
   */
  readonly reconnectTries?: number;
  readonly encoding: ImageEncoding;
  readonly threads?: number;
}

/** Default of `--reconnect-tries` (reconnect.ts's default: at most ≈ 4 s of waiting before an episode is given up). */
export const DEFAULT_RECONNECT_TRIES = 5;

/** One line per finished episode. */
export function episodeLine(row: EpisodeRow, done: number, total: number): string {
  const width = String(total).length;
  const head = `[${String(done).padStart(width)}/${total}] ${row.seed !== undefined ? `seed ${row.seed}` : row.key}`;
  const secs = `(${(row.durationMs / 1000).toFixed(1)} s)`;
  if (row.status === 'aborted') return `${head}  aborted: ${row.reason ?? 'environment failure'} ${secs}`;
  const lat = [...row.decisionLatenciesMs].sort((a, b) => a - b);
  const p50 = lat.length > 0 ? (lat[Math.floor((lat.length - 1) / 2)] ?? NaN) : NaN;
  const result = row.status === 'error' ? `error: ${row.reason ?? ''}` : row.success ? 'success' : 'failure';
  const f = (v: number | null, d: number): string => (v === null || !Number.isFinite(v) ? '–' : v.toFixed(d));
  return `${head}  ${result.padEnd(7)}  SPL ${f(row.spl, 3)}  SoftSPL ${f(row.softSpl, 3)}  dist ${f(row.distanceToGoal, 2)} m  steps ${String(row.steps).padStart(3)}  p50 ${f(p50, 0)} ms  ${secs}`;
}

/** Run `v4s eval` with parsed options. Resolves with the exit code. */
export async function runEvalCommand(o: EvalOptions, io: CliIO = processIO, signal?: AbortSignal): Promise<number> {
  const t0 = performance.now();
  const seeds = selectSeeds({ ...(o.episodes !== undefined ? { episodes: o.episodes } : {}), ...(o.seeds !== undefined ? { seeds: o.seeds } : {}) }, EVAL_SEEDS.start, EVAL_DEFAULTS.episodes);
  const out = resolveOutputPath(o.out ?? `runs/eval-${o.planner}-${o.task}-${timestamp()}.jsonl`, '--out', 'file');
  const maxSteps = o.maxSteps ?? MAX_STEPS[o.task];
  const modelDir = o.model !== undefined ? path.resolve(o.model) : shippedModelDir();
  const episodes: EvaluationEpisode[] = seeds.map((seed) => ({ seed, task: o.task }));

  // Results file: refuse to mix into a non-empty file unless resuming.
  const writer = await ResultsWriter.open(out);
  let pending = episodes;
  let skipped = 0;
  if (o.resume === true) {
    const done = await completedKeys(out, { retryAborted: o.retryAborted === true });
    pending = episodes.filter((e) => !done.has(episodeKey(o.planner, e)));
    skipped = episodes.length - pending.length;
  } else {
    const existing = await readResults(out);
    if (existing.length > 0) {
      throw new V4sError('E_PATH', `--out ${displayPath(out)} already holds ${existing.length} rows: add --resume to continue it, or choose another file`, { path: out });
    }
  }

  const setup = await preparePlanner(o.planner, {
    modelDir,
    candidates: o.candidates,
    ...(o.steps !== undefined ? { samplerSteps: o.steps } : {}),
    actionsPerPlan: o.actionsPerPlan,
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    ...modelPlacement(o),
    warn: (m) => io.err(`warning: ${m}`),
  });
  let server: SimulatorServer | undefined;
  try {
    let url = o.url;
    if (url === undefined) {
      const oracle = setup.needsOracle;
      server = await SimulatorServer.start(() => new BuiltinSimulator({ oracle, maxSteps: { [o.task]: maxSteps } }), {
        port: 0,
        oracle,
        encoding: o.encoding,
        maxConnections: Math.max(16, o.parallel + 1),
      });
      url = server.url;
    }
    const splits = new Set(seeds.map((s) => splitOfSeed(s) ?? 'none'));
    io.out(`v4s eval: ${setup.description}`);
    io.out(`task ${o.task} · seeds ${seedsText(seeds)} (${[...splits].join(', ')} split) · ${seeds.length} episodes · step limit ${maxSteps} · parallel ${o.parallel}`);
    if (splits.has('train') || splits.has('dev')) {
      io.err(`note: seeds ${seedsText(seeds)} include ${[...splits].filter((s) => s === 'train' || s === 'dev').join(' and ')} seeds; report numbers on eval seeds (${EVAL_SEEDS.start}..${EVAL_SEEDS.end - 1}) you did not tune on`);
    }
    io.out(`simulator: ${server !== undefined ? `built-in, served in-process at ${url}${setup.needsOracle ? ' (oracle op enabled)' : ''}` : url}`);
    io.out(`results: ${displayPath(out)}${o.resume === true ? ` (resume: ${skipped} done, ${pending.length} to run)` : ''}`);

    const connectUrl = url;
    await runEpisodePool({
      setup,
      connect: () =>
        connectSimulator(connectUrl, {
          ...(o.token !== undefined ? { token: o.token } : {}),
          reconnect: {
            tries: o.reconnectTries ?? DEFAULT_RECONNECT_TRIES,
            onRetry: (r) => io.err(`simulator ${connectUrl}: ${r.error.message}; retrying in ${Math.round(r.delayMs)} ms (try ${r.attempt + 1} of ${r.tries})`),
          },
        }),
      episodes: pending,
      parallel: o.parallel,
      maxSteps,
      writer,
      ...(signal !== undefined ? { signal } : {}),
      onEpisode: (outcome, _spec, done, total) => io.out(episodeLine(outcome.row, done + skipped, total + skipped)),
    });
  } catch (e) {
    if (signal?.aborted === true && e === signal.reason) {
      const rows = await readResults(out);
      io.err(`interrupted: ${rows.length} row(s) on disk in ${displayPath(out)}; continue with the same command and --resume`);
      return EXIT.interrupted;
    }
    throw e;
  } finally {
    await server?.close();
    await setup.dispose();
  }
  const all = latestRows(await readResults(out));
  io.out('');
  io.out(formatSummaryTable(groupRows(all)));
  io.out('');
  io.out(`${all.length} row(s) in ${displayPath(out)} · total time ${formatDuration(performance.now() - t0)}`);
  return EXIT.ok;
}

/** Register `v4s eval`. */
export function register(program: Command, io: CliIO = processIO): void {
  addModelPlacementOptions(
    program
      .command('eval')
      .description('evaluate a planner over N episodes on the built-in simulator (or --url), one JSONL row per episode')
      .addOption(new Option('--planner <name>', 'planner').choices(PLANNER_KINDS).default(EVAL_DEFAULTS.planner))
      .addOption(new Option('--task <task>', 'task').choices(TASK_NAMES).default(EVAL_DEFAULTS.task))
      .option('--episodes <n>', `episodes (default: all of --seeds, else ${EVAL_DEFAULTS.episodes})`, intArg(1, 1_000_000))
      .option('--seeds <A..B>', `inclusive seed range (default: eval seeds from ${EVAL_SEEDS.start})`, seedsArg)
      .option('--out <file>', 'JSONL results file (default runs/eval-<planner>-<task>-<time>.jsonl)')
      .option('--resume', 'skip episodes already in --out and append the rest')
      .option('--retry-aborted', 'with --resume, run aborted episodes again')
      .option('--parallel <n>', 'simulator connections (agents) at once', intArg(1, 64), EVAL_DEFAULTS.parallel)
      .option('--model <dir>', 'world-model package (default: the shipped models/v4s-builtin-small)')
      .option('--candidates <n>', 'candidate instructions per decision', intArg(1, 256), EVAL_DEFAULTS.candidates)
      .option('--steps <n>', "denoising (sampler) steps (default: the model manifest's)", intArg(1, 1000))
      .option('--actions-per-plan <n>', 'actions executed per plan before re-planning', intArg(1, 64), EVAL_DEFAULTS.actionsPerPlan)
      .option('--max-steps <n>', 'step limit per episode (default: the task limit, 200)', intArg(1, 100_000))
      .option('--url <ws-url>', 'use an external simulator instead of the in-process built-in one', urlArg)
      .option('--token <token>', 'token of the external simulator (--url)')
      .option(
        '--reconnect-tries <n>',
        'tries per simulator connection, with exponential back-off (250 ms doubling, capped at 5 s): a simulator that went away mid-run is waited for before the next episode; 1 = no retry',
        intArg(1, 1000),
        DEFAULT_RECONNECT_TRIES,
      )
      .addOption(new Option('--encoding <enc>', 'frame encoding of the in-process server').choices(IMAGE_ENCODINGS).default('raw'))
      .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', intArg(1, 256)),
  )
    .action(async (opts: EvalOptions) => {
      const interrupt = interruptSignal(io);
      try {
        process.exitCode = await runEvalCommand(opts, io, interrupt.signal);
      } finally {
        interrupt.dispose();
      }
    });
}
