/**
 * Bench section 4: the PyTorch eager reference (training/bench_torch.py) run from Node: the same decision, model
 * weights (read from the package's ONNX files and checked against its parity.json), sampler, guidance, batch
 * layout, inputs and thread count, under `torch.inference_mode()`, warm-up excluded. Needs Debian's
 * python3-torch, python3-onnx and python3-numpy (`/usr/bin/python3`, or $V4S_PYTHON); skipped with the install
 * command when they are missing.
 * Run: npx tsx bench/torch-reference.ts [modelDir]
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, SHIPPED_MODEL } from './util.js';

export interface TorchRow {
  readonly candidates: number;
  readonly steps: number;
  /** `full`: the model's forward at every step; `cached`: context stream once, target stream per step. */
  readonly variant: 'full' | 'cached';
  readonly batch: number;
  readonly encodeMs: number;
  readonly denoiseMs: number;
  readonly decodeMs: number;
  readonly totalMs: number;
}

export interface TorchResult {
  readonly available: boolean;
  /** Why the reference did not run. */
  readonly reason?: string;
  readonly torch?: string;
  readonly threads?: number;
  readonly weights?: string;
  /** Max |torch − parity.json| over the denoiser and encoder outputs (the model is the package's). */
  readonly parityMaxAbsError?: number | null;
  readonly rows: TorchRow[];
  /** torch.profiler FLOPs of one decision at 8 candidates, 8 steps. */
  readonly flops?: { readonly full: number; readonly cached: number };
  /** torch.mm fp32 GFLOP/s at square sizes. */
  readonly matmul?: readonly { readonly n: number; readonly gflops: number }[];
}

export interface TorchOptions {
  readonly candidates?: readonly number[];
  readonly steps?: readonly number[];
  readonly context?: number;
  readonly threads?: number;
  readonly repeats?: number;
  readonly variants?: readonly ('full' | 'cached')[];
  readonly flops?: boolean;
  readonly matmul?: boolean;
  readonly log?: (line: string) => void;
}

export const INSTALL_HINT = 'sudo apt-get install python3-torch python3-onnx python3-numpy libopenblas0-pthread';

/** Run training/bench_torch.py and parse its JSON; `available: false` with the reason when it cannot run. */
export async function benchTorch(modelDir: string = SHIPPED_MODEL, options: TorchOptions = {}): Promise<TorchResult> {
  const python = process.env['V4S_PYTHON'] ?? '/usr/bin/python3';
  if (!existsSync(python)) return { available: false, reason: `${python} not found (${INSTALL_HINT})`, rows: [] };
  const args = [
    path.join(ROOT, 'training', 'bench_torch.py'),
    '--model',
    modelDir,
    '--candidates',
    (options.candidates ?? [1, 4, 8, 16]).join(','),
    '--steps',
    (options.steps ?? [4, 8, 16]).join(','),
    '--context',
    String(options.context ?? 4),
    '--threads',
    String(options.threads ?? 2),
    '--repeats',
    String(options.repeats ?? 3),
    '--variants',
    (options.variants ?? ['full', 'cached']).join(','),
    ...(options.flops ? ['--flops'] : []),
    ...(options.matmul ? ['--matmul'] : []),
  ];
  const log = options.log;
  return new Promise<TorchResult>((resolve) => {
    const child = spawn(python, args, { env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (log) for (const line of d.toString().split('\n')) if (line.startsWith('{')) log(`  torch ${line}`);
    });
    child.on('error', (e) => resolve({ available: false, reason: `${python}: ${e.message}`, rows: [] }));
    child.on('close', (code) => {
      if (code !== 0) {
        const last = err.trim().split('\n').slice(-3).join(' | ');
        resolve({ available: false, reason: /No module named/.test(err) ? `${last} (${INSTALL_HINT})` : `bench_torch.py exited ${code}: ${last}`, rows: [] });
        return;
      }
      try {
        const parsed = JSON.parse(out.trim().split('\n').pop() ?? '') as Omit<TorchResult, 'available'>;
        resolve({ ...parsed, available: true });
      } catch (e) {
        resolve({ available: false, reason: `unreadable output of bench_torch.py: ${(e as Error).message}`, rows: [] });
      }
    });
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dir = process.argv[2];
  benchTorch(dir === undefined ? SHIPPED_MODEL : path.resolve(dir), { log: (l) => console.log(l) }).then(
    (r) => console.log(JSON.stringify(r, null, 1)),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
