/**
 * Issue 8 §2: 10,000 random and mutated v4s.sim.v1 messages (truncated binary frames, wrong lengths, huge
 * declared sizes, wrong types, unknown ops, oversize messages), in two parts so the file runs in seconds:
 *
 * - 9,600 through the pure decoders the server and the agent run on every message (`decodeAgentMessage`,
 *   `decodeSimulatorMessage`, `decodeBinaryMessage` + `decodeObservationPacket`): each returns a valid message
 *   or throws a V4sError with a wire code, never anything else, and never allocates what a header declares.
 * - 400 over REAL loopback sockets: 200 to a SimulatorServer (what an agent may send), 160 to a listening
 *   agent after the handshake and 40 as the first message of a new connection to it (what a simulator may
 *   send). Every malformed message gets an `error` with a known code or a protocol close; the process never
 *   crashes, leaves no unhandled rejection, keeps serving, and its memory stays bounded.
 *
 * ws-fuzz.test.ts has a smaller, older socket fuzz; the rosbridge adapter's parser is fuzzed in
 * fuzz-rosbridge.test.ts when that adapter exists.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ERROR_CODES, V4sError } from '../src/errors.js';
import { decodeAgentMessage, decodeBinaryMessage, decodeSimulatorMessage, encodeObservationPacket } from '../src/sim-adapters/protocol/codec.js';
import { decodeObservationPacket } from '../src/sim-adapters/protocol/convert.js';
import { PROTOCOL_LIMITS, PROTOCOL_VERSION, isObservationPacket } from '../src/sim-adapters/protocol/types.js';
import { listenForSimulator } from '../src/sim-adapters/ws-listener.js';
import { SimulatorServer } from '../src/sim-adapters/ws-server.js';
import { RAW_CAPABILITIES, RawPeer, StandInSimulator, type RawMessage } from './ws-fixtures.js';

const MiB = 1024 * 1024;
const TEXT_CODES = new Set(['E_PROTOCOL_JSON', 'E_PROTOCOL_OP', 'E_PROTOCOL_VERSION', 'E_PROTOCOL_FIELD']);
const BINARY_CODES = new Set([...TEXT_CODES, 'E_PROTOCOL_BINARY', 'E_FRAME_DECODE', 'E_FRAME_SIZE']);
const PROTOCOL_CLOSES = new Set([1002, 1007, 1008, 1009]);

// ------------------------------------------------------------------------------------------------------------
// Generators

/** Values of the wrong type (or the right type, out of range) for any field. */
const wrongValue = fc.oneof(
  fc.constantFrom(null, true, false, '', 'x', -1, 0, 0.5, -0.0, 1e308, -1e308, 2 ** 31, 2 ** 32, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, '__proto__'),
  fc.string({ maxLength: 300 }),
  fc.integer(),
  fc.double(),
  fc.array(fc.integer(), { maxLength: 5 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
  fc.anything({ maxDepth: 3 }),
);
const anyOp = fc.oneof(
  fc.constantFrom('welcome', 'reset', 'step', 'oracle', 'close', 'error', 'hello', 'observation', 'OBSERVATION', 'x', '', '__proto__', 'constructor'),
  fc.string({ maxLength: 20 }),
  wrongValue,
);

/** An object with op and a few fields, some of them right, many of them wrong. */
const textRecord = fc
  .record(
    {
      op: anyOp,
      id: fc.oneof(fc.nat({ max: 1000 }), wrongValue),
      protocol: fc.oneof(fc.constant(PROTOCOL_VERSION), wrongValue),
      seed: wrongValue,
      task: fc.oneof(fc.constantFrom('objectnav', 'imagenav', 'pointnav', 'vln'), wrongValue),
      episode: wrongValue,
      action: fc.oneof(fc.record({ name: fc.oneof(fc.constantFrom('move_forward', 'stop', 'fly', '__proto__'), wrongValue), amount: fc.oneof(fc.double(), wrongValue) }), wrongValue),
      sequences: fc.oneof(fc.array(fc.array(fc.constantFrom('move_forward', 'turn_left', 'x'), { maxLength: 80 }), { maxLength: 80 }), wrongValue),
      encoding: fc.oneof(fc.constantFrom('raw', 'png', 'jpeg', 'bmp'), wrongValue),
      maxPayload: wrongValue,
      code: fc.oneof(fc.constantFrom('E_SIMULATOR', 'E_NOPE'), wrongValue),
      message: wrongValue,
      token: wrongValue,
      capabilities: fc.oneof(
        fc.constant(RAW_CAPABILITIES),
        fc.record({
          actions: fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), fc.record({ kind: fc.constantFrom('move', 'turn', 'fly'), amount: wrongValue }), { maxKeys: 70 }), wrongValue),
          camera: fc.oneof(fc.record({ width: wrongValue, height: wrongValue, hfov: wrongValue }), wrongValue),
          encodings: fc.oneof(fc.array(fc.constantFrom('raw', 'png', 'gif'), { maxLength: 4 }), wrongValue),
          mode: fc.oneof(fc.constantFrom('lockstep', 'stream', 'batch'), wrongValue),
          ops: fc.oneof(fc.array(fc.string({ maxLength: 8 }), { maxLength: 4 }), wrongValue),
        }),
        wrongValue,
      ),
    },
    { requiredKeys: [] },
  )
  .map((o) => JSON.stringify(o) ?? '{}');

