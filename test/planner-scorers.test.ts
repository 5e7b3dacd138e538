import assert from 'node:assert/strict';
import { resizeFrame } from '../src/agent/frames.js';
import type { EpisodeGoal } from '../src/sim-adapters/environment.js';
import {
  collisionRiskScorer,
  colorGroundingDetector,
  composeScorers,
  groundingStats,
  imageGoalScorer,
  imageGoalSimilarity,
  noveltyScorer,
  objectGoalScorer,
  pointGoalScorer,
  visitationScorer,
  type ScoringContext,
} from '../src/planner/scorers.js';
import type { Frame, Instruction } from '../src/types.js';
import type { GroundingMap, Rollout } from '../src/worldmodel/world-model.js';
import { EMPTY_MAP, blobMap, code, modelInfo, paint, pattern, solid } from './planner-fixtures.js';

const info = modelInfo(16);
const SEQS: Record<string, string[]> = {
  FFFF: ['move_forward', 'move_forward', 'move_forward', 'move_forward'],
  LFFF: ['turn_left', 'move_forward', 'move_forward', 'move_forward'],
  RFFF: ['turn_right', 'move_forward', 'move_forward', 'move_forward'],
  LLLL: ['turn_left', 'turn_left', 'turn_left', 'turn_left'],
};

function rollout(seq: keyof typeof SEQS | string[], frames: Frame[], grounding?: GroundingMap[]): Rollout {
  const actions = typeof seq === 'string' ? (SEQS[seq] ?? []) : seq;
  const instruction: Instruction = { actions, goalCategory: 'chair' };
  return { instruction, frames, ...(grounding !== undefined ? { grounding } : {}), timings: { encodeMs: 0, denoiseMs: 0, decodeMs: 0, totalMs: 0 } };
}

function ctx(extra: Partial<ScoringContext> = {}): ScoringContext {
  const current = pattern(1);
  return { info, current, context: [current], goal: { task: 'objectnav', category: 'chair' }, ...extra };
}

const frames4 = (seed: number): Frame[] => [0, 1, 2, 3].map((t) => pattern(seed * 10 + t));

