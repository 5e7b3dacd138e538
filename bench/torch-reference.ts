/**
 * Bench section 4: the PyTorch eager reference (training/bench_torch.py) driven from Node. The Python process
 * stays up (`--serve`) and runs one decision per request, so that `bench/run.ts` can interleave it with the SDK's
 * decisions (SDK, torch full, torch cached, SDK, …): on a shared machine, load drift then hits both sides alike.
 * Same decision, model weights (read from the package's ONNX files, checked against its parity.json), sampler,
 * guidance, batch layout, inputs and thread count, under `torch.inference_mode()`, warm-up excluded. Needs
 * Debian's python3-torch, python3-onnx and python3-numpy (`/usr/bin/python3`, or $V4S_PYTHON); the section is
 * skipped with the install command when they are missing.
 * Run: npx tsx bench/torch-reference.ts [modelDir]   (a small grid, printed as JSON)
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, SHIPPED_MODEL, median } from './util.js';

/** `full`: the model's forward at every step; `cached`: context stream once, target stream per step. */
export type TorchVariant = 'full' | 'cached';

export interface TorchSample {
  readonly encodeMs: number;
  readonly denoiseMs: number;
  readonly decodeMs: number;
  readonly totalMs: number;
}

export interface TorchRow extends TorchSample {
  readonly candidates: number;
  readonly steps: number;
  readonly variant: TorchVariant;
  readonly batch: number;
  readonly repeats: number;
}

/** What the Python side reports about itself. */
export interface TorchInfo {
  readonly torch: string;
  readonly threads: number;
  readonly interopThreads: number;
  readonly ompWaitPolicy: string | null;
  readonly weights: string;
  /** Max |torch − parity.json| over the denoiser and encoder outputs: the model is the package's. */
  readonly parityMaxAbsError: number | null;
}

export const INSTALL_HINT = 'sudo apt-get install python3-torch python3-onnx python3-numpy libopenblas0-pthread';

/** A running training/bench_torch.py --serve. */
export class TorchSession {
  readonly info: TorchInfo;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiting: ((line: string | Error) => void)[] = [];

  private constructor(child: ChildProcessWithoutNullStreams, info: TorchInfo, waiting: ((line: string | Error) => void)[]) {
    this.#child = child;
    this.info = info;
    this.#waiting = waiting;
  }

  /** Start the reference; `{ reason }` when it cannot run here. */
  static async start(modelDir: string, options: { readonly threads?: number; readonly context?: number } = {}): Promise<TorchSession | { readonly reason: string }> {
    const python = process.env['V4S_PYTHON'] ?? '/usr/bin/python3';
    if (!existsSync(python)) return { reason: `${python} not found (${INSTALL_HINT})` };
    const args = [path.join(ROOT, 'training', 'bench_torch.py'), '--model', modelDir, '--serve', '--threads', String(options.threads ?? 2), '--context', String(options.context ?? 4)];
    const child = spawn(python, args, { env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' }, stdio: ['pipe', 'pipe', 'pipe'] });
    const waiting: ((line: string | Error) => void)[] = [];
    let buffered = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        waiting.shift()?.(line);
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const failAll = (e: Error): void => {
      for (const w of waiting.splice(0)) w(e);
    };
    child.on('error', (e) => failAll(e));
    child.on('close', (code) => {
      const last = stderr.trim().split('\n').slice(-2).join(' | ');
      failAll(new Error(/No module named/.test(stderr) ? `${last} (${INSTALL_HINT})` : `bench_torch.py exited ${String(code)}: ${last}`));
    });
    const first = await new Promise<string | Error>((r) => waiting.push(r));
    if (first instanceof Error) return { reason: first.message };
    return new TorchSession(child, JSON.parse(first) as TorchInfo, waiting);
  }

  async #request<T>(body: Record<string, unknown>): Promise<T> {
    const line = new Promise<string | Error>((r) => this.#waiting.push(r));
    this.#child.stdin.write(`${JSON.stringify(body)}\n`);
    const got = await line;
    if (got instanceof Error) throw got;
    return JSON.parse(got) as T;
  }

  /** `repeats` timed decisions (after one untimed when `warmup`). */
  async decision(candidates: number, steps: number, variant: TorchVariant, repeats: number, warmup = false): Promise<{ batch: number; samples: TorchSample[] }> {
    return this.#request({ op: 'decision', candidates, steps, variant, repeats, warmup });
  }

  /** torch.profiler FLOPs of one decision at 8 candidates, 8 steps. */
  async flops(): Promise<{ full: number; cached: number }> {
    return (await this.#request<{ flops: { full: number; cached: number } }>({ op: 'flops' })).flops;
  }

  /** torch.mm fp32 GFLOP/s at square sizes. */
  async matmul(): Promise<{ n: number; gflops: number }[]> {
    return (await this.#request<{ matmul: { n: number; gflops: number }[] }>({ op: 'matmul' })).matmul;
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const closed = new Promise<void>((r) => this.#child.once('close', () => r()));
    this.#child.stdin.end();
    await closed;
  }
}

/** Median row of torch samples. */
export function torchRow(candidates: number, steps: number, variant: TorchVariant, batch: number, samples: readonly TorchSample[]): TorchRow {
  return {
    candidates,
    steps,
    variant,
    batch,
    repeats: samples.length,
    encodeMs: median(samples.map((s) => s.encodeMs)),
    denoiseMs: median(samples.map((s) => s.denoiseMs)),
    decodeMs: median(samples.map((s) => s.decodeMs)),
    totalMs: median(samples.map((s) => s.totalMs)),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dir = process.argv[2] === undefined ? SHIPPED_MODEL : path.resolve(process.argv[2]);
  (async () => {
    const s = await TorchSession.start(dir);
    if (!(s instanceof TorchSession)) return console.log(`skipped: ${s.reason}`);
    const rows: TorchRow[] = [];
    for (const [n, k] of [
      [1, 4],
      [8, 8],
    ] as const) {
      for (const v of ['full', 'cached'] as const) {
        const r = await s.decision(n, k, v, 3, true);
        rows.push(torchRow(n, k, v, r.batch, r.samples));
      }
    }
    console.log(JSON.stringify({ info: s.info, rows }, null, 1));
    await s.close();
  })().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
