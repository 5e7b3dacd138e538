/**
 * Everything that travels on the wire in protocol `v4s.sim.v1`: text (JSON) control messages as unions tagged
 * by `op`, binary message headers, limits and WebSocket close codes. docs/protocol.md is the normative text;
 * this file mirrors it. Encoding and decoding live in codec.ts; transports in ../ws-*.ts.
 */
import type { Capabilities, ImageEncoding, TaskName } from '../environment.js';

/** The protocol version string sent in `hello` and `welcome`. */
export const PROTOCOL_VERSION = 'v4s.sim.v1' as const;
export type ProtocolVersion = typeof PROTOCOL_VERSION;

/** Every image encoding v4s.sim.v1 knows, in the order a simulator offers them by default. */
export const IMAGE_ENCODINGS: readonly ImageEncoding[] = ['raw', 'png', 'jpeg'];

/** Every task name v4s.sim.v1 knows. */
export const TASK_NAMES: readonly TaskName[] = ['objectnav', 'imagenav', 'pointnav'];

/** Action kinds of the capabilities' action table. */
export const ACTION_KINDS = ['move', 'turn', 'look', 'stop'] as const;

/** Pose frames a simulator may declare in `capabilities.poseFrame` (absent: `habitat`). */
export const POSE_FRAMES = ['habitat', 'unity'] as const;

/** Optional ops a simulator may advertise in `capabilities.ops`. */
export const OPTIONAL_OPS = ['oracle'] as const;

const MiB = 1024 * 1024;

/**
 * Limits of v4s.sim.v1 (docs/protocol.md §8). The payload limits are defaults; the others are fixed by the
 * protocol, and a message beyond them is refused with the code named there.
 */
export const PROTOCOL_LIMITS = {
  /** Largest message the simulator side accepts (agent → simulator traffic is JSON control only). */
  simulatorMaxPayload: 1 * MiB,
  /** Largest message the agent side accepts by default (observations, oracle replies). */
  agentMaxPayload: 64 * MiB,
  /** Smallest `maxPayload` an agent may announce in `welcome`. */
  minAgentMaxPayload: 64 * 1024,
  /** Largest JSON header inside a binary message, bytes. */
  maxHeaderBytes: 1 * MiB,
  /** Largest width or height of any image or mask, pixels. */
  maxImageSide: 8192,
  /** Largest width × height of any image or mask (bounds the memory a PNG/JPEG can decode to). */
  maxImagePixels: 4096 * 4096,
  /** Largest request id (ids are integers 0 … 2^31−1, so a C# `int` holds them). */
  maxRequestId: 2 ** 31 - 1,
  /** Longest string field (action and category names, episode ids, error codes), UTF-16 code units. */
  maxNameLength: 256,
  /** Longest `error.message`, UTF-16 code units (longer ones are cut by the sender). */
  maxErrorMessageLength: 4096,
  /** Longest token. */
  maxTokenLength: 1024,
  /** Most entries in `capabilities.actions`. */
  maxActions: 64,
  /** Oracle: most sequences in one request. */
  maxOracleSequences: 64,
  /** Oracle: most actions in one sequence. */
  maxOracleSequenceLength: 64,
  /** Oracle: most actions over all sequences of one request (= frames in the reply). */
  maxOracleFrames: 256,
  /** Default time for the peer to complete the handshake before the connection is closed. */
  handshakeTimeoutMs: 10_000,
  /** Default time the agent waits for a reply to reset/step/oracle. */
  requestTimeoutMs: 30_000,
  /** Default number of simultaneous connections a SimulatorServer or SimulatorListener accepts. */
  maxConnections: 16,
  /** Requests queued on one connection of a SimulatorServer before it answers E_BUSY. */
  maxQueuedRequests: 8,
  /** Bytes a peer may leave unread in our send buffer before the connection is closed (1008). */
  maxBufferedBytes: 128 * MiB,
} as const;

/** WebSocket close codes used by v4s.sim.v1 (RFC 6455 §7.4.1). */
export const CLOSE_CODES = {
  /** The session ended on purpose (`close` op, `close()`). */
  normal: 1000,
  /** The server or listener is shutting down. */
  goingAway: 1001,
  /** Handshake violation: first message not `hello`/`welcome`, wrong protocol version, bad field in the handshake. */
  protocolError: 1002,
  /** Text that is not UTF-8 (sent by the `ws` library itself). */
  invalidPayload: 1007,
  /** Authentication failed, the handshake timed out, or the peer stopped reading. */
  policyViolation: 1008,
  /** A message exceeded maxPayload (sent by the `ws` library itself). */
  messageTooBig: 1009,
  /** The simulator could not be created for this connection. */
  internalError: 1011,
  /** Too many connections; try again later. */
  tryAgainLater: 1013,
} as const;

/** Request id: an integer 0 … 2^31−1 chosen by the agent, echoed by the simulator. */
export type RequestId = number;

// ---------------------------------------------------------------------------------------------------------
// Text messages (JSON, UTF-8, one object per WebSocket text message)

/** simulator → agent, first message on every connection. */
export interface HelloMessage {
  readonly op: 'hello';
  readonly protocol: string;
  /** Shared token, sent only when the simulator dials an agent that requires one. */
  readonly token?: string;
  readonly capabilities: Capabilities;
}

/** agent → simulator, answer to `hello`. */
export interface WelcomeMessage {
  readonly op: 'welcome';
  readonly protocol: string;
  /** Encoding the agent wants for every image; one of `capabilities.encodings`. Default: the first one. */
  readonly encoding?: ImageEncoding;
  /** Largest message, bytes, the agent accepts; the simulator answers E_PROTOCOL_TOO_LARGE instead of exceeding it. */
  readonly maxPayload?: number;
}

