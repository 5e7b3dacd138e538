/**
 * Robot safety latency T: the real time from each trigger to the zero-velocity Twist arriving at rosbridge,
 * measured over a real loopback WebSocket with the real clock. The rosbridge peer is the TEST DOUBLE of
 * test/support/rosbridge-double.ts (a real rosbridge needs ROS); its receive time stamps each message
 * (performance.now() in this process, as the triggers are). Triggers:
 *
 * - agent failure mid-motion: the run is aborted while a step's motion is under way (runRobotEpisode);
 * - agent failure between motions: the planner throws (runRobotEpisode);
 * - planner hang: time past planTimeoutMs until zero (runRobotEpisode);
 * - explicit stop: the planner returns `stop`;
 * - emergencyStop(): called by the user;
 * - watchdog: time past watchdogMs after a drive() that is not renewed;
 * - link drop: from the drop to the zero sent after reconnecting (reconnectMs 100; the robot's own command
 *   timeout is what acts in between).
 *
 * Run: npx tsx bench/safety.ts [repetitions, default 20]
 */
import { fileURLToPath } from 'node:url';
import { percentile } from '../src/agent/metrics.js';
import { runRobotEpisode } from '../src/agent/robot-safety.js';
import { PLANNER_SPEC_VERSION, type Plan, type Planner } from '../src/planner/planner.js';
import { encodeFrame } from '../src/sim-adapters/protocol/image.js';
import { RosbridgeRobot, type RosbridgeRobotOptions, type Twist } from '../src/sim-adapters/ros/rosbridge-robot.js';
import { RosbridgeDouble, compressedImageMsg, type Received } from '../test/support/rosbridge-double.js';

const CAM = '/camera/image_raw/compressed';

/** One measured trigger. */
export interface SafetyBenchRow {
  readonly trigger: string;
  readonly n: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly maxMs: number;
}

function isZero(r: Received): boolean {
  const t = r.msg as unknown as Twist;
  return t.linear.x === 0 && t.angular.z === 0;
}

