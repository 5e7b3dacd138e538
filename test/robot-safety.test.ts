/**
 * Issue 8 §4 (robot safety), at the agent level: the real agent loop (`runRobotEpisode` → `runEpisode`) drives
 * the real `RosbridgeRobot` over a real WebSocket to the rosbridge v2 TEST DOUBLE (test/support/rosbridge-double.ts;
 * a real rosbridge needs ROS, which cannot run here). Motion profiles and the watchdog run on a ManualClock (fake
 * timers), so "when" is exact on the robot's clock and no test waits for a motion; the real latency T is measured
 * by bench/safety.ts, never here. Zero velocity goes out:
 * - at once when the agent fails mid-motion (the run is aborted) or between motions (planner, hook, bad plan);
 * - while the planner hangs, it already went out at the end of the last motion, nothing moves, and the planner
 *   timeout then ends the episode with another zero;
 * - when the socket drops, first thing after the link is back (nothing can be published while it is down:
 *   the robot's own command timeout covers that gap, docs/reliability.md §6);
 * - on an explicit `stop`, and on a user's emergencyStop(), whose latch the agent leaves in force.
 */
import assert from 'node:assert/strict';
import { isV4sError } from '../src/errors.js';
import { runRobotEpisode, safetyStop, type SafetyStopEvent } from '../src/agent/robot-safety.js';
import { PLANNER_SPEC_VERSION, type Plan, type Planner } from '../src/planner/planner.js';
import { encodeFrame } from '../src/sim-adapters/protocol/image.js';
import { RosbridgeRobot, type RosbridgeRobotOptions, type Twist } from '../src/sim-adapters/ros/rosbridge-robot.js';
import { ManualClock } from '../src/sim-adapters/ros/watchdog.js';
import { RosbridgeDouble, compressedImageMsg, type Received } from './support/rosbridge-double.js';
import { gradientFrame, rejectionOf, waitFor } from './ws-fixtures.js';

const CAM = '/camera/image_raw/compressed';

function twistOf(r: Received | undefined): [number, number] {
  const msg = r?.msg as unknown as Twist | undefined;
  return [msg?.linear.x ?? NaN, msg?.angular.z ?? NaN];
}

/** A planner that answers from a script: an action name, an error to throw, 'hang', or a custom plan. */
function scripted(steps: readonly (string | Error | 'hang' | Plan)[]): Planner & { calls: number } {
  const p = {
    specificationVersion: PLANNER_SPEC_VERSION,
    name: 'scripted',
    calls: 0,
    plan: async (_input: unknown, signal?: AbortSignal): Promise<Plan> => {
      const s = steps[Math.min(p.calls++, steps.length - 1)] ?? 'stop';
      if (s instanceof Error) throw s;
      if (s === 'hang') {
        await new Promise<never>((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason), { once: true }));
      }
      if (typeof s === 'object') return s as Plan;
      return { actions: [{ name: s as string }] };
    },
  };
  return p;
}

