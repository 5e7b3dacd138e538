/**
 * The agent's client (connectSimulator / WsEnvironment) against hand-written simulator peers on real sockets:
 * raw `ws` servers that speak v4s.sim.v1 by hand, so a test can hang, drop, answer late or send broken bytes.
 * They are test peers, not simulators; ws-server.test.ts covers the real SimulatorServer.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodeObservationPacket } from '../src/sim-adapters/protocol/codec.js';
import { encodeFrame } from '../src/sim-adapters/protocol/image.js';
import { CLOSE_CODES, PROTOCOL_VERSION, type ObservationHeader } from '../src/sim-adapters/protocol/types.js';
import type { Capabilities } from '../src/sim-adapters/environment.js';
import { connectSimulator } from '../src/sim-adapters/ws-client.js';
import type { Observation } from '../src/types.js';
import { RAW_CAPABILITIES, RawPeer, gradientFrame, rawServer, rejectionOf, waitFor } from './ws-fixtures.js';

type Script = (peer: RawPeer, welcome: Record<string, unknown>) => Promise<void> | void;

/** A hand-written simulator: sends hello, reads welcome, then runs `script`. */
async function scriptedSimulator(script: Script, caps: Capabilities = RAW_CAPABILITIES, protocol = PROTOCOL_VERSION) {
  const errors: unknown[] = [];
  const srv = await rawServer((peer) => {
    peer.send({ op: 'hello', protocol, capabilities: caps });
    void (async () => {
      try {
        const welcome = await peer.nextJson();
        await script(peer, welcome);
      } catch (e) {
        errors.push(e);
      }
    })();
  });
  return { ...srv, errors };
}

function header(id: number | null, step: number, over: Partial<ObservationHeader> = {}): ObservationHeader {
  return {
    op: 'observation',
    id,
    step,
    info: { distanceToGoal: null, success: false },
    terminated: false,
    truncated: false,
    image: { width: 4, height: 2, encoding: 'raw', byteLength: 24 },
    ...over,
  };
}

function rawObservation(id: number | null, step: number, fill = step): Uint8Array {
  return encodeObservationPacket({ header: header(id, step), image: new Uint8Array(24).fill(fill) });
}

