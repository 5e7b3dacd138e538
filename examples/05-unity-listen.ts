/**
 * Example 05: the agent listens, a Unity scene dials in (src/sim-adapters/unity/V4sAgentBridge.cs).
 *
 * 1. Here:   V4S_TOKEN=secret node --import tsx examples/05-unity-listen.ts   (listens on 127.0.0.1:8766)
 * 2. Unity:  V4sAgentBridge on the agent, agentUrl = ws://127.0.0.1:8766, token = secret; press Play.
 *
 * To accept a Unity scene on another machine, listen beyond loopback (V4S_HOST=0.0.0.0): a token is then
 * required. Unity's poses are converted to Habitat's frame on arrival (`poseFrame: "unity"`). In your project,
 * import from 'v4s-nav'.
 */
import { PLANNER_SPEC_VERSION, isV4sError, listenForSimulator, runEpisode, type Planner } from '../src/index.js';

const listener = await listenForSimulator({
  port: Number(process.env.V4S_PORT ?? 8766),
  host: process.env.V4S_HOST ?? '127.0.0.1',
  ...(process.env.V4S_TOKEN !== undefined && { token: process.env.V4S_TOKEN }),
  encoding: 'jpeg',
});
const waitS = Number(process.env.V4S_WAIT_S ?? 120);
console.log(`waiting up to ${waitS} s for a Unity scene to dial ${listener.url} …`);

// Look around (12 × 30°), then walk, turning right when the CharacterController reports a collision.
const scripted: Planner = {
  specificationVersion: PLANNER_SPEC_VERSION,
  name: 'scripted',
  plan: async ({ observation, stepsTaken }) => ({
    actions: [{ name: stepsTaken < 12 ? 'turn_left' : observation.collided === true ? 'turn_right' : 'move_forward' }],
  }),
};

try {
  const env = await listener.accept({ timeoutMs: waitS * 1000 });
  console.log(`${env.peer} dialed in: ${env.capabilities.camera.width}×${env.capabilities.camera.height}, poses in ${env.capabilities.poseFrame ?? 'habitat'} frame`);
  const trace = await runEpisode(env, scripted, { maxSteps: 30 });
  const last = trace.final?.pose?.position;
  console.log(`${trace.stepsTaken} steps (${trace.endReason}); final position (Habitat frame) ${last?.map((v) => v.toFixed(2)).join(', ') ?? '?'}`);
  await env.close();
} catch (e) {
  if (!isV4sError(e, 'E_TIMEOUT')) throw e;
  console.error(`No Unity scene dialed in within ${waitS} s. In Unity, set V4sAgentBridge.agentUrl to ${listener.url} (the token too, if any) and press Play.`);
  process.exitCode = 1;
} finally {
  await listener.close();
}
