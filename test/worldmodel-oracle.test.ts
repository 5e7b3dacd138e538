/**
 * The oracle world model (SimulatorWorldModel), the "repeat the last frame" ablation, the resampling helpers
 * and checkStepSizes.
 *
 * TEST DOUBLE: `OracleStandIn` below stands in for a WebSocket `Environment` whose peer serves the oracle op.
 * The over-the-wire test (WsEnvironment against the built-in simulator server) belongs to the lead; here the
 * stand-in's oracle returns synthetic frames and masks with known numbers, so the downsampling can be checked
 * exactly.
 */
import assert from 'node:assert/strict';
import { Subject } from 'rxjs';
import { isV4sError, type V4sErrorCode } from '../src/errors.js';
import type { Capabilities, Environment, OracleRequest, OracleRollout, ResetResult, StepResult } from '../src/sim-adapters/environment.js';
import type { Frame, Instruction, Observation } from '../src/types.js';
import { checkStepSizes } from '../src/worldmodel/manifest.js';
import { RepeatLastWorldModel } from '../src/worldmodel/repeat-last-world-model.js';
import { maskToGrounding, resizeFrameArea, SimulatorWorldModel } from '../src/worldmodel/simulator-world-model.js';
import { assertClose, makeFrame } from './worldmodel-helpers.js';

async function rejectsWith(p: Promise<unknown> | (() => unknown), code: V4sErrorCode, ...parts: string[]): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(isV4sError(e, code), `expected ${code}, got ${String(e)}`);
    for (const part of parts) assert.ok(e.message.includes(part), `message "${e.message}" lacks "${part}"`);
    return;
  }
  assert.fail(`expected ${code}`);
}

const CAPS: Capabilities = {
  actions: {
    move_forward: { kind: 'move', amount: 0.25 },
    turn_left: { kind: 'turn', amount: 30 },
    turn_right: { kind: 'turn', amount: 30 },
    stop: { kind: 'stop', amount: 0 },
  },
  camera: { width: 8, height: 8, hfov: 79 },
  encodings: ['raw'],
  mode: 'lockstep',
  ops: ['oracle'],
  name: 'oracle-stand-in',
};

/** A frame that depends on the sequence prefix up to step j, so a swapped rollout is visible. */
function truthFrame(seq: readonly string[], j: number): Frame {
  const key = seq.slice(0, j + 1).join('|');
  let h = 17;
  for (const ch of key) h = (h * 31 + ch.charCodeAt(0)) % 251;
  return makeFrame(8, 8, (x, y, c) => (h + 3 * x + 11 * y + 50 * c) % 256);
}

/** chair: the top-left 4×4 block (+ pixel (7,7) at j = 1); sofa: columns 0..2; otherwise empty. */
function truthMask(category: string | undefined, j: number): Uint8Array {
  const m = new Uint8Array(64);
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 8; x++) {
      if (category === 'chair' && x < 4 && y < 4) m[y * 8 + x] = 1;
      if (category === 'sofa' && x < 3) m[y * 8 + x] = 255;
    }
  }
  if (category === 'chair' && j === 1) m[63] = 1;
  return m;
}

class OracleStandIn implements Environment {
  readonly specificationVersion = 'v1' as const;
  readonly capabilities: Capabilities;
  readonly observations$ = new Subject<Observation>();
  readonly calls: OracleRequest[] = [];
  framesShort = false;
  constructor(caps: Capabilities = CAPS) {
    this.capabilities = caps;
  }
  async reset(): Promise<ResetResult> {
    throw new Error('not used by these tests');
  }
  async step(): Promise<StepResult> {
    throw new Error('not used by these tests');
  }
  async oracle(request: OracleRequest): Promise<OracleRollout[]> {
    this.calls.push(request);
    return request.sequences.map((seq) => ({
      frames: seq.slice(0, this.framesShort ? seq.length - 1 : seq.length).map((_, j) => truthFrame(seq, j)),
      masks: seq.map((_, j) => truthMask(request.category, j)),
      poses: seq.map(() => ({ position: [0, 0, 0], rotation: [0, 0, 0, 1] })),
    }));
  }
  async close(): Promise<void> {}
}

