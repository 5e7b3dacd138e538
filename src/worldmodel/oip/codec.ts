/**
 * Encoding of inference requests and decoding of inference responses of the Open Inference Protocol v2 over
 * HTTP/REST with the binary tensor data extension:
 *
 * - the body is the JSON `$inference_request` followed by each input's bytes, in the order of `inputs`;
 *   each input says `"parameters": {"binary_data_size": <bytes>}`; each requested output says
 *   `"parameters": {"binary_data": true}`; the `Inference-Header-Content-Length` header gives the JSON's
 *   length and `Content-Length` the whole body's;
 * - tensor bytes are little-endian, row-major, without stride or padding, each element in its native size.
 *
 * A response's outputs may be binary (`binary_data_size`, bytes after the JSON in the order of `outputs`) or
 * JSON (`data`, flat or nested); both decode. Errors are E_REMOTE naming the tensor and what is wrong.
 * Usage: `const body = encodeInferRequest(inputs, ['pred'], { id: '1' }); … decodeInferResponse(bytes, headerLength)`.
 */
import { endianness } from 'node:os';
import { V4sError } from '../../errors.js';
import {
  OIP_DATATYPE_SIZE,
  type OipDatatype,
  type OipInferenceRequestJson,
  type OipInferenceResponseJson,
  type OipNumericDatatype,
  type OipResponseOutputJson,
  type OipTensor,
  type OipTypedArray,
} from './types.js';

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** An encoded request body: the JSON header and the tensors' bytes, to be written in this order. */
export interface EncodedInferRequest {
  /** The JSON object, UTF-8. */
  readonly header: Buffer;
  /** One chunk per input, in the order of the JSON's `inputs` (views over the tensors' buffers when possible). */
  readonly chunks: readonly Buffer[];
  /** The value of `Inference-Header-Content-Length`: `header.length`. */
  readonly headerLength: number;
  /** The value of `Content-Length`: the header plus every chunk. */
  readonly contentLength: number;
}

/** A decoded inference response. */
export interface DecodedInferResponse {
  readonly id?: string;
  readonly modelName?: string;
  readonly modelVersion?: string;
  readonly outputs: readonly OipTensor[];
}

/** The element count of a shape (1 for a scalar). */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The protocol data type a typed array carries by default (Uint8Array → UINT8, Uint16Array → UINT16). */
export function datatypeOf(data: OipTypedArray): OipNumericDatatype {
  if (data instanceof Float32Array) return 'FP32';
  if (data instanceof BigInt64Array) return 'INT64';
  if (data instanceof Float64Array) return 'FP64';
  if (data instanceof Int32Array) return 'INT32';
  if (data instanceof Uint32Array) return 'UINT32';
  if (data instanceof BigUint64Array) return 'UINT64';
  if (data instanceof Int16Array) return 'INT16';
  if (data instanceof Uint16Array) return 'UINT16';
  if (data instanceof Int8Array) return 'INT8';
  return 'UINT8';
}

/** Whether `name` is a data type of the protocol with a fixed size (BYTES is not). */
export function isNumericDatatype(name: string): name is OipNumericDatatype {
  return Object.prototype.hasOwnProperty.call(OIP_DATATYPE_SIZE, name);
}

/** A zeroed typed array for `count` elements of `datatype`. */
export function allocateTyped(datatype: OipNumericDatatype, count: number): OipTypedArray {
  switch (datatype) {
    case 'BOOL':
    case 'UINT8':
      return new Uint8Array(count);
    case 'INT8':
      return new Int8Array(count);
    case 'UINT16':
    case 'FP16':
      return new Uint16Array(count);
    case 'INT16':
      return new Int16Array(count);
    case 'UINT32':
      return new Uint32Array(count);
    case 'INT32':
      return new Int32Array(count);
    case 'UINT64':
      return new BigUint64Array(count);
    case 'INT64':
      return new BigInt64Array(count);
    case 'FP32':
      return new Float32Array(count);
    case 'FP64':
      return new Float64Array(count);
  }
}

/** The little-endian bytes of a typed array: a view without copying on little-endian hosts. */
export function tensorBytes(data: OipTypedArray): Buffer {
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN_HOST || data.BYTES_PER_ELEMENT === 1) return view;
  const copy = Buffer.from(view);
  if (data.BYTES_PER_ELEMENT === 2) copy.swap16();
  else if (data.BYTES_PER_ELEMENT === 4) copy.swap32();
  else copy.swap64();
  return copy;
}

/** Typed data of `datatype` from little-endian bytes (always a copy, so alignment never matters). */
export function typedFromBytes(datatype: OipNumericDatatype, bytes: Uint8Array): OipTypedArray {
  const size = OIP_DATATYPE_SIZE[datatype];
  const out = allocateTyped(datatype, bytes.length / size);
  const target = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  target.set(bytes);
  if (!LITTLE_ENDIAN_HOST && size > 1) {
    const b = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    if (size === 2) b.swap16();
    else if (size === 4) b.swap32();
    else b.swap64();
  }
  return out;
}

/**
 * Encode an inference request with every input as binary data and every output requested as binary data.
 * The JSON is compact, with keys in the order of the specification's schemas.
 */
