/**
 * The Open Inference Protocol v2 codec (src/worldmodel/oip/codec.ts) against byte-exact examples written from
 * the published specification: the request and response of Triton's `docs/protocol/extension_binary_data.md`
 * (binary tensor data extension) and the JSON examples of kserve `docs/predict-api/v2/required_api.md`.
 */
import assert from 'node:assert/strict';
import { isV4sError, type V4sErrorCode } from '../src/errors.js';
import { decodeInferResponse, encodeInferRequest, tensorBytes, typedFromBytes } from '../src/worldmodel/oip/codec.js';
import { OIP_DATATYPE_SIZE, type OipNumericDatatype, type OipTensor } from '../src/worldmodel/oip/types.js';

function throwsCode(fn: () => unknown, code: V4sErrorCode, ...parts: string[]): void {
  try {
    fn();
  } catch (e) {
    assert.ok(isV4sError(e, code), `expected ${code}, got ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `message "${e.message}" lacks "${p}"`);
    return;
  }
  assert.fail(`expected ${code}`);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('OIP v2 codec: requests (binary tensor data extension)', () => {
  it("encodes the specification's example request byte for byte: JSON header, then 16 + 3 bytes of tensor data", () => {
    // extension_binary_data.md: input0 UINT32 [2,2] and input1 BOOL [3] as binary data, output0 requested binary.
    const inputs: OipTensor[] = [
      { name: 'input0', datatype: 'UINT32', shape: [2, 2], data: Uint32Array.from([1, 2, 3, 4]) },
      { name: 'input1', datatype: 'BOOL', shape: [3], data: Uint8Array.from([1, 0, 1]) },
    ];
    const enc = encodeInferRequest(inputs, ['output0']);
    const expectedHeader =
      '{"inputs":[' +
      '{"name":"input0","shape":[2,2],"datatype":"UINT32","parameters":{"binary_data_size":16}},' +
      '{"name":"input1","shape":[3],"datatype":"BOOL","parameters":{"binary_data_size":3}}],' +
      '"outputs":[{"name":"output0","parameters":{"binary_data":true}}]}';
    assert.equal(enc.header.toString('utf8'), expectedHeader);
    assert.equal(enc.headerLength, Buffer.byteLength(expectedHeader));
    // "the total size of the binary data is 19 bytes and that size must be reflected in the content length headers"
    assert.equal(enc.contentLength, enc.headerLength + 19);
    const body = Buffer.concat([enc.header, ...enc.chunks]);
    assert.equal(body.length, enc.contentLength);
    // Little-endian, row-major, no padding: UINT32 1,2,3,4 then BOOL true,false,true as single bytes.
    assert.equal(hex(body.subarray(enc.headerLength)), '01000000' + '02000000' + '03000000' + '04000000' + '01' + '00' + '01');
  });

  it('puts the optional id first and writes FP32/INT64 as IEEE-754 / two’s-complement little-endian bytes', () => {
    const enc = encodeInferRequest(
      [
        { name: 'x', datatype: 'FP32', shape: [2], data: Float32Array.from([1.5, -2]) },
        { name: 'a', datatype: 'INT64', shape: [1, 2], data: BigInt64Array.from([3n, -1n]) },
      ],
      ['y', 'z'],
      { id: '7' },
    );
    assert.equal(
      enc.header.toString(),
      '{"id":"7","inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}},' +
        '{"name":"a","shape":[1,2],"datatype":"INT64","parameters":{"binary_data_size":16}}],' +
        '"outputs":[{"name":"y","parameters":{"binary_data":true}},{"name":"z","parameters":{"binary_data":true}}]}',
    );
    assert.equal(hex(Buffer.concat([...enc.chunks])), '0000c03f' + '000000c0' + '0300000000000000' + 'ffffffffffffffff');
  });

  it('sends typed-array views without copying (a subarray keeps its offset)', () => {
    const big = Float32Array.from([9, 1, 2, 9]);
    const view = big.subarray(1, 3);
    const enc = encodeInferRequest([{ name: 'x', datatype: 'FP32', shape: [2], data: view }], []);
    assert.equal(enc.chunks[0]?.buffer, big.buffer);
    assert.equal(hex(enc.chunks[0] ?? new Uint8Array()), '0000803f' + '00000040');
  });

  it('refuses data whose size does not match its shape (E_MODEL_INPUT naming the tensor)', () => {
    throwsCode(() => encodeInferRequest([{ name: 'x_t', datatype: 'FP32', shape: [2, 3], data: new Float32Array(5) }], []), 'E_MODEL_INPUT', 'x_t', '20 bytes', '24 bytes');
  });
});

describe('OIP v2 codec: responses', () => {
  it("decodes the specification's binary response example: FP32 [3,2], 24 bytes after the JSON", () => {
    // extension_binary_data.md response, JSON exactly as printed there (whitespace and all).
    const json = '{\n  "outputs" : [\n    {\n      "name" : "output0",\n      "shape" : [ 3, 2 ],\n      "datatype"  : "FP32",\n      "parameters" : {\n        "binary_data_size" : 24\n      }\n    }\n  ]\n}\n';
    const values = [1.0, 1.1, 2.0, 2.1, 3.0, 3.1];
    const bytes = Buffer.alloc(24);
    values.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
    assert.equal(hex(bytes.subarray(4, 8)), 'cdcc8c3f'); // 1.1f
    const body = Buffer.concat([Buffer.from(json), bytes]);
    const res = decodeInferResponse(body, Buffer.byteLength(json));
    assert.equal(res.outputs.length, 1);
    const out = res.outputs[0] as OipTensor;
    assert.equal(out.name, 'output0');
    assert.equal(out.datatype, 'FP32');
    assert.deepEqual(out.shape, [3, 2]);
    assert.ok(out.data instanceof Float32Array);
    assert.deepEqual([...out.data], values.map((v) => Math.fround(v)));
  });

  it("decodes the core specification's JSON response (no Inference-Header-Content-Length: the body is JSON), flat and nested data", () => {
    // required_api.md "Inference Request Examples" (its printed JSON lacks a comma after "id"; fixed here).
    const flat = '{\n  "id" : "42",\n  "outputs" : [\n    {\n      "name" : "output0",\n      "shape" : [ 3, 2 ],\n      "datatype"  : "FP32",\n      "data" : [ 1.0, 1.1, 2.0, 2.1, 3.0, 3.1 ]\n    }\n  ]\n}';
    const a = decodeInferResponse(Buffer.from(flat), undefined);
    assert.equal(a.id, '42');
    assert.deepEqual([...(a.outputs[0]?.data as Float32Array)], [1.0, 1.1, 2.0, 2.1, 3.0, 3.1].map((v) => Math.fround(v)));
    // "Tensor Data": [[1, 2], [4, 5]] in its natural format equals the flattened [1, 2, 4, 5].
    const nested = '{"model_name":"m","model_version":"3","outputs":[{"name":"o","shape":[2,2],"datatype":"INT64","data":[[1,2],[4,5]]}]}';
    const b = decodeInferResponse(Buffer.from(nested), undefined);
    assert.equal(b.modelName, 'm');
    assert.equal(b.modelVersion, '3');
    assert.deepEqual([...(b.outputs[0]?.data as BigInt64Array)], [1n, 2n, 4n, 5n]);
  });

  it('takes binary outputs in the order of "outputs", mixed with JSON ones', () => {
    const json = JSON.stringify({
      outputs: [
        { name: 'a', shape: [2], datatype: 'INT64', parameters: { binary_data_size: 16 } },
        { name: 'b', shape: [1], datatype: 'BOOL', data: [true] },
        { name: 'c', shape: [1, 1], datatype: 'FP64', parameters: { binary_data_size: 8 } },
      ],
    });
    const tail = Buffer.alloc(24);
    tail.writeBigInt64LE(-5n, 0);
    tail.writeBigInt64LE(6n, 8);
    tail.writeDoubleLE(0.1, 16);
    const res = decodeInferResponse(Buffer.concat([Buffer.from(json), tail]), Buffer.byteLength(json));
    assert.deepEqual([...(res.outputs[0]?.data as BigInt64Array)], [-5n, 6n]);
    assert.deepEqual([...(res.outputs[1]?.data as Uint8Array)], [1]);
    assert.deepEqual([...(res.outputs[2]?.data as Float64Array)], [0.1]);
  });

  it('round-trips every fixed-size data type through its little-endian bytes (BOOL as 1 byte, FP16 as raw words)', () => {
    const cases: [OipNumericDatatype, ArrayLike<number | bigint>][] = [
      ['BOOL', [1, 0]],
      ['UINT8', [0, 255]],
      ['INT8', [-128, 127]],
      ['UINT16', [1, 65535]],
      ['INT16', [-32768, 2]],
      ['FP16', [0x3c00, 0xc000]],
      ['UINT32', [4294967295, 3]],
      ['INT32', [-2147483648, 5]],
      ['UINT64', [18446744073709551615n, 1n]],
      ['INT64', [-9223372036854775808n, 9n]],
      ['FP32', [0.25, -1e30]],
      ['FP64', [Math.PI, -0]],
    ];
    for (const [dt, vals] of cases) {
      const bytes = Buffer.alloc(2 * OIP_DATATYPE_SIZE[dt]);
      const typed = typedFromBytes(dt, bytes);
      for (let i = 0; i < 2; i++) (typed as unknown as (number | bigint)[])[i] = vals[i] as number | bigint;
      const back = typedFromBytes(dt, tensorBytes(typed));
      assert.deepEqual([...(back as unknown as ArrayLike<number | bigint> & Iterable<number | bigint>)], [...(typed as unknown as Iterable<number | bigint>)], dt);
      assert.equal(tensorBytes(typed).length, 2 * OIP_DATATYPE_SIZE[dt], dt);
    }
    // The byte order is little-endian whatever the host: 1 as UINT16 is 01 00.
    assert.equal(hex(tensorBytes(Uint16Array.from([1]))), '0100');
  });

  it('names what is wrong in a malformed response (E_REMOTE)', () => {
    const j = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
    throwsCode(() => decodeInferResponse(Buffer.from('{"outputs":[]}'), 99, 'POST /x'), 'E_REMOTE', 'POST /x', 'Inference-Header-Content-Length 99');
    throwsCode(() => decodeInferResponse(Buffer.from('not json'), undefined), 'E_REMOTE', 'not valid JSON');
    throwsCode(() => decodeInferResponse(j({ nope: 1 }), undefined), 'E_REMOTE', '"outputs"');
    throwsCode(() => decodeInferResponse(j({ outputs: [{ name: 'p', shape: [2], datatype: 'FP32', parameters: { binary_data_size: 4 } }] }), undefined), 'E_REMOTE', '"p"', 'binary_data_size 4', '8 bytes');
    const h = j({ outputs: [{ name: 'p', shape: [2], datatype: 'FP32', parameters: { binary_data_size: 8 } }] });
    throwsCode(() => decodeInferResponse(Buffer.concat([h, Buffer.alloc(4)]), h.length), 'E_REMOTE', '"p"', 'needs 8 bytes');
    throwsCode(() => decodeInferResponse(Buffer.concat([h, Buffer.alloc(12)]), h.length), 'E_REMOTE', '4 bytes after the last binary output');
    throwsCode(() => decodeInferResponse(j({ outputs: [{ name: 's', shape: [1], datatype: 'BYTES', data: ['x'] }] }), undefined), 'E_REMOTE', '"s"', 'BYTES');
    throwsCode(() => decodeInferResponse(j({ outputs: [{ name: 'q', shape: [3], datatype: 'FP32', data: [1, 2] }] }), undefined), 'E_REMOTE', '"q"', '2 JSON values', 'needs 3');
    throwsCode(() => decodeInferResponse(j({ outputs: [{ name: 'q', shape: [1], datatype: 'INT64', data: [1.5] }] }), undefined), 'E_REMOTE', '"q"', 'INT64');
    throwsCode(() => decodeInferResponse(j({ outputs: [{ name: 'q', shape: [-1], datatype: 'FP32', data: [] }] }), undefined), 'E_REMOTE', 'shape');
    throwsCode(() => decodeInferResponse(j({ outputs: [{ name: 'q', shape: [1], datatype: 'FP32' }] }), undefined), 'E_REMOTE', 'neither binary_data_size nor data');
  });
});
