/**
 * TEST DOUBLE of a rosbridge v2 server (rosbridge_suite's rosbridge_server), built on `ws`. A real rosbridge
 * needs ROS, which cannot run here. This one follows ROSBRIDGE_PROTOCOL.md for the topic operations a client
 * uses, over a real WebSocket on loopback:
 *
 * - every message is a JSON object with an `op` (and an optional string/integer `id`);
 * - `advertise {topic, type}`: establishes the topic with that type, registers the client as a publisher; a
 *   topic that exists with another type, or a type the double cannot resolve → an error `status` message and the
 *   message is dropped;
 * - `unadvertise {topic}`; `publish {topic, msg}`: a topic that does not exist, or a msg that does not conform to
 *   its type → error `status`, dropped; otherwise delivered (as `publish`) to every subscriber;
 * - `subscribe {topic, type?, throttle_rate?, queue_length?, compression?}`: unknown topic without a type →
 *   error `status`; `throttle_rate` ms between messages is honoured; `unsubscribe {topic, id?}` removes that
 *   subscription, or all on the topic without an id;
 * - `uint8[]` fields (image `data`) go to clients as standard base64 strings; from clients either base64 or a
 *   list of numbers is accepted;
 * - when a client disconnects, its advertisements and subscriptions are dropped (so the robot keeps whatever
 *   velocity it last received: the reason a robot needs its own command timeout).
 *
 * The "ROS side" (the robot's nodes) is driven by the test: `publishFromRobot` puts a message on a topic, and
 * `received` lists what clients published, with arrival times.
 */
import { WebSocketServer, type WebSocket, type RawData } from 'ws';

/** A status message (error/warning) the double sent, for assertions. */
export interface StatusRecord {
  readonly level: string;
  readonly msg: string;
  readonly id?: string | number;
}

/** A message a client published, with the double's receive time (ms, performance.now()). */
export interface Received {
  readonly topic: string;
  readonly msg: Record<string, unknown>;
  readonly at: number;
}

interface Subscription {
  readonly client: WebSocket;
  readonly id: string | number | undefined;
  readonly throttleMs: number;
  lastSent: number;
}

/** Message types the double knows ("pkg/Type" and "pkg/msg/Type" both resolve, as in rosbridge's ros_loader). */
const KNOWN_TYPES = new Set([
  'geometry_msgs/Twist',
  'geometry_msgs/TwistStamped',
  'sensor_msgs/Image',
  'sensor_msgs/CompressedImage',
  'nav_msgs/Odometry',
  'std_msgs/String',
]);

