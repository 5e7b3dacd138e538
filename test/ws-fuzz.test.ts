/**
 * Random and mutated messages over real sockets, to the simulator server and to the agent's listening endpoint.
 * Each side must answer with an `error` carrying a known code or close the connection with a protocol close
 * code, never crash, never leave an unhandled rejection, and keep serving. (A smaller run than issue 8's soak:
 * a few hundred messages per side, so the suite stays fast.)
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ERROR_CODES } from '../src/errors.js';
import { decodeBinaryMessage, encodeObservationPacket } from '../src/sim-adapters/protocol/codec.js';
import { PROTOCOL_VERSION } from '../src/sim-adapters/protocol/types.js';
import { connectSimulator } from '../src/sim-adapters/ws-client.js';
import { listenForSimulator } from '../src/sim-adapters/ws-listener.js';
import { SimulatorServer } from '../src/sim-adapters/ws-server.js';
import { RAW_CAPABILITIES, RawPeer, StandInSimulator, type RawMessage } from './ws-fixtures.js';

const PROTOCOL_CLOSES = new Set([1002, 1007, 1008, 1009]);

const validObservation = encodeObservationPacket({
  header: { op: 'observation', id: null, step: 1, info: {}, terminated: false, truncated: false, image: { width: 2, height: 2, encoding: 'raw', byteLength: 12 } },
  image: new Uint8Array(12),
});

/** Messages an agent might send, valid and not. */
const agentMessages = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.json().map((j) => j),
  fc
    .record(
      {
        op: fc.constantFrom('welcome', 'reset', 'step', 'oracle', 'error', 'hello', 'observation', 'x', ''),
        id: fc.oneof(fc.integer({ min: -2, max: 2 ** 32 }), fc.constant(null), fc.string({ maxLength: 4 })),
        seed: fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 3 })),
        task: fc.constantFrom('objectnav', 'imagenav', 'vln', 3),
        action: fc.oneof(fc.record({ name: fc.constantFrom('move_forward', 'stop', '__proto__', 'fly', ''), amount: fc.oneof(fc.double(), fc.string({ maxLength: 2 })) }), fc.anything()),
        sequences: fc.oneof(fc.array(fc.array(fc.constantFrom('move_forward', 'turn_left', 'x'), { maxLength: 4 }), { maxLength: 4 }), fc.anything()),
        protocol: fc.constantFrom(PROTOCOL_VERSION, 'v4s.sim.v0'),
        code: fc.string({ maxLength: 5 }),
        message: fc.string({ maxLength: 5 }),
      },
      { requiredKeys: ['op'] },
    )
    .map((o) => JSON.stringify(o) ?? '{}'),
  fc.uint8Array({ maxLength: 64 }),
);

/** Binary messages a simulator might send, valid and mutated. */
const simulatorBinary = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.tuple(fc.nat({ max: validObservation.byteLength - 1 }), fc.integer({ min: 0, max: 255 }), fc.nat({ max: validObservation.byteLength })).map(([at, v, cut]) => {
    const b = new Uint8Array(validObservation);
    b[at] = v;
    return b.subarray(0, Math.max(cut, 1));
  }),
  fc.constant(validObservation),
);

