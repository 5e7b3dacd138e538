/**
 * Helpers for the CLI tests: run the REAL entry (`src/cli/main.ts` under tsx, as a child process, exactly what
 * `v4s` runs) in a given cwd, and collect its exit code and output.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI_ENTRY = path.join(REPO, 'src', 'cli', 'main.ts');
/** tsx's loader by absolute URL, so the child can run from any cwd. */
const TSX_LOADER = pathToFileURL(path.join(REPO, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Start `v4s <args>` in `cwd`; the caller owns the process. */
export function spawnCli(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', TSX_LOADER, CLI_ENTRY, ...args], {
    cwd,
    env: { ...process.env, CI: process.env['CI'] ?? '', ...env, FORCE_COLOR: '0' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Run `v4s <args>` in `cwd` to its end (killed after `timeoutMs`). */
export function runCli(args: readonly string[], cwd: string, timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, cwd);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const created: string[] = [];

/** A fresh temporary folder (removed by `removeTempDirs`). */
export function tempDir(prefix = 'v4s-cli-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** Remove the folders made by `tempDir` (call it in an `after` hook). */
export function removeTempDirs(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** The cells of the aggregate-table line whose first cell is `planner` (cells are separated by 2+ spaces). */
export function tableRow(stdout: string, planner: string): string[] | undefined {
  for (const line of stdout.split('\n')) {
    const cells = line.trim().split(/\s{2,}/);
    if (cells[0] === planner && cells.length >= 12) return cells;
  }
  return undefined;
}

/** The header cells of the aggregate table. */
export function tableHeader(stdout: string): string[] | undefined {
  const line = stdout.split('\n').find((l) => l.startsWith('planner') && l.includes('success'));
  return line?.trim().split(/\s{2,}/);
}