/** A valid message cut short, or with bytes flipped. */
function mutatedText(valid: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.nat({ max: valid.length }).map((n) => valid.slice(0, n)),
    fc.tuple(fc.nat({ max: valid.length - 1 }), fc.string({ minLength: 1, maxLength: 3 })).map(([at, s]) => valid.slice(0, at) + s + valid.slice(at + 1)),
  );
}

/** Text an agent may send to a simulator. */
const agentText = fc.oneof(
  { weight: 4, arbitrary: textRecord },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 4 }) },
  { weight: 1, arbitrary: mutatedText(JSON.stringify({ op: 'step', id: 7, action: { name: 'move_forward' } })) },
  { weight: 1, arbitrary: fc.nat({ max: 2000 }).map((d) => `${'['.repeat(d)}${']'.repeat(d)}`) },
  { weight: 1, arbitrary: fc.constantFrom('{"op":"step","id":1,"action":{"__proto__":{"name":"stop"}}}', '{"__proto__":{"op":"reset"},"id":1}', '{"op":"reset","id":1,"constructor":{"prototype":{"x":1}}}') },
);

/** Text a simulator may send to an agent. */
const simulatorText = fc.oneof(
  { weight: 4, arbitrary: textRecord },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: mutatedText(JSON.stringify({ op: 'hello', protocol: PROTOCOL_VERSION, capabilities: RAW_CAPABILITIES })) },
  { weight: 1, arbitrary: mutatedText(JSON.stringify({ op: 'error', id: null, code: 'E_SIMULATOR', message: 'boom' })) },
);

const W = 4;
const H = 3;
const validHeader = {
  op: 'observation',
  id: null as number | null,
  step: 5,
  pose: { position: [0, 0, 0], rotation: [0, 0, 0, 1] },
  collided: false,
  info: { distanceToGoal: 1.5, success: false, pathLength: 0.25 },
  terminated: false,
  truncated: false,
  image: { width: W, height: H, encoding: 'raw', byteLength: W * H * 3 },
};

/** Frames a header (a JSON text) and a payload with a declared header length (default: the true one). */
function frame(headerJson: string, payload: Uint8Array, declared?: number): Uint8Array {
  const head = Buffer.from(headerJson, 'utf8');
  const out = new Uint8Array(4 + head.byteLength + payload.byteLength);
  new DataView(out.buffer).setUint32(0, declared ?? head.byteLength, true);
  out.set(head, 4);
  out.set(payload, 4 + head.byteLength);
  return out;
}

const goodBinary = frame(JSON.stringify(validHeader), new Uint8Array(W * H * 3).fill(7));
const huge = fc.constantFrom(0, -1, 0.5, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53, 1e308, 8193, 4097, 100_000, 1e9);

