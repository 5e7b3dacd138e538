/**
 * BatchingWorldModel: concurrent agents' imagine calls run as one batched call of the wrapped model (real ONNX
 * sessions over the committed fixtures, the shipped model when present, and a RemoteWorldModel behind the OIP
 * test double), and every agent gets exactly its unbatched result for the same seed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exportTriton } from '../src/cli/export-triton.js';
import { isV4sError, type V4sErrorCode } from '../src/errors.js';
import { BatchingWorldModel } from '../src/worldmodel/batching-world-model.js';
import { loadWorldModel, type OnnxWorldModel } from '../src/worldmodel/onnx-world-model.js';
import { connectRemoteWorldModel, serverModelNames } from '../src/worldmodel/remote-world-model.js';
import { RepeatLastWorldModel } from '../src/worldmodel/repeat-last-world-model.js';
import type { ImagineRequest, Rollout } from '../src/worldmodel/world-model.js';
import { SHIPPED_MODEL_DIR, agentRequest, decide, patternFrame, rolloutDiff, shippedModelPresent } from './support/decisions.js';
import { OipDouble } from './support/oip-double.js';
import { fixtureDir } from './worldmodel-helpers.js';

async function rejectsWith(p: Promise<unknown>, code: V4sErrorCode, ...parts: string[]): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(isV4sError(e, code), `expected ${code}, got ${String(e)}`);
    for (const part of parts) assert.ok(e.message.includes(part), `message "${e.message}" lacks "${part}"`);
    return;
  }
  assert.fail(`expected ${code}, resolved instead`);
}

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function load(pkg: string): Promise<OnnxWorldModel> {
  const wm = await loadWorldModel(pkg, { threads: 1 });
  cleanup.push(() => wm.dispose());
  return wm;
}

/** Agents with contexts of 1, 2 or 3 frames (agents a and a+3 share a length), 3–5 candidates each. */
function agents(wm: OnnxWorldModel, count = 6): ImagineRequest[] {
  return Array.from({ length: count }, (_, a) => agentRequest(wm.manifest, a, { contextFrames: 1 + (a % 3), candidates: 3 + (a % 3) }));
}

/** Each agent's unbatched rollouts, one call at a time on a model of its own. */
async function unbatched(pkg: string, requests: readonly ImagineRequest[]): Promise<Rollout[][]> {
  const wm = await load(pkg);
  const out: Rollout[][] = [];
  for (const r of requests) out.push(await wm.imagine(r));
  return out;
}

function assertSameDecisions(batched: readonly Rollout[][], single: readonly Rollout[][], width: number, height: number): void {
  const goal = patternFrame(width, height, 11, 2);
  batched.forEach((res, a) => {
    const ref = single[a] as Rollout[];
    const diff = rolloutDiff(res, ref);
    assert.equal(diff.frames, 0, `agent ${a}: frames equal`);
    assert.ok(diff.grounding <= 1e-5, `agent ${a}: grounding within 1e-5 (${diff.grounding})`);
    res.forEach((r, c) => assert.deepEqual(r.instruction, ref[c]?.instruction, `agent ${a} candidate ${c} order`));
    const [db, du] = [decide(res, goal), decide(ref, goal)];
    assert.equal(db.chosen, du.chosen, `agent ${a}: same chosen candidate`);
    db.scores.forEach((s, c) => assert.ok(Math.abs(s - (du.scores[c] as number)) <= 1e-5, `agent ${a} candidate ${c} score`));
  });
}

// [label, package, agents]: the shipped model (64×64, a 1.5 M-parameter transformer) runs with 4 agents (0 and 3 share a group).
const packages: [string, string, number][] = [
  ['cached (context cache, grounding_current)', fixtureDir('cached'), 6],
  ['latent (encoder + decoder)', fixtureDir('latent'), 6],
  ['grounded (pixel space)', fixtureDir('grounded'), 6],
];
if (shippedModelPresent()) packages.push(['the shipped model', SHIPPED_MODEL_DIR, 4]);

