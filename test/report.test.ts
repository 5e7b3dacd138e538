/**
 * The HTML report and its images: grounding drawn on frames (exact pixel values), frame grids, and the markup
 * contract the demo and the headless-browser test rely on (candidates × horizon imagined frames, the chosen
 * row, escaping).
 */
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import type { DecisionRecord } from '../src/agent/agent.js';
import { EPISODE_ROW_SCHEMA, type EpisodeRow } from '../src/agent/results.js';
import { isV4sError } from '../src/errors.js';
import type { CandidateReport } from '../src/planner/planner.js';
import { drawGrounding, escapeHtml, frameGrid, pngDataUri, renderEpisodeReport } from '../src/report/index.js';
import type { Frame } from '../src/types.js';
import type { GroundingMap, Rollout } from '../src/worldmodel/world-model.js';

function solid(width: number, height: number, rgb: readonly [number, number, number]): Frame {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { width, height, data };
}

function px(f: Frame, x: number, y: number): number[] {
  const i = (y * f.width + x) * 3;
  return [f.data[i] ?? -1, f.data[i + 1] ?? -1, f.data[i + 2] ?? -1];
}

function decodeUri(uri: string): PNG {
  const b64 = uri.replace(/^data:image\/png;base64,/, '');
  return PNG.sync.read(Buffer.from(b64, 'base64'));
}

const ROW: EpisodeRow = {
  schema: EPISODE_ROW_SCHEMA,
  key: 'wm/objectnav/seed-7',
  planner: 'wm',
  task: 'objectnav',
  seed: 7,
  status: 'ok',
  success: true,
  spl: 0.8125,
  softSpl: 0.9,
  distanceToGoal: 0.5,
  initialDistanceToGoal: 3.25,
  shortestPathLength: 3.25,
  pathLength: 4,
  steps: 2,
  collisions: 0,
  endReason: 'stop',
  decisionLatenciesMs: [10, 30],
  startedAt: '2025-01-01T00:00:00.000Z',
  durationMs: 1234,
};

describe('report images', () => {
  it('drawGrounding tints each cell in proportion to its probability and boxes the cells ≥ 0.25', () => {
    const frame = solid(16, 16, [100, 100, 100]);
    const map: GroundingMap = { width: 2, height: 2, data: Float32Array.from([1, 0, 0, 0.5]) };
    const out = drawGrounding(frame, map);
    assert.deepEqual(px(out, 3, 3), [Math.round(0.4 * 100 + 0.6 * 255), Math.round(0.4 * 100 + 0.6 * 40), Math.round(0.4 * 100 + 0.6 * 40)]);
    assert.deepEqual(px(out, 11, 11), [Math.round(0.7 * 100 + 0.3 * 255), Math.round(0.7 * 100 + 0.3 * 40), Math.round(0.7 * 100 + 0.3 * 40)]);
    assert.deepEqual(px(out, 12, 3), [100, 100, 100], 'a cell with probability 0 is untouched');
    // The box spans both boxed cells: the whole frame's border here.
    assert.deepEqual(px(out, 0, 5), [255, 40, 40]);
    assert.deepEqual(px(out, 15, 10), [255, 40, 40]);
    assert.deepEqual(px(out, 12, 0), [255, 40, 40]);
    assert.deepEqual(px(frame, 3, 3), [100, 100, 100], 'the input frame is not modified');
  });

  it('drawGrounding draws no box when no cell reaches the threshold, and rejects a malformed map', () => {
    const out = drawGrounding(solid(8, 8, [0, 0, 0]), { width: 1, height: 1, data: Float32Array.from([0.2]) });
    assert.deepEqual(px(out, 0, 0), [Math.round(0.12 * 255), Math.round(0.12 * 40), Math.round(0.12 * 40)]);
    assert.throws(
      () => drawGrounding(solid(8, 8, [0, 0, 0]), { width: 2, height: 2, data: new Float32Array(3) }),
      (e: unknown) => isV4sError(e, 'E_FRAME_SIZE') && /2×2 has 3 values/.test(e.message),
    );
  });

  it('frameGrid lays frames out row-major with gaps', () => {
    const grid = frameGrid([solid(2, 2, [1, 1, 1]), solid(2, 2, [2, 2, 2]), solid(2, 2, [3, 3, 3])], 2, 2, [9, 9, 9]);
    assert.equal(grid.width, 6);
    assert.equal(grid.height, 6);
    assert.deepEqual(px(grid, 1, 1), [1, 1, 1]);
    assert.deepEqual(px(grid, 4, 0), [2, 2, 2]);
    assert.deepEqual(px(grid, 0, 4), [3, 3, 3]);
    assert.deepEqual(px(grid, 2, 0), [9, 9, 9], 'gap');
    assert.deepEqual(px(grid, 5, 5), [9, 9, 9], 'empty cell');
    assert.throws(() => frameGrid([solid(2, 2, [0, 0, 0]), solid(3, 2, [0, 0, 0])], 2), (e: unknown) => isV4sError(e, 'E_FRAME_SIZE'));
  });

  it('pngDataUri round-trips the pixels', () => {
    const f = solid(5, 3, [10, 20, 30]);
    const png = decodeUri(pngDataUri(f));
    assert.equal(png.width, 5);
    assert.equal(png.height, 3);
    assert.deepEqual([...png.data.subarray(0, 4)], [10, 20, 30, 255]);
  });
});

