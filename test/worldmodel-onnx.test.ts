/**
 * The ONNX model-package runtime, on real onnxruntime-node sessions over the committed fixture packages
 * (test/fixtures/models, written by scripts/make-fixtures.py): loading and its errors, the CUDA fallback,
 * what reaches the model (positions, masks, batch layout), grounding, encoder/decoder, the cached-context
 * split, NaN detection, serialization and buffer reuse.
 */
import assert from 'node:assert/strict';
import { rm, writeFile, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { isV4sError, type V4sErrorCode } from '../src/errors.js';
import { loadWorldModel, resetCudaFallbackWarning, type OnnxWorldModel } from '../src/worldmodel/onnx-world-model.js';
import type { Frame, Instruction } from '../src/types.js';
import type { ImagineRequest } from '../src/worldmodel/world-model.js';
import { assertClose, cleanupTemps, fixtureCopy, fixtureDir, makeFrame, setPath, toUnit } from './worldmodel-helpers.js';

async function rejectsWith(p: Promise<unknown>, code: V4sErrorCode, ...parts: string[]): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(isV4sError(e, code), `expected ${code}, got ${String(e)}`);
    for (const part of parts) assert.ok(e.message.includes(part), `message "${e.message}" lacks "${part}"`);
    return e.message;
  }
  assert.fail(`expected ${code}, resolved instead`);
}

const ECHO_RES = 2;
const echoFrame = (r: number): Frame => makeFrame(ECHO_RES, ECHO_RES, (x, y, c) => (x === 0 && y === 0 && c === 0 ? r : 100));

/** Read the echo fixture's slots: [t, cm, im, goal, target_positions(4), actions(4), cp(K), context[k,0,0,0](K)]. */
function echoSlots(latents: Float32Array, K: number): { t: number; cm: number; im: number; goal: number; tp: number[]; act: number[]; cp: number[]; cpx: number[] } {
  const a = [...latents];
  return {
    t: a[0] as number,
    cm: a[1] as number,
    im: a[2] as number,
    goal: a[3] as number,
    tp: a.slice(4, 8),
    act: a.slice(8, 12),
    cp: a.slice(12, 12 + K),
    cpx: a.slice(12 + K, 12 + 2 * K),
  };
}

const models: OnnxWorldModel[] = [];
async function load(dir: string, options: Parameters<typeof loadWorldModel>[1] = {}): Promise<OnnxWorldModel> {
  const wm = await loadWorldModel(dir, { threads: 1, ...options });
  models.push(wm);
  return wm;
}

after(async () => {
  await Promise.all(models.map((m) => m.dispose()));
  await cleanupTemps();
});

