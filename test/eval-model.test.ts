/**
 * `v4s eval-model`: clip sampling, the memory-clip search, the statistics, the whole evaluation on a real
 * ONNX fixture package, and the command. Datasets are real built-in-simulator renders (2 eval scenes) written
 * to temp folders; models are the committed fixture `cached` (real onnxruntime sessions), the repeat-last
 * ablation model, and one test double (a "perfect memory" oracle, see below).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { ContextBuffer } from '../src/agent/context-buffer.js';
import { register } from '../src/cli/eval-model.js';
import { buildProgram } from '../src/cli/main.js';
import type { CliIO } from '../src/cli/common.js';
import { isV4sError } from '../src/errors.js';
import { writeDataset } from '../src/sim-adapters/builtin/dataset.js';
import type { Frame } from '../src/types.js';
import {
  EvalDataset,
  evaluateWorldModel,
  findMemoryClips,
  formatEvaluation,
  groundingIoU,
  maskToCellFractions,
  median,
  pairedBootstrap,
  psnrFromMse,
  recentExponentialContext,
  rocAuc,
  sampleQualityClips,
  selectMemoryClips,
  signTestPValue,
  softIoU,
  type ModelEvaluation,
} from '../src/worldmodel/evaluation.js';
import { loadWorldModel, type OnnxWorldModel } from '../src/worldmodel/onnx-world-model.js';
import { RepeatLastWorldModel } from '../src/worldmodel/repeat-last-world-model.js';
import {
  WORLD_MODEL_SPEC_VERSION,
  type GroundingMap,
  type ImagineRequest,
  type Rollout,
  type WorldModel,
  type WorldModelInfo,
} from '../src/worldmodel/world-model.js';
import { fixtureDir } from './worldmodel-helpers.js';

const INFO_64: Partial<WorldModelInfo> = { name: 'test', maxContext: 6, positionRange: [-48, 4], horizon: 4 };

/**
 * Test double (a perfect world model cannot exist): an oracle with perfect memory. It finds the clip by the
 * newest context frame's bytes and position, and returns the TRUE target frames and goal masks when some
 * context frame shows the goal category, else repeats the newest frame with empty grounding. So the memory
 * frame j in context makes it exact on the object, and swapping j out makes it the baseline.
 */
class MemoryOracle implements WorldModel {
  readonly specificationVersion = WORLD_MODEL_SPEC_VERSION;
  readonly info: WorldModelInfo;
  readonly #data: EvalDataset;
  readonly #byNewest = new Map<string, number>();

  constructor(data: EvalDataset) {
    this.#data = data;
    this.info = {
      ...new RepeatLastWorldModel(INFO_64).info,
      name: 'memory-oracle',
      goalCategories: [...data.index.categories],
      grounding: true,
    };
    data.index.episodes.forEach((ep) => {
      for (let s = 0; s < ep.length; s++) this.#byNewest.set(`${s}:${Buffer.from(data.frame(ep.start + s).data).toString('base64')}`, ep.start);
    });
  }

  async imagine(request: ImagineRequest): Promise<Rollout[]> {
    const { frames, positions } = request.context;
    const newest = positions[positions.length - 1] as number;
    const newestFrame = frames[frames.length - 1] as Frame;
    const start = this.#byNewest.get(`${newest}:${Buffer.from(newestFrame.data).toString('base64')}`);
    assert.ok(start !== undefined, 'the oracle finds every clip');
    const d = this.#data;
    const { width, height } = d.index;
    return request.candidates.map((c) => {
      const goal = c.goalCategory === undefined ? 0 : d.index.categories.indexOf(c.goalCategory) + 1;
      const seen = goal > 0 && positions.some((p) => d.pixels(start + p, goal) > 0);
      const targets = c.actions.map((_, h) => start + newest + 1 + h);
      const grounding: GroundingMap[] = targets.map((t) => ({
        width: 8,
        height: 8,
        data: seen ? maskToCellFractions(d.mask(t), width, height, goal, 8, 8) : new Float32Array(64),
      }));
      return {
        instruction: c,
        frames: targets.map((t) => (seen ? d.frame(t) : { ...newestFrame, data: newestFrame.data.slice() })),
        grounding,
        timings: { encodeMs: 0, denoiseMs: 0, decodeMs: 0, totalMs: 0 },
      };
    });
  }

  async dispose(): Promise<void> {}
}

function withoutTimings(r: ModelEvaluation): unknown {
  return JSON.parse(JSON.stringify(r, (k, v: unknown) => (k === 'timing' || k === 'meanImagineMs' ? undefined : v)));
}

