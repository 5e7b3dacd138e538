/**
 * Typed errors with stable codes. Every code is listed in docs/errors.md.
 * Usage: `throw new V4sError('E_MODEL_TENSOR', 'input "x_t": expected [B,4,8,8,8] float32, found …')`.
 */
export const ERROR_CODES = {
  // protocol / wire
  E_PROTOCOL_JSON: 'a text message is not valid JSON',
  E_PROTOCOL_OP: 'an unknown or unexpected op',
  E_PROTOCOL_VERSION: 'the peer speaks another protocol version',
  E_PROTOCOL_FIELD: 'a message lacks a field or has one of the wrong type',
  E_PROTOCOL_BINARY: 'a binary observation message is malformed (header length, JSON header or image size)',
  E_PROTOCOL_TOO_LARGE: 'a message exceeds maxPayload',
  E_AUTH: 'the shared token is missing or wrong',
  E_UNKNOWN_ACTION: 'the action is not in the capabilities / vocabulary',
  E_NO_EPISODE: 'step before reset',
  E_ORACLE_DISABLED: 'the oracle op was asked for but the server was not started with it',
  E_BUSY: 'a request is already in flight on this connection',
  E_TOO_MANY_CONNECTIONS: 'the server refuses more connections',
  E_SIMULATOR: 'the simulator failed while serving a request (or the peer sent an error code this SDK does not know)',
  // connection
  E_CONNECT: 'the simulator/agent endpoint could not be reached',
  E_CLOSED: 'the connection closed while a request was pending',
  E_TIMEOUT: 'a request got no reply in time',
  E_INSECURE_BIND: 'binding beyond loopback without a token',
  E_LISTEN: 'a server could not listen on its host/port (in use, not permitted)',
  // frames
  E_FRAME_DECODE: 'image bytes could not be decoded',
  E_FRAME_SIZE: 'image dimensions do not match the data',
  // world model
  E_MODEL_FILE: 'a model-package file is missing or unreadable',
  E_MODEL_MANIFEST: 'manifest.json fails its schema',
  E_MODEL_TENSOR: 'a tensor name, shape or dtype differs from the manifest',
  E_MODEL_ACTION: 'an action is not in the model vocabulary',
  E_MODEL_STEP_SIZE: "the model's trained step sizes differ from the simulator's amounts",
  E_MODEL_OUTPUT: 'the model produced NaN or Inf',
  E_MODEL_INPUT: 'the imagine() request is invalid (context, horizon, candidates)',
  E_MODEL_WORKER: 'the worker thread running a world model (loadWorkerWorldModel) failed to start or exited',
  E_REMOTE: 'a remote inference server (Open Inference Protocol v2, e.g. Triton) answered with an HTTP error, is not ready, or sent a malformed response (the message includes its error body)',
  // agent / evaluation / CLI
  E_CONFIG: 'an invalid option',
  E_PATH: 'an output path is invalid or unsafe',
  E_ABORTED: 'an episode was aborted by an environment failure',
  E_CONTEXT_ORDER: "an observation's step is older than the newest frame in the context buffer (or not an integer ≥ 0)",
  E_CONTEXT_EMPTY: 'a context selection was asked for before any frame was pushed',
  E_PLAN: 'a planner returned an invalid plan (no actions)',
  E_RESULTS_FILE: 'a results (JSONL) file has a malformed row other than a truncated last line',
  // robots
  E_EMERGENCY_STOP: 'a motion command was refused because emergencyStop() latched the robot; call resume() first',
} as const;

export type V4sErrorCode = keyof typeof ERROR_CODES;

/** The SDK's error type. `code` is stable across versions; `message` names the offending item. */
export class V4sError extends Error {
  readonly code: V4sErrorCode;
  readonly details?: Readonly<Record<string, unknown>>;
  constructor(code: V4sErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'V4sError';
    this.code = code;
    if (details !== undefined) this.details = details;
  }
}

/** True when `e` is a V4sError, optionally with the given code. */
export function isV4sError(e: unknown, code?: V4sErrorCode): e is V4sError {
  return e instanceof V4sError && (code === undefined || e.code === code);
}
