/**
 * Pure encode/decode of v4s.sim.v1 messages, with validation. No I/O, no sockets, no images: strings and bytes
 * in, typed messages out (or a V4sError whose code and message name the problem). Decoders never throw anything
 * but V4sError, whatever the input, which is what makes them fuzzable.
 *
 * Usage:
 *   const msg = decodeAgentMessage(text);              // on the simulator side
 *   const packet = decodeBinaryMessage(bytes);         // on the agent side
 *   socket.send(encodeObservationPacket({ header, image }));
 */
import type { ActionSpec, Capabilities, ImageEncoding, TaskName } from '../environment.js';
import { V4sError, type V4sErrorCode } from '../../errors.js';
import {
  ACTION_KINDS,
  BINARY_PREFIX_BYTES,
  POSE_FRAMES,
  IMAGE_ENCODINGS,
  PROTOCOL_LIMITS,
  PROTOCOL_VERSION,
  TASK_NAMES,
  type AgentTextMessage,
  type BinaryHeader,
  type BinaryPacket,
  type DecodeLimits,
  type ErrorMessage,
  type HelloMessage,
  type ImageDescriptor,
  type MaskDescriptor,
  type ObservationHeader,
  type ObservationPacket,
  type OracleHeader,
  type OraclePacket,
  type OracleStepHeader,
  type RequestId,
  type SimulatorTextMessage,
  type TextMessage,
  type WelcomeMessage,
  type WireGoal,
  type WireInfo,
  type WirePose,
} from './types.js';

type Obj = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------------------
// Validation helpers. `where` names the message ("step (id 3)"), `path` the field ("action.name").

class Check {
  constructor(
    readonly where: string,
    readonly id: RequestId | null,
    readonly fieldCode: V4sErrorCode = 'E_PROTOCOL_FIELD',
  ) {}

  fail(path: string, expected: string, code: V4sErrorCode = this.fieldCode): never {
    throw new V4sError(code, `${this.where}: field "${path}" ${expected}`, { id: this.id, field: path });
  }

  object(v: unknown, path: string): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'must be a JSON object');
    return v as Obj;
  }

  array(v: unknown, path: string, min: number, max: number): unknown[] {
    if (!Array.isArray(v)) this.fail(path, 'must be an array');
    if (v.length < min || v.length > max) this.fail(path, `must have ${min}…${max} entries, has ${v.length}`);
    return v;
  }

  string(v: unknown, path: string, maxLength: number = PROTOCOL_LIMITS.maxNameLength, minLength = 1): string {
    if (typeof v !== 'string') this.fail(path, 'must be a string');
    if (v.length < minLength || v.length > maxLength) {
      this.fail(path, `must be a string of ${minLength}…${maxLength} characters, has ${v.length}`);
    }
    return v;
  }

  optString(v: unknown, path: string, maxLength?: number): string | undefined {
    return v === undefined ? undefined : this.string(v, path, maxLength);
  }

  int(v: unknown, path: string, min: number, max: number, code?: V4sErrorCode): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(path, `must be an integer in ${min}…${max}`, code);
    }
    return v;
  }

  finite(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, 'must be a finite number');
    return v;
  }

  optFinite(v: unknown, path: string): number | undefined {
    return v === undefined ? undefined : this.finite(v, path);
  }

  /** A finite number or null (null stands for "unknown/unreachable", e.g. an infinite distance). */
  optFiniteOrNull(v: unknown, path: string): number | null | undefined {
    return v === null ? null : this.optFinite(v, path);
  }

  bool(v: unknown, path: string): boolean {
    if (typeof v !== 'boolean') this.fail(path, 'must be true or false');
    return v;
  }

  optBool(v: unknown, path: string): boolean | undefined {
    return v === undefined ? undefined : this.bool(v, path);
  }

  oneOf<T extends string>(v: unknown, path: string, allowed: readonly T[]): T {
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.fail(path, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
    }
    return v as T;
  }

  vec3(v: unknown, path: string): [number, number, number] {
    const a = this.array(v, path, 3, 3);
    return [this.finite(a[0], `${path}[0]`), this.finite(a[1], `${path}[1]`), this.finite(a[2], `${path}[2]`)];
  }

  vec4(v: unknown, path: string): [number, number, number, number] {
    const a = this.array(v, path, 4, 4);
    const [x, y, z] = this.vec3(a.slice(0, 3), path);
    return [x, y, z, this.finite(a[3], `${path}[3]`)];
  }

  pose(v: unknown, path: string): WirePose {
    const o = this.object(v, path);
    return { position: this.vec3(o.position, `${path}.position`), rotation: this.vec4(o.rotation, `${path}.rotation`) };
  }

  requestId(v: unknown, path = 'id'): RequestId {
    return this.int(v, path, 0, PROTOCOL_LIMITS.maxRequestId);
  }
}