export function encodeInferRequest(inputs: readonly OipTensor[], outputs: readonly string[], options: { readonly id?: string } = {}): EncodedInferRequest {
  const chunks: Buffer[] = [];
  const json: OipInferenceRequestJson = {
    ...(options.id !== undefined ? { id: options.id } : {}),
    inputs: inputs.map((t) => {
      const expected = shapeSize(t.shape) * OIP_DATATYPE_SIZE[t.datatype];
      if (t.data.byteLength !== expected) {
        throw new V4sError('E_MODEL_INPUT', `input "${t.name}": ${t.data.byteLength} bytes of data for shape [${t.shape.join(',')}] ${t.datatype} (${expected} bytes)`, { tensor: t.name });
      }
      chunks.push(tensorBytes(t.data));
      return { name: t.name, shape: [...t.shape], datatype: t.datatype, parameters: { binary_data_size: t.data.byteLength } };
    }),
    outputs: outputs.map((name) => ({ name, parameters: { binary_data: true } })),
  };
  const header = Buffer.from(JSON.stringify(json), 'utf8');
  const contentLength = chunks.reduce((a, c) => a + c.length, header.length);
  return { header, chunks, headerLength: header.length, contentLength };
}

function malformed(source: string, message: string, details?: Record<string, unknown>): V4sError {
  return new V4sError('E_REMOTE', `${source}: malformed inference response: ${message}`, details);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function flatten(data: unknown, out: unknown[]): void {
  if (Array.isArray(data)) for (const d of data) flatten(d, out);
  else out.push(data);
}

/** Tensor data given as JSON (flat or nested, row-major) into a typed array; booleans are 1/0. */
function jsonToTyped(datatype: OipNumericDatatype, data: unknown, count: number, name: string, source: string): OipTypedArray {
  const flat: unknown[] = [];
  flatten(data, flat);
  if (flat.length !== count) throw malformed(source, `output "${name}" has ${flat.length} JSON values, its shape needs ${count}`, { tensor: name });
  const out = allocateTyped(datatype, count);
  const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
  for (let i = 0; i < count; i++) {
    const v = flat[i];
    const num = typeof v === 'boolean' ? (v ? 1 : 0) : v;
    if (typeof num !== 'number' || (big && !Number.isInteger(num))) throw malformed(source, `output "${name}" value ${i} is ${JSON.stringify(v)}, not a ${datatype} number`, { tensor: name });
    if (out instanceof BigInt64Array || out instanceof BigUint64Array) out[i] = BigInt(num);
    else out[i] = num;
  }
  return out;
}

/**
 * Decode an inference response body. `headerLength` is the `Inference-Header-Content-Length` value
 * (undefined when the server sent none: the whole body is JSON). `source` names the request in errors.
 */
export function decodeInferResponse(body: Buffer, headerLength: number | undefined, source = 'inference response'): DecodedInferResponse {
  const jsonLength = headerLength ?? body.length;
  if (!Number.isInteger(jsonLength) || jsonLength < 0 || jsonLength > body.length) {
    throw malformed(source, `Inference-Header-Content-Length ${headerLength} does not fit the ${body.length}-byte body`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.subarray(0, jsonLength).toString('utf8'));
  } catch (e) {
    throw malformed(source, `the JSON header is not valid JSON (${(e as Error).message})`);
  }
  if (!isRecord(parsed) || !Array.isArray(parsed['outputs'])) throw malformed(source, 'no "outputs" array');
  const json = parsed as unknown as OipInferenceResponseJson;
  let offset = jsonLength;
  const outputs: OipTensor[] = [];
  json.outputs.forEach((o: OipResponseOutputJson, i) => {
    if (!isRecord(o) || typeof o.name !== 'string') throw malformed(source, `outputs[${i}] has no name`);
    const name = o.name;
    const dt: OipDatatype | string = o.datatype;
    if (typeof dt !== 'string' || !isNumericDatatype(dt)) throw malformed(source, `output "${name}" has datatype ${JSON.stringify(dt)} (this client reads fixed-size types, not BYTES)`, { tensor: name });
    if (!Array.isArray(o.shape) || !o.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw malformed(source, `output "${name}" has shape ${JSON.stringify(o.shape)}`, { tensor: name });
    const count = shapeSize(o.shape);
    const size = o.parameters?.['binary_data_size'];
    let data: OipTypedArray;
    if (size !== undefined) {
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw malformed(source, `output "${name}" has binary_data_size ${JSON.stringify(size)}`, { tensor: name });
      if (size !== count * OIP_DATATYPE_SIZE[dt]) throw malformed(source, `output "${name}": binary_data_size ${size} but shape [${o.shape.join(',')}] ${dt} needs ${count * OIP_DATATYPE_SIZE[dt]} bytes`, { tensor: name });
      if (offset + size > body.length) throw malformed(source, `output "${name}" needs ${size} bytes at offset ${offset}, the body has ${body.length}`, { tensor: name });
      data = typedFromBytes(dt, body.subarray(offset, offset + size));
      offset += size;
    } else if (o.data !== undefined) {
      data = jsonToTyped(dt, o.data, count, name, source);
    } else {
      throw malformed(source, `output "${name}" has neither binary_data_size nor data`, { tensor: name });
    }
    outputs.push({ name, datatype: dt, shape: [...o.shape], data });
  });
  if (offset !== body.length) throw malformed(source, `${body.length - offset} bytes after the last binary output`);
  return {
    ...(typeof json.id === 'string' ? { id: json.id } : {}),
    ...(typeof json.model_name === 'string' ? { modelName: json.model_name } : {}),
    ...(typeof json.model_version === 'string' ? { modelVersion: json.model_version } : {}),
    outputs,
  };
}
