import assert from 'node:assert/strict';
import { ContextBuffer } from '../src/agent/context-buffer.js';
import { V4sError, isV4sError } from '../src/errors.js';
import type { Plan } from '../src/planner/planner.js';
import { WorldModelPlanner, type WorldModelPlannerOptions } from '../src/planner/world-model-planner.js';
import type { EpisodeGoal } from '../src/sim-adapters/environment.js';
import type { Observation, Pose } from '../src/types.js';
import type { ImagineRequest, Rollout, WorldModel } from '../src/worldmodel/world-model.js';
import { CAPABILITIES, ScriptedWorldModel, blobMap, code, modelInfo, pattern, yawPose, type ScriptedFuture } from './planner-fixtures.js';

const OBJECT_GOAL: EpisodeGoal = { task: 'objectnav', category: 'chair' };

/** Drive a planner with a real ContextBuffer over camera frames (32×32, the model is 16×16). */
class Harness {
  readonly buffer = new ContextBuffer({ capacity: 64 });
  step = 0;
  constructor(
    readonly planner: WorldModelPlanner,
    readonly goal: EpisodeGoal | undefined,
  ) {
    planner.reset(goal);
  }
  observe(extra: Partial<Observation> = {}): Observation {
    const o: Observation = { step: this.step, rgb: pattern(500 + this.step, 32, 32), info: {}, ...extra };
    this.buffer.push(o);
    return o;
  }
  async plan(extra: Partial<Observation> = {}, signal?: AbortSignal): Promise<Plan> {
    const observation = this.observe(extra);
    const plan = await this.planner.plan(
      { observation, context: this.buffer, capabilities: CAPABILITIES, stepsTaken: this.step, ...(this.goal !== undefined ? { goal: this.goal } : {}) },
      signal,
    );
    this.step += plan.actions.length;
    return plan;
  }
}

/** Only candidates whose code starts with `prefix` see the chair (a centred blob growing over the horizon). */
function chairAhead(prefix: string): (i: { actions: readonly string[] }) => ScriptedFuture {
  return (i) => (code(i.actions).startsWith(prefix) ? { grounding: [1, 2, 3, 4].map((k) => blobMap(3, 5, 6 - k, 8, 0.25 * k)) } : {});
}