/** Binary messages a simulator may send: valid, truncated, wrong lengths, huge sizes, wrong types, unknown ops. */
const simulatorBinary: fc.Arbitrary<Uint8Array> = fc.oneof(
  // truncated frames
  fc.nat({ max: goodBinary.byteLength }).map((n) => goodBinary.slice(0, n)),
  // wrong declared header length
  fc.oneof(fc.constantFrom(0, 1, 2 ** 32 - 1, PROTOCOL_LIMITS.maxHeaderBytes + 1), fc.nat({ max: 2 ** 32 - 1 }), fc.integer({ min: -5, max: 5 }).map((d) => Math.max(0, JSON.stringify(validHeader).length + d))).map((len) =>
    frame(JSON.stringify(validHeader), new Uint8Array(W * H * 3), len),
  ),
  // payload shorter or longer than declared
  fc.integer({ min: -36, max: 64 }).map((d) => frame(JSON.stringify(validHeader), new Uint8Array(Math.max(0, W * H * 3 + d)))),
  // huge declared sizes (image and goal image): must be refused before any allocation
  fc.record({ f: fc.constantFrom('width', 'height', 'byteLength'), v: huge, goal: fc.boolean(), enc: fc.constantFrom('raw', 'png', 'jpeg') }).map(({ f, v, goal, enc }) => {
    const image = { ...validHeader.image, encoding: enc, [f]: v };
    const h = goal ? { ...validHeader, goal: { task: 'imagenav', image } } : { ...validHeader, image };
    return frame(JSON.stringify(h), new Uint8Array(W * H * 3));
  }),
  fc.constantFrom(
    frame(JSON.stringify({ ...validHeader, image: { width: 4096, height: 4096, encoding: 'png', byteLength: 60 } }), new Uint8Array(60)),
    frame(JSON.stringify({ ...validHeader, image: { width: 8192, height: 8192, encoding: 'raw', byteLength: 8192 * 8192 * 3 } }), new Uint8Array(8)),
    frame(JSON.stringify({ op: 'oracle', id: 1, rollouts: Array.from({ length: 65 }, () => ({ steps: [] })) }), new Uint8Array(0)),
  ),
  // wrong types in any header field
  fc.record({ k: fc.constantFrom('op', 'id', 'step', 'pose', 'collided', 'info', 'terminated', 'truncated', 'image', 'goal'), v: wrongValue }).map(({ k, v }) => frame(JSON.stringify({ ...validHeader, [k]: v }), new Uint8Array(W * H * 3))),
  // unknown ops
  anyOp.map((op) => frame(JSON.stringify({ ...validHeader, op }), new Uint8Array(W * H * 3))),
  // a PNG or JPEG descriptor in front of bytes that are not that image
  fc.record({ enc: fc.constantFrom('png', 'jpeg'), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }), sig: fc.boolean() }).map(({ enc, bytes, sig }) => {
    const head = enc === 'png' ? [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] : [0xff, 0xd8, 0xff];
    const payload = sig ? new Uint8Array([...head, ...bytes]) : bytes;
    return frame(JSON.stringify({ ...validHeader, image: { width: W, height: H, encoding: enc, byteLength: payload.byteLength } }), payload);
  }),
  // byte flips anywhere, and random bytes
  fc.tuple(fc.nat({ max: goodBinary.byteLength - 1 }), fc.integer({ min: 0, max: 255 })).map(([at, v]) => {
    const b = goodBinary.slice();
    b[at] = v;
    return b;
  }),
  fc.uint8Array({ maxLength: 128 }),
  fc.constant(goodBinary),
);

// ------------------------------------------------------------------------------------------------------------

