/**
 * Example 04: an agent driving a Habitat scene through the Habitat bridge (src/sim-adapters/habitat/bridge.py).
 *
 * 1. In your habitat-sim environment:  python src/sim-adapters/habitat/bridge.py --scene path/to/scene.glb
 * 2. Here:                              node --import tsx examples/04-habitat.ts [ws://127.0.0.1:8765]
 *
 * The bridge listens on 127.0.0.1:8765; with `--token`, set V4S_TOKEN here too. In your project, import from
 * 'v4s-nav'. docs/integrations.md has the full setup.
 */
import { PLANNER_SPEC_VERSION, connectSimulator, episodeMetrics, isV4sError, runEpisode, type Planner, type WsEnvironment } from '../src/index.js';

const url = process.argv[2] ?? process.env.V4S_HABITAT_URL ?? 'ws://127.0.0.1:8765';

// A scripted planner: look around once (12 × 30°), then walk, turning right whenever a move collides.
// Swap in a WorldModelPlanner (example 02) once its model's step sizes match the bridge's (checkStepSizes).
const scripted: Planner = {
  specificationVersion: PLANNER_SPEC_VERSION,
  name: 'scripted',
  plan: async ({ observation, stepsTaken }) => ({
    actions: [{ name: stepsTaken < 12 ? 'turn_left' : observation.collided === true ? 'turn_right' : 'move_forward' }],
  }),
};

let env: WsEnvironment;
try {
  env = await connectSimulator(url, { encoding: 'jpeg', ...(process.env.V4S_TOKEN !== undefined && { token: process.env.V4S_TOKEN }) });
} catch (e) {
  if (!isV4sError(e, 'E_CONNECT')) throw e;
  console.error(`No Habitat bridge at ${url}. Start it in your habitat-sim environment:\n  python src/sim-adapters/habitat/bridge.py --scene <scene.glb>\n(${e.message})`);
  process.exit(1);
}
try {
  const { actions, camera } = env.capabilities;
  // The bridge advertises what it set on the agent: move 0.25 m, turn 30° unless started otherwise.
  console.log(`connected: ${camera.width}×${camera.height}, hfov ${camera.hfov}°, turn ${actions.turn_left?.amount}°, move ${actions.move_forward?.amount} m`);
  const trace = await runEpisode(env, scripted, { reset: { seed: 1, task: 'pointnav' }, maxSteps: 40 });
  const m = episodeMetrics(trace);
  console.log(`${trace.stepsTaken} steps (${trace.endReason}) · distance to goal ${m.initialDistanceToGoal?.toFixed(2)} → ${m.distanceToGoal?.toFixed(2)} m`);
} finally {
  await env.close();
}
