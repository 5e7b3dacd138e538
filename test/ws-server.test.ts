/**
 * SimulatorServer over real sockets on loopback (port 0), driven by the SDK client (connectSimulator) and by
 * hand-written raw peers for the bad-input cases. The simulator behind it is the TEST STAND-IN from
 * ws-fixtures.ts (predictable pixels); ws-builtin.test.ts runs the real built-in simulator.
 */
import assert from 'node:assert/strict';
import { Subscription } from 'rxjs';
import { V4sError } from '../src/errors.js';
import type { Observation } from '../src/types.js';
import { decodeBinaryMessage } from '../src/sim-adapters/protocol/codec.js';
import { CLOSE_CODES, PROTOCOL_VERSION, isObservationPacket } from '../src/sim-adapters/protocol/types.js';
import { connectSimulator, type WsEnvironment } from '../src/sim-adapters/ws-client.js';
import { SimulatorServer, type SimulatorServerOptions } from '../src/sim-adapters/ws-server.js';
import { RawPeer, StandInSimulator, frameDiff, rejectionOf, waitFor, type StandInOptions } from './ws-fixtures.js';

async function start(opts: SimulatorServerOptions = {}, sim: StandInOptions = {}): Promise<{ server: SimulatorServer; sims: StandInSimulator[] }> {
  const sims: StandInSimulator[] = [];
  const server = await SimulatorServer.start(
    () => {
      const s = new StandInSimulator(sim);
      sims.push(s);
      return s;
    },
    { port: 0, ...opts },
  );
  return { server, sims };
}

/** A raw agent: reads hello, answers welcome. */
async function rawAgent(url: string, welcome: object = {}, headers?: Record<string, string>): Promise<{ peer: RawPeer; hello: Record<string, unknown> }> {
  const peer = await RawPeer.connect(url, headers);
  const hello = await peer.nextJson();
  peer.send({ op: 'welcome', protocol: PROTOCOL_VERSION, ...welcome });
  return { peer, hello };
}

/** Proves the server still serves: a step on an already-open client works. */
async function stillServing(env: WsEnvironment, expectedStep: number): Promise<void> {
  const r = await env.step({ name: 'turn_left' });
  assert.equal(r.observation.step, expectedStep);
}

