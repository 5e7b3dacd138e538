/**
 * `v4s sim` and `v4s dataset` through the real CLI entry: the server an agent connects to over a real
 * WebSocket (size, encoding, oracle flags), its clean shutdown on SIGTERM, and the dataset writer's files.
 * (Their usage errors — a non-loopback bind without a token, an output path outside the cwd — are in
 * cli-eval.test.ts with the other usage errors.)
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { once } from 'node:events';
import { readDatasetIndex } from '../src/sim-adapters/builtin/dataset.js';
import { connectSimulator } from '../src/sim-adapters/ws-client.js';
import { runCli, spawnCli, tempDir, removeTempDirs } from './cli-helpers.js';

/** Start `v4s sim …`, wait for its URL line. */
async function startSim(args: string[]): Promise<{ url: string; child: ReturnType<typeof spawnCli>; output: () => string }> {
  const child = spawnCli(['sim', ...args], tempDir());
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL within 30 s: ${out}`)), 30_000);
    child.stdout.on('data', (d: string) => {
      out += d;
      const m = /listening on (ws:\/\/\S+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`sim exited with ${String(code)}: ${out}`)));
  });
  return { url, child, output: () => out };
}

describe('v4s sim and v4s dataset (CLI)', function () {
  this.timeout(60_000);
  after(removeTempDirs);

  it('sim serves the built-in simulator with the asked size, encoding and oracle, and exits 0 on SIGTERM', async () => {
    const { url, child, output } = await startSim(['--port', '0', '--size', '32', '--encoding', 'png', '--oracle']);
    assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+$/);
    const env = await connectSimulator(url);
    try {
      assert.deepEqual(env.capabilities.camera, { width: 32, height: 32, hfov: 90 });
      assert.equal(env.capabilities.encodings[0], 'png');
      assert.ok(env.capabilities.ops.includes('oracle'));
      const { observation, goal } = await env.reset({ seed: 200000, task: 'objectnav' });
      assert.equal(observation.rgb.width, 32);
      assert.equal(observation.rgb.data.length, 32 * 32 * 3);
      assert.equal(goal?.task, 'objectnav');
      const step = await env.step({ name: 'turn_left' });
      assert.equal(step.observation.step, 1);
      const [rollout] = (await env.oracle?.({ sequences: [['move_forward', 'turn_right']] })) ?? [];
      assert.equal(rollout?.frames.length, 2);
    } finally {
      await env.close();
    }
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, output());
    assert.match(output(), /SIGTERM: closing/);
  });

  it('sim without --oracle does not serve the oracle op', async () => {
    const { url, child } = await startSim(['--port', '0']);
    const env = await connectSimulator(url);
    try {
      assert.deepEqual(env.capabilities.ops, []);
      assert.deepEqual(env.capabilities.camera, { width: 64, height: 64, hfov: 90 });
    } finally {
      await env.close();
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('dataset writes the first N scenes of a split', async () => {
    const cwd = tempDir();
    const r = await runCli(['dataset', '--split', 'dev', '--scenes', '2', '--steps', '20', '--size', '32', '--out', 'data/dev'], cwd);
    assert.equal(r.code, 0, r.stderr);
    const index = readDatasetIndex(path.join(cwd, 'data', 'dev'));
    assert.equal(index.split, 'dev');
    assert.deepEqual(
      index.episodes.map((e) => e.seed),
      [100000, 100001],
    );
    assert.equal(index.totalFrames, 40);
    assert.equal(index.width, 32);
    assert.match(r.stdout, /wrote 40 frames of 2 trajectories \(32×32\)/);
  });
});