/** Reads a valid request id from a parsed message, or null: lets an error reply carry the id of a bad request. */
function peekId(o: Obj): RequestId | null {
  const id = o.id;
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= PROTOCOL_LIMITS.maxRequestId ? id : null;
}

/** A short, escaped excerpt of wire data for error messages (never the whole message). */
export function excerpt(text: string, max = 60): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return JSON.stringify(cut);
}

function parseJsonObject(text: string, where: string, code: V4sErrorCode): Obj {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new V4sError(code, `${where} is not valid JSON (${reason}): ${excerpt(text)}`, { id: null });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new V4sError('E_PROTOCOL_FIELD', `${where} must be a JSON object, got ${excerpt(text)}`, { id: null });
  }
  return value as Obj;
}

function describe(op: string, id: RequestId | null): string {
  return id === null ? op : `${op} (id ${id})`;
}

// ---------------------------------------------------------------------------------------------------------
// Capabilities

/** Validates a `capabilities` object from the wire and returns a clean copy (unknown fields dropped). */
export function decodeCapabilities(v: unknown, where = 'hello'): Capabilities {
  const c = new Check(where, null);
  const o = c.object(v, 'capabilities');
  const actionsObj = c.object(o.actions, 'capabilities.actions');
  const names = Object.keys(actionsObj);
  if (names.length < 1 || names.length > PROTOCOL_LIMITS.maxActions) {
    c.fail('capabilities.actions', `must have 1…${PROTOCOL_LIMITS.maxActions} actions, has ${names.length}`);
  }
  const actions: Record<string, ActionSpec> = {};
  for (const name of names) {
    const path = `capabilities.actions.${name}`;
    c.string(name, `${path} (name)`);
    const spec = c.object(actionsObj[name], path);
    const amount = c.finite(spec.amount, `${path}.amount`);
    if (amount < 0) c.fail(`${path}.amount`, 'must be ≥ 0');
    Object.defineProperty(actions, name, {
      value: { kind: c.oneOf(spec.kind, `${path}.kind`, ACTION_KINDS), amount },
      enumerable: true,
      writable: false,
    });
  }
  const cam = c.object(o.camera, 'capabilities.camera');
  const side = PROTOCOL_LIMITS.maxImageSide;
  const camera = {
    width: c.int(cam.width, 'capabilities.camera.width', 1, side),
    height: c.int(cam.height, 'capabilities.camera.height', 1, side),
    hfov: c.finite(cam.hfov, 'capabilities.camera.hfov'),
  };
  if (camera.hfov <= 0 || camera.hfov >= 360) c.fail('capabilities.camera.hfov', 'must be in (0, 360) degrees');
  // Unknown encodings, ops and tasks are ignored (a newer peer may offer more); at least one encoding must be known.
  const encodings = c
    .array(o.encodings, 'capabilities.encodings', 1, 16)
    .map((e, i) => c.string(e, `capabilities.encodings[${i}]`))
    .filter((e): e is ImageEncoding => (IMAGE_ENCODINGS as readonly string[]).includes(e));
  if (encodings.length === 0) c.fail('capabilities.encodings', `must include one of ${IMAGE_ENCODINGS.join(', ')}`);
  const mode = c.oneOf(o.mode, 'capabilities.mode', ['lockstep', 'stream'] as const);
  const ops = c.array(o.ops, 'capabilities.ops', 0, 64).map((e, i) => c.string(e, `capabilities.ops[${i}]`));
  const caps: { -readonly [K in keyof Capabilities]: Capabilities[K] } = {
    actions,
    camera,
    encodings: [...new Set(encodings)],
    mode,
    ops: [...new Set(ops)],
  };
  if (o.tasks !== undefined) {
    caps.tasks = c
      .array(o.tasks, 'capabilities.tasks', 0, 64)
      .map((t, i) => c.string(t, `capabilities.tasks[${i}]`))
      .filter((t): t is TaskName => (TASK_NAMES as readonly string[]).includes(t));
  }
  const name = c.optString(o.name, 'capabilities.name');
  if (name !== undefined) caps.name = name;
  // An unknown frame is refused rather than ignored: its poses would be read in the wrong frame.
  if (o.poseFrame !== undefined) caps.poseFrame = c.oneOf(o.poseFrame, 'capabilities.poseFrame', POSE_FRAMES);
  return caps;
}

