/**
 * Integration: the real built-in simulator behind a real SimulatorServer (and dialing a listening agent),
 * over real loopback sockets. Every frame, measure and oracle mask that crosses the wire must equal what the
 * same simulator gives in-process.
 */
import assert from 'node:assert/strict';
import { BuiltinSimulator } from '../src/sim-adapters/builtin/simulator.js';
import { connectSimulator } from '../src/sim-adapters/ws-client.js';
import { listenForSimulator } from '../src/sim-adapters/ws-listener.js';
import { SimulatorServer, dialAgent } from '../src/sim-adapters/ws-server.js';
import type { Action } from '../src/types.js';
import { frameDiff, rejectionOf } from './ws-fixtures.js';

const SEED = 200_001;
const ACTIONS: Action[] = [{ name: 'turn_left' }, { name: 'move_forward' }, { name: 'move_forward' }, { name: 'turn_right' }, { name: 'move_forward' }];

describe('ws + built-in simulator (integration over real sockets)', () => {
  let server: SimulatorServer;
  before(async () => {
    server = await SimulatorServer.start(() => new BuiltinSimulator({ oracle: true, maxSteps: { objectnav: 5 } }), { port: 0, oracle: true });
  });
  after(() => server.close());

  for (const encoding of ['raw', 'png'] as const) {
    it(`an ObjectNav episode over ${encoding}: frames, poses and measures equal the in-process simulator`, async () => {
      const local = new BuiltinSimulator({ oracle: true, maxSteps: { objectnav: 5 } });
      const env = await connectSimulator(server.url, { encoding });
      try {
        assert.equal(env.capabilities.name, 'builtin');
        assert.deepEqual(env.capabilities.camera, { width: 64, height: 64, hfov: 90 });
        const r = await env.reset({ seed: SEED, task: 'objectnav' });
        const l = local.reset({ seed: SEED, task: 'objectnav' });
        assert.deepEqual(r.goal, l.goal);
        assert.equal(frameDiff(r.observation.rgb, l.observation.rgb).max, 0);
        assert.deepEqual(r.observation.info, l.observation.info);
        let last = { terminated: false, truncated: false };
        for (const a of ACTIONS) {
          const w = await env.step(a);
          const s = local.step(a);
          assert.equal(frameDiff(w.observation.rgb, s.observation.rgb).max, 0, `${a.name} step ${s.observation.step}`);
          assert.deepEqual(w.observation.pose, s.observation.pose);
          assert.equal(w.observation.collided, s.observation.collided);
          assert.deepEqual(w.observation.info, s.observation.info);
          last = { terminated: w.terminated, truncated: w.truncated };
        }
        assert.deepEqual(last, { terminated: false, truncated: true }, 'maxSteps 5 truncates the episode');
        assert.equal((await rejectionOf(env.step({ name: 'move_forward' }))).code, 'E_NO_EPISODE');
      } finally {
        await env.close();
      }
    });
  }

  it('ImageNav goal image and the oracle (frames + target masks) equal the in-process simulator', async () => {
    const local = new BuiltinSimulator({ oracle: true });
    const env = await connectSimulator(server.url);
    try {
      const r = await env.reset({ seed: SEED, task: 'imagenav' });
      const l = local.reset({ seed: SEED, task: 'imagenav' });
      assert.ok(r.goal?.image && l.goal?.image);
      assert.equal(frameDiff(r.goal.image, l.goal.image).max, 0);
      assert.ok(env.oracle);
      const request = { sequences: [['move_forward', 'turn_left'], ['turn_right', 'turn_right', 'move_forward']], category: 'chair' };
      const wire = await env.oracle(request);
      const mine = local.oracle(request);
      assert.equal(wire.length, 2);
      wire.forEach((ro, i) => {
        const lo = mine[i];
        assert.ok(lo);
        assert.equal(ro.frames.length, lo.frames.length);
        ro.frames.forEach((f, t) => assert.equal(frameDiff(f, lo.frames[t] ?? f).max, 0));
        assert.deepEqual(ro.masks, lo.masks);
        assert.deepEqual(ro.poses, lo.poses);
      });
      // the oracle did not advance the episode
      const s = await env.step({ name: 'move_forward' });
      assert.equal(s.observation.step, 1);
    } finally {
      await env.close();
    }
  });

  it('the listening direction: a built-in simulator dials in to a listening agent', async () => {
    const listener = await listenForSimulator({ port: 0, token: 'tok' });
    try {
      const [conn, env] = await Promise.all([dialAgent(listener.url, () => new BuiltinSimulator(), { token: 'tok', encoding: 'png' }), listener.accept({ timeoutMs: 5000 })]);
      assert.equal(env.encoding, 'png', "the simulator's default encoding when the agent asks for none");
      const r = await env.reset({ seed: SEED, task: 'pointnav' });
      const l = new BuiltinSimulator().reset({ seed: SEED, task: 'pointnav' });
      assert.deepEqual(r.goal, l.goal);
      assert.equal(frameDiff(r.observation.rgb, l.observation.rgb).max, 0);
      const s = await env.step({ name: 'stop' });
      assert.equal(s.terminated, true);
      assert.equal(typeof s.observation.info.success, 'boolean');
      await env.close();
      await conn.closed;
    } finally {
      await listener.close();
    }
  });
});
