/**
 * Issue 8 §1 (slow consumer): a streaming simulator pushes 10,000 frames as fast as it can over a REAL
 * loopback WebSocket, to an agent whose planner is far slower. The coalescing policy (docs/reliability.md):
 * every frame that is decoded goes into the bounded context buffer; decisions never queue (latest wins);
 * when more than 4 pushed frames wait to be decoded, new pushes are dropped. Memory stays bounded: measured as
 * V8 heap + ArrayBuffers after a forced GC (mocha runs node with --expose-gc).
 */
import assert from 'node:assert/strict';
import { runEpisode, type DecisionRecord } from '../src/agent/agent.js';
import { ContextBuffer } from '../src/agent/context-buffer.js';
import { PLANNER_SPEC_VERSION, type Planner } from '../src/planner/planner.js';
import type { Observation } from '../src/types.js';
import { listenForSimulator } from '../src/sim-adapters/ws-listener.js';
import { dialAgent } from '../src/sim-adapters/ws-server.js';
import { StandInSimulator } from './ws-fixtures.js';

const FRAMES = 10_000;
const W = 64;
const H = 48;
const MiB = 1024 * 1024;
const BURST = 10;

/** Heap + ArrayBuffer bytes after a full GC. */
function liveBytes(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run mocha with --expose-gc (.mocharc.json sets it)');
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

describe('reliability: slow consumer (stream mode, real socket)', () => {
  it(`${FRAMES.toLocaleString('en')} frames pushed at full speed to a slow planner: decisions coalesce, memory stays bounded`, async function () {
    this.timeout(120_000);
    const listener = await listenForSimulator({ port: 0 });
    const sim = new StandInSimulator({ mode: 'stream', width: W, height: H, maxSteps: 1_000_000 });
    const conn = await dialAgent(listener.url, () => sim);
    const env = await listener.accept({ timeoutMs: 5000 });
    try {
      assert.equal(env.capabilities.mode, 'stream');
      let allPushed = false;
      let planCalls = 0;
      let newest = -1;
      let plannedOnOlder = 0;
      const slow: Planner = {
        specificationVersion: PLANNER_SPEC_VERSION,
        name: 'slow',
        plan: async (input) => {
          planCalls++;
          if (input.observation.step !== newest) plannedOnOlder++; // latest wins: always the newest frame taken in
          await new Promise((r) => setTimeout(r, 5)); // hundreds of frames arrive meanwhile
          return { actions: [{ name: allPushed ? 'stop' : 'turn_left' }] };
        },
      };
      const buffer = new ContextBuffer({ capacity: 32 });
      const decisions: DecisionRecord[] = [];
      let observed = 0;
      let ended = false;
      const episode = runEpisode(env, slow, {
        reset: { seed: 1 },
        context: buffer,
        onDecision: (r) => decisions.push(r),
        onObservation: (o) => {
          observed++;
          newest = o.step;
        },
      }).finally(() => {
        ended = true;
      });

      const frameAt = (i: number): Observation => ({
        step: 1000 + i,
        rgb: StandInSimulator.render(W, H, { seed: 1, x: i % 17, z: i % 13, heading: i % 12, step: i }),
        pose: { position: [0, 0, 0], rotation: [0, 0, 0, 1] },
        info: {},
      });
      // Warm-up (code paths compiled, buffers allocated), then the baseline.
      // Bursts of BURST pushes per event-loop turn (setImmediate): faster than the agent decodes, while the
      // sender's socket still gets to flush (a loop of bare awaits would starve its own event loop, which no
      // camera does).
      const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
      for (let i = 0; i < 200; i++) {
        await conn.push({ observation: frameAt(i) });
        await turn();
      }
      await new Promise((r) => setTimeout(r, 50));
      const base = liveBytes();
      let peak = base;
      const t0 = performance.now();
      let sent = 0;
      const droppedBefore = conn.droppedPushes;
      for (let i = 200; i < FRAMES; i++) {
        if (await conn.push({ observation: frameAt(i) })) sent++;
        if (i % BURST === 0) await turn();
        if (i % 2500 === 0) peak = Math.max(peak, liveBytes());
      }
      const pushSeconds = (performance.now() - t0) / 1000;
      // Sentinel frames until the planner, told that everything was pushed, stops the episode.
      allPushed = true;
      for (let i = FRAMES; !ended && i < FRAMES + 2000; i++) {
        await conn.push({ observation: frameAt(i) });
        await new Promise((r) => setTimeout(r, 10));
      }
      const trace = await episode;
      const end = liveBytes();
      peak = Math.max(peak, end);

      const pushedBytes = FRAMES * W * H * 3;
      const growth = (end - base) / MiB;
      const peakGrowth = (peak - base) / MiB;
      console.log(
        `      ${FRAMES} frames (${(pushedBytes / MiB).toFixed(0)} MiB of pixels) in ${pushSeconds.toFixed(1)} s; ${planCalls} plans; ` +
          `${conn.droppedPushes} dropped at the source (socket backed up), ${env.stats.droppedPushes} dropped by the agent (decode queue full), ` +
          `${observed} taken in; heap+buffers growth ${growth.toFixed(1)} MiB (peak ${peakGrowth.toFixed(1)} MiB)`,
      );
      assert.equal(trace.endReason, 'stop');
      assert.equal(sent + conn.droppedPushes - droppedBefore, FRAMES - 200, 'every push was sent or dropped at the source');
      assert.ok(env.stats.pushes >= sent, `the agent received ${env.stats.pushes} pushes of ${sent} sent`);
      assert.equal(env.stats.protocolErrors, 0);
      // Coalescing: far fewer decisions than frames, each on a newer observation than the last.
      assert.ok(planCalls < FRAMES / 10, `${planCalls} plans for ${FRAMES} frames`);
      assert.ok(planCalls >= 10, `${planCalls} plans: the planner kept deciding while frames streamed`);
      assert.equal(plannedOnOlder, 0, 'every plan was made on the newest frame taken in');
      for (let i = 1; i < decisions.length; i++) {
        assert.ok((decisions[i]?.step ?? 0) > (decisions[i - 1]?.step ?? 0), `decision ${i} planned on a newer frame`);
      }
      // Every frame was taken in or counted as dropped, at the source or by the agent: none queue up anywhere.
      assert.ok(observed + env.stats.droppedPushes + conn.droppedPushes >= FRAMES, `${observed} taken in + ${env.stats.droppedPushes} + ${conn.droppedPushes} dropped`);
      assert.ok(buffer.size <= 32);
      // Bounded memory: the 10,000 frames are ~90 MiB of pixels; what stays is a few MiB at most.
      assert.ok(pushedBytes > 80 * MiB);
      assert.ok(growth < 8, `heap+buffers grew ${growth.toFixed(1)} MiB after ${FRAMES} frames`);
      assert.ok(peakGrowth < 24, `heap+buffers peaked ${peakGrowth.toFixed(1)} MiB above the baseline while frames streamed`);
    } finally {
      await env.close();
      await conn.closed;
      await listener.close();
    }
  });

  it('a sender that outruns its socket drops live frames at the source (pushHighWaterMarkBytes) instead of queueing them', async () => {
    const listener = await listenForSimulator({ port: 0 });
    const conn = await dialAgent(listener.url, () => new StandInSimulator({ mode: 'stream', width: W, height: H }), { pushHighWaterMarkBytes: 64 * 1024 });
    const env = await listener.accept({ timeoutMs: 5000 });
    try {
      const rgb = StandInSimulator.render(W, H, { seed: 1, x: 0, z: 0, heading: 0, step: 0 });
      const n = 2000;
      let sent = 0;
      // No yielding at all: the socket cannot flush while this loop runs, so unsent bytes pile up at once.
      for (let i = 0; i < n; i++) if (await conn.push({ observation: { step: i + 1, rgb, info: {} } })) sent++;
      const ended = await conn.push({ observation: { step: n + 1, rgb, info: {} }, terminated: true });
      assert.equal(ended, true, 'a frame that ends the episode is never dropped');
      assert.ok(conn.droppedPushes > n / 2, `${conn.droppedPushes} of ${n} dropped`);
      assert.equal(sent + conn.droppedPushes, n);
      // At most ~64 KiB (+ what the kernel took) was queued: a few frames, not 2000 × 9 KiB.
      assert.ok(sent < 1000, `${sent} frames were queued for sending`);
      await waitForPushes(env.stats, sent + 1);
      assert.equal(env.stats.pushes, sent + 1);
      await assert.rejects(dialAgent(listener.url, () => new StandInSimulator(), { pushHighWaterMarkBytes: -1 }), /pushHighWaterMarkBytes/);
    } finally {
      await env.close();
      await listener.close();
    }
  });
});

async function waitForPushes(stats: { readonly pushes: number }, n: number): Promise<void> {
  for (let i = 0; i < 1000 && stats.pushes < n; i++) await new Promise((r) => setTimeout(r, 5));
}
