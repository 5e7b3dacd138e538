/**
 * Protocol round-trip benchmark: the built-in simulator behind a SimulatorServer, an agent stepping it over a
 * real loopback WebSocket (lockstep: one step in flight). For raw RGB and PNG at 64×64 and 256×256 it prints
 * steps/s, round-trip p50/p95, bytes per observation, and the simulator's own in-process step time, so the
 * protocol's share is visible.
 *
 * Run: `npx tsx bench/protocol.ts` (or import { benchProtocol } from bench/run.ts).
 */
import { pathToFileURL } from 'node:url';
import { BuiltinSimulator } from '../src/sim-adapters/builtin/simulator.js';
import type { ImageEncoding } from '../src/sim-adapters/environment.js';
import { encodeObservationMessage } from '../src/sim-adapters/protocol/convert.js';
import { connectSimulator } from '../src/sim-adapters/ws-client.js';
import { SimulatorServer } from '../src/sim-adapters/ws-server.js';
import type { Action } from '../src/types.js';

/** One measured configuration. */
export interface ProtocolBenchRow {
  readonly size: number;
  readonly encoding: ImageEncoding;
  readonly steps: number;
  readonly stepsPerSecond: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  /** Bytes of one observation message on the wire (median). */
  readonly bytesPerObservation: number;
  /** The simulator's own step time in-process (no protocol), median ms. */
  readonly simStepMs: number;
}

export interface ProtocolBenchOptions {
  readonly sizes?: readonly number[];
  readonly encodings?: readonly ImageEncoding[];
  /** Wall time per configuration, ms (default 2000). */
  readonly durationMs?: number;
  /** Print the table (default true). */
  readonly print?: boolean;
}

const CYCLE: Action[] = [{ name: 'move_forward' }, { name: 'turn_left' }, { name: 'move_forward' }, { name: 'move_forward' }, { name: 'turn_right' }];
const SEED = 200_000;

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
  return sorted[i] ?? Number.NaN;
}

async function simOnly(size: number, durationMs: number): Promise<number> {
  const sim = new BuiltinSimulator({ width: size, height: size });
  sim.reset({ seed: SEED });
  const times: number[] = [];
  const end = performance.now() + durationMs / 4;
  let k = 0;
  while (performance.now() < end) {
    const t = performance.now();
    const r = sim.step(CYCLE[k++ % CYCLE.length] ?? { name: 'turn_left' });
    times.push(performance.now() - t);
    if (r.terminated || r.truncated) sim.reset({ seed: SEED });
  }
  return quantile(times.sort((a, b) => a - b), 0.5);
}

async function bytesOf(size: number, encoding: ImageEncoding): Promise<number> {
  const sim = new BuiltinSimulator({ width: size, height: size });
  sim.reset({ seed: SEED });
  const r = sim.step({ name: 'move_forward' });
  return (await encodeObservationMessage(1, r, { encoding })).byteLength;
}

/** Runs the benchmark and returns (and by default prints) one row per size × encoding. */
export async function benchProtocol(options: ProtocolBenchOptions = {}): Promise<ProtocolBenchRow[]> {
  const sizes = options.sizes ?? [64, 256];
  const encodings = options.encodings ?? ['raw', 'png'];
  const durationMs = options.durationMs ?? 2000;
  const rows: ProtocolBenchRow[] = [];
  for (const size of sizes) {
    const server = await SimulatorServer.start(() => new BuiltinSimulator({ width: size, height: size }), { port: 0 });
    try {
      const simStepMs = await simOnly(size, durationMs);
      for (const encoding of encodings) {
        const env = await connectSimulator(server.url, { encoding });
        try {
          await env.reset({ seed: SEED });
          for (let i = 0; i < 20; i++) {
            const r = await env.step(CYCLE[i % CYCLE.length] ?? { name: 'turn_left' });
            if (r.terminated || r.truncated) await env.reset({ seed: SEED });
          }
          const rtts: number[] = [];
          let active = 0;
          const end = performance.now() + durationMs;
          let k = 0;
          while (performance.now() < end) {
            const t = performance.now();
            const r = await env.step(CYCLE[k++ % CYCLE.length] ?? { name: 'turn_left' });
            const dt = performance.now() - t;
            rtts.push(dt);
            active += dt;
            if (r.terminated || r.truncated) await env.reset({ seed: SEED }); // not timed
          }
          rtts.sort((a, b) => a - b);
          rows.push({
            size,
            encoding,
            steps: rtts.length,
            stepsPerSecond: rtts.length / (active / 1000),
            p50Ms: quantile(rtts, 0.5),
            p95Ms: quantile(rtts, 0.95),
            bytesPerObservation: await bytesOf(size, encoding),
            simStepMs,
          });
        } finally {
          await env.close();
        }
      }
    } finally {
      await server.close();
    }
  }
  if (options.print !== false) {
    console.log('protocol v4s.sim.v1 round trip over loopback (built-in simulator, lockstep, one step in flight)');
    console.log('size      encoding  steps/s   p50 ms   p95 ms   bytes/obs   sim-only step ms');
    for (const r of rows) {
      console.log(
        `${`${r.size}×${r.size}`.padEnd(9)} ${r.encoding.padEnd(9)} ${r.stepsPerSecond.toFixed(0).padStart(7)}  ${r.p50Ms.toFixed(3).padStart(7)}  ${r.p95Ms
          .toFixed(3)
          .padStart(7)}  ${String(r.bytesPerObservation).padStart(10)}   ${r.simStepMs.toFixed(3).padStart(8)}`,
      );
    }
  }
  return rows;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchProtocol().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
