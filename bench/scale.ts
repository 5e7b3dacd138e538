/**
 * Many agents, one model: throughput of N concurrent agents (N = 1, 4, 16) sharing one world model on the CPU,
 * in imagined frames/s and decisions/s, through `BatchingWorldModel` (every agent's candidates × guidance
 * branches in one network evaluation per denoising step) against the same agents calling the model directly
 * (their calls serialized, one decision per evaluation batch). Each agent has its own context (different
 * frames, non-contiguous positions) and seed; every decision imagines `candidates` futures of `horizon` frames
 * with the model's default sampler and guidance. With `--remote`, the model runs behind the Open Inference
 * Protocol test double (test/support/oip-double.ts) over loopback HTTP, to show the protocol's overhead.
 * Besides wall-clock rates it prints the process's CPU time per decision, which hardly depends on other jobs
 * sharing the machine. Figures and what they mean: docs/scaling.md §5.
 *
 * Run: npx tsx bench/scale.ts [modelDir] [--agents 1,4,16] [--decisions 2] [--candidates 8] [--threads 2]
 *                              [--window 5] [--max-candidates n] [--no-baseline] [--remote]
 *      (default model: the shipped one, models/v4s-builtin-small; e.g. test/fixtures/models/bench without it)
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BatchingWorldModel } from '../src/worldmodel/batching-world-model.js';
import { loadWorldModel, type PackageWorldModel } from '../src/worldmodel/onnx-world-model.js';
import type { Frame, Instruction } from '../src/types.js';
import type { ImagineRequest, WorldModel } from '../src/worldmodel/world-model.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The shipped model package (the default). */
export const SHIPPED_MODEL = path.join(HERE, '..', 'models', 'v4s-builtin-small');

export interface ScaleBenchRow {
  readonly agents: number;
  readonly mode: 'batched' | 'unbatched';
  readonly decisions: number;
  readonly wallS: number;
  readonly decisionsPerS: number;
  /** Imagined frames per second: decisions × candidates × horizon / wall time. */
  readonly framesPerS: number;
  /** Mean agents' calls per model call (1 unbatched). */
  readonly callsPerBatch: number;
  /** Network evaluations (session.run or infer) per decision. */
  readonly runsPerDecision: number;
  /** Median latency of one agent's decision, ms. */
  readonly p50Ms: number;
  /**
   * CPU time of this process (all threads: onnxruntime's pool included) per decision, ms. Unlike wall time it
   * hardly depends on other processes sharing the machine, so it compares modes fairly on a busy CPU.
   */
  readonly cpuMsPerDecision: number;
}

export interface ScaleBenchOptions {
  readonly agents?: readonly number[];
  readonly decisions?: number;
  readonly candidates?: number;
  readonly threads?: number;
  readonly windowMs?: number;
  /** `BatchingWorldModel` maxCandidates: candidates of all agents in one batch (default: no limit). */
  readonly maxCandidates?: number;
  /** Also run the agents without batching (default true). */
  readonly baseline?: boolean;
  /** Serve the model through the OIP test double and use a RemoteWorldModel (default false). */
  readonly remote?: boolean;
  readonly log?: (line: string) => void;
}

function median(a: readonly number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function frame(width: number, height: number, agent: number, k: number): Frame {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + agent * 97 + k * 13 + ((i >> 6) % 7) * 17) & 255;
  return { width, height, data };
}

/** Agent `a`'s d-th decision: its own frames and positions, `n` candidates of the model's horizon. */
function request(wm: PackageWorldModel, a: number, d: number, n: number): ImagineRequest {
  const m = wm.manifest;
  const K = Math.min(4, m.context.maxFrames);
  const { width, height } = m.resolution;
  const actions = Object.keys(m.instruction.actions);
  const candidates: Instruction[] = Array.from({ length: n }, (_, c) => ({
    actions: Array.from({ length: m.horizon }, (_, j) => actions[(c + j * (c + 1)) % actions.length] as string),
  }));
  const newest = 10 + 3 * d;
  return {
    context: { frames: Array.from({ length: K }, (_, k) => frame(width, height, a, d + k)), positions: Array.from({ length: K }, (_, k) => newest - 3 * (K - 1 - k) - (k === 0 ? 2 : 0)) },
    candidates,
    seed: 7919 * a + d,
  };
}

/** Run N agents concurrently for `decisions` decisions each; returns wall time and per-decision latencies. */
async function runAgents(model: WorldModel, base: PackageWorldModel, n: number, decisions: number, candidates: number): Promise<{ wallMs: number; latencies: number[] }> {
  const latencies: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: n }, async (_, a) => {
      for (let d = 0; d < decisions; d++) {
        const ts = performance.now();
        const res = await model.imagine(request(base, a, d, candidates));
        if (res.length !== candidates) throw new Error(`agent ${a}: ${res.length} rollouts`);
        latencies.push(performance.now() - ts);
      }
    }),
  );
  return { wallMs: performance.now() - t0, latencies };
}

