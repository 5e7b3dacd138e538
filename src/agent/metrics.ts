/**
 * Navigation metrics, computed the way habitat-lab does from the simulator's per-step `info`:
 * success, SPL (Anderson et al. 2018), SoftSPL, distance to goal; plus aggregates with a Wilson 95 %
 * interval on the success rate and decision-latency percentiles, and a plain-text table.
 *
 * Usage: `console.log(formatTable(await readResults('results.jsonl')))`.
 */
import type { EpisodeTrace } from './agent.js';
import type { EpisodeRow } from './results.js';

/** z for a two-sided 95 % interval. */
export const Z_95 = 1.959963984540054;

/**
 * SPL of one episode: S·ℓ/max(p, ℓ), ℓ the geodesic shortest-path length, p the path length taken.
 * When ℓ = p = 0 (start on the goal) the ratio is taken as 1.
 */
export function spl(success: boolean, shortestPathLength: number, pathLength: number): number {
  if (!success) return 0;
  const denom = Math.max(pathLength, shortestPathLength);
  return denom <= 0 ? 1 : shortestPathLength / denom;
}

/**
 * SoftSPL of one episode: max(0, 1 − d_T/d_0)·ℓ/max(p, ℓ), d_T the final and d_0 the initial distance to the
 * goal. When d_0 = 0 the soft success is 1 if d_T = 0, else 0.
 */
export function softSpl(distanceToGoal: number, initialDistanceToGoal: number, shortestPathLength: number, pathLength: number): number {
  const soft = initialDistanceToGoal > 0 ? Math.max(0, 1 - distanceToGoal / initialDistanceToGoal) : distanceToGoal <= 0 ? 1 : 0;
  const denom = Math.max(pathLength, shortestPathLength);
  return soft * (denom <= 0 ? 1 : shortestPathLength / denom);
}

/** Wilson score interval for `successes` out of `n` (z = 1.96 by default). `[0, 1]` when n = 0. */
export function wilsonInterval(successes: number, n: number, z = Z_95): [number, number] {
  if (n <= 0) return [0, 1];
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // The bounds are exactly 0 / 1 at the extremes; do not let rounding say otherwise.
  return [successes <= 0 ? 0 : Math.max(0, centre - half), successes >= n ? 1 : Math.min(1, centre + half)];
}

/** Percentile q ∈ [0, 1] by linear interpolation between closest ranks (numpy's default). NaN for no values. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = Math.min(1, Math.max(0, q)) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] ?? NaN;
  const b = sorted[hi] ?? NaN;
  return a + (b - a) * (pos - lo);
}

function finite(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Metrics of one finished episode, from its trace (the fields of an `EpisodeRow` that come from the episode). */
export interface EpisodeMetrics {
  readonly success: boolean;
  readonly spl: number | null;
  readonly softSpl: number | null;
  readonly distanceToGoal: number | null;
  readonly initialDistanceToGoal: number | null;
  readonly shortestPathLength: number | null;
  readonly pathLength: number | null;
  readonly steps: number;
  readonly collisions: number;
  readonly decisionLatenciesMs: number[];
}

/**
 * Metrics of one episode from the simulator's `info`: success from the final `info.success`; ℓ from
 * `shortestPathLength` (final, else initial); p from the final `pathLength`; d_0 from the initial
 * `distanceToGoal` (else ℓ). SPL/SoftSPL are null when the environment does not report ℓ or p.
 */
export function episodeMetrics(trace: EpisodeTrace): EpisodeMetrics {
  const fin = trace.final.info;
  const ini = trace.initial.info;
  const success = fin.success === true;
  const l = finite(fin.shortestPathLength) ?? finite(ini.shortestPathLength);
  const p = finite(fin.pathLength);
  const dT = finite(fin.distanceToGoal);
  const d0 = finite(ini.distanceToGoal) ?? l;
  return {
    success,
    spl: l !== null && p !== null ? spl(success, l, p) : null,
    softSpl: l !== null && p !== null && dT !== null && d0 !== null ? softSpl(dT, d0, l, p) : null,
    distanceToGoal: dT,
    initialDistanceToGoal: d0,
    shortestPathLength: l,
    pathLength: p,
    steps: trace.stepsTaken,
    collisions: trace.collisions,
    decisionLatenciesMs: trace.decisions.map((d) => d.latencyMs),
  };
}

