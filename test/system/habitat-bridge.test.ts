/**
 * System tier: the REAL Habitat bridge (src/sim-adapters/habitat/bridge.py + v4s_protocol.py, its command line
 * included) in a Python child process, driven by the TypeScript agent (`connectSimulator`, `listenForSimulator`)
 * over real WebSockets.
 *
 * habitat-sim itself cannot run here, so the bridge runs on a TEST STAND-IN that replaces habitat-sim
 * (test/support/habitat_sim_standin.py, started by test/support/habitat_bridge_standin.py): it implements the
 * few habitat-sim calls the bridge makes, with habitat-sim's data layouts (RGBA uint8 (H, W, 4) observations
 * keyed by sensor uuid plus `collided`, a w-first quaternion in `get_state()`, habitat-sim's default 10° turns
 * in the action space), and renders frames that are a pure function of the state, so every pixel is checked.
 *
 * Needs Debian's python3-websockets and python3-numpy (python3-pil adds JPEG). Without them the suite skips with
 * the install command — except under CI=true, where it fails.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Frame, Pose } from '../../src/types.js';
import { connectSimulator, type WsEnvironment } from '../../src/sim-adapters/ws-client.js';
import { listenForSimulator } from '../../src/sim-adapters/ws-listener.js';
import { RawPeer, frameDiff, rejectionOf } from '../ws-fixtures.js';
import { findPython, requirePrerequisite } from '../support/system-prereq.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LAUNCHER = path.join(ROOT, 'test', 'support', 'habitat_bridge_standin.py');
const W = 16;
const H = 12;

interface Bridge {
  readonly url: string;
  readonly child: ChildProcess;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

let python = '';

/** Starts the bridge on the stand-in; with `--dial` it connects out instead and `url` is ''. */
function startBridge(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<Bridge> {
  const child = spawn(python, [LAUNCHER, '--port', '0', '--width', String(W), '--height', String(H), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', ...env }, // keep __pycache__ out of src/ (it ships in the package)
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  const dialing = args.includes('--dial');
  return new Promise<Bridge>((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`the bridge did not start within ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    const done = (url: string): void => {
      clearTimeout(timer);
      resolve({ url, child, stderr: () => err, exited, stop });
    };
    if (dialing) {
      done('');
      return;
    }
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (ws:\/\/\S+)/.exec(out);
      if (m?.[1] !== undefined) done(m[1]);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the bridge exited (code ${code}) before listening: ${err}`));
    });
  });
}

const DEG = 180 / Math.PI;

/** Yaw about +Y in degrees, [0, 360), of a pure-yaw quaternion [x, y, z, w]. */
function yawDeg(q: Pose['rotation']): number {
  return (((2 * Math.atan2(q[1], q[3]) * DEG) % 360) + 360) % 360;
}

/** The stand-in's frame for a state (habitat_sim_standin.render), as RGB: alpha (200) dropped. */
function standInFrame(pose: Pose, tiltDeg = 0): Frame {
  const mod = (v: number): number => ((v % 256) + 256) % 256;
  const yaw = Math.round(yawDeg(pose.rotation)) % 360;
  const blue = mod(Math.round(20 * pose.position[0]) + 3 * Math.round(20 * pose.position[2]));
  const data = new Uint8Array(W * H * 3);
  for (let r = 0; r < H; r++) {
    for (let c = 0; c < W; c++) {
      const i = (r * W + c) * 3;
      data[i] = mod(7 * c + yaw);
      data[i + 1] = mod(5 * r + Math.round(tiltDeg) + 128);
      data[i + 2] = blue;
    }
  }
  return { width: W, height: H, data };
}

function close(a: number, b: number, eps: number, what: string): void {
  assert.ok(Math.abs(a - b) <= eps, `${what}: ${a} vs ${b}`);
}

function poseOf(o: { readonly pose?: Pose }): Pose {
  assert.ok(o.pose !== undefined, 'the observation has a pose');
  return o.pose;
}