describe('ws fuzz: random and mutated messages over real sockets', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => {
    unhandled.push(e);
  };
  before(() => process.on('unhandledRejection', onUnhandled));
  after(() => process.off('unhandledRejection', onUnhandled));

  it('the simulator server answers every message with a known error code, a reply or a protocol close, and keeps serving', async () => {
    const server = await SimulatorServer.start(() => new StandInSimulator(), { port: 0, oracle: true });
    const other = await connectSimulator(server.url);
    await other.reset({ seed: 1 });
    const messages = fc.sample(agentMessages, { numRuns: 400, seed: 42 });
    let peer: RawPeer | undefined;
    let probeId = 1_000_000;
    let closes = 0;
    try {
      for (const m of messages) {
        if (peer === undefined) {
          peer = await RawPeer.connect(server.url);
          await peer.nextJson(); // hello
          peer.send({ op: 'welcome', protocol: PROTOCOL_VERSION });
        }
        peer.send(m);
        // A probe after each message: its reply proves the connection (or its close) was handled in order.
        const probe = ++probeId;
        peer.send({ op: 'reset', id: probe });
        for (;;) {
          const got: RawMessage | { readonly kind: 'closed'; readonly code: number } = await Promise.race([
            peer.next(5000),
            peer.closed.then((c) => ({ kind: 'closed' as const, code: c.code })),
          ]);
          if (got.kind === 'closed') {
            assert.ok(PROTOCOL_CLOSES.has(got.code) || got.code === 1000, `close code ${got.code} after ${typeof m === 'string' ? m : 'binary'}`);
            closes++;
            peer = undefined;
            break;
          }
          if (got.kind === 'text') {
            const j = got.json as { op?: string; code?: string };
            assert.equal(j.op, 'error', got.text);
            assert.ok(j.code !== undefined && Object.hasOwn(ERROR_CODES, j.code), `unknown code ${String(j.code)}`);
            continue;
          }
          if (decodeBinaryMessage(got.bytes).header.id === probe) break; // replies to fuzzed requests may come first; the probe's reply ends the round
        }
      }
      assert.equal((await other.step({ name: 'turn_left' })).observation.step, 1, 'another client was served throughout');
      assert.equal(unhandled.length, 0, String(unhandled[0]));
      assert.ok(closes < messages.length, 'most bad messages leave the connection open');
    } finally {
      peer?.socket.terminate();
      await other.close();
      await server.close();
    }
  });

  it('the listening agent answers malformed messages with errors or a protocol close, and its environment keeps working', async () => {
    const listener = await listenForSimulator({ port: 0 });
    const texts = fc.sample(agentMessages, { numRuns: 150, seed: 7 }).filter((m): m is string => typeof m === 'string');
    const binaries = fc.sample(simulatorBinary, { numRuns: 250, seed: 8 });
    try {
      const peer = await RawPeer.connect(listener.url);
      peer.send({ op: 'hello', protocol: PROTOCOL_VERSION, capabilities: RAW_CAPABILITIES });
      const env = await listener.accept({ timeoutMs: 5000 });
      assert.equal((await peer.nextJson()).op, 'welcome');
      let errorsSeen = 0;
      let sentinel: () => void = () => undefined;
      const drained = new Promise<void>((resolve) => (sentinel = resolve));
      env.errors$.subscribe((e) => {
        errorsSeen++;
        if (e.details?.remoteCode === 'FUZZ_DONE') sentinel();
      });
      for (const m of [...texts, ...binaries]) peer.send(m);
      // Garbage that arrives while a request is pending fails that request (it is most likely its reply), so
      // wait until the agent has read everything: a last, valid error message marks the end.
      peer.send({ op: 'error', id: null, code: 'FUZZ_DONE', message: 'end of fuzz' });
      await drained;
      // The environment still works after all of that: a step is answered.
      const stepping = env.step({ name: 'move_forward' });
      for (;;) {
        const got = await peer.next(5000);
        if (got.kind === 'text') {
          const j = got.json as { op?: string; id?: number; code?: string };
          if (j.op === 'step') {
            peer.send(
              encodeObservationPacket({
                header: { op: 'observation', id: j.id ?? 0, step: 9, info: {}, terminated: false, truncated: false, image: { width: 1, height: 1, encoding: 'raw', byteLength: 3 } },
                image: new Uint8Array(3),
              }),
            );
            break;
          }
          assert.equal(j.op, 'error');
          assert.ok(j.code !== undefined && Object.hasOwn(ERROR_CODES, j.code), `unknown code ${String(j.code)}`);
        }
      }
      assert.equal((await stepping).observation.step, 9);
      assert.ok(env.stats.protocolErrors > 100, `protocol errors ${env.stats.protocolErrors}`);
      assert.ok(errorsSeen > 100);
      assert.equal(unhandled.length, 0, String(unhandled[0]));
      peer.socket.terminate();
    } finally {
      await listener.close();
    }
  });
});
