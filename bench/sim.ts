/**
 * Built-in simulator speed: rendered frames per second on one core, for `renderView` alone and for
 * `BuiltinSimulator.step` (render + physics + geodesic info), at 64×64 and 256×256.
 * Run: npx tsx bench/sim.ts
 */
import { fileURLToPath } from 'node:url';
import { BuiltinSimulator } from '../src/sim-adapters/builtin/simulator.js';
import { allocateView, renderView } from '../src/sim-adapters/builtin/render.js';
import { generateScene } from '../src/sim-adapters/builtin/scene.js';

export interface SimBenchRow {
  readonly size: number;
  /** renderView into preallocated buffers. */
  readonly renderFps: number;
  /** Full simulator steps (fresh frame buffers, physics, info). */
  readonly stepFps: number;
}

function timeFor(seconds: number, fn: () => void): number {
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < seconds * 1000) {
    for (let k = 0; k < 50; k++) fn();
    n += 50;
    t = performance.now();
  }
  return n / ((t - t0) / 1000);
}

/** Measure frames/s at each size (default 64 and 256), about `seconds` per measurement. */
export function benchSimulator(sizes: readonly number[] = [64, 256], seconds = 1.5): SimBenchRow[] {
  const rows: SimBenchRow[] = [];
  const scene = generateScene(200_000);
  for (const size of sizes) {
    const buf = allocateView(size, size);
    let yaw = 0;
    const x = (scene.rooms[0]?.i0 ?? 1) * scene.cellSize + 1;
    const z = (scene.rooms[0]?.j0 ?? 1) * scene.cellSize + 1;
    timeFor(0.3, () => renderView(scene, { x, z, yaw: (yaw += 0.1) }, size, size, { into: buf }));
    const renderFps = timeFor(seconds, () => renderView(scene, { x, z, yaw: (yaw += 0.1) }, size, size, { into: buf }));
    const sim = new BuiltinSimulator({ width: size, height: size, maxSteps: { objectnav: 1_000_000 } });
    sim.reset({ seed: 200_000 });
    const names = ['move_forward', 'move_forward', 'turn_left', 'move_forward', 'turn_right', 'move_forward'];
    let i = 0;
    const stepFps = timeFor(seconds, () => {
      sim.step({ name: names[i++ % names.length] ?? 'turn_left' });
    });
    rows.push({ size, renderFps, stepFps });
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const r of benchSimulator()) {
    console.log(`builtin sim ${r.size}x${r.size}: render ${r.renderFps.toFixed(0)} frames/s, step ${r.stepFps.toFixed(0)} steps/s (1 core)`);
  }
}
