/**
 * Issue 8 §1 (faults): back-off arithmetic, reconnecting, a simulator killed with SIGKILL mid-episode and
 * restarted on the same port, and a simulator that hangs. Everything runs over real loopback WebSockets; the
 * killed simulator is a real SimulatorServer in a child process (test/support/simulator-process.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { WebSocketServer, type WebSocket } from 'ws';
import { runEvaluation, seedRange, type EvaluationEpisode } from '../src/agent/episode-runner.js';
import { readResults, type EpisodeRow } from '../src/agent/results.js';
import { V4sError, isV4sError } from '../src/errors.js';
import { RandomPlanner } from '../src/planner/random-planner.js';
import { BuiltinSimulator } from '../src/sim-adapters/builtin/simulator.js';
import { encodeObservationMessage } from '../src/sim-adapters/protocol/convert.js';
import { PROTOCOL_VERSION } from '../src/sim-adapters/protocol/types.js';
import { backoffDelay, isRetryable, retryWithBackoff, type RetryInfo } from '../src/sim-adapters/reconnect.js';
import { connectSimulator } from '../src/sim-adapters/ws-client.js';
import { SimulatorServer } from '../src/sim-adapters/ws-server.js';
import { startSimulatorProcess } from './support/simulator-process.js';
import { StandInSimulator, rejectionOf } from './ws-fixtures.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Row fields that must not depend on timing. */
function outcome(r: EpisodeRow): unknown {
  return [r.key, r.status, r.success, r.spl, r.steps, r.distanceToGoal, r.pathLength, r.collisions];
}

const moves = ['move_forward', 'turn_left', 'turn_right'];
const planner = (ep: EvaluationEpisode): RandomPlanner => new RandomPlanner({ seed: ep.seed ?? 0, actions: moves });

