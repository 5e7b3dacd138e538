/**
 * Example 02: ObjectNav with the world-model planner and the shipped model package: each decision imagines
 * every candidate's future with the video world model, scores the imagined views (grounding of the goal
 * category, novelty, collision risk), executes the best candidate's first action, and re-plans.
 *
 * Run: `node --import tsx examples/02-objectnav-world-model.ts [model-dir] [max-steps]`
 * (default: the shipped models/v4s-builtin-small, 8 steps). In your project, import from 'v4s-nav'.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BuiltinSimulator, SimulatorServer, WorldModelPlanner, checkStepSizes, connectSimulator, loadWorldModel, runEpisode } from '../src/index.js';

const modelDir = process.argv[2] ?? fileURLToPath(new URL('../models/v4s-builtin-small', import.meta.url));
const maxSteps = Number(process.argv[3] ?? 8);
if (!existsSync(`${modelDir}/manifest.json`)) {
  console.log(`no model package at ${modelDir}: train one (training/README.md) or pass its folder as the first argument`);
  process.exit(0);
}

const server = await SimulatorServer.start(() => new BuiltinSimulator(), { port: 0 });
const env = await connectSimulator(server.url);
const model = await loadWorldModel(modelDir);
try {
  // Refuse to plan with a model trained on other step sizes than the simulator's (E_MODEL_STEP_SIZE).
  checkStepSizes(model.info, env.capabilities);
  const planner = new WorldModelPlanner(model, { candidates: { kind: 'enumerate', max: 8 }, actionsPerPlan: 1, seed: 1 });
  console.log(`model ${model.info.name}: ${model.info.resolution.width}×${model.info.resolution.height}, horizon ${model.info.horizon}, up to ${model.info.maxContext} context frames`);
  const trace = await runEpisode(env, planner, {
    reset: { seed: 200001, task: 'objectnav' },
    maxSteps,
    onDecision: (record) => {
      const d = record.decision;
      const best = d !== undefined && d.chosen >= 0 ? d.candidates[d.chosen] : undefined;
      const imagined = d?.candidates.reduce((n, c) => n + (c.rollout?.frames.length ?? 0), 0) ?? 0;
      console.log(
        `step ${String(record.step).padStart(2)}: ${d?.reason ?? '?'} → ${record.actions.map((a) => a.name).join(', ')}` +
          `${best !== undefined ? ` (best of ${d?.candidates.length}: [${best.instruction.actions.join(' ')}], score ${best.score.toFixed(3)})` : ''}` +
          ` · ${imagined} imagined frames · ${record.latencyMs.toFixed(0)} ms`,
      );
    },
  });
  console.log(`goal: find a ${trace.goal?.category ?? '?'} · ${trace.stepsTaken} steps (${trace.endReason}) · success ${trace.final.info.success === true}`);
} finally {
  await model.dispose();
  await env.close();
  await server.close();
}
