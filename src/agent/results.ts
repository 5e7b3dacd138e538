/**
 * Per-episode result rows as JSON Lines, written so that an interrupted evaluation keeps every finished row:
 * each row is appended and fsync'ed before the next episode starts; a kill can at worst leave a truncated
 * last line, which `readResults` ignores and `ResultsWriter.open` cuts off before appending again.
 * `completedKeys` lets a `--resume` run skip what is done, so no row is duplicated.
 *
 * Usage:
 * ```ts
 * const writer = await ResultsWriter.open('results.jsonl');   // repairs a truncated tail
 * const done = await completedKeys('results.jsonl');
 * for (const ep of episodes) if (!done.has(ep.key)) await writer.append(await runOne(ep));
 * ```
 */
import { open, readFile, stat, truncate, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { V4sError } from '../errors.js';
import type { TaskName } from '../sim-adapters/environment.js';
import type { EndReason } from './agent.js';

/** Schema tag of a row; bumped when a field changes meaning. */
export const EPISODE_ROW_SCHEMA = 'v4s.episode.v1' as const;

/**
 * Outcome of one episode. `ok`: it ran to its end. `aborted`: the environment failed (not counted against the
 * agent; excluded from success rate and SPL). `error`: the agent (planner) failed; counted as a failure
 * with SPL 0 and SoftSPL 0.
 */
export type EpisodeStatus = 'ok' | 'aborted' | 'error';

/** One line of a results file. Distances in metres; `null` where the environment did not report the value. */
export interface EpisodeRow {
  readonly schema: typeof EPISODE_ROW_SCHEMA;
  /** Unique within a results file, e.g. `random/objectnav/seed-7`; what `--resume` matches on. */
  readonly key: string;
  readonly planner: string;
  readonly task?: TaskName;
  readonly seed?: number;
  readonly episode?: string;
  readonly status: EpisodeStatus;
  /** Why it was aborted / failed. */
  readonly reason?: string;
  /** The V4sError code of the failure, when it had one (the environment's own code for `aborted`). */
  readonly errorCode?: string;
  readonly success: boolean;
  /** S·ℓ/max(p, ℓ) (Anderson et al. 2018). */
  readonly spl: number | null;
  /** max(0, 1 − d_T/d_0)·ℓ/max(p, ℓ). */
  readonly softSpl: number | null;
  readonly distanceToGoal: number | null;
  readonly initialDistanceToGoal: number | null;
  /** ℓ: geodesic shortest-path length from the start. */
  readonly shortestPathLength: number | null;
  /** p: length of the path taken. */
  readonly pathLength: number | null;
  /** `env.step` calls, `stop` included. */
  readonly steps: number;
  readonly collisions: number;
  readonly endReason: EndReason | null;
  /** Wall time of each planner call, milliseconds. */
  readonly decisionLatenciesMs: number[];
  /** ISO 8601. */
  readonly startedAt: string;
  readonly durationMs: number;
}

/** Cut a partial last line (no trailing newline) off the file, so appending cannot glue onto it. Returns bytes cut. */
export async function repairResults(path: string): Promise<number> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw new V4sError('E_PATH', `results file ${path}: ${(e as Error).message}`, undefined, { cause: e });
  }
  if (size === 0) return 0;
  const data = await readFile(path);
  if (data[data.length - 1] === 0x0a) return 0;
  const keep = data.lastIndexOf(0x0a) + 1;
  await truncate(path, keep);
  return size - keep;
}

/**
 * Appends rows to a JSONL file, one `write` + `fsync` per row, serialised so that concurrent `append` calls
 * cannot interleave. Open it with `ResultsWriter.open` (creates the folder, repairs a truncated tail).
 */
export class ResultsWriter {
  readonly path: string;
  #queue: Promise<void> = Promise.resolve();

  private constructor(path: string) {
    this.path = path;
  }

  /** Create the parent folder if needed and cut a truncated last line left by a killed run. */
  static async open(path: string): Promise<ResultsWriter> {
    try {
      await mkdir(dirname(path), { recursive: true });
    } catch (e) {
      throw new V4sError('E_PATH', `results file ${path}: cannot create its folder: ${(e as Error).message}`, undefined, { cause: e });
    }
    await repairResults(path);
    return new ResultsWriter(path);
  }

  /** Append one row and fsync it; resolves once it is on disk. */
  append(row: EpisodeRow): Promise<void> {
    const line = `${JSON.stringify(row)}\n`;
    const next = this.#queue.then(async () => {
      const fh = await open(this.path, 'a');
      try {
        await fh.write(line);
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
    // Keep the queue alive after a failed write; the caller still sees the failure.
    this.#queue = next.catch(() => undefined);
    return next;
  }
}

/** Append one row to `path` with fsync (opens, writes, syncs, closes). Prefer `ResultsWriter` for many rows. */
export async function appendResult(path: string, row: EpisodeRow): Promise<void> {
  const writer = await ResultsWriter.open(path);
  await writer.append(row);
}

function isRow(v: unknown): v is EpisodeRow {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return typeof r['key'] === 'string' && typeof r['status'] === 'string' && typeof r['success'] === 'boolean';
}

/**
 * Read the rows of a results file; a missing file reads as no rows. A truncated last line (from a killed
 * writer) is skipped; any other malformed line throws `E_RESULTS_FILE` naming the line.
 */
export async function readResults(path: string): Promise<EpisodeRow[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new V4sError('E_PATH', `results file ${path}: ${(e as Error).message}`, undefined, { cause: e });
  }
  const lines = text.split('\n');
  const complete = text.endsWith('\n');
  const rows: EpisodeRow[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.trim() === '') continue;
    const isTail = i === lines.length - 1 && !complete;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      if (isTail) break;
      throw new V4sError('E_RESULTS_FILE', `results file ${path}: line ${i + 1} is not valid JSON`, { line: i + 1 });
    }
    if (!isRow(parsed)) {
      if (isTail) break;
      throw new V4sError('E_RESULTS_FILE', `results file ${path}: line ${i + 1} is not an episode row (key, status, success)`, {
        line: i + 1,
      });
    }
    rows.push(parsed);
  }
  return rows;
}

/**
 * Keys of the episodes already in a results file, for `--resume`. With `retryAborted`, aborted episodes are
 * left out so that they run again (their old row stays; `latestRows` keeps only the newest row per key).
 */
export async function completedKeys(path: string, options: { retryAborted?: boolean } = {}): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const row of await readResults(path)) {
    if (options.retryAborted === true && row.status === 'aborted') continue;
    keys.add(row.key);
  }
  return keys;
}

/** The last row of each key, in first-seen order (for aggregating a file where aborted episodes were retried). */
export function latestRows(rows: readonly EpisodeRow[]): EpisodeRow[] {
  const byKey = new Map<string, EpisodeRow>();
  for (const r of rows) byKey.set(r.key, r); // a Map keeps a key's first insertion position
  return [...byKey.values()];
}