const ctx = { frames: [makeFrame(8, 8, () => 0)], positions: [0] };

describe('worldmodel oracle: SimulatorWorldModel', () => {
  it("returns the simulator's true frames per candidate, and its masks as grounding fractions per cell", async () => {
    const env = new OracleStandIn();
    const wm = new SimulatorWorldModel(env, { resolution: { width: 8, height: 8 }, grounding: { width: 2, height: 2 }, horizon: 2 });
    const candidates: Instruction[] = [
      { actions: ['move_forward', 'turn_left'], goalCategory: 'chair' },
      { actions: ['turn_right', 'turn_right'] },
      { actions: ['turn_left', 'move_forward'], goalCategory: 'sofa' },
      { actions: ['move_forward', 'move_forward'], goalCategory: 'chair' },
    ];
    const res = await wm.imagine({ context: ctx, candidates });
    assert.equal(res.length, 4);
    res.forEach((r, c) => {
      const seq = (candidates[c] as Instruction).actions;
      assert.equal(r.instruction, candidates[c]);
      r.frames.forEach((f, j) => assert.deepEqual(f, truthFrame(seq, j), `candidate ${c} frame ${j}`));
    });
    // one request per category (chair, none, sofa), each with that category's sequences in candidate order,
    // plus the turn-back probe of the current view for each category
    assert.equal(env.calls.length, 3);
    assert.deepEqual(env.calls.map((c) => c.category), ['chair', undefined, 'sofa']);
    assert.deepEqual(env.calls[0]?.sequences, [candidates[0]?.actions, candidates[3]?.actions, ['turn_left', 'turn_right']]);
    assert.deepEqual(env.calls[1]?.sequences, [candidates[1]?.actions]);
    assert.equal(res[1]?.grounding, undefined);
    assert.equal(res[1]?.currentGrounding, undefined);
    // the stand-in's chair mask at the probe's second frame (j = 1) has the extra pixel (7,7)
    assertClose(res[0]?.currentGrounding?.data ?? [], [1, 0, 0, 1 / 16], 0, 1e-12, 'current view, chair');
    assertClose(res[3]?.currentGrounding?.data ?? [], [1, 0, 0, 1 / 16], 0, 1e-12, 'current view, chair');
    assertClose(res[2]?.currentGrounding?.data ?? [], [0.75, 0, 0.75, 0], 0, 1e-12, 'current view, sofa');
    const chair = res[0]?.grounding;
    assert.ok(chair);
    assertClose(chair[0]?.data ?? [], [1, 0, 0, 0], 0, 1e-12, 'chair j=0');
    assertClose(chair[1]?.data ?? [], [1, 0, 0, 1 / 16], 0, 1e-12, 'chair j=1');
    assert.equal(chair[0]?.width, 2);
    assertClose(res[2]?.grounding?.[0]?.data ?? [], [0.75, 0, 0.75, 0], 0, 1e-12, 'sofa');
    assert.equal(wm.info.grounding, true);
    assert.equal(wm.info.hfov, 79);
    assert.deepEqual(wm.info.actions['move_forward'], { kind: 'move', amount: 0.25 });
  });

  it('resizes frames to the model resolution by area averaging', async () => {
    const wm = new SimulatorWorldModel(new OracleStandIn(), { resolution: { width: 4, height: 4 }, grounding: { width: 2, height: 2 }, horizon: 1 });
    const [r] = await wm.imagine({ context: ctx, candidates: [{ actions: ['turn_left'] }] });
    const truth = truthFrame(['turn_left'], 0);
    const f = r?.frames[0];
    assert.ok(f && f.width === 4 && f.height === 4);
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 4; x++) {
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) s += truth.data[((2 * y + dy) * 8 + 2 * x + dx) * 3 + c] as number;
          assert.equal(f.data[(y * 4 + x) * 3 + c], Math.round(s / 4));
        }
      }
    }
  });

  it("splits large batches to stay within the protocol's per-request limits, keeping candidate order", async () => {
    const env = new OracleStandIn();
    const wm = new SimulatorWorldModel(env, { resolution: { width: 8, height: 8 }, grounding: { width: 2, height: 2 }, horizon: 4, maxFramesPerRequest: 32 });
    const acts = ['move_forward', 'turn_left', 'turn_right'];
    const candidates = Array.from({ length: 20 }, (_, c) => ({ actions: [0, 1, 2, 3].map((j) => acts[(c * 7 + j * c) % 3] as string) }));
    const res = await wm.imagine({ context: ctx, candidates });
    assert.deepEqual(env.calls.map((c) => c.sequences.length), [8, 8, 4]);
    res.forEach((r, c) => assert.deepEqual(r.frames[3], truthFrame((candidates[c] as Instruction).actions, 3)));
    env.calls.length = 0;
    const withGoal = candidates.map((c) => ({ ...c, goalCategory: 'chair' }));
    const res2 = await wm.imagine({ context: ctx, candidates: withGoal });
    assert.deepEqual(env.calls.map((c) => c.sequences.length), [8, 8, 5], 'the 2-frame probe fits in the last request');
    for (const call of env.calls) assert.ok(call.sequences.reduce((a, q) => a + q.length, 0) <= 32);
    res2.forEach((r, c) => assert.deepEqual(r.frames[0], truthFrame((candidates[c] as Instruction).actions, 0)));
    env.calls.length = 0;
    const noProbe = new SimulatorWorldModel(env, { resolution: { width: 8, height: 8 }, grounding: { width: 2, height: 2 }, horizon: 4, currentGrounding: false });
    const [r3] = await noProbe.imagine({ context: ctx, candidates: [withGoal[0] as Instruction] });
    assert.deepEqual(env.calls.map((c) => c.sequences.length), [1]);
    assert.equal(r3?.currentGrounding, undefined);
    assert.ok(r3?.grounding);
  });

  it('refuses an environment without the oracle op, unknown actions, wrong horizons and short replies', async () => {
    await rejectsWith(() => new SimulatorWorldModel(new OracleStandIn({ ...CAPS, ops: [] }), { resolution: { width: 8, height: 8 }, grounding: { width: 2, height: 2 } }), 'E_ORACLE_DISABLED', 'oracle-stand-in');
    const env = new OracleStandIn();
    const wm = new SimulatorWorldModel(env, { resolution: { width: 8, height: 8 }, grounding: { width: 2, height: 2 }, horizon: 2 });
    await rejectsWith(wm.imagine({ context: ctx, candidates: [{ actions: ['move_forward', 'fly'] }] }), 'E_MODEL_ACTION', '"fly"');
    await rejectsWith(wm.imagine({ context: ctx, candidates: [{ actions: ['move_forward'] }] }), 'E_MODEL_INPUT', 'horizon is 2');
    env.framesShort = true;
    await rejectsWith(wm.imagine({ context: ctx, candidates: [{ actions: ['move_forward', 'turn_left'] }] }), 'E_PROTOCOL_FIELD', 'expected 2');
  });
});