describe('ws server: SimulatorServer', () => {
  let server: SimulatorServer;
  let sims: StandInSimulator[];
  const envs: WsEnvironment[] = [];
  const peers: RawPeer[] = [];

  beforeEach(async () => {
    ({ server, sims } = await start({ oracle: true }));
  });
  afterEach(async () => {
    for (const p of peers.splice(0)) p.socket.terminate();
    await Promise.all(envs.splice(0).map((e) => e.close()));
    await server.close();
  });

  async function connect(opts: Parameters<typeof connectSimulator>[1] = {}): Promise<WsEnvironment> {
    const env = await connectSimulator(server.url, opts);
    envs.push(env);
    return env;
  }
  async function raw(welcome: object = {}, headers?: Record<string, string>): Promise<{ peer: RawPeer; hello: Record<string, unknown> }> {
    const r = await rawAgent(server.url, welcome, headers);
    peers.push(r.peer);
    return r;
  }

  it('binds 127.0.0.1 and reports its port and URL', () => {
    assert.equal(server.host, '127.0.0.1');
    assert.ok(server.port > 0);
    assert.equal(server.url, `ws://127.0.0.1:${server.port}`);
  });

  it('handshake: the simulator sends hello first with its capabilities; the agent answers welcome', async () => {
    const { hello } = await raw();
    assert.equal(hello.op, 'hello');
    assert.equal(hello.protocol, 'v4s.sim.v1');
    assert.equal(hello.token, undefined, 'a server never sends a token');
    const caps = hello.capabilities as Record<string, unknown>;
    assert.deepEqual(caps.encodings, ['raw', 'png', 'jpeg']);
    assert.deepEqual(caps.ops, ['oracle']);
    assert.deepEqual(caps.camera, { width: 16, height: 12, hfov: 90 });
    const env = await connect();
    assert.equal(env.encoding, 'raw');
    assert.deepEqual(env.capabilities.actions.move_forward, { kind: 'move', amount: 0.25 });
    assert.equal(typeof env.oracle, 'function');
  });

  it('reset/step round trip: frames, poses, info and goal arrive exactly as simulated', async () => {
    const env = await connect();
    const seen: Observation[] = [];
    const sub: Subscription = env.observations$.subscribe((o) => seen.push(o));
    const reset = await env.reset({ seed: 7, task: 'imagenav' });
    const sim = sims[0];
    assert.ok(sim);
    assert.equal(reset.observation.step, 0);
    assert.deepEqual(reset.observation.rgb, StandInSimulator.render(16, 12, { seed: 7, x: 0, z: 0, heading: 7, step: 0 }));
    assert.equal(reset.goal?.task, 'imagenav');
    assert.deepEqual(reset.goal?.image, StandInSimulator.render(16, 12, { seed: 8, x: 1, z: -2, heading: 0, step: 0 }));
    assert.ok(Math.abs((reset.observation.info.distanceToGoal ?? 0) - Math.hypot(1, 2)) < 1e-12);
    assert.equal(reset.observation.info.unreachable, false, 'extra info keys pass through');

    const s1 = await env.step({ name: 'move_forward' });
    assert.equal(s1.observation.step, 1);
    assert.equal(s1.terminated, false);
    assert.equal(s1.truncated, false);
    assert.equal(s1.observation.collided, false);
    const [px, , pz] = s1.observation.pose?.position ?? [];
    // heading 7 × 30° = 210°: forward is (−sin 210°, −cos 210°) × 0.25
    assert.ok(Math.abs((px ?? 0) - 0.125) < 1e-9 && Math.abs((pz ?? 0) - 0.2165063509461097) < 1e-9, `pose ${String(px)},${String(pz)}`);
    assert.equal(s1.observation.info.pathLength, 0.25);
    const s2 = await env.step({ name: 'stop' });
    assert.equal(s2.terminated, true);
    sub.unsubscribe();
    assert.deepEqual(
      seen.map((o) => o.step),
      [0, 1, 2],
      'observations$ saw every observation in order',
    );
    // the episode ended: a step now is refused until the next reset
    const e = await rejectionOf(env.step({ name: 'move_forward' }));
    assert.equal(e.code, 'E_NO_EPISODE');
    assert.equal((await env.reset({ seed: 1 })).observation.step, 0);
  });

  it('every client gets its own simulator and episode', async () => {
    const a = await connect();
    const b = await connect();
    await a.reset({ seed: 1 });
    await b.reset({ seed: 2 });
    await a.step({ name: 'move_forward' });
    await a.step({ name: 'move_forward' });
    const rb = await b.step({ name: 'turn_left' });
    assert.equal(rb.observation.step, 1, "b's episode is not advanced by a's steps");
    assert.equal(sims.length, 2);
    assert.deepEqual(sims.map((s) => s.resets), [1, 1]);
    assert.equal(server.connectionCount, 2);
  });

  it('request ids: each reply carries the id of the request it answers, in order', async () => {
    const { peer } = await raw();
    peer.send({ op: 'reset', id: 7, seed: 3 });
    peer.send({ op: 'step', id: 9, action: { name: 'turn_right' } });
    peer.send({ op: 'step', id: 11, action: { name: 'fly' } });
    peer.send({ op: 'step', id: 12, action: { name: 'move_forward' } });
    const r1 = decodeBinaryMessage(await peer.nextBinary());
    const r2 = decodeBinaryMessage(await peer.nextBinary());
    const r3 = await peer.nextJson();
    const r4 = decodeBinaryMessage(await peer.nextBinary());
    assert.deepEqual([r1.header.id, r2.header.id, r3.id, r4.header.id], [7, 9, 11, 12]);
    assert.ok(isObservationPacket(r2) && r2.header.step === 1);
    assert.ok(isObservationPacket(r4) && r4.header.step === 2);
    assert.equal(r3.code, 'E_UNKNOWN_ACTION');
  });

  it('concurrent requests on one client fail fast with E_BUSY (lockstep)', async () => {
    const env = await connect();
    await env.reset({ seed: 1 });
    const first = env.step({ name: 'move_forward' });
    const second = await rejectionOf(env.step({ name: 'turn_left' }));
    assert.equal(second.code, 'E_BUSY');
    assert.match(second.message, /step \(id 3\): step \(id 2\) is still pending/);
    assert.equal((await first).observation.step, 1);
  });

  it('oracle: true futures of each sequence without advancing the episode', async () => {
    const env = await connect();
    await env.reset({ seed: 4 });
    assert.ok(env.oracle);
    const rollouts = await env.oracle({ sequences: [['move_forward', 'turn_left'], ['turn_right']], category: 'chair' });
    assert.equal(rollouts.length, 2);
    assert.deepEqual(rollouts.map((r) => r.frames.length), [2, 1]);
    // The true future: what a second stand-in shows after really taking those steps.
    const twin = new StandInSimulator();
    twin.reset({ seed: 4 });
    const t1 = twin.step({ name: 'move_forward' });
    const t2 = twin.step({ name: 'turn_left' });
    assert.deepEqual(rollouts[0]?.frames[0], t1.observation.rgb);
    assert.deepEqual(rollouts[0]?.frames[1], t2.observation.rgb);
    assert.deepEqual(rollouts[0]?.poses[1], t2.observation.pose);
    const mask = rollouts[0]?.masks[0];
    assert.equal(mask?.length, 16 * 12);
    assert.equal(mask?.[2], 1); // (i + step) % 3 === 0 with step 1
    assert.equal(mask?.[0], 0);
    const after = await env.step({ name: 'turn_left' });
    assert.equal(after.observation.step, 1, 'the oracle did not advance the episode');
  });

  it('oracle is refused unless the server was started with it', async () => {
    const { server: plain } = await start();
    try {
      const env = await connectSimulator(plain.url);
      assert.equal(env.oracle, undefined, 'no oracle method when the peer does not advertise it');
      await env.reset({ seed: 1 });
      await env.close();
      const { peer, hello } = await rawAgent(plain.url);
      assert.deepEqual((hello.capabilities as { ops: string[] }).ops, []);
      peer.send({ op: 'reset', id: 1 });
      await peer.nextBinary();
      peer.send({ op: 'oracle', id: 2, sequences: [['move_forward']] });
      const err = await peer.nextJson();
      assert.deepEqual([err.op, err.id, err.code], ['error', 2, 'E_ORACLE_DISABLED']);
      peer.socket.terminate();
    } finally {
      await plain.close();
    }
  });

  it('encodings: the agent asks for PNG or JPEG in welcome; frames decode equal (PNG exact, JPEG close)', async () => {
    const raw0 = await connect();
    const png = await connect({ encoding: 'png' });
    const jpeg = await connect({ encoding: 'jpeg' });
    assert.deepEqual([raw0.encoding, png.encoding, jpeg.encoding], ['raw', 'png', 'jpeg']);
    const [a, b, c] = await Promise.all([raw0.reset({ seed: 9, task: 'imagenav' }), png.reset({ seed: 9, task: 'imagenav' }), jpeg.reset({ seed: 9, task: 'imagenav' })]);
    assert.equal(frameDiff(b.observation.rgb, a.observation.rgb).max, 0);
    assert.ok(b.goal?.image && a.goal?.image);
    assert.equal(frameDiff(b.goal.image, a.goal.image).max, 0, 'goal image too');
    const dj = frameDiff(c.observation.rgb, a.observation.rgb);
    assert.ok(dj.mean < 12, `jpeg mean |Δ| ${dj.mean} on a noisy 16×12 frame`);
  });

  it("a reply over the agent's announced maxPayload → E_PROTOCOL_TOO_LARGE instead of a 1009 close", async () => {
    const { server: big } = await start({}, { width: 256, height: 256 });
    try {
      const env = await connectSimulator(big.url, { maxPayload: 150_000 });
      const e = await rejectionOf(env.reset({ seed: 1 }));
      assert.equal(e.code, 'E_PROTOCOL_TOO_LARGE');
      assert.match(e.message, /reply to id 1 is \d+ bytes, over the agent's maxPayload 150000/);
      assert.equal(env.isClosed, false, 'the connection survives');
      await env.close();
      const jpeg = await connectSimulator(big.url, { maxPayload: 150_000, encoding: 'jpeg' });
      assert.equal((await jpeg.reset({ seed: 1 })).observation.rgb.width, 256, 'JPEG fits where raw (192 KiB) does not');
      await jpeg.close();
    } finally {
      await big.close();
    }
  });

  it('encoding not offered: connectSimulator rejects with E_CONFIG', async () => {
    const { server: jpegOnly } = await start({ encoding: 'jpeg', encodings: ['jpeg'] });
    try {
      const e = await rejectionOf(connectSimulator(jpegOnly.url, { encoding: 'png' }));
      assert.equal(e.code, 'E_CONFIG');
      assert.match(e.message, /"png" was asked for but the simulator offers jpeg/);
      const env = await connectSimulator(jpegOnly.url);
      assert.equal(env.encoding, 'jpeg', 'the default is the first offered');
      await env.close();
    } finally {
      await jpegOnly.close();
    }
  });

  describe('bad input: an error reply or a close with the right code, while a second client keeps working', () => {
    let other: WsEnvironment;
    beforeEach(async () => {
      other = await connect();
      await other.reset({ seed: 1 });
    });

    it('malformed JSON → E_PROTOCOL_JSON, connection stays open', async () => {
      const { peer } = await raw();
      peer.send('{"op":"step",');
      const err = await peer.nextJson();
      assert.deepEqual([err.op, err.id, err.code], ['error', null, 'E_PROTOCOL_JSON']);
      peer.send({ op: 'reset', id: 2 });
      assert.equal(decodeBinaryMessage(await peer.nextBinary()).header.id, 2, 'the same connection still works');
      await stillServing(other, 1);
    });

    it('unknown op → E_PROTOCOL_OP with the id', async () => {
      const { peer } = await raw();
      peer.send({ op: 'teleport', id: 5 });
      const err = await peer.nextJson();
      assert.deepEqual([err.id, err.code], [5, 'E_PROTOCOL_OP']);
      assert.match(String(err.message), /unknown op "teleport"/);
      await stillServing(other, 1);
    });

    it('wrong protocol version in welcome → E_PROTOCOL_VERSION, close 1002', async () => {
      const peer = await RawPeer.connect(server.url);
      peers.push(peer);
      await peer.nextJson();
      peer.send({ op: 'welcome', protocol: 'v4s.sim.v2' });
      const err = await peer.nextJson();
      assert.equal(err.code, 'E_PROTOCOL_VERSION');
      assert.match(String(err.message), /protocol "v4s.sim.v2" is not v4s.sim.v1/);
      assert.equal((await peer.closed).code, CLOSE_CODES.protocolError);
      await stillServing(other, 1);
    });

    it('a request before welcome → E_PROTOCOL_OP, close 1002', async () => {
      const peer = await RawPeer.connect(server.url);
      peers.push(peer);
      await peer.nextJson();
      peer.send({ op: 'step', id: 1, action: { name: 'stop' } });
      assert.equal((await peer.nextJson()).code, 'E_PROTOCOL_OP');
      assert.equal((await peer.closed).code, 1002);
      await stillServing(other, 1);
    });

    it('unknown action → E_UNKNOWN_ACTION (refused by the client before sending, and by the server)', async () => {
      const e = await rejectionOf(other.step({ name: 'jump' }));
      assert.equal(e.code, 'E_UNKNOWN_ACTION');
      assert.match(e.message, /"jump".*move_forward, turn_left, turn_right, stop/);
      const { peer } = await raw();
      peer.send({ op: 'reset', id: 1 });
      await peer.nextBinary();
      for (const name of ['jump', 'constructor', '__proto__', 'toString']) {
        peer.send({ op: 'step', id: 2, action: { name } });
        const err = await peer.nextJson();
        assert.deepEqual([err.id, err.code], [2, 'E_UNKNOWN_ACTION'], name);
      }
      await stillServing(other, 1);
    });

    it('step before reset → E_NO_EPISODE', async () => {
      const { peer } = await raw();
      peer.send({ op: 'step', id: 3, action: { name: 'move_forward' } });
      const err = await peer.nextJson();
      assert.deepEqual([err.id, err.code], [3, 'E_NO_EPISODE']);
      await stillServing(other, 1);
    });

    it('missing or mistyped fields → E_PROTOCOL_FIELD naming the field', async () => {
      const { peer } = await raw();
      peer.send({ op: 'step', id: 4 });
      const err = await peer.nextJson();
      assert.deepEqual([err.id, err.code], [4, 'E_PROTOCOL_FIELD']);
      assert.match(String(err.message), /field "action"/);
      peer.send({ op: 'reset', id: 5, task: 'vln' });
      assert.match(String((await peer.nextJson()).message), /field "task" must be one of/);
      await stillServing(other, 1);
    });

    it('binary garbage from the agent → E_PROTOCOL_BINARY, connection stays open', async () => {
      const { peer } = await raw();
      peer.send(Uint8Array.from([255, 255, 255, 255, 1, 2, 3]));
      const err = await peer.nextJson();
      assert.equal(err.code, 'E_PROTOCOL_BINARY');
      peer.send({ op: 'reset', id: 6 });
      assert.equal(decodeBinaryMessage(await peer.nextBinary()).header.id, 6);
      await stillServing(other, 1);
    });

    it('oversized message (> maxPayload 1 MiB) → close 1009', async () => {
      const { peer } = await raw();
      peer.send(JSON.stringify({ op: 'reset', id: 1, episode: 'x'.repeat(1024 * 1024 + 10) }));
      assert.equal((await peer.closed).code, CLOSE_CODES.messageTooBig);
      await stillServing(other, 1);
    });

    it('a simulator that throws → E_SIMULATOR with the id, server keeps serving', async () => {
      const { server: failing } = await start({}, { failStep: 'wheel fell off' });
      try {
        const env = await connectSimulator(failing.url);
        await env.reset({ seed: 1 });
        const e = await rejectionOf(env.step({ name: 'move_forward' }));
        assert.equal(e.code, 'E_SIMULATOR');
        assert.match(e.message, /step \(id 2\) failed.*wheel fell off/);
        assert.equal((await env.reset({ seed: 2 })).observation.step, 0, 'the connection survives');
        await env.close();
      } finally {
        await failing.close();
      }
      await stillServing(other, 1);
    });

    it('no welcome in time → E_TIMEOUT, close 1008', async () => {
      const { server: quick } = await start({ handshakeTimeoutMs: 100 });
      try {
        const peer = await RawPeer.connect(quick.url);
        assert.equal((await peer.nextJson()).op, 'hello');
        assert.equal((await peer.nextJson()).code, 'E_TIMEOUT');
        assert.equal((await peer.closed).code, CLOSE_CODES.policyViolation);
      } finally {
        await quick.close();
      }
      await stillServing(other, 1);
    });

    it('too many connections → E_TOO_MANY_CONNECTIONS, close 1013', async () => {
      const { server: small } = await start({ maxConnections: 1 });
      try {
        const first = await connectSimulator(small.url);
        const e = await rejectionOf(connectSimulator(small.url));
        assert.equal(e.code, 'E_TOO_MANY_CONNECTIONS');
        await first.reset({ seed: 1 });
        await first.close();
        await waitFor(() => small.connectionCount === 0, 5000, 'the server to see the close');
        const again = await connectSimulator(small.url);
        await again.close();
      } finally {
        await small.close();
      }
      await stillServing(other, 1);
    });
  });

  it('server close rejects a pending request with E_CLOSED (1001)', async () => {
    const { server: s2 } = await start();
    const env = await connectSimulator(s2.url);
    await env.reset({ seed: 1 });
    const closing = s2.close();
    const e = await rejectionOf(env.step({ name: 'move_forward' }));
    await closing;
    assert.equal(e.code, 'E_CLOSED');
    assert.equal((await env.closed).code, CLOSE_CODES.goingAway);
  });
});

describe('ws server: token and bind security', () => {
  it('refuses to listen beyond loopback without a token (E_INSECURE_BIND)', async () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10']) {
      const e = await rejectionOf(SimulatorServer.start(() => new StandInSimulator(), { host, port: 0 }));
      assert.equal(e.code, 'E_INSECURE_BIND', host);
      assert.match(e.message, /without a token/);
    }
  });

  it('listens on 0.0.0.0 with a token', async () => {
    const s = await SimulatorServer.start(() => new StandInSimulator(), { host: '0.0.0.0', port: 0, token: 'tok-123456' });
    try {
      const env = await connectSimulator(`ws://127.0.0.1:${s.port}`, { token: 'tok-123456' });
      await env.reset({ seed: 1 });
      await env.close();
    } finally {
      await s.close();
    }
  });

  describe('with a token', () => {
    let s: SimulatorServer;
    beforeEach(async () => {
      s = await SimulatorServer.start(() => new StandInSimulator(), { port: 0, token: 'correct horse' });
    });
    afterEach(() => s.close());

    it('the right token connects', async () => {
      const env = await connectSimulator(s.url, { token: 'correct horse' });
      assert.equal((await env.reset({ seed: 3 })).observation.step, 0);
      await env.close();
    });

    it('a wrong token → E_AUTH, before any hello; close 1008', async () => {
      const e = await rejectionOf(connectSimulator(s.url, { token: 'correct horsf' }));
      assert.ok(e instanceof V4sError);
      assert.equal(e.code, 'E_AUTH');
      assert.match(e.message, /wrong token/);
      const peer = await RawPeer.connect(s.url, { authorization: 'Bearer nope' });
      const err = await peer.nextJson();
      assert.deepEqual([err.op, err.code], ['error', 'E_AUTH']);
      assert.equal((await peer.closed).code, CLOSE_CODES.policyViolation);
      assert.equal(peer.messages.length, 0, 'no hello was sent to an unauthenticated peer');
    });

    it('a missing token → E_AUTH saying how to send one', async () => {
      const e = await rejectionOf(connectSimulator(s.url));
      assert.equal(e.code, 'E_AUTH');
      assert.match(e.message, /Authorization: Bearer/);
      // and the server still serves a correct client
      const env = await connectSimulator(s.url, { token: 'correct horse' });
      await env.close();
    });
  });

  it('a port in use → E_LISTEN naming host and port', async () => {
    const a = await SimulatorServer.start(() => new StandInSimulator(), { port: 0 });
    try {
      const e = await rejectionOf(SimulatorServer.start(() => new StandInSimulator(), { port: a.port }));
      assert.equal(e.code, 'E_LISTEN');
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${a.port} \\(EADDRINUSE\\)`));
    } finally {
      await a.close();
    }
  });
});