/** agent → simulator: start a new episode. Answered by one observation message (with `goal`). */
export interface ResetMessage {
  readonly op: 'reset';
  readonly id: RequestId;
  readonly seed?: number;
  readonly task?: TaskName;
  readonly episode?: string;
}

/** The action of a `step`. */
export interface WireAction {
  readonly name: string;
  readonly amount?: number;
}

/** agent → simulator: execute one action. Answered by one observation message. */
export interface StepMessage {
  readonly op: 'step';
  readonly id: RequestId;
  readonly action: WireAction;
}

/** agent → simulator: true futures of action sequences, without advancing. Answered by one oracle message. */
export interface OracleRequestMessage {
  readonly op: 'oracle';
  readonly id: RequestId;
  readonly sequences: readonly (readonly string[])[];
  readonly category?: string;
}

/** agent → simulator: the session is over (a robot stops). The simulator closes the socket with 1000. */
export interface CloseMessage {
  readonly op: 'close';
}

/** Either direction: a request failed (`id` set) or the peer misbehaved (`id` null). */
export interface ErrorMessage {
  readonly op: 'error';
  readonly id: RequestId | null;
  /** A stable code from docs/errors.md, e.g. `E_UNKNOWN_ACTION`. */
  readonly code: string;
  readonly message: string;
}

/** Text messages the agent sends (what a simulator must parse). */
export type AgentTextMessage =
  | WelcomeMessage
  | ResetMessage
  | StepMessage
  | OracleRequestMessage
  | CloseMessage
  | ErrorMessage;

/** Text messages the simulator sends (what an agent must parse). */
export type SimulatorTextMessage = HelloMessage | ErrorMessage;

export type TextMessage = AgentTextMessage | SimulatorTextMessage;

/** Requests that carry an id and expect exactly one reply. */
export type RequestMessage = ResetMessage | StepMessage | OracleRequestMessage;

// ---------------------------------------------------------------------------------------------------------
// Binary messages (simulator → agent): uint32 LE header length | UTF-8 JSON header | payload bytes

/** Size of the header-length prefix of every binary message. */
export const BINARY_PREFIX_BYTES = 4;

/** Describes one image inside a binary message's payload. */
export interface ImageDescriptor {
  readonly width: number;
  readonly height: number;
  readonly encoding: ImageEncoding;
  /** Bytes of this image in the payload; for `raw` it must equal width × height × 3. */
  readonly byteLength: number;
}

/** Describes one mask (uint8 per pixel, row-major; 1 = target, 0 = other) inside an oracle payload. */
export interface MaskDescriptor {
  readonly width: number;
  readonly height: number;
  /** Must equal width × height. */
  readonly byteLength: number;
}

/** A pose on the wire (Habitat frame: metres, +Y up, −Z forward, quaternion [x, y, z, w]). */
export interface WirePose {
  readonly position: readonly [number, number, number];
  readonly rotation: readonly [number, number, number, number];
}

/** JSON values allowed in `info`. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** Episode measures, habitat-lab style; extra keys are any JSON. */
export interface WireInfo {
  readonly distanceToGoal?: number | null;
  readonly success?: boolean;
  readonly shortestPathLength?: number | null;
  readonly pathLength?: number;
  readonly [key: string]: JsonValue | undefined;
}

/** The goal of a new episode, in the header of a reset reply. Its image (ImageNav) follows the observation's. */
export interface WireGoal {
  readonly task: TaskName;
  readonly category?: string;
  readonly position?: readonly [number, number, number];
  readonly image?: ImageDescriptor;
}

/** Header of an observation message. */
export interface ObservationHeader {
  readonly op: 'observation';
  /** The request id it answers; null for a frame a streaming peer pushes on its own clock. */
  readonly id: RequestId | null;
  readonly step: number;
  readonly pose?: WirePose;
  readonly collided?: boolean;
  readonly info: WireInfo;
  readonly terminated: boolean;
  readonly truncated: boolean;
  readonly image: ImageDescriptor;
  /** Only in the reply to `reset`. */
  readonly goal?: WireGoal;
}

/** One predicted step of one oracle sequence. */
export interface OracleStepHeader {
  readonly image: ImageDescriptor;
  readonly mask: MaskDescriptor;
  readonly pose: WirePose;
}

/** Header of an oracle reply: one rollout per requested sequence, one step per action, in request order. */
export interface OracleHeader {
  readonly op: 'oracle';
  readonly id: RequestId;
  readonly rollouts: readonly { readonly steps: readonly OracleStepHeader[] }[];
}

export type BinaryHeader = ObservationHeader | OracleHeader;

/** A decoded observation message: header plus views of its image bytes (no copy). */
export interface ObservationPacket {
  readonly header: ObservationHeader;
  readonly image: Uint8Array;
  /** Present exactly when `header.goal.image` is. */
  readonly goalImage?: Uint8Array;
}

/** A decoded oracle message: header plus views of each step's image and mask bytes, `[rollout][step]`. */
export interface OraclePacket {
  readonly header: OracleHeader;
  readonly images: readonly (readonly Uint8Array[])[];
  readonly masks: readonly (readonly Uint8Array[])[];
}

export type BinaryPacket = ObservationPacket | OraclePacket;

/** True when the packet is an observation (not an oracle reply). */
export function isObservationPacket(packet: BinaryPacket): packet is ObservationPacket {
  return packet.header.op === 'observation';
}

/** Limits a decoder applies; defaults from PROTOCOL_LIMITS. */
export interface DecodeLimits {
  readonly maxHeaderBytes?: number;
  readonly maxImageSide?: number;
  readonly maxImagePixels?: number;
}