describe('WorldModelPlanner', () => {
  it('imagines every candidate in one call and picks the one whose rollout shows the goal; diagnostics hold candidates × horizon frames', async () => {
    const wm = new ScriptedWorldModel(chairAhead('RF'));
    const h = new Harness(new WorldModelPlanner(wm, { commitTurns: false }), OBJECT_GOAL);
    const plan = await h.plan();
    assert.equal(wm.requests.length, 1);
    const req = wm.requests[0] as ImagineRequest;
    assert.equal(req.candidates.length, 9);
    for (const c of req.candidates) {
      assert.equal(c.goalCategory, 'chair');
      assert.equal(c.actions.length, 4);
    }
    assert.deepEqual(plan.actions, [{ name: 'turn_right' }]);
    const d = plan.decision;
    assert.ok(d !== undefined);
    assert.equal(d.reason, 'goal');
    assert.equal(d.candidates.length, 9);
    for (const c of d.candidates) {
      assert.equal(c.rollout?.frames.length, 4);
      assert.ok(Number.isFinite(c.score));
      assert.ok('goal' in c.terms && 'safety' in c.terms && 'explore' in c.terms);
    }
    assert.equal(code(d.candidates[d.chosen]?.instruction.actions ?? []), 'RFFF');
    const best = Math.max(...d.candidates.map((c) => c.score));
    assert.equal(d.candidates[d.chosen]?.score, best);
    assert.ok((d.candidates[d.chosen]?.terms['goal'] ?? 0) > 0.3);
  });

  it('commits to a leading turn and the move after it by default; executes actionsPerPlan otherwise', async () => {
    const h = new Harness(new WorldModelPlanner(new ScriptedWorldModel(chairAhead('LLF'))), OBJECT_GOAL);
    assert.deepEqual((await h.plan()).actions.map((a) => a.name), ['turn_left', 'turn_left', 'move_forward']);
    const h2 = new Harness(new WorldModelPlanner(new ScriptedWorldModel(chairAhead('FF')), { actionsPerPlan: 2 }), OBJECT_GOAL);
    assert.deepEqual((await h2.plan()).actions.map((a) => a.name), ['move_forward', 'move_forward']);
  });

  it('passes context with true step indices (newest = current observation), at most maxContext, resized to the model', async () => {
    const wm = new ScriptedWorldModel(chairAhead('F'), modelInfo(16, { maxContext: 4, positionRange: [-10, 4] }));
    const h = new Harness(new WorldModelPlanner(wm, { commitTurns: false }), OBJECT_GOAL);
    for (let i = 0; i < 20; i++) await h.plan();
    const last = wm.requests[wm.requests.length - 1] as ImagineRequest;
    const pos = last.context.positions;
    assert.equal(pos[pos.length - 1], 19);
    assert.ok(pos.length <= 4 && pos.length >= 2, String(pos));
    assert.ok((pos[0] ?? 0) >= 19 - 10, `oldest ${pos[0]} beyond the trained range`);
    for (let i = 1; i < pos.length; i++) assert.ok((pos[i] ?? 0) > (pos[i - 1] ?? 0));
    // Not renumbered 0..K-1.
    assert.notDeepEqual(pos, pos.map((_, i) => i));
    for (const f of last.context.frames) assert.deepEqual([f.width, f.height], [16, 16]);
  });

  it('stops when the current view’s grounding passes the threshold, and not below it', async () => {
    const wm = new ScriptedWorldModel(chairAhead('F'));
    const h = new Harness(new WorldModelPlanner(wm), OBJECT_GOAL);
    wm.currentGrounding = blobMap(3, 5, 5, 8, 0.95); // area 0.089, bottom 0.95
    const stop = await h.plan();
    assert.deepEqual(stop.actions, [{ name: 'stop' }]);
    assert.equal(stop.decision?.reason, 'stop');
    assert.equal(stop.decision?.chosen, -1);
    assert.match(stop.decision?.detail ?? '', /bottom 0\.950/);

    const wm2 = new ScriptedWorldModel(chairAhead('F'));
    wm2.currentGrounding = blobMap(3, 5, 2, 5, 0.95); // seen, but far: nothing in the bottom row
    const go = await new Harness(new WorldModelPlanner(wm2), OBJECT_GOAL).plan();
    assert.deepEqual(go.actions, [{ name: 'move_forward' }]);
    // Thresholds are options.
    const wm3 = new ScriptedWorldModel(chairAhead('F'));
    wm3.currentGrounding = blobMap(3, 5, 2, 5, 0.95);
    const lenient = await new Harness(new WorldModelPlanner(wm3, { stop: { objectBottom: 0, objectArea: 0.05 } }), OBJECT_GOAL).plan();
    assert.deepEqual(lenient.actions, [{ name: 'stop' }]);
  });

  it('uses the model’s own stop calibration (manifest calibration.stop) over the defaults, and the stop option over both', async () => {
    const far = blobMap(3, 5, 2, 6, 0.6); // confidence 0.6, bottom 0 (rows 2..5 only)
    // Defaults (objectBottom 0.9) do not stop on this view.
    const plain = new ScriptedWorldModel(chairAhead('F'));
    plain.currentGrounding = far;
    assert.notEqual((await new Harness(new WorldModelPlanner(plain), OBJECT_GOAL).plan()).actions[0]?.name, 'stop');
    // A model calibrated to stop without bottom contact does.
    const calibrated = new ScriptedWorldModel(chairAhead('F'), modelInfo(16, { stopCalibration: { objectArea: 0.05, objectConfidence: 0.5, objectBottom: 0, objectNearBottom: 0 } }));
    calibrated.currentGrounding = far;
    const stop = await new Harness(new WorldModelPlanner(calibrated), OBJECT_GOAL).plan();
    assert.deepEqual(stop.actions, [{ name: 'stop' }]);
    // The caller's stop option wins over the calibration.
    const strict = new ScriptedWorldModel(chairAhead('F'), modelInfo(16, { stopCalibration: { objectArea: 0.05, objectConfidence: 0.5, objectBottom: 0, objectNearBottom: 0 } }));
    strict.currentGrounding = far;
    const go = await new Harness(new WorldModelPlanner(strict, { stop: { objectConfidence: 0.9 } }), OBJECT_GOAL).plan();
    assert.notEqual(go.actions[0]?.name, 'stop');
  });

  it('stops near the goal when no candidate imagines a better view of it, after `consecutive` votes', async () => {
    // Bottom contact 0.85 (near, not "reached" at 0.9); every imagined future loses the goal.
    const wm = new ScriptedWorldModel(() => ({}));
    wm.currentGrounding = blobMap(3, 5, 5, 8, 0.85);
    const h = new Harness(new WorldModelPlanner(wm, { stop: { consecutive: 2 } }), OBJECT_GOAL);
    const first = await h.plan();
    assert.notEqual(first.actions[0]?.name, 'stop');
    const second = await h.plan();
    assert.deepEqual(second.actions, [{ name: 'stop' }]);
    assert.match(second.decision?.detail ?? '', /near, and the best candidate's goal score 0\.000/);
    // Disabled with a margin of −Infinity.
    const wm2 = new ScriptedWorldModel(() => ({}));
    wm2.currentGrounding = blobMap(3, 5, 5, 8, 0.85);
    const p = await new Harness(new WorldModelPlanner(wm2, { stop: { objectNoImprovementMargin: -Infinity } }), OBJECT_GOAL).plan();
    assert.notEqual(p.actions[0]?.name, 'stop');
  });

  it('falls back to a turn_left look-around step, never acting on garbage, when imagine() throws or returns too few rollouts', async () => {
    const throwing: WorldModel = {
      specificationVersion: 'v1',
      info: modelInfo(),
      imagine: () => Promise.reject(new V4sError('E_MODEL_OUTPUT', 'output "x0" has NaN at index 17')),
      dispose: () => Promise.resolve(),
    };
    const plan = await new Harness(new WorldModelPlanner(throwing), OBJECT_GOAL).plan();
    assert.deepEqual(plan.actions, [{ name: 'turn_left' }]);
    assert.equal(plan.decision?.reason, 'fallback');
    assert.equal(plan.decision?.chosen, -1);
    assert.match(plan.decision?.detail ?? '', /E_MODEL_OUTPUT.*NaN/);

    const short = new ScriptedWorldModel(() => ({}));
    const truncating: WorldModel = { ...short, specificationVersion: 'v1', info: short.info, imagine: async (r) => (await short.imagine(r)).slice(0, 2), dispose: () => Promise.resolve() };
    const p2 = await new Harness(new WorldModelPlanner(truncating), OBJECT_GOAL).plan();
    assert.equal(p2.decision?.reason, 'fallback');
    assert.match(p2.decision?.detail ?? '', /2 rollouts for 9 candidates/);
  });

  it('explores when nothing scores: a look-around of 12 turns over several plans, then novelty/visitation', async () => {
    const wm = new ScriptedWorldModel(() => ({}));
    const h = new Harness(new WorldModelPlanner(wm, { actionsPerPlan: 2 }), OBJECT_GOAL);
    const reasons: string[] = [];
    const actions: string[] = [];
    for (let i = 0; i < 8; i++) {
      const p = await h.plan();
      reasons.push(p.decision?.reason ?? '');
      actions.push(...p.actions.map((a) => a.name));
    }
    assert.deepEqual(reasons.slice(0, 6), Array.from({ length: 6 }, () => 'look-around'));
    assert.deepEqual(actions.slice(0, 12), Array.from({ length: 12 }, () => 'turn_left'));
    assert.deepEqual(reasons.slice(6), ['explore', 'explore']);
    assert.equal(wm.requests.length, 8, 'it still imagines during the look-around (the goal may appear)');
  });

  it('penalises forward-first candidates after a real collision', async () => {
    const wm = new ScriptedWorldModel(chairAhead('F'));
    const h = new Harness(new WorldModelPlanner(wm), OBJECT_GOAL);
    assert.equal((await h.plan()).actions[0]?.name, 'move_forward');
    const after = await h.plan({ collided: true });
    assert.notEqual(after.actions[0]?.name, 'move_forward');
    const blocked = after.decision?.candidates.filter((c) => c.terms['blocked'] === 1).map((c) => code(c.instruction.actions));
    assert.deepEqual(blocked, ['FFFF']);
  });

  it('PointNav: heads for the goal by dead reckoning from the pose, and stops within 0.3 m', async () => {
    const goal: EpisodeGoal = { task: 'pointnav', position: [0, 0, -2] };
    const h = new Harness(new WorldModelPlanner(new ScriptedWorldModel(() => ({}))), goal);
    const pose: Pose = yawPose(0, 0, 90); // facing −X: the goal is 90° to the right
    const p = await h.plan({ pose });
    assert.equal(p.decision?.reason, 'goal');
    assert.equal(p.actions[0]?.name, 'turn_right');
    const near = await h.plan({ pose: yawPose(0.1, -1.8, 0) });
    assert.deepEqual(near.actions, [{ name: 'stop' }]);
    assert.match(near.decision?.detail ?? '', /0\.224 m/);
  });

  it('ImageNav: stops when the current view matches the goal image', async () => {
    const goalImage = pattern(505, 32, 32); // the frame the harness observes at step 5
    const h = new Harness(new WorldModelPlanner(new ScriptedWorldModel(() => ({}))), { task: 'imagenav', image: goalImage });
    h.step = 5;
    const p = await h.plan();
    assert.deepEqual(p.actions, [{ name: 'stop' }]);
    assert.match(p.decision?.detail ?? '', /similarity to the goal image 1\.000/);
  });

  it('is deterministic for a seed, and CEM imagines once per iteration', async () => {
    const run = async (options: WorldModelPlannerOptions): Promise<string[]> => {
      const wm = new ScriptedWorldModel((i) => (code(i.actions).includes('LF') ? { grounding: [1, 2, 3, 4].map(() => blobMap(2, 4, 4, 7, 0.6)) } : {}));
      const h = new Harness(new WorldModelPlanner(wm, options), OBJECT_GOAL);
      const out: string[] = [];
      for (let i = 0; i < 4; i++) out.push(...(await h.plan()).actions.map((a) => a.name));
      out.push(String(wm.requests.length));
      return out;
    };
    const cem = { candidates: { kind: 'cem', options: { samples: 12, elites: 3, iterations: 3 } }, seed: 5 } as const;
    const a = await run(cem);
    assert.deepEqual(a, await run(cem));
    assert.equal(a[a.length - 1], '12', '4 decisions × 3 CEM iterations');
    const sampled = { candidates: { kind: 'sample', count: 10 }, seed: 2 } as const;
    assert.deepEqual(await run(sampled), await run(sampled));
  });

  it('does not block the event loop: a timer queued before plan() runs before it resolves', async () => {
    const h = new Harness(new WorldModelPlanner(new ScriptedWorldModel(chairAhead('F'))), OBJECT_GOAL);
    let ran = false;
    setImmediate(() => {
      ran = true;
    });
    const plan = await h.plan();
    assert.equal(plan.decision?.reason, 'goal');
    assert.ok(ran);
  });

  it('rejects with the abort reason when its signal is aborted; refuses bad options', async () => {
    const h = new Harness(new WorldModelPlanner(new ScriptedWorldModel(() => ({}))), OBJECT_GOAL);
    const ac = new AbortController();
    ac.abort(new V4sError('E_TIMEOUT', 'too slow'));
    await assert.rejects(h.plan({}, ac.signal), (e: unknown) => isV4sError(e, 'E_TIMEOUT'));
    const wm = new ScriptedWorldModel(() => ({}));
    assert.throws(() => new WorldModelPlanner(wm, { actionsPerPlan: 0 }), (e: unknown) => isV4sError(e, 'E_CONFIG'));
    assert.throws(() => new WorldModelPlanner(wm, { horizon: 5 }), (e: unknown) => isV4sError(e, 'E_CONFIG'));
  });

  it('works with a world model that imagines no change and has no grounding (the no-imagination ablation shape)', async () => {
    const frozen: WorldModel = {
      specificationVersion: 'v1',
      info: modelInfo(16, { grounding: false }),
      imagine: (r: ImagineRequest): Promise<Rollout[]> => {
        const last = r.context.frames[r.context.frames.length - 1];
        if (last === undefined) throw new Error('no context');
        return Promise.resolve(r.candidates.map((instruction) => ({ instruction, frames: [last, last, last, last], timings: { encodeMs: 0, denoiseMs: 0, decodeMs: 0, totalMs: 0 } })));
      },
      dispose: () => Promise.resolve(),
    };
    const h = new Harness(new WorldModelPlanner(frozen, { lookAround: { turns: 0 } }), OBJECT_GOAL);
    const p = await h.plan();
    assert.equal(p.decision?.reason, 'explore');
    // No motion evidence: no collision risk inferred, so going forward is not ruled out.
    for (const c of p.decision?.candidates ?? []) assert.equal(c.terms['safety'], 0);
    assert.equal(p.actions[0]?.name, 'move_forward');
  });
});
