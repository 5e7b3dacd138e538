/**
 * Shared helpers of the bench scripts: statistics, the fixed inputs every section feeds the model (the same as
 * training/bench_torch.py feeds PyTorch), a peak-RSS sampler and table printing.
 */
import { percentile } from '../src/agent/metrics.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Frame, Instruction } from '../src/types.js';
import type { ImagineRequest, SamplerConfig, WorldModelInfo } from '../src/worldmodel/world-model.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository root. */
export const ROOT = path.join(HERE, '..');
/** The shipped model package, the default of every section. */
export const SHIPPED_MODEL = path.join(ROOT, 'models', 'v4s-builtin-small');

/** Context offsets relative to the newest frame (the last K are used); bench_torch.py uses the same. */
export const CONTEXT_OFFSETS = [-24, -16, -12, -7, -3, 0] as const;

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Percentile q ∈ [0, 1], the SDK's own (linear interpolation, as numpy), so bench and eval figures agree. */
export function quantile(values: readonly number[], q: number): number {
  return percentile(values, q);
}

/** A deterministic RGB frame (same bytes as bench_torch.py: (i·7 + k·41) mod 256). */
export function patternFrame(width: number, height: number, k: number): Frame {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + k * 41) % 256;
  return { width, height, data };
}

/** Candidate c's actions, as bench_torch.py builds them: vocabulary by id, entry (c + j·(c+1)) mod |V|. */
export function benchCandidates(info: WorldModelInfo, actionIds: Readonly<Record<string, number>>, n: number, horizon: number): Instruction[] {
  const names = Object.keys(info.actions).sort((a, b) => (actionIds[a] ?? 0) - (actionIds[b] ?? 0));
  const goal = info.goalCategories[0];
  return Array.from({ length: n }, (_, c) => ({
    actions: Array.from({ length: horizon }, (_, j) => names[(c + j * (c + 1)) % names.length] as string),
    ...(goal !== undefined ? { goalCategory: goal } : {}),
  }));
}

/** The request of one bench decision: K pattern frames at CONTEXT_OFFSETS (absolute step = 100 + offset). */
export function benchRequest(
  info: WorldModelInfo,
  actionIds: Readonly<Record<string, number>>,
  options: { readonly candidates: number; readonly steps: number; readonly context?: number; readonly seed?: number; readonly guidance?: ImagineRequest['guidance'] },
): ImagineRequest {
  const K = Math.min(options.context ?? 4, info.maxContext);
  const { width, height } = info.resolution;
  const offsets = CONTEXT_OFFSETS.slice(CONTEXT_OFFSETS.length - K);
  const sampler: SamplerConfig = { ...info.defaultSampler, steps: options.steps };
  return {
    context: { frames: offsets.map((_, k) => patternFrame(width, height, k)), positions: offsets.map((o) => 100 + o) },
    candidates: benchCandidates(info, actionIds, options.candidates, info.horizon),
    sampler,
    ...(options.guidance !== undefined ? { guidance: options.guidance } : {}),
    seed: options.seed ?? 1,
  };
}

/** Samples the process's resident set size every `everyMs` (worker threads included) and keeps the maximum. */
export class RssSampler {
  #max = 0;
  #timer: NodeJS.Timeout | undefined;
  start(everyMs = 5): this {
    this.#max = process.memoryUsage.rss();
    this.#timer = setInterval(() => this.sample(), everyMs);
    return this;
  }
  sample(): void {
    const r = process.memoryUsage.rss();
    if (r > this.#max) this.#max = r;
  }
  /** Stop; the peak in MiB. */
  stop(): number {
    if (this.#timer) clearInterval(this.#timer);
    this.sample();
    return this.#max / 2 ** 20;
  }
}

/** Print rows as an aligned text table. */
export function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[], log: (line: string) => void = console.log): void {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  log(line(headers));
  for (const r of cells) log(line(r));
}

/** 3 significant digits, no exponent for ordinary magnitudes. */
export function fmt(v: number): string {
  if (!Number.isFinite(v) || Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

/** Wait `ms` without blocking. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
