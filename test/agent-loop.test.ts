import assert from 'node:assert/strict';
import { Subject, exhaustMap, lastValueFrom, map, throwError, toArray, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { agentEpisode$, exhaustMapLatest, runEpisode, type AgentEvent } from '../src/agent/agent.js';
import { ContextBuffer } from '../src/agent/context-buffer.js';
import { V4sError, isV4sError } from '../src/errors.js';
import { PLANNER_SPEC_VERSION, type Plan, type Planner, type PlanningInput } from '../src/planner/planner.js';
import { RandomPlanner } from '../src/planner/random-planner.js';
import { ScriptedEnvironment } from '../src/testing/index.js';
import type { Action, Frame } from '../src/types.js';

/** A planner whose plans the test resolves by hand, recording every call. */
class ManualPlanner implements Planner {
  readonly specificationVersion = PLANNER_SPEC_VERSION;
  readonly name = 'manual';
  readonly calls: { input: PlanningInput; signal: AbortSignal | undefined; selectedSteps: number[] }[] = [];
  readonly #resolvers: ((plan: Plan) => void)[] = [];
  plan(input: PlanningInput, signal?: AbortSignal): Promise<Plan> {
    // A real planner reads its context when it starts: record what it would see.
    this.calls.push({ input, signal, selectedSteps: input.context.select(1000).positions });
    return new Promise<Plan>((resolve) => this.#resolvers.push(resolve));
  }
  resolveNext(actions: string[]): void {
    const r = this.#resolvers.shift();
    assert.ok(r !== undefined, 'no plan pending');
    r({ actions: actions.map((name) => ({ name })), decision: { candidates: [], chosen: -1, reason: 'manual', latencyMs: 0 } });
  }
}

/** A planner that plays a fixed script, one entry per decision. */
class ScriptPlanner implements Planner {
  readonly specificationVersion = PLANNER_SPEC_VERSION;
  readonly name = 'script';
  calls = 0;
  constructor(readonly script: readonly (readonly string[])[]) {}
  async plan(): Promise<Plan> {
    const actions = this.script[Math.min(this.calls, this.script.length - 1)] ?? [];
    this.calls++;
    return { actions: actions.map((name): Action => ({ name })) };
  }
}

/** Let pending promise callbacks and immediates run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await new Promise<void>((r) => setImmediate(r));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('agent loop', () => {
  // Every test here must leave no unhandled rejection behind.
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => {
    unhandled.push(e);
  };
  before(() => process.on('unhandledRejection', onUnhandled));
  after(() => process.off('unhandledRejection', onUnhandled));
  afterEach(async () => {
    await settle();
    assert.deepEqual(unhandled, [], 'unhandled rejections');
  });

  describe('exhaustMapLatest (marbles)', () => {
    const scheduler = (): TestScheduler => new TestScheduler((actual, expected) => assert.deepEqual(actual, expected));

    it('coalesces values that arrive while busy: latest wins, nothing queues', () => {
      scheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
        const source = hot('-abc---------d--|');
        const work = cold('----(x|)');
        const out = source.pipe(exhaustMapLatest((v) => work.pipe(map(() => v))));
        // a runs 1→5; b and c arrive meanwhile, c overwrites b; c runs 5→9; d runs 13→17; then complete.
        expectObservable(out).toBe('-----a---c-------(d|)');
        expectSubscriptions(work.subscriptions).toBe(['-^---!', '-----^---!', '-------------^---!']);
      });
    });

    it('never drops the newest value (exhaustMap would lose b here), and completes after it', () => {
      scheduler().run(({ cold, hot, expectObservable }) => {
        const source = hot('-ab------|');
        expectObservable(source.pipe(exhaustMapLatest((v) => cold('--(v|)', { v })))).toBe('---a-b---|');
        expectObservable(source.pipe(exhaustMap((v) => cold('--(v|)', { v })))).toBe('---a-----|');
      });
    });

    it('routes an inner error and a throwing projection into the stream', () => {
      scheduler().run(({ hot, expectObservable }) => {
        expectObservable(hot('-a-b').pipe(exhaustMapLatest(() => throwError(() => new Error('boom'))))).toBe('-#', undefined, new Error('boom'));
        const throwing = hot('-a').pipe(
          exhaustMapLatest((): Observable<never> => {
            throw new Error('bad');
          }),
        );
        expectObservable(throwing).toBe('-#', undefined, new Error('bad'));
      });
    });
  });

  describe('lockstep', () => {
    it('plans once per step although each observation arrives twice (observations$ and the step reply)', async () => {
      const env = new ScriptedEnvironment();
      const planner = new RandomPlanner({ seed: 3 });
      const trace = await runEpisode(env, planner, { maxSteps: 20 });
      assert.equal(trace.stepsTaken, 20);
      assert.equal(trace.decisions.length, 20);
      assert.equal(trace.endReason, 'max-steps');
      assert.deepEqual(
        trace.decisions.map((d) => d.step),
        Array.from({ length: 20 }, (_, i) => i),
      );
      assert.equal(env.calls.filter((c) => c.op === 'step').length, 20);
      assert.equal(trace.decisions[0]?.decision?.reason, 'uniform over 3 actions');
      assert.ok(trace.decisions.every((d) => d.latencyMs >= 0));
    });

    it('ends on stop: the stop is sent, nothing after it, success from the simulator', async () => {
      const env = new ScriptedEnvironment({ goal: { task: 'pointnav', position: [0, 0, -0.5] } });
      const planner = new ScriptPlanner([['move_forward'], ['move_forward', 'stop', 'move_forward'], ['turn_left']]);
      const trace = await runEpisode(env, planner);
      assert.equal(trace.endReason, 'stop');
      assert.deepEqual(trace.actions, ['move_forward', 'move_forward', 'stop']);
      assert.equal(planner.calls, 2);
      assert.equal(trace.final.info.success, true);
      assert.equal(trace.final.info.distanceToGoal, 0);
    });

    it('sends at most actionsPerPlan actions of each plan before re-planning', async () => {
      const env = new ScriptedEnvironment();
      const planner = new ScriptPlanner([['turn_left', 'turn_left', 'turn_left']]);
      const trace = await runEpisode(env, planner, { actionsPerPlan: 2, maxSteps: 6 });
      assert.equal(planner.calls, 3);
      assert.deepEqual(
        trace.decisions.map((d) => d.stepsTaken),
        [0, 2, 4],
      );
    });

    it('ends when the environment truncates', async () => {
      const env = new ScriptedEnvironment({ maxSteps: 5 });
      const trace = await runEpisode(env, new RandomPlanner({ seed: 1 }));
      assert.equal(trace.endReason, 'truncated');
      assert.equal(trace.stepsTaken, 5);
    });

    it('emits its events in order, and records (downsampled) frames of what it saw', async () => {
      const env = new ScriptedEnvironment();
      const events = await lastValueFrom(agentEpisode$(env, new RandomPlanner({ seed: 1 }), { maxSteps: 2 }).pipe(toArray()));
      assert.deepEqual(
        events.map((e: AgentEvent) => e.type),
        // A step's observation is taken in as it arrives on observations$, before the step reply resolves.
        ['episode-start', 'observation', 'decision', 'observation', 'step', 'decision', 'observation', 'step', 'episode-end'],
      );
      const trace = await runEpisode(new ScriptedEnvironment(), new RandomPlanner({ seed: 1 }), { maxSteps: 3, recordFrames: { width: 8, height: 8 } });
      assert.equal(trace.frames?.length, 4);
      assert.ok(trace.frames?.every((f: Frame) => f.width === 8 && f.height === 8));
      assert.equal(trace.frames?.[2]?.data[0], 2, 'frame 2 is the pattern of step 2 (red = step)');
    });
  });

  describe('back-pressure (stream mode)', () => {
    it('frames arriving during a slow plan go into the buffer but trigger no extra plans; the next plan sees the newest', async () => {
      const env = new ScriptedEnvironment({ capabilities: { mode: 'stream' } });
      const planner = new ManualPlanner();
      const buffer = new ContextBuffer({ capacity: 100 });
      const done = runEpisode(env, planner, { maxSteps: 2, context: buffer });
      await until(() => planner.calls.length === 1, 'first plan');
      for (let i = 0; i < 10; i++) env.emitFrame();
      await settle();
      assert.equal(planner.calls.length, 1, 'no plan queued by the 10 frames');
      assert.equal(buffer.size, 11, 'but all 10 frames are in memory');

      planner.resolveNext(['turn_left']);
      await until(() => planner.calls.length === 2, 'second plan');
      // The step reply (frame 11) is the newest: the second plan plans on it, with every frame in context.
      assert.equal(planner.calls[1]?.input.observation.step, 11);
      assert.deepEqual(planner.calls[1]?.selectedSteps, Array.from({ length: 12 }, (_, i) => i));

      for (let i = 0; i < 25; i++) env.emitFrame();
      planner.resolveNext(['turn_left']);
      const trace = await done;
      assert.equal(planner.calls.length, 2, '35 frames, 2 plans');
      assert.equal(trace.decisions.length, 2);
      assert.equal(trace.stepsTaken, 2);
    });

    it('frames that arrive during a plan are coalesced into the one plan that follows, on the newest observation', async () => {
      const env = new ScriptedEnvironment({ capabilities: { mode: 'stream' } });
      const planner = new ManualPlanner();
      const done = runEpisode(env, planner, { maxSteps: 3 });
      await until(() => planner.calls.length === 1, 'first plan');
      planner.resolveNext(['turn_left']);
      await until(() => planner.calls.length === 2, 'second plan');
      for (let i = 0; i < 5; i++) env.emitFrame();
      planner.resolveNext(['turn_left']);
      await until(() => planner.calls.length === 3, 'third plan');
      assert.equal(planner.calls[2]?.input.observation.step, 7, 'frames 2–6 coalesced; plans on the step reply, frame 7');
      planner.resolveNext(['turn_left']);
      await done;
      assert.equal(planner.calls.length, 3);
    });
  });

  describe('slow consumer', () => {
    it('10,000 64×64 frames pushed at full speed during one plan: one plan, memory bounded (heap after forced GC)', async () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      assert.ok(gc !== undefined, 'run mocha with --expose-gc (see .mocharc.json)');
      const memory = (): number => {
        gc();
        gc();
        const m = process.memoryUsage();
        return m.heapUsed + m.arrayBuffers;
      };
      const env = new ScriptedEnvironment({ capabilities: { mode: 'stream' } });
      const planner = new ManualPlanner();
      const buffer = new ContextBuffer({ capacity: 64 });
      const done = runEpisode(env, planner, { maxSteps: 1, context: buffer });
      await until(() => planner.calls.length === 1, 'first plan');
      const push = (n: number): void => {
        for (let i = 0; i < n; i++) env.emitFrame({ width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(i % 251) });
      };
      push(1000);
      const warm = memory();
      push(9000);
      await settle();
      const grown = memory() - warm;
      // Queuing the 9,000 frames (or a plan per frame) would hold ≥ 9,000 × 12,288 B ≈ 110 MB.
      assert.ok(grown < 4 * 1024 * 1024, `grew ${(grown / 1e6).toFixed(2)} MB over 9,000 frames`);
      assert.equal(planner.calls.length, 1);
      assert.equal(buffer.size, 64);
      assert.equal(buffer.newest?.step, 10_000);
      planner.resolveNext(['turn_left']);
      const trace = await done;
      assert.equal(trace.decisions.length, 1);
    });
  });

  describe('failures', () => {
    it('a planner rejection rejects runEpisode with that error', async () => {
      const planner: Planner = {
        specificationVersion: PLANNER_SPEC_VERSION,
        name: 'failing',
        plan: () => Promise.reject(new Error('planner broke')),
      };
      await assert.rejects(runEpisode(new ScriptedEnvironment(), planner), /planner broke/);
    });

    it('a planner that throws synchronously rejects runEpisode', async () => {
      const planner: Planner = {
        specificationVersion: PLANNER_SPEC_VERSION,
        name: 'throwing',
        plan: () => {
          throw new Error('sync throw');
        },
      };
      await assert.rejects(runEpisode(new ScriptedEnvironment(), planner), /sync throw/);
    });

    it('an environment step failure rejects with E_ABORTED, keeping the code and the cause', async () => {
      const cause = new V4sError('E_CLOSED', 'connection closed while step 3 was pending');
      const env = new ScriptedEnvironment({ fail: (op, s) => (op === 'step' && s.step === 3 ? cause : undefined) });
      const err = await runEpisode(env, new RandomPlanner(), { maxSteps: 10 }).then(
        () => assert.fail('should reject'),
        (e: unknown) => e,
      );
      assert.ok(isV4sError(err, 'E_ABORTED'));
      assert.equal(err.details?.['code'], 'E_CLOSED');
      assert.equal(err.cause, cause);
      assert.match(err.message, /environment failed during step\(\w+\): E_CLOSED/);
    });

    it('a reset failure and an observation-stream failure are environment failures too', async () => {
      const env = new ScriptedEnvironment({ fail: (op) => (op === 'reset' ? new Error('no scene') : undefined) });
      await assert.rejects(runEpisode(env, new RandomPlanner()), (e: unknown) => isV4sError(e, 'E_ABORTED') && /reset: no scene/.test(e.message));

      const camera = new Subject<Frame>();
      const streaming = new ScriptedEnvironment({ stream: camera });
      const planner = new ManualPlanner();
      const done = runEpisode(streaming, planner);
      await until(() => planner.calls.length === 1, 'first plan');
      camera.error(new Error('camera unplugged'));
      await assert.rejects(done, (e: unknown) => isV4sError(e, 'E_ABORTED') && /observations\$: camera unplugged/.test(e.message));
      assert.equal(planner.calls[0]?.signal?.aborted, true, "the pending plan's signal was aborted");
    });

    it('a malformed frame from the environment is an environment failure (E_ABORTED naming E_FRAME_SIZE)', async () => {
      const env = new ScriptedEnvironment({
        frames: (s) => (s.step === 2 ? { width: 8, height: 8, data: new Uint8Array(5) } : { width: 8, height: 8, data: new Uint8Array(192) }),
      });
      await assert.rejects(
        runEpisode(env, new RandomPlanner(), { maxSteps: 5 }),
        (e: unknown) => isV4sError(e, 'E_ABORTED') && e.details?.['code'] === 'E_FRAME_SIZE' && /observation 2/.test(e.message),
      );
    });

    it('invalid plans are refused: unknown action (E_UNKNOWN_ACTION), no actions (E_PLAN)', async () => {
      await assert.rejects(
        runEpisode(new ScriptedEnvironment(), new ScriptPlanner([['fly']])),
        (e: unknown) => isV4sError(e, 'E_UNKNOWN_ACTION') && /"fly"/.test(e.message),
      );
      await assert.rejects(runEpisode(new ScriptedEnvironment(), new ScriptPlanner([[]])), (e: unknown) => isV4sError(e, 'E_PLAN'));
    });

    it('a throwing hook ends the episode with its error, and no more steps are sent', async () => {
      const env = new ScriptedEnvironment();
      await assert.rejects(
        runEpisode(env, new RandomPlanner(), {
          maxSteps: 10,
          onStep: (e) => {
            if (e.stepsTaken === 2) throw new Error('hook failed');
          },
        }),
        /hook failed/,
      );
      await settle();
      assert.equal(env.calls.filter((c) => c.op === 'step').length, 2);
    });

    it('bad options throw E_CONFIG (agentEpisode$ synchronously, runEpisode as a rejection)', async () => {
      assert.throws(() => agentEpisode$(new ScriptedEnvironment(), new RandomPlanner(), { maxSteps: 0 }), (e: unknown) => isV4sError(e, 'E_CONFIG'));
      await assert.rejects(runEpisode(new ScriptedEnvironment(), new RandomPlanner(), { actionsPerPlan: 1.5 }), (e: unknown) => isV4sError(e, 'E_CONFIG'));
    });
  });

  describe('abort and timeouts', () => {
    it('an AbortSignal ends the loop during a plan: rejects with its reason and aborts the planner', async () => {
      const env = new ScriptedEnvironment();
      const planner = new ManualPlanner(); // never resolves on its own and ignores its signal
      const ac = new AbortController();
      const done = runEpisode(env, planner, { signal: ac.signal });
      await until(() => planner.calls.length === 1, 'first plan');
      const reason = new Error('user cancelled');
      ac.abort(reason);
      await assert.rejects(done, (e: unknown) => e === reason);
      assert.equal(planner.calls[0]?.signal?.aborted, true);
      assert.equal(env.calls.filter((c) => c.op === 'step').length, 0);
    });

    it('an already-aborted signal rejects before reset', async () => {
      const env = new ScriptedEnvironment();
      await assert.rejects(runEpisode(env, new RandomPlanner(), { signal: AbortSignal.abort(new Error('early')) }), /early/);
      assert.equal(env.calls.length, 0);
    });

    it('unsubscribing the episode stream aborts the planner and sends nothing more', async () => {
      const env = new ScriptedEnvironment();
      const planner = new ManualPlanner();
      const sub = agentEpisode$(env, planner).subscribe({ error: () => undefined });
      await until(() => planner.calls.length === 1, 'first plan');
      sub.unsubscribe();
      assert.equal(planner.calls[0]?.signal?.aborted, true);
      await settle();
      assert.equal(env.calls.filter((c) => c.op === 'step').length, 0);
    });

    it('a planner that hangs past planTimeoutMs fails with E_TIMEOUT and its signal aborted', async () => {
      const planner = new ManualPlanner();
      await assert.rejects(
        runEpisode(new ScriptedEnvironment(), planner, { planTimeoutMs: 20 }),
        (e: unknown) => isV4sError(e, 'E_TIMEOUT') && /"manual" gave no plan within 20 ms/.test(e.message),
      );
      assert.equal(planner.calls[0]?.signal?.aborted, true);
    });
  });
});