function quietIO(): CliIO & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, out: (l) => lines.push(l), err: (l) => errors.push(l), isTTY: false };
}

describe('eval-model', function () {
  this.timeout(60_000);
  let tmp: string;
  let dir64: string;
  let dir4: string;
  let data64: EvalDataset;
  let data4: EvalDataset;

  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'v4s-evalmodel-'));
    dir64 = path.join(tmp, 'eval64');
    dir4 = path.join(tmp, 'eval4');
    writeDataset({ split: 'eval', scenes: 6, out: dir64 });
    writeDataset({ split: 'eval', scenes: 2, out: dir4, size: 4, steps: 48 });
    data64 = EvalDataset.open(dir64);
    data4 = EvalDataset.open(dir4);
  });

  after(() => {
    data64.close();
    data4.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  describe('dataset and clips', () => {
    it('counts category pixels per frame exactly as the masks hold them', () => {
      for (const f of [0, 17, 95, 150]) {
        const mask = data64.mask(f);
        for (let c = 0; c <= data64.categoryCount; c++) {
          assert.equal(data64.pixels(f, c), mask.filter((v) => v === c).length, `frame ${f} category ${c}`);
        }
      }
      assert.equal(data64.frame(3).data.length, 64 * 64 * 3);
    });

    it('selects context like the ContextBuffer recent-exponential policy', () => {
      assert.deepEqual(recentExponentialContext(40, 6, 48), [24, 32, 36, 38, 39, 40]);
      assert.deepEqual(recentExponentialContext(3, 6, 48), [0, 1, 2, 3]);
      assert.deepEqual(recentExponentialContext(40, 1, 48), [40]);
      const near = recentExponentialContext(100, 6, 10);
      assert.equal(near.length, 6);
      assert.equal(near[near.length - 1], 100);
      assert.ok(near.every((s, i) => s >= 90 && (i === 0 || s > (near[i - 1] as number))));
      // The same as a real buffer fed real frames.
      const buffer = new ContextBuffer({ capacity: 64, maxOffset: 48 });
      for (let s = 0; s <= 70; s++) buffer.push({ step: s, rgb: data64.frame(s) });
      assert.deepEqual(recentExponentialContext(70, 6, 48), buffer.select(6).positions);
    });

    it('samples distinct, deterministic clips whose targets and actions are the dataset\'s', () => {
      const opts = { count: 40, seed: 3, horizon: 4, maxContext: 6, maxOffset: 48 };
      const a = sampleQualityClips(data64, opts);
      assert.deepEqual(sampleQualityClips(data64, opts), a);
      const b = sampleQualityClips(data64, { ...opts, seed: 4 });
      assert.notDeepEqual(a, b);
      const raw = readFileSync(path.join(dir64, 'actions.u8'));
      const names = ['none', 'move_forward', 'turn_left', 'turn_right'];
      const keys = new Set<string>();
      for (const c of a) {
        const ep = data64.index.episodes[c.episode];
        assert.ok(ep);
        const newest = c.context[c.context.length - 1] as number;
        keys.add(`${c.episode}:${newest}`);
        assert.deepEqual(c.targets, [newest + 1, newest + 2, newest + 3, newest + 4]);
        assert.ok((c.targets[3] as number) < ep.length);
        assert.deepEqual(c.context, recentExponentialContext(newest, 6, 48));
        assert.deepEqual(c.actions, c.targets.map((t) => names[raw[ep.start + t] as number]));
        assert.ok(c.actions.every((x) => x !== 'none'));
      }
      assert.equal(keys.size, 40, 'clips are distinct');
      assert.throws(() => sampleQualityClips(data64, { ...opts, count: 10_000 }), (e: unknown) => isV4sError(e, 'E_CONFIG'));
    });

    it('finds memory clips: j shows the object, no other context frame and not j′ does', () => {
      const clips = findMemoryClips(data64, { horizon: 4, maxContext: 6, maxOffset: 48 });
      assert.ok(clips.length >= 5, `found ${clips.length}`);
      const visible = Math.ceil(0.01 * 64 * 64);
      for (const c of clips) {
        const start = data64.index.episodes[c.episode]?.start ?? 0;
        const count = (s: number): number => data64.mask(start + s).filter((v) => v === c.categoryId).length;
        const newest = c.context[c.context.length - 1] as number;
        assert.ok(c.context.includes(c.memoryStep) && !c.context.includes(c.swapStep));
        assert.ok(newest - c.memoryStep >= 6 && Math.abs(c.swapStep - c.memoryStep) <= 4 && c.swapStep < newest);
        assert.ok(count(c.targets[3] as number) >= visible && count(c.memoryStep) >= visible);
        for (const s of c.context) if (s !== c.memoryStep) assert.equal(count(s), 0, `context frame ${s} shows the object`);
        assert.equal(count(c.swapStep), 0);
        assert.equal(c.context.length, recentExponentialContext(newest, 6, 48).length);
        assert.deepEqual(c.swappedContext, c.context.map((s) => (s === c.memoryStep ? c.swapStep : s)).sort((x, y) => x - y));
      }
    });

    it('draws memory clips from distinct scene/object events first', () => {
      const all = findMemoryClips(data64, { horizon: 4, maxContext: 6, maxOffset: 48 });
      const events = new Set(all.map((c) => `${c.episode}:${c.categoryId}`)).size;
      assert.ok(events >= 3 && all.length > events, `${all.length} clips, ${events} events`);
      const picked = selectMemoryClips(all, events, 9);
      assert.equal(new Set(picked.map((c) => `${c.episode}:${c.categoryId}`)).size, events);
      assert.deepEqual(selectMemoryClips(all, events, 9), picked);
      assert.equal(selectMemoryClips(all, all.length + 5, 9).length, all.length);
    });
  });

  describe('statistics', () => {
    it('computes sign-test p-values, medians, PSNR and bootstrap intervals', () => {
      assert.ok(Math.abs(signTestPValue(9, 1) - 22 / 1024) < 1e-12);
      assert.equal(signTestPValue(1, 9), signTestPValue(9, 1));
      assert.equal(signTestPValue(0, 0), 1);
      assert.equal(signTestPValue(5, 5), 1);
      const big = signTestPValue(600, 400);
      assert.ok(big > 0 && big < 1e-9, String(big));
      assert.equal(median([3, 1, 2]), 2);
      assert.equal(median([4, 1, 2, 3]), 2.5);
      assert.equal(psnrFromMse(255 * 255), 0);
      assert.equal(psnrFromMse(0), 100);
      assert.ok(Math.abs(psnrFromMse(65.025) - 30) < 1e-9);
      const boot = pairedBootstrap([1, 2, 3, 4], 7, 500);
      assert.equal(boot.meanDiff, 2.5);
      assert.equal(boot.pOneSided, 0);
      assert.ok(boot.ci95[0] >= 1 && boot.ci95[1] <= 4 && boot.ci95[0] < boot.ci95[1]);
      assert.deepEqual(pairedBootstrap([1, 2, 3, 4], 7, 500), boot);
      assert.equal(pairedBootstrap([-1, -2], 1, 100).pOneSided, 1);
      assert.equal(rocAuc([3, 4], [1, 2]), 1);
      assert.equal(rocAuc([1, 2], [1, 2]), 0.5);
    });

    it('downsamples masks to cell fractions and scores grounding maps', () => {
      // 8×8 mask, category 2 fills the top-left 4×4 block and 2 pixels of the bottom-right block.
      const mask = new Uint8Array(64);
      for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) mask[y * 8 + x] = 2;
      mask[7 * 8 + 7] = 2;
      mask[6 * 8 + 7] = 2;
      const f = maskToCellFractions(mask, 8, 8, 2, 2, 2);
      assert.deepEqual([...f], [1, 0, 0, 2 / 16]);
      assert.equal(groundingIoU([0.9, 0.1, 0.1, 0.1], f), 1);
      assert.equal(groundingIoU([0.9, 0.9, 0.1, 0.1], f), 0.5);
      assert.equal(groundingIoU([0.1, 0.9, 0.1, 0.1], f), 0);
      assert.equal(groundingIoU([0, 0, 0, 0], [0, 0, 0, 0]), undefined);
      assert.ok(Math.abs(softIoU([1, 0, 0, 0.125], f) - 1) < 1e-7);
      assert.ok(Math.abs(softIoU([0.5, 0, 0, 0], f) - 0.5 / 1.125) < 1e-7);
    });
  });

  describe('evaluateWorldModel', () => {
    it('scores the repeat-last model exactly like the baseline, with no memory effect', async () => {
      const model = new RepeatLastWorldModel(INFO_64);
      const r = await evaluateWorldModel(model, data64, { clips: 12, ablationClips: 3, memoryClips: 4, seed: 1 });
      assert.equal(r.complete, true);
      assert.ok(r.quality);
      for (const row of r.quality.rows) assert.deepEqual(row.model, row.baseline, `step ${row.step} ${row.actions}`);
      for (const step of [1, 2, 3, 4]) {
        const rows = r.quality.rows.filter((q) => q.step === step);
        const n = (g: string): number => rows.find((q) => q.actions === g)?.model.n ?? -1;
        assert.equal(n('all'), 12);
        assert.equal(n('turn') + n('forward'), 12);
      }
      assert.equal(r.grounding.available, false);
      assert.ok(r.memory?.finalFrame);
      assert.equal(r.memory.used, 4);
      assert.equal(r.memory.finalFrame.wins, 0);
      assert.equal(r.memory.finalFrame.ties, 4);
      assert.equal(r.memory.finalFrame.signTestP, 1);
      assert.ok(r.ablations);
      for (const v of [...r.ablations.positions, ...r.ablations.guidance, ...r.ablations.samplerSteps]) {
        assert.deepEqual(v.overall, r.ablations.positions[0]?.overall, v.name);
      }
      assert.deepEqual(r.ablations.samplerSteps.map((v) => v.sampler.steps), [2, 4, 8]);
    });

    it('refuses a model trained on other step sizes or without the dataset\'s actions', async () => {
      const base = new RepeatLastWorldModel(INFO_64).info.actions;
      const longStride = new RepeatLastWorldModel({ ...INFO_64, actions: { ...base, move_forward: { kind: 'move', amount: 0.5 } } });
      await assert.rejects(evaluateWorldModel(longStride, data64, { clips: 2 }), (e: unknown) => isV4sError(e, 'E_MODEL_STEP_SIZE') && /0\.5/.test(e.message) && /0\.25/.test(e.message));
      const { turn_right: _dropped, ...noRight } = base;
      const noTurnRight = new RepeatLastWorldModel({ ...INFO_64, actions: noRight });
      await assert.rejects(evaluateWorldModel(noTurnRight, data64, { clips: 2 }), (e: unknown) => isV4sError(e, 'E_MODEL_ACTION') && /turn_right/.test(e.message));
    });

    it('shows a memory effect and perfect grounding for an oracle that needs the memory frame', async () => {
      const model = new MemoryOracle(data64);
      const r = await evaluateWorldModel(model, data64, { clips: 10, ablationClips: 0, memoryClips: 8, seed: 2 });
      const m = r.memory;
      assert.ok(m?.finalFrame && m.allFrames && m.grounding);
      assert.equal(m.used, 8);
      assert.equal(m.finalFrame.withMemory.mseMean, 0);
      assert.equal(m.finalFrame.withMemory.psnr, 100);
      assert.equal(m.finalFrame.swapped.mseMean, m.finalFrame.baseline.mseMean);
      const lossy = m.clips.filter((c) => c.finalMse[2] > 0).length;
      assert.equal(m.finalFrame.wins, lossy);
      assert.equal(m.finalFrame.losses, 0);
      assert.ok(lossy >= 6, `${lossy} clips where the baseline errs on the object`);
      assert.equal(m.finalFrame.signTestP, signTestPValue(lossy, 0));
      assert.ok(m.finalFrame.bootstrap.meanDiff > 0 && m.finalFrame.bootstrap.ci95[0] > 0);
      assert.equal(m.allFrames.withMemory.mseMean, 0);
      // With memory the maps are the true cell fractions: soft IoU 1, hard IoU 1 wherever a cell is half covered.
      assert.equal(m.grounding.withMemory.softIoUMean, 1);
      assert.ok(m.grounding.withMemory.iouQueries > 0);
      assert.equal(m.grounding.withMemory.iouMean, 1);
      assert.equal(m.grounding.withMemory.detectionRate, m.grounding.withMemory.iouQueries / m.grounding.withMemory.presentQueries);
      assert.equal(m.grounding.swapped.detectionRate, 0);
      assert.equal(m.grounding.swapped.softIoUMean, 0);
      assert.ok(r.grounding.available);
      // Absent goals: the oracle's empty maps never fire; present goals seen in context are exact.
      assert.equal(r.grounding.target.falsePositiveRate ?? 0, 0);
      assert.equal(r.grounding.target.presentQueries + r.grounding.target.absentQueries + r.grounding.target.partialQueries, 10);
      assert.equal(r.ablations, null);
      assert.match(formatEvaluation(r), /2\. Spatial memory \(8 clips of \d+ found/);
    });

    describe('with a real ONNX package (fixture "cached": 4×4 frames, horizon 2, grounding 2×2)', () => {
      let model: OnnxWorldModel;
      before(async () => {
        model = await loadWorldModel(fixtureDir('cached'), { threads: 1 });
      });
      after(async () => {
        await model.dispose();
      });

      it('evaluates deterministically, with closed-form grounding and position-sensitive ablation', async () => {
        const opts = { clips: 16, ablationClips: 6, memoryClips: 4, seed: 5, stepsSweep: [1, 3] };
        const partials: ModelEvaluation[] = [];
        const progress: number[] = [];
        const r = await evaluateWorldModel(model, data4, { ...opts, onPartial: (p) => partials.push(p), onProgress: (p) => progress.push(p.fraction) });
        assert.equal(r.model.horizon, 2);
        assert.equal(partials.length, 1);
        assert.equal(partials[0]?.complete, false);
        assert.equal(progress.at(-1), 1);
        assert.ok(progress.every((f, i) => i === 0 || f >= (progress[i - 1] as number)));
        assert.equal(r.timing.imagineCalls, 16 + 6 * (1 + 1 + 1) + 2 * (r.memory?.used ?? 0));
        // grounding = 0.25·goal + P with P up to 0.35 at the last step: some cell fires for chair (1) and sofa (2).
        assert.ok(r.grounding.available);
        assert.equal(r.grounding.target.falsePositiveRate ?? 1, 1);
        if (r.grounding.target.presentQueries > 0) assert.equal(r.grounding.target.detectionRate, 1);
        assert.ok(r.grounding.current !== null);
        assert.ok(r.ablations);
        const [truePos, contiguous] = r.ablations.positions;
        assert.notEqual(truePos?.overall.mseMean, contiguous?.overall.mseMean, 'positions reach the model');
        assert.deepEqual(r.ablations.samplerSteps.map((v) => v.sampler.steps), [1, 3]);
        assert.deepEqual(r.ablations.samplerSteps[1]?.overall, truePos?.overall, '3 steps is the default run');
        const again = await evaluateWorldModel(model, data4, opts);
        assert.deepEqual(withoutTimings(again), withoutTimings(r));
      });

      it('refuses a dataset of another resolution, naming both sizes', async () => {
        await assert.rejects(
          evaluateWorldModel(model, data64, { clips: 2 }),
          (e: unknown) => isV4sError(e, 'E_CONFIG') && /64×64/.test(e.message) && /4×4/.test(e.message),
        );
      });
    });
  });

  describe('v4s eval-model', () => {
    function program(io: CliIO): Command {
      const p = new Command('v4s').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
      register(p, io);
      return p;
    }

    it('prints the tables and writes the JSON report', async () => {
      const io = quietIO();
      const out = path.join(tmp, 'results', 'eval.json');
      const args = ['eval-model', '--model', fixtureDir('cached'), '--data', dir4, '--clips', '8', '--ablation-clips', '2', '--memory-clips', '2', '--steps-sweep', '1,3', '--cfg-sweep', '1,2', '--out', out];
      await program(io).parseAsync(args, { from: 'user' });
      assert.equal(process.exitCode, 0);
      process.exitCode = undefined;
      const report = JSON.parse(readFileSync(out, 'utf8')) as ModelEvaluation;
      assert.equal(report.complete, true);
      assert.equal(report.settings.clips, 8);
      assert.deepEqual(report.ablations?.guidance.map((v) => v.guidance), [{ kind: 'joint', scale: 1.5 }, { kind: 'none' }, { kind: 'joint', scale: 2 }]);
      const text = io.lines.join('\n');
      assert.match(text, /1\. Imagination quality \(8 clips/);
      assert.match(text, /Sampler steps:/);
      assert.ok(io.errors.some((l) => /quality 8\/8 clips/.test(l)), 'progress on stderr');
    });

    it('rejects bad values and missing data with usage errors', async () => {
      await assert.rejects(program(quietIO()).parseAsync(['eval-model', '--clips', '0'], { from: 'user' }), /--clips/);
      await assert.rejects(
        program(quietIO()).parseAsync(['eval-model', '--model', fixtureDir('cached'), '--data', path.join(tmp, 'nope'), '--out', path.join(tmp, 'x.json')], { from: 'user' }),
        (e: unknown) => isV4sError(e, 'E_PATH') && e.message.includes('nope'),
      );
    });

    it('is registered in the v4s program', () => {
      assert.ok(buildProgram().commands.some((c) => c.name() === 'eval-model'));
    });
  });
});
