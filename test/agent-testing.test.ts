import assert from 'node:assert/strict';
import { Subject } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { runEpisode } from '../src/agent/agent.js';
import { ContextBuffer } from '../src/agent/context-buffer.js';
import { isV4sError } from '../src/errors.js';
import { RandomPlanner } from '../src/planner/random-planner.js';
import { RecordedFrameSource, ScriptedEnvironment, patternFrame, yawQuaternion } from '../src/testing/index.js';
import type { Frame, Observation } from '../src/types.js';

const close = (a: number, b: number, eps = 1e-9): void => assert.ok(Math.abs(a - b) <= eps, `${a} ≉ ${b}`);

describe('v4s-nav/testing', () => {
  describe('ScriptedEnvironment', () => {
    it('moves along −Z rotated by yaw and turns about +Y (Habitat frame), accumulating path length', async () => {
      const env = new ScriptedEnvironment();
      const r = await env.reset({ seed: 1 });
      assert.equal(r.observation.step, 0);
      await env.step({ name: 'move_forward' });
      for (let i = 0; i < 3; i++) await env.step({ name: 'turn_left' });
      const s = await env.step({ name: 'move_forward', amount: 0.5 });
      const p = s.observation.pose;
      assert.ok(p !== undefined);
      // 0.25 m forward (−Z), then 90° left: forward is now −X.
      close(p.position[0], -0.5);
      close(p.position[2], -0.25);
      assert.deepEqual(p.rotation, yawQuaternion(90));
      close(p.rotation[1], Math.SQRT1_2);
      assert.equal(s.observation.info.pathLength, 0.75);
      assert.equal(s.observation.step, 5);
      assert.equal(env.state?.yawDeg, 90);
    });

    it('blocks moves where `collides` says so, reporting collided without path length', async () => {
      const env = new ScriptedEnvironment({ collides: (_from, to) => to[2] < -0.3 });
      await env.reset();
      const a = await env.step({ name: 'move_forward' });
      const b = await env.step({ name: 'move_forward' });
      assert.equal(a.observation.collided, false);
      assert.equal(b.observation.collided, true);
      assert.equal(b.observation.info.pathLength, 0.25);
      const trace = await runEpisode(env, new RandomPlanner({ seed: 4, actions: ['move_forward'] }), { maxSteps: 5 });
      assert.equal(trace.collisions, 4, 'every move after the first collides');
    });

    it('reports distances to a goal position and judges success on stop (default: within 1 m)', async () => {
      const env = new ScriptedEnvironment({ goal: { task: 'pointnav', position: [0, 0, -3] } });
      const r = await env.reset();
      assert.equal(r.goal?.task, 'pointnav');
      assert.equal(r.observation.info.distanceToGoal, 3);
      assert.equal(r.observation.info.shortestPathLength, 3);
      for (let i = 0; i < 7; i++) await env.step({ name: 'move_forward' });
      const s = await env.step({ name: 'stop' });
      assert.equal(s.terminated, true);
      close(s.observation.info.distanceToGoal as number, 1.25);
      assert.equal(s.observation.info.success, false);
      const custom = new ScriptedEnvironment({ success: (st) => st.actions.length === 1 });
      await custom.reset();
      assert.equal((await custom.step({ name: 'stop' })).observation.info.success, true);
    });

    it('refuses steps before reset, after the end and with unknown actions; truncates at maxSteps', async () => {
      const env = new ScriptedEnvironment({ maxSteps: 2 });
      await assert.rejects(env.step({ name: 'turn_left' }), (e: unknown) => isV4sError(e, 'E_NO_EPISODE'));
      await env.reset();
      await assert.rejects(env.step({ name: 'jump' }), (e: unknown) => isV4sError(e, 'E_UNKNOWN_ACTION') && /"jump"/.test(e.message));
      assert.equal((await env.step({ name: 'turn_left' })).truncated, false);
      assert.equal((await env.step({ name: 'turn_left' })).truncated, true);
      await assert.rejects(env.step({ name: 'turn_left' }), (e: unknown) => isV4sError(e, 'E_NO_EPISODE') && /ended/.test(e.message));
    });

    it('serves frames from a list by step (last repeats) and records every call', async () => {
      const frames = [patternFrame(4, 4, 10), patternFrame(4, 4, 11)];
      const env = new ScriptedEnvironment({ frames });
      await env.reset({ seed: 9 });
      const a = await env.step({ name: 'turn_left' });
      const b = await env.step({ name: 'turn_left' });
      assert.equal(a.observation.rgb, frames[1]);
      assert.equal(b.observation.rgb, frames[1]);
      assert.deepEqual(
        env.calls.map((c) => c.op),
        ['reset', 'step', 'step'],
      );
      assert.deepEqual(env.calls[0]?.options, { seed: 9 });
    });

    it('emits every observation on observations$ and completes it on close; then calls fail with E_CLOSED', async () => {
      const env = new ScriptedEnvironment();
      const seen: Observation[] = [];
      let completed = false;
      env.observations$.subscribe({ next: (o) => seen.push(o), complete: () => (completed = true) });
      await env.reset();
      await env.step({ name: 'turn_left' });
      await env.close();
      assert.deepEqual(
        seen.map((o) => o.step),
        [0, 1],
      );
      assert.equal(completed, true);
      await assert.rejects(env.reset(), (e: unknown) => isV4sError(e, 'E_CLOSED'));
    });

    it('injects faults and latency (a step that hangs until released)', async () => {
      let release: () => void = () => undefined;
      const gate = new Promise<void>((r) => (release = r));
      const env = new ScriptedEnvironment({
        latency: (op, s) => (op === 'step' && s.step === 0 ? gate : undefined),
        fail: (op, s) => (op === 'step' && s.step === 1 ? new Error('sim crashed') : undefined),
      });
      await env.reset();
      let settled = false;
      const first = env.step({ name: 'turn_left' }).then((r) => ((settled = true), r));
      await new Promise((r) => setImmediate(r));
      assert.equal(settled, false);
      release();
      assert.equal((await first).observation.step, 1);
      await assert.rejects(env.step({ name: 'turn_left' }), /sim crashed/);
    });

    it('stream mode numbers observations on the camera clock and pushes frames from a source', async () => {
      const camera = new Subject<Frame>();
      const env = new ScriptedEnvironment({ stream: camera });
      assert.equal(env.capabilities.mode, 'stream');
      const steps: number[] = [];
      env.observations$.subscribe((o) => steps.push(o.step));
      await env.reset();
      camera.next(patternFrame(8, 8, 100));
      camera.next(patternFrame(8, 8, 101));
      const s = await env.step({ name: 'turn_left' });
      camera.next(patternFrame(8, 8, 102));
      assert.deepEqual(steps, [0, 1, 2, 3, 4]);
      assert.equal(s.observation.step, 3);
      assert.equal(env.state?.step, 1);
      await env.close();
    });
  });

  describe('RecordedFrameSource (TestScheduler)', () => {
    const scheduler = (): TestScheduler => new TestScheduler((actual, expected) => assert.deepEqual(actual, expected));
    const frames = [0, 1, 2, 3].map((i) => patternFrame(2, 2, i));

    it('replays frames at the given rate, then completes', () => {
      const ts = scheduler();
      ts.run(({ expectObservable }) => {
        const src = new RecordedFrameSource(frames, { fps: 10, scheduler: ts });
        expectObservable(src.frames$).toBe('100ms a 99ms b 99ms c 99ms (d|)', { a: frames[0], b: frames[1], c: frames[2], d: frames[3] });
      });
    });

    it('loops, numbers observations from firstStep and carries poses', () => {
      scheduler().run(({ expectObservable }) => {
        const poses = frames.map((_, i) => ({ position: [i, 0, 0] as [number, number, number], rotation: yawQuaternion(0) }));
        const src = new RecordedFrameSource(frames, { fps: 20, loop: true, firstStep: 10, poses });
        const o = (i: number): Observation => ({ step: 10 + i, rgb: frames[i % 4] as Frame, pose: poses[i % 4], info: {} });
        expectObservable(src.observations$, '^ 300ms !').toBe('50ms a 49ms b 49ms c 49ms d 49ms e 49ms f', {
          a: o(0),
          b: o(1),
          c: o(2),
          d: o(3),
          e: o(4),
          f: o(5),
        });
      });
    });

    it('feeds a ContextBuffer on virtual time: at 1.01 s (30 fps) the newest is frame 29; memory stays at capacity', () => {
      const ts = scheduler();
      ts.run(({ flush }) => {
        const many: Frame[] = Array.from({ length: 90 }, (_, i) => patternFrame(2, 2, i));
        const buffer = new ContextBuffer({ capacity: 16, recentWindow: 4 });
        const sub = new RecordedFrameSource(many, { fps: 30, scheduler: ts }).observations$.subscribe((o) => buffer.push(o));
        let at1s: number | undefined;
        ts.schedule(() => {
          at1s = buffer.newest?.step;
        }, 1010);
        flush();
        sub.unsubscribe();
        assert.equal(at1s, 29);
        assert.equal(buffer.size, 16);
        assert.equal(buffer.newest?.step, 89);
        assert.deepEqual(buffer.select(4).offsets, [-4, -2, -1, 0]);
      });
    });
  });
});