// ---------------------------------------------------------------------------------------------------------
// Text messages

/** Serialises a text message. Throws E_PROTOCOL_FIELD for a value JSON cannot carry (e.g. a BigInt). */
export function encodeTextMessage(message: TextMessage): string {
  try {
    return JSON.stringify(message);
  } catch (e) {
    throw new V4sError('E_PROTOCOL_FIELD', `${message.op}: cannot serialise message (${String(e)})`, undefined, {
      cause: e,
    });
  }
}

/** Builds an `error` message; the text is cut to PROTOCOL_LIMITS.maxErrorMessageLength. */
export function errorMessage(code: string, message: string, id: RequestId | null = null): ErrorMessage {
  const max = PROTOCOL_LIMITS.maxErrorMessageLength;
  return { op: 'error', id, code, message: message.length > max ? `${message.slice(0, max - 1)}…` : message };
}

function decodeError(o: Obj, c: Check): ErrorMessage {
  const id = o.id === null || o.id === undefined ? null : c.requestId(o.id);
  const code = c.string(o.code, 'code');
  const message = c.string(o.message, 'message', PROTOCOL_LIMITS.maxErrorMessageLength, 0);
  return { op: 'error', id, code, message };
}

function checkVersion(o: Obj, op: string): void {
  if (o.protocol !== PROTOCOL_VERSION) {
    const got = typeof o.protocol === 'string' ? excerpt(o.protocol) : String(o.protocol);
    throw new V4sError('E_PROTOCOL_VERSION', `${op}: protocol ${got} is not ${PROTOCOL_VERSION}`, {
      id: null,
      field: 'protocol',
    });
  }
}

const SIMULATOR_OPS = new Set(['hello', 'observation']);
const AGENT_OPS = new Set(['welcome', 'reset', 'step', 'oracle', 'close']);

/**
 * Decodes a text message the agent sent (what a simulator receives). Throws V4sError: E_PROTOCOL_JSON,
 * E_PROTOCOL_OP, E_PROTOCOL_VERSION or E_PROTOCOL_FIELD; `details.id` is the request id when one was readable.
 */
export function decodeAgentMessage(text: string): AgentTextMessage {
  const o = parseJsonObject(text, 'text message', 'E_PROTOCOL_JSON');
  const id = peekId(o);
  const op = o.op;
  if (typeof op !== 'string') {
    throw new V4sError('E_PROTOCOL_FIELD', `text message has no "op" string: ${excerpt(text)}`, { id, field: 'op' });
  }
  const c = new Check(describe(op, id), id);
  switch (op) {
    case 'welcome': {
      checkVersion(o, op);
      const msg: { -readonly [K in keyof WelcomeMessage]: WelcomeMessage[K] } = { op, protocol: PROTOCOL_VERSION };
      if (o.encoding !== undefined) msg.encoding = c.oneOf(o.encoding, 'encoding', IMAGE_ENCODINGS);
      if (o.maxPayload !== undefined) {
        msg.maxPayload = c.int(o.maxPayload, 'maxPayload', PROTOCOL_LIMITS.minAgentMaxPayload, 2 ** 32);
      }
      return msg;
    }
    case 'reset': {
      const rid = c.requestId(o.id);
      const seed = o.seed === undefined ? undefined : c.int(o.seed, 'seed', 0, Number.MAX_SAFE_INTEGER);
      const task = o.task === undefined ? undefined : c.oneOf(o.task, 'task', TASK_NAMES);
      const episode = c.optString(o.episode, 'episode');
      return {
        op,
        id: rid,
        ...(seed !== undefined && { seed }),
        ...(task !== undefined && { task }),
        ...(episode !== undefined && { episode }),
      };
    }
    case 'step': {
      const rid = c.requestId(o.id);
      const a = c.object(o.action, 'action');
      const name = c.string(a.name, 'action.name');
      const amount = c.optFinite(a.amount, 'action.amount');
      return { op, id: rid, action: amount === undefined ? { name } : { name, amount } };
    }
    case 'oracle': {
      const rid = c.requestId(o.id);
      const seqs = c.array(o.sequences, 'sequences', 1, PROTOCOL_LIMITS.maxOracleSequences);
      let total = 0;
      const sequences = seqs.map((s, i) => {
        const seq = c.array(s, `sequences[${i}]`, 1, PROTOCOL_LIMITS.maxOracleSequenceLength);
        total += seq.length;
        return seq.map((a, j) => c.string(a, `sequences[${i}][${j}]`));
      });
      if (total > PROTOCOL_LIMITS.maxOracleFrames) {
        c.fail('sequences', `must hold at most ${PROTOCOL_LIMITS.maxOracleFrames} actions in all, holds ${total}`);
      }
      const category = c.optString(o.category, 'category');
      return category === undefined ? { op, id: rid, sequences } : { op, id: rid, sequences, category };
    }
    case 'close':
      return { op };
    case 'error':
      return decodeError(o, c);
    default:
      if (SIMULATOR_OPS.has(op)) {
        throw new V4sError('E_PROTOCOL_OP', `op "${op}" is sent by the simulator, not the agent`, { id, op });
      }
      throw new V4sError('E_PROTOCOL_OP', `unknown op ${excerpt(op)}`, { id, op: op.slice(0, 64) });
  }
}