function normaliseType(type: string): string {
  const parts = type.split('/');
  return parts.length === 3 && parts[1] === 'msg' ? `${parts[0]}/${parts[2]}` : type;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isVector3(v: unknown): boolean {
  return isObj(v) && ['x', 'y', 'z'].every((k) => v[k] === undefined || typeof v[k] === 'number');
}

/** Does `msg` conform to `type`? (Only the types the robot adapter publishes are checked field by field.) */
function conforms(type: string, msg: unknown): string | undefined {
  if (!isObj(msg)) return 'msg is not an object';
  if (type === 'geometry_msgs/Twist') {
    return isVector3(msg.linear) && isVector3(msg.angular) ? undefined : 'Twist needs linear and angular {x, y, z} numbers';
  }
  if (type === 'geometry_msgs/TwistStamped') {
    return isObj(msg.twist) && conforms('geometry_msgs/Twist', msg.twist) === undefined ? undefined : 'TwistStamped needs twist';
  }
  return undefined;
}

/** The rosbridge v2 test double. */
export class RosbridgeDouble {
  readonly url: string;
  readonly received: Received[] = [];
  readonly statuses: StatusRecord[] = [];
  /** Every op the double received, in order (for protocol assertions). */
  readonly ops: Record<string, unknown>[] = [];
  #wss: WebSocketServer;
  #topics = new Map<string, string>(); // topic -> type
  #publishers = new Map<string, Set<WebSocket>>();
  #subs = new Map<string, Subscription[]>();
  #waiters: { pred: () => boolean; resolve: () => void }[] = [];

  private constructor(wss: WebSocketServer, url: string) {
    this.#wss = wss;
    this.url = url;
    wss.on('connection', (ws: WebSocket) => this.#onClient(ws));
  }

  /** Starts on a free loopback port. `topics` are topics the robot's nodes already provide (name → type). */
  static async start(topics: Record<string, string> = {}): Promise<RosbridgeDouble> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const addr = wss.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    const d = new RosbridgeDouble(wss, `ws://127.0.0.1:${port}`);
    for (const [t, type] of Object.entries(topics)) d.#topics.set(t, normaliseType(type));
    return d;
  }

  /** Connected clients. */
  get clients(): number {
    return this.#wss.clients.size;
  }

  /** Messages clients published on `topic`. */
  publishedOn(topic: string): Received[] {
    return this.received.filter((r) => r.topic === topic);
  }

  /** Subscriptions on `topic`. */
  subscribers(topic: string): number {
    return this.#subs.get(topic)?.length ?? 0;
  }

  /** True when some client advertised `topic`. */
  isAdvertised(topic: string): boolean {
    return (this.#publishers.get(topic)?.size ?? 0) > 0;
  }

  /** Resolves when `pred` holds (checked after every message the double handles); rejects after `ms`. */
  until(pred: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = { pred, resolve: () => undefined as void };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        reject(new Error(`rosbridge double: ${what} did not happen within ${ms} ms`));
      }, ms);
      w.resolve = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#waiters.push(w);
    });
  }

  #check(): void {
    for (const w of [...this.#waiters]) {
      if (w.pred()) {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        w.resolve();
      }
    }
  }

  /** A robot node publishes `msg` on `topic`: every subscribed client gets `{op: "publish", topic, msg}`. */
  publishFromRobot(topic: string, msg: Record<string, unknown>): number {
    const subs = this.#subs.get(topic) ?? [];
    const now = performance.now();
    let sent = 0;
    for (const s of subs) {
      if (s.throttleMs > 0 && now - s.lastSent < s.throttleMs) continue;
      s.lastSent = now;
      s.client.send(JSON.stringify({ op: 'publish', topic, msg }));
      sent++;
    }
    return sent;
  }

  /**
   * Sends `message` as it is to every connected client, subscribed or not: what a misbehaving rosbridge (or a
   * tampered link) could send, e.g. a publish on a topic named like one of roslib's own events.
   */
  sendToClients(message: Record<string, unknown>): number {
    let sent = 0;
    for (const c of this.#wss.clients) {
      c.send(JSON.stringify(message));
      sent++;
    }
    return sent;
  }

  /** Drops every client without a close frame (a network failure). */
  dropClients(): void {
    for (const c of this.#wss.clients) c.terminate();
  }

  async close(): Promise<void> {
    for (const c of this.#wss.clients) c.terminate();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }

  #status(ws: WebSocket, level: 'error' | 'warning', msg: string, id: unknown): void {
    const rec: StatusRecord = typeof id === 'string' || typeof id === 'number' ? { level, msg, id } : { level, msg };
    this.statuses.push(rec);
    ws.send(JSON.stringify({ op: 'status', level, msg, ...(rec.id !== undefined && { id: rec.id }) }));
  }

  #onClient(ws: WebSocket): void {
    ws.on('error', () => undefined);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) {
        this.#status(ws, 'error', 'binary messages are not supported by this test double', undefined);
        return;
      }
      let m: unknown;
      try {
        m = JSON.parse(Buffer.from(data as Buffer).toString('utf8'));
      } catch {
        this.#status(ws, 'error', 'Unable to load JSON message', undefined);
        return;
      }
      if (!isObj(m) || typeof m.op !== 'string') {
        this.#status(ws, 'error', 'Received a message without an op', undefined);
        return;
      }
      this.ops.push(m);
      this.#handle(ws, m);
      this.#check();
    });
    ws.on('close', () => {
      // rosbridge drops a disconnected client's publishers and subscriptions
      for (const set of this.#publishers.values()) set.delete(ws);
      for (const [t, subs] of this.#subs) this.#subs.set(t, subs.filter((s) => s.client !== ws));
      this.#check();
    });
  }

  #handle(ws: WebSocket, m: Record<string, unknown>): void {
    const id = m.id;
    const topic = typeof m.topic === 'string' ? m.topic : undefined;
    switch (m.op) {
      case 'advertise': {
        if (topic === undefined || typeof m.type !== 'string') return this.#status(ws, 'error', 'advertise: topic and type are required', id);
        const type = normaliseType(m.type);
        const existing = this.#topics.get(topic);
        if (existing !== undefined && existing !== type) {
          return this.#status(ws, 'error', `Tried to register topic ${topic} with type ${type} but it is already established with type ${existing}`, id);
        }
        if (existing === undefined && !KNOWN_TYPES.has(type)) return this.#status(ws, 'error', `Unable to load the manifest for package of type ${type}`, id);
        this.#topics.set(topic, type);
        const set = this.#publishers.get(topic) ?? new Set<WebSocket>();
        set.add(ws);
        this.#publishers.set(topic, set);
        return;
      }
      case 'unadvertise': {
        if (topic === undefined || !this.#topics.has(topic)) return this.#status(ws, 'warning', `unadvertise: topic ${String(topic)} does not exist`, id);
        const set = this.#publishers.get(topic);
        if (set === undefined || !set.delete(ws)) return this.#status(ws, 'warning', `unadvertise: not advertising ${topic}`, id);
        return;
      }
      case 'publish': {
        const type = topic === undefined ? undefined : this.#topics.get(topic);
        if (topic === undefined || type === undefined) return this.#status(ws, 'error', `publish: topic ${String(topic)} does not exist`, id);
        const bad = conforms(type, m.msg);
        if (bad !== undefined) return this.#status(ws, 'error', `publish to ${topic}: ${bad}`, id);
        const msg = m.msg as Record<string, unknown>;
        this.received.push({ topic, msg, at: performance.now() });
        for (const s of this.#subs.get(topic) ?? []) if (s.client !== ws) s.client.send(JSON.stringify({ op: 'publish', topic, msg }));
        return;
      }
      case 'subscribe': {
        if (topic === undefined) return this.#status(ws, 'error', 'subscribe: topic is required', id);
        const type = typeof m.type === 'string' ? normaliseType(m.type) : undefined;
        const existing = this.#topics.get(topic);
        if (existing === undefined && type === undefined) return this.#status(ws, 'error', `subscribe: cannot infer the type of ${topic}`, id);
        if (existing !== undefined && type !== undefined && existing !== type) {
          return this.#status(ws, 'error', `subscribe: ${topic} has type ${existing}, not ${type}`, id);
        }
        if (existing === undefined && type !== undefined) this.#topics.set(topic, type);
        const throttleMs = typeof m.throttle_rate === 'number' ? m.throttle_rate : 0;
        const subs = this.#subs.get(topic) ?? [];
        subs.push({ client: ws, id: typeof id === 'string' || typeof id === 'number' ? id : undefined, throttleMs, lastSent: -Infinity });
        this.#subs.set(topic, subs);
        return;
      }
      case 'unsubscribe': {
        if (topic === undefined) return this.#status(ws, 'error', 'unsubscribe: topic is required', id);
        const subs = this.#subs.get(topic) ?? [];
        this.#subs.set(
          topic,
          subs.filter((s) => s.client !== ws || (id !== undefined && s.id !== id)),
        );
        return;
      }
      default:
        return this.#status(ws, 'error', `Unknown operation ${String(m.op)}`, id);
    }
  }
}