/** Heap + ArrayBuffer bytes after a full GC. */
function liveBytes(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run mocha with --expose-gc (.mocharc.json sets it)');
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function assertWireError(e: unknown, allowed: ReadonlySet<string>, input: string): void {
  if (!(e instanceof V4sError)) throw new Error(`not a V4sError (${String(e)}) for ${input.slice(0, 120)}`);
  assert.ok(allowed.has(e.code), `code ${e.code} for ${input.slice(0, 120)}`);
  assert.ok(e.message.length > 0 && e.message.length < 2000, 'a short message naming the problem');
}

describe('fuzz: 10,000 random and mutated protocol messages', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => {
    unhandled.push(e);
  };
  before(() => process.on('unhandledRejection', onUnhandled));
  after(() => process.off('unhandledRejection', onUnhandled));

  describe('9,600 through the pure decoders', () => {
    it('3,000 agent → simulator texts: a valid message or a V4sError with a protocol code', () => {
      let valid = 0;
      fc.assert(
        fc.property(agentText, (t) => {
          try {
            decodeAgentMessage(t);
            valid++;
          } catch (e) {
            assertWireError(e, TEXT_CODES, t);
          }
        }),
        { numRuns: 3000, seed: 801 },
      );
      assert.ok(valid > 0 && valid < 3000, `${valid} valid`);
    });

    it('2,600 simulator → agent texts: a valid message or a V4sError with a protocol code', () => {
      fc.assert(
        fc.property(simulatorText, (t) => {
          try {
            decodeSimulatorMessage(t);
          } catch (e) {
            assertWireError(e, TEXT_CODES, t);
          }
        }),
        { numRuns: 2600, seed: 802 },
      );
    });

    it('4,000 simulator → agent binary messages: decoded, or refused with a protocol/frame code, without allocating declared sizes', async function () {
      this.timeout(60_000);
      const before = liveBytes();
      const codes = new Map<string, number>();
      let decoded = 0;
      await fc.assert(
        fc.asyncProperty(simulatorBinary, async (bytes) => {
          try {
            const packet = decodeBinaryMessage(bytes);
            if (isObservationPacket(packet)) await decodeObservationPacket(packet);
            decoded++;
          } catch (e) {
            assertWireError(e, BINARY_CODES, Buffer.from(bytes.subarray(0, 120)).toString('latin1'));
            const code = (e as V4sError).code;
            codes.set(code, (codes.get(code) ?? 0) + 1);
          }
        }),
        { numRuns: 4000, seed: 803 },
      );
      const growth = (liveBytes() - before) / MiB;
      assert.ok(growth < 8, `live memory grew ${growth.toFixed(1)} MiB (declared sizes must never be allocated)`);
      for (const code of ['E_PROTOCOL_BINARY', 'E_PROTOCOL_FIELD', 'E_PROTOCOL_OP', 'E_FRAME_DECODE']) {
        assert.ok((codes.get(code) ?? 0) > 0, `the generator reaches ${code} (${JSON.stringify([...codes])})`);
      }
      assert.ok(decoded > 0, 'some messages are valid');
    });
  });

  describe('400 over real sockets', () => {
    it('200 to the simulator server: each malformed message gets an error with a known code or a protocol close; the server keeps serving', async function () {
      this.timeout(60_000);
      const server = await SimulatorServer.start(() => new StandInSimulator(), { port: 0, oracle: true });
      const other = await RawPeerSession.open(server.url);
      const before = liveBytes();
      const messages: (string | Uint8Array)[] = [
        ...fc.sample(agentText, { numRuns: 150, seed: 811 }),
        ...fc.sample(fc.uint8Array({ maxLength: 256 }), { numRuns: 20, seed: 812 }),
        ...fc.sample(simulatorBinary, { numRuns: 25, seed: 813 }),
        // Over maxPayload (1 MiB): the WebSocket layer closes with 1009 before the message is buffered whole.
        ...Array.from({ length: 5 }, (_, i) => `{"op":"reset","id":${i},"episode":"${'x'.repeat(MiB + 16)}"}`),
      ];
      let peer: RawPeerSession | undefined;
      let probe = 1_000_000;
      const outcomes = { errors: 0, closes: 0, replies: 0, silent: 0 };
      try {
        for (const m of messages) {
          peer ??= await RawPeerSession.open(server.url);
          const p = ++probe;
          peer.raw.send(m);
          peer.raw.send({ op: 'reset', id: p });
          const seen = await peer.until((msg) => msg.kind === 'binary' && decodeBinaryMessage(msg.bytes).header.id === p);
          let expectAnswer = true;
          if (typeof m === 'string') {
            try {
              const decoded = decodeAgentMessage(m);
              expectAnswer = decoded.op !== 'error'; // an agent's `error` is informational: never answered
            } catch {
              expectAnswer = true;
            }
          }
          if (seen.closed !== undefined) {
            assert.ok(PROTOCOL_CLOSES.has(seen.closed) || seen.closed === 1000, `close code ${seen.closed}`);
            outcomes.closes++;
            peer = undefined;
            continue;
          }
          for (const t of seen.texts) {
            assert.equal(t.op, 'error');
            assert.ok(typeof t.code === 'string' && Object.hasOwn(ERROR_CODES, t.code), `unknown code ${String(t.code)}`);
          }
          outcomes.errors += seen.texts.length;
          outcomes.replies += seen.binaries - 1;
          if (seen.texts.length === 0 && seen.binaries === 1) {
            outcomes.silent++;
            assert.ok(!expectAnswer, `no answer to ${typeof m === 'string' ? m.slice(0, 100) : 'binary'}`);
          }
        }
        await peer?.close();
        // Another client was served throughout, and the server's memory is back where it was.
        other.raw.send({ op: 'reset', id: 1 });
        const r = await other.until((msg) => msg.kind === 'binary');
        assert.equal(r.binaries, 1);
        await new Promise((res) => setTimeout(res, 50));
        const growth = (liveBytes() - before) / MiB;
        assert.ok(growth < 8, `live memory grew ${growth.toFixed(1)} MiB`);
        assert.ok(outcomes.closes >= 5, `${outcomes.closes} closes (5 oversize messages)`);
        assert.ok(outcomes.errors > 100, `${outcomes.errors} error replies`);
        assert.equal(unhandled.length, 0, String(unhandled[0]));
        assert.equal(server.connectionCount, 1, 'only the other client is left');
      } finally {
        await peer?.close();
        await other.close();
        await server.close();
      }
    });

    it('160 to a listening agent after the handshake, 40 as the first message of a connection: errors or protocol closes, never a crash', async function () {
      this.timeout(60_000);
      const listener = await listenForSimulator({ port: 0, maxPayload: PROTOCOL_LIMITS.minAgentMaxPayload, handshakeTimeoutMs: 2000 });
      try {
        const sim = await RawPeer.connect(listener.url);
        sim.send({ op: 'hello', protocol: PROTOCOL_VERSION, capabilities: RAW_CAPABILITIES });
        const env = await listener.accept({ timeoutMs: 5000 });
        assert.equal((await sim.nextJson()).op, 'welcome');
        const remoteErrors: string[] = [];
        env.errors$.subscribe((e) => remoteErrors.push(e.code));
        const before = liveBytes();
        const messages: (string | Uint8Array)[] = [...fc.sample(simulatorText, { numRuns: 60, seed: 821 }), ...fc.sample(simulatorBinary, { numRuns: 100, seed: 822 })];
        let probe = 0;
        let answered = 0;
        for (const m of messages) {
          sim.send(m);
          // Probe: valid JSON without an op. Its error names the probe, so everything before it was handled.
          const p = ++probe;
          sim.send(`{"probe":${p}}`);
          const errors: Record<string, unknown>[] = [];
          for (;;) {
            const got = await sim.nextJson(5000);
            assert.equal(got.op, 'error');
            assert.ok(typeof got.code === 'string' && Object.hasOwn(ERROR_CODES, got.code), `unknown code ${String(got.code)}`);
            if (String(got.message).includes(`{\\"probe\\":${p}}`)) break;
            errors.push(got);
          }
          if (errors.length > 0) answered++;
          else assert.ok(isSilentlyValid(m), `no error for ${typeof m === 'string' ? m.slice(0, 100) : Buffer.from(m.subarray(0, 100)).toString('latin1')}`);
        }
        assert.ok(answered > 100, `${answered} of ${messages.length} answered with an error`);
        assert.ok(env.stats.protocolErrors >= answered);
        assert.equal(env.isClosed, false, 'the session survived all of it');

        // First messages of new connections: a valid hello is welcomed; anything else gets an error and a close.
        const firsts: (string | Uint8Array)[] = [
          ...fc.sample(simulatorText, { numRuns: 30, seed: 823 }),
          ...fc.sample(simulatorBinary, { numRuns: 7, seed: 824 }),
          ...Array.from({ length: 3 }, () => `{"op":"hello","x":"${'y'.repeat(100 * 1024)}"}`), // over maxPayload → 1009
        ];
        for (const m of firsts) {
          const peer = await RawPeer.connect(listener.url);
          peer.send(m);
          const got = await Promise.race([peer.next(5000), peer.closed.then((c) => ({ kind: 'closed' as const, code: c.code }))]);
          if (got.kind === 'text' && (got.json as { op?: string }).op === 'welcome') {
            // a valid hello: welcomed (then hung up below)
          } else if (got.kind === 'text') {
            const j = got.json as { op?: string; code?: string };
            assert.equal(j.op, 'error');
            assert.ok(j.code !== undefined && Object.hasOwn(ERROR_CODES, j.code));
            const closed = await peer.closed;
            assert.ok(PROTOCOL_CLOSES.has(closed.code) || closed.code === 1000, `close ${closed.code}`);
          } else {
            assert.equal(got.kind, 'closed');
            if (got.kind === 'closed') assert.ok(PROTOCOL_CLOSES.has(got.code), `close ${got.code}`);
          }
          peer.socket.terminate();
        }
        for (let i = 0; i < 200 && listener.connectionCount > 1; i++) await new Promise((r) => setTimeout(r, 10));
        assert.equal(listener.connectionCount, 1, 'only the fuzzed session is left');
        assert.ok(listener.rejectedCount >= 30, `${listener.rejectedCount} handshakes refused`);

        // The environment still works: a step is answered.
        const stepping = env.step({ name: 'move_forward' });
        const req = await sim.nextJson();
        assert.equal(req.op, 'step');
        const image = { width: W, height: H, encoding: 'raw' as const, byteLength: W * H * 3 };
        sim.send(encodeObservationPacket({ header: { op: 'observation', id: req.id as number, step: 9, info: {}, terminated: false, truncated: false, image }, image: new Uint8Array(W * H * 3) }));
        assert.equal((await stepping).observation.step, 9);
        const growth = (liveBytes() - before) / MiB;
        assert.ok(growth < 8, `live memory grew ${growth.toFixed(1)} MiB`);
        assert.equal(unhandled.length, 0, String(unhandled[0]));
        sim.socket.terminate();
      } finally {
        await listener.close();
      }
    });
  });
});

