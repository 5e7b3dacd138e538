/**
 * The rosbridge robot (roslib 2.x) against the rosbridge v2 TEST DOUBLE of test/support/rosbridge-double.ts, over
 * a real WebSocket on loopback: a real rosbridge needs ROS, which cannot run here. Motion profiles and the
 * watchdog run on a ManualClock (fake timers), so timings are exact and nothing waits for real seconds; frames and
 * the socket are real.
 */
import assert from 'node:assert/strict';
import type { Frame } from '../src/types.js';
import type { V4sError } from '../src/errors.js';
import { encodeFrame } from '../src/sim-adapters/protocol/image.js';
import { RosbridgeRobot, type RosbridgeRobotOptions, type Twist } from '../src/sim-adapters/ros/rosbridge-robot.js';
import { ManualClock } from '../src/sim-adapters/ros/watchdog.js';
import { RosbridgeDouble, compressedImageMsg, imageMsg, odometryMsg, type Received } from './support/rosbridge-double.js';
import { frameDiff, gradientFrame, rejectionOf, waitFor } from './ws-fixtures.js';

const CAM = '/camera/image_raw/compressed';
const RAW_CAM = '/camera/color/image_raw';
const ODOM = '/odom';

function twistOf(r: Received | undefined): [number, number] {
  const msg = r?.msg as unknown as Twist | undefined;
  return [msg?.linear.x ?? NaN, msg?.angular.z ?? NaN];
}