describe('Habitat bridge (Python, on a stand-in that replaces habitat-sim) ↔ TypeScript agent', function () {
  this.timeout(60_000);
  const envs: WsEnvironment[] = [];
  const bridges: Bridge[] = [];

  before(function () {
    const found = findPython(['websockets', 'numpy']);
    requirePrerequisite(this, found.missing);
    python = found.python ?? 'python3';
  });

  after(async () => {
    await Promise.all(envs.splice(0).map((e) => e.close()));
    await Promise.all(bridges.splice(0).map((b) => b.stop()));
  });

  async function bridge(args: readonly string[], env: Record<string, string> = {}): Promise<Bridge> {
    const b = await startBridge(args, env);
    bridges.push(b);
    return b;
  }

  async function connect(url: string, options: Parameters<typeof connectSimulator>[1] = {}): Promise<WsEnvironment> {
    const env = await connectSimulator(url, { encoding: 'png', ...options });
    envs.push(env);
    return env;
  }

  async function closeEnv(env: WsEnvironment): Promise<void> {
    await env.close();
    envs.splice(envs.indexOf(env), 1);
  }

  describe('a scene (random PointNav episodes from the navmesh)', () => {
    let plain: Bridge;
    before(async () => {
      plain = await bridge(['--scene', 'room.glb']);
    });

    it('hello advertises the amounts the bridge set on the agent config: 0.25 m, 30° turns (habitat-sim: 10°)', async () => {
      const env = await connect(plain.url);
      const caps = env.capabilities;
      assert.equal(caps.name, 'habitat');
      assert.equal(caps.mode, 'lockstep');
      assert.deepEqual(caps.actions, {
        move_forward: { kind: 'move', amount: 0.25 },
        turn_left: { kind: 'turn', amount: 30 },
        turn_right: { kind: 'turn', amount: 30 },
        look_up: { kind: 'look', amount: 30 },
        look_down: { kind: 'look', amount: 30 },
        stop: { kind: 'stop', amount: 0 },
      });
      assert.deepEqual(caps.camera, { width: W, height: H, hfov: 90 });
      assert.ok(caps.encodings.includes('png') && caps.encodings.includes('raw'));
      assert.deepEqual(caps.tasks, ['pointnav', 'imagenav']);
      assert.deepEqual(caps.ops, []);
      await closeEnv(env);
    });

    it('three 30° turns give a 90° yaw; poses are [x, y, z, w]; frames are RGB (alpha dropped), pixel-exact in PNG', async () => {
      const env = await connect(plain.url);
      const r = await env.reset({ seed: 7, task: 'pointnav' });
      const p0 = poseOf(r.observation);
      assert.deepEqual(r.observation.rgb, standInFrame(p0));
      assert.equal(r.observation.step, 0);
      assert.equal(r.goal?.task, 'pointnav');
      let last = r.observation;
      for (let i = 1; i <= 3; i++) {
        const s = await env.step({ name: 'turn_left' });
        assert.equal(s.observation.step, i);
        assert.equal(s.observation.collided, false);
        assert.deepEqual(s.observation.rgb, standInFrame(poseOf(s.observation)));
        last = s.observation;
      }
      const p3 = poseOf(last);
      close((yawDeg(p3.rotation) - yawDeg(p0.rotation) + 360) % 360, 90, 1e-4, 'yaw after three turn_left');
      close(p3.rotation[0], 0, 1e-7, 'x');
      close(p3.rotation[2], 0, 1e-7, 'z');
      close(Math.hypot(...p3.rotation), 1, 1e-6, '|q|');
      assert.deepEqual(p3.position, p0.position);
      for (let i = 0; i < 3; i++) last = (await env.step({ name: 'turn_right' })).observation;
      close((yawDeg(poseOf(last).rotation) - yawDeg(p0.rotation) + 360 + 180) % 360, 180, 1e-4, 'yaw back after three turn_right');
      await closeEnv(env);
    });

    it('move_forward goes 0.25 m along −Z rotated by the pose; into a wall → collided; measures follow the agent', async () => {
      const env = await connect(plain.url);
      const r = await env.reset({ seed: 11, task: 'pointnav' });
      const goal = r.goal?.position;
      assert.ok(goal !== undefined);
      const p0 = poseOf(r.observation);
      const a = yawDeg(p0.rotation) / DEG;
      const s = await env.step({ name: 'move_forward' });
      const p1 = poseOf(s.observation);
      close(p1.position[0], p0.position[0] - 0.25 * Math.sin(a), 1e-5, 'x after move_forward');
      close(p1.position[2], p0.position[2] - 0.25 * Math.cos(a), 1e-5, 'z after move_forward');
      close(s.observation.info.pathLength ?? NaN, 0.25, 1e-5, 'pathLength');
      const dist = Math.hypot(p1.position[0] - goal[0], p1.position[2] - goal[2]);
      close(s.observation.info.distanceToGoal ?? NaN, dist, 1e-5, 'distanceToGoal (the stand-in geodesic is straight-line)');
      assert.equal(typeof s.observation.info.shortestPathLength, 'number');
      let collided = false;
      let steps = 1;
      while (!collided && steps < 60) {
        collided = (await env.step({ name: 'move_forward' })).observation.collided === true;
        steps++;
      }
      assert.ok(collided, 'walking straight in a 8 m room hits a wall within 60 steps');
      await closeEnv(env);
    });

    it('an amount in step overrides the configured one for that step only (45°, then 30° again)', async () => {
      const env = await connect(plain.url);
      const r = await env.reset({ seed: 3 });
      const y0 = yawDeg(poseOf(r.observation).rotation);
      const y1 = yawDeg(poseOf((await env.step({ name: 'turn_right', amount: 45 })).observation).rotation);
      const y2 = yawDeg(poseOf((await env.step({ name: 'turn_right' })).observation).rotation);
      close((y0 - y1 + 360) % 360, 45, 1e-4, 'first turn');
      close((y1 - y2 + 360) % 360, 30, 1e-4, 'second turn');
      await closeEnv(env);
    });

    it('stop ends the episode (terminated, success judged at 0.2 m); a step after it → E_NO_EPISODE', async () => {
      const env = await connect(plain.url);
      await env.reset({ seed: 5 });
      const s = await env.step({ name: 'stop' });
      assert.equal(s.terminated, true);
      assert.equal(s.observation.info.success, false); // PointNav goals are drawn ≥ 1 m away
      const e = await rejectionOf(env.step({ name: 'move_forward' }));
      assert.equal(e.code, 'E_NO_EPISODE');
      await closeEnv(env);
    });

    it('raw and (with Pillow) JPEG encodings carry the same frame', async () => {
      const raw = await connect(plain.url, { encoding: 'raw' });
      const r = await raw.reset({ seed: 9 });
      assert.deepEqual(r.observation.rgb, standInFrame(poseOf(r.observation)));
      const offersJpeg = raw.capabilities.encodings.includes('jpeg');
      await closeEnv(raw);
      if (!offersJpeg) return; // python3-pil absent: the bridge offers PNG and raw only
      const jpeg = await connect(plain.url, { encoding: 'jpeg' });
      const j = await jpeg.reset({ seed: 9 });
      const d = frameDiff(j.observation.rgb, r.observation.rgb);
      assert.ok(d.mean < 4, `JPEG mean abs error ${d.mean.toFixed(2)}`);
      await closeEnv(jpeg);
    });

    it('bad input from the agent gets error replies naming it, and the session keeps working', async () => {
      const peer = await RawPeer.connect(plain.url);
      try {
        assert.equal((await peer.nextJson()).op, 'hello');
        peer.send({ op: 'welcome', protocol: 'v4s.sim.v1', encoding: 'raw' });
        peer.send('not json');
        let e = await peer.nextJson();
        assert.deepEqual([e.op, e.code, e.id], ['error', 'E_PROTOCOL_JSON', null]);
        peer.send({ op: 'step', id: 3, action: { name: 'move_forward' } });
        e = await peer.nextJson();
        assert.deepEqual([e.code, e.id], ['E_NO_EPISODE', 3]);
        peer.send({ op: 'step', id: 4, action: { name: 'jump' } });
        e = await peer.nextJson();
        assert.deepEqual([e.code, e.id], ['E_UNKNOWN_ACTION', 4]);
        assert.match(String(e.message), /unknown action "jump"/);
        peer.send({ op: 'reset', id: 5, seed: -1 });
        e = await peer.nextJson();
        assert.deepEqual([e.code, e.id], ['E_PROTOCOL_FIELD', 5]);
        assert.match(String(e.message), /"seed"/);
        peer.send(new Uint8Array([1, 2, 3]));
        e = await peer.nextJson();
        assert.equal(e.code, 'E_PROTOCOL_BINARY');
        peer.send({ op: 'reset', id: 6, seed: 1 });
        const bin = await peer.nextBinary();
        const hlen = new DataView(bin.buffer, bin.byteOffset).getUint32(0, true);
        const header = JSON.parse(Buffer.from(bin.subarray(4, 4 + hlen)).toString('utf8')) as { id: number; image: { byteLength: number } };
        assert.equal(header.id, 6);
        assert.equal(bin.byteLength, 4 + hlen + header.image.byteLength);
        assert.equal(header.image.byteLength, W * H * 3);
        peer.send({ op: 'close' });
        assert.equal((await peer.closed).code, 1000);
      } finally {
        peer.socket.terminate();
      }
    });

    it('one agent at a time: a second connection gets E_TOO_MANY_CONNECTIONS and close 1013', async () => {
      const env = await connect(plain.url);
      const e = await rejectionOf(connectSimulator(plain.url));
      assert.equal(e.code, 'E_TOO_MANY_CONNECTIONS');
      await env.reset({ seed: 1 });
      await closeEnv(env);
    });
  });

  it('a token: none or a wrong one → E_AUTH before hello; the right one opens the session (and PNG without Pillow)', async () => {
    // V4S_NO_PILLOW=1: the bridge writes PNG with zlib alone and offers no JPEG, as where Pillow is not installed
    const b = await bridge(['--scene', 'room.glb', '--token', 'habitat-secret'], { V4S_NO_PILLOW: '1' });
    assert.equal((await rejectionOf(connectSimulator(b.url))).code, 'E_AUTH');
    assert.equal((await rejectionOf(connectSimulator(b.url, { token: 'nope' }))).code, 'E_AUTH');
    const env = await connect(b.url, { token: 'habitat-secret' });
    assert.deepEqual(env.capabilities.encodings, ['png', 'raw']);
    const r = await env.reset({ seed: 2 });
    assert.equal(r.observation.step, 0);
    assert.deepEqual(r.observation.rgb, standInFrame(poseOf(r.observation)));
    await closeEnv(env);
  });

  describe('a habitat-lab episode dataset (json.gz) with an oracle', () => {
    let dir: string;
    let b: Bridge;
    before(async () => {
      dir = mkdtempSync(path.join(tmpdir(), 'v4s-habitat-'));
      const dataset = {
        episodes: [
          {
            episode_id: 'p1',
            scene_id: 'scenes/room.glb',
            start_position: [1, 0, 2],
            start_rotation: [0, Math.SQRT1_2, 0, Math.SQRT1_2], // habitat-lab order [x, y, z, w]: 90° yaw
            goals: [{ position: [1, 0, -1], radius: null }],
            info: { geodesic_distance: 3.5 },
          },
          {
            episode_id: 'o1',
            scene_id: 'scenes/small-room.glb',
            start_position: [0, 0, 0],
            start_rotation: [0, 0, 0, 1],
            object_category: 'chair',
            info: { geodesic_distance: 0.5 },
          },
        ],
        goals_by_category: {
          'small-room.glb_chair': [
            { position: [0, 0, -0.8], object_category: 'chair', view_points: [{ agent_state: { position: [0, 0, -0.5], rotation: [0, 0, 0, 1] } }] },
          ],
        },
      };
      writeFileSync(path.join(dir, 'val.json.gz'), gzipSync(JSON.stringify(dataset)));
      b = await bridge(['--dataset', path.join(dir, 'val.json.gz'), '--scenes-dir', dir, '--oracle']);
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('reset by episode id: start pose as stored ([x, y, z, w]), goal, ℓ from info.geodesic_distance, scene switches', async () => {
      const env = await connect(b.url);
      assert.deepEqual(env.capabilities.tasks, ['imagenav', 'objectnav', 'pointnav']);
      assert.deepEqual(env.capabilities.ops, ['oracle']);
      const r = await env.reset({ episode: 'p1' });
      const p = poseOf(r.observation);
      assert.deepEqual(p.position, [1, 0, 2]);
      close(yawDeg(p.rotation), 90, 1e-4, 'start yaw');
      assert.deepEqual(r.goal, { task: 'pointnav', position: [1, 0, -1] });
      assert.equal(r.observation.info.shortestPathLength, 3.5);
      close(r.observation.info.distanceToGoal ?? NaN, 3, 1e-6, 'distanceToGoal');
      assert.equal(r.observation.info.episode, 'p1');

      // ObjectNav in the other scene (a 2 m room): distance to the view point, success on stop within 0.1 m
      const o = await env.reset({ episode: 'o1' });
      assert.deepEqual(o.goal, { task: 'objectnav', category: 'chair' });
      close(o.observation.info.distanceToGoal ?? NaN, 0.5, 1e-6, 'distance to the view point');
      await env.step({ name: 'move_forward' });
      const two = await env.step({ name: 'move_forward' });
      close(two.observation.info.distanceToGoal ?? NaN, 0, 1e-6, 'at the view point');
      const stop = await env.step({ name: 'stop' });
      assert.equal(stop.terminated, true);
      assert.equal(stop.observation.info.success, true);
      // the small room's wall is 0.9 m away for the agent's centre: the fourth move collides
      await env.reset({ episode: 'o1' });
      const collided: boolean[] = [];
      for (let i = 0; i < 4; i++) collided.push((await env.step({ name: 'move_forward' })).observation.collided === true);
      assert.deepEqual(collided, [false, false, false, true]);
      await closeEnv(env);
    });

    it('ImageNav: the goal image is the view from the goal position; an unknown episode → E_CONFIG', async () => {
      const env = await connect(b.url);
      const r = await env.reset({ episode: 'p1', task: 'imagenav' });
      const img = r.goal?.image;
      assert.ok(img !== undefined);
      assert.equal(img.width, W);
      // the stand-in's blue channel encodes the position: (20·1 + 3·20·(−1)) mod 256 = 216, alpha dropped
      for (let i = 2; i < img.data.length; i += 3) assert.equal(img.data[i], 216);
      assert.equal((await rejectionOf(env.reset({ episode: 'nope' }))).code, 'E_CONFIG');
      await closeEnv(env);
    });

    it('oracle: true futures with the category masks, sensors and agent restored afterwards', async () => {
      const env = await connect(b.url);
      await env.reset({ episode: 'o1' });
      const up = await env.step({ name: 'look_up' });
      assert.deepEqual(up.observation.rgb, standInFrame(poseOf(up.observation), 30));
      const oracle = env.oracle;
      assert.ok(oracle !== undefined);
      const rollouts = await oracle({ sequences: [Array<string>(7).fill('turn_left'), ['look_down', 'look_down', 'move_forward']] });
      assert.equal(rollouts.length, 2);
      const [turns, looks] = rollouts;
      assert.ok(turns !== undefined && looks !== undefined);
      assert.equal(turns.frames.length, 7);
      close(yawDeg(turns.poses[2]?.rotation ?? [0, 0, 0, 1]), 90, 1e-4, 'oracle yaw at step 2');
      // chair (instance 1) fills the left half while yaw < 180°, the right half after
      const leftHalf = (m: Uint8Array | undefined, value: number): void => {
        assert.ok(m !== undefined);
        for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) assert.equal(m[r * W + c], c < W / 2 ? value : 1 - value);
      };
      leftHalf(turns.masks[2], 1);
      leftHalf(turns.masks[6], 0);
      assert.deepEqual(looks.frames[1], standInFrame(poseOf({ pose: looks.poses[1] }), -30));
      close(poseOf({ pose: looks.poses[2] }).position[2], -0.25, 1e-6, 'oracle move');
      // not advanced: the next real step starts from the saved state, sensor tilt included
      const next = await env.step({ name: 'turn_left' });
      assert.equal(next.observation.step, 2);
      assert.deepEqual(poseOf(next.observation).position, [0, 0, 0]);
      close(yawDeg(poseOf(next.observation).rotation), 30, 1e-4, 'yaw after the oracle');
      assert.deepEqual(next.observation.rgb, standInFrame(poseOf(next.observation), 30));
      await closeEnv(env);
    });
  });

  it('--dial: the bridge dials a listening agent and puts the token in hello', async () => {
    const listener = await listenForSimulator({ port: 0, token: 'dial-token', encoding: 'png' });
    try {
      const b = await bridge(['--scene', 'room.glb', '--dial', listener.url, '--token', 'dial-token']);
      const env = await listener.accept({ timeoutMs: 30_000 });
      assert.equal(env.capabilities.name, 'habitat');
      const r = await env.reset({ seed: 4 });
      assert.deepEqual(r.observation.rgb, standInFrame(poseOf(r.observation)));
      await env.close();
      assert.equal(await b.exited, 0);
    } finally {
      await listener.close();
    }
  });
});