/** A message a listening agent may take in silently: a valid push, a valid `error`, or a reply nobody waits for. */
function isSilentlyValid(m: string | Uint8Array): boolean {
  try {
    if (typeof m === 'string') return decodeSimulatorMessage(m).op === 'error';
    decodeBinaryMessage(m);
    return true; // decodable binary: a push (decoded: any frame error would have been answered) or a stale reply
  } catch {
    return false;
  }
}

/** A RawPeer that completed the agent side of the handshake with a SimulatorServer. */
class RawPeerSession {
  private constructor(readonly raw: RawPeer) {}

  static async open(url: string): Promise<RawPeerSession> {
    const raw = await RawPeer.connect(url);
    await raw.nextJson(); // hello
    raw.send({ op: 'welcome', protocol: PROTOCOL_VERSION });
    return new RawPeerSession(raw);
  }

  /** Reads until `done` matches (or the socket closes): the text messages and the number of binaries seen. */
  async until(done: (m: RawMessage) => boolean): Promise<{ texts: Record<string, unknown>[]; binaries: number; closed?: number }> {
    const texts: Record<string, unknown>[] = [];
    let binaries = 0;
    for (;;) {
      const got = await Promise.race([this.raw.next(10_000), this.raw.closed.then((c) => ({ kind: 'closed' as const, code: c.code }))]);
      if (got.kind === 'closed') return { texts, binaries, closed: got.code };
      if (got.kind === 'text') texts.push((got.json ?? {}) as Record<string, unknown>);
      else binaries++;
      if (done(got)) return { texts, binaries };
    }
  }

  async close(): Promise<void> {
    this.raw.socket.terminate();
    await this.raw.closed;
  }
}