describe('worldmodel onnx: loading and validation', function () {
  this.timeout(20_000);

  it('loads every fixture package and derives info from its manifest', async () => {
    for (const name of ['linear', 'echo', 'grounded', 'nan', 'latent', 'cached', 'bench']) {
      const wm = await load(fixtureDir(name));
      assert.equal(wm.info.name, `fixture-${name}`);
      assert.equal(wm.device, 'cpu');
      assert.deepEqual(wm.info.actions['move_forward'], { kind: 'move', amount: 0.25 });
      assert.deepEqual(wm.info.actions['turn_left'], { kind: 'turn', amount: 30 });
      assert.equal(wm.info.hfov, 90);
    }
    const g = await load(fixtureDir('grounded'));
    assert.equal(g.info.grounding, true);
    assert.deepEqual(g.info.goalCategories, ['chair', 'sofa', 'void']);
    assert.deepEqual(g.info.resolution, { width: 4, height: 4 });
    assert.equal(g.info.maxContext, 3);
    assert.equal(g.info.horizon, 2);
    assert.equal((await load(fixtureDir('cached'))).contextCache, true);
    assert.equal((await load(fixtureDir('cached'), { contextCache: false })).contextCache, false);
  });

  it('E_MODEL_MANIFEST names the field: bad enum, unknown field, missing field, wrong type', async () => {
    await rejectsWith(load(await fixtureCopy('linear', (j) => setPath(j, ['prediction'], 'foo'))), 'E_MODEL_MANIFEST', '/prediction', 'eps');
    await rejectsWith(load(await fixtureCopy('linear', (j) => setPath(j, ['colour'], 'red'))), 'E_MODEL_MANIFEST', 'unknown field "colour"');
    await rejectsWith(load(await fixtureCopy('linear', (j) => setPath(j, ['horizon'], undefined))), 'E_MODEL_MANIFEST', 'missing field "horizon"');
    await rejectsWith(load(await fixtureCopy('linear', (j) => setPath(j, ['instruction', 'actions', 'move_forward', 'amount'], '0.25'))), 'E_MODEL_MANIFEST', '/instruction/actions/move_forward/amount');
    await rejectsWith(load(await fixtureCopy('linear', (j) => setPath(j, ['defaults', 'sampler', 'kind'], 'heun'))), 'E_MODEL_MANIFEST', '/defaults/sampler');
  });

  it('calibration.stop reaches WorldModelInfo.stopCalibration; an out-of-range threshold is refused by path', async () => {
    const stop = { objectArea: 0.05, objectConfidence: 0.2, objectBottom: 0.8 };
    const m = await load(await fixtureCopy('linear', (j) => setPath(j, ['calibration'], { method: 'test', stop })));
    try {
      assert.deepEqual(m.info.stopCalibration, stop);
    } finally {
      await m.dispose();
    }
    const plain = await load(fixtureDir('linear'));
    try {
      assert.equal(plain.info.stopCalibration, undefined);
    } finally {
      await plain.dispose();
    }
    await rejectsWith(load(await fixtureCopy('linear', (j) => setPath(j, ['calibration'], { stop: { objectArea: 2 } }))), 'E_MODEL_MANIFEST', '/calibration/stop/objectArea');
    await rejectsWith(load(await fixtureCopy('linear', (j) => setPath(j, ['calibration'], { stop: { area: 0.1 } }))), 'E_MODEL_MANIFEST', 'unknown field "area"');
  });

  it('E_MODEL_MANIFEST on semantic errors: prediction vs schedule, sampler vs schedule, ranges, paths', async () => {
    await rejectsWith(load(await fixtureCopy('linear', (j) => setPath(j, ['prediction'], 'eps'))), 'E_MODEL_MANIFEST', '/prediction', 'flow schedule');
    await rejectsWith(load(await fixtureCopy('linear', (j) => setPath(j, ['defaults', 'sampler'], { kind: 'ddim', steps: 4 }))), 'E_MODEL_MANIFEST', '/defaults/sampler/kind');
    await rejectsWith(load(await fixtureCopy('linear', (j) => setPath(j, ['positions', 'range'], [-10, 2]))), 'E_MODEL_MANIFEST', '/positions/range', 'horizon 3');
    await rejectsWith(load(await fixtureCopy('linear', (j) => setPath(j, ['files', 'denoiser'], '../linear/denoiser.onnx'))), 'E_MODEL_MANIFEST', '/files/denoiser');
    await rejectsWith(load(await fixtureCopy('linear', (j) => setPath(j, ['tensors', 'denoiser', 'inputs', 'actions', 'dtype'], 'float32'))), 'E_MODEL_MANIFEST', '/tensors/denoiser/inputs/actions/dtype', 'int64');
    await rejectsWith(load(await fixtureCopy('linear', (j) => setPath(j, ['tensors', 'denoiser', 'inputs', 'x_t'], undefined))), 'E_MODEL_MANIFEST', '/tensors/denoiser/inputs/x_t', 'missing');
    await rejectsWith(load(await fixtureCopy('linear', (j) => setPath(j, ['latent', 'channels'], 4))), 'E_MODEL_MANIFEST', '/latent', 'pixel-space');
    await rejectsWith(load(await fixtureCopy('cached', (j) => setPath(j, ['files', 'denoiserStep'], undefined))), 'E_MODEL_MANIFEST', 'context and denoiserStep come together');
  });

  it('E_MODEL_FILE: missing manifest, missing or corrupt ONNX (with the path and ORT message); bad JSON is E_MODEL_MANIFEST', async () => {
    const dir = await fixtureCopy('linear');
    const onnxPath = path.join(dir, 'denoiser.onnx');
    await writeFile(onnxPath, Buffer.from('this is not an onnx model'));
    await rejectsWith(load(dir), 'E_MODEL_FILE', onnxPath, 'protobuf');
    await rm(onnxPath);
    await rejectsWith(load(dir), 'E_MODEL_FILE', onnxPath, 'missing');
    await writeFile(path.join(dir, 'manifest.json'), '{ "format": ');
    await rejectsWith(load(dir), 'E_MODEL_MANIFEST', 'not valid JSON');
    await rm(path.join(dir, 'manifest.json'));
    await rejectsWith(load(dir), 'E_MODEL_FILE', path.join(dir, 'manifest.json'));
  });

  it('E_MODEL_TENSOR names the tensor with expected vs found: name, dtype, shape, undeclared output', async () => {
    const noGoal = await fixtureCopy('linear');
    await copyFile(path.join(fixtureDir('nan'), 'denoiser.onnx'), path.join(noGoal, 'denoiser.onnx'));
    await rejectsWith(load(noGoal), 'E_MODEL_TENSOR', 'input "goal"', 'declared in manifest.json, not found in the model');
    await rejectsWith(load(fixtureDir('bad-dtype')), 'E_MODEL_TENSOR', 'input "actions"', 'expected dtype int64, found float32');
    const wrongShape = await fixtureCopy('linear');
    await copyFile(path.join(fixtureDir('echo'), 'denoiser.onnx'), path.join(wrongShape, 'denoiser.onnx'));
    await rejectsWith(load(wrongShape), 'E_MODEL_TENSOR', 'input "x_t"', 'expected shape [B,H,3,4,4], found [B,4,3,2,2]');
    const extra = await fixtureCopy('grounded', (j) => {
      setPath(j, ['auxOutputs'], []);
      setPath(j, ['tensors', 'denoiser', 'outputs', 'grounding'], undefined);
    });
    await rejectsWith(load(extra), 'E_MODEL_TENSOR', 'output "grounding"', 'found in the model, not declared');
  });

  it("accepts a symbolic manifest dim that the model fixes, and enforces the model's value", async () => {
    const dir = await fixtureCopy('echo', (j) => {
      setPath(j, ['tensors', 'denoiser', 'inputs', 'x_t', 'shape'], ['B', 'H', 3, 2, 2]);
      setPath(j, ['tensors', 'denoiser', 'outputs', 'pred', 'shape'], ['B', 'H', 3, 2, 2]);
    });
    const wm = await load(dir);
    const req: ImagineRequest = { context: { frames: [echoFrame(0)], positions: [0] }, candidates: [{ actions: ['move_forward', 'move_forward', 'move_forward'] }], horizon: 3 };
    await rejectsWith(wm.imagine(req), 'E_MODEL_INPUT', 'fixed at 4');
  });

  it("device 'cuda' without the CUDA provider: warns once naming the install flag, then runs on CPU", async () => {
    resetCudaFallbackWarning();
    const warnings: string[] = [];
    const onWarning = (m: string): void => void warnings.push(m);
    const a = await load(fixtureDir('latent'), { device: 'cuda', onWarning });
    const b = await load(fixtureDir('linear'), { device: 'cuda', onWarning });
    assert.equal(a.device, 'cpu');
    assert.equal(b.device, 'cpu');
    assert.equal(warnings.length, 1, 'one warning per process, even for three sessions and two models');
    assert.ok(warnings[0]?.includes('--onnxruntime-node-install=cuda12'), String(warnings[0]));
    assert.ok(warnings[0]?.includes('running on CPU'));
    const cpu = await load(fixtureDir('linear'));
    const frames = [makeFrame(4, 4, (x, y, c) => 10 * x + 20 * y + c)];
    const req: ImagineRequest = { context: { frames, positions: [4] }, candidates: [{ actions: ['turn_left', 'move_forward', 'turn_right'] }], seed: 3 };
    assert.deepEqual((await b.sampleLatents(req))[0]?.latents, (await cpu.sampleLatents(req))[0]?.latents);
  });
});

