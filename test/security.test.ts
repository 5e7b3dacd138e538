/**
 * Issue 8 §3 (security), over real sockets where there is a socket: loopback by default, no bind beyond it
 * without a token, constant-time token comparison, maxPayload and connection limits on both the WebSocket and
 * the TCP level, nothing from the wire evaluated or used as a file path. docs/security.md states the
 * guarantees and their limits; output paths are tested in paths.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { isV4sError } from '../src/errors.js';
import { BuiltinSimulator } from '../src/sim-adapters/builtin/simulator.js';
import { connectSimulator } from '../src/sim-adapters/ws-client.js';
import { isLoopbackHost, socketCap, tokenMatches } from '../src/sim-adapters/ws-common.js';
import { listenForSimulator } from '../src/sim-adapters/ws-listener.js';
import { SimulatorServer } from '../src/sim-adapters/ws-server.js';
import { PROTOCOL_VERSION } from '../src/sim-adapters/protocol/types.js';
import { RawPeer, StandInSimulator, rejectionOf } from './ws-fixtures.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A raw TCP connection that never speaks (a slowloris peer). Resolves once connected. */
function idleTcp(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1');
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => undefined);
    // Read (and drop) whatever the server sends before closing — the HTTP layer may answer a stalled request
    // with "408 Request Timeout" — or the close would wait behind the unread bytes and never be seen.
    socket.resume();
    socket.once('connect', () => resolve({ socket, closed }));
    socket.once('error', reject);
  });
}

/** True when the socket is closed by the peer within `ms` (polling its state; not a timing assertion). */
async function closedWithin(c: { closed: Promise<void> }, ms: number): Promise<boolean> {
  return Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
}

