/**
 * A client of the Open Inference Protocol v2 over HTTP/REST (KServe v2; what Triton Inference Server, KServe
 * and Seldon MLServer serve): health, server and model metadata, and inference with the binary tensor data
 * extension, so tensors travel as raw little-endian bytes, never as JSON numbers.
 *
 * - Connections are kept alive (one `http.Agent` with `keepAlive`, `maxSockets` per client).
 * - Every call has a timeout covering connect, request and the whole response.
 * - Retries (`retries`, exponential backoff from `retryDelayMs`) on connection failures, timeouts and HTTP
 *   502/503/504, for GETs and for `infer` alike: an inference of a stateless model (no sequence batching, no
 *   randomness inside it; the world model's noise comes from the SDK) is a pure function of its inputs, so
 *   sending it again cannot change the result. Other HTTP errors are not retried.
 * - Errors: E_CONNECT (unreachable), E_TIMEOUT (no reply in time), E_REMOTE (an HTTP error status, with the
 *   server's `{"error": "…"}` message, or a malformed response), each naming the method and path.
 *
 * Usage:
 * ```
 * const client = new OipClient('http://localhost:8000');
 * const meta = await client.modelMetadata('v4s-builtin-small-denoiser');
 * const { outputs } = await client.infer('v4s-builtin-small-denoiser', inputs, ['pred']);
 * client.close();
 * ```
 */
import http from 'node:http';
import https from 'node:https';
import { V4sError } from '../../errors.js';
import { decodeInferResponse, encodeInferRequest, type DecodedInferResponse } from './codec.js';
import { INFERENCE_HEADER_CONTENT_LENGTH, type OipModelMetadata, type OipServerMetadata, type OipTensor } from './types.js';

/** Options of `OipClient`. */
export interface OipClientOptions {
  /** Timeout of one inference request, ms (default 60 000). */
  readonly timeoutMs?: number;
  /** Timeout of one health or metadata request, ms (default 10 000). */
  readonly metadataTimeoutMs?: number;
  /** Retries after the first attempt (default 2). */
  readonly retries?: number;
  /** Delay before the first retry, doubled for each further one, ms (default 100). */
  readonly retryDelayMs?: number;
  /** Most sockets kept open to the server (default 8). */
  readonly maxSockets?: number;
  /** Extra headers on every request (e.g. `Authorization` for a gateway in front of KServe). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Counters of a client, for benches and tests. */
export interface OipClientStats {
  /** HTTP requests sent, retries included. */
  requests: number;
  /** Attempts that were retried. */
  retries: number;
  /** Body bytes sent and received. */
  bytesSent: number;
  bytesReceived: number;
  /** Sockets the agent opened (keep-alive reuses them). */
  socketsOpened: number;
}

interface HttpReply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

interface Attempt {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers: Record<string, string | number>;
  readonly chunks: readonly Buffer[];
  readonly timeoutMs: number;
}

/** A failure worth another attempt: the connection broke or the server said it is temporarily unavailable. */
class Transient extends Error {
  constructor(
    message: string,
    readonly kind: 'connect' | 'timeout' | 'status',
    readonly reply?: HttpReply,
  ) {
    super(message);
  }
}

const RETRY_STATUSES = new Set([502, 503, 504]);

/** The server's error message: `{"error": "…"}` per the specification, else the body's text (truncated). */
export function serverErrorText(body: Buffer): string {
  const text = body.toString('utf8');
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { error?: unknown }).error === 'string') return (parsed as { error: string }).error;
  } catch {
    // not JSON: fall through to the raw text
  }
  const trimmed = text.trim();
  if (trimmed === '') return '(empty body)';
  return trimmed.length > 500 ? `${trimmed.slice(0, 500)}…` : trimmed;
}

/** An Open Inference Protocol v2 HTTP/REST client for one server. */
export class OipClient {
  /** The server's base URL, without a trailing slash (a path prefix, e.g. behind a gateway, is kept). */
  readonly url: string;
  readonly #base: URL;
  /** Path prefix before `/v2` (empty for a server at the root). */
  readonly #prefix: string;
  readonly #agent: http.Agent;
  readonly #transport: typeof http | typeof https;
  readonly #timeoutMs: number;
  readonly #metadataTimeoutMs: number;
  readonly #retries: number;
  readonly #retryDelayMs: number;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #stats: OipClientStats = { requests: 0, retries: 0, bytesSent: 0, bytesReceived: 0, socketsOpened: 0 };
  readonly #sockets = new WeakSet<object>();
  #nextId = 1;
  #closed = false;