/** `sensor_msgs/CompressedImage` as rosbridge sends it: `data` as base64. */
export function compressedImageMsg(format: string, bytes: Uint8Array, stamp = { sec: 0, nanosec: 0 }): Record<string, unknown> {
  return { header: { stamp, frame_id: 'camera' }, format, data: Buffer.from(bytes).toString('base64') };
}

/** `sensor_msgs/Image` as rosbridge sends it (`step` may exceed width × 3: row padding). */
export function imageMsg(width: number, height: number, encoding: string, data: Uint8Array, step = width * 3): Record<string, unknown> {
  return {
    header: { stamp: { sec: 0, nanosec: 0 }, frame_id: 'camera' },
    height,
    width,
    encoding,
    is_bigendian: 0,
    step,
    data: Buffer.from(data).toString('base64'),
  };
}

/** `nav_msgs/Odometry` with a pose (ROS frame: x forward, y left, z up). */
export function odometryMsg(position: readonly [number, number, number], orientation: readonly [number, number, number, number]): Record<string, unknown> {
  const [x, y, z] = position;
  const [qx, qy, qz, qw] = orientation;
  return {
    header: { stamp: { sec: 0, nanosec: 0 }, frame_id: 'odom' },
    child_frame_id: 'base_link',
    pose: { pose: { position: { x, y, z }, orientation: { x: qx, y: qy, z: qz, w: qw } }, covariance: new Array<number>(36).fill(0) },
    twist: { twist: { linear: { x: 0, y: 0, z: 0 }, angular: { x: 0, y: 0, z: 0 } }, covariance: new Array<number>(36).fill(0) },
  };
}