/** Aggregate of a set of episode rows. Means are over counted rows (not aborted) that report the value. */
export interface EvaluationSummary {
  readonly planner?: string;
  readonly task?: string;
  /** Rows counted: status `ok` or `error` (an agent failure counts as a failure). */
  readonly episodes: number;
  /** Rows with status `aborted` (environment failures), excluded from every other figure but latency. */
  readonly aborted: number;
  /** Rows with status `error` (agent failures). */
  readonly errors: number;
  readonly successes: number;
  /** successes / episodes; NaN when no episode counted. */
  readonly successRate: number;
  /** Wilson 95 % interval of the success rate. */
  readonly successCi95: [number, number];
  readonly spl: number;
  readonly softSpl: number;
  readonly distanceToGoal: number;
  readonly steps: number;
  readonly collisions: number;
  /** Planner decisions in all rows (aborted included: latency is the planner's property). */
  readonly decisions: number;
  readonly latencyP50Ms: number;
  readonly latencyP95Ms: number;
}

function mean(values: readonly (number | null)[]): number {
  let s = 0;
  let n = 0;
  for (const v of values) {
    if (v === null) continue;
    s += v;
    n++;
  }
  return n === 0 ? NaN : s / n;
}

/** Aggregate rows (all of them: group first with `groupRows` to compare planners or tasks). */
export function aggregate(rows: readonly EpisodeRow[], labels: { planner?: string; task?: string } = {}): EvaluationSummary {
  const counted = rows.filter((r) => r.status !== 'aborted');
  const successes = counted.filter((r) => r.success).length;
  // An agent failure scores 0 whatever the row holds.
  const score = (r: EpisodeRow, v: number | null): number | null => (r.status === 'error' ? 0 : v);
  const latencies = rows.flatMap((r) => r.decisionLatenciesMs);
  return {
    ...(labels.planner !== undefined ? { planner: labels.planner } : {}),
    ...(labels.task !== undefined ? { task: labels.task } : {}),
    episodes: counted.length,
    aborted: rows.length - counted.length,
    errors: counted.filter((r) => r.status === 'error').length,
    successes,
    successRate: counted.length === 0 ? NaN : successes / counted.length,
    successCi95: wilsonInterval(successes, counted.length),
    spl: mean(counted.map((r) => score(r, r.spl))),
    softSpl: mean(counted.map((r) => score(r, r.softSpl))),
    distanceToGoal: mean(counted.map((r) => r.distanceToGoal)),
    steps: mean(counted.map((r) => r.steps)),
    collisions: mean(counted.map((r) => r.collisions)),
    decisions: latencies.length,
    latencyP50Ms: percentile(latencies, 0.5),
    latencyP95Ms: percentile(latencies, 0.95),
  };
}

/** Group rows by planner and task (in first-seen order) and aggregate each group. */
export function groupRows(rows: readonly EpisodeRow[]): EvaluationSummary[] {
  const groups = new Map<string, { planner: string; task?: string; rows: EpisodeRow[] }>();
  for (const r of rows) {
    const id = `${r.planner}\u0000${r.task ?? ''}`;
    let g = groups.get(id);
    if (g === undefined) {
      g = { planner: r.planner, ...(r.task !== undefined ? { task: r.task } : {}), rows: [] };
      groups.set(id, g);
    }
    g.rows.push(r);
  }
  return [...groups.values()].map((g) => aggregate(g.rows, { planner: g.planner, ...(g.task !== undefined ? { task: g.task } : {}) }));
}

function fmt(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '–';
}

function pct(v: number): string {
  return Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '–';
}

/** Render a plain-text table: first column left-aligned, the others right-aligned. */
export function renderTable(header: readonly string[], body: readonly (readonly string[])[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => (row[c] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** A table of summaries: one line per planner × task. */
export function formatSummaryTable(summaries: readonly EvaluationSummary[]): string {
  const header = ['planner', 'task', 'episodes', 'aborted', 'success', '95% CI', 'SPL', 'SoftSPL', 'dist (m)', 'steps', 'p50 ms', 'p95 ms'];
  const body = summaries.map((s) => [
    s.planner ?? '',
    s.task ?? '',
    String(s.episodes),
    String(s.aborted),
    pct(s.successRate),
    s.episodes === 0 ? '–' : `${(s.successCi95[0] * 100).toFixed(1)}–${(s.successCi95[1] * 100).toFixed(1)}%`,
    fmt(s.spl, 3),
    fmt(s.softSpl, 3),
    fmt(s.distanceToGoal, 2),
    fmt(s.steps, 1),
    fmt(s.latencyP50Ms, 2),
    fmt(s.latencyP95Ms, 2),
  ]);
  return renderTable(header, body);
}

/**
 * The aggregate table of a results file's rows, one line per planner × task.
 * Usage: `console.log(formatTable(rows))`.
 */
export function formatTable(rows: readonly EpisodeRow[]): string {
  return formatSummaryTable(groupRows(rows));
}
