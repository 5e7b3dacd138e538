/**
 * Helpers shared by the `v4s` commands: option parsers that name the flag, output-path checks, the package
 * root (to find the shipped model whatever the cwd), exit codes and small formatting helpers.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from 'commander';
import { V4sError, isV4sError } from '../errors.js';
import { resolveOutputPath as resolveCheckedPath } from '../agent/paths.js';

/** Exit codes of `v4s`: 0 ok, 1 a failure while running, 2 a usage error (bad flag or value), 130 interrupted. */
export const EXIT = { ok: 0, failure: 1, usage: 2, interrupted: 130 } as const;

/** The folder of the shipped world-model package, relative to the package root. */
export const SHIPPED_MODEL = 'models/v4s-builtin-small';

/**
 * The package root: the nearest folder above this module with the `v4s-nav` package.json. Works from
 * `src/cli/` (tsx) and from `dist/src/cli/` (built), whatever the cwd.
 */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        const parsed: unknown = JSON.parse(readFileSync(pkg, 'utf8'));
        if (typeof parsed === 'object' && parsed !== null && (parsed as { name?: unknown }).name === 'v4s-nav') return dir;
      } catch {
        // not ours; keep looking
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new V4sError('E_PATH', `cannot find the v4s-nav package root above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** The shipped model package folder (absolute). */
export function shippedModelDir(): string {
  return path.join(packageRoot(), SHIPPED_MODEL);
}

/** True when `dir` holds a model package (a manifest.json). */
export function hasModelPackage(dir: string): boolean {
  return existsSync(path.join(dir, 'manifest.json'));
}

// ---------------------------------------------------------------------------------------------------------
// Option parsers. Commander turns an InvalidArgumentError into "option '--x <n>' argument 'v' is invalid. …",
// which names the flag; the CLI exits with code 2.

/** Parser of an integer option in [min, max]. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isSafeInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `in ${min}..${max}`;
      throw new InvalidArgumentError(`expected an integer ${range}.`);
    }
    return n;
  };
}

/** An inclusive seed range `A..B` (or a single seed `A`). */
export interface SeedRangeArg {
  readonly first: number;
  readonly last: number;
}

/** Parser of `--seeds A..B` (inclusive) or `--seeds A`. */
export function seedsArg(value: string): SeedRangeArg {
  const m = /^\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?$/.exec(value);
  if (m === null) throw new InvalidArgumentError('expected A..B (inclusive, non-negative integers), e.g. 200000..200099.');
  const first = Number(m[1]);
  const last = m[2] !== undefined ? Number(m[2]) : first;
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last)) throw new InvalidArgumentError('seeds must be safe integers.');
  if (last < first) throw new InvalidArgumentError(`the range ${first}..${last} is descending.`);
  return { first, last };
}

/** Parser of a WebSocket URL. */
export function urlArg(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new InvalidArgumentError('expected a URL such as ws://127.0.0.1:8765.');
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new InvalidArgumentError(`expected a ws:// or wss:// URL, got ${u.protocol}//.`);
  return value;
}

/** Parser of an HTTP(S) URL (an inference server). */
export function httpUrlArg(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new InvalidArgumentError('expected a URL such as http://127.0.0.1:8000.');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidArgumentError(`expected an http:// or https:// URL, got ${u.protocol}//.`);
  return value;
}

// ---------------------------------------------------------------------------------------------------------
// Output paths

/**
 * Resolve and check an output path given on the command line, through `resolveOutputPath` of
 * src/agent/paths.ts (one rule set for the SDK and the CLI): a relative path must stay inside `cwd`, also through
 * symbolic links (`../x`, or a link that points out, is refused); an absolute path is taken as given, since the
 * user named it explicitly; control characters (NUL, newline, …) and over-long paths are refused; a `file` must
 * not be a directory, a device or a FIFO, a `dir` must not be a file, and no file may stand where a parent folder
 * has to be created. Throws E_PATH (exit code 2) naming the flag and the path.
 */
export function resolveOutputPath(value: string, flag: string, kind: 'file' | 'dir', cwd = process.cwd()): string {
  return resolveCheckedPath(value, { base: cwd, kind, what: flag });
}

/** A filesystem-safe timestamp, e.g. `2025-11-25T02-30-05`. */
export function timestamp(date = new Date()): string {
  return date.toISOString().slice(0, 19).replace(/:/g, '-');
}

/** A path relative to the cwd when it is inside it (for messages), else absolute. */
export function displayPath(p: string, cwd = process.cwd()): string {
  const rel = path.relative(cwd, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}

/** `83.4 s` / `2 min 03 s`. */
export function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(Math.round(s - m * 60)).padStart(2, '0')} s`;
}

/** The exit code of an error escaping a command: 2 for option/path errors, 1 for the rest. */
export function exitCodeOf(e: unknown): number {
  if (isV4sError(e, 'E_CONFIG') || isV4sError(e, 'E_PATH') || isV4sError(e, 'E_INSECURE_BIND')) return EXIT.usage;
  return EXIT.failure;
}

/** One line for an error escaping a command: `v4s: E_CODE: message`. */
export function errorLine(e: unknown): string {
  if (isV4sError(e)) return `v4s: ${e.code}: ${e.message}`;
  return `v4s: ${e instanceof Error ? e.message : String(e)}`;
}

/** Where a command writes its human-readable output (tests and embedders may replace it). */
export interface CliIO {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  /** True when stdout is a terminal (progress bars); plain lines otherwise. */
  readonly isTTY: boolean;
}

/** stdout/stderr of this process. */
export const processIO: CliIO = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  isTTY: process.stdout.isTTY === true,
};

/**
 * The seeds to run: the first `episodes` seeds of `--seeds A..B`, all of them without `--episodes`, or the
 * first `episodes` (else `defaultCount`) evaluation seeds when no range is given. E_CONFIG when `--episodes`
 * exceeds the range.
 */
export function selectSeeds(options: { readonly episodes?: number; readonly seeds?: SeedRangeArg }, defaultStart: number, defaultCount: number): number[] {
  const { episodes, seeds } = options;
  if (seeds !== undefined) {
    const size = seeds.last - seeds.first + 1;
    if (episodes !== undefined && episodes > size) {
      throw new V4sError('E_CONFIG', `--episodes ${episodes} exceeds the ${size} seed(s) of --seeds ${seeds.first}..${seeds.last}`);
    }
    const n = episodes ?? size;
    if (n > 1_000_000) throw new V4sError('E_CONFIG', `--seeds ${seeds.first}..${seeds.last}: ${n} episodes is more than 1,000,000`);
    return Array.from({ length: n }, (_, i) => seeds.first + i);
  }
  return Array.from({ length: episodes ?? defaultCount }, (_, i) => defaultStart + i);
}

/** `200000..200099` for messages. */
export function seedsText(seeds: readonly number[]): string {
  if (seeds.length === 0) return 'none';
  const first = seeds[0] as number;
  const last = seeds[seeds.length - 1] as number;
  return seeds.length === 1 ? String(first) : `${first}..${last}`;
}

/** A SIGINT/SIGTERM → AbortSignal bridge for a command's lifetime; a second signal exits at once. */
export function interruptSignal(io: CliIO = processIO): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(EXIT.interrupted);
    io.err(`\n${name}: stopping after the current step (again to quit at once)`);
    controller.abort(new V4sError('E_ABORTED', `interrupted by ${name}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
