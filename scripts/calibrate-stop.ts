/**
 * Calibrate the world-model planner's ObjectNav stop thresholds for a model package's learned
 * `grounding_current` maps, on DEV scenes (never evaluation seeds), and optionally write them into the
 * package's manifest (`calibration.stop`; the planner reads them through `WorldModelInfo.stopCalibration`).
 *
 * Views:
 * - **approaches**: for each instance of the episode's goal category, from up to 8 directions, the agent starts
 *   `--start` metres from the instance's edge facing it and moves forward until it collides or is 0.2 m away;
 * - **negatives**: `--negatives` random free poses per scene (any yaw), to measure false stops.
 * Each view is labelled with the simulator's own ObjectNav success test (`objectGoalReached`: an instance of
 * the goal category within 1 m covering ≥ 1 % of the view) and grounded by the model (the same call the
 * no-imagination ablation uses: one candidate, one sampler step).
 *
 * A grid search over the "reached" rule (area ≥ a, confidence ≥ c, bottom ≥ b) keeps the rule with the most
 * approaches whose FIRST passing view is a success, among rules whose first passes are successes at least
 * `--precision` (0.9) of the time and that pass on at most `--false-rate` (0: none) of negative views that are
 * not successes. The "near" rule gets the same area and bottom.
 *
 * Usage: npx tsx scripts/calibrate-stop.ts --model models/v4s-builtin-small [--scenes 40] [--write]
 */
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { groundingStats, type GroundingStats } from '../src/planner/scorers.js';
import { objectGoalReached } from '../src/sim-adapters/builtin/tasks.js';
import { BuiltinSimulator } from '../src/sim-adapters/builtin/simulator.js';
import { CATEGORIES, isFreeCircle, mulberry32, type Scene } from '../src/sim-adapters/builtin/scene.js';
import { renderView } from '../src/sim-adapters/builtin/render.js';
import { DEV_SEEDS } from '../src/sim-adapters/builtin/seeds.js';
import { loadWorldModel } from '../src/worldmodel/onnx-world-model.js';
import { currentViewGrounder } from '../src/worldmodel/repeat-last-world-model.js';

interface View {
  readonly stats: GroundingStats;
  readonly success: boolean;
}

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/v4s-builtin-small' },
    scenes: { type: 'string', default: '40' },
    start: { type: 'string', default: '3' },
    negatives: { type: 'string', default: '40' },
    precision: { type: 'string', default: '0.9' },
    'false-rate': { type: 'string', default: '0' },
    write: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const scenes = Number(values.scenes);
const startDist = Number(values.start);
const negatives = Number(values.negatives);
const minPrecision = Number(values.precision);
const maxFalse = Number(values['false-rate']);
if (![scenes, startDist, negatives, minPrecision, maxFalse].every(Number.isFinite) || scenes < 1) {
  console.error('calibrate-stop: --scenes, --start, --negatives, --precision and --false-rate must be numbers');
  process.exit(2);
}

const model = await loadWorldModel(values.model, { onWarning: (m) => console.error(`warning: ${m}`) });
const ground = currentViewGrounder(model);
const sim = new BuiltinSimulator();
const RADIUS = 0.18;
const approaches: View[][] = [];
const negativeViews: View[] = [];
const t0 = Date.now();

/** Render the view at a pose of the current scene (as the simulator does) and ground the goal category in it. */
async function viewAt(scene: Scene, x: number, z: number, yaw: number, category: number): Promise<View> {
  const v = renderView(scene, { x, z, yaw }, 64, 64, { hfov: 90 });
  const map = await ground(v.frame, CATEGORIES[category - 1] as string);
  if (map === undefined) throw new Error(`model ${model.info.name} gives no current-view grounding`);
  return { stats: groundingStats(map), success: objectGoalReached(scene, { x, z, yaw }, category, v.instance) };
}

