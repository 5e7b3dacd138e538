/**
 * `v4s sim` and `v4s dataset` through the real CLI entry: the server an agent connects to over a real
 * WebSocket (size, encoding, oracle flags), its clean shutdown on SIGTERM, and the dataset writer's files.
 * (Their usage errors — a non-loopback bind without a token, an output path outside the cwd — are in
 * cli-eval.test.ts with the other usage errors.) Output paths of every writing command are checked by
 * src/agent/paths.ts before anything runs (issue 8 §3): the refusals are below, in-process through `main()`
 * (absolute paths, so the cwd does not matter) and through the real entry for a symbolic link out of the cwd.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { main } from '../src/cli/main.js';
import type { CliIO } from '../src/cli/common.js';
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

  describe('output paths are resolved and checked before anything is written (E_PATH, exit 2, the flag and path named)', () => {
    /** Run `main()` in-process with captured output. */
    async function mainCaptured(argv: string[]): Promise<{ code: number; out: string; err: string }> {
      let out = '';
      let err = '';
      const io: CliIO = { out: (l) => (out += `${l}\n`), err: (l) => (err += `${l}\n`), isTTY: false };
      const code = await main(argv, io);
      return { code, out, err };
    }

    it('every writing command refuses a file standing where a folder must be created, a control character, a directory for a file', async () => {
      const dir = tempDir();
      const file = path.join(dir, 'afile');
      writeFileSync(file, 'x');
      mkdirSync(path.join(dir, 'adir'));
      const under = (p: string): string => path.join(file, p);
      const cases: [string[], RegExp][] = [
        [['eval', '--planner', 'random', '--episodes', '1', '--out', under('r.jsonl')], /E_PATH: --out ".*afile\/r\.jsonl": .*afile is not a directory, so .*afile cannot be created/],
        [['eval', '--planner', 'random', '--episodes', '1', '--out', path.join(dir, 'r\n.jsonl')], /E_PATH: --out ".*r\\n\.jsonl": holds a control character/],
        [['eval', '--planner', 'random', '--episodes', '1', '--out', path.join(dir, 'adir')], /E_PATH: --out ".*adir": .*adir is a directory; expected a file/],
        [['demo', '--planner', 'random', '--episodes', '1', '--out', under('run')], /E_PATH: --out ".*afile\/run": .*afile is not a directory/],
        [['demo', '--planner', 'random', '--episodes', '1', '--out', file], /E_PATH: --out ".*afile": .*afile exists and is not a directory/],
        [['dataset', '--split', 'dev', '--scenes', '1', '--steps', '5', '--size', '16', '--out', path.join(dir, 'data\nset')], /E_PATH: --out ".*data\\nset": holds a control character/],
        [['dataset', '--split', 'dev', '--scenes', '1', '--steps', '5', '--size', '16', '--out', under('data')], /E_PATH: --out ".*afile\/data": .*afile is not a directory/],
        [['eval-model', '--data', path.join(dir, 'no-data'), '--out', under('m.json')], /E_PATH: --out ".*afile\/m\.json": .*afile is not a directory/],
        [['eval-model', '--data', path.join(dir, 'no-data'), '--out', path.join(dir, 'adir')], /E_PATH: --out ".*adir": .*is a directory; expected a file/],
        [['export-triton', path.join(dir, 'no-package'), under('repo')], /E_PATH: <out-dir> ".*afile\/repo": .*afile is not a directory/],
      ];
      for (const [argv, pattern] of cases) {
        const r = await mainCaptured(argv);
        assert.equal(r.code, 2, `${JSON.stringify(argv)} → ${r.code}: ${r.err}`);
        assert.match(r.err, pattern, JSON.stringify(argv));
      }
      // Nothing was written anywhere.
      assert.deepEqual(readdirSync(dir).sort(), ['adir', 'afile']);
      assert.deepEqual(readdirSync(path.join(dir, 'adir')), []);
    });

    it('a relative --out through a symbolic link that leaves the cwd is refused (real entry); a link that stays inside is fine', async () => {
      const cwd = tempDir();
      const outside = tempDir('v4s-cli-outside-');
      symlinkSync(outside, path.join(cwd, 'escape'));
      const r = await runCli(['dataset', '--split', 'dev', '--scenes', '1', '--steps', '5', '--size', '16', '--out', 'escape/data'], cwd);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /E_PATH: --out "escape\/data": .*escape is a symbolic link \(or under one\) to .*v4s-cli-outside-/);
      assert.deepEqual(readdirSync(outside), [], 'nothing written outside the cwd');
      mkdirSync(path.join(cwd, 'runs'));
      symlinkSync(path.join(cwd, 'runs'), path.join(cwd, 'inner'));
      const ok = await runCli(['dataset', '--split', 'dev', '--scenes', '1', '--steps', '5', '--size', '16', '--out', 'inner/data'], cwd);
      assert.equal(ok.code, 0, ok.stderr);
      assert.ok(existsSync(path.join(cwd, 'runs', 'data', 'index.json')));
    });
  });
});
