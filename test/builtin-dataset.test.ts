import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isV4sError } from '../src/errors.js';
import { CATEGORIES, DATASET_ACTIONS, TRAIN_SEEDS, readDatasetIndex, writeDataset } from '../src/sim-adapters/builtin/index.js';

describe('builtin dataset writer (v4s.dataset.v1)', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'v4s-ds-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes 2 scenes whose files, index and contents agree, deterministically', () => {
    const progress: number[] = [];
    const out = join(dir, 'a');
    const index = writeDataset({ split: 'train', scenes: 2, out, steps: 20, size: 32, onProgress: (p) => progress.push(p.frames) });
    assert.deepEqual(progress, [20, 40]);
    const back = readDatasetIndex(out);
    assert.deepEqual(back, index);
    assert.equal(back.format, 'v4s.dataset.v1');
    assert.deepEqual([back.width, back.height, back.totalFrames], [32, 32, 40]);
    assert.deepEqual(back.categories, [...CATEGORIES]);
    assert.deepEqual(back.actions, ['none', 'move_forward', 'turn_left', 'turn_right']);
    assert.deepEqual([back.forwardStep, back.turnAngle], [0.25, 30]);
    assert.deepEqual(back.episodes, [
      { seed: TRAIN_SEEDS.start, start: 0, length: 20 },
      { seed: TRAIN_SEEDS.start + 1, start: 20, length: 20 },
    ]);
    const frames = readFileSync(join(out, 'frames.u8'));
    const masks = readFileSync(join(out, 'masks.u8'));
    const actions = readFileSync(join(out, 'actions.u8'));
    const poseBytes = readFileSync(join(out, 'poses.f32'));
    assert.equal(frames.length, 40 * 32 * 32 * 3);
    assert.equal(masks.length, 40 * 32 * 32);
    assert.equal(poseBytes.length, 40 * 12);
    const pose = (n: number, c: number): number => poseBytes.readFloatLE(n * 12 + c * 4);
    for (const ep of back.episodes) {
      // Step 0 has action "none"; then the look-around: 12 left turns of 30° in place.
      assert.equal(actions[ep.start], 0);
      for (let t = 1; t <= 12; t++) {
        const n = ep.start + t;
        assert.equal(DATASET_ACTIONS[actions[n] ?? 0], 'turn_left');
        const dyaw = Math.atan2(Math.sin(pose(n, 2) - pose(n - 1, 2)), Math.cos(pose(n, 2) - pose(n - 1, 2)));
        assert.ok(Math.abs(dyaw - Math.PI / 6) < 1e-5, `frame ${n}: yaw step ${dyaw}`);
        assert.equal(pose(n, 0), pose(ep.start, 0));
      }
      // After the look-around, exploration moves the agent, by at most 0.25 m a step.
      let moved = 0;
      for (let n = ep.start + 13; n < ep.start + ep.length; n++) {
        const d = Math.hypot(pose(n, 0) - pose(n - 1, 0), pose(n, 1) - pose(n - 1, 1));
        assert.ok(d <= 0.25 + 1e-5);
        if (DATASET_ACTIONS[actions[n] ?? 0] !== 'move_forward') assert.equal(d, 0);
        moved += d;
      }
      assert.ok(moved > 0.2, `episode ${ep.seed} moved ${moved} m`);
    }
    assert.ok(Math.max(...masks) <= CATEGORIES.length);
    // Consecutive frames differ (the camera turns); masks have some object pixels across the look-around.
    assert.ok(!frames.subarray(0, 3072).equals(frames.subarray(3072, 6144)));
    assert.ok(masks.some((m) => m > 0));
    // Deterministic: the same call writes the same bytes.
    const out2 = join(dir, 'b');
    writeDataset({ split: 'train', scenes: 2, out: out2, steps: 20, size: 32 });
    for (const f of ['frames.u8', 'masks.u8', 'actions.u8', 'poses.f32', 'index.json']) {
      assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(out2, f))), `${f} differs between runs`);
    }
  });

  it('a truncated file or a missing index is reported, naming the file', () => {
    const out = join(dir, 'c');
    writeDataset({ split: 'dev', scenes: 1, out, steps: 4, size: 16 });
    writeFileSync(join(out, 'actions.u8'), Buffer.alloc(3));
    assert.throws(() => readDatasetIndex(out), (e: unknown) => isV4sError(e, 'E_CONFIG') && e.message.includes('actions.u8'));
    rmSync(join(out, 'index.json'));
    assert.throws(() => readDatasetIndex(out), (e: unknown) => isV4sError(e, 'E_PATH') && e.message.includes('index.json'));
    assert.throws(() => writeDataset({ split: 'train', scenes: 0, out, steps: 4 }), (e: unknown) => isV4sError(e, 'E_CONFIG'));
  });
});