  constructor(url: string, options: OipClientOptions = {}) {
    let base: URL;
    try {
      base = new URL(url);
    } catch {
      throw new V4sError('E_CONFIG', `OIP server URL "${url}" is not a valid URL (e.g. http://localhost:8000)`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new V4sError('E_CONFIG', `OIP server URL "${url}": use http:// or https://`);
    base.search = '';
    base.hash = '';
    this.#base = base;
    this.#prefix = base.pathname.replace(/\/+$/, '');
    this.url = `${base.protocol}//${base.host}${this.#prefix}`;
    const positive = (v: number | undefined, def: number, what: string): number => {
      const x = v ?? def;
      if (!Number.isFinite(x) || x < 0) throw new V4sError('E_CONFIG', `OipClient ${what} must be a non-negative number, got ${x}`);
      return x;
    };
    this.#timeoutMs = positive(options.timeoutMs, 60_000, 'timeoutMs');
    this.#metadataTimeoutMs = positive(options.metadataTimeoutMs, 10_000, 'metadataTimeoutMs');
    this.#retries = Math.floor(positive(options.retries, 2, 'retries'));
    this.#retryDelayMs = positive(options.retryDelayMs, 100, 'retryDelayMs');
    this.#headers = options.headers ?? {};
    this.#transport = base.protocol === 'https:' ? https : http;
    const agentOptions = { keepAlive: true, maxSockets: Math.max(1, Math.floor(positive(options.maxSockets, 8, 'maxSockets'))) };
    this.#agent = base.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  }

  /** A copy of the counters. */
  stats(): OipClientStats {
    return { ...this.#stats };
  }

  /** `GET /v2/health/live`: true on 200, false on a 4xx. */
  serverLive(): Promise<boolean> {
    return this.#health('/v2/health/live');
  }

  /** `GET /v2/health/ready`: true on 200, false on a 4xx (the specification's boolean). */
  serverReady(): Promise<boolean> {
    return this.#health('/v2/health/ready');
  }

  /** `GET /v2/models/{name}[/versions/{v}]/ready`. */
  modelReady(name: string, version?: string): Promise<boolean> {
    return this.#health(`${this.#modelPath(name, version)}/ready`);
  }

  /** `GET /v2`: the server's name, version and extensions (Triton lists `binary_tensor_data`). */
  async serverMetadata(): Promise<OipServerMetadata> {
    const json = await this.#getJson('/v2');
    const ok = typeof json['name'] === 'string' && typeof json['version'] === 'string' && Array.isArray(json['extensions']);
    if (!ok) throw new V4sError('E_REMOTE', `GET ${this.url}/v2: malformed server metadata ${JSON.stringify(json).slice(0, 300)}`);
    return json as unknown as OipServerMetadata;
  }

  /** `GET /v2/models/{name}[/versions/{v}]`: inputs and outputs with datatypes and shapes (-1 variable). */
  async modelMetadata(name: string, version?: string): Promise<OipModelMetadata> {
    const path = this.#modelPath(name, version);
    const json = await this.#getJson(path);
    const tensorsOk = (v: unknown): boolean =>
      Array.isArray(v) &&
      v.every((t: unknown) => {
        if (typeof t !== 'object' || t === null) return false;
        const r = t as Record<string, unknown>;
        return typeof r['name'] === 'string' && typeof r['datatype'] === 'string' && Array.isArray(r['shape']) && r['shape'].every((d: unknown) => Number.isSafeInteger(d) && (d as number) >= -1);
      });
    if (typeof json['name'] !== 'string' || !tensorsOk(json['inputs']) || !tensorsOk(json['outputs'])) {
      throw new V4sError('E_REMOTE', `GET ${this.url}${path}: malformed model metadata ${JSON.stringify(json).slice(0, 300)}`, { model: name });
    }
    return { platform: '', ...json } as unknown as OipModelMetadata;
  }

  /**
   * `POST /v2/models/{name}[/versions/{v}]/infer` with every input as binary data and `outputs` requested as
   * binary data. Checks the response: every requested output present, the request id echoed.
   */
  async infer(name: string, inputs: readonly OipTensor[], outputs: readonly string[], options: { readonly version?: string } = {}): Promise<DecodedInferResponse> {
    const path = `${this.#modelPath(name, options.version)}/infer`;
    const id = String(this.#nextId++);
    const req = encodeInferRequest(inputs, outputs, { id });
    const reply = await this.#send({
      method: 'POST',
      path,
      headers: {
        'Content-Type': 'application/octet-stream',
        [INFERENCE_HEADER_CONTENT_LENGTH]: req.headerLength,
        'Content-Length': req.contentLength,
      },
      chunks: [req.header, ...req.chunks],
      timeoutMs: this.#timeoutMs,
    });
    const where = `POST ${this.url}${path}`;
    if (reply.status !== 200) throw this.#statusError(where, reply, { model: name });
    const raw = reply.headers[INFERENCE_HEADER_CONTENT_LENGTH.toLowerCase()];
    const headerValue = Array.isArray(raw) ? raw[0] : raw;
    let headerLength: number | undefined;
    if (headerValue !== undefined) {
      headerLength = Number(headerValue);
      if (!/^\d+$/.test(headerValue.trim())) throw new V4sError('E_REMOTE', `${where}: malformed inference response: ${INFERENCE_HEADER_CONTENT_LENGTH} is "${headerValue}"`, { model: name });
    }
    const decoded = decodeInferResponse(reply.body, headerLength, where);
    if (decoded.id !== undefined && decoded.id !== id) throw new V4sError('E_REMOTE', `${where}: response id "${decoded.id}" does not echo request id "${id}"`, { model: name });
    for (const o of outputs) {
      if (!decoded.outputs.some((t) => t.name === o)) {
        throw new V4sError('E_REMOTE', `${where}: requested output "${o}" missing from the response (got ${decoded.outputs.map((t) => t.name).join(', ') || 'none'})`, { model: name, tensor: o });
      }
    }
    return decoded;
  }

  /** Close the kept-alive sockets. Later calls fail with E_CONNECT. */
  close(): void {
    this.#closed = true;
    this.#agent.destroy();
  }

  #modelPath(name: string, version?: string): string {
    return `/v2/models/${encodeURIComponent(name)}${version !== undefined ? `/versions/${encodeURIComponent(version)}` : ''}`;
  }

  async #health(path: string): Promise<boolean> {
    const reply = await this.#send({ method: 'GET', path, headers: {}, chunks: [], timeoutMs: this.#metadataTimeoutMs });
    if (reply.status === 200) return true;
    if (reply.status >= 400 && reply.status < 500) return false;
    throw this.#statusError(`GET ${this.url}${path}`, reply);
  }

  async #getJson(path: string): Promise<Record<string, unknown>> {
    const reply = await this.#send({ method: 'GET', path, headers: { Accept: 'application/json' }, chunks: [], timeoutMs: this.#metadataTimeoutMs });
    const where = `GET ${this.url}${path}`;
    if (reply.status !== 200) throw this.#statusError(where, reply);
    let parsed: unknown;
    try {
      parsed = JSON.parse(reply.body.toString('utf8'));
    } catch (e) {
      throw new V4sError('E_REMOTE', `${where}: the response is not JSON (${(e as Error).message})`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new V4sError('E_REMOTE', `${where}: the response is not a JSON object`);
    return parsed as Record<string, unknown>;
  }

  #statusError(where: string, reply: HttpReply, details: Record<string, unknown> = {}): V4sError {
    return new V4sError('E_REMOTE', `${where}: HTTP ${reply.status}: ${serverErrorText(reply.body)}`, { ...details, status: reply.status });
  }

  /** Send with retries on transient failures; the last failure becomes E_CONNECT / E_TIMEOUT / E_REMOTE. */
  async #send(a: Attempt): Promise<HttpReply> {
    const where = `${a.method} ${this.url}${a.path}`;
    let last: Transient | undefined;
    for (let attempt = 0; attempt <= this.#retries; attempt++) {
      if (this.#closed) throw new V4sError('E_CONNECT', `${where}: the client was closed`);
      if (attempt > 0) {
        this.#stats.retries++;
        await new Promise((r) => setTimeout(r, this.#retryDelayMs * 2 ** (attempt - 1)));
      }
      try {
        const reply = await this.#once(a);
        if (RETRY_STATUSES.has(reply.status)) {
          last = new Transient(`HTTP ${reply.status}`, 'status', reply);
          continue;
        }
        return reply;
      } catch (e) {
        if (!(e instanceof Transient)) throw e;
        last = e;
      }
    }
    const tries = `${this.#retries + 1} attempt${this.#retries === 0 ? '' : 's'}`;
    if (last?.kind === 'status' && last.reply) return last.reply; // the caller reports the status with its body
    if (last?.kind === 'timeout') throw new V4sError('E_TIMEOUT', `${where}: no complete reply within ${a.timeoutMs} ms (${tries})`, { url: this.url });
    throw new V4sError('E_CONNECT', `${where}: cannot reach the inference server: ${last?.message ?? 'unknown error'} (${tries})`, { url: this.url });
  }

  #once(a: Attempt): Promise<HttpReply> {
    return new Promise<HttpReply>((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      this.#stats.requests++;
      const req = this.#transport.request(
        {
          protocol: this.#base.protocol,
          hostname: this.#base.hostname,
          port: this.#base.port,
          method: a.method,
          path: `${this.#prefix}${a.path}`,
          agent: this.#agent,
          headers: { ...this.#headers, ...a.headers },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => {
            const body = Buffer.concat(parts);
            this.#stats.bytesReceived += body.length;
            finish(() => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
          });
          res.on('error', (e) => finish(() => reject(new Transient(e.message, 'connect'))));
          res.on('close', () => {
            if (!res.complete) finish(() => reject(new Transient('the connection closed before the response was complete', 'connect')));
          });
        },
      );
      const timer = setTimeout(() => {
        finish(() => reject(new Transient(`timeout after ${a.timeoutMs} ms`, 'timeout')));
        req.destroy();
      }, a.timeoutMs);
      req.on('socket', (socket) => {
        if (this.#sockets.has(socket)) return;
        this.#sockets.add(socket);
        this.#stats.socketsOpened++;
      });
      req.on('error', (e: NodeJS.ErrnoException) => finish(() => reject(new Transient(e.code ? `${e.code} ${e.message}` : e.message, 'connect'))));
      for (const c of a.chunks) {
        this.#stats.bytesSent += c.length;
        req.write(c);
      }
      req.end();
    });
  }
}
