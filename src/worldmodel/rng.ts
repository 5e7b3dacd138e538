/**
 * Seeded random numbers for the samplers: xoshiro128** seeded through splitmix32, Gaussian by Box–Muller.
 * Never `Math.random`: the same (seed, stream) gives the same numbers on every machine.
 * Usage: `const rng = createRng(seed, candidateIndex); rng.fillNormal(buf, 0, buf.length)`.
 */

/** A deterministic generator of uniform and standard-normal numbers. */
export interface Rng {
  /** Uniform in [0, 1), 32 bits of resolution. */
  nextUniform(): number;
  /** Standard normal N(0, 1). */
  nextNormal(): number;
  /** Fill `out[offset .. offset+length)` with N(0, 1) samples. */
  fillNormal(out: Float32Array, offset: number, length: number): void;
}

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

const TWO_PI = 2 * Math.PI;
const INV_2_32 = 1 / 4294967296;

class Xoshiro128 implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare = 0;
  private hasSpare = false;

  constructor(seed: number, stream: number) {
    // Mix both 32-bit halves of the seed and the stream index into the splitmix state.
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    const st = { s: lo };
    st.s = (splitmix32(st) ^ hi) | 0;
    st.s = (splitmix32(st) ^ Math.imul(stream + 1, 0x27d4eb2d)) | 0;
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  private nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  nextUniform(): number {
    return this.nextU32() * INV_2_32;
  }

  nextNormal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    // u1 in (0, 1] so that log(u1) is finite.
    const u1 = (this.nextU32() + 1) * INV_2_32;
    const u2 = this.nextU32() * INV_2_32;
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(TWO_PI * u2);
    this.hasSpare = true;
    return r * Math.cos(TWO_PI * u2);
  }

  fillNormal(out: Float32Array, offset: number, length: number): void {
    const end = offset + length;
    for (let i = offset; i < end; i++) out[i] = this.nextNormal();
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * A generator for `(seed, stream)`. Streams are independent: the samplers use one stream per candidate, so a
 * candidate's noise does not depend on how many other candidates share its batch.
 */
export function createRng(seed: number, stream = 0): Rng {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
  if (!Number.isSafeInteger(stream) || stream < 0) throw new RangeError(`stream must be a non-negative integer, got ${stream}`);
  return new Xoshiro128(seed, stream);
}