describe('batching world model: per-agent results are unchanged', function () {
  this.timeout(60_000);

  for (const [label, pkg, count] of packages) {
    it(`${label}: ${count} concurrent agents, one batch, each equals its unbatched result (same seeds) and chooses the same candidate`, async () => {
      const inner = await load(pkg);
      const requests = agents(inner, count);
      const single = await unbatched(pkg, requests);
      inner.resetStats();
      const shared = new BatchingWorldModel(inner, { windowMs: 20, maxBatch: 16, disposeInner: false });
      const batched = await Promise.all(requests.map((r) => shared.imagine(r)));
      assert.deepEqual(shared.stats(), { calls: count, batches: 1, maxBatchSize: count, isolated: 0 });
      // Agents a and a+3 share a context length (1, 2 or 3 frames): one sampling group per length.
      assert.equal(inner.stats().imagineCalls, Math.min(count, 3));
      const { width, height } = inner.manifest.resolution;
      assertSameDecisions(batched, single, width, height);
    });
  }

  it('through a RemoteWorldModel: one infer per denoising step for every agent with the same context length', async () => {
    const pkg = fixtureDir('cached');
    const repo = await mkdtemp(path.join(os.tmpdir(), 'v4s-triton-'));
    cleanup.push(() => rm(repo, { recursive: true, force: true }));
    await exportTriton(pkg, repo);
    const double = await OipDouble.start(repo);
    cleanup.push(() => double.close());
    const remote = await connectRemoteWorldModel({ url: double.url, manifest: pkg });
    const shared = new BatchingWorldModel(remote, { windowMs: 20 });
    cleanup.push(() => shared.dispose());
    const requests = Array.from({ length: 4 }, (_, a) => agentRequest(remote.manifest, a, { contextFrames: 2, candidates: 3 }));
    const single = await unbatched(pkg, requests);
    const names = serverModelNames(remote.manifest);
    const before = double.inferCount();
    const batched = await Promise.all(requests.map((r) => shared.imagine(r)));
    // Default sampler of the fixture: 3 Euler steps → context once, denoiser_step twice, full denoiser last.
    assert.equal(double.inferCount() - before, 4);
    const step = double.inferHeaders(names.denoiserStep as string).at(-1);
    const xt = (step?.['inputs'] as { name: string; shape: number[] }[]).find((i) => i.name === 'x_t');
    assert.equal(xt?.shape[0], 2 * 4 * 3, '2 guidance branches × 4 agents × 3 candidates in ONE request');
    const ctx = double.inferHeaders(names.context as string).at(-1);
    assert.equal((ctx?.['inputs'] as { shape: number[] }[])[0]?.shape[0], 4 * 2, 'one context row per agent and context mask');
    assertSameDecisions(batched, single, remote.manifest.resolution.width, remote.manifest.resolution.height);
  });
});