describe('ros: RosbridgeRobot over a rosbridge v2 double (real WebSocket)', function () {
  this.timeout(20_000);
  let double: RosbridgeDouble;
  let robot: RosbridgeRobot | undefined;
  let pump: NodeJS.Timeout | undefined;
  let png: Uint8Array;
  let frame: Frame;

  before(async () => {
    frame = gradientFrame(16, 12, 1);
    png = await encodeFrame(frame, 'png');
  });

  beforeEach(async () => {
    double = await RosbridgeDouble.start({ [CAM]: 'sensor_msgs/CompressedImage', [RAW_CAM]: 'sensor_msgs/Image', [ODOM]: 'nav_msgs/Odometry' });
  });

  afterEach(async () => {
    clearInterval(pump);
    pump = undefined;
    if (robot !== undefined) await robot.close();
    robot = undefined;
    await double.close();
  });

  /** The robot's camera node: publishes `msg()` every 10 ms once someone subscribed. */
  function startCamera(topic = CAM, msg: () => Record<string, unknown> = () => compressedImageMsg('png', png)): void {
    clearInterval(pump);
    pump = setInterval(() => double.publishFromRobot(topic, msg()), 10);
  }

  async function connect(extra: Partial<RosbridgeRobotOptions> = {}, clock = new ManualClock()): Promise<{ robot: RosbridgeRobot; clock: ManualClock }> {
    if (pump === undefined) startCamera();
    robot = await RosbridgeRobot.connect({ url: double.url, camera: { topic: CAM, hfov: 70 }, clock, reconnectMs: 0, ...extra });
    return { robot, clock };
  }

  const cmd = (): Received[] => double.publishedOn('/cmd_vel');
  const lastCmd = (): [number, number] => twistOf(cmd().at(-1));

  it('connects: advertises cmd_vel as geometry_msgs/Twist, publishes zero first, subscribes to the camera; capabilities from the first frame', async () => {
    const { robot: r } = await connect();
    await double.until(() => cmd().length >= 1, 5000, 'a first cmd_vel message');
    const advertise = double.ops.find((o) => o.op === 'advertise');
    assert.deepEqual([advertise?.topic, advertise?.type], ['/cmd_vel', 'geometry_msgs/Twist']);
    assert.deepEqual(lastCmd(), [0, 0]);
    assert.ok(double.ops.findIndex((o) => o.op === 'advertise') < double.ops.findIndex((o) => o.op === 'publish'), 'advertise before publish');
    assert.deepEqual(double.statuses, []);
    const sub = double.ops.filter((o) => o.op === 'subscribe').at(-1);
    assert.deepEqual([sub?.topic, sub?.type], [CAM, 'sensor_msgs/CompressedImage']);
    assert.deepEqual(r.capabilities.camera, { width: 16, height: 12, hfov: 70 });
    assert.equal(r.capabilities.mode, 'stream');
    assert.deepEqual(r.capabilities.actions, {
      move_forward: { kind: 'move', amount: 0.25 },
      turn_left: { kind: 'turn', amount: 30 },
      turn_right: { kind: 'turn', amount: 30 },
      stop: { kind: 'stop', amount: 0 },
    });
  });

  it('frames: CompressedImage PNG (exact) and JPEG (close) are pushed on observations$ with the step index', async () => {
    const jpeg = await encodeFrame(frame, 'jpeg');
    let useJpeg = false;
    startCamera(CAM, () => compressedImageMsg(useJpeg ? 'jpeg' : 'png', useJpeg ? jpeg : png));
    const { robot: r } = await connect();
    const seen: Frame[] = [];
    const sub = r.observations$.subscribe((o) => seen.push(o.rgb));
    await waitFor(() => seen.length >= 2, 5000, 'two frames');
    assert.deepEqual(seen[0], frame);
    useJpeg = true;
    const n = seen.length;
    await waitFor(() => seen.length >= n + 4, 5000, 'JPEG frames');
    const d = frameDiff(seen.at(-1) as Frame, frame);
    assert.ok(d.mean < 4, `JPEG mean error ${d.mean}`);
    sub.unsubscribe();
    const reset = await r.reset();
    assert.equal(reset.observation.step, 0);
  });

  it('frames: sensor_msgs/Image rgb8 with row padding and bgr8 decode exactly', async () => {
    const w = 5;
    const h = 3;
    const step = w * 3 + 4; // 4 bytes of padding per row
    const rgb = new Uint8Array(step * h);
    const bgr = new Uint8Array(step * h);
    const expected = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const [R, G, B] = [x * 40, y * 70, 200 - x * 10];
        rgb.set([R, G, B], y * step + x * 3);
        bgr.set([B, G, R], y * step + x * 3);
        expected.set([R, G, B], (y * w + x) * 3);
      }
      rgb.fill(255, y * step + w * 3, (y + 1) * step);
    }
    let useBgr = false;
    startCamera(RAW_CAM, () => imageMsg(w, h, useBgr ? 'bgr8' : 'rgb8', useBgr ? bgr : rgb, step));
    const { robot: r } = await connect({ camera: { topic: RAW_CAM } });
    assert.equal((await r.reset()).observation.rgb.data.join(), expected.join());
    useBgr = true;
    await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual((await r.reset()).observation.rgb, { width: w, height: h, data: expected });
  });

  it('odometry: nav_msgs/Odometry (ROS: x forward, y left, z up) becomes a Habitat pose', async () => {
    const { robot: r } = await connect({ odometry: { topic: ODOM } });
    // at ROS (1, 2, 0), turned 90° to the left
    const s = Math.SQRT1_2;
    await double.until(() => double.subscribers(ODOM) === 1, 5000, 'the odometry subscription');
    assert.equal(double.publishFromRobot(ODOM, odometryMsg([1, 2, 0], [0, 0, s, s])), 1);
    await waitFor(() => r.latestObservation?.pose !== undefined, 5000, 'a pose');
    const o = (await r.reset()).observation;
    const pose = o.pose;
    assert.ok(pose !== undefined);
    const close = (a: readonly number[], b: readonly number[]): void => a.forEach((v, i) => assert.ok(Math.abs(v - (b[i] ?? NaN)) < 1e-12, `${a} vs ${b}`));
    close(pose.position, [-2, 0, -1]);
    close(pose.rotation, [0, s, 0, s]); // +90° about +Y: a left turn in Habitat too
  });

  it('a discrete action is a velocity profile: 0.25 m at 0.2 m/s = 1250 ms, re-published at 10 Hz, then zero; answered by a later frame', async () => {
    const { robot: r, clock } = await connect();
    await r.reset();
    await double.until(() => cmd().length >= 1);
    const before = cmd().length;
    const stepping = r.step({ name: 'move_forward' });
    await double.until(() => cmd().length > before, 5000, 'the move command');
    assert.deepEqual(lastCmd(), [0.2, 0]);
    for (let t = 0; t < 12; t++) clock.advance(100);
    await double.until(() => cmd().length >= before + 13, 5000, '12 re-publications');
    assert.deepEqual(lastCmd(), [0.2, 0]);
    clock.advance(49);
    assert.equal(r.lastCommand.linear.x, 0.2);
    clock.advance(1); // 1250 ms
    await double.until(() => lastCmd()[0] === 0, 5000, 'zero at the end of the profile');
    const res = await stepping;
    assert.equal(res.observation.step, 1);
    assert.equal(res.terminated, false);
    assert.deepEqual(res.observation.rgb, frame);
    assert.equal(r.watchdog.armed, false);
    // turn_right: −0.5 rad/s for 30° = 1047.2 ms
    const turning = r.step({ name: 'turn_right' });
    await double.until(() => lastCmd()[1] === -0.5, 5000, 'the turn command');
    clock.advance(1047);
    assert.equal(r.lastCommand.angular.z, -0.5);
    clock.advance(1);
    assert.equal((await turning).observation.step, 2);
    assert.deepEqual(lastCmd(), [0, 0]);
  });

  it('velocities are clamped to the limits: drive() and profiles (which then take longer, never go further)', async () => {
    const { robot: r, clock } = await connect({
      limits: { maxLinear: 0.3, maxAngular: 0.6 },
      actions: { move_forward: { kind: 'move', amount: 0.25, linear: 1.0 }, stop: { kind: 'stop', amount: 0 } },
    });
    const t = r.drive({ linear: 2, angular: -5 });
    assert.deepEqual([t.linear.x, t.angular.z], [0.3, -0.6]);
    await double.until(() => lastCmd()[0] === 0.3, 5000, 'the clamped command');
    assert.deepEqual(lastCmd(), [0.3, -0.6]);
    assert.ok(cmd().every((c) => Math.abs(twistOf(c)[0]) <= 0.3 && Math.abs(twistOf(c)[1]) <= 0.6));
    const stepping = r.step({ name: 'move_forward' }).catch((e: unknown) => e);
    await double.until(() => lastCmd()[1] === 0, 5000, 'the profile command');
    assert.deepEqual(lastCmd(), [0.3, 0]);
    clock.advance(833); // 0.25 m / 0.3 m/s = 833.3 ms
    assert.equal(r.lastCommand.linear.x, 0.3);
    clock.advance(1);
    await double.until(() => lastCmd()[0] === 0, 5000, 'zero');
    await stepping;
  });

  it('watchdog: a drive() not renewed within watchdogMs is stopped (zero exactly at 500 ms); renewing keeps it going', async () => {
    const { robot: r, clock } = await connect({ watchdogMs: 500 });
    const errors: V4sError[] = [];
    r.errors$.subscribe((e) => errors.push(e));
    r.drive({ linear: 0.1 });
    await double.until(() => lastCmd()[0] === 0.1, 5000, 'the drive command');
    for (let i = 0; i < 5; i++) {
      clock.advance(300);
      r.drive({ linear: 0.1 });
    }
    assert.equal(r.stats.zeros.watchdog ?? 0, 0);
    clock.advance(499);
    assert.equal(r.lastCommand.linear.x, 0.1);
    assert.equal(r.stats.zeros.watchdog ?? 0, 0);
    clock.advance(1);
    assert.equal(r.stats.zeros.watchdog, 1);
    assert.equal(r.lastCommand.linear.x, 0);
    assert.deepEqual(errors.map((e) => e.code), ['E_TIMEOUT']);
    await double.until(() => lastCmd()[0] === 0, 5000, 'zero from the watchdog');
    const n = cmd().length;
    clock.advance(5000); // nothing more is published once stopped
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(cmd().length, n);
  });

  it('emergencyStop(): zero at once, the running step fails, motion is refused until resume(); stop still works', async () => {
    const { robot: r, clock } = await connect();
    await r.reset();
    const stepping = r.step({ name: 'move_forward' });
    await double.until(() => lastCmd()[0] === 0.2, 5000, 'the move command');
    assert.equal(r.emergencyStop(), true);
    assert.equal(r.lastCommand.linear.x, 0);
    assert.equal((await rejectionOf(stepping)).code, 'E_EMERGENCY_STOP');
    await double.until(() => lastCmd()[0] === 0, 5000, 'zero');
    assert.equal((await rejectionOf(r.step({ name: 'turn_left' }))).code, 'E_EMERGENCY_STOP');
    assert.throws(() => r.drive({ linear: 0.1 }), { code: 'E_EMERGENCY_STOP' });
    clock.advance(10_000);
    assert.ok(cmd().slice(-1).every((c) => twistOf(c)[0] === 0));
    const stop = await r.step({ name: 'stop' });
    assert.equal(stop.terminated, true);
    r.resume();
    const again = r.step({ name: 'turn_left' });
    await double.until(() => lastCmd()[1] === 0.5, 5000, 'motion after resume');
    clock.advance(1048);
    assert.equal((await again).terminated, false);
  });

  it('stop commands zero velocity and ends the episode; unknown actions and concurrent steps are refused', async () => {
    const { robot: r } = await connect();
    r.drive({ linear: 0.1 });
    await double.until(() => lastCmd()[0] === 0.1);
    const s = await r.step({ name: 'stop' });
    assert.equal(s.terminated, true);
    assert.deepEqual(lastCmd(), [0, 0]);
    assert.equal((await rejectionOf(r.step({ name: 'jump' }))).code, 'E_UNKNOWN_ACTION');
    const first = r.step({ name: 'turn_left' });
    assert.equal((await rejectionOf(r.step({ name: 'turn_left' }))).code, 'E_BUSY');
    r.emergencyStop();
    await first.catch(() => undefined);
  });

  it('any error stops the robot: an undecodable frame during a drive → zero velocity and E_FRAME_DECODE on errors$', async () => {
    let garbage = false;
    startCamera(CAM, () => compressedImageMsg('jpeg', garbage ? new Uint8Array([0xff, 0xd8, 0xff, 1, 2, 3]) : png));
    const { robot: r } = await connect();
    const errors: V4sError[] = [];
    r.errors$.subscribe((e) => errors.push(e));
    r.drive({ linear: 0.1 });
    await double.until(() => lastCmd()[0] === 0.1);
    garbage = true;
    await waitFor(() => errors.length > 0, 5000, 'an error');
    assert.equal(errors[0]?.code, 'E_FRAME_DECODE');
    assert.match(errors[0]?.message ?? '', /camera \/camera\/image_raw\/compressed/);
    await double.until(() => lastCmd()[0] === 0, 5000, 'zero after the error');
    assert.ok((r.stats.zeros.error ?? 0) >= 1);
  });

  it('a dropped link: the running step fails (E_CLOSED), nothing is queued meanwhile, and zero goes out first on reconnect', async () => {
    const { robot: r, clock } = await connect({ reconnectMs: 50 });
    await r.reset();
    const stepping = r.step({ name: 'move_forward' });
    await double.until(() => lastCmd()[0] === 0.2);
    double.dropClients();
    assert.equal((await rejectionOf(stepping)).code, 'E_CLOSED');
    assert.equal(r.isConnected, false);
    assert.throws(() => r.drive({ linear: 0.1 }), { code: 'E_CLOSED' });
    clock.advance(5000); // no motion timers left to fire
    const dropAt = cmd().length;
    await waitFor(() => r.isConnected && r.stats.reconnects === 1, 5000, 'the reconnection');
    await double.until(() => cmd().length > dropAt, 5000, 'a command after reconnecting');
    const after = cmd().slice(dropAt);
    assert.deepEqual(twistOf(after[0]), [0, 0]);
    assert.ok(after.every((c) => twistOf(c)[0] === 0), 'only zeros after the drop (no stale 0.2 sent late)');
    assert.equal(r.stats.zeros.reconnected, 1);
    assert.ok(r.stats.unsentCommands >= 0);
    assert.deepEqual(double.statuses, []); // re-advertised before the zero publish
    // usable again
    const turning = r.step({ name: 'turn_left' });
    await double.until(() => lastCmd()[1] === 0.5);
    clock.advance(1048);
    assert.equal((await turning).observation.step, 2);
  });

  it('a `close` event while the socket is still open (a message on a topic named "close") is not a drop; a real socket close still is', async () => {
    // roslib 2.1 (dist/RosLib.js): Ros re-emits its transport's close as `close` after setting isConnected to
    // false, and emits every incoming message as an event named by its `topic` (publish) or `id` (service
    // response), so {"op":"publish","topic":"close"} fires Ros `close` on a live socket. Topic itself never
    // emits `close` (only `message`, `warning`, `unsubscribe`, `unadvertise`).
    const { robot: r, clock } = await connect({ reconnectMs: 50 });
    const errors: V4sError[] = [];
    r.errors$.subscribe((e) => errors.push(e));
    await r.reset();
    const stepping = r.step({ name: 'move_forward' });
    await double.until(() => lastCmd()[0] === 0.2, 5000, 'the move command');
    const zerosBefore = { ...r.stats.zeros };
    assert.equal(double.sendToClients({ op: 'publish', topic: 'close', msg: {} }), 1);
    assert.equal(double.sendToClients({ op: 'service_response', id: 'close', values: {}, result: true }), 1);
    await waitFor(() => r.stats.spuriousCloses === 2, 5000, 'both close events');
    assert.equal(r.isConnected, true, 'still connected');
    assert.equal(errors.length, 0, 'no E_CLOSED reported');
    assert.deepEqual(r.stats.zeros, zerosBefore, 'no zero velocity for a drop');
    assert.equal(r.stats.reconnects, 0);
    // The motion goes on to its end (1250 ms) and the step answers normally.
    for (let t = 0; t < 12; t++) clock.advance(100);
    assert.equal(r.lastCommand.linear.x, 0.2, 'still moving after the spurious close');
    clock.advance(50);
    const res = await stepping;
    assert.equal(res.observation.step, 1);
    assert.equal(r.stats.zeros.error, undefined);

    // A real socket drop mid-motion still takes the drop path: E_CLOSED, the step fails, zero first on reconnect.
    const dropping = r.step({ name: 'move_forward' });
    await double.until(() => lastCmd()[0] === 0.2, 5000, 'the second move command');
    const dropAt = cmd().length;
    double.dropClients();
    assert.equal((await rejectionOf(dropping)).code, 'E_CLOSED');
    assert.equal(r.isConnected, false);
    assert.deepEqual(errors.map((e) => e.code), ['E_CLOSED']);
    assert.equal(r.stats.spuriousCloses, 2, 'the real close is not counted as spurious');
    await waitFor(() => r.isConnected && r.stats.reconnects === 1, 5000, 'the reconnection');
    await double.until(() => cmd().length > dropAt, 5000, 'a command after reconnecting');
    assert.deepEqual(twistOf(cmd()[dropAt]), [0, 0], 'zero first after the reconnect');
    assert.equal(r.stats.zeros.reconnected, 1);
    // Usable again: the camera is subscribed anew and a step is answered by a fresh frame.
    await double.until(() => double.subscribers(CAM) >= 1, 5000, 'the camera subscription after reconnecting');
    const turning = r.step({ name: 'turn_left' });
    await double.until(() => lastCmd()[1] === 0.5, 5000, 'the turn command');
    clock.advance(1048);
    assert.equal((await turning).observation.step, 3);
  });

  it('close(): zero velocity, then unsubscribe and unadvertise, then the socket closes', async () => {
    const { robot: r } = await connect();
    r.drive({ linear: 0.1 });
    await double.until(() => lastCmd()[0] === 0.1);
    await r.close();
    await double.until(() => double.clients === 0 && lastCmd()[0] === 0, 5000, 'zero and disconnection');
    const ops = double.ops.map((o) => o.op);
    const lastPublish = ops.lastIndexOf('publish');
    assert.ok(lastPublish < ops.lastIndexOf('unadvertise'), 'zero before unadvertise');
    assert.ok(ops.includes('unsubscribe'));
    assert.equal((await rejectionOf(r.step({ name: 'turn_left' }))).code, 'E_CLOSED');
    robot = undefined;
  });

  it('connect failures say what to check: E_CONNECT (no rosbridge), E_TIMEOUT (no frames on the topic), E_CONFIG', async () => {
    const gone = await RosbridgeDouble.start();
    const url = gone.url;
    await gone.close();
    const e1 = await rejectionOf(RosbridgeRobot.connect({ url, camera: { topic: CAM }, connectTimeoutMs: 3000 }));
    assert.equal(e1.code, 'E_CONNECT');
    assert.match(e1.message, /rosbridge_server/);
    const e2 = await rejectionOf(RosbridgeRobot.connect({ url: double.url, camera: { topic: '/nothing/compressed' }, firstFrameTimeoutMs: 200 }));
    assert.equal(e2.code, 'E_TIMEOUT');
    assert.match(e2.message, /\/nothing\/compressed/);
    const e3 = await rejectionOf(RosbridgeRobot.connect({ url: 'http://x', camera: { topic: CAM } }));
    assert.equal(e3.code, 'E_CONFIG');
    const e4 = await rejectionOf(RosbridgeRobot.connect({ url: double.url, camera: { topic: CAM }, limits: { maxLinear: -1, maxAngular: 1 } }));
    assert.equal(e4.code, 'E_CONFIG');
  });
});