describe('reliability: faults', () => {
  let dir: string;
  const closers: (() => Promise<unknown>)[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'v4s-faults-'));
  });
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  describe('back-off', () => {
    it('delays double from baseDelayMs up to maxDelayMs; jitter takes at most its fraction off', () => {
      const exact = [1, 2, 3, 4, 5, 6, 60].map((n) => backoffDelay(n, { baseDelayMs: 100, maxDelayMs: 1000, jitter: 0 }));
      assert.deepEqual(exact, [100, 200, 400, 800, 1000, 1000, 1000]);
      assert.equal(backoffDelay(3, { baseDelayMs: 100, maxDelayMs: 1000, jitter: 0.5 }, () => 0.999999), 200);
      assert.equal(backoffDelay(3, { baseDelayMs: 100, maxDelayMs: 1000, jitter: 0.5 }, () => 0), 400);
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 0, max: 5000 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 0.999, noNaN: true }), (n, base, jitter, r) => {
          const max = base + 10_000;
          const d = Math.min(max, base * 2 ** (n - 1));
          const got = backoffDelay(n, { baseDelayMs: base, maxDelayMs: max, jitter }, () => r);
          assert.ok(got >= Math.floor(d * (1 - jitter)) && got <= d, `${got} outside [${d * (1 - jitter)}, ${d}]`);
        }),
        { numRuns: 500 },
      );
      assert.throws(() => backoffDelay(1, { baseDelayMs: 10, maxDelayMs: 5 }), (e: unknown) => isV4sError(e, 'E_CONFIG') && /maxDelayMs/.test(e.message));
      assert.throws(() => backoffDelay(1, { jitter: 2 }), (e: unknown) => isV4sError(e, 'E_CONFIG') && /jitter/.test(e.message));
    });

    it('retries transient failures only, gives up after `tries` naming them, and stops waiting on abort', async () => {
      let calls = 0;
      const flaky = async (): Promise<string> => {
        calls++;
        if (calls < 3) throw new V4sError('E_CONNECT', 'refused');
        return 'up';
      };
      const seen: RetryInfo[] = [];
      assert.equal(await retryWithBackoff(flaky, { tries: 5, baseDelayMs: 1, maxDelayMs: 4, jitter: 0, onRetry: (i) => seen.push(i) }), 'up');
      assert.equal(calls, 3);
      assert.deepEqual(seen.map((i) => [i.attempt, i.delayMs, i.error.code]), [
        [1, 1, 'E_CONNECT'],
        [2, 2, 'E_CONNECT'],
      ]);

      calls = 0;
      const auth = await rejectionOf(
        retryWithBackoff(async () => {
          calls++;
          throw new V4sError('E_AUTH', 'wrong token');
        }, { tries: 5, baseDelayMs: 1 }),
      );
      assert.equal(auth.code, 'E_AUTH');
      assert.equal(calls, 1, 'a wrong token is not retried');

      calls = 0;
      const gaveUp = await rejectionOf(
        retryWithBackoff(async () => {
          calls++;
          throw new V4sError('E_TOO_MANY_CONNECTIONS', 'full');
        }, { tries: 4, baseDelayMs: 1, maxDelayMs: 2 }),
      );
      assert.equal(gaveUp.code, 'E_TOO_MANY_CONNECTIONS');
      assert.match(gaveUp.message, /full \(gave up after 4 tries over \d+\.\d s\)/);
      assert.equal(calls, 4);

      const ac = new AbortController();
      const waiting = retryWithBackoff(async () => Promise.reject(new V4sError('E_CONNECT', 'down')), { tries: 100, baseDelayMs: 60_000, maxDelayMs: 60_000, signal: ac.signal });
      setTimeout(() => ac.abort(new Error('stopped by the user')), 20);
      assert.match((await rejectionOf(waiting)).message, /stopped by the user/);
      assert.equal(isRetryable(new V4sError('E_PROTOCOL_VERSION', 'v0')), false);
    });

    it('connectSimulator { reconnect } waits for a server that comes up later; without it, E_CONNECT at once', async () => {
      // Find a free port, then free it again: nothing listens there until the server below starts.
      const probe = await SimulatorServer.start(() => new StandInSimulator(), { port: 0 });
      const { port, url } = probe;
      await probe.close();
      const once = await rejectionOf(connectSimulator(url));
      assert.equal(once.code, 'E_CONNECT');
      assert.match(once.message, new RegExp(`cannot connect to simulator at ${url}`));

      const retries: RetryInfo[] = [];
      const connecting = connectSimulator(url, { reconnect: { tries: 100, baseDelayMs: 20, maxDelayMs: 100, onRetry: (i) => retries.push(i) } });
      await sleep(150);
      const server = await SimulatorServer.start(() => new StandInSimulator(), { port });
      closers.push(() => server.close());
      const env = await connecting;
      closers.push(() => env.close());
      assert.ok(retries.length >= 2, `retried ${retries.length} times`);
      assert.ok(retries.every((r) => r.error.code === 'E_CONNECT'));
      assert.equal((await env.reset({ seed: 3 })).observation.step, 0);

      const bounded = await rejectionOf(connectSimulator('ws://127.0.0.1:1', { reconnect: { tries: 3, baseDelayMs: 1, maxDelayMs: 2 } }));
      assert.equal(bounded.code, 'E_CONNECT');
      assert.match(bounded.message, /gave up after 3 tries/);
      await assert.rejects(connectSimulator(url, { reconnect: { tries: 0 } }), (e: unknown) => isV4sError(e, 'E_CONFIG') && /reconnect\.tries/.test(e.message));
    });
  });

  it('a simulator killed with SIGKILL mid-episode and restarted on the same port: that episode is `aborted`, the evaluation reconnects and finishes, every row is on disk', async function () {
    this.timeout(60_000);
    const first = await startSimulatorProcess(0);
    closers.push(async () => {
      first.child.kill('SIGKILL');
      await first.exited;
    });
    const { port, url } = first;
    const episodes = seedRange(0, 3).map((seed): EvaluationEpisode => ({ seed, task: 'pointnav' }));
    const path = join(dir, 'results.jsonl');
    const retries: RetryInfo[] = [];
    let connects = 0;
    let finished = 0;
    let killedAtStep = -1;
    let restart: Promise<SimulatorServer> | undefined;
    const result = await runEvaluation({
      environment: () => {
        connects++;
        return connectSimulator(url, { reconnect: { tries: 200, baseDelayMs: 25, maxDelayMs: 250, onRetry: (i) => retries.push(i) } });
      },
      planner,
      plannerName: 'random',
      episodes,
      out: path,
      maxSteps: 8,
      onStep: (event) => {
        if (finished === 1 && event.stepsTaken === 3 && killedAtStep < 0) {
          killedAtStep = event.stepsTaken;
          first.child.kill('SIGKILL'); // the simulator disappears: no close frame, no reply
          // Restarted on the same port a little later, in this process (a fresh simulator, as after a crash).
          restart = first.exited.then(async () => {
            await sleep(500);
            return SimulatorServer.start(() => new BuiltinSimulator({ width: 32, height: 32 }), { port });
          });
          restart.catch(() => undefined); // awaited below
        }
      },
      onEpisode: (_o, done) => {
        finished = done;
      },
    });
    assert.ok(restart !== undefined, 'the simulator was killed');
    const server = await restart;
    closers.push(() => server.close());

    assert.deepEqual(result.rows.map((r) => r.status), ['ok', 'aborted', 'ok', 'ok']);
    const aborted = result.rows[1] as EpisodeRow;
    assert.equal(aborted.errorCode, 'E_CLOSED');
    assert.match(aborted.reason ?? '', /closed \(code 1006\)/);
    assert.ok(aborted.steps >= killedAtStep && aborted.steps < 8, `aborted after ${aborted.steps} steps`);
    assert.equal(aborted.spl, null, 'an aborted episode has no SPL: it is not scored against the agent');
    assert.equal(connects, 2, 'one connection, then one reconnect after the aborted episode');
    assert.ok(retries.length >= 1 && retries.every((r) => r.error.code === 'E_CONNECT'), `${retries.length} retries while the simulator was down`);
    const summary = result.summaries[0];
    assert.equal(summary?.aborted, 1);
    assert.equal(summary?.episodes, 3, 'aborted episodes are left out of the success rate and SPL');

    // Every finished row is on disk, once.
    const onDisk = await readResults(path);
    assert.deepEqual(onDisk.map(outcome), result.rows.map(outcome));
    assert.equal(new Set(onDisk.map((r) => r.key)).size, 4);

    // The rows finished around the crash are those of an undisturbed run, and a resume reruns the aborted one.
    const reference = await runEvaluation({ environment: () => connectSimulator(server.url), planner, plannerName: 'random', episodes, maxSteps: 8 });
    const okRows = (rows: readonly EpisodeRow[]): unknown[] => rows.filter((r) => r.status === 'ok').map(outcome);
    assert.deepEqual(okRows(result.rows), okRows(reference.rows.filter((r) => r.key !== aborted.key)));
    const resumed = await runEvaluation({
      environment: () => connectSimulator(server.url),
      planner,
      plannerName: 'random',
      episodes,
      out: path,
      maxSteps: 8,
      resume: true,
      retryAborted: true,
    });
    assert.deepEqual(resumed.rows.map((r) => r.key), [aborted.key]);
    assert.deepEqual(resumed.allRows.map(outcome), reference.rows.map(outcome));
  });

  it('a simulator that hangs: the step times out with E_TIMEOUT, the episode is `aborted`, the next one runs on a new connection', async () => {
    // A hand-written simulator peer (real socket) in front of the stand-in: on its first connection it never
    // answers the 2nd step of the 2nd episode, as a hung simulator would.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          for (const c of wss.clients) c.terminate();
          wss.close(() => resolve());
        }),
    );
    let connections = 0;
    wss.on('connection', (socket: WebSocket) => {
      const conn = ++connections;
      const sim = new StandInSimulator();
      let resets = 0;
      let steps = 0;
      socket.send(JSON.stringify({ op: 'hello', protocol: PROTOCOL_VERSION, capabilities: sim.capabilities }));
      socket.on('message', (data) => {
        const m = JSON.parse(String(data)) as { op: string; id: number; seed?: number; action?: { name: string } };
        void (async () => {
          if (m.op === 'reset') {
            resets++;
            steps = 0;
            const r = sim.reset(m.seed !== undefined ? { seed: m.seed } : {});
            socket.send(await encodeObservationMessage(m.id, { observation: r.observation, terminated: false, truncated: false }, { encoding: 'raw' }));
          } else if (m.op === 'step' && m.action !== undefined) {
            steps++;
            if (conn === 1 && resets === 2 && steps === 2) return; // hung
            socket.send(await encodeObservationMessage(m.id, sim.step({ name: m.action.name }), { encoding: 'raw' }));
          }
        })();
      });
    });
    const address = wss.address();
    const url = `ws://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
    const episodes = seedRange(0, 2).map((seed): EvaluationEpisode => ({ seed, task: 'objectnav' }));
    const path = join(dir, 'hang.jsonl');
    const result = await runEvaluation({
      environment: () => connectSimulator(url, { requestTimeoutMs: 200 }),
      planner,
      plannerName: 'random',
      episodes,
      out: path,
      maxSteps: 5,
    });
    assert.deepEqual(result.rows.map((r) => [r.status, r.steps]), [
      ['ok', 5],
      ['aborted', 1],
      ['ok', 5],
    ]);
    const hung = result.rows[1] as EpisodeRow;
    assert.equal(hung.errorCode, 'E_TIMEOUT');
    assert.match(hung.reason ?? '', /step \(id \d+\) got no reply from ws:\/\/127\.0\.0\.1:\d+ within 200 ms/);
    assert.equal(connections, 2);
    assert.equal((await readResults(path)).length, 3);
  });
});
