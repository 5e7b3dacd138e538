import assert from 'node:assert/strict';
import { isV4sError } from '../src/errors.js';
import {
  CrossEntropyMethod,
  advancePose,
  createRng,
  deadReckon,
  enumerateCandidates,
  planarPose,
  sampleCandidates,
} from '../src/planner/candidates.js';
import { HABITAT_ACTIONS, code, yawPose } from './planner-fixtures.js';

const WITH_STOP = { ...HABITAT_ACTIONS, stop: { kind: 'stop', amount: 0 } } as const;

describe('planner candidates', () => {
  describe('enumerateCandidates', () => {
    it('canonical form for H = 4: forward, then k turns one way followed by moves, 9 sequences, no stop', () => {
      const seqs = enumerateCandidates(WITH_STOP, 4);
      assert.deepEqual(seqs.map(code), ['FFFF', 'LFFF', 'RFFF', 'LLFF', 'RRFF', 'LLLF', 'RRRF', 'LLLL', 'RRRR']);
      for (const s of seqs) {
        assert.equal(s.length, 4);
        assert.ok(!s.includes('stop'));
      }
    });

    it('pruned form keeps 31 of 81 sequences: none mixes left and right turns, all-forward first', () => {
      const seqs = enumerateCandidates(WITH_STOP, 4, { form: 'pruned' });
      assert.equal(seqs.length, 31);
      assert.equal(code(seqs[0] ?? []), 'FFFF');
      assert.equal(new Set(seqs.map(code)).size, 31);
      for (const s of seqs) assert.ok(!(s.includes('turn_left') && s.includes('turn_right')), code(s));
      // Every F/L sequence is present (16) and every F/R one (16), sharing FFFF.
      assert.equal(seqs.filter((s) => !s.includes('turn_right')).length, 16);
      assert.equal(seqs.filter((s) => !s.includes('turn_left')).length, 16);
    });

    it('max gives a deterministic, well-spread subset that keeps forward and both turn directions', () => {
      const a = enumerateCandidates(HABITAT_ACTIONS, 4, { max: 8 });
      const b = enumerateCandidates(HABITAT_ACTIONS, 4, { max: 8 });
      assert.deepEqual(a, b);
      assert.equal(a.length, 8);
      const all = new Set(enumerateCandidates(HABITAT_ACTIONS, 4).map(code));
      for (const s of a) assert.ok(all.has(code(s)));
      const codes = a.map(code);
      assert.ok(codes.includes('FFFF'));
      assert.ok(codes.includes('LLLL') && codes.includes('RRRR'), codes.join(' '));
      assert.deepEqual(new Set(codes.map((c) => c[0])), new Set(['F', 'L', 'R']));
      const three = enumerateCandidates(HABITAT_ACTIONS, 4, { max: 3 }).map(code);
      assert.equal(three.length, 3);
      assert.deepEqual(new Set(three.map((c) => c[0])), new Set(['F', 'L', 'R']));
    });

    it('respects the vocabulary: other names, other sizes, no turn → forward only', () => {
      const seqs = enumerateCandidates({ walk: { kind: 'move', amount: 0.5 }, spin_left: { kind: 'turn', amount: 45 } }, 2);
      assert.deepEqual(seqs, [['walk', 'walk'], ['spin_left', 'walk'], ['spin_left', 'spin_left']]);
      assert.deepEqual(enumerateCandidates({ move_forward: { kind: 'move', amount: 0.25 }, stop: { kind: 'stop', amount: 0 } }, 3), [
        ['move_forward', 'move_forward', 'move_forward'],
      ]);
    });

    it('refuses a bad horizon, a bad max and a vocabulary with nothing plannable', () => {
      assert.throws(() => enumerateCandidates(HABITAT_ACTIONS, 0), (e: unknown) => isV4sError(e, 'E_CONFIG'));
      assert.throws(() => enumerateCandidates(HABITAT_ACTIONS, 4, { max: 0 }), (e: unknown) => isV4sError(e, 'E_CONFIG'));
      assert.throws(() => enumerateCandidates({ stop: { kind: 'stop', amount: 0 } }, 4), (e: unknown) => isV4sError(e, 'E_MODEL_ACTION'));
    });
  });

  describe('sampleCandidates', () => {
    it('n sequences of horizon actions from the vocabulary, never stop; same seed → same samples', () => {
      const a = sampleCandidates(WITH_STOP, 4, 50, createRng(7));
      const b = sampleCandidates(WITH_STOP, 4, 50, createRng(7));
      const c = sampleCandidates(WITH_STOP, 4, 50, createRng(8));
      assert.deepEqual(a, b);
      assert.notDeepEqual(a, c);
      assert.equal(a.length, 50);
      const counts = new Map<string, number>();
      for (const s of a) {
        assert.equal(s.length, 4);
        for (const x of s) counts.set(x, (counts.get(x) ?? 0) + 1);
      }
      assert.equal(counts.get('stop'), undefined);
      // 200 uniform draws over 3 actions: each between 40 and 95.
      for (const n of ['move_forward', 'turn_left', 'turn_right']) {
        const k = counts.get(n) ?? 0;
        assert.ok(k > 40 && k < 95, `${n}: ${k}`);
      }
    });

    it('follows per-step probabilities and refuses unknown actions', () => {
      const seqs = sampleCandidates(HABITAT_ACTIONS, 3, 20, createRng(1), [{ turn_left: 1 }, { move_forward: 1 }, { turn_right: 2, turn_left: 0 }]);
      for (const s of seqs) assert.equal(code(s), 'LFR');
      assert.throws(() => sampleCandidates(HABITAT_ACTIONS, 2, 1, createRng(1), { fly: 1 }), (e: unknown) => isV4sError(e, 'E_MODEL_ACTION'));
      assert.throws(() => sampleCandidates(HABITAT_ACTIONS, 2, 1, createRng(1), { move_forward: -1 }), (e: unknown) => isV4sError(e, 'E_CONFIG'));
    });
  });

  describe('CrossEntropyMethod', () => {
    const target = ['turn_left', 'move_forward', 'move_forward', 'turn_right'];
    const toy = (s: readonly string[]): number => s.reduce((acc, a, t) => acc + (a === target[t] ? 1 : 0), 0);

    it('converges on a toy score: finds the best sequence and concentrates the distribution on it', async () => {
      let calls = 0;
      const cem = new CrossEntropyMethod(WITH_STOP, 4, { samples: 24, elites: 4, iterations: 5, seed: 3 });
      const result = await cem.optimise((cands, it) => {
        calls++;
        assert.equal(it, calls - 1);
        for (const c of cands) assert.ok(!c.includes('stop'));
        return Promise.resolve(cands.map(toy));
      });
      assert.equal(calls, 5);
      assert.deepEqual(result.best, target);
      assert.equal(result.bestScore, 4);
      const last = result.distributions[result.distributions.length - 1] ?? [];
      for (const [t, name] of target.entries()) assert.ok((last[t]?.[name] ?? 0) > 0.8, `step ${t}: ${JSON.stringify(last[t])}`);
      // Deterministic for a seed.
      const again = await new CrossEntropyMethod(WITH_STOP, 4, { samples: 24, elites: 4, iterations: 5, seed: 3 }).optimise((c) => Promise.resolve(c.map(toy)));
      assert.deepEqual(again.evaluated, result.evaluated);
    });

    it('scores seed sequences in the first batch and validates its options', async () => {
      const seen: string[] = [];
      const cem = new CrossEntropyMethod(HABITAT_ACTIONS, 4, { samples: 4, elites: 2, iterations: 1, seeds: [target] });
      await cem.optimise((c) => {
        seen.push(...c.map(code));
        return Promise.resolve(c.map(() => 0));
      });
      assert.equal(seen[0], 'LFFR');
      assert.throws(() => new CrossEntropyMethod(HABITAT_ACTIONS, 4, { samples: 4, elites: 5 }), (e: unknown) => isV4sError(e, 'E_CONFIG'));
      assert.throws(() => new CrossEntropyMethod(HABITAT_ACTIONS, 4, { seeds: [['move_forward']] }), (e: unknown) => isV4sError(e, 'E_CONFIG'));
    });
  });

  describe('pose geometry', () => {
    it('reads yaw from a Habitat quaternion and dead-reckons moves along −Z, left turns positive', () => {
      const p = planarPose(yawPose(1, 2, 90));
      assert.ok(Math.abs(p.yaw - Math.PI / 2) < 1e-9);
      const poses = deadReckon({ x: 0, z: 0, yaw: 0 }, ['move_forward', 'turn_left', 'turn_left', 'turn_left', 'move_forward'], HABITAT_ACTIONS);
      assert.ok(Math.abs((poses[0]?.z ?? 0) + 0.25) < 1e-9);
      const end = poses[4] ?? { x: 0, z: 0, yaw: 0 };
      // After 90° left the heading is −X.
      assert.ok(Math.abs(end.x + 0.25) < 1e-9 && Math.abs(end.z + 0.25) < 1e-9, JSON.stringify(end));
      // A stalled move does not move.
      const stalled = deadReckon({ x: 0, z: 0, yaw: 0 }, ['move_forward'], HABITAT_ACTIONS, [1]);
      assert.equal(stalled[0]?.z, 0);
    });

    it('advancePose prefers the observed pose, else dead-reckons, and a collided last move does not count', () => {
      const start = { x: 0, z: 0, yaw: 0 };
      assert.deepEqual(advancePose(start, ['move_forward'], { pose: yawPose(5, 6, 0) }, HABITAT_ACTIONS), { x: 5, z: 6, yaw: 0 });
      assert.ok(Math.abs(advancePose(start, ['move_forward', 'move_forward'], {}, HABITAT_ACTIONS).z + 0.5) < 1e-9);
      assert.ok(Math.abs(advancePose(start, ['move_forward', 'move_forward'], { collided: true }, HABITAT_ACTIONS).z + 0.25) < 1e-9);
      assert.deepEqual(advancePose(undefined, [], {}, HABITAT_ACTIONS), { x: 0, z: 0, yaw: 0 });
    });
  });
});
