import assert from 'node:assert/strict';
import fc from 'fast-check';
import { V4sError } from '../src/errors.js';
import {
  decodeAgentMessage,
  decodeBinaryMessage,
  decodeCapabilities,
  decodeSimulatorMessage,
  encodeObservationPacket,
  encodeOraclePacket,
  encodeTextMessage,
  errorMessage,
  peekBinaryId,
} from '../src/sim-adapters/protocol/codec.js';
import {
  PROTOCOL_LIMITS,
  PROTOCOL_VERSION,
  isObservationPacket,
  type AgentTextMessage,
  type ObservationHeader,
  type OracleHeader,
} from '../src/sim-adapters/protocol/types.js';
import { RAW_CAPABILITIES } from './ws-fixtures.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof V4sError, `expected V4sError, got ${String(e)}`);
    return e.code;
  }
  assert.fail('expected a throw');
}

function obsHeader(over: Partial<ObservationHeader> = {}): ObservationHeader {
  return {
    op: 'observation',
    id: 3,
    step: 2,
    pose: { position: [1, 0, -2.5], rotation: [0, 0.5, 0, 0.866] },
    collided: true,
    info: { distanceToGoal: 1.5, success: false, shortestPathLength: 4, pathLength: 0.5, room: 'kitchen' },
    terminated: false,
    truncated: false,
    image: { width: 4, height: 2, encoding: 'raw', byteLength: 24 },
    ...over,
  };
}

const image24 = Uint8Array.from({ length: 24 }, (_, i) => i * 10);

