/**
 * A TEST DOUBLE of an Open Inference Protocol v2 server — the KServe v2 HTTP/REST API with the binary tensor
 * data extension, as NVIDIA Triton Inference Server serves it. Triton cannot run on this machine, so this is a
 * double of the PUBLISHED PROTOCOL, written from kserve `docs/predict-api/v2/required_api.md` and Triton
 * `docs/protocol/extension_binary_data.md`, independently of the SDK's client and codec (it shares no code
 * with src/worldmodel/oip/). It really computes: onnxruntime-node runs the model files behind it.
 *
 * It loads a Triton model repository (`<model>/config.pbtxt` + `<model>/<version>/model.onnx`, as
 * `v4s export-triton` writes it) and, like Triton's onnxruntime backend, refuses a config that disagrees with
 * its ONNX model (names, data types, dims, a batch axis that is not variable). Served:
 * - `GET /v2/health/live`, `GET /v2/health/ready` (200 / 400, empty body), `GET /v2` (server metadata);
 * - `GET /v2/models/{m}[/versions/{v}]` (model metadata; the batch axis is -1 when max_batch_size > 0),
 *   `GET /v2/models/{m}[/versions/{v}]/ready`;
 * - `POST /v2/models/{m}[/versions/{v}]/infer`: inputs as JSON `data` (flat or nested) or binary
 *   (`parameters.binary_data_size`, bytes after the JSON whose length is `Inference-Header-Content-Length`);
 *   outputs binary when `parameters.binary_data` (or the request's `binary_data_output`) is true, JSON
 *   otherwise; `reshape` and `max_batch_size` applied as Triton does; errors as HTTP 400 `{"error": "…"}`.
 * Faults can be injected (an error status, a delay, a dropped connection) and every exchange is recorded
 * byte for byte.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { parsePbtxt, type PbMessage } from './pbtxt.js';

/** Triton config data types → protocol data types, element sizes and onnxruntime tensor types. */
const TYPES: Readonly<Record<string, { readonly oip: string; readonly size: number; readonly ort: string }>> = {
  TYPE_FP32: { oip: 'FP32', size: 4, ort: 'float32' },
  TYPE_INT64: { oip: 'INT64', size: 8, ort: 'int64' },
  TYPE_INT32: { oip: 'INT32', size: 4, ort: 'int32' },
  TYPE_FP64: { oip: 'FP64', size: 8, ort: 'float64' },
  TYPE_UINT8: { oip: 'UINT8', size: 1, ort: 'uint8' },
  TYPE_BOOL: { oip: 'BOOL', size: 1, ort: 'bool' },
};

interface TensorConfig {
  readonly name: string;
  readonly type: string;
  readonly dims: readonly number[];
  readonly reshape?: readonly number[];
}

interface ServedModel {
  readonly name: string;
  readonly versions: readonly string[];
  readonly maxBatchSize: number;
  readonly inputs: readonly TensorConfig[];
  readonly outputs: readonly TensorConfig[];
  readonly sessions: ReadonlyMap<string, ort.InferenceSession>;
}

/** One HTTP exchange as it went over the wire. */
export interface RecordedExchange {
  readonly method: string;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  status: number;
  responseHeaders: Record<string, string>;
  responseBody: Buffer;
}

