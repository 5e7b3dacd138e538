/**
 * The shipped model package: onnxruntime-node reproduces PyTorch's outputs on the recorded input stored
 * beside it (parity.json, written by training/v4s_train/export.py), and the runtime loads it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { loadWorldModel } from '../src/worldmodel/index.js';

const MODEL_DIR = fileURLToPath(new URL('../models/v4s-builtin-small', import.meta.url));

interface Recorded { shape: number[]; data: number[] }
type Part = { inputs: Record<string, Recorded>; outputs: Record<string, Recorded> };
const INT_INPUTS = new Set(['actions', 'goal']);

function toTensor(name: string, r: Recorded): ort.Tensor {
  return INT_INPUTS.has(name)
    ? new ort.Tensor('int64', BigInt64Array.from(r.data.map((v) => BigInt(v))), r.shape)
    : new ort.Tensor('float32', Float32Array.from(r.data), r.shape);
}

describe('shipped model package (models/v4s-builtin-small)', () => {
  const parity = JSON.parse(readFileSync(join(MODEL_DIR, 'parity.json'), 'utf8')) as Record<string, Part>;

  for (const [part, file] of [['denoiser', 'denoiser.onnx'], ['encoder', 'encoder.onnx'], ['decoder', 'decoder.onnx']] as const) {
    it(`${file} matches PyTorch within 1e-4`, async () => {
      const rec = parity[part];
      assert.ok(rec, `parity.json lacks "${part}"`);
      const session = await ort.InferenceSession.create(join(MODEL_DIR, file));
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, r] of Object.entries(rec.inputs)) feeds[name] = toTensor(name, r);
      const out = await session.run(feeds);
      for (const [name, r] of Object.entries(rec.outputs)) {
        const got = out[name];
        assert.ok(got, `${file}: no output "${name}"`);
        assert.deepEqual([...got.dims], r.shape, `${file}: output "${name}" shape`);
        const data = got.data as Float32Array;
        let maxDiff = 0;
        for (let i = 0; i < r.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs((data[i] ?? NaN) - (r.data[i] ?? NaN)));
        assert.ok(maxDiff <= 1e-4, `${file}: output "${name}" differs from PyTorch by ${maxDiff}`);
      }
      await session.release();
    });
  }

  it('loads through the runtime, with a manifest that matches the ONNX sessions and full provenance', async () => {
    const wm = await loadWorldModel(MODEL_DIR);
    try {
      assert.equal(wm.info.horizon, 4);
      assert.deepEqual(wm.info.resolution, { width: 64, height: 64 });
      assert.deepEqual(Object.keys(wm.info.actions).sort(), ['move_forward', 'turn_left', 'turn_right']);
      assert.equal(wm.info.actions['move_forward']?.amount, 0.25);
      assert.equal(wm.info.actions['turn_left']?.amount, 30);
      assert.ok(wm.info.grounding);
      assert.ok(wm.manifest.provenance.trainingSteps > 0, 'provenance.trainingSteps');
      assert.match(wm.manifest.provenance.dataSeeds, /train/);
    } finally {
      await wm.dispose();
    }
  });
});
