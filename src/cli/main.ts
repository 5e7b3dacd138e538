#!/usr/bin/env node
/**
 * `v4s`: the command-line entry. Each command lives in its own module and registers itself with
 * `register(program)`; to add one, write `src/cli/<name>.ts` exporting `register` and list it in `COMMANDS`.
 *
 * Exit codes: 0 ok · 1 a failure while running (simulator unreachable, model unloadable, …) · 2 a usage error
 * (unknown flag, bad value, unsafe output path) · 130 interrupted (Ctrl-C; finished rows are kept).
 *
 * Usage: `v4s demo`, `v4s eval --planner random --episodes 5`, `v4s sim --port 8765`, `v4s --help`.
 */
import { realpathSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { EXIT, errorLine, exitCodeOf, packageRoot, processIO, type CliIO } from './common.js';
import { register as registerDataset } from './dataset.js';
import { register as registerDemo } from './demo.js';
import { register as registerEval } from './eval.js';
import { register as registerEvalModel } from './eval-model.js';
import { register as registerExportTriton } from './export-triton.js';
import { register as registerSim } from './sim.js';

/** A command module's `register`: adds its command (options, action) to the program. */
export type RegisterCommand = (program: Command, io: CliIO) => void;

/** The command modules, in help order. Later commands (`eval-model`, `bench`) are added here. */
export const COMMANDS: readonly RegisterCommand[] = [registerDemo, registerEval, registerSim, registerDataset, registerExportTriton, registerEvalModel];

function version(): string {
  try {
    const parsed: unknown = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8'));
    const v = typeof parsed === 'object' && parsed !== null ? (parsed as { version?: unknown }).version : undefined;
    return typeof v === 'string' ? v : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Build the `v4s` program with every command registered. Errors throw (exitOverride) instead of exiting. */
export function buildProgram(io: CliIO = processIO): Command {
  const program = new Command('v4s');
  const trim = (s: string): string => s.replace(/\n$/, '');
  program
    .description('v4s-nav: embodied navigation with a video world model (Video4Spatial design)')
    .version(version(), '-V, --version')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => io.out(trim(s)),
      writeErr: (s) => io.err(trim(s)),
      outputError: (s, write) => write(`v4s: ${s.replace(/^error: /, '')}`),
    });
  // Set before registering: subcommands copy these settings when created.
  for (const register of COMMANDS) register(program, io);
  return program;
}

/** Run the CLI on `argv` (user arguments, without `node` and the script). Resolves with the exit code. */
export async function main(argv: readonly string[], io: CliIO = processIO): Promise<number> {
  const program = buildProgram(io);
  process.exitCode = undefined;
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version "fail" with exit code 0; everything else commander rejects is a usage error.
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    io.err(errorLine(e));
    return exitCodeOf(e);
  }
  const code = process.exitCode;
  return typeof code === 'number' ? code : EXIT.ok;
}

function isEntry(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  const code = await main(process.argv.slice(2));
  // Exit explicitly: onnxruntime's thread pool or a progress bar's timer must not keep a finished command alive.
  process.exit(code);
}