describe('worldmodel oracle: resampling helpers', () => {
  it('maskToGrounding gives the exact covered fraction for non-divisible grids', () => {
    const m = new Uint8Array(36);
    m[1 * 6 + 1] = 1; // pixel (1,1) of a 6×6 mask; cells of the 4×4 grid are 1.5 px wide
    const g = maskToGrounding(m, 6, 6, 4, 4);
    const expected = new Array<number>(16).fill(0);
    for (const i of [0, 1, 4, 5]) expected[i] = 1 / 9;
    assertClose(g.data, expected, 0, 1e-7); // float32 storage
    let total = 0;
    for (const v of g.data) total += v * 2.25;
    assert.ok(Math.abs(total - 1) < 1e-6, 'area is conserved');
    assert.throws(() => maskToGrounding(new Uint8Array(5), 2, 2, 1, 1), RangeError);
  });

  it('resizeFrameArea weights partial pixels; same size is returned as is', () => {
    const row = makeFrame(3, 1, (x) => [0, 90, 180][x] as number);
    const r = resizeFrameArea(row, 2, 1);
    assert.deepEqual([...r.data.filter((_, i) => i % 3 === 0)], [30, 150]);
    const up = resizeFrameArea(makeFrame(2, 1, (x) => (x === 0 ? 10 : 200)), 4, 1);
    assert.deepEqual([...up.data.filter((_, i) => i % 3 === 0)], [10, 10, 200, 200]);
    const same = makeFrame(4, 4, () => 7);
    assert.equal(resizeFrameArea(same, 4, 4), same);
  });
});