for (let i = 0; i < scenes; i++) {
  const seed = DEV_SEEDS.start + i;
  sim.reset({ seed, task: 'objectnav' });
  const scene = sim.scene;
  const category = sim.episode?.category;
  if (scene === undefined || category === undefined) continue;
  for (const o of scene.objects.filter((ob) => ob.category === category)) {
    for (let d = 0; d < 8; d++) {
      const th = (d * Math.PI) / 4;
      const r0 = o.radius + startDist;
      let x = o.x + Math.cos(th) * r0;
      let z = o.z + Math.sin(th) * r0;
      if (!isFreeCircle(scene, x, z, RADIUS)) continue;
      // forward is (−sin yaw, −cos yaw): face the instance
      const yaw = Math.atan2(-(o.x - x), -(o.z - z));
      const seq: View[] = [];
      for (let s = 0; s < 24; s++) {
        const v = await viewAt(scene, x, z, yaw, category);
        seq.push(v);
        const nx = x - Math.sin(yaw) * 0.25;
        const nz = z - Math.cos(yaw) * 0.25;
        if (Math.hypot(nx - o.x, nz - o.z) - o.radius < 0.2 || !isFreeCircle(scene, nx, nz, RADIUS)) break;
        x = nx;
        z = nz;
      }
      if (seq.length > 0) approaches.push(seq);
    }
  }
  const rnd = mulberry32(seed ^ 0x5eed);
  let tries = 0;
  for (let n = 0; n < negatives && tries < negatives * 50; tries++) {
    const x = rnd() * scene.cols * scene.cellSize;
    const z = rnd() * scene.rows * scene.cellSize;
    if (!isFreeCircle(scene, x, z, RADIUS)) continue;
    negativeViews.push(await viewAt(scene, x, z, (rnd() * 2 - 1) * Math.PI, category));
    n++;
  }
  process.stderr.write(`\rscene ${i + 1}/${scenes}: ${approaches.length} approaches, ${negativeViews.length} random views, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}
process.stderr.write('\n');
await model.dispose();

interface Rule {
  readonly objectArea: number;
  readonly objectConfidence: number;
  readonly objectBottom: number;
}
const passes = (r: Rule, s: GroundingStats): boolean => s.area >= r.objectArea && s.confidence >= r.objectConfidence && s.bottom >= r.objectBottom;

function judge(r: Rule): { fired: number; good: number; precision: number; falseRate: number; coverage: number } {
  let fired = 0;
  let good = 0;
  for (const seq of approaches) {
    const first = seq.find((v) => passes(r, v.stats));
    if (first === undefined) continue;
    fired++;
    if (first.success) good++;
  }
  const neg = negativeViews.filter((v) => !v.success);
  const falseRate = neg.length > 0 ? neg.filter((v) => passes(r, v.stats)).length / neg.length : 0;
  const reachable = approaches.filter((seq) => seq.some((v) => v.success)).length;
  return { fired, good, precision: fired > 0 ? good / fired : 0, falseRate, coverage: reachable > 0 ? good / reachable : 0 };
}

const grid: Rule[] = [];
for (const a of [0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12]) {
  for (const c of [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]) {
    for (const b of [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) grid.push({ objectArea: a, objectConfidence: c, objectBottom: b });
  }
}
let best: { rule: Rule; j: ReturnType<typeof judge> } | undefined;
for (const rule of grid) {
  const j = judge(rule);
  if (j.precision < minPrecision || j.falseRate > maxFalse) continue;
  if (best === undefined || j.good > best.j.good || (j.good === best.j.good && j.precision > best.j.precision)) best = { rule, j };
}
const defaults = judge({ objectArea: 0.02, objectConfidence: 0.5, objectBottom: 0.9 });
const reachable = approaches.filter((seq) => seq.some((v) => v.success)).length;
const summary = {
  model: values.model,
  seeds: `${DEV_SEEDS.start}..${DEV_SEEDS.start + scenes - 1} (dev)`,
  approaches: approaches.length,
  approachesReachingSuccess: reachable,
  views: approaches.reduce((n, s) => n + s.length, 0),
  randomViews: negativeViews.length,
  defaultsOnThisModel: defaults,
  chosen: best ?? null,
  seconds: Math.round((Date.now() - t0) / 1000),
};
console.log(JSON.stringify(summary, null, 2));
if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(summary, null, 2) + '\n');
if (best === undefined) {
  console.error(`no rule reaches precision ≥ ${minPrecision} with false rate ≤ ${maxFalse}: nothing written`);
  process.exit(1);
}
if (values.write) {
  const file = path.join(values.model, 'manifest.json');
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const r = best.rule;
  manifest['calibration'] = {
    method:
      `scripts/calibrate-stop.ts on dev seeds ${summary.seeds}: ${summary.approaches} straight approaches, ${summary.randomViews} random views; ` +
      `first pass a success in ${best.j.good}/${best.j.fired} approaches (${(100 * best.j.precision).toFixed(1)} %), ` +
      `false passes on ${(100 * best.j.falseRate).toFixed(2)} % of random non-success views`,
    stop: {
      objectArea: r.objectArea,
      objectConfidence: r.objectConfidence,
      objectBottom: r.objectBottom,
      objectNearArea: r.objectArea,
      objectNearBottom: r.objectBottom,
    },
  };
  writeFileSync(file + '.tmp', JSON.stringify(manifest, null, 2) + '\n');
  renameSync(file + '.tmp', file);
  console.error(`wrote calibration.stop into ${file}`);
}