describe('robot safety: the agent loop on a rosbridge robot (double, real socket, fake clock)', function () {
  this.timeout(20_000);
  let double: RosbridgeDouble;
  let robot: RosbridgeRobot | undefined;
  let pump: NodeJS.Timeout | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let png: Uint8Array;

  before(async () => {
    png = await encodeFrame(gradientFrame(16, 12, 1), 'png');
  });
  beforeEach(async () => {
    double = await RosbridgeDouble.start({ [CAM]: 'sensor_msgs/CompressedImage' });
    pump = setInterval(() => double.publishFromRobot(CAM, compressedImageMsg('png', png)), 10);
  });
  afterEach(async () => {
    clearInterval(pump);
    clearInterval(ticker);
    ticker = undefined;
    if (robot !== undefined) await robot.close();
    robot = undefined;
    await double.close();
  });

  async function connect(extra: Partial<RosbridgeRobotOptions> = {}): Promise<{ robot: RosbridgeRobot; clock: ManualClock }> {
    const clock = new ManualClock();
    robot = await RosbridgeRobot.connect({ url: double.url, camera: { topic: CAM }, clock, reconnectMs: 0, settleMs: 20, ...extra });
    return { robot, clock };
  }
  /** Lets fake time run: 100 ms of robot clock every 5 ms of real time (motions complete). */
  function runClock(clock: ManualClock): void {
    clearInterval(ticker);
    ticker = setInterval(() => clock.advance(100), 5);
  }
  const cmd = (): Received[] => double.publishedOn('/cmd_vel');
  const lastCmd = (): [number, number] => twistOf(cmd().at(-1));
  const moving = (): boolean => lastCmd()[0] !== 0 || lastCmd()[1] !== 0;

  it('the run fails mid-motion (aborted): zero velocity at once, at the same instant on the robot clock; the motion never resumes', async () => {
    const { robot: r, clock } = await connect();
    const ac = new AbortController();
    const events: SafetyStopEvent[] = [];
    const episode = runRobotEpisode(r, scripted(['move_forward']), { signal: ac.signal, onSafetyStop: (e) => events.push(e) });
    await double.until(() => lastCmd()[0] === 0.2, 5000, 'the move command');
    const t0 = clock.now();
    assert.equal(r.lastCommand.linear.x, 0.2);
    ac.abort(new Error('operator pressed Ctrl-C'));
    assert.match((await rejectionOf(episode)).message, /operator pressed Ctrl-C/);
    // Zero went out before the episode's promise settled, with no robot-clock time passing.
    assert.equal(r.lastCommand.linear.x, 0);
    assert.equal(clock.now(), t0, 'T = 0 ms on the robot clock (the real latency is bench/safety.ts)');
    assert.equal(r.stats.zeros.emergencyStop, 1);
    assert.deepEqual(events.map((e) => [e.published, e.released]), [[true, true]]);
    assert.equal(r.isEmergencyStopped, false, 'the latch is released for the next episode');
    await double.until(() => lastCmd()[0] === 0, 5000, 'zero on the wire');
    // The cancelled motion's timers are gone: nothing but zeros, however long the robot clock runs.
    const n = cmd().length;
    clock.advance(30_000);
    await new Promise((res) => setTimeout(res, 50));
    assert.ok(cmd().slice(n).every((c) => twistOf(c)[0] === 0 && twistOf(c)[1] === 0));
    assert.equal(r.watchdog.armed, false);
  });

  for (const [what, make] of [
    ['the planner throws', () => scripted(['move_forward', new Error('NaN in scores')])],
    ['the planner returns an invalid plan (E_PLAN)', () => scripted(['move_forward', { actions: [] }])],
    ['the planner picks an action the robot lacks', () => scripted(['move_forward', 'fly'])],
  ] as const) {
    it(`an error in the agent between motions (${what}): the robot had stopped at the end of the motion, and zero goes out again at once`, async () => {
      const { robot: r, clock } = await connect();
      runClock(clock);
      const events: SafetyStopEvent[] = [];
      const e = await rejectionOf(runRobotEpisode(r, make(), { onSafetyStop: (x) => events.push(x) }));
      assert.ok(!isV4sError(e, 'E_ABORTED'), `an agent failure, not the environment's: ${e.message}`);
      const seq = cmd().map(twistOf);
      const lastMove = seq.map((t) => t[0]).lastIndexOf(0.2);
      assert.ok(lastMove > 0, 'the robot moved');
      assert.ok(seq.slice(lastMove + 1).every(([l, a]) => l === 0 && a === 0), 'only zeros after the motion');
      assert.equal(r.stats.zeros['motion end'], 1, 'the motion ended with zero');
      assert.equal(r.stats.zeros.emergencyStop, 1, 'and the failure sent zero again');
      assert.equal(events[0]?.published, true);
      assert.equal(r.isEmergencyStopped, false);
    });
  }

  it('the planner hangs: nothing moves meanwhile (zero went out at the end of the last motion), then planTimeoutMs ends the episode with another zero', async () => {
    const { robot: r, clock } = await connect({ watchdogMs: 500 });
    const planner = scripted(['move_forward', 'hang']);
    const episode = runRobotEpisode(r, planner, { planTimeoutMs: 300 });
    await double.until(() => lastCmd()[0] === 0.2, 5000, 'the move command');
    clock.advance(1250); // the end of the 0.25 m profile at 0.2 m/s
    await waitFor(() => planner.calls === 2, 5000, 'the second (hanging) decision');
    assert.equal(r.lastCommand.linear.x, 0);
    const n = cmd().length;
    clock.advance(60_000); // a minute of robot time while the planner hangs
    assert.equal(r.watchdog.armed, false, 'no command is being guarded: the robot is stopped');
    assert.ok(cmd().slice(n).every((c) => twistOf(c)[0] === 0), 'no motion while the planner hangs');
    const e = await rejectionOf(episode);
    assert.equal(e.code, 'E_TIMEOUT');
    assert.match(e.message, /gave no plan within 300 ms/);
    assert.equal(r.stats.zeros.emergencyStop, 1);
    await double.until(() => cmd().length > n, 5000, 'the zero of the safety stop');
    assert.deepEqual(lastCmd(), [0, 0]);
  });

  it('the socket drops mid-motion: the episode is aborted (E_CLOSED), nothing is sent while the link is down, zero is the first command once it is back', async () => {
    const { robot: r } = await connect({ reconnectMs: 50 });
    const events: SafetyStopEvent[] = [];
    const episode = runRobotEpisode(r, scripted(['move_forward']), { onSafetyStop: (x) => events.push(x) });
    await double.until(() => lastCmd()[0] === 0.2, 5000, 'the move command');
    const before = cmd().length;
    double.dropClients();
    const e = await rejectionOf(episode);
    assert.equal(e.code, 'E_ABORTED');
    assert.equal(e.details?.['code'], 'E_CLOSED');
    assert.deepEqual(events.map((x) => x.published), [false], 'no zero can go out over a dropped link');
    await waitFor(() => r.isConnected && r.stats.reconnects === 1, 5000, 'the reconnection');
    await double.until(() => cmd().length > before, 5000, 'a command after the reconnection');
    const after = cmd().slice(before).map(twistOf);
    assert.deepEqual(after[0], [0, 0], 'zero first');
    assert.ok(after.every(([l, a]) => l === 0 && a === 0), 'no stale motion command sent late');
    assert.equal(r.isEmergencyStopped, false, 'usable again');
  });

  it('an explicit stop: the planner stops → zero at that step; a user emergencyStop() mid-motion → zero, and its latch stays in force', async () => {
    const { robot: r, clock } = await connect();
    runClock(clock);
    const trace = await runRobotEpisode(r, scripted(['turn_left', 'stop']));
    assert.equal(trace.endReason, 'stop');
    assert.deepEqual(trace.actions, ['turn_left', 'stop']);
    assert.equal(r.stats.zeros.stop, 1);
    await double.until(() => lastCmd()[1] === 0, 5000, 'zero');
    assert.equal(r.stats.zeros.emergencyStop ?? 0, 0, 'a successful episode needs no safety stop');

    clearInterval(ticker);
    const episode = runRobotEpisode(r, scripted(['move_forward']));
    await double.until(() => lastCmd()[0] === 0.2, 5000, 'the move command');
    assert.equal(r.emergencyStop(), true); // the user's red button
    const e = await rejectionOf(episode);
    assert.equal(e.code, 'E_ABORTED');
    assert.equal(e.details?.['code'], 'E_EMERGENCY_STOP');
    assert.equal(r.isEmergencyStopped, true, "the user's latch is not released by the agent");
    await double.until(() => lastCmd()[0] === 0, 5000, 'zero');
  });

  it('safetyStop never throws, even when the robot breaks its contract', () => {
    const broken = {
      isEmergencyStopped: false,
      emergencyStop: (): boolean => {
        throw new Error('boom');
      },
      resume: (): void => undefined,
    };
    assert.deepEqual(safetyStop(broken, new Error('x')), { error: new Error('x'), published: false, released: false });
  });
});