describe('protocol codec: text messages', () => {
  it('round-trips every agent message', () => {
    const msgs: AgentTextMessage[] = [
      { op: 'welcome', protocol: PROTOCOL_VERSION, encoding: 'png', maxPayload: 1 << 20 },
      { op: 'reset', id: 1, seed: 42, task: 'imagenav', episode: 'ep-7' },
      { op: 'reset', id: 0 },
      { op: 'step', id: 2, action: { name: 'move_forward', amount: 0.5 } },
      { op: 'step', id: PROTOCOL_LIMITS.maxRequestId, action: { name: 'stop' } },
      { op: 'oracle', id: 5, sequences: [['move_forward', 'turn_left'], ['stop']], category: 'chair' },
      { op: 'close' },
      { op: 'error', id: null, code: 'E_PROTOCOL_BINARY', message: 'bad bytes' },
      { op: 'error', id: 9, code: 'E_FRAME_DECODE', message: '' },
    ];
    for (const m of msgs) assert.deepEqual(decodeAgentMessage(encodeTextMessage(m)), m);
  });

  it('round-trips hello (with and without token) and drops unknown capability fields', () => {
    const hello = { op: 'hello' as const, protocol: PROTOCOL_VERSION, token: 's3cret', capabilities: RAW_CAPABILITIES };
    assert.deepEqual(decodeSimulatorMessage(encodeTextMessage(hello)), hello);
    const extra = JSON.stringify({ op: 'hello', protocol: PROTOCOL_VERSION, capabilities: { ...RAW_CAPABILITIES, futureField: 1, encodings: ['webp', 'jpeg'], ops: ['oracle', 'teleport'] } });
    const got = decodeSimulatorMessage(extra);
    assert.equal(got.op, 'hello');
    if (got.op === 'hello') {
      assert.deepEqual(got.capabilities.encodings, ['jpeg'], 'unknown encodings are ignored');
      assert.deepEqual(got.capabilities.ops, ['oracle', 'teleport'], 'ops pass through');
      assert.equal('futureField' in got.capabilities, false);
    }
  });

  it('names the problem with a stable code', () => {
    assert.equal(codeOf(() => decodeAgentMessage('{"op":"step",')), 'E_PROTOCOL_JSON');
    assert.equal(codeOf(() => decodeAgentMessage('[1,2]')), 'E_PROTOCOL_FIELD');
    assert.equal(codeOf(() => decodeAgentMessage('{"id":1}')), 'E_PROTOCOL_FIELD');
    assert.equal(codeOf(() => decodeAgentMessage('{"op":"teleport","id":1}')), 'E_PROTOCOL_OP');
    assert.equal(codeOf(() => decodeAgentMessage('{"op":"hello"}')), 'E_PROTOCOL_OP');
    assert.equal(codeOf(() => decodeSimulatorMessage('{"op":"step","id":1}')), 'E_PROTOCOL_OP');
    assert.equal(codeOf(() => decodeAgentMessage('{"op":"welcome","protocol":"v4s.sim.v2"}')), 'E_PROTOCOL_VERSION');
    assert.equal(codeOf(() => decodeSimulatorMessage('{"op":"hello","protocol":"v0","capabilities":{}}')), 'E_PROTOCOL_VERSION');
    assert.equal(codeOf(() => decodeAgentMessage('{"op":"welcome","protocol":"v4s.sim.v1","encoding":"webp"}')), 'E_PROTOCOL_FIELD');
    assert.equal(codeOf(() => decodeAgentMessage('{"op":"welcome","protocol":"v4s.sim.v1","maxPayload":10}')), 'E_PROTOCOL_FIELD');
    assert.equal(codeOf(() => decodeAgentMessage('{"op":"step","id":-1,"action":{"name":"stop"}}')), 'E_PROTOCOL_FIELD');
    assert.equal(codeOf(() => decodeAgentMessage('{"op":"step","id":1.5,"action":{"name":"stop"}}')), 'E_PROTOCOL_FIELD');
    assert.equal(codeOf(() => decodeAgentMessage('{"op":"step","id":2147483648,"action":{"name":"stop"}}')), 'E_PROTOCOL_FIELD');
    assert.equal(codeOf(() => decodeAgentMessage('{"op":"step","id":1,"action":"stop"}')), 'E_PROTOCOL_FIELD');
    assert.equal(codeOf(() => decodeAgentMessage('{"op":"step","id":1,"action":{"name":"stop","amount":"far"}}')), 'E_PROTOCOL_FIELD');
    assert.equal(codeOf(() => decodeAgentMessage('{"op":"reset","id":1,"seed":-3}')), 'E_PROTOCOL_FIELD');
    assert.equal(codeOf(() => decodeAgentMessage('{"op":"reset","id":1,"task":"vln"}')), 'E_PROTOCOL_FIELD');
    assert.equal(codeOf(() => decodeAgentMessage('{"op":"oracle","id":1,"sequences":[]}')), 'E_PROTOCOL_FIELD');
    const tooMany = JSON.stringify({ op: 'oracle', id: 1, sequences: Array.from({ length: 5 }, () => Array(64).fill('stop')) });
    assert.equal(codeOf(() => decodeAgentMessage(tooMany)), 'E_PROTOCOL_FIELD', '320 actions > maxOracleFrames 256');
  });

  it('keeps the request id of a bad request so the error reply can carry it', () => {
    try {
      decodeAgentMessage('{"op":"step","id":17,"action":{"name":5}}');
      assert.fail('no throw');
    } catch (e) {
      assert.ok(e instanceof V4sError);
      assert.equal(e.details?.id, 17);
      assert.equal(e.details?.field, 'action.name');
      assert.match(e.message, /step \(id 17\): field "action\.name" must be a string/);
    }
  });

  it('validates capabilities field by field', () => {
    const bad = (patch: object): string => codeOf(() => decodeCapabilities({ ...RAW_CAPABILITIES, ...patch }));
    assert.equal(bad({ actions: {} }), 'E_PROTOCOL_FIELD');
    assert.equal(bad({ actions: { fly: { kind: 'fly', amount: 1 } } }), 'E_PROTOCOL_FIELD');
    assert.equal(bad({ actions: { move_forward: { kind: 'move', amount: -1 } } }), 'E_PROTOCOL_FIELD');
    assert.equal(bad({ camera: { width: 0, height: 2, hfov: 90 } }), 'E_PROTOCOL_FIELD');
    assert.equal(bad({ camera: { width: 4, height: 2, hfov: 400 } }), 'E_PROTOCOL_FIELD');
    assert.equal(bad({ encodings: ['webp'] }), 'E_PROTOCOL_FIELD');
    assert.equal(bad({ mode: 'batch' }), 'E_PROTOCOL_FIELD');
    // An action called "__proto__" or "constructor" is data, never a prototype.
    const caps = decodeCapabilities(JSON.parse('{"actions":{"__proto__":{"kind":"move","amount":1},"constructor":{"kind":"stop","amount":0}},"camera":{"width":1,"height":1,"hfov":90},"encodings":["raw"],"mode":"lockstep","ops":[]}'));
    assert.deepEqual(Object.keys(caps.actions).sort(), ['__proto__', 'constructor']);
    assert.equal(Object.getPrototypeOf(caps.actions), Object.prototype);
  });

  it('cuts long error messages to the limit', () => {
    const e = errorMessage('E_SIMULATOR', 'x'.repeat(10_000), 4);
    assert.equal(e.message.length, PROTOCOL_LIMITS.maxErrorMessageLength);
    assert.equal(e.id, 4);
  });
});

