import assert from 'node:assert/strict';
import { ContextBuffer } from '../src/agent/context-buffer.js';
import { isV4sError } from '../src/errors.js';
import { RandomPlanner, mulberry32 } from '../src/planner/random-planner.js';
import type { PlanningInput } from '../src/planner/planner.js';
import { DEFAULT_TEST_CAPABILITIES, patternFrame } from '../src/testing/index.js';
import type { Capabilities } from '../src/sim-adapters/environment.js';

function input(capabilities: Capabilities = DEFAULT_TEST_CAPABILITIES): PlanningInput {
  const context = new ContextBuffer();
  const observation = { step: 0, rgb: patternFrame(4, 4, 0), info: {} };
  context.push(observation);
  return { observation, context, capabilities, stepsTaken: 0 };
}

async function draw(planner: RandomPlanner, n: number, caps?: Capabilities): Promise<string[]> {
  const names: string[] = [];
  const inp = input(caps);
  for (let i = 0; i < n; i++) {
    const plan = await planner.plan(inp);
    assert.equal(plan.actions.length, 1);
    names.push(plan.actions[0]?.name ?? '');
  }
  return names;
}

describe('RandomPlanner', () => {
  it('mulberry32 is deterministic and uniform on [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 10_000 }, () => a());
    assert.deepEqual(
      Array.from({ length: 5 }, () => b()),
      xs.slice(0, 5),
    );
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
  });

  it('is deterministic for a seed and differs across seeds', async () => {
    const a = await draw(new RandomPlanner({ seed: 7 }), 100);
    const b = await draw(new RandomPlanner({ seed: 7 }), 100);
    const c = await draw(new RandomPlanner({ seed: 8 }), 100);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it('never stops by default and is uniform over the non-stop actions (3,000 draws: 1,000 ± 100 each)', async () => {
    const names = await draw(new RandomPlanner({ seed: 1 }), 3000);
    const counts = new Map<string, number>();
    for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
    assert.deepEqual([...counts.keys()].sort(), ['move_forward', 'turn_left', 'turn_right']);
    for (const [name, c] of counts) assert.ok(Math.abs(c - 1000) <= 100, `${name}: ${c}`);
  });

  it('stops with the configured probability (p = 0.1 over 4,000 draws: 400 ± 60)', async () => {
    const names = await draw(new RandomPlanner({ seed: 5, stopProbability: 0.1 }), 4000);
    const stops = names.filter((n) => n === 'stop').length;
    assert.ok(Math.abs(stops - 400) <= 60, `${stops} stops`);
    const others = names.filter((n) => n !== 'stop');
    for (const a of ['move_forward', 'turn_left', 'turn_right']) {
      const c = others.filter((n) => n === a).length;
      assert.ok(Math.abs(c / others.length - 1 / 3) < 0.04, `${a}: ${c}/${others.length}`);
    }
  });

  it('uses the stop action the capabilities name, and can be restricted to given actions', async () => {
    const caps: Capabilities = { ...DEFAULT_TEST_CAPABILITIES, actions: { forward: { kind: 'move', amount: 0.25 }, halt: { kind: 'stop', amount: 0 } } };
    const names = await draw(new RandomPlanner({ seed: 2, stopProbability: 0.5 }), 200, caps);
    assert.deepEqual([...new Set(names)].sort(), ['forward', 'halt']);
    const only = await draw(new RandomPlanner({ seed: 2, actions: ['turn_left'] }), 20);
    assert.ok(only.every((n) => n === 'turn_left'));
  });

  it('reports its decision and refuses bad options, unknown actions and aborted signals', async () => {
    const plan = await new RandomPlanner().plan(input());
    assert.equal(plan.decision?.chosen, -1);
    assert.equal(plan.decision?.reason, 'uniform over 3 actions');
    assert.throws(() => new RandomPlanner({ stopProbability: 1.5 }), (e: unknown) => isV4sError(e, 'E_CONFIG'));
    assert.throws(() => new RandomPlanner({ seed: 0.5 }), (e: unknown) => isV4sError(e, 'E_CONFIG'));
    await assert.rejects(new RandomPlanner({ actions: ['jump'] }).plan(input()), (e: unknown) => isV4sError(e, 'E_UNKNOWN_ACTION'));
    const onlyStop: Capabilities = { ...DEFAULT_TEST_CAPABILITIES, actions: { stop: { kind: 'stop', amount: 0 } } };
    await assert.rejects(new RandomPlanner().plan(input(onlyStop)), (e: unknown) => isV4sError(e, 'E_UNKNOWN_ACTION'));
    await assert.rejects(new RandomPlanner().plan(input(), AbortSignal.abort(new Error('gone'))), /gone/);
  });
});