describe('renderEpisodeReport', () => {
  const H = 2;
  const everywhere: GroundingMap = { width: 2, height: 2, data: Float32Array.from([1, 1, 1, 1]) };
  const rollout = (actions: string[], shade: number, grounded: boolean): Rollout => ({
    instruction: { actions, goalCategory: 'chair' },
    frames: Array.from({ length: H }, (_, h) => solid(8, 8, [shade + h, shade, shade])),
    ...(grounded ? { grounding: Array.from({ length: H }, () => everywhere), currentGrounding: everywhere } : {}),
    timings: { encodeMs: 0, denoiseMs: 0, decodeMs: 0, totalMs: 0 },
  });
  const candidates: CandidateReport[] = [
    { instruction: { actions: ['move_forward', 'move_forward'] }, score: 0.2, terms: { goal: 0.1, explore: 0.5 }, rollout: rollout(['move_forward', 'move_forward'], 50, true) },
    { instruction: { actions: ['turn_left', 'move_forward'] }, score: 0.7, terms: { goal: 0.6 }, rollout: rollout(['turn_left', 'move_forward'], 90, false) },
    { instruction: { actions: ['turn_right', 'move_forward'] }, score: 0.4, terms: { goal: 0.3 }, rollout: rollout(['turn_right', 'move_forward'], 130, false) },
  ];
  const decisions: DecisionRecord[] = [
    {
      index: 0,
      step: 0,
      stepsTaken: 0,
      latencyMs: 10,
      actions: [{ name: 'turn_left' }],
      contextSize: 1,
      decision: { candidates, chosen: 1, reason: 'goal', latencyMs: 10, detail: 'best <script>alert(1)</script> score' },
    },
    { index: 1, step: 1, stepsTaken: 1, latencyMs: 30, actions: [{ name: 'stop' }], contextSize: 2, decision: { candidates: [], chosen: -1, reason: 'stop', latencyMs: 30 } },
  ];
  const observations = [0, 1, 2].map((step) => ({ step, rgb: solid(8, 8, [step * 40, 0, 0]) }));
  const html = renderEpisodeReport({ row: ROW, goal: { task: 'objectnav', category: 'chair' }, observations, decisions, settings: { candidates: 3 } });

  it('shows every candidate × horizon imagined frames, best score first, with the chosen one highlighted', () => {
    const blocks = [...html.matchAll(/<article class="decision"([^>]*)>([\s\S]*?)<\/article>/g)];
    assert.equal(blocks.length, 2);
    const [first, second] = blocks;
    assert.match(first?.[1] ?? '', /data-candidates="3" data-horizon="2" data-chosen="1" data-reason="goal"/);
    const body = first?.[2] ?? '';
    assert.equal((body.match(/<img class="imagined"/g) ?? []).length, 3 * H);
    assert.deepEqual(
      [...body.matchAll(/<tr class="candidate[^"]*" data-index="(\d)"/g)].map((m) => m[1]),
      ['1', '2', '0'],
      'sorted by score',
    );
    assert.match(body, /<tr class="candidate chosen" data-index="1">/);
    assert.equal((body.match(/candidate chosen/g) ?? []).length, 1);
    assert.match(second?.[1] ?? '', /data-candidates="0" data-horizon="0" data-chosen="-1" data-reason="stop"/);
    assert.equal((html.match(/<img class="real"/g) ?? []).length, 3);
  });

  it('draws the grounding on the imagined frames and on the current view, and not where there is none', () => {
    const srcOf = (alt: string): string => {
      const m = new RegExp(`alt="${alt}"[^>]*src="([^"]+)"`).exec(html) ?? new RegExp(`src="([^"]+)"[^>]*alt="${alt}"`).exec(html);
      assert.ok(m?.[1] !== undefined, alt);
      return m[1];
    };
    const grounded = decodeUri(srcOf('candidate 0, imagined frame 1'));
    // Grounding 1 everywhere: tint 0.6 towards red inside, the box on the border.
    assert.deepEqual([...grounded.data.subarray((3 * 8 + 3) * 4, (3 * 8 + 3) * 4 + 3)], [Math.round(0.4 * 50 + 0.6 * 255), Math.round(0.4 * 50 + 0.6 * 40), Math.round(0.4 * 50 + 0.6 * 40)]);
    const plain = decodeUri(srcOf('candidate 1, imagined frame 2'));
    assert.deepEqual([...plain.data.subarray(0, 3)], [91, 90, 90], 'no grounding: the imagined frame as it is');
    const current = decodeUri(srcOf('current view, step 0'));
    assert.deepEqual([...current.data.subarray((3 * 8 + 3) * 4, (3 * 8 + 3) * 4 + 3)], [Math.round(0.6 * 255), Math.round(0.6 * 40), Math.round(0.6 * 40)]);
  });

  it('shows the metrics and escapes text', () => {
    assert.match(html, /SPL<\/td><td>0\.813<\/td>/);
    assert.match(html, /distance to goal<\/td><td>3\.25 m → 0\.50 m/);
    assert.match(html, /decision latency p50 \/ p95<\/td><td>20\.0 ms \/ 29\.0 ms/);
    assert.match(html, /class="badge ok">success/);
    assert.doesNotMatch(html, /<script>/);
    assert.match(html, /best &lt;script&gt;alert\(1\)&lt;\/script&gt; score/);
    assert.equal(escapeHtml(`a"b'<&>`), 'a&quot;b&#39;&lt;&amp;&gt;');
  });
});
