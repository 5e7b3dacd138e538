/**
 * System tier: the Unity bridge (src/sim-adapters/unity/V4sAgentBridge.cs) compiled with Debian's mono-mcs
 * against minimal UnityEngine STUBS (src/sim-adapters/unity/stubs/UnityEngine.cs, signatures copied from Unity's
 * Scripting API), so at least it is known to compile. Unity itself cannot run here.
 *
 * Then, beyond compiling: a TEST HOST (test/support/UnityBridgeHost.cs), not Unity, runs the same bridge code on
 * those stubs under mono's runtime, and it dials a real listening agent (`listenForSimulator`) over a real
 * WebSocket: the handshake, request parsing, binary framing and the Unity-frame poses are checked for real. The
 * stubs render a flat grey PNG and move the transform without physics; rendering, CharacterController collisions
 * and NavMesh distances are Unity's and stay untested here.
 *
 * Needs mono-mcs (which brings mono-runtime). Without it the suite skips with the install command — except
 * under CI=true, where it fails.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listenForSimulator, type SimulatorListener } from '../../src/sim-adapters/ws-listener.js';
import type { WsEnvironment } from '../../src/sim-adapters/ws-client.js';
import { rejectionOf, waitFor } from '../ws-fixtures.js';
import { probe, requirePrerequisite } from '../support/system-prereq.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BRIDGE = path.join(ROOT, 'src', 'sim-adapters', 'unity', 'V4sAgentBridge.cs');
const STUBS = path.join(ROOT, 'src', 'sim-adapters', 'unity', 'stubs', 'UnityEngine.cs');
const HOST = path.join(ROOT, 'test', 'support', 'UnityBridgeHost.cs');

function close(a: number, b: number, eps: number, what: string): void {
  assert.ok(Math.abs(a - b) <= eps, `${what}: ${a} vs ${b}`);
}

describe('Unity bridge (C#): compiled with mono-mcs against UnityEngine stubs', function () {
  this.timeout(120_000);
  let dir: string;

  before(function () {
    const mcs = probe('mcs', ['--version']);
    requirePrerequisite(this, mcs.status === 0 ? undefined : 'mcs (Debian package mono-mcs) is not installed');
    dir = mkdtempSync(path.join(tmpdir(), 'v4s-unity-'));
  });
  after(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('V4sAgentBridge.cs compiles against the stubs with warnings as errors', () => {
    const r = probe('mcs', ['-target:library', '-warnaserror+', `-out:${path.join(dir, 'V4sAgentBridge.dll')}`, BRIDGE, STUBS]);
    assert.equal(r.status, 0, r.output);
    assert.doesNotMatch(r.output, /error|warning/i);
  });

  describe('run on the stubs by a test host (mono), dialing a listening agent', () => {
    let exe: string;
    let listener: SimulatorListener;

    before(function () {
      const mono = probe('mono', ['--version']);
      requirePrerequisite(this, mono.status === 0 ? undefined : 'mono (Debian package mono-runtime, installed with mono-mcs) is not installed');
      exe = path.join(dir, 'host.exe');
      const r = probe('mcs', ['-warnaserror+', `-out:${exe}`, HOST, BRIDGE, STUBS]);
      assert.equal(r.status, 0, r.output);
    });
    beforeEach(async () => {
      listener = await listenForSimulator({ port: 0, token: 'unity-token', encoding: 'png' });
    });
    afterEach(async () => {
      await listener.close();
    });

    function runHost(token: string): { exited: Promise<number | null>; log: () => string } {
      const child = spawn('mono', [exe, listener.url, token], { stdio: ['ignore', 'pipe', 'pipe'] });
      let log = '';
      child.stdout.on('data', (d: Buffer) => (log += d.toString()));
      child.stderr.on('data', (d: Buffer) => (log += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
      void exited.then(() => clearTimeout(timer));
      return { exited, log: () => log };
    }

    it('hello declares poseFrame "unity"; Unity poses arrive in Habitat frame; a turn and a move check out', async () => {
      const host = runHost('unity-token');
      let env: WsEnvironment | undefined;
      try {
        env = await listener.accept({ timeoutMs: 60_000 });
        const caps = env.capabilities;
        assert.equal(caps.name, 'unity');
        assert.equal(caps.poseFrame, 'unity');
        assert.equal(caps.mode, 'lockstep');
        assert.deepEqual(caps.encodings, ['png', 'jpeg']);
        assert.deepEqual(caps.tasks, ['objectnav', 'pointnav']);
        assert.deepEqual(caps.actions.turn_left, { kind: 'turn', amount: 30 });
        assert.deepEqual(caps.actions.move_forward, { kind: 'move', amount: 0.25 });
        // vertical fov 60° at 8:6 → horizontal 2·atan(tan 30° · 4/3) = 75.18°
        close(caps.camera.hfov, 75.178, 1e-3, 'hfov');

        // the host puts the agent at Unity (1, 0, 3) facing +Z and the goal at Unity (0, 0, 2)
        const r = await env.reset({ task: 'pointnav' });
        assert.deepEqual(r.observation.pose, { position: [1, 0, -3], rotation: [0, 0, 0, 1] });
        assert.deepEqual(r.goal, { task: 'pointnav', position: [0, 0, -2] });
        assert.deepEqual([r.observation.rgb.width, r.observation.rgb.height, r.observation.rgb.data[0]], [8, 6, 128]);
        close(r.observation.info.distanceToGoal ?? NaN, Math.SQRT2, 1e-6, 'distanceToGoal');

        // turn_right in Unity (+30° about +Y, left-handed) is −30° about +Y in Habitat
        const t = await env.step({ name: 'turn_right' });
        const q = t.observation.pose?.rotation ?? [0, 0, 0, 0];
        close(q[1], -Math.sin(Math.PI / 12), 1e-6, 'q.y');
        close(q[3], Math.cos(Math.PI / 12), 1e-6, 'q.w');
        // then move_forward goes 0.25 m to the agent's right-front: Habitat x + 0.125, z − 0.2165
        const m = await env.step({ name: 'move_forward' });
        const p = m.observation.pose?.position ?? [0, 0, 0];
        close(p[0], 1.125, 1e-5, 'x');
        close(p[2], -3 - 0.25 * Math.cos(Math.PI / 6), 1e-5, 'z');
        assert.equal(m.observation.step, 2);
        assert.equal(m.observation.collided, false);
        close(m.observation.info.pathLength ?? NaN, 0.25, 1e-5, 'pathLength');

        const stop = await env.step({ name: 'stop' });
        assert.equal(stop.terminated, true);
        assert.equal(stop.observation.info.success, false); // 1.66 m from the goal, success within 1 m
        assert.equal((await rejectionOf(env.step({ name: 'move_forward' }))).code, 'E_NO_EPISODE');
        assert.equal((await rejectionOf(env.reset({ task: 'imagenav' }))).code, 'E_PROTOCOL_FIELD');
        const o = await env.reset({ task: 'objectnav' });
        assert.deepEqual(o.goal, { task: 'objectnav', category: 'chair' });
        await env.close();
        assert.equal(await host.exited, 0, host.log());
      } finally {
        if (env !== undefined && !env.isClosed) await env.close();
      }
    });

    it('a wrong token: the listening agent refuses it (E_AUTH) and the bridge gives up (reconnect off)', async () => {
      const host = runHost('wrong-token');
      assert.equal(await host.exited, 0, host.log());
      await waitFor(() => listener.rejectedCount === 1, 5000, 'one rejected handshake');
      assert.equal(listener.lastRejection?.code, 'E_AUTH');
      assert.match(host.log(), /refused the session: E_AUTH/);
    });
  });
});
