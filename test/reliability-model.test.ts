/**
 * Issue 8 §1 (the model): a real ONNX model that outputs NaN (fixture `nan`, a real onnxruntime session)
 * behind the real WorldModelPlanner. The runtime names the fault (E_MODEL_OUTPUT, tensor, step, branch); the
 * planner never acts on it: it falls back to the look-around turn (`turn_left`, which cannot collide) with
 * reason `fallback`, and a whole episode runs without an error and without a single move.
 * Load-time faults (missing or corrupt file, manifest that does not match the ONNX graph) are refused with
 * E_MODEL_FILE / E_MODEL_MANIFEST / E_MODEL_TENSOR naming the file or tensor: worldmodel-onnx.test.ts, and
 * the last test here shows the error a user sees.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runEpisode } from '../src/agent/agent.js';
import { ContextBuffer } from '../src/agent/context-buffer.js';
import { isV4sError } from '../src/errors.js';
import { WorldModelPlanner } from '../src/planner/world-model-planner.js';
import { ScriptedEnvironment } from '../src/testing/index.js';
import { loadWorldModel, type OnnxWorldModel } from '../src/worldmodel/onnx-world-model.js';
import { cleanupTemps, fixtureCopy, fixtureDir } from './worldmodel-helpers.js';

describe('reliability: a faulty model behind the world-model planner', function () {
  this.timeout(30_000);
  let model: OnnxWorldModel;
  before(async () => {
    model = await loadWorldModel(fixtureDir('nan'), { threads: 1 });
  });
  after(async () => {
    await model.dispose();
    await cleanupTemps();
  });

  it('NaN in the model output: imagine() names it, the planner falls back to a look-around turn instead of acting', async () => {
    const env = new ScriptedEnvironment({ goal: { task: 'objectnav', category: 'chair' } });
    const planner = new WorldModelPlanner(model, { actionsPerPlan: 1 });
    const { observation, goal } = await env.reset({ seed: 1 });
    planner.reset(goal);
    const context = new ContextBuffer();
    context.push(observation);
    const plan = await planner.plan({ observation, context, capabilities: env.capabilities, stepsTaken: 0, ...(goal !== undefined ? { goal } : {}) });
    assert.deepEqual(plan.actions, [{ name: 'turn_left' }]);
    assert.equal(plan.decision?.reason, 'fallback');
    assert.match(plan.decision?.detail ?? '', /E_MODEL_OUTPUT/);
    assert.match(plan.decision?.detail ?? '', /output "pred"/);
    assert.match(plan.decision?.detail ?? '', /NaN/);
  });

  it('a whole episode with the NaN model: no error, every decision a fallback, the agent never moves', async () => {
    const env = new ScriptedEnvironment({ goal: { task: 'objectnav', category: 'chair' } });
    const trace = await runEpisode(env, new WorldModelPlanner(model), { reset: { seed: 2 }, maxSteps: 12 });
    assert.equal(trace.endReason, 'max-steps');
    assert.equal(trace.decisions.length, 12);
    assert.ok(trace.decisions.every((d) => d.decision?.reason === 'fallback'), 'every decision fell back');
    assert.deepEqual(new Set(trace.actions), new Set(['turn_left']));
    assert.deepEqual(trace.final.pose?.position, trace.initial.pose?.position, 'not one move on garbage');
    assert.equal(trace.collisions, 0);
  });

  it('a corrupt model file is refused at load with E_MODEL_FILE naming it (no planner is built on it)', async () => {
    const dir = await fixtureCopy('linear');
    const file = path.join(dir, 'denoiser.onnx');
    await writeFile(file, Buffer.from('this is not an ONNX graph'));
    await assert.rejects(loadWorldModel(dir), (e: unknown) => isV4sError(e, 'E_MODEL_FILE') && e.message.includes(file));
  });
});