describe('worldmodel onnx: what reaches the model', function () {
  this.timeout(20_000);
  const euler2 = { kind: 'euler', steps: 2, shift: 1 } as const;

  it('context positions keep their true non-contiguous gaps, relative to the newest, times positions.scale', async () => {
    const frames = [echoFrame(10), echoFrame(60), echoFrame(110), echoFrame(160)];
    const positions = [3, 10, 11, 17];
    const cand: Instruction = { actions: ['move_forward', 'turn_left', 'turn_right', 'move_forward'], goalCategory: 'sofa' };
    const wm = await load(fixtureDir('echo'));
    const [r] = await wm.sampleLatents({ context: { frames, positions }, candidates: [cand], sampler: euler2, guidance: { kind: 'none' } });
    assert.ok(r);
    const s = echoSlots(r.latents, 4);
    assert.deepEqual(s.cp, [-14, -7, -6, 0]);
    assert.deepEqual(s.tp, [1, 2, 3, 4]);
    assert.deepEqual(s.act, [1, 2, 3, 1]);
    assert.equal(s.goal, 2);
    assert.equal(s.t, 0.5, 'last Euler step of 2 feeds σ = 0.5');
    assertClose(s.cpx, [10, 60, 110, 160].map(toUnit), 1e-6, 1e-6, 'context frames oldest first');
    const scaled = await load(await fixtureCopy('echo', (j) => setPath(j, ['positions', 'scale'], 0.5)));
    const [q] = await scaled.sampleLatents({ context: { frames, positions }, candidates: [cand], sampler: euler2, guidance: { kind: 'none' } });
    assert.ok(q);
    const sq = echoSlots(q.latents, 4);
    assert.deepEqual(sq.cp, [-7, -3.5, -3, 0]);
    assert.deepEqual(sq.tp, [0.5, 1, 1.5, 2]);
  });

  it('masks per guidance branch: the combined echo shows Σ w·mask (none 1/1, joint ω/ω, two-scale s_c/s_i)', async () => {
    const wm = await load(fixtureDir('echo'));
    const base = { context: { frames: [echoFrame(0)], positions: [5] }, candidates: [{ actions: ['move_forward', 'move_forward', 'move_forward', 'move_forward'] }], sampler: euler2 } as const;
    const cases = [
      { guidance: { kind: 'none' } as const, cm: 1, im: 1, runs: 2 },
      { guidance: { kind: 'joint', scale: 2 } as const, cm: 2, im: 2, runs: 2 },
      { guidance: { kind: 'two-scale', context: 2, instruction: 3 } as const, cm: 2, im: 3, runs: 2 },
    ];
    for (const c of cases) {
      wm.resetStats();
      const [r] = await wm.sampleLatents({ ...base, guidance: c.guidance });
      assert.ok(r);
      const s = echoSlots(r.latents, 1);
      assert.ok(Math.abs(s.cm - c.cm) < 1e-6 && Math.abs(s.im - c.im) < 1e-6, `${c.guidance.kind}: cm ${s.cm} im ${s.im}`);
      assert.deepEqual(s.cp, [0]);
      assert.equal(wm.stats().sessionRuns, c.runs, 'one session.run per step, all branches in it');
    }
  });

  it('batch layout: every candidate gets its own actions and goal back, for 1–3 branches', async () => {
    const wm = await load(fixtureDir('echo'));
    const acts = ['move_forward', 'turn_left', 'turn_right'];
    const candidates: Instruction[] = Array.from({ length: 5 }, (_, c) => ({
      actions: [0, 1, 2, 3].map((j) => acts[(c + j * (c + 1)) % 3] as string),
      ...(c % 2 === 0 ? { goalCategory: c % 4 === 0 ? 'chair' : 'sofa' } : {}),
    }));
    for (const guidance of [{ kind: 'none' } as const, { kind: 'joint', scale: 1.7 } as const, { kind: 'two-scale', context: 1.2, instruction: 2.5 } as const]) {
      const res = await wm.sampleLatents({ context: { frames: [echoFrame(0), echoFrame(1)], positions: [1, 3] }, candidates, sampler: euler2, guidance });
      res.forEach((r, c) => {
        const s = echoSlots(r.latents, 2);
        const cand = candidates[c] as Instruction;
        assert.equal(r.instruction, cand);
        assertClose(s.act, cand.actions.map((a) => acts.indexOf(a) + 1), 1e-5, 1e-5, `${guidance.kind} candidate ${c} actions`);
        const goal = cand.goalCategory === 'chair' ? 1 : cand.goalCategory === 'sofa' ? 2 : 0;
        assert.ok(Math.abs(s.goal - goal) < 1e-5, `${guidance.kind} candidate ${c} goal ${s.goal} ≠ ${goal}`);
        assertClose(s.cp, [-2, 0], 1e-5, 1e-5);
      });
    }
  });

  it('positions beyond the trained range: rejected by default, dropped with positionPolicy drop-oldest', async () => {
    const frames = [echoFrame(1), echoFrame(2), echoFrame(3)];
    const req = { context: { frames, positions: [0, 140, 150] }, candidates: [{ actions: ['move_forward', 'move_forward', 'move_forward', 'move_forward'] }], sampler: euler2, guidance: { kind: 'none' } } as const;
    await rejectsWith(load(fixtureDir('echo')).then((wm) => wm.imagine(req)), 'E_MODEL_INPUT', 'offset -150', '≥ -100');
    const dropping = await load(fixtureDir('echo'), { positionPolicy: 'drop-oldest' });
    const [r] = await dropping.sampleLatents(req);
    assert.ok(r);
    const s = echoSlots(r.latents, 2);
    assert.deepEqual(s.cp, [-10, 0]);
    assertClose(s.cpx, [2, 3].map(toUnit), 1e-6, 1e-6);
  });

  it('rejects bad requests with E_MODEL_INPUT / E_MODEL_ACTION naming the culprit', async () => {
    const wm = await load(fixtureDir('grounded'));
    const f = makeFrame(4, 4, () => 0);
    const ok: ImagineRequest = { context: { frames: [f], positions: [0] }, candidates: [{ actions: ['move_forward', 'turn_left'] }] };
    await rejectsWith(wm.imagine({ ...ok, candidates: [{ actions: ['move_forward', 'jump'] }] }), 'E_MODEL_ACTION', '"jump"', 'actions[1]');
    await rejectsWith(wm.imagine({ ...ok, context: { frames: [makeFrame(8, 8, () => 0)], positions: [0] } }), 'E_MODEL_INPUT', '8x8', '4x4');
    await rejectsWith(wm.imagine({ ...ok, candidates: [{ actions: ['move_forward'] }] }), 'E_MODEL_INPUT', 'horizon');
    await rejectsWith(wm.imagine({ ...ok, candidates: [{ actions: ['move_forward', 'turn_left'], goalCategory: 'piano' }] }), 'E_MODEL_INPUT', '"piano"');
    await rejectsWith(wm.imagine({ ...ok, context: { frames: [f, f, f, f], positions: [0, 1, 2, 3] } }), 'E_MODEL_INPUT', 'at most 3');
    await rejectsWith(wm.imagine({ ...ok, context: { frames: [f, f], positions: [4, 4] } }), 'E_MODEL_INPUT', 'ascending');
    await rejectsWith(wm.imagine({ ...ok, sampler: { kind: 'ddim', steps: 4 } }), 'E_MODEL_INPUT', 'ddpm schedule');
    await rejectsWith(wm.imagine({ ...ok, candidates: [] }), 'E_MODEL_INPUT', 'no candidates');
    await rejectsWith(wm.imagine({ ...ok, seed: -2 }), 'E_MODEL_INPUT', 'seed');
  });
});

