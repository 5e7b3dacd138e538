/**
 * Example 03: a custom scorer. Scorers read the imagined views (and the model's grounding output) of every
 * candidate and return a score per candidate; they compose with weights. Here a "keep the goal centred" term
 * is added to the built-in object-goal scorer.
 *
 * The world model is the simulator oracle (true futures and masks, over the same WebSocket), so the example
 * runs in seconds without a model package; swap in `await loadWorldModel('models/v4s-builtin-small')` for
 * the learned one. Run: `node --import tsx examples/03-custom-scorer.ts`. In your project, import from 'v4s-nav'.
 */
import {
  BuiltinSimulator,
  SimulatorServer,
  SimulatorWorldModel,
  WorldModelPlanner,
  composeScorers,
  connectSimulator,
  objectGoalScorer,
  runEpisode,
  type GroundingMap,
  type Scorer,
} from '../src/index.js';

/** 1 when the goal's grounding mass in the last imagined frame is centred horizontally, 0 at the edges or when absent. */
function centredness(map: GroundingMap | undefined): number {
  if (map === undefined) return 0;
  let mass = 0;
  let mx = 0;
  for (let i = 0; i < map.data.length; i++) {
    const p = map.data[i] ?? 0;
    mass += p;
    mx += p * (((i % map.width) + 0.5) / map.width);
  }
  if (mass <= 0) return 0;
  return (1 - 2 * Math.abs(mx / mass - 0.5)) * Math.min(1, (mass / map.data.length) * 20);
}

const centreGoal: Scorer = {
  name: 'centre',
  score: async (rollouts) => rollouts.map((r) => ({ score: centredness(r.grounding?.[r.grounding.length - 1]), terms: {} })),
};

const server = await SimulatorServer.start(() => new BuiltinSimulator({ oracle: true }), { port: 0, oracle: true });
const env = await connectSimulator(server.url);
try {
  const oracle = new SimulatorWorldModel(env, { resolution: { width: 64, height: 64 }, grounding: { width: 8, height: 8 } });
  const goalScorer = composeScorers([{ scorer: objectGoalScorer(), weight: 1 }, { scorer: centreGoal, weight: 0.3 }], 'goal+centre');
  const planner = new WorldModelPlanner(oracle, { goalScorer, candidates: { kind: 'enumerate', max: 8 } });
  const trace = await runEpisode(env, planner, {
    reset: { seed: 200000, task: 'objectnav' },
    maxSteps: 60,
    onDecision: (record) => {
      const d = record.decision;
      const c = d !== undefined && d.chosen >= 0 ? d.candidates[d.chosen] : undefined;
      if (c !== undefined && d?.reason === 'goal') {
        console.log(`step ${String(record.step).padStart(2)}: ${record.actions.map((a) => a.name).join(', ')} · goal ${c.terms['goal']?.toFixed(3)} (centre term ${c.terms['goal.centre']?.toFixed(3)})`);
      }
    },
  });
  console.log(`goal: find a ${trace.goal?.category ?? '?'} · ${trace.stepsTaken} steps (${trace.endReason}) · success ${trace.final.info.success === true} · final distance ${Number(trace.final.info.distanceToGoal).toFixed(2)} m`);
} finally {
  await env.close();
  await server.close();
}
