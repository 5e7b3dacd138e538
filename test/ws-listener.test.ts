/**
 * The listening direction over real sockets: the agent listens (listenForSimulator) and a simulator dials in
 * (dialAgent with the TEST STAND-IN simulator from ws-fixtures.ts, or a hand-driven RawPeer for bad input).
 * Roles stay fixed: the dialing simulator still sends hello first, with the token.
 */
import assert from 'node:assert/strict';
import { CLOSE_CODES, PROTOCOL_VERSION } from '../src/sim-adapters/protocol/types.js';
import { encodeObservationPacket } from '../src/sim-adapters/protocol/codec.js';
import type { WsEnvironment } from '../src/sim-adapters/ws-client.js';
import { listenForSimulator, type SimulatorListener } from '../src/sim-adapters/ws-listener.js';
import { dialAgent, type SimulatorConnection } from '../src/sim-adapters/ws-server.js';
import { RAW_CAPABILITIES, RawPeer, StandInSimulator, rejectionOf } from './ws-fixtures.js';

describe('ws listener: the agent listens, a simulator dials in', () => {
  let listener: SimulatorListener;
  const conns: SimulatorConnection[] = [];
  const envs: WsEnvironment[] = [];
  const peers: RawPeer[] = [];

  beforeEach(async () => {
    listener = await listenForSimulator({ port: 0, token: 'listen-token' });
  });
  afterEach(async () => {
    for (const p of peers.splice(0)) p.socket.terminate();
    await Promise.all(envs.splice(0).map((e) => e.close()));
    await Promise.all(conns.splice(0).map((c) => c.close()));
    await listener.close();
  });

  /** `token` null: dial without one. */
  async function dial(token: string | null = 'listen-token', opts: Parameters<typeof dialAgent>[2] = {}): Promise<SimulatorConnection> {
    const c = await dialAgent(listener.url, () => new StandInSimulator({ mode: 'stream' }), { ...opts, ...(token !== null && { token }) });
    conns.push(c);
    return c;
  }
  async function accept(): Promise<WsEnvironment> {
    const e = await listener.accept({ timeoutMs: 5000 });
    envs.push(e);
    return e;
  }

  it('handshake in the reverse direction, then reset/step round trip', async () => {
    const [conn, env] = await Promise.all([dial(), accept()]);
    assert.equal(env.capabilities.name, 'stand-in');
    assert.equal(env.capabilities.mode, 'stream');
    assert.equal(conn.encoding, 'raw');
    const r = await env.reset({ seed: 5, task: 'pointnav' });
    assert.deepEqual(r.goal, { task: 'pointnav', position: [1, 0, -2] });
    assert.deepEqual(r.observation.rgb, StandInSimulator.render(16, 12, { seed: 5, x: 0, z: 0, heading: 5, step: 0 }));
    const s = await env.step({ name: 'turn_right' });
    assert.equal(s.observation.step, 1);
    assert.match(env.peer, /^simulator 127\.0\.0\.1:\d+ \(dialed in to ws:\/\/127\.0\.0\.1:\d+\)$/);
  });

  it('accept() hands out simulators in arrival order, also when they dialed before accept was called', async () => {
    for (const width of [8, 9]) {
      conns.push(await dialAgent(listener.url, () => new StandInSimulator({ width }), { token: 'listen-token' }));
    }
    // both handshakes are complete: the agent queued them before any accept()
    const a = await accept();
    const b = await accept();
    assert.deepEqual([a.capabilities.camera.width, b.capabilities.camera.width], [8, 9]);
    await a.reset({ seed: 1 });
    await b.reset({ seed: 2 });
    assert.equal(listener.connectionCount, 2);
  });

  it('a wrong token → dialAgent rejects E_AUTH (close 1008); the listener keeps accepting', async () => {
    const e = await rejectionOf(dial('wrong'));
    assert.equal(e.code, 'E_AUTH');
    assert.match(e.message, /refused the connection: E_AUTH: wrong token/);
    const missing = await rejectionOf(dial(null));
    assert.equal(missing.code, 'E_AUTH');
    assert.match(missing.message, /a token is required in hello/);
    assert.equal(listener.rejectedCount, 2);
    assert.equal(listener.lastRejection?.code, 'E_AUTH');
    const [, env] = await Promise.all([dial(), accept()]);
    assert.equal((await env.reset({ seed: 1 })).observation.step, 0);
  });

  it('a raw dialer with the wrong token gets error E_AUTH then close 1008', async () => {
    const peer = await RawPeer.connect(listener.url);
    peers.push(peer);
    peer.send({ op: 'hello', protocol: PROTOCOL_VERSION, token: 'listen-tokeN', capabilities: RAW_CAPABILITIES });
    const err = await peer.nextJson();
    assert.deepEqual([err.op, err.code], ['error', 'E_AUTH']);
    assert.equal((await peer.closed).code, CLOSE_CODES.policyViolation);
  });

  it('refuses to listen beyond loopback without a token (E_INSECURE_BIND)', async () => {
    const e = await rejectionOf(listenForSimulator({ host: '0.0.0.0', port: 0 }));
    assert.equal(e.code, 'E_INSECURE_BIND');
    const open = await listenForSimulator({ port: 0 }); // loopback needs no token
    await open.close();
  });

  it('stream mode: frames the simulator pushes (id null) arrive on observations$', async () => {
    const [conn, env] = await Promise.all([dial(), accept()]);
    await env.reset({ seed: 3 });
    const steps: number[] = [];
    const got3 = new Promise<void>((resolve) =>
      env.observations$.subscribe((o) => {
        steps.push(o.step);
        if (steps.length === 3) resolve();
      }),
    );
    for (let k = 10; k < 13; k++) {
      await conn.push({ observation: { step: k, rgb: StandInSimulator.render(16, 12, { seed: 0, x: 0, z: 0, heading: 0, step: k }), info: {} } });
    }
    await got3;
    assert.deepEqual(steps, [10, 11, 12]);
    assert.equal(env.stats.pushes, 3);
  });

  it('garbage before hello → error and close 1002; after the handshake → error reply, connection kept', async () => {
    const early = await RawPeer.connect(listener.url);
    peers.push(early);
    early.send('{"op":"hello"');
    assert.equal((await early.nextJson()).code, 'E_PROTOCOL_JSON');
    assert.equal((await early.closed).code, CLOSE_CODES.protocolError);

    const late = await RawPeer.connect(listener.url);
    peers.push(late);
    late.send({ op: 'hello', protocol: PROTOCOL_VERSION, token: 'listen-token', capabilities: RAW_CAPABILITIES });
    const env = await accept();
    assert.equal((await late.nextJson()).op, 'welcome');
    const errs: string[] = [];
    env.errors$.subscribe((e) => errs.push(e.code));
    late.send(Uint8Array.from([9, 0, 0, 0, 1, 2]));
    const reply = await late.nextJson();
    assert.deepEqual([reply.op, reply.code], ['error', 'E_PROTOCOL_BINARY']);
    late.send({ op: 'reset', id: 1 });
    assert.equal((await late.nextJson()).code, 'E_PROTOCOL_OP', 'a simulator must not send agent ops');
    // still a working connection:
    const stepping = env.step({ name: 'move_forward' });
    const req = await late.nextJson();
    late.send(encodeObservationPacket({ header: { op: 'observation', id: req.id as number, step: 1, info: {}, terminated: false, truncated: false, image: { width: 1, height: 1, encoding: 'raw', byteLength: 3 } }, image: Uint8Array.from([1, 2, 3]) }));
    assert.deepEqual([...(await stepping).observation.rgb.data], [1, 2, 3]);
    assert.deepEqual(errs, ['E_PROTOCOL_BINARY', 'E_PROTOCOL_OP']);
  });

  it('a message over the agent maxPayload → close 1009', async () => {
    const small = await listenForSimulator({ port: 0, maxPayload: 64 * 1024 });
    try {
      const peer = await RawPeer.connect(small.url);
      peer.send({ op: 'hello', protocol: PROTOCOL_VERSION, capabilities: RAW_CAPABILITIES });
      const env = await small.accept({ timeoutMs: 5000 });
      await peer.nextJson();
      peer.send(new Uint8Array(100 * 1024));
      assert.equal((await peer.closed).code, CLOSE_CODES.messageTooBig);
      await env.closed;
    } finally {
      await small.close();
    }
  });

  it('too many connections → dialAgent rejects E_TOO_MANY_CONNECTIONS', async () => {
    const one = await listenForSimulator({ port: 0, maxConnections: 1 });
    try {
      const first = await dialAgent(one.url, () => new StandInSimulator());
      const e = await rejectionOf(dialAgent(one.url, () => new StandInSimulator()));
      assert.equal(e.code, 'E_TOO_MANY_CONNECTIONS');
      await first.close();
    } finally {
      await one.close();
    }
  });

  it('accept() times out with E_TIMEOUT; close() rejects waiting accepts with E_CLOSED', async () => {
    const e = await rejectionOf(listener.accept({ timeoutMs: 50 }));
    assert.equal(e.code, 'E_TIMEOUT');
    const waiting = listener.accept();
    await listener.close();
    assert.equal((await rejectionOf(waiting)).code, 'E_CLOSED');
    assert.equal((await rejectionOf(listener.accept())).code, 'E_CLOSED');
  });

  it('dialAgent to nowhere → E_CONNECT naming the URL', async () => {
    const closed = await listenForSimulator({ port: 0 });
    const url = closed.url;
    await closed.close();
    const e = await rejectionOf(dialAgent(url, () => new StandInSimulator()));
    assert.equal(e.code, 'E_CONNECT');
    assert.ok(e.message.includes(url));
    assert.match(e.message, /agent is listening/);
  });

  it('the simulator hangs up: a pending step rejects E_CLOSED', async () => {
    const [conn, env] = await Promise.all([dial(), accept()]);
    await env.reset({ seed: 1 });
    const closing = conn.close(CLOSE_CODES.goingAway, 'sim shutting down');
    const e = await rejectionOf(env.step({ name: 'move_forward' }));
    await closing;
    assert.equal(e.code, 'E_CLOSED');
    assert.equal((await env.closed).code, CLOSE_CODES.goingAway);
  });
});