describe('security', () => {
  describe('binding', () => {
    it('loopback hosts are recognised, and nothing else is', () => {
      for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) {
        assert.equal(isLoopbackHost(h), true, h);
      }
      for (const h of ['0.0.0.0', '::', '128.0.0.1', '10.0.0.1', '192.168.1.20', '::ffff:10.0.0.1', 'localhost.example.com', '127.0.0.1.nip.io', 'example.com', '']) {
        assert.equal(isLoopbackHost(h), false, h);
      }
    });

    it('SimulatorServer and the listener bind 127.0.0.1 by default; beyond loopback without a token they refuse to start, explaining why', async () => {
      const server = await SimulatorServer.start(() => new StandInSimulator(), { port: 0 });
      const listener = await listenForSimulator({ port: 0 });
      try {
        assert.equal(server.host, '127.0.0.1');
        assert.match(server.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
        assert.equal(listener.host, '127.0.0.1');
      } finally {
        await server.close();
        await listener.close();
      }
      for (const host of ['0.0.0.0', '::', '192.168.1.20', 'example.com']) {
        for (const start of [() => SimulatorServer.start(() => new StandInSimulator(), { host, port: 0 }), () => listenForSimulator({ host, port: 0 })]) {
          const e = await rejectionOf(start());
          assert.equal(e.code, 'E_INSECURE_BIND', host);
          assert.ok(e.message.includes(`refusing to listen on ${host} without a token`), e.message);
          assert.match(e.message, /Anyone who can reach that address could drive the session/);
          assert.match(e.message, /SSH tunnel/);
        }
      }
      for (const token of ['', 'x'.repeat(1025)]) {
        assert.equal((await rejectionOf(SimulatorServer.start(() => new StandInSimulator(), { host: '0.0.0.0', port: 0, token }))).code, 'E_CONFIG');
        assert.equal((await rejectionOf(listenForSimulator({ host: '0.0.0.0', port: 0, token }))).code, 'E_CONFIG');
      }
    });
  });

  describe('tokens', () => {
    it('tokenMatches is exact: equal strings only, whatever their lengths; undefined never matches', () => {
      assert.equal(tokenMatches('s3cret', 's3cret'), true);
      for (const given of ['s3cre', 's3cret ', 'S3cret', '', 's3cret\0', undefined]) assert.equal(tokenMatches('s3cret', given), false, String(given));
      assert.equal(tokenMatches('é', 'é'), true);
      assert.equal(tokenMatches('é', 'e\u0301'), false, 'compared as UTF-8 bytes, no normalisation');
      fc.assert(
        fc.property(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ maxLength: 40 }), (a, b) => {
          assert.equal(tokenMatches(a, b), a === b);
          assert.equal(tokenMatches(a, a), true);
        }),
        { numRuns: 1000 },
      );
      // Constant time by construction: both sides are hashed to 32-byte SHA-256 digests and compared with
      // crypto.timingSafeEqual, so neither the length nor a matching prefix changes the work done.
      const src = readFileSync(path.join(ROOT, 'src/sim-adapters/ws-common.ts'), 'utf8');
      const body = src.slice(src.indexOf('export function tokenMatches'), src.indexOf('export function checkBindSecurity'));
      assert.match(body, /createHash\('sha256'\)[\s\S]*createHash\('sha256'\)[\s\S]*timingSafeEqual\(a, b\)/);
      for (const file of ['ws-server.ts', 'ws-client.ts', 'ws-listener.ts']) {
        const text = readFileSync(path.join(ROOT, 'src/sim-adapters', file), 'utf8');
        // Every comparison involving a token is against undefined (presence), never against another token.
        for (const line of text.split('\n').filter((l) => /token/i.test(l) && /[!=]==/.test(l))) {
          assert.match(line, /[!=]==\s*undefined|undefined\s*[!=]==|typeof/, `${file} compares a token with ===: ${line.trim()}`);
        }
      }
    });

    it('with a token, an agent without it or with a wrong one gets E_AUTH before any hello; the right one connects', async () => {
      const server = await SimulatorServer.start(() => new StandInSimulator(), { port: 0, token: 'tok-123' });
      try {
        assert.equal((await rejectionOf(connectSimulator(server.url))).code, 'E_AUTH');
        assert.equal((await rejectionOf(connectSimulator(server.url, { token: 'tok-124' }))).code, 'E_AUTH');
        const env = await connectSimulator(server.url, { token: 'tok-123' });
        await env.close();
      } finally {
        await server.close();
      }
    });
  });

  describe('limits', () => {
    it('maxPayload is enforced at the configured value: under it an error reply, over it close 1009', async () => {
      const server = await SimulatorServer.start(() => new StandInSimulator(), { port: 0, maxPayload: 4096 });
      try {
        const peer = await RawPeer.connect(server.url);
        await peer.nextJson(); // hello
        peer.send({ op: 'welcome', protocol: PROTOCOL_VERSION });
        peer.send(`{"op":"reset","id":1,"episode":"${'x'.repeat(4000)}"}`); // 4,035 bytes: under the limit
        const reply = await peer.nextJson();
        assert.equal(reply.op, 'error');
        assert.equal(reply.code, 'E_PROTOCOL_FIELD', 'episode is longer than 256 characters');
        peer.send(`{"op":"reset","id":2,"episode":"${'x'.repeat(5000)}"}`);
        assert.equal((await peer.closed).code, 1009);
        assert.equal((await rejectionOf(SimulatorServer.start(() => new StandInSimulator(), { port: 0, maxPayload: 10 }))).code, 'E_CONFIG');
      } finally {
        await server.close();
      }
    });

    it('TCP connections that never upgrade are capped (2 × maxConnections + 8) and closed after the handshake timeout', async function () {
      this.timeout(20_000);
      const server = await SimulatorServer.start(() => new StandInSimulator(), { port: 0, maxConnections: 1, handshakeTimeoutMs: 400 });
      const idle: { socket: Socket; closed: Promise<void> }[] = [];
      try {
        const cap = socketCap(1);
        assert.equal(cap, 10);
        for (let i = 0; i < cap; i++) idle.push(await idleTcp(server.port));
        // The kernel accepts one more, and the server destroys it at once.
        const extra = await idleTcp(server.port);
        assert.equal(await closedWithin(extra, 5000), true, 'a connection over the cap is dropped');
        // While the cap is taken, an agent cannot get in either: that is the limit doing its job.
        assert.equal((await rejectionOf(connectSimulator(server.url, { connectTimeoutMs: 2000 }))).code, 'E_CONNECT');
        // Idle connections are closed by the server once the handshake time has passed…
        for (const c of idle) assert.equal(await closedWithin(c, 10_000), true, 'an idle TCP connection is closed after handshakeTimeoutMs');
        // … and then an agent connects, and keeps its WebSocket far longer than that time.
        const env = await connectSimulator(server.url);
        await new Promise((r) => setTimeout(r, 1000));
        assert.equal((await env.reset({ seed: 1 })).observation.step, 0);
        assert.equal(env.isClosed, false);
        await env.close();
      } finally {
        for (const c of idle) c.socket.destroy();
        await server.close();
      }
    });

    it('the listener counts handshaking connections against maxConnections (E_TOO_MANY_CONNECTIONS, close 1013) and frees them on timeout', async function () {
      this.timeout(20_000);
      const listener = await listenForSimulator({ port: 0, maxConnections: 2, handshakeTimeoutMs: 300 });
      try {
        const silent = [await RawPeer.connect(listener.url), await RawPeer.connect(listener.url)]; // never send hello
        const third = await RawPeer.connect(listener.url);
        const refusal = await third.nextJson();
        assert.equal(refusal.code, 'E_TOO_MANY_CONNECTIONS');
        assert.equal((await third.closed).code, 1013);
        for (const s of silent) {
          assert.equal((await s.nextJson()).code, 'E_TIMEOUT');
          assert.equal((await s.closed).code, 1008);
        }
        const ok = await RawPeer.connect(listener.url);
        ok.send({ op: 'hello', protocol: PROTOCOL_VERSION, capabilities: new StandInSimulator().capabilities });
        assert.equal((await ok.nextJson()).op, 'welcome');
        ok.socket.terminate();
      } finally {
        await listener.close();
      }
    });
  });

  describe('nothing from the wire is evaluated or used as a file path', () => {
    /** Files under src/sim-adapters (what parses wire data), recursively. */
    function tsFiles(dir: string): string[] {
      return readdirSync(dir).flatMap((n) => {
        const p = path.join(dir, n);
        return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
      });
    }

    it('every server in src/ is made by listenWebSocket, behind the bind check (no other createServer or WebSocketServer)', () => {
      for (const f of tsFiles(path.join(ROOT, 'src'))) {
        const rel = path.relative(ROOT, f).split(path.sep).join('/');
        if (rel === 'src/sim-adapters/ws-common.ts') continue;
        const text = readFileSync(f, 'utf8');
        assert.doesNotMatch(text, /createServer\s*\(|new\s+WebSocketServer\s*\(|\.listen\s*\(/, `${rel} opens a server of its own`);
      }
      const common = readFileSync(path.join(ROOT, 'src/sim-adapters/ws-common.ts'), 'utf8');
      for (const f of ['ws-server.ts', 'ws-listener.ts']) {
        const text = readFileSync(path.join(ROOT, 'src/sim-adapters', f), 'utf8');
        assert.ok(text.indexOf('checkBindSecurity(') >= 0 && text.indexOf('checkBindSecurity(') < text.indexOf('await listenWebSocket('), `${f} checks the bind before listening`);
      }
      assert.match(common, /export async function listenWebSocket/);
    });

    it('no eval, Function, vm or child_process anywhere in src/; no file-system access in the wire code', () => {
      const all = tsFiles(path.join(ROOT, 'src'));
      assert.ok(all.length > 20);
      for (const f of all) {
        const text = readFileSync(f, 'utf8');
        assert.doesNotMatch(text, /(^|[^.\w])eval\s*\(|new\s+Function\s*\(|from\s+'node:vm'|from\s+'vm'/, `${path.relative(ROOT, f)} evaluates code`);
      }
      // The dataset writer (v4s dataset) writes where the CLI tells it; it never sees wire data.
      const allowed = new Set(['src/sim-adapters/builtin/dataset.ts']);
      const wire = tsFiles(path.join(ROOT, 'src/sim-adapters')).filter((f) => !allowed.has(path.relative(ROOT, f).split(path.sep).join('/')));
      assert.ok(wire.some((f) => f.endsWith('ws-server.ts')) && wire.some((f) => f.endsWith('codec.ts')));
      for (const f of wire) {
        const text = readFileSync(f, 'utf8');
        assert.doesNotMatch(text, /from\s+'(node:)?(fs|fs\/promises|child_process|vm)'|require\(|import\(\s*[^'"`]/, `${path.relative(ROOT, f)} reaches the file system or loads code`);
      }
    });

    it('episode ids and names from the wire are opaque: a path or a prototype key is just an unknown value', async () => {
      const server = await SimulatorServer.start(() => new BuiltinSimulator({ width: 16, height: 16 }), { port: 0 });
      try {
        const peer = await RawPeer.connect(server.url);
        await peer.nextJson();
        peer.send({ op: 'welcome', protocol: PROTOCOL_VERSION });
        peer.send({ op: 'reset', id: 1, episode: '../../../../etc/passwd' });
        const e1 = await peer.nextJson();
        assert.equal(e1.code, 'E_CONFIG');
        assert.match(String(e1.message), /unknown episode id/);
        peer.send({ op: 'reset', id: 2, seed: 1 });
        await peer.nextBinary();
        for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
          peer.send({ op: 'step', id: 3, action: { name } });
          assert.equal((await peer.nextJson()).code, 'E_UNKNOWN_ACTION', name);
        }
        peer.socket.terminate();
      } finally {
        await server.close();
      }
      assert.equal(isV4sError(new Error('x')), false);
    });
  });
});
