/**
 * Bench section 6: event-loop lag in the agent while plans are computed. The built-in simulator runs behind a
 * SimulatorServer in this process, the agent (`runEpisode`) steps it over a real loopback WebSocket and plans
 * with the `WorldModelPlanner` on a model package (8 sampled candidates, 8 Euler steps by default). Lag is
 * measured two ways over the whole episode: `monitorEventLoopDelay` (libuv's own histogram) and a 5 ms
 * `setInterval` ticker's lateness (what a timer, a WebSocket ping or an incoming observation waits).
 * Compared: the model in process (`loadWorldModel`: onnxruntime-node's session.run runs on this thread) and in
 * a worker thread (`loadWorkerWorldModel`). Target: ≤ 20 ms while planning.
 *
 * Run: npx tsx bench/event-loop.ts [modelDir] [--steps 12]
 */
import path from 'node:path';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { runEpisode } from '../src/agent/agent.js';
import type { Planner } from '../src/planner/planner.js';
import { WorldModelPlanner } from '../src/planner/world-model-planner.js';
import { BuiltinSimulator } from '../src/sim-adapters/builtin/simulator.js';
import { connectSimulator } from '../src/sim-adapters/ws-client.js';
import { SimulatorServer } from '../src/sim-adapters/ws-server.js';
import type { LoadWorldModelOptions } from '../src/worldmodel/onnx-world-model.js';
import { openModel, type RunMode } from './decision.js';
import { SHIPPED_MODEL, quantile, table } from './util.js';

export interface EventLoopRow {
  readonly mode: RunMode;
  readonly label: string;
  readonly agentSteps: number;
  readonly decisions: number;
  /** imagine() calls the planner made (look-around decisions make none). */
  readonly imagineCalls: number;
  readonly meanImagineMs: number;
  /** Longest event-loop delay libuv saw (monitorEventLoopDelay, 1 ms resolution), ms. */
  readonly maxLagMs: number;
  readonly p99LagMs: number;
  /** Longest lateness of a 5 ms interval timer, ms. */
  readonly tickerMaxLateMs: number;
  readonly tickerP99LateMs: number;
  readonly wallS: number;
  /** Longest garbage-collection pause on this thread during the episode, ms (PerformanceObserver 'gc'). */
  readonly maxGcMs: number;
  /** Longest planner scoring phase: plan() time minus its imagine() call, ms (main-thread work). */
  readonly maxPlanOutsideImagineMs: number;
}

/** Where and how the model runs in one measured episode. */
export interface EventLoopVariant {
  readonly label: string;
  readonly mode: RunMode;
  readonly options?: LoadWorldModelOptions;
}

export interface EventLoopOptions {
  readonly variants?: readonly EventLoopVariant[];
  /** Agent steps per episode (default 12). */
  readonly steps?: number;
  readonly candidates?: number;
  readonly samplerSteps?: number;
  readonly threads?: number;
  readonly log?: (line: string) => void;
}

/** Run one episode per mode and measure the lag. */
export async function benchEventLoop(modelDir: string = SHIPPED_MODEL, options: EventLoopOptions = {}): Promise<EventLoopRow[]> {
  const rows: EventLoopRow[] = [];
  const log = options.log ?? ((l: string) => console.log(l));
  const variants: readonly EventLoopVariant[] = options.variants ?? [
    { label: 'in process', mode: 'in-process' },
    { label: 'worker thread', mode: 'worker' },
    { label: 'worker, threads spinning', mode: 'worker', options: { threadSpinning: true } },
  ];
  for (const { label, mode, options: loadOptions } of variants) {
    const wm = await openModel(modelDir, mode, { ...(options.threads !== undefined ? { threads: options.threads } : {}), ...loadOptions });
    const { width, height } = wm.info.resolution;
    const server = await SimulatorServer.start(() => new BuiltinSimulator({ width, height }), { port: 0 });
    const env = await connectSimulator(server.url, { encoding: 'raw' });
    try {
      const planner = new WorldModelPlanner(wm, {
        candidates: { kind: 'sample', count: options.candidates ?? 8 },
        sampler: { kind: 'euler', steps: options.samplerSteps ?? 8 },
        seed: 1,
      });
      // warm the model (first-run allocations are not the steady state)
      await runEpisode(env, planner, { reset: { seed: 200_001, task: 'objectnav' }, maxSteps: 2 });
      wm.resetStats();
      const histogram = monitorEventLoopDelay({ resolution: 1 });
      const late: number[] = [];
      let expected = performance.now() + 5;
      const ticker = setInterval(() => {
        const now = performance.now();
        late.push(Math.max(0, now - expected));
        expected = now + 5;
      }, 5);
      let maxGc = 0;
      const gcObserver = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) maxGc = Math.max(maxGc, e.duration);
      });
      gcObserver.observe({ entryTypes: ['gc'] });
      let maxOutside = 0;
      const timedPlanner: Planner = {
        specificationVersion: planner.specificationVersion,
        name: planner.name,
        reset: (goal) => planner.reset(goal),
        plan: async (input, signal) => {
          const before = wm.stats().imagineMs;
          const t = performance.now();
          const p = await planner.plan(input, signal);
          const imagineWall = wm.stats().imagineMs - before;
          maxOutside = Math.max(maxOutside, performance.now() - t - imagineWall);
          return p;
        },
      };
      histogram.enable();
      const t0 = performance.now();
      const trace = await runEpisode(env, timedPlanner, { reset: { seed: 200_002, task: 'objectnav' }, maxSteps: options.steps ?? 12 });
      gcObserver.disconnect();
      const wallS = (performance.now() - t0) / 1000;
      histogram.disable();
      clearInterval(ticker);
      const st = wm.stats();
      rows.push({
        mode,
        label,
        agentSteps: trace.stepsTaken,
        decisions: trace.decisions.length,
        imagineCalls: st.imagineCalls,
        meanImagineMs: st.imagineCalls > 0 ? st.imagineMs / st.imagineCalls : 0,
        maxLagMs: histogram.max / 1e6,
        p99LagMs: histogram.percentile(99) / 1e6,
        tickerMaxLateMs: late.length > 0 ? Math.max(...late) : 0,
        tickerP99LateMs: quantile(late, 0.99),
        wallS,
        maxGcMs: maxGc,
        maxPlanOutsideImagineMs: maxOutside,
      });
    } finally {
      await env.close();
      await server.close();
      await wm.dispose();
    }
  }
  log('event-loop lag during an ObjectNav episode (agent + built-in simulator over loopback WebSocket, same process)');
  table(
    ['model runs', 'steps', 'decisions', 'imagine calls', 'mean imagine ms', 'max lag ms', 'p99 lag ms', 'timer max late ms', 'timer p99 late ms', 'max GC ms', 'max plan − imagine ms', 'wall s'],
    rows.map((r) => [r.label, r.agentSteps, r.decisions, r.imagineCalls, r.meanImagineMs, r.maxLagMs, r.p99LagMs, r.tickerMaxLateMs, r.tickerP99LateMs, r.maxGcMs, r.maxPlanOutsideImagineMs, r.wallS]),
    log,
  );
  return rows;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const dir = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a));
  const i = args.indexOf('--steps');
  benchEventLoop(dir === undefined ? SHIPPED_MODEL : path.resolve(dir), i >= 0 ? { steps: Number(args[i + 1]) } : {}).catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
