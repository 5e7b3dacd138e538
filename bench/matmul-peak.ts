/**
 * This machine's measured dense fp32 matmul rate through onnxruntime-node: a one-node MatMul ONNX model (built
 * here, byte by byte, so the bench needs no Python) run at square sizes 256…2048 with the SDK's thread count,
 * and at the shapes the shipped model's step actually multiplies ([B·T, d] × [d, 4d]). The largest square rate
 * is "the peak" of bench section 5; PyTorch's torch.mm rate comes from training/bench_torch.py --matmul.
 * Run: npx tsx bench/matmul-peak.ts [--threads 2]
 */
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';

/** One measured shape. */
export interface MatmulRow {
  readonly m: number;
  readonly k: number;
  readonly n: number;
  readonly gflops: number;
  readonly runs: number;
}

export interface MatmulPeak {
  readonly threads: number;
  readonly square: MatmulRow[];
  /** Shapes of the shipped model's denoising step (token rows × 128 × 512, 512 × 128, 128 × 384). */
  readonly modelShapes: MatmulRow[];
  /** The best square rate, GFLOP/s. */
  readonly peakGflops: number;
}

// --- a minimal protobuf writer (ONNX ModelProto with one MatMul node; dims symbolic)
function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 127) {
    out.push((v & 127) | 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}
const enc = new TextEncoder();
function field(tag: number, wire: 0 | 2, payload: number | Uint8Array | string): number[] {
  const key = varint((tag << 3) | wire);
  if (wire === 0) return [...key, ...varint(payload as number)];
  const bytes = typeof payload === 'string' ? enc.encode(payload) : (payload as Uint8Array);
  return [...key, ...varint(bytes.length), ...bytes];
}
const msg = (...parts: number[][]): Uint8Array => Uint8Array.from(parts.flat());

function valueInfo(name: string, dims: readonly string[]): Uint8Array {
  const shape = msg(...dims.map((d) => field(1, 2, msg(field(2, 2, d))))); // Dimension.dim_param
  const tensorType = msg(field(1, 0, 1), field(2, 2, shape)); // elem_type FLOAT, shape
  return msg(field(1, 2, name), field(2, 2, msg(field(1, 2, tensorType)))); // name, TypeProto.tensor_type
}

/** ONNX bytes of `C = MatMul(A, B)`, A [M, K], B [K, N], opset 17. */
export function matmulModel(): Uint8Array {
  const node = msg(field(1, 2, 'A'), field(1, 2, 'B'), field(2, 2, 'C'), field(4, 2, 'MatMul'));
  const graph = msg(field(1, 2, node), field(2, 2, 'mm'), field(11, 2, valueInfo('A', ['M', 'K'])), field(11, 2, valueInfo('B', ['K', 'N'])), field(12, 2, valueInfo('C', ['M', 'N'])));
  return msg(field(1, 0, 8), field(7, 2, graph), field(8, 2, msg(field(1, 2, ''), field(2, 0, 17))));
}

async function rate(session: ort.InferenceSession, m: number, k: number, n: number, seconds: number): Promise<MatmulRow> {
  const a = new ort.Tensor('float32', Float32Array.from({ length: m * k }, (_, i) => ((i % 97) - 48) / 97), [m, k]);
  const b = new ort.Tensor('float32', Float32Array.from({ length: k * n }, (_, i) => ((i % 89) - 44) / 89), [k, n]);
  for (let i = 0; i < 3; i++) await session.run({ A: a, B: b });
  let runs = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < seconds * 1000) {
    await session.run({ A: a, B: b });
    runs++;
    t = performance.now();
  }
  return { m, k, n, runs, gflops: (2 * m * k * n * runs) / ((t - t0) / 1000) / 1e9 };
}

/** Measure the MatMul rates (about `seconds` per shape). */
export async function benchMatmulPeak(options: { readonly threads?: number; readonly seconds?: number; readonly sizes?: readonly number[] } = {}): Promise<MatmulPeak> {
  const threads = options.threads ?? 2;
  const seconds = options.seconds ?? 1;
  const session = await ort.InferenceSession.create(matmulModel(), { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  try {
    const square: MatmulRow[] = [];
    for (const s of options.sizes ?? [256, 512, 1024, 2048]) square.push(await rate(session, s, s, s, seconds));
    // 8 candidates × 2 branches × 64 target tokens = 1024 rows at d = 128
    const modelShapes = [await rate(session, 1024, 128, 512, seconds), await rate(session, 1024, 512, 128, seconds), await rate(session, 1024, 128, 384, seconds)];
    return { threads, square, modelShapes, peakGflops: Math.max(...square.map((r) => r.gflops)) };
  } finally {
    await session.release();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--threads');
  benchMatmulPeak(i > 0 ? { threads: Number(process.argv[i + 1]) } : {}).then(
    (r) => {
      for (const row of [...r.square, ...r.modelShapes]) console.log(`MatMul [${row.m}×${row.k}]×[${row.k}×${row.n}]: ${row.gflops.toFixed(1)} GFLOP/s (${r.threads} threads)`);
      console.log(`peak ${r.peakGflops.toFixed(1)} GFLOP/s`);
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
