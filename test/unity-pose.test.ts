/**
 * Unity ↔ Habitat pose conversion (pose-frames.ts, mathjs) on known rotations, and `capabilities.poseFrame`
 * end to end: a simulator that declares `unity` dials a listening agent over a real socket, and the agent sees
 * Habitat poses. (The simulator there is the TEST STAND-IN of ws-fixtures.ts with its capabilities extended,
 * standing in for a Unity scene, which cannot run here.)
 */
import assert from 'node:assert/strict';
import type { Action, Pose } from '../src/types.js';
import type { Capabilities, OracleRequest, OracleRollout, ResetOptions, ResetResult, Simulator, StepResult } from '../src/sim-adapters/environment.js';
import { decodeCapabilities } from '../src/sim-adapters/protocol/codec.js';
import { listenForSimulator } from '../src/sim-adapters/ws-listener.js';
import { dialAgent } from '../src/sim-adapters/ws-server.js';
import { StandInSimulator, rejectionOf } from './ws-fixtures.js';

type Quat = readonly [number, number, number, number];
type Vec3 = readonly [number, number, number];

const DEG = Math.PI / 180;

// pose-frames.ts (and mathjs) are imported dynamically, as convert.ts does: under tsx a static import would load
// a second copy of mathjs (about 4 s here) next to the one the agent side loads.
type PoseFrames = typeof import('../src/sim-adapters/pose-frames.js');
type MathJs = typeof import('mathjs');
let pf: PoseFrames;
let mathjs: MathJs;

/** Quaternion [x, y, z, w] of a rotation by `deg` about a unit axis (the same formula in any handedness). */
function axisAngle(axis: Vec3, deg: number): Quat {
  const h = (deg * DEG) / 2;
  return [axis[0] * Math.sin(h), axis[1] * Math.sin(h), axis[2] * Math.sin(h), Math.cos(h)];
}

/** Hamilton product a·b (apply b, then a). */
function qmul(a: Quat, b: Quat): Quat {
  const [ax, ay, az, aw] = a;
  const [bx, by, bz, bw] = b;
  return [aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz];
}

/** Unity's Quaternion.Euler(x, y, z): rotates about z, then x, then y (Unity Scripting API). */
function unityEuler(x: number, y: number, z: number): Quat {
  return qmul(axisAngle([0, 1, 0], y), qmul(axisAngle([1, 0, 0], x), axisAngle([0, 0, 1], z)));
}

const mirror = (v: Vec3): Vec3 => [v[0], v[1], -v[2]];

function assertVecClose(actual: readonly number[], expected: readonly number[], eps = 1e-9, what = 'vector'): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs((actual[i] ?? NaN) - (expected[i] ?? NaN)) <= eps, `${what}[${i}]: ${actual[i]} vs ${expected[i]} (${JSON.stringify(actual)} vs ${JSON.stringify(expected)})`);
  }
}

/** Unity forward is +Z, Habitat forward is −Z; up is +Y in both. */
const UNITY_FORWARD: Vec3 = [0, 0, 1];
const HABITAT_FORWARD: Vec3 = [0, 0, -1];
const UP: Vec3 = [0, 1, 0];

describe('Unity → Habitat poses (pose-frames.ts)', () => {
  before(async () => {
    pf = await import('../src/sim-adapters/pose-frames.js');
    mathjs = await import('mathjs');
  });

  const cases: { name: string; q: Quat; unityForward: Vec3 }[] = [
    { name: 'identity', q: [0, 0, 0, 1], unityForward: [0, 0, 1] },
    // Unity: +90° about +Y turns right (left-handed); forward becomes +X.
    { name: '90° yaw', q: unityEuler(0, 90, 0), unityForward: [1, 0, 0] },
    // Unity: +30° about +X pitches down; forward becomes (0, −sin30°, cos30°).
    { name: '30° pitch (down)', q: unityEuler(30, 0, 0), unityForward: [0, -0.5, Math.sqrt(3) / 2] },
    { name: 'compound Euler(20, 135, 10)', q: unityEuler(20, 135, 10), unityForward: [NaN, NaN, NaN] },
  ];

  for (const c of cases) {
    it(`${c.name}: the Habitat forward and up vectors are the mirrored Unity ones`, () => {
      const uf = pf.rotateVector(c.q, UNITY_FORWARD);
      if (!Number.isNaN(c.unityForward[0])) assertVecClose(uf, c.unityForward, 1e-12, 'unity forward');
      const h = pf.unityToHabitatPose({ position: [1.5, 0.2, 3], rotation: c.q });
      assertVecClose(h.position, [1.5, 0.2, -3], 0, 'position');
      assertVecClose(pf.rotateVector(h.rotation, HABITAT_FORWARD), mirror(uf), 1e-12, 'habitat forward');
      assertVecClose(pf.rotateVector(h.rotation, UP), mirror(pf.rotateVector(c.q, UP)), 1e-12, 'habitat up');
      // closed form of docs/protocol.md §5.5: (x, y, z, w) → (−x, −y, z, w)
      assertVecClose(h.rotation, [-c.q[0], -c.q[1], c.q[2], c.q[3]], 1e-12, 'quaternion');
      // R_h = B·R_u·Bᵀ, computed with mathjs
      const b = pf.UNITY_TO_HABITAT.map((r) => [...r]);
      const expected = mathjs.multiply(mathjs.multiply(b, pf.quaternionToMatrix(c.q)), b) as number[][];
      assertVecClose(pf.quaternionToMatrix(h.rotation).flat(), expected.flat(), 1e-12, 'rotation matrix');
    });
  }

  it('90° yaw in Unity (a right turn) is a −90° yaw about +Y in Habitat; the agent faces +X in both', () => {
    const h = pf.unityToHabitatPose({ position: [0, 0, 0], rotation: unityEuler(0, 90, 0) });
    assertVecClose(h.rotation, axisAngle([0, 1, 0], -90), 1e-12);
    assertVecClose(pf.rotateVector(h.rotation, HABITAT_FORWARD), [1, 0, 0], 1e-12);
  });

  it('is its own inverse, and normalises a non-unit quaternion', () => {
    const p: Pose = { position: [0.3, -1, 2], rotation: unityEuler(-15, 40, 5) };
    const back = pf.habitatToUnityPose(pf.unityToHabitatPose(p));
    assertVecClose(back.position, p.position, 1e-15);
    assertVecClose(back.rotation, p.rotation, 1e-12);
    const scaled = pf.unityToHabitatPose({ position: [0, 0, 0], rotation: [0, 2, 0, 2] });
    assertVecClose(scaled.rotation, [0, -Math.SQRT1_2, 0, Math.SQRT1_2], 1e-12);
  });

  it('refuses a zero or non-finite quaternion with E_PROTOCOL_FIELD, and a basis that is not orthonormal with E_CONFIG', () => {
    assert.throws(() => pf.unityToHabitatPose({ position: [0, 0, 0], rotation: [0, 0, 0, 0] }), { code: 'E_PROTOCOL_FIELD' });
    assert.throws(() => pf.unityToHabitatPose({ position: [0, 0, 0], rotation: [NaN, 0, 0, 1] }), { code: 'E_PROTOCOL_FIELD' });
    assert.throws(
      () => pf.convertPose({ position: [0, 0, 0], rotation: [0, 0, 0, 1] }, [[2, 0, 0], [0, 1, 0], [0, 0, 1]]),
      { code: 'E_CONFIG' },
    );
  });
});