/** Measure batched (and unbatched) throughput at each agent count. */
export async function benchScale(modelDir: string = SHIPPED_MODEL, options: ScaleBenchOptions = {}): Promise<ScaleBenchRow[]> {
  const counts = options.agents ?? [1, 4, 16];
  const decisions = options.decisions ?? 2;
  const candidates = options.candidates ?? 8;
  const log = options.log ?? ((l: string) => console.log(l));
  if (!existsSync(path.join(modelDir, 'manifest.json'))) throw new Error(`no model package at ${modelDir} (pass a folder, e.g. test/fixtures/models/bench)`);
  let model: PackageWorldModel = await loadWorldModel(modelDir, options.threads !== undefined ? { threads: options.threads } : {});
  const closers: (() => Promise<void>)[] = [];
  if (options.remote) {
    const { exportTriton } = await import('../src/cli/export-triton.js');
    const { OipDouble } = await import('../test/support/oip-double.js');
    const { connectRemoteWorldModel } = await import('../src/worldmodel/remote-world-model.js');
    const repo = await mkdtemp(path.join(os.tmpdir(), 'v4s-scale-'));
    await exportTriton(modelDir, repo);
    const double = await OipDouble.start(repo);
    double.record = false;
    await model.dispose();
    model = await connectRemoteWorldModel({ url: double.url, manifest: modelDir });
    closers.push(() => double.close(), () => rm(repo, { recursive: true, force: true }));
  }
  const m = model.manifest;
  const branches = (model.info.defaultGuidance.kind === 'two-scale' ? 3 : model.info.defaultGuidance.kind === 'joint' && model.info.defaultGuidance.scale !== 1 ? 2 : 1);
  log(
    `model ${m.name}${options.remote ? ' (remote, OIP test double over loopback HTTP)' : ''} · ${candidates} candidates × ${branches} guidance branches · ` +
      `${m.defaults.sampler.kind} ${m.defaults.sampler.steps} steps · horizon ${m.horizon} · ${decisions} decisions per agent · threads ${options.threads ?? 'all'}` +
      (options.maxCandidates !== undefined ? ` · batches of ≤ ${options.maxCandidates} candidates` : ''),
  );
  log('agents | mode      | wall s | decisions/s | frames/s | calls/batch | runs/decision | p50 ms | CPU ms/decision');
  log('------ | --------- | ------ | ----------- | -------- | ----------- | ------------- | ------ | ---------------');
  const rows: ScaleBenchRow[] = [];
  await model.imagine(request(model, 0, 0, candidates)); // warm-up: workspaces, thread pools
  const frames = candidates * m.horizon;
  const modes: ('unbatched' | 'batched')[] = options.baseline === false ? ['batched'] : ['unbatched', 'batched'];
  try {
    for (const n of counts) {
      for (const mode of modes) {
        const shared = mode === 'batched' ? new BatchingWorldModel(model, {
                windowMs: options.windowMs ?? 5,
                maxBatch: Math.max(16, n),
                ...(options.maxCandidates !== undefined ? { maxCandidates: options.maxCandidates } : {}),
                disposeInner: false,
              }) : undefined;
        model.resetStats();
        const cpu0 = process.cpuUsage();
        const { wallMs, latencies } = await runAgents(shared ?? model, model, n, decisions, candidates);
        const cpu = process.cpuUsage(cpu0);
        const total = n * decisions;
        const st = model.stats();
        const row: ScaleBenchRow = {
          agents: n,
          mode,
          decisions: total,
          wallS: wallMs / 1000,
          decisionsPerS: (total * 1000) / wallMs,
          framesPerS: (total * frames * 1000) / wallMs,
          callsPerBatch: shared ? total / Math.max(1, shared.stats().batches) : 1,
          runsPerDecision: st.sessionRuns / total,
          p50Ms: median(latencies),
          cpuMsPerDecision: (cpu.user + cpu.system) / 1000 / total,
        };
        rows.push(row);
        log(
          `${String(n).padStart(6)} | ${mode.padEnd(9)} | ${row.wallS.toFixed(2).padStart(6)} | ${row.decisionsPerS.toFixed(2).padStart(11)} | ${row.framesPerS.toFixed(1).padStart(8)} | ` +
            `${row.callsPerBatch.toFixed(1).padStart(11)} | ${row.runsPerDecision.toFixed(2).padStart(13)} | ${row.p50Ms.toFixed(0).padStart(6)} | ${row.cpuMsPerDecision.toFixed(0).padStart(15)}`,
        );
        if (shared) await shared.dispose();
      }
    }
  } finally {
    await model.dispose();
    for (const c of closers) await c();
  }
  return rows;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const flag = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const num = (name: string): number | undefined => (flag(name) !== undefined ? Number(flag(name)) : undefined);
  const dir = args[0] !== undefined && !args[0].startsWith('--') ? args[0] : SHIPPED_MODEL;
  const agents = flag('--agents')?.split(',').map(Number);
  const opts: ScaleBenchOptions = {
    ...(agents ? { agents } : {}),
    ...(num('--decisions') !== undefined ? { decisions: num('--decisions') as number } : {}),
    ...(num('--candidates') !== undefined ? { candidates: num('--candidates') as number } : {}),
    ...(num('--threads') !== undefined ? { threads: num('--threads') as number } : {}),
    ...(num('--window') !== undefined ? { windowMs: num('--window') as number } : {}),
    ...(num('--max-candidates') !== undefined ? { maxCandidates: num('--max-candidates') as number } : {}),
    ...(args.includes('--no-baseline') ? { baseline: false } : {}),
    ...(args.includes('--remote') ? { remote: true } : {}),
  };
  benchScale(dir, opts).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    },
  );
}