/** The receive time of the first zero on cmd_vel at or after index `from`; waits for it. */
async function zeroAfter(double: RosbridgeDouble, from: number): Promise<number> {
  const cmd = (): Received[] => double.publishedOn('/cmd_vel');
  await double.until(() => cmd().slice(from).some(isZero), 10_000, 'a zero command');
  const z = cmd().slice(from).find(isZero);
  if (z === undefined) throw new Error('no zero');
  return z.at;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function planner(fn: (signal?: AbortSignal) => Promise<Plan>): Planner {
  return { specificationVersion: PLANNER_SPEC_VERSION, name: 'bench', plan: (_i, signal) => fn(signal) };
}

/** Runs the safety benchmark; returns one row per trigger. */
export async function benchSafety(reps = 20, print = true): Promise<SafetyBenchRow[]> {
  const png = await encodeFrame({ width: 16, height: 12, data: new Uint8Array(16 * 12 * 3).fill(90) }, 'png');
  const double = await RosbridgeDouble.start({ [CAM]: 'sensor_msgs/CompressedImage' });
  const pump = setInterval(() => double.publishFromRobot(CAM, compressedImageMsg('png', png)), 10);
  const options: RosbridgeRobotOptions = {
    url: double.url,
    camera: { topic: CAM },
    settleMs: 10,
    watchdogMs: 200,
    reconnectMs: 100,
    // Short, slow motions: a step lasts 100 ms, long enough to interrupt, short enough to repeat.
    actions: { move_forward: { kind: 'move', amount: 0.02, linear: 0.2 }, turn_left: { kind: 'turn', amount: 30, angular: 0.5 }, stop: { kind: 'stop', amount: 0 } },
  };
  const robot = await RosbridgeRobot.connect(options);
  const cmdCount = (): number => double.publishedOn('/cmd_vel').length;
  const waitMoving = async (): Promise<void> => {
    await double.until(() => {
      const last = double.publishedOn('/cmd_vel').at(-1);
      return last !== undefined && !isZero(last);
    }, 10_000, 'a motion command');
  };
  const rows: SafetyBenchRow[] = [];
  const measure = async (trigger: string, once: () => Promise<number>): Promise<void> => {
    const t: number[] = [];
    for (let i = 0; i < reps; i++) {
      t.push(await once());
      await sleep(20);
    }
    rows.push({ trigger, n: t.length, p50Ms: percentile(t, 0.5), p95Ms: percentile(t, 0.95), maxMs: Math.max(...t) });
  };
  try {
    await measure('agent failure mid-motion (run aborted)', async () => {
      const ac = new AbortController();
      const ep = runRobotEpisode(robot, planner(async () => ({ actions: [{ name: 'turn_left' }] })), { signal: ac.signal }).catch(() => undefined);
      await waitMoving();
      const from = cmdCount();
      const t0 = performance.now();
      ac.abort(new Error('bench'));
      const at = await zeroAfter(double, from);
      await ep;
      return at - t0;
    });
    await measure('agent failure between motions (planner throws)', async () => {
      let calls = 0;
      let t0 = 0;
      let from = 0;
      await runRobotEpisode(
        robot,
        planner(async () => {
          if (calls++ === 0) return { actions: [{ name: 'move_forward' }] };
          from = cmdCount();
          t0 = performance.now();
          throw new Error('bench');
        }),
      ).catch(() => undefined);
      return (await zeroAfter(double, from)) - t0;
    });
    await measure('planner hang, past planTimeoutMs (100 ms)', async () => {
      let calls = 0;
      let deadline = 0;
      let from = 0;
      await runRobotEpisode(
        robot,
        planner(async (signal) => {
          if (calls++ === 0) return { actions: [{ name: 'move_forward' }] };
          from = cmdCount();
          deadline = performance.now() + 100;
          return new Promise<Plan>((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason), { once: true }));
        }),
        { planTimeoutMs: 100 },
      ).catch(() => undefined);
      return (await zeroAfter(double, from)) - deadline;
    });
    await measure('explicit stop (planner returns stop)', async () => {
      let t0 = 0;
      let from = 0;
      await runRobotEpisode(
        robot,
        planner(async () => {
          from = cmdCount();
          t0 = performance.now();
          return { actions: [{ name: 'stop' }] };
        }),
      );
      return (await zeroAfter(double, from)) - t0;
    });
    await measure('emergencyStop() during a drive', async () => {
      robot.drive({ linear: 0.1 });
      await waitMoving();
      const from = cmdCount();
      const t0 = performance.now();
      robot.emergencyStop();
      const at = await zeroAfter(double, from);
      robot.resume();
      return at - t0;
    });
    await measure('watchdog, past watchdogMs (200 ms) after a drive()', async () => {
      robot.drive({ linear: 0.1 });
      const deadline = performance.now() + 200;
      await waitMoving();
      const from = cmdCount();
      return (await zeroAfter(double, from)) - deadline;
    });
    await measure('link drop → zero after reconnecting (reconnectMs 100)', async () => {
      robot.drive({ linear: 0.1 });
      await waitMoving();
      const from = cmdCount();
      const t0 = performance.now();
      double.dropClients();
      const at = await zeroAfter(double, from);
      while (!robot.isConnected) await sleep(5);
      return at - t0;
    });
  } finally {
    clearInterval(pump);
    await robot.close();
    await double.close();
  }
  if (print) {
    console.log(`robot safety latency T (real clock, loopback rosbridge double, ${reps} repetitions each)`);
    console.log('trigger                                             p50 ms   p95 ms   max ms');
    for (const r of rows) console.log(`${r.trigger.padEnd(50)} ${r.p50Ms.toFixed(2).padStart(7)}  ${r.p95Ms.toFixed(2).padStart(7)}  ${r.maxMs.toFixed(2).padStart(7)}`);
    console.log('(planner hang and watchdog: time past their deadline; link drop: includes reconnectMs and the new connection)');
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await benchSafety(Number(process.argv[2] ?? '20'));
  process.exit(0);
}