describe('capabilities.poseFrame', () => {
  const base = {
    actions: { move_forward: { kind: 'move', amount: 0.25 } },
    camera: { width: 4, height: 4, hfov: 90 },
    encodings: ['raw'],
    mode: 'lockstep',
    ops: [],
  };

  it('is decoded when known, absent when absent, and refused when unknown', () => {
    assert.equal(decodeCapabilities({ ...base, poseFrame: 'unity' }).poseFrame, 'unity');
    assert.equal(decodeCapabilities({ ...base, poseFrame: 'habitat' }).poseFrame, 'habitat');
    assert.equal('poseFrame' in decodeCapabilities(base), false);
    assert.throws(() => decodeCapabilities({ ...base, poseFrame: 'ros' }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'E_PROTOCOL_FIELD');
      assert.match(e.message, /capabilities\.poseFrame/);
      return true;
    });
  });

  /** The TEST STAND-IN simulator (ws-fixtures.ts), declaring that its poses are in Unity's frame. */
  class UnityFrameStandIn implements Simulator {
    readonly inner = new StandInSimulator({ mode: 'stream' });
    readonly capabilities: Capabilities = { ...this.inner.capabilities, poseFrame: 'unity', name: 'unity-stand-in' };
    reset(o: ResetOptions): ResetResult {
      return this.inner.reset(o);
    }
    step(a: Action): StepResult {
      return this.inner.step(a);
    }
    oracle(r: OracleRequest): OracleRollout[] {
      return this.inner.oracle?.(r) ?? [];
    }
  }

  it('a unity-frame simulator dialing a listening agent: observation, goal and oracle poses arrive in Habitat frame', async () => {
    const listener = await listenForSimulator({ port: 0 });
    const sim = new UnityFrameStandIn();
    const conn = await dialAgent(listener.url, () => sim, { oracle: true });
    try {
      const env = await listener.accept({ timeoutMs: 5000 });
      assert.equal(env.capabilities.poseFrame, 'unity');
      // seed 3 → heading 3 × 30° = 90° about +Y in the stand-in's (here: Unity's) frame
      const r = await env.reset({ seed: 3, task: 'pointnav' });
      const h = Math.sin((90 * DEG) / 2);
      assertVecClose(r.observation.pose?.rotation ?? [], [-0, -h, 0, Math.cos((90 * DEG) / 2)], 1e-12, 'reset rotation');
      assert.deepEqual(r.goal?.position, [1, 0, 2]); // stand-in goal [1, 0, −2], z mirrored
      // the stand-in moves along −Z rotated by its heading: at 90° it moves to x = −0.25 (its frame)
      const s = await env.step({ name: 'move_forward' });
      assertVecClose(s.observation.pose?.position ?? [], [-0.25, 0, -0], 1e-12, 'step position');
      const rollouts = await env.oracle?.({ sequences: [['turn_left']] });
      const q = rollouts?.[0]?.poses[0]?.rotation ?? [];
      const h120 = Math.sin((120 * DEG) / 2);
      assertVecClose(q, [-0, -h120, 0, Math.cos((120 * DEG) / 2)], 1e-12, 'oracle rotation');
      await env.close();
    } finally {
      await conn.close();
      await listener.close();
    }
  });

  it('a simulator with an unknown poseFrame is refused in the handshake (E_PROTOCOL_FIELD)', async () => {
    const listener = await listenForSimulator({ port: 0 });
    try {
      const sim = new UnityFrameStandIn();
      const caps = { ...sim.capabilities, poseFrame: 'ros' } as unknown as Capabilities;
      const bad: Simulator = { capabilities: caps, reset: (o) => sim.reset(o), step: (a) => sim.step(a) };
      const e = await rejectionOf(dialAgent(listener.url, () => bad));
      assert.equal(e.code, 'E_PROTOCOL_FIELD');
      assert.match(e.message, /poseFrame/);
    } finally {
      await listener.close();
    }
  });
});