describe('worldmodel onnx: outputs', function () {
  this.timeout(20_000);

  it('pixel-space frames and grounding: frames = newest + 0.1·action, grounding from the conditional branch', async () => {
    const wm = await load(fixtureDir('grounded'));
    const newest = makeFrame(4, 4, (x, y, c) => (40 * x + 50 * y + 30 * c) % 256);
    const older = makeFrame(4, 4, () => 200);
    const candidates: Instruction[] = [
      { actions: ['turn_left', 'move_forward'], goalCategory: 'sofa' },
      { actions: ['turn_right', 'turn_right'] },
      { actions: ['move_forward', 'turn_left'], goalCategory: 'chair' },
    ];
    // ω = 1: one conditional branch, x0 = newest + 0.1·action exactly (the final Euler step returns x̂0).
    const res = await wm.imagine({ context: { frames: [older, newest], positions: [2, 7] }, candidates, guidance: { kind: 'joint', scale: 1 } });
    res.forEach((r, c) => {
      assert.equal(r.frames.length, 2);
      (candidates[c] as Instruction).actions.forEach((a, h) => {
        const act = a === 'move_forward' ? 1 : a === 'turn_left' ? 2 : 3;
        const f = r.frames[h] as Frame;
        assert.equal(f.width, 4);
        for (let i = 0; i < 48; i++) {
          const v = toUnit(newest.data[i] as number) + 0.1 * act;
          const e = Math.min(255, Math.max(0, Math.round(((v + 1) / 2) * 255)));
          assert.ok(Math.abs((f.data[i] as number) - e) <= 1, `candidate ${c} frame ${h} byte ${i}: ${f.data[i]} vs ${e}`);
        }
      });
    });
    const P = (h: number, gy: number, gx: number): number => 0.1 * (2 * gy + gx) + 0.05 * h;
    for (const guidance of [{ kind: 'none' } as const, { kind: 'joint', scale: 3 } as const, { kind: 'two-scale', context: 2, instruction: 4 } as const]) {
      const out = await wm.imagine({ context: { frames: [newest], positions: [0] }, candidates, guidance });
      assert.equal(out[1]?.grounding, undefined, 'no goal category, no grounding');
      for (const [c, goal] of [[0, 2], [2, 1]] as const) {
        const g = out[c]?.grounding;
        assert.ok(g && g.length === 2, `candidate ${c} has grounding per target frame`);
        g.forEach((map, h) => {
          assert.equal(map.width, 2);
          assert.equal(map.height, 2);
          const expected = [0, 1].flatMap((gy) => [0, 1].map((gx) => 0.25 * goal + P(h, gy, gx)));
          assertClose(map.data, expected, 1e-6, 1e-6, `${guidance.kind} candidate ${c} frame ${h}`);
        });
      }
    }
  });

  it("auxOutputs activation 'sigmoid' turns the model's logits into probabilities", async () => {
    const wm = await load(await fixtureCopy('grounded', (j) => setPath(j, ['auxOutputs', '0', 'activation'], 'sigmoid')));
    const [r] = await wm.imagine({ context: { frames: [makeFrame(4, 4, () => 0)], positions: [0] }, candidates: [{ actions: ['move_forward', 'turn_left'], goalCategory: 'sofa' }] });
    const logits = [0, 1].flatMap((gy) => [0, 1].map((gx) => 0.25 * 2 + 0.1 * (2 * gy + gx) + 0.05));
    assertClose(r?.grounding?.[1]?.data ?? [], logits.map((z) => 1 / (1 + Math.exp(-z))), 1e-6, 1e-6);
  });

  it('NaN/Inf in the output is E_MODEL_OUTPUT naming the tensor, step and branch', async () => {
    const nan = await load(fixtureDir('nan'));
    const req: ImagineRequest = { context: { frames: [makeFrame(2, 2, () => 9)], positions: [0] }, candidates: [{ actions: ['move_forward'] }, { actions: ['turn_left'] }], guidance: { kind: 'joint', scale: 2 } };
    await rejectsWith(nan.imagine(req), 'E_MODEL_OUTPUT', 'output "pred"', 'NaN', 'step 1/3', 'branch 1 (context+instruction)', 'candidate 0');
    const grounded = await load(fixtureDir('grounded'));
    const f = makeFrame(4, 4, () => 0);
    await rejectsWith(
      grounded.imagine({ context: { frames: [f], positions: [0] }, candidates: [{ actions: ['move_forward', 'turn_left'], goalCategory: 'chair' }, { actions: ['move_forward', 'turn_left'], goalCategory: 'void' }] }),
      'E_MODEL_OUTPUT',
      'output "grounding"',
      'candidate 1',
    );
  });

  it('latent models: encoder once, decoder once; frames = upsample(avgpool(newest)) + 0.05·action', async () => {
    const wm = await load(fixtureDir('latent'));
    const newest = makeFrame(8, 8, (x, y, c) => (17 * x + 29 * y + 61 * c) % 256);
    const cands: Instruction[] = [{ actions: ['turn_right', 'move_forward'] }, { actions: ['turn_left', 'turn_left'] }];
    wm.resetStats();
    const res = await wm.imagine({ context: { frames: [makeFrame(8, 8, () => 1), newest], positions: [0, 3] }, candidates: cands, sampler: { kind: 'euler', steps: 3 }, guidance: { kind: 'none' } });
    assert.equal(wm.stats().sessionRuns, 3 + 2);
    res.forEach((r, c) => {
      (cands[c] as Instruction).actions.forEach((a, h) => {
        const act = a === 'move_forward' ? 1 : a === 'turn_left' ? 2 : 3;
        const f = r.frames[h] as Frame;
        for (let y = 0; y < 8; y++) {
          for (let x = 0; x < 8; x++) {
            for (let ch = 0; ch < 3; ch++) {
              const bx = x & ~1;
              const by = y & ~1;
              let m = 0;
              for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) m += toUnit(newest.data[((by + dy) * 8 + bx + dx) * 3 + ch] as number) / 4;
              const e = Math.min(255, Math.max(0, Math.round(((m + 0.05 * act + 1) / 2) * 255)));
              const got = f.data[(y * 8 + x) * 3 + ch] as number;
              assert.ok(Math.abs(got - e) <= 1, `candidate ${c} frame ${h} (${x},${y},${ch}): ${got} vs ${e}`);
            }
          }
        }
      });
    });
  });

  it('cached-context split equals the full denoiser; context.onnx runs once per call; currentGrounding from the full last step', async () => {
    const cached = await load(fixtureDir('cached'));
    const full = await load(fixtureDir('cached'), { contextCache: false });
    const frames = [makeFrame(4, 4, (x, y, c) => 30 * x + 7 * y + c), makeFrame(4, 4, (x, y, c) => 250 - 20 * x - 9 * y - c), makeFrame(4, 4, (x) => 60 * x)];
    const candidates: Instruction[] = [
      { actions: ['move_forward', 'turn_left'], goalCategory: 'sofa' },
      { actions: ['turn_right', 'move_forward'] },
      { actions: ['turn_left', 'turn_left'], goalCategory: 'chair' },
    ];
    const Q = [0.3, 0.1, 0.2, 0.4];
    for (const guidance of [{ kind: 'none' } as const, { kind: 'joint', scale: 2.5 } as const, { kind: 'two-scale', context: 1.5, instruction: 3 } as const]) {
      const req: ImagineRequest = { context: { frames, positions: [1, 6, 9] }, candidates, guidance, sampler: { kind: 'euler', steps: 4, shift: 2 }, seed: 11 };
      cached.resetStats();
      const a = await cached.sampleLatents(req);
      assert.equal(cached.stats().sessionRuns, 1 + 4, 'context.onnx once, then one run per step');
      const b = await full.sampleLatents(req);
      a.forEach((r, c) => {
        assertClose(r.latents, (b[c] as { latents: Float32Array }).latents, 1e-5, 1e-5, `${guidance.kind} candidate ${c}`);
        const goal = candidates[c]?.goalCategory === 'sofa' ? 2 : candidates[c]?.goalCategory === 'chair' ? 1 : 0;
        if (goal === 0) {
          assert.equal(r.currentGrounding, undefined);
          assert.equal(r.grounding, undefined);
          return;
        }
        assert.ok(r.currentGrounding);
        assertClose(r.currentGrounding.data, Q.map((q) => q + 0.5 * goal), 1e-6, 1e-6, 'currentGrounding');
        assertClose(r.grounding?.[1]?.data ?? [], b[c]?.grounding?.[1]?.data ?? [1], 1e-6, 1e-6, 'grounding');
      });
    }
    // Without goals, every step runs denoiser_step.onnx; still one context run.
    cached.resetStats();
    await cached.sampleLatents({ context: { frames, positions: [1, 6, 9] }, candidates: [{ actions: ['move_forward', 'move_forward'] }], sampler: { kind: 'euler', steps: 3 } });
    assert.equal(cached.stats().sessionRuns, 1 + 3);
  });
});