describe('batching world model: when batches go', function () {
  this.timeout(30_000);

  it('a full batch goes at once (maxBatch, maxCandidates), without waiting for the window', async () => {
    const inner = await load(fixtureDir('linear'));
    const shared = new BatchingWorldModel(inner, { windowMs: 60_000, maxBatch: 3, disposeInner: false });
    const reqs = agents(inner, 6);
    const res = await Promise.all(reqs.map((r) => shared.imagine(r)));
    assert.deepEqual(shared.stats(), { calls: 6, batches: 2, maxBatchSize: 3, isolated: 0 });
    res.forEach((r, a) => assert.equal(r.length, reqs[a]?.candidates.length));
    const byCandidates = new BatchingWorldModel(inner, { windowMs: 60_000, maxCandidates: 8, disposeInner: false });
    // 3, 4, 5, 3, 4, 5 candidates → batches [3,4] [5,3] [4] … ; the last one goes when the model is disposed.
    const pending = reqs.map((r) => byCandidates.imagine(r));
    await Promise.all(pending.slice(0, 5));
    assert.equal(byCandidates.stats().batches, 3);
    await byCandidates.dispose();
    assert.equal((await pending[5])?.length, 5);
    assert.equal(byCandidates.stats().batches, 4);
  });

  it('calls of one event-loop turn share a batch with windowMs 0; a later call makes a new one', async () => {
    const inner = await load(fixtureDir('linear'));
    const shared = new BatchingWorldModel(inner, { windowMs: 0, disposeInner: false });
    const reqs = agents(inner, 4);
    await Promise.all(reqs.slice(0, 3).map((r) => shared.imagine(r)));
    await shared.imagine(reqs[3] as ImagineRequest);
    assert.deepEqual(shared.stats(), { calls: 4, batches: 2, maxBatchSize: 3, isolated: 0 });
  });

  it('an invalid request fails alone: its batch mates still get their results', async () => {
    const pkg = fixtureDir('grounded');
    const inner = await load(pkg);
    const shared = new BatchingWorldModel(inner, { windowMs: 20, disposeInner: false });
    const reqs = agents(inner, 3);
    const bad: ImagineRequest = { ...(reqs[1] as ImagineRequest), candidates: [{ actions: ['fly', 'fly'] }] };
    const results = await Promise.allSettled([shared.imagine(reqs[0] as ImagineRequest), shared.imagine(bad), shared.imagine(reqs[2] as ImagineRequest)]);
    assert.equal(results[1]?.status, 'rejected');
    assert.ok(results[1]?.status === 'rejected' && isV4sError(results[1].reason, 'E_MODEL_ACTION'));
    const single = await unbatched(pkg, [reqs[0] as ImagineRequest, reqs[2] as ImagineRequest]);
    for (const [i, ref] of [[0, single[0]], [2, single[1]]] as const) {
      const r = results[i];
      assert.ok(r?.status === 'fulfilled', `request ${i} resolved`);
      assert.equal(rolloutDiff(r.value, ref as Rollout[]).frames, 0);
    }
    assert.equal(shared.stats().isolated, 1);
  });

  it('wraps models without imagineBatch (one call each), and refuses bad options', async () => {
    const inner = new RepeatLastWorldModel({ name: 'repeat', resolution: { width: 4, height: 4 } });
    const shared = new BatchingWorldModel(inner, { windowMs: 0 });
    const frame = patternFrame(4, 4, 1, 1);
    const res = await Promise.all([0, 1].map((s) => shared.imagine({ context: { frames: [frame], positions: [s] }, candidates: [{ actions: ['turn_left'] }], horizon: 1 })));
    assert.deepEqual(res.map((r) => [...(r[0]?.frames[0]?.data ?? [])]), [[...frame.data], [...frame.data]]);
    assert.equal(shared.stats().batches, 1);
    for (const bad of [{ windowMs: -1 }, { maxBatch: 0 }, { maxBatch: 1.5 }, { maxCandidates: 0 }]) {
      assert.throws(() => new BatchingWorldModel(inner, bad), (e: unknown) => isV4sError(e, 'E_CONFIG'));
    }
  });

  it('dispose runs what is queued, then refuses new calls and disposes the wrapped model', async () => {
    const inner = await loadWorldModel(fixtureDir('linear'), { threads: 1 });
    const shared = new BatchingWorldModel(inner, { windowMs: 60_000 });
    const reqs = agents(inner, 2);
    const pending = reqs.map((r) => shared.imagine(r));
    await shared.dispose();
    assert.equal((await Promise.all(pending)).length, 2);
    await rejectsWith(shared.imagine(reqs[0] as ImagineRequest), 'E_MODEL_INPUT', 'disposed');
    await rejectsWith(inner.imagine(reqs[0] as ImagineRequest), 'E_MODEL_INPUT', 'disposed');
  });
});
