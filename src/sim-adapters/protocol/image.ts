/**
 * Image bytes on the wire ↔ `Frame` (RGB8, row-major, no padding), for the three encodings of v4s.sim.v1:
 * `raw`, `png` and `jpeg`. PNG and JPEG go through sharp (libvips). Decoding checks the bytes really are the
 * declared format (magic bytes: nothing else, SVG say, is handed to the decoder), caps the decoded pixels at the
 * declared size, and checks the decoded size against the header.
 *
 * Usage:
 *   const bytes = await encodeFrame(frame, 'png');
 *   const frame = await decodeFrame(bytes, { width: 64, height: 64, encoding: 'png' });
 */
import sharp, { type OutputInfo } from 'sharp';
import { V4sError } from '../../errors.js';
import type { Frame } from '../../types.js';
import type { ImageEncoding } from '../environment.js';

/** Options of `encodeFrame`. */
export interface ImageEncodeOptions {
  /** JPEG quality 1…100 (default 90). */
  readonly jpegQuality?: number;
  /** PNG zlib level 0…9 (default 6; 1 is much faster for a few % more bytes). */
  readonly pngCompressionLevel?: number;
}

/** The size and encoding a header declares for some image bytes. */
export interface ImageShape {
  readonly width: number;
  readonly height: number;
  readonly encoding: ImageEncoding;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG_MAGIC = [0xff, 0xd8, 0xff];

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  if (bytes.byteLength < magic.length) return false;
  return magic.every((b, i) => bytes[i] === b);
}

/** The encoding the bytes' magic number says (`png`, `jpeg`), or undefined. */
export function sniffEncoding(bytes: Uint8Array): 'png' | 'jpeg' | undefined {
  if (startsWith(bytes, PNG_MAGIC)) return 'png';
  if (startsWith(bytes, JPEG_MAGIC)) return 'jpeg';
  return undefined;
}

/** Throws E_FRAME_SIZE unless `frame.data` holds exactly width × height × 3 bytes of a valid size. */
export function checkFrame(frame: Frame, what = 'frame'): void {
  const { width, height, data } = frame;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new V4sError('E_FRAME_SIZE', `${what}: invalid size ${String(width)}×${String(height)}`);
  }
  if (!(data instanceof Uint8Array) || data.byteLength !== width * height * 3) {
    const n = data instanceof Uint8Array ? data.byteLength : 'no';
    throw new V4sError('E_FRAME_SIZE', `${what}: ${width}×${height} RGB needs ${width * height * 3} bytes, data has ${n}`);
  }
}

/**
 * Encodes a frame for the wire. `raw` returns `frame.data` itself (no copy). Throws E_FRAME_SIZE for a frame
 * whose data does not match its size.
 */
export async function encodeFrame(frame: Frame, encoding: ImageEncoding, options: ImageEncodeOptions = {}): Promise<Uint8Array> {
  checkFrame(frame);
  if (encoding === 'raw') return frame.data;
  const input = sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } });
  if (encoding === 'png') {
    return input.png({ compressionLevel: options.pngCompressionLevel ?? 6, adaptiveFiltering: false }).toBuffer();
  }
  // 4:4:4 keeps colour edges at the small sizes a world model sees (64×64), for a few % more bytes.
  return input.jpeg({ quality: options.jpegQuality ?? 90, chromaSubsampling: '4:4:4' }).toBuffer();
}

/**
 * Decodes image bytes into a frame, checked against the size the header declared.
 * Throws V4sError: E_PROTOCOL_BINARY (raw byte count wrong), E_FRAME_DECODE (bytes are not a valid image of
 * the declared encoding), E_FRAME_SIZE (the image decodes to another size than declared). `what` names the
 * image in messages, e.g. "observation (id 3) image".
 */
export async function decodeFrame(bytes: Uint8Array, shape: ImageShape, what = 'image'): Promise<Frame> {
  const { width, height, encoding } = shape;
  const label = `${what} (${encoding} ${width}×${height}, ${bytes.byteLength} bytes)`;
  if (encoding === 'raw') {
    if (bytes.byteLength !== width * height * 3) {
      throw new V4sError('E_PROTOCOL_BINARY', `${label}: a raw RGB image of that size has ${width * height * 3} bytes`);
    }
    // A copy, so the frame does not pin the whole message buffer (frames live long in the context buffer).
    return { width, height, data: new Uint8Array(bytes) };
  }
  const sniffed = sniffEncoding(bytes);
  if (sniffed !== encoding) {
    throw new V4sError('E_FRAME_DECODE', `${label}: bytes are not ${encoding.toUpperCase()} (found ${sniffed ?? 'unknown'} magic)`);
  }
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await sharp(bytes, { limitInputPixels: width * height, sequentialRead: true })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    if (/pixel limit/i.test(reason)) {
      throw new V4sError('E_FRAME_SIZE', `${label}: decodes to more pixels than the declared ${width}×${height}`, undefined, { cause: e });
    }
    throw new V4sError('E_FRAME_DECODE', `${label}: ${reason}`, undefined, { cause: e });
  }
  const { info, data } = out;
  if (info.width !== width || info.height !== height) {
    throw new V4sError('E_FRAME_SIZE', `${label}: decodes to ${info.width}×${info.height}, header says ${width}×${height}`);
  }
  if (info.channels !== 3 || data.byteLength !== width * height * 3) {
    throw new V4sError('E_FRAME_DECODE', `${label}: decodes to ${info.channels} channels, expected RGB`);
  }
  return { width, height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}