describe('worldmodel oracle: RepeatLastWorldModel', () => {
  it('repeats the newest context frame for every candidate, with no grounding, mirroring the base info', async () => {
    const base = new SimulatorWorldModel(new OracleStandIn(), { resolution: { width: 4, height: 4 }, grounding: { width: 2, height: 2 }, horizon: 3, name: 'learned' });
    const wm = new RepeatLastWorldModel(base.info);
    assert.equal(wm.info.grounding, false);
    assert.equal(wm.info.name, 'learned+repeat-last');
    assert.deepEqual(wm.info.actions, base.info.actions);
    assert.equal(wm.info.horizon, 3);
    const older = makeFrame(4, 4, () => 9);
    const newest = makeFrame(4, 4, (x, y, c) => x + 4 * y + 16 * c);
    const res = await wm.imagine({ context: { frames: [older, newest], positions: [3, 8] }, candidates: [{ actions: ['move_forward', 'turn_left', 'turn_left'], goalCategory: 'chair' }, { actions: ['turn_right', 'turn_right', 'turn_right'] }] });
    assert.equal(res.length, 2);
    for (const r of res) {
      assert.equal(r.grounding, undefined);
      assert.equal(r.frames.length, 3);
      for (const f of r.frames) assert.deepEqual(f, newest);
    }
    assert.notEqual(res[0]?.frames[0]?.data, res[0]?.frames[1]?.data, 'frames are copies');
    const big = makeFrame(8, 8, () => 40);
    const [r] = await wm.imagine({ context: { frames: [big], positions: [0] }, candidates: [{ actions: ['move_forward', 'move_forward', 'move_forward'] }] });
    assert.equal(r?.frames[0]?.width, 4);
    assert.equal(r?.frames[0]?.data[0], 40);
    await rejectsWith(wm.imagine({ context: { frames: [newest], positions: [0] }, candidates: [{ actions: ['move_forward', 'jump', 'stop'] }] }), 'E_MODEL_ACTION', '"jump"');
    await rejectsWith(wm.imagine({ context: { frames: [], positions: [] }, candidates: [{ actions: ['move_forward', 'move_forward', 'move_forward'] }] }), 'E_MODEL_INPUT', 'empty');
  });
});

describe('worldmodel checkStepSizes', () => {
  const info = { name: 'm', actions: { move_forward: { kind: 'move', amount: 0.25 }, turn_left: { kind: 'turn', amount: 30 }, stop: { kind: 'stop', amount: 0 } } } as const;

  it('passes when the amounts agree (stop amounts ignored)', () => {
    checkStepSizes(info, { actions: { ...CAPS.actions, stop: { kind: 'stop', amount: 5 } } });
  });

  it('E_MODEL_STEP_SIZE names each differing action with both amounts; E_UNKNOWN_ACTION for missing ones', async () => {
    await rejectsWith(() => checkStepSizes(info, { actions: { ...CAPS.actions, move_forward: { kind: 'move', amount: 0.3 }, turn_left: { kind: 'turn', amount: 15 } } }), 'E_MODEL_STEP_SIZE', 'move_forward: model trained on 0.25 m, simulator does 0.3 m', 'turn_left: model trained on 30°, simulator does 15°');
    await rejectsWith(() => checkStepSizes(info, { actions: { ...CAPS.actions, turn_left: { kind: 'look', amount: 30 } } }), 'E_MODEL_STEP_SIZE', 'turn_left: model turn, simulator look');
    const { turn_left: _dropped, ...rest } = CAPS.actions;
    await rejectsWith(() => checkStepSizes(info, { actions: rest }), 'E_UNKNOWN_ACTION', 'turn_left');
  });
});
