/**
 * Soak test (issue 8 §5), not part of CI: the agent against the built-in simulator over a real loopback
 * WebSocket for 20,000 steps (random planner by default; `--planner wm` with a model package), with results
 * appended to a JSONL file as in any evaluation. It samples heap and RSS (after a forced GC) every
 * `--sample-every` steps and fails (exit 1) when, after the warm-up, heap or RSS grew by `--max-growth`
 * (10 %) or more, or when any error happened (an episode not `ok`, an `error` from the peer, a protocol
 * error, an unhandled rejection).
 *
 * Usage: npm run soak [-- --steps 20000 --planner random|wm --model models/v4s-builtin-small --json out.json]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runEvaluation, type EvaluationEpisode } from '../src/agent/episode-runner.js';
import { percentile } from '../src/agent/metrics.js';
import type { Planner } from '../src/planner/planner.js';
import { RandomPlanner } from '../src/planner/random-planner.js';
import { WorldModelPlanner } from '../src/planner/world-model-planner.js';
import { BuiltinSimulator } from '../src/sim-adapters/builtin/simulator.js';
import { DEV_SEEDS } from '../src/sim-adapters/builtin/seeds.js';
import type { TaskName } from '../src/sim-adapters/environment.js';
import { connectSimulator, type WsEnvironment } from '../src/sim-adapters/ws-client.js';
import { SimulatorServer } from '../src/sim-adapters/ws-server.js';
import { loadWorldModel, type OnnxWorldModel } from '../src/worldmodel/onnx-world-model.js';

interface Sample {
  readonly step: number;
  readonly seconds: number;
  readonly heapMiB: number;
  readonly rssMiB: number;
  readonly arrayBuffersMiB: number;
}

const MiB = 1024 * 1024;

function parse(): { steps: number; planner: 'random' | 'wm'; model: string; sampleEvery: number; warmup: number; maxGrowth: number; task: TaskName; episodeSteps: number; json?: string } {
  const { values } = parseArgs({
    options: {
      steps: { type: 'string', default: '20000' },
      planner: { type: 'string', default: 'random' },
      model: { type: 'string', default: 'models/v4s-builtin-small' },
      'sample-every': { type: 'string', default: '1000' },
      warmup: { type: 'string', default: '2000' },
      'max-growth': { type: 'string', default: '0.10' },
      task: { type: 'string', default: 'objectnav' },
      'episode-steps': { type: 'string', default: '200' },
      json: { type: 'string' },
    },
  });
  const int = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${String(v)}`);
    return n;
  };
  const planner = values.planner;
  if (planner !== 'random' && planner !== 'wm') throw new Error(`--planner must be random or wm, got ${String(planner)}`);
  const task = values.task;
  if (task !== 'objectnav' && task !== 'imagenav' && task !== 'pointnav') throw new Error(`--task must be objectnav, imagenav or pointnav`);
  const maxGrowth = Number(values['max-growth']);
  if (!(maxGrowth > 0)) throw new Error('--max-growth must be a positive fraction, e.g. 0.10');
  return {
    steps: int('steps', values.steps, 1),
    planner,
    model: path.resolve(values.model ?? 'models/v4s-builtin-small'),
    sampleEvery: int('sample-every', values['sample-every'], 1),
    warmup: int('warmup', values.warmup, 0),
    maxGrowth,
    task,
    episodeSteps: int('episode-steps', values['episode-steps'], 1),
    ...(values.json !== undefined ? { json: values.json } : {}),
  };
}

function sampleNow(step: number, t0: number): Sample {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { step, seconds: (performance.now() - t0) / 1000, heapMiB: m.heapUsed / MiB, rssMiB: m.rss / MiB, arrayBuffersMiB: m.arrayBuffers / MiB };
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

async function main(): Promise<number> {
  const o = parse();
  if ((globalThis as { gc?: () => void }).gc === undefined) console.warn('soak: run with node --expose-gc (npm run soak does) for exact heap figures');
  const errors: string[] = [];
  process.on('unhandledRejection', (e) => errors.push(`unhandled rejection: ${String(e)}`));

  let model: OnnxWorldModel | undefined;
  if (o.planner === 'wm') model = await loadWorldModel(o.model);
  const makePlanner = (ep: EvaluationEpisode): Planner =>
    model !== undefined ? new WorldModelPlanner(model, { seed: ep.seed ?? 0 }) : new RandomPlanner({ seed: ep.seed ?? 0 });
  const plannerName = model !== undefined ? `wm:${model.info.name}` : 'random';

  const server = await SimulatorServer.start(() => new BuiltinSimulator({ maxSteps: { [o.task]: o.episodeSteps } }), { port: 0 });
  const dir = mkdtempSync(path.join(tmpdir(), 'v4s-soak-'));
  const out = path.join(dir, 'results.jsonl');
  // The soak's own bookkeeping must not grow with the steps (it would show up as the SDK's growth): counters
  // and a latency buffer allocated up front.
  let protocolErrors = 0;
  const connect = async (): Promise<WsEnvironment> => {
    const env = await connectSimulator(server.url, { reconnect: { tries: 5 } });
    env.errors$.subscribe((e) => errors.push(`from the simulator: ${e.code}: ${e.message}`));
    void env.closed.then(() => {
      protocolErrors += env.stats.protocolErrors;
    });
    return env;
  };

  console.log(`soak: ${o.steps} steps of ${plannerName} on the built-in simulator (${o.task}, ≤ ${o.episodeSteps} steps an episode) at ${server.url}`);
  console.log(`      sampling every ${o.sampleEvery} steps after a forced GC; warm-up ${o.warmup} steps; results in ${out}`);
  const t0 = performance.now();
  const samples: Sample[] = [sampleNow(0, t0)];
  const latencies = new Float64Array(o.steps + o.episodeSteps);
  let decisions = 0;
  let steps = 0;
  let episodes = 0;
  let nextSeed = DEV_SEEDS.start;
  const notOk = new Map<string, number>();
  const print = (s: Sample, prev: Sample | undefined): void => {
    const rate = prev !== undefined && s.seconds > prev.seconds ? (s.step - prev.step) / (s.seconds - prev.seconds) : NaN;
    console.log(
      `${String(s.step).padStart(8)}  ${s.seconds.toFixed(1).padStart(7)} s  heap ${s.heapMiB.toFixed(1).padStart(6)} MiB  rss ${s.rssMiB.toFixed(1).padStart(6)} MiB  buffers ${s.arrayBuffersMiB.toFixed(1).padStart(5)} MiB  ${Number.isFinite(rate) ? `${rate.toFixed(0).padStart(5)} steps/s` : ''}`,
    );
  };
  console.log('    step     time    heap (after GC)   rss              array buffers     rate');
  print(samples[0] as Sample, undefined);
  try {
    while (steps < o.steps) {
      const left = Math.ceil((o.steps - steps) / o.episodeSteps);
      const batch = Array.from({ length: Math.min(10, left) }, (): EvaluationEpisode => ({ seed: nextSeed++, task: o.task }));
      const result = await runEvaluation({
        environment: connect,
        planner: makePlanner,
        plannerName,
        episodes: batch,
        out,
        resume: true,
        maxSteps: o.episodeSteps,
        onDecision: (r) => {
          if (decisions < latencies.length) latencies[decisions++] = r.latencyMs;
        },
        onStep: () => {
          steps++;
          if (steps % o.sampleEvery === 0) {
            const s = sampleNow(steps, t0);
            print(s, samples.at(-1));
            samples.push(s);
          }
        },
      });
      for (const r of result.rows) {
        episodes++;
        if (r.status !== 'ok') {
          notOk.set(r.status, (notOk.get(r.status) ?? 0) + 1);
          errors.push(`episode ${r.key}: ${r.status}: ${r.reason ?? ''}`);
        }
      }
    }
  } finally {
    await server.close();
    await model?.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  if (protocolErrors > 0) errors.push(`${protocolErrors} protocol error(s)`);
  rmSync(dir, { recursive: true, force: true });

  const after = samples.filter((s) => s.step >= o.warmup && s.step > 0);
  const base = after.slice(0, Math.max(1, Math.min(3, Math.floor(after.length / 4))));
  const last = after.slice(-3);
  const growth = (key: 'heapMiB' | 'rssMiB'): number => (mean(last.map((s) => s[key])) - mean(base.map((s) => s[key]))) / mean(base.map((s) => s[key]));
  const heapGrowth = after.length >= 2 ? growth('heapMiB') : NaN;
  const rssGrowth = after.length >= 2 ? growth('rssMiB') : NaN;
  const pass = errors.length === 0 && Number.isFinite(heapGrowth) && heapGrowth < o.maxGrowth && rssGrowth < o.maxGrowth;
  const summary = {
    steps,
    episodes,
    seconds,
    stepsPerSecond: steps / seconds,
    decisionLatencyMs: { p50: percentile([...latencies.subarray(0, decisions)], 0.5), p95: percentile([...latencies.subarray(0, decisions)], 0.95) },
    heapGrowthAfterWarmup: heapGrowth,
    rssGrowthAfterWarmup: rssGrowth,
    errors: errors.length,
    pass,
    samples,
  };
  console.log('');
  console.log(`steps ${steps} in ${episodes} episodes, ${seconds.toFixed(1)} s: ${summary.stepsPerSecond.toFixed(0)} steps/s; decision p50 ${summary.decisionLatencyMs.p50.toFixed(2)} ms, p95 ${summary.decisionLatencyMs.p95.toFixed(2)} ms`);
  console.log(
    `growth after warm-up (mean of the first ${base.length} samples from step ${o.warmup} vs the last ${last.length}): heap ${(heapGrowth * 100).toFixed(1)} %, RSS ${(rssGrowth * 100).toFixed(1)} % (limit ${(o.maxGrowth * 100).toFixed(0)} %)`,
  );
  console.log(`errors: ${errors.length}${errors.length > 0 ? `\n  ${errors.slice(0, 20).join('\n  ')}` : ''}`);
  console.log(pass ? 'soak: PASS' : 'soak: FAIL');
  if (o.json !== undefined) writeFileSync(o.json, `${JSON.stringify(summary, null, 2)}\n`);
  return pass ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`soak: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(2);
  },
);