describe('protocol codec: binary messages', () => {
  it('lays an observation out as uint32 LE header length | JSON header | image bytes', () => {
    const header = obsHeader();
    const bytes = encodeObservationPacket({ header, image: image24 });
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const h = view.getUint32(0, true);
    assert.deepEqual(JSON.parse(Buffer.from(bytes.subarray(4, 4 + h)).toString('utf8')), header);
    assert.equal(bytes.byteLength, 4 + h + 24);
    assert.deepEqual([...bytes.subarray(4 + h)], [...image24]);
    const packet = decodeBinaryMessage(bytes);
    assert.ok(isObservationPacket(packet));
    assert.deepEqual(packet.header, header);
    assert.deepEqual([...packet.image], [...image24]);
    assert.equal(peekBinaryId(bytes), 3);
  });

  it('appends the goal image after the observation image (reset reply)', () => {
    const goalImage = Uint8Array.from([137, 80, 78, 71, 1, 2, 3]); // bytes are opaque to the codec
    const header = obsHeader({ id: null, goal: { task: 'imagenav', image: { width: 8, height: 8, encoding: 'png', byteLength: 7 } } });
    const bytes = encodeObservationPacket({ header, image: image24, goalImage });
    const packet = decodeBinaryMessage(bytes);
    assert.ok(isObservationPacket(packet));
    assert.equal(packet.header.id, null);
    assert.deepEqual([...packet.image], [...image24]);
    assert.deepEqual([...(packet.goalImage ?? [])], [...goalImage]);
    assert.deepEqual(packet.header.goal, header.goal);
  });

  it('round-trips an oracle reply: per rollout, per step, image bytes then mask bytes', () => {
    const step = (k: number) => ({
      image: { width: 2, height: 2, encoding: 'raw' as const, byteLength: 12 },
      mask: { width: 2, height: 2, byteLength: 4 },
      pose: { position: [k, 0, 0] as const, rotation: [0, 0, 0, 1] as const },
    });
    const header: OracleHeader = { op: 'oracle', id: 8, rollouts: [{ steps: [step(0), step(1)] }, { steps: [step(2)] }] };
    const img = (k: number) => new Uint8Array(12).fill(k);
    const mask = (k: number) => Uint8Array.from([k % 2, 1, 0, 1]);
    const images = [[img(1), img(2)], [img(3)]];
    const masks = [[mask(1), mask(2)], [mask(3)]];
    const bytes = encodeOraclePacket({ header, images, masks });
    const h = new DataView(bytes.buffer).getUint32(0, true);
    // payload order: r0s0 image, r0s0 mask, r0s1 image, r0s1 mask, r1s0 image, r1s0 mask
    const payload = [...bytes.subarray(4 + h)];
    assert.deepEqual(payload, [...img(1), ...mask(1), ...img(2), ...mask(2), ...img(3), ...mask(3)]);
    const packet = decodeBinaryMessage(bytes);
    assert.ok(!isObservationPacket(packet));
    assert.deepEqual(packet.header, header);
    assert.deepEqual(packet.images.map((r) => r.map((b) => [...b])), images.map((r) => r.map((b) => [...b])));
    assert.deepEqual(packet.masks.map((r) => r.map((b) => [...b])), masks.map((r) => r.map((b) => [...b])));
  });

  it('refuses malformed binary messages with E_PROTOCOL_BINARY, naming the problem', () => {
    const good = encodeObservationPacket({ header: obsHeader(), image: image24 });
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array([1, 0]), /shorter than its 4-byte header length/],
      [Uint8Array.from([255, 255, 255, 255, 0]), /header; the limit is/],
      [Uint8Array.from([200, 0, 0, 0, 123]), /200-byte header but only 1 bytes follow/],
      [Uint8Array.from([2, 0, 0, 0, 0xc3, 0x28]), /not valid UTF-8/],
      [Uint8Array.from([3, 0, 0, 0, 0x5b, 0x31, 0x5d]), /must be a JSON object/],
      [good.subarray(0, good.byteLength - 1), /declares 24 payload bytes but 23 follow/],
      [Uint8Array.from([...good, 0]), /declares 24 payload bytes but 25 follow/],
    ];
    for (const [bytes, re] of cases) {
      try {
        decodeBinaryMessage(bytes);
        assert.fail(`no throw for ${re}`);
      } catch (e) {
        assert.ok(e instanceof V4sError);
        assert.equal(e.code, 'E_PROTOCOL_BINARY', `${re}: ${e.message}`);
        assert.match(e.message, re);
      }
    }
  });

  it('refuses headers with wrong sizes, types or ops', () => {
    const enc = (h: object, payload = 24): Uint8Array => {
      const json = Buffer.from(JSON.stringify(h));
      const out = new Uint8Array(4 + json.length + payload);
      new DataView(out.buffer).setUint32(0, json.length, true);
      out.set(json, 4);
      return out;
    };
    const code = (bytes: Uint8Array) => codeOf(() => decodeBinaryMessage(bytes));
    assert.equal(code(enc({ ...obsHeader(), image: { width: 4, height: 2, encoding: 'raw', byteLength: 23 } }, 23)), 'E_PROTOCOL_BINARY');
    assert.equal(code(enc({ ...obsHeader(), image: { width: 100000, height: 2, encoding: 'raw', byteLength: 24 } })), 'E_PROTOCOL_FIELD');
    assert.equal(code(enc({ ...obsHeader(), image: { width: 8192, height: 8192, encoding: 'png', byteLength: 24 } })), 'E_PROTOCOL_BINARY');
    assert.equal(code(enc({ ...obsHeader(), image: { width: 4, height: 2, encoding: 'png', byteLength: 2 ** 40 } })), 'E_PROTOCOL_FIELD');
    assert.equal(code(enc({ ...obsHeader(), step: 'two' })), 'E_PROTOCOL_FIELD');
    assert.equal(code(enc({ ...obsHeader(), pose: { position: [0, 0], rotation: [0, 0, 0, 1] } })), 'E_PROTOCOL_FIELD');
    assert.equal(code(enc({ ...obsHeader(), info: { success: 'yes' } })), 'E_PROTOCOL_FIELD');
    assert.equal(code(enc({ ...obsHeader(), terminated: undefined })), 'E_PROTOCOL_FIELD');
    assert.equal(code(enc({ ...obsHeader(), op: 'frame' })), 'E_PROTOCOL_OP');
    assert.equal(code(enc({ ...obsHeader(), op: 7 })), 'E_PROTOCOL_FIELD');
    assert.equal(code(enc({ op: 'oracle', id: null, rollouts: [] })), 'E_PROTOCOL_FIELD');
  });

  it('encodes only what it would decode (NaN in a pose is refused at the sender)', () => {
    const header = obsHeader({ pose: { position: [Number.NaN, 0, 0], rotation: [0, 0, 0, 1] } });
    assert.equal(codeOf(() => encodeObservationPacket({ header, image: image24 })), 'E_PROTOCOL_FIELD');
    assert.equal(codeOf(() => encodeObservationPacket({ header: obsHeader(), image: image24.subarray(1) })), 'E_PROTOCOL_BINARY');
  });

  it('property: any observation header round-trips', () => {
    const finite = fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 });
    const arb = fc.record({
      id: fc.option(fc.integer({ min: 0, max: PROTOCOL_LIMITS.maxRequestId }), { nil: null }),
      step: fc.nat(),
      w: fc.integer({ min: 1, max: 8 }),
      h: fc.integer({ min: 1, max: 8 }),
      pos: fc.tuple(finite, finite, finite),
      dist: fc.option(finite, { nil: null }),
      success: fc.boolean(),
      terminated: fc.boolean(),
      truncated: fc.boolean(),
    });
    fc.assert(
      fc.property(arb, (r) => {
        const header: ObservationHeader = {
          op: 'observation',
          id: r.id,
          step: r.step,
          pose: { position: r.pos, rotation: [0, 0, 0, 1] },
          info: { distanceToGoal: r.dist, success: r.success },
          terminated: r.terminated,
          truncated: r.truncated,
          image: { width: r.w, height: r.h, encoding: 'raw', byteLength: r.w * r.h * 3 },
        };
        const image = new Uint8Array(r.w * r.h * 3).fill(r.step & 255);
        const packet = decodeBinaryMessage(encodeObservationPacket({ header, image }));
        assert.ok(isObservationPacket(packet));
        // JSON turns -0 into 0; compare through JSON.
        assert.deepEqual(JSON.parse(JSON.stringify(packet.header)), JSON.parse(JSON.stringify(header)));
        assert.deepEqual([...packet.image], [...image]);
      }),
      { numRuns: 300 },
    );
  });

  it('property: random and mutated bytes only ever throw V4sError', () => {
    const good = encodeObservationPacket({ header: obsHeader({ goal: { task: 'objectnav', category: 'chair' } }), image: image24 });
    const mutated = fc
      .tuple(fc.nat({ max: good.byteLength - 1 }), fc.integer({ min: 0, max: 255 }), fc.nat({ max: good.byteLength }))
      .map(([at, v, cut]) => {
        const b = new Uint8Array(good);
        b[at] = v;
        return b.subarray(0, Math.max(cut, at + 1));
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), mutated), (bytes) => {
        try {
          decodeBinaryMessage(bytes);
        } catch (e) {
          assert.ok(e instanceof V4sError, String(e));
          assert.match(e.code, /^E_PROTOCOL_(BINARY|FIELD|OP|JSON)$/);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('property: random text only ever throws V4sError from both decoders', () => {
    const texts = fc.oneof(
      fc.string(),
      fc.json(),
      fc.record({ op: fc.constantFrom('welcome', 'reset', 'step', 'oracle', 'close', 'error', 'hello', 'x'), id: fc.anything(), action: fc.anything(), sequences: fc.anything(), protocol: fc.constantFrom(PROTOCOL_VERSION, 'v2'), capabilities: fc.anything() }).map((o) => JSON.stringify(o) ?? '{}'),
    );
    fc.assert(
      fc.property(texts, (t) => {
        for (const dec of [decodeAgentMessage, decodeSimulatorMessage]) {
          try {
            dec(t);
          } catch (e) {
            assert.ok(e instanceof V4sError, String(e));
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});
