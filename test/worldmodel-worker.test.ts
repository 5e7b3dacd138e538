/**
 * The world model in a worker thread (`loadWorkerWorldModel`): real onnxruntime sessions in a real
 * `worker_threads` Worker, compared with the same package run in process. Results must be identical, errors
 * keep their codes and messages, counters arrive, and the caller's thread stays free while a call runs.
 */
import assert from 'node:assert/strict';
import { isV4sError } from '../src/errors.js';
import type { Instruction } from '../src/types.js';
import { loadWorldModel } from '../src/worldmodel/onnx-world-model.js';
import { loadWorkerWorldModel, type WorkerWorldModel } from '../src/worldmodel/worker-world-model.js';
import type { ImagineRequest } from '../src/worldmodel/world-model.js';
import { cleanupTemps, fixtureCopy, fixtureDir, makeFrame, setPath } from './worldmodel-helpers.js';

async function rejectsWithCode(p: Promise<unknown>, code: string, fragment?: string): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(isV4sError(e), `expected a V4sError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (fragment !== undefined) assert.ok(e.message.includes(fragment), e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

function request(candidates: number, seed = 3): ImagineRequest {
  const frames = [0, 1, 2].map((k) => makeFrame(4, 4, (x, y, c) => (x * 37 + y * 11 + c * 5 + k * 50) % 256));
  const names = ['move_forward', 'turn_left', 'turn_right'];
  const cands: Instruction[] = Array.from({ length: candidates }, (_, c) => ({ actions: [names[c % 3] as string, names[(c + 1) % 3] as string], goalCategory: 'sofa' }));
  return { context: { frames, positions: [2, 7, 9] }, candidates: cands, seed };
}

describe('world model in a worker thread', function () {
  this.timeout(60_000);
  const open: WorkerWorldModel[] = [];
  after(async () => {
    await Promise.all(open.map((m) => m.dispose()));
    await cleanupTemps();
  });

  async function worker(dir: string, options = {}): Promise<WorkerWorldModel> {
    const m = await loadWorkerWorldModel(dir, { threads: 1, ...options });
    open.push(m);
    return m;
  }

  it('gives the same rollouts, grounding and latents as the in-process model (cached-context package)', async () => {
    const dir = fixtureDir('cached');
    const w = await worker(dir);
    const p = await loadWorldModel(dir, { threads: 1 });
    try {
      assert.equal(w.contextCache, true);
      assert.equal(w.device, 'cpu');
      assert.deepEqual(w.info, p.info);
      const req = request(5);
      const [a, b] = [await w.imagine(req), await p.imagine(req)];
      assert.equal(a.length, 5);
      a.forEach((r, i) => {
        const o = b[i];
        assert.ok(o);
        assert.deepEqual(r.instruction, o.instruction);
        assert.equal(r.frames.length, 2);
        r.frames.forEach((f, j) => assert.deepEqual(f.data, o.frames[j]?.data));
        assert.deepEqual(r.grounding?.map((g) => Array.from(g.data)), o.grounding?.map((g) => Array.from(g.data)));
        assert.deepEqual(Array.from(r.currentGrounding?.data ?? []), Array.from(o.currentGrounding?.data ?? []));
      });
      const [la, lb] = [await w.sampleLatents(req), await p.sampleLatents(req)];
      la.forEach((r, i) => assert.deepEqual(Array.from(r.latents), Array.from(lb[i]?.latents ?? [])));
      const batch = await w.imagineBatch([request(2, 1), request(3, 2)]);
      assert.deepEqual(
        batch.map((rs) => rs.length),
        [2, 3],
      );
      assert.deepEqual(batch[1]?.[2]?.frames[1]?.data, (await p.imagine(request(3, 2)))[2]?.frames[1]?.data);
    } finally {
      await p.dispose();
    }
  });

  it("reports the worker's runtime counters after each call, and resets them", async () => {
    const w = await worker(fixtureDir('cached'));
    await w.imagine(request(2));
    const s = w.stats();
    // 3 Euler steps: context.onnx once, denoiser_step twice, the full denoiser at the last step (grounding_current)
    assert.equal(s.imagineCalls, 1);
    assert.equal(s.denoiseSteps, 3);
    assert.equal(s.sessionRuns, 4);
    assert.ok(s.sessionRunMs > 0 && s.imagineMs >= s.sessionRunMs);
    w.resetStats();
    assert.equal(w.stats().sessionRuns, 0);
    await w.imagine(request(2));
    assert.equal(w.stats().imagineCalls, 1);
  });

  it('keeps error codes and messages: bad requests, bad packages', async () => {
    const dir = fixtureDir('cached');
    const w = await worker(dir);
    const p = await loadWorldModel(dir, { threads: 1 });
    try {
      const bad: ImagineRequest = { ...request(1), candidates: [{ actions: ['fly', 'turn_left'] }] };
      const e1 = await rejectsWithCode(w.imagine(bad), 'E_MODEL_ACTION', '"fly"');
      const e2 = await rejectsWithCode(p.imagine(bad), 'E_MODEL_ACTION');
      assert.equal(e1.message, e2.message);
      await rejectsWithCode(w.imagine({ ...request(1), horizon: 7 }), 'E_MODEL_INPUT', 'horizon 7');
      // the worker survives a failed call
      assert.equal((await w.imagine(request(1))).length, 1);
    } finally {
      await p.dispose();
    }
    await rejectsWithCode(loadWorkerWorldModel(fixtureDir('bad-dtype')), 'E_MODEL_TENSOR');
    const noStep = await fixtureCopy('cached', (j) => setPath(j, ['files', 'denoiserStep'], undefined));
    await rejectsWithCode(loadWorkerWorldModel(noStep), 'E_MODEL_MANIFEST');
    const missing = await rejectsWithCode(loadWorkerWorldModel('/nonexistent/v4s-model'), 'E_MODEL_FILE', 'manifest.json');
    assert.equal(missing.message, (await rejectsWithCode(loadWorldModel('/nonexistent/v4s-model'), 'E_MODEL_FILE')).message);
  });

  it('honours loading options (contextCache false: the full denoiser at every step)', async () => {
    const w = await worker(fixtureDir('cached'), { contextCache: false });
    assert.equal(w.contextCache, false);
    await w.imagine(request(2));
    assert.equal(w.stats().sessionRuns, 3);
  });

  it('leaves the calling thread free while a call runs', async () => {
    const w = await worker(fixtureDir('bench'));
    const { width, height } = w.info.resolution;
    const names = Object.keys(w.info.actions);
    const req: ImagineRequest = {
      context: { frames: [makeFrame(width, height, (x, y, c) => (x + y + c) % 256)], positions: [4] },
      candidates: Array.from({ length: 16 }, (_, c) => ({ actions: Array.from({ length: w.info.horizon }, (_, j) => names[(c + j) % names.length] as string) })),
      sampler: { kind: 'euler', steps: 32 },
    };
    await w.imagine(req);
    let turns = 0;
    let done = false;
    const pending = w.imagine(req).then(() => (done = true));
    while (!done) {
      await new Promise<void>((r) => setImmediate(r));
      turns++;
    }
    await pending;
    // 34 network evaluations ran in the worker; this thread kept turning its event loop meanwhile (an
    // in-process model gets one turn per session.run at most, as each run blocks the thread)
    assert.ok(turns > 34, `event loop turned ${turns} times during imagine`);
  });

  it('fails later calls after dispose, and dispose is idempotent', async () => {
    const w = await loadWorkerWorldModel(fixtureDir('cached'), { threads: 1 });
    await w.dispose();
    await w.dispose();
    await rejectsWithCode(w.imagine(request(1)), 'E_MODEL_INPUT', 'disposed');
  });
});