/** An injected fault, consumed by the next `times` requests that match. */
export interface Fault {
  readonly match?: (method: string, path: string) => boolean;
  /** Answer with this status and body instead of serving the request. */
  readonly status?: number;
  readonly body?: string;
  /** Wait this long before serving (or answering the fault). */
  readonly delayMs?: number;
  /** Drop the connection without answering. */
  readonly destroy?: boolean;
  times: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function tensorConfigs(list: readonly PbMessage[]): TensorConfig[] {
  return list.map((m) => ({
    name: m.string('name'),
    type: m.enumValue('data_type'),
    dims: m.numbers('dims'),
    ...(m.has('reshape') ? { reshape: m.message('reshape').numbers('shape') } : {}),
  }));
}

/** The shape the ONNX model sees for a config tensor (batch axis first when max_batch_size > 0). */
function modelSideShape(t: TensorConfig, maxBatchSize: number): number[] {
  const inner = [...(t.reshape ?? t.dims)];
  return maxBatchSize > 0 ? [-1, ...inner] : inner;
}

/** Check a config against its ONNX session as Triton's onnxruntime backend does; returns the problems. */
function checkConfig(model: string, cfg: { maxBatchSize: number; inputs: readonly TensorConfig[]; outputs: readonly TensorConfig[] }, session: ort.InferenceSession): string[] {
  const problems: string[] = [];
  const sides = [
    ['input', cfg.inputs, session.inputMetadata, true],
    ['output', cfg.outputs, session.outputMetadata, false],
  ] as const;
  for (const [side, configured, metadata, all] of sides) {
    for (const meta of metadata) {
      if (all && !configured.some((t) => t.name === meta.name)) problems.push(`${model}: model ${side} "${meta.name}" is not in config.pbtxt`);
    }
    for (const t of configured) {
      const meta = metadata.find((m) => m.name === t.name);
      if (meta === undefined || !meta.isTensor) {
        problems.push(`${model}: config ${side} "${t.name}" is not a tensor of the model`);
        continue;
      }
      const type = TYPES[t.type];
      if (type === undefined || type.ort !== meta.type) problems.push(`${model}: ${side} "${t.name}": config data_type ${t.type}, model ${meta.type}`);
      if (t.dims.length === 0) problems.push(`${model}: ${side} "${t.name}": dims must not be empty`);
      const want = modelSideShape(t, cfg.maxBatchSize);
      const own = meta.shape;
      if (own.length !== want.length) {
        problems.push(`${model}: ${side} "${t.name}": model rank ${own.length}, config gives [${want.join(',')}]`);
        continue;
      }
      own.forEach((d, i) => {
        const fixed = typeof d === 'number' && d > 0;
        if (i === 0 && cfg.maxBatchSize > 0 && fixed) problems.push(`${model}: ${side} "${t.name}": max_batch_size > 0 but the model's first dim is fixed at ${d}`);
        else if (fixed && want[i] !== d) problems.push(`${model}: ${side} "${t.name}": dim ${i} is ${d} in the model, ${want[i]} in config.pbtxt`);
      });
    }
  }
  return problems;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function flatten(v: unknown, out: unknown[]): void {
  if (Array.isArray(v)) for (const x of v) flatten(x, out);
  else out.push(v);
}

/** A running Open Inference Protocol v2 test double. */
export class OipDouble {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** Every exchange, in order. */
  readonly log: RecordedExchange[] = [];
  /** Pending injected faults. */
  readonly faults: Fault[] = [];
  /** What `GET /v2/health/ready` says. */
  ready = true;
  /** Record request and response bodies (off for benches). */
  record = true;
  readonly #server: http.Server;
  readonly #models: ReadonlyMap<string, ServedModel>;

  private constructor(server: http.Server, models: ReadonlyMap<string, ServedModel>) {
    this.#server = server;
    this.#models = models;
    const addr = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${addr.port}`;
  }

  /** Load a Triton model repository and listen on 127.0.0.1, port 0. Throws when a config disagrees with its model. */
  static async start(repository: string): Promise<OipDouble> {
    const models = new Map<string, ServedModel>();
    for (const name of readdirSync(repository).sort()) {
      const dir = path.join(repository, name);
      if (!statSync(dir).isDirectory()) continue;
      const cfgFile = path.join(dir, 'config.pbtxt');
      if (!existsSync(cfgFile)) throw new Error(`${dir}: no config.pbtxt`);
      const cfg = parsePbtxt(readFileSync(cfgFile, 'utf8'));
      if (cfg.has('name') && cfg.string('name') !== name) throw new Error(`${cfgFile}: name "${cfg.string('name')}" differs from its folder "${name}"`);
      if (cfg.string('platform') !== 'onnxruntime_onnx') throw new Error(`${cfgFile}: platform ${cfg.string('platform')} is not served by this double`);
      const maxBatchSize = cfg.has('max_batch_size') ? cfg.number('max_batch_size') : 0;
      if (cfg.has('dynamic_batching') && maxBatchSize === 0) throw new Error(`${cfgFile}: dynamic_batching needs max_batch_size > 0`);
      const inputs = tensorConfigs(cfg.messages('input'));
      const outputs = tensorConfigs(cfg.messages('output'));
      const sessions = new Map<string, ort.InferenceSession>();
      const versions = readdirSync(dir).filter((v) => /^\d+$/.test(v) && existsSync(path.join(dir, v, 'model.onnx'))).sort((a, b) => Number(a) - Number(b));
      if (versions.length === 0) throw new Error(`${dir}: no version folder with model.onnx`);
      for (const v of versions) {
        const session = await ort.InferenceSession.create(path.join(dir, v, 'model.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1 });
        const problems = checkConfig(name, { maxBatchSize, inputs, outputs }, session);
        if (problems.length > 0) throw new Error(`model ${name} version ${v} fails to load: ${problems.join('; ')}`);
        sessions.set(v, session);
      }
      models.set(name, { name, versions, maxBatchSize, inputs, outputs, sessions });
    }
    const server = http.createServer();
    const double = await new Promise<OipDouble>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(new OipDouble(server, models)));
    });
    server.on('request', (req, res) => void double.#handle(req, res));
    return double;
  }

  /** Names of the served models. */
  get modelNames(): string[] {
    return [...this.#models.keys()];
  }

  /** Infer requests received (all models, or one). */
  inferCount(model?: string): number {
    return this.log.filter((e) => e.method === 'POST' && e.path.endsWith('/infer') && (model === undefined || e.path.startsWith(`/v2/models/${model}/`))).length;
  }

  /** Parsed JSON header of each infer request to `model`, in order. */
  inferHeaders(model: string): Record<string, unknown>[] {
    return this.log
      .filter((e) => e.method === 'POST' && e.path.startsWith(`/v2/models/${model}/`) && e.path.endsWith('/infer'))
      .map((e) => {
        const raw = e.headers['inference-header-content-length'];
        const len = raw === undefined ? e.body.length : Number(raw);
        return JSON.parse(e.body.subarray(0, len).toString('utf8')) as Record<string, unknown>;
      });
  }

  /** Stop listening, close kept-alive connections and release the sessions. */
  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const m of this.#models.values()) for (const s of m.sessions.values()) await s.release();
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    const body = Buffer.concat(parts);
    const method = req.method ?? '';
    const urlPath = (req.url ?? '/').split('?')[0] ?? '/';
    const exchange: RecordedExchange = {
      method,
      path: urlPath,
      headers: req.headers,
      body: this.record ? body : Buffer.alloc(0),
      status: 0,
      responseHeaders: {},
      responseBody: Buffer.alloc(0),
    };
    this.log.push(exchange);
    const send = (status: number, headers: Record<string, string>, payload: Buffer): void => {
      exchange.status = status;
      exchange.responseHeaders = { ...headers, 'Content-Length': String(payload.length) };
      if (this.record) exchange.responseBody = payload;
      res.writeHead(status, exchange.responseHeaders);
      res.end(payload);
    };
    const fault = this.faults.find((f) => f.times > 0 && (f.match === undefined || f.match(method, urlPath)));
    if (fault) {
      fault.times--;
      if (fault.delayMs !== undefined) await new Promise((r) => setTimeout(r, fault.delayMs));
      if (fault.destroy) {
        exchange.status = -1;
        req.socket.destroy();
        return;
      }
      if (fault.status !== undefined) {
        send(fault.status, { 'Content-Type': 'application/json' }, Buffer.from(fault.body ?? ''));
        return;
      }
      if (res.destroyed) return;
    }
    try {
      const out = await this.#route(method, urlPath, req.headers, body);
      send(out.status, out.headers, out.body);
    } catch (e) {
      const status = e instanceof HttpError ? e.status : 500;
      send(status, { 'Content-Type': 'application/json' }, Buffer.from(JSON.stringify({ error: (e as Error).message })));
    }
  }

  async #route(method: string, p: string, headers: http.IncomingHttpHeaders, body: Buffer): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
    const json = (value: unknown): { status: number; headers: Record<string, string>; body: Buffer } => ({
      status: 200,
      headers: { 'Content-Type': 'application/json' },
      body: Buffer.from(JSON.stringify(value)),
    });
    const empty = (status: number): { status: number; headers: Record<string, string>; body: Buffer } => ({ status, headers: {}, body: Buffer.alloc(0) });
    if (method === 'GET' && p === '/v2/health/live') return empty(200);
    if (method === 'GET' && p === '/v2/health/ready') return empty(this.ready ? 200 : 400);
    if (method === 'GET' && p === '/v2') return json({ name: 'oip-double', version: '2.0.0', extensions: ['binary_tensor_data'] });
    const m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer)?$/.exec(p);
    if (m === null) throw new HttpError(404, `unknown path ${p}`);
    const name = decodeURIComponent(m[1] ?? '');
    const model = this.#models.get(name);
    if (model === undefined) throw new HttpError(400, `Request for unknown model: '${name}' is not found`);
    const version = m[2] !== undefined ? decodeURIComponent(m[2]) : model.versions[model.versions.length - 1];
    if (version === undefined || !model.versions.includes(version)) throw new HttpError(400, `Request for unknown model: '${name}' version ${version} is not found`);
    const action = m[3];
    if (action === '/ready') {
      if (method !== 'GET') throw new HttpError(405, `${method} not allowed`);
      return empty(this.ready ? 200 : 400);
    }
    if (action === undefined) {
      if (method !== 'GET') throw new HttpError(405, `${method} not allowed`);
      const meta = (t: TensorConfig): Record<string, unknown> => ({ name: t.name, datatype: TYPES[t.type]?.oip ?? t.type, shape: model.maxBatchSize > 0 ? [-1, ...t.dims] : [...t.dims] });
      return json({ name: model.name, versions: model.versions, platform: 'onnxruntime_onnx', inputs: model.inputs.map(meta), outputs: model.outputs.map(meta) });
    }
    if (method !== 'POST') throw new HttpError(405, `${method} not allowed`);
    return this.#infer(model, version, headers, body);
  }

  async #infer(model: ServedModel, version: string, headers: http.IncomingHttpHeaders, body: Buffer): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
    const raw = headers['inference-header-content-length'];
    let jsonLength = body.length;
    if (raw !== undefined) {
      const text = Array.isArray(raw) ? (raw[0] ?? '') : raw;
      if (!/^\d+$/.test(text.trim()) || Number(text) > body.length) throw new HttpError(400, `Inference-Header-Content-Length ${text} is invalid for a ${body.length}-byte body`);
      jsonLength = Number(text);
    }
    let request: unknown;
    try {
      request = JSON.parse(body.subarray(0, jsonLength).toString('utf8'));
    } catch (e) {
      throw new HttpError(400, `failed to parse the request JSON: ${(e as Error).message}`);
    }
    if (!isRecord(request) || !Array.isArray(request['inputs'])) throw new HttpError(400, 'the request has no "inputs" array');
    const params = isRecord(request['parameters']) ? request['parameters'] : {};
    const binaryDefault = params['binary_data_output'] === true;
    let offset = jsonLength;
    let batch: number | undefined;
    const feeds: Record<string, ort.Tensor> = {};
    for (const item of request['inputs'] as unknown[]) {
      if (!isRecord(item) || typeof item['name'] !== 'string') throw new HttpError(400, 'an input has no name');
      const name = item['name'];
      const cfg = model.inputs.find((t) => t.name === name);
      if (cfg === undefined) throw new HttpError(400, `unexpected inference input '${name}' for model '${model.name}'`);
      const type = TYPES[cfg.type];
      if (type === undefined) throw new HttpError(500, `type ${cfg.type} not served`);
      if (item['datatype'] !== type.oip) throw new HttpError(400, `inference input '${name}' data-type is '${String(item['datatype'])}', but model '${model.name}' expects '${type.oip}'`);
      const shape = item['shape'];
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) throw new HttpError(400, `input '${name}' has an invalid shape`);
      const dims = shape as number[];
      let inner = dims;
      if (model.maxBatchSize > 0) {
        const b = dims[0];
        if (b === undefined) throw new HttpError(400, `input '${name}' lacks the batch dimension`);
        if (b > model.maxBatchSize) throw new HttpError(400, `inference request batch-size must be <= ${model.maxBatchSize} for '${model.name}'`);
        if (batch !== undefined && b !== batch) throw new HttpError(400, `input '${name}' batch size ${b} differs from the other inputs' ${batch}`);
        batch = b;
        inner = dims.slice(1);
      }
      const matches = inner.length === cfg.dims.length && inner.every((d, i) => cfg.dims[i] === -1 || cfg.dims[i] === d);
      if (!matches) throw new HttpError(400, `unexpected shape for input '${name}' for model '${model.name}'. Expected [${(model.maxBatchSize > 0 ? [-1, ...cfg.dims] : cfg.dims).join(',')}], got [${dims.join(',')}]`);
      const count = dims.reduce((a, b) => a * b, 1);
      const inputParams = isRecord(item['parameters']) ? item['parameters'] : {};
      const size = inputParams['binary_data_size'];
      let bytes: Buffer | undefined;
      let values: unknown[] | undefined;
      if (size !== undefined) {
        if (typeof size !== 'number' || !Number.isSafeInteger(size)) throw new HttpError(400, `input '${name}' binary_data_size is invalid`);
        if (size !== count * type.size) throw new HttpError(400, `input '${name}': binary_data_size ${size} does not match shape [${dims.join(',')}] of ${type.oip} (${count * type.size} bytes)`);
        if (offset + size > body.length) throw new HttpError(400, `input '${name}': only ${body.length - offset} bytes of binary data remain, ${size} needed`);
        bytes = body.subarray(offset, offset + size);
        offset += size;
      } else if (item['data'] !== undefined) {
        values = [];
        flatten(item['data'], values);
        if (values.length !== count) throw new HttpError(400, `input '${name}' has ${values.length} values, shape [${dims.join(',')}] needs ${count}`);
      } else {
        throw new HttpError(400, `input '${name}' has neither data nor binary_data_size`);
      }
      const modelDims = cfg.reshape !== undefined ? (model.maxBatchSize > 0 ? [dims[0] as number, ...cfg.reshape] : [...cfg.reshape]) : dims;
      feeds[name] = makeTensor(type.ort, count, bytes, values, modelDims);
    }
    if (offset !== body.length) throw new HttpError(400, `${body.length - offset} unexpected bytes after the binary input data`);
    for (const t of model.inputs) if (feeds[t.name] === undefined) throw new HttpError(400, `expected ${model.inputs.length} inputs but got ${Object.keys(feeds).length} inputs for model '${model.name}' (missing '${t.name}')`);
    const requested: { name: string; binary: boolean }[] = [];
    if (Array.isArray(request['outputs'])) {
      for (const o of request['outputs'] as unknown[]) {
        if (!isRecord(o) || typeof o['name'] !== 'string') throw new HttpError(400, 'a requested output has no name');
        if (!model.outputs.some((t) => t.name === o['name'])) throw new HttpError(400, `unexpected inference output '${o['name']}' for model '${model.name}'`);
        const op = isRecord(o['parameters']) ? o['parameters'] : {};
        requested.push({ name: o['name'], binary: typeof op['binary_data'] === 'boolean' ? op['binary_data'] : binaryDefault });
      }
    } else {
      for (const t of model.outputs) requested.push({ name: t.name, binary: binaryDefault });
    }
    const session = model.sessions.get(version) as ort.InferenceSession;
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await session.run(feeds, requested.map((r) => r.name));
    } catch (e) {
      throw new HttpError(400, `onnxruntime failed: ${(e as Error).message}`);
    }
    const chunks: Buffer[] = [];
    const outputs = requested.map((r) => {
      const t = results[r.name] as ort.Tensor;
      const cfg = model.outputs.find((o) => o.name === r.name) as TensorConfig;
      const type = TYPES[cfg.type] as { oip: string; size: number };
      const shape = cfg.reshape !== undefined ? (model.maxBatchSize > 0 ? [t.dims[0] as number, ...cfg.dims] : [...cfg.dims]) : [...t.dims];
      const data = t.data as Float32Array | BigInt64Array;
      if (r.binary) {
        const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
        chunks.push(Buffer.from(bytes));
        return { name: r.name, shape, datatype: type.oip, parameters: { binary_data_size: bytes.length } };
      }
      return { name: r.name, shape, datatype: type.oip, data: Array.from(data as ArrayLike<number | bigint>, (v) => Number(v)) };
    });
    const response = {
      model_name: model.name,
      model_version: version,
      ...(typeof request['id'] === 'string' ? { id: request['id'] } : {}),
      outputs,
    };
    const header = Buffer.from(JSON.stringify(response));
    if (chunks.length === 0) return { status: 200, headers: { 'Content-Type': 'application/json' }, body: header };
    return {
      status: 200,
      headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(header.length) },
      body: Buffer.concat([header, ...chunks]),
    };
  }
}

