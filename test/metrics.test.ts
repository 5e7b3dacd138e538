import assert from 'node:assert/strict';
import { runEpisode } from '../src/agent/agent.js';
import { aggregate, episodeMetrics, formatTable, groupRows, percentile, softSpl, spl, wilsonInterval } from '../src/agent/metrics.js';
import { EPISODE_ROW_SCHEMA, type EpisodeRow } from '../src/agent/results.js';
import { PLANNER_SPEC_VERSION, type Plan, type Planner } from '../src/planner/planner.js';
import { ScriptedEnvironment } from '../src/testing/index.js';

const close = (a: number, b: number, eps = 1e-4): void => assert.ok(Math.abs(a - b) <= eps, `${a} ≉ ${b}`);

function row(over: Partial<EpisodeRow> & Pick<EpisodeRow, 'key'>): EpisodeRow {
  return {
    schema: EPISODE_ROW_SCHEMA,
    planner: 'random',
    task: 'objectnav',
    status: 'ok',
    success: false,
    spl: 0,
    softSpl: 0,
    distanceToGoal: 1,
    initialDistanceToGoal: 2,
    shortestPathLength: 2,
    pathLength: 2,
    steps: 10,
    collisions: 0,
    endReason: 'stop',
    decisionLatenciesMs: [],
    startedAt: '2025-01-01T00:00:00.000Z',
    durationMs: 1,
    ...over,
  };
}

/** Plays a fixed list of actions, one per decision. */
function script(actions: string[]): Planner {
  let i = 0;
  return {
    specificationVersion: PLANNER_SPEC_VERSION,
    name: 'script',
    plan: async (): Promise<Plan> => ({ actions: [{ name: actions[i++] ?? 'stop' }] }),
  };
}

