/**
 * Example 01: a scripted agent on the built-in simulator, over a real WebSocket (no world model).
 * Run: `node --import tsx examples/01-scripted-agent.ts`. In your project, import from 'v4s-nav'.
 */
import { BuiltinSimulator, PLANNER_SPEC_VERSION, SimulatorServer, connectSimulator, episodeMetrics, runEpisode, type Planner } from '../src/index.js';

// A planner is anything with plan(): look around once (12 × 30°), then walk, turning right when a move collides.
const scripted: Planner = {
  specificationVersion: PLANNER_SPEC_VERSION,
  name: 'scripted',
  plan: async ({ observation, stepsTaken }) => ({
    actions: [{ name: stepsTaken < 12 ? 'turn_left' : observation.collided === true ? 'turn_right' : 'move_forward' }],
  }),
};

// The simulator side: the built-in simulator served on a free loopback port, as `v4s sim` does.
const server = await SimulatorServer.start(() => new BuiltinSimulator(), { port: 0 });
const env = await connectSimulator(server.url);
try {
  const trace = await runEpisode(env, scripted, { reset: { seed: 200000, task: 'objectnav' }, maxSteps: 60 });
  const m = episodeMetrics(trace);
  console.log(`goal: find a ${trace.goal?.category ?? '?'} · ${trace.stepsTaken} steps (${trace.endReason}) · ${m.collisions} collisions`);
  console.log(`distance to goal ${m.initialDistanceToGoal?.toFixed(2)} m → ${m.distanceToGoal?.toFixed(2)} m · success ${m.success} · SoftSPL ${m.softSpl?.toFixed(3)}`);
} finally {
  await env.close();
  await server.close();
}