describe('planner scorers', () => {
  it('groundingStats: area = mean, confidence = max, centrality near 1 for a centred blob and low off-centre, bottom = bottom row', () => {
    const centred = groundingStats(blobMap(3, 5, 4, 8));
    const edge = groundingStats(blobMap(0, 2, 4, 8));
    assert.equal(centred.area, 8 / 64);
    assert.equal(centred.confidence, 1);
    assert.equal(centred.bottom, 1);
    assert.ok(Math.abs(centred.centrality - 0.875) < 1e-6, String(centred.centrality));
    assert.ok(Math.abs(edge.centrality - 0.25) < 1e-6, String(edge.centrality));
    assert.equal(groundingStats(blobMap(3, 5, 0, 4)).bottom, 0);
    assert.deepEqual(groundingStats(EMPTY_MAP), { area: 0, centrality: 0, confidence: 0, bottom: 0 });
  });

  it('object goal: a centred blob beats an off-centre one, an earlier sighting beats a later one, no grounding scores 0', async () => {
    const scorer = objectGoalScorer();
    const centred = [0, 1, 2, 3].map(() => blobMap(3, 5, 3, 6, 0.9));
    const offCentre = [0, 1, 2, 3].map(() => blobMap(0, 2, 3, 6, 0.9));
    const early = [blobMap(3, 5, 3, 6), EMPTY_MAP, EMPTY_MAP, EMPTY_MAP];
    const late = [EMPTY_MAP, EMPTY_MAP, EMPTY_MAP, blobMap(3, 5, 3, 6)];
    const s = await scorer.score(
      [rollout('FFFF', frames4(1), centred), rollout('LFFF', frames4(2), offCentre), rollout('RFFF', frames4(3), early), rollout('LLLL', frames4(4), late), rollout('FFFF', frames4(5))],
      ctx(),
    );
    const [a, b, c, d, e] = s.map((x) => x.score);
    assert.ok((a ?? 0) > (b ?? 0), `${a} vs ${b}`);
    assert.ok((c ?? 0) > (d ?? 0), `${c} vs ${d}`);
    assert.equal(e, 0);
    assert.equal(s[4]?.terms['missing'], 1);
    assert.ok(Math.abs((s[0]?.terms['centrality'] ?? 0) - 0.875) < 1e-6);
    assert.ok(Math.abs((s[0]?.terms['confidence'] ?? 0) - 0.9) < 1e-6);
  });

  it('object goal with a user detector: the detector reads the imagined frames', async () => {
    const chair: readonly [number, number, number] = [214, 122, 32];
    const detector = colorGroundingDetector({ chair: [chair] }, { rows: [0, 1] });
    const withChair = [0, 1, 2, 3].map(() => paint(solid([40, 40, 40]), 6, 10, 8, 16, chair));
    const without = [0, 1, 2, 3].map(() => solid([40, 40, 40]));
    const map = await detector(withChair[0] as Frame, 'chair');
    // Columns 6–9 of 16 fall in grid columns 3 and 4, rows 8–15 in grid rows 4–7.
    assert.equal(map.data[4 * 8 + 3], 1);
    assert.equal(map.data[0], 0);
    const s = await objectGoalScorer({ detector }).score([rollout('FFFF', without), rollout('LFFF', withChair)], ctx());
    assert.equal(s[0]?.score, 0);
    assert.ok((s[1]?.score ?? 0) > 0.4, String(s[1]?.score));
  });

  it('image goal: identical frames score 1; the rollout that reaches the goal view scores highest; the goal is resized to the frames', async () => {
    const goalBig = pattern(77, 64, 64);
    assert.equal(imageGoalSimilarity(pattern(77, 64, 64), goalBig), 1);
    // The goal image at the model's resolution, as the scorer will see it.
    const goal16 = resizeFrame(goalBig, 16, 16);
    const goal: EpisodeGoal = { task: 'imagenav', image: goalBig };
    const reaches = [pattern(1), pattern(2), pattern(3), goal16];
    const s = await imageGoalScorer().score([rollout('FFFF', frames4(5)), rollout('LFFF', reaches)], ctx({ goal }));
    assert.ok(Math.abs((s[1]?.score ?? 0) - 1) < 1e-9, String(s[1]?.score));
    assert.ok((s[0]?.score ?? 1) < 0.5, String(s[0]?.score));
    const ssimOnly = await imageGoalScorer({ metric: 'ssim', aggregate: 'last' }).score([rollout('LFFF', reaches)], ctx({ goal }));
    assert.ok(Math.abs((ssimOnly[0]?.terms['similarity'] ?? 0) - 1) < 1e-9);
  });

  it('novelty: a final view already in the context scores 0, an unseen one scores high', async () => {
    const seen = pattern(5);
    const s = await noveltyScorer().score([rollout('FFFF', [pattern(1), pattern(2), pattern(3), seen]), rollout('LFFF', frames4(9))], ctx({ context: [pattern(4), seen] }));
    assert.ok(Math.abs(s[0]?.score ?? 1) < 1e-9, String(s[0]?.score));
    assert.equal(s[0]?.terms['nearest'], 1);
    assert.ok((s[1]?.score ?? 0) > 0.5, String(s[1]?.score));
    const h = await noveltyScorer({ metric: 'histogram' }).score([rollout('FFFF', [seen, seen, seen, solid([255, 0, 0])])], ctx({ context: [solid([0, 0, 255])] }));
    assert.equal(h[0]?.score, 1);
  });

  it('collision risk: forward steps whose imagined view stops changing are penalised; turns are not; no change anywhere is no evidence', async () => {
    const current = pattern(1);
    const moving = frames4(2);
    const stuck = [current, current, current, current];
    const turning = frames4(3);
    const s = await collisionRiskScorer().score([rollout('FFFF', moving), rollout('FFFF', stuck), rollout('LLLL', turning)], ctx({ current }));
    assert.equal(s[0]?.score, 0);
    assert.equal(s[1]?.terms['risk'], 1);
    assert.equal(s[1]?.score, -1);
    assert.equal(s[1]?.terms['stalledSteps'], 4);
    assert.equal(s[2]?.score, 0);
    // A model that imagines no change at all (not even under turns) carries no collision evidence.
    const frozen = await collisionRiskScorer().score([rollout('FFFF', stuck), rollout('LLLL', stuck)], ctx({ current }));
    assert.deepEqual(frozen.map((x) => x.score), [0, 0]);
    assert.equal(frozen[0]?.terms['informative'], 0);
  });

  it('point goal: dead-reckoned progress ranks straight-ahead first for a goal ahead, a left turn first for a goal on the left', async () => {
    const pose = { x: 0, z: 0, yaw: 0 };
    const all = Object.keys(SEQS).map((k) => rollout(k, frames4(k.length + k.charCodeAt(0))));
    const ahead = await pointGoalScorer().score(all, ctx({ pose, goal: { task: 'pointnav', position: [0, 0, -3] } }));
    assert.equal(code(all[ahead.map((x) => x.score).indexOf(Math.max(...ahead.map((x) => x.score)))]?.instruction.actions ?? []), 'FFFF');
    assert.ok(Math.abs((ahead[0]?.terms['progress'] ?? 0) - 1) < 1e-9);
    const left = await pointGoalScorer().score(all, ctx({ pose, goal: { task: 'pointnav', position: [-3, 0, -1] } }));
    assert.equal(code(all[left.map((x) => x.score).indexOf(Math.max(...left.map((x) => x.score)))]?.instruction.actions ?? []), 'LFFF');
    const noPose = await pointGoalScorer().score(all, ctx({ goal: { task: 'pointnav', position: [0, 0, -3] } }));
    assert.equal(noPose[0]?.terms['noPose'], 1);
  });

  it('visitation: ending far from visited places scores higher; a path into a remembered collision point stops there', async () => {
    const pose = { x: 0, z: 0, yaw: 0 };
    const rs = [rollout('FFFF', frames4(1)), rollout('LLLL', frames4(2))];
    const s = await visitationScorer().score(rs, ctx({ pose, visited: [pose] }));
    assert.equal(s[0]?.score, 1);
    assert.equal(s[1]?.score, 0);
    const blocked = await visitationScorer().score(rs, ctx({ pose, visited: [pose], obstacles: [{ x: 0, z: -0.3 }] }));
    assert.equal(blocked[0]?.terms['hit'], 1);
    assert.ok((blocked[0]?.terms['away'] ?? 1) < 1e-9, String(blocked[0]?.terms['away']));
  });

  it('composeScorers: weighted sum with each part under its name and its terms prefixed', async () => {
    const stuck = [pattern(1), pattern(1), pattern(1), pattern(1)];
    const composite = composeScorers([
      { scorer: objectGoalScorer(), weight: 2 },
      { scorer: collisionRiskScorer(), weight: 0.5 },
    ]);
    const map = [0, 1, 2, 3].map(() => blobMap(3, 5, 3, 6, 1));
    const [s] = await composite.score([rollout('FFFF', stuck, map)], ctx({ current: pattern(1) }));
    const object = s?.terms['object'] ?? NaN;
    assert.equal(s?.terms['collision'], -1);
    assert.ok(Math.abs((s?.score ?? 0) - (2 * object - 0.5)) < 1e-9);
    assert.equal(s?.terms['object.confidence'], 1);
    assert.equal(s?.terms['collision.risk'], 1);
  });
});
