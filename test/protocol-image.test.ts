import assert from 'node:assert/strict';
import sharp from 'sharp';
import { V4sError } from '../src/errors.js';
import { checkFrame, decodeFrame, encodeFrame, sniffEncoding } from '../src/sim-adapters/protocol/image.js';
import { StandInSimulator, frameDiff, gradientFrame, rejectionOf } from './ws-fixtures.js';

describe('protocol image codec (sharp): raw, PNG, JPEG ↔ Frame', () => {
  const frame = gradientFrame(64, 48, 1);

  it('raw: the bytes are the frame, and decoding copies them', async () => {
    const bytes = await encodeFrame(frame, 'raw');
    assert.equal(bytes, frame.data, 'raw encoding does not copy');
    const back = await decodeFrame(bytes, { width: 64, height: 48, encoding: 'raw' });
    assert.deepEqual(back.data, frame.data);
    assert.notEqual(back.data.buffer, bytes.buffer, 'the decoded frame owns its bytes');
  });

  it('PNG decodes exactly, including a noisy frame', async () => {
    const noisy = StandInSimulator.render(33, 17, { seed: 5, x: 1.3, z: -0.7, heading: 4, step: 9 });
    for (const f of [frame, noisy]) {
      const png = await encodeFrame(f, 'png');
      assert.equal(sniffEncoding(png), 'png');
      const back = await decodeFrame(png, { width: f.width, height: f.height, encoding: 'png' });
      assert.equal(frameDiff(back, f).max, 0);
    }
  });

  it('JPEG decodes within tolerance (quality 90, smooth image: mean |Δ| < 2, max |Δ| ≤ 16)', async () => {
    const jpg = await encodeFrame(frame, 'jpeg');
    assert.equal(sniffEncoding(jpg), 'jpeg');
    const back = await decodeFrame(jpg, { width: 64, height: 48, encoding: 'jpeg' });
    const d = frameDiff(back, frame);
    assert.ok(d.mean < 2, `mean ${d.mean}`);
    assert.ok(d.max <= 16, `max ${d.max}`);
    assert.ok(jpg.byteLength < frame.data.byteLength / 3, `jpeg ${jpg.byteLength} bytes vs raw ${frame.data.byteLength}`);
  });

  it('PNG from other encoders (grey, RGBA, 16-bit) decodes to RGB8', async () => {
    const grey = await sharp(Buffer.alloc(6 * 4, 200), { raw: { width: 6, height: 4, channels: 1 } }).png().toBuffer();
    const g = await decodeFrame(grey, { width: 6, height: 4, encoding: 'png' });
    assert.equal(g.data.length, 6 * 4 * 3);
    assert.ok(g.data.every((v) => v === 200));
    const rgba = await sharp(Buffer.from(frame.data), { raw: { width: 64, height: 48, channels: 3 } }).ensureAlpha(0.5).png().toBuffer();
    assert.equal(frameDiff(await decodeFrame(rgba, { width: 64, height: 48, encoding: 'png' }), frame).max, 0, 'alpha is dropped, colours kept');
    const deep = await sharp(Buffer.from(frame.data), { raw: { width: 64, height: 48, channels: 3 } }).png().toColourspace('rgb16').toBuffer();
    const d = await decodeFrame(deep, { width: 64, height: 48, encoding: 'png' });
    assert.ok(frameDiff(d, frame).max <= 1, '16-bit PNG comes back as 8-bit');
  });

  it('raw with the wrong byte count → E_PROTOCOL_BINARY naming the sizes', async () => {
    const e = await rejectionOf(decodeFrame(new Uint8Array(10), { width: 2, height: 2, encoding: 'raw' }, 'observation (id 4) image'));
    assert.equal(e.code, 'E_PROTOCOL_BINARY');
    assert.match(e.message, /observation \(id 4\) image \(raw 2×2, 10 bytes\).*has 12 bytes/);
  });

  it('bytes that are not the declared format → E_FRAME_DECODE (nothing else reaches the decoder)', async () => {
    const png = await encodeFrame(frame, 'png');
    const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>');
    for (const [bytes, encoding] of [
      [png, 'jpeg'],
      [svg, 'png'],
      [new Uint8Array([1, 2, 3]), 'jpeg'],
    ] as const) {
      const e = await rejectionOf(decodeFrame(bytes, { width: 64, height: 48, encoding }));
      assert.equal(e.code, 'E_FRAME_DECODE', e.message);
      assert.match(e.message, /bytes are not/);
    }
  });

  it('a truncated PNG or JPEG → E_FRAME_DECODE', async () => {
    for (const encoding of ['png', 'jpeg'] as const) {
      const bytes = await encodeFrame(frame, encoding);
      const e = await rejectionOf(decodeFrame(bytes.subarray(0, Math.floor(bytes.byteLength / 2)), { width: 64, height: 48, encoding }));
      assert.equal(e.code, 'E_FRAME_DECODE', `${encoding}: ${e.message}`);
    }
  });

  it('an image of another size than the header says → E_FRAME_SIZE', async () => {
    const png = await encodeFrame(frame, 'png');
    const smaller = await rejectionOf(decodeFrame(png, { width: 64, height: 64, encoding: 'png' }));
    assert.equal(smaller.code, 'E_FRAME_SIZE');
    assert.match(smaller.message, /decodes to 64×48, header says 64×64/);
    const larger = await rejectionOf(decodeFrame(png, { width: 32, height: 48, encoding: 'png' }));
    assert.equal(larger.code, 'E_FRAME_SIZE', 'more pixels than declared are never decoded');
    assert.match(larger.message, /more pixels than the declared 32×48/);
  });

  it('checkFrame and encodeFrame refuse a frame whose data does not match its size', async () => {
    const bad = { width: 4, height: 4, data: new Uint8Array(47) };
    assert.throws(() => checkFrame(bad, 'goal'), (e: unknown) => e instanceof V4sError && e.code === 'E_FRAME_SIZE' && /goal: 4×4 RGB needs 48 bytes, data has 47/.test(e.message));
    assert.equal((await rejectionOf(encodeFrame(bad, 'png'))).code, 'E_FRAME_SIZE');
  });
});