describe('ws client: connectSimulator and WsEnvironment', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  it('an unreachable server → E_CONNECT naming the URL and what to check', async () => {
    // A port that was free a moment ago: bind, read the port, close.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const url = `ws://127.0.0.1:${port}`;
    const e = await rejectionOf(connectSimulator(url));
    assert.equal(e.code, 'E_CONNECT');
    assert.ok(e.message.includes(url), e.message);
    assert.match(e.message, /ECONNREFUSED/);
    assert.match(e.message, /`v4s sim`.*running.*host and port.*token/);
  });

  it('an HTTP server that is not a WebSocket endpoint → E_CONNECT with the HTTP status', async () => {
    const http = createServer((_q, res) => res.writeHead(404).end());
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    closers.push(() => new Promise((r) => http.close(() => r())));
    const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/`;
    const e = await rejectionOf(connectSimulator(url));
    assert.equal(e.code, 'E_CONNECT');
    assert.match(e.message, /HTTP 404 instead of a WebSocket upgrade/);
  });

  it('a bad URL → E_CONFIG', async () => {
    assert.equal((await rejectionOf(connectSimulator('http://127.0.0.1:1'))).code, 'E_CONFIG');
    assert.equal((await rejectionOf(connectSimulator('not a url'))).code, 'E_CONFIG');
  });

  it('welcome carries the protocol version and the agent maxPayload; encoding only when asked', async () => {
    const welcomes: Record<string, unknown>[] = [];
    const sim = await scriptedSimulator((_p, w) => {
      welcomes.push(w);
    });
    closers.push(sim.close);
    const a = await connectSimulator(sim.url);
    const b = await connectSimulator(sim.url, { encoding: 'jpeg', maxPayload: 1 << 20 });
    await waitFor(() => welcomes.length === 2, 5000, 'two welcomes');
    assert.deepEqual(welcomes, [
      { op: 'welcome', protocol: 'v4s.sim.v1', maxPayload: 64 * 1024 * 1024 },
      { op: 'welcome', protocol: 'v4s.sim.v1', maxPayload: 1 << 20, encoding: 'jpeg' },
    ]);
    await a.close();
    await b.close();
  });

  it('hello of another protocol version → E_PROTOCOL_VERSION, and the agent closes 1002', async () => {
    let closedWith: number | undefined;
    const srv = await rawServer((peer) => {
      peer.send({ op: 'hello', protocol: 'v4s.sim.v2', capabilities: RAW_CAPABILITIES });
      void peer.closed.then((c) => (closedWith = c.code));
    });
    closers.push(srv.close);
    const e = await rejectionOf(connectSimulator(srv.url));
    assert.equal(e.code, 'E_PROTOCOL_VERSION');
    await waitFor(() => closedWith !== undefined, 5000, 'close');
    assert.equal(closedWith, CLOSE_CODES.protocolError);
  });

  it('hello with invalid capabilities → E_PROTOCOL_FIELD naming the field', async () => {
    const sim = await scriptedSimulator(() => undefined, { ...RAW_CAPABILITIES, camera: { width: -1, height: 2, hfov: 90 } });
    closers.push(sim.close);
    const e = await rejectionOf(connectSimulator(sim.url));
    assert.equal(e.code, 'E_PROTOCOL_FIELD');
    assert.match(e.message, /capabilities\.camera\.width/);
  });

  it('no hello in time → E_TIMEOUT', async () => {
    const srv = await rawServer(() => undefined);
    closers.push(srv.close);
    const e = await rejectionOf(connectSimulator(srv.url, { handshakeTimeoutMs: 80 }));
    assert.equal(e.code, 'E_TIMEOUT');
    assert.match(e.message, /no hello within 80 ms/);
  });

  it('a hanging simulator: step times out with E_TIMEOUT naming the op; a late reply is dropped by id', async () => {
    let stepMsg: Record<string, unknown> | undefined;
    const sim = await scriptedSimulator(async (peer) => {
      const reset = await peer.nextJson();
      peer.send(rawObservation(reset.id as number, 0));
      stepMsg = await peer.nextJson(); // … and hang: no reply
      const again = await peer.nextJson(); // the next step
      peer.send(rawObservation(stepMsg.id as number, 1, 111)); // the late reply to the timed-out step
      peer.send(rawObservation(again.id as number, 2, 222));
    });
    closers.push(sim.close);
    const env = await connectSimulator(sim.url, { requestTimeoutMs: 150 });
    const seen: Observation[] = [];
    env.observations$.subscribe((o) => seen.push(o));
    await env.reset();
    const e = await rejectionOf(env.step({ name: 'move_forward' }));
    assert.equal(e.code, 'E_TIMEOUT');
    assert.match(e.message, /step \(id 2\) got no reply from ws:\/\/127\.0\.0\.1:\d+ within 150 ms/);
    const next = await env.step({ name: 'move_forward' });
    assert.equal(next.observation.step, 2, 'the reply to id 3, not the late one to id 2');
    assert.equal(next.observation.rgb.data[0], 222);
    assert.equal(env.stats.staleReplies, 1);
    assert.deepEqual(seen.map((o) => o.step), [0, 2], 'the stale observation is not emitted');
    await env.close();
  });

  it('the socket drops while a step is pending → E_CLOSED; observations$ completes; later calls fail E_CLOSED', async () => {
    const sim = await scriptedSimulator(async (peer) => {
      const reset = await peer.nextJson();
      peer.send(rawObservation(reset.id as number, 0));
      await peer.nextJson();
      peer.socket.terminate(); // drop without a close frame
    });
    closers.push(sim.close);
    const env = await connectSimulator(sim.url);
    let completed = false;
    env.observations$.subscribe({ complete: () => (completed = true) });
    await env.reset();
    const e = await rejectionOf(env.step({ name: 'move_forward' }));
    assert.equal(e.code, 'E_CLOSED');
    assert.match(e.message, /closed \(code 1006\) while step \(id 2\) was pending/);
    assert.equal(completed, true);
    assert.equal((await rejectionOf(env.reset())).code, 'E_CLOSED');
    await env.close(); // idempotent on a dropped connection
  });

  it('an error reply rejects the request with its code; an unknown code becomes E_SIMULATOR', async () => {
    const sim = await scriptedSimulator(async (peer) => {
      const a = await peer.nextJson();
      peer.send({ op: 'error', id: a.id, code: 'E_NO_EPISODE', message: 'reset first' });
      const b = await peer.nextJson();
      peer.send({ op: 'error', id: b.id, code: 'HABITAT_NAVMESH', message: 'no navmesh' });
    });
    closers.push(sim.close);
    const env = await connectSimulator(sim.url);
    const e1 = await rejectionOf(env.step({ name: 'move_forward' }));
    assert.equal(e1.code, 'E_NO_EPISODE');
    assert.match(e1.message, /step \(id 1\) failed on ws:.*E_NO_EPISODE: reset first/);
    const e2 = await rejectionOf(env.step({ name: 'move_forward' }));
    assert.equal(e2.code, 'E_SIMULATOR');
    assert.equal(e2.details?.remoteCode, 'HABITAT_NAVMESH');
    await env.close();
  });

  it('a malformed binary reply → the request fails E_PROTOCOL_BINARY and the agent tells the simulator', async () => {
    const fromAgent: Record<string, unknown>[] = [];
    const sim = await scriptedSimulator(async (peer) => {
      const a = await peer.nextJson();
      const good = rawObservation(a.id as number, 0);
      peer.send(good.subarray(0, good.byteLength - 5)); // truncated image
      fromAgent.push(await peer.nextJson());
      const b = await peer.nextJson();
      peer.send(rawObservation(b.id as number, 0));
    });
    closers.push(sim.close);
    const env = await connectSimulator(sim.url);
    const e = await rejectionOf(env.reset());
    assert.equal(e.code, 'E_PROTOCOL_BINARY');
    assert.match(e.message, /observation \(id 1\): header declares 24 payload bytes but 19 follow/);
    assert.equal((await env.reset()).observation.step, 0, 'the connection is still usable');
    assert.deepEqual([fromAgent[0]?.op, fromAgent[0]?.id, fromAgent[0]?.code], ['error', 1, 'E_PROTOCOL_BINARY']);
    await env.close();
  });

  it('a PNG that is not the size its header says → E_FRAME_SIZE; a corrupt JPEG → E_FRAME_DECODE', async () => {
    const png = await encodeFrame(gradientFrame(8, 8), 'png');
    const jpg = await encodeFrame(gradientFrame(4, 2), 'jpeg');
    const sim = await scriptedSimulator(async (peer) => {
      const a = await peer.nextJson();
      peer.send(encodeObservationPacket({ header: header(a.id as number, 0, { image: { width: 4, height: 2, encoding: 'png', byteLength: png.byteLength } }), image: png }));
      await peer.nextJson(); // the agent's error report
      const b = await peer.nextJson();
      const broken = new Uint8Array(jpg);
      broken.fill(0, 20, 200);
      peer.send(encodeObservationPacket({ header: header(b.id as number, 0, { image: { width: 4, height: 2, encoding: 'jpeg', byteLength: broken.byteLength } }), image: broken }));
    });
    closers.push(sim.close);
    const env = await connectSimulator(sim.url);
    const e1 = await rejectionOf(env.reset());
    assert.equal(e1.code, 'E_FRAME_SIZE');
    assert.match(e1.message, /observation \(id 1\) image \(png 4×2/);
    const e2 = await rejectionOf(env.reset());
    assert.equal(e2.code, 'E_FRAME_DECODE');
    await env.close();
  });

  it('stream mode: pushed frames (id null) reach observations$ in order, between replies', async () => {
    const sim = await scriptedSimulator(
      async (peer) => {
        for (let k = 0; k < 3; k++) peer.send(rawObservation(null, k, k));
        const a = await peer.nextJson();
        peer.send(rawObservation(a.id as number, 3, 3));
        peer.send(rawObservation(null, 4, 4));
      },
      { ...RAW_CAPABILITIES, mode: 'stream' },
    );
    closers.push(sim.close);
    const env = await connectSimulator(sim.url);
    assert.equal(env.capabilities.mode, 'stream');
    const seen: number[] = [];
    const done = new Promise<void>((resolve) =>
      env.observations$.subscribe((o) => {
        seen.push(o.step);
        if (o.step === 4) resolve();
      }),
    );
    const r = await env.step({ name: 'move_forward' });
    assert.equal(r.observation.step, 3);
    await done;
    assert.deepEqual(seen, [0, 1, 2, 3, 4]);
    assert.equal(env.stats.pushes, 4);
    await env.close();
  });

  it('close() sends the close op and ends with 1000', async () => {
    let got: Record<string, unknown> | undefined;
    let code: number | undefined;
    const sim = await scriptedSimulator(async (peer) => {
      got = await peer.nextJson();
      code = (await peer.closed).code;
    });
    closers.push(sim.close);
    const env = await connectSimulator(sim.url);
    await env.close();
    await waitFor(() => code !== undefined, 5000, 'close on the simulator side');
    assert.deepEqual(got, { op: 'close' });
    assert.equal(code, CLOSE_CODES.normal);
    assert.equal(env.isClosed, true);
  });

  it('garbage text from the simulator is answered with an error and reported on errors$', async () => {
    const sim = await scriptedSimulator(async (peer) => {
      peer.send('not json');
      await peer.nextJson();
      peer.send({ op: 'hello', protocol: PROTOCOL_VERSION, capabilities: RAW_CAPABILITIES });
    });
    closers.push(sim.close);
    const env = await connectSimulator(sim.url);
    const codes: string[] = [];
    const two = new Promise<void>((resolve) =>
      env.errors$.subscribe((e) => {
        codes.push(e.code);
        if (codes.length === 2) resolve();
      }),
    );
    await two;
    assert.deepEqual(codes, ['E_PROTOCOL_JSON', 'E_PROTOCOL_OP']);
    assert.equal(env.stats.protocolErrors, 2);
    await env.close();
  });
});