describe('metrics', () => {
  it('SPL = S·ℓ/max(p, ℓ)', () => {
    assert.equal(spl(true, 5, 10), 0.5);
    assert.equal(spl(true, 5, 4), 1);
    assert.equal(spl(false, 5, 5), 0);
    assert.equal(spl(true, 0, 0), 1);
  });

  it('SoftSPL = max(0, 1 − d_T/d_0)·ℓ/max(p, ℓ)', () => {
    assert.equal(softSpl(1, 4, 5, 10), 0.375);
    assert.equal(softSpl(6, 4, 5, 10), 0);
    assert.equal(softSpl(0, 0, 0, 0), 1);
    assert.equal(softSpl(0.5, 0, 0, 0), 0);
  });

  it('Wilson 95 % interval matches hand-computed values', () => {
    const [lo, hi] = wilsonInterval(7, 10);
    close(lo, 0.3968);
    close(hi, 0.8922);
    const [lo0, hi0] = wilsonInterval(0, 10);
    assert.equal(lo0, 0);
    close(hi0, 0.2775);
    const [lo1, hi1] = wilsonInterval(10, 10);
    close(lo1, 0.7225);
    assert.equal(hi1, 1);
    assert.deepEqual(wilsonInterval(0, 0), [0, 1]);
    const [a, b] = wilsonInterval(50, 100);
    close(a, 0.4038);
    close(b, 0.5962);
  });

  it('percentiles interpolate linearly between ranks', () => {
    assert.equal(percentile([4, 1, 3, 2], 0.5), 2.5);
    close(percentile(Array.from({ length: 20 }, (_, i) => i + 1), 0.95), 19.05);
    assert.ok(Number.isNaN(percentile([], 0.5)));
  });

  describe('episodeMetrics (ScriptedEnvironment, goal 2 m straight ahead)', () => {
    const goal = { task: 'pointnav' as const, position: [0, 0, -2] as const };

    it('a detour: p = 3 m for ℓ = 2 m gives SPL = SoftSPL = 2/3', async () => {
      const turnAround = Array<string>(6).fill('turn_left');
      const actions = [...Array<string>(4).fill('move_forward'), ...turnAround, 'move_forward', 'move_forward', ...turnAround, ...Array<string>(6).fill('move_forward'), 'stop'];
      const trace = await runEpisode(new ScriptedEnvironment({ goal }), script(actions));
      const m = episodeMetrics(trace);
      assert.equal(m.success, true);
      close(m.pathLength ?? NaN, 3);
      close(m.shortestPathLength ?? NaN, 2);
      close(m.spl ?? NaN, 2 / 3);
      close(m.softSpl ?? NaN, 2 / 3);
      assert.equal(m.steps, actions.length);
      assert.equal(m.decisionLatenciesMs.length, actions.length);
    });

    it('stopping short fails: SPL 0, SoftSPL (1 − 1.5/2)·2/2 = 0.25', async () => {
      const trace = await runEpisode(new ScriptedEnvironment({ goal }), script(['move_forward', 'move_forward', 'stop']));
      const m = episodeMetrics(trace);
      assert.equal(m.success, false);
      assert.equal(m.spl, 0);
      close(m.softSpl ?? NaN, 0.25);
      close(m.distanceToGoal ?? NaN, 1.5);
      close(m.initialDistanceToGoal ?? NaN, 2);
    });

    it('SPL is null when the environment reports no shortest path', async () => {
      const trace = await runEpisode(new ScriptedEnvironment(), script(['stop']));
      assert.equal(episodeMetrics(trace).spl, null);
    });
  });

  describe('aggregate / formatTable', () => {
    const rows = [
      row({ key: 'a', success: true, spl: 0.5, softSpl: 0.375, distanceToGoal: 0.5, steps: 20, decisionLatenciesMs: [1, 2] }),
      row({ key: 'b', success: false, spl: 0, softSpl: 0.2, distanceToGoal: 3, steps: 40, decisionLatenciesMs: [3] }),
      row({ key: 'c', status: 'error', success: false, spl: 0, softSpl: 0, distanceToGoal: 2, steps: 30, decisionLatenciesMs: [4] }),
      row({ key: 'd', status: 'aborted', success: false, spl: null, softSpl: null, distanceToGoal: 9, steps: 5, decisionLatenciesMs: [5] }),
    ];

    it('excludes aborted rows (environment failures) and counts agent errors as failures', () => {
      const s = aggregate(rows);
      assert.equal(s.episodes, 3);
      assert.equal(s.aborted, 1);
      assert.equal(s.errors, 1);
      assert.equal(s.successes, 1);
      close(s.successRate, 1 / 3);
      close(s.spl, 0.5 / 3);
      close(s.softSpl, 0.575 / 3);
      close(s.distanceToGoal, 5.5 / 3);
      assert.equal(s.steps, 30);
      assert.equal(s.decisions, 5);
      assert.equal(s.latencyP50Ms, 3);
      close(s.latencyP95Ms, 4.8);
      const [lo, hi] = wilsonInterval(1, 3);
      assert.deepEqual(s.successCi95, [lo, hi]);
    });

    it('groups by planner and task and prints one line each', () => {
      const more = [...rows, row({ key: 'e', planner: 'oracle', task: 'pointnav', success: true, spl: 1, softSpl: 1 })];
      assert.equal(groupRows(more).length, 2);
      const table = formatTable(more);
      const lines = table.split('\n');
      assert.equal(lines.length, 4);
      const cells = (l: string): string[] => l.trim().split(/\s{2,}/);
      assert.deepEqual(cells(lines[0] ?? ''), ['planner', 'task', 'episodes', 'aborted', 'success', '95% CI', 'SPL', 'SoftSPL', 'dist (m)', 'steps', 'p50 ms', 'p95 ms']);
      assert.deepEqual(cells(lines[2] ?? ''), ['random', 'objectnav', '3', '1', '33.3%', '6.1–79.2%', '0.167', '0.192', '1.83', '30.0', '3.00', '4.80']);
      assert.deepEqual(cells(lines[3] ?? '').slice(0, 7), ['oracle', 'pointnav', '1', '0', '100.0%', '20.7–100.0%', '1.000']);
    });
  });
});