/**
 * Decodes a text message the simulator sent (what an agent receives): `hello` or `error`. Throws V4sError:
 * E_PROTOCOL_JSON, E_PROTOCOL_OP, E_PROTOCOL_VERSION (hello of another version) or E_PROTOCOL_FIELD.
 */
export function decodeSimulatorMessage(text: string): SimulatorTextMessage {
  const o = parseJsonObject(text, 'text message', 'E_PROTOCOL_JSON');
  const id = peekId(o);
  const op = o.op;
  if (typeof op !== 'string') {
    throw new V4sError('E_PROTOCOL_FIELD', `text message has no "op" string: ${excerpt(text)}`, { id, field: 'op' });
  }
  const c = new Check(describe(op, id), id);
  switch (op) {
    case 'hello': {
      checkVersion(o, op);
      const capabilities = decodeCapabilities(o.capabilities, 'hello');
      const token = o.token === undefined ? undefined : c.string(o.token, 'token', PROTOCOL_LIMITS.maxTokenLength);
      const msg: HelloMessage = { op, protocol: PROTOCOL_VERSION, capabilities, ...(token !== undefined && { token }) };
      return msg;
    }
    case 'error':
      return decodeError(o, c);
    case 'observation':
      throw new V4sError('E_PROTOCOL_OP', 'op "observation" must come as a binary message, not as text', { id, op });
    default:
      if (AGENT_OPS.has(op)) {
        throw new V4sError('E_PROTOCOL_OP', `op "${op}" is sent by the agent, not the simulator`, { id, op });
      }
      throw new V4sError('E_PROTOCOL_OP', `unknown op ${excerpt(op)}`, { id, op: op.slice(0, 64) });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Binary messages

function limitsOf(limits: DecodeLimits | undefined): Required<DecodeLimits> {
  return {
    maxHeaderBytes: limits?.maxHeaderBytes ?? PROTOCOL_LIMITS.maxHeaderBytes,
    maxImageSide: limits?.maxImageSide ?? PROTOCOL_LIMITS.maxImageSide,
    maxImagePixels: limits?.maxImagePixels ?? PROTOCOL_LIMITS.maxImagePixels,
  };
}

function size(c: Check, o: Obj, path: string, lim: Required<DecodeLimits>): { width: number; height: number } {
  const width = c.int(o.width, `${path}.width`, 1, lim.maxImageSide);
  const height = c.int(o.height, `${path}.height`, 1, lim.maxImageSide);
  if (width * height > lim.maxImagePixels) {
    c.fail(path, `is ${width}×${height}, more than ${lim.maxImagePixels} pixels`, 'E_PROTOCOL_BINARY');
  }
  return { width, height };
}

function imageDescriptor(c: Check, v: unknown, path: string, lim: Required<DecodeLimits>): ImageDescriptor {
  const o = c.object(v, path);
  const { width, height } = size(c, o, path, lim);
  const encoding = c.oneOf(o.encoding, `${path}.encoding`, IMAGE_ENCODINGS);
  const byteLength = c.int(o.byteLength, `${path}.byteLength`, 1, 2 ** 32);
  if (encoding === 'raw' && byteLength !== width * height * 3) {
    c.fail(
      `${path}.byteLength`,
      `is ${byteLength} but a raw ${width}×${height} RGB image has ${width * height * 3} bytes`,
      'E_PROTOCOL_BINARY',
    );
  }
  return { width, height, encoding, byteLength };
}

function maskDescriptor(c: Check, v: unknown, path: string, lim: Required<DecodeLimits>): MaskDescriptor {
  const o = c.object(v, path);
  const { width, height } = size(c, o, path, lim);
  const byteLength = c.int(o.byteLength, `${path}.byteLength`, 1, 2 ** 32);
  if (byteLength !== width * height) {
    c.fail(`${path}.byteLength`, `is ${byteLength} but a ${width}×${height} mask has ${width * height} bytes`, 'E_PROTOCOL_BINARY');
  }
  return { width, height, byteLength };
}

function wireInfo(c: Check, v: unknown): WireInfo {
  const o = c.object(v, 'info');
  c.optFiniteOrNull(o.distanceToGoal, 'info.distanceToGoal');
  c.optBool(o.success, 'info.success');
  c.optFiniteOrNull(o.shortestPathLength, 'info.shortestPathLength');
  c.optFinite(o.pathLength, 'info.pathLength');
  // Came from JSON.parse, so every other value is JSON; the known keys were checked above.
  return o as WireInfo;
}

function observationHeader(o: Obj, lim: Required<DecodeLimits>): ObservationHeader {
  const c0 = new Check('observation header', peekId(o));
  const id = o.id === null ? null : c0.requestId(o.id);
  const c = new Check(id === null ? 'observation (pushed)' : `observation (id ${id})`, id);
  const h: { -readonly [K in keyof ObservationHeader]: ObservationHeader[K] } = {
    op: 'observation',
    id,
    step: c.int(o.step, 'step', 0, Number.MAX_SAFE_INTEGER),
    info: wireInfo(c, o.info),
    terminated: c.bool(o.terminated, 'terminated'),
    truncated: c.bool(o.truncated, 'truncated'),
    image: imageDescriptor(c, o.image, 'image', lim),
  };
  if (o.pose !== undefined) h.pose = c.pose(o.pose, 'pose');
  if (o.collided !== undefined) h.collided = c.bool(o.collided, 'collided');
  if (o.goal !== undefined) {
    const g = c.object(o.goal, 'goal');
    const goal: { -readonly [K in keyof WireGoal]: WireGoal[K] } = { task: c.oneOf(g.task, 'goal.task', TASK_NAMES) };
    const category = c.optString(g.category, 'goal.category');
    if (category !== undefined) goal.category = category;
    if (g.position !== undefined) goal.position = c.vec3(g.position, 'goal.position');
    if (g.image !== undefined) goal.image = imageDescriptor(c, g.image, 'goal.image', lim);
    h.goal = goal;
  }
  return h;
}

function oracleHeader(o: Obj, lim: Required<DecodeLimits>): OracleHeader {
  const c0 = new Check('oracle header', peekId(o));
  const id = c0.requestId(o.id);
  const c = new Check(`oracle (id ${id})`, id);
  const rolloutsIn = c.array(o.rollouts, 'rollouts', 1, PROTOCOL_LIMITS.maxOracleSequences);
  let total = 0;
  const rollouts = rolloutsIn.map((r, i) => {
    const ro = c.object(r, `rollouts[${i}]`);
    const stepsIn = c.array(ro.steps, `rollouts[${i}].steps`, 1, PROTOCOL_LIMITS.maxOracleSequenceLength);
    total += stepsIn.length;
    if (total > PROTOCOL_LIMITS.maxOracleFrames) {
      c.fail('rollouts', `must hold at most ${PROTOCOL_LIMITS.maxOracleFrames} steps in all`);
    }
    const steps = stepsIn.map((s, t): OracleStepHeader => {
      const path = `rollouts[${i}].steps[${t}]`;
      const so = c.object(s, path);
      const image = imageDescriptor(c, so.image, `${path}.image`, lim);
      const mask = maskDescriptor(c, so.mask, `${path}.mask`, lim);
      if (mask.width !== image.width || mask.height !== image.height) {
        c.fail(`${path}.mask`, `is ${mask.width}×${mask.height} but its image is ${image.width}×${image.height}`, 'E_PROTOCOL_BINARY');
      }
      return { image, mask, pose: c.pose(so.pose, `${path}.pose`) };
    });
    return { steps };
  });
  return { op: 'oracle', id, rollouts };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

function binaryError(message: string, id: RequestId | null = null): V4sError {
  return new V4sError('E_PROTOCOL_BINARY', message, { id });
}

/** Reads the 4-byte prefix and JSON header of a binary message; returns the parsed header and the payload view. */
function splitBinary(bytes: Uint8Array, lim: Required<DecodeLimits>): { header: Obj; payload: Uint8Array } {
  const n = bytes.byteLength;
  if (n < BINARY_PREFIX_BYTES) {
    throw binaryError(`binary message of ${n} bytes is shorter than its ${BINARY_PREFIX_BYTES}-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(0, true);
  if (headerLength > lim.maxHeaderBytes) {
    throw binaryError(`binary message declares a ${headerLength}-byte header; the limit is ${lim.maxHeaderBytes}`);
  }
  if (BINARY_PREFIX_BYTES + headerLength > n) {
    throw binaryError(`binary message declares a ${headerLength}-byte header but only ${n - BINARY_PREFIX_BYTES} bytes follow`);
  }
  let text: string;
  try {
    text = utf8.decode(bytes.subarray(BINARY_PREFIX_BYTES, BINARY_PREFIX_BYTES + headerLength));
  } catch {
    throw binaryError('binary message header is not valid UTF-8');
  }
  let header: Obj;
  try {
    header = parseJsonObject(text, 'binary message header', 'E_PROTOCOL_BINARY');
  } catch (e) {
    // A JSON value that is not an object is still a broken binary message.
    if (e instanceof V4sError) throw binaryError(e.message);
    throw e;
  }
  return { header, payload: bytes.subarray(BINARY_PREFIX_BYTES + headerLength) };
}

function takeBlobs(payload: Uint8Array, lengths: readonly number[], where: string, id: RequestId | null): Uint8Array[] {
  let total = 0;
  for (const l of lengths) total += l;
  if (total !== payload.byteLength) {
    throw binaryError(`${where}: header declares ${total} payload bytes but ${payload.byteLength} follow`, id);
  }
  const out: Uint8Array[] = [];
  let at = 0;
  for (const l of lengths) {
    out.push(payload.subarray(at, at + l));
    at += l;
  }
  return out;
}

/**
 * Decodes a binary message (observation or oracle reply). The returned byte arrays are views into `bytes`.
 * Throws V4sError E_PROTOCOL_BINARY (framing, sizes), E_PROTOCOL_FIELD (a header field), E_PROTOCOL_OP.
 */
export function decodeBinaryMessage(bytes: Uint8Array, limits?: DecodeLimits): BinaryPacket {
  const lim = limitsOf(limits);
  const { header, payload } = splitBinary(bytes, lim);
  const op = header.op;
  if (op === 'observation') {
    const h = observationHeader(header, lim);
    const lengths = [h.image.byteLength];
    if (h.goal?.image) lengths.push(h.goal.image.byteLength);
    const [image, goalImage] = takeBlobs(payload, lengths, describe('observation', h.id), h.id);
    if (image === undefined) throw binaryError('observation: no image bytes', h.id);
    return goalImage === undefined ? { header: h, image } : { header: h, image, goalImage };
  }
  if (op === 'oracle') {
    const h = oracleHeader(header, lim);
    const lengths: number[] = [];
    for (const r of h.rollouts) for (const s of r.steps) lengths.push(s.image.byteLength, s.mask.byteLength);
    const blobs = takeBlobs(payload, lengths, `oracle (id ${h.id})`, h.id);
    let k = 0;
    const images: Uint8Array[][] = [];
    const masks: Uint8Array[][] = [];
    for (const r of h.rollouts) {
      const ri: Uint8Array[] = [];
      const rm: Uint8Array[] = [];
      for (let t = 0; t < r.steps.length; t++) {
        ri.push(blobs[k++] ?? new Uint8Array(0));
        rm.push(blobs[k++] ?? new Uint8Array(0));
      }
      images.push(ri);
      masks.push(rm);
    }
    return { header: h, images, masks };
  }
  const id = peekId(header);
  if (typeof op !== 'string') throw new V4sError('E_PROTOCOL_FIELD', 'binary message header has no "op" string', { id, field: 'op' });
  throw new V4sError('E_PROTOCOL_OP', `binary message with unknown op ${excerpt(op)}`, { id, op: op.slice(0, 64) });
}

/**
 * Encodes a binary message from a header and its payload blobs, in order. The header is checked with the same
 * validation a receiver applies, so a message this function returns always decodes.
 */
export function encodeBinaryMessage(header: BinaryHeader, blobs: readonly Uint8Array[], limits?: DecodeLimits): Uint8Array {
  let json: string;
  try {
    json = JSON.stringify(header);
  } catch (e) {
    throw new V4sError('E_PROTOCOL_FIELD', `${header.op} header cannot be serialised (${String(e)})`, undefined, { cause: e });
  }
  const headerBytes = utf8Encoder.encode(json);
  let payloadLength = 0;
  for (const b of blobs) payloadLength += b.byteLength;
  const out = new Uint8Array(BINARY_PREFIX_BYTES + headerBytes.byteLength + payloadLength);
  new DataView(out.buffer).setUint32(0, headerBytes.byteLength, true);
  out.set(headerBytes, BINARY_PREFIX_BYTES);
  let at = BINARY_PREFIX_BYTES + headerBytes.byteLength;
  for (const b of blobs) {
    out.set(b, at);
    at += b.byteLength;
  }
  // Validate what a receiver will see (after JSON round trip: NaN → null etc.). Cheap: headers are small.
  decodeBinaryHeaderOnly(out, limits);
  return out;
}

/** Validates framing and header of an encoded message and that blob sizes add up; returns the header. */
function decodeBinaryHeaderOnly(bytes: Uint8Array, limits?: DecodeLimits): BinaryHeader {
  return decodeBinaryMessage(bytes, limits).header;
}

/** Encodes an observation message: header, image bytes, then the goal image bytes (reset replies, ImageNav). */
export function encodeObservationPacket(packet: ObservationPacket, limits?: DecodeLimits): Uint8Array {
  const blobs = [packet.image];
  if (packet.goalImage !== undefined) blobs.push(packet.goalImage);
  checkLength(packet.header.image.byteLength, packet.image, 'observation image');
  const goalDesc = packet.header.goal?.image;
  if ((goalDesc === undefined) !== (packet.goalImage === undefined)) {
    throw binaryError('observation: header.goal.image and the goal image bytes must come together', packet.header.id);
  }
  if (goalDesc !== undefined && packet.goalImage !== undefined) checkLength(goalDesc.byteLength, packet.goalImage, 'goal image');
  return encodeBinaryMessage(packet.header, blobs, limits);
}

/** Encodes an oracle reply: header, then for each rollout, for each step, the image bytes then the mask bytes. */
export function encodeOraclePacket(packet: OraclePacket, limits?: DecodeLimits): Uint8Array {
  const blobs: Uint8Array[] = [];
  packet.header.rollouts.forEach((r, i) => {
    r.steps.forEach((s, t) => {
      const image = packet.images[i]?.[t];
      const mask = packet.masks[i]?.[t];
      if (image === undefined || mask === undefined) throw binaryError(`oracle: no bytes for rollout ${i} step ${t}`, packet.header.id);
      checkLength(s.image.byteLength, image, `oracle rollout ${i} step ${t} image`);
      checkLength(s.mask.byteLength, mask, `oracle rollout ${i} step ${t} mask`);
      blobs.push(image, mask);
    });
  });
  return encodeBinaryMessage(packet.header, blobs, limits);
}

function checkLength(declared: number, bytes: Uint8Array, what: string): void {
  if (declared !== bytes.byteLength) throw binaryError(`${what}: header says ${declared} bytes, got ${bytes.byteLength}`);
}

/** Reads only the request id a binary message's header claims, or null (for error replies about a bad message). */
export function peekBinaryId(bytes: Uint8Array): RequestId | null {
  try {
    const { header } = splitBinary(bytes, limitsOf(undefined));
    return peekId(header);
  } catch {
    return null;
  }
}