describe('worldmodel onnx: execution', function () {
  this.timeout(20_000);
  const frames = [makeFrame(4, 4, (x, y, c) => 13 * x + 31 * y + 7 * c)];
  const req = (seed: number): ImagineRequest => ({
    context: { frames, positions: [9] },
    candidates: [{ actions: ['move_forward', 'turn_left', 'turn_left'] }, { actions: ['turn_right', 'turn_right', 'move_forward'], goalCategory: 'chair' }],
    seed,
  });

  it('concurrent calls never overlap session.run and give the same results as sequential calls', async () => {
    const wm = await load(fixtureDir('linear'));
    const sequential: Awaited<ReturnType<OnnxWorldModel['sampleLatents']>>[] = [];
    for (const s of [1, 2, 3, 4]) sequential.push(await wm.sampleLatents(req(s)));
    wm.resetStats();
    const concurrent = await Promise.all([1, 2, 3, 4].map((s) => wm.sampleLatents(req(s))));
    assert.equal(wm.stats().maxConcurrentRuns, 1);
    concurrent.forEach((res, i) => res.forEach((r, c) => assert.deepEqual(r.latents, sequential[i]?.[c]?.latents)));
  });

  it('reuses its buffers and input tensors: no allocation per step or per repeated call', async () => {
    const wm = await load(fixtureDir('linear'));
    await wm.imagine(req(1));
    const first = wm.stats();
    assert.ok(first.tensorAllocations > 0 && first.bufferAllocations > 0);
    await wm.imagine(req(2));
    await wm.imagine(req(3));
    const after3 = wm.stats();
    assert.equal(after3.tensorAllocations, first.tensorAllocations);
    assert.equal(after3.bufferAllocations, first.bufferAllocations);
    const stepsPerCall = 3; // the linear fixture's default sampler
    assert.equal(after3.denoiseSteps, 3 * stepsPerCall);
    assert.equal(after3.outputTensors - first.outputTensors, 2 * stepsPerCall, 'one output tensor (pred) per step');
  });

  it('dispose releases the sessions; later calls fail with E_MODEL_INPUT', async () => {
    const wm = await loadWorldModel(fixtureDir('linear'));
    await wm.dispose();
    await rejectsWith(wm.imagine(req(1)), 'E_MODEL_INPUT', 'disposed');
  });
});