/** An onnxruntime tensor from little-endian bytes or JSON values. */
function makeTensor(type: string, count: number, bytes: Buffer | undefined, values: unknown[] | undefined, dims: readonly number[]): ort.Tensor {
  const fill = <T extends Float32Array | BigInt64Array | Int32Array | Float64Array | Uint8Array>(arr: T, conv: (v: unknown) => number | bigint): T => {
    if (bytes !== undefined) new Uint8Array(arr.buffer).set(bytes);
    else (values ?? []).forEach((v, i) => ((arr as unknown as (number | bigint)[])[i] = conv(v)));
    return arr;
  };
  const num = (v: unknown): number => {
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (typeof v !== 'number') throw new HttpError(400, `JSON tensor value ${JSON.stringify(v)} is not a number`);
    return v;
  };
  switch (type) {
    case 'float32':
      return new ort.Tensor('float32', fill(new Float32Array(count), num), dims);
    case 'int64':
      return new ort.Tensor('int64', fill(new BigInt64Array(count), (v) => BigInt(Math.trunc(num(v)))), dims);
    case 'int32':
      return new ort.Tensor('int32', fill(new Int32Array(count), num), dims);
    case 'float64':
      return new ort.Tensor('float64', fill(new Float64Array(count), num), dims);
    case 'bool':
      return new ort.Tensor('bool', fill(new Uint8Array(count), num), dims);
    default:
      return new ort.Tensor('uint8', fill(new Uint8Array(count), num), dims);
  }
}
