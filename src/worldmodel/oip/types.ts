/**
 * Types of the Open Inference Protocol, version 2 (the KServe v2 / Triton HTTP/REST API), as published in
 * kserve `docs/predict-api/v2/required_api.md` and Triton `docs/protocol/extension_binary_data.md`:
 * the JSON objects of the health, metadata and inference endpoints, and the tensor data types with their sizes.
 * Only what this SDK sends and reads is typed; servers may add fields, which are ignored.
 */

/** Tensor data types of the protocol (section "Tensor Data Types"). */
export type OipDatatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BYTES';

/** The fixed-size data types, which the binary extension carries in their native size, little-endian. */
export type OipNumericDatatype = Exclude<OipDatatype, 'BYTES'>;

/** Bytes per element of each fixed-size data type. */
export const OIP_DATATYPE_SIZE: Readonly<Record<OipNumericDatatype, number>> = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
};

/** Every data type name the protocol defines. */
export const OIP_DATATYPES: readonly OipDatatype[] = [...(Object.keys(OIP_DATATYPE_SIZE) as OipNumericDatatype[]), 'BYTES'];

/** The typed array that holds each fixed-size data type (BOOL as bytes 0/1, FP16 as its raw 16-bit words). */
export type OipTypedArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigUint64Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

/** A tensor on the wire: name, data type, full shape (batch included) and row-major data. */
export interface OipTensor {
  readonly name: string;
  readonly datatype: OipNumericDatatype;
  readonly shape: readonly number[];
  readonly data: OipTypedArray;
}

/** `$parameters`: name → string, number or boolean. */
export type OipParameters = Readonly<Record<string, string | number | boolean>>;

/** `$metadata_tensor`: variable-size dimensions are -1. */
export interface OipMetadataTensor {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly number[];
}

/** `$metadata_model_response`. */
export interface OipModelMetadata {
  readonly name: string;
  readonly versions?: readonly string[];
  readonly platform: string;
  readonly inputs: readonly OipMetadataTensor[];
  readonly outputs: readonly OipMetadataTensor[];
}

/** `$metadata_server_response`. */
export interface OipServerMetadata {
  readonly name: string;
  readonly version: string;
  readonly extensions: readonly string[];
}

/** `$request_input` as this SDK sends it: always binary (`parameters.binary_data_size`), never `data`. */
export interface OipRequestInputJson {
  readonly name: string;
  readonly shape: readonly number[];
  readonly datatype: OipNumericDatatype;
  readonly parameters: { readonly binary_data_size: number };
}

/** `$request_output` as this SDK sends it: `parameters.binary_data` true, so outputs come back binary. */
export interface OipRequestOutputJson {
  readonly name: string;
  readonly parameters: { readonly binary_data: boolean };
}

/** `$inference_request` as this SDK sends it. */
export interface OipInferenceRequestJson {
  readonly id?: string;
  readonly inputs: readonly OipRequestInputJson[];
  readonly outputs: readonly OipRequestOutputJson[];
}

/** `$response_output`: binary (`parameters.binary_data_size`) or JSON (`data`, flat or nested). */
export interface OipResponseOutputJson {
  readonly name: string;
  readonly shape: readonly number[];
  readonly datatype: string;
  readonly parameters?: OipParameters;
  readonly data?: unknown;
}

/** `$inference_response`. */
export interface OipInferenceResponseJson {
  readonly model_name?: string;
  readonly model_version?: string;
  readonly id?: string;
  readonly parameters?: OipParameters;
  readonly outputs: readonly OipResponseOutputJson[];
}

/** The header that gives the length of the JSON object when binary tensor data follows it. */
export const INFERENCE_HEADER_CONTENT_LENGTH = 'Inference-Header-Content-Length';
